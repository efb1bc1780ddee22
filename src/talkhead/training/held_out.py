"""A trained model's animation of a held-out sequence beside the dataset's fitted meshes: one
video, ground truth (the FLAME fit, posed on demand) on the left, the model's prediction on the
right, one camera for both, with the sequence's cleaned speech, at the sequence's frame rate.
Models of NPHM codes show the NPHM fit's codes beside theirs, both decoded by the NPHM with the
subject's identity every ``mesh_every``-th frame (marching cubes, the head model's rest frame;
each mesh held until the next).

The held-out sequence is the first of the test split (else validation, else training: the
summary says which). Both panels are in the model's vertex space (``model``: the head's
rotation, translation and scale removed, as the models are trained; ``world``: as fitted;
``nphm_rest``: models of NPHM codes, the head model's rest frame of the NPHM fit). The
video streams (:func:`talkhead.training.render.render_panels`): the fit is posed and the
predicted meshes read a chunk at a time, so a long sequence renders in bounded memory.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.io import read_audio
from ..dataset import layout
from ..dataset.manifest import read_manifest
from ..dataset.torch_dataset import read_nphm_expression
from ..errors import DatasetError
from ..flame.layer import FlameLayer
from ..flame.params import load_flame_params
from ..io import PathLike, save_json
from ..nphm.decoder import load_identity
from .animate import animate_file, decode_nphm_sequence, nphm_decoder_for
from .modules import load_module
from .render import (
    CHUNK_FRAMES,
    MeshFiles,
    Panel,
    PosedFlame,
    SurfaceFiles,
    render_panels,
    write_video,
)

__all__ = ["animate_held_out", "held_out_sequence"]

log = logging.getLogger(__name__)


def held_out_sequence(dataset_root: PathLike) -> tuple[dict[str, Any], str]:
    """The manifest row of the first sequence of the test split (else validation, else
    training) and that split's name.

    Raises:
        DatasetError: missing manifest or splits, or no sequence in any split.
    """
    root = Path(dataset_root)
    rows = read_manifest(layout.manifest_csv_path(root))
    try:
        splits = json.loads(layout.splits_path(root).read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{layout.splits_path(root)}: unreadable splits ({exc})") from None
    for split in ("test", "val", "train"):
        chosen = [r for r in rows if r["subject"] in splits.get(split, [])]
        if chosen:
            return chosen[0], split
    raise DatasetError(f"{root}: no sequence in the test, val or train split")


def animate_held_out(
    checkpoint: PathLike,
    dataset_root: PathLike,
    flame_model: PathLike,
    out_dir: PathLike,
    video_path: PathLike,
    samples: int = 1,
    size: int = 256,
    chunk: int = CHUNK_FRAMES,
    nphm_model: PathLike | None = None,
    nphm_identities: Mapping[str, PathLike] | None = None,
    mesh_every: int = 5,
    mesh_resolution: int = 48,
    mesh_margin: float = 0.08,
) -> dict[str, Any]:
    """Animate the held-out sequence's cleaned audio and write the comparison video.

    Args:
        checkpoint: the trained model (``model.ckpt``).
        dataset_root: the packaged dataset (``results/dataset``).
        flame_model: the head model the fits used (poses the ground truth).
        out_dir: :func:`talkhead.training.animate.animate_file`'s outputs (codes, predicted
            meshes of each sample) and ``summary.json``.
        video_path: the mp4: ground truth | prediction (sample 0), (size, 2 * size) pixels.
        samples: K samples animated.
        size: each panel's side (pixels, even).
        chunk: frames posed, read and rendered at a time.
        nphm_model, nphm_identities: models of NPHM codes: the NPHM (``resources/nphm/
            model.pt``) and ``{subject: identity.npz}`` (``results/nphm/<subject>/``).
        mesh_every, mesh_resolution, mesh_margin: NPHM models: the frame step of the decoded
            meshes, the marching cubes' samples per axis and the box's margin.

    Returns:
        The summary (animate_file's, plus ``sequence``, ``split``, ``video``, ``fps``,
        ``frames``, ``fitted_frames_shown``, ``vertex_space``).

    Raises:
        DatasetError: no held-out sequence, or its parameters, audio or (NPHM models) NPHM
            codes missing; AudioError: its audio unreadable; ModelFileError: not a talkhead
            checkpoint, or the NPHM model or identity unreadable; ValueError: a model of NPHM
            codes without the NPHM model or the subject's identity.
    """
    root = Path(dataset_root)
    row, split = held_out_sequence(root)
    seq_dir = layout.sequence_dir(root, row["name"])
    wav = layout.wav_path(seq_dir)
    fps = float(row["fps"]) if row.get("fps") and math.isfinite(float(row["fps"])) else None
    log.info("animating %s (%s split)", row["name"], split)
    out_dir = Path(out_dir)
    module = load_module(str(checkpoint))
    if module.dims["target"] == "nphm_expression":
        subject = str(row["subject"])
        if not nphm_model or subject not in (nphm_identities or {}):
            raise ValueError(
                f"{checkpoint}: a model of NPHM codes: its meshes need the NPHM model and the "
                f"identity of subject {subject} (results/nphm/{subject}/identity.npz)"
            )
        identity_path = (nphm_identities or {})[subject]
        summary = animate_file(
            checkpoint,
            wav,
            out_dir,
            samples=samples,
            fps=fps,
            video=False,
            nphm_model=nphm_model,
            nphm_identity=identity_path,
            mesh_every=mesh_every,
            mesh_resolution=mesh_resolution,
            mesh_margin=mesh_margin,
        )
        T = int(summary["frames"])
        rows = [
            t for t in range(0, T, mesh_every) if layout.nphm_expression_path(seq_dir, t).is_file()
        ]
        if not rows:
            raise DatasetError(
                f"{layout.nphm_dir(seq_dir)}: no NPHM expression codes (dataset.include_nphm)"
            )
        codes = np.stack(
            [read_nphm_expression(layout.nphm_expression_path(seq_dir, t)) for t in rows]
        )
        decoder = nphm_decoder_for(module, nphm_model, mesh_resolution, mesh_margin)
        truth_dir = out_dir / "ground_truth" / "meshes"
        shown = decode_nphm_sequence(
            decoder,
            load_identity(identity_path),
            codes,
            truth_dir,
            1,
            np.array(rows),
            desc="NPHM fit meshes",
        )
        panels = [
            Panel(
                SurfaceFiles(truth_dir, T), None, "ground truth (NPHM fit)", "no fit for this frame"
            ),
            Panel(
                SurfaceFiles(out_dir / "sample_00" / "meshes", T),
                None,
                f"{summary['model']} (prediction)",
            ),
        ]
        space = "nphm_rest"
    else:
        summary = animate_file(checkpoint, wav, out_dir, samples=samples, fps=fps, video=False)
        if not summary["meshes"]:
            raise ValueError(f"{checkpoint}: the model writes codes only, no meshes to show")
        space = str(module.dims.get("vertex_space", "model"))
        layer = FlameLayer.from_file(flame_model)
        T = int(summary["frames"])
        truth = PosedFlame(layer, load_flame_params(layout.flame_params_path(seq_dir)), T, space)
        faces = layer.faces.numpy()
        prediction = MeshFiles(out_dir / "sample_00" / "meshes", T, layer.num_vertices)
        panels = [
            Panel(truth, faces, "ground truth (FLAME fit)", "no fit for this frame"),
            Panel(prediction, faces, f"{summary['model']} (prediction)"),
        ]
        shown = int((truth.row >= 0).sum())
    audio, rate = read_audio(wav)
    write_video(
        video_path,
        render_panels(panels, size=size, chunk=chunk),
        summary["fps"],
        np.asarray(audio, np.float32).mean(axis=1),
        rate,
    )
    summary.update(
        {
            "sequence": row["name"],
            "split": split,
            "video": str(video_path),
            "fitted_frames_shown": shown,
            "vertex_space": space,
        }
    )
    save_json(out_dir / "summary.json", summary)
    return summary
