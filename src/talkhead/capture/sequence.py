"""Readers and a validator for Nersemble v1-style capture trees (see docs/formats.md).

Layout::

    <root>/<subject>/camera_params.json
    <root>/<subject>/sequences/<SEQ>/sequence.json                       optional {"fps": 25.0}
    <root>/<subject>/sequences/<SEQ>/timesteps/frame_<t:05d>/images/cam_<serial>.png (or .jpg)
    .../frame_<t:05d>/alpha_map/cam_<serial>.png                          optional matte
    .../frame_<t:05d>/facer_segmentation_masks/segmentation_cam_<serial>.png   optional labels
    .../frame_<t:05d>/colmap/depth_maps/cam_<serial>.png                  optional 16-bit depth
    <root>/<subject>/sequences/<SEQ>/annotations/landmarks2D/cam_<serial>.npy   (T, 68, 3)
    <root>/<subject>/sequences/<SEQ>/audio/audio_recording.wav            (or .flac/.ogg)

Frame arguments ``t`` are frame *ids* (the number in ``frame_<t:05d>``), listed in
``CaptureSequence.frame_ids``; arrays over time (landmarks) are indexed by position in that list.

:func:`validate_capture` checks a whole tree and returns every problem it finds (it decodes
every image, so run it once, in the capture stage); :func:`open_sequence` opens one sequence and,
with ``validate=True``, raises :class:`~talkhead.errors.CaptureError` listing all of them. Later
stages open with ``validate=False`` and rely on the readers, which raise ``CaptureError`` naming
the file on anything unreadable or malformed.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CaptureError
from ..geometry.cameras import Camera, read_camera_params
from ..io import PathLike

log = logging.getLogger(__name__)

CALIBRATION_FILE = "camera_params.json"
SEQUENCE_FILE = "sequence.json"
AUDIO_STEM = "audio_recording"
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
N_LANDMARKS = 68

#: Per-frame maps beside the images: name -> (folder, file-name regex capturing the serial).
MAP_LAYOUT: dict[str, tuple[str, str]] = {
    "alpha": ("alpha_map", r"cam_(.+)\.png"),
    "segmentation": ("facer_segmentation_masks", r"segmentation_cam_(.+)\.png"),
    "depth": ("colmap/depth_maps", r"cam_(.+)\.png"),
}
_FRAME_RE = re.compile(r"frame_(\d+)")
_IMAGE_RE = re.compile(r"cam_(.+)\.(png|jpe?g)", re.IGNORECASE)
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_JPEG_MAGIC = b"\xff\xd8\xff"
SILENCE_PEAK = 1e-4  # -80 dBFS: below ~3 LSB of 16-bit audio counts as digital silence
CLIP_LEVEL = 0.999
CLIP_FRACTION = 1e-3

# --------------------------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One defect of a capture.

    Attributes:
        kind: machine-readable category, e.g. ``"missing_camera"``, ``"frame_count_mismatch"``,
            ``"unreadable_image"``, ``"malformed_calibration"``, ``"missing_audio"``,
            ``"silent_audio"``, ``"image_size_mismatch"``, ``"landmarks_shape"``,
            ``"mask_size_mismatch"``, ``"unknown_camera"``, ``"no_frames"`` (see
            :data:`PROBLEM_KINDS`).
        path: the file or folder at fault.
        message: a sentence for a human (without the path; ``str(problem)`` appends it).
        severity: ``"error"`` (the capture cannot be used as is) or ``"warning"``.
    """

    kind: str
    path: Path
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.message} ({self.path})"


#: Every kind :func:`validate_capture` reports, with what it means.
PROBLEM_KINDS: dict[str, str] = {
    "no_subjects": "the root holds no subject folder",
    "missing_subject": "the named subject folder does not exist",
    "missing_sequence": "the named sequence folder does not exist",
    "no_sequences": "a subject has no sequences/ folder or it is empty",
    "missing_calibration": "camera_params.json is missing",
    "malformed_calibration": "camera_params.json is not valid JSON or a matrix is malformed",
    "malformed_metadata": "sequence.json is not valid JSON or holds an invalid fps",
    "no_frames": "a sequence has no timesteps/frame_* folders",
    "empty_frame": "a frame folder holds no camera image",
    "missing_camera": "a calibrated camera has no image in some or all frames",
    "frame_count_mismatch": "a camera's images stop early or start late",
    "unknown_camera": "images of a camera the calibration does not know",
    "unreadable_image": "an image or map does not decode (truncated, corrupt, not an image)",
    "image_size_mismatch": "image sizes disagree with each other or with the calibration",
    "missing_mask": "a per-frame map (alpha, segmentation, depth) is missing for some images",
    "mask_size_mismatch": "a per-frame map's size differs from its image",
    "malformed_depth": "a precomputed depth map is not a 16-bit single-channel PNG",
    "missing_landmarks": "a camera has no 2D landmark file",
    "unreadable_landmarks": "a landmark file does not load as a numeric .npy array",
    "landmarks_shape": "a landmark array is not (T, 68, 3) with T the camera's frame count",
    "malformed_landmarks": "landmark values are non-finite or confidences outside [0, 1]",
    "landmarks_out_of_image": "(warning) many confident landmarks lie outside the image",
    "missing_audio": "a sequence has no audio file",
    "unreadable_audio": "the audio file does not decode",
    "silent_audio": "the audio is empty or digitally silent",
    "clipped_audio": "(warning) many samples at full scale",
    "audio_duration_mismatch": "(warning) the audio is much shorter than the video",
}


