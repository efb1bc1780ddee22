"""Bad real-capture inputs that are well-formed files: each, made on a copy of the tiny synthetic
capture, gets its message naming the file and the likely cause (or a logged, counted handling),
and the pure checks behind them hold on constructed rigs and arrays."""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from talkhead.capture import checks, layout
from talkhead.capture import readers as capture
from talkhead.capture.depth_png import (
    decode_depth,
    encode_depth,
    read_nersemble_depth_png,
    write_nersemble_depth_png,
)
from talkhead.capture.sequence import open_sequence
from talkhead.capture.validate import errors_of, format_problems, validate_capture
from talkhead.errors import CaptureError
from talkhead.geometry.cameras import Camera, invert_rigid, look_at, ring_rig


@dataclass
class Copy:
    """A writable copy of the tiny synthetic capture."""

    root: Path
    subject: str
    sequence: str

    @property
    def seq_dir(self) -> Path:
        return layout.sequence_dir(self.root, self.subject, self.sequence)

    @property
    def calib(self) -> Path:
        return layout.calibration_path(layout.subject_dir(self.root, self.subject))

    @property
    def serials(self) -> list[str]:
        return sorted(json.loads(self.calib.read_text())["world_2_cam"])

    @property
    def frames(self) -> list[int]:
        return capture.list_frame_ids(self.seq_dir)

    def image(self, t: int, s: str, ext: str = ".png") -> Path:
        return layout.image_path(self.seq_dir, t, s, ext)

    def map(self, name: str, t: int, s: str) -> Path:
        return layout.map_path(self.seq_dir, t, name, s)

    def landmarks(self, s: str) -> Path:
        return layout.landmarks_path(self.seq_dir, s)

    def edit_calibration(self, fn) -> None:
        data = json.loads(self.calib.read_text())
        fn(data)
        self.calib.write_text(json.dumps(data))

    def validate(self):
        return validate_capture(self.root, self.subject, self.sequence)

    def open(self):
        return open_sequence(self.root, self.subject, self.sequence, validate=False)


@pytest.fixture
def cap(tiny_studio, tmp_path) -> Copy:
    shutil.copytree(tiny_studio.capture_root, tmp_path / "capture")
    return Copy(tmp_path / "capture", tiny_studio.subject, tiny_studio.sequence)


def only(problems, kind: str, severity: str = "error"):
    """The one problem of ``kind``; every other problem must be a warning."""
    matching = [p for p in problems if p.kind == kind]
    assert len(matching) == 1, format_problems(problems)
    assert matching[0].severity == severity, format_problems(problems)
    others = [p for p in errors_of(problems) if p.kind != kind]
    assert not others, format_problems(problems)
    return matching[0]


def test_the_tiny_capture_is_clean(cap: Copy) -> None:
    assert cap.validate() == []


# ---------------------------------------------------------------------------------------------
# Calibration: units, orientation, intrinsics


def _scale_translations(factor: float):
    def fn(data):
        for s, T in data["world_2_cam"].items():
            T = np.array(T)
            T[:3, 3] *= factor
            data["world_2_cam"][s] = T.tolist()

    return fn


@pytest.mark.parametrize(
    "factor, unit, fix", [(100.0, "centimetres", "x0.01"), (1000.0, "millimetres", "x0.001")]
)
def test_translations_in_cm_or_mm_are_refused_with_the_factor(cap: Copy, factor, unit, fix):
    cap.edit_calibration(_scale_translations(factor))
    p = only(cap.validate(), "calibration_units")
    assert p.path == cap.calib
    assert unit in p.message and fix in p.message
    # the factor makes it a head rig again: the cameras stand under a metre from the centroid
    # of the arc (1 m from the head)
    r = float(re.search(r"puts the cameras ([\d.]+) m from the centre", p.message).group(1))
    assert 0.5 < r < 1.0


def test_a_rig_a_hundred_times_too_small_is_refused(cap: Copy) -> None:
    cap.edit_calibration(_scale_translations(0.01))
    p = only(cap.validate(), "calibration_units")
    assert "x100" in p.message and "cm apart" in p.message


