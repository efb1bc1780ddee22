"""The sample sheet (``config/sequences.tsv``): one row per recorded sequence of a real capture.

A tab-separated file with a header line; lines starting with ``#`` and blank lines are
comments. Columns (any order):

- ``subject``, ``sequence`` (required): folder names under the capture root, letters, digits
  and ``_ . + -`` (NeRSemble sequence names hold ``+`` and ``-``);
- ``layout``: the capture tree's layout (empty: ``capture.layout``);
- ``root``: the capture root of this row (empty: ``capture.root``);
- ``fps``: frame rate of the sequence, > 0 (empty: the sequence's own, else ``capture.fps``);
- ``audio``: audio file recorded with the sequence, absolute or relative to the sheet's folder
  (empty: none, or the capture's own);
- ``audio_offset_s``: seconds where the sequence starts in the audio: positive skips the first
  seconds, negative pads with silence (empty: 0);
- ``cameras``: comma-separated camera serials to use (digits; empty: every camera).

:func:`read_sample_sheet` reads it with the standard library only (the workflow reads it at
start-up) and lists every problem at once, one line each, naming the sheet and the line as
an editor counts it (``config/sequences.tsv:5: fps must be a number > 0, got '0'``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .config import did_you_mean
from .errors import ConfigError
from .io import PathLike

__all__ = ["COLUMNS", "NAME_PATTERN", "REQUIRED", "SampleRow", "read_sample_sheet"]

#: Every column a sheet may have, in the order of :class:`SampleRow`.
COLUMNS = ("subject", "sequence", "layout", "root", "fps", "audio", "audio_offset_s", "cameras")
#: Columns every sheet must have.
REQUIRED = ("subject", "sequence")
#: What a subject or sequence name may hold (also the workflow's wildcard constraint).
NAME_PATTERN = r"[A-Za-z0-9_.+\-]+"

_NAME = re.compile(rf"^{NAME_PATTERN}$")
_SERIALS = re.compile(r"^\d+(,\d+)*$")


@dataclass(frozen=True)
class SampleRow:
    """One sequence of the sheet; empty strings and None mean "the config's default"."""

    subject: str
    sequence: str
    layout: str = ""
    root: str = ""
    fps: float | None = None
    audio: str = ""
    audio_offset_s: float = 0.0
    cameras: tuple[str, ...] = ()
    #: Line of the sheet the row is on (1-based, as an editor counts).
    line: int = 0


def _number(text: str) -> float | None:
    try:
        x = float(text)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _row(
    values: dict[str, str], line: int, layouts: tuple[str, ...] | None, problems: list[str]
) -> SampleRow | None:
    """The row of one data line, or None after recording its problems (``"LINE: ..."``)."""
    before = len(problems)
    for col in REQUIRED:
        if not values[col]:
            problems.append(f"{line}: {col} is empty")
        elif not _NAME.match(values[col]):
            problems.append(
                f"{line}: {col} {values[col]!r} may hold only letters, digits and _ . + -"
            )
    fps = None
    if values["fps"]:
        fps = _number(values["fps"])
        if fps is None or fps <= 0:
            problems.append(f"{line}: fps must be a number > 0, got {values['fps']!r}")
    offset = 0.0
    if values["audio_offset_s"]:
        parsed = _number(values["audio_offset_s"])
        if parsed is None:
            problems.append(
                f"{line}: audio_offset_s must be a number (seconds), "
                f"got {values['audio_offset_s']!r}"
            )
        else:
            offset = parsed
    cameras = values["cameras"].replace(" ", "")
    if cameras and not _SERIALS.match(cameras):
        problems.append(
            f"{line}: cameras must be comma-separated serials (digits), got {values['cameras']!r}"
        )
    layout = values["layout"]
    if layout and layouts is not None and layout not in layouts:
        problems.append(
            f"{line}: layout must be one of {', '.join(layouts)}{did_you_mean(layout, layouts)}, "
            f"got {layout!r}"
        )
    if len(problems) > before:
        return None
    return SampleRow(
        subject=values["subject"],
        sequence=values["sequence"],
        layout=layout,
        root=values["root"],
        fps=fps,
        audio=values["audio"],
        audio_offset_s=offset,
        cameras=tuple(cameras.split(",")) if cameras else (),
        line=line,
    )


def _lines(text: str) -> Iterable[tuple[int, list[str]]]:
    """(line number, tab-separated fields) of the lines that are not comments or blank."""
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        yield number, raw.split("\t")


def read_sample_sheet(path: PathLike, layouts: Iterable[str] | None = None) -> list[SampleRow]:
    """The rows of a sample sheet, checked.

    Args:
        path: the TSV file.
        layouts: the admissible values of the ``layout`` column (None: not checked here).

    Returns:
        One :class:`SampleRow` per data line, in file order.

    Raises:
        ConfigError: one line per problem of the whole sheet, each starting with
            ``<path>:<line>:`` (or ``<path>:`` for the file as a whole): a missing, unreadable
            or empty file, a header without ``subject`` or ``sequence``, an unknown column
            (with the closest known name), a header and no rows, a line with more fields than
            the header, an empty or malformed name, an fps that is not a number > 0, an
            audio_offset_s that is not a number, malformed camera serials, an unknown layout,
            and a subject/sequence listed twice.
    """
    path = Path(path)
    allowed = tuple(layouts) if layouts is not None else None
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: sample sheet not found (config key: samples)") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: sample sheet is a folder, not a TSV file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the sample sheet ({exc})") from None
    lines = iter(_lines(text))
    first = next(lines, None)
    if first is None:
        raise ConfigError(
            f"{path}: empty sample sheet: needs a header line (tab-separated: "
            f"{', '.join(COLUMNS)}) and one line per sequence"
        )
    head_line, header = first
    header = [h.strip() for h in header]
    problems: list[str] = []
    for col in header:
        if col not in COLUMNS:
            problems.append(
                f"{head_line}: unknown column {col!r}{did_you_mean(col, COLUMNS)}; "
                f"known: {', '.join(COLUMNS)}"
            )
    for col in REQUIRED:
        if col not in header:
            problems.append(
                f"{head_line}: missing column {col!r} (the header needs subject and "
                "sequence, separated by a tab)"
            )
    seen_cols = set()
    for col in header:
        if col in seen_cols and col in COLUMNS:
            problems.append(f"{head_line}: column {col!r} appears twice")
        seen_cols.add(col)
    if problems:
        raise ConfigError("\n".join(f"{path}:{p}" for p in problems))

    rows: list[SampleRow] = []
    first_line: dict[tuple[str, str], int] = {}
    for number, fields in lines:
        if len(fields) > len(header):
            problems.append(
                f"{number}: {len(fields)} tab-separated fields, the header has {len(header)}"
            )
            continue
        values = dict.fromkeys(COLUMNS, "")
        values.update({h: f.strip() for h, f in zip(header, fields, strict=False)})
        row = _row(values, number, allowed, problems)
        if row is None:
            continue
        key = (row.subject, row.sequence)
        if key in first_line:
            problems.append(
                f"{number}: subject {row.subject} sequence {row.sequence} is already on line "
                f"{first_line[key]}"
            )
            continue
        first_line[key] = number
        rows.append(row)
    if problems:
        raise ConfigError("\n".join(f"{path}:{p}" for p in problems))
    if not rows:
        raise ConfigError(
            f"{path}: no rows: the sheet has a header and no sequence (one line per sequence: "
            "subject<TAB>sequence...)"
        )
    return rows
