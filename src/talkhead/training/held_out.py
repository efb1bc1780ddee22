"""A trained model's animation of a held-out sequence beside the dataset's fitted meshes: one
video, ground truth (the FLAME fit, posed on demand) on the left, the model's prediction on the
right, one camera for both, with the sequence's cleaned speech, at the sequence's frame rate.

The held-out sequence is the first of the test split (else validation, else training: the
summary says which). Both panels are in the model's vertex space (``model``: the head's
rotation, translation and scale removed, as the models are trained; ``world``: as fitted). The
video streams (:func:`talkhead.training.render.render_panels`): the fit is posed and the
predicted meshes read a chunk at a time, so a long sequence renders in bounded memory.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.io import read_audio
from ..dataset import layout
from ..dataset.manifest import read_manifest
from ..errors import DatasetError
from ..flame.layer import FlameLayer
from ..flame.params import load_flame_params
from ..io import PathLike, save_json
from .animate import animate_file
from .modules import load_module
from .render import CHUNK_FRAMES, MeshFiles, Panel, PosedFlame, render_panels, write_video

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

    Returns:
        The summary (animate_file's, plus ``sequence``, ``split``, ``video``, ``fps``,
        ``frames``, ``fitted_frames_shown``, ``vertex_space``).

    Raises:
        DatasetError: no held-out sequence, or its parameters or audio missing; AudioError:
            its audio unreadable; ModelFileError: not a talkhead checkpoint; ValueError: a
            model that writes codes only (NPHM: no meshes to show).
    """
    root = Path(dataset_root)
    row, split = held_out_sequence(root)
    seq_dir = layout.sequence_dir(root, row["name"])
    wav = layout.wav_path(seq_dir)
    fps = float(row["fps"]) if row.get("fps") and math.isfinite(float(row["fps"])) else None
    log.info("animating %s (%s split)", row["name"], split)
    out_dir = Path(out_dir)
    summary = animate_file(checkpoint, wav, out_dir, samples=samples, fps=fps, video=False)
    if not summary["meshes"]:
        raise ValueError(f"{checkpoint}: the model writes codes only, no meshes to show")
    space = str(load_module(str(checkpoint)).dims.get("vertex_space", "model"))
    layer = FlameLayer.from_file(flame_model)
    faces = layer.faces.numpy()
    T = int(summary["frames"])
    truth = PosedFlame(layer, load_flame_params(layout.flame_params_path(seq_dir)), T, space)
    prediction = MeshFiles(out_dir / "sample_00" / "meshes", T, layer.num_vertices)
    audio, rate = read_audio(wav)
    panels = [
        Panel(truth, faces, "ground truth (FLAME fit)", "no fit for this frame"),
        Panel(prediction, faces, f"{summary['model']} (prediction)"),
    ]
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
            "fitted_frames_shown": int((truth.row >= 0).sum()),
            "vertex_space": space,
        }
    )
    save_json(out_dir / "summary.json", summary)
    return summary
