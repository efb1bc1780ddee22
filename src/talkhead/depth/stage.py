"""The depth stage of one sequence: choose a backend, run it on every frame, write one
``frame_<t:05d>.npz`` per frame (:mod:`talkhead.depth.io`), a flat ``metrics.json`` of the
stage's own figures (backend, coverage of the face mask) checked against the ``qc`` floors
(:mod:`talkhead.floors`), and optionally a ``timing.json`` (the only figures that differ
between two runs of the same config; nothing reads them).

Backends: ``torch`` (our multi-view stereo, CPU or GPU), ``colmap`` (PatchMatch stereo; needs a
CUDA build of pycolmap or a ``colmap`` binary), ``precomputed`` (Nersemble's 16-bit depth PNGs)
and ``auto`` (COLMAP when dense stereo can run here, else torch). The log says which ran.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..capture.config import FaceMaskConfig
from ..capture.masks import FACE_LABELS, facial_masks, head_masks
from ..capture.readers import read_images
from ..capture.sequence import CaptureSequence
from ..config import from_mapping
from ..errors import ConfigError, DepthError
from ..floors import QCConfig, check_floors, enforce_floors
from ..io import PathLike, save_json, save_metrics
from .config import BACKENDS, DepthConfig
from .io import depth_frame_path, load_depth_frame, save_depth_frame
from .range import sequence_depth_range

log = logging.getLogger(__name__)


def resolve_backend(
    name: str,
    colmap_binary: str = "colmap",
    colmap_available: Callable[[str], tuple[bool, str]] | None = None,
) -> tuple[str, str]:
    """The backend that will run for ``name`` and why (for the log).

    Args:
        name: ``depth.backend`` (one of :data:`~talkhead.depth.config.BACKENDS`).
        colmap_binary: ``depth.colmap.binary``, passed to ``colmap_available``.
        colmap_available: ``binary -> (ok, why)``, whether COLMAP dense stereo can run here
            (default :func:`talkhead.depth.colmap.colmap_dense_available`); consulted only for
            ``auto``.

    Raises:
        ConfigError: ``name`` is not a backend.
    """
    if name not in BACKENDS:
        raise ConfigError(f"depth.backend must be one of {BACKENDS}, not {name!r}")
    if name != "auto":
        return name, f"depth.backend is {name!r}"
    if colmap_available is None:
        from .colmap import colmap_dense_available as colmap_available

    ok, why = colmap_available(colmap_binary)
    if ok:
        return "colmap", f"auto: COLMAP dense stereo is available ({why})"
    return "torch", f"auto: COLMAP dense stereo is unavailable ({why}); using the torch stereo"


def _run_torch(seq, out_dir, cfg, depth_range, device, progress, masks) -> None:
    from .mvs.estimate import estimate_depth_sequence

    cams = [seq.cameras[s] for s in seq.serials]
    frames = ((read_images(seq, t), masks(t)) for t in seq.frame_ids)
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


def _run_colmap(seq, out_dir, cfg, depth_range, masks) -> None:
    from .colmap import estimate_depth_colmap_sequence

    near, far = float(depth_range[:, 0].min()), float(depth_range[:, 1].max())
    cams = [seq.cameras[s] for s in seq.serials]
    with tempfile.TemporaryDirectory(prefix="talkhead-colmap-") as work:
        estimate_depth_colmap_sequence(
            seq.frame_ids,
            lambda t: (read_images(seq, t), masks(t)),
            cams,
            out_dir,
            work,
            (near, far),
            cfg,
        )


def _run_precomputed(seq, out_dir, cfg) -> None:
    from ..capture.readers import read_precomputed_depth
    from .precomputed import depth_frame_from_depth_maps

    if not seq.has_precomputed_depth:
        raise DepthError(
            f"{seq.sequence_dir}: depth.backend is 'precomputed' but the capture ships no depth "
            "maps (timesteps/frame_*/colmap/depth_maps/cam_*.png)"
        )
    cams = [seq.cameras[s] for s in seq.serials]
    for t in seq.frame_ids:
        depth = read_precomputed_depth(seq, t, max_depth=cfg.max_depth)
        frame = depth_frame_from_depth_maps(depth, cams)
        save_depth_frame(
            depth_frame_path(out_dir, t), frame.depth, frame.normal, frame.confidence, seq.serials
        )


def depth_coverage(
    seq: CaptureSequence,
    depth_dir: PathLike,
    face_labels: tuple[int, ...] = FACE_LABELS,
) -> dict[str, float]:
    """The depth stage's own figures, pooled over frames, inside the face mask.

    Returns:
        ``face_pixels``: face-mask pixels over every view and frame; ``face_valid_fraction``:
        the fraction of them with a valid depth (0 when there is none);
        ``median_confidence``: median confidence of those pixels (NaN when there is none). No
        ground truth is involved (figures against ground truth are
        :mod:`talkhead.evaluation`'s).
    """
    valid, total, conf = 0, 0, []
    for t in seq.frame_ids:
        pred = load_depth_frame(depth_frame_path(depth_dir, t))
        mask = facial_masks(seq, t, list(pred.serials), face_labels)
        ok = (pred.depth > 0) & mask
        valid += int(ok.sum())
        total += int(mask.sum())
        conf.append(pred.confidence[ok])
    allconf = np.concatenate(conf) if conf else np.zeros(0)
    return {
        "face_pixels": total,
        "face_valid_fraction": valid / max(total, 1),
        "median_confidence": float(np.median(allconf)) if allconf.size else float("nan"),
    }


def run_depth_stage(
    seq: CaptureSequence,
    out_dir: PathLike,
    settings: Mapping[str, Any],
    metrics_path: PathLike,
    face_mask: Mapping[str, Any] | None = None,
    device: str | None = None,
    progress: bool = True,
    qc: Mapping[str, Any] | None = None,
    timing_path: PathLike | None = None,
) -> dict[str, Any]:
    """Depth of every frame of ``seq`` into ``out_dir``, then its metrics into ``metrics_path``.

    The frames are written into ``.<out_dir name>.partial`` beside ``out_dir`` (one left by an
    interrupted run is removed first) and moved onto ``out_dir`` once every frame is there and
    the figures pass their floors, so ``out_dir`` is never half-written.

    Args:
        settings: the ``depth:`` config section (:class:`~talkhead.depth.config.DepthConfig`;
            missing keys take their defaults).
        face_mask: the ``face_mask`` config section
            (:class:`~talkhead.capture.config.FaceMaskConfig`): the matching masks are the
            alpha mattes above ``alpha_threshold``, the coverage is measured in the face
            ``labels``.
        device: torch device for the torch backend (default: CUDA when available).
        qc: the ``qc`` config section (:class:`~talkhead.floors.QCConfig`): the floor under
            ``face_valid_fraction`` and what a breach does.
        timing_path: where to write ``seconds_per_frame`` and ``megapixel_views_per_second``
            (JSON), or None. They are kept out of ``metrics.json``, which is the same byte for
            byte on every run of the same config.

    Returns:
        The metrics written.

    Raises:
        StageOutputError: a figure below its floor with ``qc.on_breach: fail`` (nothing is
            written then).
        DepthError, ConfigError: from the backends and the settings.
    """
    cfg = from_mapping(DepthConfig, settings, "depth")
    face = from_mapping(FaceMaskConfig, face_mask, "face_mask")
    floors = from_mapping(QCConfig, qc, "qc")
    backend, why = resolve_backend(cfg.backend, cfg.colmap.binary)
    log.info("depth backend: %s (%s)", backend, why)
    out_dir = Path(out_dir)
    partial = out_dir.with_name(f".{out_dir.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        depth_range, source = sequence_depth_range(seq, cfg.range_radius)
        log.info(
            "depth range from %s: %.3f-%.3f m",
            source,
            depth_range[:, 0].min(),
            depth_range[:, 1].max(),
        )
        if device is None:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        start = time.perf_counter()

        def masks(t: int) -> np.ndarray:
            return head_masks(seq, t, alpha_threshold=face.alpha_threshold)

        if backend == "torch":
            _run_torch(seq, partial, cfg.torch, depth_range, device, progress, masks)
        elif backend == "colmap":
            _run_colmap(seq, partial, cfg.colmap, depth_range, masks)
        else:
            _run_precomputed(seq, partial, cfg.precomputed)
        seconds = time.perf_counter() - start
        metrics: dict[str, Any] = {
            "backend": backend,
            "device": device if backend == "torch" else "",
        }
        metrics.update(depth_coverage(seq, partial, face.labels))
        log.info("depth metrics: %s", metrics)
        enforce_floors(
            check_floors(metrics, floors), floors, f"depth of {seq.subject}/{seq.sequence}"
        )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        partial.rename(out_dir)
    finally:
        if partial.exists():
            shutil.rmtree(partial)
    save_metrics(metrics_path, metrics)
    if timing_path is not None:
        megapixels = seq.width * seq.height * seq.n_cameras * seq.n_frames / 1e6
        timing = {
            "seconds": seconds,
            "seconds_per_frame": seconds / max(seq.n_frames, 1),
            "megapixel_views_per_second": megapixels / max(seconds, 1e-9),
        }
        log.info("depth timing: %s", timing)
        save_json(timing_path, timing)
    return metrics
