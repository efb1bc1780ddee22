"""Settings of back-projection (the ``backproject`` config section)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..capture.masks import FACE_LABELS
from ..errors import ConfigError

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class BackprojectConfig:
    """Settings of back-projection (the ``backproject`` config section).

    Attributes:
        min_depth, max_depth: the depth mask (min, max] in metres.
        face_labels: LaPa labels of the facial mask (when a segmentation is given).
        use_alpha: also require alpha > ``alpha_threshold`` (when alpha is given).
        alpha_threshold: fraction of full scale.
        min_confidence: pixels with lower depth confidence are left out.
        voxel_size: metres; per-frame voxel downsampling (None or 0 = keep every pixel).
        landmark_min_conf: 2D landmarks below this confidence are not lifted.
        landmark_search_radius_px: window of the nearest-valid-depth lookup.
        landmark_max_depth_jump: metres; larger spread among 4 neighbours = no bilinear.
        landmark_max_dev: metres; a view farther than this from the fused landmark is an
            outlier.
        landmark_min_views: views that must agree for a valid 3D landmark.
    """

    min_depth: float = 0.0
    max_depth: float = 1.4
    face_labels: tuple[int, ...] = FACE_LABELS
    use_alpha: bool = True
    alpha_threshold: float = 0.5
    min_confidence: float = 0.0
    voxel_size: float | None = 0.002
    landmark_min_conf: float = 0.5
    landmark_search_radius_px: int = 2
    landmark_max_depth_jump: float = 0.03
    landmark_max_dev: float = 0.005
    landmark_min_views: int = 2

    def validate(self) -> None:
        if not self.max_depth > self.min_depth >= 0:
            raise ConfigError(
                f"backproject: need 0 <= min_depth < max_depth, got {self.min_depth}, "
                f"{self.max_depth}"
            )
        if self.voxel_size is not None and self.voxel_size < 0:
            raise ConfigError("backproject: voxel_size must be >= 0")
        if self.landmark_min_views < 1 or self.landmark_max_dev <= 0:
            raise ConfigError("backproject: landmark_min_views >= 1 and landmark_max_dev > 0")
        if self.landmark_search_radius_px < 0:
            raise ConfigError("backproject: landmark_search_radius_px must be >= 0")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> BackprojectConfig:
        """Build from a config mapping; unknown keys raise :class:`ConfigError`."""
        d = dict(d or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"backproject: unknown settings {unknown}")
        if "face_labels" in d:
            d["face_labels"] = tuple(int(x) for x in d["face_labels"])
        cfg = cls(**d)
        cfg.validate()
        return cfg
