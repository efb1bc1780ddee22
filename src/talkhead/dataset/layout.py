"""Paths of a packaged dataset, in the layout FaceTalk documents (its README, "Dataset"), and of
the stage outputs it is packaged from.

::

    <root>/                                  results/dataset/
      manifest.csv, manifest.parquet         one row per sequence (talkhead.dataset.manifest)
      splits.json                            train/val/test subjects (talkhead.dataset.splits)
      windows.csv                            training windows (talkhead.dataset.windows)
      metrics.json                           the dataset's figures
      data/<SUBJECT>_<SEQ>/
        audio/cleaned_audio.wav              16 kHz mono
        audio/logmel.npy                     (T_a, 80) float32, one row per video frame
        audio/wav2vec2.npy                   (T_a, D) float32 (when the audio stage made it)
        audio/features_meta.json             the features' meta.json (T, fps, ...)
        flame_2023_tracking/
          flame_params.npz                   FLAME parameters (talkhead.flame.params)
          flame_2023_template.ply            the subject's neutral mesh
          flame_meshes/frame_<t:05d>.ply     one per frame, world metres
          metrics.json                       the fit's own figures
        nphm_tracking/                       (dataset.include_nphm)
          nphm_expressions/frame_<t:05d>.npz key ``expression``
          nphm_meshes/frame_<t:05d>.ply

Departures from FaceTalk's layout: wav2vec2 features are ``.npy`` (no pickles; FaceTalk ships
``wave2vec_audio_feats.pkl``), and the FLAME parameters, log-mel features and metrics travel
with the meshes. ``<t>`` is the capture's frame index (``frames`` of the FLAME parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..io import PathLike

__all__ = [
    "AUDIO_DIR",
    "FLAME_DIR",
    "NPHM_DIR",
    "StageOutputs",
    "audio_dir",
    "data_dir",
    "feature_path",
    "flame_dir",
    "flame_mesh_path",
    "flame_metrics_path",
    "flame_params_path",
    "frame_file",
    "manifest_csv_path",
    "manifest_parquet_path",
    "metrics_path",
    "nphm_dir",
    "nphm_expression_path",
    "nphm_mesh_path",
    "sequence_dir",
    "sequence_name",
    "splits_path",
    "stage_outputs",
    "template_path",
    "wav_path",
    "windows_path",
]

AUDIO_DIR = "audio"
FLAME_DIR = "flame_2023_tracking"
NPHM_DIR = "nphm_tracking"
FEATURES_META = "features_meta.json"


def frame_file(t: int, suffix: str) -> str:
    """``frame_<t:05d><suffix>`` (``suffix`` with its dot)."""
    return f"frame_{int(t):05d}{suffix}"


def sequence_name(subject: str, sequence: str) -> str:
    """A sequence's folder name, ``<SUBJECT>_<SEQ>`` (the manifest keeps both parts, since
    either may hold ``_``)."""
    return f"{subject}_{sequence}"


def data_dir(root: PathLike) -> Path:
    return Path(root) / "data"


def sequence_dir(root: PathLike, name: str) -> Path:
    return data_dir(root) / name


def audio_dir(seq_dir: PathLike) -> Path:
    return Path(seq_dir) / AUDIO_DIR


def wav_path(seq_dir: PathLike) -> Path:
    return audio_dir(seq_dir) / "cleaned_audio.wav"


def feature_path(seq_dir: PathLike, kind: str) -> Path:
    """Audio features ``kind`` (``logmel``, ``wav2vec2``) of a packaged sequence, or their
    meta (``meta``)."""
    if kind == "meta":
        return audio_dir(seq_dir) / FEATURES_META
    return audio_dir(seq_dir) / f"{kind}.npy"


def flame_dir(seq_dir: PathLike) -> Path:
    return Path(seq_dir) / FLAME_DIR


def flame_params_path(seq_dir: PathLike) -> Path:
    return flame_dir(seq_dir) / "flame_params.npz"


def template_path(seq_dir: PathLike) -> Path:
    return flame_dir(seq_dir) / "flame_2023_template.ply"


def flame_metrics_path(seq_dir: PathLike) -> Path:
    return flame_dir(seq_dir) / "metrics.json"


def flame_mesh_path(seq_dir: PathLike, t: int) -> Path:
    return flame_dir(seq_dir) / "flame_meshes" / frame_file(t, ".ply")


def nphm_dir(seq_dir: PathLike) -> Path:
    return Path(seq_dir) / NPHM_DIR


def nphm_expression_path(seq_dir: PathLike, t: int) -> Path:
    return nphm_dir(seq_dir) / "nphm_expressions" / frame_file(t, ".npz")


def nphm_mesh_path(seq_dir: PathLike, t: int) -> Path:
    return nphm_dir(seq_dir) / "nphm_meshes" / frame_file(t, ".ply")


def manifest_csv_path(root: PathLike) -> Path:
    return Path(root) / "manifest.csv"


def manifest_parquet_path(root: PathLike) -> Path:
    return Path(root) / "manifest.parquet"


def splits_path(root: PathLike) -> Path:
    return Path(root) / "splits.json"


def windows_path(root: PathLike) -> Path:
    return Path(root) / "windows.csv"


def metrics_path(root: PathLike) -> Path:
    return Path(root) / "metrics.json"


@dataclass(frozen=True)
class StageOutputs:
    """Where the stages left one sequence's outputs (``results/<stage>/<subject>/<sequence>/``).

    Attributes:
        subject, sequence: the sequence.
        flame: folder of ``flame.npz``, ``template.ply``, ``flame_meshes/``, ``metrics.json``.
        audio: folder of ``cleaned_audio.wav`` and ``features/`` (``logmel.npy``,
            ``wav2vec2.npy``, ``meta.json``).
        nphm: folder of ``nphm_expressions/``, ``nphm_meshes/`` and ``metrics.json``, or None.
    """

    subject: str
    sequence: str
    flame: Path
    audio: Path
    nphm: Path | None = None

    @property
    def name(self) -> str:
        return sequence_name(self.subject, self.sequence)


def stage_outputs(
    results: PathLike, subject: str, sequence: str, include_nphm: bool = False
) -> StageOutputs:
    """The stage outputs of one sequence under ``results`` (``results/flame/<s>/<q>``, ...)."""
    results = Path(results)
    return StageOutputs(
        subject,
        sequence,
        results / "flame" / subject / sequence,
        results / "audio" / subject / sequence,
        results / "nphm" / subject / sequence if include_nphm else None,
    )
