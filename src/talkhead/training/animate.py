"""Animate any audio with a trained model (``talkhead animate``).

The audio goes through the audio stage's reader and cleaner (:func:`talkhead.audio.io.
read_audio`, :func:`talkhead.audio.prepare.prepare_audio`: mono, 16 kHz, high-pass, denoise,
gain), then the features the model was trained on, one row per frame at ``fps``
(``round(duration * fps)`` frames), computed for the whole clip. The models take any length:
FaceTalk's decoder and the FaceFormer baseline compute their positions and masks for the
length they are given (no fixed-size table), MeshTalk works frame by frame.

Outputs in ``out_dir``: ``codes.npz`` (``codes`` (K, T, E) as the model generates them, ``fps``,
``model``, ``target``); per sample ``sample_<k>/meshes/frame_<t:05d>.ply`` (model-space
metres) and ``sample_<k>/animation.mp4`` with the cleaned audio. FLAME-expression models
(FaceTalk (Flame), its regression variant) are posed with the checkpoint's head model and the
training subjects' mean identity. Models of NPHM codes ("Ours (full)") are decoded by the NPHM
given with an identity (a subject's ``results/nphm/<subject>/identity.npz``): every
``mesh_every``-th frame by marching cubes (:class:`talkhead.nphm.decoder.NphmDecoder`, in the
head model's rest frame, each mesh its own topology), the video holding each mesh until the
next; without an NPHM they write the codes only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..audio.config import AudioConfig
from ..audio.feature_config import FeatureConfig
from ..audio.features import align_to_frames, log_mel, log_mel_rate
from ..audio.io import read_audio
from ..audio.prepare import prepare_audio
from ..config import from_mapping
from ..flame.layer import FlameLayer
from ..flame.meshes import frame_mesh_name, save_mesh
from ..io import PathLike, save_json
from ..models.meshtalk import mel_windows
from ..nphm.decoder import NphmDecoder, load_identity, load_nphm_decoder
from .modules import MeshTalkModule, TalkModule, load_module
from .render import Panel, SurfaceFiles, render_frames, render_panels, write_video

__all__ = ["animate_file", "decode_nphm_sequence", "model_inputs", "nphm_decoder_for"]

log = logging.getLogger(__name__)


def model_inputs(module: TalkModule, audio: np.ndarray, sample_rate: int, fps: float) -> Tensor:
    """The model's input for a cleaned mono clip: (T, D) features or, for MeshTalk, (T, K,
    n_mels) log-mel windows; ``T = max(1, round(duration * fps))``."""
    feats = from_mapping(FeatureConfig, module.dims.get("audio_features"), "audio_features")
    if sample_rate != feats.sample_rate:
        from ..audio.prepare import resample

        audio = resample(audio, sample_rate, feats.sample_rate)
    T = max(1, int(round(audio.size / feats.sample_rate * fps)))
    if isinstance(module, MeshTalkModule):
        x = mel_windows(audio, T, fps, module.net.config, feats)
    elif module.dims["features"] == "wav2vec2":
        from ..audio.wav2vec2 import load_wav2vec2, wav2vec2_hidden_states

        if not feats.wav2vec2_model:
            raise ValueError("the model takes wav2vec2 features but its checkpoint names no model")
        enc = load_wav2vec2(feats.wav2vec2_model)
        states = wav2vec2_hidden_states(enc, audio, feats.wav2vec2_layer)
        x = align_to_frames(
            states, enc.rate_hz, T, fps, feats.alignment, first_time_s=enc.first_time_s
        )
    else:
        mel = log_mel(audio, feats)
        x = align_to_frames(mel, log_mel_rate(feats), T, fps, feats.alignment)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def _flame_vertices(module: TalkModule, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, T, V, 3) model-space vertices of FLAME expression codes (expression then jaw) and
    the faces, with the checkpoint's head model and stored identity."""
    layer = FlameLayer.from_file(module.dims["flame_model"])
    E = codes.shape[-1] - 3
    out = []
    with torch.no_grad():
        for seq in codes:
            verts = []
            for a in range(0, seq.shape[0], 256):
                chunk = torch.from_numpy(seq[a : a + 256])
                verts.append(
                    layer(
                        shape=module.shape_code[None], expression=chunk[:, :E], jaw=chunk[:, E:]
                    ).vertices.numpy()
                )
            out.append(np.concatenate(verts))
    return np.stack(out), layer.faces.numpy()


