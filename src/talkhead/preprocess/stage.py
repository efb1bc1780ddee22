"""Runners of the preprocess products (the only I/O of mattes, landmarks, segmentation, audio).

Each runner writes ONE product into its own partial talkhead-layout sequence folder
``out_seq_dir`` (``<out>/<subject>/sequences/<SEQ>``, paths from
:mod:`talkhead.capture.layout`), every file atomically, and returns a flat metrics dict.
A runner whose product the capture already ships writes nothing and returns
``{"skipped": True, ...}`` (the landmarks and segmentation runners run anyway with
``force=True``, for products that replace the capture's own: open the sequence with
``replace=[...]`` to read them, :func:`talkhead.capture.sequence.open_sequence_dir`).

- :func:`run_mattes_stage`: ``timesteps/frame_<t>/alpha_map/cam_<serial>.png`` (8-bit);
- :func:`run_landmarks_stage`: ``annotations/landmarks2D/cam_<serial>.npy`` (T, 68, 3);
- :func:`run_segmentation_stage`:
  ``timesteps/frame_<t>/facer_segmentation_masks/segmentation_cam_<serial>.png`` (LaPa);
- :func:`run_audio_stage`: ``audio/audio_recording.wav``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..capture import layout
from ..capture.readers import read_alpha, read_images
from ..errors import CaptureError
from ..io import PathLike, atomic_path, read_image, save_image, save_metrics
from .audio import apply_offset, read_audio_any
from .config import AudioConfig, LandmarksConfig, MatteConfig, SegmentationConfig
from .landmarks import FaceMeshDetector, consensus_confidence, head_box, mesh_to_ibug68
from .mattes import SelfieSegmenter, clean_foreground, plate_difference, soft_matte
from .segmentation import segment_from_mesh

if TYPE_CHECKING:
    from ..capture.sequence import CaptureSequence

__all__ = [
    "run_audio_stage",
    "run_landmarks_stage",
    "run_mattes_stage",
    "run_segmentation_stage",
    "save_product_metrics",
]

log = logging.getLogger(__name__)


#: Wall-clock figures of the runners' metrics: they go to timing.json (nothing reads it), so
#: that metrics.json is the same byte for byte on every run.
TIMING_KEYS = ("seconds", "ms_per_view")


def save_product_metrics(folder: PathLike, metrics: dict[str, Any]) -> None:
    """A product's ``metrics.json`` (what a runner returned, timing left out) and
    ``timing.json`` (:data:`TIMING_KEYS`), in the product's folder (created if the runner
    wrote nothing there)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    timing = {k: metrics[k] for k in TIMING_KEYS if k in metrics}
    save_metrics(folder / "metrics.json", {k: v for k, v in metrics.items() if k not in timing})
    if timing:
        save_metrics(folder / "timing.json", timing)


def _save_matte(path: Path, alpha: np.ndarray) -> None:
    save_image(path, np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8))


def _read_matte(path: Path) -> np.ndarray:
    """An 8/16-bit matte PNG as (H, W) float32 in [0, 1]."""
    try:
        m = read_image(path, unchanged=True)
    except OSError:
        raise CaptureError(f"{path}: matte is missing or unreadable") from None
    if m.ndim == 3:
        m = m[..., 0]
    scale = 65535.0 if m.dtype == np.uint16 else 255.0
    return (m.astype(np.float32) / np.float32(scale)).clip(0.0, 1.0)


def _mattes(seq: CaptureSequence, t: int, mattes_dir: PathLike | None) -> np.ndarray | None:
    """(C, H, W) mattes of frame ``t``: the capture's, else those in ``mattes_dir``, else None."""
    if seq.has_alpha:
        return read_alpha(seq, t)
    if mattes_dir is None:
        return None
    paths = [layout.alpha_path(mattes_dir, t, s) for s in seq.serials]
    if not all(p.is_file() for p in paths):
        return None
    return np.stack([_read_matte(p) for p in paths])


# --------------------------------------------------------------------------------------------
# Mattes
# --------------------------------------------------------------------------------------------


