"""A trained model on a packaged dataset's test split, against the dataset's fitted FLAME (the
dataset's "truth"): the figures of ``results/models/<model>/evaluation.json``.

Each test sequence's packaged audio features (the model's training input) drive the model; K
samples per sequence (``samples``; one for the deterministic models, whose samples are all
the same, and ``samples`` in evaluation.json says how many were drawn). Predictions are
compared in FLAME vertex space, model space (no head rotation, translation or scale: motion
the audio cannot predict; world space for vertex models trained with
``models.training.vertex_space: world``), on the test subject's identity:

- vertex models (FaceFormer-style, MeshTalk) animate the training subjects' mean template;
  their displacements from it are moved onto the test subject's template;
- FLAME-expression models (Ours (Flame), Ours (w/o diffusion) on FLAME codes) are posed with
  the test subject's shape, the predicted expression and jaw, and the fit's neck and eyes
  (head and gaze motion are not the audio's);
- NPHM-code models have no fixed vertex order: their vertex metrics are null; the stated
  equivalent, ``lip_surface_error_mm`` (:mod:`talkhead.evaluation.nphm_lips`), decodes the
  first sample's codes with the NPHM and the test subject's identity by marching cubes and
  measures the true lip vertices against that surface (given ``nphm_model`` and
  ``nphm_identities``); jitter and diversity are in code space.

The same figures for the fits themselves (jitter, the audio-visual offset and correlation) are
the floor a model is compared to. When the dataset has no test subject (the one-subject
demo), the first non-empty split of validation, then training is used, and ``split`` says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio.feature_config import FeatureConfig
from ..audio.io import read_audio
from ..config import from_mapping
from ..dataset import layout
from ..dataset.splits import SPLITS, load_splits
from ..dataset.torch_dataset import TalkingFaceDataset
from ..errors import EvaluationError, ModelFileError
from ..flame.layer import FlameLayer
from ..flame.model import load_flame_model
from ..flame.params import load_flame_params
from ..io import PathLike
from ..nphm.decoder import load_identity, load_nphm_decoder
from ..training.config import INJECTION_LABELS
from ..training.data import MelWindows
from ..training.modules import FaceTalkModule, MeshTalkModule, TalkModule, load_module
from .animation import (
    diversity,
    jitter,
    lip_vertex_error_mm,
    lip_vertex_error_squared_mm2,
    upper_face_dynamics_deviation_mm,
)
from .lipsync import (
    av_sync_curve,
    inner_lip_opening,
    lip_extent_opening,
    speech_envelope,
)
from .nphm_lips import decoded_lip_surface_error_mm, rest_frame_vertices

__all__ = [
    "METRIC_KEYS",
    "UPPER_FACE_REGIONS",
    "VARIANT_LABELS",
    "evaluate_checkpoint",
    "model_label",
]

log = logging.getLogger(__name__)

#: Regions of the upper face (FDD), as named in FLAME_masks.pkl; those the masks have are used.
UPPER_FACE_REGIONS = (
    "forehead",
    "left_eye_region",
    "right_eye_region",
    "left_eyebrow",
    "right_eyebrow",
)
#: Table 3's row labels of the timestep injections.
VARIANT_LABELS = INJECTION_LABELS
#: Keys of ``metrics`` in evaluation.json, in order.
METRIC_KEYS = (
    "lve_mm",
    "lve_squared_mm2",
    "fdd_mm",
    "diversity",
    "jitter_mae",
    "jitter_rmse",
    "av_offset_frames",
    "av_correlation",
    "lse_d",
    "lse_c",
    "lip_surface_error_mm",
)


def model_label(module: TalkModule, variant: str | None = None) -> str:
    """The Table-1 label of a trained model (Table 3's for an injection variant)."""
    if variant:
        return VARIANT_LABELS.get(variant, variant)
    if module.kind == "faceformer":
        return "FaceFormer-style baseline"
    if module.kind == "meshtalk":
        return "MeshTalk"
    if module.kind == "facetalk_regression":
        return "Ours (w/o diffusion)"
    return "Ours (full)" if module.dims["target"] == "nphm_expression" else "Ours (Flame)"


def _surface_definition(space: str, every: int, resolution: int | None) -> str:
    if space == "flame_vertices":
        return "null: models of FLAME outputs have lve_mm (this is NPHM-code models' lip error)"
    if resolution is None:
        return "null: evaluated without the NPHM model and the subjects' identity codes"
    return (
        f"per decoded frame (every {every}-th frame; the first sample's codes and the test "
        f"subject's NPHM identity, marching cubes at {resolution}^3 in the NPHM stage's box) "
        "the max over the fit's lip vertices of the distance to the decoded surface, mean over "
        "frames, then sequences; mm in the head's rest frame (the FLAME fit's head pose "
        "undone, as the NPHM fit); the stated equivalent of lve_mm for outputs without a fixed "
        "vertex order (a lower bound of it); ground_truth: the NPHM fit's own codes decoded "
        "the same way (the floor)"
    )


def _definitions(space: str, diversity_space: str | None, opening: str) -> dict[str, str]:
    jit = "mm of vertex coordinates" if space == "flame_vertices" else "NPHM code units"
    vertex = (
        "null: NPHM codes have no fixed vertex order (lip_surface_error_mm is the stated "
        "equivalent)"
        if space != "flame_vertices"
        else ""
    )
    return {
        "lve_mm": vertex
        or "per frame the max over lip vertices of the L2 distance, mean over frames and "
        "samples; mm (FaceFormer, MeshTalk)",
        "lve_squared_mm2": vertex
        or "per frame the max over lip vertices of the SQUARED L2 distance, mean over frames "
        "and samples; mm^2 (CodeTalker's LVE)",
        "fdd_mm": vertex
        or "per upper-face vertex the temporal std of |vertex - template|, truth minus "
        "prediction, mean over vertices and samples; mm (CodeTalker's FDD on the norm)",
        "diversity": (
            f"mean L2 distance between two of the K samples, per frame then over pairs, mean "
            f"over the evaluated audio; {diversity_space} (FaceTalk supplement eq. 2)"
            if diversity_space
            else "null: a deterministic model (every sample the same)"
        ),
        "jitter_mae": f"mean |x[t+1] - x[t]| over frames and components; {jit} per frame "
        "(FaceTalk supplement Table 2)",
        "jitter_rmse": f"sqrt(mean (x[t+1] - x[t])^2); {jit} per frame (FaceTalk Table 2)",
        "av_offset_frames": f"lag (frames, + = mouth after audio) maximising the correlation of "
        f"mouth opening ({opening}) with the speech RMS envelope, curves averaged over "
        "sequences and samples",
        "av_correlation": "Pearson correlation of mouth opening and speech envelope at "
        "av_offset_frames; 1 = in step",
        "lse_d": "SyncNet min over offsets of the mean audio-video embedding distance "
        "(Wav2Lip's LSE-D; syncnet_python); null without models.evaluate.syncnet_weights",
        "lse_c": "SyncNet median minus min mean distance over offsets (LSE-C); null without "
        "weights",
    }


def _split_names(root: Path, split: str) -> tuple[str, list[dict[str, Any]]]:
    """The split used (``split``, else the first non-empty of val, train) and its rows."""
    from ..dataset.manifest import read_manifest

    splits = load_splits(layout.splits_path(root))
    parquet = layout.manifest_parquet_path(root)
    rows = read_manifest(parquet if parquet.is_file() else layout.manifest_csv_path(root))
    order = [split, *[s for s in ("val", "train") if s != split]]
    for s in order:
        chosen = [r for r in rows if r["subject"] in splits.get(s, [])]
        if chosen:
            if s != split:
                log.info("the %s split is empty: evaluating on the %s split", split, s)
            return s, chosen
    raise EvaluationError(f"{layout.splits_path(root)}: no split has a packaged sequence")


def _head(flame_model: PathLike, landmarks: PathLike | None, masks: PathLike | None):
    for what, path in (("head model", flame_model), ("landmarks", landmarks), ("masks", masks)):
        if path and not Path(path).is_file():
            raise ModelFileError(f"{path}: {what} file is missing")
    model = load_flame_model(flame_model, landmarks or None, masks or None)
    return FlameLayer(model), model.masks


def _pose_expression(
    layer: FlameLayer, codes: np.ndarray, params: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """(K, T, V, 3) vertices and (K, T, L, 3) landmarks of FLAME expression codes
    (expression then jaw), posed with the fit's shape, neck and eyes in model space."""
    E = codes.shape[-1] - 3
    verts, lms = [], []
    with torch.no_grad():
        for seq in codes:
            out = layer(
                shape=params["shape"],
                expression=seq[:, :E],
                jaw=seq[:, E:],
                neck=params["neck"],
                eyes=params["eyes"],
            )
            verts.append(out.vertices.float().numpy())
            lms.append(out.landmarks.float().numpy())
    return np.stack(verts), np.stack(lms)


def _truth(
    layer: FlameLayer, params: dict[str, np.ndarray], world: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(T, V, 3) vertices and (T, L, 3) landmarks of the fit, in model space (or world)."""
    pose = ("rotation", "translation", "scale") if world else ()
    with torch.no_grad():
        out = layer(
            shape=params["shape"],
            expression=params["expression"],
            jaw=params["jaw"],
            neck=params["neck"],
            eyes=params["eyes"],
            **{k: params[k] for k in pose},
        )
    return out.vertices.float().numpy(), out.landmarks.float().numpy()


def _landmarks_of(layer: FlameLayer, vertices: np.ndarray) -> np.ndarray:
    """(..., L, 3) landmarks of (..., V, 3) vertices by the layer's embedding."""
    from ..flame.layer import barycentric_landmarks

    v = torch.from_numpy(np.ascontiguousarray(vertices, np.float32))
    flat = v.reshape(-1, *v.shape[-2:])
    lm = barycentric_landmarks(flat, layer.faces, layer.lmk_faces_idx, layer.lmk_bary_coords)
    return lm.reshape(*v.shape[:-2], -1, 3).numpy()


def _render_gray(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(T, 224, 224) uint8 grey renders of a sequence (SyncNet's crops: the head framed)."""
    from ..training.render import render_frames

    return np.stack([f.mean(axis=-1).astype(np.uint8) for f in render_frames(vertices, faces, 224)])


def _finite(values: Sequence[float]) -> float | None:
    """The mean of the finite values, None when there is none (JSON has no NaN)."""
    vals = [float(v) for v in values if np.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def evaluate_checkpoint(
    checkpoint: PathLike,
    dataset_root: PathLike,
    flame_model: PathLike | None = None,
    flame_landmarks: PathLike | None = None,
    flame_masks: PathLike | None = None,
    samples: int = 4,
    max_lag: int = 6,
    syncnet_weights: PathLike | None = None,
    seed: int = 0,
    split: str = "test",
    name: str | None = None,
    variant: str | None = None,
    device: str = "cpu",
    nphm_model: PathLike | None = None,
    nphm_identities: Mapping[str, PathLike] | None = None,
    nphm_every: int = 5,
    nphm_resolution: int = 48,
    nphm_margin: float = 0.08,
) -> dict[str, Any]:
    """Evaluate a trained model on a packaged dataset (see the module).

    Args:
        checkpoint: ``model.ckpt`` of :func:`talkhead.training.train.train_model`.
        dataset_root: the packaged dataset (manifest, splits.json, data/).
        flame_model, flame_landmarks, flame_masks: the head model the fits used, its iBUG-68
            landmark embedding (mouth opening from the inner lips; without it, the lips'
            vertical extent) and region masks (``lips``, the upper face); None: the model
            and masks the checkpoint was trained with.
        samples: K samples per test audio (diversity needs K >= 2 and a stochastic model).
        max_lag: the audio-visual offsets searched, ±frames.
        syncnet_weights: a local SyncNet state dict for LSE-D / LSE-C (None or "": null).
        seed: of the samples' noise.
        split: the split to evaluate (``test``; see the module for an empty one).
        name: the model's name in evaluation.json (default: the checkpoint's kind).
        variant: the timestep injection of a Table-3 variant run, or None.
        device: torch device.
        nphm_model: models of NPHM codes: the NPHM (``resources/nphm/model.pt``) their lip
            surface error decodes the codes with; None: that figure is null.
        nphm_identities: ``{subject: identity.npz}`` (``results/nphm/<subject>/``), the
            evaluated subjects' at least.
        nphm_every, nphm_resolution: frame step and marching-cubes samples per axis of the
            decoded meshes; nphm_margin: the box around the template (``fit_nphm.mesh_margin``).

    Returns:
        The evaluation.json object: ``model``, ``label``, ``space``, ``variant``, ``split``,
        ``samples``, ``sequences``, ``metrics`` (:data:`METRIC_KEYS`), ``definitions``,
        ``ground_truth``.

    Raises:
        ModelFileError: the checkpoint, head model files, SyncNet weights, NPHM model or an
            evaluated subject's identity are missing or not what they should be;
            DatasetError / EvaluationError: the dataset lacks them.
    """
    if split not in SPLITS:
        raise EvaluationError(f"unknown split {split!r}: one of {', '.join(SPLITS)}")
    module = load_module(checkpoint, map_location=device)  # refuses a missing or foreign file
    root = Path(dataset_root)
    flame_model = flame_model or module.dims.get("flame_model") or None
    flame_masks = flame_masks or module.dims.get("flame_masks") or None
    if not flame_model:
        raise ModelFileError(f"{checkpoint}: names no head model; give the FLAME model file")
    if not flame_landmarks and flame_model:
        # The head model's own embedding beside it (the head model rule writes both), so that
        # the mouth opening is the inner-lip landmarks' as in the workflow.
        beside = Path(flame_model).with_name("landmark_embedding.npz")
        flame_landmarks = beside if beside.is_file() else None
    layer, masks = _head(flame_model, flame_landmarks, flame_masks)
    if "lips" not in masks:
        raise ModelFileError(f"{flame_masks}: region masks lack 'lips' (lip vertex error)")
    lips = np.asarray(masks["lips"], np.int64)
    upper = np.concatenate([masks[r] for r in UPPER_FACE_REGIONS if r in masks]).astype(np.int64)
    if upper.size == 0:
        raise ModelFileError(
            f"{flame_masks}: region masks lack the upper face ({UPPER_FACE_REGIONS})"
        )
    has_landmarks = layer.num_landmarks >= 68
    opening_name = (
        "mean distance of the iBUG inner-lip landmarks 61-67, 62-66, 63-65"
        if has_landmarks
        else "vertical extent of the lip vertices (the head model has no landmarks)"
    )

    def opening(verts: np.ndarray, lms: np.ndarray | None = None) -> np.ndarray:
        if has_landmarks:
            return inner_lip_opening(lms if lms is not None else _landmarks_of(layer, verts))
        return lip_extent_opening(verts, lips)

    used_split, rows = _split_names(root, split)
    target = module.dims["target"]
    space = "nphm_expression" if target == "nphm_expression" else "flame_vertices"
    features = module.dims.get("features", "logmel")
    ds = TalkingFaceDataset(
        root,
        used_split,
        target="flame_expression" if target == "flame_vertices" else target,
        features=features if features in ("logmel", "wav2vec2") else "logmel",
        window_frames=1,
    )
    mel = None
    if isinstance(module, MeshTalkModule):
        feats = from_mapping(FeatureConfig, module.dims.get("audio_features"), "audio_features")
        mel = MelWindows(ds, module.net.config, feats)
    stochastic = (isinstance(module, FaceTalkModule) and module.diffusion_on) or isinstance(
        module, MeshTalkModule
    )
    decoder = None
    if space == "nphm_expression" and nphm_model:
        template = layer.v_template.double().cpu().numpy()
        decoder = load_nphm_decoder(nphm_model, template, nphm_resolution, nphm_margin, device)
    syncnet = None
    if syncnet_weights:
        from .lipsync import load_syncnet

        syncnet = load_syncnet(syncnet_weights, device)

    acc: dict[str, list[float]] = {k: [] for k in METRIC_KEYS}
    gt_acc: dict[str, list[float]] = {"jitter_mae": [], "jitter_rmse": [], "lip_surface": []}
    curves, gt_curves, weights = [], [], []
    lse: list[dict[str, float]] = []
    sequences = []
    # the deterministic models give the same sample every time: one is drawn
    K = max(1, int(samples)) if stochastic else 1
    # vertex models trained on world-space vertices are compared in world space
    world = target == "flame_vertices" and module.dims.get("vertex_space") == "world"
    for i, row in enumerate(rows):
        name_i = row["name"]
        sequences.append(f"{row['subject']}/{row['sequence']}")
        folder = layout.sequence_dir(root, name_i)
        params = load_flame_params(layout.flame_params_path(folder))
        frames = np.asarray(params["frames"])
        fps = float(row["fps"])
        seq = ds.sequence(name_i)
        x = mel.sequence_windows(name_i) if mel is not None else seq["features"]
        g = torch.Generator(device=device).manual_seed(seed + i)
        out = module.animate(torch.from_numpy(np.asarray(x, np.float32)).to(device), K, g)
        codes = out["codes"].float().cpu().numpy()
        true_v, true_lm = _truth(layer, params, world)
        template = np.asarray(seq["template"], np.float64)
        audio, rate = read_audio(layout.wav_path(folder))
        env = speech_envelope(audio.mean(axis=1), rate, fps, frames)
        true_open = opening(true_v, true_lm if has_landmarks else None)
        gt_curves.append(av_sync_curve(true_open, env, max_lag)[1])
        weights.append(len(frames))
        if space == "flame_vertices":
            gj = jitter(true_v * 1000.0, frames)
        else:
            gj = jitter(np.asarray(seq["targets"]), frames)
        gt_acc["jitter_mae"].append(gj["mae"])
        gt_acc["jitter_rmse"].append(gj["rmse"])

        pred_v = pred_lm = None
        if "vertices" in out:
            mean_tmpl = module.template.float().cpu().numpy()
            pred_v = out["vertices"].float().cpu().numpy() - mean_tmpl + template
        elif target == "flame_expression":
            pred_v, pred_lm = _pose_expression(layer, codes, params)
        if pred_v is not None:
            if pred_v.shape[1:] != true_v.shape:
                raise EvaluationError(
                    f"{checkpoint}: predicts {pred_v.shape[1:]} vertices, the fit of {name_i} "
                    f"has {true_v.shape}: is {flame_model} the head model it was trained with?"
                )
            for k in range(K):
                acc["lve_mm"].append(lip_vertex_error_mm(pred_v[k], true_v, lips))
                acc["lve_squared_mm2"].append(lip_vertex_error_squared_mm2(pred_v[k], true_v, lips))
                acc["fdd_mm"].append(
                    upper_face_dynamics_deviation_mm(pred_v[k], true_v, template, upper)
                )
                j = jitter(pred_v[k] * 1000.0, frames)
                acc["jitter_mae"].append(j["mae"])
                acc["jitter_rmse"].append(j["rmse"])
                lm = pred_lm[k] if pred_lm is not None else None
                curves.append(av_sync_curve(opening(pred_v[k], lm), env, max_lag)[1])
            if syncnet is not None:
                from .lipsync import syncnet_lse

                grey = _render_gray(pred_v[0], layer.faces.numpy())
                lse.append(syncnet_lse(syncnet, grey, audio.mean(axis=1), rate, fps))
        else:
            for k in range(K):
                j = jitter(codes[k], frames)
                acc["jitter_mae"].append(j["mae"])
                acc["jitter_rmse"].append(j["rmse"])
        if decoder is not None:
            subject = str(row["subject"])
            if subject not in (nphm_identities or {}):
                raise ModelFileError(
                    f"no NPHM identity of subject {subject} (results/nphm/{subject}/"
                    "identity.npz) for the lip surface error"
                )
            identity = load_identity(nphm_identities[subject])
            true_lips = rest_frame_vertices(layer, params, lips)
            acc["lip_surface_error_mm"].append(
                decoded_lip_surface_error_mm(decoder, identity, codes[0], true_lips, nphm_every)
            )
            gt_acc["lip_surface"].append(
                decoded_lip_surface_error_mm(
                    decoder, identity, np.asarray(seq["targets"]), true_lips, nphm_every
                )
            )
        if stochastic and K >= 2:
            # MeshTalk's codes are categorical: its samples are compared as vertices (mm)
            if isinstance(module, MeshTalkModule) and pred_v is not None:
                acc["diversity"].append(diversity(pred_v.reshape(K, pred_v.shape[1], -1) * 1000.0))
            else:
                acc["diversity"].append(diversity(codes))

    def mean(key: str) -> float | None:
        return _finite(acc[key])

    def best(
        curve_list: Sequence[np.ndarray], w: Sequence[float]
    ) -> tuple[int | None, float | None]:
        if not curve_list:
            return None, None
        c = np.stack(curve_list)
        ok = np.isfinite(c)
        ww = np.asarray(w, np.float64)[:, None] * ok
        if not ok.any():
            return None, None
        avg = np.where(
            ww.sum(0) > 0,
            np.nansum(np.where(ok, c, 0) * ww, 0) / np.maximum(ww.sum(0), 1e-12),
            np.nan,
        )
        if np.all(np.isnan(avg)):
            return None, None
        j = int(np.nanargmax(avg))
        return j - max_lag, float(avg[j])

    offset, corr = best(curves, [w for w in weights for _ in range(K)] if curves else [])
    gt_offset, gt_corr = best(gt_curves, weights)
    div_space = None
    if stochastic and K >= 2:
        div_space = (
            "mm of vertex coordinates (MeshTalk has no continuous expression code)"
            if isinstance(module, MeshTalkModule)
            else f"{target} code units"
        )
    metrics = {k: mean(k) for k in METRIC_KEYS}
    if isinstance(module, MeshTalkModule):
        # Not comparable with the other models' code-space diversity (Table 1's column):
        # MeshTalk's spread is given apart, in millimetres of vertex coordinates.
        metrics["diversity_vertices_mm"] = metrics["diversity"]
        metrics["diversity"] = None
    metrics["av_offset_frames"], metrics["av_correlation"] = offset, corr
    metrics["lse_d"] = float(np.mean([r["lse_d"] for r in lse])) if lse else None
    metrics["lse_c"] = float(np.mean([r["lse_c"] for r in lse])) if lse else None
    return {
        "model": name or module.kind,
        "label": model_label(module, variant),
        "space": space,
        "variant": variant,
        "split": used_split,
        "samples": K,
        "sequences": sequences,
        "metrics": metrics,
        "definitions": _definitions(space, div_space, opening_name)
        | {
            "lip_surface_error_mm": _surface_definition(
                space, nphm_every, nphm_resolution if decoder is not None else None
            )
        }
        | (
            {
                "diversity": "null: MeshTalk has no continuous expression code; its samples' "
                "spread is diversity_vertices_mm",
                "diversity_vertices_mm": "mean L2 distance between two of the K samples' "
                "vertices, per frame then over pairs; mm (FaceTalk eq. 2 on vertices)",
            }
            if isinstance(module, MeshTalkModule)
            else {}
        ),
        "ground_truth": {
            "jitter_mae": _finite(gt_acc["jitter_mae"]),
            "jitter_rmse": _finite(gt_acc["jitter_rmse"]),
            "av_offset_frames": gt_offset,
            "av_correlation": gt_corr,
            "lip_surface_error_mm": _finite(gt_acc["lip_surface"]),
        },
    }
