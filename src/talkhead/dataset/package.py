"""Packaging one sequence into the dataset's layout (:mod:`talkhead.dataset.layout`).

The stages' files are hard-linked into ``data/<SUBJECT>_<SEQ>/`` where the file system allows
(same device, links permitted), else copied (a hard-linked file *is* the stage's file: edit
neither in place); the folder is built as
``data/<SUBJECT>_<SEQ>.partial/`` and renamed into place once complete, so a failed job never
leaves a half-packaged sequence that a rerun or a reader would trust.

Every input is checked before anything is written: the FLAME parameters
(:func:`talkhead.flame.params.load_flame_params`), one mesh per fitted frame, the template, the
audio features' rows against the fitted frames (features are indexed by the capture's frame
index, the ``frames`` of the FLAME parameters) and, with NPHM, one expression code per frame.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import numbers
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError
from ..flame.params import load_flame_params
from . import layout
from .layout import StageOutputs, frame_file

__all__ = [
    "FEATURE_KINDS",
    "PackagedSequence",
    "SequenceSource",
    "fit_figures",
    "package_sequence",
    "place_file",
    "read_sequence_source",
]

log = logging.getLogger(__name__)

#: Audio feature files the dataset carries when the audio stage made them (``<kind>.npy``).
FEATURE_KINDS = ("logmel", "wav2vec2")


@dataclass(frozen=True)
class SequenceSource:
    """One sequence's stage outputs, checked and ready to package.

    Attributes:
        outputs: where they are.
        frames: (T,) int64 capture frame index of each fitted frame.
        fps: frames per second.
        feature_rows: rows of the audio features (one per capture frame).
        feature_dims: ``{kind: D}`` of the features present (``logmel`` always).
        fit: the fit's numeric figures (``flame_<key>``, ``nphm_<key>``), from metrics.json.
        files: ``{path in the sequence folder: source file}``, every file to package.
    """

    outputs: StageOutputs
    frames: np.ndarray
    fps: float
    feature_rows: int
    feature_dims: dict[str, int]
    fit: dict[str, float]
    files: dict[str, Path] = field(repr=False)


@dataclass(frozen=True)
class PackagedSequence:
    """A packaged sequence: its source and how its files were placed.

    Attributes:
        source: the checked inputs.
        folder: ``data/<SUBJECT>_<SEQ>``.
        n_linked, n_copied: files hard-linked and copied.
    """

    source: SequenceSource
    folder: Path
    n_linked: int
    n_copied: int


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: unreadable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def fit_figures(metrics: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """The numeric scalar figures of a flat metrics.json, keys prefixed (``flame_``); booleans,
    strings, lists and nulls are left out (null: a figure the stage could not compute)."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


def _feature_rows(path: Path) -> tuple[int, int]:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: unreadable audio features ({exc})") from None
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise DatasetError(f"{path}: audio features have shape {arr.shape}, expected (T, D)")
    return int(arr.shape[0]), int(arr.shape[1])


def _missing_frames(paths: list[Path], what: str, folder: Path) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DatasetError(
            f"{folder}: {len(missing)} of {len(paths)} {what} missing (first: {missing[0].name}); "
            "one per fitted frame expected: was the stage interrupted?"
        )