def _err(kind: str, path: PathLike, message: str) -> Problem:
    return Problem(kind, Path(path), message, "error")


def _warn(kind: str, path: PathLike, message: str) -> Problem:
    return Problem(kind, Path(path), message, "warning")


def errors_of(problems: Iterable[Problem]) -> list[Problem]:
    """The problems of severity ``"error"``."""
    return [p for p in problems if p.severity == "error"]


def _frame_name(t: int) -> str:
    return f"frame_{t:05d}"


def _list_frames(frames: Sequence[int], limit: int = 8) -> str:
    names = [_frame_name(t) for t in frames[:limit]]
    more = f" and {len(frames) - limit} more" if len(frames) > limit else ""
    return ", ".join(names) + more


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def format_problems(
    problems: Sequence[Problem], root: PathLike | None = None, max_per_kind: int = 20
) -> str:
    """A human-readable report: errors first, grouped by kind, at most ``max_per_kind`` each.

    Args:
        problems: from :func:`validate_capture`.
        root: when given, paths are shown relative to it.
        max_per_kind: lines shown per kind before "... and N more".
    """
    if not problems:
        return "no problems found"
    n_err = len(errors_of(problems))
    n_warn = len(problems) - n_err
    lines = [f"{_plural(n_err, 'error')}, {_plural(n_warn, 'warning')}:"]
    root_path = Path(root) if root is not None else None
    for severity in ("error", "warning"):
        by_kind: dict[str, list[Problem]] = defaultdict(list)
        for p in problems:
            if p.severity == severity:
                by_kind[p.kind].append(p)
        for kind, group in by_kind.items():
            lines.append(f"{severity.upper()} {kind} ({len(group)}):")
            for p in group[:max_per_kind]:
                path = p.path
                if root_path is not None:
                    try:
                        path = p.path.relative_to(root_path)
                    except ValueError:
                        pass
                lines.append(f"  - {p.message} ({path})")
            if len(group) > max_per_kind:
                lines.append(f"  ... and {len(group) - max_per_kind} more {kind} problems")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The sequence object
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CaptureSequence:
    """One sequence of a Nersemble-style capture.

    Attributes:
        root: the capture root (holding subject folders).
        subject, sequence: names of the subject and sequence folders.
        cameras: ``{serial: Camera}`` from the subject's ``camera_params.json``.
        serials: sorted camera serials (the camera order of every reader).
        frame_ids: frame ids ``t`` of the ``frame_<t:05d>`` folders, ascending.
        fps: frame rate (``sequence.json`` if present, else the default given to open).
        width, height: image size in pixels.
        audio_path: the audio file, None when the sequence has none.
        image_ext: extension of the image files (".png" or ".jpg").
        has_alpha, has_segmentation, has_precomputed_depth, has_landmarks: whether the
            sequence ships those (judged on its first frame / annotations folder).
    """

    root: Path
    subject: str
    sequence: str
    cameras: dict[str, Camera] = field(repr=False)
    serials: list[str]
    frame_ids: tuple[int, ...] = field(repr=False)
    fps: float
    width: int
    height: int
    audio_path: Path | None = None
    image_ext: str = ".png"
    has_alpha: bool = False
    has_segmentation: bool = False
    has_precomputed_depth: bool = False
    has_landmarks: bool = False

    @property
    def n_frames(self) -> int:
        return len(self.frame_ids)

    @property
    def n_cameras(self) -> int:
        return len(self.serials)

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.width, self.height

    @property
    def duration(self) -> float:
        """Video duration in seconds (n_frames / fps)."""
        return self.n_frames / self.fps

    @property
    def subject_dir(self) -> Path:
        return self.root / self.subject

    @property
    def calibration_path(self) -> Path:
        return self.subject_dir / CALIBRATION_FILE

    @property
    def sequence_dir(self) -> Path:
        return self.subject_dir / "sequences" / self.sequence

    def frame_dir(self, t: int) -> Path:
        return self.sequence_dir / "timesteps" / _frame_name(t)

    def image_path(self, t: int, serial: str) -> Path:
        return self.frame_dir(t) / "images" / f"cam_{serial}{self.image_ext}"

    def alpha_path(self, t: int, serial: str) -> Path:
        return self.frame_dir(t) / "alpha_map" / f"cam_{serial}.png"

    def segmentation_path(self, t: int, serial: str) -> Path:
        return self.frame_dir(t) / "facer_segmentation_masks" / f"segmentation_cam_{serial}.png"

    def precomputed_depth_path(self, t: int, serial: str) -> Path:
        return self.frame_dir(t) / "colmap" / "depth_maps" / f"cam_{serial}.png"

    def landmarks_path(self, serial: str) -> Path:
        return self.sequence_dir / "annotations" / "landmarks2D" / f"cam_{serial}.npy"

    def frame_index(self, t: int) -> int:
        """Position of frame id ``t`` in :attr:`frame_ids`."""
        try:
            return self.frame_ids.index(t)
        except ValueError:
            raise CaptureError(f"{self.sequence_dir}: no frame {_frame_name(t)}") from None


def find_audio(sequence_dir: PathLike) -> Path | None:
    """The sequence's audio file: ``audio/audio_recording.<ext>`` (wav, flac, ogg, aiff), else
    the only audio file in ``audio/``; None when there is none."""
    audio_dir = Path(sequence_dir) / "audio"
    for ext in AUDIO_EXTENSIONS:
        candidate = audio_dir / f"{AUDIO_STEM}{ext}"
        if candidate.is_file():
            return candidate
    if audio_dir.is_dir():
        files = sorted(
            p for p in audio_dir.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
        )
        if len(files) == 1:
            return files[0]
    return None


