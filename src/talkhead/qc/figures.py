"""Quality-control figures of a capture: the camera rig, contact sheets with landmarks, audio.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot state, no display)
at a fixed size (``figsize`` inches x ``dpi``; never cropped), and written atomically.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..geometry.cameras import Camera
from ..io import PathLike, atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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
CONFIDENCE_CMAP = "RdYlGn"


def _figure(figsize: tuple[float, float], dpi: float, constrained: bool = True) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=dpi, layout="constrained" if constrained else None)


def _save(fig: Figure, path: PathLike) -> Path:
    """Write ``fig`` as PNG at its own size and dpi (atomically)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=fig.dpi, facecolor="white")
    return path


# --------------------------------------------------------------------------------------------
# Camera rig
# --------------------------------------------------------------------------------------------


def rig_target(cameras: Sequence[Camera]) -> np.ndarray:
    """(3,) the world point closest (least squares) to every camera's optical axis: where the
    rig looks. Falls back to the centroid of the cameras when the axes are (near) parallel."""
    centers = np.stack([c.center for c in cameras])
    A = np.zeros((3, 3))
    b = np.zeros(3)
    for c, o in zip(cameras, centers, strict=True):
        d = c.R[2] / np.linalg.norm(c.R[2])
        P = np.eye(3) - np.outer(d, d)
        A += P
        b += P @ o
    if len(cameras) < 2 or np.linalg.cond(A) > 1e8:
        return centers.mean(axis=0)
    return np.linalg.solve(A, b)


def _rig_basis(cameras: Sequence[Camera]) -> np.ndarray:
    """(3, 3) rows e1, e2, up: a right-handed display frame whose third axis is the rig's up.

    Cameras of a studio are mounted without roll, so their x axes are horizontal: up is the
    direction most orthogonal to all of them (smallest eigenvector of sum x x^T), signed like
    the cameras' image-up (-y). When the x axes do not span a plane (a single camera, or all
    cameras with the same yaw), up is the mean image-up.
    """
    xs = np.stack([c.R[0] for c in cameras])
    image_up = -np.mean([c.R[1] for c in cameras], axis=0)
    evals, evecs = np.linalg.eigh(xs.T @ xs)
    if evals[1] > 1e-3 * max(evals[2], 1e-12):
        up = evecs[:, 0] * (1.0 if evecs[:, 0] @ image_up >= 0 else -1.0)
    else:
        up = image_up
    if np.linalg.norm(up) < 1e-6:
        up = np.array([0.0, 1.0, 0.0])
    up = up / np.linalg.norm(up)
    axes = np.eye(3)
    a = axes[int(np.argmin(np.abs(axes @ up)))]
    e1 = a - (a @ up) * up
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    return np.stack([e1, e2, up])


def _axis_name(v: np.ndarray, fallback: str) -> str:
    i = int(np.argmax(np.abs(v)))
    if abs(v[i]) > 0.999:
        return f"world {'+' if v[i] > 0 else '-'}{'xyz'[i]} (m)"
    return f"{fallback} (m)"


def _frustum(cam: Camera, depth: float) -> np.ndarray:
    """(4, 3) world corners of the image plane at ``depth``."""
    w = cam.width or 2.0 * cam.K[0, 2] + 1.0
    h = cam.height or 2.0 * cam.K[1, 2] + 1.0
    uv = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
    return cam.unproject(uv, np.full(4, depth))


