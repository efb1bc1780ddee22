"""Where things are in a capture tree (Nersemble v1 layout, docs/formats.md): one set of path
functions shared by the synthetic studio (the writer) and the readers and validator.

Layout::

    <root>/<subject>/camera_params.json
    <root>/<subject>/sequences/<SEQ>/sequence.json                       optional {"fps": 25.0}
    <root>/<subject>/sequences/<SEQ>/timesteps/frame_<t:05d>/images/cam_<serial>.png (or .jpg)
    .../frame_<t:05d>/alpha_map/cam_<serial>.png                          optional matte
    .../frame_<t:05d>/facer_segmentation_masks/segmentation_cam_<serial>.png   optional labels
    .../frame_<t:05d>/colmap/depth_maps/cam_<serial>.png                  optional 16-bit depth
    <root>/<subject>/sequences/<SEQ>/annotations/landmarks2D/cam_<serial>.npy   (T, 68, 3)
    <root>/<subject>/sequences/<SEQ>/audio/audio_recording.wav            (or .flac/.ogg/.mp3)
    <root>/<subject>/sequences/<SEQ>/background/cam_<serial>.png          optional plates
    <root>/<subject>/sequences/<SEQ>/camera_params.json   calibration of an ingested sequence

An ingested sequence (:func:`talkhead.preprocess.ingest.ingest_sequence`) carries its own
calibration (undistorted, at the ingested image size) beside its frames; the published NeRSemble
layouts are described in :mod:`talkhead.capture.layouts`.

Every function here is pure: it joins names, it never looks at the disk (finding the audio
file or listing frames is the readers' job, :mod:`talkhead.capture.readers`). Functions take
the folder they work in (a subject folder or a sequence folder); :func:`subject_dir` and
:func:`sequence_dir` build those from the root and the names, :func:`split_sequence_dir`
takes a sequence folder apart again.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import CaptureError
from ..io import PathLike

CALIBRATION_FILE = "camera_params.json"
SEQUENCES_DIR = "sequences"
SEQUENCE_FILE = "sequence.json"
TIMESTEPS_DIR = "timesteps"
FRAME_PREFIX = "frame_"
IMAGES_DIR = "images"
IMAGE_FILE = "cam_{serial}{ext}"
LANDMARKS_DIR = "annotations/landmarks2D"
LANDMARKS_FILE = "cam_{serial}.npy"
AUDIO_DIR = "audio"
AUDIO_STEM = "audio_recording"
BACKGROUND_DIR = "background"
# What libsndfile (the capture readers) decodes; m4a/webm/video audio come through the sheet.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")

#: Per-frame maps beside the images: name -> (folder under the frame folder, file name with
#: ``{serial}``).
MAP_FILES: dict[str, tuple[str, str]] = {
    "alpha": ("alpha_map", "cam_{serial}.png"),
    "segmentation": ("facer_segmentation_masks", "segmentation_cam_{serial}.png"),
    "depth": ("colmap/depth_maps", "cam_{serial}.png"),
}


def _serial_pattern(template: str) -> str:
    """A file-name template as a regex capturing the serial: ``cam_{serial}.png`` ->
    ``cam_(.+)\\.png``."""
    return re.escape(template).replace(re.escape("{serial}"), "(.+)")


#: Per-frame maps: name -> (folder, file-name regex capturing the serial), from :data:`MAP_FILES`.
MAP_LAYOUT: dict[str, tuple[str, str]] = {
    name: (folder, _serial_pattern(template)) for name, (folder, template) in MAP_FILES.items()
}
#: A frame folder's name; group 1 is the frame id.
FRAME_RE = re.compile(r"frame_(\d+)")
#: A camera image's file name; group 1 is the serial, group 2 the extension.
IMAGE_RE = re.compile(r"cam_(.+)\.(png|jpe?g)", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# Subject
# --------------------------------------------------------------------------------------------


def subject_dir(root: PathLike, subject: str) -> Path:
    """``<root>/<subject>``."""
    return Path(root) / subject


def calibration_path(subject_dir: PathLike) -> Path:
    """``<subject_dir>/camera_params.json``: the subject's calibration."""
    return Path(subject_dir) / CALIBRATION_FILE


def sequences_dir(subject_dir: PathLike) -> Path:
    """``<subject_dir>/sequences``: the folder holding the subject's sequences."""
    return Path(subject_dir) / SEQUENCES_DIR


def sequence_dir(root: PathLike, subject: str, sequence: str) -> Path:
    """``<root>/<subject>/sequences/<sequence>``."""
    return sequences_dir(subject_dir(root, subject)) / sequence


def split_sequence_dir(sequence_dir: PathLike) -> tuple[Path, str, str]:
    """(root, subject, sequence) of a sequence folder ``<root>/<subject>/sequences/<sequence>``.

    Raises:
        CaptureError: the folder's parent is not named ``sequences``.
    """
    path = Path(sequence_dir)
    if path.parent.name != SEQUENCES_DIR or not path.name or not path.parent.parent.name:
        raise CaptureError(
            f"{path}: not a sequence folder (expected <root>/<subject>/{SEQUENCES_DIR}/<sequence>)"
        )
    return path.parent.parent.parent, path.parent.parent.name, path.name


