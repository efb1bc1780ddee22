"""Back-projection of rendered true depth onto the mesh, masks, landmark lifting and fusion."""

from __future__ import annotations

import numpy as np
import open3d as o3d
import pytest

from talkhead.capture.masks import face_mask
from talkhead.depth.io import DepthFrame, depth_frame_path, load_depth_frame, save_depth_frame
from talkhead.errors import DepthError
from talkhead.evaluation.points import landmark_error_mm
from talkhead.geometry.cameras import project, ring_rig
from talkhead.geometry.mesh_distance import point_to_mesh_distance
from talkhead.points.backproject import (
    backproject_frame,
    backproject_view,
    combined_mask,
    depth_mask,
    voxel_downsample,
)
from talkhead.points.config import BackprojectConfig
from talkhead.points.io import load_points, save_points
from talkhead.points.landmarks import fuse_landmarks, lift_landmarks
from talkhead.points.stage import backproject_sequence

W, H = 160, 120
RADIUS = 0.1
PLANE_Z = -0.8  # world z of the backdrop: 1.8 m in front of the camera at z = +1


# ---------------------------------------------------------------------------------------------
# Exact expectations on hand-made inputs: messages, thresholds, border pixels, tie-breaks


def _flat_frame(C=2, h=3, w=4, z=1.0):
    depth = np.full((C, h, w), z, np.float32)
    normal = np.zeros((C, h, w, 3), np.float32)
    normal[..., 2] = -1.0
    return DepthFrame(
        depth, normal, np.ones((C, h, w), np.float32), tuple(f"s{i}" for i in range(C))
    )


def _flat_cams(frame):
    from talkhead.geometry.cameras import Camera, intrinsics_from_fov

    C, h, w = frame.depth.shape
    K = intrinsics_from_fov(w, h, 60.0)
    return [Camera(s, K, np.eye(4), w, h) for s in frame.serials]


def test_backproject_frame_messages_name_the_source_and_the_camera(caplog):
    frame = _flat_frame(3)
    cams = _flat_cams(frame)
    with pytest.raises(DepthError, match=r"^depth frame: no calibration for camera\(s\) s0, s2$"):
        backproject_frame(frame, [cams[1]])
    bad = [None, np.ones((2, 4), bool), None]
    with pytest.raises(
        DepthError, match=r"^depth frame camera s1: mask has shape \(2, 4\), the depth map"
    ):
        backproject_frame(frame, cams, masks=bad)
    with pytest.raises(DepthError, match=r"^view: mask has shape \(2, 4\), the depth map"):
        backproject_view(frame.depth[0], frame.normal[0], bad[1], cams[0].K, cams[0].world_2_cam)
    with pytest.raises(DepthError, match=r"^camera: segmentation mask has shape"):
        combined_mask(frame.depth[0], labels=np.ones((2, 4), np.uint8))
    empty = DepthFrame(np.zeros_like(frame.depth), frame.normal, frame.confidence, frame.serials)
    with caplog.at_level("WARNING", logger="talkhead"):
        fp = backproject_frame(empty, cams)
    assert caplog.messages == [
        f"depth frame: camera s{i} has no valid depth in its mask: skipped" for i in range(3)
    ]
    # no point at all: empty arrays of the documented shapes and types
    assert fp.points.shape == fp.normals.shape == (0, 3) and fp.view_ids.shape == (0,)
    assert fp.points.dtype == fp.normals.dtype == np.float32 and fp.view_ids.dtype == np.int16
    assert fp.skipped == ["s0", "s1", "s2"] and fp.counts.tolist() == [0, 0, 0]
    full = backproject_frame(frame, cams)
    assert (
        full.view_ids.dtype == np.int16 and full.view_ids.tolist() == [0] * 12 + [1] * 12 + [2] * 12
    )


def test_backproject_frame_confidence_threshold_is_inclusive_and_anded():
    frame = _flat_frame(1, 2, 3)
    frame.confidence[0] = [[0.2, 0.5, 0.9], [np.nan, 1.0, 0.4999]]
    frame.depth[0, 1, 1] = 2.0  # beyond max_depth: out whatever its confidence
    cams = _flat_cams(frame)
    # min_confidence 0 (the default): confidence is not looked at, NaN included
    assert backproject_frame(frame, cams).counts.tolist() == [5]
    fp = backproject_frame(frame, cams, min_confidence=0.5)
    uv, _ = project(fp.points.astype(np.float64), cams[0].K, np.eye(4))
    assert np.rint(uv).astype(int).tolist() == [[1, 0], [2, 0]]
    fp = backproject_frame(frame, cams, min_confidence=0.9, max_depth=3.0)
    assert fp.counts.tolist() == [2]  # (2, 0) and the far pixel (1, 1)


def test_view_masks_of_any_truthy_type_and_normal_threshold():
    frame = _flat_frame(1, 2, 3)
    cam = _flat_cams(frame)[0]
    mask = np.array([[2, 0, 255], [1, 4, 0]], np.uint8)  # nonzero = use the pixel
    p, _ = backproject_view(frame.depth[0], frame.normal[0], mask, cam.K, cam.world_2_cam)
    assert len(p) == 4
    normal = frame.normal[0].astype(np.float64).copy()
    normal[0, 0] = [1e-6, 0.0, 0.0]  # norm exactly 1e-6: too short to give a direction
    normal[0, 1] = [0.0, 0.0, -2e-6]
    p, n = backproject_view(frame.depth[0], normal, np.ones((2, 3)), cam.K, cam.world_2_cam)
    assert len(p) == 5 and n[0].tolist() == [0.0, 0.0, -1.0]


def test_combined_mask_passes_its_range_and_threshold_on():
    depth = np.array([[1.0, 1.6, 1.9, 2.5]])
    alpha = np.array([[0.7, 0.9, 0.85, 0.9]])
    m = combined_mask(depth, alpha=alpha, max_depth=2.0, alpha_threshold=0.8)
    assert m.tolist() == [[False, True, True, False]]


