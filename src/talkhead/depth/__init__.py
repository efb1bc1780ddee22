"""Depth and normal maps per camera and frame (DAG step 2, "depth").

Backends: a portable multi-view stereo in torch (:mod:`talkhead.depth.mvs`, CPU or GPU),
COLMAP, or precomputed maps shipped with a capture. :mod:`talkhead.depth.metrics` measures
depth and normal maps against ground truth.
"""

from .metrics import DepthErrorAccumulator, depth_errors, depth_metrics, depth_metrics_over_frames
from .mvs import (
    DepthResult,
    MVSConfig,
    consistency_count,
    depth_range_from_points,
    depth_range_from_rig,
    estimate_depth,
    estimate_depth_batch,
    estimate_depth_sequence,
    normals_from_depth,
    select_neighbours,
    triangulate_points,
)

__all__ = [
    "DepthErrorAccumulator",
    "DepthResult",
    "MVSConfig",
    "consistency_count",
    "depth_errors",
    "depth_metrics",
    "depth_metrics_over_frames",
    "depth_range_from_points",
    "depth_range_from_rig",
    "estimate_depth",
    "estimate_depth_batch",
    "estimate_depth_sequence",
    "normals_from_depth",
    "select_neighbours",
    "triangulate_points",
]
