"""Casting the skin grid onto the head: eyelids pulled open, lip relief, neck rows.

The palpebral fissures are pulled open in ray space into almond openings whose lid edges
wrap the eyeball spheres (or, for a blink, the upper lids close onto the lower lid edges);
the vermilion is pushed out along the surface normal; the neck rows hang from the last head
row of their column. Metres, the head frame of :mod:`.constants`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .constants import (
    EYE_CENTER,
    EYE_RADIUS,
    LID_MARGIN,
    MOUTH_CORNER_AZIMUTH,
    MOUTH_ELEVATION,
    NECK_AXIS_Z,
    NECK_BOTTOM_Y,
    RAY_ORIGIN,
)
from .grid import SkinGrid
from .layout import ray_dirs, vermilion
from .sdf import cast_rays, sdf_normals

_EYE_OPEN_UP = 0.0056  # upper lid edge above the fissure line at its highest (metres)
_EYE_OPEN_LO = 0.0040


def _lid_profiles(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Opening of the upper and lower lid along the fissure (inner -> outer canthus), 0..1."""
    s = np.linspace(0.0, 1.0, n)
    up = np.sin(np.pi * s**0.85) ** 0.65
    lo = np.sin(np.pi * s**1.2) ** 0.75
    return up, lo


def _eye_distance() -> float:
    """Distance (metres) from the ray origin to the front of the left eyeball."""
    return float(np.linalg.norm(EYE_CENTER + [0.0, 0.0, EYE_RADIUS] - RAY_ORIGIN))


def open_eyes(skin: SkinGrid, theta: np.ndarray, blink: bool = False) -> np.ndarray:
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


def lip_relief(skin: SkinGrid, theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Outward offset (metres) of the vermilion of both lips, zero on the slit's corners and
    equal on both copies of the slit."""
    deg = np.deg2rad
    dt = theta - MOUTH_ELEVATION
    q = np.clip(1.0 - (phi / (MOUTH_CORNER_AZIMUTH * 1.04)) ** 2, 0.0, 1.0)
    h_up, h_lo = vermilion(phi)
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


def place_head(
    skin: SkinGrid,
    idx: np.ndarray,
    theta: np.ndarray,
    phi: np.ndarray,
    sdf: Callable[[np.ndarray], np.ndarray],
    relief: np.ndarray,
    eye_center: np.ndarray = EYE_CENTER,
) -> np.ndarray:
    """Positions (len(idx), 3) of head-ray vertices ``idx``: cast, offset by the lip relief
    along the surface normal, lid edges rolled in onto the eyeballs."""
    dirs = ray_dirs(theta[idx], phi[idx])
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


def cast_skin(
    skin: SkinGrid,
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
    pos[head] = place_head(skin, head, theta, phi, sdf, relief)
    # neck rows hang from the last head row of their column
    R_h = skin.n_head_rows
    C = skin.grid.shape[1]
    last_y = pos[skin.grid[R_h - 1], 1]
    neck = skin.grid[R_h:].ravel()
    col = np.tile(np.arange(C), skin.grid.shape[0] - R_h)
    y = last_y[col] + (NECK_BOTTOM_Y - last_y[col]) * theta[neck]
    o = np.stack([np.zeros_like(y), y, np.full_like(y, NECK_AXIS_Z)], axis=1)
    d = ray_dirs(np.zeros_like(y), phi[neck])
    t = cast_rays(o, d, sdf, 0.02, 0.12)
    pos[neck] = o + t[:, None] * d
    pos[skin.cap] = [0.0, NECK_BOTTOM_Y, NECK_AXIS_Z]
    return pos
