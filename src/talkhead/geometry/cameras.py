"""Pinhole cameras in the OpenCV / Nersemble convention.

Conventions (see DESIGN.md): metres; camera x right, y down, z forward; extrinsics are
``world_2_cam`` 4x4 matrices; intrinsics are 3x3 in pixels. ``camera_params.json`` holds
``{"world_2_cam": {serial: 4x4}, "intrinsics": 3x3 | {serial: 3x3}}`` plus, optionally,
``"image_size": {serial: [width, height]}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CaptureError
from ..io import PathLike, load_json, save_json


@dataclass(frozen=True)
class Camera:
    """One calibrated camera.

    Attributes:
        serial: camera identifier (``cam_<serial>.png`` in a capture).
        K: (3, 3) intrinsics in pixels.
        world_2_cam: (4, 4) rigid transform from world to camera coordinates.
        width, height: image size in pixels (0 when unknown).
    """

    serial: str
    K: np.ndarray
    world_2_cam: np.ndarray
    width: int = 0
    height: int = 0

    @property
    def R(self) -> np.ndarray:
        """(3, 3) world-to-camera rotation."""
        return self.world_2_cam[:3, :3]

    @property
    def t(self) -> np.ndarray:
        """(3,) world-to-camera translation."""
        return self.world_2_cam[:3, 3]

    @property
    def center(self) -> np.ndarray:
        """(3,) camera centre in world coordinates."""
        return -self.R.T @ self.t

    @property
    def cam_2_world(self) -> np.ndarray:
        return invert_rigid(self.world_2_cam)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """See :func:`project`."""
        return project(points, self.K, self.world_2_cam)

    def unproject(self, uv: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """See :func:`unproject`."""
        return unproject(uv, depth, self.K, self.world_2_cam)


def invert_rigid(T: np.ndarray) -> np.ndarray:
    """Invert a (..., 4, 4) rigid transform."""
    T = np.asarray(T, dtype=np.float64)
    R = T[..., :3, :3]
    t = T[..., :3, 3]
    out = np.zeros_like(T)
    Rt = np.swapaxes(R, -1, -2)
    out[..., :3, :3] = Rt
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", Rt, t)
    out[..., 3, 3] = 1.0
    return out


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (4, 4) transform to (..., 3) points."""
    return points @ T[:3, :3].T + T[:3, 3]


