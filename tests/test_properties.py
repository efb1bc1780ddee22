"""Property tests (hypothesis) of the geometry functions: round trips, agreement of the numpy and
torch versions, invariances under a rigid motion of the whole scene, and exact recovery by
triangulation, on generated rotations, cameras and points."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from talkhead.geometry.cameras import (
    Camera,
    intrinsics_from_fov,
    invert_rigid,
    look_at,
    pixel_grid,
    project,
    ring_rig,
    transform_points,
    unproject,
)
from talkhead.geometry.depth_maps import crop_pixel_rays, depth_to_points, pixel_rays
from talkhead.geometry.rotations import (
    axis_angle_to_matrix,
    batch_rodrigues,
    matrix_to_axis_angle,
)
from talkhead.geometry.triangulation import triangulate_points

# Derandomized: the same examples on every run (stable for CI and for benchmarks/mutation.py).
FAST = settings(max_examples=50, deadline=None, derandomize=True)

unit = st.tuples(*[st.floats(-1, 1)] * 3).map(np.array).filter(lambda v: np.linalg.norm(v) > 0.1)
unit = unit.map(lambda v: v / np.linalg.norm(v))
angles = st.one_of(
    st.floats(0.0, math.pi - 1e-3),
    st.floats(1e-7, 1e-4),  # the small-angle series of batch_rodrigues
    st.floats(math.pi - 0.3, math.pi - 1e-3),  # the near-pi branch of matrix_to_axis_angle
)
axis_angles = st.builds(lambda k, a: k * a, unit, angles)


def rigid(aa: np.ndarray, t) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(aa).as_matrix()  # an independent construction
    T[:3, 3] = t
    return T


translations = st.tuples(*[st.floats(-2, 2)] * 3).map(np.array)
rigids = st.builds(rigid, axis_angles, translations)
intrinsics = st.builds(
    lambda fx, fy, s, cx, cy: np.array([[fx, s, cx], [0, fy, cy], [0, 0, 1.0]]),
    st.floats(100, 2000),
    st.floats(100, 2000),
    st.floats(-5, 5),
    st.floats(0, 640),
    st.floats(0, 480),
)


# ---------------------------------------------------------------------------------------------
# Rotations


@FAST
@given(axis_angles)
def test_axis_angle_matrix_round_trip(aa):
    R = axis_angle_to_matrix(aa)
    # (below 1e-12 rad the identity, exactly)
    np.testing.assert_allclose(R, Rotation.from_rotvec(aa).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-14)
    assert np.linalg.det(R) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(matrix_to_axis_angle(R), aa, atol=1e-9)


@FAST
@given(unit, angles)
def test_rotation_turns_by_the_angle_about_the_axis_right_handed(k, angle):
    R = axis_angle_to_matrix(k * angle)
    np.testing.assert_allclose(R @ k, k, atol=1e-14)  # the axis is fixed
    v = np.cross(k, [0.3, -0.5, 0.8])
    assume(np.linalg.norm(v) > 0.1)
    v /= np.linalg.norm(v)
    w = R @ v
    assert v @ w == pytest.approx(math.cos(angle), abs=1e-12)
    assert np.cross(v, w) @ k == pytest.approx(math.sin(angle), abs=1e-12)


@FAST
@given(st.lists(axis_angles, min_size=1, max_size=6))
def test_numpy_and_torch_rotations_agree(aas):
    aa = np.stack(aas)
    expected = axis_angle_to_matrix(aa)
    got = batch_rodrigues(torch.tensor(aa, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12, rtol=0)
    # any leading shape in numpy
    np.testing.assert_allclose(axis_angle_to_matrix(aa[None, :, None])[0, :, 0], expected)
    np.testing.assert_allclose(matrix_to_axis_angle(expected[None])[0], aa, atol=1e-9)


@pytest.mark.parametrize("angle", [0.0, 1e-13, 3e-5, 9e-5, 1.5e-4, 1e-3, 0.5])
def test_small_angles_are_exact_in_both_versions(angle):
    """Near zero, within a few ulps of scipy (the Taylor terms matter at 1e-13)."""
    k = np.array([0.48, -0.6, 0.64])
    aa = k * angle
    expected = Rotation.from_rotvec(aa).as_matrix()
    if angle >= 1e-12:  # below, numpy returns the identity exactly (documented)
        np.testing.assert_allclose(axis_angle_to_matrix(aa), expected, atol=4e-16, rtol=0)
    got = batch_rodrigues(torch.tensor(aa[None], dtype=torch.float64))[0].numpy()
    np.testing.assert_allclose(got, expected, atol=4e-16, rtol=0)
    np.testing.assert_allclose(matrix_to_axis_angle(expected), aa, atol=1e-16, rtol=1e-12)


def test_rotation_by_pi_keeps_the_axis_up_to_sign():
    for k in np.eye(3).tolist() + [[0.6, 0.0, 0.8], [0.0, -0.6, 0.8], [0.48, -0.6, 0.64]]:
        k = np.asarray(k)
        back = matrix_to_axis_angle(axis_angle_to_matrix(np.pi * k))
        assert np.linalg.norm(back) == pytest.approx(np.pi, abs=1e-9)
        assert abs(back @ k) == pytest.approx(np.pi, abs=1e-9)


def test_rotation_shapes_are_checked():
    with pytest.raises(
        ValueError, match=r"^axis_angle_to_matrix expects \(\.\.\., 3\), got \(2, 4\)$"
    ):
        axis_angle_to_matrix(np.zeros((2, 4)))
    with pytest.raises(
        ValueError, match=r"^matrix_to_axis_angle expects \(\.\.\., 3, 3\), got \(3, 4\)$"
    ):
        matrix_to_axis_angle(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"^batch_rodrigues expects \(N, 3\), got \(3,\)$"):
        batch_rodrigues(torch.zeros(3))


# ---------------------------------------------------------------------------------------------
# Cameras: projection and back-projection


@FAST
@given(intrinsics, rigids, st.floats(0, 640), st.floats(0, 480), st.floats(0.1, 5.0))
def test_unproject_then_project_is_the_identity(K, T, u, v, depth):
    X = unproject(np.array([u, v]), np.array(depth), K, T)
    uv, z = project(X, K, T)
    np.testing.assert_allclose(uv, [u, v], atol=1e-7)
    assert z == pytest.approx(depth, rel=1e-12)
    # the pinhole formula, written out
    x, y, zc = transform_points(T, X)
    expected = [K[0, 0] * x / zc + K[0, 1] * y / zc + K[0, 2], K[1, 1] * y / zc + K[1, 2]]
    np.testing.assert_allclose(uv, expected, atol=1e-7)


@FAST
@given(rigids)
def test_invert_rigid_and_camera_centre(T):
    np.testing.assert_allclose(T @ invert_rigid(T), np.eye(4), atol=1e-12)
    np.testing.assert_allclose(invert_rigid(np.stack([T, T]))[1] @ T, np.eye(4), atol=1e-12)
    cam = Camera("c", np.eye(3), T)
    np.testing.assert_allclose(transform_points(T, cam.center), 0, atol=1e-12)
    np.testing.assert_allclose(cam.cam_2_world[:3, 3], cam.center, atol=1e-12)
    np.testing.assert_allclose(cam.R, T[:3, :3])
    np.testing.assert_allclose(cam.t, T[:3, 3])


@FAST
@given(rigids, intrinsics, rigids, st.integers(0, 2**32 - 1))
def test_projections_are_invariant_to_moving_the_whole_scene(T, K, G, seed):
    """Moving the world by G (points G p, cameras world_2_cam G^-1) changes no pixel."""
    pts = np.random.default_rng(seed).uniform(-0.3, 0.3, (20, 3))
    pts = transform_points(invert_rigid(T), pts + [0, 0, 1.5])  # in front of the camera
    cam, moved = Camera("a", K, T), Camera("a", K, T @ invert_rigid(G))
    uv0, z0 = cam.project(pts)
    uv1, z1 = moved.project(transform_points(G, pts))
    np.testing.assert_allclose(uv1, uv0, atol=1e-7)
    np.testing.assert_allclose(z1, z0, atol=1e-10)
    np.testing.assert_allclose(moved.center, transform_points(G, cam.center), atol=1e-10)
    np.testing.assert_allclose(moved.unproject(uv0, z0), transform_points(G, pts), atol=1e-9)


@FAST
@given(intrinsics, rigids, st.integers(2, 7), st.integers(2, 6), st.integers(0, 2**32 - 1))
def test_depth_maps_back_project_to_their_pixels(K, T, H, W, seed):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.2, 3.0, (H, W))
    depth[rng.random((H, W)) < 0.3] = 0.0
    depth[0, 0] = np.nan
    mask = rng.random((H, W)) < 0.8
    points, uv = depth_to_points(depth, K, T, mask.astype(np.uint8))  # any truthy mask
    keep = np.isfinite(depth) & (depth > 0) & mask
    assert len(points) == keep.sum()
    rows, cols = np.nonzero(keep)  # row-major order
    np.testing.assert_array_equal(uv, np.stack([cols, rows], axis=1))
    back, z = project(points, K, T)
    np.testing.assert_allclose(back, uv, atol=1e-7)
    np.testing.assert_allclose(z, depth[rows, cols], rtol=1e-12)
    from talkhead.errors import DepthError

    with pytest.raises(DepthError, match=rf"^depth must be \(H, W\), got shape \(1, {H}, {W}\)$"):
        depth_to_points(depth[None], K, T)
    with pytest.raises(DepthError, match="^mask has shape"):
        depth_to_points(depth, K, T, mask[:1])
    # rays: camera-frame points at z = 1, the same as unprojecting the pixel grid
    rays = pixel_rays(K, H, W)
    grid = pixel_grid(W, H)
    assert grid.shape == (H, W, 2)
    np.testing.assert_array_equal(grid[rows, cols], uv)
    np.testing.assert_allclose(rays, unproject(grid, np.ones((H, W)), K, np.eye(4)), atol=1e-12)
    # the torch crops are the same rays
    Kinv = torch.tensor(np.linalg.inv(K))[None].repeat(2, 1, 1)
    x0, y0 = torch.tensor([0, W // 2]), torch.tensor([H // 2, 0])
    crops = crop_pixel_rays(Kinv, x0, y0, H - H // 2, W - W // 2).numpy()
    np.testing.assert_allclose(crops[0], rays[H // 2 :, : W - W // 2], atol=1e-12)
    np.testing.assert_allclose(crops[1], rays[: H - H // 2, W // 2 :], atol=1e-12)


@FAST
@given(
    st.tuples(*[st.floats(-2, 2)] * 3).map(np.array),
    st.tuples(*[st.floats(-0.5, 0.5)] * 3).map(np.array),
    st.integers(8, 640),
    st.integers(8, 480),
    st.floats(20, 120),
)
def test_look_at_puts_the_target_at_the_principal_point(eye, target, width, height, fov):
    assume(np.linalg.norm(target - eye) > 0.2)
    d = (target - eye) / np.linalg.norm(target - eye)
    assume(abs(d[1]) < 0.95)  # up = +y must not be the viewing direction
    K = intrinsics_from_fov(width, height, fov)
    T = look_at(eye, target)
    np.testing.assert_allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-12)
    assert np.linalg.det(T[:3, :3]) == pytest.approx(1.0)
    uv, z = project(target, K, T)
    np.testing.assert_allclose(uv, [(width - 1) / 2, (height - 1) / 2], atol=1e-6)
    assert z == pytest.approx(np.linalg.norm(target - eye))
    above, _ = project(target + [0, 0.05, 0], K, T)
    assert above[1] < uv[1]  # world +y is up in the image
    # the half field of view lands on the image's left and right edges
    edge = math.tan(math.radians(fov) / 2)
    np.testing.assert_allclose(
        project(np.array([[edge, 0, 1], [-edge, 0, 1]]), K, np.eye(4))[0][:, 0],
        [width - 0.5, -0.5],
        atol=1e-9,
    )


def test_ring_rig_spreads_cameras_on_a_sphere_looking_at_the_target():
    target = np.array([0.1, -0.2, 0.3])
    cams = ring_rig(
        5, 64, 48, 30.0, radius=1.3, yaw_span_deg=100, pitch_deg=(-8, 12), target=target
    )
    assert [c.serial for c in cams] == [str(220700191 + i) for i in range(5)]
    for i, cam in enumerate(cams):
        rel = cam.center - target
        assert np.linalg.norm(rel) == pytest.approx(1.3)
        assert math.degrees(math.asin(rel[1] / 1.3)) == pytest.approx((-8, 12)[i % 2])
        uv, _ = cam.project(target)
        np.testing.assert_allclose(uv, [31.5, 23.5], atol=1e-9)
        assert (cam.width, cam.height) == (64, 48)
    yaw = [math.degrees(math.atan2(c.center[0] - 0.1, c.center[2] - 0.3)) for c in cams]
    np.testing.assert_allclose(yaw, np.linspace(-50, 50, 5), atol=1e-9)
    # defaults: 120 degrees of yaw, pitches -10 / +10, 1 m from the origin
    pair = ring_rig(2, 64, 48, 30.0)
    yaw = [math.degrees(math.atan2(c.center[0], c.center[2])) for c in pair]
    np.testing.assert_allclose(yaw, [-60.0, 60.0], atol=1e-9)
    (single,) = ring_rig(1, 64, 48, 30.0)
    np.testing.assert_allclose(
        single.center, [0, math.sin(math.radians(-10)), math.cos(math.radians(-10))]
    )


# ---------------------------------------------------------------------------------------------
# Triangulation


def cameras_around(rng: np.random.Generator, n: int) -> list[Camera]:
    cams = []
    for i in range(n):
        yaw, pitch = rng.uniform(-1.2, 1.2), rng.uniform(-0.4, 0.4)
        eye = 1.2 * np.array(
            [np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)]
        )
        K = intrinsics_from_fov(640, 480, rng.uniform(25, 60))
        cams.append(Camera(str(i), K, look_at(eye, rng.normal(0, 0.02, 3)), 640, 480))
    return cams


@FAST
@given(st.integers(2, 6), st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_triangulation_of_exact_projections_recovers_the_points(C, N, seed):
    rng = np.random.default_rng(seed)
    cams = cameras_around(rng, C)
    X = rng.uniform(-0.1, 0.1, (N, 3))
    uv = np.stack([c.project(X)[0] for c in cams])
    conf = rng.uniform(0.2, 1.0, (C, N))
    points, valid = triangulate_points(uv, conf, cams)
    assert valid.all()
    np.testing.assert_allclose(points, X, atol=1e-8)
    # the same scene moved rigidly: the points move with it
    G = rigid(rng.normal(size=3), rng.normal(size=3))
    moved = [Camera(c.serial, c.K, c.world_2_cam @ invert_rigid(G)) for c in cams]
    points2, valid2 = triangulate_points(uv, conf, moved)
    assert valid2.all()
    np.testing.assert_allclose(points2, transform_points(G, X), atol=1e-7)


@FAST
@given(st.integers(4, 6), st.integers(0, 2**32 - 1))
def test_triangulation_drops_an_outlier_view_and_unusable_observations(C, seed):
    rng = np.random.default_rng(seed)
    cams = cameras_around(rng, C)
    X = rng.uniform(-0.1, 0.1, (3, 3))
    uv = np.stack([c.project(X)[0] for c in cams])
    conf = np.ones((C, 3))
    uv[0, 0] += [40.0, -30.0]  # a wrong detection in view 0 of point 0
    conf[1:, 1] = 0.05  # point 1: one usable view only (the others below min_conf)
    uv[:, 2] = np.nan  # point 2: no finite observation
    points, valid = triangulate_points(uv, conf, cams, min_conf=0.1, max_reproj_px=4.0)
    assert valid.tolist() == [True, False, False]
    np.testing.assert_allclose(points[0], X[0], atol=1e-8)
    assert np.isnan(points[1:]).all()


@FAST
@given(st.integers(3, 6), st.integers(0, 2**32 - 1))
def test_triangulated_noisy_points_minimise_the_weighted_reprojection_error(C, seed):
    """With pixel noise the result is the least-squares point: no small step lowers the
    confidence-weighted squared reprojection error."""
    rng = np.random.default_rng(seed)
    cams = cameras_around(rng, C)
    X = rng.uniform(-0.1, 0.1, (4, 3))
    uv = np.stack([c.project(X)[0] for c in cams]) + rng.normal(0, 0.7, (C, 4, 2))
    conf = rng.uniform(0.3, 1.0, (C, 4))
    points, valid = triangulate_points(uv, conf, cams, max_reproj_px=6.0)
    assert valid.all()

    def cost(P):
        return sum(
            (conf[c, :, None] ** 2 * (cam.project(P)[0] - uv[c]) ** 2).sum(-1)
            for c, cam in enumerate(cams)
        )

    best = cost(points)
    for step in np.concatenate([np.eye(3), -np.eye(3)]) * 2e-5:
        assert np.all(cost(points + step) >= best - 1e-9 * (1 + best))
    assert np.linalg.norm(points - X, axis=1).max() < 0.03  # 0.7 px noise, baselines vary


def test_triangulation_refuses_mismatched_shapes_and_needs_two_views():
    from talkhead.errors import DepthError
    from talkhead.geometry.triangulation import camera_matrices

    cams = ring_rig(3, 64, 48, 30.0)
    with pytest.raises(DepthError, match="^no cameras given$"):
        camera_matrices([])
    for K, T in ((np.eye(4), np.eye(4)), (np.eye(3), np.eye(3))):
        with pytest.raises(
            DepthError, match="^cameras must hold 3x3 intrinsics and 4x4 world_2_cam matrices$"
        ):
            camera_matrices([Camera("x", K, T), Camera("y", K, T)])
    with pytest.raises(DepthError, match="^camera matrices contain NaN or infinite values$"):
        camera_matrices([Camera("x", np.eye(3), np.full((4, 4), np.inf)), cams[0]])
    K, T = camera_matrices([Camera("i", np.eye(3, dtype=int), np.eye(4, dtype=int)), cams[0]])
    assert K.dtype == T.dtype == np.float64
    # the default inlier threshold is 4 px: a view 4.5 px off is dropped, 3.5 px kept
    X = np.array([[0.01, -0.02, 0.03]])
    uv = np.stack([c.project(X)[0] for c in cams])
    for shift, kept in ((4.5, False), (3.5, True)):
        moved = uv.copy()
        moved[0, 0, 0] += shift
        points, valid = triangulate_points(moved, np.ones((3, 1)), cams)
        assert valid[0]
        exact = np.allclose(points, X, atol=1e-8)  # view 0 dropped: the others are exact
        assert exact != kept, shift
    with pytest.raises(DepthError, match="expected uv"):
        triangulate_points(np.zeros((2, 5, 2)), np.ones((2, 5)), cams)
    with pytest.raises(DepthError, match="expected uv"):
        triangulate_points(np.zeros((3, 5, 2)), np.ones((3, 4)), cams)
    with pytest.raises(DepthError, match="no cameras"):
        triangulate_points(np.zeros((0, 5, 2)), np.ones((0, 5)), [])
    bad = [Camera("x", np.full((3, 3), np.nan), np.eye(4)), cams[1]]
    with pytest.raises(DepthError, match="NaN"):
        triangulate_points(np.zeros((2, 1, 2)), np.ones((2, 1)), bad)
    points, valid = triangulate_points(np.zeros((1, 2, 2)), np.ones((1, 2)), cams[:1])
    assert not valid.any() and np.isnan(points).all()


# ---------------------------------------------------------------------------------------------
# Point-to-mesh distance


def triangle_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Distance of ``p`` to triangle abc, by brute force over a fine barycentric grid refined
    by the closest points on the edges and the plane (independent of open3d)."""
    n = np.cross(b - a, c - a)
    n /= np.linalg.norm(n)
    q = p - ((p - a) @ n) * n  # projection on the plane
    M = np.stack([b - a, c - a], axis=1)
    s, t = np.linalg.lstsq(M, q - a, rcond=None)[0]
    candidates = []
    if s >= 0 and t >= 0 and s + t <= 1:
        candidates.append(q)
    for u, v in ((a, b), (b, c), (c, a)):
        w = np.clip((p - u) @ (v - u) / ((v - u) @ (v - u)), 0.0, 1.0)
        candidates.append(u + w * (v - u))
    return min(np.linalg.norm(p - x) for x in candidates)


