"""The evaluate rules of one sequence: a stage's output against the capture's ground truth,
written as a flat ``evaluation.json`` beside the stage's ``metrics.json``.

These runners are the only place that opens ground truth for a workflow rule; production
stages never see it. Pictures of the errors are drawn by :mod:`talkhead.qc` from what these
functions return.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..capture.masks import FACE_LABELS, facial_masks
from ..capture.sequence import CaptureSequence
from ..depth.io import depth_frame_path, load_depth_frame
from ..io import PathLike, save_metrics
from .depth import DepthErrorAccumulator
from .ground_truth import GroundTruth
from .points import points_gt_metrics

log = logging.getLogger(__name__)

MaskFn = Callable[[int, Sequence[str]], np.ndarray]
"""``(t, serials) -> (C, H, W) bool`` pixels to evaluate."""


@dataclass(frozen=True)
class DepthErrorView:
    """Depth errors of one frame and a few cameras, for the error figure.

    Attributes:
        t: frame id.
        serials: (C,) cameras shown.
        error_mm: (C, H, W) absolute depth error in millimetres where the face mask, a valid
            prediction and a true surface meet; NaN elsewhere.
        missing: (C, H, W) bool face pixels without a valid prediction.
    """

    t: int
    serials: tuple[str, ...]
    error_mm: np.ndarray
    missing: np.ndarray


def face_masks_of(seq: CaptureSequence, face_labels: Sequence[int] = FACE_LABELS) -> MaskFn:
    """The evaluation mask of a capture (:func:`talkhead.capture.masks.facial_masks`): its
    segmentation's face labels, else its alpha matte."""
    return lambda t, serials: facial_masks(seq, t, list(serials), tuple(face_labels))


def evaluate_depth(
    frame_ids: Sequence[int], depth_dir: PathLike, gt: GroundTruth, masks: MaskFn
) -> dict[str, float]:
    """Depth and normal accuracy of a sequence, pooled over every pixel of every frame.

    Args:
        frame_ids: frames to evaluate; depth_dir: the depth stage's frame files.
        gt: the sequence's ground truth; masks: the pixels to evaluate (the face).

    Returns:
        :func:`talkhead.evaluation.depth.depth_metrics` keys (``depth_median_abs_err_mm``,
        ``depth_p90_abs_err_mm``, ``valid_fraction``, ``normal_median_angle_deg``, ...).

    Raises:
        DepthError: a depth file is missing or malformed; EvaluationError: the ground truth.
    """
    acc = DepthErrorAccumulator()
    for t in frame_ids:
        pred = load_depth_frame(depth_frame_path(depth_dir, t))
        true = gt.depth_frame(t)
        order = [true.index(s) for s in pred.serials]
        mask = masks(t, list(pred.serials))
        acc.update(pred.depth, true.depth[order], mask, pred.normal, true.normal[order])
    return acc.compute()


def depth_error_view(
    t: int, serials: Sequence[str], depth_dir: PathLike, gt: GroundTruth, masks: MaskFn
) -> DepthErrorView:
    """The per-pixel depth errors of frame ``t`` in the given cameras (for the QC figure)."""
    pred = load_depth_frame(depth_frame_path(depth_dir, t))
    true = gt.depth_frame(t)
    depth = pred.depth[[pred.index(s) for s in serials]]
    true_depth = true.depth[[true.index(s) for s in serials]]
    face = masks(t, list(serials))
    valid = depth > 0
    error = np.abs(depth - true_depth) * 1000.0
    shown = np.where(face & valid & (true_depth > 0), error, np.nan)
    return DepthErrorView(int(t), tuple(serials), shown, face & ~valid)


