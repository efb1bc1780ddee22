"""The synthetic studio: records a speaking synthetic head with a ring of cameras.

:func:`render_sequence` writes one sequence of a capture in the Nersemble v1 layout of
``docs/formats.md`` (images, alpha maps, facer segmentation, noisy 2D landmarks, a quiet
microphone recording, empty-set background plates) and, beside it, the ground truth that only
evaluation reads (true FLAME parameters, vertices, 3D landmarks, the dry speech and the
microphone's noise-free speech, phonemes, true depth and normals).

World frame = the head model's frame (metres, y up, the face looks towards +z); the rig
looks at ``target`` = the origin, where the face's landmark centroid sits at rest. Every
random draw is seeded from the config's ``seed`` and the subject / sequence names through
:func:`stable_seed` (sha256, not Python's salted ``hash``), so the same config gives the
same files.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..capture import layout
from ..capture.calibration import read_camera_params, write_camera_params
from ..config import from_mapping
from ..errors import CaptureError, ConfigError
from ..evaluation.ground_truth import GroundTruthWriter, ground_truth_dir
from ..geometry.cameras import Camera, look_at, ring_rig
from ..geometry.rotations import axis_angle_to_matrix
from ..io import PathLike, atomic_path, save_image, save_json, save_wav
from . import texture as tx
from .config import StudioConfig
from .render import (
    Backdrop,
    RenderScene,
    Surface,
    box_mesh,
    prerender_backdrop,
    project_landmarks,
    render_plate,
    render_view,
    uv_sphere,
    vertex_labels_from_masks,
    visible_points,
)

#: File names of a head model directory (as written by ``talkhead.synth.head``).
MODEL_FILE = "generic_model.pkl"
LANDMARKS_FILE = "landmark_embedding.npz"
MASKS_FILE = "FLAME_masks.pkl"


def stable_seed(*parts: object) -> int:
    """A 31-bit seed from names and numbers, stable across runs and machines."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "little") & 0x7FFFFFFF


# --------------------------------------------------------------------------------------
# Rig
# --------------------------------------------------------------------------------------


def rig_cameras(
    cfg: StudioConfig, subject: str, target: Sequence[float] = (0, 0, 0)
) -> list[Camera]:
    """The subject's camera ring: :func:`talkhead.cameras.ring_rig` plus seeded jitter.

    Each camera is moved by ~``rig_jitter_m`` and turned by ~``rig_jitter_deg`` (so the
    optical axes do not all meet in one point, as in a real rig).
    """
    cams = ring_rig(
        cfg.n_cameras,
        cfg.width,
        cfg.height,
        cfg.fov_deg,
        cfg.rig_radius,
        cfg.yaw_span_deg,
        cfg.pitch_deg,
        target,
    )
    rng = np.random.default_rng(stable_seed(cfg.seed, subject, "rig"))
    out = []
    for cam in cams:
        eye = cam.center + rng.normal(0.0, cfg.rig_jitter_m / math.sqrt(3), 3)
        T = look_at(eye, target)
        dR = axis_angle_to_matrix(np.deg2rad(rng.normal(0.0, cfg.rig_jitter_deg / math.sqrt(3), 3)))
        R = dR @ T[:3, :3]
        w2c = np.eye(4)
        w2c[:3, :3] = R
        w2c[:3, 3] = -R @ eye
        out.append(Camera(cam.serial, cam.K, w2c, cam.width, cam.height))
    return out


def write_rig(subject_dir: PathLike, cfg: StudioConfig, subject: str) -> list[Camera]:
    """Write ``<subject_dir>/camera_params.json`` for :func:`rig_cameras`; return the cameras.

    The file is left untouched (same bytes, same mtime) when it already holds exactly these
    cameras, so that every sequence of a subject can call this, concurrently too.
    """
    cams = rig_cameras(cfg, subject)
    _ensure_rig_file(layout.calibration_path(subject_dir), cams)
    return cams


