"""Settings of the depth stage (the ``depth`` config section) and of its backends.

``depth.range_radius`` makes the depth range of every backend (metres around the sparse
geometry); ``depth.torch`` is :class:`~talkhead.depth.mvs.config.MVSConfig`, ``depth.colmap``
:class:`ColmapConfig`, ``depth.precomputed`` :class:`PrecomputedConfig`. Imports neither
torch nor pycolmap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import option, section
from .mvs.config import MVSConfig

__all__ = ["BACKENDS", "ColmapConfig", "DepthConfig", "MVSConfig", "PrecomputedConfig"]

#: Values of ``depth.backend``.
BACKENDS = ("auto", "torch", "colmap", "precomputed")


@dataclass(frozen=True)
class ColmapConfig:
    """Settings of the COLMAP PatchMatch stereo backend (names follow PatchMatchOptions).

    The depth range searched is not set here: the depth stage gives it
    (``depth.range_radius`` around the sparse geometry).
    """

    window_radius: int = option(5, "PatchMatch window radius (pixels).", minimum=1)
    window_step: int = option(1, "PatchMatch window step (pixels).", minimum=1)
    num_samples: int = option(15, "Samples per PatchMatch propagation.", minimum=1)
    num_iterations: int = option(5, "PatchMatch propagation iterations.", minimum=1)
    sigma_color: float = option(
        0.2, "Colour spread of the bilateral weighting of the window.", exclusive_minimum=0
    )
    ncc_sigma: float = option(0.6, "Spread of the NCC likelihood.", exclusive_minimum=0)
    min_triangulation_angle: float = option(
        1.0, "Degrees below which a source view does not vote.", minimum=0, maximum=180
    )
    geom_consistency: bool = option(
        True, "Run a second pass with multi-view geometric consistency."
    )
    filter: bool = option(True, "Filter the output depth maps.")
    filter_min_ncc: float = option(
        0.1, "Output filter: least NCC of a kept depth.", minimum=-1, maximum=1
    )
    filter_min_triangulation_angle: float = option(
        3.0,
        "Output filter: least triangulation angle of a kept depth (degrees).",
        minimum=0,
        maximum=180,
    )
    filter_min_num_consistent: int = option(
        2, "Output filter: least number of consistent source views of a kept depth.", minimum=0
    )
    filter_geom_consistency_max_cost: float = option(
        1.0, "Output filter: largest geometric-consistency cost of a kept depth.", minimum=0
    )
    max_image_size: int = option(
        -1,
        "Downscale images whose larger side exceeds this (pixels; -1: full size).",
        minimum=1,
        off=-1,
    )
    num_source_views: int = option(
        6, "Source views per reference view (nearest viewing directions).", minimum=1
    )
    min_source_angle_deg: float = option(
        2.0,
        "Least angle between a reference's and a source's optical axis (degrees).",
        minimum=0,
    )
    max_source_angle_deg: float = option(
        60.0,
        "Largest angle between a reference's and a source's optical axis (degrees).",
        minimum=0,
        maximum=180,
    )
    mask_images: bool = option(
        True, "Black out the background of the images with the masks before matching."
    )
    gpu_index: str = option("-1", "COLMAP's gpu_index, a string ('-1': all GPUs; '0,1').")
    binary: str = option(
        "colmap", "The colmap executable used when pycolmap has no CUDA.", min_length=1
    )
    keep_workspace: bool = option(
        False, "Keep each frame's COLMAP workspace (debugging); else it is deleted."
    )

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules, as ``(field, message)`` pairs."""
        if self.min_source_angle_deg >= self.max_source_angle_deg:
            return [
                (
                    "min_source_angle_deg",
                    f"must be < max_source_angle_deg ({self.max_source_angle_deg}), "
                    f"got {self.min_source_angle_deg}",
                )
            ]
        return []

    def patch_match_options(self) -> dict[str, Any]:
        """The ``PatchMatchOptions`` fields set from this config (depth range excluded)."""
        return {
            "max_image_size": int(self.max_image_size),
            "gpu_index": str(self.gpu_index),
            "window_radius": int(self.window_radius),
            "window_step": int(self.window_step),
            "num_samples": int(self.num_samples),
            "num_iterations": int(self.num_iterations),
            "sigma_color": float(self.sigma_color),
            "ncc_sigma": float(self.ncc_sigma),
            "min_triangulation_angle": float(self.min_triangulation_angle),
            "geom_consistency": bool(self.geom_consistency),
            "filter": bool(self.filter),
            "filter_min_ncc": float(self.filter_min_ncc),
            "filter_min_triangulation_angle": float(self.filter_min_triangulation_angle),
            "filter_min_num_consistent": int(self.filter_min_num_consistent),
            "filter_geom_consistency_max_cost": float(self.filter_geom_consistency_max_cost),
        }


@dataclass(frozen=True)
class PrecomputedConfig:
    """Settings of the precomputed backend (depth PNGs shipped with the capture)."""

    max_depth: float = option(
        2.0, "Depth of the 16-bit PNG full scale (metres; NeRSemble v1: 2 m).", exclusive_minimum=0
    )


@dataclass(frozen=True)
class DepthConfig:
    """Settings of the depth stage: the backend, the depth range and each backend's options."""

    backend: str = option(
        "auto",
        "auto (COLMAP when dense stereo can run here, else torch), torch, colmap or precomputed.",
        choices=BACKENDS,
    )
    range_radius: float = option(
        0.15,
        "Half-extent (metres) added around the sparse geometry to make every backend's depth "
        "range.",
        exclusive_minimum=0,
    )
    torch: MVSConfig = section(MVSConfig, "Our multi-view stereo in torch (CPU or GPU).")
    colmap: ColmapConfig = section(
        ColmapConfig, "COLMAP PatchMatch stereo (CUDA pycolmap or a colmap binary)."
    )
    precomputed: PrecomputedConfig = section(
        PrecomputedConfig, "Depth maps shipped with the capture (NeRSemble v1 PNGs)."
    )
