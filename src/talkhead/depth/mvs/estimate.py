"""Portable multi-view stereo in torch (the ``torch`` depth backend).

Per frame and per reference camera:

1. **Neighbours** — the ``n_neighbours`` cameras with the smallest angle between viewing
   directions, excluding nearly identical views and very wide baselines
   (:func:`select_neighbours`).
2. **Coarse plane sweep** — fronto-parallel planes sampled uniformly in inverse depth over
   the view's depth range (from triangulated landmarks, :func:`depth_range_from_points`, or
   from the rig geometry, :func:`depth_range_from_rig`), at ``coarse_scale`` of the image
   size. Each neighbour is warped onto the reference pixels with ``grid_sample``
   (back-project at the plane depth, project into the neighbour); the photometric cost is
   ``1 - ZNCC`` over a square window on grayscale, computed with box filters (weighted by
   the reference mask when there is one, so that windows on the silhouette compare head
   pixels only), and aggregated over the neighbours as the mean of the best ``n_best``
   (robust to occlusion).
   Winner-take-all, then a parabola fit around the minimum gives sub-plane precision.
3. **Narrow-band refinement** — ``refine_steps`` sweeps at full resolution over
   ``refine_hypotheses`` inverse-depth offsets of the (median then mean filtered) previous
   estimate, each band narrower than the last. Because every pixel of a matching window is
   offset from *its own* previous depth, the windows follow the surface (slanted, curved)
   instead of a fronto-parallel plane: this is what brings the error below a millimetre.
4. **Filtering** — photometric (cost, texture, band edge), multi-view geometric consistency
   (:func:`consistency_count`: reproject into the other views, compare with their depth,
   reproject back), and a valid-aware median filter.
5. **Normals** from a plane fit over a window of back-projected pixels
   (:func:`normals_from_depth`), and a **confidence** in [0, 1] from the ZNCC score and the
   fraction of consistent views.

Every step is batched over frames x views and runs on any torch device. Conventions:
metres, OpenCV cameras, ``world_2_cam`` extrinsics, pixel centres at integer coordinates.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ...config import check
from ...errors import DepthError
from ...geometry.cameras import Camera
from .config import MVSConfig

__all__ = [
    "DepthResult",
    "box_filter",
    "consistency_count",
    "depth_range_from_points",
    "depth_range_from_rig",
    "estimate_depth",
    "estimate_depth_batch",
    "estimate_depth_sequence",
    "normals_from_depth",
    "select_neighbours",
    "triangulate_points",
]


# --------------------------------------------------------------------------------------------
# configuration and result
# --------------------------------------------------------------------------------------------


@dataclass
class DepthResult:
    """Depth of one frame.

    Attributes:
        depth: (C, H, W) float32 z-depth in metres, 0 = invalid.
        normal: (C, H, W, 3) float32 unit normals in the camera frame facing the camera,
            0 where the depth is invalid.
        confidence: (C, H, W) float32 in [0, 1], 0 where the depth is invalid.
    """

    depth: np.ndarray
    normal: np.ndarray
    confidence: np.ndarray


# --------------------------------------------------------------------------------------------
# geometry helpers (numpy, float64)
# --------------------------------------------------------------------------------------------


def _stack_cameras(cameras: Sequence[Camera]) -> tuple[np.ndarray, np.ndarray]:
    """(C, 3, 3) intrinsics and (C, 4, 4) world_2_cam of ``cameras``."""
    if len(cameras) == 0:
        raise DepthError("no cameras given")
    K = np.stack([np.asarray(c.K, dtype=np.float64) for c in cameras])
    T = np.stack([np.asarray(c.world_2_cam, dtype=np.float64) for c in cameras])
    if K.shape[1:] != (3, 3) or T.shape[1:] != (4, 4):
        raise DepthError("cameras must hold 3x3 intrinsics and 4x4 world_2_cam matrices")
    if not (np.all(np.isfinite(K)) and np.all(np.isfinite(T))):
        raise DepthError("camera matrices contain NaN or infinite values")
    return K, T


def select_neighbours(
    cameras: Sequence[Camera],
    n_neighbours: int,
    min_angle_deg: float = 2.0,
    max_angle_deg: float = 60.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Source views of every reference view, nearest viewing direction first.

    Args:
        cameras: C cameras.
        n_neighbours: neighbours per view.
        min_angle_deg, max_angle_deg: admissible angle between optical axes.

    Returns:
        index: (C, n_neighbours) int64 camera indices (a view's own index where it has fewer
            admissible neighbours).
        valid: (C, n_neighbours) bool.
    """
    _, T = _stack_cameras(cameras)
    axes = T[:, 2, :3]  # optical axis (camera z) in world coordinates
    angle = np.degrees(np.arccos(np.clip(axes @ axes.T, -1.0, 1.0)))
    C = len(cameras)
    index = np.tile(np.arange(C)[:, None], (1, n_neighbours))
    valid = np.zeros((C, n_neighbours), dtype=bool)
    for i in range(C):
        ok = [
            j
            for j in np.argsort(angle[i], kind="stable")
            if j != i and min_angle_deg <= angle[i, j] <= max_angle_deg
        ]
        ok = ok[:n_neighbours]
        index[i, : len(ok)] = ok
        valid[i, : len(ok)] = True
    return index.astype(np.int64), valid


def depth_range_from_points(
    points_world: np.ndarray,
    cameras: Sequence[Camera],
    margin: float = 0.08,
    min_depth: float = 1e-3,
) -> np.ndarray:
    """Per-view depth range that brackets sparse 3D points (e.g. triangulated landmarks).

    Args:
        points_world: (N, 3) points; non-finite rows are ignored.
        cameras: C cameras.
        margin: metres added on both sides (landmarks cover the face only; the range must
            also hold the hair, ears and neck that a view sees, so "head-sized").

    Returns:
        (C, 2) float64 [near, far] z-depth in metres.

    Raises:
        DepthError: when no point lies in front of some camera.
    """
    pts = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    _, T = _stack_cameras(cameras)
    out = np.empty((len(cameras), 2))
    for i, cam in enumerate(cameras):
        z = pts @ T[i, 2, :3] + T[i, 2, 3]
        z = z[z > 0]
        if z.size == 0:
            raise DepthError(
                f"camera {cam.serial}: no point in front of it to bound the depth range"
            )
        out[i] = max(min_depth, z.min() - margin), z.max() + margin
    return out


