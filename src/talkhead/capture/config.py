"""Settings of the capture (the ``capture`` config section) and of the facial mask
(the ``face_mask`` section, used by the depth stage, back-projection and the QC pages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..config import option
from .masks import FACE_LABELS

__all__ = ["SOURCES", "CaptureConfig", "FaceMaskConfig"]

#: Values of ``capture.source``.
SOURCES = ("synthetic", "nersemble")


@dataclass(frozen=True)
class CaptureConfig:
    """Where the recordings come from: the synthetic studio or a NeRSemble-style tree."""

    source: str = option(
        "synthetic",
        "synthetic (render the embedded studio, with ground truth) or nersemble (read root).",
        choices=SOURCES,
    )
    root: str = option(
        "", "Root folder of a NeRSemble-style capture (needed when source is nersemble)."
    )
    fps: float = option(
        25.0,
        "Frame rate assumed when a sequence has no sequence.json and the sheet gives none.",
        exclusive_minimum=0,
    )

    SCHEMA_RULES: ClassVar[dict[str, Any]] = {
        "if": {"properties": {"source": {"const": "nersemble"}}, "required": ["source"]},
        "then": {"properties": {"root": {"minLength": 1}}, "required": ["root"]},
    }

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules, as ``(field, message)`` pairs."""
        if self.source == "nersemble" and not self.root:
            return [("root", "must be set when source is 'nersemble'")]
        return []


@dataclass(frozen=True)
class FaceMaskConfig:
    """Which pixels of a view count as face (see :mod:`talkhead.capture.masks`)."""

    labels: tuple[int, ...] = option(
        FACE_LABELS,
        "Segmentation labels of the facial mask (facer/LaPa: 1 skin ... 9 lower lip).",
        minimum=0,
        maximum=255,
        min_items=1,
    )
    use_alpha: bool = option(
        True, "Also require the alpha matte above alpha_threshold (when the capture has one)."
    )
    alpha_threshold: float = option(
        0.5, "Alpha matte threshold (fraction of full scale).", minimum=0, maximum=1
    )
