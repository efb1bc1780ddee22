"""QC figures of a FLAME fit: loss per term, the fitted mesh over the camera images, per-frame
errors against ground truth, and the jitter of the expression codes.

Pure functions over arrays (the fit's logs, meshes and codes); each ``plot_*`` writes a PNG
atomically and returns its path, and its ``*_figure`` twin returns the matplotlib figure.
Every drawn artist carries a ``gid`` naming what it shows (``"loss <term>"``, ``"wire <serial>"``,
...), so the figures can be checked by what they draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..fitting.temporal import expression_jitter, frame_differences, frame_spacing
from ..geometry.cameras import Camera
from ..io import PathLike
from .draw import new_figure, save_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WIRE_COLOUR = (0.0, 0.85, 1.0)
"""RGB of the fitted mesh's edges over the images (cyan: apart from skin, hair and the backdrop)."""
FITTED_LANDMARK_COLOUR = (1.0, 0.1, 0.1)
"""RGB of the fitted model's landmarks (red dots, drawn over the observed ones)."""
OBSERVED_LANDMARK_COLOUR = (1.0, 0.85, 0.0)
"""RGB of the observed (multi-view) 3D landmarks (larger yellow dots: a good fit shows red
dots centred in yellow ones)."""
TOTAL_TERM = "total"
"""The loss term drawn in black and thick (the objective the optimiser sees)."""


def _check_frames(frame_ids: np.ndarray, name: str = "frame_ids") -> np.ndarray:
    ids = np.asarray(frame_ids)
    if ids.ndim != 1:
        raise ValueError(f"{name} has shape {ids.shape}, expected (T,)")
    frame_spacing(ids, len(ids))  # strictly increasing
    return ids


# ---------------------------------------------------------------------------------------------
# Loss curves


def plot_fit_losses(
    steps: np.ndarray,
    terms: Mapping[str, np.ndarray],
    path: PathLike,
    title: str = "FLAME fit: loss per term",
    dpi: float = 100,
) -> Path:
    """:func:`fit_losses_figure` written to ``path`` (PNG)."""
    return save_figure(fit_losses_figure(steps, terms, title, dpi), path)


def fit_losses_figure(
    steps: np.ndarray,
    terms: Mapping[str, np.ndarray],
    title: str = "FLAME fit: loss per term",
    dpi: float = 100,
) -> Figure:
    """One curve per loss term against the optimiser step (``gid="loss <term>"``); the
    ``total`` term in black.

    A term whose logged values are all zero (switched off by its weight) is not drawn but
    named under the title as ``off: <term>, ...``. The y axis is logarithmic when no drawn
    value is negative (exact zeros, e.g. a regulariser at its initial value, are left out of
    the curve: a log axis cannot show them), linear otherwise. Non-finite values leave gaps.

    Args:
        steps: (K,) optimiser steps at which the terms were logged (increasing).
        terms: ``{name: (K,) value}`` as logged by the fit (``fit_log.csv``): each term
            before its lambda (landmark, point and plane in millimetres; the regulariser and
            smoothness groups with their inner weights) and the weighted total.

    Raises:
        ValueError: a term's shape differs from ``steps``'.
    """
    import matplotlib as mpl

    steps = np.asarray(steps, dtype=np.float64).reshape(-1)
    values = {}
    for name, v in terms.items():
        v = np.asarray(v, dtype=np.float64)
        if v.shape != steps.shape:
            raise ValueError(f"loss term {name!r} has shape {v.shape}, expected {steps.shape}")
        values[name] = v
    off = [n for n, v in values.items() if np.all(v == 0)]
    drawn = {n: v for n, v in values.items() if n not in off}
    finite = np.concatenate([v[np.isfinite(v)] for v in drawn.values()] + [np.zeros(0)])
    log = finite.size > 0 and bool(np.all(finite >= 0)) and bool(np.any(finite > 0))
    fig = new_figure((8, 4.5), dpi)
    ax = fig.add_subplot()
    cmap = mpl.colormaps["tab10"]
    k = 0
    for name, v in drawn.items():
        if name == TOTAL_TERM:
            style = {"color": "black", "lw": 2.0, "zorder": 3}
        else:
            style = {"color": cmap(k % 10), "lw": 1.2}
            k += 1
        y = np.where(v > 0, v, np.nan) if log else v
        ax.plot(steps, y, label=name, gid=f"loss {name}", **style)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss term (before its lambda)" + (", log scale" if log else ""))
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    if drawn:  # beside the axes: never over a curve
        fig.legend(loc="outside right upper", fontsize=8)
    ax.set_title(
        title + (f"\noff: {', '.join(off)}" if off else ""),
        fontsize=10,
    )
    return fig


