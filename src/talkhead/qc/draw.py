"""Drawing helpers shared by every QC figure.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot state, no display)
at a fixed size (``figsize`` inches x ``dpi``; never cropped), and written atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..io import PathLike, atomic_path

if TYPE_CHECKING:
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

CONFIDENCE_CMAP = "RdYlGn"
"""Colormap of landmark confidences (red: low, green: high)."""


def new_figure(figsize: tuple[float, float], dpi: float, constrained: bool = True) -> Figure:
    """A matplotlib ``Figure`` of ``figsize`` inches at ``dpi`` (constrained layout)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=dpi, layout="constrained" if constrained else None)


def save_figure(fig: Figure, path: PathLike) -> Path:
    """Write ``fig`` as PNG at its own size and dpi on white (atomically); return the path."""
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=fig.dpi, facecolor="white")
    return path


def black_bad(name: str) -> Colormap:
    """The named colormap drawing NaN (invalid) pixels black."""
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad="black")


def pick_evenly(items: Sequence, k: int) -> list:
    """``k`` items evenly spaced over ``items`` (all of them when k >= len)."""
    if k >= len(items):
        return list(items)
    return [items[i] for i in np.unique(np.round(np.linspace(0, len(items) - 1, k)).astype(int))]
