"""Readers of a capture sequence's files: images, mattes, segmentation, precomputed depth, 2D
landmarks, audio; and the few disk look-ups that opening a sequence needs (frame folders,
``sequence.json``, the audio file, an image's header).

Frame arguments ``t`` are frame *ids* (the number in ``frame_<t:05d>``), listed in
``CaptureSequence.frame_ids``; arrays over time (landmarks) are indexed by position in that
list. Every reader raises :class:`~talkhead.errors.CaptureError` naming the file on anything
missing, unreadable or malformed. Paths come from :mod:`talkhead.capture.layout`.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CaptureError
from ..io import PathLike
from . import layout
from .checks import (
    LAPA_MAX_LABEL,
    colour_format_note,
    labels_from_colour,
    landmark_frames_problem,
    landmark_shape_problem,
)
from .checks import N_LANDMARKS as N_LANDMARKS  # re-exported

if TYPE_CHECKING:
    from .sequence import CaptureSequence

log = logging.getLogger(__name__)


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_JPEG_MAGIC = b"\xff\xd8\xff"

# --------------------------------------------------------------------------------------------
# Disk look-ups of a sequence folder
# --------------------------------------------------------------------------------------------


def find_audio(sequence_dir: PathLike) -> Path | None:
    """The sequence's audio file: ``audio/audio_recording.<ext>`` (wav, flac, ogg, aiff), else
    the only audio file in ``audio/``; None when there is none."""
    for ext in layout.AUDIO_EXTENSIONS:
        candidate = layout.audio_path(sequence_dir, ext)
        if candidate.is_file():
            return candidate
    audio_dir = layout.audio_dir(sequence_dir)
    if audio_dir.is_dir():
        files = sorted(
            p
            for p in audio_dir.iterdir()
            if p.is_file() and p.suffix.lower() in layout.AUDIO_EXTENSIONS
        )
        if len(files) == 1:
            return files[0]
    return None


def read_sequence_fps(sequence_dir: PathLike, default: float) -> tuple[float, str | None]:
    """The frame rate in ``sequence.json`` and what is wrong with the file, if anything.

    Returns:
        ``(fps, None)`` from the file; ``(default, None)`` when there is no file or it names no
        fps; ``(default, why)`` when the file is not valid JSON or its fps is not a positive
        finite number (``why`` is a sentence without the path).
    """
    path = layout.sequence_file(sequence_dir)
    if not path.is_file():
        return float(default), None
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return float(default), f"not valid JSON ({exc})"
    if not isinstance(meta, Mapping) or "fps" not in meta:
        return float(default), None
    fps = meta["fps"]
    if (
        isinstance(fps, bool)
        or not isinstance(fps, (int, float))
        or not math.isfinite(fps)
        or fps <= 0
    ):
        return float(default), f"fps must be a positive number, got {fps!r}"
    return float(fps), None


def list_frame_ids(sequence_dir: PathLike) -> list[int]:
    """Ids ``t`` of the ``timesteps/frame_<t>`` folders, ascending ([] without timesteps/)."""
    timesteps = layout.timesteps_dir(sequence_dir)
    if not timesteps.is_dir():
        return []
    ids = []
    with os.scandir(timesteps) as it:
        for entry in it:
            t = layout.parse_frame_name(entry.name)
            if t is not None and entry.is_dir():
                ids.append(t)
    return sorted(ids)


def _jpeg_size(f) -> tuple[int, int, int, int] | None:
    """(width, height, channels, bits) from a JPEG's SOF marker, reading from the open file
    ``f``."""
    f.seek(2)
    while True:
        b = f.read(1)
        while b and b != b"\xff":
            b = f.read(1)
        while b == b"\xff":
            b = f.read(1)
        if not b:
            return None
        marker = b[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue
        seg = f.read(2)
        if len(seg) < 2:
            return None
        length = int.from_bytes(seg, "big")
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            data = f.read(6)
            if len(data) < 6:
                return None
            w, h = int.from_bytes(data[3:5], "big"), int.from_bytes(data[1:3], "big")
            return w, h, data[5], data[0]
        if marker == 0xD9 or length < 2:
            return None
        f.seek(length - 2, 1)


def read_image_header(path: PathLike) -> tuple[int, int, int] | str:
    """(width, height, channels) from a PNG/JPEG header, after checking the file is complete
    (PNG ends with IEND, JPEG with EOI); an error message (without the path) otherwise."""
    info = read_image_format(path)
    return info if isinstance(info, str) else info[:3]


def read_image_format(path: PathLike) -> tuple[int, int, int, int] | str:
    """(width, height, channels, bits per sample) from a PNG/JPEG header, after checking the
    file is complete; an error message (without the path) otherwise. A palette PNG counts as 3
    channels (it decodes to RGB)."""
    try:
        with open(path, "rb") as f:
            head = f.read(33)
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 1024))
            tail = f.read()
            if head.startswith(_PNG_MAGIC):
                if len(head) < 33 or head[12:16] != b"IHDR":
                    return "PNG header is truncated"
                if not tail.endswith(_PNG_IEND):
                    return "PNG is truncated (no IEND chunk at the end)"
                width = int.from_bytes(head[16:20], "big")
                height = int.from_bytes(head[20:24], "big")
                channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(head[25], 0)
                bits = 8 if head[25] == 3 else head[24]
                return width, height, channels, bits
            if head.startswith(_JPEG_MAGIC):
                if b"\xff\xd9" not in tail[-1024:]:
                    return "JPEG is truncated (no end-of-image marker)"
                dims = _jpeg_size(f)
                if dims is None:
                    return "JPEG has no frame header"
                return dims
    except OSError as exc:
        return f"cannot read file ({exc.strerror or exc})"
    return "not a PNG or JPEG file"


# --------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------


def _default_workers(n: int) -> int:
    return max(1, min(8, n, os.cpu_count() or 1))


def thread_map(fn: Callable[[Any], Any], items: Sequence[Any], workers: int | None) -> list:
    """``[fn(x) for x in items]`` on ``workers`` threads (None: up to 8), in order."""
    workers = _default_workers(len(items)) if workers is None else max(1, workers)
    if workers == 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def _imread(path: Path, flag: int) -> np.ndarray:
    import cv2

    if not path.is_file():
        raise CaptureError(f"{path}: file is missing")
    img = cv2.imread(str(path), flag)
    if img is None:
        raise CaptureError(f"{path}: unreadable image (truncated, corrupt or not an image)")
    return img


def _check_size(img: np.ndarray, seq: CaptureSequence, path: Path) -> None:
    if seq.width and seq.height and img.shape[:2] != (seq.height, seq.width):
        raise CaptureError(
            f"{path}: image is {img.shape[1]}x{img.shape[0]}, the sequence's "
            f"images are {seq.width}x{seq.height}"
        )


def _serials(seq: CaptureSequence, serials: Sequence[str] | None) -> list[str]:
    if serials is None:
        return list(seq.serials)
    unknown = [s for s in serials if s not in seq.cameras]
    if unknown:
        raise CaptureError(f"{seq.calibration_path}: no camera {', '.join(map(str, unknown))}")
    return [str(s) for s in serials]


_warned: set[tuple[str, str]] = set()


def _warn_once(what: str, path: Path, message: str) -> None:
    """Log ``message`` once per kind of conversion and file name (one line per camera, not per
    frame)."""
    key = (what, path.name)
    if key not in _warned:
        _warned.add(key)
        log.warning("%s: %s", path, message)


def as_rgb8(img: np.ndarray, path: PathLike) -> np.ndarray:
    """An image as decoded by OpenCV (``IMREAD_UNCHANGED``) as 8-bit RGB, saying what changed.

    Grayscale is repeated into RGB; an alpha channel (RGBA, grayscale + alpha) is dropped
    (mattes come from the alpha maps only); 16-bit is scaled to 8 bit (value / 257, rounded).
    Each conversion is logged as a warning once per camera (file name).

    Args:
        img: (H, W), (H, W, 3) BGR or (H, W, 4) BGRA; uint8 or uint16.
        path: the file it came from (for the log and errors).

    Returns:
        (H, W, 3) uint8 RGB.

    Raises:
        CaptureError: an unsupported sample type (e.g. float).
    """
    import cv2

    path = Path(path)
    channels = 1 if img.ndim == 2 else img.shape[2]
    if img.dtype not in (np.uint8, np.uint16):
        raise CaptureError(f"{path}: images must be 8- or 16-bit, got {img.dtype}")
    note = colour_format_note(channels, str(img.dtype))
    if note is not None:
        _warn_once("colour_format", path, f"image is {note} (said once per camera)")
    if img.dtype == np.uint16:
        img = ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if channels == 1:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if channels == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_image_file(path: PathLike) -> np.ndarray:
    """One RGB image (H, W, 3) uint8 (:func:`as_rgb8`: grayscale, RGBA and 16-bit images are
    converted with a logged warning); raises CaptureError naming the file."""
    import cv2

    path = Path(path)
    return as_rgb8(_imread(path, cv2.IMREAD_UNCHANGED), path)


def read_images(
    seq: CaptureSequence, t: int, serials: Sequence[str] | None = None, workers: int | None = None
) -> np.ndarray:
    """Images of frame ``t``.

    Args:
        seq: the sequence; t: frame id; serials: cameras (default: all, in ``seq.serials`` order).
        workers: decoding threads (default: up to 8).

    Returns:
        (C, H, W, 3) uint8 RGB.
    """
    serials = _serials(seq, serials)

    def one(serial: str) -> np.ndarray:
        path = seq.image_path(t, serial)
        img = read_image_file(path)
        _check_size(img, seq, path)
        return img

    return np.stack(thread_map(one, serials, workers))


def _read_map(path: Path, seq: CaptureSequence) -> np.ndarray:
    """A single-channel map (H, W) as stored (uint8 or uint16)."""
    import cv2

    img = _imread(path, cv2.IMREAD_UNCHANGED)
    if img.ndim == 3:
        img = img[..., 3] if img.shape[2] == 4 else img[..., 0]
    _check_size(img, seq, path)
    return img


_warned_no_alpha: set[Path] = set()


def read_alpha(
    seq: CaptureSequence, t: int, serials: Sequence[str] | None = None, workers: int | None = None
) -> np.ndarray:
    """Alpha mattes of frame ``t`` as (C, H, W) float32 in [0, 1] (1 = head).

    A capture that ships no alpha maps gets all ones (and a warning, once per sequence).
    """
    serials = _serials(seq, serials)
    if not seq.has_alpha:
        if seq.sequence_dir not in _warned_no_alpha:
            _warned_no_alpha.add(seq.sequence_dir)
            log.warning("%s has no alpha maps: using all-ones mattes", seq.sequence_dir)
        return np.ones((len(serials), seq.height, seq.width), dtype=np.float32)

    def one(serial: str) -> np.ndarray:
        m = _read_map(seq.alpha_path(t, serial), seq)
        scale = 65535.0 if m.dtype == np.uint16 else 255.0
        return np.clip(m.astype(np.float32) / np.float32(scale), 0.0, 1.0)

    return np.stack(thread_map(one, serials, workers))


def read_label_file(path: PathLike) -> np.ndarray:
    """One facer (LaPa) label map (H, W) uint8, ids 0..10.

    A single-channel 8-bit PNG holds the ids. A 3-channel (or palette) PNG is read only when its
    coding can be named (:func:`talkhead.capture.checks.labels_from_colour`): equal channels
    (the grey level is the id) or PASCAL VOC's colour map of the ids (with a logged warning).

    Raises:
        CaptureError: naming the file: missing, unreadable, not 8-bit, colours that are not a
            known coding, or ids above 10.
    """
    import cv2

    path = Path(path)
    img = _imread(path, cv2.IMREAD_UNCHANGED)
    if img.dtype != np.uint8:
        raise CaptureError(f"{path}: segmentation must be 8-bit labels, got {img.dtype}")
    if img.ndim == 3:
        labels, coding = labels_from_colour(img[..., 2::-1])
        if labels is None:
            raise CaptureError(
                f"{path}: segmentation is a colour image, not label ids (colours that are "
                "neither grey levels nor PASCAL VOC's colour map): save the LaPa ids 0-10 as a "
                "single-channel 8-bit PNG"
            )
        if coding != "grey":
            _warn_once(
                "segmentation_coding",
                path,
                f"segmentation read through the {coding} (said once per camera)",
            )
        img = labels
    top = int(img.max()) if img.size else 0
    if top > LAPA_MAX_LABEL:
        raise CaptureError(
            f"{path}: segmentation holds label {top}, LaPa's ids are 0-{LAPA_MAX_LABEL} "
            "(a 0/255 mask, or another label set?)"
        )
    return img


def read_segmentation(
    seq: CaptureSequence, t: int, serials: Sequence[str] | None = None, workers: int | None = None
) -> np.ndarray | None:
    """Facer (LaPa) label maps of frame ``t`` (:func:`read_label_file`): (C, H, W) uint8, None
    if the capture has none."""
    if not seq.has_segmentation:
        return None
    serials = _serials(seq, serials)

    def one(serial: str) -> np.ndarray:
        path = seq.segmentation_path(t, serial)
        m = read_label_file(path)
        _check_size(m, seq, path)
        return m

    return np.stack(thread_map(one, serials, workers))


def read_precomputed_depth(
    seq: CaptureSequence,
    t: int,
    serials: Sequence[str] | None = None,
    max_depth: float = 2.0,
    workers: int | None = None,
) -> np.ndarray:
    """NeRSemble v1's 16-bit COLMAP depth PNGs of frame ``t`` as (C, H, W) float32 metres
    ((value - 1) / 65534 x max_depth; 0 = masked; :mod:`talkhead.capture.depth_png`)."""
    from .depth_png import read_nersemble_depth_png

    serials = _serials(seq, serials)

    def one(serial: str) -> np.ndarray:
        return read_nersemble_depth_png(
            seq.precomputed_depth_path(t, serial), max_depth, expected_size=seq.image_size
        )

    return np.stack(thread_map(one, serials, workers))


def load_landmark_file(
    path: PathLike, n_frames: int | None = None, frame_ids: Sequence[int] | None = None
) -> np.ndarray:
    """One camera's 2D landmarks (T, 68, 3) float32 (x, y, confidence).

    A (T, 68, 2) file (no confidence column) is read with confidence 1, with a logged warning.
    Non-finite coordinates get confidence 0 (and coordinates 0).

    Args:
        path: the ``.npy`` file.
        n_frames: the frame count T must equal (None: any).
        frame_ids: the sequence's frame ids (names a file with one row per id across gaps).

    Raises:
        CaptureError: file missing, not a numeric .npy, another shape (MediaPipe's (T, 478, 3)
            mesh is named as such), T != n_frames, or confidences non-finite or outside [0, 1].
    """
    path = Path(path)
    if not path.is_file():
        raise CaptureError(f"{path}: landmark file is missing")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise CaptureError(f"{path}: unreadable landmark file ({exc})") from None
    if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.number):
        raise CaptureError(f"{path}: landmarks must be a numeric array")
    shape_problem = landmark_shape_problem(arr.shape)
    if shape_problem is not None:
        severity, why = shape_problem
        if severity == "error":
            raise CaptureError(f"{path}: landmarks {why}")
        _warn_once("landmarks_no_confidence", path, f"landmarks {why}")
        arr = np.concatenate([arr, np.ones(arr.shape[:2] + (1,), dtype=arr.dtype)], axis=-1)
    if n_frames is not None and arr.shape[0] != n_frames:
        ids = list(frame_ids) if frame_ids is not None else list(range(n_frames))
        why = landmark_frames_problem(arr.shape[0], ids) or (
            f"have {arr.shape[0]} frames, the sequence has {n_frames}"
        )
        raise CaptureError(f"{path}: landmarks {why}")
    arr = arr.astype(np.float32)
    conf = arr[..., 2]
    if not np.all(np.isfinite(conf)) or conf.min(initial=0) < 0 or conf.max(initial=0) > 1:
        raise CaptureError(f"{path}: landmark confidences must be finite and in [0, 1]")
    bad = ~np.all(np.isfinite(arr[..., :2]), axis=-1)
    if bad.any():
        arr[bad] = 0.0
    return arr


def read_landmarks(seq: CaptureSequence, serials: Sequence[str] | None = None) -> np.ndarray:
    """2D landmarks of every camera: (C, T, 68, 3) float32 (x, y pixels, confidence)."""
    serials = _serials(seq, serials)
    return np.stack(
        [load_landmark_file(seq.landmarks_path(s), seq.n_frames, seq.frame_ids) for s in serials]
    )


def read_audio_file(path: PathLike) -> tuple[np.ndarray, int]:
    """Audio as mono float32 (N,) in [-1, 1] and its sample rate; CaptureError naming the file."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise CaptureError(f"{path}: audio file is missing")
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError, ValueError, TypeError) as exc:  # LibsndfileError: Runtime
        raise CaptureError(f"{path}: unreadable audio ({exc})") from None
    return audio.mean(axis=1).astype(np.float32), int(sr)


