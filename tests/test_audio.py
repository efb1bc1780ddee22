"""The audio stage: every common format decoded, mono 16 kHz of the right length with
anti-aliasing, +20 dB without clipping, noisereduce that gains SI-SDR on noisy speech, bad input
refused by name, the stage's files, the evaluation, the command line and the DAG."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from talkhead.audio.config import AudioConfig, DenoiseConfig
from talkhead.audio.io import read_audio
from talkhead.audio.prepare import (
    apply_gain,
    channel_correlation,
    estimate_snr_db,
    prepare_audio,
    quietest_stretch,
    resample,
)
from talkhead.errors import AudioError, EvaluationError
from talkhead.evaluation.audio import audio_gt_metrics, si_sdr_db

REPO = Path(__file__).resolve().parents[1]
NO_DENOISE = AudioConfig(denoise=DenoiseConfig(enabled=False), highpass_hz=0.0)


def tone_pair(sr: int, seconds: float = 0.5) -> np.ndarray:
    """(N, 2) float32: 440 Hz at 0.5 on the left, the same at 0.3 on the right."""
    t = np.arange(int(round(seconds * sr))) / sr
    s = np.sin(2 * np.pi * 440 * t)
    return np.stack([0.5 * s, 0.3 * s], axis=1).astype(np.float32)


def encode(path: Path, audio: np.ndarray, sr: int, fmt: str, codec: str, video: bool = False):
    """Write (N, 2) float audio with FFmpeg's encoder ``codec`` into container ``fmt`` (PyAV),
    with a short video stream first when ``video``."""
    import av

    with av.open(str(path), "w", format=fmt) as c:
        if video:
            vs = c.add_stream("mpeg4", rate=25)
            vs.width, vs.height, vs.pix_fmt = 32, 32, "yuv420p"
        s = c.add_stream(codec, rate=sr)
        s.layout = "stereo"
        res = av.AudioResampler(format=s.codec_context.format.name, layout="stereo", rate=sr)
        if video:
            for i in range(int(audio.shape[0] / sr * 25)):
                img = np.full((32, 32, 3), 8 * i % 256, np.uint8)
                for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    c.mux(p)
            for p in vs.encode(None):
                c.mux(p)
        for i in range(0, audio.shape[0], 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(audio[i : i + 1024].T), format="fltp", layout="stereo"
            )
            frame.sample_rate, frame.pts = sr, i
            for f in res.resample(frame):
                for p in s.encode(f):
                    c.mux(p)
        for p in s.encode(None):
            c.mux(p)


def dominant_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / sr)[np.argmax(spec)])


# ------------------------------------------------------------------------------------------
# Reading
# ------------------------------------------------------------------------------------------

SOUNDFILE_CASES = {
    "u8.wav": ("WAV", "PCM_U8"),
    "s16.wav": ("WAV", "PCM_16"),
    "s24.wav": ("WAV", "PCM_24"),
    "s32.wav": ("WAV", "PCM_32"),
    "float.wav": ("WAV", "FLOAT"),
    "ima_adpcm.wav": ("WAV", "IMA_ADPCM"),
    "UPPER.WAV": ("WAV", "PCM_16"),
    "a.flac": ("FLAC", "PCM_16"),
    "vorbis.ogg": ("OGG", "VORBIS"),
    "opus.ogg": ("OGG", "OPUS"),
}
PYAV_CASES = {
    "ms_adpcm.wav": ("wav", "adpcm_ms", False),
    "flac_in.ogg": ("ogg", "flac", False),
    "a.mp3": ("mp3", "libmp3lame", False),
    "a.m4a": ("ipod", "aac", False),
    "a.webm": ("webm", "libopus", False),
    "video.mp4": ("mp4", "aac", True),
}


@pytest.mark.parametrize("name", [*SOUNDFILE_CASES, *PYAV_CASES])
def test_each_format_is_read(tmp_path: Path, name: str) -> None:
    sr = 48000 if name not in ("a.mp3",) else 44100
    x = tone_pair(sr)
    path = tmp_path / name
    if name in SOUNDFILE_CASES:
        fmt, subtype = SOUNDFILE_CASES[name]
        sf.write(str(path), x, sr, format=fmt, subtype=subtype)
    else:
        fmt, codec, video = PYAV_CASES[name]
        encode(path, x, sr, fmt, codec, video)
    audio, rate = read_audio(path)
    assert rate == sr and audio.shape[1] == 2 and audio.dtype == np.float32
    assert abs(audio.shape[0] / sr - 0.5) < 0.05  # codec priming/padding at most ~12 ms
    mid = audio[audio.shape[0] // 4 : 3 * audio.shape[0] // 4]
    assert abs(dominant_hz(mid[:, 0], sr) - 440) < 5
    left, right = np.sqrt(np.mean(mid**2, axis=0))
    assert left / right == pytest.approx(0.5 / 0.3, rel=0.05)
    assert left == pytest.approx(0.5 / math.sqrt(2), rel=0.05)  # full scale 1, not 2**15


@pytest.mark.parametrize("name", ["a.m4a", "video.mp4"])
def test_aac_is_cut_to_the_stated_duration_not_its_padded_last_frame(tmp_path: Path, name) -> None:
    """AAC encodes whole frames of 1024 samples: a 0.5-s clip at 48 kHz (24000 samples) decodes
    to 24576 unless cut to the container's duration (a 60-s clip would gain a video frame)."""
    sr = 48000
    x = tone_pair(sr)
    assert len(x) == 24000 and len(x) % 1024
    fmt, codec, video = PYAV_CASES[name]
    encode(tmp_path / name, x, sr, fmt, codec, video)
    audio, rate = read_audio(tmp_path / name)
    assert rate == sr and audio.shape[0] == len(x)


