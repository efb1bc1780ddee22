"""The audio stage's runners: the only place of audio/ that reads and writes files.

- :func:`run_prepare_audio_stage`: a capture sequence's microphone -> ``cleaned_audio.wav``
  (16 kHz mono) and ``metrics.json`` under ``results/audio/<subject>/<sequence>/``;
- :func:`clean_audio_file`: the same chain on one file (``talkhead clean-audio IN OUT``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..config import from_mapping
from ..errors import AudioError
from ..io import PathLike, save_metrics
from .config import AudioConfig
from .io import read_audio, write_audio
from .prepare import PreparedAudio, prepare_audio

if TYPE_CHECKING:
    from ..capture.sequence import CaptureSequence

__all__ = ["clean_audio_file", "run_prepare_audio_stage"]

log = logging.getLogger(__name__)


def _config(settings: AudioConfig | Mapping[str, Any] | None) -> AudioConfig:
    if isinstance(settings, AudioConfig):
        return settings
    return from_mapping(AudioConfig, settings, "audio")


def clean_audio_file(
    source: PathLike,
    out: PathLike,
    settings: AudioConfig | Mapping[str, Any] | None = None,
    video_duration_s: float | None = None,
    frame_period_s: float | None = None,
) -> PreparedAudio:
    """Read ``source``, prepare it (:func:`~talkhead.audio.prepare.prepare_audio`) and write the
    wav ``out`` atomically (``audio.output_subtype``).

    Raises:
        AudioError: unreadable, silent, too short or mismatched input (naming ``source``).
        ConfigError: a bad ``settings`` mapping.
    """
    cfg = _config(settings)
    audio, sr = read_audio(source)
    prepared = prepare_audio(
        audio,
        sr,
        cfg,
        str(source),
        video_duration_s=video_duration_s,
        frame_period_s=frame_period_s,
    )
    write_audio(out, prepared.audio, prepared.sample_rate, cfg.output_subtype)
    return prepared


def run_prepare_audio_stage(
    seq: CaptureSequence,
    out_audio: PathLike,
    out_metrics: PathLike,
    settings: AudioConfig | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Prepare one sequence's microphone track.

    The video's duration is the sequence's frames over its frame rate; audio longer or shorter
    than that beyond ``audio.length_tolerance_s`` fails or warns, audio shorter than one frame
    is refused.

    Args:
        seq: the capture sequence (its ``audio_path``: the capture's own file or the preprocess
            stage's, from the sample sheet).
        out_audio: ``cleaned_audio.wav``.
        out_metrics: ``metrics.json`` (levels, SNR estimates, gain, clipping, duration).
        settings: the ``audio`` section.

    Returns:
        The metrics written.

    Raises:
        AudioError: the sequence has no audio file, or as :func:`clean_audio_file`.
    """
    cfg = _config(settings)
    if seq.audio_path is None:
        raise AudioError(
            f"{seq.sequence_dir}: {seq.subject}/{seq.sequence} has no audio file "
            "(audio/audio_recording.<wav|flac|ogg|mp3|m4a|...>, or the sample sheet's audio "
            "column)"
        )
    n_frames = seq.n_frames
    video_s = n_frames / seq.fps if n_frames and seq.fps else None
    frame_s = 1.0 / seq.fps if seq.fps else None
    prepared = clean_audio_file(seq.audio_path, out_audio, cfg, video_s, frame_s)
    metrics = {"subject": seq.subject, "sequence": seq.sequence, **prepared.metrics}
    save_metrics(out_metrics, metrics)
    log.info(
        "%s/%s: %.2f s, %s -> %s dBFS peak, %s -> %s LUFS, SNR estimate %.1f -> %.1f dB",
        seq.subject,
        seq.sequence,
        metrics["duration_s"],
        f"{metrics['peak_dbfs_before']:.1f}",
        f"{metrics['peak_dbfs_after']:.1f}",
        f"{metrics['loudness_lufs_before']:.1f}",
        f"{metrics['loudness_lufs_after']:.1f}",
        metrics["snr_estimate_db_before"],
        metrics["snr_estimate_db_after"],
    )
    return metrics
