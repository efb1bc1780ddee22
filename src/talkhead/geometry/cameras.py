"""Pinhole cameras in the OpenCV / Nersemble convention.

Conventions (see DESIGN.md): metres; camera x right, y down, z forward; extrinsics are
``world_2_cam`` 4x4 matrices; intrinsics are 3x3 in pixels. Pure functions, no file I/O:
``camera_params.json`` is read and written by :mod:`talkhead.capture.calibration`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Shapes of OpenCV distortion vectors talkhead accepts: (k1, k2, p1, p2, k3) and the rational
#: model (k1, k2, p1, p2, k3, k4, k5, k6).
DISTORTION_SHAPES = ((5,), (8,))


@dataclass(frozen=True)
class Camera:
    """One calibrated camera.

    Attributes:
        serial: camera identifier (``cam_<serial>.png`` in a capture).
        K: (3, 3) intrinsics in pixels.
        world_2_cam: (4, 4) rigid transform from world to camera coordinates.
        width, height: image size in pixels (0 when unknown).
        distortion: (5,) or (8,) OpenCV distortion coefficients (k1, k2, p1, p2, k3[, k4, k5,
            k6]), None when the images have none. :meth:`project` and :meth:`unproject` are
            pinhole only: talkhead undistorts images once, at ingest
            (:mod:`talkhead.preprocess.undistort`), and later stages see ``distortion=None``.
    """

    serial: str
    K: np.ndarray
    world_2_cam: np.ndarray
    width: int = 0
    height: int = 0
    distortion: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.distortion is not None:
            d = np.asarray(self.distortion, dtype=np.float64).reshape(-1)
            if d.shape not in DISTORTION_SHAPES:
                raise ValueError(
                    f"camera {self.serial}: distortion must have 5 or 8 coefficients, got {d.size}"
                )
            object.__setattr__(self, "distortion", d)

    @property
    def has_distortion(self) -> bool:
        """Whether the camera has a non-zero distortion."""
        return self.distortion is not None and bool(np.any(self.distortion != 0))

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
        uv = xy @ K[:2, :2].T + K[:2, 2]  # inf * 0 for a point on the camera plane
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
