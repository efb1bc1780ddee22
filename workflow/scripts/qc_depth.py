"""Draw the depth QC figures of one sequence: maps next to the images, and the error map."""

from _bootstrap import job_ground_truth, job_sequence

from talkhead.io import load_json
from talkhead.logs import log_to
from talkhead.qc.pages import depth_qc

with log_to(snakemake.log[0]):
    seq = job_sequence(snakemake)
    depth_qc(
        seq,
        snakemake.input.frames,
        snakemake.output.maps,
        snakemake.output.errors,
        load_json(snakemake.input.metrics),
        gt_dir=job_ground_truth(snakemake),
        n_cameras=snakemake.params.qc["n_cameras"],
        face_labels=snakemake.params.backproject["face_labels"],
    )
