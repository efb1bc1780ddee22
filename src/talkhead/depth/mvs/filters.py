"""Image and depth-map filters of the torch multi-view stereo (torch, batched).

- :func:`to_gray`: the grey images that are matched;
- :func:`smooth_base`: before each narrower sweep starts from an estimate, the estimate is
  median filtered (removes isolated wrong matches; a separable approximation) then box
  filtered over the mask: a smooth base makes the matching windows follow the surface;
- :func:`masked_median`: the last filter of the depth, a median over the valid pixels only.

The box filter itself (:func:`talkhead.geometry.normals.box_filter`) is shared with the
plane-fit normals.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...geometry.normals import box_filter

__all__ = ["masked_median", "smooth_base", "to_gray"]


def to_gray(images: torch.Tensor) -> torch.Tensor:
    """(..., H, W, 3) uint8 or float in [0, 1] -> (..., H, W) float32."""
    x = images.float()
    if images.dtype == torch.uint8:
        x = x / 255.0
    if x.shape[-1] == 1:
        return x[..., 0]
    return x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114


def masked_median(depth: torch.Tensor, k: int) -> torch.Tensor:
    """Median over the valid (> 0) pixels of a k x k window, at valid pixels only.

    Args:
        depth: (B, H, W), 0 = invalid.
    """
    B, H, W = depth.shape
    x = torch.where(depth > 0, depth, torch.full_like(depth, float("nan")))
    cols = F.unfold(x[:, None], k, padding=k // 2)  # (B, k*k, H*W)
    med = torch.nanmedian(cols, dim=1).values.reshape(B, H, W)
    return torch.where(depth > 0, med, torch.zeros_like(depth))


def smooth_base(
    x: torch.Tensor, median: int, box: int, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Outlier-robust smoothing of an inverse-depth estimate before a narrower sweep starts
    from it: a (separable) median, then a box mean over the ``weight`` (mask) pixels only.

    Args:
        x: (B, h, w); weight: optional (B, h, w) in [0, 1].
    """
    y = _median_fill(x, median) if median > 1 else x
    if box > 1:
        w = torch.ones_like(y) if weight is None else weight
        r = box // 2

        def padded_box(t):
            t = F.pad(t[:, None], (r, r, r, r), mode="replicate")[:, 0]
            return box_filter(t, box)[:, r:-r, r:-r]

        num, den = padded_box(y * w), padded_box(w)
        y = torch.where(den > 1e-3, num / den.clamp_min(1e-3), y)
    return y


def _median_fill(x: torch.Tensor, k: int) -> torch.Tensor:
    """Separable k x k median of (B, H, W) (the median of the k column medians of each window:
    a close, much faster approximation of the 2D median; replicate borders)."""
    r = k // 2
    xp = F.pad(x[:, None], (r, r, r, r), mode="replicate")[:, 0]
    y = xp.unfold(1, k, 1).median(dim=-1).values  # (B, H, W + 2r): vertical medians
    return y.unfold(2, k, 1).median(dim=-1).values
