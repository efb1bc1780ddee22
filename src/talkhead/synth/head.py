"""The procedural head of the synthetic studio, built in FLAME's file format.

The skin is one structured grid: each vertex is the outermost hit of a ray against a smooth
signed-distance head (cranium, midface, jaw, chin, cheeks, brow ridge, eye sockets, nose,
ears, neck). Rows of head rays leave a point behind the face at fixed elevations, rows of
neck rays leave the neck axis horizontally. Three grid rows are cut into slits: the mouth
(an upper and a lower lip edge that touch at rest, joined by an inner mouth cavity that
runs back into the head) and the two palpebral fissures (pulled open in ray space into
almond openings whose lids wrap separate eyeball spheres).

Expressions that slide skin over the head (lip rounding, closure, smile, brow raise, blink)
are computed by moving the rays and casting again, so the deformed skin stays on the head.
Identity and the remaining expression components are smooth analytic displacement fields.

Frame and units: metres, FLAME's head frame (y up, face towards +z, x towards the subject's
left). Joints: root, neck, jaw, left eye, right eye (parents -1, 0, 1, 1, 1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..io import PathLike

# --------------------------------------------------------------------------------------
# Layout (metres, head frame; paired features given for the subject's left, x > 0)
# --------------------------------------------------------------------------------------

RAY_ORIGIN = np.array([0.0, 0.020, 0.015])  # head rays start here (behind the nose)
NECK_AXIS_Z = -0.020  # neck rays start on the vertical line x = 0, z = NECK_AXIS_Z
NECK_BOTTOM_Y = -0.165
EYE_CENTER = np.array([0.0315, 0.031, 0.061])  # left eyeball centre
EYE_RADIUS = 0.0125
LID_OFFSET = 0.0015  # eyelid skin lies on a sphere this much outside the eyeball
LID_MARGIN = 0.0008  # the lid edges roll in to this distance from the eyeball
FISSURE_HALF_ANGLE = np.deg2rad(59.0)  # canthi, seen from the eye centre
MOUTH_ELEVATION = np.deg2rad(-38.5)  # elevation of the mouth slit (ray space)
MOUTH_CORNER_AZIMUTH = np.deg2rad(19.5)
JAW_JOINT = np.array([0.0, -0.002, 0.004])  # midpoint of the temporomandibular joints
NECK_JOINT = np.array([0.0, -0.070, -0.018])
ROOT_JOINT = np.array([0.0, -0.092, -0.020])

JOINT_NAMES = ("root", "neck", "jaw", "left_eye", "right_eye")
PARENTS = np.array([-1, 0, 1, 1, 1])
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
MASK_NAMES = (
    "face",
    "lips",
    "upper_lip",
    "lower_lip",
    "mouth_interior",
    "nose",
    "forehead",
    "left_eye_region",
    "right_eye_region",
    "left_eyeball",
    "right_eyeball",
    "left_eyebrow",
    "right_eyebrow",
    "scalp",
    "neck",
    "left_ear",
    "right_ear",
    "boundary",
)


# --------------------------------------------------------------------------------------
# Signed distance of the head
# --------------------------------------------------------------------------------------


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
    return -_smin(-a, -b, k)


def _nose_sdf(a: np.ndarray, scale: float = 1.0) -> np.ndarray:
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


def _ear_sdf(a: np.ndarray, scale: float = 1.0) -> np.ndarray:
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
    d = _smin(d, _nose_sdf(a), 0.008)
    d = _smin(
        d, _sd_ellipsoid(a, np.array([0.0, -0.004, 0.084]), np.array([0.011, 0.022, 0.016])), 0.008
    )
    d = _smin(d, _ear_sdf(a), 0.014)
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


# --------------------------------------------------------------------------------------
# Ray layout of the skin grid
# --------------------------------------------------------------------------------------


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((np.asarray(x, dtype=np.float64) - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _graded(
    lo: float, hi: float, spacing: Callable[[np.ndarray], np.ndarray], keys: tuple[float, ...] = ()
) -> np.ndarray:
    """Samples of [lo, hi] (both included) with local spacing ``spacing(x)``; the sample
    nearest each key is moved onto it."""
    fine = np.linspace(lo, hi, 4001)
    dens = 1.0 / spacing(fine)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(fine))])
    n = max(int(round(cum[-1])), 2)
    out = np.interp(np.linspace(0.0, cum[-1], n + 1), cum, fine)
    for key in keys:
        i = int(np.argmin(np.abs(out[1:-1] - key))) + 1
        out[i] = key
    if np.any(np.diff(out) <= 0):
        raise AssertionError("graded samples are not increasing")  # pragma: no cover
    return out


def _vermilion(phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Heights (grid elevation above / below the slit) of the upper and lower vermilion."""
    deg = np.deg2rad
    q = np.clip(1.0 - (phi / (MOUTH_CORNER_AZIMUTH * 1.04)) ** 2, 0.0, 1.0)
    bow = (
        1.0
        + 0.10 * np.exp(-(((np.abs(phi) - deg(4.5)) / deg(2.5)) ** 2))
        - 0.08 * np.exp(-((phi / deg(1.8)) ** 2))
    )
    return deg(5.4) * bow * q**0.6, deg(6.6) * q**0.6


def _brow_arch(phi: np.ndarray) -> np.ndarray:
    """Elevation (grid parameter) of the middle of the eyebrow at azimuth phi (|phi| in
    [10, 52] degrees)."""
    deg = np.deg2rad
    theta_e = _eye_angles()[0]
    u = np.clip((np.abs(phi) - deg(10.0)) / deg(42.0), 0.0, 1.0)
    return theta_e + deg(11.0) + deg(2.5) * np.sin(np.pi * u**0.8) - deg(2.0) * u**2


def _brow_half_width(phi: np.ndarray) -> np.ndarray:
    deg = np.deg2rad
    u = np.clip((np.abs(phi) - deg(10.0)) / deg(42.0), 0.0, 1.0)
    return deg(2.3) * (1.0 - 0.5 * u)


