"""Settings of the synthetic studio (the ``synthetic`` config section)."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from ..config import did_you_mean, option

__all__ = ["ACTOR_OPTIONS", "StudioConfig"]

#: The options of ``synthetic.actor``: the keyword options of the speaking actor's utterance,
#: voice and motion (:func:`talkhead.synth.actor.speaking_actor`), each with its number of
#: items (0: a single number). tests/test_config.py keeps this table equal to their signatures.
ACTOR_OPTIONS: dict[str, int] = {
    # utterance (talkhead.synth.actor.random_utterance)
    "speech_rate": 0,
    "syllables_per_word": 2,
    "onset_prob": 0,
    "coda_prob": 0,
    "pause_prob": 0,
    "pause_s": 2,
    "lead_s": 2,
    "tail_s": 2,
    # voice (talkhead.synth.speech.synthesize)
    "f0_hz": 0,
    "formant_scale": 0,
    "accent": 0,
    "declination": 0,
    "drift": 0,
    "jitter": 0,
    "shimmer_db": 0,
    "breathiness": 0,
    "peak": 0,
    # motion (talkhead.synth.actor.animate)
    "articulation": 0,
    "head_rotation_deg": 3,
    "head_translation_mm": 3,
    "neck_deg": 0,
    "gaze_deg": 2,
    "blink_interval_s": 2,
    "blink_duration_s": 2,
    "brow_rate_hz": 0,
    "smile": 0,
    "expression_noise": 0,
}


def _is_number(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _actor_problem(key: str, value: object) -> str | None:
    """What is wrong with ``synthetic.actor.<key>: value`` (None: nothing)."""
    if key not in ACTOR_OPTIONS:
        return (
            f"unknown actor option{did_you_mean(key, tuple(ACTOR_OPTIONS))}; "
            f"known: {', '.join(ACTOR_OPTIONS)}"
        )
    n = ACTOR_OPTIONS[key]
    if n == 0 and not _is_number(value):
        return f"expected a number, got {value!r}"
    if n and not (
        isinstance(value, list | tuple) and len(value) == n and all(map(_is_number, value))
    ):
        return f"expected a list of {n} numbers, got {value!r}"
    return None


@dataclass
class StudioConfig:
    """Settings of the synthetic studio: subjects, head model, camera rig, recording, noise.

    Every seed derives from ``seed`` and the subject/sequence names. The calibration written to
    ``camera_params.json`` is the true, jittered rig. Build from YAML with
    ``talkhead.config.from_mapping(StudioConfig, data, "synthetic")``.
    """

    n_subjects: int = option(1, "Number of synthetic subjects (syn000, syn001, ...).", minimum=1)
    n_sequences: int = option(
        1, "Number of sequences per subject (SEN-00, SEN-01, ...).", minimum=1
    )
    seed: int = option(
        0, "Master seed: identities, speech, motion and noise derive from it.", minimum=0
    )
    n_shape: int = option(50, "Shape (identity) blendshapes of the head model.", minimum=8)
    n_expression: int = option(50, "Expression blendshapes of the head model.", minimum=8)
    n_cameras: int = option(8, "Cameras on the arc around the head.", minimum=2)
    width: int = option(256, "Image width (pixels).", minimum=32)
    height: int = option(320, "Image height (pixels).", minimum=32)
    fov_deg: float = option(
        16.0, "Horizontal field of view (degrees).", exclusive_minimum=1, maximum=120
    )
    rig_radius: float = option(
        1.0, "Camera distance to the head (metres).", exclusive_minimum=0.3, maximum=1.3
    )
    yaw_span_deg: float = option(
        100.0, "Arc spanned by the cameras (degrees).", minimum=0, maximum=360
    )
    pitch_deg: tuple[float, ...] = option(
        (-8.0, 8.0),
        "Camera elevations (degrees), alternating along the arc.",
        minimum=-60,
        maximum=60,
        min_items=1,
    )
    rig_jitter_deg: float = option(
        0.5, "Placement error of each camera: rotation (degrees).", minimum=0
    )
    rig_jitter_m: float = option(
        0.01, "Placement error of each camera: position (metres).", minimum=0
    )
    fps: float = option(25.0, "Video frame rate (frames per second).", exclusive_minimum=0)
    duration_s: float = option(2.0, "Duration of each sequence (seconds).", minimum=0.2)
    sample_rate: int = option(16000, "Microphone sample rate (Hz).", minimum=8000)
    mic_level_db: float = option(-26.0, "Speech level: dBFS of the peak.", maximum=0)
    mic_snr_db: float = option(
        5.0,
        "Microphone signal-to-noise ratio (dB; speech over room tone, hum and hiss over the "
        "clip): a quiet, noisy distant microphone, as the FaceTalk supplement describes "
        "NeRSemble's audio.",
    )
    sensor_noise: float = option(
        1.5, "Image sensor noise (standard deviation, 8-bit levels).", minimum=0
    )
    camera_gain_std: float = option(0.03, "Spread of the per-camera gain.", minimum=0)
    supersample: int = option(
        2,
        "Anti-aliasing: n x n rays per pixel at silhouettes and depth jumps (1: off).",
        minimum=1,
    )
    shape_std: float = option(
        1.0,
        "Spread of the identity (shape) coefficients; 0 renders the template head.",
        minimum=0,
    )
    torso: bool = option(True, "Render shoulders under the head.")
    backdrop_distance: float = option(
        1.0, "Distance (metres) of the back wall behind the head.", exclusive_minimum=0.3
    )
    landmark_noise_px: float = option(
        1.0, "2D landmark detector: pixel noise (standard deviation).", minimum=0
    )
    landmark_outlier_prob: float = option(
        0.02, "2D landmark detector: probability of a gross outlier.", minimum=0, maximum=1
    )
    landmark_outlier_px: float = option(
        25.0, "2D landmark detector: size of a gross outlier (pixels).", minimum=0
    )
    landmark_occluded_guess_prob: float = option(
        0.3,
        "Chance that an occluded landmark is still reported (at confidence <= 0.3) instead of 0.",
        minimum=0,
        maximum=1,
    )
    actor: dict = option({}, "Options of the speaking actor (talkhead.synth.actor.speaking_actor).")

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules, as ``(field, message)`` pairs: the actor's options by name."""
        return [
            (f"actor.{key}", problem)
            for key, value in self.actor.items()
            if (problem := _actor_problem(str(key), value)) is not None
        ]

    def view_directions(self) -> list[tuple[float, float, float]]:
        """Unit vectors from the head to each camera of the nominal rig (before jitter), as
        :func:`talkhead.geometry.cameras.ring_rig` places them (head facing +z)."""
        n = self.n_cameras
        yaws = [-self.yaw_span_deg / 2 + self.yaw_span_deg * i / (n - 1) for i in range(n)]
        out = []
        for i, yaw_deg in enumerate(yaws if n > 1 else [0.0]):
            yaw = math.radians(yaw_deg)
            pitch = math.radians(self.pitch_deg[i % len(self.pitch_deg)])
            out.append(
                (math.sin(yaw) * math.cos(pitch), math.sin(pitch), math.cos(yaw) * math.cos(pitch))
            )
        return out

    @property
    def n_frames(self) -> int:
        """Frames of each sequence: ``round(duration_s * fps)``."""
        return int(round(self.duration_s * self.fps))
