"""Temporal figures of a fitted sequence: the change of per-frame codes between adjacent frames.

Frame ids may have gaps (frames dropped upstream): a change across a gap of ``g`` frames is
divided by ``g``, so the figures are per frame of the capture, whatever was dropped. The
jitter figures are those of the FaceTalk supplement (Table 2: MAE and RMSE of adjacent-frame
expression differences). Pure numpy; the fitting losses use the same convention in torch.
"""

from __future__ import annotations

import numpy as np

__all__ = ["expression_jitter", "frame_differences", "frame_spacing"]


def frame_spacing(frame_ids: np.ndarray | None, n_frames: int) -> np.ndarray:
    """(T - 1,) float gaps between adjacent frames, in frames (1 where consecutive).

    Args:
        frame_ids: (T,) strictly increasing integer frame ids, or None for 0, 1, ..., T - 1.
        n_frames: T, the number of frames the ids belong to.

    Raises:
        ValueError: ``frame_ids`` is not (T,) or not strictly increasing.
    """
    if frame_ids is None:
        return np.ones(max(n_frames - 1, 0))
    ids = np.asarray(frame_ids)
    if ids.shape != (n_frames,):
        raise ValueError(f"frame_ids has shape {ids.shape}, expected ({n_frames},)")
    gaps = np.diff(ids).astype(np.float64)
    if np.any(gaps <= 0):
        raise ValueError(f"frame_ids must be strictly increasing, got {ids.tolist()}")
    return gaps


def frame_differences(codes: np.ndarray, frame_ids: np.ndarray | None = None) -> np.ndarray:
    """(T - 1, E) change of the codes per frame: ``(codes[t] - codes[t-1]) / (f[t] - f[t-1])``.

    Args:
        codes: (T, E) per-frame codes (e.g. FLAME expression), T >= 1.
        frame_ids: (T,) strictly increasing frame ids, or None when consecutive.

    Raises:
        ValueError: ``codes`` is not 2-D, or ``frame_ids`` does not match it.
    """
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2:
        raise ValueError(f"codes has shape {codes.shape}, expected (T, E)")
    gaps = frame_spacing(frame_ids, codes.shape[0])
    return np.diff(codes, axis=0) / gaps[:, None]


def expression_jitter(codes: np.ndarray, frame_ids: np.ndarray | None = None) -> dict[str, float]:
    """Jitter of a code sequence: MAE and RMSE of its adjacent-frame differences.

    With ``d = frame_differences(codes, frame_ids)`` ((T - 1, E), per frame of the capture):
    ``mae = mean |d|`` and ``rmse = sqrt(mean d^2)``, both over frames and components (the
    FaceTalk supplement's Table 2 figures). Both are NaN for fewer than two frames.

    Args:
        codes: (T, E) per-frame codes; frame_ids: (T,) strictly increasing, or None.

    Returns:
        ``{"mae": float, "rmse": float}`` in code units per frame.

    Raises:
        ValueError: as :func:`frame_differences`.
    """
    d = frame_differences(codes, frame_ids)
    if d.size == 0:
        return {"mae": float("nan"), "rmse": float("nan")}
    return {"mae": float(np.mean(np.abs(d))), "rmse": float(np.sqrt(np.mean(d**2)))}