def test_voxel_downsample_orders_voxels_and_renormalises_short_normal_sums():
    # four voxels that share x: their order is that of (x, y, z) voxel indices
    pts = np.array([[0.5, 1.5, 2.5], [0.5, 0.5, 0.5], [0.5, 1.5, 0.5], [0.5, 0.5, 2.5]])
    nrm = np.tile([0.0, 0.0, 1.0], (4, 1))
    p, n, v = voxel_downsample(pts, nrm, np.arange(4), 1.0)
    assert p.tolist() == pts[[1, 3, 2, 0]].tolist() and v.tolist() == [1, 3, 2, 0]
    assert p.dtype == n.dtype == np.float32
    # two normals 127 degrees apart: their sum is shorter than 1 and is renormalised
    two = voxel_downsample(
        np.array([[0.1, 0.1, 0.1], [0.2, 0.2, 0.2]]),
        np.array([[1.0, 0.0, 0.0], [-0.6, 0.8, 0.0]]),
        np.zeros(2, int),
        1.0,
    )
    np.testing.assert_allclose(two[1], [[1 / np.sqrt(5), 2 / np.sqrt(5), 0.0]], atol=1e-7)
    assert two[1].dtype == np.float32


def _lift_reference(lm, depth, cam, r, min_conf, min_depth, max_depth, jump):
    """One landmark at a time, as documented in :func:`lift_landmarks` (independent loops)."""
    h, w = depth.shape
    d = depth.astype(np.float64)

    def ok(px, py):
        return (
            0 <= px < w
            and 0 <= py < h
            and np.isfinite(d[py, px])
            and min_depth < d[py, px] <= max_depth
        )

    Kinv = np.linalg.inv(cam.K)
    R, t = cam.world_2_cam[:3, :3], cam.world_2_cam[:3, 3]
    pts, valid = np.zeros((len(lm), 3)), np.zeros(len(lm), bool)
    for j, (x, y, c) in enumerate(lm):
        if not (np.isfinite([x, y, c]).all() and c >= min_conf):
            continue
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        taps = [(x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)]
        z = None
        if all(ok(px, py) for px, py in taps):
            zs = [d[py, px] for px, py in taps]
            if max(zs) - min(zs) <= jump:
                fx, fy = x - x0, y - y0
                wts = [(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy]
                z = 1.0 / sum(wt / zz for wt, zz in zip(wts, zs, strict=True))
        if z is None:
            best = np.inf
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):
                    px, py = int(np.rint(x)) + dx, int(np.rint(y)) + dy
                    if ok(px, py) and (px - x) ** 2 + (py - y) ** 2 < best:
                        best, z = (px - x) ** 2 + (py - y) ** 2, d[py, px]
        if z is None:
            continue
        valid[j] = True
        pts[j] = R.T @ (z * (Kinv @ [x, y, 1.0]) - t)
    return pts, valid


def test_lifting_matches_a_pixel_by_pixel_reference_up_to_and_beyond_the_borders(rng):
    from talkhead.geometry.cameras import Camera, intrinsics_from_fov, look_at

    h, w = 9, 12
    K = intrinsics_from_fov(w, h, 50.0)
    cam = Camera("0", K, look_at([0.2, -0.1, -1.5], [0.0, 0.0, 0.0]), w, h)
    v, u = np.mgrid[0:h, 0:w]
    depth = 1.3 + 0.012 * u + 0.009 * v  # 1.3 to 1.51 m: beyond the default max_depth 1.4
    depth[2, 3] = depth[5, 9] = 0.0  # holes
    depth[6:8, 1:3] = 2.5  # beyond max_depth
    depth[0:3, 7:9] += 0.05  # a step: the 2x2 neighbourhoods across it fall back to nearest
    depth = depth.astype(np.float32)  # as in the depth files: interpolated in float64
    n = 600
    lm = np.stack(
        [rng.uniform(-3.6, w + 2.6, n), rng.uniform(-3.6, h + 2.6, n), rng.uniform(0, 1, n)], -1
    )
    lm[:40, 0] = rng.uniform(-0.6, 0.6, 40)  # around the first and last columns and rows
    lm[40:80, 0] = w - 1 + rng.uniform(-1.6, 0.6, 40)
    lm[80:120, 1] = rng.uniform(-0.6, 0.6, 40)
    lm[120:160, 1] = h - 1 + rng.uniform(-1.6, 0.6, 40)
    lm[160:200, 2] = 0.9
    lm[200, 2] = 0.5  # exactly min_conf: kept
    lm[200, :2] = [5.3, 4.6]
    lm[201, 0] = np.nan
    lm[202, 1] = np.inf
    lm[203, 2] = np.nan
    pts, ok = lift_landmarks(lm[None], depth[None], [cam], min_conf=0.5, max_depth=2.0)
    ref, ref_ok = _lift_reference(lm, depth, cam, 2, 0.5, 0.0, 2.0, 0.03)
    assert ok[0].tolist() == ref_ok.tolist()
    assert ref_ok.sum() > 200 and ref_ok[200] and not ref_ok[201:204].any()
    np.testing.assert_allclose(pts[0], ref, rtol=0, atol=1e-10)
    assert np.all(pts[0, ~ref_ok] == 0)


