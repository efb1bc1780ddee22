"""A FaceFormer-style regression baseline (Fan et al. 2022): audio features -> a transformer
decoder over the motion so far (causal self-attention with a distance bias, cross-attention to
the aligned audio) -> per-frame outputs, e.g. FLAME vertex offsets from the subject's template
(V x 3, flattened) or any other per-frame vector.

What carries over from FaceFormer, and what does not:

- The decoder input at frame t is the previous frame's output, embedded (``motion_proj``), plus
  the speaking-style embedding of the subject; frame 0's input is the style embedding alone.
  Training may teacher-force (:meth:`FaceFormer.forward`, one pass) or run autoregressively
  (:meth:`FaceFormer.generate`, differentiable, as FaceFormer trains); inference is
  :meth:`~FaceFormer.generate`.
- Periodic positional encoding (:func:`~talkhead.models.positional.periodic_encoding`, period
  ``period`` frames) and the biased causal mask (ALiBi slopes, distances counted in periods),
  both computed for any length: FaceFormer's 600-frame table (FaceFormer#48) is not repeated.
- Alignment of the cross-attention: frame t sees the audio features within ``audio_window``
  frames of its time (0: its own, FaceFormer's diagonal for features at the frame rate); with a
  window, rotary embeddings of the frame and feature times tell earlier audio from later.
- The audio arrives as features (wav2vec2 or log-mel, from the audio stage) instead of a
  wav2vec2 fine-tuned inside the model; they are standardised per dimension (``audio_norm``,
  :class:`~talkhead.models.normalise.FeatureNorm`, fitted by the training module) and projected.
- Pre-norm blocks (FaceFormer uses PyTorch's post-norm decoder); a zero-initialised output layer
  (as FaceFormer's ``vertice_map_r``), so an untrained model outputs the template.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ...config import check, option
from ..attention import (
    MultiHeadAttention,
    alibi_slopes,
    alignment_mask,
    attention_bias,
    audio_positions,
    causal_mask,
    relative_bias,
)
from ..normalise import FeatureNorm
from ..positional import periodic_encoding, rotary

__all__ = ["FaceFormer", "FaceFormerConfig", "FaceFormerLayer", "to_vertices"]


@dataclass(frozen=True)
class FaceFormerConfig:
    """The FaceFormer-style baseline: audio features -> per-frame vectors (vertex offsets)."""

    audio_dim: int = option(
        768, "Size of a frame's audio feature (wav2vec2-base: 768; log-mel: 80).", minimum=1
    )
    output_dim: int = option(
        15069, "Size of a frame's output (FLAME vertex offsets: 5023 x 3 = 15069).", minimum=1
    )
    latent_dim: int = option(64, "Width of the decoder (FaceFormer on VOCASET: 64).", minimum=2)
    n_heads: int = option(4, "Attention heads; must divide latent_dim (FaceFormer: 4).", minimum=1)
    n_layers: int = option(1, "Decoder layers (FaceFormer: 1).", minimum=1)
    ff_dim: int = option(128, "Feed-forward hidden size (FaceFormer: 2 x latent_dim).", minimum=1)
    dropout: float = option(0.1, "Dropout in attention and feed-forward.", minimum=0, maximum=0.9)
    period: int = option(
        25,
        "Frames per period of the positional encoding and mask (FaceFormer: 30 at 30 fps).",
        minimum=1,
    )
    audio_window: int = option(
        0, "Audio frames each side a frame sees in cross-attention (FaceFormer: 0).", minimum=0
    )
    n_subjects: int = option(
        0, "Speaking styles (training subjects) to embed; 0: one shared style.", minimum=0
    )

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules, as ``(field, message)`` pairs."""
        out = []
        if self.latent_dim % self.n_heads:
            out.append(("n_heads", f"must divide latent_dim ({self.latent_dim})"))
        if self.latent_dim % 2:
            out.append(("latent_dim", "must be even (sinusoidal encodings)"))
        return out


def to_vertices(offsets: Tensor, template: Tensor) -> Tensor:
    """Vertices from per-frame offsets: (B, T, V * 3) offsets + (B, V, 3) template -> (B, T, V,
    3)."""
    B, T, _ = offsets.shape
    return template[:, None] + offsets.view(B, T, *template.shape[1:])


