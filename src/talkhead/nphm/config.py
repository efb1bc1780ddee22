"""Settings of the neural parametric head model: its sizes (``nphm.model``), its training on the
head model's family (``nphm.train``) and the per-sequence fit (``fit_nphm``)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option, section

__all__ = [
    "FitNphmConfig",
    "NphmConfig",
    "NphmFitWeights",
    "NphmModelConfig",
    "NphmTrainConfig",
    "NphmTrainWeights",
]


@dataclass(frozen=True)
class NphmModelConfig:
    """Sizes of the model (NPHM, Giebenhain et al. 2023: global 64, local 32 x 39 anchors,
    expression 200, deformation 6 x 512 in its full-scale config; these are demo sizes)."""

    deformation: str = option(
        "backward",
        "Expression deformation: backward (observed -> canonical, FaceTalk's variant) or "
        "forward (canonical -> observed, NPHM's; fitting inverts it by fixed-point iteration).",
        choices=("backward", "forward"),
    )
    forward_iterations: int = option(
        6, "Fixed-point iterations that invert a deformation field.", minimum=1
    )
    identity_global: int = option(16, "Global identity code size (NPHM: 64).", minimum=1)
    identity_local: int = option(8, "Local identity code size per anchor (NPHM: 32).", minimum=1)
    expression: int = option(16, "Expression code size (NPHM and FaceTalk: 200).", minimum=1)
    anchor_pairs: int = option(
        6, "Mirrored anchor pairs of the local ensemble (NPHM: 16 of its 39 anchors).", minimum=0
    )
    midline_anchors: int = option(
        4, "Unpaired anchors on the midline (NPHM: 7 of its 39 anchors).", minimum=0
    )
    anchor_sigma: float = option(
        0.25, "Width of the anchors' Gaussian blending weights (model units).", exclusive_minimum=0
    )
    local_hidden: int = option(32, "Hidden width of each local network.", minimum=1)
    local_layers: int = option(2, "Hidden layers of each local network.", minimum=1)
    global_hidden: int = option(64, "Hidden width of the global identity network.", minimum=1)
    global_layers: int = option(2, "Hidden layers of the global identity network.", minimum=1)
    deform_hidden: int = option(
        128, "Hidden width of the deformation network (NPHM: 512).", minimum=1
    )
    deform_layers: int = option(3, "Hidden layers of the deformation network (NPHM: 6).", minimum=1)
    octaves: int = option(
        2, "Fourier-feature octaves of the identity networks' coordinates (0: raw).", minimum=0
    )
    deform_octaves: int = option(
        3, "Fourier-feature octaves of the deformation network's coordinates.", minimum=0
    )
    template_prior: bool = option(
        True,
        "Add the head model template's signed distance (a fixed grid) to the identity field; "
        "the networks then learn only an identity's difference from the template.",
    )
    prior_resolution: int = option(64, "Samples per axis of the template prior's grid.", minimum=8)
    bound: float = option(
        1.25,
        "Half side of the model-unit cube the prior grid and meshes cover (the template "
        "fills [-1, 1]).",
        exclusive_minimum=0,
    )


@dataclass(frozen=True)
class NphmTrainWeights:
    """Weights of the training losses."""

    surface: float = option(3.0, "|SDF| of canonical surface samples.", minimum=0)
    near: float = option(1.0, "|SDF - true SDF| of canonical near-surface samples.", minimum=0)
    normal: float = option(
        0.3, "1 - cos(grad SDF, true normal) at canonical surface samples.", minimum=0
    )
    eikonal: float = option(0.1, "(|grad SDF| - 1)^2 at points in space.", minimum=0)
    correspondence: float = option(
        10.0,
        "|deformed posed point - its canonical counterpart| (shared topology) (model units).",
        minimum=0,
    )
    reg_identity: float = option(1e-4, "Mean squared identity code.", minimum=0)
    reg_expression: float = option(1e-4, "Mean squared expression code.", minimum=0)


@dataclass(frozen=True)
class NphmTrainConfig:
    """Training of the model on its head model's family (identities and expressions drawn from
    the shape and expression spaces, jaw opening included)."""

    seed: int = option(0, "Seed of the sampled family, the initial weights and the batches.")
    identities: int = option(48, "Training identities.", minimum=1)
    expressions: int = option(16, "Expressions per training identity.", minimum=1)
    heldout_identities: int = option(
        1, "Identities held out to measure the trained model.", minimum=1
    )
    heldout_expressions: int = option(2, "Expressions per held-out identity.", minimum=1)
    shape_std: float = option(
        1.0, "Standard deviation of the sampled shape coefficients.", minimum=0
    )
    expression_components: int = option(
        10, "Leading expression coefficients that are sampled (the rest stay 0).", minimum=0
    )
    expression_std: float = option(
        0.5, "Standard deviation of the sampled expression coefficients.", minimum=0
    )
    jaw_max_deg: float = option(
        15.0, "Jaw opening drawn uniformly between 0 and this (degrees).", minimum=0
    )
    eyes_max_deg: float = option(
        8.0, "Eye rotations drawn uniformly within +- this (degrees).", minimum=0
    )
    near_samples: int = option(
        4000, "Near-surface samples with signed distances per canonical mesh.", minimum=16
    )
    near_std: tuple[float, ...] = option(
        (0.01, 0.06),
        "Offsets of the near-surface samples: Gaussian standard deviations (model units), "
        "half the samples each.",
        exclusive_minimum=0,
        min_items=1,
    )
    steps: int = option(150, "Training steps (a demo run; 20000 at full scale).", minimum=1)
    batch_identities: int = option(8, "Canonical meshes per step.", minimum=1)
    batch_expressions: int = option(32, "Posed meshes per step.", minimum=1)
    points_per_mesh: int = option(
        256, "Canonical points of each kind (surface, near, space) per mesh per step.", minimum=8
    )
    posed_points: int = option(128, "Correspondences per posed mesh per step.", minimum=8)
    lr: float = option(2e-3, "Adam learning rate of the networks.", exclusive_minimum=0)
    lr_codes: float = option(1e-2, "Adam learning rate of the codes.", exclusive_minimum=0)
    lr_milestones: tuple[int, ...] = option((100,), "Steps at which the learning rates change.")
    lr_factors: tuple[float, ...] = option(
        (0.3,), "Factor at each milestone, cumulative.", exclusive_minimum=0
    )
    weights: NphmTrainWeights = section(NphmTrainWeights, "Loss weights.")
    checkpoint_every: int = option(
        100, "Steps between checkpoints (training resumes from the last one).", minimum=1
    )
    log_every: int = option(50, "Steps between records of the losses.", minimum=1)
    mesh_resolution: int = option(
        64, "Marching-cubes resolution of the held-out meshes.", minimum=16
    )

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules, as ``(field, message)`` pairs."""
        if len(self.lr_milestones) != len(self.lr_factors):
            return [("lr_factors", "needs one factor per milestone")]
        return []


