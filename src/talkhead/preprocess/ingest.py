"""Ingest: a capture sequence in any layout (:mod:`talkhead.capture.layouts`) written as one
talkhead-layout sequence, so later stages see one layout.

Output, for ``ingest_sequence(root, subject, sequence, out_root, ...)``::

    <out_root>/<subject>/sequences/<SEQ>/
        camera_params.json                    undistorted, downscaled intrinsics (no distortion)
        sequence.json                         {"fps": ..., "ingest": {what was done}}
        timesteps/frame_<t:05d>/images/cam_<serial>.png
        timesteps/frame_<t:05d>/alpha_map/cam_<serial>.png          when the source has mattes
        timesteps/frame_<t:05d>/colmap/depth_maps/cam_<serial>.png  when it has depth
        timesteps/frame_<t:05d>/facer_segmentation_masks/...        when it has segmentation
        annotations/landmarks2D/cam_<serial>.npy                    when it has 2D landmarks
        audio/<its audio file>                                      when it has audio
        background/cam_<serial>.png                                 when it has background plates

Each image goes through, in order: colour calibration (on the camera's raw colours, when the
capture ships one and ``colour_calibration`` is on), undistortion (when the calibration has
distortion), downscaling (:mod:`talkhead.preprocess.undistort`). Videos are decoded at ``fps``
(:mod:`talkhead.preprocess.video`) in parallel over cameras; cameras whose videos differ in
length are trimmed to the common span (logged, counted in ``sequence.json``). Frame layouts keep
their frame ids (gaps included) and their frame rate.

Atomic and resumable: everything is written into a staging folder beside the output
(``sequences/.<SEQ>.ingest``), each camera marked done when all its frames are written; a rerun
with the same settings skips the cameras already done (and returns at once when the output is
complete); the staging folder replaces the output only when complete.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..capture import layout, layouts
from ..capture.calibration import write_camera_params
from ..capture.checks import calibration_problems, errors_of
from ..capture.depth_png import read_nersemble_depth_png, write_nersemble_depth_png
from ..capture.layouts import SourceSequence, open_source, read_v1_depth
from ..capture.readers import (
    find_audio,
    load_landmark_file,
    read_image_header,
    read_sequence_fps,
    thread_map,
)
from ..capture.validate import format_problems
from ..errors import CaptureError
from ..geometry.cameras import Camera
from ..io import PathLike, load_json, save_image, save_json
from .colour import apply_colour
from .undistort import Resampler
from .video import common_span, decode_videos, probe_video

log = logging.getLogger(__name__)

#: Version of what ingest writes; a change re-ingests.
INGEST_VERSION = 1
STAGING_SUFFIX = ".ingest"
DONE_DIR = ".done"


@dataclass(frozen=True)
class IngestResult:
    """What :func:`ingest_sequence` did.

    Attributes:
        sequence_dir: the talkhead-layout sequence written.
        calibration: its ``camera_params.json`` (pass it as ``calibration=`` to
            :func:`~talkhead.capture.sequence.open_sequence_dir`).
        layout: the source's layout.
        serials: the cameras ingested.
        n_frames: frames per camera.
        fps: the sequence's frame rate.
        dropped: ``{serial: frames dropped}`` trimming videos to the common span.
        skipped: the output was already complete (nothing was done).
        seconds: wall time.
    """

    sequence_dir: Path
    calibration: Path
    layout: str
    serials: tuple[str, ...]
    n_frames: int
    fps: float
    dropped: dict[str, int] = field(default_factory=dict)
    skipped: bool = False
    seconds: float = 0.0


def ingested_sequence_dir(out_root: PathLike, subject: str, sequence: str) -> Path:
    """``<out_root>/<subject>/sequences/<sequence>``: where :func:`ingest_sequence` writes."""
    return layout.sequence_dir(out_root, subject, sequence)


def ingested_calibration_path(out_root: PathLike, subject: str, sequence: str) -> Path:
    """``<out_root>/<subject>/sequences/<sequence>/camera_params.json``."""
    return layout.sequence_calibration_file(ingested_sequence_dir(out_root, subject, sequence))


def _settings(src: SourceSequence, serials, downscale, fps, colour_calibration) -> dict[str, Any]:
    return {
        "version": INGEST_VERSION,
        "source": str(src.sequence_dir),
        "layout": src.layout,
        "cameras": list(serials),
        "downscale": float(downscale),
        "fps": None if fps is None else float(fps),
        "colour_calibration": bool(colour_calibration and bool(src.colour)),
    }


def _complete(seq_dir: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The ingest record of a complete output made with ``settings``, else None."""
    meta_path = layout.sequence_file(seq_dir)
    if not (meta_path.is_file() and layout.sequence_calibration_file(seq_dir).is_file()):
        return None
    try:
        meta = load_json(meta_path)
    except (OSError, ValueError):
        return None
    record = meta.get("ingest") if isinstance(meta, dict) else None
    if isinstance(record, dict) and record.get("settings") == settings:
        return meta
    return None


