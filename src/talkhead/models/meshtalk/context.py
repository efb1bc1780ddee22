"""MeshTalk's autoregressive context model over the categorical codes (supplement 1.5).

A temporal convolutional network over the one-hot codes (B, T, H, C) that predicts, for each
frame ``t`` and head ``h``, the distribution of the code ``c[t, h]`` from

- the codes of *previous heads* ``h' < h`` at the same frame ``t``,
- the codes of *all heads* at past frames ``t' < t``,
- the audio code at frame ``t`` (from the frozen stage-1 audio encoder, concatenated to the
  input of each of the four temporal layers: a linear term per layer).

Layers (each with ``context_channels`` = 64 channels per head, ``H x 64`` in all):

1. an embedding of the one-hot codes (C per head -> 64 per head): the current frame through a
   *strictly* masked 1x1 map (head ``h`` reads heads ``< h``), plus the previous frame (all
   heads);
2. four layers with kernel 2 and dilations 1, 2, 4, 8: the current frame through a masked 1x1
   map that lets head ``h`` read heads ``<= h`` of the layer below (which hold only heads
   ``< h`` of the codes at frame ``t``), plus a dilated kernel-2 convolution over the past
   frames ``t - 1`` and ``t - 1 - d`` (all heads), plus the audio term; leaky ReLU;
3. the logits (64 per head -> C per head), masked like the four layers.

So the logits at ``(t, h)`` see codes at frame ``t`` of heads ``< h`` only and past frames of all
heads (up to 20 frames back), never a later frame: the masks of PixelCNN (strict first layer,
inclusive above it; van den Oord et al. 2016). The public code masks every layer strictly,
which drops the codes of heads ``h - 5 .. h - 1`` at the current frame, and reads the past only
from the embedding's output, which never holds the last head (meshtalk issue #37 describes the
intended visibility); talkhead implements the intended one.

Size: the masked and past maps are dense ``(H·64) x (H·64)`` matrices, about 300 M parameters
at the paper's 64 heads (about 19 M at the public code's 16 heads).

Sampling (:meth:`ContextModel.sample`) is slow by nature: codes are drawn one head of one frame
at a time, ``T x H`` sequential draws (96,000 for 60 s at 25 fps and 64 heads), each needing
the ones before it. The past-frame terms are computed once per frame and the current-frame
terms one head at a time, so a draw costs a few small matrix-vector products, but the
``T x H`` Python loop remains: about 9 s of one CPU core per second of audio at 25 fps and
the paper's sizes (0.1 s at :func:`~.config.demo_config`'s).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import MeshTalkConfig
from .quantize import gumbel_noise

__all__ = ["ContextModel", "MaskedContextConv"]


class MaskedContextConv(nn.Module):
    """One masked causal layer over per-head channels.

    ``y[t, h] = b_h + W_h · x[t, heads < h (strict) or <= h] + sum_j P_j · x[t - 1 - j·d]
    + A_h · audio[t]``, ``j = 0 .. kernel - 1`` (frames before 0 are zeros).

    Args:
        heads: H.
        ch_in: channels per head of the input.
        ch_out: channels per head of the output.
        strict: head ``h`` reads input heads ``< h`` at the current frame (else ``<= h``).
        kernel: past frames of the temporal convolution (0: no past term).
        dilation: its dilation.
        audio_dim: size of the audio code conditioning the layer (0: none).
    """

    def __init__(
        self,
        heads: int,
        ch_in: int,
        ch_out: int,
        strict: bool,
        kernel: int = 0,
        dilation: int = 1,
        audio_dim: int = 0,
    ) -> None:
        super().__init__()
        self.heads, self.ch_in, self.ch_out = heads, ch_in, ch_out
        self.strict, self.kernel, self.dilation = strict, kernel, dilation
        n_in, n_out = heads * ch_in, heads * ch_out
        self.weight = nn.Parameter(torch.empty(n_out, n_in))
        self.bias = nn.Parameter(torch.empty(n_out))
        head_out = torch.arange(n_out) // ch_out
        head_in = torch.arange(n_in) // ch_in
        allowed = head_in[None, :] < head_out[:, None]
        if not strict:
            allowed |= head_in[None, :] == head_out[:, None]
        self.register_buffer("mask", allowed.to(torch.float32), persistent=False)
        # fan-in of a head's row: the inputs it may read (at least one head's worth)
        bound = 1.0 / math.sqrt(max(ch_in, n_in // 2))
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)
        self.past = (
            nn.Conv1d(n_in, n_out, kernel, dilation=dilation, bias=False) if kernel > 0 else None
        )
        self.audio = nn.Linear(audio_dim, n_out, bias=False) if audio_dim > 0 else None

    @property
    def reach(self) -> int:
        """Frames back the past term reads: ``(kernel - 1) * dilation + 1`` (0: none)."""
        return (self.kernel - 1) * self.dilation + 1 if self.kernel > 0 else 0

    def forward(self, x: Tensor, audio: Tensor | None = None) -> Tensor:
        """All frames at once (training, teacher forcing).

        Args:
            x: (B, T, H, ch_in).
            audio: (B, T, audio_dim), needed when the layer has an audio term.

        Returns:
            (B, T, H, ch_out).
        """
        B, T = x.shape[:2]
        flat = x.reshape(B, T, -1)
        y = F.linear(flat, self.weight * self.mask, self.bias)
        if self.audio is not None:
            if audio is None:
                raise ValueError("MaskedContextConv: this layer is conditioned on audio codes")
            y = y + self.audio(audio)
        if self.past is not None and T > 0:
            # frame t reads frames t - 1 - j*d: drop the last frame, pad the reach on the left
            seq = F.pad(flat.transpose(1, 2)[..., :-1], (self.reach, 0))
            y = y + self.past(seq).transpose(1, 2)
        return y.reshape(B, T, self.heads, self.ch_out)

    def step_base(self, flat: Tensor, t: int, audio_t: Tensor | None) -> Tensor:
        """The terms of frame ``t`` that do not depend on frame ``t``'s codes: bias, past
        frames, audio.

        Args:
            flat: (B, T, H·ch_in) inputs; only frames ``< t`` are read.
            t: the frame.
            audio_t: (B, audio_dim) audio code of frame ``t``.

        Returns:
            (B, H·ch_out).
        """
        y = self.bias.expand(flat.shape[0], -1)
        if self.audio is not None:
            y = y + self.audio(audio_t)
        if self.past is not None:
            lo = t - self.reach
            window = flat[:, max(lo, 0) : t].transpose(1, 2)
            window = F.pad(window, (max(-lo, 0), 0))
            y = y + self.past(window)[..., 0]
        return y

    def step_head(self, now: Tensor, h: int) -> Tensor:
        """The current-frame term of head ``h``.

        Args:
            now: (B, H·ch_in) this frame's inputs; only the heads head ``h`` may read are read.
            h: the head.

        Returns:
            (B, ch_out).
        """
        n = (h if self.strict else h + 1) * self.ch_in
        rows = slice(h * self.ch_out, (h + 1) * self.ch_out)
        if n == 0:
            return now.new_zeros(now.shape[0], self.ch_out)
        return F.linear(now[:, :n], self.weight[rows, :n])


class ContextModel(nn.Module):
    """Autoregressive prior over the codes, conditioned on audio codes (supplement 1.5).

    Args:
        config: sizes (``heads``, ``categories``, ``context_channels``, ``context_kernel``,
            ``context_dilations``, ``audio_dim``, ``leaky_slope``).
    """

    def __init__(self, config: MeshTalkConfig) -> None:
        super().__init__()
        H, C, K = config.heads, config.categories, config.context_channels
        self.heads, self.categories = H, C
        self.slope = config.leaky_slope
        self.embedding = MaskedContextConv(H, C, K, strict=True, kernel=1)
        self.layers = nn.ModuleList(
            MaskedContextConv(
                H,
                K,
                K,
                strict=False,
                kernel=config.context_kernel,
                dilation=d,
                audio_dim=config.audio_dim,
            )
            for d in config.context_dilations
        )
        self.logits = MaskedContextConv(H, K, C, strict=False)

    @property
    def receptive_field(self) -> int:
        """Frames (the current one included) a prediction can depend on."""
        return 1 + self.embedding.reach + sum(layer.reach for layer in self.layers)

    def _check(self, one_hot: Tensor | None, audio_code: Tensor) -> None:
        if audio_code.ndim != 3:
            raise ValueError(
                f"ContextModel: audio codes must be (B, T, D), got {tuple(audio_code.shape)}"
            )
        if one_hot is not None and (
            one_hot.shape[:2] != audio_code.shape[:2]
            or one_hot.shape[2:] != (self.heads, self.categories)
        ):
            raise ValueError(
                f"ContextModel: codes must be (B, T, {self.heads}, {self.categories}) matching "
                f"audio codes {tuple(audio_code.shape)}, got {tuple(one_hot.shape)}"
            )

    def forward(self, one_hot: Tensor, audio_code: Tensor) -> Tensor:
        """Logits of every code given the codes before it (teacher forcing).

        Args:
            one_hot: (B, T, H, C) one-hot codes.
            audio_code: (B, T, audio_dim).

        Returns:
            (B, T, H, C) logits; entry ``(t, h)`` depends on ``one_hot[:, t, :h]``,
            ``one_hot[:, :t]`` and ``audio_code[:, :t + 1]`` only.
        """
        self._check(one_hot, audio_code)
        x = self.embedding(one_hot)
        for layer in self.layers:
            x = F.leaky_relu(layer(x, audio_code), self.slope)
        return self.logits(x)

    @torch.no_grad()
    def sample(
        self,
        audio_code: Tensor,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Draw codes frame by frame and head by head (slow: ``T x H`` sequential draws, see
        the module docstring).

        Args:
            audio_code: (B, T, audio_dim).
            temperature: logits are divided by it before sampling; ``<= 0``: the most likely
                category (argmax), deterministic.
            generator: for the draws, on ``audio_code``'s device (None: torch's global one).

        Returns:
            ``(one_hot, labels)``: (B, T, H, C) and (B, T, H) int64.
        """
        self._check(None, audio_code)
        B, T = audio_code.shape[:2]
        H, C = self.heads, self.categories
        stack = [self.embedding, *self.layers, self.logits]
        # inputs of every layer, flattened over heads; inputs[0] holds the drawn codes
        inputs = [audio_code.new_zeros(B, T, H * layer.ch_in) for layer in stack]
        labels = torch.zeros(B, T, H, dtype=torch.long, device=audio_code.device)
        rows = torch.arange(B, device=audio_code.device)
        for t in range(T):
            base = [
                layer.step_base(x, t, audio_code[:, t])
                for layer, x in zip(stack, inputs, strict=True)
            ]
            for h in range(H):
                for i, layer in enumerate(stack):
                    k = layer.ch_out
                    y = base[i][:, h * k : (h + 1) * k] + layer.step_head(inputs[i][:, t], h)
                    if i + 1 < len(stack):
                        if 0 < i:  # the four temporal layers end with a leaky ReLU
                            y = F.leaky_relu(y, self.slope)
                        inputs[i + 1][:, t, h * k : (h + 1) * k] = y
                if temperature > 0:
                    y = y / temperature + gumbel_noise(y.shape, y, generator)
                label = y.argmax(dim=-1)
                labels[:, t, h] = label
                inputs[0][rows, t, h * C + label] = 1.0
        return inputs[0].reshape(B, T, H, C), labels
