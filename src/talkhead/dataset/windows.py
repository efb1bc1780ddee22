"""Fixed-length training windows over the packaged sequences (``windows.csv``).

A window is ``window`` consecutive fitted frames (rows of the FLAME parameters, and the audio
feature rows of the same capture frames) starting at ``start``; starts are ``0, stride,
2 stride, ...`` while the window fits, plus (``cover_tail``) one window ending at the last
frame when the stride leaves a tail uncovered. A sequence shorter than one window gives one
window of its ``length`` frames, padded to ``window`` by the reader (its mask marks the padding;
``padded`` counts the padded frames).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import DatasetError
from ..io import PathLike, atomic_path
from .splits import split_of

__all__ = [
    "WINDOW_COLUMNS",
    "load_windows",
    "make_windows",
    "save_windows",
    "sequence_windows",
    "window_summary",
]

WINDOW_COLUMNS = ("name", "subject", "sequence", "split", "start", "length", "window", "padded")
_INTS = ("start", "length", "window", "padded")


def sequence_windows(
    n_frames: int, window: int, stride: int, cover_tail: bool = True
) -> list[tuple[int, int]]:
    """Windows over one sequence of ``n_frames`` frames, as ``(start, length)``.

    Returns:
        ``[]`` for an empty sequence; ``[(0, n_frames)]`` (to be padded) when it is shorter
        than ``window``; else windows of length ``window``.

    Raises:
        ValueError: ``window`` or ``stride`` below 1.
    """
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got {window}, {stride}")
    if n_frames <= 0:
        return []
    if n_frames < window:
        return [(0, n_frames)]
    starts = list(range(0, n_frames - window + 1, stride))
    if cover_tail and starts[-1] + window < n_frames:
        starts.append(n_frames - window)
    return [(s, window) for s in starts]


def make_windows(
    manifest: Sequence[Mapping[str, Any]],
    splits: Mapping[str, Sequence[str]],
    window: int,
    stride: int,
    cover_tail: bool = True,
) -> list[dict[str, Any]]:
    """The windows of every manifest row, each with its sequence, subject and split.

    Raises:
        DatasetError: a manifest subject in no split.
    """
    where = split_of(splits)
    out = []
    for row in manifest:
        subject = row["subject"]
        if subject not in where:
            raise DatasetError(f"subject {subject} of the manifest is in no split")
        for start, length in sequence_windows(int(row["frames"]), window, stride, cover_tail):
            out.append(
                {
                    "name": row["name"],
                    "subject": subject,
                    "sequence": row["sequence"],
                    "split": where[subject],
                    "start": start,
                    "length": length,
                    "window": window,
                    "padded": window - length,
                }
            )
    return out


def save_windows(path: PathLike, windows: Sequence[Mapping[str, Any]]) -> None:
    """Write ``windows.csv`` (:data:`WINDOW_COLUMNS`) atomically."""
    with atomic_path(path, suffix=".csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=WINDOW_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(windows)


def load_windows(path: PathLike) -> list[dict[str, Any]]:
    """Read ``windows.csv``.

    Raises:
        DatasetError: missing, or lacking a column, or with a non-integer start/length.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: windows file missing (the dataset rule writes it)")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in WINDOW_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetError(f"{path}: lacks the column(s) {', '.join(missing)}")
        try:
            return [{**r, **{c: int(r[c]) for c in _INTS}} for r in reader]
        except ValueError as exc:
            raise DatasetError(f"{path}: malformed window ({exc})") from None


def window_summary(windows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Counts: ``n_windows``, ``n_padded_windows``, ``padded_frames`` and ``windows_<split>``."""
    out = {
        "n_windows": len(windows),
        "n_padded_windows": sum(1 for w in windows if w["padded"] > 0),
        "padded_frames": sum(int(w["padded"]) for w in windows),
    }
    for s in ("train", "val", "test"):
        out[f"windows_{s}"] = sum(1 for w in windows if w["split"] == s)
    return out