def test_an_mp3_over_full_scale_is_read_unclipped_and_limited(tmp_path: Path) -> None:
    """A lossy codec overshoots a full-scale square wave; the decoded peak above 1 is kept (not
    hidden by clipping) and the limiter brings the output under the ceiling."""
    sr = 44100
    t = np.arange(sr) / sr
    square = np.sign(np.sin(2 * np.pi * 300 * t)) * 0.99
    path = tmp_path / "loud.mp3"
    encode(path, np.stack([square, square], axis=1).astype(np.float32), sr, "mp3", "libmp3lame")
    audio, _ = read_audio(path)
    assert np.max(np.abs(audio)) > 1.0
    out = prepare_audio(audio, sr, NO_DENOISE, str(path))
    assert np.max(np.abs(out.audio)) <= 10 ** (-1 / 20) + 1e-6
    assert out.metrics["clipped_fraction_in"] > 0.01
    assert out.metrics["would_clip_fraction"] > 0.5


def test_missing_unreadable_and_empty_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"nothere\.wav: audio file is missing"):
        read_audio(tmp_path / "nothere.wav")
    junk = tmp_path / "junk.m4a"
    junk.write_bytes(b"not audio at all" * 64)
    with pytest.raises(AudioError, match=r"junk\.m4a: unreadable audio"):
        read_audio(junk)
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros((0, 1), np.float32), 16000)
    with pytest.raises(AudioError, match=r"empty\.wav: the audio holds 0 samples"):
        read_audio(empty)
    video_only = tmp_path / "video_only.mp4"
    import av

    with av.open(str(video_only), "w") as c:
        vs = c.add_stream("mpeg4", rate=25)
        vs.width, vs.height, vs.pix_fmt = 32, 32, "yuv420p"
        for _ in range(3):
            for p in vs.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8))):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
    with pytest.raises(AudioError, match=r"video_only\.mp4: no audio stream"):
        read_audio(video_only)


def test_an_mp3_beside_a_capture_is_found(tmp_path: Path) -> None:
    from talkhead.capture import layout
    from talkhead.capture.readers import find_audio

    seq_dir = tmp_path / "seq"
    path = layout.audio_dir(seq_dir) / "audio_recording.mp3"
    path.parent.mkdir(parents=True)
    encode(path, tone_pair(44100), 44100, "mp3", "libmp3lame")
    assert find_audio(seq_dir) == path


# ------------------------------------------------------------------------------------------
# Mixing, resampling, gain
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sr", [44100, 48000])
@pytest.mark.parametrize("resampler", ["soxr_hq", "polyphase"])
def test_stereo_44k_48k_comes_out_at_duration_times_16k(sr: int, resampler: str) -> None:
    seconds = 2.3456
    x = np.random.default_rng(0).normal(0, 0.05, (int(round(seconds * sr)), 2))
    cfg = AudioConfig(resampler=resampler, denoise=DenoiseConfig(enabled=False))
    out = prepare_audio(x, sr, cfg, "x.wav")
    assert abs(out.audio.size - seconds * 16000) <= 1
    assert out.sample_rate == 16000 and out.audio.ndim == 1
    assert out.metrics["duration_s"] == pytest.approx(seconds, abs=1 / 16000)


