"""FLAME parameters on disk (``.npz``), with the key names of the NeRSemble benchmark / VHAP.

=============  ========  ==========================================
key            shape     meaning
=============  ========  ==========================================
``shape``      (S,)      identity coefficients (one per sequence)
``expression`` (T, E)    expression coefficients
``rotation``   (T, 3)    axis-angle of the root joint
``translation``(T, 3)    world translation (metres)
``jaw``        (T, 3)    axis-angle of the jaw
``neck``       (T, 3)    axis-angle of the neck
``eyes``       (T, 6)    axis-angles of the left then the right eye
``scale``      (T, 1)    uniform scale
``frames``     (T,)      int frame indices
=============  ========  ==========================================

Other keys (e.g. ``fps``) are kept as they are. Floating arrays are stored as float32.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelFileError
from ..io import PathLike, save_npz

__all__ = [
    "FLAME_PARAM_KEYS",
    "PER_FRAME_WIDTHS",
    "check_flame_params",
    "load_flame_params",
    "save_flame_params",
]

FLAME_PARAM_KEYS = (
    "shape",
    "expression",
    "rotation",
    "translation",
    "jaw",
    "neck",
    "eyes",
    "scale",
    "frames",
)
#: Per-frame keys and their width (None: any width).
PER_FRAME_WIDTHS: dict[str, int | None] = {
    "expression": None,
    "rotation": 3,
    "translation": 3,
    "jaw": 3,
    "neck": 3,
    "eyes": 6,
    "scale": 1,
}
_REQUIRED = ("shape", "expression", "rotation", "translation", "jaw", "neck", "eyes")


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def check_flame_params(
    params: Mapping[str, Any], source: str = "<params>"
) -> dict[str, np.ndarray]:
    """Validate FLAME parameters and fill the optional ``scale`` (ones) and ``frames``.

    Returns:
        dict of numpy arrays: float32 parameters, int64 ``frames``, other keys unchanged.

    Raises:
        ModelFileError: naming ``source`` for a missing key, a wrong shape, frame counts
            that differ between keys, or non-finite values.
    """
    missing = [k for k in _REQUIRED if k not in params]
    if missing:
        raise ModelFileError(f"{source}: missing FLAME parameter(s) {missing}")
    out: dict[str, np.ndarray] = {}
    for key, value in params.items():
        arr = _to_numpy(value)
        if key in PER_FRAME_WIDTHS or key == "shape":
            if arr.dtype.kind not in "fiu":
                raise ModelFileError(f"{source}: '{key}' is not numeric ({arr.dtype})")
            arr = arr.astype(np.float32)
            if not np.all(np.isfinite(arr)):
                raise ModelFileError(f"{source}: '{key}' contains NaN or infinite values")
        out[key] = arr
    if out["shape"].ndim != 1:
        raise ModelFileError(f"{source}: 'shape' has shape {out['shape'].shape}, expected (S,)")
    T = out["expression"].shape[0] if out["expression"].ndim == 2 else None
    if T is None:
        raise ModelFileError(
            f"{source}: 'expression' has shape {out['expression'].shape}, expected (T, E)"
        )
    if "scale" not in out:
        out["scale"] = np.ones((T, 1), dtype=np.float32)
    for key, width in PER_FRAME_WIDTHS.items():
        arr = out[key]
        w = arr.shape[1] if arr.ndim == 2 and width is None else width
        if arr.shape != (T, w):
            raise ModelFileError(
                f"{source}: '{key}' has shape {arr.shape}, expected ({T}, {w}) "
                f"(T={T} frames from 'expression')"
            )
    if "frames" in out:
        frames = out["frames"]
        if frames.shape != (T,):
            raise ModelFileError(f"{source}: 'frames' has shape {frames.shape}, expected ({T},)")
        if frames.dtype.kind not in "iu":
            if frames.dtype.kind != "f" or not np.all(frames == np.round(frames)):
                raise ModelFileError(f"{source}: 'frames' must hold integer frame indices")
        out["frames"] = frames.astype(np.int64)
    else:
        out["frames"] = np.arange(T, dtype=np.int64)
    return out


def save_flame_params(path: PathLike, params: Mapping[str, Any]) -> None:
    """Validate (see :func:`check_flame_params`) and write FLAME parameters atomically."""
    save_npz(path, **check_flame_params(params, f"{path} (being written)"))


def load_flame_params(path: PathLike) -> dict[str, np.ndarray]:
    """Read and validate a FLAME parameter ``.npz``."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: FLAME parameter file is missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            raw = {k: data[k] for k in data.files}
    except (ValueError, OSError, EOFError) as exc:
        raise ModelFileError(f"{path}: unreadable FLAME parameter file ({exc})") from None
    return check_flame_params(raw, str(path))