def test_cam_2_world_stored_as_world_2_cam_is_named(cap: Copy) -> None:
    def fn(data):
        for s, T in data["world_2_cam"].items():
            data["world_2_cam"][s] = invert_rigid(np.array(T)).tolist()

    cap.edit_calibration(fn)
    p = only(cap.validate(), "calibration_inverted")
    assert p.path == cap.calib
    assert "camera-to-world" in p.message and "cam_2_world" in p.message
    assert "invert every 4x4" in p.message


def test_normalised_intrinsics_are_refused(cap: Copy) -> None:
    serials = cap.serials
    w, h = json.loads(cap.calib.read_text())["image_size"][serials[0]]

    def fn(data):
        K = np.array(data["intrinsics"], dtype=float)
        K[0] /= w
        K[1] /= h
        data["intrinsics"] = K.tolist()

    cap.edit_calibration(fn)
    p = only(cap.validate(), "intrinsics_normalised")
    assert "normalised by the image size" in p.message and "multiply the first row" in p.message
    assert f"{len(serials)} cameras" in p.message or "cameras" in p.message


def test_intrinsics_of_twice_the_image_size_are_refused(cap: Copy) -> None:
    """The calibration's image_size matches the images, its K is for 2x images: the principal
    point lies outside the image."""

    def fn(data):
        K = np.array(data["intrinsics"], dtype=float)
        K[:2] *= 2
        data["intrinsics"] = K.tolist()

    cap.edit_calibration(fn)
    p = only(cap.validate(), "intrinsics_image_size")
    assert "2x larger images" in p.message and "by 0.5" in p.message
    # the same without image_size in the calibration: judged against the images
    cap.edit_calibration(lambda d: d.pop("image_size"))
    p = only(cap.validate(), "intrinsics_image_size")
    assert "2x larger images" in p.message and "64x80" in p.message


def test_calibration_size_differs_from_the_images(cap: Copy) -> None:
    cap.edit_calibration(lambda d: d.update(image_size={s: [128, 160] for s in d["world_2_cam"]}))
    problems = cap.validate()
    p = only(problems, "image_size_mismatch")
    assert "64x80" in p.message and "128x160" in p.message and "rescaled by 1/2" in p.message


def _dome(n: int, radius: float) -> list[Camera]:
    return ring_rig(n, 64, 80, 30.0, radius=radius, yaw_span_deg=300.0)


def test_rig_checks_on_constructed_rigs() -> None:
    path = Path("cams.json")
    assert checks.rig_problems(ring_rig(8, 64, 80, 30.0), path) == []
    assert checks.rig_problems(_dome(12, 3.0), path) == []  # a body-scale dome is fine
    assert checks.rig_problems(ring_rig(1, 64, 80, 30.0, radius=500.0), path) == []
    # a 5 m cm-rig is read as centimetres, a 1 m mm-rig as millimetres
    (p,) = checks.rig_problems(ring_rig(4, 64, 80, 30.0, radius=500.0), path)
    assert p.kind == "calibration_units" and "centimetres" in p.message
    (p,) = checks.rig_problems(ring_rig(4, 64, 80, 30.0, radius=1000.0), path)
    assert "millimetres" in p.message
    # one camera calibrated twice
    cams = ring_rig(4, 64, 80, 30.0)
    twin = Camera("twin", cams[1].K, cams[1].world_2_cam.copy(), 64, 80)
    (p,) = checks.rig_problems([*cams, twin], path)
    assert p.kind == "cameras_coincide" and "twin" in p.message
    # every camera looking outwards
    out = []
    for c in ring_rig(6, 64, 80, 30.0, yaw_span_deg=300.0):
        out.append(Camera(c.serial, c.K, look_at(c.center, 2 * c.center), 64, 80))
    problems = checks.rig_problems(out, path)
    assert [p.kind for p in problems] == ["cameras_look_away"]
    assert problems[0].severity == "error" and "6 cameras" in problems[0].message
    assert "axes meet, (0.00, 0.00, 0.00) 1.00 m" in problems[0].message  # the centre of the ring
    # one of eight turned round: a warning naming it
    cams = ring_rig(8, 64, 80, 30.0)
    c = cams[3]
    cams[3] = Camera(c.serial, c.K, look_at(c.center, 2 * c.center), 64, 80)
    (p,) = checks.rig_problems(cams, path)
    assert (p.kind, p.severity) == ("cameras_look_away", "warning")
    assert f"camera {c.serial} of 8" in p.message