def _read_fps(sequence_dir: Path, default: float) -> tuple[float, Problem | None]:
    path = sequence_dir / SEQUENCE_FILE
    if not path.is_file():
        return float(default), None
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return float(default), _err("malformed_metadata", path, f"not valid JSON ({exc})")
    if not isinstance(meta, Mapping) or "fps" not in meta:
        return float(default), None
    fps = meta["fps"]
    if (
        isinstance(fps, bool)
        or not isinstance(fps, (int, float))
        or not math.isfinite(fps)
        or fps <= 0
    ):
        return float(default), _err(
            "malformed_metadata", path, f"fps must be a positive number, got {fps!r}"
        )
    return float(fps), None


def _frame_ids(sequence_dir: Path) -> list[int]:
    timesteps = sequence_dir / "timesteps"
    if not timesteps.is_dir():
        return []
    ids = []
    with os.scandir(timesteps) as it:
        for entry in it:
            m = _FRAME_RE.fullmatch(entry.name)
            if m and entry.is_dir():
                ids.append(int(m.group(1)))
    return sorted(ids)


def open_sequence(
    root: PathLike,
    subject: str,
    sequence: str,
    fps: float = 25.0,
    validate: bool = True,
    workers: int | None = None,
) -> CaptureSequence:
    """Open one sequence of a capture tree.

    Args:
        root: the capture root; subject, sequence: folder names.
        fps: frame rate used when the sequence has no ``sequence.json``.
        validate: run :func:`validate_capture` on this sequence first (decodes every image:
            do it once, in the capture stage) and raise on any error; warnings are logged.
        workers: threads used to decode images when validating.

    Raises:
        CaptureError: listing every problem found (validate=True), or naming the first
            blocking one (missing folder, unreadable calibration, no frames).
    """
    root = Path(root)
    if validate:
        problems = validate_capture(root, subject, sequence, fps=fps, workers=workers)
        for p in problems:
            if p.severity == "warning":
                log.warning("%s", p)
        errors = errors_of(problems)
        if errors:
            raise CaptureError(
                f"capture {root / subject} sequence {sequence} is not usable:\n"
                + format_problems(errors, root=root)
            )
    seq_dir = root / subject / "sequences" / sequence
    if not seq_dir.is_dir():
        raise CaptureError(f"{seq_dir}: sequence folder is missing")
    try:
        cameras = read_camera_params(root / subject / CALIBRATION_FILE)
    except (TypeError, ValueError, AttributeError) as exc:
        raise CaptureError(
            f"{root / subject / CALIBRATION_FILE}: malformed calibration ({exc})"
        ) from None
    seq_fps, problem = _read_fps(seq_dir, fps)
    if problem is not None:
        raise CaptureError(str(problem))
    frame_ids = _frame_ids(seq_dir)
    if not frame_ids:
        raise CaptureError(f"{seq_dir / 'timesteps'}: no frame_<t> folders")
    serials = sorted(cameras)
    first = seq_dir / "timesteps" / _frame_name(frame_ids[0])
    image_ext, width, height = ".png", 0, 0
    for serial in serials:
        for ext in IMAGE_EXTENSIONS:
            p = first / "images" / f"cam_{serial}{ext}"
            if p.is_file():
                image_ext = ext
                info = _image_header(p)
                if not isinstance(info, str):
                    width, height = info[0], info[1]
                break
        if width:
            break
    sizes = {(c.width, c.height) for c in cameras.values() if c.width and c.height}
    if not width and len(sizes) == 1:
        width, height = sizes.pop()
    lmk_dir = seq_dir / "annotations" / "landmarks2D"
    return CaptureSequence(
        root=root,
        subject=subject,
        sequence=sequence,
        cameras=cameras,
        serials=serials,
        frame_ids=tuple(frame_ids),
        fps=seq_fps,
        width=width,
        height=height,
        audio_path=find_audio(seq_dir),
        image_ext=image_ext,
        has_alpha=(first / MAP_LAYOUT["alpha"][0]).is_dir(),
        has_segmentation=(first / MAP_LAYOUT["segmentation"][0]).is_dir(),
        has_precomputed_depth=(first / MAP_LAYOUT["depth"][0]).is_dir(),
        has_landmarks=lmk_dir.is_dir() and any(lmk_dir.glob("cam_*.npy")),
    )


# --------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------


def _default_workers(n: int) -> int:
    return max(1, min(8, n, os.cpu_count() or 1))


def _thread_map(fn: Callable[[Any], Any], items: Sequence[Any], workers: int | None) -> list:
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


