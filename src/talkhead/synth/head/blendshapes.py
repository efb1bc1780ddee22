"""Shape (identity) and expression blendshapes, (V, 3) displacement fields each.

Expressions that slide skin over the head (lip rounding, closure, smile, brow raise, blink)
are computed by moving the rays and casting again, so the deformed skin stays on the head;
the mouth cavity follows its lips and the eyeballs stay still. Identity and the remaining
expression components are smooth analytic displacement fields that move each eye region
rigidly. Metres, the head frame of :mod:`.constants`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .constants import EYE_CENTER, MOUTH_CORNER_AZIMUTH, MOUTH_ELEVATION
from .falloff import gauss, smoothstep
from .layout import eye_angles
from .sdf import head_sdf
from .skin import open_eyes, place_head
from .template import CAVITY_RINGS, Template

EXPRESSION_NAMES = ("lip_rounding", "lip_closure", "smile", "brow_raise", "blink")
SHAPE_NAMES = (
    "head_width",
    "face_length",
    "nose_size",
    "nose_length",
    "jaw_width",
    "eye_spacing",
    "lip_fullness",
    "chin_projection",
    "brow_ridge",
    "cheekbones",
    "head_depth",
)

_CAVITY_FOLLOW = np.array([0.9, 0.75, 0.55, 0.35, 0.2, 0.1, 0.05])  # rings 1.., cap


def _with_cavity(g: Template, d_skin: np.ndarray) -> np.ndarray:
    """(V, 3) displacement: the skin's, the cavity following its lips ring by ring, the
    eyeballs still."""
    d = np.zeros((len(g.vertices), 3))
    d[: g.n_skin] = d_skin
    L = len(g.loop)
    dl = d_skin[g.loop]
    for k in range(len(CAVITY_RINGS)):
        d[g.cavity[k * L : (k + 1) * L]] = _CAVITY_FOLLOW[k] * dl
    d[g.cavity[-1]] = _CAVITY_FOLLOW[-1] * dl.mean(axis=0)
    return d


def _slide(
    g: Template,
    dtheta: np.ndarray,
    dphi: np.ndarray | float = 0.0,
    drelief: np.ndarray | float = 0.0,
    theta: np.ndarray | None = None,
) -> np.ndarray:
    """Skin displacement (n_skin, 3) when the rays move by (dtheta, dphi) and the lip
    relief by drelief: the skin slides over the head instead of leaving it."""
    skin = g.skin
    n = g.n_skin
    th = (g.theta if theta is None else theta) + dtheta
    ph = skin.phi + dphi
    rel = g.relief + drelief
    changed = (
        (np.abs(th - g.theta) > 1e-12)
        | (np.abs(ph - skin.phi) > 1e-12)
        | (np.abs(rel - g.relief) > 1e-12)
    )
    changed &= ~skin.is_neck
    changed[skin.pole] = False
    idx = np.where(changed)[0]
    d = np.zeros((n, 3))
    if len(idx):
        d[idx] = place_head(skin, idx, th, ph, head_sdf, rel) - g.vertices[idx]
    return d


def expression_meaningful(g: Template) -> list[np.ndarray]:
    """Lip rounding, lip closure, smile, brow raise, blink: (V, 3) each, unit = full."""
    deg = np.deg2rad
    sk = g.skin
    th0, ph = sk.theta0, sk.phi
    dt = th0 - MOUTH_ELEVATION
    pmc = MOUTH_CORNER_AZIMUTH
    theta_e = eye_angles()[0]
    mouth = np.exp(-(((ph / (1.7 * pmc)) ** 2 + (dt / deg(9.0)) ** 2) ** 1.5))
    lips = np.exp(-(((ph / (1.25 * pmc)) ** 2 + (dt / deg(6.5)) ** 2) ** 1.5))
    out = []
    # 0: lip rounding -- the mouth narrows, the lips push forward
    out.append(_slide(g, -0.2 * dt * mouth, -0.42 * ph * mouth, 0.0055 * lips))
    # 1: lip closure -- upper lip down, lower lip up, pressed and thinned
    q = np.clip(1.0 - (ph / pmc) ** 2, 0.0, 1.0)
    wc = q * np.exp(-((dt / deg(8.0)) ** 2))
    dth = np.where(sk.lip_side > 0, -deg(2.3), deg(2.7)) * wc * (sk.lip_side != 0)
    out.append(_slide(g, dth, 0.0, -(0.35 * g.relief + 0.0008) * wc))
    # 2: smile -- corners up and back, lips stretched, cheeks raised
    dth = np.zeros_like(th0)
    dph = 0.10 * ph * mouth
    drel = np.zeros_like(th0)
    for sgn in (1.0, -1.0):
        corner = np.exp(-(((ph - sgn * pmc) / deg(8.0)) ** 2 + (dt / deg(7.0)) ** 2))
        broad = np.exp(-(((ph - sgn * pmc) / deg(13.0)) ** 2 + (dt / deg(11.0)) ** 2))
        dth += deg(3.4) * corner
        dph += sgn * deg(2.6) * broad
        cheek = np.exp(
            -(((ph - sgn * deg(27.0)) / deg(9.0)) ** 2 + ((th0 - deg(-17.0)) / deg(8.0)) ** 2)
        )
        drel += 0.0025 * cheek
        dth += deg(1.3) * cheek
    out.append(_slide(g, dth, dph, drel))
    # 3: brow raise -- brows and forehead skin up, fading towards the hairline and lids
    f = smoothstep(theta_e + deg(3.0), theta_e + deg(11.0), th0) * (
        1.0 - smoothstep(theta_e + deg(20.0), theta_e + deg(50.0), th0)
    )
    f *= 1.0 - smoothstep(deg(45.0), deg(70.0), np.abs(ph))
    out.append(_slide(g, deg(4.4) * f))
    # 4: blink -- the upper lids close onto the lower lid edges
    closed = open_eyes(sk, sk.theta, blink=True)
    out.append(_slide(g, closed - g.theta))
    return [_with_cavity(g, d) for d in out]


def _rbf_field(
    P: np.ndarray, centres: np.ndarray, vectors: np.ndarray, sigma: np.ndarray
) -> np.ndarray:
    """Sum of Gaussian bumps: (N, 3) displacement at P (N, 3)."""
    d2 = ((P[:, None, :] - centres[None]) ** 2).sum(-1)
    return np.exp(-0.5 * d2 / sigma[None] ** 2) @ vectors


def _eye_zone(P: np.ndarray, inner: float = 0.017, outer: float = 0.028) -> np.ndarray:
    """(N, 2) weights, 1 within ``inner`` of each eyeball centre (left, right), 0 beyond
    ``outer``."""
    out = []
    for sgn in (1.0, -1.0):
        r = np.linalg.norm(P - EYE_CENTER * [sgn, 1.0, 1.0], axis=1)
        out.append(1.0 - smoothstep(inner, outer, r))
    return np.stack(out, axis=1)


def _rigid_eyes(
    g: Template, d: np.ndarray, field: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Make a displacement translate each eye region (eyeball and lids) rigidly, with the
    displacement ``field`` gives at the eyeball centre."""
    P = g.vertices
    zone = _eye_zone(P)
    d = d.copy()
    for i, (sgn, idx) in enumerate(zip((1.0, -1.0), g.eyeballs, strict=True)):
        dc = field((EYE_CENTER * [sgn, 1.0, 1.0])[None])[0]
        w = zone[:, i : i + 1]
        w[idx] = 1.0
        d = d * (1.0 - w) + dc * w
    return d


