"""Training data: the packaged dataset's windows as Lightning data, statistics for the models'
normalisers, and MeshTalk's per-frame log-mel windows.

MeshTalk's audio encoder takes ``audio_window_s`` of 100 Hz log-mel rows per frame, not the
one-row-per-frame features the dataset packages; :class:`MelWindows` computes them from the
packaged cleaned audio with :func:`talkhead.models.meshtalk.mel_windows`, the same function
``talkhead animate`` uses, so training and inference see the same input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from ..audio.feature_config import FeatureConfig
from ..audio.io import read_audio
from ..config import from_mapping
from ..dataset import layout
from ..dataset.torch_dataset import TalkingFaceDataset, collate_windows
from ..errors import DatasetError
from ..flame.params import load_flame_params
from ..io import PathLike
from ..models.meshtalk import MeshTalkConfig, mel_windows

__all__ = ["MelWindows", "TalkingFaceDataModule", "collate", "sequence_arrays"]


class MelWindows(Dataset):
    """Items of a :class:`TalkingFaceDataset` with ``mel_windows`` (W, K, n_mels) added: the
    log-mel window of each frame of the window (zeros on padding).

    Args:
        base: the dataset.
        config: MeshTalk's sizes (``audio_window_s``, ``n_mels``).
        features: the log-mel settings (the ``audio_features`` section).
    """

    def __init__(
        self, base: TalkingFaceDataset, config: MeshTalkConfig, features: FeatureConfig
    ) -> None:
        self.base, self.config, self.features = base, config, features
        self._cache: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.base)

    def sequence_windows(self, name: str) -> np.ndarray:
        """(T, K, n_mels) windows of a sequence's fitted frames, computed once."""
        if name not in self._cache:
            row = self.base.rows[name]
            folder = layout.sequence_dir(self.base.root, name)
            frames = load_flame_params(layout.flame_params_path(folder))["frames"]
            audio, rate = read_audio(layout.wav_path(folder))
            if rate != self.features.sample_rate:
                raise DatasetError(
                    f"{layout.wav_path(folder)}: {rate} Hz audio, audio_features.sample_rate is "
                    f"{self.features.sample_rate}"
                )
            n = max(int(row["feature_rows"]), int(frames.max()) + 1)
            w = mel_windows(audio.mean(axis=1), n, float(row["fps"]), self.config, self.features)
            self._cache[name] = w[frames]
        return self._cache[name]

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.base[index]
        windows = self.sequence_windows(item["name"])
        W, a = item["mask"].shape[0], int(item["start"])
        n = int(item["mask"].sum())
        out = torch.zeros((W, *windows.shape[1:]), dtype=torch.float32)
        out[:n] = torch.from_numpy(np.array(windows[a : a + n], dtype=np.float32))
        return {**item, "mel_windows": out}


def collate(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """:func:`collate_windows`, plus ``mel_windows`` (B, W, K, n_mels) when the items have
    them."""
    out = collate_windows(batch)
    if "mel_windows" in batch[0]:
        W = out["mask"].shape[1]
        mel = torch.zeros((len(batch), W, *batch[0]["mel_windows"].shape[1:]))
        for i, item in enumerate(batch):
            mel[i, : item["mel_windows"].shape[0]] = item["mel_windows"]
        out["mel_windows"] = mel
    return out


def sequence_arrays(dataset: TalkingFaceDataset) -> dict[str, list[np.ndarray]]:
    """Every sequence of a dataset as whole arrays: ``features`` (T, D), ``targets`` (T, ...),
    ``template`` (V, 3), ``shape`` (S,) FLAME identity coefficients; for the normalisers'
    statistics and the stored template."""
    out: dict[str, list[np.ndarray]] = {"features": [], "targets": [], "template": [], "shape": []}
    for name in dataset.rows:
        seq = dataset.sequence(name)
        out["features"].append(np.asarray(seq["features"]))
        out["targets"].append(np.asarray(seq["targets"]))
        out["template"].append(np.asarray(seq["template"]))
        params = load_flame_params(
            layout.flame_params_path(layout.sequence_dir(dataset.root, name))
        )
        out["shape"].append(np.asarray(params["shape"], np.float32).reshape(-1))
    return out


class TalkingFaceDataModule(pl.LightningDataModule):
    """Train and validation windows of a packaged dataset (its splits.json's subjects).

    Args:
        root: the dataset folder (``results/dataset``).
        target: the dataset's target (``flame_vertices``, ``flame_expression``,
            ``nphm_expression``).
        features: ``logmel`` or ``wav2vec2``.
        batch_size: windows per batch.
        window_frames: window length (0: the packaged windows.csv); ``window_stride``.
        flame_model: the head model file, for ``flame_vertices``.
        vertex_space: ``model`` or ``world``.
        mel: MeshTalk's sizes: add ``mel_windows`` to the items (None: no).
        audio_features: the ``audio_features`` section (log-mel settings).
        seed: of the shuffling.

    Raises:
        DatasetError: as :class:`TalkingFaceDataset`, or a train split without windows.
    """

    def __init__(
        self,
        root: PathLike,
        target: str,
        features: str = "logmel",
        batch_size: int = 4,
        window_frames: int = 0,
        window_stride: int = 1,
        flame_model: PathLike | None = None,
        vertex_space: str = "model",
        mel: MeshTalkConfig | None = None,
        audio_features: Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.kwargs = {
            "target": target,
            "features": features,
            "window_frames": window_frames or None,
            "window_stride": window_stride,
            "flame_model": flame_model if target == "flame_vertices" else None,
            "vertex_space": vertex_space,
        }
        self.batch_size, self.mel, self.seed = batch_size, mel, seed
        self.audio_features = from_mapping(FeatureConfig, audio_features, "audio_features")
        self.train_set: TalkingFaceDataset | None = None
        self.val_set: TalkingFaceDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self.train_set = TalkingFaceDataset(self.root, "train", **self.kwargs)
        if len(self.train_set) == 0:
            raise DatasetError(f"{self.root}: the train split has no windows (splits.json)")
        val = TalkingFaceDataset(self.root, "val", subjects=self.train_set.subjects, **self.kwargs)
        self.val_set = val if len(val) else None

    def _wrap(self, ds: TalkingFaceDataset) -> Dataset:
        return ds if self.mel is None else MelWindows(ds, self.mel, self.audio_features)

    def train_dataloader(self) -> DataLoader:
        self.setup()
        g = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            self._wrap(self.train_set),
            batch_size=self.batch_size,
            shuffle=True,
            collate_fn=collate,
            generator=g,
        )

    def val_dataloader(self) -> DataLoader | list:
        self.setup()
        if self.val_set is None:
            return []
        return DataLoader(self._wrap(self.val_set), batch_size=self.batch_size, collate_fn=collate)
