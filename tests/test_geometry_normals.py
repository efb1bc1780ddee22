"""Normals of depth maps (talkhead.geometry.normals) and depth maps <-> points
(talkhead.geometry.depth_maps)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from talkhead.errors import DepthError
from talkhead.geometry.cameras import intrinsics_from_fov, look_at, project
from talkhead.geometry.depth_maps import depth_to_points, pixel_rays
from talkhead.geometry.normals import (
    normals_from_depth_finite_differences,
    normals_from_depth_plane_fit,
)

W, H = 48, 32


def _plane_depth(K, n_cam, d0, height=H, width=W):
    """z-depth of the plane n . X = -d0 (camera frame) at every pixel."""
    return -d0 / (pixel_rays(K, height, width) @ n_cam)


def test_both_estimators_recover_a_tilted_plane():
    K = intrinsics_from_fov(W, H, 40.0)
    n = np.array([0.3, -0.2, -0.9])
    n /= np.linalg.norm(n)  # facing the camera (negative z)
    depth = _plane_depth(K, n, 0.8)
    assert (depth > 0).all()
    fd = normals_from_depth_finite_differences(depth, K)
    pf = normals_from_depth_plane_fit(torch.from_numpy(depth)[None], torch.from_numpy(K), 5)[0]
    assert fd.dtype == np.float32 and fd.shape == (H, W, 3)
    assert pf.dtype == torch.float64 and pf.shape == (H, W, 3)
    np.testing.assert_allclose(fd, np.broadcast_to(n, fd.shape), atol=1e-4)
    np.testing.assert_allclose(pf.numpy(), np.broadcast_to(n, fd.shape), atol=1e-6)


def test_finite_differences_of_planes_and_a_depth_jump():
    K = intrinsics_from_fov(W, H, 40.0)
    for n in ([0.0, 0.0, -1.0], [0.3, -0.2, -0.9], [-0.5, 0.1, -0.7]):
        n = np.asarray(n) / np.linalg.norm(n)
        depth = _plane_depth(K, n, 0.8)
        assert (depth > 0).all()
        est = normals_from_depth_finite_differences(depth, K)
        assert est.dtype == np.float32 and est.shape == (H, W, 3)
        assert np.allclose(est, n, atol=1e-4)  # faces the camera (n . P < 0)
    # invalid pixels get no normal; a depth jump does not bleed into the tangents
    depth = _plane_depth(K, np.array([0.0, 0.0, -1.0]), 0.8)
    depth[:, : W // 2] = 1.6  # a second, farther plane
    depth[5, 5] = 0.0
    est = normals_from_depth_finite_differences(depth, K)
    assert np.all(est[5, 5] == 0)
    assert np.allclose(est[10:20, W // 2 - 1 : W // 2 + 1], [0, 0, -1], atol=1e-4)


def test_plane_fit_of_a_tilted_plane_with_an_invalid_band():
    K = torch.tensor([[200.0, 0, 40], [0, 200.0, 30], [0, 0, 1]], dtype=torch.float64)
    n_true = torch.tensor([0.3, -0.2, -1.0], dtype=torch.float64)
    n_true = n_true / n_true.norm()  # facing the camera (negative z)
    v, u = torch.meshgrid(torch.arange(60.0), torch.arange(80.0), indexing="ij")
    rays = torch.stack([(u - 40) / 200, (v - 30) / 200, torch.ones_like(u)], -1).double()
    depth = (-1.0 / (rays @ n_true)).float()  # plane n . X = 1 (n . X = -1 with -n ...)
    depth[:, :5] = 0  # an invalid band
    normal = normals_from_depth_plane_fit(depth[None], K.float(), window=5)[0]
    ok = depth > 0
    assert (normal[~ok] == 0).all()
    np.testing.assert_allclose(normal[ok].norm(dim=-1).numpy(), 1.0, atol=1e-5)
    err = torch.rad2deg(torch.arccos((normal[ok].double() @ n_true).clamp(-1, 1)))
    assert err.max() < 0.05


def test_depth_to_points_round_trips_through_project():
    K = intrinsics_from_fov(W, H, 40.0)
    T = look_at([0.2, 0.1, 1.0], [0, 0, 0])
    depth = _plane_depth(K, np.array([0.1, 0.2, -1.0]) / np.sqrt(1.05), 0.9)
    depth[3, 4] = 0.0
    depth[7, 8] = np.nan
    mask = np.ones((H, W), bool)
    mask[10] = False
    pts, uv = depth_to_points(depth, K, T, mask)
    assert pts.shape == (H * W - W - 2, 3) and uv.shape == (len(pts), 2)
    back, z = project(pts, K, T)
    np.testing.assert_allclose(back, uv, atol=1e-9)
    np.testing.assert_allclose(z, depth[uv[:, 1].astype(int), uv[:, 0].astype(int)], rtol=1e-12)
    assert uv[0].tolist() == [0.0, 0.0] and uv[W].tolist() == [0.0, 1.0]  # row-major order
    with pytest.raises(DepthError, match="mask"):
        depth_to_points(depth, K, T, mask[:-1])


def test_light_imports():
    """The numpy geometry modules do not import torch."""
    code = (
        "import sys; import talkhead.geometry.normals, talkhead.geometry.depth_maps, "
        "talkhead.geometry.triangulation, talkhead.depth.range; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
