"""Build the synthetic studio's procedural head model and write it in FLAME's file format."""

import _bootstrap

from talkhead.config import from_mapping
from talkhead.logs import log_to
from talkhead.synth.config import StudioConfig
from talkhead.synth.studio import write_head_model_for

with log_to(snakemake.log[0]):
    write_head_model_for(
        from_mapping(StudioConfig, snakemake.params.synthetic, "synthetic"), snakemake.output.model
    )
