"""Depth maps <-> points: pixel rays and back-projection of z-depth maps.

A pixel (u, v) with z-depth d (metres along the optical axis) is the camera-frame point
``d K^-1 [u, v, 1]`` and the world point ``world_2_cam^-1`` of that. Conventions: OpenCV
cameras (x right, y down, z forward), ``world_2_cam`` 4x4 extrinsics, 3x3 intrinsics in
pixels, pixel centres at integer coordinates, depth 0 (or non-finite) = invalid.

:func:`pixel_rays` and :func:`depth_to_points` are numpy; :func:`crop_pixel_rays` is the
batched torch twin used by the multi-view stereo (torch is imported inside it: importing this
module does not import torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import DepthError
from .cameras import unproject

if TYPE_CHECKING:
    import torch

__all__ = ["crop_pixel_rays", "depth_to_points", "pixel_rays"]


def pixel_rays(K: np.ndarray, height: int, width: int) -> np.ndarray:
    """Camera-frame rays ``K^-1 [u, v, 1]`` of every pixel of an image (z component 1).

    Args:
        K: (3, 3) intrinsics; height, width: image size in pixels.

    Returns:
        (H, W, 3) float64; multiplied by a z-depth map it gives the camera-frame points.
    """
    Kinv = np.linalg.inv(np.asarray(K, dtype=np.float64))
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    return np.stack([u, v, np.ones_like(u)], axis=-1) @ Kinv.T


def crop_pixel_rays(
    Kinv: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor, h: int, w: int
) -> torch.Tensor:
    """Rays ``K^-1 [u, v, 1]`` of the pixels of B crops (torch, batched).

    Args:
        Kinv: (B, 3, 3) inverse intrinsics (their dtype and device are the output's).
        x0, y0: (B,) integer pixel offsets of the crops' top-left corners.
        h, w: crop size in pixels (0 offsets and the image size give the whole image).

    Returns:
        (B, h, w, 3) rays (z component 1).
    """
    import torch

    dev, dt = Kinv.device, Kinv.dtype
    jj = torch.arange(w, device=dev, dtype=dt)
    ii = torch.arange(h, device=dev, dtype=dt)
    u = x0.to(dt)[:, None, None] + jj[None, None, :]
    v = y0.to(dt)[:, None, None] + ii[None, :, None]
    u, v = torch.broadcast_tensors(u, v)
    p = torch.stack([u, v, torch.ones_like(u)], dim=-1)
    return torch.einsum("bij,bhwj->bhwi", Kinv, p)


def depth_to_points(
    depth: np.ndarray,
    K: np.ndarray,
    world_2_cam: np.ndarray,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """World points of the valid pixels of a z-depth map (screen -> camera -> world).

    Args:
        depth: (H, W) z-depth in metres; pixels with 0, negative or non-finite depth are
            left out.
        K: (3, 3) intrinsics; world_2_cam: (4, 4) extrinsics.
        mask: optional (H, W) bool; only pixels where it is True are used.

    Returns:
        points: (N, 3) float64 world coordinates; uv: (N, 2) float64 pixel coordinates
        (u = column, v = row) of the same pixels, in row-major pixel order.

    Raises:
        DepthError: ``depth`` is not (H, W) or ``mask`` is not of its shape.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise DepthError(f"depth must be (H, W), got shape {depth.shape}")
    with np.errstate(invalid="ignore"):
        sel = np.isfinite(depth) & (depth > 0)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != depth.shape:
            raise DepthError(f"mask has shape {mask.shape}, the depth map {depth.shape}")
        sel &= mask
    v, u = np.nonzero(sel)
    uv = np.stack([u, v], axis=-1).astype(np.float64)
    points = unproject(
        uv,
        depth[v, u].astype(np.float64),
        np.asarray(K, np.float64),
        np.asarray(world_2_cam, np.float64),
    )
    return points, uv
