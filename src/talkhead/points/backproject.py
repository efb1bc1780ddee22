"""Back-projection of depth maps to world points (DAG step 4, "points").

Following the FaceTalk supplement (section D, "Backprojection"):

- a **depth mask** keeps valid depth in (``min_depth``, ``max_depth``] (0 and 1.4 m by
  default), combined with the **facial segmentation mask** (facer / LaPa labels 1-9) and,
  optionally, the alpha matte;
- the masked pixels go screen -> camera -> world through the intrinsics and the extrinsics
  (:func:`talkhead.geometry.cameras.unproject`), the normals are rotated to world by the extrinsic
  rotation (``R^T`` of ``world_2_cam``) and normalised;
- all views of a frame are fused into one cloud (optionally voxel-downsampled).

2D landmarks are lifted and fused in :mod:`talkhead.points.landmarks`; a whole sequence is
back-projected by :func:`talkhead.points.stage.backproject_sequence`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..capture.masks import FACE_LABELS, alpha_mask, face_mask
from ..depth.io import DepthFrame
from ..errors import ConfigError, DepthError
from ..geometry.cameras import Camera
from ..geometry.depth_maps import depth_to_points

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

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

    Screen -> camera -> world with :func:`talkhead.geometry.depth_maps.depth_to_points` (pixel
    centres at integer coordinates, z-depth); normals rotated to world by ``R^T`` and
    normalised. Pixels whose normal is zero or non-finite are left out (no direction to give
    them).

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
    pts, uv = depth_to_points(depth, K, world_2_cam, mask=sel)
    u, v = uv.astype(np.int64).T
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
# sequences
# --------------------------------------------------------------------------------------------