# ---------------------------------------------------------------------------------------------
# Images and per-frame maps


def _rewrite(path: Path, fn, flag=cv2.IMREAD_UNCHANGED) -> None:
    img = cv2.imread(str(path), flag)
    assert cv2.imwrite(str(path), fn(img))


def test_segmentation_without_face_pixels(cap: Copy) -> None:
    serials = cap.serials
    for t in cap.frames:  # one camera: a warning
        _rewrite(cap.map("segmentation", t, serials[0]), lambda m: np.where(m > 0, 10, 0))
    p = only(cap.validate(), "no_face_pixels", "warning")
    assert serials[0] in p.message and "labels present: [0, 10]" in p.message
    for t in cap.frames:  # every camera: an error
        for s in serials:
            _rewrite(cap.map("segmentation", t, s), lambda m: np.zeros_like(m))
    p = only(cap.validate(), "no_face_pixels")
    assert "every camera" in p.message and "segmentation" in p.message
    assert p.path == cap.map("segmentation", cap.frames[0], serials[0])


def test_mattes_saved_as_0_1_have_no_head_pixels(cap: Copy) -> None:
    for t in cap.frames:
        for s in cap.serials:
            _rewrite(cap.map("alpha", t, s), lambda a: (a > 127).astype(np.uint8))
    p = only(cap.validate(), "no_face_pixels")
    assert "alpha maps of every camera" in p.message and "0/1 instead of 0/255" in p.message


def test_twelve_bit_mattes_have_no_head_pixels(cap: Copy) -> None:
    for t in cap.frames:
        for s in cap.serials:
            _rewrite(
                cap.map("alpha", t, s),
                lambda a: (a.astype(np.uint32) * 4095 // 255).astype(np.uint16),
            )
    p = only(cap.validate(), "no_face_pixels")
    assert "never exceed 4095: 12-bit data? scale by 16" in p.message


def test_colour_coded_segmentation(cap: Copy) -> None:
    s = cap.serials[1]
    seq = cap.open()
    labels = {t: capture.read_segmentation(seq, t) for t in cap.frames}  # (C, H, W) each
    voc = checks.voc_colormap()
    for t in cap.frames:  # PASCAL VOC colours of the ids: read back, with a warning
        cv2.imwrite(str(cap.map("segmentation", t, s)), voc[labels[t][1]][..., ::-1])
    p = only(cap.validate(), "segmentation_coding", "warning")
    assert "PASCAL VOC" in p.message and s in p.message
    for t in cap.frames:
        np.testing.assert_array_equal(capture.read_segmentation(seq, t), labels[t])
    # grey-level RGB is the ids themselves
    t = cap.frames[0]
    cv2.imwrite(str(cap.map("segmentation", t, s)), np.repeat(labels[t][1][..., None], 3, -1))
    np.testing.assert_array_equal(capture.read_segmentation(seq, t), labels[t])
    # any other palette is refused
    palette = np.random.default_rng(0).integers(0, 256, (256, 3), dtype=np.uint8)
    for t in cap.frames:
        cv2.imwrite(str(cap.map("segmentation", t, s)), palette[labels[t][1]])
    p = only(cap.validate(), "segmentation_colours")
    assert "not label ids" in p.message and "single-channel" in p.message
    with pytest.raises(CaptureError, match="colour image, not label ids"):
        capture.read_segmentation(seq, cap.frames[1])


def test_segmentation_ids_beyond_lapa(cap: Copy) -> None:
    s = cap.serials[2]
    for t in cap.frames:
        _rewrite(cap.map("segmentation", t, s), lambda m: np.where(m == 1, 255, m))
    p = only(cap.validate(), "segmentation_labels")
    assert "label 255" in p.message and "0-10" in p.message
    with pytest.raises(CaptureError, match="label 255"):
        capture.read_segmentation(cap.open(), cap.frames[0])


def _write_depth(cap: Copy, fn=lambda q: q) -> None:
    for t in cap.frames:
        for s in cap.serials:
            d = np.full((80, 64), 1.0)
            d[:10] = 0.0
            path = cap.map("depth", t, s)
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), fn(encode_depth(d)))


