"""One identity code per subject, fitted to frames of all its sequences."""

import _bootstrap

from talkhead.flame.stage import select_device
from talkhead.logs import log_to
from talkhead.nphm.stage import run_fit_identity_stage

with log_to(snakemake.log[0]):
    import torch

    torch.set_num_threads(snakemake.threads)
    run_fit_identity_stage(
        list(zip(snakemake.input.points, snakemake.input.flame, strict=True)),
        snakemake.input.model,
        {k: snakemake.input[f"flame_{k}"] for k in ("model", "landmarks", "masks")},
        snakemake.output.identity,
        snakemake.params.fit,
        device=select_device(int(snakemake.resources.get("gpu", 0))),
    )
