"""The points stage of one sequence: back-project every frame, lift and fuse the 2D landmarks,
write ``points.npz`` and a flat ``metrics.json`` of the stage's own figures, once they pass the
``qc`` floors (:mod:`talkhead.floors`).

:func:`backproject_sequence` works from a depth folder and per-frame callables (segmentation,
alpha, landmarks), so any capture reader can feed it; :func:`run_backproject_stage` feeds it
from a :class:`~talkhead.capture.sequence.CaptureSequence`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..capture.config import FaceMaskConfig
from ..capture.masks import alpha_mask, face_mask
from ..config import check, from_mapping
from ..depth.io import depth_frame_path, list_depth_frames, load_depth_frame
from ..errors import DepthError
from ..floors import QCConfig, check_floors, enforce_floors
from ..geometry.cameras import Camera
from ..io import PathLike, save_metrics
from .backproject import FrameFn, _camera_list, _check_shape, backproject_frame
from .config import BackprojectConfig
from .io import save_points
from .landmarks import fuse_landmarks, lift_landmarks

if TYPE_CHECKING:
    from ..capture.sequence import CaptureSequence

log = logging.getLogger(__name__)


def backproject_sequence(
    depth_dir: PathLike,
    cameras: Sequence[Camera] | Mapping[str, Camera],
    frames: Sequence[int] | None = None,
    segmentation: FrameFn | None = None,
    alpha: FrameFn | None = None,
    landmarks2d: FrameFn | None = None,
    config: BackprojectConfig | None = None,
    face: FaceMaskConfig | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Back-project every frame of a sequence and lift its landmarks.

    Args:
        depth_dir: folder of ``frame_<t:05d>.npz`` depth files (:mod:`talkhead.depth.io`).
        cameras: calibration, looked up by the depth files' serials.
        frames: frame ids to use (default: every depth file in ``depth_dir``).
        segmentation: ``(t, serials) -> (C, H, W)`` LaPa labels, or None (no facial mask).
        alpha: ``(t, serials) -> (C, H, W)`` mattes, or None.
        landmarks2d: ``(t, serials) -> (C, 68, 3)`` x, y, confidence, or None (no landmarks:
            ``landmarks3d`` all invalid).
        config: settings (the ``backproject`` section).
        face: the facial mask (the ``face_mask`` section: labels, alpha matte).

    Returns:
        ``(data, stats)``: ``data`` holds the ``points.npz`` arrays (``points`` (P, 3)
        float32, ``normals`` (P, 3) float32, ``frame_offsets`` (T+1,) int64, ``landmarks3d``
        (T, 68, 3) float32 (0 where invalid), ``landmarks3d_valid`` (T, 68) bool) plus
        ``frames`` (T,) int64 frame ids; ``stats`` holds ``points_per_frame`` (T,),
        ``skipped_cameras`` ``{t: [serials]}``, ``n_skipped``, ``landmark_inliers`` (T, 68)
        (views agreeing per landmark) and ``landmark_views`` (T, 68) (views that lifted it).

    Raises:
        DepthError: missing or malformed depth files, masks of the wrong size (naming the
            frame and camera), missing calibration.
    """
    cfg = check(config or BackprojectConfig(), "backproject")
    face = check(face or FaceMaskConfig(), "face_mask")
    cfg.check_cameras(len(cameras), f"the calibration of {depth_dir}")
    depth_dir = Path(depth_dir)
    frames = list(frames) if frames is not None else list_depth_frames(depth_dir)
    if not frames:
        raise DepthError(f"{depth_dir}: no depth frames to back-project")
    T = len(frames)
    pts_all, nrm_all = [], []
    offsets = np.zeros(T + 1, dtype=np.int64)
    n_lmk = 68
    lmk3d = np.zeros((T, n_lmk, 3), np.float32)
    lmk_valid = np.zeros((T, n_lmk), bool)
    inliers = np.zeros((T, n_lmk), np.int64)
    views = np.zeros((T, n_lmk), np.int64)
    skipped: dict[int, list[str]] = {}

    for k, t in enumerate(frames):
        path = depth_frame_path(depth_dir, t)
        frame = load_depth_frame(path)
        serials = list(frame.serials)
        cams = _camera_list(cameras, serials, str(path))
        C, H, W = frame.depth.shape
        labels = segmentation(t, serials) if segmentation is not None else None
        mattes = alpha(t, serials) if (alpha is not None and face.use_alpha) else None
        masks = np.ones((C, H, W), bool)
        for what, arr in (("segmentation", labels), ("alpha", mattes)):
            if arr is None:
                continue
            arr = np.asarray(arr)
            if arr.shape[0] != C:
                raise DepthError(
                    f"{path}: {what} of frame {t} has {arr.shape[0]} views, the depth has {C}"
                )
            for i in range(C):
                _check_shape(arr[i], (H, W), f"{what} mask", f"frame {t} camera {serials[i]}")
            masks &= (
                face_mask(arr, face.labels)
                if what == "segmentation"
                else alpha_mask(arr, face.alpha_threshold)
            )
        fp = backproject_frame(
            frame,
            cams,
            masks,
            cfg.min_depth,
            cfg.max_depth,
            cfg.voxel_size or None,
            cfg.min_confidence,
            source=str(path),
        )
        if fp.skipped:
            skipped[int(t)] = list(fp.skipped)
        pts_all.append(fp.points)
        nrm_all.append(fp.normals)
        offsets[k + 1] = offsets[k] + len(fp.points)

        if landmarks2d is not None:
            lm = landmarks2d(t, serials)
            if lm is not None:
                lm = np.asarray(lm)
                if lm.shape != (C, n_lmk, 3):
                    raise DepthError(
                        f"frame {t}: landmarks have shape {lm.shape}, expected {(C, n_lmk, 3)}"
                    )
                lifted, ok = lift_landmarks(
                    lm,
                    frame.depth,
                    cams,
                    cfg.landmark_min_conf,
                    cfg.landmark_search_radius_px,
                    cfg.min_depth,
                    cfg.max_depth,
                    cfg.landmark_max_depth_jump,
                )
                fused, fvalid, inl = fuse_landmarks(
                    lifted,
                    ok,
                    cfg.landmark_max_dev,
                    cfg.landmark_min_views,
                    return_inliers=True,
                )
                lmk3d[k] = fused
                lmk_valid[k] = fvalid
                inliers[k] = inl.sum(axis=0)
                views[k] = ok.sum(axis=0)

    points = np.concatenate(pts_all) if pts_all else np.zeros((0, 3), np.float32)
    normals = np.concatenate(nrm_all) if nrm_all else np.zeros((0, 3), np.float32)
    data = {
        "points": points.astype(np.float32),
        "normals": normals.astype(np.float32),
        "frame_offsets": offsets,
        "landmarks3d": lmk3d,
        "landmarks3d_valid": lmk_valid,
        "frames": np.asarray(frames, dtype=np.int64),
    }
    stats = {
        "frames": [int(t) for t in frames],
        "points_per_frame": np.diff(offsets),
        "skipped_cameras": skipped,
        "n_skipped": int(sum(len(v) for v in skipped.values())),
        "landmark_inliers": inliers,
        "landmark_views": views,
    }
    return data, stats


