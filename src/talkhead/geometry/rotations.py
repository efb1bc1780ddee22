"""Axis-angle (Rodrigues) vectors <-> rotation matrices: the one set for the whole package.

A rotation vector ``r`` (radians) turns by ``θ = |r|`` about the unit axis ``k = r / θ``,
right-handed; its matrix is ``R = exp([r]×) = I + sin θ·K + (1 - cos θ)·K²`` with
``K = [k]×`` the cross-product matrix. This is the convention of FLAME / SMPL poses and of
OpenCV's ``cv2.Rodrigues``.

- :func:`axis_angle_to_matrix`, :func:`matrix_to_axis_angle` — numpy, any leading shape
  (camera rigs, previews, checks);
- :func:`batch_rodrigues` — torch, batched and differentiable (linear blend skinning).

Importing this module does not import torch; :func:`batch_rodrigues` imports it when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["axis_angle_to_matrix", "batch_rodrigues", "matrix_to_axis_angle"]

# Below this angle (radians) axis_angle_to_matrix returns the identity exactly.
_ZERO_ANGLE = 1e-12
# Below this squared angle the Taylor series of sin(t)/t and (1-cos(t))/t^2 is used.
_SMALL_ANGLE2 = 1e-8


def _check_last_axis(name: str, a: np.ndarray, shape: tuple[int, ...]) -> None:
    if a.ndim < len(shape) or a.shape[-len(shape) :] != shape:
        raise ValueError(f"{name} expects (..., {', '.join(map(str, shape))}), got {a.shape}")


def axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    """Axis-angle vectors to rotation matrices (numpy, float64).

    ``R = I + sin θ·K + (1 - cos θ)·K²`` with ``θ = |aa|`` and ``K = [aa / θ]×``; angles below
    1e-12 give the identity exactly.

    Args:
        aa: (..., 3) axis-angle vectors (radians).

    Returns:
        (..., 3, 3) rotation matrices.

    Raises:
        ValueError: if the last axis of ``aa`` is not 3.
    """
    aa = np.asarray(aa, dtype=np.float64)
    _check_last_axis("axis_angle_to_matrix", aa, (3,))
    angle = np.sqrt(np.sum(aa * aa, axis=-1, keepdims=True))  # (..., 1)
    zero = angle < _ZERO_ANGLE
    k = np.where(zero, 0.0, aa / np.where(zero, 1.0, angle))  # unit axes, 0 at zero angle
    K = np.zeros(aa.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2] = -k[..., 2], k[..., 1]
    K[..., 1, 0], K[..., 1, 2] = k[..., 2], -k[..., 0]
    K[..., 2, 0], K[..., 2, 1] = -k[..., 1], k[..., 0]
    s, c = np.sin(angle)[..., None], np.cos(angle)[..., None]
    # ((1 - c)·K)·K, in this order, reproduces the synthetic studio's camera rigs bit for bit.
    return np.eye(3) + s * K + ((1.0 - c) * K) @ K


def matrix_to_axis_angle(R: np.ndarray) -> np.ndarray:
    """Rotation matrices to axis-angle vectors (numpy, float64), the inverse of
    :func:`axis_angle_to_matrix`.

    The angle is in [0, π]; at exactly π the axis' sign is arbitrary. Near π the axis comes
    from the symmetric part ``(R + Rᵀ)/2 = cos θ·I + (1 - cos θ)·k kᵀ``, elsewhere from the
    skew part ``(R - Rᵀ)/2 = sin θ·K``.

    Args:
        R: (..., 3, 3) rotation matrices (orthonormal, det +1; not checked).

    Returns:
        (..., 3) axis-angle vectors (radians).

    Raises:
        ValueError: if ``R`` is not (..., 3, 3).
    """
    R = np.asarray(R, dtype=np.float64)
    _check_last_axis("matrix_to_axis_angle", R, (3, 3))
    # skew part: v = 2 sin θ · k; trace: 1 + 2 cos θ
    v = np.stack(
        [R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]],
        axis=-1,
    )
    sin = 0.5 * np.linalg.norm(v, axis=-1)
    cos = np.clip((np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arctan2(sin, cos)  # (...), accurate at 0 and π alike
    # θ / (2 sin θ), with its series 1/2 + θ²/12 near zero
    small = angle < 1e-4
    factor = np.where(small, 0.5 + angle**2 / 12.0, angle / (2.0 * np.where(small, 1.0, sin)))
    out = factor[..., None] * v
    # near π: the largest column of k kᵀ, signed like the skew part
    wide = angle > np.pi / 2
    if np.any(wide):
        Rw, cw, vw, aw = R[wide], cos[wide], v[wide], angle[wide]
        kkT = (0.5 * (Rw + np.swapaxes(Rw, -1, -2)) - cw[:, None, None] * np.eye(3)) / (
            1.0 - cw[:, None, None]
        )
        i = np.argmax(np.diagonal(kkT, axis1=-2, axis2=-1), axis=-1)
        n = np.arange(len(i))
        k = kkT[n, :, i] / np.sqrt(np.maximum(kkT[n, i, i], 1e-300))[:, None]
        sign = np.where(np.einsum("nc,nc->n", k, vw) < 0.0, -1.0, 1.0)
        out[wide] = (sign * aw)[:, None] * k / np.linalg.norm(k, axis=-1, keepdims=True)
    return out


def _skew(v: Tensor) -> Tensor:
    """(N, 3) vectors -> (N, 3, 3) cross-product matrices ``[v]×``."""
    import torch

    zero = torch.zeros_like(v[:, 0])
    x, y, z = v.unbind(-1)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).view(-1, 3, 3)


def batch_rodrigues(rot_vecs: Tensor) -> Tensor:
    """Axis-angle vectors to rotation matrices, stable (value and gradient) at zero angle.

    ``R = I + a(θ)·K + b(θ)·K²`` with ``K = [r]×``, ``θ = |r|``, ``a = sin θ / θ`` and
    ``b = (1 - cos θ) / θ²``; near zero the series ``a ≈ 1 - θ²/6``, ``b ≈ 1/2 - θ²/24``.

    Args:
        rot_vecs: (N, 3) axis-angle vectors (radians).

    Returns:
        (N, 3, 3) rotation matrices.
    """
    import torch

    if rot_vecs.ndim != 2 or rot_vecs.shape[-1] != 3:
        raise ValueError(f"batch_rodrigues expects (N, 3), got {tuple(rot_vecs.shape)}")
    theta2 = (rot_vecs * rot_vecs).sum(-1)
    small = theta2 < _SMALL_ANGLE2
    # A safe angle keeps the unused branch finite so torch.where does not leak NaN gradients.
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = theta2_safe.sqrt()
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / theta2_safe)
    K = _skew(rot_vecs)
    eye = torch.eye(3, dtype=rot_vecs.dtype, device=rot_vecs.device).expand_as(K)
    return eye + a[:, None, None] * K + b[:, None, None] * (K @ K)
