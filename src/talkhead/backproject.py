"""Back-projection of depth maps to world points, and 2D landmarks to 3D (DAG step 3).

Following the FaceTalk supplement (section D, "Backprojection"):

- a **depth mask** keeps valid depth in (``min_depth``, ``max_depth``] (0 and 1.4 m by
  default), combined with the **facial segmentation mask** (facer / LaPa labels 1-9) and,
  optionally, the alpha matte;
- the masked pixels go screen -> camera -> world through the intrinsics and the extrinsics
  (:func:`talkhead.cameras.unproject`), the normals are rotated to world by the extrinsic
  rotation (``R^T`` of ``world_2_cam``) and normalised;
- all views of a frame are fused into one cloud (optionally voxel-downsampled);
- 2D landmarks are lifted to 3D with the depth of each view (:func:`lift_landmarks`) and
  fused robustly across views (:func:`fuse_landmarks`).

:func:`backproject_sequence` produces the ``points.npz`` contents of ``docs/formats.md``
from a depth folder and per-frame callables (segmentation, alpha, landmarks), so any capture
reader can feed it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .cameras import Camera, unproject
from .depth.io import DepthFrame, depth_frame_path, list_depth_frames, load_depth_frame
from .errors import ConfigError, DepthError
from .io import PathLike, save_metrics, save_npz

if TYPE_CHECKING:
    from .capture import CaptureSequence

__all__ = [
    "FACE_LABELS",
    "BackprojectConfig",
    "FramePoints",
    "alpha_mask",
    "backproject_frame",
    "backproject_sequence",
    "backproject_view",
    "combined_mask",
    "depth_mask",
    "face_mask",
    "fuse_landmarks",
    "landmark_error_mm",
    "lift_landmarks",
    "load_points",
    "point_to_mesh_distance",
    "points_metrics",
    "save_points",
    "voxel_downsample",
]

log = logging.getLogger("talkhead.backproject")

FACE_LABELS: tuple[int, ...] = tuple(range(1, 10))
"""facer / LaPa labels of the facial mask: skin, brows, eyes, nose, lips, inner mouth."""

FrameFn = Callable[[int, Sequence[str]], "np.ndarray | None"]
"""``(t, serials) -> (C, ...) array in serials order`` (or None when the capture has none)."""


# --------------------------------------------------------------------------------------------
# masks
# --------------------------------------------------------------------------------------------


def depth_mask(depth: np.ndarray, min_depth: float = 0.0, max_depth: float = 1.4) -> np.ndarray:
    """Valid depth: finite and in (``min_depth``, ``max_depth``].

    Args:
        depth: (..., H, W) z-depth in metres.

    Returns:
        bool array of the same shape.
    """
    d = np.asarray(depth)
    with np.errstate(invalid="ignore"):
        return np.isfinite(d) & (d > min_depth) & (d <= max_depth)


def face_mask(labels: np.ndarray, face_labels: Sequence[int] = FACE_LABELS) -> np.ndarray:
    """Facial area of a facer (LaPa) label map: label in ``face_labels`` (1-9 by default).

    Args:
        labels: (..., H, W) integer labels.
    """
    return np.isin(np.asarray(labels), np.asarray(list(face_labels)))


def alpha_mask(alpha: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Foreground of an alpha matte: alpha > ``threshold`` x full scale.

    Args:
        alpha: (..., H, W) float in [0, 1], uint8 (full scale 255) or uint16 (65535), or bool.
    """
    a = np.asarray(alpha)
    if a.dtype == bool:
        return a
    if a.dtype == np.uint8:
        return a > threshold * 255.0
    if a.dtype == np.uint16:
        return a > threshold * 65535.0
    with np.errstate(invalid="ignore"):
        return a > threshold


def _check_shape(mask: np.ndarray, shape: tuple[int, ...], what: str, where: str) -> None:
    if mask.shape != shape:
        raise DepthError(f"{where}: {what} has shape {mask.shape}, the depth map has shape {shape}")


