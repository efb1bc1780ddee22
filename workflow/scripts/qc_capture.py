"""Draw the capture QC page of one sequence: camera rig, contact sheet, microphone."""

import _bootstrap

from talkhead.capture import open_sequence
from talkhead.logs import log_to
from talkhead.report import capture_qc

with log_to(snakemake.log[0]):
    seq = open_sequence(
        snakemake.params.root,
        snakemake.wildcards.subject,
        snakemake.wildcards.sequence,
        fps=snakemake.params.fps,
        validate=False,
    )
    capture_qc(
        seq,
        snakemake.output.rig,
        snakemake.output.contact_sheet,
        snakemake.output.audio,
        n_frames=snakemake.params.qc["n_frames"],
        n_cameras=snakemake.params.qc["n_cameras"],
    )
