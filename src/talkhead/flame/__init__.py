"""FLAME: model files (read without chumpy), linear blend skinning and a torch layer.

- :mod:`.pickle_io` — restricted unpickler / legacy (Python-2, chumpy-style) pickle writer;
- :mod:`.model` — :class:`FlameModel`, model / landmark-embedding / region-mask files;
- :mod:`.lbs` — batched, differentiable linear blend skinning;
- :mod:`.layer` — :class:`FlameLayer` (parameters -> vertices, landmarks, joints);
- :mod:`.params` — FLAME parameter ``.npz`` files.
"""

from ..geometry.rotations import batch_rodrigues
from .layer import FLAME_JOINTS, FlameLayer, FlameOutput, barycentric_landmarks
from .lbs import batch_rigid_transform, blend_shapes, lbs, vertices2joints
from .model import (
    FLAME_NUM_EXPRESSION,
    FLAME_NUM_SHAPE,
    FlameModel,
    describe_model,
    format_description,
    load_flame_model,
    load_landmark_embedding,
    load_region_masks,
    model_from_arrays,
    save_flame_model,
    save_landmark_embedding,
    save_region_masks,
)
from .params import FLAME_PARAM_KEYS, check_flame_params, load_flame_params, save_flame_params
from .pickle_io import (
    ALLOWED_GLOBALS,
    RestrictedUnpickler,
    dumps_legacy_pickle,
    load_legacy_pickle,
    loads_legacy_pickle,
    read_pickled_npy,
    save_legacy_pickle,
)

__all__ = [
    "ALLOWED_GLOBALS",
    "FLAME_JOINTS",
    "FLAME_NUM_EXPRESSION",
    "FLAME_NUM_SHAPE",
    "FLAME_PARAM_KEYS",
    "FlameLayer",
    "FlameModel",
    "FlameOutput",
    "RestrictedUnpickler",
    "barycentric_landmarks",
    "batch_rigid_transform",
    "batch_rodrigues",
    "blend_shapes",
    "check_flame_params",
    "describe_model",
    "dumps_legacy_pickle",
    "format_description",
    "lbs",
    "load_flame_model",
    "load_flame_params",
    "load_landmark_embedding",
    "load_legacy_pickle",
    "load_region_masks",
    "loads_legacy_pickle",
    "model_from_arrays",
    "read_pickled_npy",
    "save_flame_model",
    "save_flame_params",
    "save_landmark_embedding",
    "save_legacy_pickle",
    "save_region_masks",
    "vertices2joints",
]
