"""Camera conventions: OpenCV axes, world_2_cam extrinsics, Nersemble camera_params.json."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from talkhead.capture.calibration import read_camera_params, write_camera_params
from talkhead.errors import CaptureError
from talkhead.geometry.cameras import (
    Camera,
    invert_rigid,
    look_at,
    project,
    ring_rig,
    unproject,
)
from talkhead.io import save_json


def test_look_at_is_upright_and_faces_the_target():
    # A camera in front of the head (+z) looking at it: world up is image up, and the
    # subject's left (+x) appears on the image's right, as when facing a person.
    cam = ring_rig(1, 64, 48, 30.0)[0]
    (u0, v0), _ = project(np.zeros(3), cam.K, cam.world_2_cam)
    (_, v_up), _ = project(np.array([0.0, 0.1, 0.0]), cam.K, cam.world_2_cam)
    (u_left, _), _ = project(np.array([0.1, 0.0, 0.0]), cam.K, cam.world_2_cam)
    assert v_up < v0
    assert u_left > u0
    assert np.allclose([u0, v0], cam.K[:2, 2])
    R = cam.R
    assert np.allclose(R @ R.T, np.eye(3)) and np.isclose(np.linalg.det(R), 1.0)


def test_look_at_centre():
    T = look_at([0.3, 0.2, 0.9], [0.0, 0.0, 0.0])
    assert np.allclose(invert_rigid(T)[:3, 3], [0.3, 0.2, 0.9])
    pc = T[:3, :3] @ np.zeros(3) + T[:3, 3]
    assert np.allclose(pc[:2], 0.0) and pc[2] > 0


def test_project_unproject_round_trip(rng):
    cams = ring_rig(4, 80, 60, 25.0, radius=1.0)
    pts = rng.normal(scale=0.05, size=(100, 3))
    for cam in cams:
        uv, z = cam.project(pts)
        assert np.allclose(cam.unproject(uv, z), pts, atol=1e-12)
        assert np.allclose(unproject(uv, z, cam.K, cam.world_2_cam), pts, atol=1e-12)


def test_points_on_the_camera_plane_project_quietly_to_non_finite_pixels():
    # z = 0: the camera centre (0 / 0) and a point beside it (x / 0) have no pixel; a point
    # behind the camera projects mirrored, with z < 0. None of them warns.
    K = np.array([[500.0, 0.0, 40.0], [0.0, 480.0, 30.0], [0.0, 0.0, 1.0]])
    pts = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, -0.2, 0.0], [0.1, 0.2, -2.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        uv, z = project(pts, K, np.eye(4))
    np.testing.assert_array_equal(z, [0.0, 0.0, 0.0, -2.0])
    assert not np.isfinite(uv[:3]).all(axis=1).any()
    np.testing.assert_allclose(uv[3], [40.0 - 25.0, 30.0 - 48.0])


def test_projection_computes_in_float64_for_float32_inputs(rng):
    cam = ring_rig(3, 640, 480, 40.0)[1]
    pts = rng.normal(scale=0.1, size=(50, 3)).astype(np.float32)
    K, T = cam.K.astype(np.float32), cam.world_2_cam.astype(np.float32)
    uv, z = project(pts, K, T)
    assert uv.dtype == z.dtype == np.float64
    ref = project(pts.astype(np.float64), K.astype(np.float64), T.astype(np.float64))
    np.testing.assert_allclose(uv, ref[0], rtol=0, atol=1e-10)  # float32 math: ~1e-4 px
    np.testing.assert_allclose(z, ref[1], rtol=1e-14)


def test_invert_rigid_computes_in_float64_whatever_the_input_dtype():
    T = look_at([0.3, 0.2, 0.9], [0.0, 0.05, 0.0])
    T32 = T.astype(np.float32)
    inv = invert_rigid(T32)
    assert inv.dtype == np.float64
    # the float32 matrix inverted in float64 (a float32 computation is off by ~1e-8)
    R, t = T32[:3, :3].astype(np.float64), T32[:3, 3].astype(np.float64)
    np.testing.assert_array_equal(inv[:3, :3], R.T)
    np.testing.assert_allclose(inv[:3, 3], -R.T @ t, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(inv[3], [0, 0, 0, 1])
    swap = np.array([[0, 1, 0, 2], [1, 0, 0, 3], [0, 0, -1, 5], [0, 0, 0, 1]])  # integer
    inv = invert_rigid(swap)
    assert inv.dtype == np.float64
    np.testing.assert_array_equal(inv @ swap, np.eye(4))


@pytest.mark.parametrize("shape", [(5,), (1, 5), (8,), (8, 1)])
def test_distortion_is_kept_as_a_flat_float64_vector(shape):
    n = int(np.prod(shape))
    coeffs = np.arange(1, n + 1).reshape(shape)  # integers, as OpenCV's (1, 5) row
    cam = Camera("7", np.eye(3), np.eye(4), distortion=coeffs)
    assert cam.distortion.shape == (n,) and cam.distortion.dtype == np.float64
    np.testing.assert_array_equal(cam.distortion, np.arange(1, n + 1))
    assert cam.has_distortion
    zero = Camera("7", np.eye(3), np.eye(4), distortion=np.zeros(shape, dtype=int))
    assert zero.distortion.shape == (n,) and zero.distortion.dtype == np.float64
    assert not zero.has_distortion
    none = Camera("7", np.eye(3), np.eye(4))
    assert none.distortion is None and not none.has_distortion


@pytest.mark.parametrize("n", [0, 4, 6, 14])
def test_distortion_of_another_length_is_refused(n):
    with pytest.raises(ValueError) as err:
        Camera("7", np.eye(3), np.eye(4), distortion=np.zeros(n))
    assert str(err.value) == f"camera 7: distortion must have 5 or 8 coefficients, got {n}"


def test_camera_params_round_trip(tmp_path):
    cams = ring_rig(3, 80, 60, 25.0)
    write_camera_params(tmp_path / "camera_params.json", cams)
    back = read_camera_params(tmp_path / "camera_params.json")
    assert list(back) == [c.serial for c in cams]
    for c in cams:
        assert np.allclose(back[c.serial].world_2_cam, c.world_2_cam)
        assert np.allclose(back[c.serial].K, c.K)
        assert (back[c.serial].width, back[c.serial].height) == (80, 60)
    # Outputs are readable by others (not mkstemp's 0600).
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "camera_params.json").stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda d: d.pop("intrinsics"), "intrinsics"),
        (lambda d: d["world_2_cam"].update({"1": [[1, 0], [0, 1]]}), "shape"),
        (lambda d: d["world_2_cam"]["1"].__setitem__(0, [2, 0, 0, 0]), "rotation"),
        (lambda d: d.__setitem__("intrinsics", {"2": np.eye(3).tolist()}), "no intrinsics"),
        (lambda d: d["world_2_cam"]["1"].__setitem__(1, [0, float("nan"), 0, 0]), "NaN"),
    ],
)
def test_malformed_calibration_is_named(tmp_path, mutate, needle):
    data = {"world_2_cam": {"1": np.eye(4).tolist()}, "intrinsics": np.eye(3).tolist()}
    mutate(data)
    path = tmp_path / "camera_params.json"
    save_json(path, data)
    with pytest.raises(CaptureError, match=needle) as err:
        read_camera_params(path)
    assert str(path) in str(err.value)


def test_invalid_json(tmp_path):
    path = tmp_path / "camera_params.json"
    path.write_text("{not json")
    with pytest.raises(CaptureError, match="not valid JSON"):
        read_camera_params(path)