def combined_mask(
    depth: np.ndarray,
    labels: np.ndarray | None = None,
    alpha: np.ndarray | None = None,
    min_depth: float = 0.0,
    max_depth: float = 1.4,
    face_labels: Sequence[int] = FACE_LABELS,
    alpha_threshold: float = 0.5,
    name: str = "camera",
) -> np.ndarray:
    """Depth mask AND facial mask (when ``labels`` given) AND alpha mask (when given).

    Args:
        depth: (H, W) z-depth; labels: (H, W) LaPa labels; alpha: (H, W) matte.
        name: the view (file or camera) named in errors.

    Raises:
        DepthError: naming ``name`` when a mask's size differs from the depth map's.
    """
    depth = np.asarray(depth)
    m = depth_mask(depth, min_depth, max_depth)
    if labels is not None:
        labels = np.asarray(labels)
        _check_shape(labels, depth.shape, "segmentation mask", name)
        m &= face_mask(labels, face_labels)
    if alpha is not None:
        alpha = np.asarray(alpha)
        _check_shape(alpha, depth.shape, "alpha mask", name)
        m &= alpha_mask(alpha, alpha_threshold)
    return m


# --------------------------------------------------------------------------------------------
# back-projection
# --------------------------------------------------------------------------------------------


def backproject_view(
    depth: np.ndarray,
    normal: np.ndarray,
    mask: np.ndarray,
    K: np.ndarray,
    world_2_cam: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Back-project the masked pixels of one view to world points and normals.

    Screen -> camera -> world with :func:`talkhead.cameras.unproject` (pixel centres at
    integer coordinates, z-depth); normals rotated to world by ``R^T`` and normalised. Pixels
    whose normal is zero or non-finite are left out (no direction to give them).

    Args:
        depth: (H, W) z-depth in metres; normal: (H, W, 3) camera-frame normals;
        mask: (H, W) bool pixels to use (AND positive finite depth);
        K: (3, 3); world_2_cam: (4, 4).

    Returns:
        points (N, 3) and unit normals (N, 3), float32, world coordinates, row-major pixel
        order.

    Raises:
        DepthError: the normal map or mask does not match the depth map.
    """
    depth = np.asarray(depth)
    normal = np.asarray(normal)
    mask = np.asarray(mask, dtype=bool)
    if depth.ndim != 2:
        raise DepthError(f"depth must be (H, W), got shape {depth.shape}")
    if normal.shape != (*depth.shape, 3):
        raise DepthError(f"view: normal map has shape {normal.shape}, the depth map {depth.shape}")
    _check_shape(mask, depth.shape, "mask", "view")
    with np.errstate(invalid="ignore"):
        nn = np.linalg.norm(normal, axis=-1)
        sel = mask & np.isfinite(depth) & (depth > 0) & np.isfinite(nn) & (nn > 1e-6)
    v, u = np.nonzero(sel)
    uv = np.stack([u, v], axis=-1).astype(np.float64)
    pts = unproject(
        uv,
        depth[v, u].astype(np.float64),
        np.asarray(K, np.float64),
        np.asarray(world_2_cam, np.float64),
    )
    R = np.asarray(world_2_cam, dtype=np.float64)[:3, :3]
    n = normal[v, u].astype(np.float64) @ R  # (R^T n^T)^T
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    return pts.astype(np.float32), n.astype(np.float32)


def voxel_downsample(
    points: np.ndarray, normals: np.ndarray, view_ids: np.ndarray, voxel_size: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average points (and normals, renormalised) per cubic voxel of ``voxel_size`` metres.

    Deterministic; the output is ordered by voxel. A voxel keeps the view id of its first
    point.

    Returns:
        points (M, 3), normals (M, 3) float32, view_ids (M,).
    """
    if voxel_size <= 0:
        raise ConfigError(f"voxel_size must be > 0, got {voxel_size}")
    if len(points) == 0:
        return points, normals, view_ids
    p = np.asarray(points, dtype=np.float64)
    keys = np.floor(p / voxel_size).astype(np.int64)
    keys -= keys.min(axis=0)
    dims = keys.max(axis=0) + 1
    linear = (keys[:, 0] * dims[1] + keys[:, 1]) * dims[2] + keys[:, 2]  # 1-D: fast unique
    _, first, inverse, counts = np.unique(
        linear, return_index=True, return_inverse=True, return_counts=True
    )
    inverse = inverse.reshape(-1)
    M = len(counts)
    nrm = np.asarray(normals, dtype=np.float64)
    sums = np.stack([np.bincount(inverse, p[:, k], M) for k in range(3)], axis=1)
    nsum = np.stack([np.bincount(inverse, nrm[:, k], M) for k in range(3)], axis=1)
    nlen = np.linalg.norm(nsum, axis=1, keepdims=True)
    n = np.where(nlen > 1e-9, nsum / np.maximum(nlen, 1e-12), 0.0)
    return (
        (sums / counts[:, None]).astype(np.float32),
        n.astype(np.float32),
        np.asarray(view_ids)[first],
    )


class FramePoints(NamedTuple):
    """The fused cloud of one frame.

    Attributes:
        points: (P, 3) float32 world; normals: (P, 3) float32 unit world normals;
        view_ids: (P,) int camera index (in the depth frame's order) of each point;
        skipped: serials of the cameras that gave no point (no valid depth in the mask);
        counts: (C,) points per camera before downsampling.
    """

    points: np.ndarray
    normals: np.ndarray
    view_ids: np.ndarray
    skipped: list[str]
    counts: np.ndarray


def _camera_list(
    cameras: Sequence[Camera] | Mapping[str, Camera], serials: Sequence[str], where: str
) -> list[Camera]:
    by_serial = dict(cameras) if isinstance(cameras, Mapping) else {c.serial: c for c in cameras}
    missing = [s for s in serials if s not in by_serial]
    if missing:
        raise DepthError(f"{where}: no calibration for camera(s) {', '.join(missing)}")
    return [by_serial[s] for s in serials]


def backproject_frame(
    depth_frame: DepthFrame,
    cameras: Sequence[Camera] | Mapping[str, Camera],
    masks: np.ndarray | Sequence[np.ndarray | None] | None = None,
    min_depth: float = 0.0,
    max_depth: float = 1.4,
    voxel_size: float | None = None,
    min_confidence: float = 0.0,
    source: str = "depth frame",
) -> FramePoints:
    """Back-project and fuse all views of one frame.

    Args:
        depth_frame: the frame's depth, normals, confidence and serials.
        cameras: calibration (a list or ``{serial: Camera}``), looked up by serial.
        masks: optional (C, H, W) bool (or one mask or None per camera), ANDed with the depth
            mask (e.g. from :func:`combined_mask` without depth, or :func:`face_mask`).
        min_depth, max_depth: the depth mask (``(min, max]``).
        voxel_size: voxel of :func:`voxel_downsample` in metres (None = no downsampling).
        min_confidence: pixels with a lower confidence are left out.
        source: name used in messages (the depth file).

    Returns:
        :class:`FramePoints`. A camera with no valid point is logged and listed in
        ``skipped``.

    Raises:
        DepthError: a mask of the wrong size (naming the camera), a camera without
            calibration.
    """
    serials = list(depth_frame.serials)
    cams = _camera_list(cameras, serials, source)
    C, H, W = depth_frame.depth.shape
    if masks is not None and not isinstance(masks, np.ndarray | list | tuple):
        raise DepthError(f"{source}: masks must be an array or a list, got {type(masks)}")
    if masks is not None and len(masks) != C:
        raise DepthError(f"{source}: {len(masks)} masks for {C} cameras")
    pts, nrm, ids, skipped = [], [], [], []
    counts = np.zeros(C, dtype=np.int64)
    for i, cam in enumerate(cams):
        m = depth_mask(depth_frame.depth[i], min_depth, max_depth)
        if masks is not None and masks[i] is not None:
            mi = np.asarray(masks[i])
            _check_shape(mi, (H, W), "mask", f"{source} camera {cam.serial}")
            m &= mi.astype(bool)
        if min_confidence > 0:
            m &= depth_frame.confidence[i] >= min_confidence
        p, n = backproject_view(
            depth_frame.depth[i], depth_frame.normal[i], m, cam.K, cam.world_2_cam
        )
        counts[i] = len(p)
        if len(p) == 0:
            skipped.append(cam.serial)
            log.warning("%s: camera %s has no valid depth in its mask: skipped", source, cam.serial)
            continue
        pts.append(p)
        nrm.append(n)
        ids.append(np.full(len(p), i, dtype=np.int16))
    if pts:
        points, normals, view_ids = np.concatenate(pts), np.concatenate(nrm), np.concatenate(ids)
    else:
        points = np.zeros((0, 3), np.float32)
        normals = np.zeros((0, 3), np.float32)
        view_ids = np.zeros(0, np.int16)
    if voxel_size:
        points, normals, view_ids = voxel_downsample(points, normals, view_ids, voxel_size)
    return FramePoints(points, normals, view_ids, skipped, counts)


# --------------------------------------------------------------------------------------------
# landmarks
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# sequences
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackprojectConfig:
    """Settings of back-projection (the ``backproject`` config section).

    Attributes:
        min_depth, max_depth: the depth mask (min, max] in metres.
        face_labels: LaPa labels of the facial mask (when a segmentation is given).
        use_alpha: also require alpha > ``alpha_threshold`` (when alpha is given).
        alpha_threshold: fraction of full scale.
        min_confidence: pixels with lower depth confidence are left out.
        voxel_size: metres; per-frame voxel downsampling (None or 0 = keep every pixel).
        landmark_min_conf: 2D landmarks below this confidence are not lifted.
        landmark_search_radius_px: window of the nearest-valid-depth lookup.
        landmark_max_depth_jump: metres; larger spread among 4 neighbours = no bilinear.
        landmark_max_dev: metres; a view farther than this from the fused landmark is an
            outlier.
        landmark_min_views: views that must agree for a valid 3D landmark.
    """

    min_depth: float = 0.0
    max_depth: float = 1.4
    face_labels: tuple[int, ...] = FACE_LABELS
    use_alpha: bool = True
    alpha_threshold: float = 0.5
    min_confidence: float = 0.0
    voxel_size: float | None = 0.002
    landmark_min_conf: float = 0.5
    landmark_search_radius_px: int = 2
    landmark_max_depth_jump: float = 0.03
    landmark_max_dev: float = 0.005
    landmark_min_views: int = 2

    def validate(self) -> None:
        if not self.max_depth > self.min_depth >= 0:
            raise ConfigError(
                f"backproject: need 0 <= min_depth < max_depth, got {self.min_depth}, "
                f"{self.max_depth}"
            )
        if self.voxel_size is not None and self.voxel_size < 0:
            raise ConfigError("backproject: voxel_size must be >= 0")
        if self.landmark_min_views < 1 or self.landmark_max_dev <= 0:
            raise ConfigError("backproject: landmark_min_views >= 1 and landmark_max_dev > 0")
        if self.landmark_search_radius_px < 0:
            raise ConfigError("backproject: landmark_search_radius_px must be >= 0")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> BackprojectConfig:
        """Build from a config mapping; unknown keys raise :class:`ConfigError`."""
        d = dict(d or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"backproject: unknown settings {unknown}")
        if "face_labels" in d:
            d["face_labels"] = tuple(int(x) for x in d["face_labels"])
        cfg = cls(**d)
        cfg.validate()
        return cfg


def backproject_sequence(
    depth_dir: PathLike,
    cameras: Sequence[Camera] | Mapping[str, Camera],
    frames: Sequence[int] | None = None,
    segmentation: FrameFn | None = None,
    alpha: FrameFn | None = None,
    landmarks2d: FrameFn | None = None,
    config: BackprojectConfig | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Back-project every frame of a sequence and lift its landmarks.

    Args:
        depth_dir: folder of ``frame_<t:05d>.npz`` depth files (:mod:`talkhead.depth.io`).
        cameras: calibration, looked up by the depth files' serials.
        frames: frame ids to use (default: every depth file in ``depth_dir``).
        segmentation: ``(t, serials) -> (C, H, W)`` LaPa labels, or None (no facial mask).
        alpha: ``(t, serials) -> (C, H, W)`` mattes, or None.
        landmarks2d: ``(t, serials) -> (C, 68, 3)`` x, y, confidence, or None (no landmarks:
            ``landmarks3d`` all invalid).
        config: settings.

    Returns:
        ``(data, stats)``: ``data`` holds the ``points.npz`` arrays (``points`` (P, 3)
        float32, ``normals`` (P, 3) float32, ``frame_offsets`` (T+1,) int64, ``landmarks3d``
        (T, 68, 3) float32 (0 where invalid), ``landmarks3d_valid`` (T, 68) bool) plus
        ``frames`` (T,) int64 frame ids; ``stats`` holds ``points_per_frame`` (T,),
        ``skipped_cameras`` ``{t: [serials]}``, ``n_skipped``, ``landmark_inliers`` (T, 68)
        (views agreeing per landmark) and ``landmark_views`` (T, 68) (views that lifted it).

    Raises:
        DepthError: missing or malformed depth files, masks of the wrong size (naming the
            frame and camera), missing calibration.
    """
    cfg = config or BackprojectConfig()
    cfg.validate()
    depth_dir = Path(depth_dir)
    frames = list(frames) if frames is not None else list_depth_frames(depth_dir)
    if not frames:
        raise DepthError(f"{depth_dir}: no depth frames to back-project")
    T = len(frames)
    pts_all, nrm_all = [], []
    offsets = np.zeros(T + 1, dtype=np.int64)
    n_lmk = 68
    lmk3d = np.zeros((T, n_lmk, 3), np.float32)
    lmk_valid = np.zeros((T, n_lmk), bool)
    inliers = np.zeros((T, n_lmk), np.int64)
    views = np.zeros((T, n_lmk), np.int64)
    skipped: dict[int, list[str]] = {}

    for k, t in enumerate(frames):
        path = depth_frame_path(depth_dir, t)
        frame = load_depth_frame(path)
        serials = list(frame.serials)
        cams = _camera_list(cameras, serials, str(path))
        C, H, W = frame.depth.shape
        labels = segmentation(t, serials) if segmentation is not None else None
        mattes = alpha(t, serials) if (alpha is not None and cfg.use_alpha) else None
        masks = np.ones((C, H, W), bool)
        for what, arr in (("segmentation", labels), ("alpha", mattes)):
            if arr is None:
                continue
            arr = np.asarray(arr)
            if arr.shape[0] != C:
                raise DepthError(
                    f"{path}: {what} of frame {t} has {arr.shape[0]} views, the depth has {C}"
                )
            for i in range(C):
                _check_shape(arr[i], (H, W), f"{what} mask", f"frame {t} camera {serials[i]}")
            masks &= (
                face_mask(arr, cfg.face_labels)
                if what == "segmentation"
                else alpha_mask(arr, cfg.alpha_threshold)
            )
        fp = backproject_frame(
            frame,
            cams,
            masks,
            cfg.min_depth,
            cfg.max_depth,
            cfg.voxel_size or None,
            cfg.min_confidence,
            source=str(path),
        )
        if fp.skipped:
            skipped[int(t)] = list(fp.skipped)
        pts_all.append(fp.points)
        nrm_all.append(fp.normals)
        offsets[k + 1] = offsets[k] + len(fp.points)

        if landmarks2d is not None:
            lm = landmarks2d(t, serials)
            if lm is not None:
                lm = np.asarray(lm)
                if lm.shape != (C, n_lmk, 3):
                    raise DepthError(
                        f"frame {t}: landmarks have shape {lm.shape}, expected {(C, n_lmk, 3)}"
                    )
                lifted, ok = lift_landmarks(
                    lm,
                    frame.depth,
                    cams,
                    cfg.landmark_min_conf,
                    cfg.landmark_search_radius_px,
                    cfg.min_depth,
                    cfg.max_depth,
                    cfg.landmark_max_depth_jump,
                )
                fused, fvalid, inl = fuse_landmarks(
                    lifted,
                    ok,
                    cfg.landmark_max_dev,
                    cfg.landmark_min_views,
                    return_inliers=True,
                )
                lmk3d[k] = fused
                lmk_valid[k] = fvalid
                inliers[k] = inl.sum(axis=0)
                views[k] = ok.sum(axis=0)

    points = np.concatenate(pts_all) if pts_all else np.zeros((0, 3), np.float32)
    normals = np.concatenate(nrm_all) if nrm_all else np.zeros((0, 3), np.float32)
    data = {
        "points": points.astype(np.float32),
        "normals": normals.astype(np.float32),
        "frame_offsets": offsets,
        "landmarks3d": lmk3d,
        "landmarks3d_valid": lmk_valid,
        "frames": np.asarray(frames, dtype=np.int64),
    }
    stats = {
        "frames": [int(t) for t in frames],
        "points_per_frame": np.diff(offsets),
        "skipped_cameras": skipped,
        "n_skipped": int(sum(len(v) for v in skipped.values())),
        "landmark_inliers": inliers,
        "landmark_views": views,
    }
    return data, stats


def points_metrics(stats: Mapping[str, Any], data: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Flat figures for ``metrics.json`` from :func:`backproject_sequence`'s output."""
    ppf = np.asarray(stats["points_per_frame"], dtype=np.float64)
    valid = np.asarray(data["landmarks3d_valid"], dtype=bool)
    inl = np.asarray(stats["landmark_inliers"], dtype=np.float64)
    return {
        "frames": int(len(ppf)),
        "points_per_frame_mean": float(ppf.mean()) if ppf.size else 0.0,
        "points_per_frame_min": float(ppf.min()) if ppf.size else 0.0,
        "skipped_camera_frames": int(stats["n_skipped"]),
        "landmarks_valid_fraction": float(valid.mean()) if valid.size else 0.0,
        "landmark_inlier_views_mean": float(inl[valid].mean()) if valid.any() else 0.0,
    }


def save_points(path: PathLike, data: Mapping[str, np.ndarray]) -> None:
    """Write the ``points.npz`` of :func:`backproject_sequence` atomically (compressed)."""
    offsets = np.asarray(data["frame_offsets"], dtype=np.int64)
    if offsets[0] != 0 or offsets[-1] != len(data["points"]) or np.any(np.diff(offsets) < 0):
        raise DepthError(f"{path}: frame_offsets do not index the points")
    save_npz(path, **{k: np.asarray(v) for k, v in data.items()})


def load_points(path: PathLike) -> dict[str, np.ndarray]:
    """Read and check a ``points.npz``.

    Raises:
        DepthError: naming the file when keys are missing or shapes are inconsistent.
    """
    path = Path(path)
    if not path.is_file():
        raise DepthError(f"{path}: points file is missing")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise DepthError(f"{path}: unreadable points file ({exc})") from None
    need = ("points", "normals", "frame_offsets", "landmarks3d", "landmarks3d_valid")
    missing = [k for k in need if k not in data]
    if missing:
        raise DepthError(f"{path}: lacks {', '.join(missing)}")
    P = len(data["points"])
    off = data["frame_offsets"]
    T = len(off) - 1
    if data["points"].shape != (P, 3) or data["normals"].shape != (P, 3):
        raise DepthError(f"{path}: points/normals must both be (P, 3)")
    if T < 0 or off[0] != 0 or off[-1] != P or np.any(np.diff(off) < 0):
        raise DepthError(f"{path}: frame_offsets do not index the points")
    if data["landmarks3d"].shape[0] != T or data["landmarks3d_valid"].shape[0] != T:
        raise DepthError(
            f"{path}: landmarks cover {data['landmarks3d'].shape[0]} frames, the points {T}"
        )
    if not np.isfinite(data["points"]).all():
        raise DepthError(f"{path}: points contain NaN or infinite values")
    return data


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------


def point_to_mesh_distance(
    points: np.ndarray, vertices: np.ndarray, faces: np.ndarray
) -> np.ndarray:
    """Unsigned distance (metres) of each point (N, 3) to a triangle mesh (open3d).

    Args:
        points: (N, 3); vertices: (V, 3); faces: (F, 3) int.

    Returns:
        (N,) float64.
    """
    import open3d as o3d

    pts = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    if len(pts) == 0:
        return np.zeros(0)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32)),
        o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.uint32)),
    )
    return scene.compute_distance(o3d.core.Tensor(pts)).numpy().astype(np.float64)


