"""Back-projected points and 3D landmarks of one sequence against its ground truth."""

import _bootstrap

from talkhead.evaluation.stage import run_evaluate_points
from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    run_evaluate_points(
        snakemake.input.points, snakemake.input.ground_truth, snakemake.output.evaluation
    )