# ---------------------------------------------------------------------------------------------
# Mesh over the images


def mesh_edges(faces: np.ndarray) -> np.ndarray:
    """(E, 2) the unique undirected edges (i < j) of a triangle mesh, sorted.

    Args:
        faces: (Fc, 3) vertex indices.
    """
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return np.unique(np.sort(e, axis=1), axis=0)


def front_faces(vertices: np.ndarray, faces: np.ndarray, camera: Camera) -> np.ndarray:
    """(Fc,) bool: faces whose front (counter-clockwise seen from outside, FLAME's winding)
    looks at the camera and that lie wholly in front of it.

    Args:
        vertices: (V, 3) world metres; faces: (Fc, 3).
    """
    v = np.asarray(vertices, dtype=np.float64)
    tri = v[np.asarray(faces, dtype=np.int64)]  # (Fc, 3, 3)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    toward = camera.center - tri.mean(axis=1)
    _, z = camera.project(tri)
    return (np.einsum("fi,fi->f", normal, toward) > 0) & np.all(z > 0, axis=1)


def visible_edges(
    vertices: np.ndarray, faces: np.ndarray, camera: Camera, cull_back_faces: bool = True
) -> np.ndarray:
    """(E, 2) edges of the faces the camera sees (:func:`front_faces`; all faces in front of
    the camera when ``cull_back_faces`` is False).

    Args:
        vertices: (V, 3) world metres; faces: (Fc, 3).
    """
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if cull_back_faces:
        keep = front_faces(vertices, faces, camera)
    else:
        _, z = camera.project(np.asarray(vertices, dtype=np.float64)[faces])
        keep = np.all(z > 0, axis=1)
    return mesh_edges(faces[keep])


