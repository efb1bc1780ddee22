"""Similarity of the FLAME template's landmarks to one sequence's 3D landmarks."""

import _bootstrap

from talkhead.flame.stage import run_align_stage
from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    run_align_stage(
        snakemake.input.points,
        {k: snakemake.input[f"flame_{k}"] for k in ("model", "landmarks", "masks")},
        snakemake.output.alignment,
        snakemake.params.align,
    )
