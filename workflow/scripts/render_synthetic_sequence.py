"""Record one sequence of the synthetic studio: the capture tree and its ground truth."""

from pathlib import Path

import _bootstrap

from talkhead.config import from_mapping
from talkhead.logs import log_to
from talkhead.synth.config import StudioConfig
from talkhead.synth.studio import render_sequence

with log_to(snakemake.log[0]):
    capture_root = Path(snakemake.output.sequence).parents[2]
    gt_root = Path(snakemake.output.ground_truth).parents[1]
    render_sequence(
        snakemake.input.flame_model,
        capture_root,
        gt_root,
        snakemake.wildcards.subject,
        snakemake.wildcards.sequence,
        from_mapping(StudioConfig, snakemake.params.synthetic, "synthetic"),
        threads=snakemake.threads,
        landmarks_path=snakemake.input.flame_landmarks,
        masks_path=snakemake.input.flame_masks,
    )
