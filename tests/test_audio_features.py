"""Audio features per video frame: MeshTalk's log-mel front end, wav2vec2 hidden states of a
local model, and their alignment to exactly T frames."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from talkhead.audio.feature_config import FeatureConfig
from talkhead.audio.features import (
    align_to_frames,
    frame_coverage,
    frame_times,
    frame_windows,
    log_mel,
    log_mel_rate,
)
from talkhead.audio.features_stage import run_audio_features_stage
from talkhead.audio.wav2vec2 import (
    load_wav2vec2,
    wav2vec2_features,
    wav2vec2_hidden_states,
    wav2vec2_timing,
)
from talkhead.config import from_mapping
from talkhead.errors import CaptureError, ConfigError, ModelFileError
from talkhead.io import save_wav

SR = 16000


def noise(seconds: float, level: float = 1e-3, seed: int = 0) -> np.ndarray:
    n = int(round(seconds * SR))
    return (level * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def tone(seconds: float, freq: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * SR))) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def with_burst(audio: np.ndarray, t: float, length_s: float = 0.02, freq: float = 2000.0):
    """``audio`` plus a Hann-shaped tone burst centred on ``t`` seconds."""
    out = audio.copy()
    n = int(round(length_s * SR))
    start = int(round(t * SR)) - n // 2
    out[start : start + n] += tone(length_s, freq, 0.8) * np.hanning(n).astype(np.float32)
    return out


# ------------------------------------------------------------------------------------------
# the log-mel front end
# ------------------------------------------------------------------------------------------


def htk_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)


def htk_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)


def torchaudio_style_log_mel(x: np.ndarray) -> np.ndarray:
    """torchaudio.transforms.MelSpectrogram(16000, n_fft=2048, win_length=800, hop_length=160,
    n_mels=80) with its defaults (power 2, HTK scale, no filter normalisation, centred frames,
    reflect padding, periodic Hann), then log(max(x, 1e-10)), written out independently with
    torch.stft and the triangular filters of torchaudio's documented construction."""
    spec = torch.stft(
        torch.from_numpy(x.astype(np.float64)),
        n_fft=2048,
        hop_length=160,
        win_length=800,
        window=torch.hann_window(800, periodic=True, dtype=torch.float64),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    power = (spec.abs() ** 2).numpy()  # (1025, M)
    freqs = np.linspace(0, SR / 2, 1025)
    f_pts = htk_hz(np.linspace(htk_mel(0.0), htk_mel(SR / 2), 82))
    down = (freqs[:, None] - f_pts[None, :-2]) / np.diff(f_pts)[None, :-1]
    up = (f_pts[None, 2:] - freqs[:, None]) / np.diff(f_pts)[None, 1:]
    fb = np.maximum(0.0, np.minimum(down, up))  # (1025, 80)
    return np.log(np.maximum(fb.T @ power, 1e-10)).T


def test_log_mel_matches_meshtalks_torchaudio_front_end():
    x = with_burst(noise(1.0, 0.05, seed=3) + tone(1.0, 440.0, 0.3), 0.5)
    ours = log_mel(x)
    ref = torchaudio_style_log_mel(x)
    assert ours.shape == ref.shape == (1 + x.size // 160, 80)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_log_mel_floors_silence_at_the_configured_log():
    mel = log_mel(np.zeros(SR // 10, np.float32), FeatureConfig(log_floor=1e-6))
    np.testing.assert_allclose(mel, math.log(1e-6), rtol=1e-6)


@pytest.mark.parametrize("freq", [440.0, 1000.0, 3000.0])
def test_a_tone_peaks_in_the_mel_bin_centred_nearest_it(freq):
    mel = log_mel(tone(0.5, freq))
    centres = htk_hz(np.linspace(htk_mel(0.0), htk_mel(SR / 2), 82))[1:-1]
    assert int(np.argmax(mel[5:-5].mean(axis=0))) == int(np.argmin(np.abs(centres - freq)))


def test_log_mel_rows_and_rate_follow_the_hop():
    cfg = FeatureConfig(hop_length=320)
    assert log_mel_rate(cfg) == 50.0 and log_mel_rate() == 100.0
    assert log_mel(noise(1.003), cfg).shape == (1 + 16048 // 320, 80)


# ------------------------------------------------------------------------------------------
# alignment to the frames
# ------------------------------------------------------------------------------------------

DURATIONS = [
    (5.095, 25.0, 127),  # audio 15 ms into a 128th frame: T from the video is 127 ...
    (5.095, 25.0, 128),  # ... or 128 with the partial frame
    (3.0, 25.0, 75),  # FaceFormer#70: came out one frame short
    (3.0, 30.0, 90),
    (2.0, 29.97, 60),
]


@pytest.mark.parametrize("mode", ["interpolate", "mean"])
@pytest.mark.parametrize(("seconds", "fps", "n_frames"), DURATIONS)
def test_exactly_t_rows_whatever_the_duration(seconds, fps, n_frames, mode):
    mel = log_mel(noise(seconds, 0.1))
    out = align_to_frames(mel, 100.0, n_frames, fps, mode)
    assert out.shape == (n_frames, 80) and out.dtype == np.float32
    assert frame_coverage(mel.shape[0], 100.0, n_frames, fps).padded == 0


@pytest.mark.parametrize("mode", ["interpolate", "mean"])
@pytest.mark.parametrize(("t", "fps"), [(1.23, 25.0), (0.52, 30.0), (2.93, 25.0), (0.05, 25.0)])
def test_a_burst_at_t_lands_in_frame_round_t_fps(t, fps, mode):
    """round, not floor: frame i stands at i / fps, the centre of its window."""
    n_frames = int(3.0 * fps)
    mel = log_mel(with_burst(noise(3.0), t))
    out = align_to_frames(mel, 100.0, n_frames, fps, mode)
    assert int(np.argmax(out.mean(axis=1))) == round(t * fps)


def test_interpolation_evaluates_the_track_at_the_frame_instants():
    """A track whose rows hold their own instants comes back as the frame instants."""
    rate, first, fps = 50.0, 0.0125, 25.0
    rows = first + np.arange(100) / rate  # 0.0125 .. 1.9925 s
    out = align_to_frames(rows[:, None], rate, 49, fps, "interpolate", first_time_s=first)
    expect = np.maximum(frame_times(49, fps), first)  # frame 0 precedes row 0: edge
    np.testing.assert_allclose(out[:, 0], expect, atol=1e-6)


def test_mean_averages_the_rows_within_half_a_frame():
    rows = np.arange(300, dtype=np.float64)[:, None]  # row m at m / 100 s
    out = align_to_frames(rows, 100.0, 75, 25.0, "mean")
    # frame i: rows with m / 100 in [(i - 0.5) / 25, (i + 0.5) / 25): m in [4i - 2, 4i + 2)
    i = np.arange(1, 74)
    np.testing.assert_allclose(out[1:74, 0], 4 * i - 0.5, atol=1e-5)
    assert out[0, 0] == pytest.approx(0.5)  # rows 0 and 1 only
    assert out[74, 0] == pytest.approx(np.mean([294, 295, 296, 297]))


@pytest.mark.parametrize("pad", ["edge", "zeros"])
def test_audio_shorter_than_the_video_pads_the_frames_after_it(pad):
    mel = log_mel(noise(2.0, 0.1))  # 201 rows, the last at 2.00 s
    out = align_to_frames(mel, 100.0, 60, 25.0, pad=pad)
    cov = frame_coverage(mel.shape[0], 100.0, 60, 25.0)
    # frames after 2.00 s + one row step: 2.04 s (frame 51) onwards
    assert (cov.padded_end, cov.padded_start, cov.padded) == (9, 0, 9)
    expect = mel[-1] if pad == "edge" else np.zeros(80)
    np.testing.assert_allclose(out[51:], np.broadcast_to(expect, (9, 80)), atol=1e-6)
    np.testing.assert_allclose(out[50], mel[200], atol=1e-6)


def test_audio_longer_than_the_video_is_cropped():
    mel = log_mel(noise(3.0, 0.1))
    out = align_to_frames(mel, 100.0, 50, 25.0)
    np.testing.assert_array_equal(out, align_to_frames(mel[:200], 100.0, 50, 25.0))
    # rows from (50 - 0.5) / 25 = 1.98 s: 1.98 .. 3.00
    assert frame_coverage(mel.shape[0], 100.0, 50, 25.0).cropped_rows == 301 - 198


def test_frame_windows_centre_on_each_frame():
    rows = np.arange(1, 301, dtype=np.float64)[:, None]  # row m (at m / 100 s) holds m + 1
    win = frame_windows(rows, 100.0, 75, 25.0, window_s=1.0)
    assert win.shape == (75, 100, 1)
    np.testing.assert_array_equal(win[:, 50, 0], 4 * np.arange(75) + 1)  # row nearest i / 25
    np.testing.assert_array_equal(win[30, :, 0], np.arange(71, 171))
    assert (win[0, :50, 0] == 1).all() and (win[74, 54:, 0] == 300).all()  # edge rows
    zeros = frame_windows(rows, 100.0, 75, 25.0, window_s=1.0, pad="zeros")
    assert (zeros[0, :50, 0] == 0).all() and (zeros[0, 50:, 0] == np.arange(1, 51)).all()
    assert (zeros[74, 54:, 0] == 0).all() and zeros[74, 53, 0] == 300


# ------------------------------------------------------------------------------------------
# wav2vec2
# ------------------------------------------------------------------------------------------


def test_wav2vec2_base_timing():
    """wav2vec2-base: stride 320 (50 Hz), receptive field 400 samples."""
    from transformers import Wav2Vec2Config

    cfg = Wav2Vec2Config()
    rate, first = wav2vec2_timing(cfg.conv_kernel, cfg.conv_stride)
    assert rate == 50.0 and first == pytest.approx(199.5 / SR)


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory):
    """A randomly initialised wav2vec2 (hidden size 32, 2 layers, 50 Hz conv stack) saved to
    a folder with a preprocessor_config.json, as a downloaded model folder looks."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    folder = tmp_path_factory.mktemp("wav2vec2-tiny")
    cfg = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16, 16, 16),
        conv_kernel=(10, 8, 8),
        conv_stride=(5, 8, 8),
        feat_extract_norm="layer",
        num_conv_pos_embeddings=3,
        num_conv_pos_embedding_groups=2,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        layerdrop=0.0,
    )
    torch.manual_seed(0)
    Wav2Vec2Model(cfg).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=SR, do_normalize=True).save_pretrained(folder)
    return folder


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there


def test_tiny_wav2vec2_loads_offline_and_gives_t_aligned_rows(tiny_wav2vec2, offline):
    x = noise(3.0, 0.1)
    states = wav2vec2_features(x, tiny_wav2vec2)
    assert states.shape == ((48000 - 325) // 320 + 1, 32)  # 149 rows at 50 Hz
    enc = load_wav2vec2(tiny_wav2vec2)
    assert enc.rate_hz == 50.0 and enc.first_time_s == pytest.approx(162 / SR)
    out = align_to_frames(states, enc.rate_hz, 75, 25.0, first_time_s=enc.first_time_s)
    assert out.shape == (75, 32)
    assert frame_coverage(len(states), enc.rate_hz, 75, 25.0, enc.first_time_s).padded == 0
    assert np.abs(out).max() > 0


@pytest.mark.parametrize(("t", "fps"), [(1.24, 25.0), (1.5, 30.0)])
def test_wav2vec2_rows_of_a_burst_land_in_its_frame(tiny_wav2vec2, offline, t, fps):
    """Layer 0 (convolutions and a 3-row positional convolution: local) changes most in the
    frame of a burst at t, after alignment."""
    enc = load_wav2vec2(tiny_wav2vec2)
    base = noise(3.0, 0.01)
    a = wav2vec2_hidden_states(enc, base, layer=0)
    b = wav2vec2_hidden_states(enc, with_burst(base, t), layer=0)
    n = int(3.0 * fps)
    diff = np.linalg.norm(
        align_to_frames(b - a, enc.rate_hz, n, fps, first_time_s=enc.first_time_s), axis=1
    )
    assert int(np.argmax(diff)) == round(t * fps)


def test_wav2vec2_layer_out_of_range_names_the_key(tiny_wav2vec2, offline):
    enc = load_wav2vec2(tiny_wav2vec2)
    last = wav2vec2_hidden_states(enc, noise(1.0, 0.1), layer=-1)
    np.testing.assert_array_equal(last, wav2vec2_hidden_states(enc, noise(1.0, 0.1), layer=2))
    with pytest.raises(ConfigError, match=r"audio_features\.wav2vec2_layer: must be in \[-3, 2\]"):
        wav2vec2_hidden_states(enc, noise(1.0), layer=3)


def test_missing_model_dir_is_a_named_error(tmp_path, tiny_wav2vec2):
    missing = tmp_path / "nowhere"
    with pytest.raises(ModelFileError, match=r"audio_features\.wav2vec2_model: .*nowhere: no such"):
        wav2vec2_features(noise(1.0), missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelFileError, match=r"empty/config\.json: missing file config\.json"):
        wav2vec2_features(noise(1.0), empty)
    (empty / "config.json").write_text((tiny_wav2vec2 / "config.json").read_text())
    with pytest.raises(ModelFileError, match=r"missing weights model\.safetensors"):
        wav2vec2_features(noise(1.0), empty)
    (empty / "config.json").write_text(json.dumps({"model_type": "hubert"}))
    with pytest.raises(ModelFileError, match=r"model_type is 'hubert', not 'wav2vec2'"):
        wav2vec2_features(noise(1.0), empty)


# ------------------------------------------------------------------------------------------
# config and stage
# ------------------------------------------------------------------------------------------


def test_config_problems_name_the_keys():
    with pytest.raises(ConfigError, match="audio_features.alignment: must be one of"):
        from_mapping(FeatureConfig, {"alignment": "nearest"}, "audio_features")
    with pytest.raises(
        ConfigError, match=r"audio_features\.win_length: must be <= n_fft \(2048\), got 4096"
    ):
        from_mapping(FeatureConfig, {"win_length": 4096}, "audio_features")
    assert from_mapping(FeatureConfig, {}, "audio_features") == FeatureConfig()


def write_audio(path, audio):
    save_wav(path, audio, SR)
    return path


def test_stage_writes_t_rows_and_meta(tmp_path):
    wav = write_audio(tmp_path / "cleaned_audio.wav", with_burst(noise(5.095, 0.01), 2.0))
    out = tmp_path / "audio" / "features"
    meta = run_audio_features_stage(wav, 128, 25.0, out, {"context_window_s": 1.0})
    mel = np.load(out / "logmel.npy")
    assert mel.shape == (128, 80) and mel.dtype == np.float32
    assert int(np.argmax(mel.mean(axis=1))) == 50
    assert np.load(out / "logmel_windows.npy").shape == (128, 100, 80)
    assert not (out / "wav2vec2.npy").exists()
    assert json.loads((out / "meta.json").read_text()) == json.loads(json.dumps(meta))
    assert meta["n_frames"] == 128 and meta["fps"] == 25.0
    assert meta["frames_after_audio"] == 0
    assert meta["features"]["logmel"]["padded_frames"] == 0
    assert meta["features"]["logmel"]["shape"] == [128, 80]
    assert sorted(p.name for p in out.parent.iterdir()) == ["features"]  # no .partial left


def test_stage_with_wav2vec2(tmp_path, tiny_wav2vec2, offline):
    wav = write_audio(tmp_path / "cleaned_audio.wav", noise(3.0, 0.1))
    out = tmp_path / "features"
    meta = run_audio_features_stage(
        wav, 75, 25.0, out, {"wav2vec2_model": str(tiny_wav2vec2)}, device="cpu"
    )
    assert np.load(out / "wav2vec2.npy").shape == (75, 32)
    w = meta["features"]["wav2vec2"]
    assert (w["dim"], w["rate_hz"], w["layer"], w["padded_frames"]) == (32, 50.0, 2, 0)


def test_stage_refuses_a_missing_model_before_any_output(tmp_path):
    wav = write_audio(tmp_path / "a.wav", noise(1.0))
    with pytest.raises(ModelFileError, match="nowhere"):
        run_audio_features_stage(
            wav, 25, 25.0, tmp_path / "features", {"wav2vec2_model": str(tmp_path / "nowhere")}
        )
    assert not (tmp_path / "features").exists()


@pytest.mark.parametrize("pad", ["edge", "silence"])
def test_stage_pads_short_audio_and_counts_it(tmp_path, pad):
    wav = write_audio(tmp_path / "a.wav", noise(1.8, 0.1))  # 45 frames of audio for 50
    out = tmp_path / "features"
    meta = run_audio_features_stage(wav, 50, 25.0, out, {"pad": pad})
    mel = np.load(out / "logmel.npy")
    assert mel.shape == (50, 80)
    assert meta["frames_after_audio"] == 5  # frames 45..49 stand at 1.80 .. 1.96 s
    if pad == "edge":
        assert meta["features"]["logmel"]["padded_frames"] == 4  # 1.80 s is within a row
        np.testing.assert_array_equal(mel[46:], np.broadcast_to(mel[46], (4, 80)))
    else:
        assert meta["silence_samples_added"] == 2 * SR - 1.8 * SR
        assert meta["features"]["logmel"]["padded_frames"] == 0
        np.testing.assert_allclose(mel[-1], math.log(1e-10), atol=1e-3)  # silence


def test_stage_refuses_audio_much_shorter_than_the_video(tmp_path):
    wav = write_audio(tmp_path / "a.wav", noise(1.0))
    with pytest.raises(CaptureError, match=r"audio_features\.max_pad_s"):
        run_audio_features_stage(wav, 50, 25.0, tmp_path / "features")
    assert not (tmp_path / "features").exists()


# ------------------------------------------------------------------------------------------
# the rule
# ------------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
FEATURES = "results/audio/syn000/SEN-00/features"


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    return subprocess.run([*cmd, *args], cwd=workdir, capture_output=True, text=True, timeout=600)


def test_rule_takes_the_cleaned_audio_and_the_capture_summary(tmp_path):
    """The features of a sequence need its cleaned audio (a stand-in here) and its capture
    summary, made by validate_capture."""
    audio = tmp_path / FEATURES.replace("features", "cleaned_audio.wav")
    audio.parent.mkdir(parents=True)
    audio.touch()
    res = snakemake(tmp_path, FEATURES, "-n", "--quiet", "rules")
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    assert re.search(r"^audio_features\s+1\s*$", out, re.M), out
    assert re.search(r"^validate_capture\s+1\s*$", out, re.M), out


@pytest.mark.slow
def test_rule_writes_t_rows_from_capture_json(tmp_path):
    """The rule alone (its inputs as stand-ins): T and fps come from capture.json."""
    seq = tmp_path / "results" / "audio" / "syn000" / "SEN-00"
    write_audio(seq / "cleaned_audio.wav", noise(5.095, 0.1))
    summary = tmp_path / "results" / "capture" / "syn000" / "SEN-00" / "capture.json"
    summary.parent.mkdir(parents=True)
    summary.write_text(json.dumps({"n_frames": 127, "fps": 25.0}))
    res = snakemake(tmp_path, FEATURES, "--cores", "1", "--allowed-rules", "audio_features")
    assert res.returncode == 0, res.stderr[-3000:]
    assert np.load(seq / "features" / "logmel.npy").shape == (127, 80)
    meta = json.loads((seq / "features" / "meta.json").read_text())
    assert (meta["n_frames"], meta["features"]["logmel"]["cropped_rows"]) == (127, 4)


def test_stage_resamples_audio_at_another_rate(tmp_path):
    import soundfile as sf

    rate = 22050
    t = np.arange(int(2.0 * rate)) / rate
    wav = tmp_path / "a.wav"
    sf.write(wav, (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32), rate)
    meta = run_audio_features_stage(wav, 50, 25.0, tmp_path / "features")
    mel = np.load(tmp_path / "features" / "logmel.npy")
    assert meta["audio_s"] == pytest.approx(2.0, abs=1e-4) and mel.shape == (50, 80)
    ref = align_to_frames(log_mel(tone(2.0, 1000.0)), 100.0, 50, 25.0)
    peak = int(np.argmax(ref[25]))
    assert (np.argmax(mel[1:-1], axis=1) == peak).all()
    np.testing.assert_allclose(mel[1:-1, peak], ref[1:-1, peak], atol=0.05)  # same level at 16 kHz
