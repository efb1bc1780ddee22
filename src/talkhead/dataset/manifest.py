"""The dataset's manifest: one row per packaged sequence, as CSV and Parquet (same rows, same
columns, same values).

Columns (:data:`BASE_COLUMNS`, then the fit-quality figures in name order):

- ``subject``, ``sequence``, ``name`` (``<SUBJECT>_<SEQ>``, the folder under ``data/``);
- ``frames`` (fitted frames T), ``first_frame``, ``last_frame`` (capture frame indices),
  ``fps``, ``seconds`` (T / fps);
- ``feature_rows`` (rows of the audio features, one per capture frame), ``logmel_dim``,
  ``wav2vec2_dim`` (0: none);
- paths relative to the dataset folder (empty: not packaged): ``audio``, ``logmel``,
  ``wav2vec2``, ``flame_params``, ``flame_template``, ``flame_meshes``, ``nphm_expressions``,
  ``nphm_meshes``;
- fit-quality figures: every numeric figure of the fit's metrics.json, prefixed ``flame_``
  (``flame_landmark_residual_mm``, ``flame_jitter_rmse``, ...) or ``nphm_``; empty (NaN) for a
  sequence whose fit did not report it.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import DatasetError
from ..io import PathLike, atomic_path
from . import layout
from .package import PackagedSequence

__all__ = [
    "BASE_COLUMNS",
    "INT_COLUMNS",
    "PATH_COLUMNS",
    "manifest_columns",
    "manifest_rows",
    "read_manifest",
    "write_manifest",
]

STR_COLUMNS = ("subject", "sequence", "name")
INT_COLUMNS = ("frames", "first_frame", "last_frame", "feature_rows", "logmel_dim", "wav2vec2_dim")
PATH_COLUMNS = (
    "audio",
    "logmel",
    "wav2vec2",
    "flame_params",
    "flame_template",
    "flame_meshes",
    "nphm_expressions",
    "nphm_meshes",
)
BASE_COLUMNS = (
    "subject",
    "sequence",
    "name",
    "frames",
    "first_frame",
    "last_frame",
    "fps",
    "seconds",
    "feature_rows",
    "logmel_dim",
    "wav2vec2_dim",
    *PATH_COLUMNS,
)
_TEXT = set(STR_COLUMNS) | set(PATH_COLUMNS)


def manifest_rows(packaged: Sequence[PackagedSequence], root: PathLike) -> list[dict[str, Any]]:
    """One manifest row per packaged sequence, sorted by subject then sequence."""
    root = Path(root)
    rows = []
    for p in packaged:
        src, folder = p.source, p.folder

        def rel(path: Path, present: bool = True) -> str:
            return path.relative_to(root).as_posix() if present else ""

        has_w2v = "wav2vec2" in src.feature_dims
        has_nphm = any(k.startswith("nphm_tracking/nphm_expressions/") for k in src.files)
        has_nphm_meshes = any(k.startswith("nphm_tracking/nphm_meshes/") for k in src.files)
        T = int(len(src.frames))
        row: dict[str, Any] = {
            "subject": src.outputs.subject,
            "sequence": src.outputs.sequence,
            "name": folder.name,
            "frames": T,
            "first_frame": int(src.frames[0]),
            "last_frame": int(src.frames[-1]),
            "fps": float(src.fps),
            "seconds": T / float(src.fps),
            "feature_rows": int(src.feature_rows),
            "logmel_dim": int(src.feature_dims["logmel"]),
            "wav2vec2_dim": int(src.feature_dims.get("wav2vec2", 0)),
            "audio": rel(layout.wav_path(folder)),
            "logmel": rel(layout.feature_path(folder, "logmel")),
            "wav2vec2": rel(layout.feature_path(folder, "wav2vec2"), has_w2v),
            "flame_params": rel(layout.flame_params_path(folder)),
            "flame_template": rel(layout.template_path(folder)),
            "flame_meshes": rel(layout.flame_dir(folder) / "flame_meshes"),
            "nphm_expressions": rel(layout.nphm_dir(folder) / "nphm_expressions", has_nphm),
            "nphm_meshes": rel(layout.nphm_dir(folder) / "nphm_meshes", has_nphm_meshes),
            **src.fit,
        }
        rows.append(row)
    return sorted(rows, key=lambda r: (r["subject"], r["sequence"]))


def manifest_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """:data:`BASE_COLUMNS`, then every other column of ``rows`` (fit figures) in name order."""
    extra = sorted({k for r in rows for k in r} - set(BASE_COLUMNS))
    return [*BASE_COLUMNS, *extra]


def _value(column: str, value: Any) -> Any:
    if column in _TEXT:
        return "" if value is None else str(value)
    if column in INT_COLUMNS:
        return int(value)
    return math.nan if value is None or value == "" else float(value)


def write_manifest(
    rows: Sequence[dict[str, Any]], csv_path: PathLike, parquet_path: PathLike
) -> None:
    """Write the manifest as CSV (floats written exactly, ``repr``; a missing figure empty) and
    Parquet (string, int64 and float64 columns; a missing figure null), atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = manifest_columns(rows)
    full = [{c: _value(c, r.get(c)) for c in columns} for r in rows]
    with atomic_path(csv_path, suffix=".csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for r in full:
            writer.writerow(
                [
                    ""
                    if isinstance(r[c], float) and math.isnan(r[c])
                    else repr(r[c])
                    if isinstance(r[c], float)
                    else r[c]
                    for c in columns
                ]
            )

    def arrow_type(c: str) -> pa.DataType:
        return pa.string() if c in _TEXT else pa.int64() if c in INT_COLUMNS else pa.float64()

    schema = pa.schema([(c, arrow_type(c)) for c in columns])
    data = {
        c: [None if isinstance(r[c], float) and math.isnan(r[c]) else r[c] for r in full]
        for c in columns
    }
    table = pa.table(data, schema=schema)
    with atomic_path(parquet_path, suffix=".parquet") as tmp:
        pq.write_table(table, tmp)


def read_manifest(path: PathLike) -> list[dict[str, Any]]:
    """Read a manifest (``.csv`` or ``.parquet``) as rows: text, int and float columns typed as
    :func:`write_manifest` wrote them, a missing figure NaN.

    Raises:
        DatasetError: the file is missing, unreadable, or lacks a base column.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: manifest missing (the dataset rule writes it)")
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            raw = pq.read_table(path).to_pylist()
            columns = list(raw[0]) if raw else pq.read_schema(path).names
        else:
            with open(path, newline="") as fh:
                reader = csv.DictReader(fh)
                raw = list(reader)
                columns = list(reader.fieldnames or [])
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: unreadable manifest ({exc})") from None
    missing = [c for c in BASE_COLUMNS if c not in columns]
    if missing:
        raise DatasetError(f"{path}: manifest lacks the column(s) {', '.join(missing)}")
    try:
        return [{c: _value(c, r[c]) for c in columns} for r in raw]
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{path}: malformed manifest value ({exc})") from None
