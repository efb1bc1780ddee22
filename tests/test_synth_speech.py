"""The synthetic actor's speech: utterances, source-filter synthesis, microphone."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import solve_toeplitz

from talkhead.errors import ConfigError
from talkhead.synth import speech as S

SR = 16000


def _synth(names_durs, f0_hz=120.0, seed=0, sr=SR):
    phones, t = [], 0.0
    for name, d in names_durs:
        phones.append(S.Phone(name, t, t + d))
        t += d
    return phones, S.synthesize(phones, sr, np.random.default_rng(seed), f0_hz=f0_hz)


def _seg(y, a, b, sr=SR):
    return y[int(round(a * sr)) : int(round(b * sr))]


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x))))


def _lpc_formants(x, sr=SR, order=16, pre=0.97):
    """Formant frequencies (Hz, ascending) of a voiced segment by autocorrelation LPC."""
    x = np.append(x[0], x[1:] - pre * x[:-1]) * np.hamming(x.size)
    r = np.correlate(x, x, "full")[x.size - 1 : x.size + order]
    a = solve_toeplitz(r[:-1], -r[1:])
    roots = np.roots(np.r_[1.0, a])
    roots = roots[roots.imag > 0]
    f = np.angle(roots) * sr / (2 * np.pi)
    bw = -np.log(np.abs(roots)) * sr / np.pi
    return np.sort(f[(f > 150) & (bw < 500)])


def _high_fraction(x, cutoff=3000.0, sr=SR):
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    f = np.fft.rfftfreq(x.size, 1 / sr)
    return float(spec[f > cutoff].sum() / spec.sum())


@pytest.fixture(scope="module")
def long_take():
    phones = S.random_utterance(np.random.default_rng(7), 20.0)
    audio = S.synthesize(phones, SR, np.random.default_rng(8))
    return phones, audio


def test_random_utterance_covers_duration_with_plausible_phones():
    phones = S.random_utterance(np.random.default_rng(1), 12.0)
    assert phones[0].phoneme == "SIL" and phones[-1].phoneme == "SIL"
    assert phones[0].start == 0.0 and phones[-1].end == pytest.approx(12.0)
    for a, b in zip(phones[:-1], phones[1:], strict=True):
        assert b.start == pytest.approx(a.end)
    speech = [p for p in phones if p.phoneme != "SIL"]
    assert len(speech) > 40  # ~12 s of speech at several phones per second
    assert 0.05 < phones[-1].duration < 1.0  # the words fill the take
    for p in speech:
        kind = S.PHONEMES[p.phoneme].kind
        if kind in ("vowel", "diphthong"):
            assert 0.08 - 1e-9 <= p.duration <= 0.26 + 1e-9
        else:
            assert 0.04 - 1e-9 <= p.duration <= 0.12 + 1e-9
    inner = [p for p in phones[1:-1] if p.phoneme == "SIL"]
    assert inner, "some words are separated by pauses"
    assert all(0.12 - 1e-9 <= p.duration <= 0.35 + 1e-9 for p in inner)
    again = S.random_utterance(np.random.default_rng(1), 12.0)
    assert again == phones
    assert S.random_utterance(np.random.default_rng(2), 12.0) != phones


def test_synthesize_is_deterministic_and_normalised(long_take):
    phones, audio = long_take
    assert audio.shape == (int(round(phones[-1].end * SR)),)
    assert np.abs(audio).max() == pytest.approx(0.8)
    again = S.synthesize(phones[:20], SR, np.random.default_rng(8))
    assert np.array_equal(again, S.synthesize(phones[:20], SR, np.random.default_rng(8)))
    other = S.synthesize(phones[:20], SR, np.random.default_rng(9))
    assert not np.allclose(again, other)


@pytest.mark.parametrize("vowel", ["AA", "AE", "EH", "IY", "UW", "AH"])
def test_vowel_formants_match_their_targets(vowel):
    _, y = _synth([("SIL", 0.1), (vowel, 0.3), ("SIL", 0.1)])
    f = _lpc_formants(_seg(y, 0.2, 0.3))
    f1, f2, _ = S.PHONEMES[vowel].formants
    assert f[0] == pytest.approx(f1, rel=0.15)
    assert f[1] == pytest.approx(f2, rel=0.15)


def test_pitch_follows_the_requested_f0():
    for f0 in (110.0, 210.0):
        _, y = _synth([("SIL", 0.1), ("AA", 0.3), ("SIL", 0.1)], f0_hz=f0)
        x = _seg(y, 0.18, 0.32)
        ac = np.correlate(x, x, "full")[x.size - 1 :]
        lo, hi = int(SR / 400), int(SR / 70)
        lag = lo + int(np.argmax(ac[lo:hi]))
        assert SR / lag == pytest.approx(f0, rel=0.2)


def test_fricative_s_is_high_and_vowels_low():
    _, y = _synth(
        [
            ("SIL", 0.1),
            ("AA", 0.15),
            ("S", 0.12),
            ("IY", 0.15),
            ("SH", 0.12),
            ("UW", 0.15),
            ("SIL", 0.1),
        ]
    )
    s = _high_fraction(_seg(y, 0.28, 0.35))
    sh = _high_fraction(_seg(y, 0.55, 0.62), cutoff=1800.0)
    vowels = [_high_fraction(_seg(y, a, a + 0.08)) for a in (0.14, 0.41, 0.68)]
    assert s > 0.8
    assert sh > 0.7
    assert max(vowels) < 0.1


def test_nasal_murmur_is_low_and_weaker_than_vowels():
    _, y = _synth([("SIL", 0.1), ("AA", 0.2), ("M", 0.1), ("AA", 0.2), ("SIL", 0.1)])
    murmur, vowel = _seg(y, 0.32, 0.38), _seg(y, 0.15, 0.25)
    assert _high_fraction(murmur, cutoff=1000.0) < 0.1
    assert _rms(murmur) < 0.5 * _rms(vowel)


def test_stop_closures_are_silent_before_their_burst():
    seq = [("SIL", 0.1)]
    for stop in ("P", "T", "K"):
        seq += [("AA", 0.15), (stop, 0.1)]
    phones, y = _synth(seq + [("AA", 0.15), ("SIL", 0.1)])
    vowel = _rms(
        np.concatenate([_seg(y, p.start + 0.03, p.end - 0.03) for p in phones if p.phoneme == "AA"])
    )
    for p in phones:
        if p.phoneme in ("P", "T", "K"):
            r = S.release_time(p)
            closure = _rms(_seg(y, p.start + 0.025, r - 0.005))
            burst = _rms(_seg(y, r, p.end))
            assert closure < 0.02 * vowel, p
            assert burst > 10 * closure, p


def test_voiceless_closures_are_silent_in_running_speech(long_take):
    phones, y = long_take
    vowel = _rms(
        np.concatenate(
            [_seg(y, p.start, p.end) for p in phones if S.PHONEMES[p.phoneme].kind == "vowel"]
        )
    )
    n = 0
    for p in phones:
        if p.phoneme in ("P", "T", "K") and S.release_time(p) - p.start > 0.05:
            assert _rms(_seg(y, p.start + 0.025, S.release_time(p) - 0.005)) < 0.03 * vowel
            n += 1
    assert n >= 3


def test_microphone_level_and_snr():
    _, clean = _synth([("SIL", 0.2), ("AA", 0.2), ("S", 0.1), ("IY", 0.2), ("SIL", 0.3)])
    parts = S.microphone_parts(clean, SR, np.random.default_rng(3), level_db=-26.0, snr_db=20.0)
    speech, noise, mixed = parts["speech"], parts["noise"], parts["mixed"]
    assert np.allclose(mixed, speech + noise)
    assert np.abs(speech).max() == pytest.approx(10 ** (-26 / 20))
    assert np.abs(mixed).max() < 0.1
    assert np.abs(10 * mixed).max() < 0.9  # +20 dB does not clip
    snr = 10 * np.log10(np.mean(speech**2) / np.mean(noise**2))
    assert snr == pytest.approx(20.0, abs=0.1)
    # the noise is broadband with mains hum: a line at 50 Hz above its neighbours
    spec = np.abs(np.fft.rfft(noise)) ** 2
    f = np.fft.rfftfreq(noise.size, 1 / SR)
    at50 = spec[np.abs(f - 50) < 1.5].max()
    around = np.median(spec[(np.abs(f - 50) > 5) & (np.abs(f - 50) < 30)])
    assert at50 > 5 * around
    assert np.mean(spec[f > 4000]) > 0  # hiss
    lower = S.microphone_parts(clean, SR, np.random.default_rng(3), snr_db=5.0)
    snr5 = 10 * np.log10(np.mean(lower["speech"] ** 2) / np.mean(lower["noise"] ** 2))
    assert snr5 == pytest.approx(5.0, abs=0.1)
    assert np.array_equal(S.microphone(clean, SR, np.random.default_rng(3)), mixed)


def test_phoneme_track_labels_frames():
    phones = [S.Phone("SIL", 0, 0.1), S.Phone("P", 0.1, 0.2), S.Phone("AA", 0.2, 0.4)]
    tr = S.render_phoneme_track(phones, 20.0, 10)
    assert list(tr["phoneme"]) == ["SIL", "SIL", "P", "P", "AA", "AA", "AA", "AA", "SIL", "SIL"]
    assert tr["bilabial"].tolist() == [False, False, True, True] + [False] * 6
    assert tr["closure"][2] == 1.0 and tr["jaw"][5] > 0.2
    assert [S.PHONEME_LIST[i] for i in tr["index"]] == list(tr["phoneme"])


def test_bad_input_is_rejected():
    with pytest.raises(ConfigError, match="XX"):
        S.synthesize([S.Phone("XX", 0, 0.1)], SR, np.random.default_rng(0))
    with pytest.raises(ConfigError):
        S.synthesize([S.Phone("AA", 0, 0.1)], 4000, np.random.default_rng(0))
    items = S.phones_to_json([S.Phone("AA", 0.0, 0.1)])
    assert S.phones_from_json(items) == [S.Phone("AA", 0.0, 0.1)]


@pytest.mark.parametrize("duration", [0.12, 0.24, 0.4, 0.6, 1.0])
def test_short_takes_still_speak(duration):
    phones = S.random_utterance(np.random.default_rng(3), duration)
    assert any(p.phoneme != "SIL" for p in phones)
    assert phones[0].start == 0.0 and np.isclose(phones[-1].end, duration)
    audio = S.synthesize(phones, 16000, np.random.default_rng(3))
    assert np.abs(audio).max() > 0.1