def _image_size(src: SourceSequence, serial: str) -> tuple[int, int, Path]:
    """(width, height, file) of a camera's images, from the video header or first frame."""
    if src.is_video:
        info = probe_video(src.video_path(serial))
        return info.width, info.height, info.path
    path = src.image_path(src.frame_ids[0], serial)
    info = read_image_header(path)
    if isinstance(info, str):
        raise CaptureError(f"{path}: {info}")
    return info[0], info[1], path


def _sized_camera(cam: Camera, width: int, height: int, where: Path, calib: Path) -> Camera:
    """The camera with its image size; a calibration that says otherwise is an error."""
    if cam.width and cam.height and (cam.width, cam.height) != (width, height):
        raise CaptureError(
            f"{where}: images are {width}x{height}, {calib} says {cam.width}x{cam.height} for "
            f"camera {cam.serial} (calibrated at another resolution? scale the intrinsics, or "
            "use capture.ingest.downscale on full-size images; talkhead never rescales silently)"
        )
    return replace(cam, width=width, height=height)


def _check_source_calibration(
    src: SourceSequence, serials: Sequence[str], image_sizes: dict[str, tuple[int, int]]
) -> None:
    """The rig checks of :func:`talkhead.capture.checks.calibration_problems` on the source
    calibration (units, inverted extrinsics, normalised intrinsics, image sizes), before any
    video is decoded.

    Raises:
        CaptureError: naming the source calibration file, listing its errors as
            ``validate-capture`` does.
    """
    cams = [src.cameras[s] for s in serials]
    errors = errors_of(calibration_problems(cams, src.calibration_path, image_sizes=image_sizes))
    if errors:
        raise CaptureError(
            f"{src.calibration_path}: calibration not usable, nothing ingested:\n"
            + format_problems(errors)
        )


class _Writer:
    """Colour, undistort, downscale and write one camera's images into the staging folder."""

    def __init__(self, src: SourceSequence, serial: str, resampler: Resampler, stage: Path, colour):
        self.src = src
        self.serial = serial
        self.resample = resampler
        self.stage = stage
        self.colour = colour

    def image(self, t: int, rgb: np.ndarray) -> None:
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise CaptureError(f"camera {self.serial} frame {t}: expected RGB, got {rgb.shape}")
        if self.colour is not None:
            rgb = apply_colour(rgb, self.colour)
        save_image(layout.image_path(self.stage, t, self.serial), self.resample(rgb))

    def alpha(self, t: int, alpha: np.ndarray) -> None:
        if alpha.ndim == 3:
            alpha = alpha[..., 0]
        save_image(layout.alpha_path(self.stage, t, self.serial), self.resample(alpha))

    def depth(self, t: int, depth: np.ndarray) -> None:
        out = self.resample(depth.astype(np.float32), nearest=True)
        write_nersemble_depth_png(layout.precomputed_depth_path(self.stage, t, self.serial), out)

    def segmentation(self, t: int, labels: np.ndarray) -> None:
        out = self.resample(labels, nearest=True)
        save_image(layout.segmentation_path(self.stage, t, self.serial), out)

    def background(self, rgb: np.ndarray, path: Path) -> None:
        size = (self.resample.camera.width, self.resample.camera.height)
        if rgb.shape[1::-1] != size:
            raise CaptureError(
                f"{path}: background plate is {rgb.shape[1]}x{rgb.shape[0]}, camera "
                f"{self.serial}'s images are {size[0]}x{size[1]}"
            )
        if self.colour is not None:
            rgb = apply_colour(rgb, self.colour)
        save_image(layout.background_path(self.stage, self.serial), self.resample(rgb))


