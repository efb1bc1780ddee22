"""QC figure of a microphone recording: waveform envelope, levels and spectrogram."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..io import PathLike
from .draw import new_figure, save_figure

if TYPE_CHECKING:
    pass


def audio_levels(audio: np.ndarray) -> dict[str, float]:
    """Peak and RMS level in dBFS (-inf for silence) and the fraction of clipped samples
    (|x| >= 0.999) of float audio in [-1, 1] (N,) or (N, channels)."""
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.size == 0:
        return {"peak_dbfs": -math.inf, "rms_dbfs": -math.inf, "clipped_fraction": 0.0}
    peak = float(np.max(np.abs(x)))
    rms = float(np.sqrt(np.mean(x * x)))

    def db(v: float) -> float:
        return 20 * math.log10(v) if v > 0 else -math.inf

    return {
        "peak_dbfs": db(peak),
        "rms_dbfs": db(rms),
        "clipped_fraction": float(np.mean(np.abs(x) >= 0.999)),
    }


def _waveform_envelope(
    x: np.ndarray, sr: int, max_points: int = 4000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t, lo, hi): per-bin min and max of ``x`` for plotting long signals."""
    k = max(1, math.ceil(x.size / max_points))
    n = x.size // k * k
    if n == 0:
        t = np.arange(x.size) / sr
        return t, x, x
    blocks = x[:n].reshape(-1, k)
    t = (np.arange(blocks.shape[0]) * k + k / 2) / sr
    return t, blocks.min(axis=1), blocks.max(axis=1)


