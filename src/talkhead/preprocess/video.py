"""Frames from video, frame-accurately, at a target frame rate (PyAV, FFmpeg's decoders).

Frame ``t`` of the output is the decoded frame whose presentation time, counted from the
video's first frame, is nearest to ``t / fps`` (ties go to the earlier frame); the output ends
at the last ``t`` whose time lies within half a source frame interval of the last frame. With
``fps=None`` every decoded frame is kept (``t`` = its index). Timestamps, not frame counts,
decide, so a variable-frame-rate video gives the frames at the right times.

Videos of a multi-camera recording are decoded in parallel, one thread per camera (FFmpeg's
decoders and OpenCV release the GIL), with one progress bar; cameras whose videos differ in
length are trimmed to the common span by the caller (:func:`common_span` says how many frames
each camera loses).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..capture.readers import thread_map
from ..errors import CaptureError
from ..io import PathLike

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Called with (frame index t, (H, W, 3) uint8 RGB) for each output frame.
FrameSink = Callable[[int, np.ndarray], None]


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video's first video stream (no frame is decoded).

    Attributes:
        path: the file.
        width, height: frame size in pixels.
        n_frames: frame count in the header (0 when the container does not say).
        fps: average frame rate (frames per second; 0 when unknown).
        codec: decoder name (e.g. ``h264``).
    """

    path: Path
    width: int
    height: int
    n_frames: int
    fps: float
    codec: str


def _open(path: Path):
    import av

    if not path.is_file():
        raise CaptureError(f"{path}: video file is missing")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise CaptureError(f"{path}: unreadable video (corrupt or not a video: {exc})") from None
    if not container.streams.video:
        container.close()
        raise CaptureError(f"{path}: no video stream")
    return container


def probe_video(path: PathLike) -> VideoInfo:
    """The first video stream's size, frame count and rate from the container header.

    Raises:
        CaptureError: naming the file when it is missing, not a video, or has no video stream.
    """
    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        return VideoInfo(
            path=path,
            width=int(stream.codec_context.width),
            height=int(stream.codec_context.height),
            n_frames=int(stream.frames or 0),
            fps=float(rate) if rate else 0.0,
            codec=str(stream.codec_context.name),
        )
    finally:
        container.close()


def pick_frames(frames: Iterable[tuple[float, T]], fps: float | None) -> Iterator[tuple[int, T]]:
    """Frames at ``t / fps`` from a stream of (presentation time in seconds, payload).

    Args:
        frames: (time, payload) in presentation order; times need not be evenly spaced.
        fps: target frame rate; None keeps every frame.

    Yields:
        (t, payload): for t = 0, 1, ..., the payload whose time, relative to the first one, is
        nearest to t / fps (ties: the earlier); a payload may repeat (fps above the source's)
        or be skipped. Ends at the last t within half a source interval of the last frame.
    """
    if fps is None:
        for i, (_, payload) in enumerate(frames):
            yield i, payload
        return
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    t = 0
    t0: float | None = None
    prev: tuple[float, T] | None = None
    interval = 0.0
    for time, payload in frames:
        if t0 is None:
            t0 = time
        rel = time - t0
        if prev is not None:
            interval = rel - prev[0] if rel > prev[0] else interval
        while t / fps <= rel + 1e-9:
            target = t / fps
            if prev is not None and target - prev[0] <= rel - target:
                yield t, prev[1]
            else:
                yield t, payload
            t += 1
        prev = (rel, payload)
    if prev is None:
        return
    while t / fps <= prev[0] + 0.5 * interval + 1e-9:
        yield t, prev[1]
        t += 1


#: FFmpeg colour-space tags (AVColorSpace) of BT.709 video; anything else is decoded as
#: BT.601 (FFmpeg's choice for untagged video).
_LUMA_WEIGHTS = {1: (0.2126, 0.0722)}
_BT601 = (0.299, 0.114)


def yuv420_to_rgb(
    yuv: np.ndarray, width: int, height: int, bt709: bool = False, full_range: bool = False
) -> np.ndarray:
    """Planar 4:2:0 YCbCr (FFmpeg ``yuv420p`` as one (H * 3/2, W) uint8 array) -> RGB.

    Chroma is upsampled bilinearly (centre-sited) and the matrix applied in float with
    rounding; FFmpeg's own fast path (swscale without accurate rounding) is about 1.2 levels
    dark on average, which this avoids.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    import cv2

    h2, w2 = height // 2, width // 2
    y = yuv[:height].astype(np.float32)
    flat = yuv[height:].reshape(-1)
    u = flat[: h2 * w2].reshape(h2, w2).astype(np.float32)
    v = flat[h2 * w2 : 2 * h2 * w2].reshape(h2, w2).astype(np.float32)
    u = cv2.resize(u, (width, height), interpolation=cv2.INTER_LINEAR) - 128.0
    v = cv2.resize(v, (width, height), interpolation=cv2.INTER_LINEAR) - 128.0
    kr, kb = (0.2126, 0.0722) if bt709 else _BT601
    kg = 1.0 - kr - kb
    if full_range:
        cscale = 1.0
    else:
        y = (y - 16.0) * np.float32(255.0 / 219.0)
        cscale = 255.0 / 224.0
    r = y + np.float32(2 * (1 - kr) * cscale) * v
    b = y + np.float32(2 * (1 - kb) * cscale) * u
    g = y - np.float32(2 * (1 - kb) * kb / kg * cscale) * u
    g -= np.float32(2 * (1 - kr) * kr / kg * cscale) * v
    rgb = np.stack([r, g, b], axis=-1)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def frame_to_rgb(frame) -> np.ndarray:
    """A decoded PyAV frame as (H, W, 3) uint8 RGB: 4:2:0 frames of even size through
    :func:`yuv420_to_rgb` (their colour-space and range tags honoured), others through
    FFmpeg's converter."""
    fmt = frame.format.name
    if fmt in ("yuv420p", "yuvj420p") and frame.width % 2 == 0 and frame.height % 2 == 0:
        full = fmt == "yuvj420p" or getattr(frame, "color_range", 0) == 2
        return yuv420_to_rgb(
            frame.to_ndarray(format="yuv420p"),
            frame.width,
            frame.height,
            bt709=getattr(frame, "colorspace", 2) in _LUMA_WEIGHTS,
            full_range=full,
        )
    return frame.to_ndarray(format="rgb24")