def sequence_calibration_path(sequence_dir: PathLike) -> Path:
    """The calibration of the subject a sequence folder belongs to.

    Raises:
        CaptureError: see :func:`split_sequence_dir`.
    """
    root, subject, _ = split_sequence_dir(sequence_dir)
    return calibration_path(subject_dir(root, subject))


# --------------------------------------------------------------------------------------------
# Sequence
# --------------------------------------------------------------------------------------------


def sequence_file(sequence_dir: PathLike) -> Path:
    """``<sequence_dir>/sequence.json``: optional metadata (``{"fps": ...}``)."""
    return Path(sequence_dir) / SEQUENCE_FILE


def timesteps_dir(sequence_dir: PathLike) -> Path:
    """``<sequence_dir>/timesteps``: the folder holding the frame folders."""
    return Path(sequence_dir) / TIMESTEPS_DIR


def frame_name(t: int) -> str:
    """``frame_<t:05d>``: the folder name of frame id ``t``."""
    return f"{FRAME_PREFIX}{t:05d}"


def parse_frame_name(name: str) -> int | None:
    """The frame id of a frame folder's name (``frame_00012`` -> 12), None for other names."""
    m = FRAME_RE.fullmatch(name)
    return int(m.group(1)) if m else None


def frame_dir(sequence_dir: PathLike, t: int) -> Path:
    """``<sequence_dir>/timesteps/frame_<t:05d>``."""
    return timesteps_dir(sequence_dir) / frame_name(t)


def images_dir(sequence_dir: PathLike, t: int) -> Path:
    """``.../frame_<t:05d>/images``."""
    return frame_dir(sequence_dir, t) / IMAGES_DIR


def image_path(sequence_dir: PathLike, t: int, serial: str, ext: str = ".png") -> Path:
    """``.../frame_<t:05d>/images/cam_<serial><ext>`` (ext ".png", ".jpg" or ".jpeg")."""
    return images_dir(sequence_dir, t) / IMAGE_FILE.format(serial=serial, ext=ext)


def map_dir(sequence_dir: PathLike, t: int, name: str) -> Path:
    """The folder of a per-frame map (``name`` a key of :data:`MAP_FILES`) in frame ``t``."""
    return frame_dir(sequence_dir, t) / MAP_FILES[name][0]


def map_path(sequence_dir: PathLike, t: int, name: str, serial: str) -> Path:
    """A per-frame map (``name`` a key of :data:`MAP_FILES`) of camera ``serial`` in frame ``t``."""
    return map_dir(sequence_dir, t, name) / MAP_FILES[name][1].format(serial=serial)


def alpha_path(sequence_dir: PathLike, t: int, serial: str) -> Path:
    """``.../frame_<t:05d>/alpha_map/cam_<serial>.png``: the alpha matte."""
    return map_path(sequence_dir, t, "alpha", serial)


def segmentation_path(sequence_dir: PathLike, t: int, serial: str) -> Path:
    """``.../frame_<t:05d>/facer_segmentation_masks/segmentation_cam_<serial>.png``: LaPa labels."""
    return map_path(sequence_dir, t, "segmentation", serial)


def precomputed_depth_path(sequence_dir: PathLike, t: int, serial: str) -> Path:
    """``.../frame_<t:05d>/colmap/depth_maps/cam_<serial>.png``: Nersemble's 16-bit depth."""
    return map_path(sequence_dir, t, "depth", serial)


def landmarks_dir(sequence_dir: PathLike) -> Path:
    """``<sequence_dir>/annotations/landmarks2D``."""
    return Path(sequence_dir) / LANDMARKS_DIR


def landmarks_path(sequence_dir: PathLike, serial: str) -> Path:
    """``<sequence_dir>/annotations/landmarks2D/cam_<serial>.npy``: (T, 68, 3) 2D landmarks."""
    return landmarks_dir(sequence_dir) / LANDMARKS_FILE.format(serial=serial)


def audio_dir(sequence_dir: PathLike) -> Path:
    """``<sequence_dir>/audio``."""
    return Path(sequence_dir) / AUDIO_DIR


def audio_path(sequence_dir: PathLike, ext: str = ".wav") -> Path:
    """``<sequence_dir>/audio/audio_recording<ext>`` (ext one of :data:`AUDIO_EXTENSIONS`)."""
    return audio_dir(sequence_dir) / f"{AUDIO_STEM}{ext}"


def background_dir(sequence_dir: PathLike) -> Path:
    """``<sequence_dir>/background``: background plates (one image per camera, no person)."""
    return Path(sequence_dir) / BACKGROUND_DIR


def background_path(sequence_dir: PathLike, serial: str, ext: str = ".png") -> Path:
    """``<sequence_dir>/background/cam_<serial><ext>``: camera ``serial``'s background plate."""
    return background_dir(sequence_dir) / IMAGE_FILE.format(serial=serial, ext=ext)


def sequence_calibration_file(sequence_dir: PathLike) -> Path:
    """``<sequence_dir>/camera_params.json``: the calibration an ingested sequence carries."""
    return Path(sequence_dir) / CALIBRATION_FILE