def rig_convergence_point(cameras: Sequence[Camera]) -> np.ndarray:
    """(3,) world point closest (least squares) to all cameras' optical axes.

    Raises:
        DepthError: when the axes do not converge (fewer than two cameras, parallel axes).
    """
    _, T = _stack_cameras(cameras)
    A = np.zeros((3, 3))
    b = np.zeros(3)
    for Ti in T:
        d = Ti[2, :3]
        c = -Ti[:3, :3].T @ Ti[:3, 3]
        P = np.eye(3) - np.outer(d, d)
        A += P
        b += P @ c
    if len(cameras) < 2 or np.linalg.cond(A) > 1e6:
        raise DepthError(
            "cannot infer a depth range from the rig: the optical axes do not converge; "
            "pass depth_range (e.g. from triangulated landmarks)"
        )
    return np.linalg.solve(A, b)


def depth_range_from_rig(cameras: Sequence[Camera], radius: float = 0.15) -> np.ndarray:
    """Depth range from the rig alone: the axes' closest approach +- a head-sized ``radius``.

    Returns:
        (C, 2) float64 [near, far] z-depth in metres.
    """
    x = rig_convergence_point(cameras)
    _, T = _stack_cameras(cameras)
    z = T[:, 2, :3] @ x + T[:, 2, 3]
    if np.any(z <= 0):
        raise DepthError("the rig's convergence point lies behind a camera; pass depth_range")
    return np.stack([np.maximum(z - radius, 1e-3), z + radius], axis=1)


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

    Returns:
        points: (N, 3) float64 world points (NaN where invalid).
        valid: (N,) bool, True where >= 2 views agree within ``max_reproj_px``.
    """
    K, T = _stack_cameras(cameras)
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


# --------------------------------------------------------------------------------------------
# image helpers (torch)
# --------------------------------------------------------------------------------------------


def _inv_counts(n: int, r: int, device, dtype) -> torch.Tensor:
    """(n,) 1 / number of in-range taps of a window of radius r along an axis of length n."""
    i = torch.arange(n, device=device)
    return 1.0 / ((i + r).clamp(max=n - 1) - (i - r).clamp(min=0) + 1).to(dtype)


def box_filter(x: torch.Tensor, window: int) -> torch.Tensor:
    """Mean over a ``window`` x ``window`` square, borders averaged over the pixels inside
    the image (separable sums of shifted copies: exact, and several times faster on CPU than
    ``avg_pool2d``).

    Args:
        x: (..., H, W).

    Returns:
        (..., H, W).
    """
    H, W = x.shape[-2:]
    r = window // 2
    if r == 0:
        return x.clone()
    xp = F.pad(x, (r, r))
    s = xp[..., 0:W] + xp[..., 1 : W + 1]
    for i in range(2, window):
        s += xp[..., i : i + W]
    sp = F.pad(s, (0, 0, r, r))
    t = sp[..., 0:H, :] + sp[..., 1 : H + 1, :]
    for i in range(2, window):
        t += sp[..., i : i + H, :]
    ch = _inv_counts(H, r, x.device, x.dtype)
    cw = _inv_counts(W, r, x.device, x.dtype)
    return t * (ch[:, None] * cw[None, :])


def _to_gray(images: torch.Tensor) -> torch.Tensor:
    """(..., H, W, 3) uint8 or float in [0, 1] -> (..., H, W) float32."""
    x = images.float()
    if images.dtype == torch.uint8:
        x = x / 255.0
    if x.shape[-1] == 1:
        return x[..., 0]
    return x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114


def _masked_median(depth: torch.Tensor, k: int) -> torch.Tensor:
    """Median over the valid (> 0) pixels of a k x k window, at valid pixels only.

    Args:
        depth: (B, H, W), 0 = invalid.
    """
    B, H, W = depth.shape
    x = torch.where(depth > 0, depth, torch.full_like(depth, float("nan")))
    cols = F.unfold(x[:, None], k, padding=k // 2)  # (B, k*k, H*W)
    med = torch.nanmedian(cols, dim=1).values.reshape(B, H, W)
    return torch.where(depth > 0, med, torch.zeros_like(depth))


def _smooth_base(
    x: torch.Tensor, median: int, box: int, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Outlier-robust smoothing of an inverse-depth estimate before a narrower sweep starts
    from it: a (separable) median, then a box mean over the ``weight`` (mask) pixels only.

    Args:
        x: (B, h, w); weight: optional (B, h, w) in [0, 1].
    """
    y = _median_fill(x, median) if median > 1 else x
    if box > 1:
        w = torch.ones_like(y) if weight is None else weight
        r = box // 2

        def padded_box(t):
            t = F.pad(t[:, None], (r, r, r, r), mode="replicate")[:, 0]
            return box_filter(t, box)[:, r:-r, r:-r]

        num, den = padded_box(y * w), padded_box(w)
        y = torch.where(den > 1e-3, num / den.clamp_min(1e-3), y)
    return y


def _median_fill(x: torch.Tensor, k: int) -> torch.Tensor:
    """Separable k x k median of (B, H, W) (the median of the k column medians of each window:
    a close, much faster approximation of the 2D median; replicate borders)."""
    r = k // 2
    xp = F.pad(x[:, None], (r, r, r, r), mode="replicate")[:, 0]
    y = xp.unfold(1, k, 1).median(dim=-1).values  # (B, H, W + 2r): vertical medians
    return y.unfold(2, k, 1).median(dim=-1).values


def _pixel_rays(
    Kinv: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor, h: int, w: int
) -> torch.Tensor:
    """(B, h, w, 3) rays K^-1 [u, v, 1] of the pixels of crops starting at (x0, y0)."""
    dev, dt = Kinv.device, Kinv.dtype
    jj = torch.arange(w, device=dev, dtype=dt)
    ii = torch.arange(h, device=dev, dtype=dt)
    u = x0.to(dt)[:, None, None] + jj[None, None, :]
    v = y0.to(dt)[:, None, None] + ii[None, :, None]
    u, v = torch.broadcast_tensors(u, v)
    p = torch.stack([u, v, torch.ones_like(u)], dim=-1)
    return torch.einsum("bij,bhwj->bhwi", Kinv, p)


