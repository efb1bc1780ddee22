"""Draw the capture QC page of one sequence: camera rig, contact sheet, microphone."""

from _bootstrap import job_sequence

from talkhead.logs import log_to
from talkhead.qc.pages import capture_qc

with log_to(snakemake.log[0]):
    seq = job_sequence(snakemake)
    capture_qc(
        seq,
        snakemake.output.rig,
        snakemake.output.contact_sheet,
        snakemake.output.audio,
        n_frames=snakemake.params.qc["n_frames"],
        n_cameras=snakemake.params.qc["n_cameras"],
    )
