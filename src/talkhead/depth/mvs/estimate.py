"""The torch multi-view stereo's entry points: depth, normals and confidence of frames.

:func:`estimate_depth_batch` runs the steps of :mod:`talkhead.depth.mvs` on F frames x C views
at once: neighbours (:mod:`.neighbours`), the coarse plane sweep at ``coarse_scale``
(:mod:`.sweep`), narrow-band refinement at full resolution (:mod:`.refine`), then filtering:

- **photometric**: a pixel is invalid where its aggregated cost exceeds ``max_cost``, its
  reference window has too little texture (``min_texture_std``), its minimum lies on the edge
  of the last band, or its depth leaves the view's depth range;
- **geometric**: multi-view consistency (:mod:`.consistency`), then a valid-aware median
  filter (:func:`.filters.masked_median`);
- **normals** from a plane fit over a window of back-projected pixels
  (:func:`talkhead.geometry.normals.normals_from_depth_plane_fit`; pixels without one are
  dropped as isolated), and a **confidence** in [0, 1]: the ZNCC score times the fraction of
  the views that could check a pixel and agree with it.

:func:`estimate_depth` is one frame, :func:`estimate_depth_sequence` a whole sequence,
``batch_frames`` frames at a time. With no depth range given, the range comes from the rig
(:func:`talkhead.depth.range.depth_range_from_rig` with ``DEFAULT_RANGE_RADIUS``).
Conventions: metres, OpenCV cameras, ``world_2_cam`` extrinsics, pixel centres at integer
coordinates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ...config import check
from ...errors import DepthError
from ...geometry.cameras import Camera
from ...geometry.normals import box_filter, normals_from_depth_plane_fit
from ...geometry.triangulation import camera_matrices
from ..range import DEFAULT_RANGE_RADIUS, depth_range_from_rig
from .config import MVSConfig
from .consistency import consistency_count
from .crops import crop, mask_rois, paste
from .filters import masked_median, smooth_base, to_gray
from .neighbours import select_neighbours
from .refine import refine_inverse_depth
from .sweep import plane_sweep, sweep_geometry

__all__ = ["DepthResult", "estimate_depth", "estimate_depth_batch", "estimate_depth_sequence"]


@dataclass
class DepthResult:
    """Depth of one frame.

    Attributes:
        depth: (C, H, W) float32 z-depth in metres, 0 = invalid.
        normal: (C, H, W, 3) float32 unit normals in the camera frame facing the camera,
            0 where the depth is invalid.
        confidence: (C, H, W) float32 in [0, 1], 0 where the depth is invalid.
    """

    depth: np.ndarray
    normal: np.ndarray
    confidence: np.ndarray


def _as_tensor(x, device) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(device)
    return torch.from_numpy(np.ascontiguousarray(x)).to(device)


def _binary_mask(m: torch.Tensor) -> torch.Tensor:
    """bool masks as they are; uint8 alpha > 127; float alpha > 0.5."""
    if m.dtype == torch.bool:
        return m
    if m.is_floating_point():
        return m > 0.5
    return m > 127 if m.dtype == torch.uint8 else m > 0


def _scale_intrinsics(K: torch.Tensor, sx: float, sy: float) -> torch.Tensor:
    """Intrinsics of an image resized by (sx, sy) (pixel centres at integers)."""
    S = torch.tensor(
        [[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]],
        dtype=K.dtype,
        device=K.device,
    )
    return S @ K


def _check_inputs(images, cameras, masks, depth_range) -> np.ndarray:
    """The (F, C, 2) depth range per frame and view; DepthError naming what is wrong."""
    if images.dim() != 5 or images.shape[-1] not in (1, 3):
        raise DepthError(f"images must be (F, C, H, W, 3), got shape {tuple(images.shape)}")
    Fr, C, H, W, _ = images.shape
    if C != len(cameras):
        raise DepthError(f"images hold {C} views but {len(cameras)} cameras were given")
    if C < 2:
        raise DepthError("multi-view stereo needs at least two views")
    if H < 2 or W < 2:
        raise DepthError(f"images are too small ({H}x{W})")
    for cam in cameras:
        if cam.width and cam.height and (cam.width, cam.height) != (W, H):
            raise DepthError(
                f"camera {cam.serial}: calibrated for {cam.width}x{cam.height} but the "
                f"images are {W}x{H}"
            )
    if images.is_floating_point() and not bool(torch.isfinite(images).all()):
        raise DepthError("images contain NaN or infinite values")
    if masks is not None and tuple(masks.shape) != (Fr, C, H, W):
        raise DepthError(f"masks must be (F, C, H, W) = {(Fr, C, H, W)}, got {tuple(masks.shape)}")
    if depth_range is None:
        depth_range = depth_range_from_rig(cameras, DEFAULT_RANGE_RADIUS)
    rng = np.asarray(depth_range, dtype=np.float64)
    if rng.shape == (2,):
        rng = np.broadcast_to(rng, (C, 2))
    if rng.shape == (C, 2):
        rng = np.broadcast_to(rng, (Fr, C, 2))
    if rng.shape != (Fr, C, 2):
        raise DepthError(f"depth_range must be (2,), (C, 2) or (F, C, 2), got {rng.shape}")
    near, far = rng[..., 0], rng[..., 1]
    if not np.all(np.isfinite(rng)) or np.any(near <= 0) or np.any(far <= near):
        raise DepthError("depth_range must hold finite 0 < near < far values")
    return rng


def estimate_depth_batch(
    images,
    cameras: Sequence[Camera],
    masks=None,
    depth_range=None,
    config: MVSConfig | None = None,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Depth, normals and confidence of several frames at once.

    Args:
        images: (F, C, H, W, 3) uint8, or float in [0, 1] (numpy or torch).
        cameras: C cameras (OpenCV, ``world_2_cam`` + K) matching the views.
        masks: optional (F, C, H, W) bool, uint8 alpha (> 127 = head) or float alpha in
            [0, 1] (> 0.5 = head); depth is computed in the masks' bounding boxes (matching
            windows use head pixels only) and returned inside the masks only.
        depth_range: optional (2,), (C, 2) or (F, C, 2) [near, far] z-depth per view; default
            :func:`talkhead.depth.range.depth_range_from_rig` with
            :data:`talkhead.depth.range.DEFAULT_RANGE_RADIUS`.
        config: :class:`MVSConfig`.
        device: torch device.

    Returns:
        depth (F, C, H, W) float32 (0 = invalid), normal (F, C, H, W, 3) float32,
        confidence (F, C, H, W) float32 — torch tensors on ``device``.
    """
    cfg = check(config or MVSConfig(), "depth.torch")
    dev = torch.device(device)
    images = _as_tensor(images, dev)
    if masks is not None:
        masks = _binary_mask(_as_tensor(masks, dev))
    rng = _check_inputs(images, cameras, masks, depth_range)
    Fr, C, H, W, _ = images.shape
    B = Fr * C
    dt = torch.float32

    gray = to_gray(images).reshape(B, H, W)
    mask = (
        masks.reshape(B, H, W)
        if masks is not None
        else torch.ones((B, H, W), dtype=torch.bool, device=dev)
    )
    if cfg.mask_dilate > 0:
        k = 2 * cfg.mask_dilate + 1
        mask_d = F.max_pool2d(mask[:, None].to(dt), k, stride=1, padding=cfg.mask_dilate)[:, 0] > 0
    else:
        mask_d = mask

    Knp, Tnp = camera_matrices(cameras)
    nb_np, nbv_np = select_neighbours(
        cameras, cfg.n_neighbours, cfg.min_neighbour_angle_deg, cfg.max_neighbour_angle_deg
    )
    if not nbv_np.any(axis=1).all():
        bad = [cameras[i].serial for i in np.flatnonzero(~nbv_np.any(axis=1))]
        raise DepthError(
            f"cameras {bad} have no neighbour view within depth.torch.min_neighbour_angle_deg "
            f"({cfg.min_neighbour_angle_deg:g}) .. depth.torch.max_neighbour_angle_deg "
            f"({cfg.max_neighbour_angle_deg:g}) degrees of their viewing direction: widen those "
            "angles or add cameras between them (the depth range, depth.range_radius, and the "
            "1.4 m depth mask, backproject.max_depth, assume a head rig about 1 m from the face)"
        )
    # relative transforms ref -> src, per camera and neighbour (float64, then float32)
    Trel = Tnp[nb_np] @ np.linalg.inv(Tnp)[:, None]  # (C, N, 4, 4)
    frame_of = torch.arange(Fr, device=dev).repeat_interleave(C)
    cam_of = torch.arange(C, device=dev).repeat(Fr)
    nb_idx = torch.from_numpy(nb_np).to(dev)
    src_index = frame_of[:, None] * C + nb_idx[cam_of]  # (B, N) into the B images
    nb_valid = torch.from_numpy(nbv_np).to(dev)[cam_of]
    rng_t = torch.from_numpy(np.array(rng.reshape(B, 2))).to(dev, dt)
    inv_near, inv_far = 1.0 / rng_t[:, 0], 1.0 / rng_t[:, 1]

    pad = cfg.window // 2 + 1
    # ---- coarse sweep (at coarse_scale; full resolution without refinement) -------------
    scale = cfg.coarse_scale if cfg.refine_steps > 0 else 1.0
    if scale < 1.0:
        Hc, Wc = max(2, round(H * scale)), max(2, round(W * scale))
        gray_c = F.interpolate(
            gray[:, None], size=(Hc, Wc), mode="bilinear", antialias=True, align_corners=False
        )[:, 0]
        mask_c = F.interpolate(mask_d[:, None].to(dt), size=(Hc, Wc), mode="area")[:, 0] > 0
        weight_c = F.interpolate(mask[:, None].to(dt), size=(Hc, Wc), mode="area")[:, 0]
        sx, sy = Wc / W, Hc / H
        Kc = np.stack([_scale_intrinsics(torch.from_numpy(k), sx, sy).numpy() for k in Knp])
    else:
        Hc, Wc, gray_c, mask_c, Kc = H, W, gray, mask_d, Knp
        weight_c = mask.to(dt)
    x0, y0, h, w = mask_rois(mask_c, pad)
    rays, A, bv = sweep_geometry(Kc, Trel, nb_idx, cam_of, x0, y0, h, w, dt)
    inv, best, edge, spacing = plane_sweep(
        crop(gray_c, x0, y0, h, w),
        gray_c[src_index],
        rays,
        A,
        bv,
        nb_valid,
        inv_near,
        inv_far,
        cfg.n_planes,
        cfg.coarse_window or cfg.window,
        cfg.best,
        cfg.max_chunk_elements,
        None if masks is None else crop(weight_c, x0, y0, h, w),
    )
    mid = (0.5 * (inv_near + inv_far))[:, None, None].expand(B, Hc, Wc)
    smooth = smooth_base(
        inv,
        cfg.base_median,
        cfg.base_smooth,
        None if masks is None else crop(weight_c, x0, y0, h, w),
    )
    inv_full = paste(mid, smooth, x0, y0)
    if scale < 1.0:
        inv_full = F.interpolate(
            inv_full[:, None], size=(H, W), mode="bilinear", align_corners=False
        )[:, 0]
    spacing = spacing.abs()

    # ---- narrow-band refinement at full resolution --------------------------------------
    x0, y0, h, w = mask_rois(mask_d, pad)
    if cfg.refine_steps > 0:
        rays, A, bv = sweep_geometry(Knp, Trel, nb_idx, cam_of, x0, y0, h, w, dt)
        inv, best, edge = refine_inverse_depth(
            crop(gray, x0, y0, h, w),
            gray[src_index],
            rays,
            A,
            bv,
            nb_valid,
            crop(inv_full, x0, y0, h, w),
            spacing,
            cfg,
            None if masks is None else crop(mask.to(dt), x0, y0, h, w),
        )

    # ---- photometric filtering ----------------------------------------------------------
    ref = crop(gray, x0, y0, h, w)
    mr = box_filter(ref, cfg.window)
    std = (box_filter(ref * ref, cfg.window) - mr * mr).clamp_min(0).sqrt()
    d_crop = 1.0 / inv.clamp_min(1e-6)
    rng_b = rng_t[:, :, None, None]
    ok = (~edge) & (best <= cfg.max_cost) & (std >= cfg.min_texture_std)
    ok &= (d_crop >= rng_b[:, 0]) & (d_crop <= rng_b[:, 1])
    depth = paste(torch.zeros((B, H, W), device=dev, dtype=dt), torch.where(ok, d_crop, 0), x0, y0)
    score = paste(torch.zeros((B, H, W), device=dev, dtype=dt), (1 - best).clamp(0, 1), x0, y0)
    depth = torch.where(mask, depth, torch.zeros_like(depth))

    # ---- geometric consistency ------------------------------------------------------------
    oth_np, othv_np = select_neighbours(
        cameras, C - 1, cfg.min_neighbour_angle_deg, cfg.max_neighbour_angle_deg
    )
    Kt32 = torch.from_numpy(Knp).to(dev)
    Tt = torch.from_numpy(Tnp).to(dev)
    depth = depth.reshape(Fr, C, H, W)
    count, checked = consistency_count(
        depth,
        Kt32,
        Tt,
        torch.from_numpy(oth_np).to(dev),
        torch.from_numpy(othv_np).to(dev),
        cfg.consistency_px,
        cfg.consistency_rel_depth,
    )
    # views that see no valid depth there (occluded, outside, or failed) cannot vote
    need = checked.clamp(min=1, max=max(1, cfg.min_consistent_views))
    depth = torch.where(count >= need, depth, torch.zeros_like(depth)).reshape(B, H, W)
    if cfg.median_filter > 1:
        depth = masked_median(depth, cfg.median_filter)
    normal = normals_from_depth_plane_fit(depth, Kt32.to(dt)[cam_of], cfg.normal_window)
    depth = torch.where(normal.abs().sum(-1) > 0, depth, torch.zeros_like(depth))  # isolated
    frac = (count.to(dt) / checked.clamp_min(1).to(dt)).reshape(B, H, W).clamp(0, 1)
    conf = torch.where(depth > 0, score * frac, torch.zeros_like(depth))
    return (depth.reshape(Fr, C, H, W), normal.reshape(Fr, C, H, W, 3), conf.reshape(Fr, C, H, W))