@dataclass(frozen=True)
class NphmConfig:
    """The neural parametric head model (the ``nphm`` config section)."""

    enabled: bool = option(
        True,
        "Train the model and fit every sequence (stage 7); false leaves NPHM out of the workflow.",
    )
    model: NphmModelConfig = section(NphmModelConfig, "Model sizes.")
    train: NphmTrainConfig = section(NphmTrainConfig, "Training on the head model's family.")


@dataclass(frozen=True)
class NphmFitWeights:
    """Weights of the fitting losses."""

    sdf: float = option(1.0, "Mean |SDF| of the observed points (millimetres).", minimum=0)
    normal: float = option(
        0.0,
        "Mean 1 - cos(grad SDF, observed normal) at the observed points (a second backward "
        "pass: about twice the time per step; 0 skips it).",
        minimum=0,
    )
    reg_identity: float = option(0.05, "Mean squared identity code.", minimum=0)
    reg_expression: float = option(0.05, "Mean squared expression code.", minimum=0)
    temporal: float = option(
        0.3,
        "Temporal Huber loss on the change of the expression codes between adjacent frames "
        "(FaceTalk supplement Table 2; 0 turns it off).",
        minimum=0,
    )


@dataclass(frozen=True)
class FitNphmConfig:
    """Per-sequence fit of the model's codes (the ``fit_nphm`` config section): one identity
    per subject, an expression code per frame (FaceTalk supplement section D and Table 2)."""

    steps: int = option(100, "Adam steps (NPHM's point-cloud fit: 1000).", minimum=1)
    points_per_frame: int = option(
        150, "Observed points drawn per frame at each step (NPHM: 5 x 1000).", minimum=8
    )
    lr_identity: float = option(
        5e-3, "Adam learning rate of the identity codes.", exclusive_minimum=0
    )
    lr_expression: float = option(
        1e-2, "Adam learning rate of the expression codes (NPHM: 0.01).", exclusive_minimum=0
    )
    lr_milestones: tuple[int, ...] = option(
        (70,), "Steps at which the learning rates change (NPHM: every 200)."
    )
    lr_factors: tuple[float, ...] = option(
        (0.5,), "Factor at each milestone, cumulative.", exclusive_minimum=0
    )
    sdf_clamp_mm: float = option(
        10.0,
        "Observed points whose |SDF| exceeds this (millimetres) count as this (outliers "
        "pull no harder than that; NPHM clamps at a schedule).",
        exclusive_minimum=0,
    )
    huber_delta: float = option(
        0.01,
        "Huber threshold of the temporal loss (code units per frame): quadratic below, linear "
        "above.",
        exclusive_minimum=0,
    )
    weights: NphmFitWeights = section(NphmFitWeights, "Loss weights.")
    mesh_resolution: int = option(
        64,
        "Marching-cubes samples per axis of a frame's mesh (FaceTalk exports at 64).",
        minimum=16,
    )
    mesh_every: int = option(
        5,
        "Decode a mesh for every n-th frame (1: all; codes are written for every frame).",
        minimum=1,
    )
    mesh_margin: float = option(
        0.08,
        "Margin of the marching-cubes box around the template, as a fraction of its size.",
        minimum=0,
    )
    identity_frames: int = option(
        8, "Frames of each of a subject's sequences its identity is fitted on.", minimum=1
    )
    identity_steps: int = option(150, "Adam steps of the identity fit.", minimum=1)
    log_every: int = option(25, "Steps between records of the losses.", minimum=1)
    compare_without_temporal: bool = option(
        True,
        "Also fit every sequence without the temporal loss, for the report's Table 2 "
        "comparison; doubles the fitting time.",
    )

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules, as ``(field, message)`` pairs."""
        if len(self.lr_milestones) != len(self.lr_factors):
            return [("lr_factors", "needs one factor per milestone")]
        return []
