"""Marching cubes of an SDF (talkhead.nphm.marching): shapes, orientation, coarse-to-fine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talkhead.errors import NphmError
from talkhead.nphm.marching import extract_mesh

CENTRE = np.array([0.05, -0.03, 0.02])
RADIUS = 0.3
LO, HI = [-0.45, -0.5, -0.4], [0.5, 0.45, 0.5]  # anisotropic, off-centre bounds


def sphere(x: torch.Tensor) -> torch.Tensor:
    return (x - torch.as_tensor(CENTRE, dtype=x.dtype)).norm(dim=1) - RADIUS


def torus(x: torch.Tensor, major: float = 0.3, minor: float = 0.1) -> torch.Tensor:
    ring = torch.sqrt(x[:, 0] ** 2 + x[:, 1] ** 2) - major
    return torch.sqrt(ring**2 + x[:, 2] ** 2) - minor


def signed_volume(v: np.ndarray, f: np.ndarray) -> float:
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def euler_characteristic(v: np.ndarray, f: np.ndarray) -> int:
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    return len(v) - len(np.unique(edges, axis=0)) + len(f)


def voxel(resolution: int) -> float:
    return float(max(np.subtract(HI, LO)) / (resolution - 1))


def test_sphere_vertices_lie_on_the_sphere_in_world_coordinates() -> None:
    res = extract_mesh(sphere, LO, HI, 64)
    v, f = res
    assert v.dtype == np.float64 and f.dtype == np.int64 and f.shape[1] == 3
    r = np.linalg.norm(v - CENTRE, axis=1)
    assert np.abs(r - RADIUS).max() < 0.05 * voxel(64)
    assert res.n_evaluated == 64**3
    assert euler_characteristic(v, f) == 2  # one closed sphere


def test_normals_point_outwards() -> None:
    v, f = extract_mesh(sphere, LO, HI, 48)
    a = v[f]
    normals = np.cross(a[:, 1] - a[:, 0], a[:, 2] - a[:, 0])
    outward = np.einsum("ij,ij->i", normals, a.mean(axis=1) - CENTRE)
    assert np.all(outward > 0)
    assert signed_volume(v, f) == pytest.approx(4 / 3 * np.pi * RADIUS**3, rel=0.02)


def test_level_set_other_than_zero() -> None:
    v, _ = extract_mesh(sphere, LO, HI, 64, level=0.05)
    assert np.abs(np.linalg.norm(v - CENTRE, axis=1) - (RADIUS + 0.05)).max() < 0.05 * voxel(64)


@pytest.mark.parametrize(("coarse", "fraction"), [(8, 0.8), (16, 0.6), (23, 0.6)])
def test_coarse_to_fine_gives_the_dense_mesh_with_fewer_evaluations(
    coarse: int, fraction: float
) -> None:
    dense = extract_mesh(sphere, LO, HI, 96)
    sparse = extract_mesh(sphere, LO, HI, 96, coarse=coarse, chunk=10_000)
    np.testing.assert_array_equal(sparse.vertices, dense.vertices)
    np.testing.assert_array_equal(sparse.faces, dense.faces)
    assert sparse.n_evaluated < fraction * dense.n_evaluated


def test_coarse_to_fine_on_an_mlp_sdf() -> None:
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(
        torch.nn.Linear(3, 64), torch.nn.Softplus(beta=50), torch.nn.Linear(64, 1)
    )

    def sdf(x: torch.Tensor) -> torch.Tensor:
        return sphere(x) + 0.02 * torch.tanh(mlp(x)[:, 0])

    dense = extract_mesh(sdf, LO, HI, 80)
    sparse = extract_mesh(sdf, LO, HI, 80, coarse=20)
    assert sparse.faces.shape == dense.faces.shape
    np.testing.assert_array_equal(sparse.faces, dense.faces)
    np.testing.assert_allclose(sparse.vertices, dense.vertices, atol=1e-6)
    assert sparse.n_evaluated < dense.n_evaluated / 2


def test_torus_is_a_closed_genus_one_surface() -> None:
    lo, hi = [-0.5, -0.5, -0.2], [0.5, 0.5, 0.2]
    res = extract_mesh(torus, lo, hi, 96, coarse=24)
    v, f = res
    ring = np.sqrt(v[:, 0] ** 2 + v[:, 1] ** 2) - 0.3
    assert np.abs(np.sqrt(ring**2 + v[:, 2] ** 2) - 0.1).max() < 0.05 * (1.0 / 95)
    assert euler_characteristic(v, f) == 0
    assert signed_volume(v, f) == pytest.approx(2 * np.pi**2 * 0.3 * 0.1**2, rel=0.02)
    dense = extract_mesh(torus, lo, hi, 96)
    np.testing.assert_array_equal(f, dense.faces)


def test_bounds_without_the_surface_raise_naming_bounds_and_range() -> None:
    with pytest.raises(NphmError, match=r"no surface in bounds \[0\.6.*stays in \[0\.71"):
        extract_mesh(sphere, [0.6, 0.6, 0.6], [0.9, 0.9, 0.9], 16)
    with pytest.raises(NphmError, match="no surface in bounds"):
        extract_mesh(sphere, [0.6, 0.6, 0.6], [0.9, 0.9, 0.9], 32, coarse=8)


def test_bad_sdf_and_bad_grids_raise() -> None:
    with pytest.raises(NphmError, match="non-finite"):
        extract_mesh(lambda x: sphere(x) / (x[:, 0] > 0).float(), LO, HI, 16)
    with pytest.raises(NphmError, match="values for"):
        extract_mesh(lambda x: sphere(x)[:1], LO, HI, 16)
    with pytest.raises(NphmError, match="min below max"):
        extract_mesh(sphere, HI, LO, 16)
    with pytest.raises(NphmError, match="at least 2"):
        extract_mesh(sphere, LO, HI, 1)


def test_decoded_meshes_keep_their_largest_part() -> None:
    from talkhead.nphm.stage import largest_component

    big, small = _two_spheres()
    v, f = largest_component(*big_and_small(big, small))
    assert len(f) == len(big[1]) and len(v) == len(big[0])
    assert np.allclose(np.sort(v, axis=0), np.sort(big[0], axis=0))
    assert f.max() == len(v) - 1 and f.min() == 0


def _two_spheres():
    import trimesh

    a = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
    b = trimesh.creation.icosphere(subdivisions=1, radius=0.1)
    b.vertices += [3.0, 0.0, 0.0]
    return (np.asarray(a.vertices), np.asarray(a.faces)), (
        np.asarray(b.vertices),
        np.asarray(b.faces),
    )


def big_and_small(big, small):
    # the small piece first, so that "largest" is not "first"
    v = np.concatenate([small[0], big[0]])
    f = np.concatenate([small[1], big[1] + len(small[0])])
    return v, f
