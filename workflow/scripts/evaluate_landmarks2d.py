"""MediaPipe's 2D landmarks against the true projected landmarks (capture with ground truth)."""

from _bootstrap import job_sequence

from talkhead.evaluation.landmarks2d import run_evaluate_landmarks2d
from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    run_evaluate_landmarks2d(
        job_sequence(snakemake, overlays=False),
        snakemake.input.landmarks,
        snakemake.input.ground_truth,
        snakemake.output.evaluation,
    )
