"""Smooth scalar falloffs shared by the grid layout, the skinning weights and the blendshapes."""

from __future__ import annotations

import numpy as np


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    """Hermite step of x (any shape, same shape out): 0 at ``e0``, 1 at ``e1``, flat beyond;
    ``e1 < e0`` steps down."""
    t = np.clip((np.asarray(x, dtype=np.float64) - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def gauss(P: np.ndarray, c: np.ndarray, sigma: float | np.ndarray) -> np.ndarray:
    """Gaussian bump (N,) at points P (N, 3) around c (3,), peak 1, width ``sigma`` (metres;
    scalar or (3,) per axis)."""
    return np.exp(-0.5 * (((P - c) / sigma) ** 2).sum(axis=1))
