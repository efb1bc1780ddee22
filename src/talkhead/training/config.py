"""Settings of model training (the ``models`` config section).

The defaults are the demo scale: tiny models and a few hundred steps, so that the default run
trains every model in about a minute on 2 cores (a smoke run that proves the path).
``config/experiment.yaml`` sets the papers' sizes (FaceTalk supplement B; MeshTalk supplement
1.1-1.5) for comparisons on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option, section

__all__ = [
    "DEFAULT_MODELS",
    "MODELS",
    "NPHM_MODELS",
    "EvaluateSection",
    "FaceFormerSection",
    "FaceTalkSection",
    "INJECTIONS",
    "INJECTION_LABELS",
    "MeshTalkSection",
    "ModelsConfig",
    "RegressionSection",
    "TrainingConfig",
]

#: FaceTalk's timestep injections (Table 3), as :data:`talkhead.models.facetalk.INJECTIONS`
#: (repeated here so that reading the config does not import torch; a test keeps them equal).
INJECTIONS = ("input", "scale_shift", "squeeze_excite", "dot_product", "film")
#: Their row labels in FaceTalk's Table 3.
INJECTION_LABELS = {
    "input": "Input",
    "scale_shift": "Scale-Shift",
    "squeeze_excite": "SqueezeExcite",
    "dot_product": "Dot Prod. Attention",
    "film": "FiLM",
}

#: The models talkhead trains, as named in ``models.train`` and under ``results/models/``.
#: ``facetalk_nphm`` is FaceTalk (``models.facetalk``'s settings) on NPHM expression codes
#: whatever ``models.facetalk.target`` says: "Ours (full)" of FaceTalk's Table 1 beside
#: "Ours (Flame)" in one run (it needs ``dataset.include_nphm``).
MODELS = ("facetalk", "facetalk_regression", "faceformer", "meshtalk", "facetalk_nphm")
#: Those ``models.train`` trains by default: all of them (the workflow leaves the NPHM-code
#: model out when ``nphm.enabled`` is false).
DEFAULT_MODELS = MODELS
#: The models that always generate NPHM expression codes.
NPHM_MODELS = ("facetalk_nphm",)


@dataclass(frozen=True)
class TrainingConfig:
    """The training loop shared by every model."""

    steps: int = option(120, "Optimiser steps (MeshTalk: both stages together).", minimum=1)
    batch_size: int = option(
        4, "Windows per batch (MeshTalk's cross-modality loss needs 2).", minimum=1
    )
    lr: float = option(
        2e-3, "Adam learning rate (constant after a linear warm-up).", exclusive_minimum=0
    )
    warmup_steps: int = option(10, "Steps of linear learning-rate warm-up.", minimum=0)
    weight_decay: float = option(0.0, "AdamW weight decay.", minimum=0)
    grad_clip: float = option(1.0, "Gradient norm clip (0: off).", minimum=0)
    window_frames: int = option(
        25, "Frames per training window (0: the dataset's windows.csv).", minimum=0
    )
    window_stride: int = option(
        5, "Frames between training windows (with window_frames > 0).", minimum=1
    )
    seed: int = option(0, "Seed of weights, batches and noise: the same seed, the same model.")
    checkpoint_every: int = option(
        50, "Steps between writes of last.ckpt (the resume point after an interruption).", minimum=1
    )
    log_every: int = option(5, "Steps between rows of losses.csv.", minimum=1)
    vertex_space: str = option(
        "model",
        "FLAME vertex targets posed in model space (no head rotation, translation, scale: "
        "motion audio cannot predict) or in world space.",
        choices=("model", "world"),
    )


@dataclass(frozen=True)
class FaceTalkSection:
    """FaceTalk: the expression decoder as a diffusion model (supplement B, Table 3)."""

    target: str = option(
        "flame_expression",
        "Codes it generates: nphm_expression (Ours) or flame_expression (Ours (Flame)); the "
        "model facetalk_nphm is these settings on nphm_expression.",
        choices=("flame_expression", "nphm_expression"),
    )
    features: str = option("logmel", "Audio features.", choices=("logmel", "wav2vec2"))
    variant: str = option(
        "film", "Timestep injection of Table 3 (FaceTalk: film).", choices=INJECTIONS
    )
    latent_dim: int = option(64, "Width of the decoder (FaceTalk: 256).", minimum=2)
    n_blocks: int = option(2, "Decoder blocks (FaceTalk: 4).", minimum=1)
    n_heads: int = option(4, "Attention heads (FaceTalk: 8).", minimum=1)
    ff_dim: int = option(128, "Feed-forward hidden size (FaceTalk: 1024).", minimum=1)
    dropout: float = option(0.1, "Dropout.", minimum=0, maximum=0.9)
    diffusion_steps: int = option(1000, "Diffusion steps in training.", minimum=2)
    sample_steps: int = option(20, "DDIM steps when sampling.", minimum=1)
    velocity_weight: float = option(1.0, "Weight of the velocity loss.", minimum=0)


@dataclass(frozen=True)
class RegressionSection:
    """FaceTalk without diffusion ('Ours (w/o diffusion)'): models.facetalk's decoder sizes."""

    target: str = option(
        "flame_expression",
        "Codes it predicts (as models.facetalk.target).",
        choices=("flame_expression", "nphm_expression"),
    )
    velocity_weight: float = option(1.0, "Weight of the velocity loss.", minimum=0)


