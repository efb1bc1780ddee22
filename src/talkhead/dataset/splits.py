"""Train/val/test splits by subject: no subject's sequences in two splits.

The seeded split (:func:`make_splits`) shuffles the sorted subjects with
``numpy.random.default_rng(seed)`` and cuts the shuffled list into consecutive train, val and
test parts of :func:`split_counts` subjects: the same seed and the same subjects give the same
split. A split file a user wrote or edited (``splits.json`` itself is such a file) replaces it
through ``dataset.splits_file`` and is checked against the manifest's subjects
(:func:`check_splits`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DatasetError
from ..io import PathLike, save_json

__all__ = [
    "SPLITS",
    "check_splits",
    "load_splits",
    "make_splits",
    "read_splits_file",
    "split_counts",
    "split_of",
    "write_splits",
]

SPLITS = ("train", "val", "test")
#: Keys of a splits file besides the splits themselves (ignored when read back).
META_KEYS = ("seed", "fractions", "source", "comment")


def split_counts(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Subjects per split: ``n * fraction`` rounded by largest remainder (ties: train, val,
    test), then every split with a non-zero fraction given at least one subject, taken from
    the largest split (with fewer subjects than such splits: train first, then val, then test).

    Args:
        n: number of subjects.
        fractions: ``{"train": f, "val": f, "test": f}``, summing to 1.

    Returns:
        ``{split: count}`` summing to ``n``.
    """
    ideal = {s: n * float(fractions.get(s, 0.0)) for s in SPLITS}
    counts = {s: math.floor(ideal[s] + 1e-9) for s in SPLITS}
    left = n - sum(counts.values())
    by_remainder = sorted(SPLITS, key=lambda s: (-(ideal[s] - counts[s]), SPLITS.index(s)))
    for s in by_remainder[: max(left, 0)]:
        counts[s] += 1
    wanted = [s for s in SPLITS if fractions.get(s, 0.0) > 0]
    for s in wanted[:n]:
        if counts[s] == 0:
            donor = max(SPLITS, key=lambda d: (counts[d], -SPLITS.index(d)))
            counts[donor] -= 1
            counts[s] += 1
    return counts


def make_splits(
    subjects: Iterable[str], fractions: Mapping[str, float], seed: int
) -> dict[str, list[str]]:
    """The seeded subject split: ``{"train": [...], "val": [...], "test": [...]}``, each sorted."""
    names = sorted(set(subjects))
    order = np.random.default_rng(seed).permutation(len(names))
    shuffled = [names[i] for i in order]
    counts = split_counts(len(names), fractions)
    out, start = {}, 0
    for s in SPLITS:
        out[s] = sorted(shuffled[start : start + counts[s]])
        start += counts[s]
    return out


def check_splits(splits: Mapping[str, Sequence[str]], subjects: Iterable[str]) -> list[str]:
    """The problems of a split against the dataset's subjects (empty list: a valid split):
    a subject in two splits, subjects the dataset lacks, subjects in no split."""
    problems = []
    seen: dict[str, str] = {}
    for s in SPLITS:
        for subject in splits.get(s, []):
            if subject in seen and seen[subject] != s:
                problems.append(f"subject {subject} is in both {seen[subject]} and {s}")
            seen.setdefault(subject, s)
    known = set(subjects)
    unknown = sorted(set(seen) - known)
    if unknown:
        problems.append(f"unknown subject(s) {', '.join(unknown)} (not in the dataset)")
    missing = sorted(known - set(seen))
    if missing:
        problems.append(f"subject(s) {', '.join(missing)} in no split")
    return problems


def read_splits_file(path: PathLike, subjects: Iterable[str]) -> dict[str, list[str]]:
    """A user's split file (JSON: ``{"train": [...], "val": [...], "test": [...]}``; a split
    left out is empty; ``seed``, ``fractions``, ``source``, ``comment`` are ignored), checked
    against the dataset's subjects.

    Raises:
        ConfigError: one line naming ``dataset.splits_file`` and the file, with every problem:
            missing or unreadable file, not a JSON object, an unknown split name, a split that
            is not a list of names, a subject in two splits, unknown subjects, subjects in no
            split.
    """
    where = f"dataset.splits_file {path}"
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{where}: file not found") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}: not readable as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a JSON object of splits (train, val, test)")
    problems = []
    splits: dict[str, list[str]] = {s: [] for s in SPLITS}
    for key, value in data.items():
        if key in META_KEYS:
            continue
        if key not in SPLITS:
            problems.append(f"unknown split {key!r} (splits: {', '.join(SPLITS)})")
        elif not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(f"{key} must be a list of subject names")
        else:
            splits[key] = list(value)
    problems += check_splits(splits, subjects)
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))
    return {s: sorted(set(v)) for s, v in splits.items()}


def write_splits(path: PathLike, splits: Mapping[str, Sequence[str]], **meta: Any) -> None:
    """Write ``splits.json`` (the splits, then ``meta``: seed, fractions, source) atomically."""
    save_json(path, {**{s: list(splits.get(s, [])) for s in SPLITS}, **meta})


def load_splits(path: PathLike) -> dict[str, list[str]]:
    """Read a packaged dataset's ``splits.json``.

    Raises:
        DatasetError: missing or malformed, or a subject in two splits.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(f"{path}: splits file missing (the dataset rule writes it)") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: unreadable splits file ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(s, []), list) for s in SPLITS):
        raise DatasetError(f"{path}: expected lists of subjects under {', '.join(SPLITS)}")
    splits = {s: [str(x) for x in data.get(s, [])] for s in SPLITS}
    problems = check_splits(splits, {x for v in splits.values() for x in v})
    if problems:
        raise DatasetError(f"{path}: " + "; ".join(problems))
    return splits


def split_of(splits: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """``{subject: split}``."""
    return {subject: s for s in SPLITS for subject in splits.get(s, [])}
