"""Write one synthetic subject's camera calibration (camera_params.json)."""

from pathlib import Path

import _bootstrap

from talkhead.config import from_mapping
from talkhead.logs import log_to
from talkhead.synth.config import StudioConfig
from talkhead.synth.studio import write_rig

with log_to(snakemake.log[0]):
    cfg = from_mapping(StudioConfig, snakemake.params.synthetic, "synthetic")
    write_rig(Path(snakemake.output[0]).parent, cfg, snakemake.wildcards.subject)
