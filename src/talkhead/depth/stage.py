"""The depth stage of one sequence: choose a backend, run it on every frame, write one
``frame_<t:05d>.npz`` per frame (:mod:`talkhead.depth.io`) and a flat ``metrics.json``.

Backends: ``torch`` (our multi-view stereo, CPU or GPU), ``colmap`` (PatchMatch stereo; needs a
CUDA build of pycolmap or a ``colmap`` binary), ``precomputed`` (Nersemble's 16-bit depth PNGs)
and ``auto`` (COLMAP when dense stereo can run here, else torch). The log says which ran.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..capture.masks import face_mask
from ..capture.sequence import (
    CaptureSequence,
    read_alpha,
    read_images,
    read_segmentation,
)
from ..errors import ConfigError, DepthError
from ..evaluation.depth import DepthErrorAccumulator
from ..io import PathLike, save_metrics
from .io import depth_frame_path, load_depth_frame, save_depth_frame
from .range import DEFAULT_RANGE_RADIUS, sequence_depth_range

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "colmap", "precomputed")


def resolve_backend(name: str, colmap_binary: str = "colmap") -> tuple[str, str]:
    """The backend that will run for ``name`` and why (for the log)."""
    if name not in BACKENDS:
        raise ConfigError(f"depth.backend must be one of {BACKENDS}, not {name!r}")
    if name != "auto":
        return name, f"depth.backend is {name!r}"
    from .colmap import colmap_dense_available

    ok, why = colmap_dense_available(colmap_binary)
    if ok:
        return "colmap", f"auto: COLMAP dense stereo is available ({why})"
    return "torch", f"auto: COLMAP dense stereo is unavailable ({why}); using the torch stereo"


def _frame_masks(seq: CaptureSequence, t: int) -> np.ndarray:
    return read_alpha(seq, t) > 0.5


def _run_torch(seq, out_dir, settings, depth_range, device, progress) -> None:
    from .mvs.config import MVSConfig
    from .mvs.estimate import estimate_depth_sequence

    cfg = MVSConfig(**settings)
    cams = [seq.cameras[s] for s in seq.serials]
    frames = ((read_images(seq, t), _frame_masks(seq, t)) for t in seq.frame_ids)
    results = estimate_depth_sequence(
        frames,
        cams,
        depth_range=depth_range,
        config=cfg,
        device=device,
        progress=progress,
        total=seq.n_frames,
    )
    for t, res in zip(seq.frame_ids, results, strict=True):
        save_depth_frame(
            depth_frame_path(out_dir, t), res.depth, res.normal, res.confidence, seq.serials
        )


def _run_colmap(seq, out_dir, settings, depth_range) -> None:
    from .colmap import ColmapConfig, estimate_depth_colmap_sequence

    near, far = float(depth_range[:, 0].min()), float(depth_range[:, 1].max())
    cfg = ColmapConfig.from_dict(settings)
    cams = [seq.cameras[s] for s in seq.serials]
    with tempfile.TemporaryDirectory(prefix="talkhead-colmap-") as work:
        estimate_depth_colmap_sequence(
            seq.frame_ids,
            lambda t: (read_images(seq, t), _frame_masks(seq, t)),
            cams,
            out_dir,
            work,
            (near, far),
            cfg,
        )


def _run_precomputed(seq, out_dir, settings) -> None:
    from ..capture.sequence import read_precomputed_depth
    from .precomputed import depth_frame_from_depth_maps

    if not seq.has_precomputed_depth:
        raise DepthError(
            f"{seq.sequence_dir}: depth.backend is 'precomputed' but the capture ships no depth "
            "maps (timesteps/frame_*/colmap/depth_maps/cam_*.png)"
        )
    cams = [seq.cameras[s] for s in seq.serials]
    for t in seq.frame_ids:
        depth = read_precomputed_depth(seq, t, max_depth=settings.get("max_depth", 2.0))
        frame = depth_frame_from_depth_maps(depth, cams)
        save_depth_frame(
            depth_frame_path(out_dir, t), frame.depth, frame.normal, frame.confidence, seq.serials
        )


def evaluate_depth(
    seq: CaptureSequence,
    depth_dir: PathLike,
    gt_dir: PathLike | None = None,
    face_labels: tuple[int, ...] = tuple(range(1, 10)),
) -> dict[str, float]:
    """Depth metrics of a sequence, pooled over frames, inside the face mask.

    With ground truth (``gt_dir/depth/frame_<t>.npz``): median and 90th-percentile absolute
    depth error (mm), fraction of face pixels with a valid depth, median normal angle error.
    Without: the valid fraction and the median confidence inside the face mask.
    """
    acc = DepthErrorAccumulator()
    valid, total, conf = 0, 0, []
    for t in seq.frame_ids:
        pred = load_depth_frame(depth_frame_path(depth_dir, t))
        labels = read_segmentation(seq, t, list(pred.serials))
        mask = (
            face_mask(labels, face_labels)
            if labels is not None
            else read_alpha(seq, t, list(pred.serials)) > 0.5
        )
        if gt_dir is not None:
            gt = load_depth_frame(Path(gt_dir) / "depth" / f"frame_{t:05d}.npz")
            order = [gt.index(s) for s in pred.serials]
            acc.update(pred.depth, gt.depth[order], mask, pred.normal, gt.normal[order])
        ok = (pred.depth > 0) & mask
        valid += int(ok.sum())
        total += int(mask.sum())
        conf.append(pred.confidence[ok])
    out: dict[str, float] = acc.compute() if gt_dir is not None else {}
    out.setdefault("valid_fraction", valid / max(total, 1))
    allconf = np.concatenate(conf) if conf else np.zeros(0)
    out["median_confidence"] = float(np.median(allconf)) if allconf.size else float("nan")
    return out


def run_depth_stage(
    seq: CaptureSequence,
    out_dir: PathLike,
    settings: Mapping[str, Any],
    metrics_path: PathLike,
    gt_dir: PathLike | None = None,
    face_labels: tuple[int, ...] = tuple(range(1, 10)),
    device: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Depth of every frame of ``seq`` into ``out_dir``, then its metrics into ``metrics_path``.

    Args:
        settings: the ``depth:`` config section (backend and per-backend options).
        gt_dir: ground truth of the sequence (synthetic studio), or None.
        device: torch device for the torch backend (default: CUDA when available).
    """
    backend, why = resolve_backend(
        settings["backend"], settings.get("colmap", {}).get("binary", "colmap")
    )
    log.info("depth backend: %s (%s)", backend, why)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    margin = float(settings.get("range_radius", DEFAULT_RANGE_RADIUS))
    depth_range, source = sequence_depth_range(seq, margin)
    log.info(
        "depth range from %s: %.3f-%.3f m", source, depth_range[:, 0].min(), depth_range[:, 1].max()
    )
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    start = time.perf_counter()
    if backend == "torch":
        _run_torch(seq, out_dir, dict(settings.get("torch", {})), depth_range, device, progress)
    elif backend == "colmap":
        _run_colmap(seq, out_dir, dict(settings.get("colmap", {})), depth_range)
    else:
        _run_precomputed(seq, out_dir, dict(settings.get("precomputed", {})))
    seconds = time.perf_counter() - start
    metrics: dict[str, Any] = {"backend": backend, "device": device if backend == "torch" else ""}
    metrics.update(evaluate_depth(seq, out_dir, gt_dir, face_labels))
    megapixels = seq.width * seq.height * seq.n_cameras * seq.n_frames / 1e6
    metrics["seconds_per_frame"] = seconds / max(seq.n_frames, 1)
    metrics["megapixel_views_per_second"] = megapixels / max(seconds, 1e-9)
    log.info("depth metrics: %s", metrics)
    save_metrics(metrics_path, metrics)
    return metrics
