"""One sequence of a Nersemble v1-style capture tree (docs/formats.md): the
:class:`CaptureSequence` object and the two ways to open one.

- :func:`open_sequence` takes the capture root and the subject and sequence names;
- :func:`open_sequence_dir` takes the sequence folder and the calibration file, the paths a
  workflow job declares as its inputs.

With ``validate=True`` both first run the validator (:mod:`talkhead.capture.validate`; it
decodes every image, so do it once, in the capture stage) and raise
:class:`~talkhead.errors.CaptureError` listing every problem. Later stages open with
``validate=False`` and rely on the readers (:mod:`talkhead.capture.readers`), which raise
``CaptureError`` naming the file on anything unreadable or malformed.

Frame arguments ``t`` are frame *ids* (the number in ``frame_<t:05d>``), listed in
:attr:`CaptureSequence.frame_ids`; arrays over time (landmarks) are indexed by position in
that list.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CaptureError
from ..geometry.cameras import Camera
from ..io import PathLike
from . import layout
from .calibration import read_camera_params
from .readers import find_audio, list_frame_ids, read_image_header, read_sequence_fps
from .validate import (
    Problem,
    errors_of,
    format_problems,
    validate_capture,
    validate_sequence_dir,
)

log = logging.getLogger(__name__)


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
        calibration_file: the calibration the cameras were read from; None means the layout's
            ``<root>/<subject>/camera_params.json`` (see :attr:`calibration_path`).
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
    calibration_file: Path | None = field(default=None, repr=False)

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
        return layout.subject_dir(self.root, self.subject)

    @property
    def calibration_path(self) -> Path:
        if self.calibration_file is not None:
            return self.calibration_file
        return layout.calibration_path(self.subject_dir)

    @property
    def sequence_dir(self) -> Path:
        return layout.sequence_dir(self.root, self.subject, self.sequence)

    def frame_dir(self, t: int) -> Path:
        return layout.frame_dir(self.sequence_dir, t)

    def image_path(self, t: int, serial: str) -> Path:
        return layout.image_path(self.sequence_dir, t, serial, self.image_ext)

    def alpha_path(self, t: int, serial: str) -> Path:
        return layout.alpha_path(self.sequence_dir, t, serial)

    def segmentation_path(self, t: int, serial: str) -> Path:
        return layout.segmentation_path(self.sequence_dir, t, serial)

    def precomputed_depth_path(self, t: int, serial: str) -> Path:
        return layout.precomputed_depth_path(self.sequence_dir, t, serial)

    def landmarks_path(self, serial: str) -> Path:
        return layout.landmarks_path(self.sequence_dir, serial)

    def frame_index(self, t: int) -> int:
        """Position of frame id ``t`` in :attr:`frame_ids`."""
        try:
            return self.frame_ids.index(t)
        except ValueError:
            raise CaptureError(f"{self.sequence_dir}: no frame {layout.frame_name(t)}") from None


def _raise_if_unusable(
    problems: Sequence[Problem], root: Path, subject: str, sequence: str
) -> None:
    """Log the warnings; raise CaptureError listing the errors, if any."""
    for p in problems:
        if p.severity == "warning":
            log.warning("%s", p)
    errors = errors_of(problems)
    if errors:
        raise CaptureError(
            f"capture {layout.subject_dir(root, subject)} sequence {sequence} is not usable:\n"
            + format_problems(errors, root=root)
        )


def _open(
    root: Path, subject: str, sequence: str, calibration: Path, fps: float
) -> CaptureSequence:
    """Read the calibration and look at the sequence folder (no image is decoded)."""
    seq_dir = layout.sequence_dir(root, subject, sequence)
    if not seq_dir.is_dir():
        raise CaptureError(f"{seq_dir}: sequence folder is missing")
    try:
        cameras = read_camera_params(calibration)
    except (TypeError, ValueError, AttributeError) as exc:
        raise CaptureError(f"{calibration}: malformed calibration ({exc})") from None
    seq_fps, why = read_sequence_fps(seq_dir, fps)
    if why is not None:
        raise CaptureError(f"{why} ({layout.sequence_file(seq_dir)})")
    frame_ids = list_frame_ids(seq_dir)
    if not frame_ids:
        raise CaptureError(f"{layout.timesteps_dir(seq_dir)}: no frame_<t> folders")
    serials = sorted(cameras)
    first = frame_ids[0]
    image_ext, width, height = ".png", 0, 0
    for serial in serials:
        for ext in layout.IMAGE_EXTENSIONS:
            p = layout.image_path(seq_dir, first, serial, ext)
            if p.is_file():
                image_ext = ext
                info = read_image_header(p)
                if not isinstance(info, str):
                    width, height = info[0], info[1]
                break
        if width:
            break
    sizes = {(c.width, c.height) for c in cameras.values() if c.width and c.height}
    if not width and len(sizes) == 1:
        width, height = sizes.pop()
    lmk_dir = layout.landmarks_dir(seq_dir)
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
        has_alpha=layout.map_dir(seq_dir, first, "alpha").is_dir(),
        has_segmentation=layout.map_dir(seq_dir, first, "segmentation").is_dir(),
        has_precomputed_depth=layout.map_dir(seq_dir, first, "depth").is_dir(),
        has_landmarks=lmk_dir.is_dir() and any(lmk_dir.glob("cam_*.npy")),
        calibration_file=calibration,
    )


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
        validate: run :func:`~talkhead.capture.validate.validate_capture` on this sequence
            first (decodes every image: do it once, in the capture stage) and raise on any
            error; warnings are logged.
        workers: threads used to decode images when validating.

    Raises:
        CaptureError: listing every problem found (validate=True), or naming the first
            blocking one (missing folder, unreadable calibration, no frames).
    """
    root = Path(root)
    if validate:
        problems = validate_capture(root, subject, sequence, fps=fps, workers=workers)
        _raise_if_unusable(problems, root, subject, sequence)
    calibration = layout.calibration_path(layout.subject_dir(root, subject))
    return _open(root, subject, sequence, calibration, fps)


def open_sequence_dir(
    sequence_dir: PathLike,
    calibration: PathLike | None = None,
    fps: float = 25.0,
    validate: bool = False,
    workers: int | None = None,
) -> CaptureSequence:
    """Open one sequence from its folder and its calibration file (a workflow job's inputs).

    The capture root and the subject and sequence names are read off the folder,
    ``<root>/<subject>/sequences/<sequence>`` (:func:`~talkhead.capture.layout.split_sequence_dir`).

    Args:
        sequence_dir: the sequence folder.
        calibration: the subject's ``camera_params.json`` (default: the layout's,
            ``<root>/<subject>/camera_params.json``).
        fps: frame rate used when the sequence has no ``sequence.json``.
        validate: run :func:`~talkhead.capture.validate.validate_sequence_dir` first and raise
            on any error; warnings are logged.
        workers: threads used to decode images when validating.

    Raises:
        CaptureError: the folder is not ``<root>/<subject>/sequences/<sequence>``; every
            problem found (validate=True); or the first blocking one (missing folder,
            unreadable calibration, no frames).
    """
    seq_dir = Path(sequence_dir)
    root, subject, sequence = layout.split_sequence_dir(seq_dir)
    calib = (
        layout.calibration_path(layout.subject_dir(root, subject))
        if calibration is None
        else Path(calibration)
    )
    if validate:
        problems = validate_sequence_dir(seq_dir, calib, fps=fps, workers=workers)
        _raise_if_unusable(problems, root, subject, sequence)
    return _open(root, subject, sequence, calib, fps)