def test_lifting_defaults_window_and_exact_jump():
    from talkhead.geometry.cameras import Camera, intrinsics_from_fov

    K = intrinsics_from_fov(9, 7, 50.0)
    cam = Camera("0", K, np.eye(4), 9, 7)
    depth = np.zeros((1, 7, 9))
    depth[0, 3, 6] = 1.0  # one valid pixel, 3 columns right of (3, 3)
    lm = np.array([[[3.0, 3.0, 1.0], [3.9, 3.0, 1.0]]])
    _, ok = lift_landmarks(lm, depth, [cam])  # default window: 2 pixels each side
    assert ok.tolist() == [[False, True]]
    _, ok = lift_landmarks(lm, depth, [cam], search_radius_px=3)
    assert ok.tolist() == [[True, True]]
    # a 2x2 neighbourhood whose depths differ by exactly max_depth_jump is interpolated
    depth = np.full((1, 7, 9), 1.0)
    depth[0, :, 5:] = 1.25
    lm = np.array([[[4.6, 3.5, 1.0]]])
    for jump, z in ((0.25, 1 / (0.4 / 1.0 + 0.6 / 1.25)), (0.2499, 1.25)):
        p, ok = lift_landmarks(lm, depth, [cam], max_depth_jump=jump)
        assert ok[0, 0] and project(p[0, 0], K, np.eye(4))[1] == pytest.approx(z, abs=1e-12)
    # the default jump is 3 cm: a 5 cm step is an edge
    depth[0, :, 5:] = 1.05
    p, _ = lift_landmarks(lm, depth, [cam])
    assert project(p[0, 0], K, np.eye(4))[1] == pytest.approx(1.05, abs=1e-12)


def test_lifting_checks_shapes():
    from talkhead.geometry.cameras import Camera, intrinsics_from_fov

    cam = Camera("0", intrinsics_from_fov(4, 3, 50.0), np.eye(4), 4, 3)
    with pytest.raises(DepthError, match=r"^landmarks must be \(C, L, 3\), got shape \(1, 2, 2\)$"):
        lift_landmarks(np.zeros((1, 2, 2)), np.ones((1, 3, 4)), [cam])
    match = r"^landmarks \(1, 2, 3\), depth \(2, 3, 4\) and 1 cameras do not match$"
    with pytest.raises(DepthError, match=match):
        lift_landmarks(np.zeros((1, 2, 3)), np.ones((2, 3, 4)), [cam])
    with pytest.raises(DepthError, match="and 2 cameras do not match"):
        lift_landmarks(np.zeros((1, 2, 3)), np.ones((1, 3, 4)), [cam, cam])


def _fuse_reference(P, v, max_dev, min_views, max_iter):
    """One landmark at a time, as documented in :func:`fuse_landmarks` (independent loops)."""
    C, L, _ = P.shape
    pts, ok, inliers = np.zeros((L, 3)), np.zeros(L, bool), np.zeros((C, L), bool)
    for j in range(L):
        good = [c for c in range(C) if v[c, j] and np.isfinite(P[c, j]).all()]
        if not good:
            continue
        X = {c: P[c, j] for c in good}

        def near(center, X=X):
            return {c for c in X if np.linalg.norm(X[c] - center) <= max_dev}

        center = np.median([X[c] for c in good], axis=0)
        support = {c: len(near(X[c])) for c in good}
        spread = {c: sum(np.linalg.norm(X[c] - X[o]) for o in near(X[c])) for c in good}
        best = min(good, key=lambda c: (-support[c], spread[c], c))
        if support[best] > len(near(center)):
            center = X[best]
        inl = near(center)
        for _ in range(max_iter):
            if inl:
                center = np.median([X[c] for c in sorted(inl)], axis=0)
            new = near(center)
            if new == inl:
                break
            inl = new
        if len(inl) >= max(min_views, 1):
            ok[j] = True
            pts[j] = np.mean([X[c] for c in sorted(inl)], axis=0)
            inliers[sorted(inl), j] = True
    return pts, ok, inliers


@pytest.mark.parametrize("min_views", [1, 2, 3])
def test_fusion_matches_a_view_by_view_reference(rng, min_views):
    C, L, dev = 5, 400, 0.01
    truth = rng.normal(scale=0.05, size=(L, 3))
    P = truth + rng.normal(scale=0.4 * dev, size=(C, L, 3))
    far = rng.uniform(size=(C, L)) < 0.35  # outliers 1-3 max_dev away, in any direction
    P[far] += rng.normal(size=(far.sum(), 3)) * rng.uniform(dev, 3 * dev, (far.sum(), 1))
    valid = rng.uniform(size=(C, L)) < 0.8
    P[~valid & (rng.uniform(size=(C, L)) < 0.5)] = np.nan  # garbage in invalid views
    P[:, :20] -= truth[:20]  # some landmarks at the origin, where invalid views are zeroed
    pts, ok, inl = fuse_landmarks(
        P, valid, max_dev=dev, min_views=min_views, max_iter=10, return_inliers=True
    )
    rpts, rok, rinl = _fuse_reference(P, valid, dev, min_views, 10)
    assert ok.tolist() == rok.tolist() and rok.sum() > L // 4
    assert np.array_equal(inl, rinl)
    np.testing.assert_allclose(pts, rpts, rtol=0, atol=1e-15)