def plot_audio(
    audio: np.ndarray,
    sr: int,
    path: PathLike,
    title: str | None = None,
    max_freq: float = 8000.0,
    dynamic_range_db: float = 80.0,
    figsize: tuple[float, float] = (10.0, 5.5),
    dpi: float = 100,
) -> Path:
    """Waveform (min/max envelope) over a spectrogram (Hann STFT, ~32 ms windows, dB, 0 to
    ``max_freq`` Hz), with peak and RMS levels in dBFS in the title.

    Args:
        audio: (N,) or (N, channels) float in [-1, 1]; sr: sample rate in Hz.
        path: output PNG (``figsize`` x ``dpi`` pixels).
    """
    from scipy.signal import spectrogram

    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    x = np.nan_to_num(x)
    lv = audio_levels(x)
    duration = x.size / sr
    fig = new_figure(figsize, dpi)
    ax_w, ax_s = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (1, 1.6)})
    t, lo, hi = _waveform_envelope(x, sr)
    ax_w.fill_between(t, lo, hi, color="tab:blue", lw=0.5, step="mid")
    peak = max(float(np.max(np.abs(x), initial=0.0)), 1e-4)
    ax_w.set_ylim(-1.1 * peak, 1.1 * peak)
    if peak > 0.5:
        for y in (-1, 1):
            ax_w.axhline(y, color="tab:red", lw=0.6, ls=":")
    ax_w.set_ylabel("amplitude (FS)", fontsize=8)
    ax_w.tick_params(labelsize=7)
    ax_w.grid(True, lw=0.3, alpha=0.5)
    nyq = sr / 2
    fmax = min(max_freq, nyq)
    nperseg = max(16, min(x.size, 2 ** round(math.log2(max(16, 0.032 * sr)))))
    if x.size >= 16:
        hop = min(nperseg, max(nperseg // 4, math.ceil(x.size / 4000)))
        f, ts, S = spectrogram(
            x,
            fs=sr,
            window="hann",
            nperseg=nperseg,
            noverlap=nperseg - hop,
            scaling="density",
            mode="psd",
        )
        keep = f <= fmax
        S_db = 10 * np.log10(S[keep] + 1e-20)
        vmax = float(S_db.max())
        im = ax_s.imshow(
            S_db,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=vmax - dynamic_range_db,
            vmax=vmax,
            extent=(0.0, duration, 0.0, float(f[keep][-1])),
            interpolation="nearest",
        )
        cb = fig.colorbar(im, ax=ax_s, pad=0.01)
        cb.set_label("power (dB re 1 FS²/Hz)", fontsize=7)
        cb.ax.tick_params(labelsize=7)
    ax_s.set_ylim(0, fmax)
    ax_s.set_xlim(0, max(duration, 1e-3))
    ax_s.set_ylabel("frequency (Hz)", fontsize=8)
    ax_s.set_xlabel("time (s)", fontsize=8)
    ax_s.tick_params(labelsize=7)

    def fmt(v: float) -> str:
        return f"{v:.1f}" if math.isfinite(v) else "-inf"

    head = f"{title}: " if title else ""
    levels = (
        f"peak {fmt(lv['peak_dbfs'])} dBFS, RMS {fmt(lv['rms_dbfs'])} dBFS, "
        f"{duration:.2f} s at {sr} Hz"
    )
    if lv["clipped_fraction"] > 0:
        levels += f", {100 * lv['clipped_fraction']:.2f}% clipped"
    fig.suptitle(head + levels, fontsize=10)
    return save_figure(fig, path)


def spectrogram_db(
    x: np.ndarray, sr: int, max_freq: float = 8000.0, max_columns: int = 2000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Power spectrogram of (N,) in dB re its loudest bin: Hann windows of ~32 ms, hop chosen to
    give at most ``max_columns`` columns, rows up to ``max_freq`` Hz.

    Returns:
        f (F,) Hz, t (K,) seconds, S (F, K) dB (max 0; NaN-free, floor -200 dB).
    """
    from scipy.signal import spectrogram

    x = np.nan_to_num(np.asarray(x, dtype=np.float64))
    nperseg = max(16, min(x.size, 2 ** round(math.log2(max(16, 0.032 * sr)))))
    if x.size < 16:
        return np.zeros(0), np.zeros(0), np.zeros((0, 0))
    hop = min(nperseg, max(nperseg // 4, math.ceil(x.size / max_columns)))
    f, t, S = spectrogram(
        x, fs=sr, window="hann", nperseg=nperseg, noverlap=nperseg - hop, mode="psd"
    )
    keep = f <= min(max_freq, sr / 2)
    S = S[keep]
    S_db = 10 * np.log10(np.maximum(S / max(float(S.max()), 1e-30), 1e-20))
    return f[keep], t, S_db


def plot_audio_before_after(
    before: np.ndarray,
    sr_before: int,
    after: np.ndarray,
    sr_after: int,
    path: PathLike,
    title: str | None = None,
    max_freq: float = 8000.0,
    dynamic_range_db: float = 80.0,
    figsize: tuple[float, float] = (12.0, 6.0),
    dpi: float = 100,
) -> Path:
    """The raw recording (left) and the cleaned audio (right): waveform envelopes on one
    full-scale axis (the gain shows), then spectrograms in dB re each one's loudest bin over
    the same ``dynamic_range_db`` (the noise floor removed shows as darker background), with
    peak and RMS levels in each panel's title.

    Args:
        before, after: (N,) or (N, channels) float at full scale 1; their rates in Hz.
        path: output PNG (``figsize`` x ``dpi`` pixels).
    """
    fig = new_figure(figsize, dpi)
    axes = fig.subplots(2, 2, gridspec_kw={"height_ratios": (1, 1.6)}, sharex="col")

    def fmt(v: float) -> str:
        return f"{v:.1f}" if math.isfinite(v) else "-inf"

    im = None
    for col, (name, audio, sr) in enumerate(
        (("before", before, sr_before), ("after", after, sr_after))
    ):
        x = np.asarray(audio, dtype=np.float64)
        x = np.nan_to_num(x.mean(axis=1) if x.ndim == 2 else x)
        lv = audio_levels(x)
        duration = x.size / sr
        ax_w, ax_s = axes[0, col], axes[1, col]
        t, lo, hi = _waveform_envelope(x, sr)
        ax_w.fill_between(t, lo, hi, color="tab:blue", lw=0.5, step="mid")
        ax_w.set_ylim(-1.05, 1.05)
        for y in (-1, 1):
            ax_w.axhline(y, color="tab:red", lw=0.6, ls=":")
        ax_w.set_title(
            f"{name}: peak {fmt(lv['peak_dbfs'])} dBFS, RMS {fmt(lv['rms_dbfs'])} dBFS, {sr} Hz",
            fontsize=9,
        )
        ax_w.tick_params(labelsize=7)
        ax_w.grid(True, lw=0.3, alpha=0.5)
        f, ts, S = spectrogram_db(x, sr, max_freq)
        if S.size:
            im = ax_s.imshow(
                S,
                origin="lower",
                aspect="auto",
                cmap="magma",
                vmin=-dynamic_range_db,
                vmax=0.0,
                extent=(0.0, duration, 0.0, float(f[-1])),
                interpolation="nearest",
            )
        ax_s.set_ylim(0, min(max_freq, sr / 2))
        ax_s.set_xlim(0, max(duration, 1e-3))
        ax_s.set_xlabel("time (s)", fontsize=8)
        ax_s.tick_params(labelsize=7)
    axes[0, 0].set_ylabel("amplitude (FS)", fontsize=8)
    axes[1, 0].set_ylabel("frequency (Hz)", fontsize=8)
    if im is not None:
        cb = fig.colorbar(im, ax=axes[1, :].tolist(), pad=0.01)
        cb.set_label("power (dB re loudest bin)", fontsize=7)
        cb.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def audio_before_after_qc(
    raw_path: PathLike, cleaned_path: PathLike, out: PathLike, title: str | None = None
) -> Path:
    """:func:`plot_audio_before_after` of a raw recording file and its cleaned wav.

    Raises:
        AudioError: a file is missing or unreadable.
    """
    from ..audio.io import read_audio

    raw, sr_raw = read_audio(raw_path)
    cleaned, sr_cleaned = read_audio(cleaned_path)
    return plot_audio_before_after(raw, sr_raw, cleaned, sr_cleaned, out, title=title)
