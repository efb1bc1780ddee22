"""The losses of MeshTalk's two training stages (Richard et al. 2021, section 3; the public
code's ``training/forwarder.py`` for the weighting).

Stage 1 (:func:`stage1_loss`): encoders, fusion and decoder.

- reconstruction: mean squared vertex error of the decoded meshes, over every vertex and
  coordinate of the real frames (padding excluded), optionally weighted per vertex
  (the public code adds a second term on eye keypoints: pass weights to emphasise a region);
- cross-modality (:func:`cross_modality_loss`): the batch's expression codes are paired with
  *another* sequence's audio codes and vice versa (a cyclic shift of the batch, so no sequence
  meets itself). With this sequence's audio and another's expression, the *mouth* must still
  match this sequence; with this sequence's expression and another's audio, the *upper face*
  must. Each is the mean squared error weighted by a per-vertex region mask (FLAME's ``lips``;
  ``forehead`` and ``eye_region``: :func:`region_weights`), and the two are summed. This is
  what disentangles audio-correlated (mouth) from audio-uncorrelated (eyes, brows) motion.

Stage 2 (:func:`stage2_loss`): the context model's cross-entropy over the argmax codes of the
frozen stage-1 encoders, averaged over the real frames and all heads.

All losses are means (not sums) so that their size does not depend on the batch, window or
mesh size; frames where ``mask`` is False (the dataset's padding) do not count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .model import MeshTalk

__all__ = [
    "batch_shift",
    "cross_modality_loss",
    "masked_vertex_mse",
    "region_weights",
    "stage1_loss",
    "stage2_loss",
]


def region_weights(
    masks: Mapping[str, np.ndarray], n_vertices: int, names: Iterable[str]
) -> Tensor:
    """A (V,) float32 0/1 weight of the vertices in any of the regions ``names``.

    Args:
        masks: region name -> vertex indices (a FLAME model's ``masks``).
        n_vertices: V.
        names: the regions (e.g. ``("lips",)``, ``("forehead", "eye_region")``).

    Raises:
        KeyError: a region the masks lack (the message lists those there are).
    """
    w = torch.zeros(n_vertices)
    for name in names:
        if name not in masks:
            raise KeyError(f"no region {name!r} in the masks (have: {', '.join(sorted(masks))})")
        w[torch.as_tensor(np.asarray(masks[name], dtype=np.int64))] = 1.0
    return w


def masked_vertex_mse(
    pred: Tensor,
    target: Tensor,
    mask: Tensor | None = None,
    vertex_weights: Tensor | None = None,
) -> Tensor:
    """Weighted mean squared error of vertices.

    ``sum_{b,t,v,k} m[b,t] w[v] (pred - target)^2 / (3 sum_{b,t} m[b,t] sum_v w[v])``.

    Args:
        pred, target: (B, T, V, 3).
        mask: (B, T) bool, the frames that count (None: all).
        vertex_weights: (V,) >= 0 (None: all 1).

    Returns:
        () the loss, in the vertices' unit squared; 0 when nothing is selected.

    Raises:
        ValueError: shapes that differ.
    """
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(
            f"masked_vertex_mse: pred {tuple(pred.shape)} and target {tuple(target.shape)} "
            "must both be (B, T, V, 3)"
        )
    B, T, V, _ = pred.shape
    m = pred.new_ones(B, T) if mask is None else mask.to(pred.dtype)
    w = pred.new_ones(V) if vertex_weights is None else vertex_weights.to(pred)
    err = ((pred - target) ** 2).sum(dim=-1)  # (B, T, V)
    total = (err * m[..., None] * w).sum()
    count = 3 * m.sum() * w.sum()
    return total / count.clamp_min(1e-12)


def batch_shift(batch: int, generator: torch.Generator | None = None) -> Tensor:
    """A cyclic shift of the batch by ``1 .. batch - 1`` (drawn), so no index maps to itself
    (the public code's ``random_shift``).

    Returns:
        (batch,) int64 permutation.

    Raises:
        ValueError: ``batch < 2`` (no other sequence to pair with).
    """
    if batch < 2:
        raise ValueError("cross-modality loss needs batches of at least 2 sequences")
    k = int(torch.randint(1, batch, (), generator=generator))
    return (torch.arange(batch) + k) % batch


def cross_modality_loss(
    model: MeshTalk,
    template: Tensor,
    target: Tensor,
    expression_code: Tensor,
    audio_code: Tensor,
    mouth_weights: Tensor,
    upper_weights: Tensor,
    mask: Tensor | None = None,
    normalised: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """MeshTalk's cross-modality loss (see the module).

    Args:
        model: the stage-1 model.
        template: (B, V, 3) metres.
        target: (B, T, V, 3) metres, the sequences the codes come from.
        expression_code: (B, T, expression_dim); audio_code: (B, T, audio_dim).
        mouth_weights: (V,) weights of the mouth region.
        upper_weights: (V,) weights of the upper face (eyes, brows, forehead).
        mask: (B, T) bool real frames.
        normalised: measure the errors on the model's normalised vertices (else metres).
        generator: draws the batch shift and the Gumbel noise.

    Returns:
        () mouth term + upper-face term.

    Raises:
        ValueError: a batch of fewer than 2 sequences.
    """
    shift = batch_shift(expression_code.shape[0], generator).to(expression_code.device)
    other_expression = model.reconstruct_from(
        template, expression_code[shift], audio_code, generator
    )["vertices"]
    other_audio = model.reconstruct_from(template, expression_code, audio_code[shift], generator)[
        "vertices"
    ]
    if normalised:
        other_expression, other_audio, target = (
            model.normalise(v) for v in (other_expression, other_audio, target)
        )
    mouth = masked_vertex_mse(other_expression, target, mask, mouth_weights)
    upper = masked_vertex_mse(other_audio, target, mask, upper_weights)
    return mouth + upper


def stage1_loss(
    model: MeshTalk,
    vertices: Tensor,
    mel_windows: Tensor,
    template: Tensor,
    mask: Tensor | None = None,
    mouth_weights: Tensor | None = None,
    upper_weights: Tensor | None = None,
    vertex_weights: Tensor | None = None,
    cross_modality_weight: float = 1.0,
    normalised: bool = True,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Stage 1's loss on a batch of windows: reconstruction + cross-modality.

    Args:
        model: the model (in training mode for Gumbel sampling).
        vertices: (B, T, V, 3) targets (metres).
        mel_windows: (B, T, K, n_mels).
        template: (B, V, 3) metres.
        mask: (B, T) bool real frames (None: all).
        mouth_weights, upper_weights: (V,) region weights of the cross-modality loss; either
            None: no cross-modality term (reported as 0), also when the batch has one sequence.
        vertex_weights: (V,) weights of the reconstruction term (None: uniform).
        cross_modality_weight: its weight in ``loss`` (the public code's 1).
        normalised: measure the errors on the model's normalised vertices (the scale the
            network sees, as the public code does) rather than in metres.
        generator: for the Gumbel noise and the batch shift.

    Returns:
        ``loss`` (to minimise), ``reconstruction``, ``cross_modality`` (each ()).
    """
    out = model.reconstruct(vertices, mel_windows, template, generator)
    pred, target = out["vertices"], vertices
    if normalised:
        pred, target = model.normalise(pred), model.normalise(target)
    recon = masked_vertex_mse(pred, target, mask, vertex_weights)
    cross = recon.new_zeros(())
    if mouth_weights is not None and upper_weights is not None and vertices.shape[0] >= 2:
        cross = cross_modality_loss(
            model,
            template,
            vertices,
            out["expression_code"],
            out["audio_code"],
            mouth_weights,
            upper_weights,
            mask,
            normalised,
            generator,
        )
    return {
        "loss": recon + cross_modality_weight * cross,
        "reconstruction": recon,
        "cross_modality": cross,
    }


def stage2_loss(
    model: MeshTalk,
    vertices: Tensor,
    mel_windows: Tensor,
    mask: Tensor | None = None,
) -> dict[str, Tensor]:
    """Stage 2's loss: cross-entropy of the context model over the frozen stage-1 argmax codes.

    Args:
        model: the model (stage 1 frozen: :meth:`MeshTalk.freeze_stage1`).
        vertices: (B, T, V, 3) metres.
        mel_windows: (B, T, K, n_mels).
        mask: (B, T) bool real frames (None: all).

    Returns:
        ``loss`` (the cross-entropy, nats per code), ``accuracy`` (fraction of codes whose
        argmax is the target; no gradient).
    """
    target = model.codes(vertices, mel_windows)
    logits = model.context(target["one_hot"], target["audio_code"])
    ce = F.cross_entropy(logits.flatten(0, 2), target["labels"].flatten(), reduction="none")
    ce = ce.reshape(target["labels"].shape)  # (B, T, H)
    m = ce.new_ones(ce.shape[:2]) if mask is None else mask.to(ce.dtype)
    denom = (m.sum() * ce.shape[2]).clamp_min(1.0)
    loss = (ce * m[..., None]).sum() / denom
    with torch.no_grad():
        hit = (logits.argmax(dim=-1) == target["labels"]).to(ce.dtype)
        accuracy = (hit * m[..., None]).sum() / denom
    return {"loss": loss, "cross_entropy": loss.detach(), "accuracy": accuracy}
