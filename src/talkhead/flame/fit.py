"""Whole-sequence FLAME fitting to multi-view landmarks and back-projected points.

FaceTalk supplement, section D "Flame Fitting", eqs. 3-13: F = [s, R, t, shape, expression]
(and jaw, neck, eyes), shape shared by the sequence and the rest per frame, initialised from
the similarity alignment with zero shape and expression, optimised with Adam over the whole
sequence against

    L = λ_lmk L_lmk + λ_geo (0.1 L_point + 0.9 L_plane) + λ_reg L_reg + λ_smooth L_smooth.

The optimiser loop, schedules, correspondences and loss terms are :mod:`talkhead.fitting`'s;
this module holds what is FLAME-specific: the parameters, the landmark regions of iBUG-68,
and which vertices are matched to the points. Landmark and geometric distances enter the
loss in millimetres (so the lambdas are of order one); results are reported in millimetres.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..errors import FittingError
from ..fitting.correspondences import Correspondences, PointTargets, vertex_normals
from ..fitting.loop import FitHistory, ParamGroup, optimise
from ..fitting.losses import (
    TWO_PI,
    landmark_l1,
    mean_norm,
    point_to_plane,
    point_to_point,
    temporal_difference,
)
from ..fitting.temporal import frame_spacing
from .config import FitFlameConfig, LandmarkRegionWeights
from .layer import FlameLayer
from .region import FlameRegion

__all__ = [
    "IBUG68_REGIONS",
    "FlameFit",
    "FlameObservations",
    "fit_flame_sequence",
    "landmark_weights",
    "region_vertices",
]

log = logging.getLogger(__name__)

MM = 1000.0

#: iBUG-68 landmark regions (0-based index ranges), as in the 300-W annotation.
IBUG68_REGIONS: dict[str, range] = {
    "jaw_line": range(0, 17),
    "brows": range(17, 27),
    "nose": range(27, 36),
    "eyes": range(36, 48),
    "mouth": range(48, 68),
}


def landmark_weights(n_landmarks: int, weights: LandmarkRegionWeights) -> np.ndarray:
    """Per-landmark weights (L,) from the region weights of iBUG-68.

    Raises:
        FittingError: the embedding does not have 68 landmarks.
    """
    if n_landmarks != 68:
        raise FittingError(
            f"the head model has {n_landmarks} landmarks; the landmark loss needs the 68 of "
            "iBUG-68 (flame.landmark_embedding)"
        )
    out = np.ones(68)
    for name, idx in IBUG68_REGIONS.items():
        out[list(idx)] = getattr(weights, name)
    return out


def region_vertices(masks: Mapping[str, np.ndarray] | None, regions: Sequence[str]) -> np.ndarray:
    """Sorted unique vertex indices of the union of ``regions`` of the model's masks.

    Raises:
        FittingError: the model has no masks or lacks a region (naming the ones it has).
    """
    if not masks:
        raise FittingError(
            "the head model has no region masks (flame.masks): L_geo needs its face region"
        )
    missing = [r for r in regions if r not in masks]
    if missing:
        raise FittingError(
            f"fit_flame.correspondences.regions: {missing} not among the model's masks "
            f"{sorted(masks)}"
        )
    return np.unique(np.concatenate([np.asarray(masks[r], dtype=np.int64) for r in regions]))


@dataclass(frozen=True)
class FlameObservations:
    """What a sequence offers the fit.

    Attributes:
        landmarks: (T, L, 3) fused 3D landmarks (metres; anything where invalid).
        valid: (T, L) bool.
        points: T arrays (P_t, 3) back-projected points (metres); a frame may be empty.
        normals: T arrays (P_t, 3) their unit normals.
        frames: (T,) int frame ids, strictly increasing (gaps allowed).
    """

    landmarks: np.ndarray
    valid: np.ndarray
    points: Sequence[np.ndarray]
    normals: Sequence[np.ndarray]
    frames: np.ndarray

    @property
    def n_frames(self) -> int:
        return int(self.landmarks.shape[0])


@dataclass
class FlameFit:
    """Result of :func:`fit_flame_sequence`.

    Attributes:
        params: FLAME parameters with the benchmark/VHAP keys (``shape`` (S,),
            ``expression`` (T, E), ``rotation``, ``translation``, ``jaw``, ``neck`` (T, 3),
            ``eyes`` (T, 6), ``scale`` (T, 1), ``frames`` (T,)).
        vertices: (T, V, 3) fitted world vertices (metres).
        landmarks: (T, L, 3) fitted world landmarks.
        history: the loss terms on the logging schedule.
        frame_residuals: per frame (T,) arrays, millimetres: ``landmark_mm`` (mean distance
            to the valid observed landmarks; NaN without any), ``plane_mm`` and ``point_mm``
            (mean over accepted correspondences; NaN without any), and ``matched_fraction``.
    """

    params: dict[str, np.ndarray]
    vertices: np.ndarray
    landmarks: np.ndarray
    history: FitHistory
    frame_residuals: dict[str, np.ndarray]


def _check_observations(obs: FlameObservations, n_landmarks: int) -> None:
    T = obs.n_frames
    if T == 0:
        raise FittingError("the sequence has no frames")
    if obs.landmarks.shape != (T, n_landmarks, 3) or obs.valid.shape != (T, n_landmarks):
        raise FittingError(
            f"landmarks {obs.landmarks.shape} / valid {obs.valid.shape} do not match "
            f"({T}, {n_landmarks}, 3) / ({T}, {n_landmarks})"
        )
    if len(obs.points) != T or len(obs.normals) != T:
        raise FittingError(f"{len(obs.points)} point clouds for {T} frames")
    if not np.isfinite(obs.landmarks[obs.valid]).all():
        raise FittingError("valid 3D landmarks contain NaN or infinite values")
    if not obs.valid.any():
        raise FittingError(
            "no valid 3D landmark in any frame: the 2D landmarks were not lifted (check the "
            "capture's landmarks and backproject.landmark_min_views)"
        )


def _per_frame_residuals(
    layer_out_vertices: np.ndarray,
    landmarks: np.ndarray,
    obs: FlameObservations,
    corr: Correspondences,
    verts_idx: np.ndarray,
) -> dict[str, np.ndarray]:
    T = obs.n_frames
    d_lmk = np.linalg.norm(landmarks - obs.landmarks, axis=-1)  # (T, L)
    n_valid = obs.valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        lmk = np.where(n_valid > 0, (d_lmk * obs.valid).sum(1) / np.maximum(n_valid, 1), np.nan)
        v = layer_out_vertices[:, verts_idx]
        diff = v - corr.points
        plane = np.abs((diff * corr.normals).sum(-1))
        point = np.linalg.norm(diff, axis=-1)
        n_match = corr.valid.sum(1)
        plane_m = np.where(
            n_match > 0, (plane * corr.valid).sum(1) / np.maximum(n_match, 1), np.nan
        )
        point_m = np.where(
            n_match > 0, (point * corr.valid).sum(1) / np.maximum(n_match, 1), np.nan
        )
    return {
        "landmark_mm": lmk * MM,
        "plane_mm": plane_m * MM,
        "point_mm": point_m * MM,
        "matched_fraction": n_match / max(len(verts_idx), 1) * np.ones(T),
    }


def fit_flame_sequence(
    layer: FlameLayer,
    obs: FlameObservations,
    init: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray] | None,
    config: FitFlameConfig | None = None,
    device: str | torch.device = "cpu",
    workers: int = 1,
) -> FlameFit:
    """Fit FLAME to a whole sequence (FaceTalk supplement eqs. 3-13).

    Args:
        layer: the FLAME layer (float32; moved to ``device``).
        obs: landmarks, points and frame ids of the sequence.
        init: the alignment in FLAME's convention: ``scale`` (1,), ``rotation`` (3,),
            ``translation`` (3,) (:meth:`talkhead.flame.align.Alignment.flame_rigid`); every
            frame starts there, with zero shape, expression, jaw, neck and eyes.
        masks: the model's region masks (vertex indices), for the matched region.
        config: the ``fit_flame`` settings.
        device: torch device of the optimisation.
        workers: threads of the nearest-neighbour queries.

    Returns:
        :class:`FlameFit`.

    Raises:
        FittingError: unusable observations (no valid landmark anywhere, shapes that do not
            match, NaN), a model without the 68 landmarks or the masked region, or a
            diverging optimisation (naming the step and the term).
    """
    cfg = config or FitFlameConfig()
    layer = layer.to(device)
    L = layer.num_landmarks
    _check_observations(obs, L)
    T = obs.n_frames
    dev, dt = layer.device, layer.dtype
    verts_idx = region_vertices(masks, cfg.correspondences.regions)
    try:
        targets = PointTargets(obs.points, obs.normals)
    except ValueError as exc:
        raise FittingError(f"back-projected points: {exc}") from None
    try:
        gaps = torch.as_tensor(frame_spacing(obs.frames, T), dtype=dt, device=dev)
    except ValueError as exc:
        raise FittingError(f"frame ids: {exc}") from None
    empty = [t for t in range(T) if len(obs.points[t]) == 0]
    if empty:
        log.warning(
            "%d of %d frames have no points (frames %s): fitted from landmarks and the "
            "temporal terms only",
            len(empty),
            T,
            [int(obs.frames[t]) for t in empty[:10]],
        )
    no_lmk = int((~obs.valid.any(axis=1)).sum())
    if no_lmk:
        log.warning("%d of %d frames have no valid landmark", no_lmk, T)

    def tensor(x: np.ndarray | float, shape: tuple[int, ...]) -> Tensor:
        return torch.as_tensor(np.asarray(x, dtype=np.float32), device=dev).reshape(shape)

    r0 = tensor(init["rotation"], (1, 3)).expand(T, 3).clone()
    t0 = tensor(init["translation"], (1, 3)).expand(T, 3).clone()
    s0 = tensor(init["scale"], (1, 1))
    n_scale = T if cfg.per_frame_scale else 1
    p = {
        "shape": torch.zeros(layer.num_shape, dtype=dt, device=dev),
        "expression": torch.zeros(T, layer.num_expression, dtype=dt, device=dev),
        "rotation": r0.clone(),
        "translation": t0.clone(),
        "scale": s0.expand(n_scale, 1).clone(),
        "jaw": torch.zeros(T, 3, dtype=dt, device=dev),
        "neck": torch.zeros(T, 3, dtype=dt, device=dev),
        "eyes": torch.zeros(T, 6, dtype=dt, device=dev),
    }
    for v in p.values():
        v.requires_grad_(True)
    lr = cfg.learning_rates
    groups = [
        ParamGroup("shape", [p["shape"]], lr.shape),
        ParamGroup("expression", [p["expression"]], lr.expression),
        ParamGroup("pose", [p["jaw"], p["neck"], p["eyes"]], lr.pose),
        ParamGroup("rotation", [p["rotation"]], lr.rotation),
        ParamGroup("translation", [p["translation"]], lr.translation),
        ParamGroup("scale", [p["scale"]], lr.scale),
    ]
    lmk_target = torch.as_tensor(np.nan_to_num(obs.landmarks), dtype=dt, device=dev)
    lmk_valid = torch.as_tensor(obs.valid, device=dev)
    lmk_w = torch.as_tensor(landmark_weights(L, cfg.landmark_weights), dtype=dt, device=dev)
    vidx = torch.as_tensor(verts_idx, device=dev)
    faces = layer.faces
    cc = cfg.correspondences
    state: dict[str, Tensor | Correspondences] = {}

    region = FlameRegion(layer, verts_idx)
    K = len(verts_idx)

    def full_forward() -> tuple[Tensor, Tensor]:
        out = layer(
            shape=p["shape"],
            expression=p["expression"],
            rotation=p["rotation"],
            neck=p["neck"],
            jaw=p["jaw"],
            eyes=p["eyes"],
            translation=p["translation"],
            scale=p["scale"].expand(T, 1),
        )
        return out.vertices, out.landmarks

    def region_forward() -> tuple[Tensor, Tensor]:
        out = region(
            p["shape"],
            p["expression"],
            p["rotation"],
            p["neck"],
            p["jaw"],
            p["eyes"],
            p["translation"],
            p["scale"].expand(T, 1),
        )
        return out.vertices[:, :K], out.landmarks

    def refresh(step: int) -> Correspondences:
        with torch.no_grad():
            vertices, _ = full_forward()
        if not torch.isfinite(vertices).all():
            raise FittingError(
                f"the fit diverged at step {step}: the model's vertices are not finite; lower "
                "the learning rates and check the alignment"
            )
        with torch.no_grad():
            vn = vertex_normals(vertices, faces)[:, vidx]
            corr = targets.match(
                vertices[:, vidx].double().cpu().numpy(),
                vn.double().cpu().numpy(),
                cc.max_distance,
                cc.min_normal_dot,
                workers=workers,
            )
        state["corr"] = corr
        state["points"] = torch.as_tensor(corr.points, dtype=dt, device=dev)
        state["normals"] = torch.as_tensor(corr.normals, dtype=dt, device=dev)
        state["valid"] = torch.as_tensor(corr.valid, device=dev)
        return corr

    reg, smooth = cfg.regularisers, cfg.smoothness

    def closure(step: int) -> dict[str, Tensor]:
        if step % cc.refresh_every == 0:
            refresh(step)
        vertices, landmarks = region_forward()
        v = vertices * MM
        pts, nrm, ok = state["points"] * MM, state["normals"], state["valid"]
        point = point_to_point(v, pts, ok)
        plane = point_to_plane(v, pts, nrm, ok)
        lmk = landmark_l1(landmarks * MM, lmk_target * MM, lmk_valid, lmk_w)
        scale = p["scale"].expand(T, 1)
        reg_rigid = (
            mean_norm(p["rotation"] - r0) / TWO_PI
            + mean_norm(p["translation"] - t0)
            + mean_norm(scale - s0)
        )
        terms = {
            "lmk": lmk,
            "point": point,
            "plane": plane,
            "geo": cc.point_weight * point + cc.plane_weight * plane,
            "reg_shape": mean_norm(p["shape"]),
            "reg_expression": mean_norm(p["expression"]),
            "reg_rigid": reg_rigid,
            "reg_jaw": mean_norm(p["jaw"]),
            "reg_neck": mean_norm(p["neck"]),
            "reg_eyes": mean_norm(p["eyes"]),
            "smooth_expression": temporal_difference(p["expression"], gaps),
            "smooth_rigid": temporal_difference(p["rotation"], gaps, TWO_PI)
            + temporal_difference(p["translation"], gaps),
            "smooth_jaw": temporal_difference(p["jaw"], gaps),
            "smooth_neck": temporal_difference(p["neck"], gaps),
        }
        terms["reg"] = (
            reg.shape * terms["reg_shape"]
            + reg.expression * terms["reg_expression"]
            + reg.rigid * terms["reg_rigid"]
            + reg.jaw * terms["reg_jaw"]
            + reg.neck * terms["reg_neck"]
            + reg.eyes * terms["reg_eyes"]
        )
        terms["smooth"] = (
            smooth.expression * terms["smooth_expression"]
            + smooth.rigid * terms["smooth_rigid"]
            + smooth.jaw * terms["smooth_jaw"]
            + smooth.neck * terms["smooth_neck"]
        )
        return terms

    weights = {
        "lmk": cfg.lambda_lmk,
        "geo": cfg.lambda_geo,
        "reg": cfg.lambda_reg,
        "smooth": cfg.lambda_smooth if T > 1 else 0.0,
    }
    history = optimise(
        groups,
        closure,
        weights,
        cfg.steps,
        cfg.lr_milestones,
        cfg.lr_factors,
        log_every=cfg.log_every,
        desc="fit_flame",
    )
    corr = refresh(cfg.steps)
    with torch.no_grad():
        vertices, landmarks = full_forward()
    verts_np = vertices.cpu().numpy()
    lmk_np = landmarks.cpu().numpy()
    residuals = _per_frame_residuals(verts_np, lmk_np, obs, corr, verts_idx)
    params = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in p.items()}
    params["scale"] = np.broadcast_to(params["scale"], (T, 1)).copy()
    params["frames"] = np.asarray(obs.frames, dtype=np.int64)
    return FlameFit(
        params=params,
        vertices=verts_np.astype(np.float32),
        landmarks=lmk_np.astype(np.float32),
        history=history,
        frame_residuals=residuals,
    )
