"""FLAME fitted to one whole sequence (on the GPU when the job was given one)."""

from pathlib import Path

import _bootstrap

from talkhead.flame.stage import run_fit_stage, select_device
from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    import torch

    torch.set_num_threads(snakemake.threads)
    run_fit_stage(
        snakemake.input.points,
        snakemake.input.alignment,
        {k: snakemake.input[f"flame_{k}"] for k in ("model", "landmarks", "masks")},
        Path(snakemake.output.params).parent,
        snakemake.params.fit,
        fps=snakemake.params.fps,
        device=select_device(int(snakemake.resources.get("gpu", 0))),
        workers=snakemake.threads,
        overrides=snakemake.params.get("overrides"),
        qc=snakemake.params.floors,
    )
