"""FLAME fits against the capture's true meshes (same topology: the synthetic head).

Figures (millimetres):

- ``face_vertex_error_mm`` / ``lips_vertex_error_mm``: mean Euclidean distance between
  fitted and true vertices over the ``face`` / ``lips`` region and every frame;
- ``lip_vertex_error_max_mm``: per frame the largest lip-vertex distance, averaged over
  frames (the Euclidean lip vertex error of Imitator's ``lip_max_l2``, in mm);
- ``landmark_error_mm``: mean distance of the fitted to the true 3D landmarks;
- ``jitter_mae`` / ``jitter_rmse`` of the fitted expression codes and ``truth_jitter_*`` of
  the true ones (:func:`talkhead.fitting.temporal.expression_jitter`; FaceTalk supplement
  Table 2). Comparable only where the fit and the truth share the expression basis (the
  synthetic studio's head model).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import EvaluationError
from ..fitting.temporal import expression_jitter
from .ground_truth import GroundTruth

__all__ = ["evaluate_flame_fit", "truth_rows"]

MM = 1000.0


def truth_rows(
    gt_frames: np.ndarray, frames: np.ndarray, source: str = "ground truth"
) -> np.ndarray:
    """Rows of the ground truth holding frame ids ``frames``.

    Raises:
        EvaluationError: a frame id the ground truth lacks.
    """
    index = {int(t): i for i, t in enumerate(np.asarray(gt_frames))}
    missing = [int(t) for t in frames if int(t) not in index]
    if missing:
        raise EvaluationError(f"{source}: no ground truth for frame(s) {missing[:10]}")
    return np.asarray([index[int(t)] for t in frames], dtype=np.int64)


def evaluate_flame_fit(
    vertices: np.ndarray,
    landmarks: np.ndarray,
    params: Mapping[str, np.ndarray],
    gt: GroundTruth,
    masks: Mapping[str, np.ndarray],
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Fitted meshes against the truth.

    Args:
        vertices: (T, V, 3) fitted world vertices (metres).
        landmarks: (T, L, 3) fitted world landmarks.
        params: the fitted FLAME parameters (``frames``, ``expression``).
        gt: the sequence's ground truth.
        masks: the model's region masks (``face``, ``lips``).

    Returns:
        ``(figures, per_frame)``: the flat figures of the module docstring, and per-frame
        (T,) arrays ``face_mm``, ``lips_mm``, ``landmarks_mm``.

    Raises:
        EvaluationError: topologies differ, a region is missing, or frames lack truth.
    """
    frames = np.asarray(params["frames"])
    true_params = gt.flame_params()
    rows = truth_rows(true_params["frames"], frames, str(gt.path))
    true_v = np.asarray(gt.vertices())[rows]
    if true_v.shape[1:] != vertices.shape[1:]:
        raise EvaluationError(
            f"{gt.path}: the true meshes have {true_v.shape[1]} vertices, the fit "
            f"{vertices.shape[1]}: ground truth and fit must use the same head model"
        )
    for region in ("face", "lips"):
        if region not in masks:
            raise EvaluationError(f"the head model has no '{region}' mask")
    err = np.linalg.norm(vertices - true_v, axis=-1) * MM  # (T, V)
    face, lips = np.asarray(masks["face"]), np.asarray(masks["lips"])
    true_lmk = np.asarray(gt.landmarks3d())[rows]
    lmk_err = np.linalg.norm(landmarks - true_lmk, axis=-1) * MM  # (T, L)
    per_frame = {
        "face_mm": err[:, face].mean(axis=1),
        "lips_mm": err[:, lips].mean(axis=1),
        "landmarks_mm": lmk_err.mean(axis=1),
    }
    fit_j = expression_jitter(params["expression"], frames)
    true_expr = np.asarray(true_params["expression"])[rows]
    true_j = expression_jitter(true_expr, frames)
    figures = {
        "frames": int(len(frames)),
        "face_vertex_error_mm": float(err[:, face].mean()),
        "lips_vertex_error_mm": float(err[:, lips].mean()),
        "lip_vertex_error_max_mm": float(err[:, lips].max(axis=1).mean()),
        "face_vertex_error_p95_mm": float(np.percentile(err[:, face], 95)),
        "landmark_error_mm": float(lmk_err.mean()),
        "jitter_mae": fit_j["mae"],
        "jitter_rmse": fit_j["rmse"],
        "truth_jitter_mae": true_j["mae"],
        "truth_jitter_rmse": true_j["rmse"],
    }
    return figures, per_frame