def read_image_file(path: PathLike) -> np.ndarray:
    """One RGB image (H, W, 3) uint8; raises CaptureError naming the file."""
    import cv2

    img = _imread(Path(path), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(img[..., ::-1])


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

    return np.stack(_thread_map(one, serials, workers))


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

    return np.stack(_thread_map(one, serials, workers))


def read_segmentation(
    seq: CaptureSequence, t: int, serials: Sequence[str] | None = None, workers: int | None = None
) -> np.ndarray | None:
    """Facer (LaPa) label maps of frame ``t``: (C, H, W) uint8, None if the capture has none."""
    if not seq.has_segmentation:
        return None
    serials = _serials(seq, serials)

    def one(serial: str) -> np.ndarray:
        path = seq.segmentation_path(t, serial)
        m = _read_map(path, seq)
        if m.dtype != np.uint8:
            raise CaptureError(f"{path}: segmentation must be 8-bit labels, got {m.dtype}")
        return m

    return np.stack(_thread_map(one, serials, workers))


def read_precomputed_depth(
    seq: CaptureSequence,
    t: int,
    serials: Sequence[str] | None = None,
    max_depth: float = 2.0,
    workers: int | None = None,
) -> np.ndarray:
    """Nersemble's 16-bit COLMAP depth PNGs of frame ``t`` as (C, H, W) float32 metres
    (value / 65535 * max_depth; 0 = masked)."""
    from ..depth.precomputed import read_nersemble_depth_png

    serials = _serials(seq, serials)

    def one(serial: str) -> np.ndarray:
        return read_nersemble_depth_png(
            seq.precomputed_depth_path(t, serial), max_depth, expected_size=seq.image_size
        )

    return np.stack(_thread_map(one, serials, workers))


def load_landmark_file(path: PathLike, n_frames: int | None = None) -> np.ndarray:
    """One camera's 2D landmarks (T, 68, 3) float32 (x, y, confidence).

    Non-finite coordinates get confidence 0 (and coordinates 0).

    Raises:
        CaptureError: file missing, not a numeric .npy, wrong shape, T != n_frames, or
            confidences non-finite or outside [0, 1].
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
    if arr.ndim != 3 or arr.shape[1:] != (N_LANDMARKS, 3):
        raise CaptureError(f"{path}: landmarks have shape {arr.shape}, expected (T, 68, 3)")
    if n_frames is not None and arr.shape[0] != n_frames:
        raise CaptureError(
            f"{path}: landmarks have {arr.shape[0]} frames, the sequence has {n_frames}"
        )
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
    return np.stack([load_landmark_file(seq.landmarks_path(s), seq.n_frames) for s in serials])


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
            f"{seq.sequence_dir / 'audio'}: no audio file ({AUDIO_STEM}.wav/.flac/.ogg)"
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


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _jpeg_size(f) -> tuple[int, int, int] | None:
    """(width, height, channels) from a JPEG's SOF marker, reading from the open file ``f``."""
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
            return int.from_bytes(data[3:5], "big"), int.from_bytes(data[1:3], "big"), data[5]
        if marker == 0xD9 or length < 2:
            return None
        f.seek(length - 2, 1)


def _image_header(path: Path) -> tuple[int, int, int] | str:
    """(width, height, channels) from a PNG/JPEG header, after checking the file is complete
    (PNG ends with IEND, JPEG with EOI); an error message otherwise."""
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
                return width, height, channels
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


def _inspect_image(path: Path, decode: bool) -> tuple[int, int, int, str] | str:
    """(width, height, channels, dtype) of a PNG/JPEG, or an error message.

    With ``decode`` the whole file is decoded by OpenCV (catches corrupt data inside a complete
    file); without, only the header and the end-of-file marker are checked.
    """
    info = _image_header(path)
    if isinstance(info, str):
        return info
    if not decode:
        return info[0], info[1], info[2], "uint8"
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        return f"cannot read file ({exc.strerror or exc})"
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        return "image data is corrupt (decoding failed)"
    h, w = img.shape[:2]
    if (w, h) != info[:2]:
        return f"decoded size {w}x{h} differs from the header's {info[0]}x{info[1]}"
    return w, h, 1 if img.ndim == 2 else img.shape[2], str(img.dtype)


@dataclass
class _Calibration:
    path: Path
    cameras: dict[str, Camera]  # the well-formed ones
    declared: set[str]  # every serial the file names (well-formed or not)
    sizes: dict[str, tuple[int, int]]
    ok: bool  # the file parsed as a calibration at all


def _check_matrix(value: Any, shape: tuple[int, int]) -> tuple[np.ndarray | None, str | None]:
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None, "is not a numeric matrix"
    if m.shape != shape:
        return None, f"has shape {m.shape}, expected {shape}"
    if not np.all(np.isfinite(m)):
        return None, "contains NaN or infinite values"
    return m, None


def _check_calibration(path: PathLike) -> tuple[_Calibration, list[Problem]]:
    """Check ``camera_params.json`` camera by camera, collecting every defect.

    Returns the well-formed cameras and the problems (kinds ``missing_calibration`` /
    ``malformed_calibration``).
    """
    path = Path(path)
    calib = _Calibration(path, {}, set(), {}, False)
    if not path.is_file():
        return calib, [_err("missing_calibration", path, "calibration file is missing")]
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return calib, [
            _err("malformed_calibration", path, f"calibration is not valid JSON ({exc})")
        ]
    problems: list[Problem] = []

    def bad(msg: str) -> None:
        problems.append(_err("malformed_calibration", path, msg))

    if not isinstance(data, Mapping):
        bad("calibration must be a JSON object with 'world_2_cam' and 'intrinsics'")
        return calib, problems
    w2c = data.get("world_2_cam")
    intr = data.get("intrinsics")
    sizes = data.get("image_size") or {}
    if not isinstance(w2c, Mapping) or not w2c:
        bad("'world_2_cam' is missing or is not a mapping of camera serials to 4x4 matrices")
        w2c = {}
    if not isinstance(sizes, Mapping):
        bad("'image_size' must map camera serials to [width, height]")
        sizes = {}
    calib.ok = bool(w2c)
    calib.declared = {str(s) for s in w2c}
    per_camera_K = intr if isinstance(intr, Mapping) else None
    shared_K = None
    if intr is None:
        bad("'intrinsics' is missing (a 3x3 matrix, or one per camera serial)")
    elif per_camera_K is None:
        shared_K, why = _check_matrix(intr, (3, 3))
        if why:
            bad(f"'intrinsics' {why}")
    for serial, T in w2c.items():
        serial = str(serial)
        ok = True
        T, why = _check_matrix(T, (4, 4))
        if why:
            bad(f"world_2_cam of camera {serial} {why}")
            ok = False
        else:
            R = T[:3, :3]
            if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0:
                err = np.abs(R @ R.T - np.eye(3)).max()
                bad(
                    f"world_2_cam of camera {serial}: rotation is not a proper rotation "
                    f"(max |R R^T - I| = {err:.3g}, det = {np.linalg.det(R):.3g})"
                )
                ok = False
            if not np.allclose(T[3], [0, 0, 0, 1]):
                bad(
                    f"world_2_cam of camera {serial}: last row is {T[3].tolist()}, "
                    "expected [0, 0, 0, 1]"
                )
                ok = False
        K = shared_K
        if per_camera_K is not None:
            if serial not in per_camera_K:
                bad(f"camera {serial} has no intrinsics")
            else:
                K, why = _check_matrix(per_camera_K[serial], (3, 3))
                if why:
                    bad(f"intrinsics of camera {serial} {why}")
        if K is None:
            ok = False
        else:
            if K[0, 0] <= 0 or K[1, 1] <= 0:
                bad(
                    f"intrinsics of camera {serial} have a non-positive focal length "
                    f"(fx={K[0, 0]:g}, fy={K[1, 1]:g})"
                )
                ok = False
            if not np.allclose(K[2], [0, 0, 1]):
                bad(
                    f"intrinsics of camera {serial}: last row is {K[2].tolist()}, "
                    "expected [0, 0, 1]"
                )
                ok = False
        wh = (0, 0)
        if serial in sizes:
            s = sizes[serial]
            if (
                not isinstance(s, (list, tuple))
                or len(s) != 2
                or not all(
                    isinstance(v, (int, float))
                    and not isinstance(v, bool)
                    and v > 0
                    and float(v).is_integer()
                    for v in s
                )
            ):
                bad(f"image_size of camera {serial} must be [width, height] in pixels, got {s!r}")
                ok = False
            else:
                wh = (int(s[0]), int(s[1]))
                calib.sizes[serial] = wh
        if ok:
            calib.cameras[serial] = Camera(serial, K, T, wh[0], wh[1])
    return calib, problems


@dataclass
class _Scan:
    frames: list[int]
    images: dict[str, dict[int, Path]]  # serial -> frame -> file
    maps: dict[str, dict[str, dict[int, Path]]]  # map name -> serial -> frame -> file


def _scan_sequence(seq_dir: Path) -> _Scan:
    frames = _frame_ids(seq_dir)
    images: dict[str, dict[int, Path]] = defaultdict(dict)
    maps: dict[str, dict[str, dict[int, Path]]] = {k: defaultdict(dict) for k in MAP_LAYOUT}
    map_res = {k: re.compile(rx) for k, (_, rx) in MAP_LAYOUT.items()}
    for t in frames:
        fdir = seq_dir / "timesteps" / _frame_name(t)
        folders = [("images", None)] + [(sub, name) for name, (sub, _) in MAP_LAYOUT.items()]
        for sub, name in folders:
            d = fdir / sub
            if not d.is_dir():
                continue
            rx = _IMAGE_RE if name is None else map_res[name]
            with os.scandir(d) as it:
                for entry in it:
                    m = rx.fullmatch(entry.name)
                    if m and entry.is_file():
                        target = images if name is None else maps[name]
                        target[m.group(1)][t] = Path(entry.path)
    return _Scan(frames, dict(images), {k: dict(v) for k, v in maps.items()})


def _others(counts: Mapping[str, int], serial: str) -> str:
    rest = Counter(n for s, n in counts.items() if s != serial)
    n_other = sum(rest.values())
    if not n_other:
        return "no other camera has images"
    if len(rest) == 1:
        ((n, _),) = rest.items()
        return f"the other {_plural(n_other, 'camera')} {'has' if n_other == 1 else 'have'} {n}"
    parts = ", ".join(f"{k} {'has' if k == 1 else 'have'} {n}" for n, k in rest.most_common())
    return f"of the other {n_other} cameras {parts}"


def _size_str(wh: tuple[int, int]) -> str:
    return f"{wh[0]}x{wh[1]}"


def _check_frames(
    seq_dir: Path, scan: _Scan, serials: list[str], calib: _Calibration
) -> list[Problem]:
    """Missing cameras, frame-count mismatches, empty frames and unknown cameras."""
    problems: list[Problem] = []
    timesteps = seq_dir / "timesteps"
    nonempty = sorted({t for per in scan.images.values() for t in per})
    nonempty_set = set(nonempty)
    empty = [t for t in scan.frames if t not in nonempty_set]
    if empty and nonempty:
        problems.append(
            _err(
                "empty_frame",
                timesteps / _frame_name(empty[0]) / "images",
                f"{len(empty)} of {len(scan.frames)} frame folders hold no "
                f"camera image: {_list_frames(empty)}",
            )
        )
    if not nonempty:
        problems.append(
            _err(
                "no_frames",
                timesteps,
                f"none of the {len(scan.frames)} frame folders holds an image "
                "(expected images/cam_<serial>.png)",
            )
        )
        return problems
    counts = {s: len(scan.images.get(s, {})) for s in serials}
    for serial in serials:
        have = scan.images.get(serial, {})
        missing = [t for t in nonempty if t not in have]
        if not missing:
            continue
        if not have:
            problems.append(
                _err(
                    "missing_camera",
                    timesteps,
                    f"camera {serial} is calibrated but has no image in any of the "
                    f"{len(nonempty)} frames",
                )
            )
            continue
        present = sorted(have)
        idx = {t: i for i, t in enumerate(nonempty)}
        lo, hi = idx[present[0]], idx[present[-1]]
        contiguous = hi - lo + 1 == len(present)
        if contiguous:  # starts late and/or stops early: a count mismatch
            where = []
            if lo > 0:
                where.append(f"starts at {_frame_name(present[0])}")
            if hi < len(nonempty) - 1:
                where.append(f"stops after {_frame_name(present[-1])}")
            problems.append(
                _err(
                    "frame_count_mismatch",
                    timesteps,
                    f"camera {serial} has {counts[serial]} frames, {_others(counts, serial)} "
                    f"(it {' and '.join(where)})",
                )
            )
        else:
            ext = next(iter(have.values())).suffix
            first = timesteps / _frame_name(missing[0]) / "images" / f"cam_{serial}{ext}"
            problems.append(
                _err(
                    "missing_camera",
                    first,
                    f"camera {serial} has no image in {len(missing)} of {len(nonempty)} frames: "
                    f"{_list_frames(missing)}",
                )
            )
    if calib.ok:
        for serial in sorted(set(scan.images) - calib.declared):
            per = scan.images[serial]
            first = per[min(per)]
            problems.append(
                _err(
                    "unknown_camera",
                    first,
                    f"camera {serial} has images in {_plural(len(per), 'frame')} but is not in "
                    f"the calibration ({calib.path.name})",
                )
            )
    return problems


def _mode(values: Iterable[Any]) -> Any:
    return Counter(values).most_common(1)[0][0]


_Size = tuple[int, int]


def _check_images(
    seq_dir: Path,
    scan: _Scan,
    serials: list[str],
    calib: _Calibration,
    decode: bool,
    workers: int | None,
) -> tuple[list[Problem], dict[str, _Size], dict[tuple[str, int], _Size]]:
    """Decode every image and map; report unreadable files and size disagreements.

    Sizes and maps are checked for ``serials`` only (unknown cameras are reported elsewhere).
    Returns the problems, each camera's (most common) image size, and each image's size.
    """
    known = set(serials)
    problems: list[Problem] = []
    jobs: list[tuple[str, str, int, Path]] = [
        ("images", s, t, p) for s, per in scan.images.items() for t, p in per.items()
    ]
    for name, per_serial in scan.maps.items():
        jobs += [(name, s, t, p) for s, per in per_serial.items() for t, p in per.items()]
    results = _thread_map(lambda job: _inspect_image(job[3], decode), jobs, workers)
    info: dict[tuple[str, str, int], tuple[int, int, int, str]] = {}
    for (name, s, t, p), res in zip(jobs, results, strict=True):
        if isinstance(res, str):
            what = "image" if name == "images" else f"{name} map"
            problems.append(
                _err(
                    "unreadable_image",
                    p,
                    f"{what} of camera {s}, {_frame_name(t)} is unreadable: {res}",
                )
            )
        else:
            info[(name, s, t)] = res
    timesteps = seq_dir / "timesteps"
    # Sizes within each camera, across cameras, against the calibration.
    image_size: dict[tuple[str, int], tuple[int, int]] = {
        (s, t): v[:2] for (name, s, t), v in info.items() if name == "images"
    }
    cam_size: dict[str, tuple[int, int]] = {}
    for serial in sorted(known & set(scan.images)):
        sizes = {t: wh for (s, t), wh in image_size.items() if s == serial}
        if not sizes:
            continue
        mode = _mode(sizes.values())
        cam_size[serial] = mode
        odd = sorted(t for t, wh in sizes.items() if wh != mode)
        if odd:
            problems.append(
                _err(
                    "image_size_mismatch",
                    scan.images[serial][odd[0]],
                    f"camera {serial}: {len(odd)} of {len(sizes)} images differ from its usual "
                    f"{_size_str(mode)} (e.g. {_size_str(sizes[odd[0]])}): {_list_frames(odd)}",
                )
            )
    if cam_size:
        common = _mode(cam_size.values())
        n_common = sum(1 for wh in cam_size.values() if wh == common)
        for serial, wh in sorted(cam_size.items()):
            if wh != common and n_common > 1:
                problems.append(
                    _err(
                        "image_size_mismatch",
                        timesteps,
                        f"camera {serial} images are {_size_str(wh)}, "
                        f"{_plural(n_common, 'other camera')}' are {_size_str(common)}",
                    )
                )
    by_pair: dict[tuple[tuple[int, int], tuple[int, int]], list[str]] = defaultdict(list)
    for serial, wh in sorted(cam_size.items()):
        cal = calib.sizes.get(serial)
        if cal and cal != wh:
            by_pair[(wh, cal)].append(serial)
    for (wh, cal), group in by_pair.items():
        hint = ""
        fx, fy = cal[0] / wh[0], cal[1] / wh[1]
        if abs(fx - fy) < 1e-6 and fx != 1:
            hint = f" (images rescaled by 1/{fx:g}? scale the intrinsics and image_size)"
        who = f"camera {group[0]}" if len(group) == 1 else f"cameras {', '.join(group)}"
        problems.append(
            _err(
                "image_size_mismatch",
                calib.path,
                f"{who} images are {_size_str(wh)} but the calibration says {_size_str(cal)}{hint}",
            )
        )
    # Per-frame maps: present for every image once a sequence has any, same size, right type.
    for name, per_serial in scan.maps.items():
        if not per_serial:
            continue
        folder = MAP_LAYOUT[name][0]
        for serial in sorted(known & set(scan.images)):
            have = per_serial.get(serial, {})
            missing = sorted(t for t in scan.images[serial] if t not in have)
            if missing:
                problems.append(
                    _err(
                        "missing_mask",
                        timesteps / _frame_name(missing[0]) / folder,
                        f"{name} map of camera {serial} is missing in {len(missing)} of "
                        f"{len(scan.images[serial])} frames: {_list_frames(missing)}",
                    )
                )
            wrong: list[int] = []
            wrong_size: dict[int, tuple[int, int]] = {}
            bad_depth: list[int] = []
            for t in sorted(have):
                v = info.get((name, serial, t))
                ref = image_size.get((serial, t), cam_size.get(serial))
                if v is None or ref is None:
                    continue
                if v[:2] != ref:
                    wrong.append(t)
                    wrong_size[t] = v[:2]
                if name == "depth" and decode and (v[2] != 1 or v[3] != "uint16"):
                    bad_depth.append(t)
            if wrong:
                ref = image_size.get((serial, wrong[0]), cam_size.get(serial))
                problems.append(
                    _err(
                        "mask_size_mismatch",
                        have[wrong[0]],
                        f"{name} map of camera {serial} is {_size_str(wrong_size[wrong[0]])} but "
                        f"its image is {_size_str(ref)} ({_plural(len(wrong), 'frame')}: "
                        f"{_list_frames(wrong)})",
                    )
                )
            if bad_depth:
                problems.append(
                    _err(
                        "malformed_depth",
                        have[bad_depth[0]],
                        f"depth maps of camera {serial} must be single-channel 16-bit PNGs "
                        f"({len(bad_depth)} frames are not): {_list_frames(bad_depth)}",
                    )
                )
    return problems, cam_size, image_size


def _check_landmarks(
    seq_dir: Path, serials: list[str], n_frames: int, cam_size: Mapping[str, tuple[int, int]]
) -> list[Problem]:
    problems: list[Problem] = []
    lmk_dir = seq_dir / "annotations" / "landmarks2D"
    if not lmk_dir.is_dir():
        return [
            _err(
                "missing_landmarks",
                lmk_dir,
                "no 2D landmarks (expected annotations/landmarks2D/cam_<serial>.npy)",
            )
        ]
    for serial in serials:
        path = lmk_dir / f"cam_{serial}.npy"
        if not path.is_file():
            problems.append(_err("missing_landmarks", path, f"camera {serial} has no landmarks"))
            continue
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            problems.append(
                _err(
                    "unreadable_landmarks",
                    path,
                    f"landmarks of camera {serial} do not load ({exc})",
                )
            )
            continue
        if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.number):
            problems.append(
                _err(
                    "unreadable_landmarks",
                    path,
                    f"landmarks of camera {serial} are not a numeric .npy array",
                )
            )
            continue
        n = n_frames
        if arr.ndim != 3 or arr.shape[1:] != (N_LANDMARKS, 3):
            problems.append(
                _err(
                    "landmarks_shape",
                    path,
                    f"landmarks of camera {serial} have shape {arr.shape}, expected ({n}, 68, 3)",
                )
            )
            continue
        if n and arr.shape[0] != n:
            problems.append(
                _err(
                    "landmarks_shape",
                    path,
                    f"landmarks of camera {serial} have {arr.shape[0]} frames, "
                    f"the sequence has {n}",
                )
            )
        conf = arr[..., 2].astype(np.float64)
        xy = arr[..., :2].astype(np.float64)
        if not np.all(np.isfinite(conf)) or conf.min() < 0 or conf.max() > 1:
            problems.append(
                _err(
                    "malformed_landmarks",
                    path,
                    f"landmark confidences of camera {serial} must be finite and in [0, 1] "
                    f"(range {np.nanmin(conf):g}..{np.nanmax(conf):g})",
                )
            )
            continue
        confident = conf > 0
        if np.any(confident & ~np.all(np.isfinite(xy), axis=-1)):
            problems.append(
                _err(
                    "malformed_landmarks",
                    path,
                    f"landmarks of camera {serial} have NaN/inf coordinates with "
                    "non-zero confidence",
                )
            )
            continue
        wh = cam_size.get(serial)
        if wh and confident.any():
            pts = xy[confident]
            outside = (
                (pts[:, 0] < -0.5)
                | (pts[:, 0] > wh[0] - 0.5)
                | (pts[:, 1] < -0.5)
                | (pts[:, 1] > wh[1] - 0.5)
            )
            if outside.mean() > 0.05:
                problems.append(
                    _warn(
                        "landmarks_out_of_image",
                        path,
                        f"{100 * outside.mean():.0f}% of confident landmarks of camera "
                        f"{serial} lie outside its {_size_str(wh)} image (x up to "
                        f"{pts[:, 0].max():.0f}, y up to {pts[:, 1].max():.0f}): computed at "
                        "another resolution?",
                    )
                )
    return problems


