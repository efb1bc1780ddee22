"""The depth file format, one for every backend (``docs/formats.md``).

``results/depth/<subject>/<sequence>/frame_<t:05d>.npz`` holds one frame of all cameras:

- ``depth`` (C, H, W) float32 z-depth in metres, 0 = invalid;
- ``normal`` (C, H, W, 3) unit normals in the camera frame (0 where invalid), float16 on disk;
- ``confidence`` (C, H, W) in [0, 1], float16 on disk;
- ``serials`` (C,) str, the camera of each slice.

Files are written atomically and compressed. Reading validates shapes, dtypes and values:
NaN, infinite or negative depth raises :class:`~talkhead.errors.DepthError` naming the file
and the camera(s).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DepthError
from ..io import PathLike, save_npz

__all__ = [
    "DepthFrame",
    "depth_frame_path",
    "list_depth_frames",
    "load_depth_frame",
    "save_depth_frame",
    "validate_depth_frame",
]

_FRAME_RE = re.compile(r"^frame_(\d+)\.npz$")


@dataclass(frozen=True, eq=False)
class DepthFrame:
    """Depth, normals and confidence of one frame in all cameras.

    Attributes:
        depth: (C, H, W) float32 z-depth in metres, 0 = invalid.
        normal: (C, H, W, 3) float32 unit normals in the camera frame, facing the camera.
        confidence: (C, H, W) float32 in [0, 1].
        serials: the C camera serials, in slice order.
    """

    depth: np.ndarray
    normal: np.ndarray
    confidence: np.ndarray
    serials: tuple[str, ...]

    @property
    def n_cameras(self) -> int:
        return int(self.depth.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of every map."""
        return int(self.depth.shape[1]), int(self.depth.shape[2])

    def index(self, serial: str) -> int:
        """Slice index of camera ``serial``."""
        try:
            return self.serials.index(str(serial))
        except ValueError:
            raise DepthError(
                f"depth frame has no camera {serial} (has {list(self.serials)})"
            ) from None


def depth_frame_path(out_dir: PathLike, t: int) -> Path:
    """``out_dir/frame_<t:05d>.npz``."""
    return Path(out_dir) / f"frame_{int(t):05d}.npz"


def list_depth_frames(depth_dir: PathLike) -> list[int]:
    """Frame ids ``t`` of the ``frame_<t>.npz`` files in ``depth_dir``, ascending."""
    depth_dir = Path(depth_dir)
    if not depth_dir.is_dir():
        raise DepthError(f"{depth_dir}: depth folder is missing")
    ids = []
    for p in depth_dir.iterdir():
        m = _FRAME_RE.match(p.name)
        if m:
            ids.append(int(m.group(1)))
    return sorted(ids)


def _cameras(serials: Sequence[str], idx: np.ndarray) -> str:
    names = [str(serials[i]) if i < len(serials) else f"#{i}" for i in idx]
    if len(names) > 6:
        names = names[:6] + [f"... ({len(idx)} in all)"]
    return ", ".join(names)


