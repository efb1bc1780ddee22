"""Write a talkhead-layout sequence (e.g. the synthetic capture) in the published NeRSemble
layouts (:mod:`talkhead.capture.layouts`), as a real kit would ship it, so the readers and
ingest can be tested against known pixels, depth and colours.

- :func:`export_nersemble_v1`: ``[timesteps/]frame_<t>/images-2x/``, ``alpha_map/``, v1's
  quantised depth (``colmap/depth_maps_compressed/``, bin 0 = masked, (q - 1) x 2 m / 65534),
  affine colour matrices in ``annotations/<SEQ>/color_correction/<serial>.npy`` with their
  inverse applied to the images.
- :func:`export_nersemble_v2`: one H.264 / yuv420p mp4 per camera (PyAV, the encoder a real
  kit's videos come from), ``calibration/camera_params.json``, ``color_calibration.json``
  (Cheung-2004 matrices, 3 terms; the images carry their inverse in linear RGB, so applying
  them restores the colours), ``sequences/BACKGROUND/image_<serial>.jpg`` plates (the
  sequence's own where it has them, else estimated from the frames and mattes).
- :func:`export_nersemble_benchmark`: per-serial intrinsics, ``images/`` and ``alpha_maps/``
  mp4s, ``pointclouds/frame_<t:05d>.pcd`` (from depth maps, when given), and a FLAME tracking
  ``.npz`` when given.

Only what each kit ships is written: v2 has no mattes, landmarks, segmentation, depth or audio.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import CaptureError
from ..geometry.cameras import Camera
from ..io import PathLike, atomic_path, save_image, save_json, save_npz
from . import layout, layouts
from .calibration import write_camera_params
from .depth_png import encode_depth

if TYPE_CHECKING:
    from .sequence import CaptureSequence

#: A depth map source: (frame id, serial) -> (H, W) metres (0 = masked), or None.
DepthSource = Callable[[int, str], "np.ndarray | None"]


# --------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------


def write_video(
    path: PathLike,
    frames: Iterable[np.ndarray],
    fps: float,
    times: Sequence[float] | None = None,
    crf: int = 18,
    codec: str = "libx264",
    pixel_format: str = "yuv420p",
) -> int:
    """Encode (H, W, 3) uint8 RGB frames as an mp4, atomically.

    Args:
        path: the mp4 to write.
        frames: the frames (even width and height for yuv420p).
        fps: nominal frame rate.
        times: presentation time of each frame in seconds (a variable frame rate); None:
            frame i at i / fps.
        crf: x264 constant rate factor (lower: closer to the input; 18 is visually lossless).
        codec, pixel_format: encoder and its pixel format.

    Returns:
        The number of frames written.
    """
    import av

    tb = Fraction(1, 1000) if times is not None else Fraction(1, int(round(fps * 1000)))
    n = 0
    with atomic_path(path, suffix=".mp4") as tmp:
        with av.open(str(tmp), "w") as container:
            stream = None
            for i, img in enumerate(frames):
                img = np.ascontiguousarray(img, dtype=np.uint8)
                if stream is None:
                    stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
                    stream.width, stream.height = img.shape[1], img.shape[0]
                    stream.pix_fmt = pixel_format
                    stream.options = {"crf": str(crf)}
                    stream.codec_context.time_base = tb
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                if times is not None:
                    frame.pts = int(round(times[i] * 1000))
                else:
                    frame.pts = int(round(i * 1000))
                frame.time_base = tb
                for packet in stream.encode(frame):
                    container.mux(packet)
                n += 1
            if stream is not None:
                for packet in stream.encode():
                    container.mux(packet)
    return n


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.maximum(x, 0) ** (1 / 2.4) - 0.055)


_SRGB_DECODE = _srgb_to_linear(np.arange(256) / 255.0).astype(np.float32)


def inverse_cheung3(image: np.ndarray, ccm: np.ndarray) -> np.ndarray:
    """The image a camera with 3-term Cheung-2004 matrix ``ccm`` records: ``inv(ccm)`` applied
    in linear RGB to (H, W, 3) uint8 sRGB, so that applying ``ccm`` restores ``image``."""
    lin = _SRGB_DECODE[image.reshape(-1, 3)] @ np.linalg.inv(ccm).T.astype(np.float32)
    out = np.clip(np.rint(_linear_to_srgb(np.clip(lin, 0.0, 1.0)) * 255.0), 0, 255)
    return out.astype(np.uint8).reshape(image.shape)


def inverse_affine(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The image that v1's affine colour ``matrix`` (3, 4) maps onto (H, W, 3) uint8 ``image``."""
    m = np.asarray(matrix, dtype=np.float64)
    rgb = image.reshape(-1, 3) / 255.0
    if m.shape[1] == 4:
        rgb = rgb - m[:, 3]
    out = np.clip(np.rint(rgb @ np.linalg.inv(m[:, :3]).T * 255.0), 0, 255)
    return out.astype(np.uint8).reshape(image.shape)


