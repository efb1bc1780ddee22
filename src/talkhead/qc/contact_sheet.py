"""QC contact sheets: views of chosen frames with the 2D landmarks drawn on them.

Frames are chosen by mouth opening (landmark gap ratios), plus the sequence's deepest blink.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..io import PathLike
from .draw import CONFIDENCE_CMAP, new_figure, pick_evenly, save_figure

if TYPE_CHECKING:
    from ..capture.sequence import CaptureSequence

# iBUG-68 contours (index ranges, closed or open) drawn between landmarks.
IBUG68_CONTOURS: tuple[tuple[range, bool], ...] = (
    (range(0, 17), False),  # jaw
    (range(17, 22), False),  # right brow (subject's)
    (range(22, 27), False),  # left brow
    (range(27, 31), False),  # nose bridge
    (range(31, 36), False),  # nostrils
    (range(36, 42), True),  # right eye
    (range(42, 48), True),  # left eye
    (range(48, 60), True),  # outer lips
    (range(60, 68), True),  # inner lips
)


def _gap_ratio(landmarks: np.ndarray, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """(T,) mean distance of landmark ``pairs`` over the eye-corner distance (36-45), median
    over the cameras that see all of them; NaN where none does.

    Args:
        landmarks: (C, T, 68, 3) (x, y, confidence) or (T, 68, 3).
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim == 3:
        lm = lm[None]
    xy, conf = lm[..., :2], lm[..., 2]
    need = [i for p in pairs for i in p] + [36, 45]
    ok = np.all(conf[..., need] > 0, axis=-1) & np.all(np.isfinite(xy[..., need, :]), axis=(-1, -2))
    gap = np.mean(
        [np.linalg.norm(xy[..., a, :] - xy[..., b, :], axis=-1) for a, b in pairs], axis=0
    )
    corners = np.linalg.norm(xy[..., 36, :] - xy[..., 45, :], axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ok & (corners > 0), gap / corners, np.nan)
    out = np.full(ratio.shape[1], np.nan)
    seen = np.any(np.isfinite(ratio), axis=0)
    if seen.any():
        out[seen] = np.nanmedian(ratio[:, seen], axis=0)
    return out


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Mouth opening per frame from 2D iBUG-68 landmarks, robust over cameras.

    Args:
        landmarks: (C, T, 68, 3) (x, y, confidence) or (T, 68, 3).

    Returns:
        (T,) inner-lip gap (landmarks 62-66, 61-67, 63-65 averaged) divided by the eye-corner
        distance (36-45), median over the cameras that see all of them; NaN where none does.
    """
    return _gap_ratio(landmarks, ((62, 66), (61, 67), (63, 65)))


def eye_opening(landmarks: np.ndarray) -> np.ndarray:
    """Eye opening per frame from 2D iBUG-68 landmarks, robust over cameras.

    Args:
        landmarks: (C, T, 68, 3) (x, y, confidence) or (T, 68, 3).

    Returns:
        (T,) mean eyelid gap of both eyes (37-41, 38-40, 43-47, 44-46) divided by the eye-corner
        distance (36-45), median over the cameras that see all of them; NaN where none does.
        It drops towards 0 during a blink.
    """
    return _gap_ratio(landmarks, ((37, 41), (38, 40), (43, 47), (44, 46)))


def blink_frame(eyes: np.ndarray, ratio: float = 0.5) -> int | None:
    """Index of the frame with the most closed eyes when that is a blink (eye opening below
    ``ratio`` times the sequence's median), else None."""
    eyes = np.asarray(eyes, dtype=np.float64)
    if not np.isfinite(eyes).any():
        return None
    i = int(np.nanargmin(eyes))
    return i if eyes[i] < ratio * np.nanmedian(eyes) else None


def pick_frames(n_frames: int, k: int, score: np.ndarray | None = None) -> np.ndarray:
    """Indices of ``k`` frames out of ``n_frames``, in time order.

    Without ``score``: evenly spaced, first and last included. With a (T,) ``score`` (e.g.
    :func:`mouth_opening`): the frames at evenly spaced quantiles of the score, from its minimum
    to its maximum (so a sheet shows the mouth both closed and open); NaN scores are skipped.
    """
    k = max(1, min(k, n_frames))
    if score is not None:
        score = np.asarray(score, dtype=np.float64)
        valid = np.flatnonzero(np.isfinite(score))
        if len(valid) >= k:
            order = valid[np.argsort(score[valid], kind="stable")]
            picks = order[np.round(np.linspace(0, len(order) - 1, k)).astype(int)]
            picks = np.unique(picks)
            if len(picks) == k:
                return np.sort(picks)
    return np.unique(np.round(np.linspace(0, n_frames - 1, k)).astype(int))


def _landmark_box(
    lms: list[np.ndarray], width: int, height: int, margin: float
) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) integer box around the confident landmarks of ``lms`` (each (68, 3))."""
    pts = [
        lm[(lm[:, 2] > 0) & np.all(np.isfinite(lm[:, :2]), axis=1), :2]
        for lm in lms
        if lm is not None
    ]
    pts = [p for p in pts if len(p)]
    if not pts:
        return None
    p = np.concatenate(pts)
    lo, hi = p.min(axis=0), p.max(axis=0)
    c, half = (lo + hi) / 2, (hi - lo).max() / 2 * (1 + margin) + 4
    x0, y0 = int(max(0, math.floor(c[0] - half))), int(max(0, math.floor(c[1] - half)))
    x1, y1 = int(min(width, math.ceil(c[0] + half))), int(min(height, math.ceil(c[1] + half)))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    return x0, y0, x1, y1


def _draw_landmarks(ax, lm: np.ndarray, low_confidence: float, marker_size: float) -> None:
    from matplotlib.colors import Normalize

    xy, conf = lm[:, :2], lm[:, 2]
    valid = (conf > 0) & np.all(np.isfinite(xy), axis=1)
    for idx, closed in IBUG68_CONTOURS:
        ids = list(idx) + ([idx[0]] if closed else [])
        for a, b in zip(ids[:-1], ids[1:], strict=True):
            if valid[a] and valid[b]:
                ax.plot(xy[[a, b], 0], xy[[a, b], 1], color="white", lw=0.6, alpha=0.6)
    norm = Normalize(0.0, 1.0)
    high = valid & (conf >= low_confidence)
    low = valid & (conf < low_confidence)
    if high.any():
        ax.scatter(
            xy[high, 0],
            xy[high, 1],
            c=conf[high],
            cmap=CONFIDENCE_CMAP,
            norm=norm,
            s=marker_size,
            marker="o",
            edgecolors="black",
            linewidths=0.3,
        )
    if low.any():
        ax.scatter(
            xy[low, 0],
            xy[low, 1],
            c=conf[low],
            cmap=CONFIDENCE_CMAP,
            norm=norm,
            s=marker_size * 1.5,
            marker="x",
            linewidths=1.0,
        )


def contact_sheet(
    images: np.ndarray | Sequence[np.ndarray],
    landmarks: np.ndarray | None,
    path: PathLike,
    titles: Sequence[str] | None = None,
    frames: Sequence[int | str] | None = None,
    *,
    title: str | None = None,
    ncols: int | None = None,
    crop: bool = False,
    panel_width: float = 2.6,
    max_side: int = 512,
    low_confidence: float = 0.5,
    dpi: float = 100,
) -> Path:
    """A grid of views with their 2D landmarks (iBUG-68 contours, points coloured by confidence;
    zero-confidence points hidden, points below ``low_confidence`` drawn as crosses).

    Two layouts:

    - one frame: ``images`` (C, H, W, 3), ``landmarks`` (C, 68, 3) or None; a grid of
      ``ncols`` columns (default up to 4) titled with ``titles`` (e.g. serials);
    - several frames: ``images`` a list over F frames of (C, H, W, 3) (or an (F, C, H, W, 3)
      array), ``landmarks`` (F, C, 68, 3) / a list of (C, 68, 3) or None; rows are frames
      (labelled with ``frames``), columns cameras (titled with ``titles``).

    Args:
        crop: crop each camera to its landmarks (union over the frames shown, so that motion
            stays visible); ignored without landmarks.
        panel_width: inches per panel; the figure is about ``ncols * panel_width`` wide.
        max_side: views are downscaled (INTER_AREA) to at most this many pixels per side.
        dpi: output resolution.
    """
    import cv2
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    multi = isinstance(images, (list, tuple)) or np.asarray(images).ndim == 5
    if multi:
        frames_imgs = [np.asarray(f) for f in images]
        lms = None if landmarks is None else [np.asarray(x, np.float64) for x in landmarks]
    else:
        frames_imgs = [np.asarray(images)]
        lms = None if landmarks is None else [np.asarray(landmarks, np.float64)]
    F = len(frames_imgs)
    C = frames_imgs[0].shape[0]
    if any(f.ndim != 4 or f.shape[0] != C or f.shape[-1] != 3 for f in frames_imgs):
        raise ValueError("contact_sheet: images must be (C, H, W, 3) per frame with the same C")
    if lms is not None and (len(lms) != F or any(x.shape != (C, 68, 3) for x in lms)):
        raise ValueError("contact_sheet: landmarks must be (C, 68, 3) per frame")
    H, W = frames_imgs[0].shape[1:3]
    # Crop boxes per camera (same box across the frames shown).
    boxes: list[tuple[int, int, int, int]] = [(0, 0, W, H)] * C
    if crop and lms is not None:
        for c in range(C):
            box = _landmark_box([lm[c] for lm in lms], W, H, margin=0.35)
            if box is not None:
                boxes[c] = box
    if multi:
        nrows, ncols_ = F, C
    else:
        ncols_ = ncols or (min(C, 4) if C <= 16 else math.ceil(math.sqrt(C)))
        nrows = math.ceil(C / ncols_)
    aspect = float(np.median([(b[3] - b[1]) / (b[2] - b[0]) for b in boxes]))
    panel_h = panel_width * aspect
    fig_w = ncols_ * panel_width + 0.9
    fig_h = nrows * (panel_h + (0.25 if not multi else 0.0)) + 0.35 + (0.3 if multi else 0)
    fig = new_figure((fig_w, fig_h), dpi)
    axes = fig.subplots(nrows, ncols_, squeeze=False)
    marker = max(4.0, 14.0 * panel_width / 2.6)
    for r in range(nrows):
        for col in range(ncols_):
            ax = axes[r, col]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            f, c = (r, col) if multi else (0, r * ncols_ + col)
            if c >= C:
                ax.set_axis_off()
                continue
            x0, y0, x1, y1 = boxes[c]
            img = frames_imgs[f][c, y0:y1, x0:x1]
            s = min(1.0, max_side / max(img.shape[:2]))
            if s < 1.0:
                img = cv2.resize(
                    img,
                    (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s))),
                    interpolation=cv2.INTER_AREA,
                )
            sx, sy = img.shape[1] / (x1 - x0), img.shape[0] / (y1 - y0)
            ax.imshow(img, interpolation="antialiased")
            if lms is not None:
                lm = lms[f][c].copy()
                lm[:, 0] = (lm[:, 0] - x0 + 0.5) * sx - 0.5
                lm[:, 1] = (lm[:, 1] - y0 + 0.5) * sy - 0.5
                _draw_landmarks(ax, lm, low_confidence, marker)
            ax.set_xlim(-0.5, img.shape[1] - 0.5)
            ax.set_ylim(img.shape[0] - 0.5, -0.5)
            label = titles[c] if titles is not None else f"view {c}"
            if not multi or r == 0:
                ax.set_title(str(label), fontsize=8)
            if multi and col == 0:
                row = frames[f] if frames is not None else f
                ax.set_ylabel(
                    f"frame {row}" if isinstance(row, (int, np.integer)) else str(row), fontsize=8
                )
    if lms is not None:
        sm = ScalarMappable(Normalize(0.0, 1.0), CONFIDENCE_CMAP)
        cb = fig.colorbar(sm, ax=axes, fraction=0.04, shrink=0.8, pad=0.01)
        cb.set_label("landmark confidence (x: low, hidden: 0)", fontsize=7)
        cb.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def sequence_contact_sheet(
    seq: CaptureSequence,
    path: PathLike,
    n_frames: int = 4,
    n_cameras: int = 4,
    serials: Sequence[str] | None = None,
    crop: bool = True,
    dpi: float = 100,
) -> Path:
    """A multi-frame contact sheet of a capture sequence: rows are ``n_frames`` frames picked
    from the most closed to the most open mouth (:func:`mouth_opening` of the 2D landmarks,
    :func:`pick_frames`; evenly spaced in time without landmarks), plus the deepest blink when
    the sequence has one; columns ``n_cameras`` cameras evenly spaced over the rig (or
    ``serials``). Row labels give the frame, its time, its mouth opening and mark the most
    open and most closed mouth of the sequence and the blink."""
    from ..capture.readers import read_images, read_landmarks

    serials = list(serials) if serials is not None else pick_evenly(seq.serials, n_cameras)
    lmk = read_landmarks(seq, serials) if seq.has_landmarks else None
    score = mouth_opening(lmk) if lmk is not None else None
    idx = list(pick_frames(seq.n_frames, n_frames, score))
    blink = blink_frame(eye_opening(lmk)) if lmk is not None else None
    if blink is not None and blink not in idx:
        idx = sorted([*idx, blink])  # one more row: the blink
    images = [read_images(seq, seq.frame_ids[i], serials) for i in idx]
    lms = None if lmk is None else [lmk[:, i] for i in idx]
    labels = []
    seen = score is not None and bool(np.isfinite(score).any())
    most_open = int(np.nanargmax(score)) if seen else None
    most_closed = int(np.nanargmin(score)) if seen else None
    for i in idx:
        label = f"frame {seq.frame_ids[i]} ({seq.frame_ids[i] / seq.fps:.2f} s)"
        if score is not None and np.isfinite(score[i]):
            label += f"\nmouth {score[i]:.2f}"
            if i == most_open:
                label += " (most open)"
            elif i == most_closed:
                label += " (most closed)"
        if i == blink:
            label += "\nblink"
        labels.append(label)
    return contact_sheet(
        images,
        lms,
        path,
        titles=serials,
        frames=labels,
        crop=crop,
        dpi=dpi,
        title=f"{seq.subject} / {seq.sequence}: {seq.n_frames} frames, {seq.n_cameras} cameras",
    )
