"""Settings of audio preparation (the ``audio`` config section): mono mix, 16 kHz, +20 dB
without clipping, noisereduce (FaceTalk supplement, section D "Audio Processing").

Build from YAML with ``talkhead.config.from_mapping(AudioConfig, data, "audio")``. Imports only
the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option, section

__all__ = ["GAIN_MODES", "MIX_MODES", "OUTPUT_SUBTYPES", "AudioConfig", "DenoiseConfig"]

#: Values of ``audio.mix``.
MIX_MODES = ("mean", "first", "loudest")
#: Values of ``audio.gain_mode``.
GAIN_MODES = ("limit", "cap")
#: Values of ``audio.output_subtype`` (soundfile's names).
OUTPUT_SUBTYPES = ("PCM_16", "FLOAT")


@dataclass(frozen=True)
class DenoiseConfig:
    """noisereduce's spectral gating (names follow ``noisereduce.reduce_noise``)."""

    enabled: bool = option(True, "Denoise with noisereduce after resampling (FaceTalk: yes).")
    stationary: bool = option(
        True,
        "Stationary gating (one noise spectrum for the clip); false: non-stationary (a "
        "running noise floor over time_constant_s).",
    )
    noise_profile: str = option(
        "quietest",
        "Stationary mode's noise spectrum: from the quietest stretch (profile_s long) or the "
        "whole file.",
        choices=("quietest", "whole"),
    )
    profile_s: float = option(
        0.25, "Length (seconds) of the quietest stretch used as noise profile.", exclusive_minimum=0
    )
    prop_decrease: float = option(
        0.9,
        "Fraction by which gated time-frequency bins are reduced (1: fully; 0.9 chosen on the "
        "synthetic microphone, benchmarks/bench_audio.py).",
        minimum=0,
        maximum=1,
    )
    n_std_thresh_stationary: float = option(
        1.5,
        "Stationary: bins below noise mean + this many noise standard deviations are gated.",
        minimum=0,
    )
    thresh_n_mult_nonstationary: float = option(
        2.0,
        "Non-stationary: bins below this multiple of the running noise floor are gated.",
        exclusive_minimum=0,
    )
    sigmoid_slope_nonstationary: float = option(
        10.0, "Non-stationary: slope of the soft gate.", exclusive_minimum=0
    )
    time_constant_s: float = option(
        2.0,
        "Non-stationary: time constant (seconds) of the running noise floor.",
        exclusive_minimum=0,
    )
    freq_mask_smooth_hz: float = option(
        0.0,
        "The gate is smoothed over this many Hz (0: not smoothed in frequency; smoothing it "
        "over 250-500 Hz lost 1-2 dB SI-SDR on the synthetic microphone).",
        minimum=0,
    )
    time_mask_smooth_ms: float = option(
        50.0, "The gate is smoothed over this many milliseconds.", minimum=0
    )
    n_fft: int = option(
        1024,
        "STFT length (samples at 16 kHz; 1024 = 64 ms, bins 15.6 Hz apart: the harmonics of "
        "a voice are resolved). Shorter clips than two windows are not denoised.",
        minimum=16,
    )


@dataclass(frozen=True)
class AudioConfig:
    """Audio preparation of each sequence (``results/audio/``) and of ``talkhead clean-audio``."""

    sample_rate: int = option(
        16000, "Output sample rate (Hz; FaceTalk and MeshTalk: 16000).", minimum=1000
    )
    resampler: str = option(
        "soxr_hq",
        "Anti-aliasing resampler: soxr_hq or soxr_vhq (libsoxr through librosa), or polyphase "
        "(scipy.signal.resample_poly, Kaiser window).",
        choices=("soxr_hq", "soxr_vhq", "polyphase"),
    )
    mix: str = option(
        "mean",
        "Several channels to mono: mean, first (channel 0) or loudest (highest RMS).",
        choices=MIX_MODES,
    )
    min_channel_correlation: float = option(
        0.5,
        "Channels less correlated than this are reported as carrying different talkers.",
        minimum=-1,
        maximum=1,
    )
    highpass_hz: float = option(
        80.0, "Zero-phase high-pass below speech (mains hum, rumble; Hz; 0: off).", minimum=0
    )
    gain_db: float = option(20.0, "Gain applied to the recording (dB; FaceTalk: +20).")
    gain_mode: str = option(
        "limit",
        "Keeping the gained audio below ceiling_dbfs: limit (a look-ahead limiter lowers the gain "
        "only around peaks) or cap (the whole clip gets at most the gain its peak allows).",
        choices=GAIN_MODES,
    )
    ceiling_dbfs: float = option(-1.0, "Highest output sample level (dBFS).", maximum=0)
    limiter_window_ms: float = option(
        5.0,
        "Limiter: half-width (ms) of the gain-reduction window around a peak.",
        exclusive_minimum=0,
    )
    denoise: DenoiseConfig = section(DenoiseConfig, "noisereduce spectral gating.")
    output_subtype: str = option(
        "PCM_16", "Sample format of cleaned_audio.wav: PCM_16 or FLOAT.", choices=OUTPUT_SUBTYPES
    )
    silence_dbfs: float = option(
        -80.0, "Input whose peak is below this (dBFS) is refused as digitally silent.", maximum=0
    )
    max_clipped_fraction: float = option(
        0.001,
        "Input with more samples at full scale than this fraction is reported as clipped.",
        minimum=0,
        maximum=1,
    )
    length_tolerance_s: float = option(
        0.5,
        "Audio longer or shorter than the video by more than this (seconds) is a mismatch.",
        minimum=0,
    )
    on_length_mismatch: str = option(
        "fail",
        "What a length mismatch does: fail (the job stops) or warn (logged).",
        choices=("fail", "warn"),
    )

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules, as ``(field, message)`` pairs: noisereduce's smoothing spans at
        least one STFT bin (2 x sample_rate / n_fft Hz) and one hop (n_fft / 4 samples)."""
        d = self.denoise
        if not d.enabled:
            return []
        out = []
        bin_hz = 2 * self.sample_rate / d.n_fft
        if 0 < d.freq_mask_smooth_hz < bin_hz:
            out.append(
                (
                    "denoise.freq_mask_smooth_hz",
                    f"must be 0 or >= {bin_hz:g} Hz (2 x sample_rate / denoise.n_fft), "
                    f"got {d.freq_mask_smooth_hz:g}",
                )
            )
        hop_ms = 1000 * (d.n_fft // 4) / self.sample_rate
        if 0 < d.time_mask_smooth_ms < hop_ms:
            out.append(
                (
                    "denoise.time_mask_smooth_ms",
                    f"must be 0 or >= {hop_ms:g} ms (denoise.n_fft / 4 samples), "
                    f"got {d.time_mask_smooth_ms:g}",
                )
            )
        return out
