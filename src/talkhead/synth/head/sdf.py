"""Signed distance of the procedural head, its normals, and ray casting against it.

The head is a smooth union of ellipsoids and capsules (cranium, forehead, midface, cheeks,
jaw, chin, brow ridge, eye sockets carved and eyelid spheres added back, nose, ears, neck).
Metres, the head frame of :mod:`.constants`; the field is an approximate distance, negative
inside.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .constants import EYE_CENTER, EYE_RADIUS, LID_OFFSET, NECK_AXIS_Z


def _sd_ellipsoid(p: np.ndarray, c: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Approximate signed distance to an ellipsoid. p: (..., 3) -> (...)."""
    qx = (p[..., 0] - c[0]) / r[0]
    qy = (p[..., 1] - c[1]) / r[1]
    qz = (p[..., 2] - c[2]) / r[2]
    k0 = np.sqrt(qx * qx + qy * qy + qz * qz)
    k1 = np.sqrt((qx / r[0]) ** 2 + (qy / r[1]) ** 2 + (qz / r[2]) ** 2)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-12)


def _sd_round_cone(p: np.ndarray, a: np.ndarray, b: np.ndarray, ra: float, rb: float) -> np.ndarray:
    """Distance-like field of a capsule whose radius goes from ``ra`` at a to ``rb`` at b."""
    ab = b - a
    t = np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1) - (ra + t * (rb - ra))


def _smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum (smooth union) with blend radius k."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1.0 - h) + a * h - k * h * (1.0 - h)


