"""SI-SDR of one sequence's raw and cleaned audio against the ground truth's noise-free
microphone speech and its dry speech."""

from _bootstrap import job_sequence

from talkhead.evaluation.audio import run_evaluate_audio
from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    run_evaluate_audio(
        job_sequence(snakemake).audio_path,
        snakemake.input.cleaned,
        snakemake.input.ground_truth,
        snakemake.output.evaluation,
    )
