"""The capture layouts talkhead reads, behind one interface: talkhead's own tree and the three
published NeRSemble layouts, and :func:`detect_layout`.

Layouts (``<p>`` is a subject folder, ``<SEQ>`` a sequence name; facts from the NeRSemble
tooling, github.com/tobias-kirschstein/nersemble-data and nersemble-benchmark, and the NeRSemble
v1 release notes)::

    talkhead             <p>/camera_params.json
                         <p>/sequences/<SEQ>/timesteps/frame_<t:05d>/images/cam_<serial>.png
                         (the rest: :mod:`talkhead.capture.layout`)
    nersemble_v1         <p>/camera_params.json                      (one shared 3x3 intrinsics)
                         <p>/sequences/<SEQ>/[timesteps/]frame_<t:05d>/
                             images-2x[-73fps]/cam_<serial>.png|.jpg
                             alpha_map[-73fps]/cam_<serial>.png
                             colmap[-73fps]/depth_maps_compressed/cam_<serial>.png
                         <p>/annotations/<SEQ>/color_correction/<serial>.npy   (3x3 or 3x4)
                         (also <p>/sequences/<SEQ>/annotations/color_correction/<serial>.npy)
    nersemble_v2         <p>/calibration/camera_params.json          (one shared 3x3 intrinsics)
                         <p>/calibration/color_calibration.json      {serial: Cheung-2004 CCM}
                         <p>/sequences/<SEQ>/images/cam_<serial>.mp4
                         <p>/sequences/BACKGROUND/image_<serial>.jpg
    nersemble_benchmark  <p>/calibration/camera_params.json          ({serial: 3x3} intrinsics)
                         <p>/sequences/<SEQ>/images/cam_<serial>.mp4
                         <p>/sequences/<SEQ>/alpha_maps/cam_<serial>.mp4   (alpha in channel 0)
                         <p>/sequences/<SEQ>/pointclouds/frame_<t:05d>.pcd
                         <p>/sequences/<SEQ>/tracking/flame2023_tracking[_v2].npz

v1's 16-bit depth PNGs reserve 0 for "masked" and store depth as (q - 1) x 2 m / 65534
(:func:`talkhead.capture.depth_png.decode_depth`). v1's ``color_correction`` matrices are
affine maps of RGB in [0, 1] (``rgb @ A[:, :3].T + A[:, 3]``); v2's are Cheung-2004 matrices
applied in linear RGB (:mod:`talkhead.preprocess.colour` applies both).

:func:`open_source` reads one sequence of any layout into a :class:`SourceSequence` (where its
pieces are, its cameras, the colour matrices); talkhead's tree is opened as a
:class:`~talkhead.capture.sequence.CaptureSequence` (:mod:`talkhead.capture.sequence`); video
layouts are ingested into it (:func:`talkhead.preprocess.ingest.ingest_sequence`); v1's files
are read in place through the paths of a :class:`SourceSequence` (:func:`read_v1_depth`,
:func:`read_v1_colour_matrix`) or ingested.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import CaptureError
from ..geometry.cameras import Camera
from ..io import PathLike, load_json
from . import layout
from .calibration import read_camera_params
from .depth_png import decode_depth

log = logging.getLogger(__name__)

#: Values of ``capture.layout`` besides ``auto``.
LAYOUTS = ("talkhead", "nersemble_v1", "nersemble_v2", "nersemble_benchmark")
#: Layouts whose images are videos (ingested, never read in place).
VIDEO_LAYOUTS = ("nersemble_v2", "nersemble_benchmark")

CALIBRATION_DIR = "calibration"
COLOUR_CALIBRATION_FILE = "color_calibration.json"
V2_BACKGROUND_SEQUENCE = "BACKGROUND"
V2_BACKGROUND_FILE = "image_{serial}.jpg"
VIDEO_DIR = "images"
ALPHA_VIDEO_DIR = "alpha_maps"
VIDEO_FILE = "cam_{serial}.mp4"
POINTCLOUD_DIR = "pointclouds"
TRACKING_DIR = "tracking"
TRACKING_FILES = ("flame2023_tracking_v2.npz", "flame2023_tracking.npz")
#: v1 folders under a frame folder, without their optional ``-73fps`` suffix.
V1_IMAGES = "images-2x"
V1_ALPHA = "alpha_map"
V1_DEPTH = "colmap/depth_maps_compressed"
V1_SUFFIXES = ("", "-73fps")
V1_COLOUR_DIR = "color_correction"
V1_MAX_DEPTH = 2.0
"""Depth (metres) of v1's largest depth bin, 65535."""
#: Keys of a benchmark FLAME tracking file (nersemble-benchmark's ``FlameTracking``).
TRACKING_KEYS = ("shape", "expression", "rotation", "translation", "jaw", "frames", "scale")

