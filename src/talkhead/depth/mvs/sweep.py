"""Plane-sweep matching: cost volume, winner-take-all, sub-plane fit (step 2 of the stereo).

Hypotheses are inverse depths per reference pixel: fronto-parallel planes sampled uniformly in
inverse depth over a view's depth range (:func:`plane_sweep`, the coarse sweep), or per-pixel
offsets of a previous estimate (:mod:`talkhead.depth.mvs.refine`). For every hypothesis each
neighbour is warped onto the reference pixels with ``grid_sample`` (back-project the reference
pixel at the hypothesis depth, project into the neighbour; :func:`sweep_geometry`); the
photometric cost is ``1 - ZNCC`` over a square window on grayscale, computed with box filters
(weighted by the reference mask when there is one, so that windows on the silhouette compare
head pixels only), and aggregated over the neighbours as the mean of the best ``n_best``
(robust to occlusion) (:func:`sweep_cost`). Winner-take-all, then a parabola fit around the
minimum gives sub-plane precision (:func:`winner_take_all`).

Everything is batched over B = frames x views and runs on any torch device.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...geometry.depth_maps import crop_pixel_rays
from ...geometry.normals import box_filter

__all__ = ["plane_sweep", "sweep_cost", "sweep_geometry", "winner_take_all"]


def sweep_geometry(
    K: np.ndarray,
    ref_to_src: np.ndarray,
    nb_index: torch.Tensor,
    view_of: torch.Tensor,
    x0: torch.Tensor,
    y0: torch.Tensor,
    h: int,
    w: int,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The warp from reference crops into their neighbours, as :func:`sweep_cost` takes it.

    A reference pixel with ray r (``K_ref^-1 [u, v, 1]``) at depth d lands on the homogeneous
    source pixel ``d A r + b`` with ``A = K_src R_rel`` and ``b = K_src t_rel``.

    Args:
        K: (C, 3, 3) float64 intrinsics of the sweep's image scale.
        ref_to_src: (C, N, 4, 4) float64 transforms from each view's camera frame to its N
            neighbours' (``world_2_cam[src] @ world_2_cam[ref]^-1``).
        nb_index: (C, N) int64 neighbour views of each view (on the sweep's device).
        view_of: (B,) int64 view of each batch item.
        x0, y0: (B,) crop offsets; h, w: crop size.
        dtype: of the outputs (the matrices are built in float64 first).

    Returns:
        rays (B, h, w, 3), A (B, N, 3, 3), b (B, N, 3).
    """
    dev = nb_index.device
    Kt = torch.from_numpy(np.ascontiguousarray(K)).to(dev)
    R_rel = torch.from_numpy(np.ascontiguousarray(ref_to_src[..., :3, :3])).to(dev)
    t_rel = torch.from_numpy(np.ascontiguousarray(ref_to_src[..., :3, 3])).to(dev)
    A = (Kt[nb_index] @ R_rel).to(dtype)[view_of]
    bv = torch.einsum("cnij,cnj->cni", Kt[nb_index], t_rel)
    rays = crop_pixel_rays(torch.linalg.inv(Kt).to(dtype)[view_of], x0, y0, h, w)
    return rays, A, bv.to(dtype)[view_of]


