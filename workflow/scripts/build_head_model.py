"""Build the synthetic studio's procedural head model and write it in FLAME's file format."""

import _bootstrap

from talkhead.logs import log_to
from talkhead.synth.config import StudioConfig
from talkhead.synth.studio import write_head_model_for

with log_to(snakemake.log[0]):
    write_head_model_for(
        StudioConfig.from_workflow(snakemake.params.synthetic), snakemake.output.model
    )
