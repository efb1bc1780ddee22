"""Training of talkhead's audio-driven face models (PyTorch Lightning): config sections,
data, the models' Lightning modules, :func:`train_model`, and inference over any audio
(:mod:`.animate`)."""

from .config import MODELS, ModelsConfig, TrainingConfig
from .modules import TalkModule, build_module, load_module
from .train import train_model

__all__ = [
    "MODELS",
    "ModelsConfig",
    "TalkModule",
    "TrainingConfig",
    "build_module",
    "load_module",
    "train_model",
]