_SERIAL_RE = re.compile(r"cam_(.+)\.mp4")


# --------------------------------------------------------------------------------------------
# Paths of the published layouts (pure)
# --------------------------------------------------------------------------------------------


def kit_calibration_path(subject_dir: PathLike) -> Path:
    """``<p>/calibration/camera_params.json`` (v2 and the benchmark kit)."""
    return Path(subject_dir) / CALIBRATION_DIR / layout.CALIBRATION_FILE


def colour_calibration_path(subject_dir: PathLike) -> Path:
    """``<p>/calibration/color_calibration.json`` (v2)."""
    return Path(subject_dir) / CALIBRATION_DIR / COLOUR_CALIBRATION_FILE


def video_path(sequence_dir: PathLike, serial: str) -> Path:
    """``<SEQ>/images/cam_<serial>.mp4`` (v2 and the benchmark kit)."""
    return Path(sequence_dir) / VIDEO_DIR / VIDEO_FILE.format(serial=serial)


def alpha_video_path(sequence_dir: PathLike, serial: str) -> Path:
    """``<SEQ>/alpha_maps/cam_<serial>.mp4`` (the benchmark kit)."""
    return Path(sequence_dir) / ALPHA_VIDEO_DIR / VIDEO_FILE.format(serial=serial)


def v2_background_path(subject_dir: PathLike, serial: str) -> Path:
    """``<p>/sequences/BACKGROUND/image_<serial>.jpg`` (v2)."""
    return (
        layout.sequences_dir(subject_dir)
        / V2_BACKGROUND_SEQUENCE
        / V2_BACKGROUND_FILE.format(serial=serial)
    )


def pointcloud_path(sequence_dir: PathLike, t: int) -> Path:
    """``<SEQ>/pointclouds/frame_<t:05d>.pcd`` (the benchmark kit)."""
    return Path(sequence_dir) / POINTCLOUD_DIR / f"{layout.frame_name(t)}.pcd"


def tracking_path(sequence_dir: PathLike, version: int = 2) -> Path:
    """``<SEQ>/tracking/flame2023_tracking_v2.npz`` (version 2) or ``flame2023_tracking.npz``."""
    return Path(sequence_dir) / TRACKING_DIR / TRACKING_FILES[0 if version == 2 else 1]


def v1_frames_dir(sequence_dir: PathLike) -> Path:
    """The folder holding v1's ``frame_<t>`` folders: ``<SEQ>/timesteps`` when it exists, else
    ``<SEQ>`` itself (both spellings are in circulation)."""
    ts = layout.timesteps_dir(sequence_dir)
    return ts if ts.is_dir() else Path(sequence_dir)


def v1_frame_dir(sequence_dir: PathLike, t: int, timesteps: bool = True) -> Path:
    """``<SEQ>/timesteps/frame_<t:05d>`` (``timesteps=False``: ``<SEQ>/frame_<t:05d>``)."""
    base = layout.timesteps_dir(sequence_dir) if timesteps else Path(sequence_dir)
    return base / layout.frame_name(t)


