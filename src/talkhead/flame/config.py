"""Settings of the FLAME model files (the ``flame`` config section)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..config import option, section

__all__ = ["AlignConfig", "FitFlameConfig", "FlameFilesConfig"]


@dataclass(frozen=True)
class FlameFilesConfig:
    """The FLAME model files; all empty: the synthetic head model built into resources/."""

    model: str = option(
        "", "A FLAME 2020/2023 generic_model.pkl (or .npz); empty: the synthetic head model."
    )
    landmark_embedding: str = option(
        "",
        "Landmark embedding (68 points): .npz (lmk_face_idx, lmk_b_coords) or "
        "landmark_embedding.npy; needed with model.",
    )
    masks: str = option("", "Region masks (FLAME_masks.pkl); needed with model.")

    SCHEMA_RULES: ClassVar[dict[str, Any]] = {
        "if": {"properties": {"model": {"minLength": 1}}, "required": ["model"]},
        "then": {
            "properties": {"landmark_embedding": {"minLength": 1}, "masks": {"minLength": 1}},
            "required": ["landmark_embedding", "masks"],
        },
    }

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules, as ``(field, message)`` pairs."""
        if not self.model:
            return []
        return [
            (name, "must be set when model is set")
            for name in ("landmark_embedding", "masks")
            if not getattr(self, name)
        ]


@dataclass(frozen=True)
class LandmarkRegionWeights:
    """Weights of the iBUG-68 landmark regions in the landmark loss (FaceTalk eq. 3 uses
    different weights for jaw, eyes and mouth; the values are not published)."""

    jaw_line: float = option(
        0.1,
        "Landmarks 0-16 (the face contour: on a silhouette the lifted point is not the "
        "model's contour vertex, so it counts little).",
        minimum=0,
    )
    brows: float = option(1.0, "Landmarks 17-26.", minimum=0)
    nose: float = option(1.0, "Landmarks 27-35.", minimum=0)
    eyes: float = option(1.0, "Landmarks 36-47.", minimum=0)
    mouth: float = option(2.0, "Landmarks 48-67 (outer and inner lip contours).", minimum=0)


@dataclass(frozen=True)
class FitLearningRates:
    """Adam learning rates of the parameter groups (before the schedule's factors)."""

    shape: float = option(0.02, "Identity coefficients.", exclusive_minimum=0)
    expression: float = option(0.02, "Expression coefficients.", exclusive_minimum=0)
    pose: float = option(0.005, "Jaw, neck and eye axis-angles (radians).", exclusive_minimum=0)
    rotation: float = option(0.002, "Head rotation axis-angle (radians).", exclusive_minimum=0)
    translation: float = option(0.0005, "Head translation (metres).", exclusive_minimum=0)
    scale: float = option(0.0005, "Uniform scale.", exclusive_minimum=0)


@dataclass(frozen=True)
class FitRegularisers:
    """Weights inside L_reg (FaceTalk eqs. 7-10); L_reg is then weighted by lambda_reg."""

    shape: float = option(0.01, "|shape|_2 (eq. 7).", minimum=0)
    expression: float = option(0.01, "Mean over frames of |expression|_2 (eq. 8).", minimum=0)
    rigid: float = option(
        0.1,
        "Mean over frames of |R - R_align|/2pi + |t - t_align| + |s - s_align| (eq. 9, taken "
        "relative to the alignment: the world origin is arbitrary).",
        minimum=0,
    )
    jaw: float = option(0.01, "Mean |jaw|_2 (radians).", minimum=0)
    neck: float = option(
        0.1, "Mean |neck|_2 (radians; the head rotation takes the motion).", minimum=0
    )
    eyes: float = option(1.0, "Mean |eyes|_2 (radians; nothing observes the gaze).", minimum=0)


@dataclass(frozen=True)
class FitSmoothness:
    """Weights inside L_smooth (FaceTalk eqs. 11-12): changes between consecutive frames,
    divided by the frame spacing; L_smooth is then weighted by lambda_smooth."""

    expression: float = option(1.0, "|expr_i - expr_i-1|_2 (eq. 11).", minimum=0)
    rigid: float = option(
        1.0, "|R_i - R_i-1|_2/2pi + |t_i - t_i-1|_2 (eq. 12; metres, radians).", minimum=0
    )
    jaw: float = option(1.0, "|jaw_i - jaw_i-1|_2 (radians).", minimum=0)
    neck: float = option(1.0, "|neck_i - neck_i-1|_2 (radians).", minimum=0)


