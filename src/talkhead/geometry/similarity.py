"""Least-squares rigid and similarity transforms between paired 3D point sets.

Given pairs ``src[i] ↔ dst[i]`` and non-negative weights ``w[i]``,

- :func:`umeyama` finds the similarity ``x -> s R x + t`` minimising
  ``Σ w_i |s R src_i + t - dst_i|²`` (Umeyama 1991, "Least-squares estimation of transformation
  parameters between two point patterns", eqs. 40-42), and
- :func:`procrustes` the rigid motion (``s = 1``, Kabsch) minimising the same sum.

With the weighted means ``μ_x``, ``μ_y``, the variance ``σ_x² = Σ w |x - μ_x|² / Σ w`` and the
cross-covariance ``Σ_xy = Σ w (y - μ_y)(x - μ_x)ᵀ / Σ w = U D Vᵀ`` (SVD),

    S = diag(1, 1, det(U) det(V)),  R = U S Vᵀ,  s = tr(D S) / σ_x²,  t = μ_y - s R μ_x.

``S`` is the reflection guard: ``R`` is always a proper rotation (det +1), also when ``dst`` is
a mirror image of ``src`` (then ``R`` is the best rotation, not the reflection).
:func:`apply_similarity` applies a transform. numpy, float64, no state.
"""

from __future__ import annotations

import numpy as np

__all__ = ["apply_similarity", "procrustes", "umeyama"]

#: A point set whose second principal standard deviation is below this fraction of its first
#: is collinear (or coincident) for the purpose of fitting a rotation.
COLLINEAR_RATIO = 1e-9


def _check_pairs(
    src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated float64 ``src``, ``dst`` (N, 3) and weights (N,) normalised to sum to 1."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 3:
        raise ValueError(f"src must be (N, 3), got {src.shape}")
    if dst.shape != src.shape:
        raise ValueError(f"dst must have the shape of src {src.shape}, got {dst.shape}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError("src and dst must be finite (NaN or inf found)")
    n = src.shape[0]
    if weights is None:
        w = np.ones(n)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (n,):
            raise ValueError(f"weights must be ({n},) like the {n} point pairs, got {w.shape}")
        if not np.isfinite(w).all() or (w < 0).any():
            raise ValueError("weights must be finite and non-negative")
    used = int(np.count_nonzero(w))
    if used < 3:
        raise ValueError(f"need at least 3 point pairs with a positive weight, got {used}")
    return src, dst, w / w.sum()


def _spread_ratio(centred: np.ndarray, w: np.ndarray) -> float:
    """Second over first principal standard deviation of weighted centred points (0: a line
    or a single point)."""
    sv = np.linalg.svd(np.sqrt(w)[:, None] * centred, compute_uv=False)
    return float(sv[1] / sv[0]) if sv[0] > 0 else 0.0


def umeyama(
    src: np.ndarray,
    dst: np.ndarray,
    weights: np.ndarray | None = None,
    with_scale: bool = True,
) -> tuple[float, np.ndarray, np.ndarray]:
    """The similarity (or rigid motion) that best maps ``src`` onto ``dst`` in least squares.

    Minimises ``Σ w_i |s R src_i + t - dst_i|²`` over ``s > 0``, ``R ∈ SO(3)``, ``t``
    (Umeyama 1991, eqs. 40-42; ``s = 1`` when ``with_scale`` is false).

    Args:
        src: (N, 3) source points, N >= 3, not collinear.
        dst: (N, 3) their targets, not collinear.
        weights: (N,) non-negative weights (at least 3 positive); None: all 1. Only their
            ratios matter.
        with_scale: estimate ``s``; false: ``s = 1`` (a rigid motion).

    Returns:
        ``(s, R, t)``: the scale (float), (3, 3) rotation (det +1), (3,) translation, such
        that ``dst ≈ s · src @ R.T + t``.

    Raises:
        ValueError: shapes not (N, 3) alike, weights not (N,), non-finite values, negative
            weights, fewer than 3 weighted pairs, collinear or coincident ``src`` or ``dst``.
    """
    src, dst, w = _check_pairs(src, dst, weights)
    mu_x, mu_y = w @ src, w @ dst
    xc, yc = src - mu_x, dst - mu_y
    for name, centred in (("src", xc), ("dst", yc)):
        if _spread_ratio(centred, w) < COLLINEAR_RATIO:
            raise ValueError(
                f"{name} points are collinear or coincident: a rotation is not determined"
            )
    sigma = (w[:, None] * yc).T @ xc  # (3, 3) Σ_xy
    U, D, Vt = np.linalg.svd(sigma)
    if D[1] <= COLLINEAR_RATIO * D[0]:
        raise ValueError("src and dst covary along one direction only: rotation not determined")
    S = np.ones(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0.0:
        S[2] = -1.0  # the reflection guard
    R = (U * S) @ Vt
    if with_scale:
        var_x = float(w @ np.sum(xc * xc, axis=1))
        s = float(D @ S) / var_x
    else:
        s = 1.0
    t = mu_y - s * (R @ mu_x)
    return s, R, t


def procrustes(
    src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The rigid motion that best maps ``src`` onto ``dst`` (weighted Kabsch).

    Minimises ``Σ w_i |R src_i + t - dst_i|²`` over ``R ∈ SO(3)`` (reflections guarded) and
    ``t``; :func:`umeyama` with ``with_scale=False``.

    Args:
        src: (N, 3) source points, N >= 3, not collinear.
        dst: (N, 3) their targets, not collinear.
        weights: (N,) non-negative weights (at least 3 positive); None: all 1.

    Returns:
        ``(R, t)``: (3, 3) rotation (det +1) and (3,) translation, ``dst ≈ src @ R.T + t``.

    Raises:
        ValueError: as :func:`umeyama`.
    """
    _, R, t = umeyama(src, dst, weights, with_scale=False)
    return R, t


def apply_similarity(s: float, R: np.ndarray, t: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``s R x + t`` for every point ``x``.

    Args:
        s: scale; R: (3, 3) rotation; t: (3,) translation.
        points: (..., 3).

    Returns:
        (..., 3) float64 transformed points.

    Raises:
        ValueError: ``R`` not (3, 3), ``t`` not (3,) or ``points`` not (..., 3).
    """
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    if R.shape != (3, 3) or t.shape != (3,):
        raise ValueError(f"R must be (3, 3) and t (3,), got {R.shape} and {t.shape}")
    if points.ndim < 1 or points.shape[-1] != 3:
        raise ValueError(f"points must be (..., 3), got {points.shape}")
    return float(s) * (points @ R.T) + t
