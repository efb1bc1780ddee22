"""The QC pages of the workflow: each function draws every figure one rule registers in the
report, choosing the frames, cameras and data a reader needs to see for one sequence.

The figures themselves are in :mod:`.rig`, :mod:`.contact_sheet`, :mod:`.audio`,
:mod:`.depth`, :mod:`.points`, :mod:`.flame` and :mod:`.nphm`.
"""

from __future__ import annotations

import logging
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
    from .nphm import TrueMeshes

log = logging.getLogger(__name__)


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


#: Loss terms drawn on the fit's loss page (the weighted groups of eq. 13 and their parts
#: that are distances); the regulariser and smoothness components stay in fit_log.csv.
FIT_LOSS_TERMS = ("lmk", "point", "plane", "reg", "smooth", "total")


def read_fit_log(path: PathLike) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``fit_log.csv`` (:meth:`talkhead.fitting.loop.FitHistory.save_csv`) as ``(steps,
    {term: values})``."""
    import csv

    with Path(path).open(newline="") as f:
        rows = list(csv.DictReader(f))
    steps = np.asarray([int(r["step"]) for r in rows])
    names = [k for k in (rows[0] if rows else {}) if k not in ("step", "lr_factor")]
    return steps, {k: np.asarray([float(r[k]) for r in rows]) for k in names}


def flame_fit_qc(
    seq: CaptureSequence,
    flame_dir: PathLike,
    points_path: PathLike,
    model_files: Mapping[str, PathLike],
    losses_path: PathLike,
    overlay_path: PathLike,
    n_frames: int = 4,
    n_views: int = 2,
) -> dict[str, Path]:
    """The FLAME fit's QC page: loss curves per term, and the fitted mesh drawn over
    ``n_views`` cameras (the most frontal and the one farthest from it) for ``n_frames``
    frames spread over the sequence, with fitted (model) and observed (multi-view) landmarks.
    """

    from ..flame.layer import FlameLayer
    from ..flame.model import load_flame_model
    from ..flame.params import load_flame_params
    from ..points.io import load_points
    from .flame import plot_fit_losses, plot_mesh_overlay

    flame_dir = Path(flame_dir)
    steps, terms = read_fit_log(flame_dir / "fit_log.csv")
    shown = {k: v for k, v in terms.items() if k in FIT_LOSS_TERMS}
    out = {
        "losses": plot_fit_losses(
            steps, shown, losses_path, title=f"{seq.subject} / {seq.sequence}: FLAME fit losses"
        )
    }
    params = load_flame_params(flame_dir / "flame.npz")
    frames = params["frames"]
    rows = np.asarray(pick_evenly(list(range(len(frames))), n_frames))
    model = load_flame_model(
        model_files["model"], model_files.get("landmarks"), model_files.get("masks")
    )
    layer = FlameLayer(model)
    fitted = layer.pose_params(params, rows)
    points = load_points(points_path)
    observed = np.asarray(points["landmarks3d"], dtype=np.float64)[rows]
    observed[~np.asarray(points["landmarks3d_valid"], dtype=bool)[rows]] = np.nan
    from ..geometry.rotations import axis_angle_to_matrix

    # FLAME's face looks along +z of the model; the fitted head rotation turns it.
    forward = axis_angle_to_matrix(np.asarray(params["rotation"][rows[0]], dtype=np.float64))[:, 2]
    head = fitted.vertices.numpy().mean(axis=(0, 1))
    serials = _frontal_and_far(seq, head, forward, n_views)
    images = [list(read_images(seq, int(frames[r]), serials)) for r in rows]
    faces = np.asarray(model.faces)
    if model.masks and "face" in model.masks:  # the face region only: a readable wireframe
        inside = np.zeros(model.num_vertices, dtype=bool)
        inside[np.asarray(model.masks["face"])] = True
        faces = faces[inside[faces].all(axis=1)]
    out["overlay"] = plot_mesh_overlay(
        images,
        [seq.cameras[s] for s in serials],
        fitted.vertices.numpy(),
        faces,
        frames[rows],
        overlay_path,
        landmarks=fitted.landmarks.numpy(),
        observed_landmarks=observed,
        title=f"{seq.subject} / {seq.sequence}: fitted FLAME over cameras {', '.join(serials)}",
    )
    return out


def _frontal_and_far(
    seq: CaptureSequence, head: np.ndarray, forward: np.ndarray, n_views: int
) -> list[str]:
    """The camera looking most directly at the face (its centre lies most along the face's
    ``forward`` direction from ``head``), then cameras farthest in viewing direction from
    those already chosen."""
    serials = list(seq.serials)
    dirs = {}
    for s in serials:
        d = seq.cameras[s].center - head
        dirs[s] = d / max(np.linalg.norm(d), 1e-9)
    chosen = [max(serials, key=lambda s: float(dirs[s] @ forward))]
    while len(chosen) < min(n_views, len(serials)):
        rest = [s for s in serials if s not in chosen]
        chosen.append(min(rest, key=lambda s: max(dirs[s] @ dirs[c] for c in chosen)))
    return chosen


#: The NPHM fit's mesh folder beside its ``codes.npz`` (FaceTalk's layout).
NPHM_MESHES = "nphm_meshes"

#: Per-frame chamfer columns of the NPHM evaluation (``evaluation_frames.csv``) of the fits
#: with and without the temporal loss, and the fit each belongs to
#: (:data:`talkhead.qc.nphm.SERIES`).
NPHM_CHAMFER_COLUMNS = {
    "chamfer_l1_mm": "decoded",
    "unsmoothed_chamfer_l1_mm": "unsmoothed",
}


def read_frames_csv(path: PathLike) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A per-frame figures table (``frame``, then one column per figure; empty or ``nan``
    cells are NaN) as ``(frames (T,), {column: (T,)})``.

    Raises:
        StageOutputError: the file lacks a ``frame`` column.
    """
    import csv

    from ..errors import StageOutputError

    with Path(path).open(newline="") as f:
        rows = list(csv.DictReader(f))
    names = list(rows[0]) if rows else []
    if rows and "frame" not in names:
        raise StageOutputError(f"{path}: no 'frame' column (columns: {', '.join(names)})")

    def number(text: str | None) -> float:
        try:
            return float(text) if text not in (None, "") else float("nan")
        except ValueError:
            return float("nan")

    frames = np.asarray([int(float(r["frame"])) for r in rows], dtype=np.int64)
    return frames, {k: np.asarray([number(r[k]) for r in rows]) for k in names if k != "frame"}


