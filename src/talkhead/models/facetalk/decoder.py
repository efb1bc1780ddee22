"""FaceTalk's expression decoder (supplement B, Fig. 3c): a stack of transformer decoder blocks
over a sequence of expression codes, cross-attending to the audio features, with the diffusion
timestep injected as :class:`~talkhead.models.facetalk.config.FaceTalkConfig` says.

A block is pre-norm (as EDGE's ``FiLMTransformerDecoderLayer``)::

    x = x + inject_1(SA(LN(x)))        self-attention over the frames
    x = x + inject_2(CA(LN(x), audio)) cross-attention to the audio features
    x = x + inject_3(FF(LN(x)))        feed-forward (GELU)

with ``inject_i`` the FiLM, squeeze-excite or timestep-attention of
:mod:`~talkhead.models.facetalk.injection` (identity for ``input``, ``scale_shift`` and the
regression variant; ``scale_shift`` modulates ``x`` after each residual sum instead).

Masks and positions (the supplement is silent on both; our choices):

- self-attention ``full`` by default: a diffusion model denoises the whole window at once, as
  EDGE does, so nothing is gained by hiding later frames; ``causal`` is an option;
- cross-attention ``aligned``: frame t sees the audio features within ``audio_window`` frames of
  its time (:func:`~talkhead.models.attention.alignment_mask`), so a clip of any length is
  animated frame by frame from the audio around it; ``full`` lets every frame see all audio;
- frame order from rotary embeddings of the frame times in both attentions (``position:
  rope``, default; EDGE uses them): attention then depends on the offset between a frame and a
  frame or audio feature, with its sign (the lips move before the sound), whatever the
  sequence length; or ALiBi distance biases (``alibi``: relative too, but blind to the sign of
  the offset); or an absolute sinusoidal encoding added to frames and audio (``sinusoidal``:
  positions beyond the training windows are unseen). None has a table of fixed length.

Audio features are standardised per dimension (:class:`~talkhead.models.normalise.FeatureNorm`,
``audio_norm``: identity until a training module fits it to the training set's features), then
projected to the latent size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...config import check
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
from ..positional import sinusoidal_encoding
from .config import FaceTalkConfig
from .injection import FiLM, ScaleShift, SqueezeExcite, TimestepAttention, modulate
from .timestep import TimestepEmbedder

__all__ = ["DecoderBlock", "ExpressionDecoder"]


class DecoderBlock(nn.Module):
    """One decoder block: self-attention, cross-attention to the audio, feed-forward, each
    followed by the timestep injection of ``config`` (none for the regression variant).

    Args:
        config: the decoder's settings (latent_dim, n_heads, ff_dim, dropout, diffusion,
            timestep_injection).
    """

    def __init__(self, config: FaceTalkConfig) -> None:
        super().__init__()
        D, H = config.latent_dim, config.n_heads
        self.injection = config.timestep_injection if config.diffusion else "none"
        self.norms = nn.ModuleList([nn.LayerNorm(D) for _ in range(3)])
        self.self_attn = MultiHeadAttention(D, H, dropout=config.dropout)
        self.cross_attn = MultiHeadAttention(D, H, dropout=config.dropout)
        self.ff = nn.Sequential(
            nn.Linear(D, config.ff_dim),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.ff_dim, D),
        )
        self.drop = nn.Dropout(config.dropout)
        if self.injection == "film":
            self.film = nn.ModuleList([FiLM(D) for _ in range(3)])
        elif self.injection == "scale_shift":
            self.scale_shift = ScaleShift(D, 3)
        elif self.injection == "squeeze_excite":
            self.squeeze_excite = nn.ModuleList([SqueezeExcite(D) for _ in range(3)])
        elif self.injection == "dot_product":
            self.time_attn = nn.ModuleList([TimestepAttention(D, H) for _ in range(3)])

    def _inject(self, i: int, h: Tensor, t_hat: Tensor | None, mask: Tensor | None) -> Tensor:
        if t_hat is None:
            return h
        if self.injection == "film":
            return self.film[i](h, t_hat)
        if self.injection == "squeeze_excite":
            return self.squeeze_excite[i](h, t_hat, mask)
        if self.injection == "dot_product":
            return self.time_attn[i](h, t_hat)
        return h

    def forward(
        self,
        x: Tensor,
        audio: Tensor,
        t_hat: Tensor | None = None,
        self_bias: Tensor | None = None,
        cross_bias: Tensor | None = None,
        mask: Tensor | None = None,
        pos: Tensor | None = None,
        audio_pos: Tensor | None = None,
    ) -> Tensor:
        """One block.

        Args:
            x: (B, T, D) frame features.
            audio: (B, S, D) projected audio features.
            t_hat: (B, D) processed timestep, or None (regression variant).
            self_bias: (B or 1, H or 1, T, T) additive self-attention bias, or None.
            cross_bias: (B or 1, H or 1, T, S) additive cross-attention bias, or None.
            mask: (B, T) bool valid frames (squeeze-excite pools over them), or None.
            pos, audio_pos: (T,) and (S,) frame times of the frames and the audio features
                for rotary embeddings, or None (no rotation).

        Returns:
            (B, T, D).
        """
        scale_shift = (
            self.scale_shift.params(t_hat)
            if self.injection == "scale_shift" and t_hat is not None
            else None
        )
        for i in range(3):
            y = self.norms[i](x)
            if i == 0:
                h = self.self_attn(y, bias=self_bias, q_pos=pos, k_pos=pos)
            elif i == 1:
                h = self.cross_attn(y, audio, bias=cross_bias, q_pos=pos, k_pos=audio_pos)
            else:
                h = self.ff(y)
            x = x + self._inject(i, self.drop(h), t_hat, mask)
            if scale_shift is not None:
                x = modulate(x, *scale_shift[i])
        return x


class ExpressionDecoder(nn.Module):
    """FaceTalk's expression decoder, diffusion denoiser or regression variant.

    Diffusion (``config.diffusion``): ``forward(x_t, audio, t)`` maps noisy codes at timestep t
    to the network's prediction (the clean codes x0 or the noise, as the
    :class:`~talkhead.models.facetalk.diffusion.GaussianDiffusion` trains it). Regression:
    ``forward(None, audio)`` maps audio to codes (learned frame queries; no noisy input, no
    timestep: "Ours (w/o diffusion)", supplement Table 1).

    Args:
        config: :class:`FaceTalkConfig`.

    Raises:
        ConfigError: ``config`` breaks its constraints (e.g. n_heads not dividing latent_dim).
    """

    def __init__(self, config: FaceTalkConfig | None = None) -> None:
        super().__init__()
        self.config = config = check(config or FaceTalkConfig())
        D = config.latent_dim
        self.audio_norm = FeatureNorm(config.audio_dim)
        self.audio_proj = nn.Linear(config.audio_dim, D)
        if config.diffusion:
            self.input_proj = nn.Linear(config.expression_dim, D)
            self.timestep = TimestepEmbedder(D)
            #: The audio of a dropped condition (classifier-free guidance): one latent vector,
            #: broadcast over any number of frames.
            self.null_audio = nn.Parameter(torch.zeros(D))
        else:
            self.query = nn.Parameter(torch.zeros(D))
        self.blocks = nn.ModuleList([DecoderBlock(config) for _ in range(config.n_blocks)])
        self.norm_out = nn.LayerNorm(D)
        self.output_proj = nn.Linear(D, config.expression_dim)
        self.register_buffer("slopes", alibi_slopes(config.n_heads), persistent=False)

    def biases(
        self, n_frames: int, n_audio: int, mask: Tensor | None, audio_mask: Tensor | None
    ) -> tuple[Tensor | None, Tensor | None]:
        """The additive self- and cross-attention biases for ``n_frames`` frames and
        ``n_audio`` audio features: (B or 1, H or 1, T, T) and (B or 1, H or 1, T, S)."""
        cfg, dev = self.config, self.slopes.device
        pos = torch.arange(n_frames, device=dev)
        apos = audio_positions(n_audio, n_frames, dev)
        self_allowed = causal_mask(pos, pos) if cfg.self_attention == "causal" else None
        cross_allowed = (
            alignment_mask(n_frames, n_audio, cfg.audio_window, dev)
            if cfg.cross_attention == "aligned"
            else None
        )
        self_rel = cross_rel = None
        if cfg.position == "alibi":
            self_rel = relative_bias(pos, pos, self.slopes)
            cross_rel = relative_bias(pos, apos, self.slopes)
        return (
            attention_bias(self_allowed, self_rel, mask),
            attention_bias(cross_allowed, cross_rel, audio_mask),
        )

    def forward(
        self,
        x: Tensor | None,
        audio: Tensor,
        t: Tensor | None = None,
        mask: Tensor | None = None,
        drop_audio: Tensor | None = None,
        audio_mask: Tensor | None = None,
    ) -> Tensor:
        """Decode a sequence.

        Args:
            x: (B, T, E) noisy expression codes (diffusion), or None (regression: T = S).
            audio: (B, S, A) audio features (the dataset's are aligned one per frame, S = T).
            t: (B,) diffusion timesteps (diffusion only).
            mask: (B, T) bool, False on padded frames (they are not attended to), or None.
            drop_audio: (B,) bool: replace these sequences' audio by the learned null audio
                (classifier-free guidance), or None.
            audio_mask: (B, S) bool valid audio features; default ``mask`` when S = T.

        Returns:
            (B, T, E) predicted codes (or noise, for an eps-predicting diffusion).

        Raises:
            ValueError: shapes that do not fit the config, a missing or unexpected ``t``/``x``.
        """
        cfg = self.config
        if audio.ndim != 3 or audio.shape[-1] != cfg.audio_dim:
            raise ValueError(
                f"ExpressionDecoder: audio must be (B, S, {cfg.audio_dim}), "
                f"got {tuple(audio.shape)}"
            )
        B, S, _ = audio.shape
        if cfg.diffusion:
            if x is None or t is None:
                raise ValueError("ExpressionDecoder: a diffusion decoder needs x and t")
            if x.ndim != 3 or x.shape[0] != B or x.shape[-1] != cfg.expression_dim:
                raise ValueError(
                    f"ExpressionDecoder: x must be (B={B}, T, {cfg.expression_dim}), "
                    f"got {tuple(x.shape)}"
                )
            T = x.shape[1]
            t_hat = self.timestep(t.to(audio.device).expand(B))
            h = self.input_proj(x)
            if cfg.timestep_injection == "input":
                h = h + t_hat[:, None, :]
                t_hat_blocks = None
            else:
                t_hat_blocks = t_hat
        else:
            if x is not None or t is not None:
                raise ValueError("ExpressionDecoder: the regression variant takes no x and no t")
            T = S
            h = self.query.expand(B, T, -1)
            t_hat_blocks = None
        if mask is not None and tuple(mask.shape) != (B, T):
            raise ValueError(f"ExpressionDecoder: mask must be ({B}, {T}), got {tuple(mask.shape)}")
        if audio_mask is None and mask is not None and S == T:
            audio_mask = mask
        a = self.audio_proj(self.audio_norm(audio))
        if cfg.diffusion:
            # Always through the graph (a zero gradient when nothing is dropped), so that
            # distributed training does not find an unused parameter.
            if drop_audio is None:
                drop_audio = torch.zeros(B, dtype=torch.bool, device=a.device)
            a = torch.where(drop_audio.to(a.device)[:, None, None], self.null_audio, a)
        if cfg.position == "sinusoidal":
            pos = torch.arange(T, device=h.device)
            h = h + sinusoidal_encoding(pos, cfg.latent_dim).to(h.dtype)
            apos = audio_positions(S, T, h.device)
            a = a + sinusoidal_encoding(apos, cfg.latent_dim).to(a.dtype)
        self_bias, cross_bias = self.biases(T, S, mask, audio_mask)
        pos = apos = None
        if cfg.position == "rope":
            pos = torch.arange(T, device=h.device, dtype=torch.float32)
            apos = audio_positions(S, T, h.device)
        for block in self.blocks:
            h = block(h, a, t_hat_blocks, self_bias, cross_bias, mask, pos, apos)
        return self.output_proj(self.norm_out(h))
