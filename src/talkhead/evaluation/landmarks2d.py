"""Detected 2D landmarks against the true projected ones (a capture with ground truth).

- :func:`true_landmarks2d`: the true 3D landmarks projected into every view, with a visibility
  flag from the true depth (a landmark behind the surface in a view is not visible there);
- :func:`landmark_errors2d`: median pixel error and detection rate per camera;
- :func:`run_evaluate_landmarks2d`: both for a sequence's landmark files, written as the
  evaluate rule's flat ``evaluation.json``;
- :func:`fit_mesh_mapping`: for each of the 68, the MediaPipe face-mesh vertex, or the blend of
  2-3 vertices, closest to the true landmark over all views (how
  :data:`talkhead.preprocess.landmarks.MESH_TO_IBUG68` was checked and adjusted).

Conventions: pixels with centres at integer coordinates; landmarks (C, T, 68, 3) as x, y,
confidence (0 = not detected).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..capture import layout
from ..capture.readers import load_landmark_file
from ..errors import EvaluationError
from ..geometry.cameras import Camera
from ..io import PathLike, save_metrics
from .ground_truth import GroundTruth

if TYPE_CHECKING:
    from ..capture.sequence import CaptureSequence

__all__ = [
    "fit_mesh_mapping",
    "landmark_errors2d",
    "run_evaluate_landmarks2d",
    "true_landmarks2d",
]

log = logging.getLogger(__name__)


def true_landmarks2d(
    truth: GroundTruth,
    cameras: Sequence[Camera],
    frame_ids: Sequence[int],
    visibility_tolerance: float = 0.005,
) -> tuple[np.ndarray, np.ndarray]:
    """True landmarks projected into every view, and whether each is visible there.

    Args:
        truth: the sequence's ground truth (landmarks3d (T, 68, 3), per-frame true depth).
        cameras: C cameras, in the order of the true depth frames' serials.
        frame_ids: the T frame ids (``CaptureSequence.frame_ids``).
        visibility_tolerance: metres; a landmark is visible in a view when the true depth at its
            pixel is within this of its own depth.

    Returns:
        uv: (C, T, 68, 2) float64 pixels; visible: (C, T, 68) bool.

    Raises:
        EvaluationError: ground truth missing, or with another frame count or camera order.
    """
    lm3d = np.asarray(truth.landmarks3d(), dtype=np.float64)
    if lm3d.shape[0] != len(frame_ids):
        raise EvaluationError(
            f"{truth.path}: ground truth has {lm3d.shape[0]} frames, the capture {len(frame_ids)}"
        )
    C, T, L = len(cameras), len(frame_ids), lm3d.shape[1]
    uv = np.zeros((C, T, L, 2))
    visible = np.zeros((C, T, L), dtype=bool)
    for ti, t in enumerate(frame_ids):
        frame = truth.depth_frame(t)
        if [str(s) for s in frame.serials] != [c.serial for c in cameras]:
            raise EvaluationError(f"{truth.path}: true depth of frame {t} has other cameras")
        for c, cam in enumerate(cameras):
            p, z = cam.project(lm3d[ti])
            uv[c, ti] = p
            H, W = frame.depth.shape[1:]
            x = np.rint(p[:, 0]).astype(np.int64)
            y = np.rint(p[:, 1]).astype(np.int64)
            inside = (x >= 0) & (x < W) & (y >= 0) & (y < H) & (z > 0)
            d = frame.depth[c, np.clip(y, 0, H - 1), np.clip(x, 0, W - 1)]
            visible[c, ti] = inside & (np.abs(d - z) < visibility_tolerance)
    return uv, visible


def landmark_errors2d(
    detected: np.ndarray,
    true_uv: np.ndarray,
    visible: np.ndarray,
    serials: Sequence[str],
    min_conf: float = 0.5,
) -> dict[str, float | int | None]:
    """Median pixel error and detection rate of detected landmarks, overall and per camera.

    A visible landmark counts as detected when its confidence is above 0 (a view where the
    detector found no face has confidence 0 everywhere); the pixel error is measured on the
    visible landmarks with confidence >= ``min_conf`` (the ones the points stage lifts).

    Args:
        detected: (C, T, 68, 3) x, y, confidence.
        true_uv: (C, T, 68, 2); visible: (C, T, 68) bool (:func:`true_landmarks2d`).
        serials: the C camera serials (keys of the per-camera figures).
        min_conf: least confidence of a landmark whose error is measured.

    Returns:
        flat dict: ``landmarks2d_median_err_px``, ``landmarks2d_p90_err_px``,
        ``landmarks2d_detection_rate``, ``landmarks2d_confident_fraction``, and per camera
        ``cam_<serial>_median_err_px`` and ``cam_<serial>_detection_rate``; None where nothing
        was measured.

    Raises:
        EvaluationError: shapes that do not match.
    """
    det = np.asarray(detected, dtype=np.float64)
    if det.shape[:-1] != np.shape(visible) or det.shape[-1] != 3 or len(serials) != det.shape[0]:
        raise EvaluationError(
            f"detected landmarks {det.shape}, visibility {np.shape(visible)} and "
            f"{len(serials)} cameras do not match"
        )
    vis = np.asarray(visible, dtype=bool)
    conf = det[..., 2]
    err = np.linalg.norm(det[..., :2] - true_uv, axis=-1)
    measured = vis & (conf >= min_conf) & np.isfinite(err)

    def med(e: np.ndarray, q: float = 50.0) -> float | None:
        return float(np.percentile(e, q)) if e.size else None

    def rate(c: np.ndarray, v: np.ndarray) -> float | None:
        return float((c[v] > 0).mean()) if v.any() else None

    out: dict[str, float | int | None] = {
        "landmarks2d_median_err_px": med(err[measured]),
        "landmarks2d_p90_err_px": med(err[measured], 90.0),
        "landmarks2d_detection_rate": rate(conf, vis),
        "landmarks2d_confident_fraction": float(measured.sum() / max(vis.sum(), 1)),
        "landmarks2d_n_views": int(det.shape[0] * det.shape[1]),
        "landmarks2d_failed_views": int((conf.max(axis=-1) <= 0).sum()),
    }
    for c, serial in enumerate(serials):
        out[f"cam_{serial}_median_err_px"] = med(err[c][measured[c]])
        out[f"cam_{serial}_detection_rate"] = rate(conf[c], vis[c])
    return out


def run_evaluate_landmarks2d(
    seq: CaptureSequence,
    landmarks_seq_dir: PathLike,
    gt_dir: PathLike,
    evaluation_path: PathLike | None = None,
    min_conf: float = 0.5,
) -> dict[str, float | int | None]:
    """Evaluate a sequence's 2D landmark files against the true projected landmarks.

    Args:
        seq: the capture sequence (cameras, frame ids).
        landmarks_seq_dir: the sequence folder holding ``annotations/landmarks2D/cam_*.npy``
            (the landmarks product's, or the capture's own ``seq.sequence_dir``).
        gt_dir: the sequence's ground-truth folder.
        evaluation_path: where to write the flat ``evaluation.json`` (None: not written).
        min_conf: see :func:`landmark_errors2d`.

    Returns:
        the figures of :func:`landmark_errors2d`.

    Raises:
        CaptureError: a landmark file is missing or malformed (naming it);
        EvaluationError: ground truth missing or not matching the capture.
    """
    det = np.stack(
        [
            load_landmark_file(layout.landmarks_path(Path(landmarks_seq_dir), s), seq.n_frames)
            for s in seq.serials
        ]
    )
    cams = [seq.cameras[s] for s in seq.serials]
    uv, visible = true_landmarks2d(GroundTruth.open(gt_dir), cams, seq.frame_ids)
    metrics = landmark_errors2d(det, uv, visible, seq.serials, min_conf)
    log.info("2D landmarks against ground truth: %s", metrics)
    if evaluation_path is not None:
        save_metrics(evaluation_path, metrics)
    return metrics


def _blend_weights(P: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Least-squares weights summing to 1 of k points (N, k, 2) that best give u (N, 2)."""
    k = P.shape[1]
    A = P.transpose(0, 2, 1).reshape(-1, k)
    b = u.reshape(-1)
    A2 = A[:, :-1] - A[:, -1:]
    w, *_ = np.linalg.lstsq(A2, b - A[:, -1], rcond=None)
    return np.append(w, 1.0 - w.sum())