@dataclass(frozen=True)
class FaceFormerSection:
    """The FaceFormer-style baseline on FLAME vertices (offsets from the template)."""

    features: str = option("logmel", "Audio features.", choices=("logmel", "wav2vec2"))
    latent_dim: int = option(64, "Width of the decoder (FaceFormer: 64).", minimum=2)
    n_heads: int = option(4, "Attention heads (FaceFormer: 4).", minimum=1)
    n_layers: int = option(1, "Decoder layers (FaceFormer: 1).", minimum=1)
    ff_dim: int = option(128, "Feed-forward hidden size.", minimum=1)
    dropout: float = option(0.1, "Dropout.", minimum=0, maximum=0.9)
    velocity_weight: float = option(1.0, "Weight of the velocity loss.", minimum=0)


@dataclass(frozen=True)
class MeshTalkSection:
    """MeshTalk on FLAME vertices: stage 1 (autoencoder), then stage 2 (context model)."""

    scale: str = option(
        "demo",
        "Sizes: demo (talkhead.models.meshtalk.demo_config) or paper (supplement 1.1-1.5).",
        choices=("demo", "paper"),
    )
    stage1_fraction: float = option(
        0.6, "Fraction of models.training.steps spent in stage 1.", exclusive_minimum=0, maximum=1
    )
    cross_modality_weight: float = option(
        1.0, "Weight of the cross-modality loss in stage 1 (0: off).", minimum=0
    )
    temperature: float = option(1.0, "Sampling temperature of the context model.", minimum=0)


@dataclass(frozen=True)
class EvaluateSection:
    """Model evaluation on the dataset's test split (results/models/<model>/evaluation.json)."""

    samples: int = option(
        4, "Samples per test audio (diversity: FaceTalk eq. 2 needs 2 at least).", minimum=1
    )
    av_max_lag: int = option(
        6, "Audio-visual offsets searched, +-frames (mouth opening vs speech envelope).", minimum=0
    )
    syncnet_weights: str = option(
        "", "A local SyncNet state dict for LSE-D / LSE-C (empty: off; never downloaded)."
    )
    seed: int = option(0, "Seed of the samples' noise.")
    split: str = option(
        "test",
        "Split evaluated (an empty one: val, then train, and evaluation.json says which).",
        choices=("test", "val", "train"),
    )
    nphm_every: int = option(
        5,
        "Models of NPHM codes: every n-th test frame decoded by marching cubes for the lip "
        "surface error (1: all).",
        minimum=1,
    )
    nphm_resolution: int = option(
        48,
        "Models of NPHM codes: marching-cubes samples per axis of those meshes "
        "(fit_nphm.mesh_resolution is the dataset's).",
        minimum=16,
    )


@dataclass(frozen=True)
class ModelsConfig:
    """Audio-driven face models trained on the packaged dataset (results/models/<model>/)."""

    train: tuple[str, ...] = option(
        DEFAULT_MODELS,
        "Models to train (each: results/models/<model>/model.ckpt; facetalk_nphm needs "
        "dataset.include_nphm).",
        choices=MODELS,
    )
    training: TrainingConfig = section(TrainingConfig, "The training loop of every model.")
    facetalk: FaceTalkSection = section(FaceTalkSection, "FaceTalk (diffusion).")
    facetalk_regression: RegressionSection = section(
        RegressionSection, "FaceTalk's decoder without diffusion."
    )
    faceformer: FaceFormerSection = section(FaceFormerSection, "The FaceFormer-style baseline.")
    meshtalk: MeshTalkSection = section(MeshTalkSection, "MeshTalk (two stages).")
    injection_variants: tuple[str, ...] = option(
        (),
        "FaceTalk trained once per timestep injection of Table 3 "
        "(results/models/facetalk_<variant>/; empty: none, the default at demo scale; the "
        "experiment configs train all five).",
        choices=INJECTIONS,
    )
    variant_steps: int = option(
        0, "Training steps of each injection variant (0: models.training.steps).", minimum=0
    )
    evaluate: EvaluateSection = section(EvaluateSection, "Evaluation on the test split.")

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules, as ``(field, message)`` pairs."""
        out = []
        if len(set(self.train)) != len(self.train):
            out.append(("train", "names a model twice"))
        if len(set(self.injection_variants)) != len(self.injection_variants):
            out.append(("injection_variants", "names a variant twice"))
        if self.facetalk.latent_dim % self.facetalk.n_heads:
            out.append(("facetalk.n_heads", "must divide models.facetalk.latent_dim"))
        if self.faceformer.latent_dim % self.faceformer.n_heads:
            out.append(("faceformer.n_heads", "must divide models.faceformer.latent_dim"))
        return out
