"""The head model trained on the FLAME-format model's family (on the GPU when the job has one)."""

from pathlib import Path

import _bootstrap

from talkhead.flame.stage import select_device
from talkhead.logs import log_to
from talkhead.nphm.stage import run_train_stage

with log_to(snakemake.log[0]):
    import torch

    torch.set_num_threads(snakemake.threads)
    run_train_stage(
        {k: snakemake.input[f"flame_{k}"] for k in ("model", "landmarks", "masks")},
        Path(snakemake.output.model).parent,
        snakemake.params.nphm,
        snakemake.params.fit,
        device=select_device(int(snakemake.resources.get("gpu", 0))),
    )