@FAST
@given(st.integers(0, 2**32 - 1), st.integers(1, 20))
def test_point_to_mesh_distance_of_a_tetrahedron(seed, n):
    from talkhead.geometry.mesh_distance import point_to_mesh_distance

    rng = np.random.default_rng(seed)
    verts = np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0], [0, 0, 0.1]]) + rng.normal(
        0, 0.01, (4, 3)
    )
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    pts = rng.uniform(-0.1, 0.2, (n, 3))
    got = point_to_mesh_distance(pts, verts, faces)
    assert got.shape == (n,) and got.dtype == np.float64
    expected = [min(triangle_distance(p, *verts[f]) for f in faces) for p in pts]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert point_to_mesh_distance(np.zeros((0, 3)), verts, faces).shape == (0,)


# ---------------------------------------------------------------------------------------------
# Normals of depth maps


@FAST
@given(
    st.integers(1, 9), st.integers(1, 9), st.sampled_from([1, 3, 5, 7]), st.integers(0, 2**32 - 1)
)
def test_box_filter_is_the_mean_over_the_window_inside_the_image(H, W, window, seed):
    from talkhead.geometry.normals import box_filter

    x = np.random.default_rng(seed).normal(size=(2, H, W))
    got = box_filter(torch.tensor(x), window).numpy()
    r = window // 2
    expected = np.empty_like(x)
    for i in range(H):
        for j in range(W):
            block = x[:, max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1]
            expected[:, i, j] = block.mean(axis=(1, 2))
    np.testing.assert_allclose(got, expected, atol=1e-12)