def validate_depth_frame(
    depth: np.ndarray,
    normal: np.ndarray,
    confidence: np.ndarray,
    serials: Sequence[str],
    source: PathLike | str = "depth frame",
) -> DepthFrame:
    """Check and convert the arrays of one frame; the error names ``source`` and the cameras.

    Args:
        depth: (C, H, W) z-depth; normal: (C, H, W, 3); confidence: (C, H, W); serials: (C,).
        source: the file (or a description) used in error messages.

    Returns:
        A :class:`DepthFrame` of float32 arrays (contiguous copies when a conversion was needed).

    Raises:
        DepthError: wrong shapes or dtypes, NaN/inf anywhere, negative depth, confidence
            outside [0, 1], duplicate serials.
    """
    try:
        depth = np.asarray(depth)
        normal = np.asarray(normal)
        confidence = np.asarray(confidence)
    except (TypeError, ValueError) as exc:
        raise DepthError(f"{source}: arrays are not numeric ({exc})") from None
    serials = tuple(str(s) for s in np.asarray(serials).reshape(-1).tolist())
    for name, arr in (("depth", depth), ("normal", normal), ("confidence", confidence)):
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise DepthError(f"{source}: {name} has non-numeric dtype {arr.dtype}")
    if depth.ndim != 3:
        raise DepthError(f"{source}: depth must be (C, H, W), got shape {depth.shape}")
    C, H, W = depth.shape
    if normal.shape != (C, H, W, 3):
        raise DepthError(f"{source}: normal has shape {normal.shape}, expected {(C, H, W, 3)}")
    if confidence.shape != (C, H, W):
        raise DepthError(f"{source}: confidence has shape {confidence.shape}, expected {(C, H, W)}")
    if len(serials) != C:
        raise DepthError(f"{source}: {len(serials)} serials for {C} depth maps")
    if len(set(serials)) != C:
        raise DepthError(f"{source}: duplicate camera serials {list(serials)}")
    depth = np.ascontiguousarray(depth, dtype=np.float32)
    normal = np.ascontiguousarray(normal, dtype=np.float32)
    confidence = np.ascontiguousarray(confidence, dtype=np.float32)

    bad = ~np.isfinite(depth).all(axis=(1, 2))
    if bad.any():
        idx = np.flatnonzero(bad)
        raise DepthError(f"{source}: NaN or infinite depth in camera(s) {_cameras(serials, idx)}")
    neg = (depth < 0).any(axis=(1, 2))
    if neg.any():
        idx = np.flatnonzero(neg)
        raise DepthError(f"{source}: negative depth in camera(s) {_cameras(serials, idx)}")
    bad = ~np.isfinite(normal).all(axis=(1, 2, 3))
    if bad.any():
        idx = np.flatnonzero(bad)
        raise DepthError(f"{source}: NaN or infinite normals in camera(s) {_cameras(serials, idx)}")
    bad = ~(np.isfinite(confidence) & (confidence >= 0) & (confidence <= 1)).all(axis=(1, 2))
    if bad.any():
        idx = np.flatnonzero(bad)
        raise DepthError(
            f"{source}: confidence outside [0, 1] in camera(s) {_cameras(serials, idx)}"
        )
    return DepthFrame(depth, normal, confidence, serials)


def save_depth_frame(
    path: PathLike,
    depth: np.ndarray,
    normal: np.ndarray,
    confidence: np.ndarray,
    serials: Sequence[str],
) -> Path:
    """Validate and write one frame atomically (compressed .npz: depth float32; normals and
    confidence float16, which keeps normals to ~0.06 degrees at half the size).

    Args:
        path: destination (see :func:`depth_frame_path`).
        depth: (C, H, W) metres, 0 = invalid; normal: (C, H, W, 3); confidence: (C, H, W);
        serials: (C,) camera serials.

    Raises:
        DepthError: the arrays do not form a valid frame (nothing is written).
    """
    frame = validate_depth_frame(depth, normal, confidence, serials, source=str(path))
    save_npz(
        path,
        depth=frame.depth,
        normal=frame.normal.astype(np.float16),
        confidence=frame.confidence.astype(np.float16),
        serials=np.asarray(frame.serials, dtype=str),
    )
    return Path(path)


def load_depth_frame(path: PathLike) -> DepthFrame:
    """Read and validate one frame written by :func:`save_depth_frame`.

    A file without ``confidence`` (e.g. ground-truth depth) gets 1 where the depth is valid.

    Raises:
        DepthError: naming the file: missing, not an .npz, keys missing, wrong shapes or
            dtypes, NaN/inf or negative depth (naming the camera(s)).
    """
    path = Path(path)
    if not path.is_file():
        raise DepthError(f"{path}: depth file is missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DepthError(f"{path}: not a readable depth .npz ({exc})") from None
    missing = [k for k in ("depth", "normal", "serials") if k not in arrays]
    if missing:
        raise DepthError(f"{path}: depth file lacks {', '.join(missing)}")
    depth = arrays["depth"]
    if "confidence" in arrays:
        confidence = arrays["confidence"]
    else:
        with np.errstate(invalid="ignore"):
            confidence = (np.asarray(depth) > 0).astype(np.float32)
    return validate_depth_frame(depth, arrays["normal"], confidence, arrays["serials"], path)