def run_mattes_stage(
    seq: CaptureSequence,
    out_seq_dir: PathLike,
    settings: MatteConfig | None = None,
    background_dir: PathLike | None = None,
) -> dict[str, Any]:
    """Alpha mattes of every camera and frame.

    ``method: auto`` uses the plate difference (:func:`.mattes.plate_difference`)
    for cameras with a plate in ``background_dir`` and MediaPipe's selfie segmentation for the
    others; ``background`` requires a plate for every camera; ``selfie`` ignores plates. Each
    foreground is cleaned (:func:`~talkhead.preprocess.mattes.clean_foreground`).

    Args:
        seq: the sequence (its images are read).
        out_seq_dir: the product's sequence folder.
        settings: ``preprocess.mattes``.
        background_dir: folder of ``cam_<serial>.png`` plates (default:
            ``background/`` of the sequence, or of the overlay holding the plates; see
            :func:`talkhead.capture.layout.background_dir`).

    Returns:
        metrics: ``skipped``, ``method`` (per camera: ``background`` or ``selfie``, joined),
        ``cameras_with_plates``, ``foreground_fraction_mean``, ``empty_mattes`` (views whose
        matte has no foreground), ``ms_per_view``, ``seconds``.

    Raises:
        CaptureError: ``method: background`` and a plate is missing, or a plate is unreadable
            or of another size (naming the file).
    """
    cfg = settings or MatteConfig()
    if seq.has_alpha:
        return {"skipped": True, "reason": "the capture ships alpha mattes"}
    t0 = time.perf_counter()
    bg_dir = (
        Path(background_dir)
        if background_dir is not None
        else layout.background_dir(seq.product_dir("background"))
    )
    plates: dict[str, np.ndarray] = {}
    if cfg.method != "selfie":
        for serial in seq.serials:
            p = bg_dir / layout.IMAGE_FILE.format(serial=serial, ext=".png")
            if p.is_file():
                try:
                    plate = read_image(p)
                except OSError:
                    raise CaptureError(f"{p}: unreadable background plate") from None
                if plate.shape[:2] != (seq.height, seq.width):
                    raise CaptureError(
                        f"{p}: background plate is {plate.shape[1]}x{plate.shape[0]}, "
                        f"the images {seq.width}x{seq.height}"
                    )
                plates[serial] = plate
            elif cfg.method == "background":
                raise CaptureError(
                    f"{p}: background plate is missing (preprocess.mattes.method is "
                    f"'background'; 'auto' or 'selfie' use selfie segmentation instead)"
                )
    segmenter = SelfieSegmenter(cfg.selfie_model) if len(plates) < seq.n_cameras else None
    out = Path(out_seq_dir)
    fractions, empty, per_view = [], 0, []
    try:
        for t in seq.frame_ids:
            images = read_images(seq, t)
            for c, serial in enumerate(seq.serials):
                tv = time.perf_counter()
                if serial in plates:
                    prob = plate_difference(
                        images[c], plates[serial], cfg.background_low, cfg.background_high
                    )
                    fg = prob >= 0.5
                else:
                    assert segmenter is not None
                    prob = segmenter(images[c])
                    fg = prob > cfg.selfie_threshold
                fg = clean_foreground(
                    fg, cfg.morphology_px, cfg.min_component_fraction, cfg.fill_holes
                )
                alpha = soft_matte(prob, fg)
                per_view.append(time.perf_counter() - tv)
                fractions.append(float(fg.mean()))
                empty += int(not fg.any())
                _save_matte(layout.alpha_path(out, t, serial), alpha)
    finally:
        if segmenter is not None:
            segmenter.close()
    if empty:
        log.warning(
            "%s: %d of %d mattes have no foreground", seq.sequence_dir, empty, len(fractions)
        )
    methods = ["background" if s in plates else "selfie" for s in seq.serials]
    return {
        "skipped": False,
        "method": ",".join(sorted(set(methods))),
        "cameras_with_plates": len(plates),
        "foreground_fraction_mean": float(np.mean(fractions)) if fractions else None,
        "empty_mattes": empty,
        "ms_per_view": 1000.0 * float(np.median(per_view)) if per_view else None,
        "seconds": time.perf_counter() - t0,
    }


# --------------------------------------------------------------------------------------------
# Face mesh per view (landmarks and segmentation)
# --------------------------------------------------------------------------------------------


def _detect_views(
    detector: FaceMeshDetector,
    images: np.ndarray,
    mattes: np.ndarray | None,
    margin: float,
    times: list[float],
) -> list[np.ndarray | None]:
    """Face mesh (478, 3) or None of each of the (C, H, W, 3) images: in the head box of the
    matte when there is one, then, if that fails, in the whole image."""
    out: list[np.ndarray | None] = []
    for c in range(images.shape[0]):
        tv = time.perf_counter()
        box = head_box(mattes[c], margin=margin) if mattes is not None else None
        mesh = detector.detect(images[c], box)
        if mesh is None and box is not None:
            mesh = detector.detect(images[c])
        times.append(time.perf_counter() - tv)
        out.append(mesh)
    return out


