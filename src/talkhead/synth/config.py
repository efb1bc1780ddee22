"""Settings of the synthetic studio (the ``synthetic`` config section)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError

#: Keys of the workflow's ``synthetic:`` section that are not studio settings.
WORKFLOW_KEYS = frozenset({"n_subjects", "n_sequences"})


@dataclass
class StudioConfig:
    """Settings of the synthetic studio (the ``synthetic:`` section of the config).

    Attributes:
        seed: global seed; every other seed derives from it and the subject/sequence names.
        n_cameras: cameras on the ring; width, height: image size in pixels.
        fov_deg: horizontal field of view.
        rig_radius: camera distance to the head (metres); yaw_span_deg: arc of the ring;
        pitch_deg: camera elevations, alternating along the ring.
        rig_jitter_deg, rig_jitter_m: per-camera random placement error of the ring (the
            calibration written to ``camera_params.json`` is the true, jittered one).
        fps, duration_s: video rate and take length; sample_rate: audio rate (Hz).
        mic_level_db: peak level of the recorded speech (dBFS); mic_snr_db: speech-to-noise.
        landmark_noise_px, landmark_outlier_prob, landmark_outlier_px: 2D detector errors;
        landmark_occluded_guess_prob: chance that an occluded landmark is still reported
            (at low confidence <= 0.3) instead of confidence 0.
        sensor_noise: Gaussian image noise (8-bit levels); camera_gain_std: per-camera gain.
        supersample: n x n anti-aliasing rays at silhouettes (1: off).
        n_shape, n_expression: size of the synthetic head model's bases (and of the
            identity / expression codes drawn here); shape_std: std of identity codes.
        torso: render shoulders under the head; backdrop_distance: back wall behind the head
            (metres).
        actor: extra options of :func:`talkhead.synth.actor.speaking_actor`.
    """

    seed: int = 0
    n_cameras: int = 8
    width: int = 256
    height: int = 320
    fov_deg: float = 16.0
    rig_radius: float = 1.0
    yaw_span_deg: float = 100.0
    pitch_deg: tuple[float, ...] = (-8.0, 8.0)
    rig_jitter_deg: float = 0.5
    rig_jitter_m: float = 0.01
    fps: float = 25.0
    duration_s: float = 2.0
    sample_rate: int = 16000
    mic_level_db: float = -26.0
    mic_snr_db: float = 20.0
    landmark_noise_px: float = 1.0
    landmark_outlier_prob: float = 0.02
    landmark_outlier_px: float = 25.0
    landmark_occluded_guess_prob: float = 0.3
    sensor_noise: float = 1.5
    camera_gain_std: float = 0.03
    supersample: int = 2
    n_shape: int = 50
    n_expression: int = 50
    shape_std: float = 1.0
    torso: bool = True
    backdrop_distance: float = 1.0
    actor: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pitch_deg = tuple(float(p) for p in np.atleast_1d(self.pitch_deg))
        checks = [
            (self.n_cameras >= 1, "n_cameras must be >= 1"),
            (self.width >= 8 and self.height >= 8, "width and height must be >= 8 pixels"),
            (0 < self.fov_deg < 170, "fov_deg must be in (0, 170)"),
            (self.rig_radius > 0.3, "rig_radius must be > 0.3 m"),
            (self.fps > 0 and self.duration_s > 0, "fps and duration_s must be positive"),
            (self.sample_rate >= 8000, "sample_rate must be >= 8000 Hz"),
            (self.supersample >= 1, "supersample must be >= 1"),
            (0 <= self.landmark_outlier_prob <= 1, "landmark_outlier_prob must be in [0, 1]"),
            (
                0 <= self.landmark_occluded_guess_prob <= 1,
                "landmark_occluded_guess_prob must be in [0, 1]",
            ),
            (self.landmark_noise_px >= 0 and self.sensor_noise >= 0, "noise levels must be >= 0"),
            (
                self.n_shape >= 1 and self.n_expression >= 5,
                "n_shape must be >= 1 and n_expression >= 5",
            ),
            (self.backdrop_distance > 0.3, "backdrop_distance must be > 0.3 m"),
            (len(self.pitch_deg) >= 1, "pitch_deg needs at least one value"),
            (isinstance(self.actor, Mapping), "actor must be a mapping of options"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"synthetic studio config: {msg}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> StudioConfig:
        """Build from a config mapping; unknown keys or bad types raise ConfigError."""
        values = dict(values or {})
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ConfigError(
                f"synthetic studio config: unknown key(s) {unknown}; known: {sorted(names)}"
            )
        kw: dict[str, Any] = {}
        for key, value in values.items():
            default = getattr(cls(), key)
            try:
                if isinstance(default, bool):
                    if not isinstance(value, bool):
                        raise TypeError
                    kw[key] = value
                elif isinstance(default, int):
                    if isinstance(value, bool) or float(value) != int(value):
                        raise TypeError
                    kw[key] = int(value)
                elif isinstance(default, float):
                    kw[key] = float(value)
                else:
                    kw[key] = value
            except (TypeError, ValueError):
                raise ConfigError(
                    f"synthetic studio config: {key}={value!r} is not a valid "
                    f"{type(default).__name__}"
                ) from None
        return cls(**kw)

    @classmethod
    def from_workflow(cls, section: Mapping[str, Any] | None) -> StudioConfig:
        """Build from the workflow's ``synthetic:`` config section.

        The keys that only the workflow uses (:data:`WORKFLOW_KEYS`: how many subjects and
        sequences to record) are dropped; any other unknown key raises ConfigError.
        """
        return cls.from_dict(
            {k: v for k, v in dict(section or {}).items() if k not in WORKFLOW_KEYS}
        )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["pitch_deg"] = list(self.pitch_deg)
        return d

    @property
    def n_frames(self) -> int:
        return int(round(self.duration_s * self.fps))
