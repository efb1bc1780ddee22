"""Axis-angle <-> rotation matrices (talkhead.geometry.rotations)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from talkhead.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle


def random_axis_angles(n: int, seed: int = 0, max_angle: float = np.pi) -> np.ndarray:
    rng = np.random.default_rng(seed)
    axes = rng.normal(size=(n, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    return axes * rng.uniform(0.0, max_angle, (n, 1))


def test_import_does_not_import_torch():
    code = "import sys, talkhead.geometry.rotations; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_quarter_turn_about_z_maps_x_to_y():
    R = axis_angle_to_matrix(np.array([0.0, 0.0, np.pi / 2]))
    np.testing.assert_allclose(R @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(R @ [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(R @ [0.0, 0.0, 1.0], [0.0, 0.0, 1.0], atol=1e-15)


def test_zero_angle_is_the_identity():
    np.testing.assert_array_equal(axis_angle_to_matrix(np.zeros(3)), np.eye(3))
    R = axis_angle_to_matrix(np.full((2, 4, 3), 1e-14))
    np.testing.assert_array_equal(R, np.broadcast_to(np.eye(3), (2, 4, 3, 3)))
    np.testing.assert_array_equal(matrix_to_axis_angle(np.eye(3)), np.zeros(3))
    tiny = np.array([1e-9, -2e-9, 0.5e-9])
    np.testing.assert_allclose(matrix_to_axis_angle(axis_angle_to_matrix(tiny)), tiny, atol=1e-20)


def test_matrices_are_rotations_and_match_scipy():
    from scipy.spatial.transform import Rotation

    aa = random_axis_angles(500).reshape(5, 100, 3)
    R = axis_angle_to_matrix(aa)
    assert R.shape == (5, 100, 3, 3)
    np.testing.assert_allclose(
        R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-14
    )
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-14)
    expected = Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(R.shape)
    np.testing.assert_allclose(R, expected, atol=1e-14)


def test_round_trip_including_near_half_turns():
    aa = random_axis_angles(2000, seed=1)
    aa[:10] *= (np.pi - 1e-7) / np.linalg.norm(aa[:10], axis=1, keepdims=True)  # near pi
    aa[10:20] *= 1e-6  # near zero
    back = matrix_to_axis_angle(axis_angle_to_matrix(aa))
    np.testing.assert_allclose(back, aa, atol=1e-12)
    # at exactly pi the sign of the axis is arbitrary, the rotation is not
    half = np.array([0.0, np.pi / np.sqrt(2), np.pi / np.sqrt(2)])
    back = matrix_to_axis_angle(axis_angle_to_matrix(half))
    assert np.linalg.norm(back) == pytest.approx(np.pi)
    np.testing.assert_allclose(axis_angle_to_matrix(back), axis_angle_to_matrix(half), atol=1e-14)


def test_numpy_and_torch_agree():
    torch = pytest.importorskip("torch")
    from talkhead.geometry.rotations import batch_rodrigues

    aa = random_axis_angles(300, seed=2, max_angle=3.5)
    aa[:3] = [[0.0, 0.0, 0.0], [1e-9, 0.0, -1e-9], [1e-5, 2e-5, 0.0]]
    R_torch = batch_rodrigues(torch.as_tensor(aa, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(axis_angle_to_matrix(aa), R_torch, atol=1e-14)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        axis_angle_to_matrix(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, 3\)"):
        matrix_to_axis_angle(np.zeros((3, 4)))
    torch = pytest.importorskip("torch")
    from talkhead.geometry.rotations import batch_rodrigues

    with pytest.raises(ValueError, match="batch_rodrigues"):
        batch_rodrigues(torch.zeros(2, 3, 1))