def _check_audio(seq_dir: Path, video_duration: float | None) -> list[Problem]:
    path = find_audio(seq_dir)
    if path is None:
        return [
            _err(
                "missing_audio",
                seq_dir / "audio",
                f"no audio file ({AUDIO_STEM}.wav, .flac or .ogg)",
            )
        ]
    try:
        audio, sr = read_audio_file(path)
    except CaptureError as exc:
        return [_err("unreadable_audio", path, str(exc).removeprefix(f"{path}: "))]
    if audio.size == 0:
        return [_err("silent_audio", path, "audio file holds no samples")]
    problems = []
    peak = float(np.max(np.abs(audio)))
    if not np.isfinite(peak):
        return [_err("unreadable_audio", path, "audio holds NaN or infinite samples")]
    if peak < SILENCE_PEAK:
        level = "all zero" if peak == 0 else f"peak {20 * math.log10(peak):.0f} dBFS"
        problems.append(
            _err(
                "silent_audio",
                path,
                f"audio is digitally silent ({level}, {audio.size / sr:.2f} s)",
            )
        )
    clipped = float(np.mean(np.abs(audio) >= CLIP_LEVEL))
    if clipped > CLIP_FRACTION:
        problems.append(
            _warn(
                "clipped_audio",
                path,
                f"{100 * clipped:.2f}% of samples are at full scale (clipped)",
            )
        )
    duration = audio.size / sr
    if video_duration and duration < 0.9 * video_duration - 0.1:
        problems.append(
            _warn(
                "audio_duration_mismatch",
                path,
                f"audio lasts {duration:.2f} s, the video {video_duration:.2f} s",
            )
        )
    return problems