def v1_image_path(frame_dir: PathLike, serial: str, suffix: str = "", ext: str = ".png") -> Path:
    """``frame_<t>/images-2x<suffix>/cam_<serial><ext>``."""
    return Path(frame_dir) / f"{V1_IMAGES}{suffix}" / f"cam_{serial}{ext}"


def v1_alpha_path(frame_dir: PathLike, serial: str, suffix: str = "") -> Path:
    """``frame_<t>/alpha_map<suffix>/cam_<serial>.png``."""
    return Path(frame_dir) / f"{V1_ALPHA}{suffix}" / f"cam_{serial}.png"


def v1_depth_path(frame_dir: PathLike, serial: str, suffix: str = "") -> Path:
    """``frame_<t>/colmap<suffix>/depth_maps_compressed/cam_<serial>.png``."""
    colmap, maps = V1_DEPTH.split("/")
    return Path(frame_dir) / f"{colmap}{suffix}" / maps / f"cam_{serial}.png"


def v1_colour_path(subject_dir: PathLike, sequence: str, serial: str) -> Path:
    """``<p>/annotations/<SEQ>/color_correction/<serial>.npy``."""
    return Path(subject_dir) / "annotations" / sequence / V1_COLOUR_DIR / f"{serial}.npy"


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------


def _has_videos(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("cam_*.mp4"))


def _v1_suffix(frame_dir: Path) -> str | None:
    """The ``-73fps`` suffix variant a v1 frame folder uses ("" preferred), None if not v1."""
    for suffix in V1_SUFFIXES:
        if (frame_dir / f"{V1_IMAGES}{suffix}").is_dir():
            return suffix
    return None


def _first_frame_dir(folder: Path) -> Path | None:
    if not folder.is_dir():
        return None
    frames = sorted(
        p for p in folder.iterdir() if p.is_dir() and layout.parse_frame_name(p.name) is not None
    )
    return frames[0] if frames else None


def _per_serial_intrinsics(calibration: Path) -> bool:
    try:
        data = load_json(calibration)
    except (OSError, ValueError):
        return False
    return isinstance(data, Mapping) and isinstance(data.get("intrinsics"), Mapping)


def detect_layout(root: PathLike, subject: str, sequence: str) -> str:
    """Which layout (one of :data:`LAYOUTS`) a sequence is in, judged on its folders.

    talkhead: ``timesteps/frame_*/images/``; v1: ``[timesteps/]frame_*/images-2x[-73fps]/``;
    the benchmark kit: ``images/cam_*.mp4`` with ``alpha_maps/``, ``pointclouds/`` or
    ``tracking/`` beside it, or per-serial intrinsics; v2: ``images/cam_*.mp4`` otherwise.
    Logs the layout found.

    Raises:
        CaptureError: naming the sequence folder when no layout matches.
    """
    subj = layout.subject_dir(root, subject)
    seq_dir = layout.sequence_dir(root, subject, sequence)
    if not seq_dir.is_dir():
        raise CaptureError(f"{seq_dir}: sequence folder is missing")
    found = None
    first = _first_frame_dir(layout.timesteps_dir(seq_dir))
    if first is not None and (first / layout.IMAGES_DIR).is_dir():
        found = "talkhead"
    elif first is not None and _v1_suffix(first) is not None:
        found = "nersemble_v1"
    elif (first := _first_frame_dir(seq_dir)) is not None and _v1_suffix(first) is not None:
        found = "nersemble_v1"
    elif _has_videos(seq_dir / VIDEO_DIR):
        bench_dirs = (ALPHA_VIDEO_DIR, POINTCLOUD_DIR, TRACKING_DIR)
        if any((seq_dir / d).is_dir() for d in bench_dirs) or _per_serial_intrinsics(
            kit_calibration_path(subj)
        ):
            found = "nersemble_benchmark"
        else:
            found = "nersemble_v2"
    if found is None:
        raise CaptureError(
            f"{seq_dir}: no known capture layout (expected timesteps/frame_*/images/ (talkhead), "
            "[timesteps/]frame_*/images-2x/ (NeRSemble v1) or images/cam_*.mp4 (NeRSemble v2 "
            "or benchmark kit)); set capture.layout if the folders are there"
        )
    log.info("%s: capture layout %s", seq_dir, found)
    return found


