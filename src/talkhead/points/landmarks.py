"""2D landmarks lifted to 3D with each view's depth, and fused robustly across views."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DepthError
from ..geometry.cameras import Camera, unproject
from .backproject import depth_mask

if TYPE_CHECKING:
    pass


def lift_landmarks(
    landmarks2d: np.ndarray,
    depth: np.ndarray,
    cameras: Sequence[Camera],
    min_conf: float = 0.5,
    search_radius_px: int = 2,
    min_depth: float = 0.0,
    max_depth: float = 1.4,
    max_depth_jump: float = 0.03,
) -> tuple[np.ndarray, np.ndarray]:
    """Lift 2D landmarks of every view to 3D with that view's depth.

    The depth at a landmark (x, y) is interpolated bilinearly (in inverse depth, exact on
    planes) when its 4 neighbouring pixels all have valid depth within ``max_depth_jump`` of
    each other; otherwise it is the depth of the nearest valid pixel within
    ``search_radius_px`` (Chebyshev window; near a silhouette this is off by up to one pixel's
    depth gradient, which the cross-view fusion absorbs). The landmark's own (x, y) is then
    unprojected with that depth.

    Args:
        landmarks2d: (C, L, 3) x, y (pixels, centres at integers), confidence.
        depth: (C, H, W) z-depth, 0 = invalid.
        cameras: the C cameras (same order).
        min_conf: landmarks below this confidence are invalid.
        search_radius_px: half-size of the nearest-valid-depth window.
        min_depth, max_depth: valid depth range.
        max_depth_jump: metres; larger differences among the 4 neighbours mean an edge.

    Returns:
        points (C, L, 3) float64 world (0 where invalid) and valid (C, L) bool.
    """
    lm = np.asarray(landmarks2d, dtype=np.float64)
    depth = np.asarray(depth, dtype=np.float64)
    if lm.ndim != 3 or lm.shape[-1] != 3:
        raise DepthError(f"landmarks must be (C, L, 3), got shape {lm.shape}")
    if depth.ndim != 3 or depth.shape[0] != lm.shape[0] or len(cameras) != lm.shape[0]:
        raise DepthError(
            f"landmarks {lm.shape}, depth {depth.shape} and {len(cameras)} cameras do not match"
        )
    C, L, _ = lm.shape
    _, H, W = depth.shape
    x, y, conf = lm[..., 0], lm[..., 1], lm[..., 2]
    finite = np.isfinite(x) & np.isfinite(y) & np.isfinite(conf)
    x = np.where(finite, x, -1e6)
    y = np.where(finite, y, -1e6)
    dvalid = depth_mask(depth, min_depth, max_depth)
    ci = np.broadcast_to(np.arange(C)[:, None], (C, L))

    # bilinear over the 4 neighbours
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    inb = (x0 >= 0) & (x0 + 1 < W) & (y0 >= 0) & (y0 + 1 < H)
    xc0, yc0 = np.clip(x0, 0, W - 2), np.clip(y0, 0, H - 2)
    taps = [(yc0, xc0), (yc0, xc0 + 1), (yc0 + 1, xc0), (yc0 + 1, xc0 + 1)]
    dv = np.stack([depth[ci, a, b] for a, b in taps])  # (4, C, L)
    vv = np.stack([dvalid[ci, a, b] for a, b in taps])
    fx, fy = x - xc0, y - yc0
    w = np.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy])
    all4 = inb & vv.all(axis=0)
    with np.errstate(invalid="ignore"):
        all4 &= (
            np.where(vv, dv, 0).max(axis=0) - np.where(vv, dv, np.inf).min(axis=0) <= max_depth_jump
        )
    # bilinear in inverse depth: exact on planes (depth itself is not linear in pixels)
    z_bil = 1.0 / np.maximum(
        (w * np.where(vv, 1.0 / np.where(vv, dv, 1.0), 0.0)).sum(axis=0), 1e-12
    )

    # nearest valid pixel in a window
    r = int(search_radius_px)
    off = np.arange(-r, r + 1)
    oy, ox = np.meshgrid(off, off, indexing="ij")
    oy, ox = oy.reshape(-1), ox.reshape(-1)
    cx = np.rint(x).astype(np.int64)[..., None] + ox  # (C, L, K)
    cy = np.rint(y).astype(np.int64)[..., None] + oy
    inw = (cx >= 0) & (cx < W) & (cy >= 0) & (cy < H)
    cxc, cyc = np.clip(cx, 0, W - 1), np.clip(cy, 0, H - 1)
    ok = inw & dvalid[ci[..., None], cyc, cxc]
    d2 = np.where(ok, (cx - x[..., None]) ** 2 + (cy - y[..., None]) ** 2, np.inf)
    k = np.argmin(d2, axis=-1)
    found = np.isfinite(np.take_along_axis(d2, k[..., None], axis=-1)[..., 0])
    z_near = depth[
        ci,
        np.take_along_axis(cyc, k[..., None], -1)[..., 0],
        np.take_along_axis(cxc, k[..., None], -1)[..., 0],
    ]

    z = np.where(all4, z_bil, z_near)
    valid = finite & (conf >= min_conf) & (all4 | found)
    out = np.zeros((C, L, 3))
    for i, cam in enumerate(cameras):
        sel = valid[i]
        if sel.any():
            uv = np.stack([x[i, sel], y[i, sel]], axis=-1)
            out[i, sel] = unproject(uv, z[i, sel], cam.K, cam.world_2_cam)
    return out, valid


def fuse_landmarks(
    lifted: np.ndarray,
    valid: np.ndarray,
    max_dev: float = 0.005,
    min_views: int = 2,
    max_iter: int = 10,
    return_inliers: bool = False,
):
    """Fuse per-view 3D landmarks robustly.

    Per landmark: the coordinate-wise median of the valid views (or, when it has more
    support, the valid view with the most other views within ``max_dev``); views farther than
    ``max_dev`` from it are dropped; the median of the remaining views replaces it and every
    valid view is tested again, until the inlier set is stable (at most ``max_iter`` times).
    The result is the mean of the inliers; it is valid when at least ``min_views`` views agree.

    Args:
        lifted: (C, L, 3) world points; valid: (C, L) bool.
        max_dev: metres.
        min_views: inliers needed for a valid landmark.
        return_inliers: also return the (C, L) inlier mask.

    Returns:
        points (L, 3) float64 (0 where invalid), valid (L,) bool[, inliers (C, L) bool].
    """
    P = np.asarray(lifted, dtype=np.float64)
    v = np.asarray(valid, dtype=bool)
    if P.ndim != 3 or P.shape[-1] != 3 or v.shape != P.shape[:2]:
        raise DepthError(f"lifted landmarks {P.shape} and valid {v.shape} do not match")
    v = v & np.isfinite(P).all(axis=-1)
    P = np.where(v[..., None], P, 0.0)  # invalid views may hold NaN

    def median_of(sel: np.ndarray) -> np.ndarray:
        X = np.where(sel[..., None], P, np.nan)
        out = np.zeros(P.shape[1:])
        has = sel.any(axis=0)
        if has.any():
            out[has] = np.nanmedian(X[:, has], axis=0)
        return out

    # start from the median, or from the view with the most support when that has more
    # (with few views, e.g. 2 good + 2 bad ones, the median can sit between the clusters)
    center = median_of(v)
    dist_c = np.linalg.norm(P - center, axis=-1)  # (C, L)
    support_c = (v & (dist_c <= max_dev)).sum(axis=0)
    pair = np.linalg.norm(P[:, None] - P[None], axis=-1)  # (C, C, L)
    close = v[:, None] & v[None] & (pair <= max_dev)
    support_v = np.where(v, close.sum(axis=1), -1)  # (C, L) views near view c
    spread_v = np.where(close, pair, 0.0).sum(axis=1)
    best = np.lexsort((spread_v, -support_v), axis=0)[0]  # most support, then tightest
    L = P.shape[1]
    best_support = support_v[best, np.arange(L)]
    use_view = best_support > support_c
    center = np.where(use_view[:, None], P[best, np.arange(L)], center)
    inl = v & (np.linalg.norm(P - center, axis=-1) <= max_dev)
    for _ in range(max_iter):
        has = inl.any(axis=0)
        center = np.where(has[:, None], median_of(inl), center)
        new = v & (np.linalg.norm(P - center, axis=-1) <= max_dev)
        if np.array_equal(new, inl):
            break
        inl = new
    cnt = inl.sum(axis=0)
    mean = (P * inl[..., None]).sum(axis=0) / np.maximum(cnt, 1)[:, None]
    ok = cnt >= max(int(min_views), 1)
    pts = np.where(ok[:, None], mean, 0.0)
    if return_inliers:
        return pts, ok, inl & ok[None]
    return pts, ok
