"""QC figure of a fused point cloud and its 3D landmarks."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..io import PathLike
from .draw import new_figure, save_figure


def plot_points(
    points: np.ndarray,
    normals: np.ndarray,
    landmarks3d: np.ndarray,
    landmarks_valid: np.ndarray,
    path: PathLike,
    title: str = "",
    dpi: float = 100,
) -> Path:
    """The cloud coloured by normal (RGB = (n + 1) / 2) with the 3D landmarks (red: valid,
    grey crosses: lifted but rejected; a landmark no view lifted is not drawn), seen from the
    front (x, y) and the side (z, y), metres.

    Args:
        points, normals: (P, 3) world; landmarks3d: (68, 3) world; landmarks_valid: (68,) bool.
    """
    colors = np.clip((normals + 1) / 2, 0, 1)
    ok = np.asarray(landmarks_valid, dtype=bool)
    # A landmark no view could lift is stored at the origin: there is nothing to draw.
    rejected = ~ok & np.any(landmarks3d != 0, axis=-1)
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
    axes[0].legend(loc="lower left", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def points_title(frame: int, n_points: int, metrics: Mapping[str, float]) -> str:
    """``frame 25: 16998 points; 3D landmarks valid 99.6 %`` from a points ``metrics.json``."""
    parts = [f"frame {frame}: {n_points} points"]
    if "landmarks_valid_fraction" in metrics:
        parts.append(f"3D landmarks valid {100 * metrics['landmarks_valid_fraction']:.1f} %")
    return "; ".join(parts)