def plane_sweep(
    ref: torch.Tensor,
    srcs: torch.Tensor,
    rays: torch.Tensor,
    A: torch.Tensor,
    bvec: torch.Tensor,
    nb_valid: torch.Tensor,
    inv_near: torch.Tensor,
    inv_far: torch.Tensor,
    n_planes: int,
    window: int,
    n_best: int,
    max_elements: int,
    weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fronto-parallel plane sweep over each item's depth range.

    ``n_planes`` planes uniform in inverse depth from ``1 / near`` to ``1 / far``, the cost of
    :func:`sweep_cost`, then :func:`winner_take_all`.

    Args:
        ref, srcs, rays, A, bvec, nb_valid, window, n_best, max_elements, weight: as
            :func:`sweep_cost`.
        inv_near, inv_far: (B,) inverse near and far depths (1 / metres).
        n_planes: number of planes (>= 3).

    Returns:
        inv, best, edge: as :func:`winner_take_all`; spacing: (B,) signed inverse-depth step
        between consecutive planes (negative: the planes go from near to far).
    """
    steps = torch.linspace(0, 1, n_planes, device=ref.device, dtype=ref.dtype)
    inv_hyp = inv_near[:, None] + (inv_far - inv_near)[:, None] * steps[None]  # (B, D)
    spacing = (inv_far - inv_near) / (n_planes - 1)
    cost = sweep_cost(
        ref,
        srcs,
        rays,
        A,
        bvec,
        nb_valid,
        inv_hyp[..., None, None],
        window,
        n_best,
        max_elements,
        weight,
    )
    inv, best, edge = winner_take_all(cost, inv_hyp[..., None, None], spacing)
    return inv, best, edge, spacing


def sweep_cost(
    ref: torch.Tensor,
    srcs: torch.Tensor,
    rays: torch.Tensor,
    A: torch.Tensor,
    bvec: torch.Tensor,
    nb_valid: torch.Tensor,
    inv_hyp: torch.Tensor,
    window: int,
    n_best: int,
    max_elements: int,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Aggregated ``1 - ZNCC`` of every inverse-depth hypothesis.

    Args:
        ref: (B, h, w) reference crops (grey).
        srcs: (B, N, Hs, Ws) source images (grey, full frame at the sweep's scale).
        rays: (B, h, w, 3) reference rays K_ref^-1 [u, v, 1] of the crop pixels.
        A: (B, N, 3, 3) K_src R_rel; bvec: (B, N, 3) K_src t_rel (reference -> source).
        nb_valid: (B, N) bool, False for padding neighbours.
        inv_hyp: (B, D, h, w) or (B, D, 1, 1) inverse depths.
        window: ZNCC window side.
        n_best: neighbour costs averaged (smallest first): the best half of an item's valid
            neighbours (rounded up), at most ``n_best``.
        max_elements: warped samples held at once (items and hypotheses are chunked).
        weight: optional (B, h, w) window weights in [0, 1] (the reference mask: windows
            straddling the silhouette are compared on the head pixels only).

    Returns:
        (B, D, h, w) cost in [0, 2] (2 = no usable neighbour).
    """
    B, N, Hs, Ws = srcs.shape
    h, w = ref.shape[-2:]
    D = inv_hyp.shape[1]
    # pixel -> normalised grid coordinates + 1 (so that dividing by z gives grid + 1)
    S = torch.tensor([2.0 / (Ws - 1), 2.0 / (Hs - 1), 1.0], device=ref.device, dtype=ref.dtype)
    an = torch.einsum("bnij,bhwj->bnhwi", A * S[:, None], rays)  # (B, N, h, w, 3)
    bn = bvec * S
    # the best half of each item's available neighbours, at most n_best
    n_best_b = ((nb_valid.sum(dim=1) + 1) // 2).clamp(1, n_best)
    # a constant offset per crop keeps the moments well conditioned and the ZNCC exact
    refc = ref - ref.mean(dim=(1, 2), keepdim=True)
    # Weighted window moments, kept multiplied by w0 = box(weight) (the window's weight):
    # ZNCC = (box(w s r) - box(w s) m_r) / sqrt(v_r w0 (box(w s s) - box(w s)^2 / w0)).
    if weight is None:
        w0 = torch.ones_like(ref)
        w0inv = None
        mr = box_filter(refc, window)
        vr = box_filter(refc * refc, window) - mr * mr
    else:
        w0 = box_filter(weight, window)
        w0inv = torch.where(w0 > 1e-3, 1.0 / w0.clamp_min(1e-3), torch.zeros_like(w0))
        mr = box_filter(refc * weight, window) * w0inv
        vr = box_filter(refc * refc * weight, window) * w0inv - mr * mr
        w0inv = w0inv[:, None, None]
        weight = weight[:, None, None]
    vrw0 = (vr.clamp_min(0) * w0)[:, None, None]
    mr = mr[:, None, None]
    refc = refc[:, None, None]  # (B, 1, 1, h, w)
    ok_px = (w0 > 1e-3)[:, None, None] & nb_valid[:, :, None, None, None]  # (B, N, 1, h, w)
    # a channel of ones sampled with zero padding tells which samples fall inside the image
    srcs2 = torch.stack([srcs, torch.ones_like(srcs)], dim=2)  # (B, N, 2, Hs, Ws)
    out = torch.empty((B, D, h, w), device=ref.device, dtype=ref.dtype)
    per_plane = N * h * w
    b_chunk = max(1, min(B, max_elements // per_plane))
    for b0 in range(0, B, b_chunk):
        b1 = min(B, b0 + b_chunk)
        nb = b1 - b0
        d_chunk = max(1, max_elements // (nb * per_plane))
        src_b = srcs2[b0:b1].reshape(nb * N, 2, Hs, Ws)
        for d0 in range(0, D, d_chunk):
            d1 = min(D, d0 + d_chunk)
            nd = d1 - d0
            depth = (1.0 / inv_hyp[b0:b1, d0:d1]).expand(nb, nd, h, w)[:, None, ..., None]
            # homogeneous source pixels, scaled so that x/z and y/z are grid_sample coordinates
            p = torch.addcmul(bn[b0:b1, :, None, None, None], depth, an[b0:b1, :, None])
            z = p[..., 2:3]
            grid = p[..., :2] / z
            grid -= 1.0
            warped = F.grid_sample(
                src_b,
                grid.reshape(nb * N, nd * h, w, 2),
                mode="bilinear",
                padding_mode="zeros",
                align_corners=True,
            )
            warped = warped.reshape(nb, N, 2, nd, h, w)
            s = warped[:, :, 0]
            inside = (warped[:, :, 1] > 0.999) & (z[..., 0] > 0) & ok_px[b0:b1]
            if weight is None:
                sw = s
            else:
                sw = s * weight[b0:b1]
            a1 = box_filter(sw, window)
            a2 = box_filter(sw * s, window)
            cov = box_filter(sw * refc[b0:b1], window) - a1 * mr[b0:b1]
            a1 = a1 * a1
            if w0inv is not None:
                a1 *= w0inv[b0:b1]
            vs = (a2 - a1).clamp_min_(0)
            cost = 1.0 - cov * torch.rsqrt(vs * vrw0[b0:b1] + 1e-12)
            cost = torch.where(inside & (vs > 1e-8), cost.clamp_(0.0, 2.0), 2.0)
            out[b0:b1, d0:d1] = _mean_smallest(cost, n_best_b[b0:b1])
    return out


def _mean_smallest(cost: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Mean of the ``k[b]`` smallest values along dim 1 of item b.

    Partial bubble sort with elementwise min/max (for the few neighbours of a sweep this is
    several times faster than ``sort`` or ``topk``).

    Args:
        cost: (B, N, ...); k: (B,) int64 in [1, N].

    Returns:
        (B, ...).
    """
    N = cost.shape[1]
    k_max = int(k.max())
    if k_max >= N and bool((k == N).all()):
        return cost.mean(dim=1)
    c = list(cost.unbind(dim=1))
    for i in range(k_max):  # bring the i-th smallest to position i
        for j in range(N - 1, i, -1):
            lo = torch.minimum(c[j - 1], c[j])
            c[j] = torch.maximum(c[j - 1], c[j])
            c[j - 1] = lo
    total = c[0].clone()
    out = torch.empty_like(total)
    kb = k.view(-1, *([1] * (total.dim() - 1)))
    for kk in range(1, k_max + 1):
        if kk > 1:
            total += c[kk - 1]
        out = torch.where(kb == kk, total / kk, out)
    return out


def winner_take_all(cost: torch.Tensor, inv_hyp: torch.Tensor, spacing: torch.Tensor):
    """Winner-take-all with a parabola fit around the minimum.

    Args:
        cost: (B, D, h, w); inv_hyp: (B, D, h, w) or (B, D, 1, 1), uniformly spaced by
            ``spacing`` (B,) along D.

    Returns:
        inv: (B, h, w) refined inverse depth; best: (B, h, w) cost at the minimum;
        edge: (B, h, w) bool, minimum on the first or last hypothesis.
    """
    B, D, h, w = cost.shape
    idx = cost.argmin(dim=1, keepdim=True)
    c0 = cost.gather(1, idx)
    cm = cost.gather(1, (idx - 1).clamp_min(0))
    cp = cost.gather(1, (idx + 1).clamp_max(D - 1))
    denom = cm - 2 * c0 + cp
    interior = (idx > 0) & (idx < D - 1)
    off = torch.where(
        interior & (denom > 1e-9), 0.5 * (cm - cp) / denom.clamp_min(1e-9), torch.zeros_like(c0)
    ).clamp(-0.5, 0.5)
    inv0 = inv_hyp.expand(B, D, h, w).gather(1, idx)
    inv = inv0 + off * spacing[:, None, None, None]
    return inv[:, 0], c0[:, 0], ~interior[:, 0]
