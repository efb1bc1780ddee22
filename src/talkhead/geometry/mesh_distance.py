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

    Far from the surface the closest point is often a vertex or an edge whose triangles
    disagree on the side: for a field in a volume use :func:`signed_distance_by_rays`.

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


def signed_distance_by_rays(
    points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, rays: int = 9
) -> np.ndarray:
    """Signed distance (N,) of points (N, 3) to a mesh of nearly closed parts (a FLAME head,
    open at the neck and the eyes, and its two eyeballs): the distance to the closest surface
    point, negative inside any part. Inside a part is decided by a majority vote of ``rays``
    rays, each counting its crossings of that part (open3d's occupancy): a hole lets a few
    rays out, not most. The solid is the union of the parts (an eyeball's inside is inside).

    Signing by the closest triangle (:func:`signed_distance_by_normal`) fails in the volume:
    where the closest point is a vertex or an edge its triangles disagree, and a grid of such
    values has sign flips deep inside a head that marching cubes turns into surfaces.

    Args:
        points: (N, 3); vertices: (V, 3); faces: (F, 3) int.
        rays: odd number of rays per point and part.

    Returns:
        (N,) float64, in the units of ``vertices``.

    Raises:
        ValueError: ``rays`` is not a positive odd number.
    """
    import open3d as o3d

    if rays < 1 or rays % 2 == 0:
        raise ValueError(f"rays must be a positive odd number, got {rays}")
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    if len(pts) == 0:
        return np.zeros(0)
    v = o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32))
    f = np.asarray(faces, dtype=np.uint32)
    query = o3d.core.Tensor(pts)
    inside = np.zeros(len(pts), dtype=bool)
    for part in mesh_components(f):
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(v, o3d.core.Tensor(np.ascontiguousarray(f[part])))
        inside |= scene.compute_occupancy(query, nsamples=rays).numpy() > 0.5
    return np.where(inside, -1.0, 1.0) * point_to_mesh_distance(pts, vertices, faces)


def mesh_components(faces: np.ndarray) -> list[np.ndarray]:
    """The connected parts of a mesh: a list of (F_i,) int64 triangle indices, one per part
    (triangles sharing a vertex are connected), largest first.

    Args:
        faces: (F, 3) int.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(f) == 0:
        return []
    n = int(f.max()) + 1
    rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
    cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    face_label = label[f[:, 0]]
    parts = [np.flatnonzero(face_label == k) for k in np.unique(face_label)]
    return sorted(parts, key=len, reverse=True)
