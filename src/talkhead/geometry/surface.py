"""Surface reconstruction metrics between two triangle meshes (metres in, metres out).

NPHM's evaluation protocol (``scripts/evaluation/eval.py`` of NPHM, after Occupancy Networks):
points are sampled uniformly by area on both surfaces and each is matched to the other
surface:

- ``accuracy``: mean distance of the prediction's samples to the true mesh;
- ``completeness``: mean distance of the truth's samples to the predicted mesh;
- ``chamfer_l1 = (accuracy + completeness) / 2``;
- ``normal_consistency``: mean ``|cos|`` between a sample's normal and the normal of the other
  surface at its matched point, averaged over both directions (orientation-free);
- ``precision_<t>`` / ``recall_<t>``: fraction of prediction / truth samples within ``t``
  (``<=``) of the other surface, ``fscore_<t> = 2 P R / (P + R)`` (0 when both are 0), for
  each threshold (keys ``fscore_1mm``, ``fscore_5mm``, ...).

Matches are the closest points on the other *mesh* (open3d's ``RaycastingScene``), not the
nearest of the other surface's samples, so the figures carry no sampling floor: identical
meshes give 0 and 1 exactly up to float32 rounding.

Region crop (our choice; NPHM crops its scans by hand): with ``true_region_faces`` the truth is
sampled on the region's triangles only, and a prediction sample counts only when its closest
point on the *whole* true mesh lies on a region triangle. A prediction covering more than the
region (a whole head against the face) is so judged on the part facing the region, and a
spurious blob counts only where it lies nearest to the region.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import EvaluationError

__all__ = ["face_normals", "sample_surface", "surface_metrics", "threshold_name"]

MAX_OVERSAMPLING = 20
"""At most this many times ``n_samples`` prediction samples are drawn to fill a small region."""


def threshold_name(t: float) -> str:
    """The key suffix of a threshold in metres: ``0.001 -> "1mm"``, ``0.0025 -> "2.5mm"``."""
    return f"{round(t * 1000.0, 6):g}mm"


def _check_mesh(vertices: np.ndarray, faces: np.ndarray, name: str) -> tuple[np.ndarray, ...]:
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3:
        raise EvaluationError(
            f"{name} mesh: expected vertices (V, 3) and faces (F, 3), got {v.shape} and {f.shape}"
        )
    if len(v) == 0 or len(f) == 0:
        raise EvaluationError(f"{name} mesh is empty ({len(v)} vertices, {len(f)} faces)")
    if f.min() < 0 or f.max() >= len(v):
        raise EvaluationError(f"{name} mesh: face indices outside [0, {len(v)})")
    if not np.all(np.isfinite(v)):
        raise EvaluationError(f"{name} mesh has non-finite vertices")
    return v, f.astype(np.int64)


def _cross(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    a = v[f[:, 0]]
    return np.cross(v[f[:, 1]] - a, v[f[:, 2]] - a)


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F, 3) unit normals (right-hand winding); zero for degenerate triangles."""
    c = _cross(np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64))
    norm = np.linalg.norm(c, axis=1, keepdims=True)
    return np.divide(c, norm, out=np.zeros_like(c), where=norm > 0)