def _drawable(points: np.ndarray | None, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """(L, 2) pixels of 3D landmarks and (L,) bool: finite, not at the origin (where the points
    stage stores a landmark no view lifted) and in front of the camera."""
    if points is None:
        return np.zeros((0, 2)), np.zeros(0, dtype=bool)
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    ok = np.all(np.isfinite(p), axis=1) & np.any(p != 0, axis=1)
    uv, z = camera.project(np.where(ok[:, None], p, 0.0))
    return uv, ok & (z > 0)


def _crop(
    uv: np.ndarray, width: int, height: int, margin: float = 0.12
) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1) axes limits around pixels ``uv`` (N, 2), padded and kept in the image
    (the whole image when there are none)."""
    full = (-0.5, width - 0.5, -0.5, height - 0.5)
    uv = uv[np.all(np.isfinite(uv), axis=1)]
    inside = uv[(uv[:, 0] > -0.5) & (uv[:, 0] < width) & (uv[:, 1] > -0.5) & (uv[:, 1] < height)]
    if len(inside) < 2:
        return full
    lo, hi = inside.min(axis=0), inside.max(axis=0)
    pad = margin * float(max(hi - lo)) + 2.0
    return (
        max(lo[0] - pad, full[0]),
        min(hi[0] + pad, full[1]),
        max(lo[1] - pad, full[2]),
        min(hi[1] + pad, full[3]),
    )


def plot_mesh_overlay(
    images: Sequence[Sequence[np.ndarray]],
    cameras: Sequence[Camera],
    vertices: np.ndarray,
    faces: np.ndarray,
    frame_ids: np.ndarray,
    path: PathLike,
    landmarks: np.ndarray | None = None,
    observed_landmarks: np.ndarray | None = None,
    title: str = "",
    crop: bool = True,
    cull_back_faces: bool = True,
    wire_alpha: float = 0.55,
    panel_inches: float = 4.5,
    dpi: float = 100,
) -> Path:
    """:func:`mesh_overlay_figure` written to ``path`` (PNG)."""
    return save_figure(
        mesh_overlay_figure(
            images,
            cameras,
            vertices,
            faces,
            frame_ids,
            landmarks,
            observed_landmarks,
            title,
            crop,
            cull_back_faces,
            wire_alpha,
            panel_inches,
            dpi,
        ),
        path,
    )


def mesh_overlay_figure(
    images: Sequence[Sequence[np.ndarray]],
    cameras: Sequence[Camera],
    vertices: np.ndarray,
    faces: np.ndarray,
    frame_ids: np.ndarray,
    landmarks: np.ndarray | None = None,
    observed_landmarks: np.ndarray | None = None,
    title: str = "",
    crop: bool = True,
    cull_back_faces: bool = True,
    wire_alpha: float = 0.55,
    panel_inches: float = 4.5,
    dpi: float = 100,
) -> Figure:
    """A grid (rows: frames, columns: cameras) of camera images with the fitted mesh's edges
    projected by each camera (:data:`WIRE_COLOUR`, ``wire_alpha``; ``gid="wire <serial>"``),
    the fitted landmarks (:data:`FITTED_LANDMARK_COLOUR`, ``gid="fitted <serial>"``) over the
    observed ones (:data:`OBSERVED_LANDMARK_COLOUR`, ``gid="observed <serial>"``), and the mean
    pixel distance between the two under each panel.

    Axes are in image pixels (centres at integers, as :func:`talkhead.geometry.cameras.project`
    gives them). With ``crop`` each camera's panels are zoomed on the projected mesh and
    landmarks of all frames (same limits in every row); with ``cull_back_faces`` only the edges
    of faces turned towards the camera are drawn (the mesh wound counter-clockwise seen from
    outside, as FLAME is); there is no occlusion test otherwise. Landmarks that are non-finite
    or at the world origin (not lifted) are not drawn. Pass a face region's faces to draw only
    the face.

    Args:
        images: ``images[f][c]`` (H, W, 3) uint8 of frame f seen by ``cameras[c]``.
        cameras: (C,) cameras (undistorted images: pinhole projection).
        vertices: (F, V, 3) world metres of the fitted mesh in the drawn frames.
        faces: (Fc, 3) vertex indices.
        frame_ids: (F,) the frames' ids (row labels).
        landmarks: (F, L, 3) world metres of the fitted model's landmarks, or None.
        observed_landmarks: (F, L, 3) world metres of the observed 3D landmarks, or None.

    Raises:
        ValueError: no camera or no frame, or the inputs' frame or view counts disagree.
    """
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    cams = list(cameras)
    verts = np.asarray(vertices, dtype=np.float64)
    ids = np.asarray(frame_ids).reshape(-1)
    if not cams or len(ids) == 0:
        raise ValueError("mesh overlay needs at least one camera and one frame")
    if verts.ndim != 3 or verts.shape[0] != len(ids) or verts.shape[2] != 3:
        raise ValueError(f"vertices has shape {verts.shape}, expected ({len(ids)}, V, 3)")
    if len(images) != len(ids) or any(len(row) != len(cams) for row in images):
        raise ValueError(
            f"images must be indexed [frame][view] with {len(ids)} frames of {len(cams)} views"
        )
    for name, lm in (("landmarks", landmarks), ("observed_landmarks", observed_landmarks)):
        if lm is not None and (np.ndim(lm) != 3 or np.shape(lm)[0] != len(ids)):
            raise ValueError(f"{name} has shape {np.shape(lm)}, expected ({len(ids)}, L, 3)")
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)

    # Limits per camera over all frames, then the figure's size from the widest aspect.
    limits = []
    for c, cam in enumerate(cams):
        h, w = np.asarray(images[0][c]).shape[:2]
        if crop:
            uv = [cam.project(verts[f])[0] for f in range(len(ids))]
            for lm in (landmarks, observed_landmarks):
                for f in range(len(ids) if lm is not None else 0):
                    lm_uv, ok = _drawable(lm[f], cam)
                    uv.append(lm_uv[ok])
            limits.append(_crop(np.concatenate(uv), w, h))
        else:
            limits.append((-0.5, w - 0.5, -0.5, h - 0.5))
    aspect = max((y1 - y0) / (x1 - x0) for x0, x1, y0, y1 in limits)
    fig = new_figure((panel_inches * len(cams), panel_inches * aspect * len(ids) + 0.8), dpi)
    axes = fig.subplots(len(ids), len(cams), squeeze=False)
    for f, frame in enumerate(ids):
        for c, cam in enumerate(cams):
            ax: Axes = axes[f, c]
            ax.imshow(np.asarray(images[f][c]))
            uv, _ = cam.project(verts[f])
            edges = visible_edges(verts[f], faces, cam, cull_back_faces)
            ax.add_collection(
                LineCollection(
                    uv[edges],
                    colors=[WIRE_COLOUR],
                    linewidths=0.4,
                    alpha=wire_alpha,
                    gid=f"wire {cam.serial}",
                    zorder=2,
                ),
                autolim=False,
            )
            fit_uv, fit_ok = _drawable(None if landmarks is None else landmarks[f], cam)
            obs_uv, obs_ok = _drawable(
                None if observed_landmarks is None else observed_landmarks[f], cam
            )
            if obs_ok.any():
                ax.plot(
                    *obs_uv[obs_ok].T,
                    "o",
                    ms=5,
                    mew=0,
                    color=OBSERVED_LANDMARK_COLOUR,
                    gid=f"observed {cam.serial}",
                    zorder=3,
                )
            if fit_ok.any():
                ax.plot(
                    *fit_uv[fit_ok].T,
                    "o",
                    ms=2.5,
                    mew=0,
                    color=FITTED_LANDMARK_COLOUR,
                    gid=f"fitted {cam.serial}",
                    zorder=4,
                )
            both = fit_ok & obs_ok if len(fit_ok) == len(obs_ok) else np.zeros(0, dtype=bool)
            if both.any():
                dist = np.linalg.norm(fit_uv[both] - obs_uv[both], axis=1)
                ax.set_xlabel(f"landmarks: {dist.mean():.1f} px mean", fontsize=8)
            x0, x1, y0, y1 = limits[c]
            ax.set_xlim(x0, x1)
            ax.set_ylim(y1, y0)
            ax.set_xticks([])
            ax.set_yticks([])
            if f == 0:
                ax.set_title(f"cam {cam.serial}", fontsize=9)
            if c == 0:
                ax.set_ylabel(f"frame {frame}", fontsize=9)
    handles = [Line2D([], [], color=WIRE_COLOUR, lw=1.5, label="fitted mesh")]
    for lm, colour, label in (
        (landmarks, FITTED_LANDMARK_COLOUR, "fitted landmarks"),
        (observed_landmarks, OBSERVED_LANDMARK_COLOUR, "observed landmarks"),
    ):
        if lm is not None:
            handles.append(Line2D([], [], ls="", marker="o", color=colour, label=label))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# ---------------------------------------------------------------------------------------------
# Per-frame errors


def _broken_at_gaps(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x, y`` with a NaN inserted wherever x steps by more than its smallest step, so a line
    through them breaks where frames are missing."""
    if len(x) < 3:
        return x.astype(np.float64), y
    step = np.diff(x)
    cut = np.flatnonzero(step > step.min()) + 1
    return (
        np.insert(x.astype(np.float64), cut, np.nan),
        np.insert(y, cut, np.nan),
    )