def plot_camera_rig(
    cameras: Mapping[str, Camera] | Sequence[Camera],
    path: PathLike,
    points: np.ndarray | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (12.0, 6.0),
    dpi: float = 100,
) -> Path:
    """Draw the rig in 3D and from the top: frusta labelled with serials, optical axes (dashed,
    up to their closest approach to the point the rig looks at), world axes at the origin, and
    optionally a point cloud.

    The display frame puts the rig's up direction (mean image-up of the cameras) vertical;
    axis labels name the world axis when the display axis is one.

    Args:
        cameras: ``{serial: Camera}`` or a list of cameras.
        path: output PNG (``figsize`` x ``dpi`` pixels).
        points: (P, 3) world points (e.g. the head's landmarks), drawn at the centre.
        title: figure title (default: the number of cameras).
    """
    cams = list(cameras.values()) if isinstance(cameras, Mapping) else list(cameras)
    if not cams:
        raise ValueError("plot_camera_rig needs at least one camera")
    import matplotlib as mpl
    from mpl_toolkits.mplot3d import Axes3D  # noqa: F401  (registers the 3d projection)

    pts = None
    if points is not None:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        pts = pts[np.all(np.isfinite(pts), axis=1)]
        if not len(pts):
            pts = None
    centers = np.stack([c.center for c in cams])
    target = np.median(pts, axis=0) if pts is not None else rig_target(cams)
    dist = np.linalg.norm(centers - target, axis=1)
    scale = float(np.median(dist)) if np.median(dist) > 0 else 1.0
    B = _rig_basis(cams)

    def disp(x: np.ndarray) -> np.ndarray:
        return np.asarray(x) @ B.T

    cmap = mpl.colormaps["tab20" if len(cams) > 10 else "tab10"]
    fig = _figure(figsize, dpi)
    gs = fig.add_gridspec(1, 2, width_ratios=(1.25, 1.0))
    ax3 = fig.add_subplot(gs[0], projection="3d")
    ax2 = fig.add_subplot(gs[1])
    drawn = [disp(centers), disp(target[None])]
    for i, cam in enumerate(cams):
        color = cmap(i % cmap.N)
        o = cam.center
        corners = _frustum(cam, 0.2 * scale)
        axis_len = max(float((target - o) @ cam.R[2]), 0.3 * scale)
        axis_end = o + axis_len * cam.R[2]
        drawn += [disp(corners), disp(axis_end[None])]
        O, Cn, A = disp(o), disp(corners), disp(axis_end)
        for k in range(4):
            ax3.plot(*np.stack([O, Cn[k]]).T, color=color, lw=1.0)
            ax3.plot(*np.stack([Cn[k], Cn[(k + 1) % 4]]).T, color=color, lw=1.0)
            ax2.plot(*np.stack([O, Cn[k]])[:, :2].T, color=color, lw=0.8)
        ax3.plot(*np.stack([Cn[0], Cn[1]]).T, color=color, lw=2.5)  # image top edge
        ax3.plot(*np.stack([O, A]).T, color=color, lw=0.7, ls="--")
        ax2.plot(*np.stack([O, A])[:, :2].T, color=color, lw=0.7, ls="--")
        ax3.text(*O, cam.serial, fontsize=7, color=color)
        ax2.annotate(
            cam.serial, O[:2], fontsize=7, color=color, xytext=(3, 3), textcoords="offset points"
        )
        ax2.plot(*O[:2], "o", color=color, ms=4)
    # World axes at the origin.
    L = 0.25 * scale
    for k, (name, color) in enumerate(
        zip("xyz", ("tab:red", "tab:green", "tab:blue"), strict=True)
    ):
        seg = disp(np.stack([np.zeros(3), L * np.eye(3)[k]]))
        ax3.plot(*seg.T, color=color, lw=2.0)
        ax3.text(*seg[1], name, color=color, fontsize=9, fontweight="bold")
        ax2.plot(*seg[:, :2].T, color=color, lw=2.0)
        ax2.annotate(name, seg[1, :2], color=color, fontsize=9, fontweight="bold")
    drawn.append(disp(np.concatenate([np.zeros((1, 3)), L * np.eye(3)])))
    if pts is not None:
        P = disp(pts)
        ax3.scatter(*P.T, s=2, c="0.2", depthshade=False)
        ax2.scatter(P[:, 0], P[:, 1], s=2, c="0.2")
        drawn.append(P)
    else:
        T = disp(target)
        ax3.scatter(*T, marker="+", s=60, c="k")
        ax2.plot(*T[:2], "k+", ms=10)
    allp = np.concatenate(drawn)
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    mid, half = (lo + hi) / 2, 0.55 * float((hi - lo).max() or 1.0)
    ax3.set_xlim(mid[0] - half, mid[0] + half)
    ax3.set_ylim(mid[1] - half, mid[1] + half)
    ax3.set_zlim(mid[2] - half, mid[2] + half)
    ax3.set_box_aspect((1, 1, 1))
    ax3.view_init(elev=25, azim=-65)
    names = [
        _axis_name(B[0], "horizontal 1"),
        _axis_name(B[1], "horizontal 2"),
        _axis_name(B[2], "up"),
    ]
    ax3.set_xlabel(names[0], fontsize=8)
    ax3.set_ylabel(names[1], fontsize=8)
    ax3.set_zlabel(names[2], fontsize=8)
    ax3.tick_params(labelsize=7)
    ax3.set_title("3D (top edge of each image drawn thick)", fontsize=10)
    ax2.set_aspect("equal", adjustable="datalim")
    ax2.set_xlabel(names[0], fontsize=8)
    ax2.set_ylabel(names[1], fontsize=8)
    ax2.tick_params(labelsize=7)
    ax2.grid(True, lw=0.3, alpha=0.5)
    ax2.set_title("top view (looking down the rig's up axis)", fontsize=10)
    fig.suptitle(
        title or f"camera rig: {len(cams)} cameras, median distance to the head {scale:.2f} m",
        fontsize=11,
    )
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# Contact sheets
# --------------------------------------------------------------------------------------------


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


