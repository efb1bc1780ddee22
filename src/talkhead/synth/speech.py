"""Speech of the synthetic actor: phonemes, a source-filter synthesiser and a quiet microphone.

One phoneme sequence (a list of :class:`Phone`) drives both the audio (here) and the face
(:mod:`talkhead.synth.actor`), so the lips and the sound are linked as in real speech.

- :data:`PHONEMES` is an ARPAbet subset; every phoneme carries its acoustics (formant targets
  or loci, bandwidths, voicing, a frication band) and its viseme (jaw opening, lip rounding,
  lip closure, lip spread and a coarticulation dominance).
- :func:`random_utterance` strings CV/CVC pseudo-words with realistic durations.
- :func:`synthesize` is a Klatt-style cascade synthesiser: Rosenberg glottal pulses with a
  time-varying f0 (declination, pitch accents, jitter, shimmer), formant trajectories
  smoothed across phoneme boundaries, cascaded 2nd-order resonators, aspiration, fricative
  noise bands, stop closures with release bursts and nasal murmur.
- :func:`microphone` turns clean speech into what a quiet distant studio microphone
  records: low level, room reverb, room tone, mains hum and hiss at a set SNR.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import signal
from scipy.ndimage import gaussian_filter1d

from ..errors import ConfigError

# --------------------------------------------------------------------------------------
# Inventory
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Viseme:
    """Mouth target of a phoneme (what the face does while it is spoken).

    Attributes:
        jaw: jaw opening in radians (rotation about the head's x axis, ~0-0.3).
        rounding: lip rounding / protrusion in [0, 1].
        closure: lip closure in [0, 1] (1: lips pressed together).
        spread: lip spread (smile-like) in [0, 1].
        dominance: coarticulation dominance of jaw and closure (Cohen-Massaro weight).
        shape_dominance: dominance of rounding and spread (low for consonants whose lip
            shape is borrowed from the neighbouring vowels).
        reach: scales how far (in time) the dominance extends beyond the phone; strong but
            short-reaching bilabials close the lips without closing the vowels around them.
    """

    jaw: float
    rounding: float = 0.0
    closure: float = 0.0
    spread: float = 0.0
    dominance: float = 1.0
    shape_dominance: float = 1.0
    reach: float = 1.0


@dataclass(frozen=True)
class PhonemeSpec:
    """Acoustic and visual description of one phoneme.

    Attributes:
        name: ARPAbet symbol.
        kind: ``vowel``, ``diphthong``, ``stop``, ``nasal``, ``fricative``, ``approximant``,
            ``aspirate`` or ``silence``.
        voiced: whether the vocal folds vibrate.
        formants: F1-F3 targets (Hz); loci for consonants; ``None`` borrows the next phone's.
        bandwidths: B1-B3 (Hz).
        formants_end: F1-F3 at the end of a diphthong (``None`` otherwise).
        place: place of articulation (bursts of stops depend on it).
        noise_band: (low, high) Hz band of frication / burst noise, or ``None``.
        noise_db: level of that noise relative to the RMS of vowels (dB).
        voicing: amplitude of the glottal source relative to a vowel.
        duration: (min, max) duration in seconds used by :func:`random_utterance`.
        viseme: mouth target.
    """

    name: str
    kind: str
    voiced: bool
    formants: tuple[float, float, float] | None
    bandwidths: tuple[float, float, float]
    viseme: Viseme
    duration: tuple[float, float]
    formants_end: tuple[float, float, float] | None = None
    place: str | None = None
    noise_band: tuple[float, float] | None = None
    noise_db: float = -60.0
    voicing: float = 0.0


_VB = (80.0, 100.0, 150.0)  # vowel bandwidths
_CB = (110.0, 130.0, 200.0)  # consonant bandwidths


def _vowel(name, f, vis, dur=(0.08, 0.20), end=None, kind="vowel"):
    return PhonemeSpec(name, kind, True, f, _VB, vis, dur, formants_end=end, voicing=1.0)


def _inventory() -> dict[str, PhonemeSpec]:
    V = Viseme
    sh = 1.5  # vowels own their lip shape
    lab = V(0.01, 0.0, 1.0, 0.0, 8.0, 0.5, 0.4)  # bilabial closure: strong, short reach
    specs = [
        # vowels: Peterson & Barney / Hillenbrand male averages
        _vowel("IY", (270, 2290, 3010), V(0.05, 0.0, 0.0, 0.75, 1.0, sh)),
        _vowel("IH", (390, 1990, 2550), V(0.09, 0.0, 0.0, 0.45, 1.0, sh)),
        _vowel("EH", (530, 1840, 2480), V(0.15, 0.0, 0.0, 0.55, 1.0, sh)),
        _vowel("AE", (660, 1720, 2410), V(0.24, 0.0, 0.0, 0.40, 1.0, sh)),
        _vowel("AA", (730, 1090, 2440), V(0.28, 0.0, 0.0, 0.05, 1.0, sh)),
        _vowel("AO", (570, 840, 2410), V(0.22, 0.50, 0.0, 0.0, 1.0, sh)),
        _vowel("AH", (620, 1200, 2500), V(0.20, 0.0, 0.0, 0.10, 1.0, sh)),
        _vowel("UH", (440, 1020, 2240), V(0.10, 0.50, 0.0, 0.0, 1.0, sh)),
        _vowel("UW", (300, 870, 2240), V(0.06, 0.90, 0.0, 0.0, 1.0, 2.0)),
        _vowel("ER", (490, 1350, 1690), V(0.10, 0.35, 0.0, 0.0, 1.0, sh)),
        _vowel(
            "EY",
            (480, 2000, 2650),
            V(0.12, 0.0, 0.0, 0.55, 1.0, sh),
            (0.14, 0.24),
            end=(330, 2300, 2900),
            kind="diphthong",
        ),
        _vowel(
            "AY",
            (700, 1200, 2500),
            V(0.25, 0.0, 0.0, 0.30, 1.0, sh),
            (0.15, 0.26),
            end=(400, 2000, 2600),
            kind="diphthong",
        ),
        _vowel(
            "OW",
            (520, 900, 2400),
            V(0.15, 0.80, 0.0, 0.0, 1.0, 2.0),
            (0.14, 0.24),
            end=(350, 800, 2300),
            kind="diphthong",
        ),
        # stops: formants are loci; closure then a burst at the end of the phone
        PhonemeSpec(
            "P",
            "stop",
            False,
            (250, 900, 2200),
            _CB,
            lab,
            (0.07, 0.12),
            place="bilabial",
            noise_band=(400, 2500),
            noise_db=-8.0,
        ),
        PhonemeSpec(
            "B",
            "stop",
            True,
            (250, 900, 2200),
            _CB,
            lab,
            (0.06, 0.11),
            place="bilabial",
            noise_band=(400, 2500),
            noise_db=-14.0,
            voicing=0.035,
        ),
        PhonemeSpec(
            "T",
            "stop",
            False,
            (300, 1700, 2600),
            _CB,
            V(0.05, 0.0, 0.0, 0.1, 1.5, 0.2),
            (0.07, 0.12),
            place="alveolar",
            noise_band=(3000, 7000),
            noise_db=-6.0,
        ),
        PhonemeSpec(
            "D",
            "stop",
            True,
            (300, 1700, 2600),
            _CB,
            V(0.05, 0.0, 0.0, 0.1, 1.5, 0.2),
            (0.06, 0.11),
            place="alveolar",
            noise_band=(3000, 7000),
            noise_db=-12.0,
            voicing=0.035,
        ),
        PhonemeSpec(
            "K",
            "stop",
            False,
            (300, 1900, 2300),
            _CB,
            V(0.08, 0.0, 0.0, 0.0, 0.8, 0.2),
            (0.07, 0.12),
            place="velar",
            noise_band=(1500, 3500),
            noise_db=-6.0,
        ),
        PhonemeSpec(
            "G",
            "stop",
            True,
            (300, 1900, 2300),
            _CB,
            V(0.08, 0.0, 0.0, 0.0, 0.8, 0.2),
            (0.06, 0.11),
            place="velar",
            noise_band=(1500, 3500),
            noise_db=-12.0,
            voicing=0.035,
        ),
        # nasals: murmur (low first resonance, weak upper ones)
        PhonemeSpec(
            "M",
            "nasal",
            True,
            (280, 1000, 2300),
            (100, 300, 400),
            lab,
            (0.05, 0.10),
            place="bilabial",
            voicing=0.35,
        ),
        PhonemeSpec(
            "N",
            "nasal",
            True,
            (280, 1500, 2500),
            (100, 300, 400),
            V(0.06, 0.0, 0.0, 0.1, 1.2, 0.2),
            (0.05, 0.10),
            place="alveolar",
            voicing=0.35,
        ),
        PhonemeSpec(
            "NG",
            "nasal",
            True,
            (280, 1900, 2500),
            (100, 300, 400),
            V(0.08, 0.0, 0.0, 0.0, 0.8, 0.2),
            (0.05, 0.10),
            place="velar",
            voicing=0.35,
        ),
        # fricatives: noise bands (levels relative to vowel RMS)
        PhonemeSpec(
            "F",
            "fricative",
            False,
            (300, 1100, 2300),
            _CB,
            V(0.04, 0.0, 0.45, 0.0, 3.0, 0.5, 0.6),
            (0.07, 0.12),
            place="labiodental",
            noise_band=(1200, 7500),
            noise_db=-20.0,
        ),
        PhonemeSpec(
            "V",
            "fricative",
            True,
            (300, 1100, 2300),
            _CB,
            V(0.04, 0.0, 0.45, 0.0, 3.0, 0.5, 0.6),
            (0.05, 0.10),
            place="labiodental",
            noise_band=(1200, 7500),
            noise_db=-24.0,
            voicing=0.3,
        ),
        PhonemeSpec(
            "TH",
            "fricative",
            False,
            (300, 1400, 2600),
            _CB,
            V(0.05, 0.0, 0.0, 0.1, 1.5, 0.2),
            (0.07, 0.12),
            place="dental",
            noise_band=(1400, 7500),
            noise_db=-22.0,
        ),
        PhonemeSpec(
            "DH",
            "fricative",
            True,
            (300, 1400, 2600),
            _CB,
            V(0.05, 0.0, 0.0, 0.1, 1.5, 0.2),
            (0.04, 0.08),
            place="dental",
            noise_band=(1400, 7500),
            noise_db=-26.0,
            voicing=0.3,
        ),
        PhonemeSpec(
            "S",
            "fricative",
            False,
            (300, 1700, 2600),
            _CB,
            V(0.03, 0.0, 0.0, 0.3, 2.0, 0.3),
            (0.08, 0.12),
            place="alveolar",
            noise_band=(4000, 8000),
            noise_db=-6.0,
        ),
        PhonemeSpec(
            "Z",
            "fricative",
            True,
            (300, 1700, 2600),
            _CB,
            V(0.03, 0.0, 0.0, 0.3, 2.0, 0.3),
            (0.06, 0.10),
            place="alveolar",
            noise_band=(4000, 8000),
            noise_db=-12.0,
            voicing=0.3,
        ),
        PhonemeSpec(
            "SH",
            "fricative",
            False,
            (300, 1900, 2400),
            _CB,
            V(0.04, 0.65, 0.0, 0.0, 2.0, 2.0),
            (0.08, 0.12),
            place="postalveolar",
            noise_band=(2000, 5000),
            noise_db=-6.0,
        ),
        # approximants
        PhonemeSpec(
            "L",
            "approximant",
            True,
            (360, 1200, 2800),
            (100, 120, 200),
            V(0.09, 0.0, 0.0, 0.1, 0.8, 0.2),
            (0.04, 0.08),
            place="alveolar",
            voicing=0.6,
        ),
        PhonemeSpec(
            "R",
            "approximant",
            True,
            (420, 1100, 1600),
            (100, 120, 200),
            V(0.07, 0.50, 0.0, 0.0, 1.0, 1.0),
            (0.04, 0.08),
            place="postalveolar",
            voicing=0.6,
        ),
        PhonemeSpec(
            "W",
            "approximant",
            True,
            (300, 650, 2200),
            (100, 120, 200),
            V(0.05, 0.95, 0.0, 0.0, 2.5, 2.5),
            (0.04, 0.08),
            place="bilabial",
            voicing=0.6,
        ),
        PhonemeSpec(
            "Y",
            "approximant",
            True,
            (260, 2100, 3000),
            (100, 120, 200),
            V(0.04, 0.0, 0.0, 0.6, 1.0, 1.0),
            (0.04, 0.07),
            place="palatal",
            voicing=0.6,
        ),
        PhonemeSpec(
            "HH",
            "aspirate",
            False,
            None,
            (200, 200, 250),
            V(0.10, 0.0, 0.0, 0.0, 0.2, 0.1),
            (0.04, 0.07),
            place="glottal",
            noise_db=-14.0,
        ),
        PhonemeSpec(
            "SIL", "silence", False, None, _VB, V(0.01, 0.0, 0.7, 0.0, 0.8, 0.5), (0.1, 0.5)
        ),
    ]
    return {s.name: s for s in specs}


PHONEMES: dict[str, PhonemeSpec] = _inventory()
"""The phoneme inventory, keyed by ARPAbet symbol."""

PHONEME_LIST: tuple[str, ...] = tuple(PHONEMES)
"""Fixed order of the inventory (indices of :func:`render_phoneme_track`)."""

VOWELS = tuple(n for n, s in PHONEMES.items() if s.kind in ("vowel", "diphthong"))
BILABIALS = ("P", "B", "M")

_NEUTRAL = (500.0, 1500.0, 2500.0)
_UPPER_FORMANTS = ((3500.0, 250.0), (4500.0, 300.0))  # F4, F5 (Hz, bandwidth)
_BURST_S = 0.012  # length of a stop's release burst, at the end of the stop
_VOT_S = 0.035  # aspiration after a voiceless stop, at the start of the next phone


@dataclass(frozen=True)
class Phone:
    """One phoneme with its start and end time in seconds."""

    phoneme: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def centre(self) -> float:
        return 0.5 * (self.start + self.end)


def spec_of(phoneme: str) -> PhonemeSpec:
    """The :class:`PhonemeSpec` of an ARPAbet symbol (raises ConfigError when unknown)."""
    try:
        return PHONEMES[phoneme]
    except KeyError:
        raise ConfigError(f"unknown phoneme {phoneme!r}; known: {' '.join(PHONEME_LIST)}") from None


def release_time(phone: Phone) -> float:
    """Time (s) at which a stop's closure ends and its burst starts."""
    return phone.end - min(_BURST_S, 0.3 * phone.duration)


def phones_to_json(phones: Sequence[Phone]) -> list[dict]:
    """``[{"phoneme", "start", "end"}]`` as written to ``phonemes.json``."""
    return [{"phoneme": p.phoneme, "start": float(p.start), "end": float(p.end)} for p in phones]


def phones_from_json(items: Sequence[dict]) -> list[Phone]:
    """Inverse of :func:`phones_to_json` (validates the phoneme symbols)."""
    phones = [Phone(str(d["phoneme"]), float(d["start"]), float(d["end"])) for d in items]
    for p in phones:
        spec_of(p.phoneme)
    return phones


# --------------------------------------------------------------------------------------
# Utterances
# --------------------------------------------------------------------------------------

_ONSETS = (
    "P",
    "B",
    "T",
    "D",
    "K",
    "G",
    "M",
    "N",
    "F",
    "V",
    "TH",
    "DH",
    "S",
    "Z",
    "SH",
    "L",
    "R",
    "W",
    "Y",
    "HH",
)
_CODAS = ("P", "B", "T", "D", "K", "G", "M", "N", "NG", "F", "V", "S", "Z", "SH", "L", "R")


def _draw(rng: np.random.Generator, name: str, rate: float) -> float:
    lo, hi = PHONEMES[name].duration
    return float(rng.uniform(lo, hi)) / rate


def random_utterance(
    rng: np.random.Generator,
    duration_s: float,
    *,
    syllables_per_word: tuple[int, int] = (1, 3),
    onset_prob: float = 0.85,
    coda_prob: float = 0.4,
    pause_prob: float = 0.25,
    pause_s: tuple[float, float] = (0.12, 0.35),
    lead_s: tuple[float, float] = (0.15, 0.4),
    tail_s: tuple[float, float] = (0.15, 0.4),
    speech_rate: float = 1.0,
) -> list[Phone]:
    """Pseudo-words of CV / CVC syllables filling ``duration_s`` seconds.

    The phones are contiguous, start at 0 and end exactly at ``duration_s``: leading
    silence, words separated now and then by a short pause (SIL), trailing silence. Leading
    and trailing silence take at most 15 % of the take each, and a take too short for any
    word holds one vowel, so every take has speech.

    Args:
        rng: random generator (the only source of randomness).
        duration_s: total length in seconds.
        syllables_per_word: inclusive range of syllables per word.
        onset_prob, coda_prob: probability that a syllable has an onset / coda consonant.
        pause_prob: probability of a pause between two words.
        pause_s, lead_s, tail_s: ranges of pause, leading and trailing silence (s).
        speech_rate: >1 speaks faster (divides every phone duration).

    Returns:
        list of :class:`Phone` covering [0, duration_s].
    """
    if duration_s <= 0:
        raise ConfigError(f"duration_s must be positive, got {duration_s}")
    if speech_rate <= 0:
        raise ConfigError(f"speech_rate must be positive, got {speech_rate}")
    # Short takes keep most of their time for speech: silences take at most 15 % each.
    lead = min(float(rng.uniform(*lead_s)), 0.15 * duration_s)
    tail_min = min(float(tail_s[0]), 0.15 * duration_s)
    names: list[str] = []
    durs: list[float] = []
    t = lead
    vowel_weights = np.array([3, 3, 3, 2, 3, 1.5, 3, 1, 2, 1, 1.5, 1.5, 1.5])
    vowel_weights = vowel_weights / vowel_weights.sum()
    misses = 0
    while misses < 8:  # a word that does not fit is redrawn a few times (shorter ones fit)
        word_n: list[str] = []
        word_d: list[float] = []
        n_syl = int(rng.integers(syllables_per_word[0], syllables_per_word[1] + 1))
        for _ in range(n_syl):
            if rng.random() < onset_prob:
                c = str(rng.choice(_ONSETS))
                word_n.append(c)
                word_d.append(_draw(rng, c, speech_rate))
            v = str(rng.choice(VOWELS, p=vowel_weights))
            word_n.append(v)
            word_d.append(_draw(rng, v, speech_rate))
            if rng.random() < coda_prob:
                c = str(rng.choice(_CODAS))
                word_n.append(c)
                word_d.append(_draw(rng, c, speech_rate))
        pause = float(rng.uniform(*pause_s)) if (names and rng.random() < pause_prob) else 0.0
        if t + pause + sum(word_d) > duration_s - tail_min:
            misses += 1
            continue
        if pause > 0:
            names.append("SIL")
            durs.append(pause)
        names += word_n
        durs += word_d
        t += pause + sum(word_d)
    if not names:  # too short for any drawn word: one vowel fills the time there is
        names = [str(rng.choice(VOWELS, p=vowel_weights))]
        durs = [duration_s - tail_min - lead]
    phones = [Phone("SIL", 0.0, min(lead, duration_s))]
    t = phones[0].end
    for n, d in zip(names, durs, strict=True):
        phones.append(Phone(n, t, t + d))
        t += d
    if t < duration_s:
        phones.append(Phone("SIL", t, float(duration_s)))
    return phones


# --------------------------------------------------------------------------------------
# Synthesis
# --------------------------------------------------------------------------------------


def _phone_index(phones: Sequence[Phone], times: np.ndarray) -> np.ndarray:
    """Index of the phone containing each time (-1 outside every phone); times (N,)."""
    starts = np.array([p.start for p in phones])
    ends = np.array([p.end for p in phones])
    idx = np.searchsorted(starts, times, side="right") - 1
    inside = (idx >= 0) & (times < ends[np.clip(idx, 0, None)])
    return np.where(inside, idx, -1)


def _formant_targets(phones: Sequence[Phone]) -> list[tuple[tuple, tuple]]:
    """Start and end F1-F3 of every phone; phones without their own borrow a neighbour's."""
    own = [spec_of(p.phoneme).formants for p in phones]
    out = []
    for i, p in enumerate(phones):
        spec = spec_of(p.phoneme)
        f = own[i]
        if f is None:
            nxt = [g for g in own[i + 1 :] if g is not None]
            prv = [g for g in own[:i] if g is not None]
            f = nxt[0] if nxt else (prv[-1] if prv else _NEUTRAL)
        out.append((tuple(f), tuple(spec.formants_end or f)))
    return out


def _controls(phones: Sequence[Phone], n_ctrl: int, dt: float, rng: np.random.Generator):
    """Per-control-step targets before smoothing.

    Returns:
        formants (C, 3), bandwidths (C, 3), voicing (C,), aspiration (C,), vowel (C,) bool.
    """
    t = np.arange(n_ctrl) * dt
    idx = _phone_index(phones, t)
    formants = np.tile(np.asarray(_NEUTRAL), (n_ctrl, 1))
    bws = np.tile(np.asarray(_VB), (n_ctrl, 1))
    voicing = np.zeros(n_ctrl)
    asp = np.zeros(n_ctrl)
    vowel = np.zeros(n_ctrl, bool)
    targets = _formant_targets(phones)
    for i, p in enumerate(phones):
        sel = idx == i
        if not sel.any():
            continue
        spec = spec_of(p.phoneme)
        f0, f1 = (np.asarray(x, float) for x in targets[i])
        frac = np.clip((t[sel] - p.start) / max(p.duration, 1e-6), 0.0, 1.0)[:, None]
        formants[sel] = f0 + (f1 - f0) * frac
        bws[sel] = spec.bandwidths
        if spec.kind in ("vowel", "diphthong"):
            vowel[sel] = True
            voicing[sel] = spec.voicing * 10 ** (rng.normal(0.0, 1.0) / 20)
        elif spec.kind == "stop":
            voicing[sel] = spec.voicing  # voice bar of B D G during the closure
        elif spec.kind == "aspirate":
            asp[sel] = 1.0
        else:
            voicing[sel] = spec.voicing
        # aspiration (voice onset time) after a voiceless stop released into a sonorant
        if spec.kind == "stop" and not spec.voiced and i + 1 < len(phones):
            nxt = phones[i + 1]
            if spec_of(nxt.phoneme).kind in ("vowel", "diphthong", "approximant"):
                vot = min(_VOT_S, 0.4 * nxt.duration)
                sel2 = (t >= nxt.start) & (t < nxt.start + vot)
                asp[sel2] = 0.6
                voicing[sel2] = 0.0
    return formants, bws, voicing, asp, vowel


def _f0_contour(
    phones: Sequence[Phone],
    t: np.ndarray,
    rng: np.random.Generator,
    f0_hz: float,
    declination: float,
    accent: float,
    drift: float,
) -> np.ndarray:
    """f0 (Hz) at times t (C,): phrase declination, pitch accents on vowels, slow drift."""
    f0 = np.ones_like(t)
    # phrases are separated by silences of at least 100 ms
    bounds = [0.0]
    for p in phones:
        if p.phoneme == "SIL" and p.duration >= 0.1:
            bounds += [p.start, p.end]
    bounds.append(float(t[-1]) + 1e-9)
    for a, b in zip(bounds[::2], bounds[1::2], strict=False):
        if b - a < 1e-3:
            continue
        sel = (t >= a) & (t < b)
        f0[sel] *= 1.0 + declination * (0.5 - (t[sel] - a) / (b - a))
    for p in phones:
        if p.phoneme in VOWELS and rng.random() < 0.35:
            amp = accent * rng.uniform(0.5, 1.5)
            f0 *= 1.0 + amp * np.exp(-0.5 * ((t - p.centre) / (0.6 * p.duration)) ** 2)
    steps = max(2, int(t[-1] / 0.25) + 2)
    knots = rng.normal(0.0, drift, steps)
    f0 *= 1.0 + np.interp(t, np.linspace(0, t[-1] + 1e-9, steps), knots)
    return f0_hz * f0


def _rosenberg(phase_frac: np.ndarray, open_q: float = 0.4, close_q: float = 0.16) -> np.ndarray:
    """Rosenberg glottal flow pulse at cycle positions in [0, 1); same shape as input."""
    g = np.zeros_like(phase_frac)
    rise = phase_frac < open_q
    g[rise] = 0.5 * (1.0 - np.cos(np.pi * phase_frac[rise] / open_q))
    fall = (~rise) & (phase_frac < open_q + close_q)
    g[fall] = np.cos(0.5 * np.pi * (phase_frac[fall] - open_q) / close_q)
    return g


def _glottal_source(
    f0: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    jitter: float,
    shimmer: float,
) -> np.ndarray:
    """Glottal flow (N,) for a per-sample f0 (N,) with per-cycle jitter and shimmer."""
    phase0 = np.cumsum(f0 / sample_rate)
    n_cyc = int(phase0[-1]) + 2
    cyc = np.floor(phase0).astype(int)
    f0j = f0 * (1.0 + jitter * rng.standard_normal(n_cyc))[cyc]
    phase = np.cumsum(f0j / sample_rate)
    cyc = np.floor(phase).astype(int)
    amp = 10 ** (shimmer * rng.standard_normal(int(phase[-1]) + 2) / 20)
    return _rosenberg(phase - cyc) * amp[cyc]


def _cascade(
    x: np.ndarray,
    freqs: np.ndarray,
    bws: np.ndarray,
    sample_rate: int,
    block: int,
) -> np.ndarray:
    """Time-varying cascade of Klatt resonators (unit DC gain each).

    Args:
        x: (C, N) source channels filtered by the same tract.
        freqs, bws: (B, K) resonance frequencies and bandwidths (Hz), one row per block of
            ``block`` samples (B = ceil(N / block)).
    Returns:
        (C, N) filtered signals. Coefficients change at block edges; the state is carried
        as the resonators' past outputs, so the filter is an exact time-varying direct form.
    """
    c_all = -np.exp(-2 * np.pi * bws / sample_rate)
    b_all = 2 * np.exp(-np.pi * bws / sample_rate) * np.cos(2 * np.pi * freqs / sample_rate)
    a_all = 1.0 - b_all - c_all
    n_sec = freqs.shape[1]
    y1 = np.zeros((n_sec, x.shape[0]))
    y2 = np.zeros((n_sec, x.shape[0]))
    out = np.empty_like(x)
    sos = np.zeros((n_sec, 6))
    sos[:, 3] = 1.0
    for k, s in enumerate(range(0, x.shape[1], block)):
        a, b, c = a_all[k], b_all[k], c_all[k]
        sos[:, 0], sos[:, 4], sos[:, 5] = a, -b, -c
        zi = np.stack([b[:, None] * y1 + c[:, None] * y2, c[:, None] * y1], axis=-1)
        out[:, s : s + block], zf = signal.sosfilt(sos, x[:, s : s + block], axis=-1, zi=zi)
        y1 = zf[..., 1] / c[:, None]
        y2 = (zf[..., 0] - b[:, None] * y1) / c[:, None]
    return out


def _band_noise(
    n: int,
    band: tuple[float, float],
    sample_rate: int,
    rng: np.random.Generator,
    order: int = 2,
) -> np.ndarray:
    """Unit-RMS white noise (n,) band-passed to ``band`` Hz (clamped below Nyquist)."""
    hi = min(band[1], 0.45 * sample_rate)
    lo = min(band[0], 0.5 * hi)
    sos = signal.butter(order, [lo, hi], btype="band", fs=sample_rate, output="sos")
    z = signal.sosfilt(sos, rng.standard_normal(n + 256))[256:]
    return z / (np.sqrt(np.mean(z**2)) + 1e-12)


def _ramp_env(n: int, ramp: int) -> np.ndarray:
    """(n,) envelope rising and falling with raised-cosine ramps of ``ramp`` samples."""
    env = np.ones(n)
    r = min(ramp, n // 2)
    if r > 0:
        w = 0.5 * (1 - np.cos(np.pi * (np.arange(r) + 0.5) / r))
        env[:r] = w
        env[n - r :] = w[::-1]
    return env


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0


def synthesize(
    phones: Sequence[Phone],
    sample_rate: int,
    rng: np.random.Generator,
    f0_hz: float = 120.0,
    *,
    duration_s: float | None = None,
    declination: float = 0.2,
    accent: float = 0.15,
    drift: float = 0.02,
    jitter: float = 0.01,
    shimmer_db: float = 0.4,
    breathiness: float = 0.04,
    formant_scale: float = 1.0,
    peak: float = 0.8,
) -> np.ndarray:
    """Source-filter speech for a phone sequence.

    Args:
        phones: sorted phones (gaps are silence).
        sample_rate: Hz (>= 8000).
        rng: random generator (noise, jitter, shimmer, accents).
        f0_hz: mean pitch (Hz); ~120 for a male voice, ~210 for a female one.
        duration_s: output length (default: the end of the last phone).
        declination: relative f0 fall over a phrase.
        accent: relative height of the pitch accents given to ~1/3 of the vowels.
        drift: std of a slow relative f0 wander.
        jitter: relative per-cycle f0 perturbation.
        shimmer_db: per-cycle amplitude perturbation (dB std).
        breathiness: aspiration noise mixed into voicing, relative to the pulse amplitude.
        formant_scale: multiplies every formant (vocal tract length: ~1.15 for a female).
        peak: peak absolute value of the output.

    Returns:
        (N,) float64 waveform, N = round(duration_s * sample_rate), peak ``peak``.
    """
    if sample_rate < 8000:
        raise ConfigError(f"sample_rate must be >= 8000 Hz, got {sample_rate}")
    phones = sorted(phones, key=lambda p: p.start)
    if duration_s is None:
        duration_s = phones[-1].end if phones else 0.0
    n = int(round(duration_s * sample_rate))
    if n == 0 or not phones:
        return np.zeros(n)
    dt = 0.001
    n_ctrl = int(np.ceil(n / sample_rate / dt)) + 2
    tc = np.arange(n_ctrl) * dt
    formants, bws, voicing, asp, vowel = _controls(phones, n_ctrl, dt, rng)
    formants = gaussian_filter1d(formants, 12.0, axis=0, mode="nearest") * formant_scale
    bws = gaussian_filter1d(bws, 8.0, axis=0, mode="nearest")
    voicing = gaussian_filter1d(voicing, 4.0, mode="nearest")
    asp = gaussian_filter1d(asp, 3.0, mode="nearest")
    f0c = _f0_contour(phones, tc, rng, f0_hz, declination, accent, drift)

    ts = np.arange(n) / sample_rate
    f0 = np.interp(ts, tc, f0c)
    v_amp = np.interp(ts, tc, voicing)
    a_amp = np.interp(ts, tc, asp)
    flow = _glottal_source(f0, sample_rate, rng, jitter, shimmer_db)
    breath = breathiness * rng.standard_normal(n) * (0.3 + flow)
    src = np.stack([(flow + breath) * v_amp, rng.standard_normal(n) * a_amp])

    # per-block resonances: F1-F3 from the controls, F4/F5 fixed (below Nyquist only)
    block = max(1, int(round(0.004 * sample_rate)))
    centres = (np.arange(0, n, block) + 0.5 * block) / sample_rate
    ci = np.clip(np.round(centres / dt).astype(int), 0, n_ctrl - 1)
    upper = [
        (f * formant_scale, b) for f, b in _UPPER_FORMANTS if f * formant_scale < 0.45 * sample_rate
    ]
    fb = np.concatenate([formants[ci], np.array([[f for f, _ in upper]] * len(ci))], axis=1)
    bb = np.concatenate([bws[ci], np.array([[b for _, b in upper]] * len(ci))], axis=1)
    fb = np.minimum(fb, 0.45 * sample_rate)
    tract = _cascade(src, fb, bb, sample_rate, block)
    tract = np.diff(tract, axis=1, prepend=0.0)  # lip radiation
    voiced, aspiration = tract

    vowel_s = np.interp(ts, tc, vowel.astype(float)) > 0.5
    ref = _rms(voiced[vowel_s]) if vowel_s.any() else _rms(voiced)
    ref = ref if ref > 0 else 1.0
    out = voiced.copy()
    asp_s = a_amp > 0.5 * max(float(a_amp.max()), 1e-9)
    if asp_s.any():
        gain = _rms(aspiration[asp_s]) / _rms(a_amp[asp_s])
        out += aspiration * ref * 10 ** (PHONEMES["HH"].noise_db / 20) / max(gain, 1e-12)

    ramp = int(0.015 * sample_rate)
    for p in phones:
        spec = spec_of(p.phoneme)
        if spec.noise_band is None:
            continue
        if spec.kind == "fricative":
            s, e = int(round(p.start * sample_rate)), int(round(p.end * sample_rate))
            env = _ramp_env(e - s, ramp)
            order = 3 if p.phoneme in ("S", "Z") else 2
        elif spec.kind == "stop":
            s, e = int(round(release_time(p) * sample_rate)), int(round(p.end * sample_rate))
            k = np.arange(e - s)
            env = np.minimum(1.0, (k + 1) / max(1, int(0.001 * sample_rate)))
            env = env * np.exp(-k / max(1.0, (e - s) / 3.0))
            order = 2
        else:
            continue
        e = min(e, n)
        if e - s < 2:
            continue
        noise = _band_noise(e - s, spec.noise_band, sample_rate, rng, order)
        out[s:e] += noise * env[: e - s] * ref * 10 ** (spec.noise_db / 20)

    sos = signal.butter(2, 50.0, btype="high", fs=sample_rate, output="sos")
    out = signal.sosfilt(sos, out)
    m = float(np.abs(out).max())
    return out * (peak / m) if m > 0 else out


# --------------------------------------------------------------------------------------
# Microphone
# --------------------------------------------------------------------------------------


def _coloured_noise(
    n: int, sample_rate: int, rng: np.random.Generator, exponent: float, f_lo: float = 20.0
) -> np.ndarray:
    """Unit-RMS noise (n,) with power spectrum ~ 1/f**exponent above ``f_lo`` Hz."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sample_rate)
    shape = np.zeros_like(f)
    keep = f >= f_lo
    shape[keep] = f[keep] ** (-exponent / 2)
    z = np.fft.irfft(spec * shape, n)
    return z / (_rms(z) + 1e-12)


def room_noise(
    n: int,
    sample_rate: int,
    rng: np.random.Generator,
    *,
    brown_fraction: float = 0.4,
    hum_hz: float = 50.0,
    hum_db: float = -14.0,
    hiss_db: float = -18.0,
) -> np.ndarray:
    """Unit-RMS background of a quiet studio (n,).

    Room tone (pink and brown noise, ``brown_fraction`` of its power brown), mains hum at
    ``hum_hz`` with odd harmonics, and a high-frequency hiss (> 4 kHz); ``hum_db`` and
    ``hiss_db`` are their powers relative to the room tone.
    """
    if n == 0:
        return np.zeros(0)
    room = np.sqrt(1 - brown_fraction) * _coloured_noise(n, sample_rate, rng, 1.0) + np.sqrt(
        brown_fraction
    ) * _coloured_noise(n, sample_rate, rng, 2.0)
    t = np.arange(n) / sample_rate
    hum = np.zeros(n)
    for k, a in ((1, 1.0), (3, 0.5), (5, 0.25)):
        if k * hum_hz < 0.45 * sample_rate:
            hum += a * np.sin(2 * np.pi * k * hum_hz * t + rng.uniform(0, 2 * np.pi))
    hum /= _rms(hum) + 1e-12
    hp = min(4000.0, 0.3 * sample_rate)
    sos = signal.butter(2, hp, btype="high", fs=sample_rate, output="sos")
    hiss = signal.sosfilt(sos, rng.standard_normal(n))
    hiss /= _rms(hiss) + 1e-12
    z = room + 10 ** (hum_db / 20) * hum + 10 ** (hiss_db / 20) * hiss
    return z / (_rms(z) + 1e-12)


def room_impulse_response(
    sample_rate: int,
    rng: np.random.Generator,
    rt60_s: float = 0.25,
    wet_db: float = -12.0,
) -> np.ndarray:
    """(L,) impulse response: a direct path plus an exponentially decaying diffuse tail.

    ``rt60_s`` is the time the tail takes to fall by 60 dB; ``wet_db`` the tail's energy
    relative to the direct path.
    """
    if rt60_s <= 0:
        return np.ones(1)
    pre = int(0.005 * sample_rate)
    k = np.arange(int(rt60_s * sample_rate))
    tail = rng.standard_normal(k.size) * np.exp(-6.9 * k / (rt60_s * sample_rate))
    tail *= 10 ** (wet_db / 20) / (np.sqrt(np.sum(tail**2)) + 1e-12)
    h = np.zeros(pre + k.size)
    h[0] = 1.0
    h[pre:] += tail
    return h


def microphone_parts(
    clean: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    level_db: float = -26.0,
    snr_db: float = 20.0,
    *,
    reverb_s: float = 0.25,
    reverb_wet_db: float = -12.0,
    lowpass_hz: float | None = 7000.0,
    brown_fraction: float = 0.4,
    hum_hz: float = 50.0,
    hum_db: float = -14.0,
    hiss_db: float = -18.0,
) -> dict[str, np.ndarray]:
    """The microphone's speech and noise components and their sum.

    Args:
        clean: (N,) clean speech.
        sample_rate: Hz.
        rng: random generator.
        level_db: peak of the recorded speech in dBFS (-26 dB: peak 0.05, so +20 dB of gain
            brings it to 0.5 without clipping).
        snr_db: mean speech power over mean noise power, over the whole clip (dB).
        reverb_s: RT60 of the room (0: none); reverb_wet_db: tail energy re direct path.
        lowpass_hz: microphone / preamp low-pass (None: none).
        brown_fraction, hum_hz, hum_db, hiss_db: see :func:`room_noise`.

    Returns:
        ``speech`` (N,), ``noise`` (N,), ``mixed`` (N,) = speech + noise.
    """
    clean = np.asarray(clean, float)
    n = clean.size
    h = room_impulse_response(sample_rate, rng, reverb_s, reverb_wet_db)
    speech = signal.fftconvolve(clean, h)[:n] if n else clean.copy()
    if lowpass_hz is not None and lowpass_hz < 0.5 * sample_rate:
        sos = signal.butter(4, lowpass_hz, btype="low", fs=sample_rate, output="sos")
        speech = signal.sosfilt(sos, speech)
    m = float(np.abs(speech).max()) if n else 0.0
    if m > 0:
        speech = speech * (10 ** (level_db / 20) / m)
    noise = room_noise(
        n,
        sample_rate,
        rng,
        brown_fraction=brown_fraction,
        hum_hz=hum_hz,
        hum_db=hum_db,
        hiss_db=hiss_db,
    )
    noise = noise * _rms(speech) * 10 ** (-snr_db / 20)
    return {"speech": speech, "noise": noise, "mixed": speech + noise}


def microphone(
    clean: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    level_db: float = -26.0,
    snr_db: float = 20.0,
    **room,
) -> np.ndarray:
    """What a quiet distant studio microphone records of ``clean`` (N,) -> (N,).

    See :func:`microphone_parts` for the parameters (``room`` takes its keyword options).
    """
    return microphone_parts(clean, sample_rate, rng, level_db, snr_db, **room)["mixed"]


# --------------------------------------------------------------------------------------
# Per-frame helpers
# --------------------------------------------------------------------------------------


def render_phoneme_track(phones: Sequence[Phone], fps: float, n_frames: int) -> dict:
    """Per-frame phoneme labels at frame times t = frame / fps.

    Returns:
        ``phoneme`` (T,) str, ``index`` (T,) int into :data:`PHONEME_LIST`, ``voiced``,
        ``vowel``, ``silence``, ``bilabial`` (T,) bool, and the un-coarticulated viseme
        targets ``jaw``, ``rounding``, ``closure``, ``spread`` (T,) float.
    """
    t = np.arange(n_frames) / fps
    idx = _phone_index(list(phones), t)
    names = np.array([phones[i].phoneme if i >= 0 else "SIL" for i in idx], dtype=object)
    specs = [spec_of(s) for s in names]
    return {
        "phoneme": names.astype(str),
        "index": np.array([PHONEME_LIST.index(s) for s in names], dtype=np.int64),
        "voiced": np.array([s.voiced for s in specs], bool),
        "vowel": np.array([s.kind in ("vowel", "diphthong") for s in specs], bool),
        "silence": np.array([s.kind == "silence" for s in specs], bool),
        "bilabial": np.isin(names.astype(str), BILABIALS),
        "jaw": np.array([s.viseme.jaw for s in specs]),
        "rounding": np.array([s.viseme.rounding for s in specs]),
        "closure": np.array([s.viseme.closure for s in specs]),
        "spread": np.array([s.viseme.spread for s in specs]),
    }
