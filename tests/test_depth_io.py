"""The depth file format and the precomputed (Nersemble 16-bit PNG) backend."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from talkhead.capture.depth_png import read_nersemble_depth_png, write_nersemble_depth_png
from talkhead.depth.io import (
    depth_frame_path,
    list_depth_frames,
    load_depth_frame,
    save_depth_frame,
)
from talkhead.depth.precomputed import precomputed_depth_frame
from talkhead.errors import DepthError
from talkhead.geometry.cameras import Camera, intrinsics_from_fov, look_at, ring_rig, unproject

W, H = 48, 32


def _frame(rng, C=3):
    depth = rng.uniform(0.5, 1.5, (C, H, W)).astype(np.float32)
    depth[:, :4] = 0.0  # invalid rows
    n = rng.normal(size=(C, H, W, 3))
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    conf = rng.uniform(0, 1, (C, H, W)).astype(np.float32)
    return depth, n.astype(np.float32), conf, [f"2207{i:05d}" for i in range(C)]


def test_depth_frame_round_trip(tmp_path, rng):
    depth, normal, conf, serials = _frame(rng)
    path = depth_frame_path(tmp_path / "out", 7)
    assert path.name == "frame_00007.npz"
    save_depth_frame(path, depth.astype(np.float64), normal, conf, serials)
    f = load_depth_frame(path)
    assert f.depth.dtype == f.normal.dtype == f.confidence.dtype == np.float32
    assert np.array_equal(f.depth, depth)
    assert np.allclose(f.normal, normal, atol=1e-3)  # float16 on disk
    assert np.allclose(f.confidence, conf, atol=1e-3)  # float16 on disk
    assert f.serials == tuple(serials) and f.shape == (H, W) and f.n_cameras == 3
    assert f.index(serials[2]) == 2
    with pytest.raises(DepthError, match="no camera"):
        f.index("nope")
    # written atomically: nothing but the file in the folder
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    save_depth_frame(depth_frame_path(tmp_path / "out", 2), depth, normal, conf, serials)
    assert list_depth_frames(tmp_path / "out") == [2, 7]
    # compressed: a constant map is far smaller than its raw size
    z = np.zeros((3, 64, 64), np.float32)
    p2 = save_depth_frame(tmp_path / "z.npz", z, np.zeros((3, 64, 64, 3)), z, serials)
    assert p2.stat().st_size < z.nbytes / 10


def test_nan_depth_names_the_file_and_camera(tmp_path, rng):
    depth, normal, conf, serials = _frame(rng)
    depth[1, 10, 10] = np.nan
    path = tmp_path / "frame_00003.npz"
    np.savez_compressed(
        path, depth=depth, normal=normal, confidence=conf, serials=np.array(serials)
    )
    with pytest.raises(DepthError) as exc:
        load_depth_frame(path)
    msg = str(exc.value)
    assert str(path) in msg and "NaN" in msg and serials[1] in msg
    assert serials[0] not in msg and serials[2] not in msg
    # writing refuses it too, and leaves nothing behind
    with pytest.raises(DepthError, match=serials[1]):
        save_depth_frame(tmp_path / "x.npz", depth, normal, conf, serials)
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize(
    "edit, pattern",
    [
        (
            lambda d: d.update(depth=np.where(d["depth"] > 1.0, -d["depth"], d["depth"])),
            "negative depth",
        ),
        (lambda d: d["depth"].__setitem__((2, 5, 5), np.inf), "infinite"),
        (lambda d: d.update(normal=d["normal"][:, :, :-1]), "normal has shape"),
        (lambda d: d.update(confidence=d["confidence"] * 3), "confidence outside"),
        (lambda d: d.update(serials=d["serials"][:2]), "serials"),
        (lambda d: d.pop("normal"), "lacks normal"),
        (lambda d: d.update(depth=d["depth"][0]), r"\(C, H, W\)"),
    ],
)
def test_malformed_depth_files(tmp_path, rng, edit, pattern):
    depth, normal, conf, serials = _frame(rng)
    arrays = {"depth": depth, "normal": normal, "confidence": conf, "serials": np.array(serials)}
    edit(arrays)
    path = tmp_path / "frame_00000.npz"
    np.savez(path, **arrays)
    with pytest.raises(DepthError, match=pattern) as exc:
        load_depth_frame(path)
    assert str(path) in str(exc.value)


def test_missing_or_corrupt_file(tmp_path):
    with pytest.raises(DepthError, match="missing"):
        load_depth_frame(tmp_path / "frame_00000.npz")
    bad = tmp_path / "frame_00001.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DepthError, match=str(bad)):
        load_depth_frame(bad)


def test_ground_truth_file_without_confidence(tmp_path, rng):
    depth, normal, _, serials = _frame(rng)
    path = tmp_path / "gt.npz"
    np.savez(path, depth=depth, normal=normal, serials=np.array(serials))
    f = load_depth_frame(path)
    assert np.array_equal(f.confidence, (depth > 0).astype(np.float32))


# --------------------------------------------------------------------------------------------
# precomputed 16-bit PNGs
# --------------------------------------------------------------------------------------------


def test_nersemble_png_round_trip(tmp_path, rng):
    depth = rng.uniform(0.0, 2.0, (H, W))
    depth[0, :5] = 0.0  # masked
    depth[1, 0] = 2.5  # beyond the PNG's range -> masked
    depth[1, 1] = 1e-6  # tiny but valid -> stays valid
    path = tmp_path / "cam_1.png"
    write_nersemble_depth_png(path, depth)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.shape == (H, W)
    back = read_nersemble_depth_png(path, expected_size=(W, H))
    assert back.dtype == np.float32
    valid = (depth > 0) & (depth <= 2.0)
    assert np.all(back[~valid] == 0) and np.all(back[valid] > 0)
    assert np.abs(back - depth)[valid & (depth > 1e-4)].max() <= 2.0 / 65535
    # the scale really is (value - 1) / 65534 x 2 m (NeRSemble v1: bin 0 is "masked")
    assert back[raw == raw.max()][0] == pytest.approx((raw.max() - 1) / 65534 * 2.0, rel=1e-6)


def test_png_errors(tmp_path):
    p8 = tmp_path / "cam_8bit.png"
    cv2.imwrite(str(p8), np.full((H, W), 100, np.uint8))
    with pytest.raises(DepthError, match="16-bit") as exc:
        read_nersemble_depth_png(p8)
    assert str(p8) in str(exc.value)
    p = tmp_path / "cam_small.png"
    write_nersemble_depth_png(p, np.ones((H, W)))
    with pytest.raises(DepthError, match=f"{W}x{H}.*{W * 2}x{H * 2}"):
        read_nersemble_depth_png(p, expected_size=(W * 2, H * 2))
    with pytest.raises(DepthError, match="missing"):
        read_nersemble_depth_png(tmp_path / "none.png")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG garbage")
    with pytest.raises(DepthError, match="unreadable"):
        read_nersemble_depth_png(junk)


def _plane_depth(K, n_cam, d0):
    """z-depth of the plane n . X = -d0 (camera frame) at every pixel."""
    u, v = np.meshgrid(np.arange(W, dtype=float), np.arange(H, dtype=float))
    rays = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(K).T
    return -d0 / (rays @ n_cam)


def test_precomputed_depth_frame(tmp_path):
    cams = ring_rig(3, W, H, 40.0)
    n = np.array([0.0, 0.0, -1.0])
    paths = {}
    depths = []
    for cam in cams:
        d = _plane_depth(cam.K, n, 1.0)
        d[:3] = 0.0
        depths.append(d)
        paths[cam.serial] = tmp_path / f"cam_{cam.serial}.png"
        write_nersemble_depth_png(paths[cam.serial], d)
    f = precomputed_depth_frame(paths, cams)
    assert f.serials == tuple(c.serial for c in cams)
    assert np.abs(f.depth - np.stack(depths)).max() <= 2.0 / 65535
    assert np.array_equal(f.confidence, (f.depth > 0).astype(np.float32))
    assert np.allclose(f.normal[:, 5:-1, 1:-1], n, atol=2e-3)
    assert np.all(f.normal[:, :3] == 0)
    # list form in camera order
    f2 = precomputed_depth_frame([paths[c.serial] for c in cams], cams)
    assert np.array_equal(f2.depth, f.depth)
    # a missing camera: an error naming it, or an empty map when allowed
    del paths[cams[1].serial]
    with pytest.raises(DepthError, match=cams[1].serial):
        precomputed_depth_frame(paths, cams)
    f3 = precomputed_depth_frame(paths, cams, allow_missing=True)
    assert np.all(f3.depth[1] == 0) and np.array_equal(f3.depth[0], f.depth[0])
    # a PNG of the wrong size for its camera
    wrong = tmp_path / "wrong.png"
    write_nersemble_depth_png(wrong, np.ones((H // 2, W // 2)))
    paths[cams[1].serial] = wrong
    with pytest.raises(DepthError, match="wrong.png"):
        precomputed_depth_frame(paths, cams)


def test_precomputed_depth_back_projects_onto_the_plane(tmp_path):
    """Quantised PNG depth lifted to world stays on the true plane within the quantisation."""
    K = intrinsics_from_fov(W, H, 40.0)
    T = look_at([0.2, 0.1, 1.0], [0, 0, 0])
    cam = Camera("1", K, T, W, H)
    # world plane z = -0.1, seen from the camera
    n_world = np.array([0.0, 0.0, 1.0])  # n . X + 0.1 = 0
    n_cam = T[:3, :3] @ n_world
    depth = _plane_depth(K, n_cam, 0.1 - n_cam @ T[:3, 3])
    assert (depth > 0).all()
    p = tmp_path / "cam_1.png"
    write_nersemble_depth_png(p, depth)
    f = precomputed_depth_frame([p], [cam])
    u, v = np.meshgrid(np.arange(W, dtype=float), np.arange(H, dtype=float))
    X = unproject(np.stack([u, v], -1), f.depth[0], K, T)
    assert np.abs(X[..., 2] + 0.1).max() < 2.0 / 65535 * 1.5
    nw = f.normal[0, 2:-2, 2:-2] @ T[:3, :3]  # R^T n
    assert np.allclose(np.abs(nw @ n_world), 1.0, atol=1e-3)
