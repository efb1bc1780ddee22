"""The published capture layouts: the synthetic capture written in each of them (capture/export)
is recognised as that layout and read back as the same cameras and frames; v1's depth bins,
camera distortion, and products in overlay folders beside a sequence."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from talkhead.capture import export, layout, layouts
from talkhead.capture.calibration import read_camera_params, write_camera_params
from talkhead.capture.depth_png import decode_depth, encode_depth
from talkhead.capture.readers import read_alpha, read_images
from talkhead.capture.sequence import PRODUCTS, open_sequence, open_sequence_dir
from talkhead.errors import CaptureError
from talkhead.geometry.cameras import Camera
from talkhead.io import save_image


@pytest.fixture(scope="module")
def studio(tiny_studio):
    return tiny_studio.open()


@pytest.fixture(scope="module")
def kits(tiny_studio, studio, tmp_path_factory):
    """The tiny capture in each published layout: {layout: (root, subject)}."""
    root = tmp_path_factory.mktemp("kits")
    colour = export.example_colour_matrices(studio.serials)
    export.export_nersemble_v1(studio, root / "v1", colour=colour)
    export.export_nersemble_v2(studio, root / "v2", subject="018", colour=colour)
    export.export_sequence(studio, root / "bm", "nersemble_benchmark", subject="018")
    return {
        "talkhead": (tiny_studio.capture_root, tiny_studio.subject),
        "nersemble_v1": (root / "v1", studio.subject),
        "nersemble_v2": (root / "v2", "018"),
        "nersemble_benchmark": (root / "bm", "018"),
    }


@pytest.mark.parametrize("name", layouts.LAYOUTS)
def test_each_layout_is_detected_and_logged(kits, studio, name, caplog) -> None:
    root, subject = kits[name]
    with caplog.at_level(logging.INFO, logger="talkhead"):
        assert layouts.detect_layout(root, subject, studio.sequence) == name
    assert name in caplog.text
    src = layouts.open_source(root, subject, studio.sequence)
    assert src.layout == name
    assert list(src.serials) == studio.serials
    for s in studio.serials:
        np.testing.assert_allclose(src.cameras[s].K, studio.cameras[s].K)
        np.testing.assert_allclose(src.cameras[s].world_2_cam, studio.cameras[s].world_2_cam)
    if not src.is_video:
        assert src.frame_ids == studio.frame_ids


def test_published_files_are_where_the_kits_put_them(kits, studio) -> None:
    seq, s = studio.sequence, studio.serials[0]
    v1 = kits["nersemble_v1"][0] / studio.subject
    assert (v1 / "camera_params.json").is_file()
    f0 = v1 / "sequences" / seq / "timesteps" / "frame_00000"
    assert (f0 / "images-2x" / f"cam_{s}.png").is_file()
    assert (f0 / "alpha_map" / f"cam_{s}.png").is_file()
    assert (v1 / "annotations" / seq / "color_correction" / f"{s}.npy").is_file()
    v2 = kits["nersemble_v2"][0] / "018"
    calib = json.loads((v2 / "calibration" / "camera_params.json").read_text())
    assert np.asarray(calib["intrinsics"]).shape == (3, 3)  # one shared matrix
    assert set(json.loads((v2 / "calibration" / "color_calibration.json").read_text())) == set(
        studio.serials
    )
    assert (v2 / "sequences" / seq / "images" / f"cam_{s}.mp4").is_file()
    assert (v2 / "sequences" / "BACKGROUND" / f"image_{s}.jpg").is_file()
    # v2 ships no mattes, landmarks, segmentation, depth or audio
    shipped = {p.name for p in (v2 / "sequences" / seq).iterdir()}
    assert shipped == {"images"}
    bm = kits["nersemble_benchmark"][0] / "018"
    calib = json.loads((bm / "calibration" / "camera_params.json").read_text())
    assert set(calib["intrinsics"]) == set(studio.serials)  # per serial
    assert (bm / "sequences" / seq / "alpha_maps" / f"cam_{s}.mp4").is_file()


def test_v2_plates_are_the_sequence_own_else_estimated(kits, studio, tiny_studio, tmp_path):
    from talkhead.io import read_image

    own = export.sequence_plates(studio)
    assert list(own) == studio.serials
    for s in studio.serials:
        np.testing.assert_array_equal(own[s], read_image(studio.background_path(s)))
    # the kit's BACKGROUND images are the sequence's plates (colour-inverted, JPEG)
    colour = export.example_colour_matrices(studio.serials)
    v2 = kits["nersemble_v2"][0] / "018"
    estimated = export.estimate_background_plates(studio)
    for s in studio.serials:
        kit = read_image(layouts.v2_background_path(v2, s)).astype(int)
        want = export.inverse_cheung3(own[s], colour[s]).astype(int)
        assert np.abs(kit - want).mean() < 2.0
        assert np.abs(estimated[s].astype(int) - own[s]).max() > 20  # the estimate differs
    # without plates: estimated from the frames and mattes, per camera
    root = tmp_path / "capture"
    shutil.copytree(tiny_studio.capture_root, root)
    seq_dir = layout.sequence_dir(root, studio.subject, studio.sequence)
    layout.background_path(seq_dir, studio.serials[0]).unlink()
    partial = export.sequence_plates(open_sequence_dir(seq_dir))
    np.testing.assert_array_equal(partial[studio.serials[0]], estimated[studio.serials[0]])
    np.testing.assert_array_equal(partial[studio.serials[1]], own[studio.serials[1]])
    shutil.rmtree(layout.background_dir(seq_dir))
    none = export.sequence_plates(open_sequence_dir(seq_dir))
    for s in studio.serials:
        np.testing.assert_array_equal(none[s], estimated[s])
    for t in studio.frame_ids:
        shutil.rmtree(layout.map_dir(seq_dir, t, "alpha"))
    assert export.sequence_plates(open_sequence_dir(seq_dir)) == {}  # nothing to estimate from


def test_no_layout_names_the_sequence_folder(tmp_path: Path) -> None:
    seq_dir = layout.sequence_dir(tmp_path, "001", "SEN-01")
    (seq_dir / "stuff").mkdir(parents=True)
    with pytest.raises(CaptureError, match=r"SEN-01: no known capture layout"):
        layouts.detect_layout(tmp_path, "001", "SEN-01")
    with pytest.raises(CaptureError, match="sequence folder is missing"):
        layouts.detect_layout(tmp_path, "001", "SEN-02")


def test_v1_without_timesteps_folder_and_73fps_suffix(studio, tmp_path: Path) -> None:
    export.export_nersemble_v1(studio, tmp_path, timesteps=False, suffix="-73fps")
    assert layouts.detect_layout(tmp_path, studio.subject, studio.sequence) == "nersemble_v1"
    src = layouts.open_source(tmp_path, studio.subject, studio.sequence)
    assert src.v1_suffix == "-73fps" and not src.v1_timesteps
    p = src.image_path(studio.frame_ids[1], studio.serials[0])
    assert p.parent.name == "images-2x-73fps" and p.is_file()


def test_v1_depth_bins() -> None:
    # bin 0 is "masked"; bin q >= 1 is (q - 1) * 2 m / 65534
    q = np.array([[0, 1, 2, 65535]], dtype=np.uint16)
    np.testing.assert_allclose(decode_depth(q), [[0.0, 0.0, 2 / 65534, 2.0]], atol=1e-7, rtol=1e-6)
    rng = np.random.default_rng(0)
    d = rng.uniform(0.3, 1.99, (40, 30))
    d[:5] = 0.0
    d[5, :3] = np.nan
    d[6, :3] = 2.5
    back = decode_depth(encode_depth(d))
    ok = np.isfinite(d) & (d > 0) & (d <= 2)
    assert np.all(back[~ok] == 0)
    assert np.abs(back[ok] - d[ok]).max() <= 2 / 65534 / 2 + 1e-6
    # a valid depth below half a bin survives as non-masked
    assert encode_depth(np.array([[1e-9]]))[0, 0] == 2


def test_v1_depth_reader_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "d.png"
    save_image(p, np.zeros((4, 5), np.uint8))
    with pytest.raises(CaptureError, match=r"d\.png: v1 depth must be one 16-bit channel"):
        layouts.read_v1_depth(p)
    save_image(p, np.zeros((4, 5), np.uint16))
    with pytest.raises(CaptureError, match=r"d\.png: depth is 5x4, the images are 6x4"):
        layouts.read_v1_depth(p, (6, 4))


def _cam(serial: str, distortion=None, size=(0, 0)) -> Camera:
    K = np.array([[100.0, 0, 31.5], [0, 100.0, 39.5], [0, 0, 1]])
    T = np.eye(4)
    T[0, 3] = float(serial) * 0.1
    return Camera(serial, K, T, size[0], size[1], distortion)


@pytest.mark.parametrize("n", [5, 8])
def test_distortion_round_trips_through_camera_params(tmp_path: Path, n: int) -> None:
    d = np.linspace(-0.1, 0.05, n)
    write_camera_params(tmp_path / "c.json", [_cam("1", d), _cam("2")])
    cams = read_camera_params(tmp_path / "c.json")
    np.testing.assert_allclose(cams["1"].distortion, d)
    assert cams["1"].has_distortion and not cams["2"].has_distortion
    write_camera_params(tmp_path / "c.json", [_cam("1"), _cam("2")])
    assert "distortion" not in json.loads((tmp_path / "c.json").read_text())
    assert read_camera_params(tmp_path / "c.json")["1"].distortion is None


def test_shared_distortion_and_bad_distortion_name_the_file(tmp_path: Path) -> None:
    p = tmp_path / "c.json"
    write_camera_params(p, [_cam("1"), _cam("2")])
    data = json.loads(p.read_text())
    data["distortion"] = [0.1, 0.0, 0.0, 0.0, 0.0]
    p.write_text(json.dumps(data))
    cams = read_camera_params(p)
    assert cams["1"].distortion[0] == cams["2"].distortion[0] == 0.1
    data["distortion"] = {"1": [0.1, 0.2, 0.3], "2": None}
    p.write_text(json.dumps(data))
    with pytest.raises(CaptureError, match=r"c\.json: distortion\[1\] has shape \(3,\)"):
        read_camera_params(p)


def test_calibration_image_size_must_match_the_images(tiny_studio, tmp_path: Path) -> None:
    seq = tiny_studio.open()
    cams = [seq.cameras[s] for s in seq.serials]
    calib = tmp_path / "camera_params.json"
    write_camera_params(calib, [Camera(c.serial, c.K, c.world_2_cam, 128, 160) for c in cams])
    with pytest.raises(CaptureError, match=r"image is 64x80, the calibration says 128x160"):
        open_sequence_dir(tiny_studio.sequence_dir, calib)


def test_colour_calibration_files_are_checked(tmp_path: Path) -> None:
    p = tmp_path / "color_calibration.json"
    p.write_text(json.dumps({"1": [[1, 0], [0, 1], [0, 0]]}))
    with pytest.raises(CaptureError, match=r"color_calibration\.json: matrix of camera 1 has"):
        layouts.read_v2_colour_calibration(p)
    p.write_text("{")
    with pytest.raises(CaptureError, match="not valid JSON"):
        layouts.read_v2_colour_calibration(p)
    m = tmp_path / "1.npy"
    np.save(m, np.eye(2))
    with pytest.raises(CaptureError, match=r"1\.npy: colour matrix has shape \(2, 2\)"):
        layouts.read_v1_colour_matrix(m)


def test_benchmark_tracking_reads_back(studio, tmp_path: Path) -> None:
    T = 3
    tracking = {
        "shape": np.zeros((1, 300)),
        "expression": np.ones((T, 100)),
        "rotation": np.zeros((T, 3)),
        "rotation_matrices": np.tile(np.eye(3), (T, 1, 1)),
        "translation": np.zeros((T, 3)),
        "jaw": np.zeros((T, 3)),
        "neck": np.zeros((T, 3)),
        "eyes": np.zeros((T, 6)),
        "frames": np.arange(T),
        "scale": np.ones((1, 1)),
    }
    export.export_nersemble_benchmark(studio, tmp_path, tracking=tracking)
    src = layouts.open_source(tmp_path, studio.subject, studio.sequence)
    assert src.tracking_path().name == "flame2023_tracking_v2.npz"
    back = layouts.read_flame_tracking(src.tracking_path())
    np.testing.assert_array_equal(back["expression"], tracking["expression"])
    np.savez(src.tracking_path(), shape=np.zeros((1, 300)))
    with pytest.raises(CaptureError, match="flame2023_tracking_v2.npz: FLAME tracking lacks"):
        layouts.read_flame_tracking(src.tracking_path())


def test_benchmark_pointclouds_from_depth(studio, tmp_path: Path) -> None:
    depth = np.full((studio.height, studio.width), 1.0, np.float32)
    export.export_nersemble_benchmark(studio, tmp_path, depth=lambda t, s: depth)
    seq_dir = layout.sequence_dir(tmp_path, studio.subject, studio.sequence)
    pcd = layouts.pointcloud_path(seq_dir, 0)
    lines = pcd.read_text().splitlines()
    n = int(next(line for line in lines if line.startswith("POINTS")).split()[1])
    assert n == studio.n_cameras * studio.width * studio.height
    xyz = np.array([list(map(float, line.split()[:3])) for line in lines[11:]])
    cam = studio.cameras[studio.serials[0]]
    z = (xyz[: studio.width * studio.height] @ cam.R.T + cam.t)[:, 2]
    np.testing.assert_allclose(z, 1.0, atol=1e-5)  # first camera's points lie at depth 1 m


# --------------------------------------------------------------------------------------------
# Products beside a sequence (overlays)
# --------------------------------------------------------------------------------------------


def _bare_copy(tiny_studio, dst: Path) -> Path:
    """A copy of the tiny capture with only its images and calibration."""
    shutil.copytree(tiny_studio.capture_root, dst)
    seq_dir = layout.sequence_dir(dst, tiny_studio.subject, tiny_studio.sequence)
    for t in tiny_studio.open().frame_ids:
        for name in ("alpha", "segmentation"):
            shutil.rmtree(layout.map_dir(seq_dir, t, name))
    shutil.rmtree(layout.landmarks_dir(seq_dir))
    shutil.rmtree(layout.audio_dir(seq_dir))
    return seq_dir


def _product_copy(tiny_studio, dst_root: Path, product: str) -> Path:
    """An overlay folder holding one product of the tiny capture."""
    src = tiny_studio.sequence_dir
    dst = layout.sequence_dir(dst_root, tiny_studio.subject, tiny_studio.sequence)
    if product in layout.MAP_FILES:
        for t in tiny_studio.open().frame_ids:
            shutil.copytree(layout.map_dir(src, t, product), layout.map_dir(dst, t, product))
    elif product == "landmarks":
        shutil.copytree(layout.landmarks_dir(src), layout.landmarks_dir(dst))
    elif product == "audio":
        shutil.copytree(layout.audio_dir(src), layout.audio_dir(dst))
    return dst


def test_products_come_from_overlays_in_order(tiny_studio, tmp_path: Path) -> None:
    seq_dir = _bare_copy(tiny_studio, tmp_path / "capture")
    bare = open_sequence_dir(seq_dir)
    assert not (bare.has_alpha or bare.has_landmarks or bare.has_segmentation)
    assert bare.audio_path is None
    mattes = _product_copy(tiny_studio, tmp_path / "mattes", "alpha")
    lmks = _product_copy(tiny_studio, tmp_path / "landmarks", "landmarks")
    audio = _product_copy(tiny_studio, tmp_path / "audio", "audio")
    seg = _product_copy(tiny_studio, tmp_path / "seg", "segmentation")
    seq = open_sequence_dir(seq_dir, overlays=[mattes, lmks, audio, seg])
    assert seq.has_alpha and seq.has_landmarks and seq.has_segmentation
    assert seq.product_dir("images") == seq_dir
    assert seq.product_dir("alpha") == mattes
    assert seq.product_dir("landmarks") == lmks
    assert seq.product_dir("segmentation") == seg
    assert seq.audio_path is not None and seq.audio_path.is_relative_to(audio)
    assert seq.product_dir("depth") == seq_dir  # nobody has it: the sequence's own
    ref = tiny_studio.open()
    t = ref.frame_ids[1]
    np.testing.assert_array_equal(read_alpha(seq, t), read_alpha(ref, t))
    np.testing.assert_array_equal(read_images(seq, t), read_images(ref, t))
    # the sequence's own product wins over an overlay's
    full = open_sequence(
        tiny_studio.capture_root, ref.subject, ref.sequence, validate=False, overlays=[mattes]
    )
    assert full.product_dir("alpha") == tiny_studio.sequence_dir
    # the first overlay holding a product wins
    mattes2 = _product_copy(tiny_studio, tmp_path / "mattes2", "alpha")
    assert open_sequence_dir(seq_dir, overlays=[mattes2, mattes]).product_dir("alpha") == mattes2
    with pytest.raises(ValueError, match="unknown product"):
        seq.product_dir("normals")
    assert set(PRODUCTS) >= {"images", "alpha", "segmentation", "depth", "landmarks", "audio"}


def test_v1_reads_in_place_with_products_from_overlays(kits, studio, tiny_studio, tmp_path):
    root, subject = kits["nersemble_v1"]
    lmks = _product_copy(tiny_studio, tmp_path / "landmarks", "landmarks")
    seq = open_sequence(
        root, subject, studio.sequence, validate=False, overlays=[lmks], layout_name="auto"
    )
    assert seq.layout == "nersemble_v1"
    assert seq.serials == studio.serials and seq.frame_ids == studio.frame_ids
    assert seq.image_size == studio.image_size
    assert seq.has_alpha and seq.has_landmarks and not seq.has_segmentation
    t = studio.frame_ids[2]
    assert seq.image_path(t, studio.serials[0]).parent.name == "images-2x"
    np.testing.assert_array_equal(read_alpha(seq, t), read_alpha(studio, t))
    # read in place, the colour matrices are not applied: the stored (inverse) colours come back
    stored = read_images(seq, t).astype(int)
    assert np.abs(stored - read_images(studio, t).astype(int)).max() > 5
    seq_dir = layout.sequence_dir(root, subject, studio.sequence)
    same = open_sequence_dir(seq_dir, layout_name="nersemble_v1", overlays=[lmks])
    np.testing.assert_array_equal(read_images(same, t), stored)
    with pytest.raises(CaptureError, match="validation reads talkhead trees"):
        open_sequence(root, subject, studio.sequence, layout_name="nersemble_v1")
    v2_root, v2_subject = kits["nersemble_v2"]
    with pytest.raises(CaptureError, match="holds videos; ingest it first"):
        open_sequence(v2_root, v2_subject, studio.sequence, validate=False, layout_name="auto")


def _scaled_landmarks(tiny_studio, dst_root: Path, factor: float) -> Path:
    """An overlay with the tiny capture's landmarks scaled by ``factor`` (another resolution)."""
    dst = _product_copy(tiny_studio, dst_root, "landmarks")
    for f in layout.landmarks_dir(dst).glob("cam_*.npy"):
        lm = np.load(f)
        lm[..., :2] *= factor
        np.save(f, lm)
    return dst


