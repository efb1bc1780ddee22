"""Audio preparation as pure functions over sample arrays (FaceTalk supplement, section D "Audio
Processing": +20 dB, then noisereduce; at 16 kHz, the rate FaceTalk's and MeshTalk's audio
encoders take).

The chain of :func:`prepare_audio`: mono mix (channel correlation reported) -> DC removal ->
anti-aliased resampling to 16 kHz -> zero-phase high-pass (hum, rumble) -> noisereduce ->
gain with a limiter (or a gain cap) below the ceiling. The gain is linear and noisereduce's
gate is set relative to the noise it measures, so denoising before the gain gives what the
paper's order gives; the limiter comes last so that nothing after it can exceed full scale.

Signals are float arrays at full scale 1: mono ``(N,)``, multichannel ``(N, C)``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import AudioError
from .config import AudioConfig, DenoiseConfig

__all__ = [
    "CLIP_LEVEL",
    "GainResult",
    "PreparedAudio",
    "apply_gain",
    "channel_correlation",
    "clipped_fraction",
    "db",
    "denoise",
    "estimate_snr_db",
    "highpass",
    "levels",
    "mix_to_mono",
    "prepare_audio",
    "quietest_stretch",
    "remove_dc",
    "resample",
]

log = logging.getLogger(__name__)

#: |sample| at or above which a sample counts as clipped (full scale, less 16-bit rounding).
CLIP_LEVEL = 0.999


def db(value: float) -> float:
    """20 log10(value); -inf for 0."""
    return 20.0 * math.log10(value) if value > 0 else -math.inf


def channel_correlation(audio: np.ndarray) -> float | None:
    """Least Pearson correlation between any two channels of ``audio`` (N, C); None for one
    channel, NaN when a channel is constant. Near 1: one talker on every channel (a stereo
    pair of one microphone); near 0 or negative: channels that carry different sources."""
    a = np.asarray(audio, dtype=np.float64)
    if a.ndim == 1 or a.shape[1] < 2:
        return None
    a = a - a.mean(axis=0)
    norms = np.sqrt(np.sum(a * a, axis=0))
    if np.any(norms == 0):
        return float("nan")
    c = (a.T @ a) / np.outer(norms, norms)
    return float(np.min(c[np.triu_indices(a.shape[1], 1)]))


def mix_to_mono(audio: np.ndarray, mode: str = "mean") -> np.ndarray:
    """(N, C) or (N,) -> (N,) float64: the channels' mean, the first, or the loudest (RMS)."""
    a = np.asarray(audio, dtype=np.float64)
    if a.ndim == 1:
        return a
    if mode == "mean":
        return a.mean(axis=1)
    if mode == "first":
        return a[:, 0]
    if mode == "loudest":
        return a[:, int(np.argmax(np.sqrt(np.mean(a * a, axis=0))))]
    raise ValueError(f"unknown mix mode {mode!r}")


def remove_dc(x: np.ndarray) -> np.ndarray:
    """(N,) minus its mean."""
    x = np.asarray(x, dtype=np.float64)
    return x - x.mean() if x.size else x