# --------------------------------------------------------------------------------------------
# One sequence of any layout
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColourMatrix:
    """One camera's colour calibration.

    Attributes:
        kind: ``"cheung2004"`` (v2: a (3, terms) matrix applied to Cheung-2004 augmented linear
            RGB) or ``"affine"`` (v1: (3, 3) or (3, 4) applied to RGB in [0, 1]).
        matrix: the matrix as stored.
        source: the file it came from.
    """

    kind: str
    matrix: np.ndarray
    source: Path


@dataclass(frozen=True, eq=False)
class SourceSequence:
    """One sequence of a capture in any layout: where its pieces are, and its cameras.

    Attributes:
        layout: one of :data:`LAYOUTS`.
        root, subject, sequence: the capture root and the folder names.
        calibration_path: the calibration file.
        cameras: ``{serial: Camera}`` (intrinsics, distortion and image size as calibrated).
        serials: sorted serials of the cameras that have images.
        frame_ids: frame ids of a frame layout (talkhead, v1), ascending; () for videos.
        colour: ``{serial: ColourMatrix}`` where the capture ships colour calibration.
        v1_suffix: the v1 folder variant in use ("" or "-73fps").
        v1_timesteps: whether v1's frame folders sit under ``timesteps/``.
        image_ext: extension of a frame layout's images.
    """

    layout: str
    root: Path
    subject: str
    sequence: str
    calibration_path: Path
    cameras: dict[str, Camera] = field(repr=False)
    serials: tuple[str, ...]
    frame_ids: tuple[int, ...] = field(default=(), repr=False)
    colour: dict[str, ColourMatrix] = field(default_factory=dict, repr=False)
    v1_suffix: str = ""
    v1_timesteps: bool = True
    image_ext: str = ".png"

    @property
    def subject_dir(self) -> Path:
        return layout.subject_dir(self.root, self.subject)

    @property
    def sequence_dir(self) -> Path:
        return layout.sequence_dir(self.root, self.subject, self.sequence)

    @property
    def is_video(self) -> bool:
        return self.layout in VIDEO_LAYOUTS

    def video_path(self, serial: str) -> Path:
        """The camera's image video (video layouts)."""
        return video_path(self.sequence_dir, serial)

    def alpha_video_path(self, serial: str) -> Path | None:
        """The camera's matte video (benchmark kit), None when the capture has none."""
        if self.layout != "nersemble_benchmark":
            return None
        p = alpha_video_path(self.sequence_dir, serial)
        return p if p.is_file() else None

    def background_path(self, serial: str) -> Path | None:
        """The camera's background plate, None when the capture has none."""
        if self.layout == "nersemble_v2":
            p = v2_background_path(self.subject_dir, serial)
        elif self.layout == "talkhead":
            p = layout.background_path(self.sequence_dir, serial)
        else:
            return None
        return p if p.is_file() else None

    def frame_dir(self, t: int) -> Path:
        """The folder of frame id ``t`` (frame layouts)."""
        if self.layout == "nersemble_v1":
            return v1_frame_dir(self.sequence_dir, t, self.v1_timesteps)
        return layout.frame_dir(self.sequence_dir, t)

    def image_path(self, t: int, serial: str) -> Path:
        """The image of camera ``serial`` in frame ``t`` (frame layouts)."""
        if self.layout == "nersemble_v1":
            return v1_image_path(self.frame_dir(t), serial, self.v1_suffix, self.image_ext)
        return layout.image_path(self.sequence_dir, t, serial, self.image_ext)

    def alpha_path(self, t: int, serial: str) -> Path | None:
        """The matte of camera ``serial`` in frame ``t``, None when the capture has none."""
        if self.layout == "nersemble_v1":
            p = v1_alpha_path(self.frame_dir(t), serial, self.v1_suffix)
        elif self.layout == "talkhead":
            p = layout.alpha_path(self.sequence_dir, t, serial)
        else:
            return None
        return p if p.is_file() else None

    def depth_path(self, t: int, serial: str) -> Path | None:
        """The 16-bit depth PNG of camera ``serial`` in frame ``t``, None when absent."""
        if self.layout == "nersemble_v1":
            p = v1_depth_path(self.frame_dir(t), serial, self.v1_suffix)
        elif self.layout == "talkhead":
            p = layout.precomputed_depth_path(self.sequence_dir, t, serial)
        else:
            return None
        return p if p.is_file() else None

    def tracking_path(self) -> Path | None:
        """The benchmark kit's FLAME tracking (v2 preferred), None when absent."""
        if self.layout != "nersemble_benchmark":
            return None
        for version in (2, 1):
            p = tracking_path(self.sequence_dir, version)
            if p.is_file():
                return p
        return None