def nphm_decoder_for(
    module: TalkModule,
    nphm_model: PathLike,
    resolution: int = 48,
    margin: float = 0.08,
    flame_model: PathLike | None = None,
    device: str = "cpu",
) -> NphmDecoder:
    """The NPHM decoder of a model of NPHM codes: the NPHM stage's marching-cubes box around
    the FLAME-format template (``flame_model``, default the checkpoint's head model) grown by
    ``margin`` (``fit_nphm.mesh_margin``), ``resolution`` samples per axis.

    Raises:
        ModelFileError: the NPHM or head model file missing or unreadable, or no head model
            named (neither ``flame_model`` nor the checkpoint's).
    """
    from ..errors import ModelFileError

    path = flame_model or module.dims.get("flame_model")
    if not path:
        raise ModelFileError(
            "no head model to place the NPHM's marching-cubes box: the checkpoint names none; "
            "pass the FLAME model the fits used"
        )
    template = FlameLayer.from_file(path).v_template.double().cpu().numpy()
    return load_nphm_decoder(nphm_model, template, resolution, margin, device)


def decode_nphm_sequence(
    decoder: NphmDecoder,
    identity: tuple[np.ndarray, np.ndarray],
    codes: np.ndarray,
    folder: PathLike,
    every: int = 1,
    frames: np.ndarray | None = None,
    desc: str = "NPHM meshes",
) -> int:
    """Decode a sequence of NPHM expression codes to ``folder/frame_<t:05d>.ply`` (rest-frame
    metres), every ``every``-th row, with a progress bar.

    Args:
        decoder: the NPHM and its box; identity: the subject's codes (global, local).
        codes: (T, E) expression codes.
        folder: the meshes' folder (made).
        every: row step (1: every row).
        frames: (T,) the frame number of each row (default 0..T-1), the files' names.

    Returns:
        The number of meshes written (a code that decodes no surface is logged and skipped).

    Raises:
        ValueError: ``every`` below 1 or ``frames`` of another length than ``codes``.
    """
    from tqdm.auto import tqdm

    from ..errors import NphmError

    codes = np.asarray(codes)
    ids = np.arange(len(codes)) if frames is None else np.asarray(frames, np.int64)
    if every < 1 or len(ids) != len(codes):
        raise ValueError(f"NPHM meshes: step {every}, {len(ids)} frame ids for {len(codes)} codes")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for r in tqdm(range(0, len(codes), every), desc=desc, unit="mesh", leave=False):
        try:
            v, f = decoder.mesh(codes[r], identity)
        except NphmError as exc:
            log.warning("frame %d: %s", int(ids[r]), exc)
            continue
        save_mesh(folder / frame_mesh_name(int(ids[r])), v, f)
        written += 1
    return written


