"""Accuracy of depth and normal maps against ground truth.

Errors are pooled over pixels (and over frames with :class:`DepthErrorAccumulator`): a
sequence's median is the median of all its pixels' errors, not an average of per-frame
medians.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["DepthErrorAccumulator", "depth_errors", "depth_metrics", "depth_metrics_over_frames"]


def _np(x) -> np.ndarray | None:
    if x is None:
        return None
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def depth_errors(
    pred_depth,
    gt_depth,
    mask,
    pred_normal=None,
    gt_normal=None,
) -> dict[str, np.ndarray | int]:
    """Per-pixel errors inside ``mask`` where the ground truth has a surface.

    Args:
        pred_depth: (..., H, W) predicted z-depth in metres, 0 (or non-finite) = invalid.
        gt_depth: (..., H, W) true z-depth, 0 = no surface.
        mask: (..., H, W) bool pixels to evaluate (e.g. the face).
        pred_normal, gt_normal: optional (..., H, W, 3) normals in the same frame.

    Returns:
        ``abs_err`` (K,) metres at pixels where both depths are valid, ``angle_deg`` (M,)
        normal angles at those pixels (empty without normals), ``n_eval`` (pixels of the
        mask with ground truth) and ``n_valid`` (of those, with a valid prediction).
    """
    pd, gd = _np(pred_depth).astype(np.float64), _np(gt_depth).astype(np.float64)
    m = _np(mask).astype(bool)
    if pd.shape != gd.shape or m.shape != gd.shape:
        raise ValueError(f"depth maps and mask differ in shape: {pd.shape}, {gd.shape}, {m.shape}")
    evalm = m & np.isfinite(gd) & (gd > 0)
    valid = evalm & np.isfinite(pd) & (pd > 0)
    out: dict[str, np.ndarray | int] = {
        "abs_err": np.abs(pd[valid] - gd[valid]),
        "n_eval": int(evalm.sum()),
        "n_valid": int(valid.sum()),
        "angle_deg": np.zeros(0),
    }
    if pred_normal is not None and gt_normal is not None:
        pn = _np(pred_normal).astype(np.float64)[valid]
        gn = _np(gt_normal).astype(np.float64)[valid]
        pn_len, gn_len = np.linalg.norm(pn, axis=-1), np.linalg.norm(gn, axis=-1)
        ok = (pn_len > 1e-6) & (gn_len > 1e-6)
        cos = (pn[ok] * gn[ok]).sum(-1) / (pn_len[ok] * gn_len[ok])
        out["angle_deg"] = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return out


def _summary(abs_err: np.ndarray, angle: np.ndarray, n_eval: int, n_valid: int) -> dict[str, float]:
    nan = float("nan")
    e_mm = abs_err * 1000.0
    return {
        "depth_median_abs_err_mm": float(np.median(e_mm)) if e_mm.size else nan,
        "depth_p90_abs_err_mm": float(np.percentile(e_mm, 90)) if e_mm.size else nan,
        "depth_mean_abs_err_mm": float(e_mm.mean()) if e_mm.size else nan,
        "depth_outliers_5mm_fraction": float((e_mm > 5).mean()) if e_mm.size else nan,
        "valid_fraction": n_valid / n_eval if n_eval else nan,
        "normal_median_angle_deg": float(np.median(angle)) if angle.size else nan,
        "n_eval_pixels": int(n_eval),
    }


def depth_metrics(pred_depth, gt_depth, mask, pred_normal=None, gt_normal=None) -> dict[str, float]:
    """Named accuracy figures of one (or a stack of) depth map(s).

    Args: as :func:`depth_errors`.

    Returns:
        ``depth_median_abs_err_mm``, ``depth_p90_abs_err_mm``, ``depth_mean_abs_err_mm``,
        ``depth_outliers_5mm_fraction`` (of valid pixels), ``valid_fraction`` (of the mask's
        pixels with ground truth, those with a valid prediction), ``normal_median_angle_deg``
        (NaN without normals), ``n_eval_pixels``. NaN where nothing can be measured.
    """
    e = depth_errors(pred_depth, gt_depth, mask, pred_normal, gt_normal)
    return _summary(e["abs_err"], e["angle_deg"], e["n_eval"], e["n_valid"])


@dataclass
class DepthErrorAccumulator:
    """Pools per-pixel errors over frames; :meth:`compute` gives :func:`depth_metrics` keys."""

    _err: list[np.ndarray] = field(default_factory=list)
    _ang: list[np.ndarray] = field(default_factory=list)
    n_eval: int = 0
    n_valid: int = 0

    def update(self, pred_depth, gt_depth, mask, pred_normal=None, gt_normal=None) -> None:
        e = depth_errors(pred_depth, gt_depth, mask, pred_normal, gt_normal)
        self._err.append(e["abs_err"].astype(np.float32))
        self._ang.append(e["angle_deg"].astype(np.float32))
        self.n_eval += e["n_eval"]
        self.n_valid += e["n_valid"]

    def compute(self) -> dict[str, float]:
        err = np.concatenate(self._err) if self._err else np.zeros(0)
        ang = np.concatenate(self._ang) if self._ang else np.zeros(0)
        return _summary(err.astype(np.float64), ang.astype(np.float64), self.n_eval, self.n_valid)


def depth_metrics_over_frames(frames: Iterable[tuple]) -> dict[str, float]:
    """Pooled metrics over frames, each ``(pred_depth, gt_depth, mask[, pred_normal,
    gt_normal])``."""
    acc = DepthErrorAccumulator()
    for item in frames:
        acc.update(*item)
    return acc.compute()
