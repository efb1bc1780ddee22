"""Capture reader and validator: a tiny valid tree reads back what was written, and every
defect, alone or together, is reported with its kind and the file or camera at fault."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from talkhead.capture import layout
from talkhead.capture import readers as capture
from talkhead.capture.calibration import write_camera_params
from talkhead.capture.masks import (
    ALPHA_THRESHOLD,
    FACE_LABELS,
    alpha_mask,
    face_mask,
    facial_masks,
    head_masks,
)
from talkhead.capture.sequence import CaptureSequence, open_sequence, open_sequence_dir
from talkhead.capture.validate import (
    errors_of,
    format_problems,
    validate_capture,
    validate_main,
    validate_sequence_dir,
)
from talkhead.errors import CaptureError
from talkhead.geometry.cameras import ring_rig
from talkhead.io import save_wav

W, H = 32, 24
N_CAMS, N_FRAMES = 3, 4
SUBJECT, SEQ = "017", "SEN-01"
SR = 16000


@dataclass
class Tree:
    root: Path
    serials: list[str]
    images: np.ndarray  # (T, C, H, W, 3) uint8 RGB
    alpha: np.ndarray  # (T, C, H, W) uint8
    seg: np.ndarray  # (T, C, H, W) uint8
    landmarks: np.ndarray  # (C, T, 68, 3) float32
    audio: np.ndarray  # (N,) float32

    @property
    def seq_dir(self) -> Path:
        return self.root / SUBJECT / "sequences" / SEQ

    @property
    def calib(self) -> Path:
        return self.root / SUBJECT / "camera_params.json"

    def frame(self, t: int) -> Path:
        return self.seq_dir / "timesteps" / f"frame_{t:05d}"

    def image(self, t: int, c: int) -> Path:
        return self.frame(t) / "images" / f"cam_{self.serials[c]}.png"


def make_tree(root: Path, ext: str = ".png", with_alpha: bool = True) -> Tree:
    rng = np.random.default_rng(0)
    cams = ring_rig(N_CAMS, W, H, fov_x_deg=30.0)
    serials = [c.serial for c in cams]
    write_camera_params(root / SUBJECT / "camera_params.json", cams)
    seq_dir = root / SUBJECT / "sequences" / SEQ
    seq_dir.mkdir(parents=True)
    (seq_dir / "sequence.json").write_text(json.dumps({"fps": 25.0}))
    images = rng.integers(0, 256, (N_FRAMES, N_CAMS, H, W, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (N_FRAMES, N_CAMS, H, W), dtype=np.uint8)
    seg = rng.integers(0, 11, (N_FRAMES, N_CAMS, H, W), dtype=np.uint8)
    for t in range(N_FRAMES):
        fdir = seq_dir / "timesteps" / f"frame_{t:05d}"
        for sub in ("images", "alpha_map", "facer_segmentation_masks"):
            (fdir / sub).mkdir(parents=True)
        for c, s in enumerate(serials):
            assert cv2.imwrite(str(fdir / "images" / f"cam_{s}{ext}"), images[t, c, ..., ::-1])
            if with_alpha:
                cv2.imwrite(str(fdir / "alpha_map" / f"cam_{s}.png"), alpha[t, c])
            cv2.imwrite(
                str(fdir / "facer_segmentation_masks" / f"segmentation_cam_{s}.png"), seg[t, c]
            )
    lmk = np.zeros((N_CAMS, N_FRAMES, 68, 3), np.float32)
    lmk[..., 0] = rng.uniform(0, W - 1, (N_CAMS, N_FRAMES, 68))
    lmk[..., 1] = rng.uniform(0, H - 1, (N_CAMS, N_FRAMES, 68))
    lmk[..., 2] = rng.uniform(0, 1, (N_CAMS, N_FRAMES, 68))
    lmk[:, :, 5, 2] = 0.0  # an undetected landmark
    (seq_dir / "annotations" / "landmarks2D").mkdir(parents=True)
    for c, s in enumerate(serials):
        np.save(seq_dir / "annotations" / "landmarks2D" / f"cam_{s}.npy", lmk[c])
    tt = np.arange(int(0.3 * SR)) / SR
    audio = (0.3 * np.sin(2 * np.pi * 220 * tt) * np.hanning(tt.size)).astype(np.float32)
    save_wav(seq_dir / "audio" / "audio_recording.wav", audio, SR)
    return Tree(root, serials, images, alpha, seg, lmk, audio)


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return make_tree(tmp_path / "capture")


def kinds(problems) -> list[str]:
    return sorted(p.kind for p in problems)


def edit_calibration(tree: Tree, fn) -> None:
    data = json.loads(tree.calib.read_text())
    fn(data)
    tree.calib.write_text(json.dumps(data))


# ---------------------------------------------------------------------------------------------
# A valid capture


def test_valid_capture_reports_nothing_and_reads_back(tree: Tree, caplog) -> None:
    assert validate_capture(tree.root) == []
    seq = open_sequence(tree.root, SUBJECT, SEQ, fps=30.0)
    assert seq.serials == sorted(tree.serials) == tree.serials
    assert seq.frame_ids == tuple(range(N_FRAMES)) and seq.n_frames == N_FRAMES
    assert seq.fps == 25.0  # sequence.json wins over the default
    assert seq.image_size == (W, H)
    assert seq.has_alpha and seq.has_segmentation and seq.has_landmarks
    assert not seq.has_precomputed_depth
    np.testing.assert_allclose(
        seq.cameras[tree.serials[1]].center, ring_rig(N_CAMS, W, H, 30.0)[1].center, atol=1e-9
    )
    for t in range(N_FRAMES):
        np.testing.assert_array_equal(capture.read_images(seq, t), tree.images[t])
        alpha = capture.read_alpha(seq, t)
        assert alpha.dtype == np.float32 and alpha.shape == (N_CAMS, H, W)
        np.testing.assert_allclose(alpha, tree.alpha[t] / 255.0, atol=1e-6)
        np.testing.assert_array_equal(capture.read_segmentation(seq, t), tree.seg[t])
    sub = capture.read_images(seq, 2, serials=[tree.serials[2], tree.serials[0]])
    np.testing.assert_array_equal(sub, tree.images[2][[2, 0]])
    lmk = capture.read_landmarks(seq)
    assert lmk.shape == (N_CAMS, N_FRAMES, 68, 3) and lmk.dtype == np.float32
    np.testing.assert_array_equal(lmk, tree.landmarks)
    audio, sr = capture.read_audio(seq)
    assert sr == SR and audio.dtype == np.float32 and audio.shape == tree.audio.shape
    np.testing.assert_allclose(audio, tree.audio, atol=1.0 / 32768 + 1e-7)  # 16-bit PCM
    info = capture.summarize(seq)
    assert info["n_cameras"] == N_CAMS and info["n_frames"] == N_FRAMES
    assert info["cameras"] == tree.serials
    assert info["image_width"] == W and info["image_height"] == H
    assert info["audio_sample_rate"] == SR
    assert info["duration_s"] == pytest.approx(N_FRAMES / 25.0)
    assert info["audio_duration_s"] == pytest.approx(tree.audio.size / SR)
    json.dumps(info)  # capture.json must be serialisable
    assert seq.image_path(3, tree.serials[1]) == tree.image(3, 1)
    assert seq.segmentation_path(0, "x").name == "segmentation_cam_x.png"
    assert seq.audio_path == tree.seq_dir / "audio" / "audio_recording.wav"


def test_validate_main_exit_codes(tree: Tree, capsys) -> None:
    assert validate_main(tree.root) == 0
    assert "capture OK" in capsys.readouterr().out
    tree.image(1, 0).unlink()
    assert validate_main(tree.root, SUBJECT, SEQ) == 1
    out = capsys.readouterr().out
    assert "missing_camera" in out and tree.serials[0] in out


def test_jpeg_capture_and_truncated_jpeg(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "c", ext=".jpg")
    assert validate_capture(tree.root) == []
    seq = open_sequence(tree.root, SUBJECT, SEQ)
    assert seq.image_ext == ".jpg" and seq.image_size == (W, H)
    img = capture.read_images(seq, 0)
    assert img.shape == (N_CAMS, H, W, 3)
    path = seq.image_path(2, tree.serials[1])
    path.write_bytes(path.read_bytes()[:-40])
    for decode in (True, False):
        (p,) = validate_capture(tree.root, decode=decode)
        assert p.kind == "unreadable_image" and p.path == path


def test_alpha_fallback_is_all_ones_with_a_warning(tmp_path: Path, caplog) -> None:
    tree = make_tree(tmp_path / "c", with_alpha=False)
    for t in range(N_FRAMES):
        shutil.rmtree(tree.frame(t) / "alpha_map")
    assert validate_capture(tree.root) == []
    seq = open_sequence(tree.root, SUBJECT, SEQ)
    with caplog.at_level(logging.WARNING, logger="talkhead"):
        alpha = capture.read_alpha(seq, 1)
    assert alpha.shape == (N_CAMS, H, W) and np.all(alpha == 1.0)
    assert "no alpha maps" in caplog.text


def test_readers_name_the_file_on_bad_data(tree: Tree) -> None:
    seq = open_sequence(tree.root, SUBJECT, SEQ)
    bad = tree.image(1, 2)
    bad.write_bytes(bad.read_bytes()[:50])
    with pytest.raises(CaptureError, match=str(bad.name)):
        capture.read_images(seq, 1)
    bad.unlink()
    with pytest.raises(CaptureError, match="missing"):
        capture.read_images(seq, 1)
    lmk = seq.landmarks_path(tree.serials[0])
    np.save(lmk, np.zeros((N_FRAMES, 478, 3), np.float32))
    with pytest.raises(CaptureError, match=r"cam_.*\.npy.*MediaPipe's 478-point.*\(T, 68, 3\)"):
        capture.read_landmarks(seq)
    np.save(lmk, np.zeros((N_FRAMES + 1, 68, 3), np.float32))
    with pytest.raises(CaptureError, match=r"cam_.*\.npy.*have 5 frames, the sequence has 4"):
        capture.read_landmarks(seq)
    seq.audio_path.write_bytes(b"RIFF0000WAVEnot really")
    with pytest.raises(CaptureError, match="audio_recording.wav"):
        capture.read_audio(seq)
    with pytest.raises(CaptureError, match="no camera"):
        capture.read_images(seq, 0, serials=["nope"])


# ---------------------------------------------------------------------------------------------
# One defect at a time: (kind, what the message or path must name)


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _corrupt_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def d_missing_image(t: Tree):
    t.image(2, 1).unlink()
    return "missing_camera", [t.serials[1], "frame_00002", "1 of 4"]


def d_missing_camera(t: Tree):
    for f in range(N_FRAMES):
        t.image(f, 0).unlink()
    return "missing_camera", [t.serials[0], "no image in any"]


def d_fewer_frames(t: Tree):
    t.image(3, 2).unlink()
    return "frame_count_mismatch", [
        f"camera {t.serials[2]} has 3 frames, the other 2 cameras have 4",
        "frame_00002",
    ]


def d_truncated_png(t: Tree):
    _truncate(t.image(1, 0))
    return "unreadable_image", [str(t.image(1, 0)), "truncated"]


def d_corrupt_png_data(t: Tree):
    _corrupt_middle(t.image(0, 2))
    return "unreadable_image", [str(t.image(0, 2))]


def d_not_an_image(t: Tree):
    t.image(3, 1).write_text("hello")
    return "unreadable_image", [str(t.image(3, 1))]


def d_rotation_not_orthonormal(t: Tree):
    s = t.serials[1]

    def fn(data):
        T = np.array(data["world_2_cam"][s])
        T[:3, :3] *= 1.1
        data["world_2_cam"][s] = T.tolist()

    edit_calibration(t, fn)
    return "malformed_calibration", [s, "rotation", "camera_params.json"]


def d_extrinsics_wrong_shape(t: Tree):
    s = t.serials[0]
    edit_calibration(t, lambda d: d["world_2_cam"].update({s: d["world_2_cam"][s][:3]}))
    return "malformed_calibration", [s, "shape (3, 4)"]


def d_calibration_invalid_json(t: Tree):
    t.calib.write_text(t.calib.read_text()[:-20])
    return "malformed_calibration", ["not valid JSON", "camera_params.json"]


def d_missing_intrinsics(t: Tree):
    s = t.serials[2]

    def fn(data):
        K = data["intrinsics"]
        data["intrinsics"] = {x: K for x in t.serials if x != s}

    edit_calibration(t, fn)
    return "malformed_calibration", [f"camera {s} has no intrinsics"]


def d_missing_calibration(t: Tree):
    t.calib.unlink()
    return "missing_calibration", ["camera_params.json"]


def d_calibration_size_mismatch(t: Tree):
    edit_calibration(t, lambda d: d.update(image_size={s: [2 * W, 2 * H] for s in t.serials}))
    return "image_size_mismatch", [f"{W}x{H}", f"{2 * W}x{2 * H}", "rescaled by 1/2"]


def d_silent_audio(t: Tree):
    save_wav(t.seq_dir / "audio" / "audio_recording.wav", np.zeros(8000, np.float32), SR)
    return "silent_audio", ["all zero", "audio_recording.wav"]


def d_unreadable_audio(t: Tree):
    (t.seq_dir / "audio" / "audio_recording.wav").write_bytes(b"\x00" * 100)
    return "unreadable_audio", ["audio_recording.wav"]


def d_landmarks_shape(t: Tree):
    s = t.serials[1]
    np.save(
        t.seq_dir / "annotations/landmarks2D" / f"cam_{s}.npy",
        np.zeros((N_FRAMES, 68, 4), np.float32),
    )
    return "landmarks_shape", [s, "(4, 68, 4)", "expected (T, 68, 3)", f"cam_{s}.npy"]


def d_landmarks_frame_count(t: Tree):
    s = t.serials[0]
    np.save(t.seq_dir / "annotations/landmarks2D" / f"cam_{s}.npy", t.landmarks[0, :2])
    return "landmarks_shape", [s, "have 2 frames, the sequence has 4"]


def d_landmarks_missing(t: Tree):
    s = t.serials[2]
    (t.seq_dir / "annotations/landmarks2D" / f"cam_{s}.npy").unlink()
    return "missing_landmarks", [s]


def d_landmark_confidence(t: Tree):
    s = t.serials[0]
    bad = t.landmarks[0].copy()
    bad[0, 0, 2] = 3.0
    np.save(t.seq_dir / "annotations/landmarks2D" / f"cam_{s}.npy", bad)
    return "malformed_landmarks", [s, "[0, 1]"]


def d_mask_wrong_size(t: Tree):
    s = t.serials[1]
    path = t.frame(2) / "alpha_map" / f"cam_{s}.png"
    cv2.imwrite(str(path), np.zeros((H // 2, W // 2), np.uint8))
    return "mask_size_mismatch", [str(path), f"{W // 2}x{H // 2}", f"{W}x{H}", s]


def d_missing_mask(t: Tree):
    s = t.serials[0]
    (t.frame(1) / "facer_segmentation_masks" / f"segmentation_cam_{s}.png").unlink()
    return "missing_mask", ["segmentation", s, "frame_00001"]


def d_unknown_camera(t: Tree):
    for f in range(N_FRAMES):
        shutil.copy(t.image(f, 0), t.frame(f) / "images" / "cam_999.png")
    return "unknown_camera", ["camera 999", "4 frames", "camera_params.json"]


def d_image_size_mismatch(t: Tree):
    for f in range(N_FRAMES):  # every image of camera 2, and its maps, at another size
        for sub, name in (
            ("images", "cam_"),
            ("alpha_map", "cam_"),
            ("facer_segmentation_masks", "segmentation_cam_"),
        ):
            p = t.frame(f) / sub / f"{name}{t.serials[2]}.png"
            cv2.imwrite(str(p), cv2.resize(cv2.imread(str(p), cv2.IMREAD_UNCHANGED), (W, H + 2)))
    return "image_size_mismatch", [t.serials[2], f"{W}x{H + 2}", f"{W}x{H}"]


def d_no_frames(t: Tree):
    shutil.rmtree(t.seq_dir / "timesteps")
    return "no_frames", ["timesteps"]


def d_bad_fps(t: Tree):
    (t.seq_dir / "sequence.json").write_text(json.dumps({"fps": -3}))
    return "malformed_metadata", ["sequence.json", "-3"]


DEFECTS = [v for k, v in dict(globals()).items() if k.startswith("d_")]


@pytest.mark.parametrize("defect", DEFECTS, ids=lambda f: f.__name__[2:])
def test_each_defect_is_reported_by_kind_naming_the_culprit(tree: Tree, defect) -> None:
    kind, names = defect(tree)
    problems = validate_capture(tree.root)
    errors = errors_of(problems)
    assert errors, f"{defect.__name__} was not reported"
    matching = [p for p in errors if p.kind == kind]
    assert matching, f"expected {kind}, got {kinds(problems)}: {format_problems(problems)}"
    text = " | ".join(str(p) for p in matching)
    for name in names:
        assert name in text, f"{name!r} not in {text!r}"
    # A single defect does not cascade into unrelated reports.
    assert len(errors) <= 2, format_problems(problems)
    with pytest.raises(CaptureError) as exc:
        open_sequence(tree.root, SUBJECT, SEQ)
    assert kind in str(exc.value)
    # The job-input entry points see the same problems and raise the same report.
    assert validate_sequence_dir(tree.seq_dir) == validate_capture(tree.root, SUBJECT, SEQ)
    assert validate_sequence_dir(tree.seq_dir, tree.calib) == validate_capture(
        tree.root, SUBJECT, SEQ
    )
    with pytest.raises(CaptureError) as exc_dir:
        open_sequence_dir(tree.seq_dir, tree.calib, validate=True)
    assert str(exc_dir.value) == str(exc.value)


def test_all_defects_are_reported_together(tree: Tree) -> None:
    expected = []
    for defect in (
        d_missing_image,
        d_truncated_png,
        d_rotation_not_orthonormal,
        d_silent_audio,
        d_landmarks_shape,
        d_mask_wrong_size,
        d_unknown_camera,
    ):
        expected.append(defect(tree)[0])
    problems = validate_capture(tree.root, SUBJECT)
    assert set(expected) <= set(kinds(problems)), format_problems(problems)
    with pytest.raises(CaptureError) as exc:
        open_sequence(tree.root, SUBJECT, SEQ)
    for kind in expected:
        assert kind in str(exc.value)
    report = format_problems(problems, root=tree.root)
    assert report.startswith(f"{len(errors_of(problems))} errors")
    assert str(tree.root) not in report  # paths shown relative to the root


def test_defects_in_several_sequences_and_subjects(tmp_path: Path) -> None:
    a = make_tree(tmp_path / "c")
    shutil.copytree(a.seq_dir, a.seq_dir.parent / "SEN-02")
    shutil.copytree(a.root / SUBJECT, a.root / "018")
    (a.seq_dir.parent / "SEN-02" / "audio" / "audio_recording.wav").unlink()
    (a.root / "018" / "camera_params.json").write_text("{")
    problems = validate_capture(a.root)
    assert kinds(problems) == ["malformed_calibration", "missing_audio"]
    assert "SEN-02" in str([p for p in problems if p.kind == "missing_audio"][0].path)
    assert "018" in str([p for p in problems if p.kind == "malformed_calibration"][0].path)
    assert validate_capture(a.root, SUBJECT, SEQ) == []
    assert kinds(validate_capture(a.root, "nobody")) == ["missing_subject"]
    assert kinds(validate_capture(a.root, SUBJECT, "SEN-99")) == ["missing_sequence"]
    assert kinds(validate_capture(tmp_path / "empty_root_missing")) == ["no_subjects"]


def test_header_only_mode_catches_truncation_but_not_corrupt_data(tree: Tree) -> None:
    _truncate(tree.image(0, 0), keep=0.9)
    _corrupt_middle(tree.image(1, 1))
    fast = validate_capture(tree.root, decode=False)
    full = validate_capture(tree.root, decode=True)
    assert [p.path for p in fast] == [tree.image(0, 0)]
    assert sorted(p.path for p in full) == sorted([tree.image(0, 0), tree.image(1, 1)])


def test_warnings_do_not_block_opening(tree: Tree) -> None:
    s = tree.serials[0]
    lmk = tree.landmarks[0].copy()
    lmk[:2, :20, 0] += W  # some points off the image (occluded, extrapolated by the detector)
    np.save(tree.seq_dir / "annotations/landmarks2D" / f"cam_{s}.npy", lmk)
    audio = np.clip(tree.audio * 10, -1, 1)
    save_wav(tree.seq_dir / "audio" / "audio_recording.wav", audio, SR)
    problems = validate_capture(tree.root)
    assert kinds(problems) == ["clipped_audio", "landmarks_out_of_image"]
    assert all(p.severity == "warning" for p in problems)
    open_sequence(tree.root, SUBJECT, SEQ)  # does not raise


def test_missing_audio_is_a_warning(tree: Tree) -> None:
    """Depth and points do not use the audio: a capture without it opens; the audio reader says
    what is missing."""
    shutil.rmtree(tree.seq_dir / "audio")
    (p,) = validate_capture(tree.root)
    assert (p.kind, p.severity) == ("missing_audio", "warning")
    assert p.path == tree.seq_dir / "audio" and "audio stages need one" in p.message
    seq = open_sequence(tree.root, SUBJECT, SEQ)
    assert seq.audio_path is None and capture.summarize(seq)["audio_path"] is None
    with pytest.raises(CaptureError, match="no audio file"):
        capture.read_audio(seq)


# ---------------------------------------------------------------------------------------------
# Layout: one set of path functions


def test_layout_spells_the_documented_tree() -> None:
    root = Path("/data/capture")
    subj = layout.subject_dir(root, SUBJECT)
    seq_dir = layout.sequence_dir(root, SUBJECT, SEQ)
    assert subj == root / SUBJECT
    assert layout.calibration_path(subj) == root / SUBJECT / "camera_params.json"
    assert seq_dir == root / SUBJECT / "sequences" / SEQ
    assert layout.sequence_file(seq_dir) == seq_dir / "sequence.json"
    frame = seq_dir / "timesteps" / "frame_00012"
    assert layout.frame_dir(seq_dir, 12) == frame
    assert layout.image_path(seq_dir, 12, "a1") == frame / "images" / "cam_a1.png"
    assert layout.image_path(seq_dir, 12, "a1", ".jpg") == frame / "images" / "cam_a1.jpg"
    assert layout.alpha_path(seq_dir, 12, "a1") == frame / "alpha_map" / "cam_a1.png"
    assert (
        layout.segmentation_path(seq_dir, 12, "a1")
        == frame / "facer_segmentation_masks" / "segmentation_cam_a1.png"
    )
    assert (
        layout.precomputed_depth_path(seq_dir, 12, "a1")
        == frame / "colmap" / "depth_maps" / "cam_a1.png"
    )
    assert (
        layout.landmarks_path(seq_dir, "a1")
        == seq_dir / "annotations" / "landmarks2D" / "cam_a1.npy"
    )
    assert layout.audio_path(seq_dir) == seq_dir / "audio" / "audio_recording.wav"
    assert layout.audio_path(seq_dir, ".flac").name == "audio_recording.flac"
    # names written by the path functions are the names the scanners recognise
    for name, (folder, rx) in layout.MAP_LAYOUT.items():
        path = layout.map_path(seq_dir, 12, name, "a_1.x")
        assert path.parent == layout.map_dir(seq_dir, 12, name) == frame / folder
        assert re.fullmatch(rx, path.name).group(1) == "a_1.x"
    m = layout.IMAGE_RE.fullmatch(layout.image_path(seq_dir, 3, "a_1").name)
    assert m and m.group(1) == "a_1"
    assert layout.parse_frame_name(layout.frame_name(12)) == 12
    assert layout.parse_frame_name("frame_x") is None


def test_split_sequence_dir_inverts_sequence_dir() -> None:
    root = Path("rel/capture")
    seq_dir = layout.sequence_dir(root, SUBJECT, SEQ)
    assert layout.split_sequence_dir(seq_dir) == (root, SUBJECT, SEQ)
    assert layout.split_sequence_dir(str(seq_dir) + "/") == (root, SUBJECT, SEQ)
    assert layout.sequence_calibration_path(seq_dir) == root / SUBJECT / "camera_params.json"
    for bad in (root / SUBJECT / SEQ, Path("sequences") / SEQ):
        with pytest.raises(CaptureError, match="not a sequence folder"):
            layout.split_sequence_dir(bad)


# ---------------------------------------------------------------------------------------------
# Opening from a job's inputs


def _fields(seq: CaptureSequence) -> dict:
    out = {f.name: getattr(seq, f.name) for f in dataclasses.fields(seq) if f.name != "cameras"}
    out["cameras"] = {
        s: (c.K.tolist(), c.world_2_cam.tolist(), c.width, c.height) for s, c in seq.cameras.items()
    }
    return out


def test_open_sequence_dir_equals_open_sequence(tree: Tree) -> None:
    ref = open_sequence(tree.root, SUBJECT, SEQ, fps=30.0)
    for seq in (
        open_sequence_dir(tree.seq_dir, fps=30.0),
        open_sequence_dir(str(tree.seq_dir), str(tree.calib), fps=30.0),
        open_sequence_dir(tree.seq_dir, tree.calib, fps=30.0, validate=True, workers=1),
    ):
        assert _fields(seq) == _fields(ref)
        assert (seq.root, seq.subject, seq.sequence) == (tree.root, SUBJECT, SEQ)
        assert seq.calibration_path == tree.calib
        assert capture.summarize(seq) == capture.summarize(ref)
        np.testing.assert_array_equal(capture.read_images(seq, 1), capture.read_images(ref, 1))
    # a relative sequence folder gives the same relative root (as a job's inputs are)
    rel = open_sequence_dir(Path(os.path.relpath(tree.seq_dir)), fps=30.0)
    assert rel.root == Path(os.path.relpath(tree.root))
    with pytest.raises(CaptureError, match="not a sequence folder"):
        open_sequence_dir(tree.root / SUBJECT)
    with pytest.raises(CaptureError, match="sequence folder is missing"):
        open_sequence_dir(tree.root / SUBJECT / "sequences" / "SEN-99")


def test_open_sequence_dir_reads_the_calibration_it_is_given(tree: Tree, tmp_path: Path) -> None:
    elsewhere = tmp_path / "calib" / "cams.json"
    elsewhere.parent.mkdir()
    shutil.copy(tree.calib, elsewhere)
    tree.calib.unlink()
    seq = open_sequence_dir(tree.seq_dir, elsewhere, validate=True)
    assert seq.calibration_path == elsewhere and seq.serials == tree.serials
    with pytest.raises(CaptureError, match="no camera"):
        capture.read_images(seq, 0, serials=["nope"])
    assert kinds(validate_sequence_dir(tree.seq_dir)) == ["missing_calibration"]
    assert validate_sequence_dir(tree.seq_dir, elsewhere) == []
    with pytest.raises(CaptureError, match="missing_calibration"):
        open_sequence_dir(tree.seq_dir, validate=True)


# ---------------------------------------------------------------------------------------------
# The face-mask policy


def test_facial_masks_are_face_labels_with_a_segmentation(tree: Tree) -> None:
    seq = open_sequence(tree.root, SUBJECT, SEQ)
    t, serials = 2, [tree.serials[2], tree.serials[0]]
    seg, alpha = tree.seg[t][[2, 0]], tree.alpha[t][[2, 0]]
    face = np.isin(seg, np.arange(1, 10))
    head = alpha > 127  # uint8 alpha > 0.5 of full scale
    got = facial_masks(seq, t, serials)
    assert got.dtype == bool and got.shape == (2, H, W)
    np.testing.assert_array_equal(got, face)
    np.testing.assert_array_equal(facial_masks(seq, t, serials, use_alpha=True), face & head)
    np.testing.assert_array_equal(facial_masks(seq, t, serials, labels=(1,)), seg == 1)
    np.testing.assert_array_equal(head_masks(seq, t, serials), head)
    np.testing.assert_array_equal(head_masks(seq, t, serials, 0.9), alpha > 0.9 * 255)
    np.testing.assert_array_equal(
        facial_masks(seq, t, serials, use_alpha=True, alpha_threshold=0.9),
        face & (alpha > 0.9 * 255),
    )
    assert facial_masks(seq, t).shape == (N_CAMS, H, W)  # default: every camera
    # what the depth evaluation and the QC pages computed inline before
    before = face_mask(capture.read_segmentation(seq, t, serials), FACE_LABELS)
    np.testing.assert_array_equal(facial_masks(seq, t, serials), before)
    np.testing.assert_array_equal(head_masks(seq, t), capture.read_alpha(seq, t) > 0.5)


def test_facial_masks_fall_back_to_alpha_without_a_segmentation(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "c")
    for t in range(N_FRAMES):
        shutil.rmtree(tree.frame(t) / "facer_segmentation_masks")
    seq = open_sequence(tree.root, SUBJECT, SEQ)
    assert not seq.has_segmentation
    head = tree.alpha[1] > 127
    for use_alpha in (False, True):
        np.testing.assert_array_equal(facial_masks(seq, 1, use_alpha=use_alpha), head)
    np.testing.assert_array_equal(facial_masks(seq, 1), capture.read_alpha(seq, 1) > 0.5)
    # no alpha either: the all-ones mattes make every pixel head
    for t in range(N_FRAMES):
        shutil.rmtree(tree.frame(t) / "alpha_map")
    seq = open_sequence(tree.root, SUBJECT, SEQ)
    assert facial_masks(seq, 1).all() and head_masks(seq, 1).all()


def test_alpha_mask_threshold_is_a_fraction_of_full_scale() -> None:
    assert ALPHA_THRESHOLD == 0.5
    a8 = np.array([0, 127, 128, 255], np.uint8)
    np.testing.assert_array_equal(alpha_mask(a8), [False, False, True, True])
    np.testing.assert_array_equal(alpha_mask(a8 / np.float32(255)), alpha_mask(a8))
    a16 = np.array([32767, 32768], np.uint16)
    np.testing.assert_array_equal(alpha_mask(a16), [False, True])
    np.testing.assert_array_equal(alpha_mask(np.array([0.5, 0.51, np.nan])), [False, True, False])
