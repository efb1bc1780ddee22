"""Back-project one sequence's depth maps to per-frame point clouds and fused 3D landmarks."""

import _bootstrap

from talkhead.backproject import run_backproject_stage
from talkhead.capture import open_sequence
from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    seq = open_sequence(
        snakemake.params.root,
        snakemake.wildcards.subject,
        snakemake.wildcards.sequence,
        fps=snakemake.params.fps,
        validate=False,
    )
    run_backproject_stage(
        seq,
        snakemake.input.frames,
        snakemake.output.points,
        snakemake.output.metrics,
        snakemake.params.backproject,
        gt_dir=snakemake.input.ground_truth[0] if snakemake.input.ground_truth else None,
    )
