"""MeshTalk's decoder: a template mesh and a categorical code sequence to an animated mesh
sequence (supplement section 1.4 and its Figure 1).

Order, as a U-Net with purely additive skips (so the template cannot be ignored):

1. template ``x0`` (3V) -> three fully connected layers ``x1 = f1(x0)`` (512),
   ``x2 = f2(x1)`` (256), ``x3 = f3(x2)`` (128): once per sequence, the template does not
   change over time;
2. per frame, ``[x3, one_hot(code_t)]`` (128 + H·C) -> a fully connected layer -> 128;
3. two LSTM layers of 128 units over time;
4. back up: ``y2 = x2 + g1(lstm)`` (256), ``y1 = x1 + g2(y2)`` (512),
   ``y0 = x0 + g3(y1)`` (3V): each skip adds the template branch's activation of the same
   width, the last one the template itself.

Leaky ReLUs (slope 0.2) after each layer except ``g3``, which is linear: its output is a signed
vertex offset (the public code puts a leaky ReLU there too, which shrinks every negative offset
fivefold). ``g3`` starts at zero, so an untrained decoder returns the template exactly.
The 512 and 256 widths are the public code's; the paper gives only the 128.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import MeshTalkConfig

__all__ = ["VertexDecoder"]


class VertexDecoder(nn.Module):
    """Template and one-hot codes to vertices (supplement 1.4).

    Args:
        config: sizes (``template_hidden``, ``decoder_lstm``, ``decoder_lstm_layers``,
            ``heads``, ``categories``).
        n_vertices: V.
    """

    def __init__(self, config: MeshTalkConfig, n_vertices: int) -> None:
        super().__init__()
        self.n_vertices = n_vertices
        self.slope = config.leaky_slope
        self.code_size = config.heads * config.categories
        down = (3 * n_vertices, *config.template_hidden)
        self.down = nn.ModuleList(nn.Linear(a, b) for a, b in zip(down[:-1], down[1:], strict=True))
        self.fuse = nn.Linear(down[-1] + self.code_size, config.decoder_lstm)
        self.lstm = nn.LSTM(
            config.decoder_lstm,
            config.decoder_lstm,
            num_layers=config.decoder_lstm_layers,
            batch_first=True,
        )
        up = (config.decoder_lstm, *reversed(down[:-1]))
        self.up = nn.ModuleList(nn.Linear(a, b) for a, b in zip(up[:-1], up[1:], strict=True))
        nn.init.zeros_(self.up[-1].weight)
        nn.init.zeros_(self.up[-1].bias)

    def forward(self, template: Tensor, one_hot: Tensor) -> Tensor:
        """Animated vertices.

        Args:
            template: (B, V, 3) neutral mesh, one per sequence (normalised like the output).
            one_hot: (B, T, H, C) one-hot codes (or their straight-through relaxation).

        Returns:
            (B, T, V, 3): the template plus a per-frame offset; frame ``t`` depends on codes
            ``<= t``.

        Raises:
            ValueError: shapes that do not match this decoder's V, H and C or each other.
        """
        B = template.shape[0]
        if template.shape != (B, self.n_vertices, 3):
            raise ValueError(
                f"VertexDecoder: template must be (B, {self.n_vertices}, 3), "
                f"got {tuple(template.shape)}"
            )
        if one_hot.ndim != 4 or one_hot.shape[0] != B:
            raise ValueError(
                f"VertexDecoder: codes must be (B={B}, T, H, C), got {tuple(one_hot.shape)}"
            )
        if one_hot.shape[2] * one_hot.shape[3] != self.code_size:
            raise ValueError(
                f"VertexDecoder: codes of {one_hot.shape[2]} x {one_hot.shape[3]} do not match "
                f"heads x categories = {self.code_size}"
            )
        T = one_hot.shape[1]
        skips = [template.reshape(B, -1)]
        for layer in self.down:
            skips.append(F.leaky_relu(layer(skips[-1]), self.slope))
        x3 = skips.pop()  # (B, 128)
        x = torch.cat([x3[:, None].expand(-1, T, -1), one_hot.reshape(B, T, -1)], dim=-1)
        x = F.leaky_relu(self.fuse(x), self.slope)
        x, _ = self.lstm(x)
        for i, layer in enumerate(self.up):
            last = i == len(self.up) - 1
            y = layer(x) if last else F.leaky_relu(layer(x), self.slope)
            x = skips[-1 - i][:, None] + y
        return x.reshape(B, T, self.n_vertices, 3)
