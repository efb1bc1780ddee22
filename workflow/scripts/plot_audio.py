"""Draw one sequence's microphone before and after preparation (waveform, spectrogram)."""

from _bootstrap import job_sequence

from talkhead.errors import AudioError
from talkhead.logs import log_to
from talkhead.qc.audio import audio_before_after_qc

with log_to(snakemake.log[0]):
    seq = job_sequence(snakemake)
    if seq.audio_path is None:
        raise AudioError(f"{seq.sequence_dir}: no audio file")
    audio_before_after_qc(
        seq.audio_path,
        snakemake.input.cleaned,
        snakemake.output[0],
        title=f"{seq.subject} / {seq.sequence}: microphone before and after preparation",
    )
