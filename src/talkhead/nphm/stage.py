"""The head-model stages: ``train_nphm`` (the model, trained on the head model's family, into
``resources/nphm/``), ``fit_nphm_identity`` (one identity per subject) and ``fit_nphm`` (an
expression code per frame of a sequence; meshes by marching cubes).

Outputs of ``train_nphm`` (``resources/nphm/``): ``model.pt`` (:func:`save_model`),
``training_log.csv``, ``heldout.json`` (chamfer-L1, normal consistency and F-score of
held-out identities and expressions, fitted from their surface samples), ``metrics.json``;
the running ``checkpoint.pt`` lives in ``resources/nphm/training/`` (a rerun after an
interruption resumes from it).

Outputs of ``fit_nphm`` (``results/nphm/<subject>/<sequence>/``, FaceTalk's layout):
``nphm_expressions/frame_<t:05d>.npz`` (``expression`` (E,)), ``nphm_meshes/frame_<t:05d>.ply``
(world metres), ``codes.npz`` (``frames`` (T,), ``expression`` (T, E), ``identity_global``,
``identity_local``), ``metrics.json`` (SDF residuals, jitter of the codes), ``timing.json``,
``fit_log.csv`` and ``frame_residuals.csv``.
"""

from __future__ import annotations

import csv
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import from_mapping
from ..errors import FittingError
from ..fitting.temporal import expression_jitter
from ..flame.layer import FlameLayer
from ..flame.meshes import frame_mesh_name, save_mesh
from ..flame.model import FlameModel, load_flame_model
from ..flame.params import load_flame_params
from ..geometry.mesh_distance import mesh_components, point_to_mesh_distance
from ..geometry.surface import sample_surface, surface_metrics
from ..io import PathLike, atomic_path, save_metrics
from ..points.io import load_points
from .config import FitNphmConfig, NphmConfig
from .data import draw_family
from .fit import NphmFit, fit_codes, without_temporal
from .marching import extract_mesh
from .model import ModelFrame, NeuralHeadModel
from .observations import HeadPoses, check_in_frame, head_poses, to_rest_frame
from .train import build_model, load_model, save_model, train_head_model

__all__ = [
    "decode_mesh",
    "run_fit_identity_stage",
    "run_fit_stage",
    "run_train_stage",
]

log = logging.getLogger(__name__)

MM = 1000.0


def _head_model(model_files: Mapping[str, PathLike]) -> FlameModel:
    return load_flame_model(
        model_files["model"], model_files.get("landmarks"), model_files.get("masks")
    )


def _face(model: FlameModel) -> np.ndarray | None:
    return None if model.masks is None else model.masks.get("face")


def mesh_bounds(
    frame: ModelFrame, template: np.ndarray, margin: float
) -> tuple[np.ndarray, np.ndarray]:
    """Marching-cubes bounds (model units): the template's box grown by ``margin`` of its size."""
    u = frame.to_model(template)
    lo, hi = u.min(0), u.max(0)
    pad = (hi - lo) * margin
    return lo - pad, hi + pad