def _check_sequence(
    seq_dir: Path, calib: _Calibration, fps: float, decode: bool, workers: int | None
) -> list[Problem]:
    problems: list[Problem] = []
    seq_fps, p = _read_fps(seq_dir, fps)
    if p:
        problems.append(p)
    scan = _scan_sequence(seq_dir)
    if not scan.frames:
        problems.append(
            _err(
                "no_frames",
                seq_dir / "timesteps",
                "no frame folders (expected timesteps/frame_<t:05d>/images/)",
            )
        )
        problems += _check_audio(seq_dir, None)
        return problems
    serials = sorted(calib.declared) if calib.ok else sorted(scan.images)
    problems += _check_frames(seq_dir, scan, serials, calib)
    img_problems, cam_size, _ = _check_images(seq_dir, scan, serials, calib, decode, workers)
    problems += img_problems
    n_frames = {s: len(scan.images.get(s, {})) for s in serials}
    n_video = max(n_frames.values(), default=0)
    lmk_serials = [s for s in serials if n_frames.get(s)]
    problems += _check_landmarks(seq_dir, lmk_serials, len(scan.frames), cam_size)
    problems += _check_audio(seq_dir, n_video / seq_fps if n_video else None)
    return problems


def _subdirs(path: Path) -> list[str]:
    return sorted(d.name for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))


