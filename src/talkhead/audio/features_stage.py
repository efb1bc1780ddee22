"""The audio-features stage of one sequence: the cleaned audio to features with exactly one
row per video frame, in ``results/audio/<subject>/<sequence>/features/``:

- ``logmel.npy``: (T, n_mels) float32, MeshTalk's log-mel spectrogram aligned to the frames;
- ``logmel_windows.npy``: (T, K, n_mels) float32, K rows centred on each frame, when
  ``audio_features.context_window_s`` is set (MeshTalk: 1 s, K = 100);
- ``wav2vec2.npy``: (T, D) float32, wav2vec2 hidden states, when
  ``audio_features.wav2vec2_model`` names a local model directory;
- ``meta.json``: T, fps, the durations, the frames whose instant is after the end of the
  audio, and per feature its file, shape, rate, first instant, how many frames were padded
  (``pad: edge``) and rows cropped (the same bytes on every run).

The folder is written as ``.features.partial`` beside it and renamed once complete, so it is
never half-written. How frames and rows are matched: :mod:`talkhead.audio.features`.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..config import from_mapping
from ..errors import CaptureError
from ..io import PathLike, atomic_path, read_wav, save_json
from .feature_config import FeatureConfig
from .features import (
    align_to_frames,
    frame_coverage,
    frame_times,
    frame_windows,
    log_mel,
    log_mel_rate,
    samples_to_cover,
)

__all__ = ["run_audio_features_stage"]

log = logging.getLogger(__name__)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, np.ascontiguousarray(array, dtype=np.float32))


def _resample(audio: np.ndarray, rate: int, target: int, what: PathLike) -> np.ndarray:
    if rate == target:
        return audio
    import librosa

    log.info("%s: resampling %d Hz -> %d Hz (soxr)", what, rate, target)
    return librosa.resample(audio, orig_sr=rate, target_sr=target, res_type="soxr_hq")


def _track(
    name: str,
    features: np.ndarray,
    rate_hz: float,
    first_time_s: float,
    n_frames: int,
    fps: float,
    cfg: FeatureConfig,
    out: Path,
    **extra: Any,
) -> dict[str, Any]:
    """Align one track, write ``<name>.npy`` and return its meta.json entry."""
    pad = "edge" if cfg.pad == "edge" else "zeros"
    aligned = align_to_frames(
        features, rate_hz, n_frames, fps, cfg.alignment, pad=pad, first_time_s=first_time_s
    )
    _save_npy(out / f"{name}.npy", aligned)
    cov = frame_coverage(features.shape[0], rate_hz, n_frames, fps, first_time_s)
    return {
        "file": f"{name}.npy",
        "shape": list(aligned.shape),
        "dim": int(features.shape[1]),
        "rate_hz": rate_hz,
        "first_time_s": first_time_s,
        "rows": int(features.shape[0]),
        "padded_frames": cov.padded,
        "cropped_rows": cov.cropped_rows,
        "cropped_s": cov.cropped_rows / rate_hz,
        **extra,
    }


def run_audio_features_stage(
    audio_wav: PathLike,
    n_frames: int,
    fps: float,
    out_dir: PathLike,
    settings: Mapping[str, Any] | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Features of one sequence's audio, one row per video frame, into ``out_dir``.

    Args:
        audio_wav: the cleaned audio (``results/audio/<subject>/<sequence>/cleaned_audio.wav``);
            mono, resampled to ``audio_features.sample_rate`` if it is not at that rate.
        n_frames: T, the video's frames (``capture.json``'s ``n_frames``).
        fps: the video's frame rate (``capture.json``'s ``fps``).
        out_dir: the features folder (``.../features``), replaced as a whole.
        settings: the ``audio_features`` config section (:class:`FeatureConfig`; missing keys
            take their defaults).
        device: torch device for wav2vec2 (default: CUDA when available).

    Returns:
        The meta.json written.

    Raises:
        CaptureError: unreadable or empty audio, T < 1 or fps <= 0, or audio shorter than the
            video by more than ``audio_features.max_pad_s``.
        ModelFileError: ``audio_features.wav2vec2_model`` set to a missing or incomplete
            directory (before anything is computed).
        ConfigError: invalid settings.
    """
    cfg = from_mapping(FeatureConfig, settings, "audio_features")
    audio_wav, out_dir = Path(audio_wav), Path(out_dir)
    if n_frames < 1 or not (math.isfinite(fps) and fps > 0):
        raise CaptureError(f"{audio_wav}: the video has {n_frames} frames at {fps} fps")
    if cfg.wav2vec2_model:
        from .wav2vec2 import check_model_dir

        check_model_dir(cfg.wav2vec2_model)  # fail before the work, not after
    try:
        audio, rate = read_wav(audio_wav)
    except (RuntimeError, OSError) as exc:
        raise CaptureError(f"{audio_wav}: unreadable audio ({exc})") from None
    if audio.size == 0:
        raise CaptureError(f"{audio_wav}: no samples")
    audio = _resample(audio, rate, cfg.sample_rate, audio_wav)
    sr = cfg.sample_rate
    audio_s, video_s = audio.size / sr, n_frames / fps
    short_s = (n_frames - 1) / fps - audio_s
    if short_s > cfg.max_pad_s:
        raise CaptureError(
            f"{audio_wav}: {audio_s:.3f} s of audio for {n_frames} frames at {fps:g} fps "
            f"({video_s:.3f} s): the last {short_s:.3f} s of video have no audio, more than "
            f"audio_features.max_pad_s ({cfg.max_pad_s:g} s); wrong file, or a sample sheet "
            "audio_offset_s that skips too much?"
        )
    silence = 0
    if cfg.pad == "silence":
        silence = max(0, samples_to_cover(n_frames, fps, sr) - audio.size)
        if silence:
            log.info("audio extended by %d samples of silence to the video's end", silence)
            audio = np.concatenate([audio, np.zeros(silence, audio.dtype)])

    partial = out_dir.with_name(f".{out_dir.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        mel = log_mel(audio, cfg)
        mel_rate = log_mel_rate(cfg)
        tracks = {"logmel": _track("logmel", mel, mel_rate, 0.0, n_frames, fps, cfg, partial)}
        if cfg.context_window_s > 0:
            pad = "edge" if cfg.pad == "edge" else "zeros"
            windows = frame_windows(mel, mel_rate, n_frames, fps, cfg.context_window_s, pad)
            _save_npy(partial / "logmel_windows.npy", windows)
            tracks["logmel_windows"] = {
                "file": "logmel_windows.npy",
                "shape": list(windows.shape),
                "window_s": cfg.context_window_s,
                "rows_per_window": int(windows.shape[1]),
            }
        if cfg.wav2vec2_model:
            tracks["wav2vec2"] = _wav2vec2_track(audio, sr, n_frames, fps, cfg, partial, device)
        meta = {
            "n_frames": n_frames,
            "fps": fps,
            "sample_rate": sr,
            "audio_s": audio_s,
            "video_s": video_s,
            "alignment": cfg.alignment,
            "pad": cfg.pad,
            "frames_after_audio": int(np.sum(frame_times(n_frames, fps) >= audio_s)),
            "silence_samples_added": silence,
            "features": tracks,
        }
        save_json(partial / "meta.json", meta)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        partial.rename(out_dir)
    finally:
        if partial.exists():
            shutil.rmtree(partial)
    log.info(
        "audio features of %s: %d frames at %g fps from %.3f s of audio; %s",
        audio_wav,
        n_frames,
        fps,
        audio_s,
        ", ".join(f"{k} {v['shape']}" for k, v in tracks.items()),
    )
    return meta


def _wav2vec2_track(
    audio: np.ndarray,
    sr: int,
    n_frames: int,
    fps: float,
    cfg: FeatureConfig,
    out: Path,
    device: str | None,
) -> dict[str, Any]:
    from .wav2vec2 import load_wav2vec2, wav2vec2_hidden_states

    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    encoder = load_wav2vec2(cfg.wav2vec2_model, device)
    x = _resample(audio, sr, encoder.sample_rate, "audio for wav2vec2")
    states = wav2vec2_hidden_states(encoder, x, cfg.wav2vec2_layer)
    layer = cfg.wav2vec2_layer % (encoder.n_layers + 1)
    return _track(
        "wav2vec2",
        states,
        encoder.rate_hz,
        encoder.first_time_s,
        n_frames,
        fps,
        cfg,
        out,
        model=str(encoder.path),
        layer=layer,
    )