def test_twelve_bit_depth_pngs(cap: Copy) -> None:
    _write_depth(cap)
    assert cap.validate() == []
    _write_depth(cap, lambda q: (q >> 4).astype(np.uint16))
    p = only(cap.validate(), "twelve_bit_png")
    assert "12-bit" in p.message and "depth maps" in p.message
    assert "0.062 m as stored" in p.message and "1.00 m with values x16" in p.message


def test_grayscale_rgba_and_16_bit_images_are_read_with_a_warning(cap: Copy, caplog) -> None:
    s0, s1, s2 = cap.serials
    seq = cap.open()
    t = cap.frames[0]
    rgb = capture.read_images(seq, t)
    for tt in cap.frames:
        _rewrite(cap.image(tt, s0), lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2GRAY))
        _rewrite(cap.image(tt, s1), lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2BGRA))
        _rewrite(cap.image(tt, s2), lambda im: im.astype(np.uint16) * 257)
    problems = cap.validate()
    assert not errors_of(problems), format_problems(problems)
    by_text = {p.message: p for p in problems if p.kind == "image_converted"}
    assert len(by_text) == 3, format_problems(problems)
    text = " | ".join(by_text)
    assert f"camera {s0} (3 files) are grayscale (read as RGB by repeating" in text
    assert f"camera {s1} (3 files) are RGBA (alpha dropped" in text
    assert f"camera {s2} (3 files) are 16-bit (scaled to 8 bit" in text
    with caplog.at_level(logging.WARNING, logger="talkhead"):
        got = capture.read_images(seq, t)
    assert got.dtype == np.uint8 and got.shape == rgb.shape
    grey = cv2.cvtColor(rgb[0], cv2.COLOR_RGB2GRAY)
    np.testing.assert_array_equal(got[0], np.repeat(grey[..., None], 3, axis=-1))
    np.testing.assert_array_equal(got[1], rgb[1])  # alpha dropped
    np.testing.assert_array_equal(got[2], rgb[2])  # v * 257 / 257
    assert caplog.text.count("said once per camera") == 3
    # 12-bit colour in 16-bit PNGs: read 16x too dark, refused
    for tt in cap.frames:
        _rewrite(cap.image(tt, s2), lambda im: (im >> 4).astype(np.uint16))
    p = only(cap.validate(), "twelve_bit_png")
    assert "images of camera" in p.message and "12-bit" in p.message


def test_one_jpg_among_pngs(cap: Copy) -> None:
    s, t = cap.serials[1], cap.frames[1]
    png = cap.image(t, s)
    jpg = cap.image(t, s, ".jpg")
    cv2.imwrite(str(jpg), cv2.imread(str(png)))
    png.unlink()
    p = only(cap.validate(), "image_format_mismatch")
    assert p.path == jpg
    assert "1 of 9 images are .jpg among .png" in p.message and "save them as .png" in p.message
    # both formats of one camera in a frame
    cv2.imwrite(str(png), cv2.imread(str(jpg)))
    p = only(cap.validate(), "image_format_mismatch")
    assert "same camera twice" in p.message and jpg.name in p.message


# ---------------------------------------------------------------------------------------------
# 2D landmarks


def test_landmarks_of_twice_the_resolution_are_refused_with_the_factor(cap: Copy) -> None:
    s = cap.serials[0]
    lmk = np.load(cap.landmarks(s))
    lmk[..., :2] *= 2
    np.save(cap.landmarks(s), lmk)
    p = only(cap.validate(), "landmarks_scale")
    assert p.path == cap.landmarks(s)
    assert "2x too large" in p.message and "x0.5 puts" in p.message
    assert "alpha map" in p.message


def test_landmarks_off_the_image_without_mattes(cap: Copy) -> None:
    """Without mattes or segmentation only the image bounds are left to judge by."""
    for t in cap.frames:
        shutil.rmtree(layout.map_dir(cap.seq_dir, t, "alpha"))
        shutil.rmtree(layout.map_dir(cap.seq_dir, t, "segmentation"))
    assert cap.validate() == []
    s = cap.serials[1]
    lmk = np.load(cap.landmarks(s))
    lmk[..., :2] *= 2
    np.save(cap.landmarks(s), lmk)
    p = only(cap.validate(), "landmarks_out_of_image")
    assert "outside its 64x80 image" in p.message and "at least" in p.message


