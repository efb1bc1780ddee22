"""Depth of one sequence against its ground truth: evaluation.json and the error figure."""

from _bootstrap import job_sequence

from talkhead.evaluation.stage import run_evaluate_depth
from talkhead.logs import log_to
from talkhead.qc.pages import depth_error_qc

with log_to(snakemake.log[0]):
    seq = job_sequence(snakemake)
    evaluation, view = run_evaluate_depth(
        seq,
        snakemake.input.frames,
        snakemake.input.ground_truth,
        snakemake.output.evaluation,
        face_labels=snakemake.params.face_mask["labels"],
        n_cameras=snakemake.params.qc["n_cameras"],
    )
    depth_error_qc(seq, view, snakemake.output.errors, evaluation)