def _read_cameras(path: Path) -> dict[str, Camera]:
    try:
        return read_camera_params(path)
    except (TypeError, ValueError, AttributeError) as exc:
        raise CaptureError(f"{path}: malformed calibration ({exc})") from None


def read_v2_colour_calibration(path: PathLike) -> dict[str, ColourMatrix]:
    """v2's ``color_calibration.json``: ``{serial: (3, terms) Cheung-2004 matrix}``.

    Raises:
        CaptureError: naming the file when it is not JSON, or a matrix is not (3, 3|5|7|8|10|
            11|14|16|17|19|20|22) finite numbers.
    """
    path = Path(path)
    try:
        data = load_json(path)
    except (OSError, ValueError) as exc:
        raise CaptureError(f"{path}: colour calibration is not valid JSON ({exc})") from None
    if not isinstance(data, Mapping):
        raise CaptureError(f"{path}: colour calibration must map serials to 3xN matrices")
    out = {}
    for serial, m in data.items():
        try:
            m = np.asarray(m, dtype=np.float64)
        except (TypeError, ValueError):
            raise CaptureError(f"{path}: matrix of camera {serial} is not numeric") from None
        if m.ndim != 2 or m.shape[0] != 3 or m.shape[1] not in CHEUNG2004_TERMS:
            raise CaptureError(
                f"{path}: matrix of camera {serial} has shape {m.shape}, expected (3, N) with N "
                f"one of {CHEUNG2004_TERMS} (Cheung 2004)"
            )
        if not np.all(np.isfinite(m)):
            raise CaptureError(f"{path}: matrix of camera {serial} has NaN or infinite values")
        out[str(serial)] = ColourMatrix("cheung2004", m, path)
    return out


#: Term counts of Cheung et al. (2004)'s polynomial expansions (colour-science's
#: ``matrix_augmented_Cheung2004``).
CHEUNG2004_TERMS = (3, 5, 7, 8, 10, 11, 14, 16, 17, 19, 20, 22)


def read_v1_colour_matrix(path: PathLike) -> ColourMatrix:
    """One camera's v1 ``color_correction/<serial>.npy``: an affine (3, 3) or (3, 4) matrix.

    Raises:
        CaptureError: naming the file when it is unreadable, of another shape, or not finite.
    """
    path = Path(path)
    try:
        m = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise CaptureError(f"{path}: unreadable colour matrix ({exc})") from None
    if m.shape not in ((3, 3), (3, 4), (4, 4)) or not np.issubdtype(m.dtype, np.number):
        raise CaptureError(f"{path}: colour matrix has shape {m.shape}, expected (3, 3) or (3, 4)")
    m = np.asarray(m[:3], dtype=np.float64)
    if not np.all(np.isfinite(m)):
        raise CaptureError(f"{path}: colour matrix has NaN or infinite values")
    return ColourMatrix("affine", m, path)


