"""Settings of the synthetic studio (the ``synthetic`` config section)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option


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
    mic_snr_db: float = option(20.0, "Microphone signal-to-noise ratio (dB).")
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

    @property
    def n_frames(self) -> int:
        """Frames of each sequence: ``round(duration_s * fps)``."""
        return int(round(self.duration_s * self.fps))
