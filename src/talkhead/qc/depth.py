"""QC figures of depth maps: the maps next to the images, and the depth error against ground
truth (drawn from :class:`talkhead.evaluation.stage.DepthErrorView`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..depth.io import DepthFrame
from ..io import PathLike
from .draw import black_bad, new_figure, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


NORMAL_PANEL_TITLE = "normal: RGB = (n + 1) / 2 of camera x, y, z"
"""Title of the normal panels: the colour mapping of :func:`normal_rgb`."""


def normal_rgb(normal: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Colours of unit normals: RGB = (n + 1) / 2 of their (x, y, z), black where not ``valid``.

    In the OpenCV camera frame (x right, y down, z forward) a surface facing the camera
    (n = (0, 0, -1)) is olive (0.5, 0.5, 0), one facing right (+x) pink (1, 0.5, 0.5), one
    facing up (-y) purple (0.5, 0, 0.5).

    Args:
        normal: (..., 3) unit normals; valid: (...) bool.

    Returns:
        (..., 3) float in [0, 1].
    """
    rgb = np.clip((np.asarray(normal, dtype=np.float64) + 1.0) / 2.0, 0.0, 1.0)
    return np.where(np.asarray(valid, dtype=bool)[..., None], rgb, 0.0)


def plot_depth_maps(
    images: np.ndarray,
    frame: DepthFrame,
    serials: Sequence[str],
    path: PathLike,
    title: str = "",
    dpi: float = 100,
) -> Path:
    """:func:`depth_maps_figure` written to ``path`` (PNG)."""
    return save_figure(depth_maps_figure(images, frame, serials, title, dpi), path)


def depth_maps_figure(
    images: np.ndarray,
    frame: DepthFrame,
    serials: Sequence[str],
    title: str = "",
    dpi: float = 100,
) -> Figure:
    """One row per camera: the image, depth (metres), normals (:func:`normal_rgb`: RGB =
    (n + 1) / 2 of the camera-frame normal) and confidence; invalid pixels black.

    Args:
        images: (C, H, W, 3) uint8 of ``serials``; frame: the depth frame (any camera order);
        serials: (C,) the cameras to draw.
    """
    idx = [frame.index(s) for s in serials]
    depth = frame.depth[idx]
    valid = depth > 0
    lo, hi = np.percentile(depth[valid], [1, 99]) if valid.any() else (0.0, 1.0)
    fig = new_figure((11, 3.2 * len(serials)), dpi, constrained=False)
    axes = fig.subplots(len(serials), 4, squeeze=False)
    for r, s in enumerate(serials):
        n = frame.normal[idx[r]]
        panels = [
            (images[r], None, f"cam {s}: image"),
            (
                np.where(valid[r], depth[r], np.nan),
                dict(cmap=black_bad("viridis"), vmin=lo, vmax=hi),
                "depth (m)",
            ),
            (normal_rgb(n, valid[r]), None, NORMAL_PANEL_TITLE),
            (
                np.where(valid[r], frame.confidence[idx[r]], np.nan),
                dict(cmap=black_bad("magma"), vmin=0, vmax=1),
                "confidence",
            ),
        ]
        for c, (img, kw, panel_title) in enumerate(panels):
            ax = axes[r, c]
            ax.set_facecolor("black")
            im = ax.imshow(img, **(kw or {}))
            if kw:
                fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
            ax.set_title(panel_title, fontsize=9)
            ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_depth_errors(
    images: np.ndarray,
    error_mm: np.ndarray,
    missing: np.ndarray,
    serials: Sequence[str],
    path: PathLike,
    metrics: Mapping[str, Any],
    max_error_mm: float = 2.0,
    dpi: float = 100,
) -> Path:
    """Absolute depth error (mm, 0 to ``max_error_mm``) inside the face mask over the grey
    image, with face pixels that have no depth in cyan; the title gives the sequence's median,
    90th percentile and valid fraction from ``metrics`` (an ``evaluation.json``).

    Args:
        images: (C, H, W, 3) uint8; error_mm: (C, H, W) NaN where not evaluated;
        missing: (C, H, W) bool; serials: (C,) camera names.
    """
    fig = new_figure((3.2 * len(serials), 4.2), dpi, constrained=False)
    axes = fig.subplots(1, len(serials), squeeze=False)
    im = None
    for c, s in enumerate(serials):
        ax = axes[0, c]
        ax.imshow(images[c].mean(axis=-1), cmap="gray", alpha=0.35)
        im = ax.imshow(error_mm[c], cmap="inferno", vmin=0, vmax=max_error_mm)
        overlay = np.zeros((*missing[c].shape, 4))
        overlay[missing[c]] = (0, 1, 1, 0.8)
        ax.imshow(overlay)
        ax.set_title(f"cam {s}", fontsize=9)
        ax.axis("off")
    fig.colorbar(im, ax=axes[0, -1], fraction=0.046, pad=0.02, label="absolute depth error (mm)")
    fig.suptitle(
        f"depth error in the face mask (cyan: no depth)\nmedian "
        f"{metrics.get('depth_median_abs_err_mm', 0):.2f} mm, p90 "
        f"{metrics.get('depth_p90_abs_err_mm', 0):.2f} mm, valid "
        f"{100 * metrics.get('valid_fraction', 0):.1f} %",
        fontsize=10,
    )
    fig.tight_layout()
    return save_figure(fig, path)
