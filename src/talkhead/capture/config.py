"""Settings of the capture (the ``capture`` config section) and of the facial mask
(the ``face_mask`` section, used by the depth stage, back-projection and the QC pages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..config import option, section
from .layouts import LAYOUTS
from .masks import FACE_LABELS

__all__ = [
    "LANDMARK_SOURCES",
    "LAYOUT_CHOICES",
    "SOURCES",
    "CaptureConfig",
    "FaceMaskConfig",
    "IngestConfig",
]

#: Values of ``capture.source``.
SOURCES = ("synthetic", "nersemble")
#: Values of ``capture.layout``.
LAYOUT_CHOICES = ("auto", *LAYOUTS)
#: Values of ``capture.landmarks``.
LANDMARK_SOURCES = ("studio", "mediapipe")


@dataclass(frozen=True)
class IngestConfig:
    """How a capture is turned into talkhead's tree (videos decoded, colours, undistortion)."""

    downscale: float = option(
        1.0,
        "Divide the image size by this factor at ingest (NeRSemble v1 used 2: 2200x3208 -> "
        "1100x1604); intrinsics are scaled with the images.",
        minimum=1,
    )
    fps: float = option(
        0.0,
        "Frame rate videos are decoded at (frame t is the frame nearest to t/fps); 0: every "
        "frame of the video, at its own rate.",
        exclusive_minimum=0,
        off=0.0,
    )
    colour_calibration: bool = option(
        True,
        "Apply the capture's colour calibration (v2 color_calibration.json, v1 "
        "color_correction/*.npy) when it ships one.",
    )


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
    layout: str = option(
        "auto",
        "Layout of the tree under root: auto (detect and log it), talkhead, nersemble_v1, "
        "nersemble_v2 or nersemble_benchmark.",
        choices=LAYOUT_CHOICES,
    )
    landmarks: str = option(
        "studio",
        "2D landmarks: studio (the capture's own, e.g. the synthetic studio's simulated "
        "detector; a capture without them gets MediaPipe's) or mediapipe (MediaPipe's face "
        "mesh on the images, replacing the capture's own).",
        choices=LANDMARK_SOURCES,
    )
    ground_truth: str = option(
        "",
        "Ground truth of a capture exported from the synthetic studio (talkhead export-capture):"
        " its folder (the ground_truth folder beside the synthetic capture) turns on the "
        "evaluate rules; empty for a real capture.",
    )
    ingest: IngestConfig = section(
        IngestConfig, "Turning a capture into talkhead's tree (NeRSemble videos, v1 frames)."
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