def _smax(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth maximum (smooth intersection) with blend radius k."""
    return -_smin(-a, -b, k)


def nose_sdf(a: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Nose (bridge, tip, alae, columella); ``a`` has x mirrored to x >= 0."""
    base = np.array([0.0, -0.020, 0.090])
    s = base + (a - base) / scale
    nose = _sd_round_cone(
        s, np.array([0.0, 0.032, 0.079]), np.array([0.0, -0.007, 0.105]), 0.0055, 0.0082
    )
    nose = _smin(
        nose,
        _sd_ellipsoid(s, np.array([0.0, -0.010, 0.102]), np.array([0.0105, 0.0095, 0.0105])),
        0.006,
    )
    nose = _smin(
        nose,
        _sd_ellipsoid(s, np.array([0.0120, -0.0150, 0.0920]), np.array([0.0072, 0.0068, 0.0085])),
        0.008,
    )
    nose = _smin(
        nose,
        _sd_ellipsoid(s, np.array([0.0, -0.019, 0.099]), np.array([0.0065, 0.005, 0.010])),
        0.004,
    )
    return nose * scale


_EAR_CENTER = np.array([0.071, 0.010, -0.010])


def ear_sdf(a: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Ear: a disc tilted back, with a hollow (concha) in front of its rim; ``a`` has x
    mirrored to x >= 0."""
    e = (a - _EAR_CENTER) / scale
    tilt = np.deg2rad(15.0)
    ey = e[..., 1] * np.cos(tilt) + e[..., 2] * np.sin(tilt)
    ez = -e[..., 1] * np.sin(tilt) + e[..., 2] * np.cos(tilt)
    e = np.stack([e[..., 0], ey, ez], axis=-1)
    ear = _sd_ellipsoid(e, np.array([0.004, 0.0, 0.0]), np.array([0.011, 0.030, 0.018]))
    bowl = _sd_ellipsoid(e, np.array([0.0165, -0.004, 0.003]), np.array([0.006, 0.012, 0.008]))
    return _smax(ear, -bowl, 0.003) * scale


def head_sdf(p: np.ndarray) -> np.ndarray:
    """Signed distance (approximate, metres; negative inside) of the procedural head.

    Args:
        p: (..., 3) points in the head frame.

    Returns:
        (...) signed distances.
    """
    p = np.asarray(p, dtype=np.float64)
    a = p.copy()
    a[..., 0] = np.abs(a[..., 0])  # mirror paired features onto x > 0
    x, y, z = p[..., 0], p[..., 1], p[..., 2]

    d = _sd_ellipsoid(p, np.array([0.0, 0.046, -0.013]), np.array([0.0745, 0.100, 0.098]))
    # forehead: flatter and more upright than the ellipsoid
    d = _smin(
        d, _sd_ellipsoid(p, np.array([0.0, 0.062, 0.028]), np.array([0.060, 0.055, 0.054])), 0.02
    )
    # midface and cheeks
    d = _smin(
        d, _sd_ellipsoid(p, np.array([0.0, 0.002, 0.024]), np.array([0.068, 0.055, 0.060])), 0.02
    )
    d = _smin(
        d, _sd_ellipsoid(a, np.array([0.038, -0.010, 0.053]), np.array([0.026, 0.024, 0.024])), 0.02
    )
    d = _smin(
        d, _sd_ellipsoid(a, np.array([0.040, -0.037, 0.046]), np.array([0.024, 0.026, 0.026])), 0.02
    )
    d = _smin(
        d,
        _sd_ellipsoid(a, np.array([0.042, -0.014, 0.040]), np.array([0.019, 0.022, 0.024])),
        0.016,
    )
    d = _smin(
        d, _sd_ellipsoid(a, np.array([0.057, 0.012, 0.030]), np.array([0.016, 0.012, 0.040])), 0.014
    )
    # lower face: tapered towards the chin
    taper = 1.0 + 0.5 * np.clip((z - 0.0) / 0.085, 0.0, 1.0)
    q = np.stack([x * taper, y, z], axis=-1)
    d = _smin(
        d, _sd_ellipsoid(q, np.array([0.0, -0.046, 0.016]), np.array([0.057, 0.044, 0.066])), 0.024
    )
    # dental arch (muzzle) behind the lips, and the chin
    d = _smin(
        d, _sd_ellipsoid(p, np.array([0.0, -0.040, 0.052]), np.array([0.034, 0.030, 0.042])), 0.016
    )
    d = _smin(
        d, _sd_ellipsoid(p, np.array([0.0, -0.075, 0.074]), np.array([0.021, 0.016, 0.016])), 0.014
    )
    # brow ridge
    d = _smin(
        d, _sd_ellipsoid(a, np.array([0.029, 0.050, 0.060]), np.array([0.031, 0.011, 0.017])), 0.014
    )
    # eye sockets carved, eyelid spheres added back with a fold above them
    socket = _sd_ellipsoid(
        a, EYE_CENTER + np.array([0.0, -0.003, 0.014]), np.array([0.0185, 0.0135, 0.016])
    )
    d = _smax(d, -socket, 0.008)
    d = _smin(
        d,
        _sd_ellipsoid(
            a, EYE_CENTER + np.array([0.0, 0.011, 0.004]), np.array([0.016, 0.007, 0.008])
        ),
        0.006,
    )
    d = _smin(d, np.linalg.norm(a - EYE_CENTER, axis=-1) - (EYE_RADIUS + LID_OFFSET), 0.003)
    d = _smin(d, nose_sdf(a), 0.008)
    d = _smin(
        d, _sd_ellipsoid(a, np.array([0.0, -0.004, 0.084]), np.array([0.011, 0.022, 0.016])), 0.008
    )
    d = _smin(d, ear_sdf(a), 0.014)
    # neck: elliptic cylinder below the head
    nq = np.stack([x / 0.054, (z - NECK_AXIS_Z) / 0.058], axis=-1)
    neck = (np.linalg.norm(nq, axis=-1) - 1.0) * 0.056
    neck = _smax(neck, y - (-0.02), 0.01)
    return _smin(d, neck, 0.022)


def sdf_normals(
    p: np.ndarray, sdf: Callable[[np.ndarray], np.ndarray], eps: float = 3e-4
) -> np.ndarray:
    """Unit gradient of ``sdf`` at p (N, 3) by central differences -> (N, 3)."""
    g = np.zeros_like(p)
    for k in range(3):
        dp = np.zeros(3)
        dp[k] = eps
        g[:, k] = sdf(p + dp) - sdf(p - dp)
    return g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)


def cast_rays(
    origins: np.ndarray,
    dirs: np.ndarray,
    sdf: Callable[[np.ndarray], np.ndarray],
    t_min: np.ndarray | float = 0.0,
    t_max: np.ndarray | float = 0.25,
    step: float = 0.002,
    iters: int = 22,
) -> np.ndarray:
    """Distance along each ray to the outermost inside-to-outside crossing of ``sdf``.

    Args:
        origins, dirs: (N, 3) rays (unit directions); origins should be inside.
        sdf: field, negative inside.
        t_min, t_max: scalar or (N,) search interval.
        step: sampling step before bisection.

    Returns:
        (N,) distances; NaN where a ray never leaves the inside within the interval.
    """
    n = len(origins)
    t0 = np.broadcast_to(np.asarray(t_min, dtype=np.float64), (n,))
    t1 = np.broadcast_to(np.asarray(t_max, dtype=np.float64), (n,))
    k = int(np.ceil((t1 - t0).max() / step)) + 1
    ts = t0[:, None] + step * np.arange(k)[None, :]
    ts = np.minimum(ts, t1[:, None])
    vals = sdf(origins[:, None, :] + ts[..., None] * dirs[:, None, :])
    inside = vals < 0.0
    # last inside sample whose successor is outside
    cross = inside[:, :-1] & ~inside[:, 1:]
    has = cross.any(axis=1)
    last = k - 2 - np.argmax(cross[:, ::-1], axis=1)
    lo = ts[np.arange(n), last]
    hi = ts[np.arange(n), np.minimum(last + 1, k - 1)]
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        m_in = sdf(origins + mid[:, None] * dirs) < 0.0
        lo = np.where(m_in, mid, lo)
        hi = np.where(m_in, hi, mid)
    out = 0.5 * (lo + hi)
    out[~has] = np.nan
    return out
