"""Surface normals of z-depth maps, in the camera frame, facing the camera.

Two estimators:

- :func:`normals_from_depth_plane_fit` (torch, batched): a least-squares plane through the
  back-projected valid pixels of a square window around each pixel (the normal is the
  eigenvector of the smallest eigenvalue of the window's point covariance). Smooth and robust
  to noise; what the torch multi-view stereo gives its depth maps.
- :func:`normals_from_depth_finite_differences` (numpy, one map): the cross product of the
  tangents along x and y, finite differences of the back-projected neighbours (central where
  both are on the same surface, else one-sided), ignoring neighbours across a depth jump. Local
  and exact on planes; what depth maps that ship without normals get (precomputed depth).

:func:`box_filter` is the windowed mean of the plane fit (the multi-view stereo's matching
windows use it too). Conventions: metres, OpenCV camera frame (x right, y down, z forward),
3x3 intrinsics, pixel centres at integer coordinates, depth 0 = invalid; a normal faces the
camera when ``n . X < 0`` for its camera-frame point X. Importing this module does not import
torch (the torch functions import it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .depth_maps import crop_pixel_rays, pixel_rays

if TYPE_CHECKING:
    import torch

__all__ = [
    "box_filter",
    "normals_from_depth_finite_differences",
    "normals_from_depth_plane_fit",
]


def _inv_counts(n: int, r: int, device, dtype) -> torch.Tensor:
    """(n,) 1 / number of in-range taps of a window of radius r along an axis of length n."""
    import torch

    i = torch.arange(n, device=device)
    return 1.0 / ((i + r).clamp(max=n - 1) - (i - r).clamp(min=0) + 1).to(dtype)


def box_filter(x: torch.Tensor, window: int) -> torch.Tensor:
    """Mean over a ``window`` x ``window`` square, borders averaged over the pixels inside
    the image (separable sums of shifted copies: exact, and several times faster on CPU than
    ``avg_pool2d``).

    Args:
        x: (..., H, W).
        window: odd side of the square (1 = identity).

    Returns:
        (..., H, W).
    """
    import torch.nn.functional as F

    H, W = x.shape[-2:]
    r = window // 2
    if r == 0:
        return x.clone()
    xp = F.pad(x, (r, r))
    s = xp[..., 0:W] + xp[..., 1 : W + 1]
    for i in range(2, window):
        s += xp[..., i : i + W]
    sp = F.pad(s, (0, 0, r, r))
    t = sp[..., 0:H, :] + sp[..., 1 : H + 1, :]
    for i in range(2, window):
        t += sp[..., i : i + H, :]
    ch = _inv_counts(H, r, x.device, x.dtype)
    cw = _inv_counts(W, r, x.device, x.dtype)
    return t * (ch[:, None] * cw[None, :])


def normals_from_depth_plane_fit(
    depth: torch.Tensor, K: torch.Tensor, window: int = 7
) -> torch.Tensor:
    """Unit normals in the camera frame from a plane fit over a window of valid pixels.

    The valid pixels of the ``window`` x ``window`` square around a pixel are back-projected;
    the normal is the direction of least spread of those points (the least-squares plane
    through them), computed in float64 from box-filtered first and second moments.

    Args:
        depth: (B, H, W) z-depth in metres, 0 = invalid (any float dtype and device).
        K: (B, 3, 3) or (3, 3) intrinsics.
        window: side of the fitting window (odd, pixels).

    Returns:
        (B, H, W, 3) normals of ``depth``'s dtype, facing the camera (n . X < 0), 0 where the
        depth is invalid or the window holds fewer than 6 valid pixels.
    """
    import torch

    B, H, W = depth.shape
    dev = depth.device
    d = depth.double()
    Kd = K.double().expand(B, 3, 3) if K.dim() == 3 else K.double()[None].expand(B, 3, 3)
    zero = torch.zeros(B, dtype=torch.long, device=dev)
    X = d[..., None] * crop_pixel_rays(torch.linalg.inv(Kd), zero, zero, H, W)  # (B, H, W, 3)
    wgt = (d > 0).double()
    m0 = box_filter(wgt, window)
    ctr = X.sum(dim=(1, 2)) / wgt.sum(dim=(1, 2)).clamp_min(1)[:, None]  # per-map offset
    Xc = (X - ctr[:, None, None]) * wgt[..., None]
    m1 = box_filter(Xc.permute(0, 3, 1, 2), window)  # (B, 3, H, W)
    outer = (Xc[..., :, None] * Xc[..., None, :]).reshape(B, H, W, 9).permute(0, 3, 1, 2)
    m2 = box_filter(outer, window)
    ok = (wgt > 0) & (m0 * window * window >= 6 - 1e-6)
    n_out = torch.zeros((B, H, W, 3), dtype=depth.dtype, device=dev)
    if not bool(ok.any()):
        return n_out
    sel = ok.nonzero(as_tuple=True)
    mean = m1.permute(0, 2, 3, 1)[sel] / m0[sel][:, None]
    cov = m2.permute(0, 2, 3, 1)[sel].reshape(-1, 3, 3) / m0[sel][:, None, None]
    cov = cov - mean[:, :, None] * mean[:, None, :]
    _, vecs = torch.linalg.eigh(cov)
    n = vecs[:, :, 0]
    flip = (n * X[sel]).sum(-1) > 0
    n = torch.where(flip[:, None], -n, n)
    n_out[sel] = torch.nn.functional.normalize(n, dim=-1).to(depth.dtype)
    return n_out


def normals_from_depth_finite_differences(
    depth: np.ndarray, K: np.ndarray, max_rel_jump: float = 0.05
) -> np.ndarray:
    """Camera-frame unit normals of a z-depth map from finite differences, facing the camera.

    The tangents are finite differences of the back-projected points along x and y (central
    where both neighbours are valid, else one-sided); neighbours across a depth jump larger
    than ``max_rel_jump`` x depth are not used. Normals are ``cross(dP/dv, dP/du)`` oriented
    so that ``n . P < 0``.

    Args:
        depth: (H, W) z-depth in metres, 0 = invalid.
        K: (3, 3) intrinsics (pixel centres at integers).
        max_rel_jump: relative depth difference beyond which two neighbours are not on the
            same surface.

    Returns:
        (H, W, 3) float32 unit normals; 0 where the depth is invalid or has no valid neighbour
        in x or in y.
    """
    d = np.asarray(depth, dtype=np.float64)
    H, W = d.shape
    P = pixel_rays(K, H, W) * d[..., None]
    valid = np.isfinite(d) & (d > 0)

    def tangent(axis: int) -> tuple[np.ndarray, np.ndarray]:
        # neighbours at -1 and +1 along ``axis`` (padded with invalid)
        def shifted(a: np.ndarray, s: int, fill) -> np.ndarray:
            out = np.full_like(a, fill)
            src = [slice(None)] * a.ndim
            dst = [slice(None)] * a.ndim
            if s > 0:
                src[axis], dst[axis] = slice(s, None), slice(None, -s)
            else:
                src[axis], dst[axis] = slice(None, s), slice(-s, None)
            out[tuple(dst)] = a[tuple(src)]
            return out

        with np.errstate(invalid="ignore"):
            dn, dp = shifted(d, -1, 0.0), shifted(d, 1, 0.0)
            vn = shifted(valid, -1, False) & (np.abs(dn - d) <= max_rel_jump * d)
            vp = shifted(valid, 1, False) & (np.abs(dp - d) <= max_rel_jump * d)
        Pn, Pp = shifted(P, -1, 0.0), shifted(P, 1, 0.0)
        t = np.where((vn & vp)[..., None], 0.5 * (Pp - Pn), np.where(vp[..., None], Pp - P, P - Pn))
        return t, valid & (vn | vp)

    tx, okx = tangent(1)
    ty, oky = tangent(0)
    n = np.cross(ty, tx)
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    ok = okx & oky & (norm[..., 0] > 0)
    n = np.where(ok[..., None], n / np.where(norm > 0, norm, 1.0), 0.0)
    flip = np.einsum("hwc,hwc->hw", n, P) > 0
    n[flip] *= -1.0
    return n.astype(np.float32)
