"""Ground truth of a capture that has one (the synthetic studio): one writer, one reader.

Only :mod:`talkhead.synth` writes ground truth (:class:`GroundTruthWriter`) and only
:mod:`talkhead.evaluation` reads it (:class:`GroundTruth`); production stages never see it.
The file names are spelled here and nowhere else. Layout of one sequence's folder
(``<root>/<subject>/<sequence>/``, docs/formats.md):

=====================================  ==========================================================
``flame.npz``                          true FLAME parameters (:mod:`talkhead.flame.params` keys)
                                       + ``fps``
``vertices.npy``                       float32 (T, V, 3) world vertices
``faces.npy``                          int32 (F, 3) triangles of the head mesh
``landmarks3d.npy``                    float32 (T, 68, 3) world landmarks
``audio_clean.wav``                    the dry speech before the microphone (16-bit PCM)
``audio_mic_speech.wav``               the microphone's noise-free speech: the recording's room
                                       reverb, low-pass and level without its noise (24-bit
                                       PCM; recording = this + noise); absent in older renders
``phonemes.json``                      ``[{"phoneme", "start", "end"}]`` in seconds
``depth/frame_<t:05d>.npz``            true z-depth (C, H, W) float32 (0 = no surface), normals
                                       (C, H, W, 3) float16 in the camera frame, serials (C,)
=====================================  ==========================================================

Conventions: metres, OpenCV cameras, frame ids ``t`` as in the capture.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..depth.io import DepthFrame, load_depth_frame
from ..errors import EvaluationError
from ..io import PathLike, atomic_path, load_json, read_wav, save_json, save_npz, save_wav

FLAME_FILE = "flame.npz"
VERTICES_FILE = "vertices.npy"
FACES_FILE = "faces.npy"
LANDMARKS_FILE = "landmarks3d.npy"
CLEAN_AUDIO_FILE = "audio_clean.wav"
MIC_SPEECH_FILE = "audio_mic_speech.wav"
PHONEMES_FILE = "phonemes.json"
DEPTH_DIR = "depth"


def ground_truth_dir(root: PathLike, subject: str, sequence: str) -> Path:
    """The ground-truth folder of one sequence: ``<root>/<subject>/<sequence>``."""
    return Path(root) / subject / sequence


def _depth_path(folder: Path, t: int) -> Path:
    return folder / DEPTH_DIR / f"frame_{int(t):05d}.npz"


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array)


@dataclass(frozen=True)
class GroundTruth:
    """Reader of one sequence's ground truth (files are read on demand).

    Attributes:
        path: the sequence's ground-truth folder (:func:`ground_truth_dir`).

    Every reader raises :class:`~talkhead.errors.EvaluationError` naming the file when it is
    missing or malformed.
    """

    path: Path

    @classmethod
    def open(cls, path: PathLike) -> GroundTruth:
        """Open a ground-truth folder.

        Raises:
            EvaluationError: the folder does not exist.
        """
        path = Path(path)
        if not path.is_dir():
            raise EvaluationError(f"{path}: ground-truth folder is missing")
        return cls(path)

    def _file(self, name: str) -> Path:
        p = self.path / name
        if not p.is_file():
            raise EvaluationError(f"{p}: ground-truth file is missing")
        return p

    def _npy(self, name: str, ndim: int, mmap: bool = False) -> np.ndarray:
        p = self._file(name)
        try:
            arr = np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise EvaluationError(f"{p}: unreadable ground truth ({exc})") from None
        if arr.ndim != ndim or arr.shape[-1] != 3:
            raise EvaluationError(f"{p}: expected a {ndim}-d array ending in 3, got {arr.shape}")
        return arr

    def depth_frame(self, t: int) -> DepthFrame:
        """True depth and normals of frame id ``t``: depth (C, H, W) metres (0 = no surface),
        normal (C, H, W, 3) camera frame, serials (C,)."""
        p = _depth_path(self.path, t)
        if not p.is_file():
            raise EvaluationError(f"{p}: ground-truth depth of frame {t} is missing")
        return load_depth_frame(p)

    def vertices(self, mmap: bool = True) -> np.ndarray:
        """(T, V, 3) float32 world vertices of every frame (memory-mapped by default)."""
        return self._npy(VERTICES_FILE, 3, mmap=mmap)

    def faces(self) -> np.ndarray:
        """(F, 3) int32 triangles of the head mesh."""
        return self._npy(FACES_FILE, 2)

    def landmarks3d(self) -> np.ndarray:
        """(T, 68, 3) float32 world landmarks of every frame."""
        return self._npy(LANDMARKS_FILE, 3)

    def flame_params(self) -> dict[str, np.ndarray]:
        """True FLAME parameters (NeRSemble / VHAP key names) and ``fps``."""
        from ..flame.params import load_flame_params

        return load_flame_params(self._file(FLAME_FILE))

    def clean_audio(self) -> tuple[np.ndarray, int]:
        """The dry speech before the microphone: (N,) float32 in [-1, 1] and its sample rate."""
        return read_wav(self._file(CLEAN_AUDIO_FILE))

    def has_mic_speech(self) -> bool:
        """Whether the microphone's noise-free speech was written (renders before it was
        added lack it)."""
        return (self.path / MIC_SPEECH_FILE).is_file()

    def mic_speech(self) -> tuple[np.ndarray, int]:
        """The microphone's noise-free speech: (N,) float32 (the same room reverb, low-pass and
        level as ``audio_recording.wav``, without the noise) and its sample rate."""
        return read_wav(self._file(MIC_SPEECH_FILE))

    def phonemes(self) -> list[dict[str, Any]]:
        """``[{"phoneme": str, "start": s, "end": s}, ...]`` in seconds."""
        return list(load_json(self._file(PHONEMES_FILE)))


class GroundTruthWriter:
    """Writer of one sequence's ground truth, used by the synthetic studio only.

    Every file is written atomically (a failed job leaves nothing a rerun trusts).

    Args:
        path: the sequence's ground-truth folder (:func:`ground_truth_dir`); created.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def depth_frame(
        self, t: int, depth: np.ndarray, normal: np.ndarray, serials: Sequence[str]
    ) -> Path:
        """Write frame ``t``'s true depth (C, H, W) metres and normals (C, H, W, 3) (stored
        as float16)."""
        p = _depth_path(self.path, t)
        save_npz(
            p,
            depth=np.asarray(depth),
            normal=np.asarray(normal).astype(np.float16),
            serials=np.asarray(list(serials)),
        )
        return p

    def meshes(self, vertices: np.ndarray, faces: np.ndarray, landmarks3d: np.ndarray) -> None:
        """Write the posed meshes: vertices (T, V, 3), faces (F, 3), landmarks (T, 68, 3)."""
        _save_npy(self.path / VERTICES_FILE, np.asarray(vertices, dtype=np.float32))
        _save_npy(self.path / FACES_FILE, np.asarray(faces, dtype=np.int32))
        _save_npy(self.path / LANDMARKS_FILE, np.asarray(landmarks3d, dtype=np.float32))

    def flame_params(self, params: Mapping[str, Any]) -> None:
        """Write the true FLAME parameters (:func:`talkhead.flame.params.save_flame_params`)."""
        from ..flame.params import save_flame_params

        save_flame_params(self.path / FLAME_FILE, params)

    def clean_audio(self, audio: np.ndarray, sample_rate: int) -> None:
        """Write the clean speech (clipped to [-1, 1])."""
        save_wav(self.path / CLEAN_AUDIO_FILE, np.clip(audio, -1, 1), sample_rate)

    def mic_speech(self, audio: np.ndarray, sample_rate: int) -> None:
        """Write the microphone's noise-free speech (N,) as 24-bit PCM (recording = it + noise,
        to 2**-23 of full scale; clipped to [-1, 1]). 24 bits, not float: the last bits of a
        float differ between runs of the synthesiser, and a rerun must write the same file."""
        import soundfile as sf

        with atomic_path(self.path / MIC_SPEECH_FILE, suffix=".wav") as tmp:
            data = np.clip(np.asarray(audio, dtype=np.float64), -1, 1)
            sf.write(str(tmp), data, int(sample_rate), subtype="PCM_24")

    def phonemes(self, phonemes: Sequence[Mapping[str, Any]]) -> None:
        """Write the phoneme timing ``[{"phoneme", "start", "end"}]`` (seconds)."""
        save_json(self.path / PHONEMES_FILE, list(phonemes))
