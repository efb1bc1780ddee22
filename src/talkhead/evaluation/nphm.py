"""NPHM fits (marching-cubes meshes per frame) against the capture's true meshes.

Each frame's mesh is compared with the true mesh of that frame over the true mesh's ``face``
region (:func:`talkhead.geometry.surface.surface_metrics`: NPHM's protocol with our region
crop; the region's triangles are those whose three vertices are all in the head model's
``face`` mask). Figures (means over frames; distances in millimetres):

- ``chamfer_l1_mm``, ``accuracy_mm`` (prediction -> truth), ``completeness_mm`` (truth ->
  prediction), ``chamfer_l1_max_mm`` (the worst frame);
- ``normal_consistency`` (mean |cos|, both directions);
- ``precision_<t>``, ``recall_<t>``, ``fscore_<t>`` at 1 mm and 5 mm;
- ``jitter_mae`` / ``jitter_rmse`` of the fitted expression codes
  (:func:`talkhead.fitting.temporal.expression_jitter`, frame spacing respected; the FaceTalk
  supplement's Table 2), NaN without codes or with one frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import EvaluationError
from ..fitting.temporal import expression_jitter
from ..geometry.surface import surface_metrics, threshold_name
from .flame import truth_rows
from .ground_truth import GroundTruth

__all__ = ["DISTANCE_KEYS", "evaluate_nphm_fit", "region_faces"]

MM = 1000.0
THRESHOLDS = (0.001, 0.005)
"""F-score distances of NPHM's evaluation (metres)."""
DISTANCE_KEYS = ("chamfer_l1", "accuracy", "completeness")
"""surface_metrics keys in metres, reported in millimetres (``<key>_mm``)."""


def region_faces(faces: np.ndarray, vertex_indices: np.ndarray, n_vertices: int) -> np.ndarray:
    """(F,) bool: triangles whose three vertices are all in ``vertex_indices``.

    Raises:
        EvaluationError: an index outside ``[0, n_vertices)`` (masks of another head model).
    """
    idx = np.asarray(vertex_indices, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= n_vertices):
        raise EvaluationError(
            f"region mask indexes vertex {int(idx.max())} but the true mesh has {n_vertices} "
            "vertices: ground truth and head model differ"
        )
    inside = np.zeros(n_vertices, dtype=bool)
    inside[idx] = True
    return inside[np.asarray(faces, dtype=np.int64)].all(axis=1)


def evaluate_nphm_fit(
    meshes: Sequence[tuple[np.ndarray, np.ndarray]],
    frames: np.ndarray,
    gt: GroundTruth,
    masks: Mapping[str, np.ndarray],
    codes: np.ndarray | None = None,
    n_samples: int = 50_000,
    seed: int = 0,
    code_frames: np.ndarray | None = None,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Fitted meshes against the true meshes of their frames, over the face region.

    Args:
        meshes: per frame ``(vertices (V_t, 3) world metres, faces (F_t, 3))``; read one at a
            time (a lazy sequence keeps one mesh in memory).
        frames: (T,) frame ids of the meshes, strictly increasing.
        gt: the sequence's ground truth.
        masks: the head model's region masks (name -> vertex indices); ``face`` is used.
        codes: (T, E) fitted expression codes of ``frames``, or (T', E) of ``code_frames``
            (the codes of every fitted frame when only some have a mesh), or None.
        n_samples: surface samples per frame and direction.
        seed: sampling seed; frame ``t`` samples with ``(seed, t)``.

    Returns:
        ``(figures, per_frame)``: the flat figures of the module docstring, and per-frame
        (T,) arrays ``chamfer_l1_mm``, ``accuracy_mm``, ``completeness_mm``,
        ``normal_consistency``, ``precision_<t>``, ``recall_<t>``, ``fscore_<t>``.

    Raises:
        EvaluationError: no ``face`` mask, meshes, frames and codes that disagree in number,
            frames the ground truth lacks, or an unusable mesh (empty, elsewhere).
    """
    frames = np.asarray(frames).reshape(-1)
    if len(meshes) != len(frames) or len(frames) == 0:
        raise EvaluationError(f"{len(meshes)} meshes for {len(frames)} frame ids (need >= 1)")
    if "face" not in masks:
        raise EvaluationError("the head model has no 'face' mask")
    code_frames = frames if code_frames is None else np.asarray(code_frames).reshape(-1)
    if codes is not None and np.asarray(codes).shape[:1] != code_frames.shape:
        raise EvaluationError(
            f"expression codes have shape {np.asarray(codes).shape}, expected "
            f"({len(code_frames)}, E)"
        )
    rows = truth_rows(gt.flame_params()["frames"], frames, str(gt.path))
    true_faces = np.asarray(gt.faces())
    true_vertices = gt.vertices()
    region = region_faces(true_faces, masks["face"], true_vertices.shape[1])
    results = []
    for i, (t, row) in enumerate(zip(frames, rows, strict=True)):
        vertices, faces = meshes[i]
        try:
            results.append(
                surface_metrics(
                    vertices,
                    faces,
                    np.asarray(true_vertices[row], dtype=np.float64),
                    true_faces,
                    true_region_faces=region,
                    n_samples=n_samples,
                    thresholds=THRESHOLDS,
                    seed=(int(seed), int(t)),
                )
            )
        except EvaluationError as exc:
            raise EvaluationError(f"frame {int(t)}: {exc}") from None
    per_frame: dict[str, np.ndarray] = {}
    for key in DISTANCE_KEYS:
        per_frame[f"{key}_mm"] = np.array([r[key] for r in results]) * MM
    kinds = ("precision", "recall", "fscore")
    rates = ["normal_consistency"] + [f"{k}_{threshold_name(t)}" for t in THRESHOLDS for k in kinds]
    for key in rates:
        per_frame[key] = np.array([r[key] for r in results])
    figures: dict[str, float] = {"frames": int(len(frames))}
    figures.update({k: float(v.mean()) for k, v in per_frame.items()})
    figures["chamfer_l1_max_mm"] = float(per_frame["chamfer_l1_mm"].max())
    if codes is None:
        jitter = {"mae": float("nan"), "rmse": float("nan")}
    else:
        try:
            jitter = expression_jitter(np.asarray(codes), code_frames)
        except ValueError as exc:
            raise EvaluationError(f"expression codes: {exc}") from None
    figures["jitter_mae"], figures["jitter_rmse"] = jitter["mae"], jitter["rmse"]
    return figures, per_frame
