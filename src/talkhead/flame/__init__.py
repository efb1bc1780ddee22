"""FLAME: model files (read without chumpy), linear blend skinning and a torch layer.

- :mod:`.pickle_io` — restricted unpickler / legacy (Python-2, chumpy-style) pickle writer;
- :mod:`.model` — :class:`FlameModel`, model / landmark-embedding / region-mask files;
- :mod:`.lbs` — batched, differentiable linear blend skinning;
- :mod:`.layer` — :class:`FlameLayer` (parameters -> vertices, landmarks, joints);
- :mod:`.params` — FLAME parameter ``.npz`` files.

Names are imported on first use (PEP 562), so ``import talkhead.flame.config`` or
``talkhead.flame.params`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "ALLOWED_GLOBALS": ".pickle_io",
    "FLAME_JOINTS": ".layer",
    "FLAME_NUM_EXPRESSION": ".model",
    "FLAME_NUM_SHAPE": ".model",
    "FLAME_PARAM_KEYS": ".params",
    "FlameLayer": ".layer",
    "FlameModel": ".model",
    "FlameOutput": ".layer",
    "RestrictedUnpickler": ".pickle_io",
    "barycentric_landmarks": ".layer",
    "batch_rigid_transform": ".lbs",
    "batch_rodrigues": "..geometry.rotations",
    "blend_shapes": ".lbs",
    "check_flame_params": ".params",
    "describe_model": ".model",
    "dumps_legacy_pickle": ".pickle_io",
    "format_description": ".model",
    "lbs": ".lbs",
    "load_flame_model": ".model",
    "load_flame_params": ".params",
    "load_landmark_embedding": ".model",
    "load_legacy_pickle": ".pickle_io",
    "load_region_masks": ".model",
    "loads_legacy_pickle": ".pickle_io",
    "model_from_arrays": ".model",
    "read_pickled_npy": ".pickle_io",
    "save_flame_model": ".model",
    "save_flame_params": ".params",
    "save_landmark_embedding": ".model",
    "save_legacy_pickle": ".pickle_io",
    "save_region_masks": ".model",
    "vertices2joints": ".lbs",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