def test_replaced_products_come_from_the_overlays_first(kits, studio, tiny_studio, tmp_path):
    from talkhead.capture.readers import read_landmarks

    seq_dir = tiny_studio.sequence_dir
    detected = _scaled_landmarks(tiny_studio, tmp_path / "detected", 1.01)
    mattes = _product_copy(tiny_studio, tmp_path / "mattes", "alpha")
    kept = open_sequence_dir(seq_dir, overlays=[mattes, detected])
    assert kept.product_dir("landmarks") == seq_dir  # the capture's own by default
    seq = open_sequence_dir(seq_dir, overlays=[mattes, detected], replace=["landmarks"])
    assert seq.replace == ("landmarks",)
    assert seq.product_dir("landmarks") == detected
    assert seq.product_dir("alpha") == seq_dir  # not replaced: still the capture's
    np.testing.assert_allclose(
        read_landmarks(seq)[..., :2], read_landmarks(kept)[..., :2] * 1.01, rtol=1e-6
    )
    # no overlay holds it: the capture's own
    only_mattes = open_sequence(
        tiny_studio.capture_root,
        studio.subject,
        studio.sequence,
        validate=False,
        overlays=[mattes],
        replace=["landmarks"],
    )
    assert only_mattes.product_dir("landmarks") == seq_dir
    # a v1 sequence read in place: its own mattes replaced by an overlay's
    v1_root, v1_subject = kits["nersemble_v1"]
    v1 = open_sequence(
        v1_root,
        v1_subject,
        studio.sequence,
        validate=False,
        overlays=[mattes],
        layout_name="nersemble_v1",
    )
    assert v1.product_dir("alpha") == v1.sequence_dir
    v1 = open_sequence(
        v1_root,
        v1_subject,
        studio.sequence,
        validate=False,
        overlays=[mattes],
        layout_name="nersemble_v1",
        replace=["alpha"],
    )
    t = studio.frame_ids[0]
    assert v1.product_dir("alpha") == mattes
    assert v1.alpha_path(t, studio.serials[0]) == layout.alpha_path(mattes, t, studio.serials[0])
    with pytest.raises(ValueError, match="unknown product to replace 'mattes'"):
        open_sequence_dir(seq_dir, overlays=[mattes], replace=["mattes"])