def read_audio(seq: CaptureSequence) -> tuple[np.ndarray, int]:
    """The sequence's microphone: mono float32 (N,) in [-1, 1] and the sample rate."""
    if seq.audio_path is None:
        raise CaptureError(
            f"{layout.audio_dir(seq.sequence_dir)}: no audio file "
            f"({layout.AUDIO_STEM}.wav/.flac/.ogg)"
        )
    return read_audio_file(seq.audio_path)


def summarize(seq: CaptureSequence) -> dict[str, Any]:
    """Facts about a sequence for the workflow's ``capture.json`` (JSON-serialisable)."""
    import soundfile as sf

    out: dict[str, Any] = {
        "subject": seq.subject,
        "sequence": seq.sequence,
        "root": str(seq.root),
        "cameras": list(seq.serials),
        "n_cameras": seq.n_cameras,
        "n_frames": seq.n_frames,
        "first_frame": seq.frame_ids[0] if seq.frame_ids else None,
        "last_frame": seq.frame_ids[-1] if seq.frame_ids else None,
        "fps": seq.fps,
        "duration_s": seq.duration,
        "image_width": seq.width,
        "image_height": seq.height,
        "has_alpha": seq.has_alpha,
        "has_segmentation": seq.has_segmentation,
        "has_precomputed_depth": seq.has_precomputed_depth,
        "has_landmarks": seq.has_landmarks,
        "audio_path": str(seq.audio_path) if seq.audio_path else None,
        "audio_sample_rate": None,
        "audio_channels": None,
        "audio_duration_s": None,
    }
    if seq.audio_path is not None:
        try:
            info = sf.info(str(seq.audio_path))
        except (RuntimeError, OSError) as exc:
            raise CaptureError(f"{seq.audio_path}: unreadable audio ({exc})") from None
        out.update(
            audio_sample_rate=int(info.samplerate),
            audio_channels=int(info.channels),
            audio_duration_s=float(info.frames) / info.samplerate,
        )
    return out
