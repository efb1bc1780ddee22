"""The paired audio / 3D-face dataset: packaging in FaceTalk's layout (:mod:`.layout`,
:mod:`.package`), the manifest, subject splits, training windows, the stage runner
(:mod:`.stage`) and a torch ``Dataset`` (:mod:`.torch_dataset`, imported on its own: it needs
torch)."""

from .config import DatasetConfig
from .layout import StageOutputs, sequence_name, stage_outputs
from .manifest import read_manifest
from .splits import load_splits, make_splits, read_splits_file
from .stage import run_dataset_stage
from .windows import load_windows, sequence_windows

__all__ = [
    "DatasetConfig",
    "StageOutputs",
    "load_splits",
    "load_windows",
    "make_splits",
    "read_manifest",
    "read_splits_file",
    "run_dataset_stage",
    "sequence_name",
    "sequence_windows",
    "stage_outputs",
]
