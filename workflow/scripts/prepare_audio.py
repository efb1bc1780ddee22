"""Prepare one sequence's microphone: 16 kHz mono, +20 dB without clipping, denoised."""

from _bootstrap import job_sequence

from talkhead.audio.stage import run_prepare_audio_stage
from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    run_prepare_audio_stage(
        job_sequence(snakemake),
        snakemake.output.audio,
        snakemake.output.metrics,
        snakemake.params.audio,
    )
