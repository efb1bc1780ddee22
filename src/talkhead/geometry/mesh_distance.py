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


def signed_distance_by_normal(
    points: np.ndarray, vertices: np.ndarray, faces: np.ndarray
) -> np.ndarray:
    """Signed distance (N,) of points (N, 3) to a mesh that need not be watertight: the
    distance to the closest surface point, signed by the side of its triangle's plane
    (positive on the side the triangle's normal points to, i.e. outside for outward-wound
    meshes). Exact near the surface; far from an open mesh the sign follows the closest
    triangle (open3d's ray-parity sign assumes a closed mesh, so it is not used).

    Args:
        points: (N, 3); vertices: (V, 3); faces: (F, 3) int, wound outward.

    Returns:
        (N,) float64, in the units of ``vertices``.
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
    ans = scene.compute_closest_points(o3d.core.Tensor(pts))
    closest = ans["points"].numpy().astype(np.float64)
    normal = ans["primitive_normals"].numpy().astype(np.float64)
    offset = pts.astype(np.float64) - closest
    dist = np.linalg.norm(offset, axis=1)
    sign = np.where(np.einsum("ij,ij->i", offset, normal) < 0, -1.0, 1.0)
    return sign * dist
