"""The skin grid: topology and ray parameters of the skin, before casting.

The skin is one structured grid: rows of head rays leave :data:`~.constants.RAY_ORIGIN` at
fixed elevations, rows of neck rays leave the neck axis horizontally. Rows are graded
(denser at the eyes, the brows and the mouth) and bent so that the vermilion borders and the
eyebrows' edges run along rows. Three grid rows are cut into slits: the mouth (an upper and
a lower lip edge that touch at rest) and the two palpebral fissures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .constants import MOUTH_CORNER_AZIMUTH, MOUTH_ELEVATION, RAY_ORIGIN
from .falloff import smoothstep
from .layout import brow_arch, brow_half_width, eye_angles, ray_dirs, vermilion
from .sdf import cast_rays

_BROW_ROW = np.deg2rad(12.0)  # elevation of the brow band's middle row above the fissure
_LIP_ROWS = (5, 6)  # grid rows spanning the upper and the lower vermilion


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


@dataclass
class SkinGrid:
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
    back = smoothstep(deg(70.0), deg(150.0), np.abs(phi))
    side = smoothstep(deg(25.0), deg(95.0), np.abs(phi))
    split_f, last_f = deg(-46.0), deg(-77.0)
    split = split_f + deg(21.0) * back
    last = last_f + deg(16.0) * side + deg(14.0) * back
    t = theta_front
    upper = deg(90.0) + (t - deg(90.0)) * (deg(90.0) - split) / (deg(90.0) - split_f)
    lower = split + (t - split_f) * (last - split) / (last_f - split_f)
    return np.where(t >= split_f, upper, lower)


def _align_rows(th: np.ndarray, cols: np.ndarray, r_m: int, r_b: int) -> None:
    """Bend grid rows (in place; th is (R, C)) so that the vermilion borders and the
    eyebrows' edges run along rows: region outlines follow the grid, not staircases."""
    deg = np.deg2rad
    pmc = MOUTH_CORNER_AZIMUTH
    h_up, h_lo = vermilion(cols)
    blend = smoothstep(1.15 * pmc, 2.3 * pmc, np.abs(cols))
    for k, h, sgn in ((_LIP_ROWS[0], h_up, -1), (_LIP_ROWS[1], h_lo, 1)):
        height = np.maximum(h, deg(0.35) * k)
        for j in range(1, k + 2):  # the vermilion's rows, and one just beyond its border
            r = r_m + sgn * j
            off = height * j / k if j <= k else height + deg(0.8)
            th[r] = (1.0 - blend) * (th[r_m] - sgn * off) + blend * th[r]
    arch, half = brow_arch(cols), brow_half_width(cols)
    w = smoothstep(deg(3.0), deg(10.0), np.abs(cols)) * (
        1.0 - smoothstep(deg(53.0), deg(62.0), np.abs(cols))
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


def build_grid(detail: float) -> SkinGrid:
    """The skin grid at density ``detail`` (1.0: about 6k vertices): graded rows and columns,
    the mouth and eye slits cut, the pole and the neck cap closing it."""
    theta_e, phi_in, phi_out = eye_angles()
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
    return SkinGrid(
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


def straighten_mouth(skin: SkinGrid, sdf: Callable[[np.ndarray], np.ndarray]) -> None:
    """Bend the rows around the mouth (in place) so that the slit runs level across the
    face, its corners 1.5 mm lower than its middle, instead of following the elevation."""
    head = ~skin.is_neck
    C = skin.grid.shape[1]
    cols_phi = skin.phi[skin.grid[skin.row_mouth]]
    dirs = ray_dirs(skin.theta[skin.grid[skin.row_mouth]], cols_phi)
    t = cast_rays(np.broadcast_to(RAY_ORIGIN, dirs.shape), dirs, sdf, 0.0, 0.2)
    hit = RAY_ORIGIN + t[:, None] * dirs
    y0 = hit[np.argmin(np.abs(cols_phi)), 1]
    target = y0 - 0.0015 * np.minimum((cols_phi / MOUTH_CORNER_AZIMUTH) ** 2, 2.0)
    horiz = np.hypot(hit[:, 0] - RAY_ORIGIN[0], hit[:, 2] - RAY_ORIGIN[2])
    delta = np.arctan2(target - RAY_ORIGIN[1], horiz) - MOUTH_ELEVATION
    delta *= 1.0 - smoothstep(np.deg2rad(40.0), np.deg2rad(80.0), np.abs(cols_phi))
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
