"""MeshTalk (Richard et al. 2021): audio-driven face animation through a categorical latent
space, on FLAME vertex sequences.

Modules: :mod:`.config` (sizes), :mod:`.audio` (log-mel windows, audio encoder),
:mod:`.encoder` (expression encoder, fusion), :mod:`.quantize` (Gumbel softmax),
:mod:`.decoder` (template + codes -> meshes), :mod:`.context` (autoregressive context model),
:mod:`.model` (the whole model), :mod:`.losses` (the two training stages).
"""

from .audio import AudioEncoder, mel_track, mel_windows
from .config import MeshTalkConfig, demo_config
from .context import ContextModel, MaskedContextConv
from .decoder import VertexDecoder
from .encoder import ExpressionEncoder, FusionModel
from .losses import (
    batch_shift,
    cross_modality_loss,
    masked_vertex_mse,
    region_weights,
    stage1_loss,
    stage2_loss,
)
from .model import MeshTalk, vertex_statistics
from .quantize import gumbel_softmax, one_hot_argmax, quantize

__all__ = [
    "AudioEncoder",
    "ContextModel",
    "ExpressionEncoder",
    "FusionModel",
    "MaskedContextConv",
    "MeshTalk",
    "MeshTalkConfig",
    "VertexDecoder",
    "batch_shift",
    "cross_modality_loss",
    "demo_config",
    "gumbel_softmax",
    "masked_vertex_mse",
    "mel_track",
    "mel_windows",
    "one_hot_argmax",
    "quantize",
    "region_weights",
    "stage1_loss",
    "stage2_loss",
    "vertex_statistics",
]
