"""The ways of injecting the diffusion timestep into a decoder block (FaceTalk supplement A,
Table 3 and Fig. 3; B, Fig. 4b). Each takes the processed timestep ``t_hat`` (B, D) of
:class:`~talkhead.models.facetalk.timestep.TimestepEmbedder`.

- (a) ``input``: ``t_hat`` added to the projected input codes (no module here; see the decoder).
- (b) ``scale_shift``, :class:`ScaleShift`: one linear map of ``t_hat`` gives a scale and a
  shift per sub-layer, modulating the block's running features after each of self-attention,
  cross-attention and feed-forward (after the residual sum). What sets it apart from FiLM is
  our reading of Fig. 3, which shows only the place: no Mish, and the residual stream itself is
  modulated rather than the sub-layer's output.
- (c) ``film``, :class:`FiLM` (FaceTalk's choice): Mish then linear -> (gamma, beta) per
  sub-layer, modulating the sub-layer's output before it joins the residual stream, as EDGE's
  ``FiLMTransformerDecoderLayer`` does.
- (d) ``squeeze_excite``, :class:`SqueezeExcite`: channel gates in (0, 1) from the sub-layer's
  time-averaged output and ``t_hat`` (Hu et al. 2018), scaling only (no shift).
- (e) ``dot_product``, :class:`TimestepAttention`: the frames attend (vanilla dot-product
  attention) to tokens made from ``t_hat`` and the result is added to the sub-layer's output.

The modulation is ``x * (1 + gamma) + beta`` (EDGE's ``featurewise_affine``), not the
supplement's literal ``x * gamma + beta`` (eq. 1): the two are the same family, but with
``1 + gamma`` a freshly initialised layer (gamma ~ 0) leaves the features as they are.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..attention import MultiHeadAttention

__all__ = ["FiLM", "ScaleShift", "SqueezeExcite", "TimestepAttention", "modulate"]

#: Tokens the dot-product injection makes from the timestep (EDGE: 2 time tokens). With one,
#: the softmax over a single key is 1 and the attention degenerates to a linear map.
TIME_TOKENS = 2


def modulate(x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
    """``x * (1 + gamma) + beta``; x (B, T, D), gamma and beta (B, D)."""
    return x * (1.0 + gamma[:, None, :]) + beta[:, None, :]


class FiLM(nn.Module):
    """FiLM generator (supplement B, Fig. 4b): ``(gamma, beta) = Linear(Mish(t_hat))``, applied
    to the features with :func:`modulate`.

    Args:
        dim: feature and timestep size D.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Mish(), nn.Linear(dim, 2 * dim))

    def forward(self, x: Tensor, t_hat: Tensor) -> Tensor:
        """x (B, T, D), t_hat (B, D) -> (B, T, D)."""
        gamma, beta = self.net(t_hat).chunk(2, dim=-1)
        return modulate(x, gamma, beta)


class ScaleShift(nn.Module):
    """Scale and shift of the running features after each of a block's ``n`` sub-layers, from
    one linear map of ``t_hat`` (Fig. 3b).

    Args:
        dim: D.
        n: sub-layers (3: self-attention, cross-attention, feed-forward).
    """

    def __init__(self, dim: int, n: int = 3) -> None:
        super().__init__()
        self.n = n
        self.net = nn.Linear(dim, 2 * n * dim)

    def params(self, t_hat: Tensor) -> list[tuple[Tensor, Tensor]]:
        """(B, D) -> ``n`` pairs (gamma_i, beta_i), each (B, D)."""
        parts = self.net(t_hat).chunk(2 * self.n, dim=-1)
        return [(parts[2 * i], parts[2 * i + 1]) for i in range(self.n)]


class SqueezeExcite(nn.Module):
    """Squeeze-and-excite with the timestep (Fig. 3d): ``x * sigmoid(W2 ReLU(W1 [mean_t x;
    t_hat]))``, the mean over the sequence's valid frames.

    Args:
        dim: D.
        reduction: bottleneck ratio (Hu et al.: 16; here the bottleneck is at least 4 wide).
    """

    def __init__(self, dim: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(4, dim // reduction)
        self.net = nn.Sequential(
            nn.Linear(2 * dim, hidden), nn.ReLU(), nn.Linear(hidden, dim), nn.Sigmoid()
        )

    def forward(self, x: Tensor, t_hat: Tensor, mask: Tensor | None = None) -> Tensor:
        """x (B, T, D), t_hat (B, D), mask (B, T) bool or None -> (B, T, D)."""
        if mask is None:
            pooled = x.mean(dim=1)
        else:
            w = mask.to(x.dtype)[..., None]
            pooled = (x * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)
        gate = self.net(torch.cat([pooled, t_hat], dim=-1))
        return x * gate[:, None, :]


class TimestepAttention(nn.Module):
    """Frames attend to :data:`TIME_TOKENS` tokens made from the timestep (Fig. 3e); the result
    is added to the features.

    Args:
        dim: D.
        n_heads: attention heads.
    """

    def __init__(self, dim: int, n_heads: int) -> None:
        super().__init__()
        self.tokens = nn.Linear(dim, TIME_TOKENS * dim)
        self.attn = MultiHeadAttention(dim, n_heads)

    def forward(self, x: Tensor, t_hat: Tensor) -> Tensor:
        """x (B, T, D), t_hat (B, D) -> (B, T, D)."""
        tokens = self.tokens(t_hat).view(t_hat.shape[0], TIME_TOKENS, -1)
        return x + self.attn(x, tokens)
