"""Settings of the torch multi-view stereo (the ``depth.torch`` config section)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...config import option


@dataclass(frozen=True)
class MVSConfig:
    """Settings of the torch multi-view stereo (talkhead.depth.mvs).

    The depth range is not set here: it comes from the depth stage (``depth.range_radius``
    around the sparse geometry), or from :func:`~talkhead.depth.mvs.estimate.depth_range_from_rig`
    when a caller passes none. Build from YAML with
    ``talkhead.config.from_mapping(MVSConfig, data, "depth.torch")``.

    Notes on the settings (their one-line docs are in the fields):

    - ``n_best`` = 0 averages half of ``n_neighbours`` rounded up (:attr:`best`); a view with
      fewer admissible neighbours averages the best half of those it has.
    - ``base_median``, ``base_smooth``: each sweep's estimate is median filtered (removes
      isolated wrong matches; separable approximation) then box filtered over the mask before
      the next, narrower sweep starts from it: a smooth base makes the matching windows follow
      the surface.
    - ``refine_band`` is in units of the previous sweep's hypothesis spacing: more
      ``n_planes`` make the first band narrower, so scale it with them.
    - ``min_consistent_views`` is capped by the number of views that can check a pixel (whose
      depth map is valid where it projects), but at least one.
    - ``max_chunk_elements``: memory ~ 50 bytes x this.
    """

    n_planes: int = option(
        48, "Fronto-parallel planes of the coarse sweep (uniform in inverse depth).", minimum=3
    )
    coarse_scale: float = option(
        0.5,
        "Image scale of the coarse sweep (0.5 = half resolution).",
        exclusive_minimum=0,
        maximum=1,
    )
    n_neighbours: int = option(
        4, "Neighbouring views matched against each reference view.", minimum=1
    )
    n_best: int = option(
        0,
        "Neighbour costs averaged per pixel and depth, the best ones (0: half of n_neighbours).",
        minimum=0,
    )
    min_neighbour_angle_deg: float = option(
        2.0,
        "Least angle between a reference's and a neighbour's viewing direction (degrees).",
        minimum=0,
    )
    max_neighbour_angle_deg: float = option(
        60.0,
        "Largest angle between a reference's and a neighbour's viewing direction (degrees).",
        minimum=0,
    )
    window: int = option(
        5, "ZNCC window of the full-resolution sweeps (pixels, odd).", minimum=3, odd=True
    )
    coarse_window: int = option(
        0,
        "ZNCC window of the coarse sweep (coarse pixels, odd; 0: same as window).",
        minimum=3,
        odd=True,
        off=0,
    )
    base_median: int = option(
        5,
        "Median filter of each sweep's estimate before the next sweep (pixels, odd; 0/1: off).",
        minimum=1,
        odd=True,
        off=0,
    )
    base_smooth: int = option(
        7,
        "Box filter of each sweep's estimate before the next sweep (pixels, odd; 0/1: off).",
        minimum=1,
        odd=True,
        off=0,
    )
    refine_steps: int = option(
        2,
        "Narrow-band sweeps at full resolution after the coarse one (0: coarse sweep only).",
        minimum=0,
    )
    refine_hypotheses: int = option(
        9, "Inverse-depth hypotheses per narrow-band sweep (>= 3 when refining).", minimum=0
    )
    refine_band: float = option(
        2.0,
        "Half-width of each narrow band (in hypothesis spacings of the previous sweep).",
        exclusive_minimum=0,
    )
    max_cost: float = option(
        0.65,
        "Pixels whose matching cost (1 - ZNCC, aggregated over neighbours) exceeds this are "
        "invalid.",
        minimum=0,
    )
    min_texture_std: float = option(
        0.004,
        "Pixels whose reference window has a lower grey-level std (images in [0, 1]) are invalid.",
        minimum=0,
    )
    consistency_px: float = option(
        1.25, "Reprojection error (pixels) of a view that agrees with a depth.", minimum=0
    )
    consistency_rel_depth: float = option(
        0.0065, "Relative depth difference of a view that agrees with a depth.", minimum=0
    )
    min_consistent_views: int = option(
        2, "Views (besides the reference) that must agree for a depth to be kept.", minimum=0
    )
    median_filter: int = option(
        3,
        "Valid-aware median filter applied last (pixels, odd; 0/1: off).",
        minimum=1,
        odd=True,
        off=0,
    )
    normal_window: int = option(
        7, "Plane-fit window of the normals (pixels, odd).", minimum=3, odd=True
    )
    mask_dilate: int = option(
        4,
        "Pixels the masks are dilated by before matching (depth is kept inside the mask).",
        minimum=0,
    )
    batch_frames: int = option(1, "Frames matched together (raise on a GPU).", minimum=1)
    max_chunk_elements: int = option(
        1 << 23, "Warped samples held in memory at once (about 50 bytes each).", minimum=1
    )

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules, as ``(field, message)`` pairs."""
        out = []
        if self.n_best > self.n_neighbours:
            out.append(
                ("n_best", f"must be <= n_neighbours ({self.n_neighbours}), got {self.n_best}")
            )
        if self.min_neighbour_angle_deg >= self.max_neighbour_angle_deg:
            out.append(
                (
                    "min_neighbour_angle_deg",
                    f"must be < max_neighbour_angle_deg ({self.max_neighbour_angle_deg}), "
                    f"got {self.min_neighbour_angle_deg}",
                )
            )
        if self.refine_steps and self.refine_hypotheses < 3:
            out.append(
                (
                    "refine_hypotheses",
                    f"must be >= 3 when refine_steps > 0, got {self.refine_hypotheses}",
                )
            )
        return out

    @property
    def best(self) -> int:
        """Number of neighbour costs averaged per pixel."""
        return self.n_best or math.ceil(self.n_neighbours / 2)
