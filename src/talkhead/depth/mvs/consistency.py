"""Multi-view geometric consistency of depth maps (part of step 4 of the stereo).

A pixel's depth is kept when enough other views agree with it: the pixel is lifted to 3D,
projected into another view, that view's depth there is lifted and projected back
(:func:`consistency_count`). A view *can check* a pixel when the projection lands on its
valid depth and the pixel is not hidden behind the surface it sees there; it *agrees* when the
round trip comes back within ``max_reproj_px`` of the pixel and ``max_rel_depth`` x its depth.
Views that cannot check a pixel (occluded, outside, or failed there) do not vote.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ...geometry.depth_maps import crop_pixel_rays
from .crops import crop, mask_rois, paste

__all__ = ["consistency_count"]


def _apply(
    M: torch.Tensor,
    x: Sequence[torch.Tensor],
    t: torch.Tensor | None = None,
    transpose: bool = False,
) -> list[torch.Tensor]:
    """Per-view 3x3 matrices applied to channel-split maps: ``M x (+ t)``.

    Args:
        M: (C, 3, 3); x: three (F, C, h, w) maps; t: optional (C, 3); transpose: use M^T.

    Returns:
        three (F, C, h, w) maps (elementwise arithmetic: far faster than batched matmuls of
        tiny matrices on CPU).
    """
    c = M.transpose(1, 2) if transpose else M
    c = c[None, :, :, :, None, None]  # (1, C, 3, 3, 1, 1)
    out = []
    for i in range(3):
        y = c[:, :, i, 0] * x[0] + c[:, :, i, 1] * x[1] + c[:, :, i, 2] * x[2]
        if t is not None:
            y = y + t[None, :, i, None, None]
        out.append(y)
    return out


def consistency_count(
    depth: torch.Tensor,
    K: torch.Tensor,
    world_2_cam: torch.Tensor,
    others: torch.Tensor,
    others_valid: torch.Tensor,
    max_reproj_px: float = 1.0,
    max_rel_depth: float = 0.005,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Number of other views whose depth agrees with each pixel's depth.

    A pixel p of view r with depth d is lifted to 3D and projected into view s; the depth
    of s there (bilinear, all four taps valid) is lifted and projected back into r. View s
    *can check* p when the projection lands on valid depth and p is not behind the surface
    s sees there (occluded in s), and *agrees* when the round trip lands within
    ``max_reproj_px`` of p and its depth within ``max_rel_depth`` x d.

    Args:
        depth: (F, C, H, W) z-depth, 0 = invalid.
        K: (C, 3, 3); world_2_cam: (C, 4, 4).
        others: (C, M) int64 views to check; others_valid: (C, M) bool.

    Returns:
        agree, checked: (F, C, H, W) int64 counts (0 where the depth is invalid).
    """
    Fr, C, H, W = depth.shape
    dev, dt = depth.device, depth.dtype
    count = torch.zeros((Fr * C, H, W), dtype=torch.long, device=dev)
    checked = torch.zeros_like(count)
    valid_full = (depth > 0).reshape(Fr * C, H, W)
    if not bool(valid_full.any()):
        return count.reshape(Fr, C, H, W), checked.reshape(Fr, C, H, W)
    # work on the common-size crops that hold every view's valid pixels
    x0, y0, h, w = mask_rois(valid_full, 0)
    d = crop(depth.reshape(Fr * C, H, W), x0, y0, h, w)
    valid = d > 0
    Kd, Td = K.double(), world_2_cam.double()
    Kinv = torch.linalg.inv(Kd).to(dt)
    Kf = Kd.to(dt)
    cam = torch.arange(C, device=dev).repeat(Fr)
    rays = crop_pixel_rays(Kinv[cam], x0, y0, h, w)  # (F*C, h, w, 3)
    X = [(d * rays[..., i]).reshape(Fr, C, h, w) for i in range(3)]
    d = d.reshape(Fr, C, h, w)
    valid = valid.reshape(Fr, C, h, w)
    u = (x0[:, None, None] + torch.arange(w, device=dev)[None, None, :]).to(dt)
    v = (y0[:, None, None] + torch.arange(h, device=dev)[None, :, None]).to(dt)
    u, v = u.reshape(Fr, C, 1, w), v.reshape(Fr, C, h, 1)
    maps = torch.stack([depth, (depth > 0).to(dt)], dim=2)  # (F, C, 2, H, W)
    n = torch.zeros((Fr, C, h, w), dtype=torch.long, device=dev)
    n_checked = torch.zeros_like(n)
    Trel_all = (Td[others] @ torch.linalg.inv(Td)[:, None]).to(dt)  # (C, M, 4, 4) ref -> other

    def kcoef(Km, i, j):
        return Km[None, :, i, j, None, None]

    for m in range(others.shape[1]):
        s = others[:, m]
        R, t = Trel_all[:, m, :3, :3], Trel_all[:, m, :3, 3]
        Xs = _apply(R, X, t)
        zs = Xs[2]
        zsi = 1.0 / torch.where(zs > 1e-6, zs, torch.ones_like(zs))
        Ks = Kf[s]
        us = (kcoef(Ks, 0, 0) * Xs[0] + kcoef(Ks, 0, 1) * Xs[1]) * zsi + kcoef(Ks, 0, 2)
        vs = kcoef(Ks, 1, 1) * Xs[1] * zsi + kcoef(Ks, 1, 2)
        grid = torch.stack([us * (2.0 / (W - 1)) - 1.0, vs * (2.0 / (H - 1)) - 1.0], dim=-1)
        samp = F.grid_sample(
            maps[:, s].reshape(Fr * C, 2, H, W),
            grid.reshape(Fr * C, h, w, 2),
            mode="bilinear",
            padding_mode="zeros",
            align_corners=True,
        )
        samp = samp.reshape(Fr, C, 2, h, w)
        d_s = samp[:, :, 0]
        # behind the surface that s sees there: occluded in s, which then cannot check it
        ok = (samp[:, :, 1] > 0.999) & (zs > 1e-6) & (zs <= d_s * (1 + max_rel_depth))
        ok &= valid & others_valid[None, :, m, None, None]
        # back: pixel (us, vs) of s at depth d_s -> reference camera -> reference pixel
        Kis = Kinv[s]
        Xb = [
            d_s * (kcoef(Kis, i, 0) * us + kcoef(Kis, i, 1) * vs + kcoef(Kis, i, 2))
            for i in range(3)
        ]
        Xr = _apply(R, [Xb[i] - t[None, :, i, None, None] for i in range(3)], transpose=True)
        zr = Xr[2]
        zri = 1.0 / torch.where(zr > 1e-6, zr, torch.ones_like(zr))
        ur = (kcoef(Kf, 0, 0) * Xr[0] + kcoef(Kf, 0, 1) * Xr[1]) * zri + kcoef(Kf, 0, 2)
        vr = kcoef(Kf, 1, 1) * Xr[1] * zri + kcoef(Kf, 1, 2)
        err2 = (ur - u) ** 2 + (vr - v) ** 2
        agree = ok & (zr > 1e-6) & (err2 < max_reproj_px**2) & ((zr - d).abs() < max_rel_depth * d)
        n += agree
        n_checked += ok
    count = paste(count, n.reshape(Fr * C, h, w), x0, y0)
    checked = paste(checked, n_checked.reshape(Fr * C, h, w), x0, y0)
    return count.reshape(Fr, C, H, W), checked.reshape(Fr, C, H, W)
