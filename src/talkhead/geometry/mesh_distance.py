"""Point-to-mesh distances (unsigned, metres)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    pass


def point_to_mesh_distance(
    points: np.ndarray, vertices: np.ndarray, faces: np.ndarray
) -> np.ndarray:
    """Unsigned distance (metres) of each point (N, 3) to a triangle mesh (open3d).

    Args:
        points: (N, 3); vertices: (V, 3); faces: (F, 3) int.

    Returns:
        (N,) float64.
    """
    import open3d as o3d

    pts = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    if len(pts) == 0:
        return np.zeros(0)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32)),
        o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.uint32)),
    )
    return scene.compute_distance(o3d.core.Tensor(pts)).numpy().astype(np.float64)