def sample_surface(
    vertices: np.ndarray,
    faces: np.ndarray,
    n: int,
    rng: np.random.Generator,
    face_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` points uniform by area on a mesh (or on the triangles of ``face_mask``).

    Args:
        vertices: (V, 3); faces: (F, 3) int; n: samples; rng: numpy generator.
        face_mask: (F,) bool triangles to sample, or None for all.

    Returns:
        points (n, 3) float64, their triangles' unit normals (n, 3), and triangle ids (n,).

    Raises:
        EvaluationError: an empty or malformed mesh, a mask of the wrong shape, or nothing of
            positive area to sample.
    """
    v, f = _check_mesh(vertices, faces, "sampled")
    area = 0.5 * np.linalg.norm(_cross(v, f), axis=1)
    if face_mask is not None:
        mask = np.asarray(face_mask)
        if mask.shape != (len(f),) or mask.dtype != bool:
            raise EvaluationError(
                f"face mask: expected ({len(f)},) bool, got {mask.shape} {mask.dtype}"
            )
        area = np.where(mask, area, 0.0)
    total = float(area.sum())
    if not total > 0:
        raise EvaluationError(
            f"nothing to sample: the {'region' if face_mask is not None else 'mesh'} has no "
            "triangle of positive area"
        )
    idx = rng.choice(len(f), size=int(n), p=area / total)
    su = np.sqrt(rng.random(int(n)))
    w = rng.random(int(n))
    b = np.stack([1.0 - su, su * (1.0 - w), su * w], axis=1)  # uniform barycentrics
    points = np.einsum("nk,nkd->nd", b, v[f[idx]])
    return points, face_normals(v, f)[idx], idx


class _ClosestPoints:
    """Closest points on a mesh (open3d RaycastingScene, float32)."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray) -> None:
        import open3d as o3d

        self._o3d = o3d
        self.scene = o3d.t.geometry.RaycastingScene()
        self.scene.add_triangles(
            o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32)),
            o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.uint32)),
        )
        self.normals = face_normals(vertices, faces)

    def __call__(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N,) distances, (N,) triangle ids and (N, 3) triangle normals of the closest
        points to ``points`` (N, 3)."""
        q = np.ascontiguousarray(points, dtype=np.float32)
        ans = self.scene.compute_closest_points(self._o3d.core.Tensor(q))
        closest = ans["points"].numpy().astype(np.float64)
        prim = ans["primitive_ids"].numpy().astype(np.int64)
        return np.linalg.norm(closest - q, axis=1), prim, self.normals[prim]


def _abs_cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(np.einsum("ij,ij->i", a, b))


def surface_metrics(
    pred_vertices: np.ndarray,
    pred_faces: np.ndarray,
    true_vertices: np.ndarray,
    true_faces: np.ndarray,
    *,
    true_region_faces: np.ndarray | None = None,
    n_samples: int = 100_000,
    thresholds: Sequence[float] = (0.001, 0.005),
    seed: int | Sequence[int] = 0,
) -> dict[str, float]:
    """Accuracy, completeness, chamfer-L1, normal consistency and F-scores (module docstring).

    Args:
        pred_vertices, pred_faces: the reconstruction, (V, 3) metres and (F, 3).
        true_vertices, true_faces: the truth, same units.
        true_region_faces: (F_true,) bool triangles of the region evaluated (e.g. the face),
            or None for the whole true mesh.
        n_samples: samples on the true region; the prediction gets as many per unit of area
            of the true mesh's region share (``n_samples * area(true) / area(region)``, at most
            ``MAX_OVERSAMPLING`` times ``n_samples``), so about ``n_samples`` of them survive
            the crop when the prediction covers the whole true mesh.
        thresholds: F-score distances in metres.
        seed: the sampling seed (anything ``numpy.random.default_rng`` takes).

    Returns:
        ``accuracy``, ``completeness``, ``chamfer_l1`` (metres), ``normal_consistency``,
        ``precision_<t>``, ``recall_<t>``, ``fscore_<t>`` per threshold
        (:func:`threshold_name`), and ``pred_samples`` (prediction samples kept by the crop).

    Raises:
        EvaluationError: an empty or malformed mesh, an empty region, or a prediction with no
            part nearest to the region.
    """
    pv, pf = _check_mesh(pred_vertices, pred_faces, "predicted")
    tv, tf = _check_mesh(true_vertices, true_faces, "true")
    rng = np.random.default_rng(seed)
    true_area = 0.5 * np.linalg.norm(_cross(tv, tf), axis=1)
    if true_region_faces is None:
        region = np.ones(len(tf), dtype=bool)
    else:
        region = np.asarray(true_region_faces)
        if region.shape != (len(tf),) or region.dtype != bool:
            raise EvaluationError(
                f"true region: expected ({len(tf)},) bool over the true mesh's triangles, got "
                f"{region.shape} {region.dtype}"
            )
        if not np.any(region & (true_area > 0)):
            raise EvaluationError("true region is empty: no triangle of positive area in it")
    share = float(true_area[region].sum() / true_area.sum())
    n_pred = min(math.ceil(n_samples / share), MAX_OVERSAMPLING * int(n_samples))

    t_pts, t_nrm, _ = sample_surface(tv, tf, n_samples, rng, face_mask=region)
    p_pts, p_nrm, _ = sample_surface(pv, pf, n_pred, rng)
    to_true = _ClosestPoints(tv, tf)
    to_pred = _ClosestPoints(pv, pf)

    d_pred, prim, n_at_true = to_true(p_pts)
    keep = region[prim]
    if not np.any(keep):
        raise EvaluationError(
            "no part of the predicted mesh lies nearest to the true region: the prediction is "
            "elsewhere (wrong frame or units?)"
        )
    d_pred, nc_pred = d_pred[keep], _abs_cos(p_nrm[keep], n_at_true[keep])
    d_true, _, n_at_pred = to_pred(t_pts)
    nc_true = _abs_cos(t_nrm, n_at_pred)

    accuracy, completeness = float(d_pred.mean()), float(d_true.mean())
    out = {
        "accuracy": accuracy,
        "completeness": completeness,
        "chamfer_l1": 0.5 * (accuracy + completeness),
        "normal_consistency": 0.5 * (float(nc_pred.mean()) + float(nc_true.mean())),
    }
    for t in thresholds:
        name = threshold_name(t)
        precision = float(np.mean(d_pred <= t))
        recall = float(np.mean(d_true <= t))
        total = precision + recall
        out[f"precision_{name}"] = precision
        out[f"recall_{name}"] = recall
        out[f"fscore_{name}"] = 2.0 * precision * recall / total if total > 0 else 0.0
    out["pred_samples"] = int(keep.sum())
    return out
