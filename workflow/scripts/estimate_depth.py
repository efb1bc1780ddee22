"""Depth + normal maps of every camera and frame of one sequence, and the stage's metrics."""

from _bootstrap import job_sequence

from talkhead.depth.stage import run_depth_stage
from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    import torch

    torch.set_num_threads(snakemake.threads)
    run_depth_stage(
        job_sequence(snakemake),
        snakemake.output.frames,
        snakemake.params.depth,
        snakemake.output.metrics,
        face_mask=snakemake.params.face_mask,
        qc=snakemake.params.floors,
        timing_path=snakemake.output.timing,
    )