def run_evaluate_depth(
    seq: CaptureSequence,
    depth_dir: PathLike,
    gt_dir: PathLike,
    evaluation_path: PathLike,
    face_labels: Sequence[int] = FACE_LABELS,
    n_cameras: int = 4,
) -> tuple[dict[str, float], DepthErrorView]:
    """Evaluate a sequence's depth maps; write ``evaluation.json``.

    Returns:
        the figures written, and the error view of the middle frame in ``n_cameras`` cameras
        spread over the rig (for :func:`talkhead.qc.pages.depth_error_page`).
    """
    gt = GroundTruth.open(gt_dir)
    masks = face_masks_of(seq, face_labels)
    metrics = evaluate_depth(seq.frame_ids, depth_dir, gt, masks)
    log.info("depth against ground truth: %s", metrics)
    save_metrics(evaluation_path, metrics)
    t = seq.frame_ids[seq.n_frames // 2]
    serials = _evenly(list(load_depth_frame(depth_frame_path(depth_dir, t)).serials), n_cameras)
    return metrics, depth_error_view(t, serials, depth_dir, gt, masks)


def run_evaluate_points(
    points_path: PathLike, gt_dir: PathLike, evaluation_path: PathLike
) -> dict[str, float]:
    """Evaluate a sequence's ``points.npz`` (points to the true mesh, 3D landmark error); write
    ``evaluation.json``."""
    from ..points.io import load_points

    gt = GroundTruth.open(gt_dir)
    metrics = points_gt_metrics(load_points(points_path), gt)
    log.info("points against ground truth: %s", metrics)
    save_metrics(evaluation_path, metrics)
    return metrics


def _evenly(items: Sequence[str], k: int) -> list[str]:
    if k >= len(items):
        return list(items)
    idx = np.unique(np.round(np.linspace(0, len(items) - 1, k)).astype(int))
    return [items[i] for i in idx]


@dataclass(frozen=True)
class FlameEvaluation:
    """What :func:`run_evaluate_flame` measured, for the figures.

    Attributes:
        figures: evaluation.json's figures.
        frames: (T,) frame ids.
        per_frame: (T,) arrays in mm (``face_mm``, ``lips_mm``, ``landmarks_mm``).
        expressions: label -> (T, E) codes: the fit, the fit without smoothing when given,
            and the truth.
    """

    figures: dict[str, float]
    frames: np.ndarray
    per_frame: dict[str, np.ndarray]
    expressions: dict[str, np.ndarray]


def run_evaluate_flame(
    flame_path: PathLike,
    model_files: dict[str, PathLike],
    gt_dir: PathLike,
    evaluation_path: PathLike,
    unsmoothed_path: PathLike | None = None,
) -> FlameEvaluation:
    """Evaluate a sequence's FLAME fit (``flame.npz``) against the true meshes; write
    ``evaluation.json`` (:func:`talkhead.evaluation.flame.evaluate_flame_fit`), with the
    figures of the fit without temporal smoothing (``unsmoothed_*``) when its ``flame.npz``
    is given."""
    from ..flame.layer import FlameLayer
    from ..flame.model import load_flame_model
    from ..flame.params import load_flame_params
    from .flame import evaluate_flame_fit, truth_rows

    gt = GroundTruth.open(gt_dir)
    model = load_flame_model(
        model_files["model"], model_files.get("landmarks"), model_files.get("masks")
    )
    layer = FlameLayer(model)
    params = load_flame_params(flame_path)
    fitted = layer.pose_params(params)
    vertices, landmarks = fitted.vertices.numpy(), fitted.landmarks.numpy()
    figures, per_frame = evaluate_flame_fit(vertices, landmarks, params, gt, model.masks or {})
    frames = params["frames"]
    true_params = gt.flame_params()
    expressions = {"fit": params["expression"]}
    if unsmoothed_path is not None:
        plain = load_flame_params(unsmoothed_path)
        other = layer.pose_params(plain)
        more, _ = evaluate_flame_fit(
            other.vertices.numpy(), other.landmarks.numpy(), plain, gt, model.masks or {}
        )
        for key in ("face_vertex_error_mm", "lips_vertex_error_mm", "jitter_mae", "jitter_rmse"):
            figures[f"unsmoothed_{key}"] = more[key]
        expressions["fit without smoothing"] = plain["expression"]
    rows = truth_rows(true_params["frames"], frames, str(gt.path))
    expressions["ground truth"] = np.asarray(true_params["expression"])[rows]
    log.info("FLAME fit against ground truth: %s", figures)
    save_metrics(evaluation_path, figures)
    return FlameEvaluation(figures, frames, per_frame, expressions)