def run_landmarks_stage(
    seq: CaptureSequence,
    out_seq_dir: PathLike,
    settings: LandmarksConfig | None = None,
    mattes_dir: PathLike | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """iBUG-68 2D landmarks of every camera and frame from MediaPipe's face mesh.

    Per view: the face mesh in a crop around the head (from the matte: the capture's, else
    the mattes product in ``mattes_dir``; downscaled to ``max_side``), mapped to the 68
    (:data:`~talkhead.preprocess.landmarks.MESH_TO_IBUG68`) with confidence 1; a view where no
    face is found gets confidence 0 (counted). Per frame, views that disagree with the
    multi-view triangulation get ``disagreeing_confidence``
    (:func:`~talkhead.preprocess.landmarks.consensus_confidence`).

    Args:
        seq: the sequence; out_seq_dir: the product's sequence folder.
        settings: ``preprocess.landmarks``.
        mattes_dir: the mattes product's sequence folder, if the capture has no mattes.
        force: detect even when the capture ships 2D landmarks (``capture.landmarks:
            mediapipe``: they replace the capture's own).

    Returns:
        metrics: ``skipped``, ``views``, ``failed_views``, ``detection_rate``,
        ``cam_<serial>_failed_views``, ``disagreeing_fraction`` (of detected landmarks),
        ``ms_per_view`` (median detection time), ``seconds``.
    """
    cfg = settings or LandmarksConfig()
    if seq.has_landmarks and not force:
        return {"skipped": True, "reason": "the capture ships 2D landmarks"}
    t0 = time.perf_counter()
    cams = [seq.cameras[s] for s in seq.serials]
    C, T = seq.n_cameras, seq.n_frames
    lm = np.zeros((C, T, 68, 3), dtype=np.float32)
    disagree = np.zeros((C, T, 68), dtype=bool)
    times: list[float] = []
    with FaceMeshDetector(cfg.min_detection_confidence, cfg.max_side) as detector:
        for k, t in enumerate(seq.frame_ids):
            meshes = _detect_views(
                detector, read_images(seq, t), _mattes(seq, t, mattes_dir), cfg.crop_margin, times
            )
            frame = np.zeros((C, 68, 3))
            for c, mesh in enumerate(meshes):
                if mesh is not None:
                    frame[c, :, :2] = mesh_to_ibug68(mesh[:, :2])
                    frame[c, :, 2] = 1.0
            lm[:, k], disagree[:, k] = consensus_confidence(
                frame, cams, cfg.max_disagreement, cfg.disagreeing_confidence
            )
    out = Path(out_seq_dir)
    for c, serial in enumerate(seq.serials):
        with atomic_path(layout.landmarks_path(out, serial), suffix=".npy") as tmp:
            np.save(tmp, lm[c])
    failed = lm[..., 2].max(axis=-1) <= 0  # (C, T)
    if failed.any():
        log.warning(
            "%s: no face found in %d of %d views (%s)",
            seq.sequence_dir,
            int(failed.sum()),
            failed.size,
            ", ".join(
                f"cam_{s}: {int(n)}" for s, n in zip(seq.serials, failed.sum(1), strict=True) if n
            ),
        )
    detected = lm[..., 2] > 0
    metrics: dict[str, Any] = {
        "skipped": False,
        "views": int(C * T),
        "failed_views": int(failed.sum()),
        "detection_rate": float(1.0 - failed.mean()) if failed.size else None,
        "disagreeing_fraction": float(disagree.sum() / max(detected.sum(), 1)),
        "ms_per_view": 1000.0 * float(np.median(times)) if times else None,
        "seconds": time.perf_counter() - t0,
    }
    for c, serial in enumerate(seq.serials):
        metrics[f"cam_{serial}_failed_views"] = int(failed[c].sum())
    return metrics


# --------------------------------------------------------------------------------------------
# Segmentation
# --------------------------------------------------------------------------------------------


def run_segmentation_stage(
    seq: CaptureSequence,
    out_seq_dir: PathLike,
    settings: SegmentationConfig | None = None,
    landmarks_settings: LandmarksConfig | None = None,
    mattes_dir: PathLike | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Facer (LaPa) label maps of every camera and frame from the face mesh's regions
    (:func:`~talkhead.preprocess.segmentation.segment_from_mesh`); a view with no face found
    is all background (counted).

    Args:
        seq: the sequence; out_seq_dir: the product's sequence folder.
        settings: ``preprocess.segmentation``.
        landmarks_settings: ``preprocess.landmarks`` (detector settings and head crop).
        mattes_dir: the mattes product's sequence folder, if the capture has no mattes.
        force: segment even when the capture ships a segmentation (it replaces the capture's).

    Returns:
        metrics: ``skipped``, ``views``, ``failed_views``, ``face_fraction_mean`` (labels 1-9
        per view), ``ms_per_view``, ``seconds``.
    """
    cfg = settings or SegmentationConfig()
    lcfg = landmarks_settings or LandmarksConfig()
    if seq.has_segmentation and not force:
        return {"skipped": True, "reason": "the capture ships a segmentation"}
    t0 = time.perf_counter()
    out = Path(out_seq_dir)
    failed, fractions, times = 0, [], []
    with FaceMeshDetector(lcfg.min_detection_confidence, lcfg.max_side) as detector:
        for t in seq.frame_ids:
            mattes = _mattes(seq, t, mattes_dir)
            meshes = _detect_views(detector, read_images(seq, t), mattes, lcfg.crop_margin, times)
            for c, serial in enumerate(seq.serials):
                alpha = mattes[c] if (cfg.use_alpha and mattes is not None) else None
                labels = segment_from_mesh(meshes[c], seq.height, seq.width, alpha)
                failed += int(meshes[c] is None)
                fractions.append(float(((labels >= 1) & (labels <= 9)).mean()))
                save_image(layout.segmentation_path(out, t, serial), labels)
    if failed:
        log.warning("%s: no face found in %d views", seq.sequence_dir, failed)
    return {
        "skipped": False,
        "views": len(fractions),
        "failed_views": failed,
        "face_fraction_mean": float(np.mean(fractions)) if fractions else None,
        "ms_per_view": 1000.0 * float(np.median(times)) if times else None,
        "seconds": time.perf_counter() - t0,
    }


# --------------------------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------------------------


def run_audio_stage(
    source: PathLike,
    offset_s: float,
    out_seq_dir: PathLike,
    settings: AudioConfig | None = None,
    capture_has_audio: bool = False,
) -> dict[str, Any]:
    """The capture's ``audio/audio_recording.wav`` from an audio file or a video's audio stream.

    Written at the source's sample rate (the audio stage resamples), 16-bit PCM, mono when
    ``settings.mono`` else with the source's channels.

    Args:
        source: the sample sheet's ``audio`` file (wav, flac, mp3, ogg, m4a, ...) or a video.
        offset_s: the sheet's ``audio_offset_s``: positive skips the first seconds, negative
            pads with silence.
        out_seq_dir: the product's sequence folder.
        settings: ``preprocess.audio``.
        capture_has_audio: the capture ships audio (then nothing is written).

    Returns:
        metrics: ``skipped``, ``source``, ``sample_rate``, ``channels``, ``duration_s``,
        ``offset_s``.

    Raises:
        CaptureError: unreadable file, no audio stream, 0 samples, or nothing left after the
            offset (one line naming the file).
    """
    import soundfile as sf

    cfg = settings or AudioConfig()
    if capture_has_audio:
        return {"skipped": True, "reason": "the capture ships audio"}
    src = Path(source)
    audio, sr = read_audio_any(src)
    length_s = audio.shape[0] / sr
    audio = apply_offset(audio, sr, float(offset_s))
    if audio.shape[0] == 0:
        raise CaptureError(
            f"{src}: nothing left after skipping audio_offset_s = {offset_s} s "
            f"(the file lasts {length_s:.2f} s)"
        )
    if cfg.mono and audio.shape[1] > 1:
        audio = audio.mean(axis=1, keepdims=True)
    with atomic_path(layout.audio_path(out_seq_dir, ".wav"), suffix=".wav") as tmp:
        sf.write(str(tmp), audio if audio.shape[1] > 1 else audio[:, 0], sr, subtype="PCM_16")
    return {
        "skipped": False,
        "source": str(src),
        "sample_rate": int(sr),
        "channels": int(audio.shape[1]),
        "duration_s": audio.shape[0] / sr,
        "offset_s": float(offset_s),
    }