def read_sequence_source(outputs: StageOutputs) -> SequenceSource:
    """Check one sequence's stage outputs and list the files to package.

    Raises:
        DatasetError: naming the file: a missing template, mesh, wav or feature file, features
            whose rows do not cover the fitted frames, frame rates that disagree, NPHM codes
            missing for some frame.
        ModelFileError: unreadable or malformed FLAME parameters.
    """
    fl, au = outputs.flame, outputs.audio
    params = load_flame_params(fl / "flame.npz")
    frames = params["frames"]
    if len(frames) == 0:
        raise DatasetError(f"{fl / 'flame.npz'}: no fitted frames")
    files: dict[str, Path] = {
        "flame_2023_tracking/flame_params.npz": fl / "flame.npz",
        "flame_2023_tracking/flame_2023_template.ply": fl / "template.ply",
        "audio/cleaned_audio.wav": au / "cleaned_audio.wav",
    }
    meshes = [fl / "flame_meshes" / frame_file(t, ".ply") for t in frames]
    _missing_frames(meshes, "FLAME meshes (flame_meshes/frame_<t>.ply)", fl)
    files.update({f"flame_2023_tracking/flame_meshes/{p.name}": p for p in meshes})
    fit: dict[str, float] = {}
    if (fl / "metrics.json").is_file():
        files["flame_2023_tracking/metrics.json"] = fl / "metrics.json"
        fit.update(fit_figures(_read_json(fl / "metrics.json"), "flame_"))

    feat_dir = au / "features"
    rows, dims = 0, {}
    for kind in FEATURE_KINDS:
        path = feat_dir / f"{kind}.npy"
        if not path.is_file():
            if kind == "logmel":
                raise DatasetError(f"{path}: log-mel features missing (the audio stage makes them)")
            continue
        n, dims[kind] = _feature_rows(path)
        if rows and n != rows:
            raise DatasetError(
                f"{path}: {n} rows, the log-mel features have {rows}: features of one sequence "
                "must have one row per video frame"
            )
        rows = n
        files[f"audio/{kind}.npy"] = path
    fps = float(params["fps"]) if "fps" in params and np.ndim(params["fps"]) == 0 else math.nan
    if (feat_dir / "meta.json").is_file():
        files[f"audio/{layout.FEATURES_META}"] = feat_dir / "meta.json"
        meta = _read_json(feat_dir / "meta.json")
        if "T" in meta and int(meta["T"]) != rows:
            raise DatasetError(
                f"{feat_dir / 'meta.json'}: T = {meta['T']} but logmel.npy has {rows} rows"
            )
        meta_fps = float(meta.get("fps", math.nan))
        if math.isnan(fps):
            fps = meta_fps
        elif not math.isnan(meta_fps) and abs(meta_fps - fps) > 1e-6 * fps:
            raise DatasetError(
                f"{feat_dir / 'meta.json'}: fps {meta_fps:g} differs from the FLAME fit's "
                f"{fps:g} ({fl / 'flame.npz'}): features and fit of different frame rates"
            )
    if not (math.isfinite(fps) and fps > 0):
        raise DatasetError(
            f"{fl / 'flame.npz'}: no frame rate ('fps' in flame.npz or in {feat_dir}/meta.json)"
        )
    if frames.min() < 0 or frames.max() >= rows:
        raise DatasetError(
            f"{fl / 'flame.npz'}: fitted frames {int(frames.min())}..{int(frames.max())} reach "
            f"past the {rows} rows of {feat_dir / 'logmel.npy'}: audio and fit of different "
            "lengths"
        )
    for path in (fl / "template.ply", au / "cleaned_audio.wav"):
        if not path.is_file():
            raise DatasetError(f"{path}: missing")

    if outputs.nphm is not None:
        nd = outputs.nphm
        codes = [nd / "nphm_expressions" / frame_file(t, ".npz") for t in frames]
        _missing_frames(codes, "NPHM expression codes (nphm_expressions/frame_<t>.npz)", nd)
        files.update({f"nphm_tracking/nphm_expressions/{p.name}": p for p in codes})
        nphm_meshes = [nd / "nphm_meshes" / frame_file(t, ".ply") for t in frames]
        present = [p for p in nphm_meshes if p.is_file()]
        if len(present) < len(nphm_meshes):
            log.warning(
                "%s: %d of %d NPHM meshes missing; packaged without them",
                nd,
                len(nphm_meshes) - len(present),
                len(nphm_meshes),
            )
        files.update({f"nphm_tracking/nphm_meshes/{p.name}": p for p in present})
        if (nd / "metrics.json").is_file():
            files["nphm_tracking/metrics.json"] = nd / "metrics.json"
            fit.update(fit_figures(_read_json(nd / "metrics.json"), "nphm_"))

    return SequenceSource(outputs, frames, fps, rows, dims, fit, files)


def place_file(src: Path, dst: Path, hard_link: bool = True) -> bool:
    """Hard-link ``src`` at ``dst`` (True), or copy it when linking is off or impossible
    (another device, links not permitted; False)."""
    if hard_link:
        try:
            os.link(src, dst)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
    shutil.copy2(src, dst)
    return False


def package_sequence(
    source: SequenceSource, root: str | os.PathLike, hard_links: bool = True
) -> PackagedSequence:
    """Place a checked sequence's files under ``<root>/data/<SUBJECT>_<SEQ>/`` (replacing a
    previous copy only once the new one is complete).

    Args:
        source: from :func:`read_sequence_source`.
        root: the dataset folder (``results/dataset``).
        hard_links: try hard links first (``dataset.hard_links``).
    """
    final = layout.sequence_dir(root, source.outputs.name)
    partial = final.with_name(final.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    linked = copied = 0
    for rel, src in source.files.items():
        dst = partial / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if place_file(src, dst, hard_links):
            linked += 1
        else:
            copied += 1
    if final.exists():
        old = final.with_name(final.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        final.rename(old)
        partial.rename(final)
        shutil.rmtree(old)
    else:
        partial.rename(final)
    return PackagedSequence(source, final, linked, copied)
