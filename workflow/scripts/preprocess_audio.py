"""The capture's audio from the sample sheet's audio file (or a video's audio stream), for a
sequence without its own; a sequence with neither gets none (the audio stage says so)."""

from pathlib import Path

from _bootstrap import job_sequence

from talkhead.config import from_mapping
from talkhead.logs import log_to
from talkhead.preprocess.config import PreprocessConfig
from talkhead.preprocess.stage import run_audio_stage, save_product_metrics

with log_to(snakemake.log[0]) as log:
    out = Path(snakemake.output[0])
    cfg = from_mapping(PreprocessConfig, snakemake.params.preprocess, "preprocess")
    seq = job_sequence(snakemake, overlays=False)
    source = snakemake.input.get("audio")
    if source:
        metrics = run_audio_stage(
            source,
            snakemake.params.offset_s,
            out,
            cfg.audio,
            capture_has_audio=seq.audio_path is not None,
        )
    elif seq.audio_path is not None:
        metrics = {"skipped": True, "reason": "the capture ships audio"}
    else:
        metrics = {
            "skipped": True,
            "reason": "no audio: the sheet names none, the capture has none",
        }
        log.warning("%s/%s: no audio file (sample sheet column 'audio')", seq.subject, seq.sequence)
    save_product_metrics(out, metrics)
    log.info("audio: %s", metrics)