def _crop(x: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Crop (B, ..., H, W) to (B, ..., h, w) at per-item offsets."""
    return torch.stack(
        [
            x[b, ..., int(y0[b]) : int(y0[b]) + h, int(x0[b]) : int(x0[b]) + w]
            for b in range(x.shape[0])
        ]
    )


def _paste(
    dst: torch.Tensor, src: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor
) -> torch.Tensor:
    """Write (B, ..., h, w) crops into a copy of (B, ..., H, W) at per-item offsets."""
    out = dst.clone()
    h, w = src.shape[-2:]
    for b in range(dst.shape[0]):
        out[b, ..., int(y0[b]) : int(y0[b]) + h, int(x0[b]) : int(x0[b]) + w] = src[b]
    return out


def _rois(masks: torch.Tensor, pad: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """Common-size crops holding each mask's bounding box grown by ``pad``.

    Args:
        masks: (B, H, W) bool.

    Returns:
        x0, y0: (B,) int64 offsets; h, w: crop size (the largest box, clipped to the image).
    """
    B, H, W = masks.shape
    rows = masks.any(dim=2)
    cols = masks.any(dim=1)
    boxes = []
    for b in range(B):
        r = torch.nonzero(rows[b]).flatten()
        c = torch.nonzero(cols[b]).flatten()
        if r.numel() == 0:
            boxes.append((0, 0, 1, 1))
            continue
        ya, yb = max(int(r[0]) - pad, 0), min(int(r[-1]) + pad + 1, H)
        xa, xb = max(int(c[0]) - pad, 0), min(int(c[-1]) + pad + 1, W)
        boxes.append((xa, ya, xb, yb))
    w = max(xb - xa for xa, _, xb, _ in boxes)
    h = max(yb - ya for _, ya, _, yb in boxes)
    x0 = [min(xa, W - w) for xa, _, _, _ in boxes]
    y0 = [min(ya, H - h) for _, ya, _, _ in boxes]
    dev = masks.device
    return (torch.tensor(x0, device=dev), torch.tensor(y0, device=dev), h, w)


def _scale_intrinsics(K: torch.Tensor, sx: float, sy: float) -> torch.Tensor:
    """Intrinsics of an image resized by (sx, sy) (pixel centres at integers)."""
    S = torch.tensor(
        [[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]],
        dtype=K.dtype,
        device=K.device,
    )
    return S @ K


# --------------------------------------------------------------------------------------------
# plane sweep
# --------------------------------------------------------------------------------------------


def _sweep_cost(
    ref: torch.Tensor,
    srcs: torch.Tensor,
    rays: torch.Tensor,
    A: torch.Tensor,
    bvec: torch.Tensor,
    nb_valid: torch.Tensor,
    inv_hyp: torch.Tensor,
    window: int,
    n_best: int,
    max_elements: int,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Aggregated ``1 - ZNCC`` of every inverse-depth hypothesis.

    Args:
        ref: (B, h, w) reference crops (grey).
        srcs: (B, N, Hs, Ws) source images (grey, full frame at the sweep's scale).
        rays: (B, h, w, 3) reference rays K_ref^-1 [u, v, 1] of the crop pixels.
        A: (B, N, 3, 3) K_src R_rel; bvec: (B, N, 3) K_src t_rel (reference -> source).
        nb_valid: (B, N) bool, False for padding neighbours.
        inv_hyp: (B, D, h, w) or (B, D, 1, 1) inverse depths.
        window: ZNCC window side.
        n_best: neighbour costs averaged (smallest first): the best half of an item's valid
            neighbours (rounded up), at most ``n_best``.
        max_elements: warped samples held at once (items and hypotheses are chunked).
        weight: optional (B, h, w) window weights in [0, 1] (the reference mask: windows
            straddling the silhouette are compared on the head pixels only).

    Returns:
        (B, D, h, w) cost in [0, 2] (2 = no usable neighbour).
    """
    B, N, Hs, Ws = srcs.shape
    h, w = ref.shape[-2:]
    D = inv_hyp.shape[1]
    # pixel -> normalised grid coordinates + 1 (so that dividing by z gives grid + 1)
    S = torch.tensor([2.0 / (Ws - 1), 2.0 / (Hs - 1), 1.0], device=ref.device, dtype=ref.dtype)
    an = torch.einsum("bnij,bhwj->bnhwi", A * S[:, None], rays)  # (B, N, h, w, 3)
    bn = bvec * S
    # the best half of each item's available neighbours, at most n_best
    n_best_b = ((nb_valid.sum(dim=1) + 1) // 2).clamp(1, n_best)
    # a constant offset per crop keeps the moments well conditioned and the ZNCC exact
    refc = ref - ref.mean(dim=(1, 2), keepdim=True)
    # Weighted window moments, kept multiplied by w0 = box(weight) (the window's weight):
    # ZNCC = (box(w s r) - box(w s) m_r) / sqrt(v_r w0 (box(w s s) - box(w s)^2 / w0)).
    if weight is None:
        w0 = torch.ones_like(ref)
        w0inv = None
        mr = box_filter(refc, window)
        vr = box_filter(refc * refc, window) - mr * mr
    else:
        w0 = box_filter(weight, window)
        w0inv = torch.where(w0 > 1e-3, 1.0 / w0.clamp_min(1e-3), torch.zeros_like(w0))
        mr = box_filter(refc * weight, window) * w0inv
        vr = box_filter(refc * refc * weight, window) * w0inv - mr * mr
        w0inv = w0inv[:, None, None]
        weight = weight[:, None, None]
    vrw0 = (vr.clamp_min(0) * w0)[:, None, None]
    mr = mr[:, None, None]
    refc = refc[:, None, None]  # (B, 1, 1, h, w)
    ok_px = (w0 > 1e-3)[:, None, None] & nb_valid[:, :, None, None, None]  # (B, N, 1, h, w)
    # a channel of ones sampled with zero padding tells which samples fall inside the image
    srcs2 = torch.stack([srcs, torch.ones_like(srcs)], dim=2)  # (B, N, 2, Hs, Ws)
    out = torch.empty((B, D, h, w), device=ref.device, dtype=ref.dtype)
    per_plane = N * h * w
    b_chunk = max(1, min(B, max_elements // per_plane))
    for b0 in range(0, B, b_chunk):
        b1 = min(B, b0 + b_chunk)
        nb = b1 - b0
        d_chunk = max(1, max_elements // (nb * per_plane))
        src_b = srcs2[b0:b1].reshape(nb * N, 2, Hs, Ws)
        for d0 in range(0, D, d_chunk):
            d1 = min(D, d0 + d_chunk)
            nd = d1 - d0
            depth = (1.0 / inv_hyp[b0:b1, d0:d1]).expand(nb, nd, h, w)[:, None, ..., None]
            # homogeneous source pixels, scaled so that x/z and y/z are grid_sample coordinates
            p = torch.addcmul(bn[b0:b1, :, None, None, None], depth, an[b0:b1, :, None])
            z = p[..., 2:3]
            grid = p[..., :2] / z
            grid -= 1.0
            warped = F.grid_sample(
                src_b,
                grid.reshape(nb * N, nd * h, w, 2),
                mode="bilinear",
                padding_mode="zeros",
                align_corners=True,
            )
            warped = warped.reshape(nb, N, 2, nd, h, w)
            s = warped[:, :, 0]
            inside = (warped[:, :, 1] > 0.999) & (z[..., 0] > 0) & ok_px[b0:b1]
            if weight is None:
                sw = s
            else:
                sw = s * weight[b0:b1]
            a1 = box_filter(sw, window)
            a2 = box_filter(sw * s, window)
            cov = box_filter(sw * refc[b0:b1], window) - a1 * mr[b0:b1]
            a1 = a1 * a1
            if w0inv is not None:
                a1 *= w0inv[b0:b1]
            vs = (a2 - a1).clamp_min_(0)
            cost = 1.0 - cov * torch.rsqrt(vs * vrw0[b0:b1] + 1e-12)
            cost = torch.where(inside & (vs > 1e-8), cost.clamp_(0.0, 2.0), 2.0)
            out[b0:b1, d0:d1] = _mean_smallest(cost, n_best_b[b0:b1])
    return out


def _mean_smallest(cost: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Mean of the ``k[b]`` smallest values along dim 1 of item b.

    Partial bubble sort with elementwise min/max (for the few neighbours of a sweep this is
    several times faster than ``sort`` or ``topk``).

    Args:
        cost: (B, N, ...); k: (B,) int64 in [1, N].

    Returns:
        (B, ...).
    """
    N = cost.shape[1]
    k_max = int(k.max())
    if k_max >= N and bool((k == N).all()):
        return cost.mean(dim=1)
    c = list(cost.unbind(dim=1))
    for i in range(k_max):  # bring the i-th smallest to position i
        for j in range(N - 1, i, -1):
            lo = torch.minimum(c[j - 1], c[j])
            c[j] = torch.maximum(c[j - 1], c[j])
            c[j - 1] = lo
    total = c[0].clone()
    out = torch.empty_like(total)
    kb = k.view(-1, *([1] * (total.dim() - 1)))
    for kk in range(1, k_max + 1):
        if kk > 1:
            total += c[kk - 1]
        out = torch.where(kb == kk, total / kk, out)
    return out


def _winner(cost: torch.Tensor, inv_hyp: torch.Tensor, spacing: torch.Tensor):
    """Winner-take-all with a parabola fit around the minimum.

    Args:
        cost: (B, D, h, w); inv_hyp: (B, D, h, w) or (B, D, 1, 1), uniformly spaced by
            ``spacing`` (B,) along D.

    Returns:
        inv: (B, h, w) refined inverse depth; best: (B, h, w) cost at the minimum;
        edge: (B, h, w) bool, minimum on the first or last hypothesis.
    """
    B, D, h, w = cost.shape
    idx = cost.argmin(dim=1, keepdim=True)
    c0 = cost.gather(1, idx)
    cm = cost.gather(1, (idx - 1).clamp_min(0))
    cp = cost.gather(1, (idx + 1).clamp_max(D - 1))
    denom = cm - 2 * c0 + cp
    interior = (idx > 0) & (idx < D - 1)
    off = torch.where(
        interior & (denom > 1e-9), 0.5 * (cm - cp) / denom.clamp_min(1e-9), torch.zeros_like(c0)
    ).clamp(-0.5, 0.5)
    inv0 = inv_hyp.expand(B, D, h, w).gather(1, idx)
    inv = inv0 + off * spacing[:, None, None, None]
    return inv[:, 0], c0[:, 0], ~interior[:, 0]


# --------------------------------------------------------------------------------------------
# consistency, normals
# --------------------------------------------------------------------------------------------


def _apply(
    M: torch.Tensor,
    x: Sequence[torch.Tensor],
    t: torch.Tensor | None = None,
    transpose: bool = False,
) -> list[torch.Tensor]:
    """Per-view 3x3 matrices applied to channel-split maps: ``M x (+ t)``.

    Args:
        M: (C, 3, 3); x: three (F, C, h, w) maps; t: optional (C, 3); transpose: use M^T.

    Returns:
        three (F, C, h, w) maps (elementwise arithmetic: far faster than batched matmuls of
        tiny matrices on CPU).
    """
    c = M.transpose(1, 2) if transpose else M
    c = c[None, :, :, :, None, None]  # (1, C, 3, 3, 1, 1)
    out = []
    for i in range(3):
        y = c[:, :, i, 0] * x[0] + c[:, :, i, 1] * x[1] + c[:, :, i, 2] * x[2]
        if t is not None:
            y = y + t[None, :, i, None, None]
        out.append(y)
    return out


def consistency_count(
    depth: torch.Tensor,
    K: torch.Tensor,
    world_2_cam: torch.Tensor,
    others: torch.Tensor,
    others_valid: torch.Tensor,
    max_reproj_px: float = 1.0,
    max_rel_depth: float = 0.005,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Number of other views whose depth agrees with each pixel's depth.

    A pixel p of view r with depth d is lifted to 3D and projected into view s; the depth
    of s there (bilinear, all four taps valid) is lifted and projected back into r. View s
    *can check* p when the projection lands on valid depth and p is not behind the surface
    s sees there (occluded in s), and *agrees* when the round trip lands within
    ``max_reproj_px`` of p and its depth within ``max_rel_depth`` x d.

    Args:
        depth: (F, C, H, W) z-depth, 0 = invalid.
        K: (C, 3, 3); world_2_cam: (C, 4, 4).
        others: (C, M) int64 views to check; others_valid: (C, M) bool.

    Returns:
        agree, checked: (F, C, H, W) int64 counts (0 where the depth is invalid).
    """
    Fr, C, H, W = depth.shape
    dev, dt = depth.device, depth.dtype
    count = torch.zeros((Fr * C, H, W), dtype=torch.long, device=dev)
    checked = torch.zeros_like(count)
    valid_full = (depth > 0).reshape(Fr * C, H, W)
    if not bool(valid_full.any()):
        return count.reshape(Fr, C, H, W), checked.reshape(Fr, C, H, W)
    # work on the common-size crops that hold every view's valid pixels
    x0, y0, h, w = _rois(valid_full, 0)
    d = _crop(depth.reshape(Fr * C, H, W), x0, y0, h, w)
    valid = d > 0
    Kd, Td = K.double(), world_2_cam.double()
    Kinv = torch.linalg.inv(Kd).to(dt)
    Kf = Kd.to(dt)
    cam = torch.arange(C, device=dev).repeat(Fr)
    rays = _pixel_rays(Kinv[cam], x0, y0, h, w)  # (F*C, h, w, 3)
    X = [(d * rays[..., i]).reshape(Fr, C, h, w) for i in range(3)]
    d = d.reshape(Fr, C, h, w)
    valid = valid.reshape(Fr, C, h, w)
    u = (x0[:, None, None] + torch.arange(w, device=dev)[None, None, :]).to(dt)
    v = (y0[:, None, None] + torch.arange(h, device=dev)[None, :, None]).to(dt)
    u, v = u.reshape(Fr, C, 1, w), v.reshape(Fr, C, h, 1)
    maps = torch.stack([depth, (depth > 0).to(dt)], dim=2)  # (F, C, 2, H, W)
    n = torch.zeros((Fr, C, h, w), dtype=torch.long, device=dev)
    n_checked = torch.zeros_like(n)
    Trel_all = (Td[others] @ torch.linalg.inv(Td)[:, None]).to(dt)  # (C, M, 4, 4) ref -> other

    def kcoef(Km, i, j):
        return Km[None, :, i, j, None, None]

    for m in range(others.shape[1]):
        s = others[:, m]
        R, t = Trel_all[:, m, :3, :3], Trel_all[:, m, :3, 3]
        Xs = _apply(R, X, t)
        zs = Xs[2]
        zsi = 1.0 / torch.where(zs > 1e-6, zs, torch.ones_like(zs))
        Ks = Kf[s]
        us = (kcoef(Ks, 0, 0) * Xs[0] + kcoef(Ks, 0, 1) * Xs[1]) * zsi + kcoef(Ks, 0, 2)
        vs = kcoef(Ks, 1, 1) * Xs[1] * zsi + kcoef(Ks, 1, 2)
        grid = torch.stack([us * (2.0 / (W - 1)) - 1.0, vs * (2.0 / (H - 1)) - 1.0], dim=-1)
        samp = F.grid_sample(
            maps[:, s].reshape(Fr * C, 2, H, W),
            grid.reshape(Fr * C, h, w, 2),
            mode="bilinear",
            padding_mode="zeros",
            align_corners=True,
        )
        samp = samp.reshape(Fr, C, 2, h, w)
        d_s = samp[:, :, 0]
        # behind the surface that s sees there: occluded in s, which then cannot check it
        ok = (samp[:, :, 1] > 0.999) & (zs > 1e-6) & (zs <= d_s * (1 + max_rel_depth))
        ok &= valid & others_valid[None, :, m, None, None]
        # back: pixel (us, vs) of s at depth d_s -> reference camera -> reference pixel
        Kis = Kinv[s]
        Xb = [
            d_s * (kcoef(Kis, i, 0) * us + kcoef(Kis, i, 1) * vs + kcoef(Kis, i, 2))
            for i in range(3)
        ]
        Xr = _apply(R, [Xb[i] - t[None, :, i, None, None] for i in range(3)], transpose=True)
        zr = Xr[2]
        zri = 1.0 / torch.where(zr > 1e-6, zr, torch.ones_like(zr))
        ur = (kcoef(Kf, 0, 0) * Xr[0] + kcoef(Kf, 0, 1) * Xr[1]) * zri + kcoef(Kf, 0, 2)
        vr = kcoef(Kf, 1, 1) * Xr[1] * zri + kcoef(Kf, 1, 2)
        err2 = (ur - u) ** 2 + (vr - v) ** 2
        agree = ok & (zr > 1e-6) & (err2 < max_reproj_px**2) & ((zr - d).abs() < max_rel_depth * d)
        n += agree
        n_checked += ok
    count = _paste(count, n.reshape(Fr * C, h, w), x0, y0)
    checked = _paste(checked, n_checked.reshape(Fr * C, h, w), x0, y0)
    return count.reshape(Fr, C, H, W), checked.reshape(Fr, C, H, W)


def normals_from_depth(depth: torch.Tensor, K: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Unit normals in the camera frame from a plane fit over a window of valid pixels.

    Args:
        depth: (B, H, W) z-depth, 0 = invalid.
        K: (B, 3, 3) or (3, 3) intrinsics.
        window: side of the fitting window.

    Returns:
        (B, H, W, 3) normals facing the camera (n . X < 0), 0 where the depth is invalid or
        the window holds fewer than 6 valid pixels.
    """
    B, H, W = depth.shape
    dev = depth.device
    d = depth.double()
    Kd = K.double().expand(B, 3, 3) if K.dim() == 3 else K.double()[None].expand(B, 3, 3)
    zero = torch.zeros(B, dtype=torch.long, device=dev)
    X = d[..., None] * _pixel_rays(torch.linalg.inv(Kd), zero, zero, H, W)  # (B, H, W, 3)
    wgt = (d > 0).double()
    m0 = box_filter(wgt, window)
    ctr = X.sum(dim=(1, 2)) / wgt.sum(dim=(1, 2)).clamp_min(1)[:, None]  # per-map offset
    Xc = (X - ctr[:, None, None]) * wgt[..., None]
    m1 = box_filter(Xc.permute(0, 3, 1, 2), window)  # (B, 3, H, W)
    outer = (Xc[..., :, None] * Xc[..., None, :]).reshape(B, H, W, 9).permute(0, 3, 1, 2)
    m2 = box_filter(outer, window)
    ok = (wgt > 0) & (m0 * window * window >= 6 - 1e-6)
    n_out = torch.zeros((B, H, W, 3), dtype=depth.dtype, device=dev)
    if not bool(ok.any()):
        return n_out
    sel = ok.nonzero(as_tuple=True)
    mean = m1.permute(0, 2, 3, 1)[sel] / m0[sel][:, None]
    cov = m2.permute(0, 2, 3, 1)[sel].reshape(-1, 3, 3) / m0[sel][:, None, None]
    cov = cov - mean[:, :, None] * mean[:, None, :]
    _, vecs = torch.linalg.eigh(cov)
    n = vecs[:, :, 0]
    flip = (n * X[sel]).sum(-1) > 0
    n = torch.where(flip[:, None], -n, n)
    n_out[sel] = torch.nn.functional.normalize(n, dim=-1).to(depth.dtype)
    return n_out


# --------------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------------


def _as_tensor(x, device) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(device)
    return torch.from_numpy(np.ascontiguousarray(x)).to(device)


def _binary_mask(m: torch.Tensor) -> torch.Tensor:
    """bool masks as they are; uint8 alpha > 127; float alpha > 0.5."""
    if m.dtype == torch.bool:
        return m
    if m.is_floating_point():
        return m > 0.5
    return m > 127 if m.dtype == torch.uint8 else m > 0


def _check_inputs(images, cameras, masks, depth_range, cfg: MVSConfig):
    if images.dim() != 5 or images.shape[-1] not in (1, 3):
        raise DepthError(f"images must be (F, C, H, W, 3), got shape {tuple(images.shape)}")
    Fr, C, H, W, _ = images.shape
    if C != len(cameras):
        raise DepthError(f"images hold {C} views but {len(cameras)} cameras were given")
    if C < 2:
        raise DepthError("multi-view stereo needs at least two views")
    if H < 2 or W < 2:
        raise DepthError(f"images are too small ({H}x{W})")
    for cam in cameras:
        if cam.width and cam.height and (cam.width, cam.height) != (W, H):
            raise DepthError(
                f"camera {cam.serial}: calibrated for {cam.width}x{cam.height} but the "
                f"images are {W}x{H}"
            )
    if images.is_floating_point() and not bool(torch.isfinite(images).all()):
        raise DepthError("images contain NaN or infinite values")
    if masks is not None and tuple(masks.shape) != (Fr, C, H, W):
        raise DepthError(f"masks must be (F, C, H, W) = {(Fr, C, H, W)}, got {tuple(masks.shape)}")
    if depth_range is None:
        depth_range = depth_range_from_rig(cameras)
    rng = np.asarray(depth_range, dtype=np.float64)
    if rng.shape == (2,):
        rng = np.broadcast_to(rng, (C, 2))
    if rng.shape == (C, 2):
        rng = np.broadcast_to(rng, (Fr, C, 2))
    if rng.shape != (Fr, C, 2):
        raise DepthError(f"depth_range must be (2,), (C, 2) or (F, C, 2), got {rng.shape}")
    near, far = rng[..., 0], rng[..., 1]
    if not np.all(np.isfinite(rng)) or np.any(near <= 0) or np.any(far <= near):
        raise DepthError("depth_range must hold finite 0 < near < far values")
    return rng


def estimate_depth_batch(
    images,
    cameras: Sequence[Camera],
    masks=None,
    depth_range=None,
    config: MVSConfig | None = None,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Depth, normals and confidence of several frames at once.

    Args:
        images: (F, C, H, W, 3) uint8, or float in [0, 1] (numpy or torch).
        cameras: C cameras (OpenCV, ``world_2_cam`` + K) matching the views.
        masks: optional (F, C, H, W) bool, uint8 alpha (> 127 = head) or float alpha in
            [0, 1] (> 0.5 = head); depth is computed in the masks' bounding boxes (matching
            windows use head pixels only) and returned inside the masks only.
        depth_range: optional (2,), (C, 2) or (F, C, 2) [near, far] z-depth per view; default
            :func:`depth_range_from_rig`.
        config: :class:`MVSConfig`.
        device: torch device.

    Returns:
        depth (F, C, H, W) float32 (0 = invalid), normal (F, C, H, W, 3) float32,
        confidence (F, C, H, W) float32 — torch tensors on ``device``.
    """
    cfg = check(config or MVSConfig(), "depth.torch")
    dev = torch.device(device)
    images = _as_tensor(images, dev)
    if masks is not None:
        masks = _binary_mask(_as_tensor(masks, dev))
    rng = _check_inputs(images, cameras, masks, depth_range, cfg)
    Fr, C, H, W, _ = images.shape
    B = Fr * C
    dt = torch.float32

    gray = _to_gray(images).reshape(B, H, W)
    mask = (
        masks.reshape(B, H, W)
        if masks is not None
        else torch.ones((B, H, W), dtype=torch.bool, device=dev)
    )
    if cfg.mask_dilate > 0:
        k = 2 * cfg.mask_dilate + 1
        mask_d = F.max_pool2d(mask[:, None].to(dt), k, stride=1, padding=cfg.mask_dilate)[:, 0] > 0
    else:
        mask_d = mask

    Knp, Tnp = _stack_cameras(cameras)
    nb_np, nbv_np = select_neighbours(
        cameras, cfg.n_neighbours, cfg.min_neighbour_angle_deg, cfg.max_neighbour_angle_deg
    )
    if not nbv_np.any(axis=1).all():
        bad = [cameras[i].serial for i in np.flatnonzero(~nbv_np.any(axis=1))]
        raise DepthError(
            f"cameras {bad} have no neighbour view within {cfg.max_neighbour_angle_deg} degrees"
        )
    # relative transforms ref -> src, per camera and neighbour (float64, then float32)
    Trel = Tnp[nb_np] @ np.linalg.inv(Tnp)[:, None]  # (C, N, 4, 4)
    frame_of = torch.arange(Fr, device=dev).repeat_interleave(C)
    cam_of = torch.arange(C, device=dev).repeat(Fr)
    nb_idx = torch.from_numpy(nb_np).to(dev)
    src_index = frame_of[:, None] * C + nb_idx[cam_of]  # (B, N) into the B images
    nb_valid = torch.from_numpy(nbv_np).to(dev)[cam_of]
    rng_t = torch.from_numpy(np.array(rng.reshape(B, 2))).to(dev, dt)
    inv_near, inv_far = 1.0 / rng_t[:, 0], 1.0 / rng_t[:, 1]

    def stage_geometry(K_all: np.ndarray, x0, y0, h, w):
        Kt = torch.from_numpy(np.ascontiguousarray(K_all)).to(dev)
        R_rel = torch.from_numpy(np.ascontiguousarray(Trel[..., :3, :3])).to(dev)
        t_rel = torch.from_numpy(np.ascontiguousarray(Trel[..., :3, 3])).to(dev)
        A = (Kt[nb_idx] @ R_rel).to(dt)[cam_of]
        bv = torch.einsum("cnij,cnj->cni", Kt[nb_idx], t_rel)
        rays = _pixel_rays(torch.linalg.inv(Kt).to(dt)[cam_of], x0, y0, h, w)
        return rays, A, bv.to(dt)[cam_of]

    pad = cfg.window // 2 + 1
    # ---- coarse sweep -------------------------------------------------------------------
    scale = cfg.coarse_scale if cfg.refine_steps > 0 else 1.0
    if scale < 1.0:
        Hc, Wc = max(2, round(H * scale)), max(2, round(W * scale))
        gray_c = F.interpolate(
            gray[:, None], size=(Hc, Wc), mode="bilinear", antialias=True, align_corners=False
        )[:, 0]
        mask_c = F.interpolate(mask_d[:, None].to(dt), size=(Hc, Wc), mode="area")[:, 0] > 0
        weight_c = F.interpolate(mask[:, None].to(dt), size=(Hc, Wc), mode="area")[:, 0]
        sx, sy = Wc / W, Hc / H
        Kc = np.stack([_scale_intrinsics(torch.from_numpy(k), sx, sy).numpy() for k in Knp])
    else:
        Hc, Wc, gray_c, mask_c, Kc = H, W, gray, mask_d, Knp
        weight_c = mask.to(dt)
    x0, y0, h, w = _rois(mask_c, pad)
    rays, A, bv = stage_geometry(Kc, x0, y0, h, w)
    D = cfg.n_planes
    steps = torch.linspace(0, 1, D, device=dev, dtype=dt)
    inv_hyp = inv_near[:, None] + (inv_far - inv_near)[:, None] * steps[None]  # (B, D)
    spacing = (inv_far - inv_near) / (D - 1)
    cost = _sweep_cost(
        _crop(gray_c, x0, y0, h, w),
        gray_c[src_index],
        rays,
        A,
        bv,
        nb_valid,
        inv_hyp[..., None, None],
        cfg.coarse_window or cfg.window,
        cfg.best,
        cfg.max_chunk_elements,
        None if masks is None else _crop(weight_c, x0, y0, h, w),
    )
    inv, best, edge = _winner(cost, inv_hyp[..., None, None], spacing)
    del cost
    mid = (0.5 * (inv_near + inv_far))[:, None, None].expand(B, Hc, Wc)
    smooth = _smooth_base(
        inv,
        cfg.base_median,
        cfg.base_smooth,
        None if masks is None else _crop(weight_c, x0, y0, h, w),
    )
    inv_full = _paste(mid, smooth, x0, y0)
    if scale < 1.0:
        inv_full = F.interpolate(
            inv_full[:, None], size=(H, W), mode="bilinear", align_corners=False
        )[:, 0]
    spacing = spacing.abs()

    # ---- narrow-band refinement at full resolution --------------------------------------
    x0, y0, h, w = _rois(mask_d, pad)
    if cfg.refine_steps > 0:
        rays, A, bv = stage_geometry(Knp, x0, y0, h, w)
        ref = _crop(gray, x0, y0, h, w)
        srcs = gray[src_index]
        base = _crop(inv_full, x0, y0, h, w)
        weight = None if masks is None else _crop(mask.to(dt), x0, y0, h, w)
        n = cfg.refine_hypotheses
        unit = torch.linspace(-1, 1, n, device=dev, dtype=dt)
        for step in range(cfg.refine_steps):
            band = cfg.refine_band * spacing  # (B,)
            hyp = base[:, None] + unit[None, :, None, None] * band[:, None, None, None]
            hyp = hyp.clamp_min(1e-6)
            spacing = 2 * band / (n - 1)
            cost = _sweep_cost(
                ref,
                srcs,
                rays,
                A,
                bv,
                nb_valid,
                hyp,
                cfg.window,
                cfg.best,
                cfg.max_chunk_elements,
                weight,
            )
            inv, best, edge = _winner(cost, hyp, spacing)
            del cost
            if step + 1 < cfg.refine_steps:
                base = _smooth_base(inv, cfg.base_median, cfg.base_smooth, weight)

    ref = _crop(gray, x0, y0, h, w)
    mr = box_filter(ref, cfg.window)
    std = (box_filter(ref * ref, cfg.window) - mr * mr).clamp_min(0).sqrt()
    d_crop = 1.0 / inv.clamp_min(1e-6)
    rng_b = rng_t[:, :, None, None]
    ok = (~edge) & (best <= cfg.max_cost) & (std >= cfg.min_texture_std)
    ok &= (d_crop >= rng_b[:, 0]) & (d_crop <= rng_b[:, 1])
    depth = _paste(torch.zeros((B, H, W), device=dev, dtype=dt), torch.where(ok, d_crop, 0), x0, y0)
    score = _paste(torch.zeros((B, H, W), device=dev, dtype=dt), (1 - best).clamp(0, 1), x0, y0)
    depth = torch.where(mask, depth, torch.zeros_like(depth))

    # ---- geometric consistency ------------------------------------------------------------
    oth_np, othv_np = select_neighbours(
        cameras, C - 1, cfg.min_neighbour_angle_deg, cfg.max_neighbour_angle_deg
    )
    Kt32 = torch.from_numpy(Knp).to(dev)
    Tt = torch.from_numpy(Tnp).to(dev)
    depth = depth.reshape(Fr, C, H, W)
    count, checked = consistency_count(
        depth,
        Kt32,
        Tt,
        torch.from_numpy(oth_np).to(dev),
        torch.from_numpy(othv_np).to(dev),
        cfg.consistency_px,
        cfg.consistency_rel_depth,
    )
    # views that see no valid depth there (occluded, outside, or failed) cannot vote
    need = checked.clamp(min=1, max=max(1, cfg.min_consistent_views))
    depth = torch.where(count >= need, depth, torch.zeros_like(depth)).reshape(B, H, W)
    if cfg.median_filter > 1:
        depth = _masked_median(depth, cfg.median_filter)
    normal = normals_from_depth(depth, Kt32.to(dt)[cam_of], cfg.normal_window)
    depth = torch.where(normal.abs().sum(-1) > 0, depth, torch.zeros_like(depth))  # isolated
    frac = (count.to(dt) / checked.clamp_min(1).to(dt)).reshape(B, H, W).clamp(0, 1)
    conf = torch.where(depth > 0, score * frac, torch.zeros_like(depth))
    return (depth.reshape(Fr, C, H, W), normal.reshape(Fr, C, H, W, 3), conf.reshape(Fr, C, H, W))


def estimate_depth(
    images,
    cameras: Sequence[Camera],
    masks=None,
    depth_range=None,
    config: MVSConfig | None = None,
    device: str | torch.device = "cpu",
) -> DepthResult:
    """Depth, normals and confidence of one frame.

    Args:
        images: (C, H, W, 3) uint8 or float in [0, 1].
        cameras: C cameras.
        masks: optional (C, H, W) masks: bool, uint8 alpha or float alpha in [0, 1].
        depth_range: optional (2,) or (C, 2) [near, far] per view (metres); default from the
            rig geometry (:func:`depth_range_from_rig`).
        config: :class:`MVSConfig`; device: torch device ("cpu", "cuda", ...).

    Returns:
        :class:`DepthResult` of numpy arrays.
    """
    images = _as_tensor(images, "cpu")[None]
    masks = None if masks is None else _as_tensor(masks, "cpu")[None]
    if depth_range is not None and np.asarray(depth_range).ndim == 3:
        raise DepthError("estimate_depth takes one frame: depth_range must be (2,) or (C, 2)")
    d, n, c = estimate_depth_batch(images, cameras, masks, depth_range, config, device)
    return DepthResult(d[0].cpu().numpy(), n[0].cpu().numpy(), c[0].cpu().numpy())


def _unpack_frame(item):
    """A frame item -> (images, masks, depth_range)."""
    if isinstance(item, Mapping):
        return item["images"], item.get("masks"), item.get("depth_range")
    if isinstance(item, tuple | list):
        if not 1 <= len(item) <= 3:
            raise DepthError("a frame must be images, (images, masks) or (images, masks, range)")
        return tuple(item) + (None,) * (3 - len(item))
    return item, None, None


def estimate_depth_sequence(
    frames: Iterable,
    cameras: Sequence[Camera],
    depth_range=None,
    config: MVSConfig | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    total: int | None = None,
) -> Iterator[DepthResult]:
    """Depth of every frame of a sequence, ``config.batch_frames`` frames at a time.

    Args:
        frames: iterable (e.g. a loader) of frames, each ``images`` (C, H, W, 3), a tuple
            ``(images, masks)`` / ``(images, masks, depth_range)``, or a mapping with keys
            ``images``, ``masks``, ``depth_range``.
        cameras: C cameras.
        depth_range: (2,) or (C, 2) used for frames that carry none; default from the rig.
        progress: show a tqdm progress bar; total: its length (default ``len(frames)``).

    Yields:
        :class:`DepthResult` per frame, in order.
    """
    from tqdm.auto import tqdm

    cfg = check(config or MVSConfig(), "depth.torch")
    if total is None and hasattr(frames, "__len__"):
        total = len(frames)  # type: ignore[arg-type]
    if depth_range is None:
        depth_range = depth_range_from_rig(cameras)
    C = len(cameras)
    default_rng = np.broadcast_to(np.asarray(depth_range, dtype=np.float64), (C, 2))
    bar = tqdm(total=total, desc="depth (torch mvs)", unit="frame", disable=not progress)

    def run(batch):
        imgs = torch.stack([_as_tensor(b[0], "cpu") for b in batch])
        have_masks = [b[1] is not None for b in batch]
        if any(have_masks) and not all(have_masks):
            raise DepthError("either every frame of a batch has masks or none has")
        msk = (
            torch.stack([_binary_mask(_as_tensor(b[1], "cpu")) for b in batch])
            if all(have_masks)
            else None
        )
        rng = np.stack(
            [
                np.broadcast_to(
                    np.asarray(b[2] if b[2] is not None else default_rng, dtype=np.float64), (C, 2)
                )
                for b in batch
            ]
        )
        d, n, c = estimate_depth_batch(imgs, cameras, msk, rng, cfg, device)
        d, n, c = d.cpu().numpy(), n.cpu().numpy(), c.cpu().numpy()
        bar.update(len(batch))
        return [DepthResult(d[i], n[i], c[i]) for i in range(len(batch))]

    batch: list = []
    try:
        for item in frames:
            batch.append(_unpack_frame(item))
            if len(batch) == cfg.batch_frames:
                yield from run(batch)
                batch = []
        if batch:
            yield from run(batch)
    finally:
        bar.close()
