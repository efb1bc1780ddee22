"""An expression code per frame of one sequence, and its meshes by marching cubes."""

from pathlib import Path

import _bootstrap

from talkhead.flame.stage import select_device
from talkhead.logs import log_to
from talkhead.nphm.stage import run_fit_stage

with log_to(snakemake.log[0]):
    import torch

    torch.set_num_threads(snakemake.threads)
    run_fit_stage(
        snakemake.input.points,
        snakemake.input.flame,
        snakemake.input.identity,
        snakemake.input.model,
        {k: snakemake.input[f"flame_{k}"] for k in ("model", "landmarks", "masks")},
        Path(snakemake.output.codes).parent,
        snakemake.params.fit,
        device=select_device(int(snakemake.resources.get("gpu", 0))),
        overrides=snakemake.params.get("overrides"),
    )
