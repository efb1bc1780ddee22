"""Depth ranges: the [near, far] z-depth that a stereo backend searches, per view.

One source for every backend (torch multi-view stereo, COLMAP):

- from sparse 3D points on the subject, e.g. 2D landmarks triangulated across views
  (:func:`depth_range_from_points`; :func:`landmark_points` triangulates a sequence's
  landmarks), widened by a margin, because landmarks cover the face only and a view also sees
  hair, ears and neck;
- else from the rig alone: the point closest to every optical axis (the rig's convergence
  point, :func:`rig_convergence_point`) +- a head-sized radius (:func:`depth_range_from_rig`).

:func:`sequence_depth_range` picks between them for a capture sequence (what the depth stage
uses). Conventions: metres, z-depth along each camera's optical axis, OpenCV cameras with
``world_2_cam`` extrinsics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..capture.readers import read_landmarks
from ..capture.sequence import CaptureSequence
from ..errors import DepthError
from ..geometry.cameras import Camera
from ..geometry.triangulation import camera_matrices, triangulate_points

__all__ = [
    "DEFAULT_RANGE_RADIUS",
    "depth_range_from_points",
    "depth_range_from_rig",
    "landmark_points",
    "rig_convergence_point",
    "sequence_depth_range",
]

DEFAULT_RANGE_RADIUS = 0.15
"""Metres: the margin around sparse points, or the radius around the rig's convergence point,
when none is configured (``depth.range_radius``); head-sized."""


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
        min_depth: the smallest near depth (metres).

    Returns:
        (C, 2) float64 [near, far] z-depth in metres.

    Raises:
        DepthError: when no point lies in front of some camera.
    """
    pts = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    _, T = camera_matrices(cameras)
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
    _, T = camera_matrices(cameras)
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


def depth_range_from_rig(
    cameras: Sequence[Camera], radius: float = DEFAULT_RANGE_RADIUS
) -> np.ndarray:
    """Depth range from the rig alone: the axes' closest approach +- a head-sized ``radius``.

    Args:
        cameras: C cameras looking at a common point (the subject).
        radius: metres on both sides of the convergence point's depth.

    Returns:
        (C, 2) float64 [near, far] z-depth in metres (near at least 1 mm).

    Raises:
        DepthError: the axes do not converge, or converge behind a camera.
    """
    x = rig_convergence_point(cameras)
    _, T = camera_matrices(cameras)
    z = T[:, 2, :3] @ x + T[:, 2, 3]
    if np.any(z <= 0):
        raise DepthError("the rig's convergence point lies behind a camera; pass depth_range")
    return np.stack([np.maximum(z - radius, 1e-3), z + radius], axis=1)


def landmark_points(seq: CaptureSequence, n_frames: int = 8) -> np.ndarray | None:
    """World points on the face: the 2D landmarks of a few frames triangulated across views.

    Args:
        seq: the capture sequence (its calibration and 2D landmark files).
        n_frames: frames sampled evenly over the sequence.

    Returns:
        (N, 3) float64 world points (the valid triangulations of every sampled frame), or None
        when the sequence has no landmarks or fewer than 4 points triangulate.
    """
    if not seq.has_landmarks:
        return None
    lmk = read_landmarks(seq)  # (C, T, 68, 3)
    cams = [seq.cameras[s] for s in seq.serials]
    picks = np.unique(np.linspace(0, seq.n_frames - 1, min(n_frames, seq.n_frames)).astype(int))
    points = []
    for i in picks:
        p, ok = triangulate_points(lmk[:, i, :, :2], lmk[:, i, :, 2], cams)
        points.append(p[ok])
    points = np.concatenate(points) if points else np.zeros((0, 3))
    return points if len(points) >= 4 else None


def sequence_depth_range(seq: CaptureSequence, margin: float) -> tuple[np.ndarray, str]:
    """Depth range of every view of a sequence, and where it came from (for the log).

    From the triangulated landmarks (:func:`landmark_points`) widened by ``margin`` when the
    sequence has them, else from the rig's convergence point +- ``margin``.

    Args:
        seq: the capture sequence; its cameras in ``seq.serials`` order.
        margin: metres (``depth.range_radius``, default :data:`DEFAULT_RANGE_RADIUS`).

    Returns:
        (C, 2) float64 [near, far] z-depth per view, and a phrase naming the source.

    Raises:
        DepthError: no landmark in front of a camera, or optical axes that do not converge.
    """
    points = landmark_points(seq)
    cams = [seq.cameras[s] for s in seq.serials]
    if points is not None:
        return depth_range_from_points(points, cams, margin=margin), "triangulated 2D landmarks"
    return depth_range_from_rig(cams, margin), "the rig's convergence point"
