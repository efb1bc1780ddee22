"""COLMAP backend: dense-array format, workspace with known calibration, conversion, and the
clear error when dense stereo cannot run (no CUDA)."""

from __future__ import annotations

import cv2  # noqa: F401  (before pycolmap: see talkhead.depth.colmap)
import numpy as np
import pytest

from talkhead.config import check, from_mapping
from talkhead.depth.colmap import (
    colmap_dense_available,
    colmap_reconstruction,
    colmap_to_depth_frame,
    estimate_depth_colmap,
    import_pycolmap,
    read_colmap_array,
    read_colmap_dense_maps,
    run_patch_match,
    select_source_views,
    write_colmap_array,
    write_colmap_workspace,
)
from talkhead.depth.config import ColmapConfig
from talkhead.depth.range import depth_range_from_points
from talkhead.errors import ConfigError, DepthError
from talkhead.geometry.cameras import project, ring_rig

pycolmap = import_pycolmap()
DENSE_OK, DENSE_WHY = colmap_dense_available()
W, H = 64, 48


@pytest.fixture
def cams():
    return ring_rig(4, W, H, fov_x_deg=35.0, radius=1.0, yaw_span_deg=90.0)


def test_dense_array_round_trip(tmp_path, rng):
    for shape in [(H, W), (H, W, 3), (7, 5, 2)]:
        a = rng.normal(size=shape).astype(np.float32)
        p = tmp_path / f"a{len(shape)}.bin"
        write_colmap_array(p, a)
        b = read_colmap_array(p)
        assert b.dtype == np.float32 and b.shape == shape and np.array_equal(a, b)


def test_dense_array_layout_is_colmaps(tmp_path):
    """Header "W&H&C&", then float32 LE, channel planes one after the other, rows within."""
    a = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)  # (H=2, W=3, C=2)
    p = tmp_path / "n.bin"
    write_colmap_array(p, a)
    raw = p.read_bytes()
    assert raw.startswith(b"3&2&2&")
    data = np.frombuffer(raw[len(b"3&2&2&") :], dtype="<f4")
    assert data.tolist() == a[..., 0].ravel().tolist() + a[..., 1].ravel().tolist()
    # a file written the way COLMAP's read_write_dense.py expects: Fortran order of (W, H, C)
    ref = np.transpose(a, (1, 0, 2)).reshape(-1, order="F")
    assert np.array_equal(data, ref)


def test_dense_array_errors(tmp_path):
    p = tmp_path / "bad.bin"
    p.write_bytes(b"4&3&1&" + np.zeros(5, "<f4").tobytes())
    with pytest.raises(DepthError, match="bad.bin.*48 bytes"):
        read_colmap_array(p)
    p.write_bytes(b"garbage without header")
    with pytest.raises(DepthError, match="not a COLMAP array"):
        read_colmap_array(p)
    with pytest.raises(DepthError, match="cannot read"):
        read_colmap_array(tmp_path / "missing.bin")


@pytest.mark.skipif(pycolmap is None, reason="pycolmap not installed")
def test_reconstruction_projects_like_talkhead(cams, rng):
    rec = colmap_reconstruction(cams)
    assert rec.num_images() == rec.num_cameras() == len(cams)
    X = rng.uniform(-0.1, 0.1, (20, 3))
    for i, cam in enumerate(cams, start=1):
        image = rec.image(i)
        assert image.name == f"cam_{cam.serial}.png"
        ccam = rec.camera(image.camera_id)
        assert ccam.model_name == "PINHOLE" and (ccam.width, ccam.height) == (W, H)
        uv_ref, z_ref = project(X, cam.K, cam.world_2_cam)
        # pycolmap's own pose and camera model
        xc = (
            np.stack([image.cam_from_world() * x for x in X])
            if callable(image.cam_from_world)
            else np.stack([image.cam_from_world * x for x in X])
        )
        assert np.allclose(xc[:, 2], z_ref, atol=1e-9)
        uv = ccam.img_from_cam(xc)
        # COLMAP's pixel centres are at +0.5
        assert np.allclose(uv - 0.5, uv_ref, atol=1e-6)
        uv2 = np.stack([image.project_point(x) for x in X])
        assert np.allclose(uv2 - 0.5, uv_ref, atol=1e-6)


