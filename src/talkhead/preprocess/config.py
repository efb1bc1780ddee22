"""Settings of the preprocess products a raw capture lacks (the ``preprocess`` config section):
mattes, 2D landmarks, facial segmentation, audio. Imports only the standard library."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option, section

__all__ = [
    "MATTE_METHODS",
    "AudioConfig",
    "LandmarksConfig",
    "MatteConfig",
    "PreprocessConfig",
    "SegmentationConfig",
]

#: Values of ``preprocess.mattes.method``.
MATTE_METHODS = ("auto", "background", "selfie")


@dataclass(frozen=True)
class MatteConfig:
    """Alpha mattes: background-plate difference, or MediaPipe selfie segmentation."""

    method: str = option(
        "auto",
        "auto (background plates where the capture has them, else selfie), background or selfie.",
        choices=MATTE_METHODS,
    )
    background_low: float = option(
        12.0,
        "Plate difference: colour distance (8-bit RGB levels) at and below which alpha is 0.",
        minimum=0,
    )
    background_high: float = option(
        30.0,
        "Plate difference: colour distance (8-bit RGB levels) at and above which alpha is 1.",
        exclusive_minimum=0,
    )
    selfie_model: int = option(
        0, "MediaPipe selfie model: 0 general (256x256), 1 landscape (144x256).", choices=(0, 1)
    )
    selfie_threshold: float = option(
        0.5, "Selfie segmentation: foreground above this probability.", minimum=0, maximum=1
    )
    morphology_px: int = option(
        5, "Opening then closing of the foreground (odd kernel, pixels; 0: off).", off=0, odd=True
    )
    min_component_fraction: float = option(
        0.2,
        "Foreground components smaller than this fraction of the largest one are dropped.",
        minimum=0,
        maximum=1,
    )
    fill_holes: bool = option(True, "Fill holes enclosed by the foreground.")

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules, as ``(field, message)`` pairs."""
        if self.background_low >= self.background_high:
            return [
                (
                    "background_low",
                    f"must be < background_high ({self.background_high}), "
                    f"got {self.background_low}",
                )
            ]
        return []


@dataclass(frozen=True)
class LandmarksConfig:
    """2D landmarks: MediaPipe face mesh (478 points) mapped to iBUG-68."""

    min_detection_confidence: float = option(
        0.5, "MediaPipe face detector: least detection confidence.", minimum=0, maximum=1
    )
    max_side: int = option(
        1024,
        "Images (or head crops) whose larger side exceeds this are downscaled before detection.",
        minimum=64,
    )
    crop_margin: float = option(
        0.25,
        "Margin added around the matte's head box before detection (fraction of its size).",
        minimum=0,
    )
    max_disagreement: float = option(
        0.04,
        "Views farther than this from the multi-view triangulation (fraction of face size).",
        exclusive_minimum=0,
    )
    disagreeing_confidence: float = option(
        0.2,
        "Confidence given to a landmark whose view disagrees with the triangulation.",
        minimum=0,
        maximum=1,
    )


@dataclass(frozen=True)
class SegmentationConfig:
    """Facial segmentation (facer / LaPa labels) filled from the face mesh's regions."""

    use_alpha: bool = option(
        True, "Clear labels where the matte is below 0.5 (when a matte is available)."
    )


@dataclass(frozen=True)
class AudioConfig:
    """The capture's microphone track from a sample-sheet file or a video's audio stream."""

    mono: bool = option(False, "Mix to one channel (false: keep the channels as recorded).")


@dataclass(frozen=True)
class PreprocessConfig:
    """What preprocess makes for a capture that lacks it: mattes, landmarks, segmentation,
    audio. Each product is skipped when the capture ships it."""

    mattes: MatteConfig = section(MatteConfig, "Alpha mattes.")
    landmarks: LandmarksConfig = section(LandmarksConfig, "2D landmarks (iBUG-68).")
    segmentation: SegmentationConfig = section(
        SegmentationConfig, "Facial segmentation (facer / LaPa labels)."
    )
    audio: AudioConfig = section(AudioConfig, "The microphone track.")