# --------------------------------------------------------------------------------------
# Set
# --------------------------------------------------------------------------------------


def superellipsoid(
    radii: Sequence[float],
    center: Sequence[float],
    exponent: float = 3.0,
    n_lat: int = 40,
    n_lon: int = 80,
) -> tuple[np.ndarray, np.ndarray]:
    """A closed superellipsoid |x/a|^p + |y/b|^p + |z/c|^p = 1 (boxy for p > 2).

    Returns:
        vertices (V, 3), faces (F, 3).
    """
    v, f = uv_sphere(1.0, n_lat, n_lon)
    r = np.asarray(radii, dtype=np.float64)
    k = (np.abs(v / r) ** exponent).sum(1) ** (-1.0 / exponent)
    return v * k[:, None] + np.asarray(center, dtype=np.float64), f


def studio_set(
    rest_vertices: np.ndarray,
    masks: Mapping[str, np.ndarray],
    seed: int,
    torso: bool = True,
    backdrop_distance: float = 1.0,
) -> list[Surface]:
    """The static set around the head: a room with a textured backdrop and shoulders.

    Args:
        rest_vertices: (V, 3) head vertices in the world at rest (to place the shoulders
            under the neck).
        masks: the head model's region masks (``boundary`` or ``neck`` locate the neck base).
        seed: subject seed (wall and shirt colours).
        torso: add shoulders (a superellipsoid the neck goes into).
        backdrop_distance: distance of the back wall behind the head centre (metres).

    Returns:
        surfaces: walls, floor, and optionally the torso.
    """
    v = np.asarray(rest_vertices, dtype=np.float64)
    rng = np.random.default_rng([seed, 5])
    surfaces = []
    x0, x1 = -2.5, 2.5
    y0, y1 = -1.25, 1.6
    z0, z1 = -backdrop_distance, 3.0
    rv, rf, ruv = box_mesh(
        (x1 - x0, y1 - y0, z1 - z0), ((x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2)
    )
    tile = 512 * 0.002
    wall_img = tx.backdrop_image(seed, 512, 0.002)
    floor_img = tx.backdrop_image(seed + 1, 512, 0.002, color=(0.33, 0.30, 0.28))
    floor = np.zeros(len(rf), dtype=bool)
    floor[4:6] = True  # box_mesh: sides ordered -x, +x, -y, +y, -z, +z; two faces each
    surfaces.append(
        Surface(rv, rf[~floor], tx.ImageTexture(wall_img, ruv / tile, rf[~floor]), smooth=False)
    )
    surfaces.append(
        Surface(rv, rf[floor], tx.ImageTexture(floor_img, ruv / tile, rf[floor]), smooth=False)
    )
    if torso:
        ring = masks.get("boundary")
        if ring is None or len(ring) == 0:
            ring = np.flatnonzero(v[:, 1] <= np.quantile(v[:, 1], 0.02))
        base = v[np.asarray(ring)].mean(0)
        radii = np.array([0.21, 0.24, 0.115]) * rng.uniform(0.93, 1.07)
        center = base + np.array([0.0, 0.05 - radii[1], -0.015])
        tv, tf = superellipsoid(radii, center, 2.2, 48, 96)
        shirt = rng.choice(
            np.array(
                [
                    [0.16, 0.22, 0.38],
                    [0.55, 0.12, 0.12],
                    [0.25, 0.25, 0.27],
                    [0.75, 0.72, 0.66],
                    [0.18, 0.35, 0.22],
                    [0.42, 0.35, 0.55],
                ]
            )
        )

        def fabric(p: np.ndarray, fid: np.ndarray, bary: np.ndarray) -> np.ndarray:
            return tx.fabric_albedo(p, seed, shirt)

        grid = tx.bake_texels(tv, tf, fabric, tx.texel_resolution(tv, tf, 0.002))
        surfaces.append(Surface(tv, tf, grid))
    return surfaces


# --------------------------------------------------------------------------------------
# Sequence
# --------------------------------------------------------------------------------------


def camera_gains(cfg: StudioConfig, subject: str, n_cameras: int) -> np.ndarray:
    """(n_cameras, 3) per-camera RGB gains of a subject's rig (seeded by its name): one
    ~``camera_gain_std`` scalar per camera times a quarter as much per channel."""
    rng = np.random.default_rng(stable_seed(cfg.seed, subject, "gain"))
    return (
        1.0
        + rng.normal(0.0, cfg.camera_gain_std, (n_cameras, 1))
        + rng.normal(0.0, cfg.camera_gain_std / 4, (n_cameras, 3))
    )


def _subject_set(
    cfg: StudioConfig, subject: str, masks: Mapping[str, np.ndarray], rest_world: np.ndarray
) -> list[Surface]:
    """The static set of a subject's recordings (:func:`studio_set`, seeded by its name)."""
    return studio_set(
        rest_world, masks, stable_seed(cfg.seed, subject, "set"), cfg.torso, cfg.backdrop_distance
    )


def _write_plates(
    seq_dir: Path,
    cams: Sequence[Camera],
    backdrops: Sequence[Backdrop],
    gains: np.ndarray,
    cfg: StudioConfig,
    subject: str,
    sequence: str,
) -> list[Path]:
    """Write each camera's plate (:func:`~talkhead.synth.render.render_plate`) to
    ``<seq_dir>/background/cam_<serial>.png``; its sensor noise comes from its own stream, so the
    frames' draws are the same with or without plates."""
    plate_seed = stable_seed(cfg.seed, subject, sequence, "plates")
    paths = []
    for c, cam in enumerate(cams):
        plate = render_plate(
            cam,
            backdrops[c],
            gain=gains[c],
            noise_sigma=cfg.sensor_noise,
            rng=np.random.default_rng([plate_seed, c]),
        )
        paths.append(layout.background_path(seq_dir, cam.serial))
        save_image(paths[-1], plate)
    return paths


def render_plates(
    head_model_dir: PathLike,
    capture_root: PathLike,
    subject: str,
    sequence: str,
    cfg: StudioConfig | Mapping[str, Any] | None = None,
    landmarks_path: PathLike | None = None,
    masks_path: PathLike | None = None,
) -> list[Path]:
    """Record the empty-set plates of one sequence, as a real studio does before a take: the
    subject's static set (walls, floor, shoulders) without the head, with the cameras' gains and
    sensor noise, to ``<sequence>/background/cam_<serial>.png``
    (:func:`~talkhead.capture.layout.background_path`).

    :func:`render_sequence` writes the same files; this redoes them for a sequence recorded
    without them. The rig is the subject's (:func:`rig_cameras`; ``camera_params.json`` is
    written when missing).

    Args:
        head_model_dir, landmarks_path, masks_path: the head model, as for
            :func:`render_sequence` (its rest shape places the shoulders).
        capture_root, subject, sequence: where the sequence is.
        cfg: :class:`StudioConfig` or a mapping of its fields.

    Returns:
        the plate files, in camera order.
    """
    import torch

    from ..flame import FlameLayer, load_flame_model

    cfg = cfg if isinstance(cfg, StudioConfig) else from_mapping(StudioConfig, cfg, "synthetic")
    model_path, landmarks_path, masks_path = head_model_paths(
        head_model_dir, landmarks_path, masks_path
    )
    model = load_flame_model(
        model_path, landmarks_path, masks_path if masks_path.is_file() else None
    )
    cams = write_rig(layout.subject_dir(capture_root, subject), cfg, subject)
    shape = identity_shape(cfg, subject, min(cfg.n_shape, model.num_shape))
    with torch.no_grad():
        rest = FlameLayer(model, dtype=torch.float64)(shape=torch.as_tensor(shape[None]))
    offset = -rest.landmarks[0].mean(0).numpy()  # as in render_sequence
    rest_world = rest.vertices[0].numpy() + offset
    scene = RenderScene(_subject_set(cfg, subject, model.masks, rest_world))
    backdrops = [prerender_backdrop(scene, cam, supersample=cfg.supersample) for cam in cams]
    return _write_plates(
        layout.sequence_dir(capture_root, subject, sequence),
        cams,
        backdrops,
        camera_gains(cfg, subject, len(cams)),
        cfg,
        subject,
        sequence,
    )


def write_head_model_for(cfg: StudioConfig | Mapping[str, Any], model_path: PathLike) -> Path:
    """Build the synthetic head for ``cfg`` (seed, n_shape, n_expression) and write its files.

    Args:
        model_path: the ``generic_model.pkl`` to write; the landmark embedding and the region
            masks go beside it (see :func:`talkhead.synth.head.write_head_model`).

    Returns:
        the folder holding the three files.
    """
    from .head import build_head_model, write_head_model

    cfg = cfg if isinstance(cfg, StudioConfig) else from_mapping(StudioConfig, cfg, "synthetic")
    model_path = Path(model_path)
    if model_path.name != MODEL_FILE:
        raise ConfigError(f"{model_path}: the synthetic head model file must be named {MODEL_FILE}")
    write_head_model(
        model_path.parent,
        build_head_model(seed=cfg.seed, n_shape=cfg.n_shape, n_expression=cfg.n_expression),
    )
    return model_path.parent


def head_model_paths(
    head_model: PathLike,
    landmarks_path: PathLike | None = None,
    masks_path: PathLike | None = None,
) -> tuple[Path, Path, Path]:
    """(model, landmark embedding, masks) paths from a model folder or a model file.

    Files not given explicitly are looked for beside the model under the synthetic head's
    names (:data:`MODEL_FILE`, :data:`LANDMARKS_FILE`, :data:`MASKS_FILE`).
    """
    p = Path(head_model)
    model, folder = (p / MODEL_FILE, p) if p.is_dir() else (p, p.parent)
    lm = Path(landmarks_path) if landmarks_path else folder / LANDMARKS_FILE
    masks = Path(masks_path) if masks_path else folder / MASKS_FILE
    return model, lm, masks


def _voice(subject_seed: int) -> dict[str, float]:
    rng = np.random.default_rng([subject_seed, 11])
    if rng.random() < 0.5:
        return {
            "f0_hz": float(rng.uniform(95, 140)),
            "formant_scale": float(rng.uniform(0.96, 1.04)),
        }
    return {"f0_hz": float(rng.uniform(180, 235)), "formant_scale": float(rng.uniform(1.1, 1.18))}


def _microphone_take(cfg: StudioConfig, subject: str, sequence: str, clean: np.ndarray) -> dict:
    """:func:`~talkhead.synth.speech.microphone_parts` of ``clean`` with the sequence's seed."""
    from .speech import microphone_parts

    mic_rng = np.random.default_rng(stable_seed(cfg.seed, subject, sequence, "microphone"))
    return microphone_parts(clean, cfg.sample_rate, mic_rng, cfg.mic_level_db, cfg.mic_snr_db)


def sequence_audio_parts(cfg: StudioConfig, subject: str, sequence: str) -> dict[str, np.ndarray]:
    """The audio of a sequence, exactly as :func:`render_sequence` writes it, without rendering
    a frame: every entry (N,) float64 at ``cfg.sample_rate``.

    Returns:
        ``recorded``: the microphone track (clipped to [-1, 1]); ``clean``: the dry speech
        before the microphone; ``mic_speech``: the microphone's noise-free speech (room reverb,
        low-pass and level of the recording, no noise); ``noise``: what the microphone adds
        (``recorded == mic_speech + noise`` wherever the track is not clipped).
    """
    from .actor import speaking_actor

    options = {**_voice(stable_seed(cfg.seed, subject)), **dict(cfg.actor)}
    take = speaking_actor(
        stable_seed(cfg.seed, subject, sequence, "actor"),
        cfg.duration_s,
        cfg.fps,
        cfg.sample_rate,
        cfg.n_expression,
        **options,
    )
    mic = _microphone_take(cfg, subject, sequence, take.audio)
    return {
        "recorded": np.clip(mic["mixed"], -1, 1),
        "clean": np.asarray(take.audio, dtype=np.float64),
        "mic_speech": mic["speech"],
        "noise": mic["noise"],
    }


def sequence_audio(cfg: StudioConfig, subject: str, sequence: str) -> tuple[np.ndarray, np.ndarray]:
    """(recorded, clean): the microphone track (clipped to [-1, 1]) and the dry speech (N,) of a
    sequence (:func:`sequence_audio_parts`)."""
    parts = sequence_audio_parts(cfg, subject, sequence)
    return parts["recorded"], parts["clean"]


def identity_shape(cfg: StudioConfig, subject: str, n_shape: int) -> np.ndarray:
    """(n_shape,) float32 identity coefficients of a subject (seeded by its name)."""
    rng = np.random.default_rng(stable_seed(cfg.seed, subject, "identity"))
    return (rng.normal(0.0, cfg.shape_std, n_shape)).astype(np.float32)


def _ensure_rig_file(path: Path, cams: Sequence[Camera]) -> None:
    """Write ``camera_params.json`` unless it already holds exactly these cameras."""
    if path.is_file():
        try:
            old = read_camera_params(path)
        except CaptureError:
            old = {}
        if list(old) == [c.serial for c in cams] and all(
            np.array_equal(old[c.serial].world_2_cam, c.world_2_cam)
            and np.array_equal(old[c.serial].K, c.K)
            and (old[c.serial].width, old[c.serial].height) == (c.width, c.height)
            for c in cams
        ):
            return
    write_camera_params(path, cams)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array)