def test_fusion_tie_breaks_boundaries_and_types():
    # equal support (two views each) for the median and for the best view: the median stays
    x = np.array([0.0, 0.8, 2.5, 3.3])
    P = np.zeros((4, 2, 3))
    P[:, :, 0] = x[:, None]
    pts, ok, inl = fuse_landmarks(P, np.ones((4, 2)), max_dev=1.0, return_inliers=True)
    assert ok.tolist() == [True, True] and pts[:, 0].tolist() == [1.65, 1.65]
    assert inl[:, 0].tolist() == [False, True, True, False]
    # equal support: the tighter pair starts (5.0 and 5.1), not the first view
    P = np.zeros((4, 1, 3))
    P[:, 0, 0] = [0.0, 0.9, 5.0, 5.1]
    pts, ok = fuse_landmarks(P, np.ones((4, 1), bool), max_dev=1.0)
    assert ok.tolist() == [True] and pts[0, 0] == pytest.approx(5.05)
    # distances of exactly max_dev count as support: for the median (0.25 from both views)...
    P = np.zeros((2, 1, 3))
    P[1, 0, 0] = 0.5
    pts, ok = fuse_landmarks(P, np.ones((2, 1), bool), max_dev=0.25)
    assert ok.tolist() == [True] and pts[0, 0] == 0.25
    # ... and between views (0.25 has both others exactly 0.25 away: it beats the median)
    P = np.zeros((4, 1, 3))
    P[:, 0, 0] = [0.0, 0.25, 0.5, 3.0]
    pts, ok = fuse_landmarks(P, np.ones((4, 1), bool), max_dev=0.25)
    assert ok.tolist() == [True] and pts[0, 0] == 0.25
    # a view exactly max_dev from the centre is an inlier (before and after refinement)
    P = np.zeros((3, 1, 3))
    P[2, 0, 0] = 0.25
    for it in (0, 10):
        pts, ok, inl = fuse_landmarks(
            P, np.ones((3, 1), bool), max_dev=0.25, max_iter=it, return_inliers=True
        )
        assert inl[:, 0].tolist() == [True, True, True] and pts[0, 0] == pytest.approx(0.25 / 3)
    # max_iter=0: the inliers are the views near the starting centre (the best view here)
    P = np.zeros((4, 1, 3))
    P[:, 0, 0] = [0.0, 0.9, 1.8, 9.0]
    pts, _, inl = fuse_landmarks(
        P, np.ones((4, 1), bool), max_dev=1.0, max_iter=0, return_inliers=True
    )
    assert inl[:, 0].tolist() == [True, True, True, False] and pts[0, 0] == pytest.approx(0.9)
    # one view is enough with min_views=1: its own point, even beside an invalid view at 0
    P = np.zeros((3, 1, 3))
    P[1, 0] = [0.1, 0.2, 0.3]
    P[2, 0] = [0.5, 0.2, 0.3]
    pts, ok = fuse_landmarks(P, np.array([[False], [True], [True]]), max_dev=0.1, min_views=1)
    assert ok.tolist() == [True] and pts[0].tolist() == [0.1, 0.2, 0.3]
    # the default max_dev is 5 mm; a float mask and float32 points are accepted
    P = np.zeros((2, 2, 3), np.float32)
    P[1, :, 0] = [0.009, 0.011]  # the median 4.5 and 5.5 mm from each
    pts, ok = fuse_landmarks(P, np.ones((2, 2), np.float32))
    assert ok.tolist() == [True, False] and pts.dtype == np.float64
    with pytest.raises(DepthError, match="do not match"):
        fuse_landmarks(np.zeros((2, 2, 2)), np.ones((2, 2), bool))


def _sphere():
    m = o3d.geometry.TriangleMesh.create_sphere(RADIUS, 40)
    return np.asarray(m.vertices, dtype=np.float64), np.asarray(m.triangles, dtype=np.int64)


def _plane():
    s = 3.0
    v = np.array([[-s, -s, PLANE_Z], [s, -s, PLANE_Z], [s, s, PLANE_Z], [-s, s, PLANE_Z]])
    return v, np.array([[0, 1, 2], [0, 2, 3]])


def _render(cameras, meshes):
    """True z-depth (C, H, W), camera-frame normals facing the camera (C, H, W, 3) and the
    id of the mesh hit (C, H, W) (-1 = nothing)."""
    scene = o3d.t.geometry.RaycastingScene()
    for v, f in meshes:
        scene.add_triangles(
            o3d.core.Tensor(v.astype(np.float32)), o3d.core.Tensor(f.astype(np.uint32))
        )
    u, vv = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    pix = np.stack([u, vv, np.ones_like(u)], axis=-1).reshape(-1, 3)
    depth, normal, gid = [], [], []
    for cam in cameras:
        d_cam = pix @ np.linalg.inv(cam.K).T  # z = 1 in the camera
        d_world = d_cam @ cam.R  # R^T d
        o = np.broadcast_to(cam.center, d_world.shape)
        rays = np.concatenate([o, d_world], axis=1).astype(np.float32)
        ans = scene.cast_rays(o3d.core.Tensor(rays))
        t = ans["t_hit"].numpy().astype(np.float64)
        hit = np.isfinite(t)
        n_cam = ans["primitive_normals"].numpy().astype(np.float64) @ cam.R.T
        n_cam[np.einsum("ij,ij->i", n_cam, d_cam) > 0] *= -1
        depth.append(np.where(hit, t, 0.0).reshape(H, W))
        normal.append(np.where(hit[:, None], n_cam, 0.0).reshape(H, W, 3))
        gid.append(np.where(hit, ans["geometry_ids"].numpy().astype(np.int64), -1).reshape(H, W))
    return np.stack(depth), np.stack(normal), np.stack(gid)


@pytest.fixture(scope="module")
def studio():
    cams = ring_rig(4, W, H, fov_x_deg=30.0, radius=1.0, yaw_span_deg=60.0)
    sphere, plane = _sphere(), _plane()
    depth, normal, gid = _render(cams, [sphere, plane])
    frame = DepthFrame(
        depth.astype(np.float32),
        normal.astype(np.float32),
        (depth > 0).astype(np.float32),
        tuple(c.serial for c in cams),
    )
    return cams, sphere, frame, gid


def _mesh_face_normals(points, vertices, faces):
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(faces.astype(np.uint32))
    )
    ans = scene.compute_closest_points(o3d.core.Tensor(points.astype(np.float32)))
    return ans["primitive_normals"].numpy().astype(np.float64)


def test_backprojection_of_true_depth_lands_on_the_mesh(studio):
    cams, (V, F), frame, gid = studio
    fp = backproject_frame(frame, cams, max_depth=1.4)
    assert fp.skipped == []
    # every camera sees the sphere, and only sphere pixels survive the depth mask
    for i in range(len(cams)):
        assert fp.counts[i] == int((gid[i] == 0).sum()) > 500
    dist = point_to_mesh_distance(fp.points, V, F)
    assert dist.max() < 1e-4
    # world normals are the mesh's (R^T applied, not R), unit length, facing outwards
    n_mesh = _mesh_face_normals(fp.points, V, F)
    cos = np.einsum("ij,ij->i", fp.normals.astype(np.float64), n_mesh)
    assert np.allclose(np.linalg.norm(fp.normals, axis=1), 1.0, atol=1e-5)
    assert np.percentile(cos, 1) > 0.999
    outward = fp.points / np.linalg.norm(fp.points, axis=1, keepdims=True)
    assert np.einsum("ij,ij->i", fp.normals, outward).min() > 0.98


