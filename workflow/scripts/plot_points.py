"""Draw the fused point cloud and 3D landmarks of one sequence."""

import _bootstrap

from talkhead.io import load_json
from talkhead.logs import log_to
from talkhead.qc.pages import points_qc

with log_to(snakemake.log[0]):
    points_qc(snakemake.input.points, snakemake.output[0], load_json(snakemake.input.metrics))