def expression_random(
    g: Template, n: int, rng: np.random.Generator, mirror: np.ndarray
) -> list[np.ndarray]:
    """Smooth local deformations of the face with decreasing amplitude."""
    P = g.vertices
    front = np.where(
        (P[: g.n_skin, 2] > 0.045) & (P[: g.n_skin, 1] > -0.095) & (P[: g.n_skin, 1] < 0.075)
    )[0]
    calm = 1.0 - _eye_zone(P, 0.02, 0.032).max(axis=1)
    calm[np.concatenate(g.eyeballs)] = 0.0
    out = []
    for k in range(n):
        m = int(rng.integers(1, 4))
        centres = P[rng.choice(front, m)]
        vectors = rng.normal(size=(m, 3))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        sigma = rng.uniform(0.010, 0.022, m)
        d = _rbf_field(P, centres, vectors, sigma)
        if k % 2 == 0:  # half of them symmetric
            d = 0.5 * (d + d[mirror] * [-1.0, 1.0, 1.0])
        d *= calm[:, None]
        peak = np.abs(d).max()
        amp = 0.0025 * 0.9**k
        out.append(d * (amp / max(peak, 1e-12)))
    return out


def shape_meaningful(g: Template, normals: np.ndarray) -> list[np.ndarray]:
    """Identity components with a meaning (see :data:`SHAPE_NAMES`), (V, 3) each; a unit
    coefficient moves the affected region by a few millimetres."""
    P = g.vertices
    absx = np.abs(P[:, 0])
    on_skin = np.zeros(len(P))
    on_skin[: g.n_skin] = 1.0
    lips = np.zeros(len(P))
    lips[: g.n_skin] = np.clip(g.relief, 0.0, None) / 0.0034

    fields: list[Callable[[np.ndarray], np.ndarray]] = [
        # head width
        lambda p: np.stack([0.045 * p[:, 0], 0 * p[:, 0], 0 * p[:, 0]], axis=1),
        # face length: the face below the eyes stretches down
        lambda p: np.stack(
            [0 * p[:, 0], -0.006 * smoothstep(0.03, -0.09, p[:, 1]), 0 * p[:, 0]], axis=1
        ),
        # nose size: scaled about its root
        lambda p: (
            0.14
            * (p - [0.0, -0.004, 0.088])
            * gauss(p, np.array([0.0, -0.006, 0.100]), np.array([0.013, 0.020, 0.014]))[:, None]
        ),
        # nose length: the tip forward and down
        lambda p: (
            np.array([0.0, -0.0015, 0.0035])
            * gauss(p, np.array([0.0, -0.012, 0.112]), 0.011)[:, None]
        ),
        # jaw width
        lambda p: np.stack(
            [
                0.07
                * p[:, 0]
                * np.exp(-(((p[:, 1] + 0.055) / 0.03) ** 2))
                * (1.0 - np.exp(-((p[:, 0] / 0.025) ** 2))),
                0 * p[:, 0],
                0 * p[:, 0],
            ],
            axis=1,
        ),
        # eye spacing
        lambda p: np.stack(
            [
                0.0025
                * np.sign(p[:, 0])
                * np.maximum(gauss(p, EYE_CENTER, 0.02), gauss(p, EYE_CENTER * [-1, 1, 1], 0.02)),
                0 * p[:, 0],
                0 * p[:, 0],
            ],
            axis=1,
        ),
    ]
    out = [_rigid_eyes(g, f(P), f) for f in fields]
    zero = lambda p: np.zeros_like(p)  # noqa: E731
    normal_fields = [
        # lip fullness
        0.0012 * lips,
        # chin projection (forward and a little down)
        None,
        # brow ridge
        0.0025
        * np.exp(-(((absx - 0.030) / 0.022) ** 2) - ((P[:, 1] - 0.050) / 0.010) ** 2)
        * (P[:, 2] > 0.03)
        * on_skin,
        # cheekbones
        0.003
        * gauss(np.stack([absx, P[:, 1], P[:, 2]], 1), np.array([0.050, 0.004, 0.052]), 0.015)
        * on_skin,
    ]
    for amp in normal_fields:
        if amp is None:
            d = (
                np.array([0.0, -0.0012, 0.0035])
                * gauss(P, np.array([0.0, -0.078, 0.082]), 0.014)[:, None]
            )
        else:
            d = amp[:, None] * normals
        out.append(_rigid_eyes(g, d, zero))
    # head depth: the back of the skull
    d = np.stack(
        [
            0 * P[:, 0],
            0 * P[:, 0],
            -0.006 * smoothstep(0.0, -0.1, P[:, 2]) * smoothstep(-0.09, -0.02, P[:, 1]),
        ],
        axis=1,
    )
    out.append(d)
    return out


def shape_random(
    g: Template, n: int, rng: np.random.Generator, mirror: np.ndarray
) -> list[np.ndarray]:
    """Smooth, mostly symmetric low-frequency identity fields with decreasing amplitude."""
    P = g.vertices
    skin = P[: g.n_skin]
    out = []
    for k in range(n):
        m = 6
        centres = skin[rng.choice(len(skin), m)] + rng.normal(scale=0.01, size=(m, 3))
        vectors = rng.normal(size=(m, 3))
        sigma = rng.uniform(0.04, 0.07, m)

        def field(p: np.ndarray, c=centres, v=vectors, s=sigma) -> np.ndarray:
            return _rbf_field(p, c, v, s) + _rbf_field(p * [-1, 1, 1], c, v, s) * [-1, 1, 1]

        d = _rigid_eyes(g, field(P), field)
        rms = np.sqrt((d[: g.n_skin] ** 2).sum(axis=1).mean())
        out.append(d * (0.0016 * 0.93**k / max(rms, 1e-12)))
    return out
