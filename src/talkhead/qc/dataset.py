"""QC of the packaged dataset: its summary table (subjects, sequences, frames, hours, splits,
fit quality) as an HTML page, and a histogram of sequence lengths."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..dataset.splits import SPLITS
from ..io import PathLike, atomic_path
from .draw import new_figure, save_figure

__all__ = [
    "dataset_summary",
    "fit_quality",
    "plot_sequence_lengths",
    "sequence_length_histogram",
    "summary_table_html",
    "write_dataset_report",
]

#: Prefixes of the manifest's fit-quality columns.
FIT_PREFIXES = ("flame_", "nphm_")


def dataset_summary(
    rows: Sequence[Mapping[str, Any]], splits: Mapping[str, Sequence[str]] | None = None
) -> dict[str, Any]:
    """The dataset's totals from its manifest rows.

    Returns:
        ``subjects``, ``sequences``, ``frames``, ``hours``, ``seconds_min``,
        ``seconds_median``, ``seconds_max`` (NaN without rows) and, with ``splits``,
        ``subjects_<split>`` and ``sequences_<split>``.
    """
    seconds = np.array([float(r["seconds"]) for r in rows], dtype=np.float64)
    out: dict[str, Any] = {
        "subjects": len({r["subject"] for r in rows}),
        "sequences": len(rows),
        "frames": int(sum(int(r["frames"]) for r in rows)),
        "hours": float(seconds.sum() / 3600.0),
        "seconds_min": float(seconds.min()) if len(seconds) else math.nan,
        "seconds_median": float(np.median(seconds)) if len(seconds) else math.nan,
        "seconds_max": float(seconds.max()) if len(seconds) else math.nan,
    }
    if splits is not None:
        for s in SPLITS:
            members = set(splits.get(s, []))
            out[f"subjects_{s}"] = len(members)
            out[f"sequences_{s}"] = sum(1 for r in rows if r["subject"] in members)
    return out


def fit_quality(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Per fit-quality column of the manifest (``flame_*``, ``nphm_*`` figures, not paths):
    ``{"n": sequences reporting it, "mean", "median", "max"}`` over those sequences."""
    columns = sorted(
        {
            k
            for r in rows
            for k, v in r.items()
            if k.startswith(FIT_PREFIXES) and isinstance(v, float)
        }
    )
    out = {}
    for c in columns:
        vals = np.array([r.get(c, math.nan) for r in rows], dtype=np.float64)
        vals = vals[np.isfinite(vals)]
        out[c] = {
            "n": float(len(vals)),
            "mean": float(vals.mean()) if len(vals) else math.nan,
            "median": float(np.median(vals)) if len(vals) else math.nan,
            "max": float(vals.max()) if len(vals) else math.nan,
        }
    return out


def _num(v: float, digits: int = 4) -> str:
    return "—" if isinstance(v, float) and math.isnan(v) else f"{v:.{digits}g}"


def summary_table_html(
    rows: Sequence[Mapping[str, Any]], splits: Mapping[str, Sequence[str]] | None = None
) -> str:
    """A small HTML page: the totals of :func:`dataset_summary` and the figures of
    :func:`fit_quality`, one table each."""
    s = dataset_summary(rows, splits)
    overview = [
        ("Subjects", str(s["subjects"])),
        ("Sequences", str(s["sequences"])),
        ("Frames", str(s["frames"])),
        ("Hours", f"{s['hours']:.4f}"),
        (
            "Sequence length (s): min / median / max",
            f"{_num(s['seconds_min'])} / {_num(s['seconds_median'])} / {_num(s['seconds_max'])}",
        ),
    ]
    if splits is not None:
        for name in SPLITS:
            overview.append(
                (
                    f"{name}: subjects / sequences",
                    f"{s[f'subjects_{name}']} / {s[f'sequences_{name}']}",
                )
            )
    lines = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"><title>Dataset summary</title></head><body>',
        "<h2>Dataset</h2>",
        '<table border="1" cellpadding="4"><tbody>',
        *(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in overview),
        "</tbody></table>",
        "<h2>Fit quality (per sequence)</h2>",
    ]
    fit = fit_quality(rows)
    if fit:
        lines += [
            '<table border="1" cellpadding="4">',
            "<thead><tr><th>figure</th><th>sequences</th><th>mean</th><th>median</th>"
            "<th>max</th></tr></thead><tbody>",
            *(
                f"<tr><td>{html.escape(name)}</td><td>{int(f['n'])}</td><td>{_num(f['mean'])}"
                f"</td><td>{_num(f['median'])}</td><td>{_num(f['max'])}</td></tr>"
                for name, f in fit.items()
            ),
            "</tbody></table>",
        ]
    else:
        lines.append("<p>No fit-quality figures in the manifest.</p>")
    lines.append("</body></html>")
    return "\n".join(lines) + "\n"


def sequence_length_histogram(
    seconds: Sequence[float], bins: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """``(counts (bins,), edges (bins + 1,))`` of sequence lengths in seconds (numpy's
    histogram: the last bin includes its right edge)."""
    x = np.asarray(seconds, dtype=np.float64)
    if x.size == 0:
        return np.zeros(bins, np.int64), np.linspace(0.0, 1.0, bins + 1)
    counts, edges = np.histogram(x, bins=bins)
    return counts.astype(np.int64), edges


def plot_sequence_lengths(
    rows: Sequence[Mapping[str, Any]],
    path: PathLike,
    bins: int = 10,
    figsize: tuple[float, float] = (7.0, 4.0),
    dpi: float = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of the manifest's sequence lengths (seconds) written to ``path`` (PNG);
    returns the drawn ``(counts, edges)``."""
    counts, edges = sequence_length_histogram([r["seconds"] for r in rows], bins)
    s = dataset_summary(rows)
    fig = new_figure(figsize, dpi)
    ax = fig.subplots()
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", edgecolor="black")
    ax.set_xlabel("sequence length (s)")
    ax.set_ylabel("sequences")
    ax.set_title(
        f"{s['sequences']} sequences of {s['subjects']} subjects, {s['frames']} frames, "
        f"{s['hours']:.3f} h"
    )
    save_figure(fig, path)
    return counts, edges


def write_dataset_report(root: PathLike, html_path: PathLike, png_path: PathLike) -> None:
    """The summary page and the length histogram of the dataset packaged under ``root``."""
    from ..dataset import layout
    from ..dataset.manifest import read_manifest
    from ..dataset.splits import load_splits

    rows = read_manifest(layout.manifest_csv_path(root))
    splits = load_splits(layout.splits_path(root))
    with atomic_path(html_path, suffix=".html") as tmp:
        Path(tmp).write_text(summary_table_html(rows, splits))
    plot_sequence_lengths(rows, png_path)