def plot_frame_errors(
    frame_ids: np.ndarray,
    errors: Mapping[str, np.ndarray],
    path: PathLike,
    thresholds: Mapping[str, float] | None = None,
    title: str = "FLAME fit: error per frame against ground truth",
    dpi: float = 100,
) -> Path:
    """:func:`frame_errors_figure` written to ``path`` (PNG)."""
    return save_figure(frame_errors_figure(frame_ids, errors, thresholds, title, dpi), path)


def frame_errors_figure(
    frame_ids: np.ndarray,
    errors: Mapping[str, np.ndarray],
    thresholds: Mapping[str, float] | None = None,
    title: str = "FLAME fit: error per frame against ground truth",
    dpi: float = 100,
) -> Figure:
    """Per-frame error curves (mm) at the frames' real ids (``gid="error <name>"``), labelled
    with their mean over the frames (NaN frames left out), and optional threshold lines
    (dashed, the series' colour, ``gid="threshold <name>"``). The line breaks where frame ids
    skip (a step larger than the smallest); each frame is a dot.

    Args:
        frame_ids: (T,) strictly increasing frame ids.
        errors: ``{name: (T,) mm}``, e.g. face, lips, landmarks (NaN: not evaluated).
        thresholds: ``{name: mm}`` targets to draw (a name not in ``errors`` is grey).

    Raises:
        ValueError: a series' shape differs from ``frame_ids``', or the ids do not increase.
    """
    import matplotlib as mpl

    ids = _check_frames(frame_ids)
    fig = new_figure((9, 4), dpi)
    ax = fig.add_subplot()
    cmap = mpl.colormaps["tab10"]
    colours = {}
    for k, (name, e) in enumerate(errors.items()):
        e = np.asarray(e, dtype=np.float64)
        if e.shape != ids.shape:
            raise ValueError(f"errors {name!r} has shape {e.shape}, expected {ids.shape}")
        colours[name] = cmap(k % 10)
        mean = float(np.nanmean(e)) if np.any(np.isfinite(e)) else float("nan")
        x, y = _broken_at_gaps(ids, e)
        ax.plot(
            x,
            y,
            marker=".",
            lw=1.2,
            color=colours[name],
            label=f"{name}: mean {mean:.2f} mm",
            gid=f"error {name}",
        )
    for name, value in (thresholds or {}).items():
        ax.axhline(
            float(value),
            ls="--",
            lw=1.0,
            color=colours.get(name, "0.5"),
            label=f"{name} target {float(value):g} mm",
            gid=f"threshold {name}",
        )
    ax.set_ylim(bottom=0)
    ax.set_xlabel("frame")
    ax.set_ylabel("error (mm)")
    ax.grid(True, lw=0.3, alpha=0.5)
    if errors or thresholds:
        fig.legend(loc="outside right upper", fontsize=8)
    ax.set_title(title, fontsize=10)
    return fig


