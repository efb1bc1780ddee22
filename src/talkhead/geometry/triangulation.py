"""Triangulation of 2D observations seen by several calibrated cameras (numpy, float64).

:func:`triangulate_points` lifts N points observed in C views (e.g. 2D landmarks) to world
points, robust to outlier views: every pair of views proposes a point (linear DLT), the
proposal that most views agree with wins, and the point is re-estimated from its inlier views
(confidence-weighted DLT, then Gauss-Newton on the reprojection error). Used for the depth
range of the stereo backends (:mod:`talkhead.depth.range`), and wherever sparse 3D points are
needed from 2D detections.

Conventions: metres, OpenCV cameras (``world_2_cam`` extrinsics, 3x3 intrinsics), pixel
centres at integer coordinates.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from ..errors import DepthError
from .cameras import Camera

__all__ = ["camera_matrices", "triangulate_points"]


def camera_matrices(cameras: Sequence[Camera]) -> tuple[np.ndarray, np.ndarray]:
    """Intrinsics and extrinsics of ``cameras``, stacked and checked.

    Args:
        cameras: C cameras.

    Returns:
        K: (C, 3, 3) float64 intrinsics; world_2_cam: (C, 4, 4) float64.

    Raises:
        DepthError: no camera, matrices of the wrong shape, or NaN / infinite values.
    """
    if len(cameras) == 0:
        raise DepthError("no cameras given")
    K = np.stack([np.asarray(c.K, dtype=np.float64) for c in cameras])
    T = np.stack([np.asarray(c.world_2_cam, dtype=np.float64) for c in cameras])
    if K.shape[1:] != (3, 3) or T.shape[1:] != (4, 4):
        raise DepthError("cameras must hold 3x3 intrinsics and 4x4 world_2_cam matrices")
    if not (np.all(np.isfinite(K)) and np.all(np.isfinite(T))):
        raise DepthError("camera matrices contain NaN or infinite values")
    return K, T


def _dlt(xn: np.ndarray, P: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted linear triangulation.

    Args:
        xn: (..., V, 2) normalised image coordinates; P: (..., V, 3, 4) [R|t];
        w: (..., V) weights (0 drops a view).

    Returns:
        (..., 3) points.
    """
    rows = np.concatenate(
        [
            xn[..., 0:1, None] * P[..., 2:3, :] - P[..., 0:1, :],
            xn[..., 1:2, None] * P[..., 2:3, :] - P[..., 1:2, :],
        ],
        axis=-2,
    )  # (..., V, 2, 4)
    rows = rows * w[..., None, None]
    A = rows.reshape(*rows.shape[:-3], -1, 4)
    _, _, vt = np.linalg.svd(A)
    X = vt[..., -1, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        return X[..., :3] / X[..., 3:4]


def _reproj_err(X: np.ndarray, uv: np.ndarray, K: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Pixel errors (C, N) of points X (..., N, 3) against uv (C, N, 2); inf behind cameras."""
    pc = np.einsum("cij,...nj->...cni", T[:, :3, :3], X) + T[:, None, :3, 3]
    z = pc[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = pc[..., :2] / z[..., None]
    proj = np.einsum("cij,...cnj->...cni", K[:, :2, :2], xy) + K[:, None, :2, 2]
    err = np.linalg.norm(proj - uv, axis=-1)
    return np.where(z > 1e-6, err, np.inf)


def triangulate_points(
    uv: np.ndarray,
    conf: np.ndarray,
    cameras: Sequence[Camera],
    min_conf: float = 0.1,
    max_reproj_px: float = 4.0,
    gauss_newton_steps: int = 5,
) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate 2D observations of N points in C views, robust to outlier views.

    Every pair of views proposes a point (linear DLT); the proposal with most views within
    ``max_reproj_px`` wins (ties: smallest summed error); the point is then re-estimated from
    all its inlier views (confidence-weighted DLT, then Gauss-Newton on the reprojection
    error).

    Args:
        uv: (C, N, 2) pixel coordinates.
        conf: (C, N) confidences in [0, 1]; observations below ``min_conf`` are ignored.
        cameras: C cameras.
        min_conf: observations with a lower confidence (or non-finite ``uv``) are ignored.
        max_reproj_px: reprojection error (pixels) of an inlier view.
        gauss_newton_steps: refinement steps on the reprojection error.

    Returns:
        points: (N, 3) float64 world points (NaN where invalid).
        valid: (N,) bool, True where >= 2 views agree within ``max_reproj_px`` (a point seen
            by fewer than two usable views, or with no two agreeing views, is invalid).

    Raises:
        DepthError: ``uv`` / ``conf`` shapes that do not match the C cameras, or malformed
            camera matrices (:func:`camera_matrices`).
    """
    K, T = camera_matrices(cameras)
    uv = np.asarray(uv, dtype=np.float64)
    conf = np.asarray(conf, dtype=np.float64)
    C = len(cameras)
    if uv.ndim != 3 or uv.shape[0] != C or uv.shape[2] != 2 or conf.shape != uv.shape[:2]:
        raise DepthError(
            f"triangulate_points: expected uv (C={C}, N, 2) and conf (C, N), "
            f"got {uv.shape} and {conf.shape}"
        )
    N = uv.shape[1]
    usable = (conf >= min_conf) & np.all(np.isfinite(uv), axis=-1)
    uvs = np.where(usable[..., None], uv, 0.0)
    hom = np.concatenate([uvs, np.ones_like(uvs[..., :1])], axis=-1)
    xn = np.einsum("cij,cnj->cni", np.linalg.inv(K), hom)[..., :2]  # (C, N, 2)
    P = T[:, :3, :]  # (C, 3, 4)
    points = np.full((N, 3), np.nan)
    valid = np.zeros(N, dtype=bool)
    if C < 2 or N == 0:
        return points, valid

    # 1. hypotheses from every pair of views
    pairs = np.array(list(itertools.combinations(range(C), 2)))  # (Q, 2)
    xp = np.moveaxis(xn[pairs], 2, 1)  # (Q, N, 2, 2)
    Pp = np.broadcast_to(P[pairs][:, None], (len(pairs), N, 2, 3, 4))
    with np.errstate(invalid="ignore"):
        Xq = _dlt(xp, Pp, np.ones(xp.shape[:-1]))  # (Q, N, 3)
    err = _reproj_err(np.nan_to_num(Xq, nan=0.0), uv, K, T)  # (Q, C, N)
    err = np.where(usable[None] & np.all(np.isfinite(Xq), -1)[:, None], err, np.inf)
    pair_ok = usable[pairs[:, 0]] & usable[pairs[:, 1]]  # (Q, N)
    inl = err < max_reproj_px
    score = np.where(pair_ok, inl.sum(1) - 1e-3 * np.where(inl, err, 0).sum(1) / max_reproj_px, -1)
    best = np.argmax(score, axis=0)  # (N,)
    inliers = inl[best, :, np.arange(N)].T  # (C, N)
    good = pair_ok[best, np.arange(N)] & (inliers.sum(0) >= 2)

    # 2. re-estimate from all inliers
    w = (inliers * conf).T  # (N, C)
    X = _dlt(np.moveaxis(xn, 1, 0), np.broadcast_to(P, (N, C, 3, 4)), w)  # (N, 3)
    X = np.where(np.isfinite(X), X, Xq[best, np.arange(N)])
    X = np.nan_to_num(X)
    for _ in range(gauss_newton_steps):
        pc = np.einsum("cij,nj->cni", T[:, :3, :3], X) + T[:, None, :3, 3]  # (C, N, 3)
        z = np.where(np.abs(pc[..., 2]) > 1e-9, pc[..., 2], 1e-9)
        fx, fy = K[:, 0, 0, None], K[:, 1, 1, None]
        proj = np.stack(
            [fx * pc[..., 0] / z + K[:, 0, 2, None], fy * pc[..., 1] / z + K[:, 1, 2, None]], -1
        )
        r = (proj - uv) * w.T[..., None]  # (C, N, 2)
        # d proj / d pc, then chain with R
        J = np.zeros((C, N, 2, 3))
        J[..., 0, 0] = fx / z
        J[..., 0, 2] = -fx * pc[..., 0] / z**2
        J[..., 1, 1] = fy / z
        J[..., 1, 2] = -fy * pc[..., 1] / z**2
        J = np.einsum("cnij,cjk->cnik", J, T[:, :3, :3]) * w.T[..., None, None]
        H = np.einsum("cnji,cnjk->nik", J, J) + 1e-9 * np.eye(3)
        g = np.einsum("cnji,cnj->ni", J, np.nan_to_num(r))
        X = X - np.linalg.solve(H, g[..., None])[..., 0]
    final_err = _reproj_err(X, uv, K, T)  # (C, N)
    ok = good & np.all(np.where(inliers, final_err < max_reproj_px, True), axis=0)
    points[ok] = X[ok]
    valid[ok] = True
    return points, valid