def test_normalised_landmarks_are_refused(cap: Copy) -> None:
    s = cap.serials[2]
    lmk = np.load(cap.landmarks(s))
    lmk[..., 0] /= 64
    lmk[..., 1] /= 80
    np.save(cap.landmarks(s), lmk)
    p = only(cap.validate(), "landmarks_scale")
    assert "normalised coordinates" in p.message


def test_mediapipe_mesh_is_named(cap: Copy) -> None:
    s = cap.serials[1]
    np.save(cap.landmarks(s), np.zeros((len(cap.frames), 478, 3), np.float32))
    p = only(cap.validate(), "landmarks_shape")
    assert "MediaPipe's 478-point face mesh" in p.message and "iBUG-68" in p.message
    with pytest.raises(CaptureError, match="MediaPipe's 478-point"):
        capture.read_landmarks(cap.open())


def test_landmarks_without_confidence_are_read_with_confidence_one(cap: Copy, caplog) -> None:
    s = cap.serials[0]
    lmk = np.load(cap.landmarks(s))
    xy = lmk[..., :2].copy()
    xy[0, 3] = np.nan  # an undetected point
    np.save(cap.landmarks(s), xy)
    p = only(cap.validate(), "landmarks_no_confidence", "warning")
    assert "no confidence column" in p.message
    with caplog.at_level(logging.WARNING, logger="talkhead"):
        got = capture.read_landmarks(cap.open())[0]
    assert "no confidence column" in caplog.text
    conf = np.ones(xy.shape[:2], np.float32)
    conf[0, 3] = 0.0
    np.testing.assert_array_equal(got[..., 2], conf)
    np.testing.assert_allclose(got[1:, :, :2], xy[1:])


def test_landmark_frame_count(cap: Copy) -> None:
    s = cap.serials[2]
    np.save(cap.landmarks(s), np.load(cap.landmarks(s))[:2])
    p = only(cap.validate(), "landmarks_shape")
    assert "have 2 frames, the sequence has 3" in p.message


# ---------------------------------------------------------------------------------------------
# Frames


def test_a_single_frame_is_accepted_and_said(cap: Copy) -> None:
    for t in cap.frames[1:]:
        shutil.rmtree(layout.frame_dir(cap.seq_dir, t))
    for s in cap.serials:
        np.save(cap.landmarks(s), np.load(cap.landmarks(s))[:1])
    p = only(cap.validate(), "single_frame", "warning")
    assert "single frame (frame_00000)" in p.message
    seq = open_sequence(cap.root, cap.subject, cap.sequence)  # validates, does not raise
    assert seq.n_frames == 1
    assert capture.read_landmarks(seq).shape == (3, 1, 68, 3)


def test_frame_ids_with_gaps_are_accepted_and_said(cap: Copy) -> None:
    full = {s: np.load(cap.landmarks(s)) for s in cap.serials}
    shutil.rmtree(layout.frame_dir(cap.seq_dir, 1))
    # still one row per id 0-2: the files do not follow the frame folders
    problems = errors_of(cap.validate())
    assert [p.kind for p in problems] == ["landmarks_shape"] * 3, format_problems(problems)
    assert all("one row per frame id 0-2" in p.message for p in problems)
    for s in cap.serials:
        np.save(cap.landmarks(s), full[s][[0, 2]])
    p = only(cap.validate(), "frame_gaps", "warning")
    assert "ids step by 2" in p.message
    seq = open_sequence(cap.root, cap.subject, cap.sequence)
    assert seq.frame_ids == (0, 2)
    np.testing.assert_array_equal(capture.read_landmarks(seq)[0], full[cap.serials[0]][[0, 2]])
    (p,) = checks.frame_ids_problems([0, 1, 2, 5, 6, 9], "x")
    assert (p.kind, p.severity) == ("frame_gaps", "warning")
    assert "4 ids missing between 0 and 9 (3, 4, 7, 8)" in p.message
    assert checks.frame_ids_problems([3, 4, 5], "x") == []


# ---------------------------------------------------------------------------------------------
# NeRSemble v1 depth PNGs


