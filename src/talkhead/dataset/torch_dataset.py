"""A torch ``Dataset`` of training windows over a packaged dataset, and its collate function.

Each item is one window (:mod:`talkhead.dataset.windows`) of one sequence: the audio features
of its frames, the per-frame targets, a mask of the frames that are real (not padding), the
subject's index and its neutral template.

FLAME vertices (``target="flame_vertices"``) come from one of two sources:

- ``vertices_from="params"`` (the default when ``flame_model`` is given): the packaged FLAME
  parameters posed by :class:`talkhead.flame.layer.FlameLayer` (``scale * LBS(...) +
  translation``, world metres), in chunks, without gradients. Exact, and no mesh parsing;
  needs the head model the fit used.
- ``vertices_from="meshes"`` (the default without a model): the packaged
  ``flame_meshes/frame_<t>.ply`` files (trimesh), for a dataset shipped without the model.

Either way a sequence's vertices are computed once and cached: in memory, or with
``cache_dir`` as ``<cache_dir>/<name>.<source>.npy`` read back memory-mapped (a cache older
than the packaged parameters or meshes folder is rebuilt), so a dataset larger than memory
stays usable.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DatasetError
from ..flame.layer import FlameLayer
from ..flame.params import load_flame_params
from ..io import PathLike, atomic_path
from . import layout
from .manifest import read_manifest
from .splits import SPLITS, load_splits, split_of
from .windows import load_windows, make_windows

__all__ = [
    "FEATURES",
    "TARGETS",
    "TalkingFaceDataset",
    "collate_windows",
    "read_mesh_vertices",
    "read_nphm_expression",
]

TARGETS = ("flame_vertices", "flame_expression", "nphm_expression")
FEATURES = ("logmel", "wav2vec2")
_CHUNK = 256


def read_mesh_vertices(path: PathLike) -> np.ndarray:
    """The (V, 3) float32 vertices of a mesh file (PLY; read as stored, not merged).

    Raises:
        DatasetError: missing or unreadable.
    """
    import trimesh

    try:
        mesh = trimesh.load(str(path), process=False, force="mesh")
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: unreadable mesh ({exc})") from None
    return np.asarray(mesh.vertices, dtype=np.float32)


def read_nphm_expression(path: PathLike) -> np.ndarray:
    """The (E,) float32 NPHM expression code of one frame's ``nphm_expressions/frame_<t>.npz``
    (key ``expression``).

    Raises:
        DatasetError: missing, unreadable or without ``expression``.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            return np.asarray(data["expression"], np.float32).reshape(-1)
    except (OSError, KeyError, ValueError) as exc:
        raise DatasetError(f"{path}: unreadable NPHM expression code ({exc})") from None


def _flame_vertices(
    layer: FlameLayer, params: dict[str, np.ndarray], space: str = "world"
) -> np.ndarray:
    """(T, V, 3) float32 vertices of FLAME parameters, posed in chunks: in world space, or in
    model space (``space="model"``: head rotation and translation 0, scale 1; neck, jaw, eyes
    and expression kept)."""
    T = params["expression"].shape[0]
    if space == "model":
        params = {
            **params,
            "rotation": np.zeros((T, 3), np.float32),
            "translation": np.zeros((T, 3), np.float32),
            "scale": np.ones((T, 1), np.float32),
        }
    out = np.empty((T, layer.num_vertices, 3), np.float32)
    with torch.no_grad():
        for a in range(0, T, _CHUNK):
            b = min(a + _CHUNK, T)
            res = layer(
                shape=params["shape"],
                expression=params["expression"][a:b],
                rotation=params["rotation"][a:b],
                neck=params["neck"][a:b],
                jaw=params["jaw"][a:b],
                eyes=params["eyes"][a:b],
                translation=params["translation"][a:b],
                scale=params["scale"][a:b],
            )
            out[a:b] = res.vertices.to(torch.float32).cpu().numpy()
    return out


