"""Depth + normal maps of every camera and frame of one sequence, and their metrics."""

import _bootstrap

from talkhead.capture import open_sequence
from talkhead.depth.stage import run_depth_stage
from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    import torch

    torch.set_num_threads(snakemake.threads)
    seq = open_sequence(
        snakemake.params.root,
        snakemake.wildcards.subject,
        snakemake.wildcards.sequence,
        fps=snakemake.params.fps,
        validate=False,
    )
    run_depth_stage(
        seq,
        snakemake.output.frames,
        snakemake.params.depth,
        snakemake.output.metrics,
        gt_dir=snakemake.input.ground_truth[0] if snakemake.input.ground_truth else None,
        face_labels=tuple(snakemake.params.backproject["face_labels"]),
    )
