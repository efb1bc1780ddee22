"""The ``points.npz`` file of a sequence (docs/formats.md): a checked reader, an atomic writer."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DepthError
from ..io import PathLike, save_npz

if TYPE_CHECKING:
    pass


def save_points(path: PathLike, data: Mapping[str, np.ndarray]) -> None:
    """Write the ``points.npz`` of :func:`backproject_sequence` atomically (compressed)."""
    offsets = np.asarray(data["frame_offsets"], dtype=np.int64)
    if offsets[0] != 0 or offsets[-1] != len(data["points"]) or np.any(np.diff(offsets) < 0):
        raise DepthError(f"{path}: frame_offsets do not index the points")
    save_npz(path, **{k: np.asarray(v) for k, v in data.items()})


def load_points(path: PathLike) -> dict[str, np.ndarray]:
    """Read and check a ``points.npz``.

    Raises:
        DepthError: naming the file when keys are missing or shapes are inconsistent.
    """
    path = Path(path)
    if not path.is_file():
        raise DepthError(f"{path}: points file is missing")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise DepthError(f"{path}: unreadable points file ({exc})") from None
    need = ("points", "normals", "frame_offsets", "landmarks3d", "landmarks3d_valid")
    missing = [k for k in need if k not in data]
    if missing:
        raise DepthError(f"{path}: lacks {', '.join(missing)}")
    P = len(data["points"])
    off = data["frame_offsets"]
    T = len(off) - 1
    if data["points"].shape != (P, 3) or data["normals"].shape != (P, 3):
        raise DepthError(f"{path}: points/normals must both be (P, 3)")
    if T < 0 or off[0] != 0 or off[-1] != P or np.any(np.diff(off) < 0):
        raise DepthError(f"{path}: frame_offsets do not index the points")
    if data["landmarks3d"].shape[0] != T or data["landmarks3d_valid"].shape[0] != T:
        raise DepthError(
            f"{path}: landmarks cover {data['landmarks3d'].shape[0]} frames, the points {T}"
        )
    if not np.isfinite(data["points"]).all():
        raise DepthError(f"{path}: points contain NaN or infinite values")
    return data