def example_colour_matrices(serials: Sequence[str], seed: int = 0) -> dict[str, np.ndarray]:
    """Plausible per-camera colour matrices (3, 3): gains 1.02-1.12, small cross-talk, so the
    inverse darkens and nothing clips; for tests and examples."""
    rng = np.random.default_rng(seed)
    out = {}
    for serial in serials:
        m = np.diag(rng.uniform(1.02, 1.12, 3)) + rng.uniform(0.0, 0.03, (3, 3)) * (1 - np.eye(3))
        out[serial] = m
    return out


def estimate_background_plates(seq: CaptureSequence) -> dict[str, np.ndarray]:
    """Background plates (H, W, 3) uint8 per camera from the frames: the median of the pixels the
    matte calls background (alpha < 0.5) over frames; pixels covered in every frame are
    inpainted (OpenCV Telea). A stand-in for plates the capture did not record."""
    import cv2

    from .readers import read_alpha, read_images

    sums = []
    for t in seq.frame_ids:
        sums.append((read_images(seq, t), read_alpha(seq, t)))
    images = np.stack([s[0] for s in sums])  # (T, C, H, W, 3)
    alphas = np.stack([s[1] for s in sums])  # (T, C, H, W)
    out = {}
    for c, serial in enumerate(seq.serials):
        img = images[:, c].astype(np.float32)
        img[alphas[:, c] >= 0.5] = np.nan
        img.sort(axis=0)  # NaN (the head) last
        n = np.sum(~np.isnan(img[..., 0]), axis=0)  # (H, W) background samples per pixel
        lower_median = np.maximum(n - 1, 0) // 2
        plate = np.take_along_axis(img, lower_median[None, :, :, None], axis=0)[0]
        hole = (n == 0).astype(np.uint8)
        plate = np.nan_to_num(plate).astype(np.uint8)
        if hole.any():
            plate = cv2.inpaint(plate, hole, 5, cv2.INPAINT_TELEA)
        out[serial] = plate
    return out


def sequence_plates(seq: CaptureSequence) -> dict[str, np.ndarray]:
    """Background plates (H, W, 3) uint8 per camera: the sequence's own
    (:meth:`~talkhead.capture.sequence.CaptureSequence.background_path`, e.g. the synthetic
    studio's), else, for cameras without one, :func:`estimate_background_plates` when the
    sequence has mattes; cameras with neither are left out.

    Raises:
        CaptureError: a plate is unreadable or of another size than the images (naming it).
    """
    from .readers import read_image_file

    own: dict[str, np.ndarray] = {}
    for serial in seq.serials:
        path = seq.background_path(serial)
        if path.is_file():
            plate = read_image_file(path)
            if seq.width and plate.shape[:2] != (seq.height, seq.width):
                raise CaptureError(
                    f"{path}: background plate is {plate.shape[1]}x{plate.shape[0]}, "
                    f"the images {seq.width}x{seq.height}"
                )
            own[serial] = plate
    if len(own) == len(seq.serials) or not seq.has_alpha:
        return own
    estimated = estimate_background_plates(seq)
    return {s: own.get(s, estimated[s]) for s in seq.serials}


def _depth_source(seq: CaptureSequence, depth: DepthSource | None) -> DepthSource | None:
    if depth is not None:
        return depth
    if not seq.has_precomputed_depth:
        return None
    from .readers import read_precomputed_depth

    return lambda t, serial: read_precomputed_depth(seq, t, [serial])[0]


def _subject_sequence(seq, subject, sequence) -> tuple[str, str]:
    return subject or seq.subject, sequence or seq.sequence


def _write_pcd(path: Path, points: np.ndarray, colors: np.ndarray) -> None:
    """An ASCII PCD (x y z rgb) of (N, 3) metres and (N, 3) uint8 colours, atomically."""
    rgb = (
        (colors[:, 0].astype(np.uint32) << 16)
        | (colors[:, 1].astype(np.uint32) << 8)
        | colors[:, 2].astype(np.uint32)
    )
    header = (
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z rgb\n"
        "SIZE 4 4 4 4\nTYPE F F F U\nCOUNT 1 1 1 1\n"
        f"WIDTH {len(points)}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {len(points)}\n"
        "DATA ascii\n"
    )
    with atomic_path(path, suffix=".pcd") as tmp:
        with open(tmp, "w") as f:
            f.write(header)
            for p, c in zip(points, rgb, strict=True):
                f.write(f"{p[0]:.6f} {p[1]:.6f} {p[2]:.6f} {int(c)}\n")