class FaceFormerLayer(nn.Module):
    """A pre-norm decoder layer: causal self-attention, cross-attention to the audio,
    feed-forward; the self-attention's keys and values can be cached over autoregressive steps.

    Args:
        dim, n_heads, ff_dim, dropout: sizes as in :class:`FaceFormerConfig`.
    """

    def __init__(self, dim: int, n_heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in range(3)])
        self.self_attn = MultiHeadAttention(dim, n_heads, dropout=dropout)
        self.cross_attn = MultiHeadAttention(dim, n_heads, dropout=dropout)
        self.ff = nn.Sequential(
            nn.Linear(dim, ff_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_dim, dim)
        )
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        audio_kv: tuple[Tensor, Tensor],
        self_bias: Tensor | None,
        cross_bias: Tensor | None,
        past: tuple[Tensor, Tensor] | None = None,
        pos: Tensor | None = None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """One layer over new frames ``x`` (B, T', D).

        Args:
            audio_kv: the cross-attention's keys and values of the audio
                (``cross_attn.keys_values``), each (B, H, S, D / H).
            self_bias: (.., T', P + T') additive bias over the past P and the new frames.
            cross_bias: (.., T', S) additive bias.
            past: cached self-attention keys and values of the P earlier frames, or None.
            pos: (T',) times of the new frames, to rotate the cross-attention's queries
                (the audio keys come rotated by the features' times), or None.

        Returns:
            (B, T', D) and the self-attention keys and values of all P + T' frames.
        """
        y = self.norms[0](x)
        k, v = self.self_attn.keys_values(y)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        x = x + self.drop(self.self_attn(y, kv=(k, v), bias=self_bias))
        x = x + self.drop(
            self.cross_attn(self.norms[1](x), kv=audio_kv, bias=cross_bias, q_pos=pos)
        )
        x = x + self.drop(self.ff(self.norms[2](x)))
        return x, (k, v)