@dataclass(frozen=True)
class FitCorrespondences:
    """Closest-point correspondences of L_geo (FaceTalk eqs. 4-6)."""

    regions: tuple[str, ...] = option(
        ("face",),
        "Region masks (FLAME_masks names) whose vertices are matched to the points.",
        min_items=1,
    )
    refresh_every: int = option(
        25, "Steps between refreshes of the nearest points (1: every step).", minimum=1
    )
    max_distance: float = option(
        0.005,
        "Pairs farther apart than this (metres) are rejected (MonoNPHM's ICP: 0.01).",
        exclusive_minimum=0,
    )
    min_normal_dot: float = option(
        0.5,
        "Pairs whose normals' dot product is below this are rejected (MonoNPHM: 0.2).",
        minimum=-1,
        maximum=1,
    )
    point_weight: float = option(0.1, "Weight of point-to-point in L_geo (eq. 6: 0.1).", minimum=0)
    plane_weight: float = option(0.9, "Weight of point-to-plane in L_geo (eq. 6: 0.9).", minimum=0)


@dataclass(frozen=True)
class FitFlameConfig:
    """Whole-sequence FLAME fitting (the ``fit_flame`` config section; FaceTalk supplement
    section D, eqs. 3-13). Distances in the landmark and geometric terms are measured in
    millimetres, so that the lambdas below are of order one."""

    steps: int = option(
        1000,
        "Adam steps over the whole sequence (FaceTalk: 2500; 1000 at demo scale, within 0.1 mm "
        "of the 2500-step fit on the default capture).",
        minimum=1,
    )
    lr_milestones: tuple[int, ...] = option(
        (200, 800),
        "Steps at which the learning rates change (MonoNPHM's ICP: 500, 2000 of 2500 steps).",
    )
    lr_factors: tuple[float, ...] = option(
        (0.5, 0.2),
        "Factor applied at each milestone, cumulatively (0.5 then 0.1 of the base rates).",
        exclusive_minimum=0,
    )
    learning_rates: FitLearningRates = section(FitLearningRates, "Adam learning rates per group.")
    lambda_lmk: float = option(1.0, "Weight of the landmark loss (eq. 13).", minimum=0)
    lambda_geo: float = option(1.0, "Weight of the geometric loss (eq. 13).", minimum=0)
    lambda_reg: float = option(1.0, "Weight of the regularisers (eq. 13).", minimum=0)
    lambda_smooth: float = option(
        1.0, "Weight of the temporal smoothness (eq. 13; 0 turns it off).", minimum=0
    )
    landmark_weights: LandmarkRegionWeights = section(
        LandmarkRegionWeights, "Landmark loss weights per iBUG-68 region."
    )
    regularisers: FitRegularisers = section(FitRegularisers, "Weights inside L_reg.")
    smoothness: FitSmoothness = section(FitSmoothness, "Weights inside L_smooth.")
    correspondences: FitCorrespondences = section(
        FitCorrespondences, "Closest-point correspondences of L_geo."
    )
    per_frame_scale: bool = option(
        False,
        "One scale per frame (FaceTalk's F lists s per frame); false: one per sequence (a "
        "head keeps its size; a per-frame scale trades against shape and adds jitter).",
    )
    log_every: int = option(100, "Steps between records of the loss terms.", minimum=1)
    compare_unsmoothed: bool = option(
        True,
        "Also fit every sequence without temporal smoothing (lambda_smooth 0) for the "
        "report's jitter comparison; doubles the fitting time.",
    )

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules, as ``(field, message)`` pairs."""
        out = []
        if len(self.lr_milestones) != len(self.lr_factors):
            out.append(
                (
                    "lr_factors",
                    f"needs one factor per milestone ({len(self.lr_milestones)}), got "
                    f"{len(self.lr_factors)}",
                )
            )
        ms = self.lr_milestones
        if any(b <= a for a, b in zip(ms, ms[1:], strict=False)):
            out.append(("lr_milestones", f"must increase, got {list(self.lr_milestones)}"))
        return out


@dataclass(frozen=True)
class AlignConfig:
    """Alignment of the FLAME template to a sequence's 3D landmarks (the ``align_flame`` section;
    FaceTalk supplement, section D, "Flame Fitting")."""

    outlier_threshold: float = option(
        0.020,
        "Landmark pairs farther than this (metres) after the rigid transform are outliers.",
        exclusive_minimum=0,
    )
    scale_range: tuple[float, ...] = option(
        (0.5, 2.0),
        "Admissible similarity scale [low, high]; outside it the landmarks are not in metres.",
        exclusive_minimum=0,
        min_items=2,
    )
    min_landmarks: int = option(
        6, "Least number of inlier landmark pairs the similarity is computed from.", minimum=3
    )
    pooling: str = option(
        "all_frames",
        "all_frames: every valid (frame, landmark) pair; median: each landmark's median over "
        "frames.",
        choices=("all_frames", "median"),
    )

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules, as ``(field, message)`` pairs."""
        lo_hi = self.scale_range
        if len(lo_hi) != 2 or not lo_hi[0] <= 1.0 <= lo_hi[1]:
            return [
                ("scale_range", f"must be [low, high] with low <= 1 <= high, got {list(lo_hi)}")
            ]
        return []