# --------------------------------------------------------------------------------------------
# Layouts
# --------------------------------------------------------------------------------------------


def export_nersemble_v1(
    seq: CaptureSequence,
    out_root: PathLike,
    subject: str | None = None,
    sequence: str | None = None,
    colour: Mapping[str, np.ndarray] | None = None,
    depth: DepthSource | None = None,
    timesteps: bool = True,
    suffix: str = "",
    image_ext: str = ".png",
) -> Path:
    """Write ``seq`` in NeRSemble v1's layout; the sequence folder written.

    Args:
        seq: a talkhead-layout sequence.
        out_root: root of the tree to write; subject, sequence: names (default: seq's).
        colour: ``{serial: (3, 3) or (3, 4)}`` affine colour matrices; the images get their
            inverse and the matrices go to ``annotations/<SEQ>/color_correction/``.
        depth: depth maps to quantise (default: the sequence's precomputed depth, if any).
        timesteps: frame folders under ``timesteps/`` (else directly in the sequence folder).
        suffix: folder suffix (``""`` or ``"-73fps"``).
        image_ext: ``.png`` or ``.jpg``.
    """
    from .readers import read_alpha, read_images

    subject, sequence = _subject_sequence(seq, subject, sequence)
    subj = layout.subject_dir(out_root, subject)
    seq_dir = layout.sequence_dir(out_root, subject, sequence)
    write_camera_params(layout.calibration_path(subj), [seq.cameras[s] for s in seq.serials])
    depth = _depth_source(seq, depth)
    for t in seq.frame_ids:
        fdir = layouts.v1_frame_dir(seq_dir, t, timesteps)
        images = read_images(seq, t)
        alphas = read_alpha(seq, t) if seq.has_alpha else None
        for c, serial in enumerate(seq.serials):
            img = images[c]
            if colour is not None:
                img = inverse_affine(img, colour[serial])
            save_image(layouts.v1_image_path(fdir, serial, suffix, image_ext), img)
            if alphas is not None:
                a = np.clip(np.rint(alphas[c] * 255), 0, 255).astype(np.uint8)
                save_image(layouts.v1_alpha_path(fdir, serial, suffix), a)
            d = depth(t, serial) if depth is not None else None
            if d is not None:
                q = encode_depth(d, layouts.V1_MAX_DEPTH)
                save_image(layouts.v1_depth_path(fdir, serial, suffix), q)
    if colour is not None:
        for serial in seq.serials:
            p = layouts.v1_colour_path(subj, sequence, serial)
            p.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(p, suffix=".npy") as tmp:
                np.save(tmp, np.asarray(colour[serial], dtype=np.float64))
    return seq_dir


def _frames_of(seq: CaptureSequence, serial: str, what: str = "images") -> Iterable[np.ndarray]:
    from .readers import read_alpha, read_images

    for t in seq.frame_ids:
        if what == "images":
            yield read_images(seq, t, [serial])[0]
        else:
            a = np.clip(np.rint(read_alpha(seq, t, [serial])[0] * 255), 0, 255).astype(np.uint8)
            yield np.repeat(a[..., None], 3, axis=-1)


def export_nersemble_v2(
    seq: CaptureSequence,
    out_root: PathLike,
    subject: str | None = None,
    sequence: str | None = None,
    colour: Mapping[str, np.ndarray] | None = None,
    backgrounds: Mapping[str, np.ndarray] | None = None,
    crf: int = 18,
    times: Sequence[float] | None = None,
) -> Path:
    """Write ``seq`` in NeRSemble v2's layout (the download kit); the sequence folder written.

    Args:
        seq: a talkhead-layout sequence.
        out_root: root of the tree; subject (a v2 participant folder is ``<p:03d>``), sequence:
            names (default: seq's).
        colour: ``{serial: (3, 3)}`` Cheung-2004 matrices written to ``color_calibration.json``;
            the videos carry their inverse (linear RGB). None: no colour calibration file.
        backgrounds: ``{serial: (H, W, 3) uint8}`` plates for ``sequences/BACKGROUND/``
            (default: :func:`sequence_plates`, the sequence's own, else estimated); ``{}``
            writes none.
        crf: x264 quality of the videos.
        times: presentation times of the frames in seconds (a variable frame rate), else t/fps.
    """
    subject, sequence = _subject_sequence(seq, subject, sequence)
    subj = layout.subject_dir(out_root, subject)
    seq_dir = layout.sequence_dir(out_root, subject, sequence)
    cams = [replace(seq.cameras[s], width=0, height=0) for s in seq.serials]
    write_camera_params(layouts.kit_calibration_path(subj), cams)
    if colour is not None:
        save_json(
            layouts.colour_calibration_path(subj),
            {s: np.asarray(colour[s]).tolist() for s in seq.serials},
        )
    for serial in seq.serials:
        frames = _frames_of(seq, serial)
        if colour is not None:
            frames = (inverse_cheung3(f, np.asarray(colour[serial])) for f in frames)
        write_video(layouts.video_path(seq_dir, serial), frames, seq.fps, times=times, crf=crf)
    if backgrounds is None:
        backgrounds = sequence_plates(seq)
    for serial, plate in backgrounds.items():
        if colour is not None:
            plate = inverse_cheung3(plate, np.asarray(colour[serial]))
        save_image(layouts.v2_background_path(subj, serial), plate)
    return seq_dir