def landmark_error_mm(pred: np.ndarray, valid: np.ndarray, gt: np.ndarray) -> float:
    """Mean Euclidean error in millimetres over the valid landmarks (NaN when none is valid).

    Args:
        pred: (..., L, 3) metres; valid: (..., L) bool; gt: (..., L, 3) metres.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    if pred.shape != gt.shape or valid.shape != pred.shape[:-1]:
        raise ValueError(f"shapes differ: pred {pred.shape}, valid {valid.shape}, gt {gt.shape}")
    if not valid.any():
        return float("nan")
    return float(np.linalg.norm(pred - gt, axis=-1)[valid].mean() * 1000.0)


def points_gt_metrics(
    data: Mapping[str, np.ndarray], gt_dir: PathLike, max_frames: int = 10
) -> dict[str, float]:
    """Back-projected points and fused 3D landmarks against the synthetic ground truth.

    Points are measured against the true mesh of their frame (``vertices.npy``, ``faces.npy``)
    on up to ``max_frames`` frames spread over the sequence; landmarks on every frame.
    """
    gt_dir = Path(gt_dir)
    verts = np.load(gt_dir / "vertices.npy", mmap_mode="r")
    faces = np.load(gt_dir / "faces.npy")
    gt_lmk = np.load(gt_dir / "landmarks3d.npy")
    frames = np.asarray(data["frames"], dtype=np.int64)
    offsets = np.asarray(data["frame_offsets"])
    picks = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).astype(int))
    dist = [
        point_to_mesh_distance(
            data["points"][offsets[i] : offsets[i + 1]], np.asarray(verts[frames[i]]), faces
        )
        for i in picks
    ]
    d = np.concatenate(dist) * 1000.0 if dist else np.zeros(0)
    valid = np.asarray(data["landmarks3d_valid"], dtype=bool)
    lmk = np.asarray(data["landmarks3d"], dtype=np.float64)
    lmk_err = np.linalg.norm(lmk - gt_lmk[frames], axis=-1)[valid] * 1000.0
    nan = float("nan")
    return {
        "points_to_mesh_median_mm": float(np.median(d)) if d.size else nan,
        "points_to_mesh_p90_mm": float(np.percentile(d, 90)) if d.size else nan,
        "landmarks3d_median_err_mm": float(np.median(lmk_err)) if lmk_err.size else nan,
        "landmarks3d_mean_err_mm": float(lmk_err.mean()) if lmk_err.size else nan,
    }


def run_backproject_stage(
    seq: CaptureSequence,
    depth_dir: PathLike,
    points_path: PathLike,
    metrics_path: PathLike,
    settings: Mapping[str, Any] | None = None,
    gt_dir: PathLike | None = None,
) -> dict[str, float]:
    """Back-project a sequence's depth maps to ``points.npz`` and write its ``metrics.json``.

    Args:
        seq: the capture sequence (calibration, segmentation, alpha, 2D landmarks).
        depth_dir: the depth stage's ``frame_<t:05d>.npz`` files.
        settings: the ``backproject`` config section (:class:`BackprojectConfig` fields).
        gt_dir: the sequence's ground truth (synthetic studio), or None.
    """
    from .capture import read_alpha, read_landmarks, read_segmentation

    cfg = BackprojectConfig.from_dict(settings)
    column = {s: i for i, s in enumerate(seq.serials)}
    row = {t: i for i, t in enumerate(seq.frame_ids)}
    lmk = read_landmarks(seq) if seq.has_landmarks else None  # (C, T, 68, 3)
    data, stats = backproject_sequence(
        depth_dir,
        seq.cameras,
        frames=seq.frame_ids,
        segmentation=(lambda t, s: read_segmentation(seq, t, s)) if seq.has_segmentation else None,
        alpha=(lambda t, s: read_alpha(seq, t, s)) if seq.has_alpha else None,
        landmarks2d=(lambda t, s: lmk[[column[x] for x in s], row[t]]) if lmk is not None else None,
        config=cfg,
    )
    save_points(points_path, data)
    metrics = points_metrics(stats, data)
    if gt_dir is not None:
        metrics.update(points_gt_metrics(data, gt_dir))
    log.info("back-projection metrics: %s", metrics)
    save_metrics(metrics_path, metrics)
    return metrics