def test_view_ids_and_single_view_agree(studio):
    cams, _, frame, _ = studio
    fp = backproject_frame(frame, cams)
    p1, n1 = backproject_view(
        frame.depth[1], frame.normal[1], np.ones((H, W), bool), cams[1].K, cams[1].world_2_cam
    )
    p1 = p1[depth_mask(frame.depth[1])[np.nonzero(frame.depth[1] > 0)]]
    assert np.array_equal(fp.points[fp.view_ids == 1], p1)
    # the points of view 1 project back onto view 1's pixels at their depth
    uv, z = project(p1, cams[1].K, cams[1].world_2_cam)
    ui, vi = np.rint(uv[:, 0]).astype(int), np.rint(uv[:, 1]).astype(int)
    assert np.abs(uv - np.stack([ui, vi], 1)).max() < 1e-3
    assert np.allclose(z, frame.depth[1][vi, ui], atol=1e-5)


def test_depth_mask_excludes_the_backdrop(studio):
    cams, _, frame, gid = studio
    backdrop = gid == 1
    assert backdrop.any() and frame.depth[backdrop].min() > 1.4  # really behind 1.4 m
    m = depth_mask(frame.depth, 0.0, 1.4)
    assert not (m & backdrop).any()
    assert np.array_equal(m, gid == 0)
    # with a wider range the backdrop is back in
    fp_all = backproject_frame(frame, cams, max_depth=5.0)
    fp = backproject_frame(frame, cams, max_depth=1.4)
    assert len(fp_all.points) == int((gid >= 0).sum()) > len(fp.points)
    # (min, max]: a depth exactly at max is kept, one exactly at min is not
    d = np.array([[0.0, 0.5, 1.4, 1.4001]])
    assert depth_mask(d, 0.5, 1.4).tolist() == [[False, False, True, False]]