def pick_evenly(items: Sequence, k: int) -> list:
    """``k`` items evenly spaced over ``items`` (all of them when k >= len)."""
    if k >= len(items):
        return list(items)
    return [items[i] for i in np.unique(np.round(np.linspace(0, len(items) - 1, k)).astype(int))]


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
    fig = _figure((fig_w, fig_h), dpi)
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
    return _save(fig, path)


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
    from the most closed to the most open mouth (evenly spaced in time without landmarks), plus
    the deepest blink when the sequence has one; columns ``n_cameras`` cameras evenly spaced
    over the rig (or ``serials``)."""
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
    for i in idx:
        label = f"frame {seq.frame_ids[i]} ({seq.frame_ids[i] / seq.fps:.2f} s)"
        if score is not None and np.isfinite(score[i]):
            label += f"\nmouth {score[i]:.2f}"
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


# --------------------------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------------------------


def audio_levels(audio: np.ndarray) -> dict[str, float]:
    """Peak and RMS level in dBFS (-inf for silence) and the fraction of clipped samples
    (|x| >= 0.999) of float audio in [-1, 1] (N,) or (N, channels)."""
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.size == 0:
        return {"peak_dbfs": -math.inf, "rms_dbfs": -math.inf, "clipped_fraction": 0.0}
    peak = float(np.max(np.abs(x)))
    rms = float(np.sqrt(np.mean(x * x)))

    def db(v: float) -> float:
        return 20 * math.log10(v) if v > 0 else -math.inf

    return {
        "peak_dbfs": db(peak),
        "rms_dbfs": db(rms),
        "clipped_fraction": float(np.mean(np.abs(x) >= 0.999)),
    }


def _waveform_envelope(
    x: np.ndarray, sr: int, max_points: int = 4000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t, lo, hi): per-bin min and max of ``x`` for plotting long signals."""
    k = max(1, math.ceil(x.size / max_points))
    n = x.size // k * k
    if n == 0:
        t = np.arange(x.size) / sr
        return t, x, x
    blocks = x[:n].reshape(-1, k)
    t = (np.arange(blocks.shape[0]) * k + k / 2) / sr
    return t, blocks.min(axis=1), blocks.max(axis=1)


