"""Depth + normal maps of every camera and frame of one sequence, and their metrics."""

from _bootstrap import job_ground_truth, job_sequence

from talkhead.depth.stage import run_depth_stage
from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    import torch

    torch.set_num_threads(snakemake.threads)
    seq = job_sequence(snakemake)
    run_depth_stage(
        seq,
        snakemake.output.frames,
        snakemake.params.depth,
        snakemake.output.metrics,
        gt_dir=job_ground_truth(snakemake),
        face_labels=tuple(snakemake.params.backproject["face_labels"]),
    )
