"""The synthetic studio: rig, config and a tiny recorded sequence with its ground truth."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from talkhead.capture.calibration import read_camera_params
from talkhead.config import from_mapping, to_mapping
from talkhead.errors import ConfigError
from talkhead.io import load_npz, read_image, read_wav
from talkhead.synth.config import StudioConfig
from talkhead.synth.studio import (
    render_plates,
    render_sequence,
    rig_cameras,
    stable_seed,
    write_head_model_for,
    write_rig,
)

SUBJ, SEQ = "syn000", "SEN-00"  # the shared tiny recording (conftest.py)


def test_config_from_the_workflow_section():
    cfg = from_mapping(StudioConfig, {"n_subjects": 2, "n_sequences": 3, "seed": 7}, "synthetic")
    assert cfg.seed == 7 and cfg == StudioConfig(n_subjects=2, n_sequences=3, seed=7)
    with pytest.raises(ConfigError, match="synthetic.colour: unknown setting"):
        from_mapping(StudioConfig, {"n_subjects": 2, "colour": "red"}, "synthetic")


def test_config_from_mapping_validates_and_round_trips():
    cfg = from_mapping(
        StudioConfig,
        {"n_cameras": 4, "width": 128, "pitch_deg": [0, 5], "sensor_noise": 2},
        "synthetic",
    )
    assert cfg.n_cameras == 4 and cfg.pitch_deg == (0.0, 5.0) and cfg.sensor_noise == 2.0
    assert isinstance(cfg.sensor_noise, float)
    assert from_mapping(StudioConfig, to_mapping(cfg), "synthetic") == cfg
    assert cfg.n_frames == round(cfg.duration_s * cfg.fps)
    with pytest.raises(ConfigError, match="did you mean n_cameras"):
        from_mapping(StudioConfig, {"n_camera": 4}, "synthetic")
    with pytest.raises(ConfigError, match="synthetic.n_cameras: expected an integer, got 2.5"):
        from_mapping(StudioConfig, {"n_cameras": 2.5}, "synthetic")
    with pytest.raises(ConfigError, match="synthetic.n_cameras: must be >= 2, got 0"):
        from_mapping(StudioConfig, {"n_cameras": 0}, "synthetic")
    with pytest.raises(ConfigError, match="synthetic.torso: expected true or false, got 'yes'"):
        from_mapping(StudioConfig, {"torso": "yes"}, "synthetic")
    with pytest.raises(ConfigError, match=r"synthetic.pitch_deg\[1\]: must be <= 60, got 75"):
        from_mapping(StudioConfig, {"pitch_deg": [0, 75]}, "synthetic")


def test_stable_seed_is_stable_and_name_sensitive():
    assert stable_seed(0, "subj", "seq") == stable_seed(0, "subj", "seq")
    # not Python's salted hash(): another interpreter with another hash seed agrees
    code = "from talkhead.synth.studio import stable_seed; print(stable_seed(0, 'subj', 'seq'))"
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout
        assert int(out) == stable_seed(0, "subj", "seq")
    assert len({stable_seed(0, "subj", s) for s in ("a", "b", "c", "ab")}) == 4
    assert stable_seed(1, "subj") != stable_seed(0, "subj")


def test_rig_is_seeded_per_subject_and_round_trips(tmp_path):
    cfg = StudioConfig(n_cameras=5, rig_jitter_deg=0.5, rig_jitter_m=0.01)
    cams = write_rig(tmp_path / "s1", cfg, "s1")
    back = read_camera_params(tmp_path / "s1" / "camera_params.json")
    assert list(back) == [c.serial for c in cams]
    for c in cams:
        b = back[c.serial]
        assert np.allclose(b.world_2_cam, c.world_2_cam) and np.allclose(b.K, c.K)
        assert (b.width, b.height) == (cfg.width, cfg.height)
        # every camera sees the head centre near its image centre, about rig_radius away
        uv, z = c.project(np.zeros(3))
        assert abs(z - cfg.rig_radius) < 0.05
        assert np.abs(uv - [(cfg.width - 1) / 2, (cfg.height - 1) / 2]).max() < 0.05 * cfg.width
    # rewritten only when it would change
    path = tmp_path / "s1" / "camera_params.json"
    stamp = path.stat().st_mtime_ns
    write_rig(tmp_path / "s1", cfg, "s1")
    assert path.stat().st_mtime_ns == stamp
    changed = write_rig(tmp_path / "s1", StudioConfig(n_cameras=3), "s1")
    assert list(read_camera_params(path)) == [c.serial for c in changed]
    again = rig_cameras(cfg, "s1")
    other = rig_cameras(cfg, "s2")
    assert all(
        np.array_equal(a.world_2_cam, c.world_2_cam) for a, c in zip(again, cams, strict=True)
    )
    assert not all(
        np.allclose(a.world_2_cam, c.world_2_cam) for a, c in zip(other, cams, strict=True)
    )


@pytest.fixture(scope="module")
def head_model_dir(tiny_studio):
    return tiny_studio.head_dir


def test_write_head_model_for_builds_the_configured_model(tmp_path):
    from talkhead.flame import load_flame_model

    cfg = StudioConfig(n_shape=8, n_expression=9)
    folder = write_head_model_for(cfg, tmp_path / "generic_model.pkl")
    m = load_flame_model(
        folder / "generic_model.pkl", folder / "landmark_embedding.npz", folder / "FLAME_masks.pkl"
    )
    assert (m.num_shape, m.num_expression, m.num_landmarks) == (8, 9, 68)
    assert {"face", "lips", "left_eyeball", "scalp"} <= set(m.masks)
    with pytest.raises(ConfigError, match="generic_model.pkl"):
        write_head_model_for(cfg, tmp_path / "model.pkl")


@pytest.fixture(scope="module")
def recorded(tiny_studio):
    """The shared tiny recording (tests/conftest.py): root, config, render summary."""
    return tiny_studio.root, tiny_studio.config, tiny_studio.summary


def test_render_sequence_writes_the_nersemble_layout(recorded):
    root, cfg, summary = recorded
    T, C, W, H = cfg.n_frames, cfg.n_cameras, cfg.width, cfg.height
    assert T == 3
    assert summary["n_frames"] == T and summary["n_cameras"] == C
    subj = root / "capture" / SUBJ
    cams = read_camera_params(subj / "camera_params.json")
    serials = list(cams)
    assert serials == summary["serials"]
    seq = subj / "sequences" / SEQ
    assert json.loads((seq / "sequence.json").read_text())["fps"] == cfg.fps
    for t in range(T):
        fd = seq / "timesteps" / f"frame_{t:05d}"
        for s in serials:
            img = read_image(fd / "images" / f"cam_{s}.png")
            alpha = read_image(fd / "alpha_map" / f"cam_{s}.png", unchanged=True)
            seg = read_image(
                fd / "facer_segmentation_masks" / f"segmentation_cam_{s}.png", unchanged=True
            )
            assert img.shape == (H, W, 3) and img.dtype == np.uint8
            assert alpha.shape == (H, W) and seg.shape == (H, W)
            assert 0.05 < (alpha > 127).mean() < 0.9  # a head, not the whole image
            assert set(np.unique(seg)) <= set(range(11))
            assert {1, 6}.issubset(set(np.unique(seg)))  # skin and nose seen
            assert (seg[alpha == 0] == 0).all()
            assert img[alpha == 0].std() > 2  # a textured background, not a flat colour
    for s in serials:
        lm = np.load(seq / "annotations" / "landmarks2D" / f"cam_{s}.npy")
        assert lm.shape == (T, 68, 3) and lm.dtype == np.float32
        assert ((lm[..., 2] >= 0) & (lm[..., 2] <= 1)).all()
    audio, sr = read_wav(seq / "audio" / "audio_recording.wav")
    assert sr == cfg.sample_rate and len(audio) == round(cfg.duration_s * sr)
    assert 0 < np.abs(audio).max() < 0.5  # a quiet microphone

    gt = root / "ground_truth" / SUBJ / SEQ
    flame = load_npz(gt / "flame.npz")
    assert flame["shape"].shape == (8,) and flame["expression"].shape == (T, 8)
    for key, w in (
        ("rotation", 3),
        ("translation", 3),
        ("jaw", 3),
        ("neck", 3),
        ("eyes", 6),
        ("scale", 1),
    ):
        assert flame[key].shape == (T, w)
    assert float(flame["fps"]) == cfg.fps
    verts = np.load(gt / "vertices.npy")
    assert verts.dtype == np.float32 and verts.shape[0] == T and verts.shape[2] == 3
    assert np.load(gt / "landmarks3d.npy").shape == (T, 68, 3)
    clean, sr = read_wav(gt / "audio_clean.wav")
    assert len(clean) == len(audio) and np.abs(clean).max() > 5 * np.abs(audio).max()
    phones = json.loads((gt / "phonemes.json").read_text())
    assert phones and {"phoneme", "start", "end"} <= set(phones[0])
    d = load_npz(gt / "depth" / "frame_00000.npz")
    assert d["depth"].shape == (C, H, W) and d["depth"].dtype == np.float32
    assert d["normal"].shape == (C, H, W, 3) and list(d["serials"]) == serials


def test_the_reader_finds_the_studio_tree_through_the_same_layout(recorded):
    """Layout round trip: every file the studio writes is where talkhead.capture.layout says,
    and the reader opens the tree through the same functions (from the job-input paths too)."""
    from talkhead.capture import layout
    from talkhead.capture.readers import (
        read_alpha,
        read_audio,
        read_images,
        read_landmarks,
        read_segmentation,
    )
    from talkhead.capture.sequence import open_sequence, open_sequence_dir
    from talkhead.capture.validate import validate_capture

    root, cfg, summary = recorded
    capture_root = root / "capture"
    subj = layout.subject_dir(capture_root, SUBJ)
    seq_dir = layout.sequence_dir(capture_root, SUBJ, SEQ)
    assert summary["capture_dir"] == str(seq_dir)
    serials, T = summary["serials"], summary["n_frames"]
    expected = {
        layout.calibration_path(subj),
        layout.sequence_file(seq_dir),
        layout.audio_path(seq_dir),
    }
    for s in serials:
        expected.add(layout.landmarks_path(seq_dir, s))
        expected.add(layout.background_path(seq_dir, s))
        for t in range(T):
            expected |= {
                layout.image_path(seq_dir, t, s),
                layout.alpha_path(seq_dir, t, s),
                layout.segmentation_path(seq_dir, t, s),
            }
    assert {p for p in capture_root.rglob("*") if p.is_file()} == expected

    assert validate_capture(capture_root) == []
    seq = open_sequence_dir(seq_dir, layout.calibration_path(subj), validate=True)
    ref = open_sequence(capture_root, SUBJ, SEQ)
    for s_ in (seq, ref):
        assert (s_.root, s_.subject, s_.sequence) == (capture_root, SUBJ, SEQ)
        assert s_.serials == serials and s_.frame_ids == tuple(range(T)) and s_.fps == cfg.fps
        assert s_.image_size == (cfg.width, cfg.height)
        assert s_.has_alpha and s_.has_segmentation and s_.has_landmarks and s_.has_background
        assert not s_.has_precomputed_depth
        assert s_.audio_path == layout.audio_path(seq_dir)
        assert s_.calibration_path == layout.calibration_path(subj)
    for t in range(T):
        images, alpha = read_images(seq, t), read_alpha(seq, t)
        labels = read_segmentation(seq, t)
        for c, s in enumerate(serials):
            np.testing.assert_array_equal(images[c], read_image(layout.image_path(seq_dir, t, s)))
            a = read_image(layout.alpha_path(seq_dir, t, s), unchanged=True)
            np.testing.assert_allclose(alpha[c], a / 255.0, atol=1e-6)
            seg = read_image(layout.segmentation_path(seq_dir, t, s), unchanged=True)
            np.testing.assert_array_equal(labels[c], seg)
    lm = read_landmarks(seq)
    for c, s in enumerate(serials):
        np.testing.assert_array_equal(lm[c], np.load(layout.landmarks_path(seq_dir, s)))
    audio, sr = read_audio(seq)
    assert sr == cfg.sample_rate and audio.shape == read_wav(layout.audio_path(seq_dir))[0].shape


def test_ground_truth_is_consistent(recorded, head_model_dir):
    import open3d as o3d
    import torch

    from talkhead.flame import FlameLayer, load_flame_model
    from talkhead.geometry.cameras import pixel_grid, unproject

    root, cfg, _ = recorded
    gt = root / "ground_truth" / SUBJ / SEQ
    seq = root / "capture" / SUBJ / "sequences" / SEQ
    cams = read_camera_params(root / "capture" / SUBJ / "camera_params.json")
    verts = np.load(gt / "vertices.npy")
    lm3d = np.load(gt / "landmarks3d.npy")
    model = load_flame_model(
        head_model_dir / "generic_model.pkl", head_model_dir / "landmark_embedding.npz"
    )
    # the true parameters reproduce the true vertices
    p = load_npz(gt / "flame.npz")
    layer = FlameLayer(model, dtype=torch.float64)
    with torch.no_grad():
        out = layer(
            **{
                k: torch.as_tensor(p[k])
                for k in (
                    "shape",
                    "expression",
                    "rotation",
                    "neck",
                    "jaw",
                    "eyes",
                    "translation",
                    "scale",
                )
            }
        )
    assert np.abs(out.vertices.numpy() - verts).max() < 1e-5
    assert np.abs(out.landmarks.numpy() - lm3d).max() < 1e-5
    # the true depth back-projects onto the true mesh; normals are unit and face the camera
    for t in range(verts.shape[0]):
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(verts[t].astype(np.float32), model.faces.astype(np.uint32))
        d = load_npz(gt / "depth" / f"frame_{t:05d}.npz")
        for c, s in enumerate(d["serials"]):
            cam = cams[str(s)]
            m = d["depth"][c] > 0
            assert m.sum() > 100
            P = unproject(
                pixel_grid(cam.width, cam.height)[m], d["depth"][c][m], cam.K, cam.world_2_cam
            )
            dist = scene.compute_distance(P.astype(np.float32)).numpy()
            assert dist.max() < 1e-4
            n = d["normal"][c][m]
            n = n.astype(np.float32)  # float16 on disk
            assert np.allclose(np.linalg.norm(n, axis=1), 1, atol=2e-3)
            pc = P @ cam.R.T + cam.t
            assert ((n * pc).sum(1) < 0).mean() > 0.97
            alpha = read_image(
                seq / "timesteps" / f"frame_{t:05d}" / "alpha_map" / f"cam_{s}.png", unchanged=True
            )
            assert (alpha[m] > 0).all()
    # visible 2D landmarks lie near the projections of the true 3D landmarks
    for s, cam in cams.items():
        lm = np.load(seq / "annotations" / "landmarks2D" / f"cam_{s}.npy")
        uv, _ = cam.project(lm3d)
        ok = lm[..., 2] >= 0.5
        assert ok.mean() > 0.5
        err = np.linalg.norm(lm[..., :2] - uv, axis=-1)[ok]
        assert np.median(err) < 3 * cfg.landmark_noise_px


def test_plates_are_the_empty_set_seen_by_each_camera(recorded, head_model_dir, tmp_path):
    """Plates match every frame away from the head up to independent sensor noise, differ on the
    head, and the standalone render_plates writes the same files."""
    from scipy import ndimage

    from talkhead.capture import layout

    root, cfg, summary = recorded
    seq = root / "capture" / SUBJ / "sequences" / SEQ
    sigma = cfg.sensor_noise
    for s in summary["serials"]:
        plate = read_image(layout.background_path(seq, s)).astype(np.float64)
        assert plate.shape == (cfg.height, cfg.width, 3)
        for t in range(cfg.n_frames):
            img = read_image(layout.image_path(seq, t, s)).astype(np.float64)
            alpha = read_image(layout.alpha_path(seq, t, s), unchanged=True)
            away = ~ndimage.binary_dilation(alpha > 0, iterations=2)
            res = (img - plate)[away]
            assert abs(res.mean()) < 0.3 * sigma  # same gains, same set
            # two independent noise draws: residual std sigma * sqrt(2) (rounding adds a little)
            assert 1.1 * sigma < res.std() < 1.8 * sigma
            assert np.abs(img - plate)[alpha == 255].mean() > 8 * sigma  # no head on the plate
    render_plates(head_model_dir, tmp_path / "capture", SUBJ, SEQ, cfg)
    for s in summary["serials"]:
        again = layout.background_path(layout.sequence_dir(tmp_path / "capture", SUBJ, SEQ), s)
        assert again.read_bytes() == layout.background_path(seq, s).read_bytes()


def test_recording_is_deterministic(recorded, head_model_dir, tmp_path):
    root, cfg, _ = recorded  # the same config again, into another folder
    render_sequence(
        head_model_dir,
        tmp_path / "capture",
        tmp_path / "gt",
        SUBJ,
        SEQ,
        cfg,
        progress=False,
        threads=2,
    )  # threads do not change the result
    a = root / "capture" / SUBJ
    b = tmp_path / "capture" / SUBJ
    assert (a / "camera_params.json").read_bytes() == (b / "camera_params.json").read_bytes()
    for rel in [f"sequences/{SEQ}/timesteps/frame_{t:05d}/images" for t in range(cfg.n_frames)] + [
        f"sequences/{SEQ}/background"
    ]:
        for f in sorted((a / rel).iterdir()):
            assert np.array_equal(read_image(f), read_image(b / rel / f.name))
    for name in ("vertices.npy", "landmarks3d.npy"):
        assert np.array_equal(
            np.load(root / "ground_truth" / SUBJ / SEQ / name),
            np.load(tmp_path / "gt" / SUBJ / SEQ / name),
        )
    rel = f"sequences/{SEQ}/annotations/landmarks2D"
    for f in sorted((a / rel).iterdir()):
        assert np.array_equal(np.load(f), np.load(b / rel / f.name))
