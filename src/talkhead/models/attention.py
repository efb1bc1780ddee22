"""Multi-head attention over masks and relative biases that are computed for any length.

Masks are boolean, True where a query may attend to a key; biases are additive (float) and
broadcast over the batch. :func:`attention_bias` turns masks and biases into the one additive
bias :class:`MultiHeadAttention` takes. Nothing here has a maximum length.

- :func:`causal_mask`: frame t sees frames <= t (FaceFormer's decoder).
- :func:`alignment_mask`: frame t sees the audio features within ``window`` frames of its own
  time (FaceFormer's alignment bias, widened; FaceTalk's supplement does not say how its
  cross-attention is masked).
- :func:`alibi_slopes`, :func:`relative_bias`: ALiBi (Press et al. 2022) distance penalties,
  ``-slope_h * floor(|i - j| / period)``; FaceFormer's "biased causal mask" is the causal
  half with ``period`` the frames of its periodic positional encoding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .positional import rotary

__all__ = [
    "MultiHeadAttention",
    "alibi_slopes",
    "alignment_mask",
    "attention_bias",
    "audio_positions",
    "causal_mask",
    "relative_bias",
]


def causal_mask(q_pos: Tensor, k_pos: Tensor) -> Tensor:
    """(T, S) bool: query at frame ``q_pos[i]`` may see key at frame ``k_pos[j]`` iff
    ``k_pos[j] <= q_pos[i]``.

    Args:
        q_pos: (T,) frame indices of the queries.
        k_pos: (S,) frame indices of the keys.
    """
    return k_pos[None, :] <= q_pos[:, None]


def audio_positions(n_audio: int, n_frames: int, device: torch.device | None = None) -> Tensor:
    """(S,) float: the time of each of ``n_audio`` audio features in frame units, for features
    spread evenly over ``n_frames`` frames (feature j covers ``[j, j + 1) * T / S``; its centre
    is returned, minus 0.5 so that features aligned one per frame sit at 0, 1, ..., T - 1)."""
    scale = n_frames / n_audio
    return (torch.arange(n_audio, device=device, dtype=torch.float32) + 0.5) * scale - 0.5


def alignment_mask(
    n_frames: int, n_audio: int, window: int, device: torch.device | None = None
) -> Tensor:
    """(T, S) bool: frame t sees the audio features whose time (:func:`audio_positions`) lies
    within ``window`` frames of t (plus half a feature, so each frame sees at least one).

    With one feature per frame (the dataset's aligned features, S = T) and ``window`` 0 this is
    FaceFormer's alignment bias (the diagonal); ``window`` w lets frame t see features
    t - w .. t + w (coarticulation: the lips move before the sound).

    Raises:
        ValueError: ``window`` < 0.
    """
    if window < 0:
        raise ValueError(f"alignment_mask: window must be >= 0, got {window}")
    t = torch.arange(n_frames, device=device, dtype=torch.float32)
    a = audio_positions(n_audio, n_frames, device)
    half = window + 0.5 * max(1.0, n_frames / n_audio)
    return (a[None, :] - t[:, None]).abs() <= half + 1e-6


def alibi_slopes(n_heads: int) -> Tensor:
    """(H,) ALiBi head slopes: the geometric sequence ``2^(-8 h / H)``, h = 1..H, for H a
    power of two; otherwise those of the nearest lower power of two then every other slope of
    the next (Press et al. 2022, as FaceFormer uses them)."""

    def power_of_2(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    if n_heads < 1:
        raise ValueError(f"alibi_slopes: n_heads must be >= 1, got {n_heads}")
    if math.log2(n_heads).is_integer():
        slopes = power_of_2(n_heads)
    else:
        low = 2 ** math.floor(math.log2(n_heads))
        slopes = power_of_2(low) + power_of_2(2 * low)[0::2][: n_heads - low]
    return torch.tensor(slopes, dtype=torch.float32)


def relative_bias(q_pos: Tensor, k_pos: Tensor, slopes: Tensor, period: int = 1) -> Tensor:
    """(H, T, S) ALiBi bias ``-slope_h * floor(|q_pos_i - k_pos_j| / period)``: attention decays
    with the distance in time, whatever the sequence length.

    Args:
        q_pos: (T,) query times (frames).
        k_pos: (S,) key times (frames; may be fractional, :func:`audio_positions`).
        slopes: (H,) from :func:`alibi_slopes`.
        period: distances are counted in whole periods (FaceFormer: its positional period).
    """
    dist = (q_pos.to(torch.float32)[:, None] - k_pos.to(torch.float32)[None, :]).abs()
    dist = torch.floor(dist / period + 1e-6)
    return -slopes.to(dist.device)[:, None, None] * dist[None]


def attention_bias(
    allowed: Tensor | None = None,
    bias: Tensor | None = None,
    key_valid: Tensor | None = None,
) -> Tensor | None:
    """One additive attention bias from a mask, a relative bias and the keys' padding.

    Args:
        allowed: (T, S) bool mask (True: may attend), or None (all).
        bias: (H, T, S) float additive bias, or None.
        key_valid: (B, S) bool, False on padded keys, or None.

    Returns:
        (B or 1, H or 1, T, S) float: ``bias`` where allowed, -inf elsewhere; a query row that
        would see no key at all (a padded frame far from any real audio) sees every key
        instead, so the softmax stays finite (such frames are padding, masked out of losses).
        None when all three are None.
    """
    if allowed is None and bias is None and key_valid is None:
        return None
    mask = None
    if allowed is not None:
        mask = allowed[None, None]
    if key_valid is not None:
        kv = key_valid[:, None, None, :]
        mask = kv if mask is None else mask & kv
    base = bias[None] if bias is not None else None
    if mask is None:
        return base
    empty = ~mask.any(dim=-1, keepdim=True)
    mask = mask | empty
    zero = torch.zeros((), device=mask.device)
    out = torch.where(mask, zero, torch.tensor(float("-inf"), device=mask.device))
    return out if base is None else out + base


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention with an additive bias.

    Args:
        dim: the queries' feature size (and the output's).
        n_heads: heads; ``dim`` must be divisible by it.
        kv_dim: the keys' and values' feature size (default ``dim``).
        dropout: attention dropout (training only).

    Raises:
        ValueError: ``dim`` not divisible by ``n_heads``.
    """

    def __init__(
        self, dim: int, n_heads: int, kv_dim: int | None = None, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"attention: dim {dim} is not divisible by n_heads {n_heads}")
        self.dim, self.n_heads, self.dropout = dim, n_heads, dropout
        kv_dim = kv_dim or dim
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(kv_dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: Tensor) -> Tensor:
        B, N, _ = x.shape
        return x.view(B, N, self.n_heads, self.dim // self.n_heads).transpose(1, 2)

    def keys_values(self, source: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values of ``source`` (B, S, kv_dim): two (B, H, S, dim / H) tensors (to
        cache them over autoregressive steps)."""
        k, v = self.kv(source).chunk(2, dim=-1)
        return self._split(k), self._split(v)

    def forward(
        self,
        query: Tensor,
        source: Tensor | None = None,
        bias: Tensor | None = None,
        kv: tuple[Tensor, Tensor] | None = None,
        q_pos: Tensor | None = None,
        k_pos: Tensor | None = None,
    ) -> Tensor:
        """Attend from ``query`` (B, T, dim) to ``source`` (B, S, kv_dim) (default: the query
        itself), or to precomputed ``kv`` (:meth:`keys_values`).

        Args:
            bias: (B or 1, H or 1, T, S) additive bias (:func:`attention_bias`), or None.
            q_pos, k_pos: (T,) and (S,) positions: rotate queries and keys by them
                (:func:`~talkhead.models.positional.rotary`), or None (no rotation).

        Returns:
            (B, T, dim).
        """
        if kv is None:
            kv = self.keys_values(query if source is None else source)
        k, v = kv
        q = self._split(self.q(query))
        if q_pos is not None:
            q = rotary(q, q_pos)
        if k_pos is not None:
            k = rotary(k, k_pos)
        if bias is not None:
            bias = bias.to(q.dtype)
        p = self.dropout if self.training else 0.0
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p)
        B, H, T, dh = o.shape
        return self.out(o.transpose(1, 2).reshape(B, T, H * dh))
