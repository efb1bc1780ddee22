"""Audio features of a sequence, one row per video frame.

Time convention: video frame ``i`` is the instant ``i / fps`` (the capture's convention,
:mod:`talkhead.capture.export`, :mod:`talkhead.preprocess.video`); feature row ``m`` of a track
with rate ``r`` is the instant ``first_time_s + m / r`` (the centre of its analysis window).
A frame's features are those around its instant: linearly interpolated there, or the mean of
the rows within half a frame period of it (:func:`align_to_frames`).

Exactly ``T`` rows, whatever the durations: the number of rows comes from the video, never
from the audio (FaceFormer derived it from the wav2vec2 length and a 3 s clip at 25 fps came
out one frame short, FaceFormer issue #70).

- A last *partial* frame (5.095 s of audio at 25 fps: frame 127 stands at 5.08 s, 15 ms
  before the audio ends) is kept: its instant lies inside the audio, so it gets the features
  there (its ``mean`` window, 5.06-5.10 s, averages the rows it has).
- Frames whose instant lies after the audio (more than one feature step after the last row)
  are *padded*: with the last row (``pad="edge"``) or zeros (``pad="zeros"``), and counted
  (:func:`frame_coverage`). The stage can instead extend the waveform with digital silence
  before the features are computed (``audio_features.pad: silence``).
- Rows after the last frame's window (audio longer than the video) are *cropped*: no frame
  uses them; they are counted too.

The log-mel front end is MeshTalk's (Richard et al. 2021, supplement section 1.1, and its
public ``models/encoders.py``): torchaudio's ``MelSpectrogram(sample_rate=16000, n_fft=2048,
win_length=800, hop_length=160, n_mels=80)`` then ``log(max(x, 1e-10))``. :func:`log_mel`
computes the same with librosa, setting each torchaudio default explicitly: power
spectrogram (``power=2``, not magnitude), HTK mel scale without area normalisation
(``htk=True, norm=None``; librosa's defaults are Slaney and ``"slaney"``), periodic Hann window
of ``win_length`` zero-padded to ``n_fft`` at the centre, centred frames with reflect padding of
``n_fft // 2`` samples at both ends (librosa's default pad mode is ``constant``), 0 Hz to
Nyquist. Hence ``M = 1 + N // hop_length`` rows, row ``m`` centred on sample ``m * hop``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from .feature_config import FeatureConfig
from .wav2vec2 import wav2vec2_features

__all__ = [
    "ALIGN_MODES",
    "PAD_VALUES",
    "Coverage",
    "align_to_frames",
    "frame_coverage",
    "frame_times",
    "frame_windows",
    "log_mel",
    "log_mel_rate",
    "samples_to_cover",
    "wav2vec2_features",
]

log = logging.getLogger(__name__)

#: Modes of :func:`align_to_frames`.
ALIGN_MODES = ("interpolate", "mean")
#: Paddings of :func:`align_to_frames` and :func:`frame_windows`.
PAD_VALUES = ("edge", "zeros")

#: Slack (seconds) on time comparisons, far below any frame or feature period.
_EPS = 1e-9


def log_mel(audio: np.ndarray, config: FeatureConfig | None = None) -> np.ndarray:
    """MeshTalk's log-mel spectrogram of mono audio.

    Args:
        audio: (N,) samples at ``config.sample_rate`` (16 kHz by default), float, N >= 1.
        config: the ``audio_features`` section (default: MeshTalk's numbers).

    Returns:
        (M, n_mels) float32 natural log of the mel power, floored at ``config.log_floor``;
        ``M = 1 + N // hop_length``, row ``m`` centred on sample ``m * hop_length`` (rate
        :func:`log_mel_rate`, first row at 0 s).

    Raises:
        ValueError: ``audio`` is not a non-empty 1-D array.
    """
    import librosa

    cfg = config or FeatureConfig()
    y = np.asarray(audio, dtype=np.float32)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"log_mel: audio must be (N,) with N >= 1, got shape {y.shape}")
    if y.size < 2:  # reflect padding needs two samples
        y = np.pad(y, (0, 1))
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window="hann",
        center=True,
        pad_mode="reflect",
        power=2.0,
        n_mels=cfg.n_mels,
        fmin=0.0,
        fmax=cfg.sample_rate / 2,
        htk=True,
        norm=None,
    )
    rows = 1 + np.asarray(audio).size // cfg.hop_length
    return np.log(np.maximum(mel.T[:rows], cfg.log_floor)).astype(np.float32)


def log_mel_rate(config: FeatureConfig | None = None) -> float:
    """Rows per second of :func:`log_mel` (100 Hz for MeshTalk's 160-sample hop at 16 kHz)."""
    cfg = config or FeatureConfig()
    return cfg.sample_rate / cfg.hop_length


def frame_times(n_frames: int, fps: float) -> np.ndarray:
    """(T,) float64 instants of the video frames, ``i / fps`` seconds."""
    if n_frames < 0 or not fps > 0:
        raise ValueError(f"frame_times: need n_frames >= 0 and fps > 0, got {n_frames}, {fps}")
    return np.arange(n_frames, dtype=np.float64) / float(fps)


@dataclass(frozen=True)
class Coverage:
    """How a feature track covers a video's frames (:func:`frame_coverage`).

    Attributes:
        n_frames: T, the video's frames.
        padded_start: frames before the first row (by more than one feature step).
        padded_end: frames after the last row (by more than one feature step): the audio
            ends before them.
        cropped_rows: rows after the last frame's window (audio after the video), unused.
        rows_s: seconds from the first to the last row's instant.
    """

    n_frames: int
    padded_start: int
    padded_end: int
    cropped_rows: int
    rows_s: float

    @property
    def padded(self) -> int:
        """Frames padded at either end."""
        return self.padded_start + self.padded_end


def _row_times(n_rows: int, rate_hz: float, first_time_s: float) -> np.ndarray:
    return first_time_s + np.arange(n_rows, dtype=np.float64) / rate_hz


def frame_coverage(
    n_rows: int, rate_hz: float, n_frames: int, fps: float, first_time_s: float = 0.0
) -> Coverage:
    """Which frames a track of ``n_rows`` rows covers, and which rows no frame uses.

    A frame is covered when its instant lies within one feature step (``1 / rate_hz``) of the
    rows' span ``[first_time_s, first_time_s + (n_rows - 1) / rate_hz]``; a row is cropped when
    its instant is at or after ``(T - 0.5) / fps``, the end of the last frame's window.

    Args:
        n_rows: M, rows of the track (0: every frame is padded).
        rate_hz: rows per second.
        n_frames: T.
        fps: video frame rate.
        first_time_s: instant of row 0 (seconds).
    """
    t = frame_times(n_frames, fps)
    if n_rows == 0:
        return Coverage(n_frames, 0, n_frames, 0, 0.0)
    step = 1.0 / rate_hz
    lo = first_time_s - step - _EPS
    hi = first_time_s + (n_rows - 1) * step + step + _EPS
    rows = _row_times(n_rows, rate_hz, first_time_s)
    cropped = int(np.sum(rows >= (n_frames - 0.5) / fps - _EPS))
    return Coverage(
        n_frames=n_frames,
        padded_start=int(np.sum(t < lo)),
        padded_end=int(np.sum(t > hi)),
        cropped_rows=cropped,
        rows_s=(n_rows - 1) * step,
    )


def _check_track(features: np.ndarray, rate_hz: float, fps: float, pad: str) -> np.ndarray:
    f = np.asarray(features)
    if f.ndim != 2:
        raise ValueError(f"features must be (M, D), got shape {f.shape}")
    if not rate_hz > 0 or not fps > 0:
        raise ValueError(f"feature rate and fps must be > 0, got {rate_hz}, {fps}")
    if pad not in PAD_VALUES:
        raise ValueError(f"pad must be one of {PAD_VALUES}, got {pad!r}")
    return f


def _interpolate(f: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Rows of ``f`` (M, D) at fractional row positions ``u`` (T,), clamped to [0, M - 1]."""
    m = f.shape[0]
    u = np.clip(u, 0.0, m - 1)
    i0 = np.minimum(np.floor(u).astype(np.int64), m - 1)
    i1 = np.minimum(i0 + 1, m - 1)
    w = (u - i0)[:, None]
    return (1.0 - w) * f[i0] + w * f[i1]


def align_to_frames(
    features: np.ndarray,
    feature_rate_hz: float,
    n_frames: int,
    fps: float,
    mode: str = "interpolate",
    pad: str = "edge",
    first_time_s: float = 0.0,
) -> np.ndarray:
    """A feature track resampled to exactly one row per video frame.

    Frame ``i`` stands at ``i / fps``; row ``m`` at ``first_time_s + m / feature_rate_hz``.

    - ``interpolate``: linear interpolation of the rows at the frame's instant (FaceFormer
      interpolates its 50 Hz wav2vec2 features to the video rate the same way);
    - ``mean``: mean of the rows whose instants lie in ``[(i - 0.5) / fps, (i + 0.5) / fps)``
      (each row counts for one frame); a frame with no row inside (features slower than the
      video) takes the interpolated value.

    Frames within one feature step of the rows' span take the nearest row's value at the ends;
    frames further out are padded, with the edge row or zeros (``pad``), and their number is
    logged (see :func:`frame_coverage`, and the module docstring for the last partial frame).
    Rows after the last frame's window are unused (cropped).

    Args:
        features: (M, D) rows, M >= 0 (0 rows: every frame is padded, zeros whatever ``pad``).
        feature_rate_hz: rows per second (100 for MeshTalk's log-mel, 50 for wav2vec2).
        n_frames: T, the video's frame count.
        fps: the video's frame rate.
        mode: ``interpolate`` or ``mean``.
        pad: ``edge`` or ``zeros``.
        first_time_s: instant of row 0 (seconds; 0 for a centred STFT, about 12.5 ms for
            wav2vec2, :func:`talkhead.audio.wav2vec2.wav2vec2_timing`).

    Returns:
        (T, D) float32.

    Raises:
        ValueError: ``features`` not 2-D, a rate <= 0, or an unknown ``mode`` or ``pad``.
    """
    f = _check_track(features, feature_rate_hz, fps, pad)
    if mode not in ALIGN_MODES:
        raise ValueError(f"mode must be one of {ALIGN_MODES}, got {mode!r}")
    m, d = f.shape
    t = frame_times(n_frames, fps)
    if m == 0:
        if n_frames:
            log.warning("no feature rows: all %d frames padded with zeros", n_frames)
        return np.zeros((n_frames, d), np.float32)
    f64 = f.astype(np.float64)
    u = (t - first_time_s) * feature_rate_hz
    out = _interpolate(f64, u)
    if mode == "mean":
        rows = _row_times(m, feature_rate_hz, first_time_s)
        start = np.searchsorted(rows, t - 0.5 / fps - _EPS, side="left")
        stop = np.searchsorted(rows, t + 0.5 / fps - _EPS, side="left")
        csum = np.concatenate([np.zeros((1, d)), np.cumsum(f64, axis=0)])
        count = stop - start
        has = count > 0
        out[has] = (csum[stop[has]] - csum[start[has]]) / count[has, None]
    cov = frame_coverage(m, feature_rate_hz, n_frames, fps, first_time_s)
    if cov.padded:
        # the frames frame_coverage counts as padded; the edge rows are already there
        step = 1.0 / feature_rate_hz
        outside = (t < first_time_s - step - _EPS) | (t > first_time_s + m * step + _EPS)
        if pad == "zeros":
            out[outside] = 0.0
        log.warning(
            "%d of %d video frames lie outside the audio's features (%d at the start, %d at "
            "the end: the rows span %.3f-%.3f s, the frames 0-%.3f s): padded with %s",
            cov.padded,
            n_frames,
            cov.padded_start,
            cov.padded_end,
            first_time_s,
            first_time_s + (m - 1) * step,
            (n_frames - 1) / fps,
            "the edge rows" if pad == "edge" else "zeros",
        )
    if cov.cropped_rows > feature_rate_hz / fps:  # audio longer than the video
        log.info(
            "%d feature rows (%.3f s) after the video's last frame left out",
            cov.cropped_rows,
            cov.cropped_rows / feature_rate_hz,
        )
    return out.astype(np.float32)


def frame_windows(
    features: np.ndarray,
    feature_rate_hz: float,
    n_frames: int,
    fps: float,
    window_s: float,
    pad: str = "edge",
    first_time_s: float = 0.0,
) -> np.ndarray:
    """A window of feature rows centred on each video frame (MeshTalk feeds its audio encoder
    1 s of audio per frame: ``window_s=1.0`` gives 100 log-mel rows).

    Window of frame ``i``: ``K = round(window_s * feature_rate_hz)`` consecutive rows starting
    ``K // 2`` rows before the row nearest to ``i / fps`` (so for even K the centre row is the
    ``K // 2``-th). Rows before the first or after the last are the edge row or zeros.

    Args:
        features: (M, D) rows, M >= 1.
        feature_rate_hz, n_frames, fps, first_time_s: as :func:`align_to_frames`.
        window_s: window length (seconds), > 0.
        pad: ``edge`` or ``zeros``.

    Returns:
        (T, K, D) float32.

    Raises:
        ValueError: as :func:`align_to_frames`, no rows, or a window shorter than one row.
    """
    f = _check_track(features, feature_rate_hz, fps, pad)
    k = int(round(window_s * feature_rate_hz))
    if k < 1:
        raise ValueError(f"window_s {window_s} s is shorter than one feature row")
    m = f.shape[0]
    if m == 0:
        raise ValueError("frame_windows: no feature rows")
    centre = np.rint((frame_times(n_frames, fps) - first_time_s) * feature_rate_hz).astype(np.int64)
    idx = centre[:, None] - k // 2 + np.arange(k)[None, :]
    out = f[np.clip(idx, 0, m - 1)].astype(np.float32)
    if pad == "zeros":
        out[(idx < 0) | (idx >= m)] = 0.0
    return out


def samples_to_cover(n_frames: int, fps: float, sample_rate: int) -> int:
    """Samples of audio that reach the end of the last frame's period, ``ceil(T / fps * sr)``."""
    return int(math.ceil(n_frames / fps * sample_rate - 1e-6))
