"""Atomic file writers and small readers shared by every stage.

Every writer goes through a temporary file in the destination folder followed by
``os.replace``, so a failed job never leaves a half-written output that a rerun would
trust.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

PathLike = str | os.PathLike


@contextlib.contextmanager
def atomic_path(path: PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` if the block succeeds.

    Args:
        path: final destination.
        suffix: suffix of the temporary file (defaults to the destination's, so that
            libraries that pick a format from the extension keep working).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.",
        suffix=suffix if suffix is not None else "".join(path.suffixes),
        dir=path.parent,
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give outputs the usual umask-derived mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def save_npz(path: PathLike, compress: bool = True, **arrays: Any) -> None:
    """Write arrays to ``path`` (.npz) atomically."""
    with atomic_path(path, suffix=".npz") as tmp:
        (np.savez_compressed if compress else np.savez)(tmp, **arrays)


def load_npz(path: PathLike) -> dict[str, np.ndarray]:
    """Read an .npz written by :func:`save_npz` into a plain dict (no pickles)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def save_json(path: PathLike, obj: Any, indent: int = 2) -> None:
    """Write ``obj`` as JSON atomically (numpy arrays and scalars are converted)."""
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(obj, indent=indent, default=_json_default) + "\n")


def load_json(path: PathLike) -> Any:
    return json.loads(Path(path).read_text())


def save_metrics(path: PathLike, metrics: Mapping[str, float | int | str | None]) -> None:
    """Write a flat ``metrics.json`` of named figures (the report, tests and benchmarks read it)."""
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not np.isfinite(value):
            value = None
        flat[str(key)] = value
    save_json(path, flat)


def save_image(path: PathLike, image: np.ndarray) -> None:
    """Write an image (H, W) or (H, W, 3) RGB, uint8 or uint16, as PNG/JPG atomically."""
    import cv2

    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 3:
        img = img[..., ::-1]  # RGB -> BGR for OpenCV
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(img)):
            raise OSError(f"could not write image {path}")


def read_image(path: PathLike, unchanged: bool = False) -> np.ndarray:
    """Read an image as RGB uint8 (H, W, 3), or unchanged (e.g. 16-bit or single channel).

    Raises:
        OSError: naming the file when it is missing or not a decodable image.
    """
    import cv2

    flag = cv2.IMREAD_UNCHANGED if unchanged else cv2.IMREAD_COLOR
    img = cv2.imread(str(path), flag)
    if img is None:
        raise OSError(f"unreadable image: {path}")
    if img.ndim == 3 and img.shape[2] >= 3:
        img = img[..., 2::-1] if img.shape[2] == 3 else img[..., [2, 1, 0, 3]]
    return img


def save_wav(path: PathLike, audio: np.ndarray, sample_rate: int) -> None:
    """Write mono float audio in [-1, 1] as 16-bit PCM WAV atomically."""
    import soundfile as sf

    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(str(tmp), np.asarray(audio, dtype=np.float32), int(sample_rate), subtype="PCM_16")


def read_wav(path: PathLike) -> tuple[np.ndarray, int]:
    """Read audio as mono float32 in [-1, 1] and its sample rate."""
    import soundfile as sf

    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return audio.mean(axis=1), int(sr)