def plot_audio(
    audio: np.ndarray,
    sr: int,
    path: PathLike,
    title: str | None = None,
    max_freq: float = 8000.0,
    dynamic_range_db: float = 80.0,
    figsize: tuple[float, float] = (10.0, 5.5),
    dpi: float = 100,
) -> Path:
    """Waveform (min/max envelope) over a spectrogram (Hann STFT, ~32 ms windows, dB, 0 to
    ``max_freq`` Hz), with peak and RMS levels in dBFS in the title.

    Args:
        audio: (N,) or (N, channels) float in [-1, 1]; sr: sample rate in Hz.
        path: output PNG (``figsize`` x ``dpi`` pixels).
    """
    from scipy.signal import spectrogram

    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    x = np.nan_to_num(x)
    lv = audio_levels(x)
    duration = x.size / sr
    fig = _figure(figsize, dpi)
    ax_w, ax_s = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (1, 1.6)})
    t, lo, hi = _waveform_envelope(x, sr)
    ax_w.fill_between(t, lo, hi, color="tab:blue", lw=0.5, step="mid")
    peak = max(float(np.max(np.abs(x), initial=0.0)), 1e-4)
    ax_w.set_ylim(-1.1 * peak, 1.1 * peak)
    if peak > 0.5:
        for y in (-1, 1):
            ax_w.axhline(y, color="tab:red", lw=0.6, ls=":")
    ax_w.set_ylabel("amplitude (FS)", fontsize=8)
    ax_w.tick_params(labelsize=7)
    ax_w.grid(True, lw=0.3, alpha=0.5)
    nyq = sr / 2
    fmax = min(max_freq, nyq)
    nperseg = max(16, min(x.size, 2 ** round(math.log2(max(16, 0.032 * sr)))))
    if x.size >= 16:
        hop = min(nperseg, max(nperseg // 4, math.ceil(x.size / 4000)))
        f, ts, S = spectrogram(
            x,
            fs=sr,
            window="hann",
            nperseg=nperseg,
            noverlap=nperseg - hop,
            scaling="density",
            mode="psd",
        )
        keep = f <= fmax
        S_db = 10 * np.log10(S[keep] + 1e-20)
        vmax = float(S_db.max())
        im = ax_s.imshow(
            S_db,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=vmax - dynamic_range_db,
            vmax=vmax,
            extent=(0.0, duration, 0.0, float(f[keep][-1])),
            interpolation="nearest",
        )
        cb = fig.colorbar(im, ax=ax_s, pad=0.01)
        cb.set_label("power (dB re 1 FS²/Hz)", fontsize=7)
        cb.ax.tick_params(labelsize=7)
    ax_s.set_ylim(0, fmax)
    ax_s.set_xlim(0, max(duration, 1e-3))
    ax_s.set_ylabel("frequency (Hz)", fontsize=8)
    ax_s.set_xlabel("time (s)", fontsize=8)
    ax_s.tick_params(labelsize=7)

    def fmt(v: float) -> str:
        return f"{v:.1f}" if math.isfinite(v) else "-inf"

    head = f"{title}: " if title else ""
    levels = (
        f"peak {fmt(lv['peak_dbfs'])} dBFS, RMS {fmt(lv['rms_dbfs'])} dBFS, "
        f"{duration:.2f} s at {sr} Hz"
    )
    if lv["clipped_fraction"] > 0:
        levels += f", {100 * lv['clipped_fraction']:.2f}% clipped"
    fig.suptitle(head + levels, fontsize=10)
    return _save(fig, path)


def plot_sequence_rig(
    seq: CaptureSequence, path: PathLike, points: np.ndarray | None = None, dpi: float = 100
) -> Path:
    """:func:`plot_camera_rig` of a capture sequence's cameras, titled with its subject."""
    return plot_camera_rig(
        seq.cameras,
        path,
        points=points,
        dpi=dpi,
        title=f"camera rig of subject {seq.subject}: {seq.n_cameras} cameras",
    )
