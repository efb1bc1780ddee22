"""Regions of interest: common-size crops around the masks (torch, batched).

The stereo works on the bounding box of each view's mask (grown by a margin) rather than the
whole image; the boxes of a batch share one size (the largest) so that they stack into one
tensor. :func:`mask_rois` finds them, :func:`crop` cuts them out, :func:`paste` writes
results back into full-size maps.
"""

from __future__ import annotations

import torch

__all__ = ["crop", "mask_rois", "paste"]


def crop(x: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Crop (B, ..., H, W) to (B, ..., h, w) at per-item offsets."""
    return torch.stack(
        [
            x[b, ..., int(y0[b]) : int(y0[b]) + h, int(x0[b]) : int(x0[b]) + w]
            for b in range(x.shape[0])
        ]
    )


def paste(dst: torch.Tensor, src: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor) -> torch.Tensor:
    """Write (B, ..., h, w) crops into a copy of (B, ..., H, W) at per-item offsets."""
    out = dst.clone()
    h, w = src.shape[-2:]
    for b in range(dst.shape[0]):
        out[b, ..., int(y0[b]) : int(y0[b]) + h, int(x0[b]) : int(x0[b]) + w] = src[b]
    return out


def mask_rois(masks: torch.Tensor, pad: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """Common-size crops holding each mask's bounding box grown by ``pad``.

    Args:
        masks: (B, H, W) bool.

    Returns:
        x0, y0: (B,) int64 offsets; h, w: crop size (the largest box, clipped to the image).
    """
    B, H, W = masks.shape
    rows = masks.any(dim=2)
    cols = masks.any(dim=1)
    boxes = []
    for b in range(B):
        r = torch.nonzero(rows[b]).flatten()
        c = torch.nonzero(cols[b]).flatten()
        if r.numel() == 0:
            boxes.append((0, 0, 1, 1))
            continue
        ya, yb = max(int(r[0]) - pad, 0), min(int(r[-1]) + pad + 1, H)
        xa, xb = max(int(c[0]) - pad, 0), min(int(c[-1]) + pad + 1, W)
        boxes.append((xa, ya, xb, yb))
    w = max(xb - xa for xa, _, xb, _ in boxes)
    h = max(yb - ya for _, ya, _, yb in boxes)
    x0 = [min(xa, W - w) for xa, _, _, _ in boxes]
    y0 = [min(ya, H - h) for _, ya, _, _ in boxes]
    dev = masks.device
    return (torch.tensor(x0, device=dev), torch.tensor(y0, device=dev), h, w)
