"""The QC pages of the workflow: each function draws every figure one rule registers in the
report, choosing the frames, cameras and data a reader needs to see for one sequence.

The figures themselves are in :mod:`.rig`, :mod:`.contact_sheet`, :mod:`.audio`,
:mod:`.depth` and :mod:`.points`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..capture.readers import read_audio, read_images
from ..capture.sequence import CaptureSequence
from ..depth.io import depth_frame_path, load_depth_frame
from ..depth.range import landmark_points
from ..io import PathLike
from .audio import plot_audio
from .contact_sheet import sequence_contact_sheet
from .depth import plot_depth_errors, plot_depth_maps
from .draw import new_figure, pick_evenly, save_figure
from .points import plot_points, points_title
from .rig import plot_sequence_rig

if TYPE_CHECKING:
    from ..evaluation.stage import DepthErrorView


def capture_qc(
    seq: CaptureSequence,
    rig_path: PathLike,
    sheet_path: PathLike,
    audio_path: PathLike,
    n_frames: int = 4,
    n_cameras: int = 4,
) -> dict[str, Path]:
    """The first QC page of a sequence: camera rig, contact sheet with landmarks, microphone."""
    points = landmark_points(seq, n_frames=1)  # the face at the rig's centre
    out = {"rig": plot_sequence_rig(seq, rig_path, points=points)}
    out["contact_sheet"] = sequence_contact_sheet(
        seq, sheet_path, n_frames=n_frames, n_cameras=n_cameras
    )
    title = f"microphone of {seq.subject} / {seq.sequence}"
    if seq.audio_path is None:  # validation warns; depth and points run without audio
        fig = new_figure((10.0, 2.0), 100)
        fig.text(0.5, 0.5, f"{title}: no audio file in the capture", ha="center", va="center")
        out["audio"] = save_figure(fig, audio_path)
        return out
    audio, sr = read_audio(seq)
    out["audio"] = plot_audio(audio, sr, audio_path, title=title)
    return out


def depth_qc(
    seq: CaptureSequence,
    depth_dir: PathLike,
    maps_path: PathLike,
    metrics: Mapping[str, Any],
    n_cameras: int = 4,
) -> Path:
    """Depth QC of the sequence's middle frame: per camera (``n_cameras`` spread over the rig)
    the image, depth, normals and confidence."""
    t = seq.frame_ids[seq.n_frames // 2]
    frame = load_depth_frame(depth_frame_path(depth_dir, t))
    serials = pick_evenly(list(frame.serials), n_cameras)
    title = f"{seq.subject} / {seq.sequence}, frame {t}: backend {metrics.get('backend')}"
    return plot_depth_maps(read_images(seq, t, serials), frame, serials, maps_path, title)


def depth_error_qc(
    seq: CaptureSequence,
    view: DepthErrorView,
    errors_path: PathLike,
    evaluation: Mapping[str, Any],
) -> Path:
    """The depth error figure of an evaluate rule (from
    :func:`talkhead.evaluation.stage.run_evaluate_depth`)."""
    images = read_images(seq, view.t, list(view.serials))
    return plot_depth_errors(
        images, view.error_mm, view.missing, view.serials, errors_path, evaluation
    )


def points_qc(points_path: PathLike, out_path: PathLike, metrics: Mapping[str, Any]) -> Path:
    """The fused point cloud of the middle frame coloured by normal, with the fused 3D
    landmarks, from the front and the side; what is missing (no points, no valid landmark, no
    frame) is said on the figure."""
    from ..points.io import load_points

    data = load_points(points_path)
    offsets = data["frame_offsets"]
    if len(offsets) < 2:  # no frame at all: an empty figure that says so
        empty = np.zeros((0, 3))
        title = f"{Path(points_path).name}: no frame"
        return plot_points(empty, empty, empty, np.zeros(0, bool), out_path, title=title)
    i = (len(offsets) - 1) // 2
    pts = data["points"][offsets[i] : offsets[i + 1]]
    nrm = data["normals"][offsets[i] : offsets[i + 1]]
    frame = int(data["frames"][i]) if "frames" in data else i
    return plot_points(
        pts,
        nrm,
        data["landmarks3d"][i],
        data["landmarks3d_valid"][i],
        out_path,
        title=points_title(frame, len(pts), metrics),
    )
