"""FaceTalk (Aneja et al. 2024): a diffusion model over sequences of expression codes (NPHM, or
FLAME expression + jaw) conditioned on audio features; its expression decoder with the five
timestep injections of the supplement's Table 3, and its regression variant."""

from .config import INJECTIONS, DiffusionConfig, FaceTalkConfig
from .decoder import DecoderBlock, ExpressionDecoder
from .diffusion import GaussianDiffusion, cosine_betas, linear_betas
from .injection import FiLM, ScaleShift, SqueezeExcite, TimestepAttention, modulate
from .losses import masked_mse, masked_velocity_mse, regression_loss
from .timestep import TimestepEmbedder

__all__ = [
    "INJECTIONS",
    "DecoderBlock",
    "DiffusionConfig",
    "ExpressionDecoder",
    "FaceTalkConfig",
    "FiLM",
    "GaussianDiffusion",
    "ScaleShift",
    "SqueezeExcite",
    "TimestepAttention",
    "TimestepEmbedder",
    "cosine_betas",
    "linear_betas",
    "masked_mse",
    "masked_velocity_mse",
    "modulate",
    "regression_loss",
]
