"""Back-projected points and fused 3D landmarks against the true mesh and landmarks."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..geometry.mesh_distance import point_to_mesh_distance
from .ground_truth import GroundTruth


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
    data: Mapping[str, np.ndarray], gt: GroundTruth, max_frames: int = 10
) -> dict[str, float]:
    """Back-projected points and fused 3D landmarks against the ground truth.

    Points are measured against the true mesh of their frame on up to ``max_frames`` frames
    spread over the sequence (unsigned point-to-triangle distance); landmarks on every frame.

    Args:
        data: a ``points.npz`` (:func:`talkhead.points.io.load_points`): ``points`` (P, 3),
            ``frame_offsets`` (T+1,), ``landmarks3d`` (T, 68, 3), ``landmarks3d_valid``
            (T, 68), ``frames`` (T,) frame ids (rows of the true arrays).
        gt: the sequence's ground truth.

    Returns:
        ``points_to_mesh_median_mm``, ``points_to_mesh_p90_mm``, ``landmarks3d_median_err_mm``,
        ``landmarks3d_mean_err_mm`` (NaN where nothing can be measured).

    Raises:
        EvaluationError: ground truth missing or malformed.
    """
    verts = gt.vertices(mmap=True)
    faces = gt.faces()
    gt_lmk = gt.landmarks3d()
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
