"""Masked reconstruction losses over sequences of codes, and the regression variant's loss."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["masked_mse", "masked_velocity_mse", "regression_loss"]


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error over the valid frames.

    Args:
        pred, target: (B, T, ...) sequences.
        mask: (B, T) bool, False on padding, or None (all frames).

    Returns:
        () the mean of ``(pred - target)^2`` over valid frames and all feature entries (0 when
        no frame is valid).
    """
    err = (pred - target).pow(2).flatten(2).mean(-1)  # (B, T)
    if mask is None:
        return err.mean()
    w = mask.to(err.dtype)
    return (err * w).sum() / w.sum().clamp_min(1.0)


def masked_velocity_mse(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """:func:`masked_mse` of the frame-to-frame differences ``x[:, 1:] - x[:, :-1]``, over the
    pairs of frames that are both valid (EDGE's and FaceFormer-style velocity loss)."""
    vel_mask = None if mask is None else mask[:, 1:] & mask[:, :-1]
    return masked_mse(pred[:, 1:] - pred[:, :-1], target[:, 1:] - target[:, :-1], vel_mask)


def regression_loss(
    model: nn.Module,
    x0: Tensor,
    audio: Tensor,
    mask: Tensor | None = None,
    velocity_weight: float = 0.0,
) -> Tensor:
    """Loss of the regression variant (``FaceTalkConfig.diffusion`` false): masked MSE of the
    codes predicted from the audio, plus ``velocity_weight`` times the velocity MSE.

    Args:
        model: an :class:`~talkhead.models.facetalk.decoder.ExpressionDecoder` without
            diffusion.
        x0: (B, T, E) target codes.
        audio: (B, T, A) aligned audio features.
        mask: (B, T) bool valid frames, or None.

    Returns:
        () loss.
    """
    pred = model(None, audio, mask=mask)
    loss = masked_mse(pred, x0, mask)
    if velocity_weight:
        loss = loss + velocity_weight * masked_velocity_mse(pred, x0, mask)
    return loss