class TalkingFaceDataset(Dataset):
    """Training windows of one split of a packaged dataset.

    Args:
        root: the dataset folder (``results/dataset``: manifest, splits.json, windows.csv,
            data/).
        split: ``train``, ``val``, ``test`` or ``all``.
        target: ``flame_vertices`` (W, V, 3) world metres; ``flame_expression`` (W, E + 3):
            FLAME expression coefficients then the jaw pose (axis-angle, radians), the
            per-frame code a FLAME-space model predicts; ``nphm_expression`` (W, D) NPHM
            expression codes (needs ``nphm_tracking/``).
        features: ``logmel`` (W, 80) or ``wav2vec2`` (W, D) audio features.
        window_frames: window length; None: the packaged ``windows.csv``; an int: windows
            recomputed with ``window_stride`` (default: ``window_frames``) and ``cover_tail``.
        flame_model: the head model the fit used (a model file for
            :meth:`FlameLayer.from_file`, or a :class:`FlameLayer`), for
            ``vertices_from="params"``.
        vertices_from: ``params`` or ``meshes`` (see the module); None: ``params`` when
            ``flame_model`` is given, else ``meshes``.
        cache_dir: where per-sequence FLAME vertices are cached (None: in memory).
        subjects: the subject vocabulary of ``subject_index``; None: the train split's
            subjects, sorted (a val or test subject outside it gets -1: an unseen identity,
            for which a model picks a training style).
        vertex_space: ``world`` (the fit's world vertices) or ``model`` (``flame_vertices``
            posed without the head's rotation, translation and scale, in the frame of the
            neutral ``template``: what audio can predict; needs ``vertices_from="params"``).

    Items (dict): ``audio_features`` (W, D) float32, ``targets`` (W, ...) float32, ``mask``
    (W,) bool (False on padding, which is zeros), ``subject_index`` () int64, ``template``
    (V, 3) float32 (the subject's neutral FLAME mesh), ``name`` (``<SUBJECT>_<SEQ>``),
    ``start`` (first fitted frame of the window).

    Raises:
        DatasetError: missing manifest, splits or windows, an unknown split, target or
            features, a sequence without the features or targets asked for, features that
            do not cover the fitted frames.
        ValueError: ``vertices_from="params"`` without ``flame_model``.
    """

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        target: str = "flame_vertices",
        features: str = "logmel",
        window_frames: int | None = None,
        window_stride: int | None = None,
        cover_tail: bool = True,
        flame_model: PathLike | FlameLayer | None = None,
        vertices_from: str | None = None,
        cache_dir: PathLike | None = None,
        subjects: Sequence[str] | None = None,
        vertex_space: str = "world",
    ) -> None:
        self.root = Path(root)
        if split not in (*SPLITS, "all"):
            raise DatasetError(f"unknown split {split!r}: one of {', '.join(SPLITS)}, all")
        if target not in TARGETS:
            raise DatasetError(f"unknown target {target!r}: one of {', '.join(TARGETS)}")
        if features not in FEATURES:
            raise DatasetError(f"unknown features {features!r}: one of {', '.join(FEATURES)}")
        self.split, self.target, self.features = split, target, features
        parquet = layout.manifest_parquet_path(self.root)
        manifest = read_manifest(
            parquet if parquet.is_file() else layout.manifest_csv_path(self.root)
        )
        self.splits = load_splits(layout.splits_path(self.root))
        where = split_of(self.splits)
        self.rows = {
            r["name"]: r for r in manifest if split == "all" or where.get(r["subject"]) == split
        }
        for name, row in self.rows.items():
            if features == "wav2vec2" and not row["wav2vec2"]:
                raise DatasetError(f"{self.root}: sequence {name} has no wav2vec2 features")
            if target == "nphm_expression" and not row["nphm_expressions"]:
                raise DatasetError(
                    f"{self.root}: sequence {name} has no NPHM codes (dataset.include_nphm)"
                )
        if window_frames is None:
            windows = load_windows(layout.windows_path(self.root))
            self.windows = [w for w in windows if w["name"] in self.rows]
        else:
            stride = window_stride or window_frames
            rows = list(self.rows.values())
            self.windows = make_windows(rows, self.splits, window_frames, stride, cover_tail)
        sizes = {w["window"] for w in self.windows}
        self.window_frames = max(sizes) if sizes else (window_frames or 0)
        self.subjects = list(subjects) if subjects is not None else sorted(self.splits["train"])
        self._subject_index = {s: i for i, s in enumerate(self.subjects)}

        self._layer: FlameLayer | None = None
        if vertices_from is None:
            vertices_from = "params" if flame_model is not None else "meshes"
        if vertices_from not in ("params", "meshes"):
            raise ValueError(f"vertices_from must be 'params' or 'meshes', got {vertices_from!r}")
        if vertices_from == "params" and target == "flame_vertices":
            if flame_model is None:
                raise ValueError("vertices_from='params' needs flame_model (the head model)")
            self._layer = (
                flame_model
                if isinstance(flame_model, FlameLayer)
                else FlameLayer.from_file(flame_model)
            )
        if vertex_space not in ("world", "model"):
            raise ValueError(f"vertex_space must be 'world' or 'model', got {vertex_space!r}")
        if vertex_space == "model" and target == "flame_vertices" and vertices_from != "params":
            raise ValueError("vertex_space='model' needs vertices_from='params' (flame_model)")
        self.vertex_space = vertex_space
        self.vertices_from = vertices_from
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._cache: dict[str, dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self.windows)

    # ----------------------------------------------------------------------------------------
    # per-sequence data, loaded once

    def _seq_dir(self, name: str) -> Path:
        return layout.sequence_dir(self.root, name)

    def _vertices(self, name: str, params: dict[str, np.ndarray]) -> np.ndarray:
        folder = self._seq_dir(name)
        source = (
            layout.flame_params_path(folder)
            if self.vertices_from == "params"
            else layout.flame_dir(folder) / "flame_meshes"
        )
        cache = None
        if self.cache_dir is not None:
            space = "" if self.vertex_space == "world" else ".model"
            cache = self.cache_dir / f"{name}.{self.vertices_from}{space}.npy"
            if cache.is_file() and cache.stat().st_mtime >= source.stat().st_mtime:
                return np.load(cache, mmap_mode="r")
        if self._layer is not None:
            try:
                verts = _flame_vertices(self._layer, params, self.vertex_space)
            except ValueError as exc:
                raise DatasetError(
                    f"{source}: cannot pose these parameters with flame_model ({exc}): is it the "
                    "head model the fit used?"
                ) from None
        else:
            verts = np.stack(
                [read_mesh_vertices(layout.flame_mesh_path(folder, t)) for t in params["frames"]]
            )
        if cache is not None:
            with atomic_path(cache, suffix=".npy") as tmp:
                np.save(tmp, verts)
            return np.load(cache, mmap_mode="r")
        return verts

    def _targets(self, name: str, params: dict[str, np.ndarray]) -> np.ndarray:
        if self.target == "flame_vertices":
            return self._vertices(name, params)
        if self.target == "flame_expression":
            return np.concatenate([params["expression"], params["jaw"]], axis=1)
        folder = self._seq_dir(name)
        return np.stack(
            [read_nphm_expression(layout.nphm_expression_path(folder, t)) for t in params["frames"]]
        )

    def sequence(self, name: str) -> dict[str, Any]:
        """One sequence's arrays: ``features`` (T, D) (rows of its fitted frames), ``targets``
        (T, ...), ``template`` (V, 3); computed once, then cached."""
        if name in self._cache:
            return self._cache[name]
        folder = self._seq_dir(name)
        params = load_flame_params(layout.flame_params_path(folder))
        feat_path = layout.feature_path(folder, self.features)
        try:
            feats = np.load(feat_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{feat_path}: unreadable audio features ({exc})") from None
        frames = params["frames"]
        if feats.ndim != 2 or frames.max() >= feats.shape[0] or frames.min() < 0:
            raise DatasetError(
                f"{feat_path}: features of shape {feats.shape} do not cover the fitted frames "
                f"{int(frames.min())}..{int(frames.max())}"
            )
        data = {
            "features": np.asarray(feats[frames], np.float32),
            "targets": self._targets(name, params),
            "template": read_mesh_vertices(layout.template_path(folder)),
        }
        self._cache[name] = data
        return data

    # ----------------------------------------------------------------------------------------

    def __getitem__(self, index: int) -> dict[str, Any]:
        w = self.windows[index]
        seq = self.sequence(w["name"])
        W, a, n = int(w["window"]), int(w["start"]), int(w["length"])

        def padded(x: np.ndarray) -> torch.Tensor:
            out = torch.zeros((W, *x.shape[1:]), dtype=torch.float32)
            out[:n] = torch.from_numpy(np.array(x[a : a + n], dtype=np.float32))
            return out

        mask = torch.zeros(W, dtype=torch.bool)
        mask[:n] = True
        return {
            "audio_features": padded(seq["features"]),
            "targets": padded(seq["targets"]),
            "mask": mask,
            "subject_index": torch.tensor(self._subject_index.get(w["subject"], -1)),
            "template": torch.from_numpy(seq["template"]),
            "name": w["name"],
            "start": a,
        }


def collate_windows(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack items of :class:`TalkingFaceDataset` into a batch, padding every window to the
    longest (zeros, mask False).

    Returns:
        ``audio_features`` (B, W, D), ``targets`` (B, W, ...), ``mask`` (B, W) bool,
        ``subject_index`` (B,), ``template`` (B, V, 3), ``name`` and ``start`` lists.

    Raises:
        ValueError: an empty batch, or items whose feature, target or template shapes differ
            beyond the window length.
    """
    if not batch:
        raise ValueError("collate_windows: empty batch")
    W = max(int(item["mask"].shape[0]) for item in batch)

    def pad(key: str) -> torch.Tensor:
        shapes = {tuple(item[key].shape[1:]) for item in batch}
        if len(shapes) > 1:
            raise ValueError(f"collate_windows: {key} of different shapes {sorted(shapes)}")
        out = torch.zeros((len(batch), W, *shapes.pop()), dtype=batch[0][key].dtype)
        for i, item in enumerate(batch):
            out[i, : item[key].shape[0]] = item[key]
        return out

    templates = {tuple(item["template"].shape) for item in batch}
    if len(templates) > 1:
        raise ValueError(f"collate_windows: templates of different shapes {sorted(templates)}")
    return {
        "audio_features": pad("audio_features"),
        "targets": pad("targets"),
        "mask": pad("mask"),
        "subject_index": torch.stack([item["subject_index"] for item in batch]),
        "template": torch.stack([item["template"] for item in batch]),
        "name": [item["name"] for item in batch],
        "start": [item["start"] for item in batch],
    }
