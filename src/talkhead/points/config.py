"""Settings of back-projection (the ``backproject`` config section).

The facial mask (LaPa labels, alpha matte) is the ``face_mask`` section,
:class:`talkhead.capture.config.FaceMaskConfig`, shared with the depth stage and the QC pages.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option
from ..errors import ConfigError


@dataclass(frozen=True)
class BackprojectConfig:
    """Settings of back-projection: the depth mask, downsampling and landmark lifting.

    Build from YAML with ``talkhead.config.from_mapping(BackprojectConfig, data, "backproject")``.
    """

    min_depth: float = option(
        0.0, "Depth mask: keep depth in (min_depth, max_depth] (metres).", minimum=0
    )
    max_depth: float = option(
        1.4, "Depth mask upper bound (metres; FaceTalk: 1.4).", exclusive_minimum=0
    )
    min_confidence: float = option(
        0.0, "Pixels whose depth confidence is below this are left out.", minimum=0, maximum=1
    )
    voxel_size: float = option(
        0.002,
        "Voxel size (metres) for downsampling each fused frame; 0 keeps every point.",
        minimum=0,
    )
    landmark_min_conf: float = option(
        0.5, "2D landmarks below this confidence are not lifted.", minimum=0, maximum=1
    )
    landmark_search_radius_px: int = option(
        2, "Window (pixels) searched for a valid depth under a landmark.", minimum=0
    )
    landmark_max_depth_jump: float = option(
        0.03,
        "Depth spread (metres) among a landmark's 4 neighbours above which it is not interpolated.",
        exclusive_minimum=0,
    )
    landmark_max_dev: float = option(
        0.005,
        "A view's lifted landmark farther than this (metres) from the fused one is dropped.",
        exclusive_minimum=0,
    )
    landmark_min_views: int = option(
        2, "Views that must agree for a 3D landmark to be valid.", minimum=1
    )

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules, as ``(field, message)`` pairs."""
        if self.min_depth >= self.max_depth:
            return [("min_depth", f"must be < max_depth ({self.max_depth}), got {self.min_depth}")]
        return []

    def check_cameras(self, n_cameras: int, where: str = "the capture") -> None:
        """Check the settings that depend on the capture's number of cameras (known only once
        a real capture is read; the synthetic rig is checked at start-up).

        Raises:
            ConfigError: ``backproject.landmark_min_views`` exceeds ``n_cameras``.
        """
        if self.landmark_min_views > n_cameras:
            raise ConfigError(
                f"backproject.landmark_min_views: must be <= the {n_cameras} cameras of "
                f"{where}, got {self.landmark_min_views}: a 3D landmark needs that many views, "
                "so none would be valid"
            )