def _read_rgb(path: Path) -> np.ndarray:
    from ..capture.readers import read_image_file

    return read_image_file(path)


def _read_single(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if path.is_file() else None
    if img is None:
        raise CaptureError(f"{path}: missing or unreadable image")
    if img.ndim == 3:
        img = img[..., 3] if img.shape[2] == 4 else img[..., 0]
    return img


def _copyable(path: Path, channels: int) -> bool:
    """Whether a PNG holds 8-bit data with ``channels`` channels (so it can be copied as is)."""
    if path.suffix.lower() != ".png":
        return False
    with open(path, "rb") as f:
        head = f.read(26)
    colour_type = {1: 0, 3: 2}[channels]
    return len(head) == 26 and head[24] == 8 and head[25] == colour_type


def _frames_camera(src: SourceSequence, w: _Writer, tick: Callable[[], None]) -> int:
    """Write every frame of one camera of a frame layout; the frame count.

    8-bit PNGs that need no colour calibration and no resampling are copied as they are."""
    serial = w.serial
    passthrough = w.colour is None and w.resample.identity
    for t in src.frame_ids:
        image = src.image_path(t, serial)
        if passthrough and _copyable(image, 3):
            dst = layout.image_path(w.stage, t, serial)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(image, dst)
        else:
            w.image(t, _read_rgb(image))
        alpha = src.alpha_path(t, serial)
        if alpha is not None and w.resample.identity and _copyable(alpha, 1):
            dst = layout.alpha_path(w.stage, t, serial)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(alpha, dst)
        elif alpha is not None:
            w.alpha(t, _read_single(alpha))
        depth = src.depth_path(t, serial)
        if depth is not None:
            size = (w.resample.camera.width, w.resample.camera.height)
            if src.layout == "nersemble_v1":
                w.depth(t, read_v1_depth(depth, size))
            else:
                w.depth(t, read_nersemble_depth_png(depth, expected_size=size))
        if src.layout == "talkhead":
            seg = layout.segmentation_path(src.sequence_dir, t, serial)
            if seg.is_file():
                w.segmentation(t, _read_single(seg))
        tick()
    return len(src.frame_ids)


def _copy_annotations(src: SourceSequence, writers: dict[str, _Writer], stage: Path) -> None:
    """Landmarks (moved with the pixels) and audio of a talkhead-layout source."""
    if src.layout != "talkhead":
        return
    for serial, w in writers.items():
        p = layout.landmarks_path(src.sequence_dir, serial)
        if p.is_file():
            lmk = load_landmark_file(p).copy()
            shape = lmk.shape
            lmk[..., :2] = w.resample.points(lmk[..., :2].reshape(-1, 2)).reshape(*shape[:2], 2)
            out = layout.landmarks_path(stage, serial)
            out.parent.mkdir(parents=True, exist_ok=True)
            np.save(out, lmk.astype(np.float32))
    audio = find_audio(src.sequence_dir)
    if audio is not None:
        dst = layout.audio_dir(stage) / audio.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(audio, dst)


def _swap_in(stage: Path, final: Path) -> None:
    """Replace ``final`` by the complete ``stage`` (renames in one folder)."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
    os.replace(stage, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def ingest_sequence(
    root: PathLike,
    subject: str,
    sequence: str,
    out_root: PathLike,
    layout_name: str = "auto",
    downscale: float = 1.0,
    fps: float | None = None,
    colour_calibration: bool = True,
    default_fps: float = 25.0,
    serials: Sequence[str] | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> IngestResult:
    """Write one sequence of a capture in any layout as a talkhead-layout sequence.

    Args:
        root: the capture root; subject, sequence: folder names.
        out_root: the root of the talkhead tree to write (``<out_root>/<subject>/sequences/
            <sequence>``, see :func:`ingested_sequence_dir`).
        layout_name: ``capture.layout`` (``auto`` detects and logs it).
        downscale: ``capture.ingest.downscale``, factor >= 1.
        fps: ``capture.ingest.fps``: videos are decoded at this rate (None or 0: every frame);
            frame layouts keep their frames.
        colour_calibration: ``capture.ingest.colour_calibration``.
        default_fps: frame rate of a frame layout without ``sequence.json`` (``capture.fps``
            or the sample sheet's).
        serials: cameras to ingest (None: every calibrated camera with images).
        workers: threads, one camera each (None: up to 8).
        progress: show a progress bar.

    Returns:
        :class:`IngestResult`; its ``calibration`` is the file to open the sequence with.

    Raises:
        CaptureError: naming the file or folder: no layout matches, calibration missing or
            malformed, a camera's images do not have the calibrated size, a video is corrupt,
            an image is unreadable, an unknown camera is asked for.
    """
    start = time.perf_counter()
    fps = fps or None
    src = open_source(root, subject, sequence, layout_name)
    use = list(src.serials)
    if serials is not None:
        unknown = [s for s in map(str, serials) if s not in src.serials]
        if unknown:
            raise CaptureError(
                f"{src.sequence_dir}: no images of camera(s) {', '.join(unknown)} (have "
                f"{', '.join(src.serials)})"
            )
        use = [str(s) for s in serials]
    sizes = {serial: _image_size(src, serial) for serial in use}
    _check_source_calibration(src, use, {s: (w, h) for s, (w, h, _) in sizes.items()})
    final = ingested_sequence_dir(out_root, subject, sequence)
    settings = _settings(src, use, downscale, fps, colour_calibration)
    meta = _complete(final, settings)
    if meta is not None:
        log.info("%s: already ingested from %s; skipped", final, src.sequence_dir)
        rec = meta["ingest"]
        return IngestResult(
            final,
            layout.sequence_calibration_file(final),
            src.layout,
            tuple(use),
            int(rec["n_frames"]),
            float(meta["fps"]),
            dict(rec.get("dropped", {})),
            skipped=True,
            seconds=time.perf_counter() - start,
        )
    stage = final.with_name(f".{final.name}{STAGING_SUFFIX}")
    stage_settings = stage / DONE_DIR / "settings.json"
    if stage.exists():
        try:
            same = load_json(stage_settings) == settings
        except (OSError, ValueError):
            same = False
        if not same:
            shutil.rmtree(stage)
    save_json(stage_settings, settings)

    writers: dict[str, _Writer] = {}
    for serial in use:
        w, h, where = sizes[serial]
        cam = _sized_camera(src.cameras[serial], w, h, where, src.calibration_path)
        colour = src.colour.get(serial) if colour_calibration else None
        writers[serial] = _Writer(src, serial, Resampler(cam, downscale), stage, colour)

    def done_path(serial: str, what: str = "images") -> Path:
        return stage / DONE_DIR / f"{what}_{serial}.json"

    def done_count(serial: str, what: str = "images") -> int | None:
        p = done_path(serial, what)
        return int(load_json(p)["frames"]) if p.is_file() else None

    def mark_done(serial: str, n: int, what: str = "images") -> None:
        save_json(done_path(serial, what), {"frames": n})

    counts: dict[str, int] = {}
    todo = [s for s in use if done_count(s) is None]
    if len(todo) < len(use):
        log.info("%s: %d of %d cameras already done", stage, len(use) - len(todo), len(use))
    for s in use:
        if s not in todo:
            counts[s] = done_count(s) or 0
    if src.is_video:
        out_fps = fps or probe_video(src.video_path(use[0])).fps
        if todo:
            counts.update(
                decode_videos(
                    {s: src.video_path(s) for s in todo},
                    lambda s, t, img: writers[s].image(t, img),
                    fps=fps,
                    workers=workers,
                    progress=progress,
                    on_done=mark_done,
                )
            )
        alpha_paths = {s: p for s in use if (p := src.alpha_video_path(s)) is not None}
        alpha_todo = {s: p for s, p in alpha_paths.items() if done_count(s, "alpha") is None}
        alpha_counts = {s: done_count(s, "alpha") or 0 for s in alpha_paths if s not in alpha_todo}
        if alpha_todo:
            alpha_counts.update(
                decode_videos(
                    alpha_todo,
                    lambda s, t, img: writers[s].alpha(t, img),
                    fps=fps,
                    workers=workers,
                    progress=progress,
                    on_done=lambda s, n: mark_done(s, n, "alpha"),
                )
            )
        if alpha_paths and set(alpha_paths) != set(use):
            raise CaptureError(
                f"{src.sequence_dir / 'alpha_maps'}: no matte video of camera(s) "
                f"{', '.join(sorted(set(use) - set(alpha_paths)))}"
            )
        spans = dict(counts)
        for s, n in alpha_counts.items():
            spans[s] = min(spans[s], n)
        n_frames, dropped = common_span(spans, str(src.sequence_dir))
        frame_ids = list(range(n_frames))
        _drop_frames_from(stage, n_frames)
    else:
        fps_src, why = read_sequence_fps(src.sequence_dir, default_fps)
        if why is not None:
            raise CaptureError(f"{layout.sequence_file(src.sequence_dir)}: {why}")
        out_fps = fps_src
        if fps is not None and abs(fps - fps_src) > 1e-6:
            log.info(
                "%s: a frame layout keeps its frames at %g fps (capture.ingest.fps %g applies "
                "to videos)",
                src.sequence_dir,
                fps_src,
                fps,
            )
        counts.update(
            _ingest_frames(src, {s: writers[s] for s in todo}, workers, progress, mark_done)
        )
        n_frames, dropped = len(src.frame_ids), {}
        frame_ids = list(src.frame_ids)
    if n_frames == 0:
        raise CaptureError(f"{src.sequence_dir}: no frames to ingest")

    n_plates = 0
    for serial, w in writers.items():
        bg = src.background_path(serial)
        if bg is not None:
            w.background(_read_rgb(bg), bg)
            n_plates += 1
    if src.layout == "nersemble_v2" and n_plates < len(writers):
        log.info(
            "%s: background plates for %d of %d cameras (%s)",
            src.sequence_dir,
            n_plates,
            len(writers),
            layouts.v2_background_path(src.subject_dir, "<serial>"),
        )
    _copy_annotations(src, writers, stage)
    write_camera_params(
        layout.sequence_calibration_file(stage), [w.resample.out_camera for w in writers.values()]
    )
    record = {
        "settings": settings,
        "n_frames": n_frames,
        "first_frame": frame_ids[0],
        "last_frame": frame_ids[-1],
        "dropped": dropped,
    }
    save_json(layout.sequence_file(stage), {"fps": float(out_fps), "ingest": record})
    shutil.rmtree(stage / DONE_DIR)
    _swap_in(stage, final)
    seconds = time.perf_counter() - start
    log.info(
        "%s: ingested %s (%s) -> %s: %d cameras x %d frames at %g fps in %.1f s",
        subject,
        src.sequence_dir,
        src.layout,
        final,
        len(use),
        n_frames,
        out_fps,
        seconds,
    )
    return IngestResult(
        final,
        layout.sequence_calibration_file(final),
        src.layout,
        tuple(use),
        n_frames,
        float(out_fps),
        dropped,
        seconds=seconds,
    )


def _drop_frames_from(stage: Path, n: int) -> None:
    """Remove frame folders with id >= n (frames past the common span)."""
    ts = layout.timesteps_dir(stage)
    if not ts.is_dir():
        return
    for p in ts.iterdir():
        t = layout.parse_frame_name(p.name)
        if t is not None and t >= n:
            shutil.rmtree(p)


def _ingest_frames(
    src: SourceSequence,
    writers: dict[str, _Writer],
    workers: int | None,
    progress: bool,
    mark_done: Callable[[str, int], None],
) -> dict[str, int]:
    """Write the frames of a frame layout, one thread per camera."""
    if not writers:
        return {}
    bar = None
    lock = threading.Lock()
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(writers) * len(src.frame_ids), unit="frame", leave=False)

    def tick() -> None:
        if bar is not None:
            with lock:
                bar.update(1)

    def one(serial: str) -> int:
        n = _frames_camera(src, writers[serial], tick)
        mark_done(serial, n)
        return n

    serials = list(writers)
    try:
        counts = thread_map(one, serials, min(8, len(serials)) if workers is None else workers)
    finally:
        if bar is not None:
            bar.close()
    return dict(zip(serials, counts, strict=True))
