"""The synthetic actor's face: visemes linked to the audio, motion the audio does not explain."""

from __future__ import annotations

import numpy as np
import pytest

from talkhead.errors import ConfigError
from talkhead.synth import speech as S
from talkhead.synth.actor import ActorTake, animate, speaking_actor

FPS, SR = 25.0, 16000
KEYS = {"expression", "rotation", "translation", "jaw", "neck", "eyes", "scale", "frames"}


def _envelope(audio, sr, fps, n_frames):
    """Short-time RMS of the audio in a 1/fps window centred on each frame time, (T,)."""
    hop = sr / fps
    out = np.zeros(n_frames)
    for i in range(n_frames):
        a, b = int(max(0, (i - 0.5) * hop)), int((i + 0.5) * hop)
        seg = audio[a:b]
        out[i] = np.sqrt(np.mean(seg**2)) if seg.size else 0.0
    return out


def _frame(t):
    return int(round(t * FPS))


@pytest.fixture(scope="module")
def take() -> ActorTake:
    return speaking_actor(11, 30.0, FPS, SR, n_expression=20)


def test_take_has_the_flame_keys_and_shapes(take):
    p = take.params
    T = int(round(30.0 * FPS))
    assert set(p) == KEYS and take.n_frames == T
    assert take.audio.shape == (30 * SR,) and take.duration_s == pytest.approx(30.0)
    shapes = {
        "expression": (T, 20),
        "rotation": (T, 3),
        "translation": (T, 3),
        "jaw": (T, 3),
        "neck": (T, 3),
        "eyes": (T, 6),
        "scale": (T, 1),
        "frames": (T,),
    }
    for k, s in shapes.items():
        assert p[k].shape == s, k
        assert np.isfinite(p[k]).all(), k
    assert np.array_equal(p["frames"], np.arange(T))
    assert np.all(p["scale"] == 1.0)
    # a few degrees of head rotation, a few millimetres of translation around zero
    rot_deg = np.rad2deg(p["rotation"])
    assert 0.5 < rot_deg.std(axis=0).max() < 6 and np.abs(rot_deg).max() < 15
    assert np.abs(p["translation"]).max() < 0.02 and np.abs(p["translation"].mean(0)).max() < 0.01
    assert np.rad2deg(np.abs(p["neck"])).max() < 5
    assert np.abs(p["expression"][:, 5:]).max() < 0.2 and p["expression"][:, 5:].std() > 1e-3
    assert take.phonemes_json()[0] == {"phoneme": "SIL", "start": 0.0, "end": take.phones[0].end}


def test_determinism_by_seed():
    a = speaking_actor(3, 2.0, FPS, SR, n_expression=8)
    b = speaking_actor(3, 2.0, FPS, SR, n_expression=8)
    c = speaking_actor(4, 2.0, FPS, SR, n_expression=8)
    assert a.phones == b.phones and np.array_equal(a.audio, b.audio)
    for k in KEYS:
        assert np.array_equal(a.params[k], b.params[k]), k
    assert not np.array_equal(a.audio, c.audio)
    assert not np.allclose(a.params["rotation"], c.params["rotation"])
    # a motion option changes the motion but not the speech
    d = speaking_actor(3, 2.0, FPS, SR, n_expression=8, head_rotation_deg=(5.0, 5.0, 5.0))
    assert np.array_equal(a.audio, d.audio) and np.array_equal(a.params["jaw"], d.params["jaw"])
    assert not np.allclose(a.params["rotation"], d.params["rotation"])


