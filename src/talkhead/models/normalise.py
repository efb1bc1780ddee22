"""Per-dimension standardisation of features, with its statistics stored in the model.

Audio features differ in scale by orders of magnitude (log-mel around -20..5, wav2vec2 around
-1..1), and a per-frame LayerNorm would discard a frame's loudness, which says how open the
mouth is. A model standardises its inputs with the training set's per-dimension mean and
standard deviation instead, kept as buffers so a checkpoint carries them to inference.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["FeatureNorm"]


class FeatureNorm(nn.Module):
    """``(x - mean) / std`` per feature dimension; identity until :meth:`fit` is called.

    Args:
        dim: feature size D.
        eps: floor of the standard deviation.
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, features: Tensor, mask: Tensor | None = None) -> FeatureNorm:
        """Set the statistics from (..., T, D) features, over the frames where ``mask``
        (..., T) is True (all when None); returns self.

        Raises:
            ValueError: no frame to fit on, or a feature size other than D.
        """
        if features.shape[-1] != self.mean.shape[0]:
            raise ValueError(
                f"FeatureNorm.fit: features of size {features.shape[-1]}, expected "
                f"{self.mean.shape[0]}"
            )
        x = features.reshape(-1, features.shape[-1]).to(torch.float64)
        if mask is not None:
            x = x[mask.reshape(-1).to(torch.bool)]
        if x.shape[0] == 0:
            raise ValueError("FeatureNorm.fit: no valid frame")
        self.mean.copy_(x.mean(0).to(self.mean.dtype))
        std = x.std(0, unbiased=False) if x.shape[0] > 1 else torch.ones_like(x[0])
        self.std.copy_(std.clamp_min(self.eps).to(self.std.dtype))
        return self

    def forward(self, x: Tensor) -> Tensor:
        """(..., D) -> (..., D) standardised."""
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def inverse(self, x: Tensor) -> Tensor:
        """(..., D) standardised -> (..., D) in the original units."""
        return x * self.std.to(x.dtype) + self.mean.to(x.dtype)
