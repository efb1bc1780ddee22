"""MeshTalk's expression encoder and fusion model (supplement sections 1.2 and 1.3).

- Expression encoder: the (T, V, 3) mesh sequence flattened to (T, 3V), fully connected layers
  to 256 then 128, one LSTM of 128 units over time, a linear projection to the 128-d code.
- Fusion: expression and audio codes concatenated per frame, three fully connected layers
  (hidden width 256, the public code's; the paper gives none) to ``H x C`` logits, ``H`` heads
  of ``C`` categories each.

Leaky ReLUs (slope 0.2) after every hidden layer, none on codes or logits. Both work on any
number of frames (the LSTM runs forward in time only, so padding after a window's last real
frame does not change its real frames' codes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import MeshTalkConfig

__all__ = ["ExpressionEncoder", "FusionModel"]


class ExpressionEncoder(nn.Module):
    """Mesh sequences to expression codes (supplement 1.2).

    Args:
        config: sizes (``expression_hidden``, ``expression_lstm``, ``expression_dim``).
        n_vertices: V.
    """

    def __init__(self, config: MeshTalkConfig, n_vertices: int) -> None:
        super().__init__()
        self.n_vertices = n_vertices
        self.slope = config.leaky_slope
        widths = (3 * n_vertices, *config.expression_hidden)
        self.layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.lstm = nn.LSTM(widths[-1], config.expression_lstm, batch_first=True)
        self.code = nn.Linear(config.expression_lstm, config.expression_dim)

    def forward(self, vertices: Tensor) -> Tensor:
        """Expression codes.

        Args:
            vertices: (B, T, V, 3) vertices (normalised, see :class:`~.model.MeshTalk`).

        Returns:
            (B, T, expression_dim); frame ``t``'s code depends on frames ``<= t``.

        Raises:
            ValueError: not (B, T, V, 3) with this encoder's V.
        """
        if vertices.ndim != 4 or vertices.shape[2:] != (self.n_vertices, 3):
            raise ValueError(
                f"ExpressionEncoder: vertices must be (B, T, {self.n_vertices}, 3), "
                f"got {tuple(vertices.shape)}"
            )
        x = vertices.flatten(2)
        for layer in self.layers:
            x = F.leaky_relu(layer(x), self.slope)
        x, _ = self.lstm(x)
        return self.code(x)


class FusionModel(nn.Module):
    """Expression and audio codes to categorical logits (supplement 1.3).

    Args:
        config: sizes (``expression_dim``, ``audio_dim``, ``fusion_hidden``, ``heads``,
            ``categories``).
    """

    def __init__(self, config: MeshTalkConfig) -> None:
        super().__init__()
        self.heads, self.categories = config.heads, config.categories
        self.slope = config.leaky_slope
        w = config.fusion_hidden
        self.layers = nn.ModuleList(
            [
                nn.Linear(config.expression_dim + config.audio_dim, w),
                nn.Linear(w, w),
                nn.Linear(w, config.heads * config.categories),
            ]
        )

    def forward(self, expression_code: Tensor, audio_code: Tensor) -> Tensor:
        """Logits of the categorical latent.

        Args:
            expression_code: (B, T, expression_dim).
            audio_code: (B, T, audio_dim).

        Returns:
            (B, T, H, C) unnormalised log-probabilities.
        """
        x = _concat(expression_code, audio_code)
        for layer in self.layers[:-1]:
            x = F.leaky_relu(layer(x), self.slope)
        x = self.layers[-1](x)
        return x.reshape(*x.shape[:-1], self.heads, self.categories)


def _concat(a: Tensor, b: Tensor) -> Tensor:
    """``a`` and ``b`` joined on the last axis, with a shape check naming both."""
    if a.shape[:-1] != b.shape[:-1]:
        raise ValueError(
            f"FusionModel: expression code {tuple(a.shape)} and audio code {tuple(b.shape)} "
            "differ in batch or frames"
        )
    return torch.cat([a, b], dim=-1)