def _frame_time(frame, index: int, rate: float) -> float:
    if frame.pts is not None and frame.time_base is not None:
        return float(frame.pts * frame.time_base)
    return index / rate if rate else float(index)


def decode_video(
    path: PathLike,
    sink: FrameSink,
    fps: float | None = None,
    pixel_format: str = "rgb24",
    on_decoded: Callable[[], None] | None = None,
) -> int:
    """Decode a video once, front to back, and hand the frames at ``t / fps`` to ``sink``.

    Args:
        path: the video.
        sink: called with (t, (H, W, 3) uint8 RGB) per output frame, in order of t.
        fps: target frame rate (None: every frame); see :func:`pick_frames`.
        pixel_format: FFmpeg pixel format of the arrays handed over.
        on_decoded: called after each decoded source frame (a progress bar's update).

    Returns:
        The number of frames handed to ``sink``.

    Raises:
        CaptureError: naming the file when it is missing, not a video, or fails to decode
            (saying how many frames were decoded before the failure).
    """
    import av

    path = Path(path)
    container = _open(path)
    n_decoded = 0
    n_out = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or 0)

        def timed() -> Iterator[tuple[float, object]]:
            nonlocal n_decoded
            for frame in container.decode(stream):
                yield _frame_time(frame, n_decoded, rate), frame
                n_decoded += 1
                if on_decoded is not None:
                    on_decoded()

        for t, frame in pick_frames(timed(), fps):
            if pixel_format == "rgb24":
                sink(t, frame_to_rgb(frame))
            else:
                sink(t, frame.to_ndarray(format=pixel_format))
            n_out += 1
    except av.error.FFmpegError as exc:
        raise CaptureError(
            f"{path}: video fails to decode after {n_decoded} frames (corrupt or truncated: {exc})"
        ) from None
    finally:
        container.close()
    if n_decoded == 0:
        raise CaptureError(f"{path}: video has no decodable frames (corrupt or empty)")
    return n_out


def decode_videos(
    paths: Mapping[str, PathLike],
    sink: Callable[[str, int, np.ndarray], None],
    fps: float | None = None,
    workers: int | None = None,
    progress: bool = True,
    pixel_format: str = "rgb24",
    on_done: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Decode one video per camera in parallel (see :func:`decode_video`).

    Args:
        paths: ``{serial: video}``.
        sink: called with (serial, t, frame) from the decoding threads.
        fps: target frame rate (None: every frame).
        workers: threads (None: one per camera, at most 8).
        progress: show one progress bar over every camera's decoded frames.
        pixel_format: FFmpeg pixel format of the arrays handed over.
        on_done: called with (serial, frames handed over) when a camera's video is done.

    Returns:
        ``{serial: number of frames handed to sink}``.

    Raises:
        CaptureError: naming the first video that could not be read.
    """
    serials = list(paths)
    workers = min(8, len(serials)) if workers is None else max(1, workers)
    total = 0
    for serial in serials:
        total += probe_video(paths[serial]).n_frames
    bar = None
    lock = threading.Lock()
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total or None, unit="frame", desc="decoding", leave=False)

    def tick() -> None:
        if bar is not None:
            with lock:
                bar.update(1)

    def one(serial: str) -> int:
        n = decode_video(
            paths[serial],
            lambda t, img: sink(serial, t, img),
            fps=fps,
            pixel_format=pixel_format,
            on_decoded=tick,
        )
        if on_done is not None:
            on_done(serial, n)
        return n

    try:
        counts = thread_map(one, serials, workers)
    finally:
        if bar is not None:
            bar.close()
    return dict(zip(serials, counts, strict=True))


def common_span(counts: Mapping[str, int], what: str = "") -> tuple[int, dict[str, int]]:
    """The frame count every camera has, and how many frames each camera loses to it (logged).

    Args:
        counts: ``{serial: frames decoded}``.
        what: the sequence, for the log line.

    Returns:
        (n, {serial: frames dropped}) with n = min(counts).
    """
    if not counts:
        return 0, {}
    n = min(counts.values())
    dropped = {s: c - n for s, c in counts.items() if c > n}
    if dropped:
        log.warning(
            "%svideos differ in length: trimmed to the common span of %d frames, dropping %s",
            f"{what}: " if what else "",
            n,
            ", ".join(f"{c} from camera {s}" for s, c in sorted(dropped.items())),
        )
    return n, dropped