def estimate_depth(
    images,
    cameras: Sequence[Camera],
    masks=None,
    depth_range=None,
    config: MVSConfig | None = None,
    device: str | torch.device = "cpu",
) -> DepthResult:
    """Depth, normals and confidence of one frame.

    Args:
        images: (C, H, W, 3) uint8 or float in [0, 1].
        cameras: C cameras.
        masks: optional (C, H, W) masks: bool, uint8 alpha or float alpha in [0, 1].
        depth_range: optional (2,) or (C, 2) [near, far] per view (metres); default from the
            rig geometry (:func:`talkhead.depth.range.depth_range_from_rig`).
        config: :class:`MVSConfig`; device: torch device ("cpu", "cuda", ...).

    Returns:
        :class:`DepthResult` of numpy arrays.
    """
    images = _as_tensor(images, "cpu")[None]
    masks = None if masks is None else _as_tensor(masks, "cpu")[None]
    if depth_range is not None and np.asarray(depth_range).ndim == 3:
        raise DepthError("estimate_depth takes one frame: depth_range must be (2,) or (C, 2)")
    d, n, c = estimate_depth_batch(images, cameras, masks, depth_range, config, device)
    return DepthResult(d[0].cpu().numpy(), n[0].cpu().numpy(), c[0].cpu().numpy())


