"""Stage-level QC pages: each function draws every figure one workflow rule registers.

The figure primitives live in :mod:`talkhead.qc`; these functions pick the frames, cameras and
data a reader needs to see for one sequence.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .capture import CaptureSequence, read_audio, read_landmarks
from .io import PathLike
from .qc import plot_audio, plot_sequence_rig, sequence_contact_sheet

log = logging.getLogger(__name__)


def sparse_head_points(seq: CaptureSequence, frame: int = 0) -> np.ndarray | None:
    """(N, 3) world points of the face: the 2D landmarks of one frame triangulated across views.

    Returns None when the capture has no landmarks or too few views agree.
    """
    if not seq.has_landmarks:
        return None
    from .depth.mvs import triangulate_points

    lmk = read_landmarks(seq)[:, frame]  # (C, 68, 3)
    points, valid = triangulate_points(
        lmk[..., :2], lmk[..., 2], [seq.cameras[s] for s in seq.serials]
    )
    return points[valid] if valid.sum() >= 3 else None


def capture_qc(
    seq: CaptureSequence,
    rig_path: PathLike,
    sheet_path: PathLike,
    audio_path: PathLike,
    n_frames: int = 4,
    n_cameras: int = 4,
) -> dict[str, Path]:
    """The first QC page of a sequence: camera rig, contact sheet with landmarks, microphone."""
    points = sparse_head_points(seq)
    out = {"rig": plot_sequence_rig(seq, rig_path, points=points)}
    out["contact_sheet"] = sequence_contact_sheet(
        seq, sheet_path, n_frames=n_frames, n_cameras=n_cameras
    )
    if seq.audio_path is not None:
        audio, sr = read_audio(seq)
        title = f"microphone of {seq.subject} / {seq.sequence}"
        out["audio"] = plot_audio(audio, sr, audio_path, title=title)
    else:  # validation makes audio mandatory; keep the page whole if it ever is not
        log.warning("%s/%s has no audio", seq.subject, seq.sequence)
        out["audio"] = plot_audio(np.zeros(16000, np.float32), 16000, audio_path, title="no audio")
    return out
