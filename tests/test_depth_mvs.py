"""Tests of the torch multi-view stereo and the depth metrics on a small ray-cast scene.

The scene (:func:`render_views`) is a bumpy ellipsoid ~0.2 m tall with nose- and chin-like
bumps, at 1 m from an arc of cameras (``ring_rig``), ray cast with open3d. Its texture is
multi-scale 3D value noise evaluated at the hit point (so every view sees the same surface
pattern) times Lambertian shading; colours are supersampled 2x2 and get sensor noise; a
textured backdrop sphere surrounds everything. True depth and normals come from the
pixel-centre rays. The "face" (:func:`face_masks`) is the part of the head facing the rig.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talkhead.depth.mvs.config import MVSConfig
from talkhead.depth.mvs.consistency import consistency_count
from talkhead.depth.mvs.estimate import estimate_depth, estimate_depth_sequence
from talkhead.depth.mvs.neighbours import select_neighbours
from talkhead.depth.range import depth_range_from_points, depth_range_from_rig
from talkhead.errors import DepthError
from talkhead.evaluation.depth import DepthErrorAccumulator, depth_metrics
from talkhead.geometry.cameras import Camera, ring_rig
from talkhead.geometry.triangulation import triangulate_points

# --------------------------------------------------------------------------------------------
# the test scene (also used by benchmarks/bench_depth.py)
# --------------------------------------------------------------------------------------------


def _head_mesh(resolution: int = 96, phase: float = 0.0):
    import open3d as o3d

    mesh = o3d.geometry.TriangleMesh.create_sphere(radius=1.0, resolution=resolution)
    v = np.asarray(mesh.vertices)
    x, y, z = v.T
    r = 1 + 0.05 * np.sin(3 * x + 1 + phase) * np.cos(2 * y) + 0.04 * np.sin(4 * z + 2 * y)
    # nose-like bump facing +z and a chin-like bump below it
    r += 0.22 * np.exp(-((x / 0.18) ** 2 + ((y + 0.05) / 0.25) ** 2 + ((z - 1) / 0.5) ** 2))
    r += 0.10 * np.exp(-((x / 0.35) ** 2 + ((y + 0.7) / 0.2) ** 2 + ((z - 0.7) / 0.5) ** 2))
    v = v * r[:, None] * np.array([0.075, 0.1, 0.085])
    mesh.vertices = o3d.utility.Vector3dVector(v)
    return mesh


def _value_noise(points: np.ndarray, cell: float, seed: int) -> np.ndarray:
    """Smooth 3D value noise in [-1, 1] with lattice spacing ``cell`` (metres), not periodic."""
    table = np.random.default_rng(seed).uniform(-1, 1, 1 << 16)
    g = points / cell
    i0 = np.floor(g).astype(np.int64)
    f = g - i0
    f = f * f * (3 - 2 * f)  # smoothstep
    out = np.zeros(points.shape[:-1])
    for corner in np.ndindex(2, 2, 2):
        c = i0 + np.array(corner)
        h = (c[..., 0] * 73856093) ^ (c[..., 1] * 19349663) ^ (c[..., 2] * 83492791)
        w = np.prod(np.where(np.array(corner, dtype=bool), f, 1 - f), axis=-1)
        out += w * table[h & 0xFFFF]
    return out


def _texture(points: np.ndarray, seed: int, cells=(0.0025, 0.005, 0.01, 0.02)) -> np.ndarray:
    """Multi-scale 3D noise pattern in [0, 1] evaluated at (..., 3) world points (metres)."""
    out = sum(_value_noise(points, cell, seed + i) for i, cell in enumerate(cells))
    out = out / (0.35 * np.sqrt(len(cells)))  # ~unit std
    return 1 / (1 + np.exp(-1.5 * out))


def render_views(cameras, phase: float = 0.0, noise: float = 1.0, seed: int = 0):
    """Ray cast the scene into ``cameras``.

    Returns:
        images (C, H, W, 3) uint8, masks (C, H, W) bool, depth (C, H, W) float32 z (0 = none),
        normals (C, H, W, 3) float32 camera frame.
    """
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    head_id = scene.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(_head_mesh(phase=phase)))
    back = o3d.geometry.TriangleMesh.create_sphere(radius=2.5, resolution=24)
    scene.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(back))
    light = np.array([0.3, 0.5, 1.0]) / np.linalg.norm([0.3, 0.5, 1.0])
    rng = np.random.default_rng(seed)
    imgs, masks, depths, normals = [], [], [], []

    def cast(cam: Camera, offsets):
        H, W = cam.height, cam.width
        u, v = np.meshgrid(np.arange(W), np.arange(H))
        out = []
        for du, dv in offsets:
            p = np.stack([u + du, v + dv, np.ones_like(u, dtype=float)], -1)
            dirs_c = p @ np.linalg.inv(cam.K).T
            dirs_c /= np.linalg.norm(dirs_c, axis=-1, keepdims=True)
            dirs = dirs_c @ cam.R  # camera -> world rotation is R^T
            o = np.broadcast_to(cam.center, dirs.shape)
            rays = o3d.core.Tensor(np.concatenate([o, dirs], -1).astype(np.float32))
            hit = scene.cast_rays(rays)
            t = hit["t_hit"].numpy().astype(np.float64)
            gid = hit["geometry_ids"].numpy()
            n = hit["primitive_normals"].numpy().astype(np.float64)
            out.append((t, gid, n, dirs_c, dirs))
        return out

    for cam in cameras:
        sub = cast(cam, [(-0.25, -0.25), (0.25, -0.25), (-0.25, 0.25), (0.25, 0.25)])
        col = 0.0
        for t, gid, n, _, dirs in sub:
            X = cam.center + dirs * t[..., None]
            is_head = gid == head_id
            albedo = np.where(
                is_head,
                0.25 + 0.7 * _texture(X, 1),
                0.2 + 0.6 * _texture(X, 2, cells=(0.02, 0.04, 0.08)),
            )
            shade = np.where(is_head, 0.35 + 0.65 * np.clip(n @ light, 0, 1), 1.0)
            col = col + albedo * shade
        col = col / len(sub) * 255 + rng.normal(scale=noise, size=col.shape)
        tint = np.array([1.0, 0.85, 0.75])
        imgs.append(np.clip(col[..., None] * tint, 0, 255).round().astype(np.uint8))
        ((t, gid, n, dirs_c, _),) = cast(cam, [(0.0, 0.0)])
        head = gid == head_id
        masks.append(head)
        depths.append(np.where(head, t * dirs_c[..., 2], 0).astype(np.float32))
        n_cam = n @ cam.R.T
        n_cam = np.where((n_cam * dirs_c).sum(-1, keepdims=True) > 0, -n_cam, n_cam)
        normals.append(np.where(head[..., None], n_cam, 0).astype(np.float32))
    return np.stack(imgs), np.stack(masks), np.stack(depths), np.stack(normals)


def make_cameras(n: int = 6, width: int = 160, height: int = 128, fov: float = 18.0):
    return ring_rig(n, width, height, fov, radius=1.0, yaw_span_deg=120.0, pitch_deg=(-8, 8))


def face_masks(cameras, masks: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Head pixels whose surface faces the rig (world normal z > 0.5): the "face" of the scene."""
    return np.stack(
        [masks[c] & ((normals[c] @ cam.R)[..., 2] > 0.5) for c, cam in enumerate(cameras)]
    )