def _unpack_frame(item):
    """A frame item -> (images, masks, depth_range)."""
    if isinstance(item, Mapping):
        return item["images"], item.get("masks"), item.get("depth_range")
    if isinstance(item, tuple | list):
        if not 1 <= len(item) <= 3:
            raise DepthError("a frame must be images, (images, masks) or (images, masks, range)")
        return tuple(item) + (None,) * (3 - len(item))
    return item, None, None


def estimate_depth_sequence(
    frames: Iterable,
    cameras: Sequence[Camera],
    depth_range=None,
    config: MVSConfig | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    total: int | None = None,
) -> Iterator[DepthResult]:
    """Depth of every frame of a sequence, ``config.batch_frames`` frames at a time.

    Args:
        frames: iterable (e.g. a loader) of frames, each ``images`` (C, H, W, 3), a tuple
            ``(images, masks)`` / ``(images, masks, depth_range)``, or a mapping with keys
            ``images``, ``masks``, ``depth_range``.
        cameras: C cameras.
        depth_range: (2,) or (C, 2) used for frames that carry none; default from the rig.
        progress: show a tqdm progress bar; total: its length (default ``len(frames)``).

    Yields:
        :class:`DepthResult` per frame, in order.
    """
    from tqdm.auto import tqdm

    cfg = check(config or MVSConfig(), "depth.torch")
    if total is None and hasattr(frames, "__len__"):
        total = len(frames)  # type: ignore[arg-type]
    if depth_range is None:
        depth_range = depth_range_from_rig(cameras, DEFAULT_RANGE_RADIUS)
    C = len(cameras)
    default_rng = np.broadcast_to(np.asarray(depth_range, dtype=np.float64), (C, 2))
    bar = tqdm(total=total, desc="depth (torch mvs)", unit="frame", disable=not progress)

    def run(batch):
        imgs = torch.stack([_as_tensor(b[0], "cpu") for b in batch])
        have_masks = [b[1] is not None for b in batch]
        if any(have_masks) and not all(have_masks):
            raise DepthError("either every frame of a batch has masks or none has")
        msk = (
            torch.stack([_binary_mask(_as_tensor(b[1], "cpu")) for b in batch])
            if all(have_masks)
            else None
        )
        rng = np.stack(
            [
                np.broadcast_to(
                    np.asarray(b[2] if b[2] is not None else default_rng, dtype=np.float64), (C, 2)
                )
                for b in batch
            ]
        )
        d, n, c = estimate_depth_batch(imgs, cameras, msk, rng, cfg, device)
        d, n, c = d.cpu().numpy(), n.cpu().numpy(), c.cpu().numpy()
        bar.update(len(batch))
        return [DepthResult(d[i], n[i], c[i]) for i in range(len(batch))]

    batch: list = []
    try:
        for item in frames:
            batch.append(_unpack_frame(item))
            if len(batch) == cfg.batch_frames:
                yield from run(batch)
                batch = []
        if batch:
            yield from run(batch)
    finally:
        bar.close()