def test_face_mask_excludes_non_face_labels(studio):
    cams, _, frame, gid = studio
    labels = np.zeros((len(cams), H, W), np.uint8)
    labels[:, :, : W // 2] = 1  # face skin on the left half
    labels[:, :, W // 2 :] = 10  # hair on the right half
    labels[:, : H // 4, :] = 6  # nose label on the top rows
    fm = face_mask(labels)
    assert fm[:, :, : W // 2].all() and fm[:, : H // 4].all()
    assert not fm[:, H // 4 :, W // 2 :].any()
    assert face_mask(np.arange(12)).tolist() == [False] + [True] * 9 + [False, False]
    fp = backproject_frame(frame, cams, masks=fm)
    for i, cam in enumerate(cams):
        p = fp.points[fp.view_ids == i]
        assert len(p) == int((fm[i] & (gid[i] == 0)).sum())
        uv, _ = project(p, cam.K, cam.world_2_cam)
        ui, vi = np.rint(uv[:, 0]).astype(int), np.rint(uv[:, 1]).astype(int)
        assert np.isin(labels[i, vi, ui], list(range(1, 10))).all()
    # combined: depth AND labels AND alpha
    alpha = np.zeros((H, W), np.uint8)
    alpha[H // 2 :] = 255
    cm = combined_mask(frame.depth[0], labels[0], alpha)
    assert np.array_equal(cm, depth_mask(frame.depth[0]) & fm[0] & (alpha > 127))


def test_mask_of_the_wrong_size_raises(studio):
    cams, _, frame, _ = studio
    bad = np.ones((len(cams), H, W + 2), bool)
    with pytest.raises(DepthError, match=cams[0].serial):
        backproject_frame(frame, cams, masks=bad)
    with pytest.raises(DepthError, match="segmentation"):
        combined_mask(frame.depth[0], labels=np.ones((H // 2, W), np.uint8), name="cam_x")
    with pytest.raises(DepthError, match="mask"):
        backproject_view(
            frame.depth[0],
            frame.normal[0],
            np.ones((H - 1, W), bool),
            cams[0].K,
            cams[0].world_2_cam,
        )


def test_camera_without_valid_depth_is_counted_as_skipped(studio, caplog):
    cams, _, frame, _ = studio
    depth = frame.depth.copy()
    depth[2] = 0.0
    f2 = DepthFrame(depth, frame.normal, frame.confidence, frame.serials)
    with caplog.at_level("WARNING", logger="talkhead"):
        fp = backproject_frame(f2, cams)
    assert fp.skipped == [cams[2].serial]
    assert fp.counts[2] == 0 and (fp.counts[[0, 1, 3]] > 0).all()
    assert not (fp.view_ids == 2).any()
    assert cams[2].serial in caplog.text


def test_voxel_downsampling(studio):
    cams, (V, F), frame, _ = studio
    full = backproject_frame(frame, cams)
    vox = backproject_frame(frame, cams, voxel_size=0.005)
    assert 0 < len(vox.points) < len(full.points) / 2
    keys = np.floor(vox.points / 0.005).astype(np.int64)
    assert len(np.unique(keys, axis=0)) == len(keys)  # at most one point per voxel
    # averages of points on a convex 10 cm sphere stay within a fraction of a mm of it
    assert point_to_mesh_distance(vox.points, V, F).max() < 5e-4
    assert np.allclose(np.linalg.norm(vox.normals, axis=1), 1.0, atol=1e-5)
    # deterministic
    again = voxel_downsample(full.points, full.normals, full.view_ids, 0.005)
    assert np.array_equal(again[0], vox.points)


def _cast(cam, uv, V, F):
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(V.astype(np.float32)), o3d.core.Tensor(F.astype(np.uint32)))
    d = np.append(uv, 1.0) @ np.linalg.inv(cam.K).T @ cam.R
    ans = scene.cast_rays(o3d.core.Tensor(np.concatenate([cam.center, d])[None].astype(np.float32)))
    return cam.center + float(ans["t_hit"].numpy()[0]) * d


def test_lifting_a_landmark_recovers_its_3d_point(studio):
    cams, (V, F), frame, _ = studio
    # a surface point seen by all cameras: the hit of camera 0's ray at a fractional pixel
    X = _cast(cams[0], np.array([83.3, 57.6]), V, F)
    lm = np.zeros((len(cams), 68, 3))
    for i, cam in enumerate(cams):
        uv, _ = project(X, cam.K, cam.world_2_cam)
        lm[i, :, :2] = uv
        lm[i, :, 2] = 0.9
    lm[1, 5, 2] = 0.1  # low confidence -> not lifted
    lm[2, 7, :2] = [-50, 30]  # outside the image -> not lifted
    lm[3, 9, :2] = [2.0, 2.0]  # on the backdrop (> 1.4 m) -> no valid depth nearby
    pts, ok = lift_landmarks(lm, frame.depth, cams, min_conf=0.5, search_radius_px=2)
    assert not ok[1, 5] and not ok[2, 7] and not ok[3, 9]
    good = ok.copy()
    assert good.sum() == 4 * 68 - 3
    err = np.linalg.norm(pts[good] - X, axis=-1)
    assert err.max() < 5e-4
    # nearest-valid fallback: a landmark just off the silhouette takes its neighbour's depth
    uv0, _ = project(np.array([0.0, 0.0, 0.0]), cams[0].K, cams[0].world_2_cam)
    row = frame.depth[0, int(round(uv0[1]))]
    edge = int(np.flatnonzero(depth_mask(row)).max())
    lm2 = lm[:1].copy()
    lm2[0, 0, :2] = [edge + 1.2, round(uv0[1])]
    p2, ok2 = lift_landmarks(lm2, frame.depth[:1], cams[:1], search_radius_px=2)
    assert ok2[0, 0]
    _, z = project(p2[0, 0], cams[0].K, cams[0].world_2_cam)
    assert abs(z - frame.depth[0, int(round(uv0[1])), edge]) < 1e-6
    p3, ok3 = lift_landmarks(lm2, frame.depth[:1], cams[:1], search_radius_px=0)
    assert not ok3[0, 0]


def test_fusion_drops_an_outlier_view(rng):
    truth = rng.normal(scale=0.05, size=(68, 3))
    C = 5
    lifted = truth + rng.normal(scale=0.0003, size=(C, 68, 3))
    lifted[2] += np.array([0.03, 0.0, 0.0])  # one view 3 cm off on every landmark
    valid = np.ones((C, 68), bool)
    pts, ok, inl = fuse_landmarks(lifted, valid, max_dev=0.005, min_views=2, return_inliers=True)
    assert ok.all()
    assert not inl[2].any() and inl[[0, 1, 3, 4]].all()
    assert np.linalg.norm(pts - truth, axis=1).max() < 0.001
    # a plain mean would be 6 mm off: the fusion really is robust
    assert np.linalg.norm(lifted.mean(0) - truth, axis=1).min() > 0.004
    # invalid views are ignored even if they hold garbage
    lifted2 = lifted.copy()
    lifted2[0, :10] = np.nan
    valid2 = valid.copy()
    valid2[0, :10] = False
    pts2, ok2 = fuse_landmarks(lifted2, valid2)
    assert ok2.all() and np.isfinite(pts2).all()


def test_fusion_needs_min_views_to_agree(rng):
    truth = rng.normal(scale=0.05, size=(68, 3))
    lifted = np.repeat(truth[None], 3, axis=0)
    valid = np.zeros((3, 68), bool)
    valid[0] = True
    valid[1, :34] = True  # landmarks 0-33: two views agree
    lifted[1, 34:] += 0.03
    valid[1, 34:] = True  # landmarks 34-67: two views 3 cm apart
    pts, ok = fuse_landmarks(lifted, valid, max_dev=0.005, min_views=2)
    assert ok[:34].all() and not ok[34:].any()
    assert np.allclose(pts[:34], truth[:34]) and np.all(pts[34:] == 0)
    _, ok3 = fuse_landmarks(lifted, valid, min_views=3)
    assert not ok3.any()
    _, ok1 = fuse_landmarks(lifted[:1], valid[:1], min_views=1)
    assert ok1.all()


def test_metrics():
    V = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], float)
    F = np.array([[0, 1, 2]])
    d = point_to_mesh_distance(np.array([[0.2, 0.2, 0.3], [0.2, 0.2, -0.1]]), V, F)
    assert np.allclose(d, [0.3, 0.1], atol=1e-6)
    gt = np.zeros((2, 68, 3))
    pred = gt.copy()
    pred[..., 0] = 0.002
    valid = np.ones((2, 68), bool)
    pred[0, 0] = 5.0
    valid[0, 0] = False  # an invalid landmark does not count
    assert landmark_error_mm(pred, valid, gt) == pytest.approx(2.0)
    assert np.isnan(landmark_error_mm(pred, np.zeros_like(valid), gt))


def test_backproject_sequence(studio, tmp_path, rng):
    cams, (V, F), frame, gid = studio
    depth_dir = tmp_path / "depth"
    d2 = frame.depth.copy()
    d2[3] = 0.0  # frame 1: camera 3 has no depth
    for t, d in ((0, frame.depth), (1, d2)):
        save_depth_frame(
            depth_frame_path(depth_dir, t),
            d,
            frame.normal,
            (d > 0).astype(np.float32),
            frame.serials,
        )
    uvs = rng.uniform(-5, 5, (68, 2)) + [80, 60]
    X = np.stack([_cast(cams[0], uv, V, F) for uv in uvs])

    def labels(t, serials):
        assert list(serials) == [c.serial for c in cams]
        return np.where(gid >= 0, 1, 0).astype(np.uint8)

    def landmarks(t, serials):
        out = np.zeros((len(serials), 68, 3))
        for i, cam in enumerate(cams):
            out[i, :, :2] = project(X, cam.K, cam.world_2_cam)[0]
            out[i, :, 2] = 1.0
        out[1, :, :2] += 12.0  # a bad detector in camera 1
        return out

    cfg = BackprojectConfig(voxel_size=0.003)
    data, stats = backproject_sequence(
        depth_dir,
        {c.serial: c for c in cams},
        segmentation=labels,
        landmarks2d=landmarks,
        config=cfg,
    )
    off = data["frame_offsets"]
    assert off.tolist()[0] == 0 and off[-1] == len(data["points"]) and len(off) == 3
    assert list(data["frames"]) == [0, 1] == stats["frames"]
    assert (np.diff(off) > 0).all() and np.array_equal(np.diff(off), stats["points_per_frame"])
    assert stats["skipped_cameras"] == {1: [cams[3].serial]} and stats["n_skipped"] == 1
    assert point_to_mesh_distance(data["points"], V, F).max() < 1e-3
    assert data["landmarks3d_valid"].all()
    assert (
        landmark_error_mm(
            data["landmarks3d"], data["landmarks3d_valid"], np.broadcast_to(X, (2, 68, 3))
        )
        < 0.5
    )
    # camera 1 never agrees;
    # frame 1 has no camera 3 -> 2 inlier views
    inl = stats["landmark_inliers"]
    assert (inl[0] == 3).all() and (inl[1] == 2).all()
    assert (stats["landmark_views"][1] == 3).all()  # camera 1's lifted points exist
    save_points(tmp_path / "points.npz", data)
    back = load_points(tmp_path / "points.npz")
    assert back["points"].dtype == np.float32 and np.array_equal(back["points"], data["points"])
    assert back["landmarks3d_valid"].dtype == bool


def test_nan_depth_file_raises_naming_the_file(studio, tmp_path):
    cams, _, frame, _ = studio
    path = depth_frame_path(tmp_path, 3)
    d = frame.depth.copy()
    d[1, 10, 10] = np.nan
    np.savez_compressed(
        path,
        depth=d,
        normal=frame.normal,
        confidence=frame.confidence,
        serials=np.array(frame.serials),
    )
    with pytest.raises(DepthError, match=str(path.name)) as exc:
        backproject_sequence(tmp_path, cams, frames=[3])
    assert cams[1].serial in str(exc.value) and cams[0].serial not in str(exc.value)
    with pytest.raises(DepthError):
        load_depth_frame(path)


def test_config_from_mapping():
    from talkhead.capture.config import FaceMaskConfig
    from talkhead.config import from_mapping
    from talkhead.errors import ConfigError

    cfg = from_mapping(BackprojectConfig, {"max_depth": 1.2, "voxel_size": 0}, "backproject")
    assert cfg.max_depth == 1.2 and cfg.voxel_size == 0.0
    face = from_mapping(FaceMaskConfig, {"labels": [1, 6, 7, 9]}, "face_mask")
    assert face.labels == (1, 6, 7, 9)

    with pytest.raises(ConfigError, match="backproject.max_dept: unknown setting"):
        from_mapping(BackprojectConfig, {"max_dept": 1.2}, "backproject")
    with pytest.raises(ConfigError, match=r"backproject.min_depth: must be < max_depth \(1.4\)"):
        from_mapping(BackprojectConfig, {"min_depth": 2.0}, "backproject")
    with pytest.raises(ConfigError, match="backproject.face_labels: unknown setting"):
        from_mapping(BackprojectConfig, {"face_labels": [1, 2]}, "backproject")


# ---------------------------------------------------------------------------------------------
# Masks, single views, voxels and landmarks on hand-made inputs (exact expectations)


def test_depth_mask_bounds_and_combined_masks():
    from talkhead.errors import DepthError
    from talkhead.points.backproject import combined_mask

    d = np.array([0.0, 1e-9, 0.5, 1.4, 1.4 + 1e-9, np.nan, np.inf, -1.0])
    assert depth_mask(d).tolist() == [False, True, True, True, False, False, False, False]
    assert depth_mask(d, min_depth=0.5, max_depth=2.0).tolist() == [
        False, False, False, True, True, False, False, False,
    ]  # fmt: skip
    depth = np.full((2, 3), 1.0)
    depth[0, 0] = 2.0
    labels = np.array([[1, 1, 0], [9, 10, 5]])
    alpha = np.array([[1.0, 0.5, 1.0], [0.51, 1.0, 1.0]])
    m = combined_mask(depth, labels, alpha, alpha_threshold=0.5)
    assert m.tolist() == [[False, False, False], [True, False, True]]
    assert combined_mask(depth).tolist() == [[False, True, True], [True, True, True]]
    assert combined_mask(depth, labels, face_labels=(0,)).tolist() == [
        [False, False, True], [False, False, False],
    ]  # fmt: skip
    with pytest.raises(DepthError, match="cam_7: segmentation mask has shape"):
        combined_mask(depth, labels[:1], name="cam_7")
    with pytest.raises(DepthError, match="cam_7: alpha mask has shape"):
        combined_mask(depth, None, alpha[:, :2], name="cam_7")


def test_backproject_view_lifts_pixels_and_turns_normals_to_world():
    from talkhead.errors import DepthError
    from talkhead.geometry.cameras import intrinsics_from_fov, look_at

    K = intrinsics_from_fov(4, 3, 50.0)
    T = look_at([0.3, -0.2, -1.0], [0.0, 0.1, 0.2])
    depth = np.array([[1.0, 1.1, 1.2, 0.0], [0.9, 1.0, 1.5, 1.0], [1.0, 1.0, 1.0, 1.0]])
    n_cam = np.array([0.6, 0.0, -0.8])
    normal = np.tile(2.0 * n_cam, (3, 4, 1))  # not unit: normalised in the output
    normal[2, 0] = 0.0  # no direction: left out
    normal[2, 1] = np.nan
    mask = np.ones((3, 4), bool)
    mask[1, 1] = False
    pts, nrm = backproject_view(depth, normal, mask, K, T)
    keep = mask & (depth > 0)
    keep[2, 0] = keep[2, 1] = False
    rows, cols = np.nonzero(keep)
    assert pts.dtype == np.float32 and nrm.dtype == np.float32 and len(pts) == keep.sum()
    uv, z = project(pts.astype(np.float64), K, T)
    np.testing.assert_allclose(uv, np.stack([cols, rows], 1), atol=1e-4)
    np.testing.assert_allclose(z, depth[rows, cols], atol=1e-6)
    np.testing.assert_allclose(nrm, np.tile(T[:3, :3].T @ n_cam, (len(pts), 1)), atol=1e-6)
    with pytest.raises(DepthError, match="normal map has shape"):
        backproject_view(depth, normal[:2], mask, K, T)
    with pytest.raises(DepthError, match="mask has shape"):
        backproject_view(depth, normal, mask[:2], K, T)
    with pytest.raises(DepthError, match=r"depth must be \(H, W\)"):
        backproject_view(depth[None], normal, mask, K, T)


def test_voxel_downsample_averages_each_voxel():
    from talkhead.errors import ConfigError

    pts = np.array(
        [[0.001, 0.001, 0.001], [0.011, 0.0, 0.0], [0.003, 0.002, 0.004], [0.012, 0.001, 0.0],
         [0.001, 0.011, 0.0], [0.002, 0.012, 0.001]]
    )  # fmt: skip
    nrm = np.array([[1.0, 0, 0], [0, 0, 2.0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 0, 0], [-1.0, 0, 0]])
    ids = np.array([3, 1, 4, 1, 5, 9])
    p, n, v = voxel_downsample(pts, nrm, ids, 0.005)
    order = np.argsort(p[:, 0])
    np.testing.assert_allclose(
        p[order],
        [[0.0015, 0.0115, 0.0005], [0.002, 0.0015, 0.0025], [0.0115, 0.0005, 0.0]],
        atol=1e-7,
    )
    h = np.sqrt(0.5)
    np.testing.assert_allclose(n[order], [[0, 0, 0], [h, h, 0], [0, 0, 1]], atol=1e-6)
    assert v[order].tolist() == [5, 3, 1]  # the first point's view
    with pytest.raises(ConfigError, match="voxel_size"):
        voxel_downsample(pts, nrm, ids, 0.0)
    e = voxel_downsample(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0, int), 0.01)
    assert [len(a) for a in e] == [0, 0, 0]


def test_lifting_is_exact_on_a_plane_and_steps_back_at_a_depth_jump():
    from talkhead.geometry.cameras import Camera, intrinsics_from_fov

    K = intrinsics_from_fov(20, 16, 40.0)
    cam = Camera("0", K, np.eye(4), 20, 16)
    rays = np.stack([*np.meshgrid(np.arange(20.0), np.arange(16.0)), np.ones((16, 20))], -1)
    rays = rays @ np.linalg.inv(K).T
    n, d0 = np.array([0.2, -0.1, -1.0]) / np.sqrt(1.05), 0.8
    depth = (-d0 / (rays @ n))[None]  # the plane n . X = -d0
    lm = np.array([[[7.3, 5.6, 0.9], [12.8, 9.1, 0.9], [3.5, 3.5, 0.4]]])
    pts, ok = lift_landmarks(lm, depth, [cam], min_conf=0.5, max_depth=2.0)
    assert ok.tolist() == [[True, True, False]]
    np.testing.assert_allclose(pts[0, :2] @ n, -d0, atol=1e-12)  # on the plane: exact
    np.testing.assert_allclose(project(pts[0, :2], K, np.eye(4))[0], lm[0, :2, :2], atol=1e-9)
    assert np.all(pts[0, 2] == 0)
    # a 5 cm step inside the 2x2 neighbourhood: the nearest pixel's own depth is used
    stepped = depth.copy()
    stepped[0, 6, 8] += 0.05
    pts2, ok2 = lift_landmarks(lm[:, :1], stepped, [cam], max_depth=2.0, max_depth_jump=0.03)
    _, z = project(pts2[0, 0], K, np.eye(4))
    assert ok2[0, 0] and z == pytest.approx(depth[0, 6, 7], abs=1e-12)
    # the step allowed: bilinear again, pulled towards the farther pixel
    pts3, _ = lift_landmarks(lm[:, :1], stepped, [cam], max_depth=2.0, max_depth_jump=0.06)
    assert project(pts3[0, 0], K, np.eye(4))[1] > project(pts[0, 0], K, np.eye(4))[1] + 1e-3


def test_fusion_starts_from_the_best_supported_view_when_the_median_falls_between():
    truth = np.array([[0.01, 0.02, 0.5]])
    lifted = np.stack(
        [truth, truth + [0.0005, 0, 0], truth + [0.03, 0.01, 0], truth + [0.03, -0.01, 0.0]]
    )  # two views agree; two others are off, in different directions
    pts, ok, inl = fuse_landmarks(lifted, np.ones((4, 1), bool), max_dev=0.005, return_inliers=True)
    assert ok.tolist() == [True]
    assert inl[:, 0].tolist() == [True, True, False, False]
    np.testing.assert_allclose(pts[0], truth[0] + [0.00025, 0, 0], atol=1e-12)
    with pytest.raises(DepthError, match="do not match"):
        fuse_landmarks(lifted, np.ones((3, 1), bool))