@pytest.mark.skipif(pycolmap is None, reason="pycolmap not installed")
def test_workspace_layout(cams, tmp_path, rng):
    images = rng.integers(1, 255, (len(cams), H, W, 3), dtype=np.uint8)
    masks = np.zeros((len(cams), H, W), bool)
    masks[:, 10:30, 20:40] = True
    ws = tmp_path / "ws"
    names = write_colmap_workspace(ws, images, cams, masks, ColmapConfig(num_source_views=2))
    assert names == [f"cam_{c.serial}.png" for c in cams]
    for sub in ("stereo/depth_maps", "stereo/normal_maps", "stereo/consistency_graphs"):
        assert (ws / sub).is_dir()
    # images: RGB kept inside the mask, black outside
    img = cv2.imread(str(ws / "images" / names[1]))[..., ::-1]
    assert np.array_equal(img[masks[1]], images[1][masks[1]])
    assert np.all(img[~masks[1]] == 0)
    # the sparse model reads back with the same poses
    rec = pycolmap.Reconstruction(str(ws / "sparse"))
    for i, cam in enumerate(cams, start=1):
        im = rec.image(i)
        pose = im.cam_from_world() if callable(im.cam_from_world) else im.cam_from_world
        assert np.allclose(pose.matrix(), cam.world_2_cam[:3, :4], atol=1e-9)
    # patch-match.cfg: every image is a reference with 2 other, existing source images
    lines = (ws / "stereo" / "patch-match.cfg").read_text().splitlines()
    assert lines[0::2] == names
    for ref, src in zip(lines[0::2], lines[1::2], strict=True):
        srcs = [s.strip() for s in src.split(",")]
        assert len(srcs) == 2 and ref not in srcs and set(srcs) <= set(names)
    # the two neighbours of an end camera of the arc are the next two cameras
    assert [s.strip() for s in lines[1].split(",")] == names[1:3]
    assert (ws / "stereo" / "fusion.cfg").read_text().split() == names
    # a size mismatch between calibration and images is refused
    with pytest.raises(DepthError, match="calibration is"):
        write_colmap_workspace(tmp_path / "ws2", images[:, :-2], cams)


def test_source_views_and_depth_range(cams):
    src = select_source_views(cams, 2, min_angle_deg=2.0, max_angle_deg=60.0)
    assert all(i not in s and len(s) == 2 for i, s in enumerate(src))
    assert src[0] == [1, 2] and src[3] == [2, 1]
    pts = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.1]])
    ranges = depth_range_from_points(pts, cams, margin=0.05)
    lo, hi = ranges[:, 0].min(), ranges[:, 1].max()  # COLMAP searches one range for all views
    zs = np.concatenate([project(pts, c.K, c.world_2_cam)[1] for c in cams])
    assert lo == pytest.approx(zs.min() - 0.05) and hi == pytest.approx(zs.max() + 0.05)
    with pytest.raises(DepthError, match="depth range"):
        depth_range_from_points(np.array([[0.0, 0.0, 5.0]]), cams)


def _sphere_maps(cams, radius=0.1):
    """Analytic z-depth and camera-frame normals of a sphere at the origin."""
    w, h = cams[0].width, cams[0].height
    u, v = np.meshgrid(np.arange(w, dtype=float), np.arange(h, dtype=float))
    depth, normal = [], []
    for cam in cams:
        rays = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(cam.K).T
        c = cam.t  # sphere centre in the camera frame
        a = (rays**2).sum(-1)
        b = -2 * rays @ c
        disc = b**2 - 4 * a * (c @ c - radius**2)
        hit = disc > 0
        z = np.where(hit, (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a), 0.0)
        P = rays * z[..., None]
        n = np.where(hit[..., None], (P - c) / radius, 0.0)
        depth.append(z)
        normal.append(n)
    return np.stack(depth), np.stack(normal)