@pytest.mark.parametrize("resampler", ["soxr_hq", "polyphase"])
def test_resampling_filters_what_would_alias(resampler: str) -> None:
    """A 10 kHz tone at 48 kHz is above 16 kHz's Nyquist: naive decimation folds it onto 6 kHz;
    an anti-aliasing resampler removes it and keeps a 3 kHz tone."""
    sr = 48000
    t = np.arange(sr) / sr
    x = 0.5 * np.sin(2 * np.pi * 3000 * t) + 0.5 * np.sin(2 * np.pi * 10000 * t)
    y = resample(x, sr, 16000, resampler)
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    f = np.fft.rfftfreq(y.size, 1 / 16000)
    tone = spec[np.argmin(np.abs(f - 3000))]
    alias = spec[np.argmin(np.abs(f - 6000))]
    assert 20 * np.log10(alias / tone) < -60
    naive = x[::3]
    spec_n = np.abs(np.fft.rfft(naive * np.hanning(naive.size)))
    assert spec_n[np.argmin(np.abs(f - 6000))] > 0.5 * spec_n[np.argmin(np.abs(f - 3000))]


def test_limiter_keeps_every_sample_below_full_scale_and_counts_what_would_clip() -> None:
    n = 16000
    x = 0.05 * np.sin(2 * np.pi * 200 * np.arange(n) / 16000)
    spikes = [1000, 5000, 5001, 12000]
    x[spikes] = [0.2, -0.3, 0.25, 0.5]  # x 10 (20 dB): 2, -3, 2.5, 5
    x[3000] = 0.095  # x 10: 0.95, above the -1 dBFS ceiling (0.891) but not clipping
    y, res = apply_gain(x, 20.0, ceiling_dbfs=-1.0, mode="limit", window=80)
    ceiling = 10 ** (-1 / 20)
    assert np.max(np.abs(y)) <= ceiling + 1e-12
    assert abs(y[3000]) == pytest.approx(ceiling)
    assert res.would_clip_fraction == pytest.approx(len(spikes) / n)
    assert res.gain_applied_db == 20.0
    assert res.max_reduction_db == pytest.approx(20 * np.log10(5.0 / ceiling), abs=1e-9)
    far = np.ones(n, bool)
    for s in [*spikes, 3000]:
        far[max(0, s - 200) : s + 200] = False
    np.testing.assert_allclose(y[far], 10 * x[far], rtol=1e-12)  # gain untouched off the peaks
    assert 0 < res.limited_fraction < 0.1

    y_cap, cap = apply_gain(x, 20.0, ceiling_dbfs=-1.0, mode="cap")
    assert cap.gain_applied_db == pytest.approx(20 * np.log10(ceiling / 0.5))
    np.testing.assert_allclose(y_cap, x * ceiling / 0.5)
    quiet, none = apply_gain(0.01 * x, 20.0)
    assert none.would_clip_fraction == 0 and none.limited_fraction == 0
    np.testing.assert_allclose(quiet, 0.1 * x)


def test_metrics_report_gain_levels_and_clipping() -> None:
    sr = 16000
    x = 0.05 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)
    x[8000] = 0.5
    m = prepare_audio(x, sr, NO_DENOISE, "x.wav").metrics
    assert m["would_clip_fraction"] == pytest.approx(1 / sr)
    assert m["clipped_fraction"] == 0.0
    assert m["peak_dbfs_before"] == pytest.approx(20 * np.log10(0.5), abs=0.01)
    assert m["peak_dbfs_after"] == pytest.approx(-1.0, abs=0.01)
    # the limiter lowers the gain for ~10 ms around the one peak
    assert m["rms_dbfs_after"] - m["rms_dbfs_before"] == pytest.approx(20.0, abs=0.2)
    assert m["loudness_lufs_after"] - m["loudness_lufs_before"] == pytest.approx(20.0, abs=0.3)


