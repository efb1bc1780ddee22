"""The evaluate rules of one sequence: a stage's output against the capture's ground truth,
written as a flat ``evaluation.json`` beside the stage's ``metrics.json``.

These runners are the only place that opens ground truth for a workflow rule; production
stages never see it. Pictures of the errors are drawn by :mod:`talkhead.qc` from what these
functions return.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..capture.masks import FACE_LABELS, facial_masks
from ..capture.sequence import CaptureSequence
from ..depth.io import depth_frame_path, load_depth_frame
from ..errors import EvaluationError
from ..io import PathLike, atomic_path, save_metrics
from ..nphm.decoder import identities_by_subject
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


NPHM_MESHES_DIR = "nphm_meshes"
"""The NPHM output folder's meshes: ``nphm_meshes/frame_<t:05d>.ply`` (world metres)."""
NPHM_CODES_FILE = "codes.npz"
"""The NPHM output folder's codes: ``frames`` (T,), ``expression`` (T, E)."""
NPHM_FRAME_COLUMNS = (
    "chamfer_l1_mm",
    "accuracy_mm",
    "completeness_mm",
    "fscore_1mm",
    "fscore_5mm",
    "normal_consistency",
)
"""Per-frame columns of ``evaluation_frames.csv`` (after ``frame``)."""
NPHM_UNSMOOTHED_KEYS = (
    "chamfer_l1_mm",
    "accuracy_mm",
    "completeness_mm",
    "normal_consistency",
    "fscore_1mm",
    "fscore_5mm",
    "jitter_mae",
    "jitter_rmse",
)
"""Figures of the fit without the temporal loss written as ``unsmoothed_<key>``."""


@dataclass(frozen=True)
class NphmEvaluation:
    """What :func:`run_evaluate_nphm` measured, for the figures.

    Attributes:
        figures: evaluation.json's figures.
        frames: (T,) frame ids.
        per_frame: (T,) arrays (:func:`talkhead.evaluation.nphm.evaluate_nphm_fit`), and the
            same prefixed ``unsmoothed_`` for the fit without the temporal loss when given.
        expressions: label -> (T, E) codes: the fit, and the fit without smoothing when given.
    """

    figures: dict[str, float]
    frames: np.ndarray
    per_frame: dict[str, np.ndarray]
    expressions: dict[str, np.ndarray]


class _FrameMeshes(Sequence[tuple[np.ndarray, np.ndarray]]):
    """The meshes of an NPHM folder, read one at a time (trimesh, not processed)."""

    def __init__(self, folder: Path, frames: np.ndarray) -> None:
        self.paths = [folder / f"frame_{int(t):05d}.ply" for t in frames]
        missing = [str(p) for p in self.paths if not p.is_file()]
        if missing:
            raise EvaluationError(
                f"{folder}: {len(missing)} frame mesh(es) missing, first {missing[0]}"
            )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):  # type: ignore[override]
        import trimesh

        path = self.paths[i]
        try:
            mesh = trimesh.load(str(path), process=False, force="mesh")
        except (OSError, ValueError) as exc:
            raise EvaluationError(f"{path}: unreadable mesh ({exc})") from None
        return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, np.int64)