def sphere_depth(K: np.ndarray, H: int, W: int, centre, radius: float):
    """z-depth of the near side of a sphere and its true outward normals (camera frame)."""
    rays = pixel_rays(K, H, W)
    c = np.asarray(centre, float)
    a = (rays * rays).sum(-1)
    b = -2 * rays @ c
    disc = b * b - 4 * a * (c @ c - radius**2)
    hit = disc > 0
    t = np.where(hit, (-b - np.sqrt(np.where(hit, disc, 0))) / (2 * a), 0.0)
    normal = (rays * t[..., None] - c) / radius
    return np.where(hit, t, 0.0), np.where(hit[..., None], normal, 0.0)


def test_both_normal_estimators_follow_a_sphere_and_skip_invalid_pixels():
    """Normals of a sphere facing the camera, within the estimators' accuracy; pixels without
    depth, and pixels with no valid neighbour along a row or column, get no normal."""
    from talkhead.geometry.normals import (
        normals_from_depth_finite_differences,
        normals_from_depth_plane_fit,
    )

    H, W = 40, 48
    K = intrinsics_from_fov(W, H, 30.0)
    depth, truth = sphere_depth(K, H, W, (0.0, 0.0, 1.0), 0.25)
    depth[18:22, 20:24] = 0.0  # a hole
    depth[29:31, :] = 0.0  # a band across the sphere
    valid = depth > 0
    fd = normals_from_depth_finite_differences(depth, K)
    angle = np.degrees(np.arccos(np.clip((fd * truth).sum(-1), -1, 1)))
    inner = valid.copy()
    inner[[0, -1]] = inner[:, [0, -1]] = False
    assert np.all(fd[~valid] == 0)
    assert np.median(angle[inner]) < 0.5
    has = np.any(fd != 0, axis=-1)
    assert has.sum() > 0.9 * valid.sum()
    assert np.all((fd[has] * (pixel_rays(K, H, W)[has])).sum(-1) < 0)  # facing the camera
    lonely = np.zeros((H, W))
    lonely[10, 10] = 1.0  # a single valid pixel: no tangent, no normal
    assert np.all(normals_from_depth_finite_differences(lonely, K) == 0)

    pf = normals_from_depth_plane_fit(torch.tensor(depth)[None], torch.tensor(K), 5)[0].numpy()
    angle = np.degrees(np.arccos(np.clip((pf * truth).sum(-1), -1, 1)))
    assert np.all(pf[~valid] == 0)
    assert np.median(angle[valid]) < 2.0
    # batched with each map's own intrinsics: the same normals as one at a time
    K2 = intrinsics_from_fov(W, H, 40.0)
    depth2, _ = sphere_depth(K2, H, W, (0.05, 0.0, 0.9), 0.2)
    both = normals_from_depth_plane_fit(
        torch.tensor(np.stack([depth, depth2])), torch.tensor(np.stack([K, K2])), 5
    ).numpy()
    one = normals_from_depth_plane_fit(torch.tensor(depth2)[None], torch.tensor(K2), 5)[0]
    np.testing.assert_allclose(both[0], pf, atol=1e-6)
    np.testing.assert_allclose(both[1], one.numpy(), atol=1e-6)