def highpass(x: np.ndarray, sample_rate: int, cutoff_hz: float, order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth high-pass (forward-backward, so ``2 * order`` poles and no delay)
    of (N,); ``cutoff_hz`` 0 returns ``x``."""
    from scipy import signal

    x = np.asarray(x, dtype=np.float64)
    if cutoff_hz <= 0:
        return x
    sos = signal.butter(order, cutoff_hz, btype="high", fs=sample_rate, output="sos")
    padlen = min(x.size - 1, 3 * (2 * len(sos) + 1))
    return signal.sosfiltfilt(sos, x, padlen=max(padlen, 0))


def resample(x: np.ndarray, rate_in: int, rate_out: int, method: str = "soxr_hq") -> np.ndarray:
    """Band-limited resampling of (N,) along time to ``round(N * rate_out / rate_in)`` samples.

    Args:
        method: ``soxr_hq`` / ``soxr_vhq`` (libsoxr through librosa) or ``polyphase``
            (``scipy.signal.resample_poly``: up/down by the reduced ratio, a Kaiser-windowed FIR of
            32 taps per phase passing 90 % of the lower Nyquist).
    """
    x = np.asarray(x, dtype=np.float64)
    n_out = int(round(x.size * rate_out / rate_in))
    if rate_in == rate_out:
        return x
    if method == "polyphase":
        from scipy.signal import firwin, resample_poly

        g = math.gcd(int(rate_in), int(rate_out))
        up, down = rate_out // g, rate_in // g
        m = max(up, down)
        # pass band to 90 % of the lower Nyquist, -80 dB by the Nyquist (32 taps per phase)
        h = firwin(64 * m + 1, 0.9 / m, window=("kaiser", 8.0))
        y = resample_poly(x, up, down, window=h)
    else:
        import librosa

        y = librosa.resample(x, orig_sr=rate_in, target_sr=rate_out, res_type=method, fix=False)
    if y.size >= n_out:
        return y[:n_out]
    return np.pad(y, (0, n_out - y.size))


def quietest_stretch(x: np.ndarray, sample_rate: int, length_s: float) -> slice:
    """The ``length_s`` stretch of (N,) with the least energy (searched in quarter-length
    steps); the whole signal when it is shorter."""
    n = int(round(length_s * sample_rate))
    if n <= 0 or x.size <= n:
        return slice(0, x.size)
    hop = max(1, n // 4)
    c = np.concatenate([[0.0], np.cumsum(np.asarray(x, dtype=np.float64) ** 2)])
    starts = np.arange(0, x.size - n + 1, hop)
    start = int(starts[np.argmin(c[starts + n] - c[starts])])
    return slice(start, start + n)


def denoise(x: np.ndarray, sample_rate: int, cfg: DenoiseConfig) -> np.ndarray:
    """noisereduce's spectral gating of (N,) as ``cfg`` says; ``x`` itself when disabled.

    Stationary mode takes its noise spectrum from the quietest ``cfg.profile_s`` stretch
    (``noise_profile: quietest``) or from the whole clip; non-stationary mode tracks a running
    noise floor (``time_constant_s``). A clip shorter than two STFT windows is returned as it
    is (logged).
    """
    import noisereduce as nr

    x = np.asarray(x, dtype=np.float64)
    if not cfg.enabled:
        return x
    if x.size < 2 * cfg.n_fft:
        log.warning(
            "not denoised: %d samples, fewer than two STFT windows (2 x audio.denoise.n_fft = %d)",
            x.size,
            2 * cfg.n_fft,
        )
        return x
    noise = None
    if cfg.stationary and cfg.noise_profile == "quietest":
        noise = x[quietest_stretch(x, sample_rate, max(cfg.profile_s, 2 * cfg.n_fft / sample_rate))]
    y = nr.reduce_noise(
        y=x,
        sr=sample_rate,
        stationary=cfg.stationary,
        y_noise=noise,
        prop_decrease=cfg.prop_decrease,
        time_constant_s=cfg.time_constant_s,
        freq_mask_smooth_hz=cfg.freq_mask_smooth_hz or None,
        time_mask_smooth_ms=cfg.time_mask_smooth_ms or None,
        thresh_n_mult_nonstationary=cfg.thresh_n_mult_nonstationary,
        sigmoid_slope_nonstationary=cfg.sigmoid_slope_nonstationary,
        n_std_thresh_stationary=cfg.n_std_thresh_stationary,
        n_fft=cfg.n_fft,
        use_tqdm=False,
        n_jobs=1,
    )
    return np.asarray(y, dtype=np.float64)[: x.size]


@dataclass(frozen=True)
class GainResult:
    """What :func:`apply_gain` did.

    Attributes:
        gain_db: the gain asked for (dB).
        gain_applied_db: the gain the clip got outside the limited stretches (``cap``: the whole
            clip's, at most what its peak allows; ``limit``: ``gain_db``).
        would_clip_fraction: fraction of samples that ``gain_db`` alone would push to or
            beyond full scale (|sample| >= 1).
        limited_fraction: fraction of samples whose gain the limiter lowered.
        max_reduction_db: the limiter's deepest gain reduction (dB, >= 0).
    """

    gain_db: float
    gain_applied_db: float
    would_clip_fraction: float
    limited_fraction: float
    max_reduction_db: float


def _min_filter(r: np.ndarray, half: int) -> np.ndarray:
    from scipy.ndimage import minimum_filter1d

    return minimum_filter1d(r, size=2 * half + 1, mode="nearest")


def _box_filter(r: np.ndarray, half: int) -> np.ndarray:
    from scipy.ndimage import uniform_filter1d

    return uniform_filter1d(r, size=2 * half + 1, mode="nearest")


def apply_gain(
    x: np.ndarray,
    gain_db: float,
    ceiling_dbfs: float = -1.0,
    mode: str = "limit",
    window: int = 80,
) -> tuple[np.ndarray, GainResult]:
    """Gain without clipping: (N,) -> (N,) with every |sample| <= the ceiling.

    ``cap``: the whole clip gets ``min(gain, ceiling / peak)``. ``limit``: every sample gets
    ``gain_db``, lowered around the samples it would push above the ceiling by a smooth
    gain-reduction envelope: the required reduction ``r = min(1, ceiling / |g x|)`` is
    min-filtered then box-filtered over ``2 * window + 1`` samples, so the envelope never
    exceeds ``r`` (each box average is over minima of windows that all contain the sample) and
    reaches it over ``window`` samples on each side (a look-ahead, zero-latency offline limiter).

    Args:
        x: (N,) float samples.
        gain_db: gain in dB.
        ceiling_dbfs: highest output level (dBFS, <= 0).
        mode: ``limit`` or ``cap``.
        window: the limiter's half-window in samples (80 = 5 ms at 16 kHz).

    Returns:
        (N,) float64 and a :class:`GainResult`.
    """
    x = np.asarray(x, dtype=np.float64)
    ceiling = 10 ** (ceiling_dbfs / 20)
    g = 10 ** (gain_db / 20)
    y = g * x
    over = np.abs(y) > ceiling
    would_clip = float(np.mean(np.abs(y) >= 1.0)) if x.size else 0.0
    if not np.any(over):
        return y, GainResult(gain_db, gain_db, would_clip, 0.0, 0.0)
    if mode == "cap":
        g_cap = ceiling / float(np.max(np.abs(x)))
        return np.clip(g_cap * x, -ceiling, ceiling), GainResult(
            gain_db, db(g_cap), would_clip, 1.0, gain_db - db(g_cap)
        )
    if mode != "limit":
        raise ValueError(f"unknown gain mode {mode!r}")
    with np.errstate(divide="ignore"):
        r = np.where(over, ceiling / np.abs(y), 1.0)
    env = _box_filter(_min_filter(r, window), window)
    env = np.minimum(env, r)  # float rounding of the box filter
    out = np.clip(y * env, -ceiling, ceiling)
    return out, GainResult(
        gain_db,
        gain_db,
        would_clip,
        float(np.mean(env < 1.0 - 1e-9)),
        -db(float(env.min())),
    )


def clipped_fraction(x: np.ndarray, level: float = CLIP_LEVEL) -> float:
    """Fraction of samples of (N,) or (N, C) with |sample| >= ``level``."""
    x = np.asarray(x)
    return float(np.mean(np.abs(x) >= level)) if x.size else 0.0


def levels(x: np.ndarray, sample_rate: int) -> dict[str, float]:
    """``peak_dbfs``, ``rms_dbfs`` and ``loudness_lufs`` (ITU-R BS.1770 integrated loudness,
    pyloudnorm; NaN for clips under its 0.4 s block) of (N,)."""
    import pyloudnorm

    x = np.asarray(x, dtype=np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    rms = float(np.sqrt(np.mean(x * x))) if x.size else 0.0
    lufs = float("nan")
    if x.size >= int(0.4 * sample_rate) + 1 and peak > 0:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lufs = float(pyloudnorm.Meter(sample_rate).integrated_loudness(x))
    return {"peak_dbfs": db(peak), "rms_dbfs": db(rms), "loudness_lufs": lufs}


def estimate_snr_db(
    x: np.ndarray, sample_rate: int, frame_s: float = 0.02, noise_quantile: float = 0.1
) -> float:
    """Blind SNR of (N,) from frame energies: the noise power is the mean power of the quietest
    ``noise_quantile`` of the ``frame_s`` frames, the speech power the mean power over all
    frames less it; SNR = 10 log10(speech / noise). A rough figure (it assumes pauses in the
    speech and stationary noise; gating raises it by emptying the pauses); NaN when undefined.
    """
    x = np.asarray(x, dtype=np.float64)
    n = max(1, int(round(frame_s * sample_rate)))
    k = x.size // n
    if k < 2:
        return float("nan")
    p = np.mean(x[: k * n].reshape(k, n) ** 2, axis=1)
    q = np.sort(p)[: max(1, int(math.ceil(noise_quantile * k)))]
    noise = float(np.mean(q))
    speech = float(np.mean(p)) - noise
    if noise <= 0:
        return math.inf if speech > 0 else float("nan")
    if speech <= 0:
        return -math.inf
    return 10 * math.log10(speech / noise)


@dataclass
class PreparedAudio:
    """The output of :func:`prepare_audio`: ``audio`` (N,) float32 at ``sample_rate`` and the
    figures for metrics.json (flat; ``*_before`` of the input mixed to mono, ``*_after`` of
    the output)."""

    audio: np.ndarray
    sample_rate: int
    metrics: dict[str, Any] = field(default_factory=dict)


def prepare_audio(
    audio: np.ndarray,
    sample_rate: int,
    cfg: AudioConfig,
    source: str,
    video_duration_s: float | None = None,
    frame_period_s: float | None = None,
) -> PreparedAudio:
    """The whole chain of this module on one recording.

    Args:
        audio: (N, C) or (N,) float samples as decoded.
        sample_rate: Hz.
        cfg: the ``audio`` config section.
        source: what the audio is (its file), first in every message.
        video_duration_s: the video's duration (frames / fps), when there is one: a recording
            longer or shorter by more than ``audio.length_tolerance_s`` fails or warns
            (``audio.on_length_mismatch``).
        frame_period_s: one video frame (1 / fps): a shorter recording is refused.

    Returns:
        :class:`PreparedAudio`.

    Raises:
        AudioError: one line naming ``source`` and the figure: digitally silent (peak below
            ``audio.silence_dbfs``), shorter than one video frame, or (``on_length_mismatch:
            fail``) longer or shorter than the video beyond the tolerance.
    """
    a = np.asarray(audio, dtype=np.float64)
    a = a[:, None] if a.ndim == 1 else a
    n_in, n_ch = a.shape
    duration = n_in / sample_rate
    if frame_period_s is not None and duration < frame_period_s:
        raise AudioError(
            f"{source}: the audio lasts {duration * 1000:.1f} ms, shorter than one video frame "
            f"({frame_period_s * 1000:.1f} ms)"
        )
    peak_in = float(np.max(np.abs(a)))
    if db(peak_in) < cfg.silence_dbfs:
        raise AudioError(
            f"{source}: the audio is digitally silent (peak {db(peak_in):.1f} dBFS, below "
            f"audio.silence_dbfs {cfg.silence_dbfs:g})"
        )
    metrics: dict[str, Any] = {
        "source": source,
        "sample_rate_in": int(sample_rate),
        "channels_in": int(n_ch),
        "duration_in_s": duration,
    }
    if video_duration_s is not None:
        diff = duration - video_duration_s
        metrics["video_duration_s"] = float(video_duration_s)
        metrics["length_difference_s"] = diff
        if abs(diff) > cfg.length_tolerance_s:
            text = (
                f"{source}: the audio lasts {duration:.3f} s, the video {video_duration_s:.3f} s "
                f"({diff:+.3f} s, beyond audio.length_tolerance_s {cfg.length_tolerance_s:g}); "
                "wrong file, or a missing audio_offset_s in the sample sheet"
            )
            if cfg.on_length_mismatch == "fail":
                raise AudioError(text + " (audio.on_length_mismatch: warn lets the run go on)")
            log.warning("%s", text)

    clipped_in = clipped_fraction(a)
    metrics["clipped_fraction_in"] = clipped_in
    if clipped_in > cfg.max_clipped_fraction:
        log.warning(
            "%s: %.3f %% of the input samples are at full scale (above "
            "audio.max_clipped_fraction %.3f %%): the recording clipped; the gain cannot undo it",
            source,
            100 * clipped_in,
            100 * cfg.max_clipped_fraction,
        )
    corr = channel_correlation(a)
    metrics["channel_correlation"] = corr
    if corr is not None:
        if math.isnan(corr) or corr < cfg.min_channel_correlation:
            log.warning(
                "%s: %d channels with correlation %.3f (below audio.min_channel_correlation "
                "%.2f): they carry different sources (talkers, a dead channel); mixed by "
                "audio.mix = %s",
                source,
                n_ch,
                corr,
                cfg.min_channel_correlation,
                cfg.mix,
            )
        else:
            log.info("%s: %d channels, correlation %.3f: mixed by %s", source, n_ch, corr, cfg.mix)
    mono = mix_to_mono(a, cfg.mix)
    before = resample(remove_dc(mono), sample_rate, cfg.sample_rate, cfg.resampler)
    x = highpass(before, cfg.sample_rate, cfg.highpass_hz)
    x = denoise(x, cfg.sample_rate, cfg.denoise)
    window = max(1, int(round(cfg.limiter_window_ms * 1e-3 * cfg.sample_rate)))
    y, gain = apply_gain(x, cfg.gain_db, cfg.ceiling_dbfs, cfg.gain_mode, window)

    sr = cfg.sample_rate
    for tag, sig in (("before", before), ("after", y)):
        for key, value in levels(sig, sr).items():
            metrics[f"{key}_{tag}"] = value
        metrics[f"snr_estimate_db_{tag}"] = estimate_snr_db(sig, sr)
    metrics.update(
        {
            "sample_rate": sr,
            "n_samples": int(y.size),
            "duration_s": y.size / sr,
            "gain_db": gain.gain_db,
            "gain_applied_db": gain.gain_applied_db,
            "gain_mode": cfg.gain_mode,
            "would_clip_fraction": gain.would_clip_fraction,
            "limited_fraction": gain.limited_fraction,
            "limiter_max_reduction_db": gain.max_reduction_db,
            "clipped_fraction": clipped_fraction(y),
            # what ran: a clip shorter than two STFT windows is not denoised (denoise())
            "denoise": "off"
            if not cfg.denoise.enabled or x.size < 2 * cfg.denoise.n_fft
            else ("stationary" if cfg.denoise.stationary else "non-stationary"),
            "snr_estimate_method": "frame energy: quietest 10 % of 20 ms frames as noise",
        }
    )
    return PreparedAudio(y.astype(np.float32), sr, metrics)