def _ray_dirs(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Unit directions at elevation theta and azimuth phi (0 = +z, +pi/2 = +x): (..., 3)."""
    theta, phi = np.broadcast_arrays(theta, phi)
    ct = np.cos(theta)
    return np.stack([ct * np.sin(phi), np.sin(theta), ct * np.cos(phi)], axis=-1)


def _eye_angles() -> tuple[float, float, float]:
    """Elevation of the left palpebral fissure and azimuths of its inner and outer canthi."""
    r = EYE_RADIUS + LID_OFFSET
    front = EYE_CENTER + np.array([0.0, 0.0, r]) - RAY_ORIGIN
    theta = float(np.arctan2(front[1], np.hypot(front[0], front[2])))
    out = []
    for sgn in (-1.0, 1.0):
        q = (
            EYE_CENTER
            + r * np.array([sgn * np.sin(FISSURE_HALF_ANGLE), 0.0, np.cos(FISSURE_HALF_ANGLE)])
            - RAY_ORIGIN
        )
        out.append(float(np.arctan2(q[0], q[2])))
    return theta, out[0], out[1]


@dataclass
class _Skin:
    """Topology and ray parameters of the skin grid (before casting)."""

    theta0: np.ndarray  # (N,) grid elevation (the parameter features are defined on)
    theta: np.ndarray  # (N,) elevation of head rays (mouth row straightened)
    phi: np.ndarray  # (N,) azimuth
    is_neck: np.ndarray  # (N,) bool: ray from the neck axis (height set after head rays)
    grid: np.ndarray  # (R, C) vertex of each node (the upper copy on slits)
    faces: np.ndarray  # (F, 3)
    pole: int
    cap: int
    n_head_rows: int
    row_eye: int
    row_mouth: int
    mouth_upper: np.ndarray  # slit edge, right corner -> left corner, corners included
    mouth_lower: np.ndarray
    eye_upper: tuple[np.ndarray, np.ndarray]  # (left, right), inner -> outer canthus
    eye_lower: tuple[np.ndarray, np.ndarray]
    lid_rows_up: tuple[np.ndarray, np.ndarray]  # (k+1, n) vertices, row 0 = lid edge
    lid_rows_lo: tuple[np.ndarray, np.ndarray]
    lip_side: np.ndarray  # (N,) +1 above the mouth slit, -1 below, 0 on its line
    row: np.ndarray  # (N,) grid row (-1 for the pole, R for the cap)


def _theta_rows(detail: float, theta_eye: float) -> np.ndarray:
    """Head-row elevations of the front columns, top to bottom (pole excluded)."""
    deg = np.deg2rad
    te, tm = theta_eye, MOUTH_ELEVATION

    def spacing(t: np.ndarray) -> np.ndarray:
        s = np.interp(
            t,
            deg([-80, -55, -48, -28, -12, 22, 32, 55, 90]),
            deg([3.4, 3.4, 1.8, 1.8, 2.4, 2.4, 3.2, 9.0, 9.0]),
        )
        s = np.minimum(s, deg(1.7) + 0.3 * np.abs(t - te))
        s = np.minimum(s, deg(1.7) + 0.25 * np.abs(t - te - _BROW_ROW))
        s = np.minimum(s, deg(1.05) + 0.22 * np.abs(t - tm)) / detail
        # enough rows between the eyelids and the brows at any detail
        return np.where((t > te) & (t < te + _BROW_ROW + deg(3.0)), np.minimum(s, deg(1.75)), s)

    rows = _graded(deg(-77.0), deg(90.0), spacing, keys=(te, tm))[::-1]
    return rows[1:]


def _phi_columns(detail: float, keys: tuple[float, ...]) -> np.ndarray:
    """Column azimuths, increasing over (-pi, pi] (the front is in the middle), symmetric."""
    deg = np.deg2rad

    def spacing(p: np.ndarray) -> np.ndarray:
        return (
            np.interp(
                p,
                deg([0, 42, 58, 75, 88, 104, 118, 140, 180]),
                deg([2.15, 2.15, 3.8, 4.4, 3.4, 3.4, 6.5, 13.0, 15.0]),
            )
            / detail
        )

    half = _graded(0.0, np.pi, spacing, keys=keys)
    pos = half[1:-1]
    return np.concatenate([-pos[::-1], [0.0], pos, [np.pi]])


def _warp_theta(theta_front: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Per-column elevation of each head row: the rows below the mouth end on the jaw and
    under the chin at the front, on the nape at the back."""
    deg = np.deg2rad
    back = _smoothstep(deg(70.0), deg(150.0), np.abs(phi))
    side = _smoothstep(deg(25.0), deg(95.0), np.abs(phi))
    split_f, last_f = deg(-46.0), deg(-77.0)
    split = split_f + deg(21.0) * back
    last = last_f + deg(16.0) * side + deg(14.0) * back
    t = theta_front
    upper = deg(90.0) + (t - deg(90.0)) * (deg(90.0) - split) / (deg(90.0) - split_f)
    lower = split + (t - split_f) * (last - split) / (last_f - split_f)
    return np.where(t >= split_f, upper, lower)


_BROW_ROW = np.deg2rad(12.0)  # elevation of the brow band's middle row above the fissure
_LIP_ROWS = (5, 6)  # grid rows spanning the upper and the lower vermilion


def _align_rows(th: np.ndarray, cols: np.ndarray, r_m: int, r_b: int) -> None:
    """Bend grid rows (in place; th is (R, C)) so that the vermilion borders and the
    eyebrows' edges run along rows: region outlines follow the grid, not staircases."""
    deg = np.deg2rad
    pmc = MOUTH_CORNER_AZIMUTH
    h_up, h_lo = _vermilion(cols)
    blend = _smoothstep(1.15 * pmc, 2.3 * pmc, np.abs(cols))
    for k, h, sgn in ((_LIP_ROWS[0], h_up, -1), (_LIP_ROWS[1], h_lo, 1)):
        height = np.maximum(h, deg(0.35) * k)
        for j in range(1, k + 2):  # the vermilion's rows, and one just beyond its border
            r = r_m + sgn * j
            off = height * j / k if j <= k else height + deg(0.8)
            th[r] = (1.0 - blend) * (th[r_m] - sgn * off) + blend * th[r]
    arch, half = _brow_arch(cols), _brow_half_width(cols)
    w = _smoothstep(deg(3.0), deg(10.0), np.abs(cols)) * (
        1.0 - _smoothstep(deg(53.0), deg(62.0), np.abs(cols))
    )
    top, bottom = th[r_b - 4].copy(), th[r_b + 4].copy()
    for j in range(-3, 4):
        if abs(j) <= 2:
            target = arch + half * j / 2.0
        else:  # half way between the brow's edge and the fourth row
            target = 0.5 * ((arch + half, top) if j > 0 else (arch - half, bottom))[0] + 0.5 * (
                top if j > 0 else bottom
            )
        th[r_b - j] = (1.0 - w) * th[r_b - j] + w * target
    if np.any(np.diff(th, axis=0) >= 0):
        raise AssertionError("grid rows cross")  # pragma: no cover


def _build_skin(detail: float) -> _Skin:
    theta_e, phi_in, phi_out = _eye_angles()
    phi_mc = MOUTH_CORNER_AZIMUTH
    rows = _theta_rows(detail, theta_e)
    cols = _phi_columns(detail, keys=(phi_mc, phi_in, phi_out))
    n_neck = max(int(round(6 * detail)), 3)
    R_h, C = len(rows), len(cols)
    R = R_h + n_neck
    r_e = int(np.argmin(np.abs(rows - theta_e)))
    r_m = int(np.argmin(np.abs(rows - MOUTH_ELEVATION)))

    grid = np.arange(R * C).reshape(R, C)
    th = _warp_theta(rows[:, None], cols[None, :])
    r_b = int(np.argmin(np.abs(rows - theta_e - _BROW_ROW)))
    if r_b + 3 > r_e - 4:
        raise AssertionError("brow and eyelid rows overlap")  # pragma: no cover
    _align_rows(th, cols, r_m, r_b)
    theta = np.concatenate([th.ravel(), np.zeros(n_neck * C)])
    phi = np.tile(cols, R)
    is_neck = np.zeros(R * C, dtype=bool)
    is_neck[R_h * C :] = True
    # neck rows: theta holds the fraction of the way from the last head row to the bottom
    frac = (np.arange(1, n_neck + 1) / n_neck) ** 1.25
    theta[R_h * C :] = np.repeat(frac, C)

    extra_theta, extra_phi = [], []
    n_base = R * C
    top = grid.copy()  # vertex used as the upper corner of the quads below a node

    def cut(r: int, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
        """Slit row r between columns c0 < c1 (corners shared); returns (upper, lower)."""
        nonlocal n_base
        inner = np.arange(c0 + 1, c1)
        dup = n_base + len(extra_theta) + np.arange(len(inner))
        for c in inner:
            extra_theta.append(theta[grid[r, c]])
            extra_phi.append(phi[grid[r, c]])
        top[r, inner] = dup
        upper = grid[r, c0 : c1 + 1]
        lower = np.concatenate([[grid[r, c0]], dup, [grid[r, c1]]])
        return upper, lower

    def col(p: float) -> int:
        return int(np.argmin(np.abs(np.angle(np.exp(1j * (cols - p))))))

    mouth_upper, mouth_lower = cut(r_m, col(-phi_mc), col(phi_mc))
    eu_l, el_l = cut(r_e, col(phi_in), col(phi_out))
    eu_r, el_r = cut(r_e, col(-phi_out), col(-phi_in))
    eu_r, el_r = eu_r[::-1], el_r[::-1]  # inner -> outer canthus

    theta = np.concatenate([theta, extra_theta])
    phi = np.concatenate([phi, extra_phi])
    is_neck = np.concatenate([is_neck, np.zeros(len(extra_theta), dtype=bool)])
    pole, cap = len(theta), len(theta) + 1
    theta = np.concatenate([theta, [np.pi / 2, 0.0]])
    phi = np.concatenate([phi, [0.0, 0.0]])
    is_neck = np.concatenate([is_neck, [False, True]])

    faces = []
    c_next = np.roll(np.arange(C), -1)
    for r in range(R - 1):
        a, c_ = top[r], top[r, c_next]
        b, d = grid[r + 1], grid[r + 1, c_next]
        faces.append(np.stack([a, b, c_], axis=1))
        faces.append(np.stack([c_, b, d], axis=1))
    faces.append(np.stack([np.full(C, pole), grid[0], grid[0, c_next]], axis=1))
    faces.append(np.stack([top[R - 1], np.full(C, cap), top[R - 1, c_next]], axis=1))
    faces = np.concatenate(faces)

    # lid rows (edge first) of each eye, for the opening and the blink
    def lid_rows(upper: np.ndarray, lower: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cs = np.array([int(np.where(grid[r_e] == v)[0][0]) for v in upper])
        up = np.stack([upper] + [grid[r_e - j, cs] for j in range(1, 5)])
        lo = np.stack([lower] + [grid[r_e + j, cs] for j in range(1, 5)])
        return up, lo

    lu_l, ll_l = lid_rows(eu_l, el_l)
    lu_r, ll_r = lid_rows(eu_r, el_r)

    lip_side = np.zeros(len(theta))
    row_of = np.full(len(theta), -1)
    row_of[: R * C] = np.repeat(np.arange(R), C)
    lip_side[(row_of >= 0) & (row_of < r_m)] = 1.0
    lip_side[row_of > r_m] = -1.0
    lip_side[mouth_upper[1:-1]] = 1.0
    lip_side[mouth_lower[1:-1]] = -1.0
    lip_side[pole] = 1.0
    lip_side[cap] = -1.0
    row_of[mouth_lower[1:-1]] = r_m
    row_of[np.concatenate([el_l[1:-1], el_r[1:-1]])] = r_e
    row_of[pole], row_of[cap] = -1, R
    return _Skin(
        theta0=theta.copy(),
        theta=theta,
        phi=phi,
        row=row_of,
        is_neck=is_neck,
        grid=grid,
        faces=faces,
        pole=pole,
        cap=cap,
        n_head_rows=R_h,
        row_eye=r_e,
        row_mouth=r_m,
        mouth_upper=mouth_upper,
        mouth_lower=mouth_lower,
        eye_upper=(eu_l, eu_r),
        eye_lower=(el_l, el_r),
        lid_rows_up=(lu_l, lu_r),
        lid_rows_lo=(ll_l, ll_r),
        lip_side=lip_side,
    )


def _straighten_mouth(skin: _Skin, sdf: Callable[[np.ndarray], np.ndarray]) -> None:
    """Bend the rows around the mouth (in place) so that the slit runs level across the
    face, its corners 1.5 mm lower than its middle, instead of following the elevation."""
    head = ~skin.is_neck
    C = skin.grid.shape[1]
    cols_phi = skin.phi[skin.grid[skin.row_mouth]]
    dirs = _ray_dirs(skin.theta[skin.grid[skin.row_mouth]], cols_phi)
    t = cast_rays(np.broadcast_to(RAY_ORIGIN, dirs.shape), dirs, sdf, 0.0, 0.2)
    hit = RAY_ORIGIN + t[:, None] * dirs
    y0 = hit[np.argmin(np.abs(cols_phi)), 1]
    target = y0 - 0.0015 * np.minimum((cols_phi / MOUTH_CORNER_AZIMUTH) ** 2, 2.0)
    horiz = np.hypot(hit[:, 0] - RAY_ORIGIN[0], hit[:, 2] - RAY_ORIGIN[2])
    delta = np.arctan2(target - RAY_ORIGIN[1], horiz) - MOUTH_ELEVATION
    delta *= 1.0 - _smoothstep(np.deg2rad(40.0), np.deg2rad(80.0), np.abs(cols_phi))
    col = np.zeros(len(skin.theta), dtype=np.int64)
    col[: skin.grid.size] = np.tile(np.arange(C), skin.grid.shape[0])  # grid = arange
    # duplicates take the column of their upper copy
    pairs = [
        (skin.mouth_upper, skin.mouth_lower),
        *zip(skin.eye_upper, skin.eye_lower, strict=True),
    ]
    for upper, lower in pairs:
        col[lower] = col[upper]
    # rows of the lips move together (they are closely spaced near the corners), the
    # rows beyond fade back to the grid
    k = max(_LIP_ROWS) + 1
    w = np.clip(1.0 - (np.abs(skin.row - skin.row_mouth) - k) / 9.0, 0.0, 1.0)
    w[~head] = 0.0
    w[skin.pole] = 0.0
    skin.theta = skin.theta + w * delta[col]
    th = skin.theta[skin.grid[: skin.n_head_rows]]
    if np.any(np.diff(th, axis=0) >= 0):
        raise AssertionError("grid rows cross")  # pragma: no cover


# --------------------------------------------------------------------------------------
# Casting the skin
# --------------------------------------------------------------------------------------

_EYE_OPEN_UP = 0.0056  # upper lid edge above the fissure line at its highest (metres)
_EYE_OPEN_LO = 0.0040


def _lid_profiles(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Opening of the upper and lower lid along the fissure (inner -> outer canthus), 0..1."""
    s = np.linspace(0.0, 1.0, n)
    up = np.sin(np.pi * s**0.85) ** 0.65
    lo = np.sin(np.pi * s**1.2) ** 0.75
    return up, lo


def _eye_distance() -> float:
    return float(np.linalg.norm(EYE_CENTER + [0.0, 0.0, EYE_RADIUS] - RAY_ORIGIN))


def _open_eyes(skin: _Skin, theta: np.ndarray, blink: bool = False) -> np.ndarray:
    """Elevations with the fissures pulled open (or, with ``blink``, the upper lids closed
    onto the lower lid edges)."""
    theta = theta.copy()
    dist = _eye_distance()
    for up_rows, lo_rows in zip(skin.lid_rows_up, skin.lid_rows_lo, strict=True):
        k = len(up_rows) - 1  # rows that move; the last row is fixed
        p_up, p_lo = _lid_profiles(up_rows.shape[1])
        a_up, a_lo = _EYE_OPEN_UP / dist * p_up, _EYE_OPEN_LO / dist * p_lo
        base_up = theta[up_rows].copy()
        base_lo = theta[lo_rows].copy()
        for j in range(k):
            theta[lo_rows[j]] = base_lo[j] - a_lo * (1.0 - j / k)
        if not blink:
            for j in range(k):
                theta[up_rows[j]] = base_up[j] + a_up * (1.0 - j / k)
        else:
            edge = base_lo[0] - a_lo  # the lower lid edge
            for j in range(k):
                theta[up_rows[j]] = edge + (base_up[k] - edge) * (j / k)
    return theta


def _pillow(t: np.ndarray, peak: float = 0.42) -> np.ndarray:
    """Cross-section of a lip over t in [0, 1] (slit -> vermilion border): rises steeply
    from the slit, peaks at ``peak``, eases into the skin."""
    rise = np.sin(0.5 * np.pi * np.clip(t / peak, 0.0, 1.0)) ** 0.7
    fall = np.cos(0.5 * np.pi * np.clip((t - peak) / (1.0 - peak), 0.0, 1.0)) ** 1.5
    return np.where(t <= peak, rise, fall) * (t >= 0.0) * (t <= 1.0)


def _lip_relief(skin: _Skin, theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Outward offset (metres) of the vermilion of both lips, zero on the slit's corners and
    equal on both copies of the slit."""
    deg = np.deg2rad
    dt = theta - MOUTH_ELEVATION
    q = np.clip(1.0 - (phi / (MOUTH_CORNER_AZIMUTH * 1.04)) ** 2, 0.0, 1.0)
    h_up, h_lo = _vermilion(phi)
    up = (skin.lip_side > 0) & (dt >= 0) & (dt < h_up + 1e-9)
    lo = (skin.lip_side < 0) & (dt <= 0) & (-dt < h_lo + 1e-9)
    out = np.zeros_like(theta)
    t_up = np.where(up, dt / np.maximum(h_up, 1e-9), 0.0)
    t_lo = np.where(lo, -dt / np.maximum(h_lo, 1e-9), 0.0)
    out += np.where(up, 0.0030 * _pillow(t_up) * q**0.5, 0.0)
    out += np.where(lo, 0.0034 * _pillow(t_lo) * q**0.5, 0.0)
    # groove where the lips meet, continuing a little beyond the corners
    qq = np.clip(1.0 - (phi / (MOUTH_CORNER_AZIMUTH * 1.25)) ** 2, 0.0, 1.0)
    out -= 0.0010 * np.exp(-((dt / deg(1.0)) ** 2)) * qq**0.5
    return out


def _place_head(
    skin: _Skin,
    idx: np.ndarray,
    theta: np.ndarray,
    phi: np.ndarray,
    sdf: Callable[[np.ndarray], np.ndarray],
    relief: np.ndarray,
    eye_center: np.ndarray = EYE_CENTER,
) -> np.ndarray:
    """Positions (len(idx), 3) of head-ray vertices ``idx``: cast, offset by the lip relief
    along the surface normal, lid edges rolled in onto the eyeballs."""
    dirs = _ray_dirs(theta[idx], phi[idx])
    t = cast_rays(np.broadcast_to(RAY_ORIGIN, dirs.shape), dirs, sdf, 0.03, 0.2)
    if np.isnan(t).any():
        raise AssertionError("a head ray missed the head")  # pragma: no cover
    pos = RAY_ORIGIN + t[:, None] * dirs
    m = relief[idx] != 0.0
    pos[m] += relief[idx][m, None] * sdf_normals(pos[m], sdf)
    where = np.full(len(theta), -1)
    where[idx] = np.arange(len(idx))
    for i, sgn in enumerate((1.0, -1.0)):
        c = eye_center * [sgn, 1.0, 1.0]
        for edge in (skin.eye_upper[i], skin.eye_lower[i]):
            k = where[edge]
            k = k[k >= 0]
            v = pos[k] - c
            pos[k] = c + v / np.linalg.norm(v, axis=1, keepdims=True) * (EYE_RADIUS + LID_MARGIN)
    return pos


def _cast_skin(
    skin: _Skin,
    theta: np.ndarray,
    phi: np.ndarray,
    sdf: Callable[[np.ndarray], np.ndarray],
    relief: np.ndarray,
) -> np.ndarray:
    """Skin vertex positions (N, 3) for ray parameters ``theta``, ``phi`` and per-vertex
    outward offsets ``relief`` (N,)."""
    n = len(theta)
    pos = np.zeros((n, 3))
    head = np.where(~skin.is_neck)[0]
    pos[head] = _place_head(skin, head, theta, phi, sdf, relief)
    # neck rows hang from the last head row of their column
    R_h = skin.n_head_rows
    C = skin.grid.shape[1]
    last_y = pos[skin.grid[R_h - 1], 1]
    neck = skin.grid[R_h:].ravel()
    col = np.tile(np.arange(C), skin.grid.shape[0] - R_h)
    y = last_y[col] + (NECK_BOTTOM_Y - last_y[col]) * theta[neck]
    o = np.stack([np.zeros_like(y), y, np.full_like(y, NECK_AXIS_Z)], axis=1)
    d = _ray_dirs(np.zeros_like(y), phi[neck])
    t = cast_rays(o, d, sdf, 0.02, 0.12)
    pos[neck] = o + t[:, None] * d
    pos[skin.cap] = [0.0, NECK_BOTTOM_Y, NECK_AXIS_Z]
    return pos


# --------------------------------------------------------------------------------------
# Eyeballs and the mouth cavity
# --------------------------------------------------------------------------------------


def _uv_sphere(
    center: np.ndarray, radius: float, n_lat: int, n_lon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sphere with its poles on the z axis (front pole first): vertices (V, 3), faces (F, 3)
    counter-clockwise seen from outside."""
    lat = np.linspace(0.0, np.pi, n_lat + 2)[1:-1]  # polar angle from +z
    lon = np.linspace(0.0, 2 * np.pi, n_lon, endpoint=False)
    ring = np.stack(
        [
            np.sin(lat)[:, None] * np.cos(lon)[None, :],
            np.sin(lat)[:, None] * np.sin(lon)[None, :],
            np.repeat(np.cos(lat)[:, None], n_lon, axis=1),
        ],
        axis=-1,
    ).reshape(-1, 3)
    v = np.concatenate([[[0.0, 0.0, 1.0]], ring, [[0.0, 0.0, -1.0]]]) * radius + center
    idx = 1 + np.arange(n_lat * n_lon).reshape(n_lat, n_lon)
    nxt = np.roll(np.arange(n_lon), -1)
    faces = [np.stack([np.zeros(n_lon, dtype=np.int64), idx[0], idx[0, nxt]], axis=1)]
    for i in range(n_lat - 1):
        a, b, c, d = idx[i], idx[i, nxt], idx[i + 1], idx[i + 1, nxt]
        faces += [np.stack([a, c, b], axis=1), np.stack([b, c, d], axis=1)]
    last = len(v) - 1
    faces.append(np.stack([np.full(n_lon, last), idx[-1, nxt], idx[-1]], axis=1))
    f = np.concatenate(faces)
    # orient outwards
    cr = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    if np.einsum("ij,ij->", cr, v[f[:, 0]] - center) < 0:
        f = f[:, ::-1]
    return v, f


# depth behind the lips, half-height, lateral scale of the cavity's rings
_CAVITY_RINGS = np.array(
    [
        [0.0025, 0.0020, 0.97],
        [0.0060, 0.0050, 0.93],
        [0.0110, 0.0085, 0.88],
        [0.0180, 0.0105, 0.80],
        [0.0260, 0.0100, 0.66],
        [0.0340, 0.0070, 0.46],
    ]
)


def _mouth_loop(skin: _Skin) -> tuple[np.ndarray, np.ndarray]:
    """The slit's boundary loop (right corner, upper edge, left corner, lower edge back) and
    the side of each of its vertices (+1 upper lip, -1 lower lip, 0 corners)."""
    up, lo = skin.mouth_upper, skin.mouth_lower
    loop = np.concatenate([up, lo[1:-1][::-1]])
    side = np.concatenate([[0.0], np.ones(len(up) - 2), [0.0], -np.ones(len(lo) - 2)])
    return loop, side


def _cavity(P_loop: np.ndarray, side: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inner mouth: rings of vertices behind the slit loop, closed by a cap vertex; the
    rings open up and down behind the lips and narrow towards the throat.

    Args:
        P_loop: (L, 3) loop positions. side: (L,) +1 / -1 / 0.

    Returns:
        vertices (K*L+1, 3) ring by ring then the cap, ring of each new vertex (1..K, K+1
        for the cap) and side of each new vertex.
    """
    L = len(P_loop)
    centre = P_loop.mean(axis=0)
    half_w = np.abs(P_loop[:, 0]).max()
    q = np.clip(1.0 - (P_loop[:, 0] / half_w) ** 2, 0.0, 1.0) ** 0.5
    verts, ring, sides = [], [], []
    for k, (depth, height, lateral) in enumerate(_CAVITY_RINGS, start=1):
        v = P_loop.copy()
        v[:, 0] = centre[0] + (P_loop[:, 0] - centre[0]) * lateral
        v[:, 1] = P_loop[:, 1] + side * height * (0.35 + 0.65 * q)
        v[:, 2] = P_loop[:, 2] - depth - 0.004 * (1.0 - q) * (k > 1)
        verts.append(v)
        ring.append(np.full(L, k))
        sides.append(side)
    cap = centre + np.array([0.0, 0.0, -_CAVITY_RINGS[-1, 0] - 0.006])
    verts = np.concatenate(verts + [cap[None]])
    ring = np.concatenate(ring + [[len(_CAVITY_RINGS) + 1]])
    sides = np.concatenate(sides + [[0.0]])
    return verts, ring, sides


def _cavity_faces(loop: np.ndarray, first: int, n_rings: int) -> np.ndarray:
    """Faces joining the loop to the cavity rings and the cap (orientation fixed later)."""
    L = len(loop)
    rings = [loop] + [first + k * L + np.arange(L) for k in range(n_rings)]
    cap = first + n_rings * L
    nxt = np.roll(np.arange(L), -1)
    faces = []
    for a_ring, b_ring in zip(rings[:-1], rings[1:], strict=True):
        a, b, c, d = a_ring, a_ring[nxt], b_ring, b_ring[nxt]
        faces += [np.stack([a, c, b], axis=1), np.stack([b, c, d], axis=1)]
    last = rings[-1]
    faces.append(np.stack([last, np.full(L, cap), last[nxt]], axis=1))
    return np.concatenate(faces)


def _orient_like(faces: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Flip ``faces`` if they traverse the edges they share with ``reference`` in the same
    direction (consistent orientation needs opposite directions)."""
    ref = set(
        map(
            tuple,
            np.concatenate(
                [reference[:, [0, 1]], reference[:, [1, 2]], reference[:, [2, 0]]]
            ).tolist(),
        )
    )
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).tolist()
    same = sum(1 for a, b in e if (a, b) in ref)
    opposite = sum(1 for a, b in e if (b, a) in ref)
    return faces[:, ::-1].copy() if same > opposite else faces


@dataclass
class _Geometry:
    """The rest-pose template and everything needed to deform it."""

    skin: _Skin
    theta: np.ndarray  # (N,) ray elevations with the eyes open
    relief: np.ndarray  # (N,) lip relief
    vertices: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3)
    n_skin: int
    cavity: np.ndarray  # (Nc,) vertex indices of the mouth cavity (rings >= 1 and cap)
    cavity_ring: np.ndarray  # (Nc,)
    cavity_side: np.ndarray  # (Nc,)
    loop: np.ndarray  # (L,) slit loop (skin vertices)
    loop_side: np.ndarray
    eyeballs: tuple[np.ndarray, np.ndarray]  # (left, right) vertex indices


def _build_geometry(detail: float) -> _Geometry:
    sdf = head_sdf
    skin = _build_skin(detail)
    _straighten_mouth(skin, sdf)
    theta = _open_eyes(skin, skin.theta)
    relief = _lip_relief(skin, skin.theta0, skin.phi)
    P = _cast_skin(skin, theta, skin.phi, sdf, relief)
    faces = [skin.faces]
    n_skin = len(P)
    loop, loop_side = _mouth_loop(skin)
    cav_v, cav_ring, cav_side = _cavity(P[loop], loop_side)
    cav_f = _orient_like(_cavity_faces(loop, n_skin, len(_CAVITY_RINGS)), skin.faces)
    faces.append(cav_f)
    verts = [P, cav_v]
    cavity = n_skin + np.arange(len(cav_v))
    start = n_skin + len(cav_v)
    eyeballs = []
    n_lat, n_lon = max(int(round(8 * detail)), 5), 2 * max(int(round(7 * detail)), 4)
    for sgn in (1.0, -1.0):
        ev, ef = _uv_sphere(EYE_CENTER * [sgn, 1.0, 1.0], EYE_RADIUS, n_lat, n_lon)
        verts.append(ev)
        faces.append(ef + start)
        eyeballs.append(start + np.arange(len(ev)))
        start += len(ev)
    return _Geometry(
        skin=skin,
        theta=theta,
        relief=relief,
        vertices=np.concatenate(verts),
        faces=np.concatenate(faces),
        n_skin=n_skin,
        cavity=cavity,
        cavity_ring=cav_ring,
        cavity_side=cav_side,
        loop=loop,
        loop_side=loop_side,
        eyeballs=(eyeballs[0], eyeballs[1]),
    )


# --------------------------------------------------------------------------------------
# Skinning weights and joint regressor
# --------------------------------------------------------------------------------------


def _edges(faces: np.ndarray) -> np.ndarray:
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.sort(e, axis=1)
    return np.unique(e, axis=0)


def _harmonic(
    n: int, edges: np.ndarray, fixed: np.ndarray, values: np.ndarray, active: np.ndarray
) -> np.ndarray:
    """Harmonic interpolation (uniform graph Laplacian) of ``values`` given at ``fixed``
    over the ``active`` vertices; inactive vertices get 0."""
    from scipy.sparse.linalg import spsolve

    keep = active[edges[:, 0]] & active[edges[:, 1]]
    e = edges[keep]
    A = sp.coo_matrix(
        (np.ones(2 * len(e)), (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])), shape=(n, n)
    ).tocsr()
    Lap = sp.diags(np.asarray(A.sum(axis=1)).ravel()) - A
    is_fixed = np.zeros(n, dtype=bool)
    is_fixed[fixed] = True
    free = np.where(active & ~is_fixed)[0]
    x = np.zeros(n)
    x[fixed] = values
    rhs = -Lap[free][:, fixed] @ values
    x[free] = spsolve(Lap[free][:, free].tocsc(), rhs)
    return np.clip(x, 0.0, 1.0)


def _jaw_plane_distance(p: np.ndarray, mouth_y: float, mouth_z: float) -> np.ndarray:
    """Signed distance (x ignored) to the plane through the jaw joint and the mouth line;
    negative below (the jaw side)."""
    d = np.array([0.0, mouth_y - JAW_JOINT[1], mouth_z - JAW_JOINT[2]])
    n = np.array([0.0, d[2], -d[1]]) / np.hypot(d[1], d[2])
    return (p - JAW_JOINT) @ n


def _skinning_weights(g: _Geometry, mirror: np.ndarray) -> np.ndarray:
    """(V, 5) smooth weights: jaw under the mouth (harmonic across the cheeks, a sharp cut
    at the slit), root/neck along the neck, eyeballs rigid."""
    V = len(g.vertices)
    P = g.vertices
    skin = g.skin
    mid = g.loop[np.argmin(np.abs(P[g.loop, 0]))]
    sd = _jaw_plane_distance(P, P[mid, 1], P[mid, 2])
    active = np.ones(V, dtype=bool)
    active[np.concatenate(g.eyeballs)] = False
    is_neck = np.zeros(V, dtype=bool)
    is_neck[: g.n_skin] = skin.is_neck
    one = np.zeros(V, dtype=bool)
    zero = np.zeros(V, dtype=bool)
    ps = P[: g.n_skin]
    one[: g.n_skin] = (
        (sd[: g.n_skin] < -0.014)
        & (ps[:, 2] > 0.0)
        & (ps[:, 1] > -0.088)
        & (np.abs(ps[:, 0]) < 0.045)
        & ~skin.is_neck
    )
    ear = (np.abs(ps[:, 0]) > 0.060) & (ps[:, 2] < 0.012) & (ps[:, 1] > -0.045)
    zero[: g.n_skin] = (sd[: g.n_skin] > 0.006) | (ps[:, 2] < -0.035) | ear
    zero[: g.n_skin] |= skin.row >= skin.n_head_rows + 2
    one[skin.mouth_lower[1:-1]] = True
    zero[skin.mouth_upper[1:-1]] = True
    deep = g.cavity_ring >= 2
    one[g.cavity[deep & (g.cavity_side < 0)]] = True
    zero[g.cavity[deep & (g.cavity_side > 0)]] = True
    zero &= ~one
    fixed = np.where((one | zero) & active)[0]
    jaw = _harmonic(V, _edges(g.faces), fixed, one[fixed].astype(np.float64), active)
    jaw = 0.5 * (jaw + jaw[mirror])  # the triangulation is not quite symmetric
    t_neck = _smoothstep(NECK_BOTTOM_Y + 0.004, -0.065, P[:, 1])
    w = np.zeros((V, 5))
    w[:, 2] = jaw
    w[:, 1] = (1.0 - jaw) * t_neck
    w[:, 0] = (1.0 - jaw) * (1.0 - t_neck)
    for j, idx in ((3, g.eyeballs[0]), (4, g.eyeballs[1])):
        w[idx] = 0.0
        w[idx, j] = 1.0
    return w


def _mirror_index(P: np.ndarray) -> np.ndarray:
    """Index of each vertex's mirror image across x = 0 (the template is symmetric)."""
    from scipy.spatial import cKDTree

    d, idx = cKDTree(P).query(P * [-1.0, 1.0, 1.0])
    if d.max() > 1e-6:
        raise AssertionError(f"template is not mirror symmetric ({d.max():.2e} m)")
    return idx


def _convex_regressor_row(
    P: np.ndarray, candidates: np.ndarray, mirror: np.ndarray, target: np.ndarray
) -> np.ndarray:
    """Sparse convex weights (V,) over ``candidates`` and their mirrors whose weighted mean
    is ``target`` (x = 0): non-negative least squares with a heavily weighted sum row."""
    from scipy.optimize import nnls

    cand = candidates
    pairs = 0.5 * (P[cand] + P[mirror[cand]])
    lam = 10.0
    A = np.vstack([pairs[:, 1:].T, lam * np.ones(len(cand))])
    b = np.r_[target[1:], lam]
    w, _ = nnls(A, b)
    w /= w.sum()
    row = np.zeros(len(P))
    np.add.at(row, cand, 0.5 * w)
    np.add.at(row, mirror[cand], 0.5 * w)
    return row


def _joint_regressor(g: _Geometry, mirror: np.ndarray) -> sp.csc_matrix:
    """(5, V) sparse convex joint regressor."""
    P = g.vertices
    V = len(P)
    skin = np.arange(g.n_skin)
    rows = []
    for target in (ROOT_JOINT, NECK_JOINT):
        near = skin[np.abs(P[skin, 1] - target[1]) < 0.012]
        rows.append(_convex_regressor_row(P, near, mirror, target))
    tmj = skin[
        (np.abs(P[skin, 0]) > 0.045)
        & (np.linalg.norm((P[skin] - [0.0, JAW_JOINT[1], JAW_JOINT[2]])[:, 1:], axis=1) < 0.03)
    ]
    rows.append(_convex_regressor_row(P, tmj, mirror, JAW_JOINT))
    for idx in g.eyeballs:
        r = np.zeros(V)
        r[idx] = 1.0 / len(idx)
        rows.append(r)
    return sp.csc_matrix(np.stack(rows))


# --------------------------------------------------------------------------------------
# Blendshapes
# --------------------------------------------------------------------------------------

_CAVITY_FOLLOW = np.array([0.9, 0.75, 0.55, 0.35, 0.2, 0.1, 0.05])  # rings 1.., cap


def _with_cavity(g: _Geometry, d_skin: np.ndarray) -> np.ndarray:
    """(V, 3) displacement: the skin's, the cavity following its lips ring by ring, the
    eyeballs still."""
    d = np.zeros((len(g.vertices), 3))
    d[: g.n_skin] = d_skin
    L = len(g.loop)
    dl = d_skin[g.loop]
    for k in range(len(_CAVITY_RINGS)):
        d[g.cavity[k * L : (k + 1) * L]] = _CAVITY_FOLLOW[k] * dl
    d[g.cavity[-1]] = _CAVITY_FOLLOW[-1] * dl.mean(axis=0)
    return d


def _slide(
    g: _Geometry,
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
        d[idx] = _place_head(skin, idx, th, ph, head_sdf, rel) - g.vertices[idx]
    return d


def _expression_meaningful(g: _Geometry) -> list[np.ndarray]:
    """Lip rounding, lip closure, smile, brow raise, blink: (V, 3) each, unit = full."""
    deg = np.deg2rad
    sk = g.skin
    th0, ph = sk.theta0, sk.phi
    dt = th0 - MOUTH_ELEVATION
    pmc = MOUTH_CORNER_AZIMUTH
    theta_e = _eye_angles()[0]
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
    f = _smoothstep(theta_e + deg(3.0), theta_e + deg(11.0), th0) * (
        1.0 - _smoothstep(theta_e + deg(20.0), theta_e + deg(50.0), th0)
    )
    f *= 1.0 - _smoothstep(deg(45.0), deg(70.0), np.abs(ph))
    out.append(_slide(g, deg(4.4) * f))
    # 4: blink -- the upper lids close onto the lower lid edges
    closed = _open_eyes(sk, sk.theta, blink=True)
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
        out.append(1.0 - _smoothstep(inner, outer, r))
    return np.stack(out, axis=1)


def _rigid_eyes(
    g: _Geometry, d: np.ndarray, field: Callable[[np.ndarray], np.ndarray]
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


def _expression_random(
    g: _Geometry, n: int, rng: np.random.Generator, mirror: np.ndarray
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


def _gauss(P: np.ndarray, c: np.ndarray, sigma: float | np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * (((P - c) / sigma) ** 2).sum(axis=1))


def _shape_meaningful(g: _Geometry, normals: np.ndarray) -> list[np.ndarray]:
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
            [0 * p[:, 0], -0.006 * _smoothstep(0.03, -0.09, p[:, 1]), 0 * p[:, 0]], axis=1
        ),
        # nose size: scaled about its root
        lambda p: (
            0.14
            * (p - [0.0, -0.004, 0.088])
            * _gauss(p, np.array([0.0, -0.006, 0.100]), np.array([0.013, 0.020, 0.014]))[:, None]
        ),
        # nose length: the tip forward and down
        lambda p: (
            np.array([0.0, -0.0015, 0.0035])
            * _gauss(p, np.array([0.0, -0.012, 0.112]), 0.011)[:, None]
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
                * np.maximum(_gauss(p, EYE_CENTER, 0.02), _gauss(p, EYE_CENTER * [-1, 1, 1], 0.02)),
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
        * _gauss(np.stack([absx, P[:, 1], P[:, 2]], 1), np.array([0.050, 0.004, 0.052]), 0.015)
        * on_skin,
    ]
    for amp in normal_fields:
        if amp is None:
            d = (
                np.array([0.0, -0.0012, 0.0035])
                * _gauss(P, np.array([0.0, -0.078, 0.082]), 0.014)[:, None]
            )
        else:
            d = amp[:, None] * normals
        out.append(_rigid_eyes(g, d, zero))
    # head depth: the back of the skull
    d = np.stack(
        [
            0 * P[:, 0],
            0 * P[:, 0],
            -0.006 * _smoothstep(0.0, -0.1, P[:, 2]) * _smoothstep(-0.09, -0.02, P[:, 1]),
        ],
        axis=1,
    )
    out.append(d)
    return out


def _shape_random(
    g: _Geometry, n: int, rng: np.random.Generator, mirror: np.ndarray
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


def _pose_correctives(g: _Geometry, weights: np.ndarray) -> np.ndarray:
    """(V, 3, 36) posedirs: opening the jaw draws the cheeks in and stretches the chin
    (on the sin(angle) entry of the jaw's rotation); zero for the other joints."""
    P = g.vertices
    V = len(P)
    pd = np.zeros((V, 3, 4 * 9))
    w = weights[:, 2]
    band = 4.0 * w * (1.0 - w)
    side = _smoothstep(0.015, 0.035, np.abs(P[:, 0]))
    d = np.zeros((V, 3))
    d[:, 0] = -0.005 * np.sign(P[:, 0]) * band * side
    d[:, 1] = -0.003 * w * _gauss(P, np.array([0.0, -0.075, 0.08]), 0.02)
    d[np.concatenate(g.eyeballs)] = 0.0
    pd[:, :, 9 + 7] = d  # joint 2 (jaw), entry R[2, 1] - 0 = sin(angle about x)
    return pd


# --------------------------------------------------------------------------------------
# Landmarks (iBUG 68) and region masks
# --------------------------------------------------------------------------------------


def _param_faces(g: _Geometry) -> np.ndarray:
    """Skin faces with all corners on head rows and not across the back seam."""
    sk = g.skin
    f = sk.faces
    ok = ~sk.is_neck[f].any(axis=1)
    ok &= ~(f == sk.pole).any(axis=1)
    ph = sk.phi[f]
    ok &= (ph.max(axis=1) - ph.min(axis=1)) < np.pi
    return np.where(ok)[0]


def _locate(uv_tri: np.ndarray, point: np.ndarray) -> tuple[int, np.ndarray]:
    """Triangle (index into uv_tri (F, 3, 2)) containing a 2D point and its barycentrics."""
    a, b, c = uv_tri[:, 0], uv_tri[:, 1], uv_tri[:, 2]
    v0, v1, v2 = b - a, c - a, point[None] - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = np.where(np.abs(den) < 1e-18, 1e-18, den)
    l1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    l2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    bary = np.stack([1.0 - l1 - l2, l1, l2], axis=1)
    score = bary.min(axis=1)
    i = int(np.argmax(score))
    if score[i] < -1e-6:
        raise AssertionError("landmark outside the parameter domain")  # pragma: no cover
    return i, np.clip(bary[i], 0.0, 1.0) / np.clip(bary[i], 0.0, 1.0).sum()


def _edge_point(
    faces: np.ndarray, n_faces: int, chain: np.ndarray, u: float
) -> tuple[int, np.ndarray]:
    """Face and barycentrics of the point at fraction u of a vertex chain (by vertex index,
    so that the two edges of a slit, which share their columns, get matching points), on a
    face among the first ``n_faces`` that holds the chain's segment."""
    x = u * (len(chain) - 1)
    k = int(np.clip(np.floor(x), 0, len(chain) - 2))
    t = float(x - k)
    a, b = chain[k], chain[k + 1]
    f = faces[:n_faces]
    hit = np.where((f == a).any(axis=1) & (f == b).any(axis=1))[0]
    fi = int(hit[0])
    bary = np.zeros(3)
    bary[np.where(f[fi] == a)[0][0]] = 1.0 - t
    bary[np.where(f[fi] == b)[0][0]] = t
    return fi, bary


def _landmarks(g: _Geometry) -> tuple[np.ndarray, np.ndarray]:
    """iBUG-68 embedding: face indices (68,) and barycentric coordinates (68, 3)."""
    deg = np.deg2rad
    sk = g.skin
    P = g.vertices
    pf = _param_faces(g)
    F = sk.faces[pf]
    uv0 = np.stack([sk.phi, sk.theta0], axis=1)[F]  # grid parameter
    uv = np.stack([sk.phi, sk.theta], axis=1)[F]  # ray direction (before the eyes open)
    n_skin_faces = len(sk.faces)
    out: list[tuple[int, np.ndarray]] = []

    def grid(phi: float, theta0: float) -> None:
        i, b = _locate(uv0, np.array([phi, theta0]))
        out.append((int(pf[i]), b))

    rays: list[tuple[int, float, float]] = []  # (slot, azimuth, height), cast together

    def ray_to(phi: float, y: float) -> None:
        """The skin point seen from the ray origin at azimuth phi and height y."""
        rays.append((len(out), phi, y))
        out.append((-1, np.zeros(3)))

    # 0-16 face contour, subject's right (-x) to left, through the chin
    for i in range(17):
        s = i / 8.0 - 1.0
        ray_to(deg(74.0) * s, 0.016 - 0.101 * (1.0 - abs(s) ** 1.7))
    # 17-21 right brow (outer -> inner), 22-26 left brow (inner -> outer)
    for p in deg(np.array([-49.0, -40.0, -31.0, -22.0, -13.5, 13.5, 22.0, 31.0, 40.0, 49.0])):
        grid(p, float(_brow_arch(np.array(p))))
    # 27-30 nose bridge (nasion -> tip), 31-35 nose base (right -> left)
    tip = P[sk.grid[:, sk.grid.shape[1] // 2 - 1]]
    tip_y = float(tip[np.argmax(tip[:, 2]), 1])
    top_y = EYE_CENTER[1] + 0.001
    for k in range(4):
        ray_to(0.0, top_y + (tip_y - top_y) * k / 3.0)
    for p, y in zip(
        deg(np.array([-10.5, -5.0, 0.0, 5.0, 10.5])),
        (-0.0185, -0.022, -0.025, -0.022, -0.0185),
        strict=True,
    ):
        ray_to(float(p), y)
    # 36-47 eyes on the lid edges; chains run inner -> outer canthus
    n_f = n_skin_faces
    for i, order in ((1, "right"), (0, "left")):
        up, lo = sk.eye_upper[i], sk.eye_lower[i]
        if order == "right":  # 36 outer, 37 38 upper, 39 inner, 40 41 lower
            spec = [(up, 1.0), (up, 2 / 3), (up, 1 / 3), (up, 0.0), (lo, 1 / 3), (lo, 2 / 3)]
        else:  # 42 inner, 43 44 upper, 45 outer, 46 47 lower
            spec = [(up, 0.0), (up, 1 / 3), (up, 2 / 3), (up, 1.0), (lo, 2 / 3), (lo, 1 / 3)]
        out += [_edge_point(g.faces, n_f, ch, u) for ch, u in spec]
    # 48-59 outer lip contour: corners just outside the slit, vermilion borders
    pmc = MOUTH_CORNER_AZIMUTH
    eps = 1e-7
    grid(-pmc - deg(1.2), MOUTH_ELEVATION + eps)
    for f in (-0.62, -0.28, 0.0, 0.28, 0.62):
        grid(f * pmc, MOUTH_ELEVATION + float(_vermilion(np.array(f * pmc))[0]))
    grid(pmc + deg(1.2), MOUTH_ELEVATION + eps)
    for f in (0.62, 0.30, 0.0, -0.30, -0.62):
        grid(f * pmc, MOUTH_ELEVATION - float(_vermilion(np.array(f * pmc))[1]))
    # 60-67 inner lip contour on the slit edges (chains run right -> left corner)
    up, lo = sk.mouth_upper, sk.mouth_lower
    spec = [
        (up, 0.0),
        (up, 0.25),
        (up, 0.5),
        (up, 0.75),
        (up, 1.0),
        (lo, 0.75),
        (lo, 0.5),
        (lo, 0.25),
    ]
    out += [_edge_point(g.faces, n_f, ch, u) for ch, u in spec]
    phis = np.array([r[1] for r in rays])
    want = np.array([r[2] for r in rays])

    def first_down(ts: np.ndarray) -> np.ndarray:
        """(n_rays,) elevation among ts (n_rays, T), descending, where the hits first come
        down to the wanted height (the frontmost such point: the chin, not under it)."""
        d = _ray_dirs(ts, phis[:, None]).reshape(-1, 3)
        t = cast_rays(np.broadcast_to(RAY_ORIGIN, d.shape), d, head_sdf, 0.03, 0.2)
        ys = (RAY_ORIGIN[1] + t * d[:, 1]).reshape(ts.shape)
        below = np.nan_to_num(ys, nan=np.inf) <= want[:, None]
        k = np.where(
            below.any(axis=1),
            np.argmax(below, axis=1),
            np.nanargmin(np.abs(ys - want[:, None]), axis=1),
        )
        return ts[np.arange(len(ts)), k]

    coarse = first_down(np.broadcast_to(np.linspace(deg(60.0), deg(-80.0), 141), (len(rays), 141)))
    fine = first_down(coarse[:, None] + np.linspace(deg(1.0), deg(-1.0), 41)[None, :])
    for (slot, phi, _), theta in zip(rays, fine, strict=True):
        i, b = _locate(uv, np.array([phi, theta]))
        out[slot] = (int(pf[i]), b)
    face_idx = np.array([o[0] for o in out], dtype=np.int64)
    bary = np.stack([o[1] for o in out])
    return face_idx, bary


def _hairline(phi: np.ndarray) -> np.ndarray:
    """Height (y) of the hairline around the head at azimuth phi."""
    return np.interp(
        np.abs(np.rad2deg(phi)),
        [0, 30, 48, 62, 74, 82, 92, 110, 125, 140, 180],
        [0.098, 0.092, 0.082, 0.072, 0.050, 0.030, 0.040, 0.038, 0.00, -0.045, -0.055],
    )


def _masks(g: _Geometry) -> dict[str, np.ndarray]:
    """FLAME_masks-style regions (vertex indices). Disjoint leaves: face skin, eyebrows,
    nose, lips, eyeballs, mouth interior, scalp, ears, neck; ``face`` contains the brows,
    nose, lips, eye regions and forehead; ``boundary`` lies in ``neck``."""
    deg = np.deg2rad
    sk = g.skin
    n = g.n_skin
    ps = g.vertices[:n]
    a = ps.copy()
    a[:, 0] = np.abs(a[:, 0])  # mirrored onto the subject's left
    head = ~sk.is_neck
    th0, ph = sk.theta0, sk.phi
    dt = th0 - MOUTH_ELEVATION

    ears = (_ear_sdf(a) < 0.003) & (a[:, 0] > 0.058) & (ps[:, 2] < 0.02)
    jaw_line = -0.066 - 0.36 * np.clip(ps[:, 2], 0.0, None)
    neck = (sk.is_neck | (ps[:, 1] < jaw_line)) & ~ears
    neck[sk.pole] = False
    scalp = (ps[:, 1] > _hairline(ph)) & ~ears & ~neck
    scalp[sk.pole] = True
    scalp &= ~((ps[:, 1] < 0.0) & (ps[:, 2] > -0.04))  # no hair on the jaw
    face = ~ears & ~neck & ~scalp

    h_up, h_lo = _vermilion(ph)
    within = np.abs(ph) <= MOUTH_CORNER_AZIMUTH * 1.04
    upper_lip = head & within & (sk.lip_side >= 0) & (dt >= -1e-9) & (dt <= h_up + deg(0.3))
    lower_lip = head & within & (sk.lip_side < 0) & (dt <= 1e-9) & (-dt <= h_lo + deg(0.3))
    upper_lip[sk.mouth_upper] = True
    lower_lip[sk.mouth_lower[1:-1]] = True
    lower_lip &= ~upper_lip

    nose = face & (_nose_sdf(a) < 0.0012) & (ps[:, 1] > -0.0235) & ~upper_lip

    brow_c = _brow_arch(ph)
    inbrow = (
        (np.abs(th0 - brow_c) <= _brow_half_width(ph) + 1e-9)
        & (np.abs(ph) > deg(10.0))
        & (np.abs(ph) < deg(53.0))
        & head
        & face
        & ~nose
    )
    eye_region = []
    for sgn in (1.0, -1.0):
        r = np.linalg.norm(ps - EYE_CENTER * [sgn, 1.0, 1.0], axis=1)
        eye_region.append(face & (r < 0.024) & ~nose & (np.sign(ps[:, 0]) == sgn))
    forehead = face & head & (th0 > brow_c + _brow_half_width(ph)) & (np.abs(ph) < deg(60.0))

    boundary = np.zeros(n, dtype=bool)
    boundary[sk.grid[-1]] = True
    boundary[sk.cap] = True

    def idx(m: np.ndarray) -> np.ndarray:
        return np.where(m)[0].astype(np.int64)

    out = {
        "face": idx(face),
        "lips": idx(upper_lip | lower_lip),
        "upper_lip": idx(upper_lip),
        "lower_lip": idx(lower_lip),
        "mouth_interior": g.cavity.astype(np.int64),
        "nose": idx(nose),
        "forehead": idx(forehead),
        "left_eye_region": idx(eye_region[0]),
        "right_eye_region": idx(eye_region[1]),
        "left_eyeball": g.eyeballs[0].astype(np.int64),
        "right_eyeball": g.eyeballs[1].astype(np.int64),
        "left_eyebrow": idx(inbrow & (ps[:, 0] > 0)),
        "right_eyebrow": idx(inbrow & (ps[:, 0] < 0)),
        "scalp": idx(scalp),
        "neck": idx(neck),
        "left_ear": idx(ears & (ps[:, 0] > 0)),
        "right_ear": idx(ears & (ps[:, 0] < 0)),
        "boundary": idx(boundary),
    }
    return out


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------


def build_head_model(
    seed: int = 0, n_shape: int = 50, n_expression: int = 50, detail: float = 1.0
) -> dict:
    """Build the procedural head as a FLAME-style model dict (deterministic in ``seed``).

    Args:
        seed: seeds the random identity and expression components (the template, the
            meaningful components, joints, weights, landmarks and masks do not depend on it).
        n_shape: S, identity components; the first ones are :data:`SHAPE_NAMES`.
        n_expression: E >= 5, expression components; the first ones are
            :data:`EXPRESSION_NAMES`.
        detail: density of the skin grid (1.0: about 6k vertices).

    Returns:
        dict with FLAME's keys: ``v_template`` (V, 3), ``f`` (F, 3) uint32, ``shapedirs``
        (V, 3, S+E), ``posedirs`` (V, 3, 36), ``J_regressor`` (5, V) scipy csc,
        ``weights`` (V, 5), ``kintree_table`` (2, 5) uint32, ``J`` (5, 3), ``num_shape``
        (int S); plus ``lmk_face_idx`` (68,), ``lmk_b_coords`` (68, 3) and ``masks``
        {region: vertex indices}.
    """
    if n_shape < 0 or n_expression < len(EXPRESSION_NAMES):
        raise ValueError(
            f"need n_shape >= 0 and n_expression >= {len(EXPRESSION_NAMES)}, "
            f"got {n_shape}, {n_expression}"
        )
    if not 0.3 <= detail <= 3.0:
        raise ValueError(f"detail must be in [0.3, 3], got {detail}")
    rng = np.random.default_rng(seed)
    g = _build_geometry(detail)
    P = g.vertices
    mirror = _mirror_index(P)
    normals = np.zeros_like(P)
    normals[: g.n_skin] = sdf_normals(P[: g.n_skin], head_sdf)

    shapes = _shape_meaningful(g, normals)[:n_shape]
    shapes += _shape_random(
        g, n_shape - len(shapes), np.random.default_rng(rng.integers(2**63)), mirror
    )
    exprs = _expression_meaningful(g)
    exprs += _expression_random(
        g, n_expression - len(exprs), np.random.default_rng(rng.integers(2**63)), mirror
    )
    dirs = np.stack(shapes + exprs, axis=2) if shapes + exprs else np.zeros((len(P), 3, 0))

    weights = _skinning_weights(g, mirror)
    J_reg = _joint_regressor(g, mirror)
    kintree = np.array([PARENTS, np.arange(5)]).astype(np.int64)
    kintree[0, 0] = 4294967295
    lmk_face_idx, lmk_b = _landmarks(g)
    return {
        "v_template": P.astype(np.float64),
        "f": g.faces.astype(np.uint32),
        "shapedirs": dirs.astype(np.float64),
        "posedirs": _pose_correctives(g, weights),
        "J_regressor": J_reg,
        "weights": weights,
        "kintree_table": kintree.astype(np.uint32),
        "J": np.asarray(J_reg @ P),
        "num_shape": int(n_shape),
        "lmk_face_idx": lmk_face_idx,
        "lmk_b_coords": lmk_b,
        "masks": _masks(g),
    }


def _rodrigues(aa: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices."""
    aa = np.asarray(aa, dtype=np.float64)
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    k = aa / np.maximum(angle, 1e-12)
    K = np.zeros(aa.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2] = -k[..., 2], k[..., 1]
    K[..., 1, 0], K[..., 1, 2] = k[..., 2], -k[..., 0]
    K[..., 2, 0], K[..., 2, 1] = -k[..., 1], k[..., 0]
    s, c = np.sin(angle)[..., None], np.cos(angle)[..., None]
    return np.eye(3) + s * K + (1.0 - c) * (K @ K)


def pose_head(
    model: Mapping,
    shape: np.ndarray | None = None,
    expression: np.ndarray | None = None,
    rotation: np.ndarray | None = None,
    neck: np.ndarray | None = None,
    jaw: np.ndarray | None = None,
    eyes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Deform the model (numpy linear blend skinning, one frame; for previews and checks).

    Args:
        model: dict from :func:`build_head_model`.
        shape: (S',) S' <= S; expression: (E',); rotation, neck, jaw: (3,) axis-angle;
            eyes: (6,) left then right eye axis-angle.

    Returns:
        vertices (V, 3) and landmarks (68, 3).
    """
    S = int(model["num_shape"])
    dirs = np.asarray(model["shapedirs"])
    coeffs = np.zeros(dirs.shape[2])
    if shape is not None:
        coeffs[: len(shape)] = shape
    if expression is not None:
        coeffs[S : S + len(expression)] = expression
    v = np.asarray(model["v_template"]) + dirs @ coeffs
    J = np.asarray(model["J_regressor"] @ v)
    pose = np.zeros((5, 3))
    for j, val in ((0, rotation), (1, neck), (2, jaw)):
        if val is not None:
            pose[j] = val
    if eyes is not None:
        pose[3:] = np.asarray(eyes).reshape(2, 3)
    R = _rodrigues(pose)
    v = v + np.asarray(model["posedirs"]) @ (R[1:] - np.eye(3)).ravel()
    G = np.zeros((5, 4, 4))
    for j in range(5):
        local = np.eye(4)
        local[:3, :3] = R[j]
        local[:3, 3] = J[j] - (J[PARENTS[j]] if j else 0.0)
        G[j] = local if j == 0 else G[PARENTS[j]] @ local
    A = G.copy()
    A[:, :3, 3] -= np.einsum("jab,jb->ja", G[:, :3, :3], J)
    T = np.einsum("vj,jab->vab", np.asarray(model["weights"]), A)
    out = np.einsum("vab,vb->va", T[:, :3, :3], v) + T[:, :3, 3]
    tri = np.asarray(model["f"]).astype(np.int64)[np.asarray(model["lmk_face_idx"])]
    lmk = np.einsum("lkc,lk->lc", out[tri], np.asarray(model["lmk_b_coords"]))
    return out, lmk


def write_head_model(out_dir: PathLike, model: Mapping) -> dict[str, Path]:
    """Write ``generic_model.pkl`` (FLAME's Python-2 / chumpy-style pickle),
    ``landmark_embedding.npz`` and ``FLAME_masks.pkl`` into ``out_dir`` (atomically).

    Returns:
        {"model": path, "landmarks": path, "masks": path}.
    """
    from ..flame.model import save_flame_model, save_landmark_embedding, save_region_masks

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keys = (
        "v_template",
        "f",
        "shapedirs",
        "posedirs",
        "J_regressor",
        "weights",
        "kintree_table",
        "J",
        "num_shape",
    )
    paths = {
        "model": out / "generic_model.pkl",
        "landmarks": out / "landmark_embedding.npz",
        "masks": out / "FLAME_masks.pkl",
    }
    save_flame_model(paths["model"], {k: model[k] for k in keys}, legacy=True)
    save_landmark_embedding(paths["landmarks"], model["lmk_face_idx"], model["lmk_b_coords"])
    save_region_masks(paths["masks"], model["masks"])
    return paths