@pytest.mark.parametrize(("n_valid", "has_normal"), [(6, True), (5, False)])
def test_plane_fit_needs_six_valid_pixels_in_the_window(n_valid, has_normal):
    from talkhead.geometry.normals import normals_from_depth_plane_fit

    K = intrinsics_from_fov(9, 9, 40.0)
    depth = np.zeros((9, 9))
    window = [(4, 4), (3, 3), (3, 4), (3, 5), (4, 3), (4, 5), (5, 3), (5, 4)]
    for i, j in window[:n_valid]:
        depth[i, j] = 1.0 + 0.01 * i - 0.02 * j
    n = normals_from_depth_plane_fit(torch.tensor(depth)[None], torch.tensor(K), 3)[0, 4, 4]
    assert bool(torch.any(n != 0)) == has_normal


# ---------------------------------------------------------------------------------------------
# Similarity: the refusals, message by message


def test_similarity_refusals_name_the_cause_exactly():
    from talkhead.geometry.similarity import umeyama

    rng = np.random.default_rng(5)
    src = rng.normal(size=(6, 3))

    def refused(dst, message, s=src, w=None):
        with pytest.raises(ValueError) as err:
            umeyama(s, dst, w)
        assert str(err.value) == message

    refused(src + [0, np.nan, 0], "src and dst must be finite (NaN or inf found)")
    refused(src, "weights must be finite and non-negative", w=[1, 1, 1, -1, 1, 1])
    # a line away from the origin (centring matters), and a cross whose covariance has rank 1
    line = np.array([1.0, 2.0, 3.0]) + np.linspace(0, 1, 6)[:, None] * [0.3, -0.2, 0.5]
    refused(line, "dst points are collinear or coincident: a rotation is not determined")
    cross = np.array([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]])
    squashed = np.array([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, 1, 0]])
    R = Rotation.from_rotvec([0.3, -0.5, 0.7]).as_matrix()  # rounding: D[1] ~ 1e-16, not 0
    refused(
        squashed @ R.T + [0.2, 0.1, -0.3],
        "src and dst covary along one direction only: rotation not determined",
        s=cross @ R.T,
    )
