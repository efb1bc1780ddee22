"""Settings of the FLAME model files (the ``flame`` config section)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..config import option

__all__ = ["AlignConfig", "FlameFilesConfig"]


@dataclass(frozen=True)
class FlameFilesConfig:
    """The FLAME model files; all empty: the synthetic head model built into resources/."""

    model: str = option(
        "", "A FLAME 2020/2023 generic_model.pkl (or .npz); empty: the synthetic head model."
    )
    landmark_embedding: str = option(
        "",
        "Landmark embedding (68 points): .npz (lmk_face_idx, lmk_b_coords) or "
        "landmark_embedding.npy; needed with model.",
    )
    masks: str = option("", "Region masks (FLAME_masks.pkl); needed with model.")

    SCHEMA_RULES: ClassVar[dict[str, Any]] = {
        "if": {"properties": {"model": {"minLength": 1}}, "required": ["model"]},
        "then": {
            "properties": {"landmark_embedding": {"minLength": 1}, "masks": {"minLength": 1}},
            "required": ["landmark_embedding", "masks"],
        },
    }

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules, as ``(field, message)`` pairs."""
        if not self.model:
            return []
        return [
            (name, "must be set when model is set")
            for name in ("landmark_embedding", "masks")
            if not getattr(self, name)
        ]


@dataclass(frozen=True)
class AlignConfig:
    """Alignment of the FLAME template to a sequence's 3D landmarks (the ``align_flame`` section;
    FaceTalk supplement, section D, "Flame Fitting")."""

    outlier_threshold: float = option(
        0.020,
        "Landmark pairs farther than this (metres) after the rigid transform are outliers.",
        exclusive_minimum=0,
    )
    scale_range: tuple[float, ...] = option(
        (0.5, 2.0),
        "Admissible similarity scale [low, high]; outside it the landmarks are not in metres.",
        exclusive_minimum=0,
        min_items=2,
    )
    min_landmarks: int = option(
        6, "Least number of inlier landmark pairs the similarity is computed from.", minimum=3
    )
    pooling: str = option(
        "all_frames",
        "all_frames: every valid (frame, landmark) pair; median: each landmark's median over "
        "frames.",
        choices=("all_frames", "median"),
    )

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules, as ``(field, message)`` pairs."""
        lo_hi = self.scale_range
        if len(lo_hi) != 2 or not lo_hi[0] <= 1.0 <= lo_hi[1]:
            return [
                ("scale_range", f"must be [low, high] with low <= 1 <= high, got {list(lo_hi)}")
            ]
        return []