def export_nersemble_benchmark(
    seq: CaptureSequence,
    out_root: PathLike,
    subject: str | None = None,
    sequence: str | None = None,
    depth: DepthSource | None = None,
    tracking: Mapping[str, np.ndarray] | None = None,
    crf: int = 18,
) -> Path:
    """Write ``seq`` in the NeRSemble benchmark kit's layout; the sequence folder written.

    Args:
        seq: a talkhead-layout sequence with alpha mattes.
        out_root: root of the tree (the kit's ``<benchmark>/<task>`` folder); subject,
            sequence: names (default: seq's).
        depth: depth maps from which ``pointclouds/frame_<t>.pcd`` are made (default: the
            sequence's precomputed depth; none written without depth).
        tracking: FLAME parameters (the kit's keys, :data:`~talkhead.capture.layouts.
            TRACKING_KEYS`) written to ``tracking/flame2023_tracking_v2.npz``.
        crf: x264 quality of the videos.

    Raises:
        CaptureError: the sequence has no mattes, or ``tracking`` lacks one of the kit's keys.
    """
    if not seq.has_alpha:
        raise CaptureError(f"{seq.sequence_dir}: the benchmark kit ships mattes; this has none")
    subject, sequence = _subject_sequence(seq, subject, sequence)
    subj = layout.subject_dir(out_root, subject)
    seq_dir = layout.sequence_dir(out_root, subject, sequence)
    cams = [replace(seq.cameras[s], width=0, height=0) for s in seq.serials]
    _write_per_serial_calibration(layouts.kit_calibration_path(subj), cams)
    for serial in seq.serials:
        write_video(layouts.video_path(seq_dir, serial), _frames_of(seq, serial), seq.fps, crf=crf)
        write_video(
            layouts.alpha_video_path(seq_dir, serial),
            _frames_of(seq, serial, "alpha"),
            seq.fps,
            crf=crf,
        )
    depth = _depth_source(seq, depth)
    if depth is not None:
        from ..geometry.cameras import pixel_grid
        from .readers import read_images

        for i, t in enumerate(seq.frame_ids):
            pts, cols = [], []
            images = read_images(seq, t)
            for c, serial in enumerate(seq.serials):
                d = depth(t, serial)
                if d is None:
                    continue
                ok = d > 0
                cam = seq.cameras[serial]
                uv = pixel_grid(d.shape[1], d.shape[0])[ok]
                pts.append(cam.unproject(uv, d[ok]))
                cols.append(images[c][ok])
            if pts:
                _write_pcd(
                    layouts.pointcloud_path(seq_dir, i), np.concatenate(pts), np.concatenate(cols)
                )
    if tracking is not None:
        missing = [k for k in layouts.TRACKING_KEYS if k not in tracking]
        if missing:
            raise CaptureError(f"FLAME tracking to export lacks {', '.join(missing)}")
        save_npz(layouts.tracking_path(seq_dir, 2), compress=False, **dict(tracking))
    return seq_dir


def _write_per_serial_calibration(path: Path, cameras: Sequence[Camera]) -> None:
    """``camera_params.json`` with one intrinsics matrix per serial (the benchmark kit's form)."""
    save_json(
        path,
        {
            "world_2_cam": {c.serial: c.world_2_cam.tolist() for c in cameras},
            "intrinsics": {c.serial: c.K.tolist() for c in cameras},
        },
    )


def export_sequence(seq: CaptureSequence, out_root: PathLike, layout_name: str, **kwargs) -> Path:
    """Write ``seq`` in one of the published layouts (``nersemble_v1``, ``nersemble_v2``,
    ``nersemble_benchmark``) with the keyword arguments of that layout's exporter; the
    sequence folder written.

    Raises:
        CaptureError: an unknown layout.
    """
    exporters = {
        "nersemble_v1": export_nersemble_v1,
        "nersemble_v2": export_nersemble_v2,
        "nersemble_benchmark": export_nersemble_benchmark,
    }
    if layout_name not in exporters:
        raise CaptureError(
            f"cannot export to layout {layout_name!r}; expected one of {sorted(exporters)}"
        )
    return exporters[layout_name](seq, out_root, **kwargs)
