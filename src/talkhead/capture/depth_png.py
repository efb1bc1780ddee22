"""NeRSemble v1's depth maps: one 16-bit PNG per camera and frame
(``timesteps/frame_<t>/colmap/depth_maps/cam_<serial>.png``).

Encoding (NeRSemble v1's ``depth_maps_compressed``): bin 0 is reserved for "masked"; a value
``q`` in 1..65535 is the z-depth ``(q - 1) x 2 m / 65534``, so 65535 is 2 m and a bin is
2 m / 65534 = 0.0305 mm wide.

A capture file format, so it lives with the capture readers; the ``precomputed`` depth backend
(:mod:`talkhead.depth.precomputed`) turns these maps into depth frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DepthError
from ..io import PathLike, atomic_path

NERSEMBLE_MAX_DEPTH = 2.0
"""Depth (metres) of the PNG value 65535."""

N_BINS = 65534
"""Bins between the values 1 (0 m) and 65535 (``max_depth``); value 0 is "masked"."""


def decode_depth(q: np.ndarray, max_depth: float = NERSEMBLE_MAX_DEPTH) -> np.ndarray:
    """16-bit depth values to metres: ``(q - 1) x max_depth / 65534``, 0 where ``q == 0``.

    Args:
        q: (...) uint16 values as stored.
        max_depth: metres of the value 65535.

    Returns:
        (...) float32 z-depth in metres, 0 = masked.
    """
    q = np.asarray(q)
    d = (q.astype(np.float64) - 1.0) * (max_depth / N_BINS)
    return np.where(q > 0, d, 0.0).astype(np.float32)


def encode_depth(depth: np.ndarray, max_depth: float = NERSEMBLE_MAX_DEPTH) -> np.ndarray:
    """Metres to 16-bit depth values: ``round(depth / max_depth x 65534) + 1``.

    Depth outside (0, max_depth] and non-finite depth become 0 (masked). The error of a decoded
    value is at most half a bin, ``max_depth / 65534 / 2``; a valid depth below half a bin is
    written as 2 (one bin), not 1, which would decode to 0 m and read as masked.

    Args:
        depth: (...) z-depth in metres.

    Returns:
        (...) uint16.
    """
    depth = np.asarray(depth, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(depth) & (depth > 0) & (depth <= max_depth)
    q = np.zeros(depth.shape, dtype=np.uint16)
    q[ok] = np.clip(np.rint(depth[ok] / max_depth * N_BINS) + 1, 2, 65535).astype(np.uint16)
    return q


def read_nersemble_depth_png(
    path: PathLike,
    max_depth: float = NERSEMBLE_MAX_DEPTH,
    expected_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Read a NeRSemble 16-bit depth PNG (:func:`decode_depth`).

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
            f"{path}: depth PNG must be 16-bit ((value - 1)/65534 x {max_depth:g} m), "
            f"got {img.dtype}"
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
    return decode_depth(img, max_depth)


def write_nersemble_depth_png(
    path: PathLike, depth: np.ndarray, max_depth: float = NERSEMBLE_MAX_DEPTH
) -> None:
    """Write (H, W) z-depth in metres as a NeRSemble 16-bit PNG (:func:`encode_depth`),
    atomically.

    Depth outside (0, max_depth] and non-finite depth become 0 (masked). Quantisation error is
    at most ``max_depth / 65534 / 2`` (0.015 mm).
    """
    import cv2

    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim != 2:
        raise DepthError(f"{path}: depth to write must be (H, W), got shape {depth.shape}")
    q = encode_depth(depth, max_depth)
    with atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), q):
            raise OSError(f"could not write depth PNG {path}")