def decode_mesh(
    model: NeuralHeadModel,
    expression: np.ndarray,
    identity_global: np.ndarray,
    identity_local: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray],
    resolution: int,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """The surface of one frame by marching cubes, its largest connected part
    (:func:`largest_component`): vertices (V, 3) model units, faces (F, 3).

    ``resolution`` samples per axis of the bounds. Coarse-to-fine: only cells near the
    surface are sampled finely (:func:`~talkhead.nphm.marching.extract_mesh`).
    """
    e = torch.as_tensor(expression, dtype=torch.float32, device=device)[None]
    zg = torch.as_tensor(identity_global, dtype=torch.float32, device=device)[None]
    zl = torch.as_tensor(identity_local, dtype=torch.float32, device=device)[None]

    def sdf(u: torch.Tensor) -> torch.Tensor:
        return model(u.to(device)[None], e, zg, zl)[0].cpu()

    res = extract_mesh(sdf, bounds[0], bounds[1], resolution, coarse=max(resolution // 4, 8))
    return largest_component(res.vertices, res.faces)


def largest_component(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The largest connected part of a mesh (most triangles), its vertices renumbered:
    a learned field leaves small floating pieces of surface that no head has.

    Args:
        vertices: (V, 3); faces: (F, 3) int.

    Returns:
        vertices (V', 3) and faces (F', 3) of the part.
    """
    parts = mesh_components(faces)
    if len(parts) <= 1:
        return vertices, faces
    kept = np.asarray(faces)[parts[0]]
    used, inverse = np.unique(kept, return_inverse=True)
    return np.asarray(vertices)[used], inverse.reshape(-1, 3)


# -- training ----------------------------------------------------------------------------


def _heldout(
    model: NeuralHeadModel,
    frame: ModelFrame,
    layer: FlameLayer,
    cfg: NphmConfig,
    fit_cfg: FitNphmConfig,
    face_faces: np.ndarray,
    device: str,
) -> dict[str, Any]:
    """Fit held-out identities/expressions from their surface samples; decoded meshes against
    the true ones (millimetres)."""
    t = cfg.train
    rng = np.random.default_rng(t.seed + 1000)
    fam = draw_family(layer, frame, t.heldout_identities, t.heldout_expressions, t, rng)
    template = frame.to_metres(fam.canonical.mean(0))
    bounds = mesh_bounds(frame, template, 0.08)
    rows = []
    for i in range(fam.n_identities):
        pts, nrm = [], []
        for x in range(fam.n_expressions):
            p, n, _ = sample_surface(fam.posed[i, x], fam.faces[face_faces], 3000, rng)
            pts.append(p)
            nrm.append(n)
        fit = fit_codes(
            model,
            frame.extent,
            pts,
            nrm,
            np.arange(fam.n_expressions),
            fit_cfg,
            seed=i,
            device=device,
            desc=f"held-out identity {i}",
        )
        for x in range(fam.n_expressions):
            v, f = decode_mesh(
                model,
                fit.expression[x],
                fit.identity_global,
                fit.identity_local,
                bounds,
                t.mesh_resolution,
                device,
            )
            m = surface_metrics(
                frame.to_metres(v),
                f,
                frame.to_metres(fam.posed[i, x]),
                fam.faces,
                true_region_faces=face_faces,
                seed=x,
            )
            rows.append(m)
    keys = [k for k in rows[0] if isinstance(rows[0][k], float)]
    out = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    return {
        "chamfer_l1_mm": out["chamfer_l1"] * MM,
        "accuracy_mm": out["accuracy"] * MM,
        "completeness_mm": out["completeness"] * MM,
        "normal_consistency": out["normal_consistency"],
        "fscore_1mm": out["fscore_1mm"],
        "fscore_5mm": out["fscore_5mm"],
        "meshes": len(rows),
        "region": "face",
    }


def run_train_stage(
    model_files: Mapping[str, PathLike],
    out_dir: PathLike,
    settings: Mapping[str, Any] | None = None,
    fit_settings: Mapping[str, Any] | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Train the head model on the FLAME-format model's family and measure it on held-out
    identities (module docstring).

    Args:
        model_files: ``model``, ``landmarks``, ``masks`` of the FLAME-format head model.
        out_dir: ``resources/nphm``.
        settings: the ``nphm`` config section.
        fit_settings: the ``fit_nphm`` section (the held-out meshes are fitted as sequences
            are, without the temporal loss).
        device: torch device.

    Returns:
        metrics.json's figures.

    Raises:
        FittingError: training diverged, or a checkpoint of other settings is in the way.
    """
    cfg = from_mapping(NphmConfig, settings, "nphm")
    fit_cfg = without_temporal(from_mapping(FitNphmConfig, fit_settings, "fit_nphm"))
    out = Path(out_dir)
    head = _head_model(model_files)
    layer = FlameLayer(head)
    face = _face(head)
    face_faces = (
        np.all(np.isin(head.faces, face), axis=1)
        if face is not None
        else np.ones(len(head.faces), dtype=bool)
    )
    torch.manual_seed(cfg.train.seed)
    start = time.perf_counter()
    model, frame = build_model(head.v_template, head.faces, face, cfg.model)
    family = draw_family(
        layer,
        frame,
        cfg.train.identities,
        cfg.train.expressions,
        cfg.train,
        np.random.default_rng(cfg.train.seed),
    )
    log.info(
        "training on %d identities x %d expressions (%d anchors), %d steps on %s",
        family.n_identities,
        family.n_expressions,
        model.n_anchors,
        cfg.train.steps,
        device,
    )
    ckpt_dir = out / "training"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt = ckpt_dir / "checkpoint.pt"
    settings_file = ckpt_dir / "settings.json"
    current = {"nphm": asdict(cfg), "head_model": str(model_files["model"])}
    if ckpt.exists():
        import json

        try:
            previous = json.loads(settings_file.read_text())
        except (OSError, ValueError):
            previous = None
        if previous != json.loads(json.dumps(current)):
            log.warning("%s: written with other settings; training starts over", ckpt)
            ckpt.unlink()
    save_metrics(settings_file, current)
    _, history = train_head_model(model, family, cfg, ckpt, device)
    train_seconds = time.perf_counter() - start
    history.save_csv(out / "training_log.csv")
    save_model(out / "model.pt", model, frame, extra={"head_model": str(model_files["model"])})
    # Measured on the model as written (and as every fit reads it), so that a resumed training
    # and an uninterrupted one give the same figures to the last bit.
    model, frame = load_model(out / "model.pt", device)
    held = _heldout(model, frame, layer, cfg, fit_cfg, face_faces, device)
    metrics = {
        **{f"heldout_{k}": v for k, v in held.items() if k != "region"},
        "final_losses": history.last(),
        "steps": cfg.train.steps,
        "device": device,
        "parameters": int(sum(p.numel() for p in model.parameters())),
    }
    save_metrics(out / "metrics.json", metrics)
    # Wall-clock figures: they differ on every run, so nothing reads them.
    save_metrics(out / "timing.json", {"train_seconds": train_seconds, "device": device})
    log.info(
        "held-out: chamfer-L1 %.3f mm, normal consistency %.3f, F-score@1mm %.3f, @5mm %.3f",
        held["chamfer_l1_mm"],
        held["normal_consistency"],
        held["fscore_1mm"],
        held["fscore_5mm"],
    )
    return metrics


# -- fitting -----------------------------------------------------------------------------


class _Sequence:
    """A sequence's observed points in the model's units, with the head poses."""

    def __init__(
        self,
        points_path: PathLike,
        params_path: PathLike,
        layer: FlameLayer,
        frame: ModelFrame,
        template: np.ndarray,
        faces: np.ndarray,
    ) -> None:
        data = load_points(points_path)
        off = np.asarray(data["frame_offsets"])
        T = len(off) - 1
        self.frames = np.asarray(data.get("frames", np.arange(T)), dtype=np.int64)
        params = load_flame_params(params_path)
        self.poses: HeadPoses = head_poses(layer, params)
        index = {int(f): i for i, f in enumerate(self.poses.frames)}
        missing = [int(f) for f in self.frames if int(f) not in index]
        if missing:
            raise FittingError(
                f"{params_path}: no FLAME fit for frame(s) {missing[:10]} of {points_path}"
            )
        self.rows = np.asarray([index[int(f)] for f in self.frames])
        pts = [data["points"][off[t] : off[t + 1]] for t in range(T)]
        nrm = [data["normals"][off[t] : off[t + 1]] for t in range(T)]
        rest, rest_n = to_rest_frame(self.poses, self.rows, pts, nrm)
        sample = np.concatenate([p[:: max(len(p) // 200, 1)] for p in rest if len(p)])
        check_in_frame(
            point_to_mesh_distance(sample, template, faces), f"{points_path} with {params_path}"
        )
        self.points = [frame.to_model(p) for p in rest]
        self.normals = rest_n

    def pick(self, rows: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
        return (
            [self.points[i] for i in rows],
            [self.normals[i] for i in rows],
            self.frames[rows],
        )


def _load(model_path: PathLike, model_files: Mapping[str, PathLike], device: str):
    model, frame = load_model(model_path, device)
    head = _head_model(model_files)
    return model, frame, head, FlameLayer(head)


def run_fit_identity_stage(
    sequences: Sequence[tuple[PathLike, PathLike]],
    model_path: PathLike,
    model_files: Mapping[str, PathLike],
    out_path: PathLike,
    settings: Mapping[str, Any] | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Fit one identity to a subject's sequences (``identity_frames`` evenly spaced frames of
    each, expressions free) and write ``identity.npz`` (``identity_global``,
    ``identity_local``, ``sdf_mm``).

    Args:
        sequences: ``(points.npz, flame.npz)`` of each of the subject's sequences.
        model_path: the trained ``model.pt``.
        model_files: the FLAME-format head model's files.
        out_path: ``results/nphm/<subject>/identity.npz``.
        settings: the ``fit_nphm`` section.
        device: torch device.

    Raises:
        FittingError: points and FLAME fit disagree (frame or units), or the fit diverged.
    """
    cfg = from_mapping(FitNphmConfig, settings, "fit_nphm")
    model, frame, head, layer = _load(model_path, model_files, device)
    pts, nrm, frames = [], [], []
    offset = 0
    for points_path, params_path in sequences:
        seq = _Sequence(points_path, params_path, layer, frame, head.v_template, head.faces)
        k = min(cfg.identity_frames, len(seq.frames))
        rows = np.unique(np.linspace(0, len(seq.frames) - 1, k).round().astype(int))
        p, n, _ = seq.pick(rows)
        pts += p
        nrm += n
        # Frames of different sequences are unrelated: the temporal loss is off here.
        frames += list(offset + np.arange(len(rows)))
        offset += len(rows) + 1
    id_cfg = without_temporal(cfg)
    from dataclasses import replace

    id_cfg = replace(id_cfg, steps=cfg.identity_steps)
    fit = fit_codes(
        model,
        frame.extent,
        pts,
        nrm,
        np.asarray(frames),
        id_cfg,
        device=device,
        desc="fit identity",
    )
    with atomic_path(out_path, suffix=".npz") as tmp:
        np.savez(
            tmp,
            identity_global=fit.identity_global,
            identity_local=fit.identity_local,
            sdf_mm=fit.sdf_mm,
        )
    figures = {"sdf_mm": float(fit.sdf_mm.mean()), "frames": len(pts)}
    log.info("identity: mean |SDF| %.3f mm over %d frames", figures["sdf_mm"], len(pts))
    return figures


def _save_rows(path: PathLike, header: list[str], rows: list[list[Any]]) -> None:
    with atomic_path(path) as tmp, Path(tmp).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _publish(partial: Path, final: Path) -> None:
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)


def run_fit_stage(
    points_path: PathLike,
    params_path: PathLike,
    identity_path: PathLike,
    model_path: PathLike,
    model_files: Mapping[str, PathLike],
    out_dir: PathLike,
    settings: Mapping[str, Any] | None = None,
    device: str = "cpu",
    overrides: Mapping[str, Any] | None = None,
    write_meshes: bool = True,
) -> dict[str, Any]:
    """Fit an expression code per frame of one sequence (the subject's identity fixed), decode
    the meshes and write the outputs (module docstring) into ``out_dir``.

    Args:
        points_path: ``points.npz``; params_path: the sequence's ``flame.npz`` (head poses).
        identity_path: the subject's ``identity.npz``.
        model_path: the trained ``model.pt``; model_files: the FLAME-format head model.
        out_dir: ``results/nphm/<subject>/<sequence>`` (or the comparison's subfolder).
        settings: the ``fit_nphm`` section; overrides: replacements of its ``weights``
            (e.g. ``{"temporal": 0}`` for the comparison without the temporal loss).
        device: torch device.
        write_meshes: decode and write ``nphm_meshes/``.

    Returns:
        metrics.json's figures.

    Raises:
        FittingError: points and FLAME fit disagree, or the fit diverged; nothing is written.
    """
    cfg = from_mapping(FitNphmConfig, settings, "fit_nphm")
    if overrides:
        from dataclasses import replace

        cfg = replace(cfg, weights=replace(cfg.weights, **overrides))
    out = Path(out_dir)
    model, frame, head, layer = _load(model_path, model_files, device)
    seq = _Sequence(points_path, params_path, layer, frame, head.v_template, head.faces)
    ident = np.load(identity_path)
    identity = (ident["identity_global"], ident["identity_local"])
    rows = np.arange(len(seq.frames))
    pts, nrm, frames = seq.pick(rows)
    log.info(
        "fitting %d frames, %d steps on %s (temporal weight %g)",
        len(frames),
        cfg.steps,
        device,
        cfg.weights.temporal,
    )
    start = time.perf_counter()
    try:
        fit = fit_codes(
            model,
            frame.extent,
            pts,
            nrm,
            frames,
            cfg,
            device=device,
            identity=identity,
            desc="fit expressions",
        )
    except FittingError as exc:
        raise FittingError(f"{points_path}: {exc}") from None
    fit_seconds = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    mesh_seconds = 0.0
    if write_meshes:
        mesh_seconds = _write_meshes(out, model, frame, head, seq, fit, cfg, device)
    expr_dir = out / "nphm_expressions"
    partial = out / ".nphm_expressions.partial"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir()
    for i, t in enumerate(frames):
        np.savez(partial / f"frame_{int(t):05d}.npz", expression=fit.expression[i])
    _publish(partial, expr_dir)
    with atomic_path(out / "codes.npz", suffix=".npz") as tmp:
        np.savez(
            tmp,
            frames=frames,
            mesh_frames=frames[:: cfg.mesh_every] if write_meshes else frames[:0],
            expression=fit.expression,
            identity_global=fit.identity_global,
            identity_local=fit.identity_local,
        )
    fit.history.save_csv(out / "fit_log.csv")
    _save_rows(
        out / "frame_residuals.csv",
        ["frame", "sdf_mm", "sdf_median_mm"],
        [
            [int(t), f"{fit.sdf_mm[i]:.6g}", f"{fit.sdf_median_mm[i]:.6g}"]
            for i, t in enumerate(frames)
        ],
    )
    jitter = expression_jitter(fit.expression, frames)
    metrics = {
        "sdf_mm": float(fit.sdf_mm.mean()),
        "sdf_median_mm": float(np.median(fit.sdf_median_mm)),
        "sdf_p95_frame_mm": float(np.percentile(fit.sdf_mm, 95)),
        "jitter_mae": jitter["mae"],
        "jitter_rmse": jitter["rmse"],
        "temporal_weight": cfg.weights.temporal,
        "frames": len(frames),
    }
    save_metrics(out / "metrics.json", metrics)
    n = max(len(frames), 1)
    n_meshes = len(range(0, len(frames), cfg.mesh_every)) if write_meshes else 0
    save_metrics(
        out / "timing.json",
        {
            "fit_seconds": fit_seconds,
            "mesh_seconds": mesh_seconds,
            "seconds_per_frame": (fit_seconds + mesh_seconds) / n,
            "fit_seconds_per_frame": fit_seconds / n,
            "mesh_seconds_per_mesh": mesh_seconds / max(n_meshes, 1),
            "meshes": n_meshes,
            "device": device,
            "torch_threads": torch.get_num_threads(),
        },
    )
    log.info(
        "fit: mean |SDF| %.3f mm, jitter MAE %.4g, %.2f s per frame",
        metrics["sdf_mm"],
        metrics["jitter_mae"],
        (fit_seconds + mesh_seconds) / n,
    )
    return metrics


def _write_meshes(
    out: Path,
    model: NeuralHeadModel,
    frame: ModelFrame,
    head: FlameModel,
    seq: _Sequence,
    fit: NphmFit,
    cfg: FitNphmConfig,
    device: str,
) -> float:
    from tqdm.auto import tqdm

    start = time.perf_counter()
    bounds = mesh_bounds(frame, head.v_template, cfg.mesh_margin)
    partial = out / ".nphm_meshes.partial"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    rows = range(0, len(fit.frames), cfg.mesh_every)
    for i in tqdm(rows, desc="marching cubes", disable=None, leave=False):
        v, f = decode_mesh(
            model,
            fit.expression[i],
            fit.identity_global,
            fit.identity_local,
            bounds,
            cfg.mesh_resolution,
            device,
        )
        world = seq.poses.to_world(int(seq.rows[i]), frame.to_metres(v))
        save_mesh(partial / frame_mesh_name(int(fit.frames[i])), world, f)
    _publish(partial, out / "nphm_meshes")
    return time.perf_counter() - start
