"""Meshes of a signed distance function by marching cubes (PyMCubes), dense or coarse-to-fine.

The SDF is sampled on a regular grid of ``resolution`` samples per axis spanning the bounds
(corners included), the zero level set is extracted by marching cubes (Lorensen and Cline 1987,
as PyMCubes implements it), and the vertices are mapped back from grid indices to the
coordinates of the bounds. Convention: negative inside, positive outside; triangles are wound
so that their normals (right-hand rule) point outwards, towards positive values.

Coarse-to-fine: a grid of ``coarse`` samples per axis is evaluated first. A fine sample is
evaluated only when the coarse sample nearest to it has ``|sdf - level|`` below the coarse
cell's diagonal plus the fine cell's diagonal; every other fine sample takes the sign of that
coarse value times a large distance. For a distance function (1-Lipschitz) a skipped sample
lies more than one fine diagonal away from the surface, so every fine cell the surface crosses
has exact values at its 8 corners and no skipped cell changes sign: the mesh is the dense
one, from a fraction of the evaluations (the surface's shell instead of the whole volume).
A learned SDF that overestimates distances by up to about 1.6x (coarse = resolution / 4) is
still covered by the diagonal margin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import NphmError

__all__ = ["MarchingResult", "extract_mesh", "grid_axes"]

SdfFn = Callable[[torch.Tensor], torch.Tensor]
"""``(N, 3) float32 points -> (N,) signed distances`` (negative inside)."""


@dataclass(frozen=True)
class MarchingResult:
    """A mesh extracted by :func:`extract_mesh`.

    Attributes:
        vertices: (V, 3) float64 in the coordinates of the bounds.
        faces: (F, 3) int64, wound with outward normals (towards positive SDF).
        n_evaluated: how many points the SDF was evaluated at (``resolution**3`` when dense).

    Unpacks as ``vertices, faces = extract_mesh(...)``.
    """

    vertices: np.ndarray
    faces: np.ndarray
    n_evaluated: int

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.vertices, self.faces))


def grid_axes(
    bounds_min: Sequence[float], bounds_max: Sequence[float], resolution: int
) -> list[np.ndarray]:
    """The three (resolution,) float64 sample coordinates of the grid, corners included.

    Raises:
        NphmError: resolution below 2, or bounds that are not (3,) with min < max.
    """
    lo = np.asarray(bounds_min, dtype=np.float64).reshape(-1)
    hi = np.asarray(bounds_max, dtype=np.float64).reshape(-1)
    if lo.shape != (3,) or hi.shape != (3,) or not np.all(hi > lo):
        raise NphmError(
            f"marching cubes bounds {lo.tolist()} .. {hi.tolist()}: need three coordinates "
            "each, min below max on every axis"
        )
    if int(resolution) < 2:
        raise NphmError(f"marching cubes resolution {resolution}: need at least 2 samples per axis")
    return [np.linspace(lo[a], hi[a], int(resolution)) for a in range(3)]


def _evaluate(
    sdf_fn: SdfFn, points: np.ndarray, chunk: int, device: torch.device | str
) -> np.ndarray:
    """(N,) float32 SDF of (N, 3) points, in chunks, without gradients."""
    out = np.empty(len(points), dtype=np.float32)
    with torch.no_grad():
        for a in range(0, len(points), chunk):
            x = torch.as_tensor(points[a : a + chunk], dtype=torch.float32, device=device)
            y = sdf_fn(x).reshape(-1)
            if y.shape[0] != x.shape[0]:
                raise NphmError(
                    f"the SDF returned {y.shape[0]} values for {x.shape[0]} points: it must map "
                    "(N, 3) points to (N,) distances"
                )
            out[a : a + chunk] = y.detach().to("cpu", torch.float32).numpy()
    return out


def _points(axes: list[np.ndarray], flat: np.ndarray) -> np.ndarray:
    """(N, 3) coordinates of the grid samples with flat (C-order) indices ``flat``."""
    n = [len(a) for a in axes]
    i, rem = np.divmod(flat, n[1] * n[2])
    j, k = np.divmod(rem, n[2])
    return np.stack([axes[0][i], axes[1][j], axes[2][k]], axis=1)


def _dense_volume(
    sdf_fn: SdfFn, axes: list[np.ndarray], chunk: int, device: torch.device | str
) -> np.ndarray:
    n = [len(a) for a in axes]
    total = n[0] * n[1] * n[2]
    vol = np.empty(total, dtype=np.float32)
    step = max(int(chunk), 1) * 16  # build coordinates a block at a time, not all at once
    for a in range(0, total, step):
        flat = np.arange(a, min(a + step, total))
        vol[flat] = _evaluate(sdf_fn, _points(axes, flat), chunk, device)
    return vol.reshape(n)


def _nearest_index(fine: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """Index of the coarse sample nearest to each fine sample along one axis."""
    step = (coarse[-1] - coarse[0]) / (len(coarse) - 1)
    idx = np.rint((fine - coarse[0]) / step).astype(np.int64)
    return np.clip(idx, 0, len(coarse) - 1)


def _diagonal(axes: list[np.ndarray]) -> float:
    return float(np.linalg.norm([(a[-1] - a[0]) / (len(a) - 1) for a in axes]))


def extract_mesh(
    sdf_fn: SdfFn,
    bounds_min: Sequence[float],
    bounds_max: Sequence[float],
    resolution: int,
    *,
    chunk: int = 65536,
    coarse: int | None = None,
    level: float = 0.0,
    device: torch.device | str = "cpu",
) -> MarchingResult:
    """The ``level`` set of an SDF inside the bounds, by marching cubes.

    Args:
        sdf_fn: ``(N, 3) float32 -> (N,)`` signed distances (negative inside), called under
            ``torch.no_grad`` with at most ``chunk`` points at a time.
        bounds_min, bounds_max: (3,) corners of the box sampled (the SDF's units).
        resolution: samples per axis of the dense grid (64, 128, 256, ...).
        chunk: points per call of ``sdf_fn``.
        coarse: samples per axis of the coarse grid for coarse-to-fine extraction (e.g.
            ``resolution // 4``, at least 2); None evaluates the dense grid.
        level: the iso-value extracted.
        device: where the points are created (the SDF's device); values come back to the CPU.

    Returns:
        :class:`MarchingResult`: vertices (V, 3) float64 in the bounds' coordinates, faces
        (F, 3) int64 with outward normals, and the number of SDF evaluations.

    Raises:
        NphmError: bad bounds or resolutions, an SDF returning the wrong shape or non-finite
            values, or no surface inside the bounds (no sign change; the message gives the
            range of values seen).
    """
    import mcubes

    axes = grid_axes(bounds_min, bounds_max, resolution)
    box = f"{[float(a[0]) for a in axes]} .. {[float(a[-1]) for a in axes]}"
    n = tuple(len(a) for a in axes)
    if coarse is None:
        vol = _dense_volume(sdf_fn, axes, chunk, device)
        n_eval = int(np.prod(n))
        seen = (float(vol.min()), float(vol.max()))
    else:
        c_axes = grid_axes(bounds_min, bounds_max, coarse)
        c_vol = _dense_volume(sdf_fn, c_axes, chunk, device) - np.float32(level)
        if not np.all(np.isfinite(c_vol)):
            raise NphmError(
                f"the SDF gave {int(np.sum(~np.isfinite(c_vol)))} non-finite values on the "
                f"coarse {coarse}^3 grid in bounds {box}"
            )
        reach = _diagonal(c_axes) + _diagonal(axes)
        near = [_nearest_index(f, c) for f, c in zip(axes, c_axes, strict=True)]
        nearest = c_vol[np.ix_(*near)]  # (n0, n1, n2): the nearest coarse value of each sample
        big = np.float32(10.0 * float(np.linalg.norm([a[-1] - a[0] for a in axes])))
        vol = np.where(nearest < 0, -big, big).astype(np.float32) + np.float32(level)
        todo = np.flatnonzero(np.abs(nearest) < reach)
        flat_vol = vol.reshape(-1)
        for a in range(0, len(todo), max(int(chunk), 1) * 16):
            flat = todo[a : a + max(int(chunk), 1) * 16]
            flat_vol[flat] = _evaluate(sdf_fn, _points(axes, flat), chunk, device)
        n_eval = int(np.prod([len(c) for c in c_axes])) + len(todo)
        evaluated = flat_vol[todo]
        seen_all = np.concatenate([c_vol.reshape(-1) + np.float32(level), evaluated])
        seen = (float(seen_all.min()), float(seen_all.max()))
    if not np.all(np.isfinite(vol)):
        raise NphmError(
            f"the SDF gave {int(np.sum(~np.isfinite(vol)))} non-finite values in bounds {box}"
        )
    if not (np.any(vol < level) and np.any(vol > level)):
        raise NphmError(
            f"no surface in bounds {box}: the SDF stays in "
            f"[{seen[0]:.4g}, {seen[1]:.4g}] without crossing level {level:g} (bounds around "
            "the wrong region, or a model that decodes an empty shape)"
        )
    verts, tris = mcubes.marching_cubes(vol, float(level))
    if len(tris) == 0:
        raise NphmError(
            f"no surface in bounds {box}: marching cubes "
            f"found no triangle (SDF range [{seen[0]:.4g}, {seen[1]:.4g}])"
        )
    lo = np.array([a[0] for a in axes])
    spacing = np.array([(a[-1] - a[0]) / (len(a) - 1) for a in axes])
    vertices = lo + np.asarray(verts, dtype=np.float64) * spacing
    # PyMCubes winds its triangles with normals towards decreasing values (inside): flip them
    faces = np.asarray(tris, dtype=np.int64)[:, [0, 2, 1]]
    return MarchingResult(vertices, np.ascontiguousarray(faces), n_eval)
