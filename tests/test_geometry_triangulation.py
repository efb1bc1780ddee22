"""Triangulation of 2D observations across calibrated views (talkhead.geometry.triangulation)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from talkhead.errors import DepthError
from talkhead.geometry.cameras import Camera, intrinsics_from_fov, ring_rig
from talkhead.geometry.triangulation import camera_matrices, triangulate_points


def _cameras(n: int):
    return ring_rig(n, 160, 128, 18.0, radius=1.0, yaw_span_deg=120.0, pitch_deg=(-8, 8))


def test_noisy_observations_in_four_views_are_recovered(rng):
    cams = _cameras(4)
    pts = rng.uniform(-0.1, 0.1, size=(200, 3))
    uv = np.stack([c.project(pts)[0] for c in cams])
    uv += rng.normal(scale=0.5, size=uv.shape)  # half-pixel detector noise
    X, valid = triangulate_points(uv, np.ones(uv.shape[:2]), cams)
    assert valid.all()
    err = np.linalg.norm(X - pts, axis=1)
    # 0.5 px at f ~ 500 px and 1 m is ~1 mm across a ray (measured: median 1.0 mm, max 2.3)
    assert np.median(err) < 1.5e-3 and err.max() < 4e-3
    # and the exact observations give the exact points
    exact = np.stack([c.project(pts)[0] for c in cams])
    X, valid = triangulate_points(exact, np.ones(exact.shape[:2]), cams)
    assert valid.all() and np.abs(X - pts).max() < 1e-9


def test_an_outlier_view_is_rejected(rng):
    cams = _cameras(6)
    pts = rng.uniform(-0.08, 0.08, size=(30, 3))
    uv = np.stack([c.project(pts)[0] for c in cams])
    conf = np.ones(uv.shape[:2])
    uv[2] += rng.uniform(15, 40, size=(30, 2)) * rng.choice([-1, 1], size=(30, 2))  # bad view
    conf[4, :5] = 0.0  # undetected in another view
    uv[4, :5] = np.nan
    conf[1:, 29] = 0.0  # seen by one camera only: cannot be triangulated
    X, valid = triangulate_points(uv, conf, cams)
    assert valid[:29].all() and not valid[29]
    assert np.isnan(X[29]).all()
    assert np.abs(X[:29] - pts[:29]).max() < 1e-4


def test_no_two_agreeing_views_is_invalid(rng):
    cams = _cameras(3)
    pts = rng.uniform(-0.05, 0.05, size=(5, 3))
    uv = np.stack([c.project(pts)[0] for c in cams])
    uv[1] += 30.0  # every view disagrees with every other
    uv[2] -= 30.0
    _, valid = triangulate_points(uv, np.ones(uv.shape[:2]), cams)
    assert not valid.any()


def test_bad_input_raises_depth_error():
    cams = _cameras(3)
    with pytest.raises(DepthError, match="expected uv"):
        triangulate_points(np.zeros((2, 5, 2)), np.ones((2, 5)), cams)
    with pytest.raises(DepthError, match="no cameras"):
        camera_matrices([])
    bad = Camera("x", np.full((3, 3), np.nan), np.eye(4))
    with pytest.raises(DepthError, match="NaN"):
        camera_matrices([bad])
    K, T = camera_matrices(cams)
    assert K.shape == (3, 3, 3) and T.shape == (3, 4, 4) and K.dtype == np.float64


def _weighted_dlt(uv: np.ndarray, w: np.ndarray, cams) -> np.ndarray:
    """Reference linear triangulation of one point (Hartley & Zisserman, sec. 12.2): rows
    w (x P3 - P1), w (y P3 - P2) of normalised coordinates, null vector by SVD."""
    rows = []
    for (u, v), wc, cam in zip(uv, w, cams, strict=True):
        x, y, _ = np.linalg.solve(cam.K, [u, v, 1.0])
        P = cam.world_2_cam[:3]
        rows += [wc * (x * P[2] - P[0]), wc * (y * P[2] - P[1])]
    X = np.linalg.svd(np.array(rows))[2][-1]
    return X[:3] / X[3]


def test_without_gauss_newton_the_point_is_the_confidence_weighted_dlt(rng):
    cams = _cameras(4)
    pts = rng.uniform(-0.05, 0.05, size=(6, 3))
    uv = np.stack([c.project(pts)[0] for c in cams]) + rng.normal(scale=0.8, size=(4, 6, 2))
    conf = rng.uniform(0.2, 1.0, size=(4, 6))
    X, valid = triangulate_points(uv, conf, cams, gauss_newton_steps=0)
    assert valid.all()  # every view is an inlier at 0.8 px of noise
    for n in range(6):
        np.testing.assert_allclose(X[n], _weighted_dlt(uv[:, n], conf[:, n], cams), atol=1e-12)
    refined, _ = triangulate_points(uv, conf, cams)
    assert np.abs(refined - X).max() > 1e-6  # Gauss-Newton moves it off the linear estimate


def test_integer_camera_matrices_are_returned_as_float64():
    K = [[200, 0, 32], [0, 200, 24], [0, 0, 1]]
    cams = [Camera("a", np.array(K), np.eye(4, dtype=int)), Camera("b", K, np.eye(4, dtype=int))]
    K, T = camera_matrices(cams)
    assert K.dtype == T.dtype == np.float64
    np.testing.assert_array_equal(T, np.broadcast_to(np.eye(4), (2, 4, 4)))


@pytest.mark.parametrize(
    ("min_conf", "conf", "used"),
    [(0.1, 0.1, True), (0.1, np.nextafter(0.1, 0.0), False), (0.5, 0.5, True)],
)
def test_an_observation_at_exactly_min_conf_is_used(min_conf, conf, used):
    cams = _cameras(2)
    X = np.array([[0.01, -0.02, 0.03]])
    uv = np.stack([c.project(X)[0] for c in cams])
    points, valid = triangulate_points(uv, np.array([[1.0], [conf]]), cams, min_conf=min_conf)
    assert valid.dtype == bool and valid.tolist() == [used]
    assert np.allclose(points, X, atol=1e-9) if used else np.isnan(points).all()


def test_a_point_without_agreeing_views_stays_invalid_beside_valid_points(rng):
    cams = _cameras(3)
    pts = rng.uniform(-0.05, 0.05, size=(4, 3))
    uv = np.stack([c.project(pts)[0] for c in cams])
    uv[1, 1] += 30.0  # point 1: every view disagrees with every other
    uv[2, 1] -= 30.0
    X, valid = triangulate_points(uv, np.ones((3, 4)), cams)
    assert valid.dtype == bool and valid.tolist() == [True, False, True, True]
    assert np.isnan(X[1]).all() and np.abs(X[[0, 2, 3]] - pts[[0, 2, 3]]).max() < 1e-9


def test_parallel_rays_give_an_invalid_point_without_warnings():
    # Two cameras side by side looking along +z both see the point at infinity on the axis.
    K = intrinsics_from_fov(64, 48, 60.0)
    T = np.eye(4)
    T[0, 3] = -0.1
    cams = [Camera("a", K, np.eye(4)), Camera("b", K, T)]
    X = np.array([[0.02, -0.01, 0.8]])
    uv = np.concatenate(
        [np.stack([c.project(X)[0] for c in cams]), np.tile(K[:2, 2], (2, 1, 1))], 1
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        points, valid = triangulate_points(uv, np.ones((2, 2)), cams)
    assert valid.tolist() == [True, False]
    np.testing.assert_allclose(points[0], X[0], atol=1e-9)
    assert np.isnan(points[1]).all()


def test_more_agreeing_views_win_over_a_smaller_error_at_any_threshold():
    """Views 0-3 see X (two of them 28 px off, within the 40 px threshold), views 4-6 see Y
    exactly: the four views win, however large their errors are next to the threshold."""
    cams = ring_rig(7, 160, 128, 18.0, radius=1.0, yaw_span_deg=150.0, pitch_deg=(-8, 8))
    X, Y = np.array([0.0, 0.0, 0.0]), np.array([0.0, 0.2, 0.0])
    uv = np.stack([c.project(X if i < 4 else Y)[0] for i, c in enumerate(cams)])[:, None]
    uv[2, 0] += [28.0, 0.0]
    uv[3, 0] += [0.0, -28.0]
    conf = np.ones((7, 1))
    for c, cam in enumerate(cams):  # the two points are told apart in every view
        assert np.linalg.norm(cam.project(X)[0] - cam.project(Y)[0]) > 90, c
    points, valid = triangulate_points(uv, conf, cams, max_reproj_px=40.0)
    assert valid[0] and np.linalg.norm(points[0] - X) < 0.04  # measured 0.030
    # without the two noisy views the three exact ones win
    conf[2:4] = 0.0
    points, valid = triangulate_points(uv, conf, cams, max_reproj_px=40.0)
    assert valid[0] and np.linalg.norm(points[0] - Y) < 1e-9


def test_a_point_whose_refinement_leaves_an_inlier_view_is_invalid_alone():
    """Point 0: views 0 and 1 (long lenses, confidence 0.1) agree exactly, view 2 (confidence
    1) is 3.9 px off, within the 4 px threshold; the confidence-weighted refinement moves the
    point onto view 2's ray, which leaves views 0 and 1 over 4 px: invalid. Point 1 is exact."""
    cams = ring_rig(3, 160, 128, 18.0, radius=1.0, yaw_span_deg=120.0, pitch_deg=(-8, 8))
    tele = intrinsics_from_fov(160, 128, 4.5)  # 4x the focal length
    cams = [Camera(c.serial, tele if i < 2 else c.K, c.world_2_cam) for i, c in enumerate(cams)]
    X = np.array([[0.01, -0.02, 0.03], [-0.02, 0.01, 0.0]])
    uv = np.stack([c.project(X)[0] for c in cams])
    uv[2, 0] += [3.9, 0.0]
    conf = np.ones((3, 2))
    conf[:2, 0] = 0.1
    points, valid = triangulate_points(uv, conf, cams)
    assert valid.tolist() == [False, True]
    assert np.isnan(points[0]).all() and np.abs(points[1] - X[1]).max() < 1e-9
    # with equal confidences the refined point stays within 4 px of all three views
    _, valid = triangulate_points(uv, np.ones((3, 2)), cams)
    assert valid.tolist() == [True, True]