def test_depth_png_bins_follow_nersemble_v1(tmp_path) -> None:
    """Bin 0 is masked and q encodes (q - 1) x 2 m / 65534: 1 m is exactly 32768, 2 m 65535;
    a known depth comes back within half a bin."""
    half_bin = 2.0 / 65534 / 2
    q = np.array([0, 1, 2, 32768, 65535], np.uint16)
    np.testing.assert_allclose(decode_depth(q), [0, 0, 2 / 65534, 1.0, 2.0], rtol=1e-7)
    assert encode_depth(np.array([1.0]))[0] == 32768
    assert encode_depth(np.array([2.0]))[0] == 65535
    depth = np.random.default_rng(0).uniform(0.3, 1.9, (80, 64))
    depth[:3] = 0.0  # masked
    depth[3, :3] = [np.nan, 2.5, -1.0]  # invalid: masked
    depth[4, 0] = 1e-7  # tiny but valid: stays valid (one bin)
    path = tmp_path / "cam_1.png"
    write_nersemble_depth_png(path, depth)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and np.all(raw[:3] == 0) and np.all(raw[3, :3] == 0)
    back = read_nersemble_depth_png(path, expected_size=(64, 80))
    valid = np.isfinite(depth) & (depth > 0) & (depth <= 2.0)
    assert np.all(back[~valid] == 0) and np.all(back[valid] > 0)
    ok = valid & (depth > half_bin)
    assert np.abs(back[ok] - depth[ok]).max() <= half_bin + 2.5e-7  # + float32 rounding
    np.testing.assert_allclose(back[ok], (raw[ok].astype(float) - 1) * 2.0 / 65534, rtol=1e-6)


def test_capture_page_of_a_capture_without_audio(cap: Copy, tmp_path) -> None:
    """The capture QC page (the first rule after validation) draws a 'no audio' panel instead of
    failing: a capture without audio runs on to depth and points."""
    from talkhead.qc.pages import capture_qc

    shutil.rmtree(cap.seq_dir / "audio")
    seq = open_sequence(cap.root, cap.subject, cap.sequence)  # validates: warnings only
    out = capture_qc(seq, tmp_path / "rig.png", tmp_path / "sheet.png", tmp_path / "mic.png")
    mic = cv2.imread(str(out["audio"]))
    assert mic is not None and mic.shape[:2] == (200, 1000)


def test_indexed_png_segmentation_with_the_voc_palette(cap: Copy) -> None:
    """A palette (indexed) PNG, as PASCAL VOC masks are saved: decoded to its colours, read back
    as the ids through VOC's colour map."""
    from PIL import Image

    s = cap.serials[0]
    seq = cap.open()
    labels = {t: capture.read_segmentation(seq, t)[0] for t in cap.frames}
    palette = checks.voc_colormap().ravel().tolist()
    for t in cap.frames:
        img = Image.fromarray(labels[t], mode="P")
        img.putpalette(palette)
        img.save(cap.map("segmentation", t, s))
    assert cap.map("segmentation", 0, s).read_bytes()[25] == 3  # PNG colour type: palette
    p = only(cap.validate(), "segmentation_coding", "warning")
    assert "PASCAL VOC colour map" in p.message
    for t in cap.frames:
        np.testing.assert_array_equal(capture.read_segmentation(seq, t)[0], labels[t])


# ---------------------------------------------------------------------------------------------
# Camera count


def test_camera_count_needs_two_views() -> None:
    assert checks.camera_count_problems(["a", "b"], "calib.json") == []
    (one,) = checks.camera_count_problems(["a"], "calib.json")
    assert one.kind == "too_few_cameras" and one.severity == "error"
    assert "camera a only" in one.message and "cameras column" in one.message
    (none,) = checks.camera_count_problems([], "calib.json")
    assert "no camera" in none.message


def test_a_single_camera_sequence_is_refused(cap: Copy) -> None:
    keep, *drop = cap.serials

    def one_camera(data) -> None:
        for key in ("world_2_cam", "intrinsics", "image_size", "distortion"):
            if isinstance(data.get(key), dict):
                data[key] = {s: v for s, v in data[key].items() if s not in drop}

    cap.edit_calibration(one_camera)
    for path in list(cap.seq_dir.rglob("*")):
        if path.is_file() and any(s in path.name for s in drop):
            path.unlink()
    problem = only(cap.validate(), "too_few_cameras")
    assert problem.path == cap.calib
    assert "depth needs at least 2 views" in problem.message