def animate_file(
    checkpoint: PathLike,
    audio_path: PathLike,
    out_dir: PathLike,
    samples: int = 1,
    fps: float | None = None,
    seed: int = 0,
    video: bool = True,
    size: int = 256,
    device: str = "cpu",
    nphm_model: PathLike | None = None,
    nphm_identity: PathLike | None = None,
    mesh_every: int = 1,
    mesh_resolution: int = 48,
    mesh_margin: float = 0.08,
) -> dict[str, Any]:
    """Animate one audio file with a trained model (see the module for the outputs).

    Args:
        checkpoint: ``model.ckpt`` (or ``last.ckpt``) of :func:`talkhead.training.train_model`.
        audio_path: any audio file :func:`talkhead.audio.io.read_audio` decodes.
        out_dir: the output folder.
        samples: K samples (diffusion and MeshTalk draw different ones; the regression models
            repeat theirs).
        fps: frame rate (default: the training data's).
        seed: of the samples' noise.
        video: write the mp4s.
        size: video side (pixels).
        device: torch device.
        nphm_model, nphm_identity: models of NPHM codes: the NPHM (``resources/nphm/
            model.pt``) and a subject's ``identity.npz`` that decode the codes to meshes
            (both, or neither: codes only).
        mesh_every: NPHM models: decode every ``mesh_every``-th frame (marching cubes costs
            about a second a frame on one CPU core at 48^3).
        mesh_resolution, mesh_margin: the marching cubes' samples per axis and the box's
            margin (``fit_nphm.mesh_margin``).

    Returns:
        A summary (frames, fps, seconds, samples, files, ``mesh_frames``: frames with a mesh
        per sample), also written as ``summary.json``.

    Raises:
        AudioError: unreadable, silent or empty audio.
        ModelFileError: not a talkhead checkpoint; the NPHM or identity file unreadable; only
            one of ``nphm_model`` and ``nphm_identity``.
        ValueError: ``mesh_every`` < 1.
    """
    if bool(nphm_model) != bool(nphm_identity):
        from ..errors import ModelFileError

        raise ModelFileError(
            "the NPHM model and a subject's identity go together (--nphm-model and "
            "--nphm-identity): the NPHM that decodes the codes and the identity "
            "(results/nphm/<subject>/identity.npz) it decodes them with"
        )
    if mesh_every < 1:
        raise ValueError(f"mesh_every must be at least 1, got {mesh_every}")
    module = load_module(str(checkpoint), map_location=device)
    fps = float(fps or module.dims["fps"])
    raw, rate = read_audio(audio_path)
    clean = prepare_audio(raw, rate, AudioConfig(), str(audio_path), frame_period_s=1 / fps)
    x = model_inputs(module, clean.audio, clean.sample_rate, fps).to(device)
    T = x.shape[0]
    g = torch.Generator(device=device).manual_seed(seed)
    out = module.animate(x, samples, g)
    codes = out["codes"].float().cpu().numpy()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(
        out_dir / "codes.npz",
        codes=codes,
        fps=np.float64(fps),
        model=module.kind,
        target=module.dims["target"],
    )
    verts: np.ndarray | None = None
    faces: np.ndarray | None = None
    files: list[str] = ["codes.npz"]
    mesh_frames = 0
    nphm_codes = module.dims["target"] == "nphm_expression"
    if "vertices" in out:
        verts = out["vertices"].float().cpu().numpy()
    elif module.dims["target"] == "flame_expression" and module.dims.get("flame_model"):
        verts, faces = _flame_vertices(module, codes)
    elif nphm_codes and nphm_model and nphm_identity:
        decoder = nphm_decoder_for(module, nphm_model, mesh_resolution, mesh_margin, None, device)
        identity = load_identity(nphm_identity)
        for k in range(codes.shape[0]):
            folder = out_dir / f"sample_{k:02d}"
            mesh_frames = decode_nphm_sequence(
                decoder,
                identity,
                codes[k],
                folder / "meshes",
                mesh_every,
                desc=f"sample {k}: NPHM meshes",
            )
            files.append(f"{folder.name}/meshes")
            if video and mesh_frames:
                write_video(
                    folder / "animation.mp4",
                    render_panels([Panel(SurfaceFiles(folder / "meshes", T), None)], size=size),
                    fps,
                    clean.audio,
                    clean.sample_rate,
                )
                files.append(f"{folder.name}/animation.mp4")
    elif nphm_codes:
        log.info(
            "%s: codes only (meshes: give the NPHM model and a subject's identity)", module.kind
        )
    if verts is not None and faces is None:
        faces = FlameLayer.from_file(module.dims["flame_model"]).faces.numpy()
    if verts is not None:
        mesh_frames = T
        for k in range(verts.shape[0]):
            folder = out_dir / f"sample_{k:02d}"
            for t in range(T):
                save_mesh(folder / "meshes" / f"frame_{t:05d}.ply", verts[k, t], faces)
            files.append(f"{folder.name}/meshes")
            if video:
                write_video(
                    folder / "animation.mp4",
                    render_frames(verts[k], faces, size=size),
                    fps,
                    clean.audio,
                    clean.sample_rate,
                )
                files.append(f"{folder.name}/animation.mp4")
    summary = {
        "checkpoint": str(checkpoint),
        "audio": str(audio_path),
        "model": module.kind,
        "frames": int(T),
        "fps": fps,
        "seconds": clean.audio.size / clean.sample_rate,
        "samples": int(codes.shape[0]),
        "meshes": mesh_frames > 0,
        "mesh_frames": int(mesh_frames),
        "files": files,
        "sample_spread": float(codes.std(axis=0).mean()) if codes.shape[0] > 1 else 0.0,
    }
    save_json(out_dir / "summary.json", summary)
    return summary
