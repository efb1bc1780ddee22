"""Settings of the torch multi-view stereo (the ``depth.torch`` config section)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...errors import ConfigError


@dataclass(frozen=True)
class MVSConfig:
    """Settings of the torch multi-view stereo.

    Attributes:
        n_planes: fronto-parallel planes of the coarse sweep (uniform in inverse depth).
        coarse_scale: image scale of the coarse sweep (0.5 = half resolution).
        n_neighbours: source views matched against each reference view.
        n_best: neighbours whose costs are averaged per pixel and depth (the best ones);
            0 = half of ``n_neighbours`` rounded up. A view with fewer admissible neighbours
            averages the best half of those it has.
        min_neighbour_angle_deg, max_neighbour_angle_deg: admissible angle between the
            viewing directions of a reference and a source view.
        window: side of the square ZNCC window of the full-resolution sweeps (odd, pixels).
        coarse_window: ZNCC window of the coarse sweep, in coarse pixels (0 = ``window``).
        base_median, base_smooth: each sweep's estimate is median filtered (removes isolated
            wrong matches; separable approximation) then box filtered over the mask (odd
            sides; 0 or 1 = off) before the next, narrower sweep starts from it: a smooth
            base makes the matching windows follow the surface.
        refine_steps: narrow-band sweeps at full resolution after the coarse sweep (0: the
            coarse sweep runs at full resolution and is the result).
        refine_hypotheses: inverse-depth offsets per narrow-band sweep.
        refine_band: half-width of each narrow band in units of the previous sweep's
            hypothesis spacing (more ``n_planes`` make the first band narrower: scale this
            with them).
        max_cost: pixels whose aggregated ``1 - ZNCC`` exceeds this are invalid.
        min_texture_std: pixels whose reference window has a grey-level standard deviation
            below this (image values in [0, 1]) are invalid (nothing to match).
        consistency_px: forward-backward reprojection error of a consistent view (pixels).
        consistency_rel_depth: relative depth difference of a consistent view.
        min_consistent_views: views (other than the reference) that must agree with a pixel;
            capped by the number of views that can check it (whose depth map is valid where
            the pixel projects), but at least one.
        median_filter: side of the valid-aware median filter applied last (0 or 1 = off).
        normal_window: side of the plane-fit window of the normals.
        mask_dilate: pixels the masks are dilated by before matching (the final depth is
            restricted to the undilated mask).
        range_radius: half-extent (metres) of the depth range around the rig's convergence
            point when no depth range is given.
        batch_frames: frames processed together by :func:`estimate_depth_sequence` (useful on
            GPUs; 1 is best on CPUs).
        max_chunk_elements: bound on the number of warped samples held at once
            (memory ~ 50 bytes x this).
    """

    n_planes: int = 48
    coarse_scale: float = 0.5
    n_neighbours: int = 4
    n_best: int = 0
    min_neighbour_angle_deg: float = 2.0
    max_neighbour_angle_deg: float = 60.0
    window: int = 5
    coarse_window: int = 0
    base_median: int = 5
    base_smooth: int = 7
    refine_steps: int = 2
    refine_hypotheses: int = 9
    refine_band: float = 2.0
    max_cost: float = 0.65
    min_texture_std: float = 0.004
    consistency_px: float = 1.25
    consistency_rel_depth: float = 0.0065
    min_consistent_views: int = 2
    median_filter: int = 3
    normal_window: int = 7
    mask_dilate: int = 4
    range_radius: float = 0.15
    batch_frames: int = 1
    max_chunk_elements: int = 1 << 23

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        if self.n_planes < 3:
            raise ConfigError(f"MVSConfig.n_planes must be >= 3, got {self.n_planes}")
        if not 0.0 < self.coarse_scale <= 1.0:
            raise ConfigError(f"MVSConfig.coarse_scale must be in (0, 1], got {self.coarse_scale}")
        if self.n_neighbours < 1:
            raise ConfigError(f"MVSConfig.n_neighbours must be >= 1, got {self.n_neighbours}")
        if not 0 <= self.n_best <= self.n_neighbours:
            raise ConfigError(f"MVSConfig.n_best must be in [0, n_neighbours], got {self.n_best}")
        for name in ("window", "normal_window", "coarse_window"):
            v = getattr(self, name)
            if (v or name != "coarse_window") and (v < 3 or v % 2 == 0):
                raise ConfigError(f"MVSConfig.{name} must be odd and >= 3, got {v}")
        if self.refine_steps < 0 or (self.refine_steps and self.refine_hypotheses < 3):
            raise ConfigError("MVSConfig.refine_steps must be >= 0 and refine_hypotheses >= 3")
        if self.refine_band <= 0:
            raise ConfigError(f"MVSConfig.refine_band must be > 0, got {self.refine_band}")
        if self.batch_frames < 1 or self.max_chunk_elements < 1:
            raise ConfigError("MVSConfig.batch_frames and max_chunk_elements must be >= 1")
        for name in ("median_filter", "base_median", "base_smooth"):
            v = getattr(self, name)
            if v > 1 and v % 2 == 0:
                raise ConfigError(f"MVSConfig.{name} must be odd, got {v}")

    @property
    def best(self) -> int:
        """Number of neighbour costs averaged per pixel."""
        return self.n_best or math.ceil(self.n_neighbours / 2)