# ---------------------------------------------------------------------------------------------
# Jitter


def plot_jitter(
    frame_ids: np.ndarray,
    series: Mapping[str, np.ndarray],
    path: PathLike,
    title: str = "expression jitter between adjacent frames",
    dpi: float = 100,
) -> Path:
    """:func:`jitter_figure` written to ``path`` (PNG)."""
    return save_figure(jitter_figure(frame_ids, series, title, dpi), path)


def jitter_figure(
    frame_ids: np.ndarray,
    series: Mapping[str, np.ndarray],
    title: str = "expression jitter between adjacent frames",
    dpi: float = 100,
) -> Figure:
    """Left: for each series the expression change per frame, ``||code[t] - code[t-1]||_2 /
    (f[t] - f[t-1])``, drawn at frame ``f[t]`` (``gid="change <name>"``). Right: bars of each
    series' jitter (:func:`talkhead.fitting.temporal.expression_jitter`: MAE = mean |d| and
    RMSE = sqrt(mean d^2) over frames and components of the per-frame differences d, the
    FaceTalk supplement's Table 2 figures), ``gid="bar <name> mae"`` / ``"bar <name> rmse"``,
    values written on the bars.

    Args:
        frame_ids: (T,) strictly increasing frame ids (gaps allowed).
        series: ``{name: (T, E) expression codes}``, e.g. with smoothing, without smoothing,
            ground truth.

    Raises:
        ValueError: a series is not (T, E), or the ids do not increase.
    """
    import matplotlib as mpl

    ids = _check_frames(frame_ids)
    fig = new_figure((11, 4), dpi)
    ax, bars = fig.subplots(1, 2, width_ratios=(2.4, 1.0))
    cmap = mpl.colormaps["tab10"]
    n = max(len(series), 1)
    width = 0.8 / n
    for k, (name, codes) in enumerate(series.items()):
        codes = np.asarray(codes, dtype=np.float64)
        if codes.ndim != 2 or codes.shape[0] != len(ids):
            raise ValueError(f"series {name!r} has shape {codes.shape}, expected ({len(ids)}, E)")
        colour = cmap(k % 10)
        change = np.linalg.norm(frame_differences(codes, ids), axis=1)
        ax.plot(ids[1:], change, marker=".", lw=1.0, color=colour, label=name, gid=f"change {name}")
        jitter = expression_jitter(codes, ids)
        for j, metric in enumerate(("mae", "rmse")):
            (bar,) = bars.bar(
                j + (k - (n - 1) / 2) * width,
                jitter[metric],
                width,
                color=colour,
                gid=f"bar {name} {metric}",
            )
            bars.annotate(
                f"{jitter[metric]:.3g}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=7,
            )
    ax.set_xlabel("frame")
    ax.set_ylabel("|Δ expression| per frame (L2)")
    ax.set_ylim(bottom=0)
    ax.grid(True, lw=0.3, alpha=0.5)
    if series:
        fig.legend(handles=ax.get_lines(), loc="outside lower center", ncols=n, fontsize=8)
    ax.set_title("change between adjacent frames", fontsize=9)
    bars.set_xticks([0, 1], ["MAE", "RMSE"])
    bars.margins(y=0.15)
    bars.set_ylim(bottom=0)
    bars.set_ylabel("|Δ code| per frame (over frames, components)")
    bars.set_title("jitter", fontsize=9)
    bars.grid(True, axis="y", lw=0.3, alpha=0.5)
    fig.suptitle(title, fontsize=10)
    return fig
