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

Products beside the capture: a sequence may be opened with ``overlays``, further sequence
folders in the same layout that hold products the capture lacks (mattes, 2D landmarks, facial
segmentation, audio made by the preprocess stage, e.g.
``results/preprocess/mattes/<subject>/sequences/<SEQ>/timesteps/frame_*/alpha_map/...``).
:meth:`CaptureSequence.product_dir` names the first folder, the sequence itself then the
overlays in order, that holds a product, and every path (so every reader) goes through it.
Products named in ``replace`` come from the overlays first (e.g. MediaPipe landmarks replacing
a capture's own); the lookup is :mod:`talkhead.capture.products`, shared with the validator.

A NeRSemble v1 sequence can be read in place (``layout_name="nersemble_v1"``): its images,
mattes and depth keep v1's folder names (:mod:`talkhead.capture.layouts`), everything else comes
from overlays; its colour calibration is applied only by ingest. Video layouts (v2, the
benchmark kit) are ingested first (:func:`talkhead.preprocess.ingest.ingest_sequence`).

Frame arguments ``t`` are frame *ids* (the number in ``frame_<t:05d>``), listed in
:attr:`CaptureSequence.frame_ids`; arrays over time (landmarks) are indexed by position in
that list.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CaptureError
from ..geometry.cameras import Camera
from ..io import PathLike
from . import layout, layouts
from .calibration import read_camera_params
from .layouts import SourceSequence
from .products import PRODUCTS, check_product_names, find_products, resolve_products
from .readers import find_audio, list_frame_ids, read_image_header, read_sequence_fps
from .validate import (
    Problem,
    errors_of,
    format_problems,
    validate_capture,
    validate_sequence_dir,
)

__all__ = ["PRODUCTS", "CaptureSequence", "find_products", "open_sequence", "open_sequence_dir"]

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
        audio_path: the audio file (of the sequence or an overlay), None when there is none.
        image_ext: extension of the image files (".png" or ".jpg").
        has_alpha, has_segmentation, has_precomputed_depth, has_landmarks: whether the
            sequence or one of its overlays has those (judged on the first frame / the
            annotations folder).
        calibration_file: the calibration the cameras were read from; None means the layout's
            ``<root>/<subject>/camera_params.json`` (see :attr:`calibration_path`).
        overlays: further sequence folders (talkhead layout) holding products the sequence
            lacks, searched in order after the sequence itself.
        replace: products taken from the overlays first (then from the sequence).
        product_dirs: ``{product: folder}`` for each product of :data:`PRODUCTS` found in the
            sequence or an overlay (see :meth:`product_dir`).
        source: for a NeRSemble v1 sequence read in place, where its files are (its images,
            mattes and depth keep v1's folder names); None for talkhead's tree.
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
    overlays: tuple[Path, ...] = field(default=(), repr=False)
    replace: tuple[str, ...] = field(default=(), repr=False)
    product_dirs: dict[str, Path] = field(default_factory=dict, repr=False)
    source: SourceSequence | None = field(default=None, repr=False)

    @property
    def layout(self) -> str:
        """The layout the sequence is read in: ``talkhead`` or ``nersemble_v1``."""
        return "talkhead" if self.source is None else self.source.layout

    def _in_source(self, product: str) -> SourceSequence | None:
        """The v1 source when ``product`` comes from the v1 sequence itself, else None."""
        if self.source is not None and self.product_dir(product) == self.sequence_dir:
            return self.source
        return None

    def product_dir(self, name: str) -> Path:
        """The folder holding product ``name`` (one of :data:`PRODUCTS`): the sequence folder
        if it has it, else the first overlay that has it, else the sequence folder (so that a
        reader's error names the file the sequence lacks); for a product in :attr:`replace`,
        the first overlay that has it, else the sequence folder.

        Raises:
            ValueError: ``name`` is not a product (a programming error).
        """
        if name not in PRODUCTS:
            raise ValueError(f"unknown product {name!r}; expected one of {PRODUCTS}")
        return self.product_dirs.get(name, self.sequence_dir)

    @property
    def has_background(self) -> bool:
        """Whether the sequence or an overlay has background plates."""
        return "background" in self.product_dirs

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
        if self.source is not None:
            return self.source.frame_dir(t)
        return layout.frame_dir(self.sequence_dir, t)

    def image_path(self, t: int, serial: str) -> Path:
        if (src := self._in_source("images")) is not None:
            return layouts.v1_image_path(src.frame_dir(t), serial, src.v1_suffix, self.image_ext)
        return layout.image_path(self.product_dir("images"), t, serial, self.image_ext)

    def alpha_path(self, t: int, serial: str) -> Path:
        if (src := self._in_source("alpha")) is not None:
            return layouts.v1_alpha_path(src.frame_dir(t), serial, src.v1_suffix)
        return layout.alpha_path(self.product_dir("alpha"), t, serial)

    def segmentation_path(self, t: int, serial: str) -> Path:
        return layout.segmentation_path(self.product_dir("segmentation"), t, serial)

    def precomputed_depth_path(self, t: int, serial: str) -> Path:
        if (src := self._in_source("depth")) is not None:
            return layouts.v1_depth_path(src.frame_dir(t), serial, src.v1_suffix)
        return layout.precomputed_depth_path(self.product_dir("depth"), t, serial)

    def landmarks_path(self, serial: str) -> Path:
        return layout.landmarks_path(self.product_dir("landmarks"), serial)

    def background_path(self, serial: str) -> Path:
        """The background plate of camera ``serial`` (``background/cam_<serial>.png``)."""
        return layout.background_path(self.product_dir("background"), serial)

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


def _check_image_sizes(
    cameras: dict[str, Camera], image: Callable[[str], Path], width: int, height: int
) -> None:
    """A calibration's image size must be the images' (never a silent rescale)."""
    for serial, cam in cameras.items():
        if cam.width and cam.height and (cam.width, cam.height) != (width, height):
            raise CaptureError(
                f"{image(serial)}: image is {width}x{height}, the "
                f"calibration says {cam.width}x{cam.height} (images rescaled after calibrating? "
                "scale the intrinsics with them, or ingest with capture.ingest.downscale)"
            )


def _v1_products(src: SourceSequence, t: int) -> dict[str, Path]:
    """The products a v1 sequence holds itself (images; mattes and depth if frame ``t`` has
    them)."""
    found = {"images": src.sequence_dir}
    fdir = src.frame_dir(t)
    if any(layouts.v1_alpha_path(fdir, s, src.v1_suffix).is_file() for s in src.serials):
        found["alpha"] = src.sequence_dir
    if any(layouts.v1_depth_path(fdir, s, src.v1_suffix).is_file() for s in src.serials):
        found["depth"] = src.sequence_dir
    return found


def _open(
    root: Path,
    subject: str,
    sequence: str,
    calibration: Path,
    fps: float,
    overlays: Sequence[PathLike] = (),
    layout_name: str = "talkhead",
    replace: Sequence[str] = (),
) -> CaptureSequence:
    """Read the calibration and look at the sequence folder (no image is decoded)."""
    seq_dir = layout.sequence_dir(root, subject, sequence)
    if not seq_dir.is_dir():
        raise CaptureError(f"{seq_dir}: sequence folder is missing")
    overlay_dirs = tuple(Path(o) for o in overlays)
    try:
        cameras = read_camera_params(calibration)
    except (TypeError, ValueError, AttributeError) as exc:
        raise CaptureError(f"{calibration}: malformed calibration ({exc})") from None
    seq_fps, why = read_sequence_fps(seq_dir, fps)
    if why is not None:
        raise CaptureError(f"{why} ({layout.sequence_file(seq_dir)})")
    source = None
    if layout_name == "nersemble_v1":
        source = layouts.open_source(root, subject, sequence, layout_name)
        frame_ids = list(source.frame_ids)
        serials = list(source.serials)
        own = _v1_products(source, frame_ids[0])
    else:
        frame_ids = list_frame_ids(seq_dir)
        if not frame_ids:
            raise CaptureError(f"{layout.timesteps_dir(seq_dir)}: no frame_<t> folders")
        serials = sorted(cameras)
        own = find_products([seq_dir], frame_ids[0])
    products = resolve_products(own, overlay_dirs, frame_ids[0], replace)
    first = frame_ids[0]
    probe = CaptureSequence(
        root,
        subject,
        sequence,
        cameras,
        serials,
        (),
        seq_fps,
        0,
        0,
        product_dirs=products,
        source=source,
    )
    image_ext, width, height = ".png", 0, 0
    for serial in serials:
        for ext in layout.IMAGE_EXTENSIONS:
            p = dataclasses.replace(probe, image_ext=ext).image_path(first, serial)
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
    elif width:
        at = dataclasses.replace(probe, image_ext=image_ext)
        _check_image_sizes(cameras, lambda s: at.image_path(first, s), width, height)
    audio_dir = products.get("audio")
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
        audio_path=find_audio(audio_dir) if audio_dir is not None else None,
        image_ext=image_ext,
        has_alpha="alpha" in products,
        has_segmentation="segmentation" in products,
        has_precomputed_depth="depth" in products,
        has_landmarks="landmarks" in products,
        calibration_file=calibration,
        overlays=overlay_dirs,
        replace=tuple(replace),
        product_dirs=products,
        source=source,
    )


def _read_in_place(root: Path, subject: str, sequence: str, layout_name: str, validate: bool):
    """The layout to read a sequence in: talkhead or nersemble_v1 (videos must be ingested)."""
    if layout_name == "auto":
        layout_name = layouts.detect_layout(root, subject, sequence)
    if layout_name in layouts.VIDEO_LAYOUTS:
        raise CaptureError(
            f"{layout.sequence_dir(root, subject, sequence)}: a {layout_name} capture holds "
            "videos; ingest it first (talkhead.preprocess.ingest.ingest_sequence)"
        )
    if layout_name not in ("talkhead", "nersemble_v1"):
        raise CaptureError(f"capture.layout: unknown layout {layout_name!r}")
    if validate and layout_name != "talkhead":
        raise CaptureError(
            f"{layout.sequence_dir(root, subject, sequence)}: validation reads talkhead trees; "
            "ingest the NeRSemble v1 sequence first, or open it with validate=False"
        )
    return layout_name


def open_sequence(
    root: PathLike,
    subject: str,
    sequence: str,
    fps: float = 25.0,
    validate: bool = True,
    workers: int | None = None,
    overlays: Sequence[PathLike] = (),
    layout_name: str = "talkhead",
    replace: Sequence[str] = (),
) -> CaptureSequence:
    """Open one sequence of a capture tree.

    Args:
        root: the capture root; subject, sequence: folder names.
        fps: frame rate used when the sequence has no ``sequence.json``.
        validate: run :func:`~talkhead.capture.validate.validate_capture` on this sequence
            (with its overlays) first (decodes every image: do it once, in the capture stage)
            and raise on any error; warnings are logged.
        workers: threads used to decode images when validating.
        overlays: sequence folders (talkhead layout) holding products the sequence lacks,
            searched in order (see :meth:`CaptureSequence.product_dir`).
        layout_name: ``talkhead``, ``nersemble_v1`` (read in place, without its colour
            calibration: ingest to apply it) or ``auto``; video layouts must be ingested.
        replace: products (of :data:`PRODUCTS`) taken from the overlays first, e.g.
            ``("landmarks",)`` when detected landmarks replace the capture's own.

    Raises:
        ValueError: an unknown product in ``replace``.
        CaptureError: listing every problem found (validate=True), or naming the first
            blocking one (missing folder, unreadable calibration, no frames, images whose
            size is not the calibration's, a video layout).
    """
    root = Path(root)
    replace = check_product_names(replace, "product to replace")
    layout_name = _read_in_place(root, subject, sequence, layout_name, validate)
    if validate:
        problems = validate_capture(
            root,
            subject,
            sequence,
            fps=fps,
            workers=workers,
            overlays=overlays,
            replace=replace,
        )
        _raise_if_unusable(problems, root, subject, sequence)
    calibration = layout.calibration_path(layout.subject_dir(root, subject))
    return _open(root, subject, sequence, calibration, fps, overlays, layout_name, replace)


def open_sequence_dir(
    sequence_dir: PathLike,
    calibration: PathLike | None = None,
    fps: float = 25.0,
    validate: bool = False,
    workers: int | None = None,
    overlays: Sequence[PathLike] = (),
    layout_name: str = "talkhead",
    replace: Sequence[str] = (),
) -> CaptureSequence:
    """Open one sequence from its folder and its calibration file (a workflow job's inputs).

    The capture root and the subject and sequence names are read off the folder,
    ``<root>/<subject>/sequences/<sequence>`` (:func:`~talkhead.capture.layout.split_sequence_dir`).

    Args:
        sequence_dir: the sequence folder.
        calibration: the subject's ``camera_params.json`` (default: the layout's,
            ``<root>/<subject>/camera_params.json``; an ingested sequence's is
            :func:`~talkhead.capture.layout.sequence_calibration_file`).
        fps: frame rate used when the sequence has no ``sequence.json``.
        validate: run :func:`~talkhead.capture.validate.validate_sequence_dir` (with the
            overlays) first and raise on any error; warnings are logged.
        workers: threads used to decode images when validating.
        overlays: sequence folders (talkhead layout) holding products the sequence lacks,
            searched in order (see :meth:`CaptureSequence.product_dir`).
        layout_name: as for :func:`open_sequence`.
        replace: products taken from the overlays first, as for :func:`open_sequence`.

    Raises:
        ValueError: an unknown product in ``replace``.
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
    replace = check_product_names(replace, "product to replace")
    layout_name = _read_in_place(root, subject, sequence, layout_name, validate)
    if validate:
        problems = validate_sequence_dir(
            seq_dir, calib, fps=fps, workers=workers, overlays=overlays, replace=replace
        )
        _raise_if_unusable(problems, root, subject, sequence)
    return _open(root, subject, sequence, calib, fps, overlays, layout_name, replace)