def test_conversion_of_colmap_maps(cams, tmp_path, rng):
    depth, normal = _sphere_maps(cams)
    C = len(cams)
    # what COLMAP might write: half-size maps, normals of either sign, un-normalised,
    # negative / NaN depth where the filter rejected a pixel
    cd = depth[:, ::2, ::2].astype(np.float32).copy()
    cn = normal[:, ::2, ::2].astype(np.float32).copy()
    flip = rng.random(cn.shape[:3]) < 0.5
    cn[flip] *= -1
    cn *= 3.0
    cd[0, 5, 5] = -1.0
    cd[1, 6, 6] = np.nan
    ws = tmp_path / "ws"
    names = [f"cam_{c.serial}.png" for c in cams]
    for i, name in enumerate(names):
        write_colmap_array(ws / "stereo" / "depth_maps" / f"{name}.geometric.bin", cd[i])
        write_colmap_array(ws / "stereo" / "normal_maps" / f"{name}.geometric.bin", cn[i])
    dmaps, nmaps = read_colmap_dense_maps(ws, names)
    masks = np.ones((C, H, W), bool)
    masks[2, :, : W // 2] = False
    f = colmap_to_depth_frame(dmaps, nmaps, cams, masks)
    assert f.depth.shape == (C, H, W) and f.serials == tuple(c.serial for c in cams)
    assert f.depth[0, 10, 10] == 0 and f.depth[1, 12, 12] == 0  # rejected pixels
    assert np.all(f.depth[2, :, : W // 2] == 0)
    ok = f.depth > 0
    # nearest-neighbour upsampling: every valid pixel holds one of COLMAP's values
    ref = np.repeat(np.repeat(cd, 2, axis=1), 2, axis=2)
    assert np.array_equal(f.depth[ok], ref[ok])
    assert np.allclose(np.linalg.norm(f.normal[ok], axis=-1), 1.0, atol=1e-5)
    # normals face the camera: n . ray < 0, and equal the sphere's (up to the half-size grid)
    u, v = np.meshgrid(np.arange(W, dtype=float), np.arange(H, dtype=float))
    for i, cam in enumerate(cams):
        rays = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(cam.K).T
        assert (np.einsum("hwc,hwc->hw", f.normal[i], rays)[ok[i]] < 0).all()
        ref_n = np.repeat(np.repeat(normal[i, ::2, ::2], 2, 0), 2, 1)
        assert np.allclose(f.normal[i][ok[i]], ref_n[ok[i]], atol=1e-5)
    assert np.array_equal(f.confidence, ok.astype(np.float32))
    # a view COLMAP produced nothing for
    with pytest.raises(DepthError, match="no geometric depth map"):
        read_colmap_dense_maps(ws, names + ["cam_missing.png"])


def test_config_validation():
    check(ColmapConfig(), "depth.colmap")
    with pytest.raises(ConfigError, match="depth.colmap.window_radius"):
        check(ColmapConfig(window_radius=0), "depth.colmap")
    with pytest.raises(ConfigError, match="depth.colmap.depth_min: unknown"):  # an argument now
        from_mapping(ColmapConfig, {"depth_min": 0.3}, "depth.colmap")
    assert from_mapping(ColmapConfig, {"window_radius": 3}, "depth.colmap").window_radius == 3
    with pytest.raises(ConfigError, match="did you mean window_radius"):
        from_mapping(ColmapConfig, {"window_radiu": 3}, "depth.colmap")
    opts = ColmapConfig(window_radius=7, geom_consistency=False).patch_match_options()
    assert opts["window_radius"] == 7 and opts["geom_consistency"] is False
    if pycolmap is not None:  # every option is a real PatchMatchOptions field
        po = pycolmap.PatchMatchOptions()
        for k, val in opts.items():
            setattr(po, k, val)
        assert po.window_radius == 7


def test_availability_reports_why():
    ok, why = colmap_dense_available()
    assert isinstance(ok, bool) and isinstance(why, str) and why
    if pycolmap is not None and not pycolmap.has_cuda:
        assert "without CUDA" in why
    ok2, why2 = colmap_dense_available(binary="definitely-not-colmap-xyz")
    if not (pycolmap is not None and pycolmap.has_cuda):
        assert not ok2 and "definitely-not-colmap-xyz" in why2


def test_an_invalid_depth_range_is_refused_first(cams, tmp_path, rng):
    images = rng.integers(0, 255, (len(cams), H, W, 3), dtype=np.uint8)
    for bad in [(1.0, 0.5), (0.0, 1.0), (0.5, np.inf), (0.5,)]:
        with pytest.raises(DepthError, match="depth_range"):
            estimate_depth_colmap(images, cams, None, tmp_path / "ws", bad)
    assert not (tmp_path / "ws").exists()


@pytest.mark.skipif(DENSE_OK, reason="COLMAP dense stereo is available here")
def test_without_cuda_a_clear_error(cams, tmp_path, rng):
    images = rng.integers(0, 255, (len(cams), H, W, 3), dtype=np.uint8)
    with pytest.raises(DepthError) as exc:
        estimate_depth_colmap(images, cams, None, tmp_path / "ws", (0.3, 2.0), ColmapConfig())
    msg = str(exc.value)
    assert "CUDA" in msg and "pycolmap-cuda12" in msg and "colmap" in msg
    assert exc.value.__cause__ is None  # no chained deep traceback
    assert not (tmp_path / "ws").exists()
    # forcing the pycolmap path on a CPU build also ends in a DepthError, not a ValueError
    if pycolmap is not None:
        write_colmap_workspace(tmp_path / "ws3", images, cams)
        with pytest.raises(DepthError, match="pycolmap-cuda12"):
            run_patch_match(tmp_path / "ws3", (0.5, 1.5), ColmapConfig(), backend="pycolmap")
        with pytest.raises(DepthError, match="pycolmap-cuda12"):
            run_patch_match(
                tmp_path / "ws3",
                (0.5, 1.5),
                ColmapConfig(binary="definitely-not-colmap-xyz"),
                backend="binary",
            )


def _textured_sphere_images(cams, depth, radius=0.1):
    """View-independent procedural texture on the sphere (so stereo can match)."""
    w, h = cams[0].width, cams[0].height
    u, v = np.meshgrid(np.arange(w, dtype=float), np.arange(h, dtype=float))
    rng = np.random.default_rng(1)
    freqs = rng.normal(scale=400.0, size=(24, 3))
    phases = rng.uniform(0, 2 * np.pi, 24)
    out = []
    for i, cam in enumerate(cams):
        rays = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(cam.K).T
        Xc = rays * depth[i][..., None]
        Xw = (Xc - cam.t) @ cam.R
        tex = np.sin(Xw @ freqs.T + phases).mean(-1)
        g = np.where(depth[i] > 0, 128 + 400 * tex, 40)
        out.append(np.repeat(np.clip(g, 0, 255)[..., None], 3, -1).astype(np.uint8))
    return np.stack(out)


@pytest.mark.skipif(not DENSE_OK, reason=f"COLMAP dense stereo unavailable: {DENSE_WHY}")
def test_real_patch_match_recovers_the_sphere(tmp_path):
    cams = ring_rig(5, 320, 240, fov_x_deg=25.0, radius=0.8, yaw_span_deg=60.0)
    depth, _ = _sphere_maps(cams)
    images = _textured_sphere_images(cams, depth)
    masks = depth > 0
    f = estimate_depth_colmap(images, cams, masks, tmp_path / "ws", (0.5, 1.1), ColmapConfig())
    ok = f.depth > 0
    assert ok.sum() > 0.3 * masks.sum()
    assert np.median(np.abs(f.depth[ok] - depth[ok])) < 0.002