class FaceFormer(nn.Module):
    """The FaceFormer-style baseline (see the module).

    Args:
        config: :class:`FaceFormerConfig`.

    Raises:
        ConfigError: ``config`` breaks its constraints.
    """

    def __init__(self, config: FaceFormerConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = check(config or FaceFormerConfig())
        D = cfg.latent_dim
        self.audio_norm = FeatureNorm(cfg.audio_dim)
        self.audio_proj = nn.Linear(cfg.audio_dim, D)
        self.motion_proj = nn.Linear(cfg.output_dim, D)
        self.style = nn.Embedding(max(cfg.n_subjects, 1), D)
        self.layers = nn.ModuleList(
            [FaceFormerLayer(D, cfg.n_heads, cfg.ff_dim, cfg.dropout) for _ in range(cfg.n_layers)]
        )
        self.norm_out = nn.LayerNorm(D)
        self.output_proj = nn.Linear(D, cfg.output_dim)
        nn.init.zeros_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)
        self.register_buffer("slopes", alibi_slopes(cfg.n_heads), persistent=False)

    def style_vector(self, subject: Tensor | None, batch: int) -> Tensor:
        """(B, D) style embeddings of subject indices (B,); an index < 0 (a subject unseen in
        training) or None gets the mean of the learned styles."""
        mean = self.style.weight.mean(dim=0)
        if subject is None or self.config.n_subjects == 0:
            return mean.expand(batch, -1)
        idx = subject.to(self.style.weight.device).long()
        emb = self.style(idx.clamp(0, self.config.n_subjects - 1))
        return torch.where((idx >= 0)[:, None], emb, mean)

    def _audio_kv(self, audio: Tensor, n_frames: int) -> list[tuple[Tensor, Tensor]]:
        """Per layer, the cross-attention keys (rotated by the features' times) and values."""
        a = self.audio_proj(self.audio_norm(audio))
        apos = audio_positions(audio.shape[1], n_frames, audio.device)
        out = []
        for layer in self.layers:
            k, v = layer.cross_attn.keys_values(a)
            out.append((rotary(k, apos), v))
        return out

    def _check(self, audio: Tensor) -> None:
        if audio.ndim != 3 or audio.shape[-1] != self.config.audio_dim:
            raise ValueError(
                f"FaceFormer: audio must be (B, S, {self.config.audio_dim}), "
                f"got {tuple(audio.shape)}"
            )

    def forward(
        self,
        audio: Tensor,
        motion: Tensor,
        subject: Tensor | None = None,
        mask: Tensor | None = None,
        audio_mask: Tensor | None = None,
    ) -> Tensor:
        """Teacher-forced prediction: frame t is predicted from the true frames < t.

        Args:
            audio: (B, S, A) audio features.
            motion: (B, T, O) the true outputs (e.g. vertex offsets from the template).
            subject: (B,) subject indices (style), or None.
            mask: (B, T) bool valid frames, or None.
            audio_mask: (B, S) bool valid audio; default ``mask`` when S = T.

        Returns:
            (B, T, O) predictions; frame t depends only on ``motion[:, :t]`` and the audio.

        Raises:
            ValueError: shapes that do not fit the config.
        """
        self._check(audio)
        B, T, O = motion.shape
        if O != self.config.output_dim or motion.shape[0] != audio.shape[0]:
            raise ValueError(
                f"FaceFormer: motion must be (B={audio.shape[0]}, T, {self.config.output_dim}), "
                f"got {tuple(motion.shape)}"
            )
        S = audio.shape[1]
        if audio_mask is None and mask is not None and S == T:
            audio_mask = mask
        style = self.style_vector(subject, B)[:, None]
        prev = self.motion_proj(motion[:, :-1]) + style
        x = torch.cat([style, prev], dim=1)
        x = x + periodic_encoding(T, x.shape[-1], self.config.period, x.device).to(x.dtype)
        pos = torch.arange(T, device=x.device)
        self_bias = attention_bias(
            causal_mask(pos, pos),
            relative_bias(pos, pos, self.slopes, self.config.period),
            mask,
        )
        cross_bias = attention_bias(
            alignment_mask(T, S, self.config.audio_window, x.device), None, audio_mask
        )
        fpos = pos.to(torch.float32)
        for layer, kv in zip(self.layers, self._audio_kv(audio, T), strict=True):
            x, _ = layer(x, kv, self_bias, cross_bias, pos=fpos)
        return self.output_proj(self.norm_out(x))

    def generate(
        self,
        audio: Tensor,
        n_frames: int | None = None,
        subject: Tensor | None = None,
        audio_mask: Tensor | None = None,
    ) -> Tensor:
        """Autoregressive prediction, one frame at a time, each fed back as the next input
        (keys and values of earlier frames cached: one step costs O(t), not O(t^2)).

        Differentiable when gradients are enabled (autoregressive training); wrap in
        ``torch.no_grad()`` and call ``eval()`` for inference.

        Args:
            audio: (B, S, A) audio features.
            n_frames: T (default S: features aligned one per frame).
            subject: (B,) subject indices, or None.
            audio_mask: (B, S) bool valid audio, or None.

        Returns:
            (B, T, O).
        """
        self._check(audio)
        B, S, _ = audio.shape
        T = n_frames or S
        D, dev = self.config.latent_dim, audio.device
        style = self.style_vector(subject, B)[:, None]
        pe = periodic_encoding(T, D, self.config.period, dev).to(audio.dtype)
        align = alignment_mask(T, S, self.config.audio_window, dev)
        audio_kv = self._audio_kv(audio, T)
        past: list[tuple[Tensor, Tensor] | None] = [None] * len(self.layers)
        outputs: list[Tensor] = []
        x_in = style
        for t in range(T):
            x = x_in + pe[t]
            q = torch.tensor([t], device=dev)
            k = torch.arange(t + 1, device=dev)
            self_bias = attention_bias(None, relative_bias(q, k, self.slopes, self.config.period))
            cross_bias = attention_bias(align[t : t + 1], None, audio_mask)
            for i, layer in enumerate(self.layers):
                x, past[i] = layer(
                    x, audio_kv[i], self_bias, cross_bias, past[i], q.to(torch.float32)
                )
            y = self.output_proj(self.norm_out(x))  # (B, 1, O)
            outputs.append(y)
            x_in = self.motion_proj(y) + style
        return torch.cat(outputs, dim=1)