def validate_capture(
    root: PathLike,
    subject: str | None = None,
    sequence: str | None = None,
    fps: float = 25.0,
    decode: bool = True,
    workers: int | None = None,
) -> list[Problem]:
    """Check a capture tree and return every problem found (an empty list when it is usable).

    Checks, per subject: the calibration (readable JSON, 4x4 proper-rotation extrinsics, 3x3
    intrinsics with positive focal lengths for every camera, image sizes); per sequence: frame
    folders, every calibrated camera in every frame, cameras' frame counts, every image
    decoding (``decode=False``: header and end-of-file marker only, much faster), image sizes
    against each other and the calibration, cameras not in the calibration, alpha /
    segmentation / depth maps (present for all images once present for some, same size as
    their image), landmark arrays (T, 68, 3) with T the camera's frame count, and the audio
    (present, decodable, not silent; clipping and a too-short recording are warnings).

    Args:
        root: the capture root (holding subject folders).
        subject, sequence: restrict to one subject / one sequence of it.
        fps: frame rate assumed where a sequence has no sequence.json.
        decode: decode every image and map fully.
        workers: decoding threads (default up to 8).
    """
    root = Path(root)
    if not root.is_dir():
        return [_err("no_subjects", root, "capture root does not exist")]
    if subject is not None:
        if not (root / subject).is_dir():
            return [_err("missing_subject", root / subject, f"subject {subject} does not exist")]
        subjects = [subject]
    else:
        subjects = [
            s
            for s in _subdirs(root)
            if (root / s / CALIBRATION_FILE).exists() or (root / s / "sequences").is_dir()
        ]
        if not subjects:
            return [
                _err(
                    "no_subjects",
                    root,
                    "no subject folder (expected "
                    "<subject>/camera_params.json and <subject>/sequences/)",
                )
            ]
    problems: list[Problem] = []
    for subj in subjects:
        calib, calib_problems = _check_calibration(root / subj / CALIBRATION_FILE)
        problems += calib_problems
        seq_root = root / subj / "sequences"
        if sequence is not None:
            if not (seq_root / sequence).is_dir():
                problems.append(
                    _err(
                        "missing_sequence",
                        seq_root / sequence,
                        f"sequence {sequence} of subject {subj} does not exist",
                    )
                )
                continue
            sequences = [sequence]
        else:
            sequences = _subdirs(seq_root) if seq_root.is_dir() else []
            if not sequences:
                problems.append(_err("no_sequences", seq_root, f"subject {subj} has no sequences"))
        for seq in sequences:
            problems += _check_sequence(seq_root / seq, calib, fps, decode, workers)
    return problems


def validate_main(
    root: PathLike,
    subject: str | None = None,
    sequence: str | None = None,
    fps: float = 25.0,
    decode: bool = True,
    workers: int | None = None,
) -> int:
    """Validate, print the report, and return an exit code (0: no errors, 1: errors)."""
    problems = validate_capture(root, subject, sequence, fps=fps, decode=decode, workers=workers)
    where = Path(root) / (subject or "") / ("sequences/" + sequence if sequence else "")
    if problems:
        print(f"{where}: " + format_problems(problems, root=root))
    else:
        print(f"{where}: capture OK")
    return 1 if errors_of(problems) else 0
