"""MeshTalk (Richard et al. 2021) on FLAME vertex sequences: the whole model.

Stage 1 trains the audio encoder, expression encoder, fusion model and decoder: a sequence's
meshes and audio are encoded, fused into ``T x H`` categorical codes (Gumbel softmax) and
decoded from the subject's template (:meth:`MeshTalk.reconstruct`, losses in
:mod:`.losses`). Stage 2 freezes them and trains the context model on the stage-1 argmax codes
(:meth:`MeshTalk.codes`); at inference the context model draws codes from audio alone and the
decoder turns them into meshes (:meth:`MeshTalk.sample`).

Vertices are normalised inside the model, ``(v - vertex_mean) / vertex_scale``, as the public
code does with per-vertex statistics of the training set (:meth:`MeshTalk.set_vertex_statistics`;
:func:`vertex_statistics` computes them). talkhead's FLAME vertices are in metres, so without
statistics the network would see offsets of a few millimetres as ~0.005.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from .audio import AudioEncoder
from .config import MeshTalkConfig
from .context import ContextModel
from .decoder import VertexDecoder
from .encoder import ExpressionEncoder, FusionModel
from .quantize import one_hot_argmax, quantize

__all__ = ["MeshTalk", "vertex_statistics"]


def vertex_statistics(
    vertices: Tensor, mask: Tensor | None = None, min_scale: float = 1e-4
) -> tuple[Tensor, Tensor]:
    """Per-vertex mean and one global scale of training vertices, for
    :meth:`MeshTalk.set_vertex_statistics`.

    The scale is the root mean square deviation from the per-vertex mean over all vertices and
    coordinates, not a per-vertex standard deviation (the public code's): on a small dataset
    a vertex that barely moves (the back of the head) would otherwise be divided by ~0.

    Args:
        vertices: (N, T, V, 3) or (N, V, 3) training vertices (metres).
        mask: (N, T) or (N,) bool, the real frames (None: all).
        min_scale: floor of the scale (metres).

    Returns:
        ``(mean, scale)``: (V, 3) and () tensors.

    Raises:
        ValueError: no frame selected.
    """
    v = vertices.reshape(-1, *vertices.shape[-2:])
    if mask is not None:
        v = v[mask.reshape(-1).to(torch.bool)]
    if v.shape[0] == 0:
        raise ValueError("vertex_statistics: no frames")
    mean = v.mean(dim=0)
    scale = ((v - mean) ** 2).mean().sqrt().clamp_min(min_scale)
    return mean, scale


class MeshTalk(nn.Module):
    """MeshTalk's encoders, decoder and context model.

    Args:
        config: sizes (:class:`MeshTalkConfig`).
        n_vertices: V of the meshes (5023 for FLAME).

    Attributes:
        audio_encoder, expression_encoder, fusion, decoder: stage 1.
        context: the stage-2 context model.
        vertex_mean: (V, 3) buffer; vertex_scale: (V, 3) buffer (see the module).
    """

    def __init__(self, config: MeshTalkConfig, n_vertices: int) -> None:
        super().__init__()
        self.config = config
        self.n_vertices = n_vertices
        self.audio_encoder = AudioEncoder(config)
        self.expression_encoder = ExpressionEncoder(config, n_vertices)
        self.fusion = FusionModel(config)
        self.decoder = VertexDecoder(config, n_vertices)
        self.context = ContextModel(config)
        self.register_buffer("vertex_mean", torch.zeros(n_vertices, 3))
        self.register_buffer("vertex_scale", torch.ones(n_vertices, 3))
        self.stage1_frozen = False

    # ---------------------------------------------------------------------------------------
    # normalisation

    def set_vertex_statistics(self, mean: Tensor, scale: Tensor | float) -> None:
        """Set the normalisation (``mean`` (V, 3); ``scale`` broadcastable to (V, 3), > 0)."""
        scale = torch.as_tensor(scale, dtype=self.vertex_scale.dtype)
        if (scale <= 0).any():
            raise ValueError("MeshTalk.set_vertex_statistics: scale must be > 0")
        self.vertex_mean.copy_(mean.to(self.vertex_mean))
        self.vertex_scale.copy_(scale.to(self.vertex_scale).expand_as(self.vertex_scale))

    def normalise(self, vertices: Tensor) -> Tensor:
        """(..., V, 3) metres -> normalised."""
        return (vertices - self.vertex_mean) / self.vertex_scale

    def denormalise(self, vertices: Tensor) -> Tensor:
        """(..., V, 3) normalised -> metres."""
        return vertices * self.vertex_scale + self.vertex_mean

    # ---------------------------------------------------------------------------------------
    # stage 1

    def stage1_modules(self) -> list[nn.Module]:
        """The modules stage 1 trains (audio encoder, expression encoder, fusion, decoder)."""
        return [self.audio_encoder, self.expression_encoder, self.fusion, self.decoder]

    def stage1_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of :meth:`stage1_modules`."""
        for module in self.stage1_modules():
            yield from module.parameters()

    def encode(self, vertices: Tensor, mel_windows: Tensor) -> tuple[Tensor, Tensor]:
        """Expression and audio codes.

        Args:
            vertices: (B, T, V, 3) metres.
            mel_windows: (B, T, K, n_mels) log-mel windows (:func:`.audio.mel_windows`).

        Returns:
            ``(expression_code, audio_code)``: (B, T, expression_dim), (B, T, audio_dim).
        """
        return self.expression_encoder(self.normalise(vertices)), self.audio_encoder(mel_windows)

    def decode(self, template: Tensor, one_hot: Tensor) -> Tensor:
        """(B, V, 3) template (metres) and (B, T, H, C) codes -> (B, T, V, 3) metres."""
        return self.denormalise(self.decoder(self.normalise(template), one_hot))

    def reconstruct_from(
        self,
        template: Tensor,
        expression_code: Tensor,
        audio_code: Tensor,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Fuse, quantise (Gumbel in training mode, argmax otherwise) and decode.

        Returns:
            ``vertices`` (B, T, V, 3) metres, ``logits`` (B, T, H, C), ``one_hot``
            (B, T, H, C), ``labels`` (B, T, H).
        """
        logits = self.fusion(expression_code, audio_code)
        one_hot, labels = quantize(logits, self.training, self.config.gumbel_tau, generator)
        vertices = self.decode(template, one_hot)
        return {"vertices": vertices, "logits": logits, "one_hot": one_hot, "labels": labels}

    def reconstruct(
        self,
        vertices: Tensor,
        mel_windows: Tensor,
        template: Tensor,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Stage 1's autoencoding of a batch of windows.

        Args:
            vertices: (B, T, V, 3) target meshes (metres).
            mel_windows: (B, T, K, n_mels).
            template: (B, V, 3) each sequence's neutral mesh (metres).
            generator: for the Gumbel noise.

        Returns:
            as :meth:`reconstruct_from`, plus ``expression_code`` and ``audio_code``.
        """
        expression_code, audio_code = self.encode(vertices, mel_windows)
        out = self.reconstruct_from(template, expression_code, audio_code, generator)
        out.update(expression_code=expression_code, audio_code=audio_code)
        return out

    # ---------------------------------------------------------------------------------------
    # stage 2

    def freeze_stage1(self) -> None:
        """Freeze stage 1 for stage 2: no gradients, and kept in eval mode (no dropout) even
        when the model is put in training mode."""
        self.stage1_frozen = True
        for p in self.stage1_parameters():
            p.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> MeshTalk:
        super().train(mode)
        if self.stage1_frozen:
            for module in self.stage1_modules():
                module.eval()
        return self

    @torch.no_grad()
    def codes(self, vertices: Tensor, mel_windows: Tensor) -> dict[str, Tensor]:
        """Stage 2's targets: the argmax codes of the (frozen) stage-1 encoders.

        Args:
            vertices: (B, T, V, 3) metres.
            mel_windows: (B, T, K, n_mels).

        Returns:
            ``one_hot`` (B, T, H, C), ``labels`` (B, T, H) int64, ``audio_code``
            (B, T, audio_dim); computed in eval mode (no dropout) without gradients.
        """
        modes = [m.training for m in self.stage1_modules()]
        for m in self.stage1_modules():
            m.eval()
        try:
            expression_code, audio_code = self.encode(vertices, mel_windows)
            one_hot, labels = one_hot_argmax(self.fusion(expression_code, audio_code))
        finally:
            for m, mode in zip(self.stage1_modules(), modes, strict=True):
                m.train(mode)
        return {"one_hot": one_hot, "labels": labels, "audio_code": audio_code}

    # ---------------------------------------------------------------------------------------
    # inference

    @torch.no_grad()
    def sample(
        self,
        mel_windows: Tensor,
        template: Tensor,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Animate a template from audio: codes drawn by the context model, then decoded.

        Slow: the context model draws ``T x H`` codes one after the other
        (:meth:`ContextModel.sample`).

        Args:
            mel_windows: (B, T, K, n_mels), any T.
            template: (B, V, 3) metres.
            temperature: of the draws (``<= 0``: argmax).
            generator: for the draws, on the model's device.

        Returns:
            ``vertices`` (B, T, V, 3) metres, ``one_hot`` (B, T, H, C), ``labels`` (B, T, H).
        """
        was = self.training
        self.eval()
        try:
            audio_code = self.audio_encoder(mel_windows)
            one_hot, labels = self.context.sample(audio_code, temperature, generator)
            vertices = self.decode(template, one_hot)
        finally:
            self.train(was)
        return {"vertices": vertices, "one_hot": one_hot, "labels": labels}