def project(
    points: np.ndarray, K: np.ndarray, world_2_cam: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Project world points to pixels.

    Args:
        points: (..., 3) world coordinates.
        K: (3, 3) intrinsics; world_2_cam: (4, 4).

    Returns:
        uv: (..., 2) pixel coordinates (x right, y down; pixel centres at integers).
        z: (...) depth along the optical axis (metres; <= 0 behind the camera).
    """
    pc = transform_points(world_2_cam, np.asarray(points, dtype=np.float64))
    z = pc[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = pc[..., :2] / z[..., None]
    uv = xy @ K[:2, :2].T + K[:2, 2]
    return uv, z


def unproject(
    uv: np.ndarray, depth: np.ndarray, K: np.ndarray, world_2_cam: np.ndarray
) -> np.ndarray:
    """Lift pixels with z-depth to world points (screen -> camera -> world).

    Args:
        uv: (..., 2) pixel coordinates; depth: (...) z-depth in metres.
        K: (3, 3); world_2_cam: (4, 4).

    Returns:
        (..., 3) world coordinates.
    """
    uv = np.asarray(uv, dtype=np.float64)
    depth = np.asarray(depth, dtype=np.float64)
    Kinv = np.linalg.inv(K)
    rays = np.concatenate([uv, np.ones_like(uv[..., :1])], axis=-1) @ Kinv.T
    pc = rays * depth[..., None]
    return transform_points(invert_rigid(world_2_cam), pc)


def pixel_grid(width: int, height: int) -> np.ndarray:
    """(H, W, 2) pixel-centre coordinates (u, v)."""
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    return np.stack([u, v], axis=-1)


def look_at(
    eye: Sequence[float], target: Sequence[float], up: Sequence[float] = (0.0, 1.0, 0.0)
) -> np.ndarray:
    """world_2_cam (4, 4) of a camera at ``eye`` looking at ``target`` (OpenCV axes).

    ``up`` is the world direction that should appear upwards in the image (camera -y).
    """
    eye = np.asarray(eye, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=np.float64))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])  # rows: camera axes in world coordinates
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = -R @ eye
    return T


def intrinsics_from_fov(width: int, height: int, fov_x_deg: float) -> np.ndarray:
    """(3, 3) intrinsics with square pixels and the principal point at the image centre."""
    f = 0.5 * width / math.tan(math.radians(fov_x_deg) / 2)
    return np.array(
        [[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]], dtype=np.float64
    )


def ring_rig(
    n_cameras: int,
    width: int,
    height: int,
    fov_x_deg: float,
    radius: float = 1.0,
    yaw_span_deg: float = 120.0,
    pitch_deg: Sequence[float] = (-10.0, 10.0),
    target: Sequence[float] = (0.0, 0.0, 0.0),
    first_serial: int = 220700191,
) -> list[Camera]:
    """An arc of cameras in front of a head at ``target`` looking at it (like Nersemble's rig).

    The head faces +z; cameras sit on a sphere of ``radius`` around ``target`` at yaws spread
    over ``yaw_span_deg`` and pitches alternating between the values of ``pitch_deg``.
    """
    target = np.asarray(target, dtype=np.float64)
    yaws = np.linspace(-yaw_span_deg / 2, yaw_span_deg / 2, n_cameras) if n_cameras > 1 else [0.0]
    K = intrinsics_from_fov(width, height, fov_x_deg)
    cams = []
    for i, yaw in enumerate(yaws):
        pitch = math.radians(pitch_deg[i % len(pitch_deg)])
        yaw = math.radians(yaw)
        eye = target + radius * np.array(
            [math.sin(yaw) * math.cos(pitch), math.sin(pitch), math.cos(yaw) * math.cos(pitch)]
        )
        cams.append(Camera(str(first_serial + i), K.copy(), look_at(eye, target), width, height))
    return cams


def write_camera_params(path: PathLike, cameras: Sequence[Camera]) -> None:
    """Write a Nersemble-style ``camera_params.json``."""
    Ks = [c.K for c in cameras]
    shared = all(np.allclose(K, Ks[0]) for K in Ks)
    data: dict = {
        "world_2_cam": {c.serial: c.world_2_cam.tolist() for c in cameras},
        "intrinsics": Ks[0].tolist() if shared else {c.serial: c.K.tolist() for c in cameras},
    }
    if all(c.width and c.height for c in cameras):
        data["image_size"] = {c.serial: [c.width, c.height] for c in cameras}
    save_json(path, data)


def _matrix(value, shape: tuple[int, int], what: str, path: PathLike) -> np.ndarray:
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CaptureError(f"{path}: {what} is not a numeric matrix") from None
    if m.shape != shape:
        raise CaptureError(f"{path}: {what} has shape {m.shape}, expected {shape}")
    if not np.all(np.isfinite(m)):
        raise CaptureError(f"{path}: {what} contains NaN or infinite values")
    return m


def read_camera_params(path: PathLike) -> dict[str, Camera]:
    """Read a Nersemble-style ``camera_params.json`` into ``{serial: Camera}``.

    Raises:
        CaptureError: naming the file and the defect (missing key, wrong shape, non-finite
            values, a rotation that is not orthonormal, a camera without intrinsics).
    """
    path = Path(path)
    if not path.is_file():
        raise CaptureError(f"{path}: calibration file is missing")
    try:
        data = load_json(path)
    except (ValueError, OSError) as exc:
        raise CaptureError(f"{path}: calibration is not valid JSON ({exc})") from None
    if not isinstance(data, Mapping) or "world_2_cam" not in data or "intrinsics" not in data:
        raise CaptureError(f"{path}: calibration must hold 'world_2_cam' and 'intrinsics'")
    w2c = data["world_2_cam"]
    if not isinstance(w2c, Mapping) or not w2c:
        raise CaptureError(f"{path}: 'world_2_cam' must map camera serials to 4x4 matrices")
    intr = data["intrinsics"]
    sizes = data.get("image_size", {}) or {}
    cams: dict[str, Camera] = {}
    for serial, T in w2c.items():
        serial = str(serial)
        T = _matrix(T, (4, 4), f"world_2_cam[{serial}]", path)
        R = T[:3, :3]
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0:
            raise CaptureError(f"{path}: world_2_cam[{serial}] rotation is not a proper rotation")
        if not np.allclose(T[3], [0, 0, 0, 1]):
            raise CaptureError(f"{path}: world_2_cam[{serial}] last row must be [0, 0, 0, 1]")
        if isinstance(intr, Mapping):
            if serial not in intr:
                raise CaptureError(f"{path}: camera {serial} has no intrinsics")
            K = _matrix(intr[serial], (3, 3), f"intrinsics[{serial}]", path)
        else:
            K = _matrix(intr, (3, 3), "intrinsics", path)
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise CaptureError(
                f"{path}: intrinsics of camera {serial} have non-positive focal length"
            )
        w, h = sizes.get(serial, (0, 0))
        cams[serial] = Camera(serial, K, T, int(w), int(h))
    return cams
