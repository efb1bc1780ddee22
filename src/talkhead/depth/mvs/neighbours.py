"""Source views of every reference view (step 1 of the torch multi-view stereo).

Each reference view is matched against the ``n_neighbours`` cameras with the smallest angle
between viewing directions (optical axes), excluding nearly identical views (below
``min_angle_deg``: no baseline) and very wide baselines (above ``max_angle_deg``: the views see
too different a surface). The geometric-consistency check asks every admissible view.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...geometry.cameras import Camera
from ...geometry.triangulation import camera_matrices

__all__ = ["select_neighbours"]


def select_neighbours(
    cameras: Sequence[Camera],
    n_neighbours: int,
    min_angle_deg: float = 2.0,
    max_angle_deg: float = 60.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Source views of every reference view, nearest viewing direction first.

    Args:
        cameras: C cameras.
        n_neighbours: neighbours per view.
        min_angle_deg, max_angle_deg: admissible angle between optical axes.

    Returns:
        index: (C, n_neighbours) int64 camera indices (a view's own index where it has fewer
            admissible neighbours).
        valid: (C, n_neighbours) bool.
    """
    _, T = camera_matrices(cameras)
    axes = T[:, 2, :3]  # optical axis (camera z) in world coordinates
    angle = np.degrees(np.arccos(np.clip(axes @ axes.T, -1.0, 1.0)))
    C = len(cameras)
    index = np.tile(np.arange(C)[:, None], (1, n_neighbours))
    valid = np.zeros((C, n_neighbours), dtype=bool)
    for i in range(C):
        ok = [
            j
            for j in np.argsort(angle[i], kind="stable")
            if j != i and min_angle_deg <= angle[i, j] <= max_angle_deg
        ]
        ok = ok[:n_neighbours]
        index[i, : len(ok)] = ok
        valid[i, : len(ok)] = True
    return index.astype(np.int64), valid
