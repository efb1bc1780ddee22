"""Settings of dataset packaging (the ``dataset`` config section)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import option

__all__ = ["DatasetConfig"]


@dataclass(frozen=True)
class DatasetConfig:
    """Packaging in FaceTalk's layout, subject splits and fixed-length training windows.

    Build from YAML with ``talkhead.config.from_mapping(DatasetConfig, data, "dataset")``.
    """

    include_nphm: bool = option(
        True,
        "Package the NPHM fits (nphm_tracking/: the expression codes facetalk_nphm learns) "
        "too; the workflow packages none when nphm.enabled is false.",
    )
    hard_links: bool = option(
        True,
        "Hard-link the stages' files into the dataset where the file system allows (else "
        "copied); false: always copy.",
    )
    seed: int = option(0, "Seed of the subject split (same seed, same subjects: same split).")
    train_fraction: float = option(
        0.8, "Fraction of subjects in the training split.", minimum=0, maximum=1
    )
    val_fraction: float = option(
        0.1, "Fraction of subjects in the validation split.", minimum=0, maximum=1
    )
    test_fraction: float = option(
        0.1, "Fraction of subjects in the test split.", minimum=0, maximum=1
    )
    splits_file: str = option(
        "",
        "A splits JSON ({train: [...], val: [...], test: [...]} subjects, e.g. an edited "
        "splits.json) used instead of the seeded split; empty: seeded split.",
    )
    window_frames: int = option(
        50, "Length of a training window (frames; 50 = 2 s at 25 fps).", minimum=1
    )
    window_stride: int = option(25, "Frames between the starts of two windows.", minimum=1)
    cover_tail: bool = option(
        True,
        "Add a window ending at a sequence's last frame when the stride leaves its tail uncovered.",
    )

    def fractions(self) -> dict[str, float]:
        """The split fractions, ``{"train": .., "val": .., "test": ..}``."""
        return {"train": self.train_fraction, "val": self.val_fraction, "test": self.test_fraction}

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules, as ``(field, message)`` pairs."""
        total = math.fsum(self.fractions().values())
        if abs(total - 1.0) > 1e-6:
            return [
                (
                    "train_fraction",
                    f"train_fraction + val_fraction + test_fraction must be 1, got {total:g}",
                )
            ]
        return []
