"""QC figure of a fused point cloud and its 3D landmarks."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..io import PathLike
from .draw import new_figure, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_points(
    points: np.ndarray,
    normals: np.ndarray,
    landmarks3d: np.ndarray,
    landmarks_valid: np.ndarray,
    path: PathLike,
    title: str = "",
    dpi: float = 100,
) -> Path:
    """:func:`points_figure` written to ``path`` (PNG)."""
    return save_figure(
        points_figure(points, normals, landmarks3d, landmarks_valid, title, dpi), path
    )


def missing_notes(n_points: int, landmarks3d: np.ndarray, landmarks_valid: np.ndarray) -> list[str]:
    """What a points figure cannot show, as lines for the reader (empty when all is there):
    no points, no 3D landmark lifted, or every lifted landmark rejected."""
    ok = np.asarray(landmarks_valid, dtype=bool)
    lifted = _lifted(landmarks3d)
    notes = []
    if n_points == 0:
        notes.append("no points in this frame")
    if not lifted.any():
        notes.append("no 3D landmark: no view lifted one")
    elif not ok.any():
        notes.append(f"no valid 3D landmark: all {int(lifted.sum())} lifted were rejected")
    return notes


def _lifted(landmarks3d: np.ndarray) -> np.ndarray:
    """(68,) landmarks some view lifted: finite and not at the origin, where the stage stores
    those no view could lift."""
    lm = np.asarray(landmarks3d, dtype=np.float64).reshape(-1, 3)
    return np.all(np.isfinite(lm), axis=-1) & np.any(lm != 0, axis=-1)


def points_figure(
    points: np.ndarray,
    normals: np.ndarray,
    landmarks3d: np.ndarray,
    landmarks_valid: np.ndarray,
    title: str = "",
    dpi: float = 100,
) -> Figure:
    """The cloud coloured by normal (RGB = (n + 1) / 2) with the 3D landmarks (red: valid,
    grey crosses: lifted but rejected; a landmark no view lifted is not drawn), seen from the
    front (x, y) and the side (z, y), metres. What cannot be drawn (no points, no valid
    landmark) is said in red under the title (:func:`missing_notes`).

    Args:
        points, normals: (P, 3) world; landmarks3d: (68, 3) world; landmarks_valid: (68,) bool.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    normals = np.asarray(normals, dtype=np.float64).reshape(-1, 3)
    landmarks3d = np.asarray(landmarks3d, dtype=np.float64).reshape(-1, 3)
    colors = np.clip((normals + 1) / 2, 0, 1)
    lifted = _lifted(landmarks3d)
    ok = np.asarray(landmarks_valid, dtype=bool) & lifted
    rejected = ~ok & lifted
    fig = new_figure((11, 6), dpi, constrained=False)
    axes = fig.subplots(1, 2)
    for ax, (a, b, name) in zip(axes, [(0, 1, "front (x, y)"), (2, 1, "side (z, y)")], strict=True):
        # As a camera facing the subject sees it: the subject's left (+x) on the right.
        ax.scatter(points[:, a], points[:, b], c=colors, s=0.5, linewidths=0)
        ax.scatter(
            landmarks3d[ok, a], landmarks3d[ok, b], c="red", s=12, label="3D landmark (valid)"
        )
        if rejected.any():
            ax.scatter(
                landmarks3d[rejected, a],
                landmarks3d[rejected, b],
                c="0.6",
                s=12,
                marker="x",
                label="3D landmark (rejected)",
            )
        ax.set_aspect("equal")
        ax.set_title(name)
        ax.set_xlabel("metres")
    if ok.any() or rejected.any():
        axes[0].legend(loc="lower left", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    notes = missing_notes(len(points), landmarks3d, landmarks_valid)
    if notes:
        fig.text(0.5, 0.925, "; ".join(notes), ha="center", va="top", color="tab:red", fontsize=10)
    return fig


def points_title(frame: int, n_points: int, metrics: Mapping[str, float | None]) -> str:
    """``frame 25: 16998 points; 3D landmarks valid 99.6 %`` from a points ``metrics.json``
    (``valid n/a`` where the figure is null or not a number)."""
    parts = [f"frame {frame}: {n_points} points"]
    if "landmarks_valid_fraction" in metrics:
        value = metrics["landmarks_valid_fraction"]
        ok = isinstance(value, (int, float)) and math.isfinite(value)
        parts.append(f"3D landmarks valid {f'{100 * value:.1f} %' if ok else 'n/a'}")
    return "; ".join(parts)
