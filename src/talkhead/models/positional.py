"""Sinusoidal encodings of positions and diffusion timesteps, computed for any length.

No table of fixed length is stored: an encoding is computed from the positions it is asked for,
so a sequence of any number of frames works (a FaceFormer-style table of 600 frames breaks on
audio longer than 20 s at 30 fps, FaceFormer#48).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["periodic_encoding", "rotary", "sinusoidal_encoding"]


def sinusoidal_encoding(positions: Tensor, dim: int, base: float = 10000.0) -> Tensor:
    """The transformer's sinusoidal encoding, interleaved as in the FaceTalk supplement (B):
    ``PE(p, 2i) = sin(p / base^(2i/d))``, ``PE(p, 2i+1) = cos(p / base^(2i/d))``.

    Args:
        positions: (...) positions or diffusion timesteps (any real values).
        dim: d, the encoding's size (even).
        base: 10000 in the supplement and the transformer paper.

    Returns:
        (..., dim) float32 (or ``positions``' floating dtype).

    Raises:
        ValueError: ``dim`` odd or < 2.
    """
    if dim < 2 or dim % 2:
        raise ValueError(f"sinusoidal_encoding: dim must be even and >= 2, got {dim}")
    dtype = positions.dtype if positions.is_floating_point() else torch.float32
    # float64 angles: large timesteps and frame indices keep their precision.
    i = torch.arange(dim // 2, device=positions.device, dtype=torch.float64)
    freq = torch.exp(-math.log(base) * 2.0 * i / dim)  # 1 / base^(2i/d)
    angle = positions.to(torch.float64).unsqueeze(-1) * freq  # (..., d/2)
    out = torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1)  # (..., d/2, 2)
    return out.flatten(-2).to(dtype)


def periodic_encoding(n: int, dim: int, period: int, device: torch.device | None = None) -> Tensor:
    """FaceFormer's periodic positional encoding: the sinusoidal encoding of ``t mod period``,
    so frame t and frame t + period share one code (the decoder's biased attention tells
    periods apart).

    Args:
        n: number of frames (any).
        dim: encoding size (even).
        period: frames per period (FaceFormer: 30 at 30 fps, one second).

    Returns:
        (n, dim) float32.

    Raises:
        ValueError: ``period`` < 1, ``dim`` odd.
    """
    if period < 1:
        raise ValueError(f"periodic_encoding: period must be >= 1, got {period}")
    t = torch.arange(n, device=device) % period
    return sinusoidal_encoding(t, dim)


def rotary(x: Tensor, positions: Tensor, base: float = 10000.0) -> Tensor:
    """Rotary position embedding (RoPE, Su et al. 2021; EDGE's decoder uses it): each pair of
    channels ``(x_2i, x_2i+1)`` is rotated by the angle ``p / base^(2i/d)``, so the dot product
    of a rotated query at p and key at q depends on their offset p - q (and its sign), for any
    positions.

    Args:
        x: (..., N, d) queries or keys (d even), e.g. (B, H, N, d).
        positions: (N,) positions (frames; may be fractional).

    Returns:
        (..., N, d), ``x``'s dtype.
    """
    d = x.shape[-1]
    i = torch.arange(d // 2, device=x.device, dtype=torch.float64)
    freq = torch.exp(-math.log(base) * 2.0 * i / d)
    angle = positions.to(device=x.device, dtype=torch.float64)[:, None] * freq  # (N, d/2)
    cos, sin = torch.cos(angle).to(x.dtype), torch.sin(angle).to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)