def _nphm_codes(path: PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(frames (T,), expression (T, E), mesh_frames)`` of an NPHM fit's ``codes.npz`` (the
    frames with a mesh, ``fit_nphm.mesh_every``; every frame when the file does not say)."""
    from ..errors import StageOutputError
    from ..io import load_npz

    try:
        data = load_npz(path)
    except (OSError, ValueError) as exc:
        raise StageOutputError(f"{path}: unreadable NPHM codes ({exc})") from None
    missing = [k for k in ("frames", "expression") if k not in data]
    if missing:
        raise StageOutputError(f"{path}: no {', '.join(missing)} in the NPHM codes")
    frames, codes = np.asarray(data["frames"]).reshape(-1), np.asarray(data["expression"])
    if codes.ndim != 2 or codes.shape[0] != len(frames):
        raise StageOutputError(
            f"{path}: expression has shape {codes.shape}, expected ({len(frames)}, E)"
        )
    mesh_frames = np.asarray(data["mesh_frames"]).reshape(-1) if "mesh_frames" in data else frames
    return frames.astype(np.int64), codes, mesh_frames.astype(np.int64)


def _nphm_mesh(folder: Path, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """``(vertices, faces)`` of ``folder/frame_<t:05d>.ply``."""
    import trimesh

    from ..errors import StageOutputError
    from ..flame.meshes import frame_mesh_name

    path = folder / frame_mesh_name(frame)
    if not path.is_file():
        raise StageOutputError(f"{path}: the NPHM fit wrote no mesh for frame {frame}")
    try:
        mesh = trimesh.load(path, process=False, force="mesh")
    except (OSError, ValueError, KeyError) as exc:
        raise StageOutputError(f"{path}: unreadable mesh ({exc})") from None
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)


def _head_axes(flame_params_path: PathLike | None) -> tuple[np.ndarray, np.ndarray]:
    """(forward, up) of the head: the head model's +z and +y, turned by the FLAME fit's head
    rotation at its middle frame when its ``flame.npz`` is given."""
    rotation = np.eye(3)
    if flame_params_path is not None:
        from ..flame.params import load_flame_params
        from ..geometry.rotations import axis_angle_to_matrix

        params = load_flame_params(flame_params_path)
        rows = np.asarray(params["rotation"], dtype=np.float64).reshape(-1, 3)
        rotation = axis_angle_to_matrix(rows[len(rows) // 2])
    return rotation[:, 2], rotation[:, 1]


def nphm_fit_qc(
    codes_path: PathLike,
    fit_log_path: PathLike,
    meshes_path: PathLike,
    chamfer_path: PathLike,
    autocorrelation_path: PathLike,
    losses_path: PathLike,
    table_path: PathLike,
    unsmoothed_codes_path: PathLike | None = None,
    unsmoothed_fit_log_path: PathLike | None = None,
    evaluation_path: PathLike | None = None,
    frames_csv_path: PathLike | None = None,
    truth: TrueMeshes | None = None,
    flame_params_path: PathLike | None = None,
    meshes_dir: PathLike | None = None,
    unsmoothed_meshes_dir: PathLike | None = None,
    n_frames: int = 3,
    title: str = "",
    chamfer_target_mm: float | None = None,
    max_lag: int = 10,
) -> dict[str, Path]:
    """The NPHM fit's QC page (:mod:`talkhead.qc.nphm`): decoded meshes beside the true ones,
    chamfer-L1 per frame, code autocorrelation, loss curves and the Table-2 table.

    Reads the fit's ``codes.npz`` and meshes (``frame_<t:05d>.ply`` in ``meshes_dir``, by
    default ``nphm_meshes/`` beside the codes) and, when given, those of the fit without the
    temporal loss (``unsmoothed_meshes_dir`` likewise), the evaluation's figures
    (``evaluation.json``) and per-frame figures (``evaluation_frames.csv``:
    :data:`NPHM_CHAMFER_COLUMNS`). The mesh figure shows ``n_frames`` frames spread over the
    sequence plus the frame of largest chamfer-L1, with the true meshes from ``truth`` (read by
    the caller); without per-frame chamfer the chamfer figure says so. The table's jitter
    figures come from ``evaluation.json``, or from the codes
    (:func:`talkhead.fitting.temporal.expression_jitter`) without it. The loss figure adds the
    total of the fit without the temporal loss when its log is given (same steps). The meshes
    are seen from the front of the head: along the head model's +z with y up (the synthetic
    studio's world), or, given the sequence's FLAME fit (``flame.npz``), along its head rotation
    at the middle frame.

    Returns:
        ``{"meshes", "chamfer", "autocorrelation", "losses", "table2": path}``.

    Raises:
        StageOutputError: a codes file or a shown frame's mesh is missing or malformed, or the
            two fits cover different frames.
        EvaluationError: ``truth`` lacks a shown frame.
    """
    from ..errors import EvaluationError, StageOutputError
    from ..fitting.temporal import expression_jitter
    from ..io import load_json
    from .flame import fit_losses_figure
    from .nphm import (
        SERIES,
        frontal_view,
        pick_mesh_frames,
        plot_autocorrelation,
        plot_chamfer_frames,
        plot_meshes,
        write_table2,
    )

    head = f"{title}: " if title else ""
    frames, codes, mesh_frames = _nphm_codes(codes_path)
    series = {SERIES["decoded"]: codes}
    plain_dir = None
    if unsmoothed_codes_path is not None:
        plain_frames, plain, _ = _nphm_codes(unsmoothed_codes_path)
        if not np.array_equal(plain_frames, frames):
            raise StageOutputError(
                f"{unsmoothed_codes_path}: frames {plain_frames[:5].tolist()}... differ from "
                f"those of {codes_path} ({frames[:5].tolist()}...): the two fits must cover the "
                "same frames"
            )
        series[SERIES["unsmoothed"]] = plain
        plain_dir = Path(unsmoothed_meshes_dir or Path(unsmoothed_codes_path).parent / NPHM_MESHES)

    # Per-frame chamfer, on the codes' frames (NaN where the table has no row).
    chamfer: dict[str, np.ndarray] = {}
    if frames_csv_path is not None:
        csv_frames, columns = read_frames_csv(frames_csv_path)
        at = {int(t): i for i, t in enumerate(csv_frames)}
        for column, key in NPHM_CHAMFER_COLUMNS.items():
            if column in columns:
                chamfer[SERIES[key]] = np.asarray(
                    [columns[column][at[int(t)]] if int(t) in at else np.nan for t in frames]
                )

    out: dict[str, Path] = {}
    steps, terms = read_fit_log(fit_log_path)
    if unsmoothed_fit_log_path is not None:
        plain_steps, plain_terms = read_fit_log(unsmoothed_fit_log_path)
        if np.array_equal(plain_steps, steps) and "total" in plain_terms:
            terms[f"total, {SERIES['unsmoothed']}"] = plain_terms["total"]
        else:
            log.warning("%s: other steps than %s; not drawn", unsmoothed_fit_log_path, fit_log_path)
    fig = fit_losses_figure(steps, terms, title=f"{head}NPHM fit losses")
    for line in fig.axes[0].get_lines():  # the other fit's total: dashed black, under the total
        if line.get_gid() == f"loss total, {SERIES['unsmoothed']}":
            line.set(color="black", linestyle="--", linewidth=1.2)
    if fig.legends:  # redrawn with the restyled line
        fig.legends[0].remove()
        fig.legend(handles=fig.axes[0].get_lines(), loc="outside right upper", fontsize=8)
    out["losses"] = save_figure(fig, losses_path)

    meshed = np.flatnonzero(np.isin(frames, mesh_frames))
    if len(meshed) == 0:
        raise StageOutputError(f"{codes_path}: no frame has a mesh (mesh_frames is empty)")
    decoded_chamfer = chamfer.get(SERIES["decoded"])
    picked, worst_meshed = pick_mesh_frames(
        frames[meshed], n_frames, None if decoded_chamfer is None else decoded_chamfer[meshed]
    )
    rows = meshed[picked]
    worst = None if worst_meshed is None else int(meshed[worst_meshed])
    shown = frames[rows]
    fit_dir = Path(meshes_dir or Path(codes_path).parent / NPHM_MESHES)
    decoded = [_nphm_mesh(fit_dir, int(t)) for t in shown]
    plain_meshes = [_nphm_mesh(plain_dir, int(t)) for t in shown] if plain_dir else None
    true_meshes = None
    if truth is not None:
        try:
            true_meshes = [truth.mesh(int(t)) for t in shown]
        except KeyError as exc:
            raise EvaluationError(f"the true meshes have no frame {exc.args[0]}") from None
    labels = {name: key for key, name in SERIES.items()}
    framed = [v for v, _ in (true_meshes or decoded)]
    view = frontal_view(framed, *_head_axes(flame_params_path))
    out["meshes"] = plot_meshes(
        shown,
        decoded,
        meshes_path,
        truth=true_meshes,
        unsmoothed=plain_meshes,
        view=view,
        chamfer_mm={labels[k]: v[rows] for k, v in chamfer.items()} or None,
        highlight=None if worst is None else int(frames[worst]),
        title=f"{head}NPHM meshes",
    )

    if chamfer:
        out["chamfer"] = plot_chamfer_frames(
            frames,
            chamfer,
            chamfer_path,
            target_mm=chamfer_target_mm,
            title=f"{head}NPHM chamfer-L1 per frame against ground truth",
        )
    else:  # no ground truth: a figure that says so
        fig = new_figure((9.0, 2.0), 100)
        fig.text(
            0.5,
            0.5,
            f"{head}no per-frame chamfer-L1 (the capture has no ground truth)",
            ha="center",
            va="center",
        )
        out["chamfer"] = save_figure(fig, chamfer_path)

    out["autocorrelation"] = plot_autocorrelation(
        frames,
        series,
        autocorrelation_path,
        max_lag=max_lag,
        title=f"{head}NPHM expression codes: correlation between neighbouring frames",
    )

    figures: dict[str, Any] = dict(load_json(evaluation_path)) if evaluation_path else {}
    for label, prefix in ((SERIES["decoded"], ""), (SERIES["unsmoothed"], "unsmoothed_")):
        if label in series:
            jitter = expression_jitter(series[label], frames)
            for k in ("mae", "rmse"):
                figures.setdefault(f"{prefix}jitter_{k}", jitter[k])
    out["table2"] = write_table2(figures, table_path, title=f"{head}NPHM expression fitting")
    return out