def render_sequence(
    head_model_dir: PathLike,
    capture_root: PathLike,
    gt_root: PathLike,
    subject: str,
    sequence: str,
    cfg: StudioConfig | Mapping[str, Any] | None = None,
    progress: bool = True,
    threads: int = 1,
    landmarks_path: PathLike | None = None,
    masks_path: PathLike | None = None,
) -> dict[str, Any]:
    """Record one sequence of the synthetic studio.

    Writes, under ``capture_root/<subject>/``: ``camera_params.json`` (if missing) and
    ``sequences/<sequence>/`` with ``sequence.json``, ``timesteps/frame_<t:05d>/{images,
    alpha_map,facer_segmentation_masks}/...png``, ``annotations/landmarks2D/cam_<serial>.npy``
    (T, 68, 3), ``audio/audio_recording.wav`` and the empty-set plates
    ``background/cam_<serial>.png`` (:func:`render_plates`); under ``gt_root/<subject>/<sequence>/``
    the ground truth (true FLAME parameters, meshes, landmarks, the dry speech and the
    microphone's noise-free speech, phonemes and per-frame depth and normals) through
    :class:`~talkhead.evaluation.ground_truth.GroundTruthWriter`.

    Args:
        head_model_dir: folder with ``generic_model.pkl``, ``landmark_embedding.npz`` and
            ``FLAME_masks.pkl`` (FLAME format; the synthetic head or a real FLAME), or the
            model file itself (see :func:`head_model_paths`).
        capture_root, gt_root: roots of the capture and of the ground truth.
        subject, sequence: names (they seed identity, voice, motion and noise).
        cfg: :class:`StudioConfig` or a mapping of its fields (or the workflow's section).
        progress: show a tqdm bar over frames.
        threads: cameras rendered in parallel (the output does not depend on it).
        landmarks_path, masks_path: landmark embedding and region masks when they are not
            beside the model under the synthetic head's names.

    Returns:
        summary: n_frames, n_cameras, serials, image size, paths, seconds spent.
    """
    import torch
    from tqdm.auto import tqdm

    from ..flame import FlameLayer, load_flame_model
    from .actor import speaking_actor

    t_start = time.perf_counter()
    cfg = cfg if isinstance(cfg, StudioConfig) else from_mapping(StudioConfig, cfg, "synthetic")
    model_path, landmarks_path, masks_path = head_model_paths(
        head_model_dir, landmarks_path, masks_path
    )
    if not landmarks_path.is_file():
        raise ConfigError(
            f"{landmarks_path}: landmark embedding of the head model is missing "
            f"(the studio needs it for the 2D landmarks)"
        )
    model = load_flame_model(
        model_path, landmarks_path, masks_path if masks_path.is_file() else None
    )
    subject_dir = layout.subject_dir(capture_root, subject)
    seq_dir = layout.sequence_dir(capture_root, subject, sequence)
    gt_dir = ground_truth_dir(gt_root, subject, sequence)
    truth = GroundTruthWriter(gt_dir)

    # --- cameras (deterministic per subject: every sequence of a subject computes the same
    # rig; the file is (re)written only when it is missing or differs, e.g. after a config
    # change, so concurrent sequences of one subject never disagree)
    cams = write_rig(subject_dir, cfg, subject)
    serials = [c.serial for c in cams]

    # --- who says what, and how the face moves
    subj_seed = stable_seed(cfg.seed, subject)
    n_shape = min(cfg.n_shape, model.num_shape)
    n_expr = min(cfg.n_expression, model.num_expression)
    shape = identity_shape(cfg, subject, n_shape)
    options = {**_voice(subj_seed), **dict(cfg.actor)}
    take = speaking_actor(
        stable_seed(cfg.seed, subject, sequence, "actor"),
        cfg.duration_s,
        cfg.fps,
        cfg.sample_rate,
        n_expr,
        **options,
    )
    p = take.params
    T = take.n_frames

    layer = FlameLayer(model, dtype=torch.float64)
    with torch.no_grad():
        rest = layer(shape=torch.as_tensor(shape[None]))
        offset = -rest.landmarks[0].mean(0).numpy()  # landmark centroid -> rig target
        translation = p["translation"].astype(np.float64) + offset
        out = layer(
            shape=torch.as_tensor(shape[None]),
            expression=torch.as_tensor(p["expression"]),
            rotation=torch.as_tensor(p["rotation"]),
            neck=torch.as_tensor(p["neck"]),
            jaw=torch.as_tensor(p["jaw"]),
            eyes=torch.as_tensor(p["eyes"]),
            translation=torch.as_tensor(translation),
            scale=torch.as_tensor(p["scale"]),
        )
        vertices = out.vertices.numpy()
        landmarks = out.landmarks.numpy()
        rest_world = rest.vertices[0].numpy() + offset

    # --- appearance
    faces = np.asarray(model.faces, dtype=np.int64)
    texture = tx.bake_head_texture(
        model.v_template, faces, model.masks, stable_seed(cfg.seed, subject, "texture")
    )
    labels = vertex_labels_from_masks(model.masks, model.num_vertices)
    static = _subject_set(cfg, subject, model.masks, rest_world)
    gains = camera_gains(cfg, subject, len(cams))
    sensor_seed = stable_seed(cfg.seed, subject, sequence, "sensor")

    # --- frames: the static set is shaded once per camera, the head every frame
    static_scene = RenderScene(static)
    backdrops = [prerender_backdrop(static_scene, cam, supersample=cfg.supersample) for cam in cams]
    _write_plates(seq_dir, cams, backdrops, gains, cfg, subject, sequence)
    visible = np.zeros((len(cams), T, landmarks.shape[1]), dtype=bool)
    for c, cam in enumerate(cams):
        for t in range(T):
            visible[c, t] = visible_points(static_scene, cam, landmarks[t])
    coverage = np.zeros((T, len(cams)))
    threads = max(1, int(threads))
    pool = ThreadPoolExecutor(threads) if threads > 1 else None

    def record(t: int, c: int, scene: RenderScene) -> dict[str, np.ndarray]:
        cam = cams[c]
        view = render_view(
            scene,
            cam,
            supersample=cfg.supersample,
            gain=gains[c],
            noise_sigma=cfg.sensor_noise,
            rng=np.random.default_rng([sensor_seed, t, c]),
            backdrop=backdrops[c],
        )
        save_image(layout.image_path(seq_dir, t, cam.serial), view["rgb"])
        save_image(layout.alpha_path(seq_dir, t, cam.serial), view["alpha"])
        save_image(layout.segmentation_path(seq_dir, t, cam.serial), view["labels"])
        view["visible"] = visible_points(scene, cam, landmarks[t])
        return view

    try:
        for t in tqdm(
            range(T), desc=f"render {subject}/{sequence}", disable=not progress, unit="frame"
        ):
            scene = RenderScene(
                [Surface(vertices[t], faces, texture, labels=labels)], nthreads=1 if pool else 0
            )
            args = [(t, c, scene) for c in range(len(cams))]
            views = (
                list(pool.map(lambda a: record(*a), args)) if pool else [record(*a) for a in args]
            )
            for c, view in enumerate(views):
                visible[c, t] &= view["visible"]
                coverage[t, c] = float((view["alpha"] > 127).mean())
            truth.depth_frame(
                t,
                np.stack([v["depth"] for v in views]),
                np.stack([v["normal"] for v in views]),
                serials,
            )
    finally:
        if pool:
            pool.shutdown()

    # --- 2D landmarks
    lm_rng = np.random.default_rng(stable_seed(cfg.seed, subject, sequence, "landmarks"))
    lm2d = project_landmarks(
        landmarks,
        cams,
        rng=lm_rng,
        noise_px=cfg.landmark_noise_px,
        outlier_prob=cfg.landmark_outlier_prob,
        outlier_px=cfg.landmark_outlier_px,
        occluded_guess_prob=cfg.landmark_occluded_guess_prob,
        visible=visible,
    )
    for c, cam in enumerate(cams):
        _save_npy(layout.landmarks_path(seq_dir, cam.serial), lm2d[c])

    # --- audio
    mic = _microphone_take(cfg, subject, sequence, take.audio)
    save_wav(layout.audio_path(seq_dir), np.clip(mic["mixed"], -1, 1), cfg.sample_rate)
    save_json(layout.sequence_file(seq_dir), {"fps": float(cfg.fps), "n_frames": T})

    # --- ground truth
    truth.clean_audio(take.audio, cfg.sample_rate)
    truth.mic_speech(mic["speech"], cfg.sample_rate)
    truth.phonemes(take.phonemes_json())
    truth.meshes(vertices, faces, landmarks)
    truth.flame_params(
        {
            "shape": shape,
            "expression": p["expression"],
            "rotation": p["rotation"],
            "translation": translation.astype(np.float32),
            "jaw": p["jaw"],
            "neck": p["neck"],
            "eyes": p["eyes"],
            "scale": p["scale"],
            "frames": p["frames"],
            "fps": np.float32(cfg.fps),
        },
    )
    return {
        "subject": subject,
        "sequence": sequence,
        "n_frames": T,
        "n_cameras": len(cams),
        "serials": serials,
        "image_size": [cfg.width, cfg.height],
        "capture_dir": str(seq_dir),
        "gt_dir": str(gt_dir),
        "mean_head_coverage": float(coverage.mean()) if coverage.size else 0.0,
        "landmarks_visible": float((lm2d[..., 2] > 0).mean()),
        "seconds": time.perf_counter() - t_start,
    }
