"""Write one synthetic subject's camera calibration (camera_params.json)."""

from pathlib import Path

import _bootstrap

from talkhead.logs import log_to
from talkhead.synth.config import StudioConfig
from talkhead.synth.studio import write_rig

with log_to(snakemake.log[0]):
    cfg = StudioConfig.from_workflow(snakemake.params.synthetic)
    write_rig(Path(snakemake.output[0]).parent, cfg, snakemake.wildcards.subject)
