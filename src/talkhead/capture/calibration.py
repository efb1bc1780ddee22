"""``camera_params.json``: a subject's calibration, read and written (Nersemble convention).

Format (docs/formats.md)::

    {"world_2_cam": {serial: 4x4}, "intrinsics": 3x3 | {serial: 3x3},
     "image_size": {serial: [width, height]} | [width, height],        optional
     "distortion": [k1, k2, p1, p2, k3(, k4, k5, k6)] | {serial: [...]}} optional

Extrinsics are world-to-camera rigid transforms (OpenCV axes, metres); intrinsics are in
pixels. NeRSemble v1 and v2 share one 3x3 ``intrinsics`` between all cameras, the benchmark kit
has one per serial; none of the published kits carries ``image_size`` or ``distortion`` (their
images are already undistorted). ``distortion`` is talkhead's key for a studio's own
calibration: OpenCV's coefficient order, 5 or 8 terms, honoured once at ingest
(:mod:`talkhead.preprocess.undistort`). The file's place in a capture tree is
:func:`talkhead.capture.layout.calibration_path`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import CaptureError
from ..geometry.cameras import DISTORTION_SHAPES, Camera
from ..io import PathLike, load_json, save_json


def write_camera_params(path: PathLike, cameras: Sequence[Camera]) -> None:
    """Write a Nersemble-style ``camera_params.json`` (atomically).

    One shared 3x3 ``intrinsics`` when every camera's K is the same (allclose), else one per
    serial; ``image_size`` only when every camera knows its size.
    """
    Ks = [c.K for c in cameras]
    shared = all(np.allclose(K, Ks[0]) for K in Ks)
    data: dict = {
        "world_2_cam": {c.serial: c.world_2_cam.tolist() for c in cameras},
        "intrinsics": Ks[0].tolist() if shared else {c.serial: c.K.tolist() for c in cameras},
    }
    if all(c.width and c.height for c in cameras):
        data["image_size"] = {c.serial: [c.width, c.height] for c in cameras}
    if any(c.distortion is not None for c in cameras):
        n = max(c.distortion.size for c in cameras if c.distortion is not None)
        data["distortion"] = {
            c.serial: (
                np.zeros(n)
                if c.distortion is None
                else np.pad(c.distortion, (0, n - c.distortion.size))
            ).tolist()
            for c in cameras
        }
    save_json(path, data)


def _distortion(value, what: str, path: PathLike) -> np.ndarray | None:
    """A distortion vector (5 or 8 OpenCV terms) from the file; None for null."""
    if value is None:
        return None
    try:
        d = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CaptureError(f"{path}: {what} is not a list of numbers") from None
    d = d.reshape(-1) if d.ndim == 2 and 1 in d.shape else d
    if d.ndim != 1 or d.shape not in DISTORTION_SHAPES:
        raise CaptureError(
            f"{path}: {what} has shape {d.shape}, expected 5 or 8 OpenCV coefficients "
            "(k1, k2, p1, p2, k3[, k4, k5, k6])"
        )
    if not np.all(np.isfinite(d)):
        raise CaptureError(f"{path}: {what} contains NaN or infinite values")
    return d


def _image_size(sizes, serial: str, path: PathLike) -> tuple[int, int]:
    """(width, height) of one camera from ``image_size`` ((0, 0) when absent)."""
    if isinstance(sizes, Mapping):
        value = sizes.get(serial)
        what = f"image_size[{serial}]"
    else:
        value, what = sizes, "image_size"
    if value is None:
        return 0, 0
    try:
        w, h = (int(v) for v in value)
    except (TypeError, ValueError):
        raise CaptureError(f"{path}: {what} must be [width, height]") from None
    if w <= 0 or h <= 0:
        raise CaptureError(f"{path}: {what} must be positive, got {[w, h]}")
    return w, h


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
            values, a rotation that is not orthonormal, a camera without intrinsics, a
            distortion of other than 5 or 8 terms).
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
    sizes = data.get("image_size") or {}
    dist = data.get("distortion")
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
        w, h = _image_size(sizes, serial, path)
        if isinstance(dist, Mapping):
            d = _distortion(dist.get(serial), f"distortion[{serial}]", path)
        else:
            d = _distortion(dist, "distortion", path)
        cams[serial] = Camera(serial, K, T, w, h, d)
    return cams
