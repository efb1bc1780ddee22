"""Precomputed depth shipped with a capture (the ``precomputed`` depth backend).

Nersemble v1 ships COLMAP depth as 16-bit PNGs per camera and frame
(``timesteps/frame_<t>/colmap/depth_maps/cam_<serial>.png``): value / 65535 x 2 m, 0 = masked.
The PNGs carry no normals, so normals are estimated from the depth
(:func:`talkhead.geometry.normals.normals_from_depth_finite_differences`), and the confidence
is 1 where the depth is valid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import DepthError
from ..geometry.cameras import Camera
from ..geometry.normals import normals_from_depth_finite_differences
from ..io import PathLike, atomic_path
from .io import DepthFrame, validate_depth_frame

__all__ = [
    "NERSEMBLE_MAX_DEPTH",
    "depth_frame_from_depth_maps",
    "precomputed_depth_frame",
    "read_nersemble_depth_png",
    "write_nersemble_depth_png",
]

NERSEMBLE_MAX_DEPTH = 2.0
"""Depth (metres) of the PNG value 65535."""


def read_nersemble_depth_png(
    path: PathLike,
    max_depth: float = NERSEMBLE_MAX_DEPTH,
    expected_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Read a Nersemble 16-bit depth PNG.

    Args:
        path: the PNG.
        max_depth: metres of the value 65535.
        expected_size: (width, height) the map must have (the camera's image size), or None.

    Returns:
        (H, W) float32 z-depth in metres, 0 = masked.

    Raises:
        DepthError: naming the file when it is missing or unreadable, not single-channel
            16-bit (e.g. an 8-bit PNG), or not of ``expected_size``.
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise DepthError(f"{path}: depth PNG is missing")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DepthError(f"{path}: unreadable depth PNG")
    if img.dtype != np.uint16:
        raise DepthError(
            f"{path}: depth PNG must be 16-bit (value/65535 x {max_depth:g} m), got {img.dtype}"
        )
    if img.ndim != 2:
        raise DepthError(f"{path}: depth PNG must have one channel, got shape {img.shape}")
    if expected_size is not None and expected_size[0] > 0 and expected_size[1] > 0:
        w, h = int(expected_size[0]), int(expected_size[1])
        if img.shape != (h, w):
            raise DepthError(
                f"{path}: depth PNG is {img.shape[1]}x{img.shape[0]}, the camera's images are "
                f"{w}x{h}"
            )
    return img.astype(np.float32) * np.float32(max_depth / 65535.0)


def write_nersemble_depth_png(
    path: PathLike, depth: np.ndarray, max_depth: float = NERSEMBLE_MAX_DEPTH
) -> None:
    """Write (H, W) z-depth in metres as a Nersemble 16-bit PNG, atomically.

    Depth outside (0, max_depth] and non-finite depth become 0 (masked). Quantisation error is
    at most ``max_depth / 65535 / 2``.
    """
    import cv2

    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim != 2:
        raise DepthError(f"{path}: depth to write must be (H, W), got shape {depth.shape}")
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(depth) & (depth > 0) & (depth <= max_depth)
    q = np.zeros(depth.shape, dtype=np.uint16)
    # a tiny valid depth must not round to 0 (masked)
    q[ok] = np.clip(np.rint(depth[ok] / max_depth * 65535.0), 1, 65535).astype(np.uint16)
    with atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), q):
            raise OSError(f"could not write depth PNG {path}")


def depth_frame_from_depth_maps(
    depth: np.ndarray, cameras: Sequence[Camera], source: str = "precomputed depth"
) -> DepthFrame:
    """A :class:`DepthFrame` from depth maps alone: normals from the depth, confidence 1 where
    the depth is valid.

    Args:
        depth: (C, H, W) z-depth in metres, 0 = invalid; cameras: the C cameras (for K and
            serials), in slice order.
    """
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 3 or depth.shape[0] != len(cameras):
        raise DepthError(
            f"{source}: depth of shape {depth.shape} does not match {len(cameras)} cameras"
        )
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(depth) & (depth > 0)
    normal = np.stack(
        [
            normals_from_depth_finite_differences(np.where(v, d, 0.0), c.K)
            for d, v, c in zip(depth, valid, cameras, strict=True)
        ]
    )
    return validate_depth_frame(
        depth, normal, valid.astype(np.float32), [c.serial for c in cameras], source
    )


def precomputed_depth_frame(
    paths: Mapping[str, PathLike] | Sequence[PathLike],
    cameras: Sequence[Camera],
    max_depth: float = NERSEMBLE_MAX_DEPTH,
    allow_missing: bool = False,
) -> DepthFrame:
    """One frame of Nersemble depth PNGs as a :class:`DepthFrame`.

    Args:
        paths: ``{serial: png}`` or one png per camera in ``cameras`` order.
        cameras: the cameras of the frame (their order is the slice order). A camera with a
            known image size (``width``, ``height`` > 0) requires a PNG of that size.
        max_depth: metres of the value 65535.
        allow_missing: give a camera whose PNG is missing an all-zero depth (back-projection
            then counts it as skipped) instead of raising.

    Raises:
        DepthError: a missing (unless allowed), 8-bit, multi-channel or wrong-size PNG, or maps
            of different sizes.
    """
    if isinstance(paths, Mapping):
        by_serial = {str(k): v for k, v in paths.items()}
        plist = [by_serial.get(c.serial) for c in cameras]
    else:
        plist = list(paths)
        if len(plist) != len(cameras):
            raise DepthError(f"{len(plist)} depth PNGs for {len(cameras)} cameras")
    maps: list[np.ndarray | None] = []
    for cam, p in zip(cameras, plist, strict=True):
        if p is None or not Path(p).is_file():
            if allow_missing:
                maps.append(None)
                continue
            raise DepthError(
                f"{p if p is not None else 'depth PNG'}: missing for camera {cam.serial}"
            )
        maps.append(read_nersemble_depth_png(p, max_depth, (cam.width, cam.height)))
    shapes = {m.shape for m in maps if m is not None}
    if not shapes:
        sizes = {(c.height, c.width) for c in cameras}
        if len(sizes) != 1 or 0 in next(iter(sizes)):
            raise DepthError("no depth PNG found and the cameras have no common image size")
        shapes = sizes
    if len(shapes) != 1:
        raise DepthError(f"depth PNGs of one frame have different sizes: {sorted(shapes)}")
    H, W = next(iter(shapes))
    depth = np.stack([m if m is not None else np.zeros((H, W), np.float32) for m in maps])
    src = str(Path(plist[0]).parent) if plist and plist[0] is not None else "precomputed depth"
    return depth_frame_from_depth_maps(depth, cameras, src)
