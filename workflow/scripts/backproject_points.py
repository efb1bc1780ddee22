"""Back-project one sequence's depth maps to per-frame point clouds and fused 3D landmarks."""

from _bootstrap import job_sequence

from talkhead.logs import log_to
from talkhead.points.stage import run_backproject_stage

with log_to(snakemake.log[0]):
    run_backproject_stage(
        job_sequence(snakemake),
        snakemake.input.frames,
        snakemake.output.points,
        snakemake.output.metrics,
        snakemake.params.backproject,
        face_mask_settings=snakemake.params.face_mask,
        qc=snakemake.params.floors,
    )