def test_lips_close_on_bilabials_and_jaw_opens_on_open_vowels(take):
    jaw = take.params["jaw"][:, 0]
    closure = take.params["expression"][:, 1]
    bilabial = [p for p in take.phones if p.phoneme in S.BILABIALS]
    assert len(bilabial) >= 5
    for p in bilabial:
        f = _frame(p.centre)
        assert closure[f] > 0.8, p
        assert jaw[f] < 0.04, p
    open_v = [jaw[_frame(p.centre)] for p in take.phones if p.phoneme in ("AA", "AE", "AY")]
    close_v = [jaw[_frame(p.centre)] for p in take.phones if p.phoneme in ("IY", "UW")]
    assert len(open_v) >= 5 and len(close_v) >= 5
    assert min(open_v) > 0.06 and np.mean(open_v) > 0.15
    assert np.mean(open_v) > 2.5 * np.mean(close_v)
    vowel_closure = [
        closure[_frame(p.centre)]
        for p in take.phones
        if p.phoneme in S.VOWELS and p.duration > 0.12
    ]
    assert max(vowel_closure) < 0.4 and np.median(vowel_closure) < 0.1  # lips open
    # rounded vowels round the lips, spread vowels spread them
    rnd, spread = take.params["expression"][:, 0], take.params["expression"][:, 2]
    uw = [_frame(p.centre) for p in take.phones if p.phoneme in ("UW", "OW")]
    iy = [_frame(p.centre) for p in take.phones if p.phoneme in ("IY", "EH")]
    assert rnd[uw].mean() > 0.5 > rnd[iy].mean() + 0.3
    assert spread[iy].mean() > spread[uw].mean() + 0.2


def test_jaw_follows_the_audio_but_head_motion_does_not(take):
    env = _envelope(take.audio, SR, FPS, take.n_frames)
    jaw = take.params["jaw"][:, 0]
    assert np.corrcoef(jaw, env)[0, 1] > 0.5
    for k in range(3):
        assert abs(np.corrcoef(take.params["rotation"][:, k], env)[0, 1]) < 0.25
    assert abs(np.corrcoef(take.params["expression"][:, 4], env)[0, 1]) < 0.25


def _quiet_phones(duration):
    return [S.Phone("SIL", 0.0, duration)]


@pytest.mark.parametrize("seed", range(8))
def test_every_take_of_3_s_blinks_fully(seed):
    n = int(3.0 * FPS)
    p = animate(_quiet_phones(3.0), FPS, n, np.random.default_rng(seed), n_expression=5)
    blink = p["expression"][:, 4]
    assert blink.max() > 0.95
    closed = blink > 0.5
    starts = np.flatnonzero(np.diff(closed.astype(int)) == 1) + 1
    ends = np.flatnonzero(np.diff(closed.astype(int)) == -1) + 1
    assert len(starts) >= 1 and len(starts) <= 2
    for a, b in zip(starts, ends, strict=False):
        assert 1 <= b - a <= 0.25 * FPS  # closed for less than a blink's length
    assert np.mean(blink < 0.05) > 0.8  # eyes are open most of the time
    short = animate(
        _quiet_phones(1.5), FPS, int(1.5 * FPS), np.random.default_rng(seed), n_expression=5
    )
    assert short["expression"][:, 4].max() > 0.95


def test_blinks_recur_every_few_seconds():
    n = int(60 * FPS)
    p = animate(_quiet_phones(60.0), FPS, n, np.random.default_rng(1), n_expression=5)
    closed = p["expression"][:, 4] > 0.5
    starts = (np.flatnonzero(np.diff(closed.astype(int)) == 1) + 1) / FPS
    assert 11 <= len(starts) <= 31
    assert np.diff(starts).min() > 1.9 and np.diff(starts).max() < 5.2


def test_gaze_fixates_and_saccades():
    n = int(20 * FPS)
    p = animate(_quiet_phones(20.0), FPS, n, np.random.default_rng(2), n_expression=5)
    eyes = np.rad2deg(p["eyes"])
    assert np.array_equal(eyes[:, :3], eyes[:, 3:])
    speed = np.linalg.norm(np.diff(eyes[:, :2], axis=0), axis=1) * FPS  # deg / s
    assert np.median(speed) < 1.0  # fixations
    assert (speed > 50).sum() >= 5  # saccades
    assert np.abs(eyes).max() < 25


def test_bad_options_are_rejected():
    with pytest.raises(ConfigError, match="n_expression"):
        animate(_quiet_phones(1.0), FPS, 25, np.random.default_rng(0), n_expression=4)
    with pytest.raises(ConfigError, match="wobble"):
        speaking_actor(0, 1.0, FPS, SR, wobble=1.0)