def fit_mesh_mapping(
    mesh_uv: np.ndarray,
    true_uv: np.ndarray,
    visible: np.ndarray,
    n_candidates: int = 8,
    max_blend: int = 3,
    exclude: Sequence[int] = tuple(range(468, 478)),
    min_gain_px: float = 0.05,
) -> list[tuple[tuple[int, ...], tuple[float, ...], float]]:
    """For each true landmark, the mesh vertex or blend of vertices that lands closest to it.

    Per landmark: the ``n_candidates`` vertices with the smallest median distance to it over
    every visible observation; then every pair and triple of them with least-squares weights
    (summing to 1, none below -0.05, clipped at 0); a blend replaces the best so far when its
    median distance is smaller by ``min_gain_px``.

    Args:
        mesh_uv: (C, T, M, 2) detected mesh vertices in pixels (NaN where not detected).
        true_uv: (C, T, L, 2) true landmarks; visible: (C, T, L) bool.
        n_candidates: single vertices considered for blends.
        max_blend: most vertices in a blend (1-3).
        exclude: vertices never used (default: the iris points 468-477, which do not follow
            the eyelids).
        min_gain_px: a blend must beat the best smaller one by this much.

    Returns:
        per landmark: (vertex indices, weights, median distance in pixels).
    """
    mesh_uv = np.asarray(mesh_uv, dtype=np.float64)
    ok = np.isfinite(mesh_uv).all(axis=(-1, -2))  # (C, T)
    out = []
    for j in range(true_uv.shape[2]):
        sel = np.asarray(visible[..., j], dtype=bool) & ok
        P, u = mesh_uv[sel], np.asarray(true_uv)[..., j, :][sel]
        if len(u) == 0:
            raise EvaluationError(f"landmark {j} is never visible in a detected view")
        d1 = np.median(np.linalg.norm(P - u[:, None], axis=-1), axis=0)
        d1[list(exclude)] = np.inf
        top = np.argsort(d1)[:n_candidates]
        best = ((int(top[0]),), (1.0,), float(d1[top[0]]))
        for k in range(2, max_blend + 1):
            for comb in itertools.combinations(top.tolist(), k):
                w = _blend_weights(P[:, comb], u)
                if w.min() < -0.05:
                    continue
                w = np.clip(w, 0.0, None)
                w = np.round(w / w.sum(), 2)
                w[-1] = round(1.0 - w[:-1].sum(), 2)
                e = float(np.median(np.linalg.norm((P[:, comb] * w[:, None]).sum(1) - u, axis=-1)))
                if e < best[2] - min_gain_px:
                    best = (tuple(comb), tuple(float(x) for x in w), e)
        out.append(best)
    return out