def surface_points(cameras, depth: np.ndarray, view: int, n: int, seed: int = 0) -> np.ndarray:
    """(n, 3) world points of the surface seen by ``view`` (back-projected true depth)."""
    rng = np.random.default_rng(seed)
    v, u = np.nonzero(depth[view] > 0)
    pick = rng.choice(len(u), n, replace=False)
    uv = np.stack([u[pick], v[pick]], -1).astype(np.float64)
    return cameras[view].unproject(uv, depth[view][v[pick], u[pick]])


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Many small ops: on cores shared with other jobs, one thread beats two (OpenMP waits)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def scene():
    cams = make_cameras()
    images, masks, depth, normals = render_views(cams)
    return cams, images, masks, depth, normals


@pytest.fixture(scope="module")
def landmark_range(scene):
    """Depth range from 'landmarks': surface points triangulated from noisy 2D observations."""
    cams, _, _, depth, _ = scene
    pts = surface_points(cams, depth, len(cams) // 2, 40)
    rng = np.random.default_rng(1)
    uv = np.stack([c.project(pts)[0] for c in cams])
    uv += rng.normal(scale=0.5, size=uv.shape)
    X, valid = triangulate_points(uv, np.ones(uv.shape[:2]), cams)
    return depth_range_from_points(X[valid], cams)


@pytest.fixture(scope="module")
def result(scene, landmark_range):
    cams, images, masks, _, _ = scene
    return estimate_depth(images, cams, masks, depth_range=landmark_range)


# --------------------------------------------------------------------------------------------
# depth range, neighbours, consistency
# --------------------------------------------------------------------------------------------


def test_depth_range_from_points_brackets_the_true_depth(scene, landmark_range):
    cams, _, masks, depth, _ = scene
    assert landmark_range.shape == (len(cams), 2)
    for c in range(len(cams)):
        d = depth[c][masks[c]]
        assert landmark_range[c, 0] < d.min() and d.max() < landmark_range[c, 1]
        assert landmark_range[c, 1] - landmark_range[c, 0] < 0.5  # informative, not huge
    with pytest.raises(DepthError, match="no point in front"):
        depth_range_from_points(np.array([[0.0, 0.0, 5.0]]), cams)


def test_depth_range_from_rig():
    cams = make_cameras(5)
    rng = depth_range_from_rig(cams, radius=0.1)
    np.testing.assert_allclose(rng, np.tile([0.9, 1.1], (5, 1)), atol=1e-6)
    parallel = []
    for i in range(3):  # side by side, all looking along +z
        T = np.eye(4)
        T[0, 3] = 0.1 * i
        parallel.append(Camera(str(i), cams[0].K, T))
    with pytest.raises(DepthError, match="do not converge"):
        depth_range_from_rig(parallel)


def test_select_neighbours_by_viewing_angle():
    cams = make_cameras(7)  # 20 degrees apart
    idx, valid = select_neighbours(cams, 4, max_angle_deg=45.0)
    for i in range(7):
        nb = idx[i][valid[i]]
        assert i not in nb
        axes = np.stack([c.R[2] for c in cams])
        ang = np.degrees(np.arccos(np.clip(axes[nb] @ axes[i], -1, 1)))
        assert np.all(ang <= 45.0) and np.all(np.diff(ang) >= -1e-9)  # nearest first
    assert valid[3].sum() == 4 and valid[0].sum() == 2  # the end camera has 2 within 45 deg


def test_consistency_count_on_true_depth(scene):
    cams, _, _, depth, _ = scene
    K = torch.from_numpy(np.stack([c.K for c in cams]))
    T = torch.from_numpy(np.stack([c.world_2_cam for c in cams]))
    others, valid = select_neighbours(cams, len(cams) - 1, max_angle_deg=60.0)
    others, valid = torch.from_numpy(others), torch.from_numpy(valid)
    d = torch.from_numpy(depth)[None]
    count, checked = consistency_count(d, K, T, others, valid)
    inside = d > 0
    assert (count[~inside] == 0).all() and (count <= checked).all()
    assert (count[inside] == checked[inside]).float().mean() > 0.97
    assert (count[inside] >= 1).float().mean() > 0.9  # visible from another view
    # a view pulled 7 cm forward (into free space) disagrees with everyone, everyone loses it
    bad = d.clone()
    bad[0, 2] *= 0.93
    count_bad, _ = consistency_count(bad, K, T, others, valid)
    assert (count_bad[0, 2][inside[0, 2]] > 0).float().mean() < 0.001
    assert count_bad[0, 3][inside[0, 3]].sum() < count[0, 3][inside[0, 3]].sum()


# --------------------------------------------------------------------------------------------
# multi-view stereo
# --------------------------------------------------------------------------------------------


def test_estimate_depth_is_accurate(scene, result):
    cams, _, masks, depth, normals = scene
    face = face_masks(cams, masks, normals)
    m = depth_metrics(result.depth, depth, face, result.normal, normals)
    # measured: 0.12 mm, 0.54 mm, 96 %, 1.3 deg
    assert m["depth_median_abs_err_mm"] < 0.5
    assert m["depth_p90_abs_err_mm"] < 2.0
    assert m["valid_fraction"] > 0.9
    assert m["normal_median_angle_deg"] < 5.0
    whole = depth_metrics(result.depth, depth, masks)
    assert whole["depth_median_abs_err_mm"] < 1.5 and whole["depth_outliers_5mm_fraction"] < 0.05
    # output conventions
    C, H, W = depth.shape
    assert result.depth.shape == (C, H, W) and result.depth.dtype == np.float32
    assert result.normal.shape == (C, H, W, 3) and result.confidence.shape == (C, H, W)
    valid = result.depth > 0
    assert not (valid & ~masks).any()  # nothing outside the masks
    assert ((result.confidence >= 0) & (result.confidence <= 1)).all()
    assert (result.confidence[~valid] == 0).all() and (result.confidence[valid] > 0).all()
    n = result.normal[valid]
    np.testing.assert_allclose(np.linalg.norm(n, axis=-1), 1.0, atol=1e-4)
    # normals face the camera
    for c, cam in enumerate(cams):
        v, u = np.nonzero(valid[c])
        rays = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(cam.K).T
        assert ((result.normal[c][v, u] * rays).sum(-1) < 0).all()


def test_a_corrupted_view_loses_pixels_not_accuracy(scene, landmark_range, result):
    cams, images, masks, depth, normals = scene
    bad = images.copy()
    rng = np.random.default_rng(3)
    bad[2] = rng.integers(0, 256, size=bad[2].shape, dtype=np.uint8)  # unrelated image
    res = estimate_depth(bad, cams, masks, depth_range=landmark_range)
    clean = depth_metrics(result.depth[2], depth[2], masks[2])
    corrupt = depth_metrics(res.depth[2], depth[2], masks[2])
    assert corrupt["valid_fraction"] < 0.2 * clean["valid_fraction"]
    err = np.abs(res.depth[2] - depth[2])[(res.depth[2] > 0) & masks[2]]
    assert (err > 0.005).sum() < 0.01 * (result.depth[2] > 0).sum()  # a few chance agreements
    # the other views still match through their remaining neighbours
    face = face_masks(cams, masks, normals)
    others = [c for c in range(len(cams)) if c != 2]
    m = depth_metrics(res.depth[others], depth[others], face[others])
    assert m["depth_median_abs_err_mm"] < 1.5 and m["valid_fraction"] > 0.7


def test_estimate_depth_sequence_batches_frames_like_single_frames():
    cams = make_cameras(5, 112, 96, 18.0)
    frames = [render_views(cams, phase=p)[:2] for p in (0.0, 0.7, 1.4)]
    cfg = MVSConfig(n_planes=24, refine_steps=1, batch_frames=2)
    out = list(estimate_depth_sequence(iter(frames), cams, config=cfg, progress=False))
    assert len(out) == 3  # a batch of 2 and a batch of 1
    frames, out = frames[:2], out[:2]  # the batched ones
    for (images, masks), res in zip(frames, out, strict=True):
        single = estimate_depth(images, cams, masks, config=cfg)
        same = np.isclose(res.depth, single.depth, atol=1e-5)
        assert same.mean() > 0.99
        assert (res.depth > 0).sum() > 0.3 * masks.sum()


def test_estimate_depth_without_masks_or_range(scene):
    cams, images, masks, depth, normals = scene
    small = [
        Camera(
            c.serial,
            c.K * np.array([[0.5], [0.5], [1]])
            + np.array([[0, 0, -0.25], [0, 0, -0.25], [0, 0, 0]]),
            c.world_2_cam,
            80,
            64,
        )
        for c in cams
    ]
    imgs = images.reshape(len(cams), 64, 2, 80, 2, 3).mean(axis=(2, 4)).astype(np.float32) / 255
    res = estimate_depth(imgs, small, config=MVSConfig(n_planes=32, refine_steps=1))
    gt = depth[:, ::2, ::2]  # not exactly the centres of the half-size pixels: loose bound
    face = face_masks(cams, masks, normals)[:, ::2, ::2]
    err = np.abs(res.depth - gt)[face & (res.depth > 0)]
    assert err.size > 0.5 * face.sum() and np.median(err) < 0.003


def test_bad_input_raises_depth_error(scene):
    cams, images, masks, _, _ = scene
    with pytest.raises(DepthError, match="cameras were given"):
        estimate_depth(images[:3], cams, masks[:3])
    with pytest.raises(DepthError, match="depth_range"):
        estimate_depth(images, cams, masks, depth_range=np.array([1.0, 0.5]))
    with pytest.raises(DepthError, match="NaN"):
        estimate_depth(np.full(images.shape, np.nan, np.float32), cams)
    with pytest.raises(DepthError, match="masks must be"):
        estimate_depth(images, cams, masks[:, :10])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(scene, landmark_range, result):
    cams, images, masks, _, _ = scene
    res = estimate_depth(images, cams, masks, depth_range=landmark_range, device="cuda")
    both = (res.depth > 0) & (result.depth > 0)
    assert np.median(np.abs(res.depth - result.depth)[both]) < 1e-4
    assert abs(both.sum() / max(1, (result.depth > 0).sum()) - 1) < 0.05


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------


def test_depth_metrics_known_errors():
    gt = np.ones((2, 4, 5), np.float32)
    mask = np.ones_like(gt, bool)
    mask[:, 0] = False  # 30 evaluated pixels
    pred = gt.copy()
    pred[0, 1:] += 0.002  # 15 pixels 2 mm off
    pred[1, 1, :4] = 0  # 4 invalid
    m = depth_metrics(pred, gt, mask)
    assert m["valid_fraction"] == pytest.approx(26 / 30)
    assert m["depth_median_abs_err_mm"] == pytest.approx(2.0, abs=1e-3)  # 15 of 26 are 2 mm
    assert m["depth_p90_abs_err_mm"] == pytest.approx(2.0, abs=1e-3)
    assert np.isnan(m["normal_median_angle_deg"])
    n_gt = np.zeros(gt.shape + (3,), np.float32)
    n_gt[..., 2] = -1
    ang = np.radians(10.0)
    n_pred = np.broadcast_to(np.array([np.sin(ang), 0, -np.cos(ang)], np.float32), n_gt.shape)
    m = depth_metrics(pred, gt, mask, n_pred, n_gt)
    assert m["normal_median_angle_deg"] == pytest.approx(10.0, abs=1e-3)


def test_accumulator_pools_pixels_not_medians():
    gt = np.ones((1, 10, 10), np.float32)
    mask = np.ones_like(gt, bool)
    acc = DepthErrorAccumulator()
    acc.update(gt + 0.001, gt, mask)  # 100 pixels at 1 mm
    small = np.zeros_like(gt)
    small[0, 0, :10] = 1.010  # 10 pixels at 10 mm, 90 invalid
    acc.update(small, gt, mask)
    m = acc.compute()
    assert m["depth_median_abs_err_mm"] == pytest.approx(1.0, abs=1e-3)  # not (1 + 10) / 2
    assert m["valid_fraction"] == pytest.approx(110 / 200)
    assert m["n_eval_pixels"] == 200
