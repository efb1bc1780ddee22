"""Closest-point correspondences between a model's vertices and observed point clouds.

Each frame's cloud gets a KD-tree once (:class:`PointTargets`); at every refresh the model's
vertices of that frame are matched to their nearest observed points, and pairs are rejected
when they are farther apart than a distance or their normals disagree (MonoNPHM's ICP tracker
rejects at 0.01 m and a normal dot product below 0.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

__all__ = ["Correspondences", "PointTargets", "vertex_normals"]


def vertex_normals(vertices: Tensor, faces: Tensor, eps: float = 1e-12) -> Tensor:
    """Area-weighted unit vertex normals of a batch of meshes.

    Args:
        vertices: (B, V, 3).
        faces: (F, 3) long, counter-clockwise seen from outside (normals point outwards).
        eps: floor of the norm (isolated vertices get a zero normal).

    Returns:
        (B, V, 3) unit normals (zero where a vertex belongs to no face of non-zero area).
    """
    v0, v1, v2 = (vertices[:, faces[:, k]] for k in range(3))
    face_n = torch.cross(v1 - v0, v2 - v0, dim=-1)  # (B, F, 3), length = 2 x area
    out = torch.zeros_like(vertices)
    for k in range(3):
        out.index_add_(1, faces[:, k], face_n)
    return out / out.norm(dim=-1, keepdim=True).clamp_min(eps)


class Correspondences(NamedTuple):
    """Matched observed points for each (frame, model vertex).

    Attributes:
        points: (T, V, 3) nearest observed point (zeros where invalid).
        normals: (T, V, 3) its normal.
        valid: (T, V) bool: a match within the distance whose normals agree.
        distance: (T, V) Euclidean distance to the nearest point; inf where none lies within
            the search distance (and for a frame without points).
    """

    points: np.ndarray
    normals: np.ndarray
    valid: np.ndarray
    distance: np.ndarray


class PointTargets:
    """Per-frame observed point clouds with normals, searchable by nearest neighbour.

    Args:
        points: T arrays (P_t, 3), metres; a frame may have no points.
        normals: T arrays (P_t, 3) unit normals.

    Raises:
        ValueError: lengths or shapes disagree, or a cloud holds non-finite values.
    """

    def __init__(self, points: Sequence[np.ndarray], normals: Sequence[np.ndarray]) -> None:
        if len(points) != len(normals):
            raise ValueError(f"{len(points)} point clouds but {len(normals)} normal sets")
        self.points = [np.asarray(p, dtype=np.float64) for p in points]
        self.normals = [np.asarray(n, dtype=np.float64) for n in normals]
        for t, (p, n) in enumerate(zip(self.points, self.normals, strict=True)):
            if p.ndim != 2 or p.shape[1] != 3 or n.shape != p.shape:
                raise ValueError(
                    f"frame {t}: points {p.shape} and normals {n.shape} must be (P, 3)"
                )
            if not (np.isfinite(p).all() and np.isfinite(n).all()):
                raise ValueError(f"frame {t}: points or normals contain NaN or infinite values")
        self.trees = [cKDTree(p) if len(p) else None for p in self.points]

    def __len__(self) -> int:
        return len(self.points)

    def match(
        self,
        vertices: np.ndarray,
        vertex_normals: np.ndarray | None,
        max_distance: float,
        min_normal_dot: float,
        workers: int = 1,
    ) -> Correspondences:
        """Nearest observed point of every vertex of every frame, with rejection.

        Args:
            vertices: (T, V, 3) model vertices (metres).
            vertex_normals: (T, V, 3) unit model normals, or None (no normal test).
            max_distance: pairs farther apart (metres) are rejected.
            min_normal_dot: pairs whose normals' dot product is below this are rejected.
            workers: threads of the KD-tree queries.

        Returns:
            :class:`Correspondences`.
        """
        T, V, _ = vertices.shape
        if T != len(self):
            raise ValueError(f"{T} frames of vertices but {len(self)} point clouds")
        pts = np.zeros((T, V, 3))
        nrm = np.zeros((T, V, 3))
        dist = np.full((T, V), np.inf)
        for t, tree in enumerate(self.trees):
            if tree is None:
                continue
            # Bounded: a vertex with no point within max_distance is rejected anyway, and an
            # unbounded search for it is what costs (tens of times a bounded one).
            d, idx = tree.query(
                vertices[t], k=1, distance_upper_bound=max_distance, workers=workers
            )
            found = idx < len(self.points[t])
            pts[t][found] = self.points[t][idx[found]]
            nrm[t][found] = self.normals[t][idx[found]]
            dist[t] = d
        valid = dist <= max_distance
        if vertex_normals is not None:
            valid &= np.einsum("tvc,tvc->tv", vertex_normals, nrm) >= min_normal_dot
        pts[~valid] = 0.0
        nrm[~valid] = 0.0
        return Correspondences(points=pts, normals=nrm, valid=valid, distance=dist)
