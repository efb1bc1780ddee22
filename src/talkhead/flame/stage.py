"""The FLAME stages of one sequence: ``align_flame`` (similarity of the template to the 3D
landmarks) and ``fit_flame`` (whole-sequence fit), reading ``points.npz`` and writing
``results/flame/<subject>/<sequence>/``:

- ``alignment.json`` (:func:`talkhead.flame.align.save_alignment`);
- ``flame.npz`` (benchmark/VHAP keys, :mod:`talkhead.flame.params`, plus ``fps``);
- ``template.ply`` (the fitted identity, neutral, in model space) and
  ``flame_meshes/frame_<t:05d>.ply`` (world metres);
- ``metrics.json`` (residuals in mm, expression jitter), ``timing.json`` (time per frame),
  ``fit_log.csv`` (the loss terms on the logging schedule) and ``frame_residuals.csv``.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import from_mapping
from ..errors import FittingError
from ..fitting.temporal import expression_jitter
from ..floors import QCConfig, check_floors, enforce_floors
from ..io import PathLike, atomic_path, load_json, save_metrics
from ..points.io import load_points
from .align import AlignConfig, align_template, save_alignment
from .config import FitFlameConfig
from .fit import FlameFit, FlameObservations, fit_flame_sequence
from .layer import FlameLayer
from .meshes import save_frame_meshes, save_mesh
from .model import FlameModel, load_flame_model
from .params import save_flame_params

__all__ = [
    "load_alignment_init",
    "observations_from_points",
    "run_align_stage",
    "run_fit_stage",
    "select_device",
]

log = logging.getLogger(__name__)


def select_device(gpus: int) -> str:
    """``"cuda"`` when the job was given a GPU (the rule's ``gpu`` resource) and torch sees
    one, else ``"cpu"`` (logged when a GPU was asked for but is not usable)."""
    if gpus > 0:
        if torch.cuda.is_available():
            return "cuda"
        log.warning("the job asked for %d GPU(s) but torch sees none: fitting on the CPU", gpus)
    return "cpu"


def observations_from_points(data: Mapping[str, np.ndarray]) -> FlameObservations:
    """Split a ``points.npz`` (:func:`talkhead.points.io.load_points`) into per-frame clouds."""
    off = np.asarray(data["frame_offsets"])
    T = len(off) - 1
    frames = np.asarray(data.get("frames", np.arange(T)), dtype=np.int64)
    return FlameObservations(
        landmarks=np.asarray(data["landmarks3d"], dtype=np.float64),
        valid=np.asarray(data["landmarks3d_valid"], dtype=bool),
        points=[data["points"][off[t] : off[t + 1]] for t in range(T)],
        normals=[data["normals"][off[t] : off[t + 1]] for t in range(T)],
        frames=frames,
    )


def _model(model_files: Mapping[str, PathLike]) -> FlameModel:
    return load_flame_model(
        model_files["model"], model_files.get("landmarks"), model_files.get("masks")
    )


def run_align_stage(
    points_path: PathLike,
    model_files: Mapping[str, PathLike],
    out_path: PathLike,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Align the model's template landmarks to a sequence's 3D landmarks (DAG step 5).

    Args:
        points_path: the sequence's ``points.npz``.
        model_files: ``model``, ``landmarks``, ``masks`` paths.
        out_path: ``alignment.json``.
        settings: the ``align_flame`` config section.

    Returns:
        The alignment's figures (also logged).

    Raises:
        FittingError: no valid landmark, too few inliers, or landmarks in other units.
    """
    cfg = from_mapping(AlignConfig, settings, "align_flame")
    model = _model(model_files)
    layer = FlameLayer(model)
    with torch.no_grad():
        template = layer().landmarks[0].double().numpy()
    obs = observations_from_points(load_points(points_path))
    alignment = align_template(
        template, obs.landmarks, obs.valid, cfg, frames=obs.frames, source=str(points_path)
    )
    root = model.rest_joints()[0]
    save_alignment(out_path, alignment, root)
    figures = load_json(out_path)
    log.info(
        "alignment: scale %.4f, %d/%d landmark pairs inliers, residual %.2f mm",
        float(np.ravel(figures["scale"])[0]),
        figures["n_inliers"],
        figures["n_pairs"],
        figures["residual_mean_mm"],
    )
    return figures


def load_alignment_init(path: PathLike) -> dict[str, np.ndarray]:
    """The FLAME-convention rigid start of a fit from ``alignment.json``: ``scale`` (1,),
    ``rotation`` (3,), ``translation`` (3,)."""
    data = load_json(path)
    try:
        return {
            "scale": np.asarray([data["scale"]], dtype=np.float64).reshape(1),
            "rotation": np.asarray(data["rotation"], dtype=np.float64).reshape(3),
            "translation": np.asarray(data["translation"], dtype=np.float64).reshape(3),
        }
    except (KeyError, ValueError) as exc:
        raise FittingError(f"{path}: not an alignment file ({exc})") from None


def _save_rows(path: PathLike, header: list[str], rows: list[list[Any]]) -> None:
    with atomic_path(path) as tmp, Path(tmp).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def fit_metrics(fit: FlameFit) -> dict[str, Any]:
    """The fit's own figures (metrics.json): residuals in mm, jitter, final loss terms. The
    same inputs give the same figures; wall-clock time goes to timing.json."""
    res = fit.frame_residuals
    T = len(fit.params["frames"])
    jitter = expression_jitter(fit.params["expression"], fit.params["frames"])

    def mean(x: np.ndarray) -> float | None:
        x = x[np.isfinite(x)]
        return float(x.mean()) if x.size else None

    last = fit.history.last()
    return {
        "frames": T,
        "landmark_residual_mm": mean(res["landmark_mm"]),
        "plane_residual_mm": mean(res["plane_mm"]),
        "point_residual_mm": mean(res["point_mm"]),
        "matched_fraction": mean(res["matched_fraction"]),
        "jitter_mae": jitter["mae"],
        "jitter_rmse": jitter["rmse"],
        "steps": fit.history.n_steps,
        **{f"loss_{k}": v for k, v in last.items()},
    }


def run_fit_stage(
    points_path: PathLike,
    alignment_path: PathLike,
    model_files: Mapping[str, PathLike],
    out_dir: PathLike,
    settings: Mapping[str, Any] | None = None,
    fps: float | None = None,
    device: str = "cpu",
    workers: int = 1,
    overrides: Mapping[str, Any] | None = None,
    qc: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit FLAME to one sequence and write its outputs (module docstring) into ``out_dir``.

    Args:
        points_path: ``points.npz``.
        alignment_path: ``alignment.json`` of the sequence.
        model_files: ``model``, ``landmarks``, ``masks``.
        out_dir: the sequence's ``results/flame/<subject>/<sequence>`` folder (or an
            ablation's subfolder).
        settings: the ``fit_flame`` config section.
        fps: the sequence's frame rate (stored in flame.npz).
        device: torch device.
        workers: threads of the nearest-neighbour queries.
        overrides: settings replacing those of ``settings`` (e.g. ``{"lambda_smooth": 0}``).
        qc: the ``qc`` section (:class:`talkhead.floors.QCConfig`): the floor under the
            fraction of face-region vertices matched to the points.

    Returns:
        metrics.json's figures.

    Raises:
        FittingError: see :func:`~talkhead.flame.fit.fit_flame_sequence`; nothing is written
            then.
        StageOutputError: the matched fraction is below its floor (``qc.on_breach: fail``);
            nothing is written then.
    """
    cfg = from_mapping(FitFlameConfig, {**(settings or {}), **(overrides or {})}, "fit_flame")
    out = Path(out_dir)
    model = _model(model_files)
    layer = FlameLayer(model)
    obs = observations_from_points(load_points(points_path))
    init = load_alignment_init(alignment_path)
    log.info(
        "fitting %d frames (ids %d..%d), %d steps on %s",
        obs.n_frames,
        int(obs.frames[0]),
        int(obs.frames[-1]),
        cfg.steps,
        device,
    )
    start = time.perf_counter()
    try:
        fit = fit_flame_sequence(layer, obs, init, model.masks, cfg, device, workers)
    except FittingError as exc:
        raise FittingError(f"{points_path}: {exc}") from None
    seconds = time.perf_counter() - start
    metrics = fit_metrics(fit)
    metrics["frames_without_points"] = int(sum(len(p) == 0 for p in obs.points))
    metrics["frames_without_landmarks"] = int((~obs.valid.any(axis=1)).sum())
    floors = from_mapping(QCConfig, qc, "qc")
    enforce_floors(check_floors(metrics, floors), floors, f"FLAME fit of {points_path}")
    params = dict(fit.params)
    if fps is not None:
        params["fps"] = np.float32(fps)
    save_flame_params(out / "flame.npz", params)
    with torch.no_grad():
        neutral = layer(shape=torch.as_tensor(fit.params["shape"])).vertices[0].numpy()
    save_mesh(out / "template.ply", neutral, model.faces)
    save_frame_meshes(out / "flame_meshes", fit.vertices, model.faces, fit.params["frames"])
    fit.history.save_csv(out / "fit_log.csv")
    res = fit.frame_residuals
    _save_rows(
        out / "frame_residuals.csv",
        ["frame", *res],
        [[int(t), *(f"{res[k][i]:.6g}" for k in res)] for i, t in enumerate(fit.params["frames"])],
    )
    save_metrics(out / "metrics.json", metrics)
    timing = {
        "seconds": seconds,
        "seconds_per_frame": seconds / max(obs.n_frames, 1),
        "seconds_per_step": seconds / max(cfg.steps, 1),
        "device": device,
        "torch_threads": torch.get_num_threads(),
    }
    save_metrics(out / "timing.json", timing)
    log.info(
        "fit: landmarks %.3f mm, point-to-plane %.3f mm, %.2f s per frame on %s",
        metrics["landmark_residual_mm"] or float("nan"),
        metrics["plane_residual_mm"] or float("nan"),
        timing["seconds_per_frame"],
        device,
    )
    return metrics
