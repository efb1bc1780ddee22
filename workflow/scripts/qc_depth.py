"""Draw the depth QC figures of one sequence: maps next to the images, and the error map."""

import _bootstrap

from talkhead.capture import open_sequence
from talkhead.io import load_json
from talkhead.logs import log_to
from talkhead.report import depth_qc

with log_to(snakemake.log[0]):
    seq = open_sequence(
        snakemake.params.root,
        snakemake.wildcards.subject,
        snakemake.wildcards.sequence,
        fps=snakemake.params.fps,
        validate=False,
    )
    depth_qc(
        seq,
        snakemake.input.frames,
        snakemake.output.maps,
        snakemake.output.errors,
        load_json(snakemake.input.metrics),
        gt_dir=snakemake.input.ground_truth[0] if snakemake.input.ground_truth else None,
        n_cameras=snakemake.params.qc["n_cameras"],
        face_labels=snakemake.params.backproject["face_labels"],
    )