def _nphm_codes(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames (T,), expression codes (T, E) and the frames with a mesh (``mesh_frames``,
    every frame when the file does not say; ``fit_nphm.mesh_every``)."""
    from ..io import load_npz

    path = folder / NPHM_CODES_FILE
    if not path.is_file():
        raise EvaluationError(f"{path}: NPHM codes are missing")
    try:
        data = load_npz(path)
        frames = np.asarray(data["frames"]).reshape(-1)
        expression = np.asarray(data["expression"], dtype=np.float64)
        mesh_frames = np.asarray(data["mesh_frames"] if "mesh_frames" in data else frames)
    except (OSError, ValueError, KeyError) as exc:
        raise EvaluationError(f"{path}: not an NPHM codes file ({exc})") from None
    if expression.ndim != 2 or len(expression) != len(frames):
        raise EvaluationError(
            f"{path}: expression has shape {expression.shape} for {len(frames)} frames, "
            "expected (T, E)"
        )
    if len(mesh_frames) == 0 or not np.all(np.isin(mesh_frames, frames)):
        raise EvaluationError(
            f"{path}: mesh_frames {mesh_frames.tolist()[:5]} are not a non-empty subset of the "
            "fitted frames"
        )
    return frames, expression, mesh_frames.reshape(-1)


def _evaluate_nphm_folder(
    folder: Path, gt: GroundTruth, masks: dict[str, np.ndarray], n_samples: int, seed: int
) -> tuple[np.ndarray, np.ndarray, dict[str, float], dict[str, np.ndarray]]:
    from .nphm import evaluate_nphm_fit

    frames, codes, mesh_frames = _nphm_codes(folder)
    meshes = _FrameMeshes(folder / NPHM_MESHES_DIR, mesh_frames)
    figures, per_frame = evaluate_nphm_fit(
        meshes, mesh_frames, gt, masks, codes, n_samples, seed, code_frames=frames
    )
    return mesh_frames, codes, figures, per_frame


def run_evaluate_nphm(
    nphm_dir: PathLike,
    masks_path: PathLike,
    gt_dir: PathLike,
    evaluation_path: PathLike,
    frames_path: PathLike | None = None,
    unsmoothed_dir: PathLike | None = None,
    n_samples: int = 50_000,
    seed: int = 0,
) -> NphmEvaluation:
    """Evaluate a sequence's NPHM fit against the true meshes; write ``evaluation.json`` and
    ``evaluation_frames.csv``.

    Args:
        nphm_dir: the fit's folder (``nphm_meshes/frame_<t:05d>.ply``, ``codes.npz``).
        masks_path: the head model's region masks (:func:`talkhead.flame.model.load_region_masks`;
            ``face`` is used).
        gt_dir: the sequence's ground truth.
        evaluation_path: ``evaluation.json``: the figures of
            :func:`talkhead.evaluation.nphm.evaluate_nphm_fit`, and ``unsmoothed_<key>``
            (:data:`NPHM_UNSMOOTHED_KEYS`) for the fit without the temporal loss, the same
            again under ``without_temporal``.
        frames_path: the per-frame table (default ``evaluation_frames.csv`` beside
            ``evaluation_path``): ``frame``, :data:`NPHM_FRAME_COLUMNS`, and
            ``unsmoothed_chamfer_l1_mm`` when there is an unsmoothed fit.
        unsmoothed_dir: the fit without the temporal loss (same layout, same frames), or None.
        n_samples, seed: surface samples per frame and direction, and their seed.

    Raises:
        EvaluationError: missing or malformed files, frames without ground truth, fits whose
            frames differ; ModelFileError: unreadable masks.
    """
    from ..flame.model import load_region_masks

    gt = GroundTruth.open(gt_dir)
    masks = load_region_masks(masks_path)
    nphm_dir = Path(nphm_dir)
    frames, codes, figures, per_frame = _evaluate_nphm_folder(nphm_dir, gt, masks, n_samples, seed)
    expressions = {"fit": codes}
    if unsmoothed_dir is not None:
        u_frames, u_codes, u_figures, u_per_frame = _evaluate_nphm_folder(
            Path(unsmoothed_dir), gt, masks, n_samples, seed
        )
        if not np.array_equal(u_frames, frames):
            raise EvaluationError(
                f"{unsmoothed_dir}: the fit without the temporal loss has frames "
                f"{u_frames.tolist()[:5]}..., the fit {frames.tolist()[:5]}...: they must match"
            )
        for key in NPHM_UNSMOOTHED_KEYS:
            figures[f"unsmoothed_{key}"] = u_figures[key]
        per_frame.update({f"unsmoothed_{k}": v for k, v in u_per_frame.items()})
        expressions["fit without smoothing"] = u_codes
    log.info("NPHM fit against ground truth: %s", figures)
    columns = list(NPHM_FRAME_COLUMNS)
    if unsmoothed_dir is not None:
        columns.append("unsmoothed_chamfer_l1_mm")
    if frames_path is None:
        frames_path = Path(evaluation_path).with_name("evaluation_frames.csv")
    with atomic_path(frames_path, suffix=".csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["frame", *columns])
        for i, t in enumerate(frames):
            writer.writerow([int(t), *(f"{float(per_frame[c][i]):.6g}" for c in columns)])
    written: dict[str, object] = dict(figures)
    if unsmoothed_dir is not None:
        written["without_temporal"] = {k: figures[f"unsmoothed_{k}"] for k in NPHM_UNSMOOTHED_KEYS}
    save_metrics(evaluation_path, written)
    return NphmEvaluation(figures, frames, per_frame, expressions)


def run_evaluate_model(
    checkpoint: PathLike,
    dataset_root: PathLike,
    evaluation_path: PathLike,
    name: str,
    evaluate: dict | None = None,
    flame_model: PathLike | None = None,
    flame_landmarks: PathLike | None = None,
    flame_masks: PathLike | None = None,
    variant: str | None = None,
    nphm_model: PathLike | None = None,
    nphm_identities: Sequence[PathLike] = (),
    nphm_margin: float = 0.08,
) -> dict:
    """Evaluate a trained model on the dataset's test split
    (:func:`talkhead.evaluation.models.evaluate_checkpoint`) and write ``evaluation.json``.

    Args:
        checkpoint: ``results/models/<name>/model.ckpt``; dataset_root: ``results/dataset``.
        evaluation_path: the JSON to write (atomically).
        name: the model's name (``facetalk``, ``facetalk_film``, ...).
        evaluate: the ``models.evaluate`` config section (samples, av_max_lag,
            syncnet_weights, seed, split, nphm_every, nphm_resolution).
        flame_model, flame_landmarks, flame_masks: the head model files.
        variant: the timestep injection of a Table-3 variant, or None.
        nphm_model, nphm_identities: models of NPHM codes: ``resources/nphm/model.pt`` and the
            subjects' ``results/nphm/<subject>/identity.npz`` (the subject is the folder's
            name) for the lip surface error; nphm_margin: ``fit_nphm.mesh_margin``.

    Raises:
        as :func:`talkhead.evaluation.models.evaluate_checkpoint`.
    """
    from ..config import from_mapping
    from ..io import save_json
    from ..training.config import EvaluateSection
    from .models import evaluate_checkpoint

    cfg = from_mapping(EvaluateSection, evaluate, "models.evaluate")
    result = evaluate_checkpoint(
        checkpoint,
        dataset_root,
        flame_model=flame_model,
        flame_landmarks=flame_landmarks,
        flame_masks=flame_masks,
        samples=cfg.samples,
        max_lag=cfg.av_max_lag,
        syncnet_weights=cfg.syncnet_weights or None,
        seed=cfg.seed,
        split=cfg.split,
        name=name,
        variant=variant,
        nphm_model=nphm_model or None,
        nphm_identities=identities_by_subject(nphm_identities),
        nphm_every=cfg.nphm_every,
        nphm_resolution=cfg.nphm_resolution,
        nphm_margin=nphm_margin,
    )
    log.info("%s on the %s split: %s", name, result["split"], result["metrics"])
    save_json(evaluation_path, result)
    return result


def relabel_model_evaluation(
    source: PathLike, evaluation_path: PathLike, name: str, label: str, variant: str | None
) -> dict:
    """Write a model's ``evaluation.json`` again under another name: the Table-3 variant whose
    injection and steps are FaceTalk's own is the same checkpoint, evaluated with the same
    seed on the same data, so its figures are FaceTalk's; only ``model``, ``label`` and
    ``variant`` change.

    Raises:
        EvaluationError: ``source`` is missing or not an evaluation.json.
    """
    import json

    from ..io import save_json

    try:
        result = json.loads(Path(source).read_text())
        result["metrics"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EvaluationError(f"{source}: not a model evaluation.json ({exc})") from None
    result.update({"model": name, "label": label, "variant": variant})
    save_json(evaluation_path, result)
    return result
