"""Signed distances to open, multi-part meshes (talkhead.geometry.mesh_distance)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from talkhead.geometry.mesh_distance import (
    mesh_components,
    signed_distance_by_normal,
    signed_distance_by_rays,
)


def _box(centre, size, drop_top=False):
    box = trimesh.creation.box(extents=[size] * 3)
    v = np.asarray(box.vertices) + centre
    f = np.asarray(box.faces)
    if drop_top:  # a hole: the two triangles of the +z side
        f = f[~np.all(v[f][:, :, 2] > centre[2] + size / 2 - 1e-9, axis=1)]
    return v, f


def _union(*meshes):
    vs, fs, n = [], [], 0
    for v, f in meshes:
        vs.append(v)
        fs.append(f + n)
        n += len(v)
    return np.concatenate(vs), np.concatenate(fs)


def test_components_of_a_head_and_two_eyes():
    v, f = _union(_box([0, 0, 0], 1.0), _box([3, 0, 0], 0.2), _box([5, 0, 0], 0.2))
    parts = mesh_components(f)
    assert [len(p) for p in parts] == [12, 12, 12]
    # each part's triangles use only that part's vertices
    assert sorted(int(f[p].min()) for p in parts) == [0, 8, 16]


def test_inside_an_open_box_is_negative_and_the_distance_is_exact():
    v, f = _box(np.zeros(3), 2.0, drop_top=True)
    pts = np.array([[0.0, 0.0, 0.0], [0.5, -0.3, -0.2], [0.0, 0.0, 3.0], [2.0, 0.0, 0.0]])
    d = signed_distance_by_rays(pts, v, f)
    # inside: 1 and 0.5 from the nearest sides, though the top is open; above the hole the
    # nearest surface point is on the rim, (1, 0, 1) from (0, 0, 3): sqrt(5); beside: 1
    assert d == pytest.approx([-1.0, -0.5, np.sqrt(5.0), 1.0], abs=1e-5)


def test_an_inner_part_is_inside_and_the_union_holds():
    # an "eyeball" inside a "head": points inside the eyeball are inside the solid
    v, f = _union(_box(np.zeros(3), 2.0), _box(np.array([0.5, 0.0, 0.0]), 0.4))
    d = signed_distance_by_rays(np.array([[0.5, 0.0, 0.0], [-0.5, 0.0, 0.0]]), v, f)
    assert d[0] == pytest.approx(-0.2, abs=1e-5)  # inside the eyeball: 0.2 from its sides
    assert d[1] == pytest.approx(-0.5, abs=1e-5)  # inside the head, nearest the head's side


def test_rays_sign_the_volume_where_the_closest_triangle_does_not():
    # Deep inside a box next to an inner part, the closest points are the inner part's corners
    # and edges, whose triangles disagree on the side; the ray vote does not care.
    v, f = _union(_box(np.zeros(3), 4.0), _box(np.zeros(3), 0.5))
    rng = np.random.default_rng(0)
    pts = rng.uniform(-1.6, 1.6, size=(2000, 3))
    pts = pts[np.abs(pts).max(axis=1) > 0.5]  # between the inner box and the outer one
    assert np.all(signed_distance_by_rays(pts, v, f) < 0)
    assert np.any(signed_distance_by_normal(pts, v, f) > 0)  # the failure this avoids


def test_rays_must_be_odd():
    v, f = _box(np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="odd"):
        signed_distance_by_rays(np.zeros((1, 3)), v, f, rays=4)