def test_validation_checks_products_where_the_reader_finds_them(tiny_studio, tmp_path):
    from talkhead.capture.validate import errors_of, validate_capture, validate_sequence_dir

    original = validate_sequence_dir(tiny_studio.sequence_dir)
    assert original == []
    seq_dir = _bare_copy(tiny_studio, tmp_path / "capture")
    overlays = [
        _product_copy(tiny_studio, tmp_path / name, name)
        for name in ("alpha", "landmarks", "segmentation", "audio")
    ]
    bare = validate_sequence_dir(seq_dir)
    assert {p.kind for p in bare} == {"missing_landmarks", "missing_audio"}
    assert validate_sequence_dir(seq_dir, overlays=overlays) == original
    root, subject, sequence = layout.split_sequence_dir(seq_dir)
    assert validate_capture(root, subject, sequence, overlays=overlays) == original
    seq = open_sequence_dir(seq_dir, validate=True, overlays=overlays)
    assert seq.has_alpha and seq.has_landmarks and seq.has_segmentation and seq.audio_path
    with pytest.raises(CaptureError, match="missing_landmarks|no 2D landmarks"):
        open_sequence_dir(seq_dir, validate=True)
    with pytest.raises(ValueError, match="give subject and sequence"):
        validate_capture(root, overlays=overlays)
    # an overlay's product is checked: landmarks of another resolution, named in the overlay
    wrong = _scaled_landmarks(tiny_studio, tmp_path / "wrong", 0.5)
    problems = validate_sequence_dir(seq_dir, overlays=[wrong, *overlays])
    assert [p.kind for p in errors_of(problems)] and all(
        p.kind == "landmarks_scale" and p.path.is_relative_to(wrong) for p in errors_of(problems)
    )
    with pytest.raises(CaptureError, match="landmarks"):
        open_sequence(root, subject, sequence, overlays=[wrong, *overlays])
    # ... and on the full capture only when it replaces the capture's own
    assert validate_sequence_dir(tiny_studio.sequence_dir, overlays=[wrong]) == []
    replaced = validate_sequence_dir(
        tiny_studio.sequence_dir, overlays=[wrong], replace=["landmarks"]
    )
    assert {p.kind for p in errors_of(replaced)} == {"landmarks_scale"}
    # a problem of a missing map names the overlay's folder
    alpha_overlay = overlays[0]
    t = tiny_studio.open().frame_ids[1]
    shutil.rmtree(layout.map_dir(alpha_overlay, t, "alpha"))
    missing = [
        p for p in validate_sequence_dir(seq_dir, overlays=overlays) if p.kind == "missing_mask"
    ]
    assert missing and all(p.path == layout.map_dir(alpha_overlay, t, "alpha") for p in missing)
