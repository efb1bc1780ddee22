"""Fitting the head model's codes to observed points: one identity (global and local codes)
shared by every frame, one expression code per frame (FaceTalk supplement section D; NPHM's
point-cloud fit).

Loss (weights in :class:`~talkhead.nphm.config.NphmFitWeights`), over the frames' points in
model units:

- ``sdf``: mean |f| of the observed points, in millimetres, each clamped at ``sdf_clamp_mm``;
- ``normal``: mean 1 - cos(grad f, observed normal);
- ``reg_identity``, ``reg_expression``: mean squared codes;
- ``temporal``: the temporal Huber loss on the change of the expression codes between
  adjacent frames, divided by the frame spacing (FaceTalk supplement Table 2): per frame
  pair the sum over code components of Huber_delta(d) / delta (quadratic d^2 / 2 delta below
  ``huber_delta``, |d| - delta / 2 above, so a large genuine change costs linearly), averaged
  over pairs; nothing for a single frame.

Codes start at zero (NPHM). Each step draws ``points_per_frame`` points of every frame.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import FittingError
from ..fitting.loop import FitHistory, ParamGroup, optimise
from ..fitting.temporal import frame_spacing
from .config import FitNphmConfig
from .model import NeuralHeadModel, sdf_gradient

__all__ = ["NphmFit", "fit_codes", "temporal_huber"]

log = logging.getLogger(__name__)

MM = 1000.0


@dataclass
class NphmFit:
    """Result of :func:`fit_codes`.

    Attributes:
        identity_global: (G,); identity_local: (K, L); expression: (T, E) float32 codes.
        frames: (T,) frame ids.
        history: the loss terms on the logging schedule.
        sdf_mm: (T,) per frame, mean |f| of all its observed points (millimetres).
        sdf_median_mm: (T,) per frame, median |f|.
    """

    identity_global: np.ndarray
    identity_local: np.ndarray
    expression: np.ndarray
    frames: np.ndarray
    history: FitHistory
    sdf_mm: np.ndarray
    sdf_median_mm: np.ndarray


def temporal_huber(codes: Tensor, gaps: Tensor, delta: float) -> Tensor:
    """Temporal Huber loss of per-frame codes (T, E): mean over adjacent pairs of
    ``sum_e huber_delta((c_t - c_t-1) / gap) / delta``; 0 for T < 2.

    Args:
        codes: (T, E).
        gaps: (T - 1,) frame spacing (1 for consecutive frames).
        delta: the Huber threshold (code units per frame).
    """
    if codes.shape[0] < 2:
        return codes.sum() * 0.0
    d = (codes[1:] - codes[:-1]) / gaps[:, None]
    return (
        F.huber_loss(d, torch.zeros_like(d), delta=delta, reduction="none").sum(-1).mean() / delta
    )


def _stack_points(
    points: Sequence[np.ndarray], normals: Sequence[np.ndarray], source: str
) -> tuple[list[Tensor], list[Tensor]]:
    if not points:
        raise FittingError(f"{source}: no frames to fit")
    empty = [t for t, p in enumerate(points) if len(p) == 0]
    if empty:
        raise FittingError(
            f"{source}: frame row(s) {empty[:10]} have no points; the points stage's qc floors "
            "should have stopped this sequence"
        )
    return (
        [torch.as_tensor(np.asarray(p, dtype=np.float32)) for p in points],
        [torch.as_tensor(np.asarray(n, dtype=np.float32)) for n in normals],
    )


def _draw(
    pts: list[Tensor], nrm: list[Tensor], n: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    idx = [torch.randint(0, len(p), (n,), generator=generator) for p in pts]
    return (
        torch.stack([p[i] for p, i in zip(pts, idx, strict=True)]),
        torch.stack([q[i] for q, i in zip(nrm, idx, strict=True)]),
    )


def fit_codes(
    model: NeuralHeadModel,
    extent: float,
    points: Sequence[np.ndarray],
    normals: Sequence[np.ndarray],
    frames: np.ndarray,
    cfg: FitNphmConfig,
    seed: int = 0,
    device: str = "cpu",
    desc: str = "fit head model",
    identity: tuple[np.ndarray, np.ndarray] | None = None,
) -> NphmFit:
    """Fit identity and per-frame expression codes to observed points.

    Args:
        model: the trained head model (frozen here).
        extent: metres per model unit (to report millimetres).
        points: T arrays (P_t, 3) of observed points in model units (the rest frame).
        normals: T arrays (P_t, 3) of their unit normals (rest frame).
        frames: (T,) strictly increasing frame ids (gaps scale the temporal loss).
        cfg: the ``fit_nphm`` settings.
        seed: seed of the point draws.
        device: ``"cpu"`` or ``"cuda"``.
        desc: progress-bar label.
        identity: a fixed identity ``(global (G,), local (K, L))`` (e.g. the subject's), or
            None to fit it with the expressions.

    Returns:
        :class:`NphmFit`.

    Raises:
        FittingError: no frames, an empty frame, bad frame ids, or a diverging fit.
    """
    pts, nrm = _stack_points(points, normals, desc)
    T = len(pts)
    try:
        gaps = torch.as_tensor(frame_spacing(np.asarray(frames), T), dtype=torch.float32)
    except ValueError as exc:
        raise FittingError(f"{desc}: {exc}") from exc
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    c = model.config
    if identity is None:
        zg = torch.zeros(1, c.identity_global, device=device, requires_grad=True)
        zl = torch.zeros(1, model.n_anchors, c.identity_local, device=device, requires_grad=True)
        groups = [ParamGroup("identity", [zg, zl], cfg.lr_identity)]
    else:
        zg = torch.as_tensor(identity[0], dtype=torch.float32, device=device).reshape(1, -1)
        zl = torch.as_tensor(identity[1], dtype=torch.float32, device=device)[None]
        if zg.shape[1] != c.identity_global or zl.shape[1:] != (model.n_anchors, c.identity_local):
            raise FittingError(
                f"{desc}: the identity codes ({zg.shape[1]}, {tuple(zl.shape[1:])}) do not "
                f"match the model ({c.identity_global}, ({model.n_anchors}, {c.identity_local}))"
            )
        groups = []
    expr = torch.zeros(T, c.expression, device=device, requires_grad=True)
    generator = torch.Generator().manual_seed(seed)
    clamp = cfg.sdf_clamp_mm
    gaps = gaps.to(device)
    with_normals = cfg.weights.normal > 0

    def closure(step: int) -> dict[str, Tensor]:
        u, n = _draw(pts, nrm, cfg.points_per_frame, generator)
        u = u.to(device).requires_grad_(with_normals)
        sdf = model(u, expr, zg.expand(T, -1), zl.expand(T, -1, -1))
        if with_normals:  # a second backward pass: skipped when its weight is 0
            grad = sdf_gradient(sdf, u, create_graph=True)
            normal = (1 - F.cosine_similarity(grad, n.to(device), dim=-1)).mean()
        else:
            normal = sdf.new_zeros(())
        return {
            "sdf": (sdf.abs() * extent * MM).clamp(max=clamp).mean(),
            "normal": normal,
            "reg_identity": zg.pow(2).mean() + zl.pow(2).mean(),
            "reg_expression": expr.pow(2).mean(),
            "temporal": temporal_huber(expr, gaps, cfg.huber_delta),
        }

    history = optimise(
        [*groups, ParamGroup("expression", [expr], cfg.lr_expression)],
        closure,
        asdict(cfg.weights),
        cfg.steps,
        cfg.lr_milestones,
        cfg.lr_factors,
        log_every=cfg.log_every,
        desc=desc,
    )
    sdf_mm, med_mm = frame_sdf_residuals(
        model, extent, pts, expr.detach(), zg.detach(), zl.detach(), device
    )
    return NphmFit(
        identity_global=zg.detach()[0].cpu().numpy(),
        identity_local=zl.detach()[0].cpu().numpy(),
        expression=expr.detach().cpu().numpy(),
        frames=np.asarray(frames, dtype=np.int64),
        history=history,
        sdf_mm=sdf_mm,
        sdf_median_mm=med_mm,
    )


def frame_sdf_residuals(
    model: NeuralHeadModel,
    extent: float,
    points: Sequence[Tensor],
    expression: Tensor,
    z_global: Tensor,
    z_local: Tensor,
    device: str = "cpu",
    chunk: int = 65536,
) -> tuple[np.ndarray, np.ndarray]:
    """Per frame mean and median |f| (millimetres) of all its points (T arrays (P_t, 3))."""
    means, medians = [], []
    with torch.no_grad():
        for t, p in enumerate(points):
            vals = []
            for s in range(0, len(p), chunk):
                u = p[s : s + chunk].to(device)[None]
                vals.append(model(u, expression[t : t + 1], z_global, z_local)[0].abs())
            d = torch.cat(vals).cpu().numpy() * extent * MM
            means.append(float(d.mean()))
            medians.append(float(np.median(d)))
    return np.asarray(means), np.asarray(medians)


def without_temporal(cfg: FitNphmConfig) -> FitNphmConfig:
    """The same settings with the temporal loss off (the Table 2 comparison)."""
    return replace(cfg, weights=replace(cfg.weights, temporal=0.0))
