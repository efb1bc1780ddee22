"""The categorical bottleneck: Gumbel softmax over each head's categories (supplement 1.3).

In training the one-hot code is *straight-through*: the forward value is the hard one-hot of
``argmax(logits + g)`` (``g`` Gumbel noise), the gradient that of the soft sample
``softmax((logits + g) / tau)`` (Jang et al. 2017; the public code's ``quantize``). At inference
the code is the one-hot of ``argmax(logits)``, no noise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["gumbel_noise", "gumbel_softmax", "one_hot_argmax", "quantize"]


def gumbel_noise(
    shape: torch.Size | tuple[int, ...],
    like: Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Standard Gumbel samples ``-log(-log(u))``, ``u ~ U[0, 1)`` floored at the dtype's
    smallest normal number (so finite), on ``like``'s device and dtype."""
    u = torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype)
    tiny = torch.finfo(like.dtype).tiny
    return -torch.log(-torch.log(u.clamp_min(tiny)))


def one_hot_argmax(logits: Tensor) -> tuple[Tensor, Tensor]:
    """The one-hot of the last axis' argmax.

    Args:
        logits: (..., C).

    Returns:
        ``(one_hot, labels)``: (..., C) of ``logits``' dtype, and (...,) int64.
    """
    labels = logits.argmax(dim=-1)
    return F.one_hot(labels, logits.shape[-1]).to(logits.dtype), labels


def gumbel_softmax(
    logits: Tensor,
    tau: float = 1.0,
    hard: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """A Gumbel-softmax sample over the last axis.

    Args:
        logits: (..., C) unnormalised log-probabilities.
        tau: softmax temperature, > 0.
        hard: straight-through: the value is one-hot, the gradient the soft sample's.
        generator: for the noise (None: torch's global one).

    Returns:
        ``(sample, labels)``: (..., C) (one-hot when ``hard``, else the soft sample; rows sum
        to 1) and the (...,) int64 sampled categories.

    Raises:
        ValueError: ``tau <= 0``.
    """
    if not tau > 0:
        raise ValueError(f"gumbel_softmax: tau must be > 0, got {tau}")
    noisy = logits + gumbel_noise(logits.shape, logits, generator)
    soft = torch.softmax(noisy / tau, dim=-1)
    hard_one_hot, labels = one_hot_argmax(noisy.detach())
    if not hard:
        return soft, labels
    return hard_one_hot - soft.detach() + soft, labels


def quantize(
    logits: Tensor,
    training: bool,
    tau: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """MeshTalk's code: straight-through Gumbel softmax in training, argmax at inference.

    Args:
        logits: (B, T, H, C).
        training: True: :func:`gumbel_softmax` (hard); False: :func:`one_hot_argmax`.
        tau, generator: as :func:`gumbel_softmax`.

    Returns:
        ``(one_hot, labels)``: (B, T, H, C) and (B, T, H) int64.
    """
    if training:
        return gumbel_softmax(logits, tau, hard=True, generator=generator)
    return one_hot_argmax(logits)