def test_channel_correlation_reports_different_talkers(caplog) -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(0, 0.1, 16000)
    same = np.stack([a, 0.7 * a + rng.normal(0, 0.01, a.size)], axis=1)
    other = np.stack([a, rng.normal(0, 0.1, a.size)], axis=1)
    assert channel_correlation(same) > 0.99
    assert abs(channel_correlation(other)) < 0.05
    assert channel_correlation(a[:, None]) is None
    with caplog.at_level(logging.WARNING):
        m = prepare_audio(other, 16000, NO_DENOISE, "two_talkers.wav").metrics
    assert abs(m["channel_correlation"]) < 0.05
    assert "two_talkers.wav: 2 channels with correlation" in caplog.text
    assert "different sources" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        prepare_audio(same, 16000, NO_DENOISE, "one_talker.wav")
    assert "one_talker.wav" not in caplog.text


def test_quietest_stretch_and_snr_estimate() -> None:
    sr = 16000
    rng = np.random.default_rng(2)
    x = rng.normal(0, 0.001, 2 * sr)
    x[: sr // 2] += 0.1 * np.sin(2 * np.pi * 300 * np.arange(sr // 2) / sr)
    x[sr:] += 0.1 * np.sin(2 * np.pi * 300 * np.arange(sr) / sr)
    q = quietest_stretch(x, sr, 0.25)
    assert sr // 2 <= q.start and q.stop <= sr
    # speech power 0.1**2/2 over 3/4 of the clip, noise 1e-6: 10 log10(0.005 * 0.75 / 1e-6)
    assert estimate_snr_db(x, sr) == pytest.approx(10 * np.log10(0.005 * 0.75 / 1e-6), abs=0.5)


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------


def test_silent_input_is_refused() -> None:
    with pytest.raises(AudioError, match=r"^s\.wav: the audio is digitally silent \(peak -inf"):
        prepare_audio(np.zeros((16000, 2)), 16000, AudioConfig(), "s.wav")
    hiss = np.random.default_rng(0).normal(0, 1e-5, 16000)
    with pytest.raises(AudioError, match=r"peak -8\d\.\d dBFS, below audio\.silence_dbfs -80"):
        prepare_audio(hiss, 16000, AudioConfig(), "h.wav")


def test_input_shorter_than_one_frame_is_refused() -> None:
    x = 0.1 * np.random.default_rng(0).normal(size=320)  # 20 ms at 16 kHz
    with pytest.raises(AudioError, match=r"lasts 20\.0 ms, shorter than one video frame \(40\.0"):
        prepare_audio(x, 16000, AudioConfig(), "short.wav", frame_period_s=0.04)


def test_a_clip_too_short_to_denoise_is_kept_and_logged(caplog) -> None:
    x = np.random.default_rng(0).normal(0, 0.1, (700, 2))  # 16 ms at 44.1 kHz: 254 samples
    with caplog.at_level(logging.WARNING):
        out = prepare_audio(x, 44100, AudioConfig(), "tiny.wav")
    assert out.audio.size == 254 and np.max(np.abs(out.audio)) <= 10 ** (-1 / 20) + 1e-6
    assert "not denoised: 254 samples, fewer than two STFT windows" in caplog.text


def test_noisereduce_limits_are_config_errors() -> None:
    from talkhead.config import from_mapping
    from talkhead.errors import ConfigError

    bad = {"denoise": {"freq_mask_smooth_hz": 10, "time_mask_smooth_ms": 1}}
    with pytest.raises(ConfigError) as err:
        from_mapping(AudioConfig, bad, "audio")
    assert str(err.value).splitlines() == [
        "audio.denoise.freq_mask_smooth_hz: must be 0 or >= 31.25 Hz (2 x sample_rate / "
        "denoise.n_fft), got 10",
        "audio.denoise.time_mask_smooth_ms: must be 0 or >= 16 ms (denoise.n_fft / 4 samples), "
        "got 1",
    ]
    off = {"denoise": {"freq_mask_smooth_hz": 0, "time_mask_smooth_ms": 0}}
    cfg = from_mapping(AudioConfig, off, "audio")
    x = np.random.default_rng(0).normal(0, 0.1, 16000)
    assert prepare_audio(x, 16000, cfg, "x").audio.size == 16000


def test_length_mismatch_fails_or_warns(caplog) -> None:
    x = 0.1 * np.random.default_rng(0).normal(size=3 * 16000)
    with pytest.raises(AudioError, match=r"lasts 3\.000 s, the video 2\.000 s \(\+1\.000 s"):
        prepare_audio(x, 16000, NO_DENOISE, "long.wav", video_duration_s=2.0)
    m = prepare_audio(x, 16000, NO_DENOISE, "ok.wav", video_duration_s=2.8).metrics
    assert m["length_difference_s"] == pytest.approx(0.2)
    warn = AudioConfig(on_length_mismatch="warn", denoise=DenoiseConfig(enabled=False))
    with caplog.at_level(logging.WARNING):
        prepare_audio(x, 16000, warn, "short_video.wav", video_duration_s=4.0)
    assert "short_video.wav: the audio lasts 3.000 s, the video 4.000 s (-1.000 s" in caplog.text


def test_clipped_input_is_reported(caplog) -> None:
    x = np.clip(2 * np.sin(2 * np.pi * 100 * np.arange(16000) / 16000), -1, 1)
    with caplog.at_level(logging.WARNING):
        m = prepare_audio(x, 16000, NO_DENOISE, "hot.wav").metrics
    assert m["clipped_fraction_in"] > 0.5
    assert "hot.wav: " in caplog.text and "% of the input samples are at full scale" in caplog.text
    assert m["clipped_fraction"] == 0.0  # the output stays under the ceiling


# ------------------------------------------------------------------------------------------
# SI-SDR and the denoiser
# ------------------------------------------------------------------------------------------


def test_si_sdr_hand_computed_and_invariant_to_scale() -> None:
    ref = np.array([1.0, -1.0, 1.0, -1.0])
    noise = 0.5 * np.array([1.0, 1.0, -1.0, -1.0])  # orthogonal to ref: target = ref
    est = ref + noise
    assert si_sdr_db(est, ref) == pytest.approx(10 * np.log10(4 / 1))
    assert si_sdr_db(3.0 * est, ref) == pytest.approx(si_sdr_db(est, ref))
    assert si_sdr_db(est, 0.2 * ref) == pytest.approx(si_sdr_db(est, ref))
    assert si_sdr_db(est + 7.0, ref) == pytest.approx(si_sdr_db(est, ref))  # zero-mean
    assert si_sdr_db(-2 * ref, ref) == math.inf
    # not invariant to what matters: more noise, lower SI-SDR
    assert si_sdr_db(ref + 2 * noise, ref) == pytest.approx(10 * np.log10(4 / 4))
    with pytest.raises(EvaluationError, match="differ in length"):
        si_sdr_db(est[:3], ref)
    with pytest.raises(EvaluationError, match="silent"):
        si_sdr_db(est, np.ones(4))


def speech(seconds: float = 3.0) -> np.ndarray:
    from talkhead.synth.config import StudioConfig
    from talkhead.synth.studio import sequence_audio

    return sequence_audio(StudioConfig(duration_s=seconds), "syn000", "SEN-00")[1]


def test_denoising_noisy_speech_gains_5_db_si_sdr() -> None:
    """Dry synthetic speech in the studio's room noise at 0 dB SNR: full stationary gating
    (noise profile from the quietest stretch) gains >= 5 dB SI-SDR over the noisy input."""
    from talkhead.synth.speech import microphone_parts

    clean = speech()
    parts = microphone_parts(
        clean, 16000, np.random.default_rng(1), -26.0, 0.0, reverb_s=0.0, lowpass_hz=None
    )
    cfg = AudioConfig(denoise=DenoiseConfig(prop_decrease=1.0))
    out = prepare_audio(parts["mixed"], 16000, cfg, "noisy").audio
    m = audio_gt_metrics(parts["mixed"], 16000, out, 16000, clean, 16000)
    assert m["si_sdr_gain_db"] >= 5.0, m
    off = prepare_audio(parts["mixed"], 16000, NO_DENOISE, "noisy").audio
    assert si_sdr_db(off, clean) < m["si_sdr_cleaned_db"] - 4.0  # the denoiser, not the gain


@pytest.mark.parametrize("subject, sequence", [("syn000", "SEN-00"), ("syn002", "SEN-01")])
def test_default_chain_gains_5_db_on_the_default_microphone(subject: str, sequence: str) -> None:
    """The default capture's microphone (config.yaml's synthetic section: noisy and quiet, room
    reverb, low-pass): the default chain gains >= 5 dB SI-SDR against the microphone's
    noise-free speech (what it can remove is the noise), and raises the SI-SDR against the dry
    speech too (less: the reverb and the low-pass stay; bench_audio.py)."""
    from talkhead.synth.config import StudioConfig
    from talkhead.synth.studio import sequence_audio_parts

    parts = sequence_audio_parts(StudioConfig(), subject, sequence)
    recorded, mic, dry = parts["recorded"], parts["mic_speech"], parts["clean"]
    out = prepare_audio(recorded, 16000, AudioConfig(), "mic").audio
    m = audio_gt_metrics(recorded, 16000, out, 16000, mic, 16000)
    assert m["si_sdr_gain_db"] >= 5.0, m
    assert si_sdr_db(out, dry) > si_sdr_db(recorded, dry) + 1.0
    off = prepare_audio(recorded, 16000, NO_DENOISE, "mic").audio
    assert si_sdr_db(off, mic) < m["si_sdr_cleaned_db"] - 3.0  # the chain, not the gain


def test_studio_microphone_parts_add_up() -> None:
    """The recording is the noise-free microphone speech plus the added noise, exactly, at the
    configured SNR; the noise-free microphone speech is not the dry speech (room reverb)."""
    from talkhead.synth.config import StudioConfig
    from talkhead.synth.studio import sequence_audio, sequence_audio_parts

    cfg = StudioConfig(mic_snr_db=7.0)
    parts = sequence_audio_parts(cfg, "syn001", "SEN-00")
    recorded, mic, noise = parts["recorded"], parts["mic_speech"], parts["noise"]
    assert np.abs(recorded).max() < 1.0  # nothing clipped, so the sum is exact
    assert np.array_equal(recorded, mic + noise)
    assert 10 * np.log10(np.mean(mic**2) / np.mean(noise**2)) == pytest.approx(7.0, abs=1e-6)
    assert np.abs(mic).max() == pytest.approx(10 ** (cfg.mic_level_db / 20))
    assert si_sdr_db(mic, parts["clean"]) < 20.0
    assert np.array_equal(sequence_audio(cfg, "syn001", "SEN-00")[0], recorded)


# ------------------------------------------------------------------------------------------
# The stage on the tiny studio, the evaluation, the QC figure
# ------------------------------------------------------------------------------------------


def test_sequence_audio_is_what_the_studio_writes(tiny_studio) -> None:
    from talkhead.capture import layout
    from talkhead.evaluation.ground_truth import GroundTruth, ground_truth_dir
    from talkhead.synth.studio import sequence_audio, sequence_audio_parts

    recorded, clean = sequence_audio(tiny_studio.config, tiny_studio.subject, tiny_studio.sequence)
    seq_dir = layout.sequence_dir(tiny_studio.capture_root, tiny_studio.subject, "SEN-00")
    written, _ = read_audio(layout.audio_path(seq_dir))
    np.testing.assert_allclose(written[:, 0], recorded, atol=1 / 32768 + 1e-7)
    gt = GroundTruth.open(ground_truth_dir(tiny_studio.gt_root, tiny_studio.subject, "SEN-00"))
    np.testing.assert_allclose(gt.clean_audio()[0], clean, atol=1 / 32768 + 1e-7)
    # the noise-free microphone speech: the written recording less it is the added noise
    parts = sequence_audio_parts(tiny_studio.config, tiny_studio.subject, tiny_studio.sequence)
    assert gt.has_mic_speech()
    mic, sr = gt.mic_speech()
    assert sr == tiny_studio.config.sample_rate and mic.dtype == np.float32
    np.testing.assert_allclose(mic, parts["mic_speech"], atol=2**-23 + 1e-9)  # 24-bit PCM
    np.testing.assert_allclose(written[:, 0] - mic, parts["noise"], atol=1 / 32768 + 2**-22)
    assert np.abs(written[:, 0] - mic - parts["noise"]).max() > 0  # 16-bit recording, not a copy


def test_stage_and_evaluation_on_the_tiny_studio(tiny_studio, tmp_path: Path) -> None:
    from talkhead.audio.stage import run_prepare_audio_stage
    from talkhead.capture.sequence import open_sequence
    from talkhead.evaluation.audio import run_evaluate_audio
    from talkhead.evaluation.ground_truth import ground_truth_dir
    from talkhead.qc.audio import audio_before_after_qc

    seq = open_sequence(tiny_studio.capture_root, tiny_studio.subject, tiny_studio.sequence)
    out = tmp_path / "cleaned_audio.wav"
    metrics = run_prepare_audio_stage(seq, out, tmp_path / "metrics.json", {"gain_db": 20})
    info = sf.info(str(out))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert info.frames == round(seq.n_frames / seq.fps * 16000)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["subject"] == "syn000" and on_disk["gain_db"] == 20
    for key in ("peak_dbfs", "rms_dbfs", "loudness_lufs", "snr_estimate_db"):
        assert f"{key}_before" in on_disk and f"{key}_after" in on_disk
    assert metrics["would_clip_fraction"] == on_disk["would_clip_fraction"]
    assert not list(tmp_path.glob(".*"))  # atomic: no temporary left
    gt_dir = ground_truth_dir(tiny_studio.gt_root, tiny_studio.subject, tiny_studio.sequence)
    ev = run_evaluate_audio(seq.audio_path, out, gt_dir, tmp_path / "evaluation.json")
    assert json.loads((tmp_path / "evaluation.json").read_text()) == pytest.approx(ev)
    assert ev["si_sdr_gain_db"] == pytest.approx(ev["si_sdr_cleaned_db"] - ev["si_sdr_raw_db"])
    assert ev["n_samples"] == info.frames
    assert ev["reference"] == "mic_speech"
    # the dry speech is the harder reference (reverb and low-pass are not the denoiser's)
    assert ev["dry_si_sdr_raw_db"] < ev["si_sdr_raw_db"]
    assert ev["dry_si_sdr_cleaned_db"] < ev["si_sdr_cleaned_db"]
    assert ev["dry_si_sdr_gain_db"] == pytest.approx(
        ev["dry_si_sdr_cleaned_db"] - ev["dry_si_sdr_raw_db"]
    )
    png = audio_before_after_qc(seq.audio_path, out, tmp_path / "before_after.png")
    from PIL import Image

    assert Image.open(png).size == (1200, 600)


def test_evaluation_of_an_older_ground_truth_falls_back_to_the_dry_speech(
    tiny_studio, tmp_path: Path, caplog
) -> None:
    """A ground truth without the noise-free microphone speech (rendered before it existed):
    the ``si_sdr_*`` figures are the dry ones, said by ``reference`` and a logged warning."""
    import shutil

    from talkhead.audio.stage import run_prepare_audio_stage
    from talkhead.capture.sequence import open_sequence
    from talkhead.evaluation.audio import run_evaluate_audio
    from talkhead.evaluation.ground_truth import MIC_SPEECH_FILE, ground_truth_dir

    seq = open_sequence(tiny_studio.capture_root, tiny_studio.subject, tiny_studio.sequence)
    out = tmp_path / "cleaned_audio.wav"
    run_prepare_audio_stage(seq, out, tmp_path / "metrics.json", {})
    gt_dir = tmp_path / "gt"
    shutil.copytree(
        ground_truth_dir(tiny_studio.gt_root, tiny_studio.subject, tiny_studio.sequence), gt_dir
    )
    full = run_evaluate_audio(seq.audio_path, out, gt_dir, tmp_path / "full.json")
    (gt_dir / MIC_SPEECH_FILE).unlink()
    with caplog.at_level(logging.WARNING, logger="talkhead.evaluation.audio"):
        old = run_evaluate_audio(seq.audio_path, out, gt_dir, tmp_path / "old.json")
    assert old["reference"] == "dry_speech" and full["reference"] == "mic_speech"
    assert "no noise-free microphone speech" in caplog.text and str(gt_dir) in caplog.text
    for k in ("raw_db", "cleaned_db", "gain_db"):
        assert old[f"si_sdr_{k}"] == old[f"dry_si_sdr_{k}"]
        assert old[f"si_sdr_{k}"] == pytest.approx(full[f"dry_si_sdr_{k}"])
    assert full["si_sdr_raw_db"] > full["dry_si_sdr_raw_db"]  # not the same reference


def test_spectrogram_shows_the_tone_where_it_is() -> None:
    from talkhead.qc.audio import spectrogram_db

    sr = 16000
    x = 0.3 * np.sin(2 * np.pi * 1000 * np.arange(sr) / sr)
    f, t, S = spectrogram_db(x, sr)
    assert S.max() == 0.0 and t[-1] <= 1.0
    assert abs(f[np.argmax(S.mean(axis=1))] - 1000) <= f[1] - f[0]
    assert np.median(S[f > 3000]) < -60


def test_before_after_figure_shows_gain_and_noise_floor(tmp_path: Path, monkeypatch) -> None:
    from talkhead.qc import audio as qc_audio

    drawn = {}
    real = qc_audio.save_figure
    monkeypatch.setattr(
        qc_audio, "save_figure", lambda fig, path: drawn.setdefault("fig", fig) and real(fig, path)
    )
    sr = 16000
    tone = 0.05 * np.sin(2 * np.pi * 500 * np.arange(sr) / sr)
    noisy = tone + np.random.default_rng(0).normal(0, 0.005, sr)
    qc_audio.plot_audio_before_after(noisy, sr, 10 * tone, sr, tmp_path / "f.png", title="x")
    ax = drawn["fig"].axes
    before_w, after_w, before_s, after_s = ax[0], ax[1], ax[2], ax[3]
    assert before_w.get_ylim() == after_w.get_ylim() == (-1.05, 1.05)  # one scale: gain shows
    assert "after: peak -6.0 dBFS, RMS -9.0 dBFS" in after_w.get_title()
    assert before_w.get_title().startswith("before: peak -2")
    floor_before = np.median(np.asarray(before_s.images[0].get_array()))
    floor_after = np.median(np.asarray(after_s.images[0].get_array()))
    assert floor_after < floor_before - 20  # the noise floor between the tone's bins is gone


# ------------------------------------------------------------------------------------------
# Command line and workflow
# ------------------------------------------------------------------------------------------


def test_clean_audio_command_output(tmp_path: Path, capsys) -> None:
    from talkhead.cli import main

    src = tmp_path / "in.wav"
    sf.write(str(src), 0.1 * tone_pair(48000, 1.0), 48000, subtype="FLOAT")
    override = tmp_path / "audio.yaml"
    override.write_text("audio:\n  highpass_hz: 0\n  denoise:\n    enabled: false\n")
    out = tmp_path / "out.wav"
    assert main(["clean-audio", str(src), str(out), "--config", str(override)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{out}: 1.000 s, 16000 Hz mono PCM_16, from {src} (2 ch, 48000 Hz)"
    assert lines[1] == (
        "peak -28.0 -> -8.0 dBFS, RMS -31.0 -> -11.0 dBFS, gain +20.0 dB (limit; 0.000 % would "
        "have clipped)"
    )
    assert lines[2].startswith("SNR estimate ") and lines[2].endswith("dB, denoise off")
    assert len(lines) == 3
    assert sf.info(str(out)).samplerate == 16000

    args = ["clean-audio", str(src), str(out), "--config", str(override), "--gain-db", "30"]
    assert main(args) == 0  # a steady tone is what a stationary gate removes: denoise off
    line = capsys.readouterr().out.splitlines()[1]
    assert "gain +30.0 dB (limit; " in line and "-1.0 dBFS" in line

    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(16000), 16000)
    assert main(["clean-audio", str(silent), str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        f"talkhead: error: {silent}: the audio is digitally silent (peak -inf dBFS, below "
        "audio.silence_dbfs -80)"
    )
    assert not (tmp_path / "x.wav").exists()


def test_prepare_and_evaluate_audio_are_in_the_dag() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--forceall", "--quiet", "rules"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    for rule in ("prepare_audio", "plot_audio", "evaluate_audio"):
        assert any(line.split()[:2] == [rule, "1"] for line in out.splitlines()), (rule, out)


def test_metrics_say_a_clip_too_short_to_denoise_was_not_denoised() -> None:
    from talkhead.audio.config import AudioConfig
    from talkhead.audio.prepare import prepare_audio

    rng = np.random.default_rng(0)
    cfg = AudioConfig()
    short = (0.05 * rng.standard_normal(2 * cfg.denoise.n_fft - 10)).astype(np.float32)
    assert prepare_audio(short, 16000, cfg, "short.wav").metrics["denoise"] == "off"
    long = (0.05 * rng.standard_normal(16000)).astype(np.float32)
    assert prepare_audio(long, 16000, cfg, "long.wav").metrics["denoise"] == "stationary"
