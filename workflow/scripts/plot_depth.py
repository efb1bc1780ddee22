"""Draw the depth QC figure of one sequence: depth, normal and confidence maps beside the
images."""

from _bootstrap import job_sequence

from talkhead.io import load_json
from talkhead.logs import log_to
from talkhead.qc.pages import depth_qc

with log_to(snakemake.log[0]):
    depth_qc(
        job_sequence(snakemake),
        snakemake.input.frames,
        snakemake.output.maps,
        load_json(snakemake.input.metrics),
        n_cameras=snakemake.params.qc["n_cameras"],
    )