def points_metrics(stats: Mapping[str, Any], data: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Flat figures for ``metrics.json`` from :func:`backproject_sequence`'s output."""
    ppf = np.asarray(stats["points_per_frame"], dtype=np.float64)
    valid = np.asarray(data["landmarks3d_valid"], dtype=bool)
    inl = np.asarray(stats["landmark_inliers"], dtype=np.float64)
    return {
        "frames": int(len(ppf)),
        "points_per_frame_mean": float(ppf.mean()) if ppf.size else 0.0,
        "points_per_frame_min": float(ppf.min()) if ppf.size else 0.0,
        "skipped_camera_frames": int(stats["n_skipped"]),
        "landmarks_valid_fraction": float(valid.mean()) if valid.size else 0.0,
        "landmark_inlier_views_mean": float(inl[valid].mean()) if valid.any() else 0.0,
    }


def run_backproject_stage(
    seq: CaptureSequence,
    depth_dir: PathLike,
    points_path: PathLike,
    metrics_path: PathLike,
    settings: Mapping[str, Any] | None = None,
    face_mask_settings: Mapping[str, Any] | None = None,
    qc: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """Back-project a sequence's depth maps to ``points.npz`` and write its ``metrics.json``.

    Args:
        seq: the capture sequence (calibration, segmentation, alpha, 2D landmarks).
        depth_dir: the depth stage's ``frame_<t:05d>.npz`` files.
        settings: the ``backproject`` config section (:class:`BackprojectConfig` fields).
        face_mask_settings: the ``face_mask`` config section (:class:`FaceMaskConfig` fields).
        qc: the ``qc`` config section (:class:`~talkhead.floors.QCConfig`): floors under
            ``points_per_frame_min`` and ``landmarks_valid_fraction`` (the latter only when
            the capture has 2D landmarks) and what a breach does.

    Returns:
        The metrics written.

    Raises:
        StageOutputError: a figure below its floor with ``qc.on_breach: fail`` (nothing is
            written then).
        DepthError: from :func:`backproject_sequence`.
    """
    from ..capture.readers import read_alpha, read_landmarks, read_segmentation

    cfg = from_mapping(BackprojectConfig, settings, "backproject")
    face = from_mapping(FaceMaskConfig, face_mask_settings, "face_mask")
    floors = from_mapping(QCConfig, qc, "qc")
    column = {s: i for i, s in enumerate(seq.serials)}
    row = {t: i for i, t in enumerate(seq.frame_ids)}
    lmk = read_landmarks(seq) if seq.has_landmarks else None  # (C, T, 68, 3)
    data, stats = backproject_sequence(
        depth_dir,
        seq.cameras,
        frames=seq.frame_ids,
        segmentation=(lambda t, s: read_segmentation(seq, t, s)) if seq.has_segmentation else None,
        alpha=(lambda t, s: read_alpha(seq, t, s)) if seq.has_alpha else None,
        landmarks2d=(lambda t, s: lmk[[column[x] for x in s], row[t]]) if lmk is not None else None,
        config=cfg,
        face=face,
    )
    metrics = points_metrics(stats, data)
    log.info("back-projection metrics: %s", metrics)
    figures = dict(metrics)
    if lmk is None:
        log.info("the capture has no 2D landmarks: no floor under landmarks_valid_fraction")
        figures.pop("landmarks_valid_fraction")
    enforce_floors(
        check_floors(figures, floors), floors, f"back-projection of {seq.subject}/{seq.sequence}"
    )
    save_points(points_path, data)
    save_metrics(metrics_path, metrics)
    return metrics
