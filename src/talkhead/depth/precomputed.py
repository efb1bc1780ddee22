"""Precomputed depth shipped with a capture (the ``precomputed`` depth backend).

Nersemble v1 ships COLMAP depth as 16-bit PNGs per camera and frame
(``timesteps/frame_<t>/colmap/depth_maps/cam_<serial>.png``): (value - 1) / 65534 x 2 m,
0 = masked (:mod:`talkhead.capture.depth_png`).
The PNGs carry no normals, so normals are estimated from the depth
(:func:`talkhead.geometry.normals.normals_from_depth_finite_differences`), and the confidence
is 1 where the depth is valid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..capture.depth_png import NERSEMBLE_MAX_DEPTH, read_nersemble_depth_png
from ..errors import DepthError
from ..geometry.cameras import Camera
from ..geometry.normals import normals_from_depth_finite_differences
from ..io import PathLike
from .io import DepthFrame, validate_depth_frame

__all__ = [
    "depth_frame_from_depth_maps",
    "precomputed_depth_frame",
]


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
