"""The dataset stage: every sequence's stage outputs -> the packaged dataset (FaceTalk's layout,
:mod:`talkhead.dataset.layout`), its manifest, subject splits, training windows and a flat
``metrics.json`` of the dataset's figures. The only module of :mod:`talkhead.dataset` that
writes.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config import check, from_mapping
from ..errors import DatasetError
from ..io import PathLike, save_metrics
from . import layout
from .config import DatasetConfig
from .layout import StageOutputs
from .manifest import manifest_rows, write_manifest
from .package import package_sequence, read_sequence_source
from .splits import make_splits, read_splits_file, write_splits
from .windows import make_windows, save_windows, window_summary

__all__ = ["run_dataset_stage"]

log = logging.getLogger(__name__)


def _config(settings: DatasetConfig | Mapping[str, Any] | None) -> DatasetConfig:
    if isinstance(settings, DatasetConfig):
        return check(settings, "dataset")
    return from_mapping(DatasetConfig, settings, "dataset")


def run_dataset_stage(
    outputs: Sequence[StageOutputs],
    root: PathLike,
    settings: DatasetConfig | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Package every sequence under ``root`` and write the manifest, splits, windows, metrics.

    Every sequence's inputs are checked before anything is written; each sequence folder is
    published whole (:func:`~talkhead.dataset.package.package_sequence`); folders under
    ``data/`` of sequences no longer in ``outputs`` are removed, so the folder matches the
    manifest.

    Args:
        outputs: one :class:`StageOutputs` per sequence (``nphm`` set when
            ``dataset.include_nphm`` is).
        root: the dataset folder (``results/dataset``).
        settings: the ``dataset`` config section.

    Returns:
        The figures written to ``metrics.json``: ``n_subjects``, ``n_sequences``,
        ``n_frames``, ``hours``, ``subjects_<split>``, ``n_windows``, ``n_padded_windows``,
        ``padded_frames``, ``windows_<split>``, ``files_linked``, ``files_copied``.

    Raises:
        DatasetError: no sequences, two sequences with one folder name, a missing or
            inconsistent input (see :func:`~talkhead.dataset.package.read_sequence_source`).
        ConfigError: a bad ``dataset.splits_file``.
        ModelFileError: malformed FLAME parameters.
    """
    cfg = _config(settings)
    root = Path(root)
    if not outputs:
        raise DatasetError(f"{root}: no sequences to package")
    names = [o.name for o in outputs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DatasetError(f"{root}: several sequences would share the folder(s) {twice}")
    for o in outputs:
        if cfg.include_nphm and o.nphm is None:
            raise DatasetError(f"{o.name}: dataset.include_nphm is true but no NPHM folder given")
    sources = [read_sequence_source(o) for o in outputs]

    data = layout.data_dir(root)
    if data.is_dir():
        for stale in sorted(p for p in data.iterdir() if p.name not in set(names)):
            log.info("removing %s: not a sequence of this run", stale)
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    packaged = [package_sequence(s, root, cfg.hard_links) for s in sources]
    linked = sum(p.n_linked for p in packaged)
    copied = sum(p.n_copied for p in packaged)
    if copied and cfg.hard_links:
        log.warning(
            "%d of %d files copied, not hard-linked (the stages' results are on another file "
            "system, or links are not permitted there)",
            copied,
            linked + copied,
        )

    rows = manifest_rows(packaged, root)
    write_manifest(rows, layout.manifest_csv_path(root), layout.manifest_parquet_path(root))
    subjects = sorted({r["subject"] for r in rows})
    if cfg.splits_file:
        splits = read_splits_file(cfg.splits_file, subjects)
        meta: dict[str, Any] = {"source": str(cfg.splits_file)}
    else:
        splits = make_splits(subjects, cfg.fractions(), cfg.seed)
        meta = {"source": "seeded", "seed": cfg.seed, "fractions": cfg.fractions()}
    write_splits(layout.splits_path(root), splits, **meta)
    windows = make_windows(rows, splits, cfg.window_frames, cfg.window_stride, cfg.cover_tail)
    save_windows(layout.windows_path(root), windows)

    n_frames = sum(r["frames"] for r in rows)
    metrics: dict[str, Any] = {
        "n_subjects": len(subjects),
        "n_sequences": len(rows),
        "n_frames": n_frames,
        "hours": sum(r["seconds"] for r in rows) / 3600.0,
        **{f"subjects_{s}": len(v) for s, v in splits.items()},
        **window_summary(windows),
        "files_linked": linked,
        "files_copied": copied,
    }
    save_metrics(layout.metrics_path(root), metrics)
    log.info(
        "dataset: %d subjects, %d sequences, %d frames, %d windows (%d padded); splits %s",
        len(subjects),
        len(rows),
        n_frames,
        metrics["n_windows"],
        metrics["n_padded_windows"],
        {s: len(v) for s, v in splits.items()},
    )
    return metrics
