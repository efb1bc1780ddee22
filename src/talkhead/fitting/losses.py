"""Loss terms of fitting a parametric head to multi-view observations (torch).

The FaceTalk supplement, section D, equations 3-12: landmark L1 (3), point-to-point (4) and
point-to-plane (5) distances to matched back-projected points, parameter regularisers (7-9)
and temporal smoothness between consecutive frames (11-12). Every term is in the units of
its inputs (metres for geometry, coefficients for codes) and unweighted; the weights
(lambdas) are applied by the caller.

Deviations, named where they occur: averages run over the valid entries (a frame's invalid
landmarks or rejected correspondences do not dilute the loss), and temporal differences are
divided by the real frame spacing (frame ids with gaps).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "landmark_l1",
    "mean_norm",
    "point_to_plane",
    "point_to_point",
    "safe_norm",
    "temporal_difference",
]


def safe_norm(x: Tensor, dim: int = -1, eps: float = 1e-12) -> Tensor:
    """Euclidean norm with a finite gradient at zero: ``sqrt(|x|^2 + eps^2) - eps``."""
    return torch.sqrt((x * x).sum(dim=dim) + eps * eps) - eps


def _masked_mean(values: Tensor, mask: Tensor, weights: Tensor | None = None) -> Tensor:
    w = mask.to(values.dtype)
    if weights is not None:
        w = w * weights
    total = w.sum()
    if total <= 0:
        return values.sum() * 0.0  # keeps the graph; no valid entry contributes nothing
    return (values * w).sum() / total


def landmark_l1(
    pred: Tensor, target: Tensor, valid: Tensor, weights: Tensor | None = None
) -> Tensor:
    """Region-weighted landmark L1 (FaceTalk supplement eq. 3).

    Args:
        pred: (T, L, 3) model landmarks.
        target: (T, L, 3) observed 3D landmarks.
        valid: (T, L) bool, which observations exist.
        weights: (L,) per-landmark weights (regions), or None (all 1).

    Returns:
        Scalar: the weighted mean over valid (frame, landmark) pairs of ``|pred - target|_1``
        (sum of absolute coordinate differences; metres).
    """
    l1 = (pred - target).abs().sum(dim=-1)  # (T, L)
    w = None if weights is None else weights.unsqueeze(0).expand_as(l1)
    return _masked_mean(l1, valid, w)


def point_to_point(vertices: Tensor, points: Tensor, valid: Tensor) -> Tensor:
    """Point-to-point L1 to matched points (eq. 4).

    Args:
        vertices: (T, V, 3) model vertices.
        points: (T, V, 3) their matched observed points.
        valid: (T, V) bool accepted correspondences.

    Returns:
        Scalar mean over accepted pairs of ``|v - p|_1`` (metres).
    """
    return _masked_mean((vertices - points).abs().sum(dim=-1), valid)


def point_to_plane(vertices: Tensor, points: Tensor, normals: Tensor, valid: Tensor) -> Tensor:
    """Point-to-plane distance to matched points (eq. 5, read as ``|(v - p) · n|``).

    Args:
        vertices: (T, V, 3); points, normals: (T, V, 3) matched points and their unit
            normals; valid: (T, V) bool.

    Returns:
        Scalar mean over accepted pairs of the absolute distance to the point's tangent
        plane (metres).
    """
    return _masked_mean(((vertices - points) * normals).sum(dim=-1).abs(), valid)


def mean_norm(x: Tensor) -> Tensor:
    """Mean over rows of the Euclidean norm of each row (eqs. 7-9: ``1/N Σ_i |θ_i|_2``).

    Args:
        x: (T, D) or (D,) (then the norm of the vector).
    """
    if x.ndim == 1:
        return safe_norm(x, dim=0)
    return safe_norm(x, dim=-1).mean()


def temporal_difference(x: Tensor, gaps: Tensor, scale: float = 1.0) -> Tensor:
    """Smoothness between consecutive frames (eqs. 11-12).

    ``1/N Σ_{i>=2} |x_i - x_{i-1}|_2 / (gap_i · scale)`` with N the number of frames: a
    difference across a gap of g frames counts as g steps of the same rate of change.
    ``scale`` is 2π for rotations (eq. 12). A single frame gives 0.

    Args:
        x: (T, D) per-frame parameters.
        gaps: (T - 1,) frame spacing (:func:`talkhead.fitting.temporal.frame_spacing`).
        scale: divisor of the differences.
    """
    T = x.shape[0]
    if T < 2:
        return x.sum() * 0.0
    d = safe_norm(x[1:] - x[:-1], dim=-1) / (gaps.to(x) * scale)
    return d.sum() / T


#: eq. 9 and 12 divide rotation norms by 2π.
TWO_PI = 2.0 * math.pi
