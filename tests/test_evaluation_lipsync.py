"""Lip sync: the weight-free audio-visual offset (known shifts recovered), the speech envelope
and mouth opening, LSE from embeddings, and SyncNet with weights the test makes (no download)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talkhead.errors import ModelFileError
from talkhead.evaluation.lipsync import (
    SyncNet,
    av_offset,
    av_sync_curve,
    inner_lip_opening,
    lip_extent_opening,
    load_syncnet,
    lse_from_embeddings,
    mfcc_windows,
    speech_envelope,
    syncnet_lse,
)

torch.set_num_threads(1)


def speechlike(rng, T=120) -> np.ndarray:
    """A smooth random positive sequence (syllable-rate bumps)."""
    x = np.convolve(rng.random(T + 8), np.hanning(7), mode="same")[4 : T + 4]
    return x - x.min() + 0.1


def test_identical_sequences_are_in_step(rng):
    e = speechlike(rng)
    lag, corr = av_offset(e, e, 5)
    assert lag == 0 and corr == pytest.approx(1.0)


@pytest.mark.parametrize("k", [-3, -1, 2, 4])
def test_a_known_shift_of_the_envelope_is_recovered(rng, k):
    env = speechlike(rng, 200)
    opening = np.roll(env, k)  # the mouth follows the audio by k frames
    opening[: max(k, 0)] = env[0]
    lag, corr = av_offset(opening, env, 6)
    assert lag == k and corr > 0.95
    lags, curve = av_sync_curve(opening, env, 6)
    assert lags[np.nanargmax(curve)] == k


def test_a_constant_mouth_has_no_correlation(rng):
    lag, corr = av_offset(np.ones(30), speechlike(rng, 30), 3)
    assert lag == 0 and np.isnan(corr)


def test_speech_envelope_is_the_rms_per_frame():
    sr, fps = 16000, 25.0
    n = sr // 25
    audio = np.concatenate([0.5 * np.ones(n), np.zeros(n), -0.2 * np.ones(n)])
    env = speech_envelope(audio, sr, fps, np.array([0, 1, 2, 3]))
    np.testing.assert_allclose(env, [0.5, 0.0, 0.2, 0.0], atol=1e-12)


def test_inner_lip_opening_and_lip_extent():
    lm = np.zeros((2, 68, 3))
    lm[1, [67, 66, 65], 1] = -0.01  # lower inner lip 1 cm down in frame 1
    np.testing.assert_allclose(inner_lip_opening(lm), [0.0, 0.01])
    with pytest.raises(ValueError, match="68"):
        inner_lip_opening(lm[:, :51])
    v = np.zeros((2, 4, 3))
    v[:, 1, 1] = [0.002, 0.005]
    np.testing.assert_allclose(lip_extent_opening(v, np.array([0, 1])), [0.002, 0.005])


def test_lse_of_embeddings_shifted_by_a_known_offset(rng):
    emb = rng.normal(size=(40, 8))
    audio = np.zeros_like(emb)
    audio[3:] = emb[:-3]  # audio window t + 3 matches video window t: the audio lags by 3
    r = lse_from_embeddings(emb, audio, vshift=5)
    assert r["offset_frames"] == -3  # syncnet_python's sign: positive when the video lags
    video_late = lse_from_embeddings(audio, emb, vshift=5)  # video window t + 3 = audio t
    assert video_late["offset_frames"] == 3
    # the first windows have no match within the padding: LSE-D small but not 0; LSE-C > 0
    assert r["lse_d"] < 0.3 * np.median(np.linalg.norm(emb, axis=1)) and r["lse_c"] > 1.0
    same = lse_from_embeddings(emb, emb, vshift=5)
    assert same["offset_frames"] == 0 and same["lse_d"] == 0.0


def test_syncnet_loads_weights_it_saved_and_embeds_windows(tmp_path):
    torch.manual_seed(0)
    net = SyncNet().eval()
    path = tmp_path / "syncnet.pt"
    torch.save(net.state_dict(), path)
    loaded = load_syncnet(path)
    for key, value in net.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    mfcc = mfcc_windows(np.random.default_rng(0).normal(size=16000) * 0.1, 16000, 3)
    assert tuple(mfcc.shape) == (3, 1, 13, 20)
    with torch.no_grad():
        a = loaded.forward_aud(mfcc)
        v = loaded.forward_lip(torch.rand(2, 3, 5, 224, 224) * 255)
    assert a.shape == (3, 1024) and v.shape == (2, 1024)
    frames = (np.random.default_rng(1).random((7, 224, 224)) * 255).astype(np.uint8)
    audio = np.random.default_rng(2).normal(size=8000) * 0.1
    r = syncnet_lse(loaded, frames, audio, 16000, vshift=2)
    assert set(r) == {"lse_d", "lse_c", "offset_frames"} and r["lse_c"] >= 0
    assert abs(r["offset_frames"]) <= 2
    with pytest.raises(ValueError, match="224"):
        syncnet_lse(loaded, frames[:, :100], audio, 16000)


def test_wrong_syncnet_weights_name_the_file(tmp_path):
    missing = tmp_path / "absent.pt"
    with pytest.raises(ModelFileError, match="absent.pt"):
        load_syncnet(missing)
    other = tmp_path / "other.pt"
    torch.save(torch.nn.Linear(3, 4).state_dict(), other)
    with pytest.raises(ModelFileError, match="other.pt.*not SyncNet weights"):
        load_syncnet(other)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ModelFileError, match="junk.pt"):
        load_syncnet(junk)
    smaller = tmp_path / "smaller.pt"
    state = SyncNet().state_dict()
    state["netcnnaud.0.weight"] = state["netcnnaud.0.weight"][:32]
    torch.save(state, smaller)
    with pytest.raises(ModelFileError, match="smaller.pt"):
        load_syncnet(smaller)
