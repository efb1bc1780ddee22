"""The face of the synthetic actor: FLAME parameter tracks driven by the spoken phonemes.

The mouth follows the phonemes (visemes blended with Cohen-Massaro dominance functions, so
the lips coarticulate and close on P/B/M); everything else (head and neck motion, gaze
with saccades, blinks, brow raises, small activity of the other expression components)
is drawn independently of the audio, so the audio cannot explain it.

The synthetic head's expression basis: 0 lip rounding, 1 lip closure, 2 smile / lip spread,
3 brow raise, 4 blink; the jaw opens with a positive rotation of ``jaw`` about x.
Head frame: y up, face towards +z, x towards the subject's left (docs/formats.md).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..errors import ConfigError
from .speech import (
    PHONEMES,
    Phone,
    phones_to_json,
    random_utterance,
    spec_of,
    synthesize,
)

EXPR_ROUNDING, EXPR_CLOSURE, EXPR_SMILE, EXPR_BROW, EXPR_BLINK = range(5)
_N_MEANINGFUL = 5


# --------------------------------------------------------------------------------------
# Mouth
# --------------------------------------------------------------------------------------


def viseme_tracks(
    phones: Sequence[Phone],
    times: np.ndarray,
    *,
    anticipation_s: float = 0.05,
    carryover_s: float = 0.035,
    plateau: float = 0.35,
) -> dict[str, np.ndarray]:
    """Coarticulated mouth tracks at ``times`` (N,) by Cohen-Massaro dominance blending.

    Each phone's dominance is its viseme weight on a plateau covering the middle
    ``2 * plateau`` of the phone and decays exponentially outside it (time constant
    ``anticipation_s`` before, ``carryover_s`` after, times ``Viseme.reach``); a track is
    the dominance-weighted
    mean of the targets. Jaw and closure use ``Viseme.dominance`` (bilabials dominate),
    rounding and spread ``Viseme.shape_dominance`` (consonants borrow the vowels' lips).

    Returns:
        ``jaw`` (rad), ``rounding``, ``closure``, ``spread``: (N,) float64 each.
    """
    times = np.asarray(times, float)
    order = np.argsort(times)
    ts = times[order]
    sil = PHONEMES["SIL"].viseme
    eps = 1e-6  # outside every phone the face rests (silence)
    num = np.zeros((4, ts.size))
    num += eps * np.array([sil.jaw, sil.rounding, sil.closure, sil.spread])[:, None]
    den_main = np.full(ts.size, eps)
    den_shape = np.full(ts.size, eps)
    for p in phones:
        v = spec_of(p.phoneme).viseme
        reach_a, reach_c = 12 * anticipation_s * v.reach, 12 * carryover_s * v.reach  # e^-12
        a, b = np.searchsorted(ts, [p.start - reach_a, p.end + reach_c])
        if a >= b:
            continue
        t = ts[a:b]
        half = plateau * p.duration
        before = np.maximum(p.centre - half - t, 0.0) / (anticipation_s * v.reach)
        after = np.maximum(t - p.centre - half, 0.0) / (carryover_s * v.reach)
        dom = np.exp(-before - after)
        main, shape = v.dominance * dom, v.shape_dominance * dom
        num[0, a:b] += main * v.jaw
        num[1, a:b] += shape * v.rounding
        num[2, a:b] += main * v.closure
        num[3, a:b] += shape * v.spread
        den_main[a:b] += main
        den_shape[a:b] += shape
    out_sorted = {
        "jaw": num[0] / den_main,
        "rounding": num[1] / den_shape,
        "closure": num[2] / den_main,
        "spread": num[3] / den_shape,
    }
    out = {}
    for k, v in out_sorted.items():
        unsorted = np.empty_like(v)
        unsorted[order] = v
        out[k] = unsorted
    return out


def mouth_tracks(
    phones: Sequence[Phone],
    fps: float,
    n_frames: int,
    *,
    subframe_s: float = 0.004,
    muscle_s: float = 0.012,
    articulation: float = 1.0,
    **coarticulation,
) -> dict[str, np.ndarray]:
    """Mouth tracks at frame times t = frame / fps.

    The dominance blend is evaluated on a fine grid (step ``subframe_s``), low-passed by a
    Gaussian of std ``muscle_s`` (muscles cannot move instantly), then sampled at the
    frames. ``articulation`` scales jaw, rounding and spread (a mumbler < 1 < an
    over-articulator); ``coarticulation`` goes to :func:`viseme_tracks`.

    Returns:
        ``jaw``, ``rounding``, ``closure``, ``spread``: (T,) float64 each.
    """
    t_frames = np.arange(n_frames) / fps
    if n_frames == 0:
        return {k: np.zeros(0) for k in ("jaw", "rounding", "closure", "spread")}
    step = min(subframe_s, 0.5 / fps)
    fine = np.arange(-0.1, t_frames[-1] + 0.1 + step, step)
    tracks = viseme_tracks(phones, fine, **coarticulation)
    out = {}
    for k, v in tracks.items():
        v = gaussian_filter1d(v, muscle_s / step, mode="nearest") if muscle_s > 0 else v
        if k != "closure":
            v = v * articulation
        out[k] = np.clip(np.interp(t_frames, fine, v), 0.0, None)
    out["closure"] = np.clip(out["closure"], 0.0, 1.0)
    return out


# --------------------------------------------------------------------------------------
# Motion independent of the audio
# --------------------------------------------------------------------------------------


def smooth_motion(
    times: np.ndarray,
    rng: np.random.Generator,
    std: Sequence[float] | np.ndarray,
    freq_range: tuple[float, float] = (0.05, 0.5),
    n_components: int = 4,
) -> np.ndarray:
    """Zero-mean smooth random signals: sums of sinusoids (frequencies log-uniform).

    Args:
        times: (N,) seconds.
        std: (D,) standard deviation of each output channel (exact in expectation over
            phases, independent of the duration).
    Returns:
        (N, D) float64.
    """
    std = np.atleast_1d(np.asarray(std, float))
    d = std.size
    f = np.exp(rng.uniform(np.log(freq_range[0]), np.log(freq_range[1]), (n_components, d)))
    phase = rng.uniform(0, 2 * np.pi, (n_components, d))
    amp = 1.0 / np.sqrt(f) * rng.uniform(0.5, 1.0, (n_components, d))
    amp *= std / np.sqrt(0.5 * np.sum(amp**2, axis=0))
    arg = 2 * np.pi * f[None] * np.asarray(times, float)[:, None, None] + phase[None]
    return np.sum(amp[None] * np.sin(arg), axis=1)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _pulse(t: np.ndarray, centre: float, rise: float, hold: float, fall: float) -> np.ndarray:
    """0 -> 1 -> 0 pulse: smoothstep rise ending at ``centre``, flat ``hold``, smooth fall."""
    up = _smoothstep((t - (centre - rise)) / max(rise, 1e-9))
    down = 1.0 - _smoothstep((t - (centre + hold)) / max(fall, 1e-9))
    return np.minimum(up, down)


def blink_times(
    duration_s: float,
    fps: float,
    rng: np.random.Generator,
    interval_s: tuple[float, float] = (2.0, 5.0),
    first_s: tuple[float, float] = (0.35, 2.5),
) -> np.ndarray:
    """Times (s) at which the eyes are fully closed, snapped to frame times.

    The first blink falls in ``first_s`` (kept inside the take, so any take of >= 1.5 s
    blinks), then blinks follow at random intervals in ``interval_s``.
    """
    lo, hi = first_s[0], min(first_s[1], duration_s - 0.35)
    if hi < lo:
        return np.zeros(0)
    t = [float(rng.uniform(lo, hi))]
    while True:
        nxt = t[-1] + float(rng.uniform(*interval_s))
        if nxt > duration_s - 0.1:
            break
        t.append(nxt)
    return np.round(np.array(t) * fps) / fps


def blink_track(
    times: np.ndarray,
    peaks: np.ndarray,
    rng: np.random.Generator,
    duration_s: tuple[float, float] = (0.15, 0.25),
    hold_s: float = 0.03,
) -> np.ndarray:
    """Eyelid closure (N,) in [0, 1]: fast closing (30 %), a short hold at 1, slower opening."""
    out = np.zeros(len(times))
    for c in peaks:
        d = float(rng.uniform(*duration_s)) - hold_s
        out = np.maximum(out, _pulse(times, c, 0.3 * d, hold_s, 0.7 * d))
    return out


def brow_track(
    times: np.ndarray,
    duration_s: float,
    rng: np.random.Generator,
    rate_hz: float = 0.12,
    amplitude: tuple[float, float] = (0.3, 0.8),
) -> np.ndarray:
    """Sparse brow raises (N,): a Poisson process of smooth events of random height."""
    out = np.zeros(len(times))
    n = rng.poisson(rate_hz * duration_s)
    for c in rng.uniform(0, duration_s, n):
        a = rng.uniform(*amplitude)
        rise, hold, fall = rng.uniform(0.15, 0.3), rng.uniform(0.2, 0.8), rng.uniform(0.3, 0.5)
        out = np.maximum(out, a * _pulse(times, c, rise, hold, fall))
    return out


def gaze_track(
    times: np.ndarray,
    rng: np.random.Generator,
    std_deg: tuple[float, float] = (4.0, 7.0),
    fixation_s: tuple[float, float] = (0.3, 2.0),
    saccade_s: float = 0.04,
) -> np.ndarray:
    """Eye rotations (N, 6) axis-angle, left then right: fixations joined by fast saccades.

    Both eyes turn together: pitch about x (std ``std_deg[0]``), yaw about y (``std_deg[1]``).
    """
    times = np.asarray(times, float)
    t_end = float(times.max()) if times.size else 0.0
    std = np.deg2rad(np.asarray(std_deg, float))
    target = np.clip(rng.normal(0, 1, 2), -2.5, 2.5) * std
    gaze = np.tile(target, (times.size, 1))
    t = float(rng.uniform(*fixation_s)) * rng.random()
    while t < t_end:
        new = np.clip(rng.normal(0, 1, 2), -2.5, 2.5) * std
        w = _smoothstep((times - t) / saccade_s)[:, None]
        gaze = gaze * (1 - w) + new * w
        t += saccade_s + float(rng.uniform(*fixation_s))
    eye = np.stack([gaze[:, 0], gaze[:, 1], np.zeros(times.size)], axis=1)
    return np.concatenate([eye, eye], axis=1)


# --------------------------------------------------------------------------------------
# The whole face
# --------------------------------------------------------------------------------------


def animate(
    phones: Sequence[Phone],
    fps: float,
    n_frames: int,
    rng: np.random.Generator,
    n_expression: int = 50,
    *,
    articulation: float = 1.0,
    head_rotation_deg: tuple[float, float, float] = (2.0, 3.0, 1.0),
    head_translation_mm: tuple[float, float, float] = (3.0, 2.0, 3.0),
    neck_deg: float = 0.8,
    gaze_deg: tuple[float, float] = (4.0, 7.0),
    blink_interval_s: tuple[float, float] = (2.0, 5.0),
    blink_duration_s: tuple[float, float] = (0.15, 0.25),
    brow_rate_hz: float = 0.12,
    smile: float = 0.05,
    expression_noise: float = 0.03,
) -> dict[str, np.ndarray]:
    """FLAME parameter tracks of the speaking actor at frame times t = frame / fps.

    Args:
        phones: the spoken phones (seconds).
        fps: frame rate; n_frames: number of frames T.
        rng: random generator for everything that is not the mouth.
        n_expression: E (>= 5; components 0-4 are meaningful, the rest get small noise).
        articulation: scale of jaw, rounding and spread movements.
        head_rotation_deg: std of head pitch (x), yaw (y), roll (z) in degrees.
        head_translation_mm: std of head translation (x, y, z) in millimetres.
        neck_deg: std of each neck rotation component in degrees.
        gaze_deg: std of gaze pitch and yaw in degrees.
        blink_interval_s, blink_duration_s: ranges of blink spacing and length.
        brow_rate_hz: mean rate of brow raises.
        smile: mean of a slowly drifting smile added to lip spread.
        expression_noise: std of the first non-meaningful expression component (later
            ones get less).

    Returns:
        ``expression`` (T, E), ``rotation`` (T, 3), ``translation`` (T, 3) metres around
        zero, ``jaw`` (T, 3), ``neck`` (T, 3), ``eyes`` (T, 6), ``scale`` (T, 1) ones:
        float32; ``frames`` (T,) int64.
    """
    if n_expression < _N_MEANINGFUL:
        raise ConfigError(f"n_expression must be >= {_N_MEANINGFUL}, got {n_expression}")
    if fps <= 0:
        raise ConfigError(f"fps must be positive, got {fps}")
    t = np.arange(n_frames) / fps
    duration = n_frames / fps
    r_head, r_trans, r_neck, r_gaze, r_blink, r_brow, r_expr = rng.spawn(7)

    mouth = mouth_tracks(phones, fps, n_frames, articulation=articulation)
    expr = np.zeros((n_frames, n_expression))
    mood = smile + smooth_motion(t, r_expr, [0.4 * smile], (0.03, 0.2))[:, 0]
    expr[:, EXPR_ROUNDING] = mouth["rounding"]
    expr[:, EXPR_CLOSURE] = mouth["closure"]
    expr[:, EXPR_SMILE] = np.clip(mouth["spread"] + mood, 0.0, 1.0)
    expr[:, EXPR_BROW] = brow_track(t, duration, r_brow, brow_rate_hz)
    peaks = blink_times(duration, fps, r_blink, blink_interval_s)
    expr[:, EXPR_BLINK] = blink_track(t, peaks, r_blink, blink_duration_s)
    k = np.arange(n_expression - _N_MEANINGFUL)
    if k.size:
        std = expression_noise / (1.0 + k / 10.0)
        expr[:, _N_MEANINGFUL:] = smooth_motion(t, r_expr, std, (0.1, 1.0), 3)

    rotation = smooth_motion(t, r_head, np.deg2rad(head_rotation_deg), (0.04, 0.5), 5)
    translation = smooth_motion(t, r_trans, np.asarray(head_translation_mm) * 1e-3, (0.03, 0.3), 4)
    neck = smooth_motion(t, r_head, np.deg2rad([neck_deg] * 3), (0.1, 0.8), 3)
    jaw = np.zeros((n_frames, 3))
    jaw[:, 0] = mouth["jaw"]
    return {
        "expression": expr.astype(np.float32),
        "rotation": rotation.astype(np.float32),
        "translation": translation.astype(np.float32),
        "jaw": jaw.astype(np.float32),
        "neck": neck.astype(np.float32),
        "eyes": gaze_track(t, r_gaze, gaze_deg).astype(np.float32),
        "scale": np.ones((n_frames, 1), np.float32),
        "frames": np.arange(n_frames, dtype=np.int64),
    }


@dataclass
class ActorTake:
    """One take of the speaking actor.

    Attributes:
        phones: the spoken phones (seconds).
        audio: (N,) clean speech, float64, N = round(duration * sample_rate).
        params: FLAME tracks of :func:`animate` (no ``shape``).
        fps, sample_rate: frame and audio rates.
        seed: the seed everything was drawn from.
    """

    phones: list[Phone]
    audio: np.ndarray
    params: dict[str, np.ndarray]
    fps: float
    sample_rate: int
    seed: int
    options: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return int(self.params["frames"].shape[0])

    @property
    def duration_s(self) -> float:
        return self.audio.shape[0] / self.sample_rate

    def phonemes_json(self) -> list[dict]:
        """``[{"phoneme", "start", "end"}]`` for ``phonemes.json``."""
        return phones_to_json(self.phones)


def _keyword_options(fn) -> set[str]:
    return {
        name
        for name, p in inspect.signature(fn).parameters.items()
        if p.kind == p.KEYWORD_ONLY or name == "f0_hz"
    } - {"duration_s"}


def speaking_actor(
    seed: int,
    duration_s: float,
    fps: float,
    sample_rate: int,
    n_expression: int = 50,
    **options,
) -> ActorTake:
    """A take of ``duration_s`` seconds: phones, clean audio and FLAME tracks from one seed.

    ``options`` go to :func:`random_utterance`, :func:`synthesize` or :func:`animate` by
    name (e.g. ``f0_hz``, ``speech_rate``, ``pause_prob``, ``head_rotation_deg``); an
    unknown name raises ConfigError. The utterance, the voice and the motion draw from
    separate streams of the seed, so changing a motion option leaves the audio unchanged.
    Frame t is at t / fps; T = round(duration_s * fps).
    """
    groups = {fn: _keyword_options(fn) for fn in (random_utterance, synthesize, animate)}
    known = set().union(*groups.values())
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"unknown speaking_actor option(s) {unknown}; known: {sorted(known)}")
    kw = {fn: {k: v for k, v in options.items() if k in names} for fn, names in groups.items()}
    r_utt, r_voice, r_face = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    phones = random_utterance(r_utt, duration_s, **kw[random_utterance])
    audio = synthesize(phones, sample_rate, r_voice, duration_s=duration_s, **kw[synthesize])
    n_frames = int(round(duration_s * fps))
    params = animate(phones, fps, n_frames, r_face, n_expression, **kw[animate])
    return ActorTake(phones, audio, params, float(fps), int(sample_rate), int(seed), dict(options))