def _v1_colour(subj: Path, seq_dir: Path, sequence: str, serials) -> dict[str, ColourMatrix]:
    out = {}
    for serial in serials:
        for p in (
            v1_colour_path(subj, sequence, serial),
            seq_dir / "annotations" / V1_COLOUR_DIR / f"{serial}.npy",
        ):
            if p.is_file():
                out[serial] = read_v1_colour_matrix(p)
                break
    return out


def _video_serials(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(m.group(1) for p in folder.iterdir() if (m := _SERIAL_RE.fullmatch(p.name)))


def _cameras_with_images(
    cameras: dict[str, Camera], have: list[str], where: Path, calib: Path
) -> tuple[str, ...]:
    """Serials of the calibration that have images; the sequence must have at least one."""
    serials = tuple(s for s in sorted(cameras) if s in have)
    missing = sorted(set(cameras) - set(serials))
    if missing:
        log.warning(
            "%s: no images of calibrated camera(s) %s; using the other %d",
            where,
            ", ".join(missing),
            len(serials),
        )
    extra = sorted(set(have) - set(cameras))
    if extra:
        log.warning("%s: camera(s) %s are not in %s; ignored", where, ", ".join(extra), calib)
    if not serials:
        raise CaptureError(f"{where}: no images of any camera in {calib}")
    return serials


def open_source(
    root: PathLike, subject: str, sequence: str, layout_name: str = "auto"
) -> SourceSequence:
    """Open one sequence of a capture in any layout (no image is decoded).

    Args:
        root: the capture root (the folder holding subject folders).
        subject, sequence: folder names (a NeRSemble participant folder is ``<p:03d>``).
        layout_name: one of :data:`LAYOUTS`, or ``"auto"`` (:func:`detect_layout`).

    Raises:
        CaptureError: naming the file or folder: no layout matches, the calibration or colour
            calibration is missing or malformed, no camera has images, no frames.
    """
    root = Path(root)
    if layout_name == "auto":
        layout_name = detect_layout(root, subject, sequence)
    if layout_name not in LAYOUTS:
        raise CaptureError(
            f"capture.layout: unknown layout {layout_name!r}; expected auto or one of {LAYOUTS}"
        )
    subj = layout.subject_dir(root, subject)
    seq_dir = layout.sequence_dir(root, subject, sequence)
    if not seq_dir.is_dir():
        raise CaptureError(f"{seq_dir}: sequence folder is missing")
    if layout_name in VIDEO_LAYOUTS:
        calib = kit_calibration_path(subj)
        if not calib.is_file() and layout.calibration_path(subj).is_file():
            calib = layout.calibration_path(subj)
    elif layout_name == "talkhead" and layout.sequence_calibration_file(seq_dir).is_file():
        calib = layout.sequence_calibration_file(seq_dir)  # an ingested sequence's own
    else:
        calib = layout.calibration_path(subj)
        if not calib.is_file() and kit_calibration_path(subj).is_file():
            calib = kit_calibration_path(subj)
    cameras = _read_cameras(calib)
    common = dict(
        root=root, subject=subject, sequence=sequence, calibration_path=calib, cameras=cameras
    )
    if layout_name in VIDEO_LAYOUTS:
        have = _video_serials(seq_dir / VIDEO_DIR)
        serials = _cameras_with_images(cameras, have, seq_dir / VIDEO_DIR, calib)
        colour = {}
        if layout_name == "nersemble_v2" and colour_calibration_path(subj).is_file():
            colour = read_v2_colour_calibration(colour_calibration_path(subj))
        return SourceSequence(layout=layout_name, serials=serials, colour=colour, **common)
    if layout_name == "talkhead":
        frames_dir, suffix, timesteps = layout.timesteps_dir(seq_dir), "", True
    else:
        frames_dir = v1_frames_dir(seq_dir)
        timesteps = frames_dir != seq_dir
        first = _first_frame_dir(frames_dir)
        suffix = _v1_suffix(first) if first is not None else None
        if suffix is None:
            raise CaptureError(f"{frames_dir}: no frame_<t>/{V1_IMAGES}[-73fps]/ folders")
    frame_ids = sorted(
        t
        for p in (frames_dir.iterdir() if frames_dir.is_dir() else ())
        if p.is_dir() and (t := layout.parse_frame_name(p.name)) is not None
    )
    if not frame_ids:
        raise CaptureError(f"{frames_dir}: no frame_<t> folders")
    src = SourceSequence(
        layout=layout_name,
        serials=(),
        frame_ids=tuple(frame_ids),
        v1_suffix=suffix,
        v1_timesteps=timesteps,
        **common,
    )
    first_dir = src.image_path(frame_ids[0], "x").parent
    have, exts = [], set()
    for p in first_dir.iterdir() if first_dir.is_dir() else ():
        m = layout.IMAGE_RE.fullmatch(p.name)
        if m:
            have.append(m.group(1))
            exts.add("." + m.group(2).lower())
    if len(exts) > 1:
        raise CaptureError(f"{first_dir}: images of several formats ({', '.join(sorted(exts))})")
    serials = _cameras_with_images(cameras, have, first_dir, calib)
    colour = _v1_colour(subj, seq_dir, sequence, serials) if layout_name == "nersemble_v1" else {}
    return SourceSequence(
        layout=layout_name,
        serials=serials,
        frame_ids=tuple(frame_ids),
        colour=colour,
        v1_suffix=suffix,
        v1_timesteps=timesteps,
        image_ext=exts.pop() if exts else ".png",
        **common,
    )


# --------------------------------------------------------------------------------------------
# Readers of the published layouts' own files
# --------------------------------------------------------------------------------------------


def read_v1_depth(path: PathLike, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """A v1 ``depth_maps_compressed`` PNG as (H, W) float32 metres, 0 = masked.

    Raises:
        CaptureError: naming the file when it is missing, unreadable, not one 16-bit channel or
            not of ``expected_size`` (width, height).
    """
    import cv2

    path = Path(path)
    q = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if path.is_file() else None
    if q is None:
        raise CaptureError(f"{path}: missing or unreadable depth PNG")
    if q.dtype != np.uint16 or q.ndim != 2:
        raise CaptureError(f"{path}: v1 depth must be one 16-bit channel, got {q.dtype} {q.shape}")
    if expected_size and expected_size[0] and q.shape != (expected_size[1], expected_size[0]):
        raise CaptureError(
            f"{path}: depth is {q.shape[1]}x{q.shape[0]}, the images are "
            f"{expected_size[0]}x{expected_size[1]}"
        )
    return decode_depth(q, V1_MAX_DEPTH)


def read_flame_tracking(path: PathLike) -> dict[str, np.ndarray]:
    """The benchmark kit's FLAME track (``flame2023_tracking[_v2].npz``): shape (1, 300),
    expression (T, 100), rotation / translation / jaw / neck (T, 3), eyes (T, 6), frames (T,),
    scale (1, 1) (nersemble-benchmark's ``FlameTracking``), as a dict of arrays.

    Raises:
        CaptureError: naming the file when it is unreadable or lacks one of
            :data:`TRACKING_KEYS`.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise CaptureError(f"{path}: unreadable FLAME tracking ({exc})") from None
    missing = [k for k in TRACKING_KEYS if k not in out]
    if missing:
        raise CaptureError(f"{path}: FLAME tracking lacks {', '.join(missing)}")
    return out
