"""QC figures: fixed pixel size, not blank, written atomically; landmarks land where they
belong on a contact sheet, coloured by confidence; frame picking finds open and closed mouths."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from talkhead.capture.calibration import write_camera_params
from talkhead.capture.sequence import open_sequence
from talkhead.geometry.cameras import Camera, intrinsics_from_fov, ring_rig
from talkhead.qc import audio as qc_audio
from talkhead.qc import contact_sheet, draw
from talkhead.qc import rig as qc_rig

BG = np.array([40, 40, 120], np.uint8)  # an RGB colour no colormap used here produces


def read_png(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, path
    return img[..., ::-1].astype(np.int32)


def only_file(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def upright_camera(serial: str, eye, target, up, width=64, height=48) -> Camera:
    """A camera at ``eye`` looking at ``target`` with ``up`` upwards in its image (built here,
    independently of talkhead.cameras.look_at)."""
    eye, target, up = (np.asarray(v, float) for v in (eye, target, up))
    z = (target - eye) / np.linalg.norm(target - eye)
    y = -(up - (up @ z) * z)
    y /= np.linalg.norm(y)
    x = np.cross(y, z)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, y, z])
    T[:3, 3] = -T[:3, :3] @ eye
    return Camera(serial, intrinsics_from_fov(width, height, 40.0), T, width, height)


def face_landmarks(cx: float, cy: float, s: float, opening: float) -> np.ndarray:
    """(68, 3) iBUG-like landmarks of a face centred at (cx, cy), eye corners 2s apart, the
    inner lips ``opening`` pixels apart; confidence 1."""
    a = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    lm = np.stack([cx + 1.2 * s * np.cos(a), cy + 1.4 * s * np.sin(a), np.ones(68)], axis=1)
    lm[36, :2] = (cx - s, cy - 0.4 * s)
    lm[45, :2] = (cx + s, cy - 0.4 * s)
    mouth_y = cy + 0.7 * s
    for i, dx in zip((61, 62, 63), (-0.2, 0.0, 0.2), strict=True):
        lm[i, :2] = (cx + dx * s, mouth_y - opening / 2)
    for i, dx in zip((67, 66, 65), (-0.2, 0.0, 0.2), strict=True):
        lm[i, :2] = (cx + dx * s, mouth_y + opening / 2)
    return lm


# ---------------------------------------------------------------------------------------------
# Rig


def test_rig_target_and_up_axis() -> None:
    target = np.array([0.1, 0.2, -0.3])
    cams = ring_rig(6, 64, 48, 30.0, radius=1.2, target=target)
    np.testing.assert_allclose(qc_rig.rig_target(cams), target, atol=1e-9)
    for up in ((0, 1, 0), (0, 0, 1), (1, 0, 0)):
        up = np.asarray(up, float)
        eyes = [np.cross(up, [0.3, 0.5, 0.7]) * 2 + 0.3 * k * up for k in range(-2, 3)]
        eyes = [e + 0.5 * np.roll(up, 1) * k for k, e in enumerate(eyes)]
        rig = [upright_camera(str(k), e, (0, 0, 0), up) for k, e in enumerate(eyes)]
        B = qc_rig._rig_basis(rig)
        np.testing.assert_allclose(B[2], up, atol=1e-9)
        np.testing.assert_allclose(B @ B.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(B) == pytest.approx(1.0)


def test_plot_camera_rig_size_and_content(tmp_path: Path) -> None:
    cams = {c.serial: c for c in ring_rig(8, 320, 240, 30.0)}
    points = np.random.default_rng(0).normal(scale=0.05, size=(68, 3))
    out = qc_rig.plot_camera_rig(
        cams, tmp_path / "rig.png", points=points, title="rig", figsize=(9.0, 4.5), dpi=100
    )
    img = read_png(out)
    assert img.shape == (450, 900, 3)
    assert img.std() > 10
    assert only_file(tmp_path) == ["rig.png"]  # atomic: no temporary left behind
    # Without points, from a list, other size.
    img2 = read_png(qc_rig.plot_camera_rig(list(cams.values()), tmp_path / "rig2.png", dpi=50))
    assert img2.shape == (300, 600, 3) and img2.std() > 10


# ---------------------------------------------------------------------------------------------
# Contact sheets


def _extent(img: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1) of the background-coloured pixels in the output."""
    ys, xs = np.nonzero(np.all(np.abs(img - BG) <= 2, axis=-1))
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def _to_output(uv, extent, size) -> np.ndarray:
    x0, y0, x1, y1 = extent
    w, h = size
    return np.array([x0 + (uv[0] + 0.5) / w * (x1 - x0), y0 + (uv[1] + 0.5) / h * (y1 - y0)])


def _marked(img, extent, centre, radius) -> np.ndarray:
    """(N, 3) colours of the non-background pixels within ``radius`` of ``centre``."""
    x0, y0, x1, y1 = extent
    yy, xx = np.mgrid[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1]
    near = np.hypot(xx - centre[0], yy - centre[1]) <= radius
    patch = img[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1]
    marked = near & np.any(np.abs(patch - BG) > 12, axis=-1)
    return patch[marked], np.stack([xx[marked], yy[marked]], axis=1)


def test_contact_sheet_places_landmarks_and_colours_them_by_confidence(tmp_path: Path) -> None:
    W, H = 64, 48
    image = np.broadcast_to(BG, (1, H, W, 3)).copy()
    lm = np.zeros((1, 68, 3))
    lm[0, 0] = (16.0, 36.0, 1.0)  # confident: a green dot
    lm[0, 1] = (50.0, 10.0, 0.0)  # undetected: hidden
    lm[0, 2] = (44.0, 24.0, 0.1)  # low confidence: a red cross
    out = contact_sheet.contact_sheet(image, lm, tmp_path / "sheet.png", titles=["220700191"])
    img = read_png(out)
    extent = _extent(img)
    scale = (extent[2] - extent[0]) / W
    assert scale > 2  # the view is shown large enough to judge
    assert (extent[3] - extent[1]) / H == pytest.approx(scale, rel=0.05)  # aspect kept

    expected = _to_output((16.0, 36.0), extent, (W, H))
    colours, where = _marked(img, extent, expected, 3 * scale)
    assert len(where) > 5
    np.testing.assert_allclose(where.mean(axis=0), expected, atol=max(2.0, 0.5 * scale))
    assert colours[:, 1].mean() > colours[:, 0].mean() + 40  # green: high confidence

    hidden, _ = _marked(img, extent, _to_output((50.0, 10.0), extent, (W, H)), 3 * scale)
    assert len(hidden) == 0

    low = _to_output((44.0, 24.0), extent, (W, H))
    colours, where = _marked(img, extent, low, 3 * scale)
    assert len(where) > 5
    np.testing.assert_allclose(where.mean(axis=0), low, atol=max(2.0, 0.5 * scale))
    assert colours[:, 0].mean() > colours[:, 1].mean() + 40  # red: low confidence


def test_contact_sheet_crop_centres_the_face(tmp_path: Path) -> None:
    W, H = 200, 150
    image = np.broadcast_to(BG, (1, H, W, 3)).copy()
    lm = np.zeros((1, 68, 3))
    lm[0, 0] = (20.0, 20.0, 1.0)
    lm[0, 1] = (40.0, 40.0, 1.0)
    img = read_png(contact_sheet.contact_sheet(image, lm, tmp_path / "crop.png", crop=True))
    x0, y0, x1, y1 = _extent(img)
    assert (x1 - x0) / (y1 - y0) == pytest.approx(1.0, abs=0.05)  # a square crop, not 4:3
    _, where = _marked(img, (x0, y0, x1, y1), ((x0 + x1) / 2, (y0 + y1) / 2), (x1 - x0))
    np.testing.assert_allclose(where.mean(axis=0), ((x0 + x1) / 2, (y0 + y1) / 2), atol=4)


def test_multi_frame_sheet_layout(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    F, C, H, W = 4, 2, 48, 64
    frames = [rng.integers(0, 256, (C, H, W, 3), dtype=np.uint8) for _ in range(F)]
    lms = np.stack(
        [np.stack([face_landmarks(32, 24, 8, 2.0 * f) for _ in range(C)]) for f in range(F)]
    )
    tall = read_png(
        contact_sheet.contact_sheet(
            frames, lms, tmp_path / "tall.png", titles=["a", "b"], frames=[0, 10, 20, 30]
        )
    )
    wide = read_png(
        contact_sheet.contact_sheet(
            np.stack(frames[:1] * 2, axis=1)[0], None, tmp_path / "wide.png"
        )
    )  # one frame, 4 views in a row
    assert tall.shape[0] > 1.2 * tall.shape[1]  # rows = frames, columns = cameras
    assert wide.shape[1] > 2 * wide.shape[0]
    assert tall.std() > 10 and wide.std() > 10
    with pytest.raises(ValueError, match="landmarks"):
        contact_sheet.contact_sheet(frames, lms[:, :1], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_mouth_opening_and_frame_picking() -> None:
    openings = np.array([3.0, 0.0, 6.0, 1.0, 9.0, 4.0, 2.0])
    lm = np.stack(
        [
            np.stack(
                [face_landmarks(100 + 5 * c, 80, 20 + 5 * c, o * (1 + c / 4)) for o in openings]
            )
            for c in range(3)
        ]
    )  # (C, T, 68, 3)
    lm[1, 2, 66, 2] = 0.0  # one camera misses a lip point in frame 2: the others decide
    score = contact_sheet.mouth_opening(lm)
    assert score.shape == (len(openings),)
    assert np.all(np.diff(score[np.argsort(openings)]) > 0)  # monotone in the true opening
    picks = contact_sheet.pick_frames(len(openings), 3, score)
    assert list(picks) == sorted(picks)
    assert {int(np.argmin(openings)), int(np.argmax(openings))} <= set(picks.tolist())
    assert list(contact_sheet.pick_frames(10, 4)) == [0, 3, 6, 9]
    assert list(contact_sheet.pick_frames(3, 5)) == [0, 1, 2]
    lm[..., 2] = 0.0
    assert np.all(np.isnan(contact_sheet.mouth_opening(lm)))
    assert list(contact_sheet.pick_frames(len(openings), 2, contact_sheet.mouth_opening(lm))) == [
        0,
        6,
    ]
    assert draw.pick_evenly(list("abcdefg"), 3) == ["a", "d", "g"]


def test_sequence_figures_from_a_capture(tmp_path: Path) -> None:
    root, subj, seq_name = tmp_path / "cap", "s1", "SEN"
    cams = ring_rig(3, 64, 48, 30.0)
    write_camera_params(root / subj / "camera_params.json", cams)
    seq_dir = root / subj / "sequences" / seq_name
    rng = np.random.default_rng(2)
    openings = [0.0, 8.0, 2.0, 5.0, 1.0]
    for t in range(len(openings)):
        d = seq_dir / "timesteps" / f"frame_{t:05d}" / "images"
        d.mkdir(parents=True)
        for c in cams:
            cv2.imwrite(
                str(d / f"cam_{c.serial}.png"), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            )
    (seq_dir / "annotations" / "landmarks2D").mkdir(parents=True)
    for c in cams:
        np.save(
            seq_dir / "annotations" / "landmarks2D" / f"cam_{c.serial}.npy",
            np.stack([face_landmarks(32, 24, 8, o) for o in openings]).astype(np.float32),
        )
    (seq_dir / "sequence.json").write_text(json.dumps({"fps": 30}))
    seq = open_sequence(root, subj, seq_name, validate=False)
    sheet = read_png(
        contact_sheet.sequence_contact_sheet(
            seq, tmp_path / "qc" / "sheet.png", n_frames=2, n_cameras=2
        )
    )
    assert sheet.shape[0] > sheet.shape[1] * 0.8 and sheet.std() > 10
    rig_png = read_png(qc_rig.plot_sequence_rig(seq, tmp_path / "qc" / "rig.png"))
    assert rig_png.shape == (600, 1200, 3)


# ---------------------------------------------------------------------------------------------
# Audio


def test_audio_levels() -> None:
    sr = 16000
    t = np.arange(sr) / sr
    lv = qc_audio.audio_levels(0.5 * np.sin(2 * np.pi * 440 * t))
    assert lv["peak_dbfs"] == pytest.approx(20 * np.log10(0.5), abs=0.01)
    assert lv["rms_dbfs"] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.01)
    assert lv["clipped_fraction"] == 0.0
    silent = qc_audio.audio_levels(np.zeros(100))
    assert silent["peak_dbfs"] == -np.inf and silent["rms_dbfs"] == -np.inf
    clipped = qc_audio.audio_levels(np.clip(2 * np.sin(2 * np.pi * 440 * t), -1, 1))
    assert 0.3 < clipped["clipped_fraction"] < 0.9


@pytest.mark.parametrize("kind", ["speechlike", "silent", "stereo", "tiny"])
def test_plot_audio_size_and_content(tmp_path: Path, kind: str) -> None:
    sr = 16000
    t = np.arange(2 * sr) / sr
    rng = np.random.default_rng(0)
    audio = {
        "speechlike": 0.1 * np.sin(2 * np.pi * 300 * t) * (np.sin(2 * np.pi * 3 * t) > 0)
        + 0.002 * rng.normal(size=t.size),
        "silent": np.zeros(t.size),
        "stereo": np.stack([0.2 * np.sin(2 * np.pi * 500 * t)] * 2, axis=1),
        "tiny": rng.normal(scale=0.1, size=10),
    }[kind]
    out = qc_audio.plot_audio(audio, sr, tmp_path / "mic.png", title=kind, figsize=(8, 4), dpi=100)
    img = read_png(out)
    assert img.shape == (400, 800, 3)
    assert img.std() > 10
    assert only_file(tmp_path) == ["mic.png"]


def test_spectrogram_shows_the_tone_at_its_frequency(tmp_path: Path) -> None:
    """A 2 kHz tone is the brightest row of the spectrogram panel at 2/8 of its height."""
    sr = 16000
    t = np.arange(sr) / sr
    audio = 0.5 * np.sin(2 * np.pi * 2000 * t) + 1e-4 * np.random.default_rng(0).normal(size=sr)
    img = read_png(qc_audio.plot_audio(audio, sr, tmp_path / "tone.png", figsize=(8, 6), dpi=100))
    # The spectrogram panel: the block of rows that are mostly near-black (the noise floor).
    lower = img[:, : int(img.shape[1] * 0.8)]
    dark = np.all(lower < 90, axis=-1)  # the noise floor is near-black in magma
    rows = np.flatnonzero(dark.mean(axis=1) > 0.5)
    groups = np.split(rows, np.flatnonzero(np.diff(rows) > 6) + 1)  # bridge the tone's row
    block = max(groups, key=len)
    top, bottom = block.min(), block.max()
    brightness = lower[top : bottom + 1].sum(axis=-1).mean(axis=1)
    peak_row = top + int(np.argmax(brightness))
    frac = (bottom - peak_row) / (bottom - top)
    assert frac == pytest.approx(2000 / 8000, abs=0.04)


def test_eye_opening_finds_the_blink():
    from talkhead.qc.contact_sheet import blink_frame, eye_opening

    rng = np.random.default_rng(1)
    lm = np.zeros((3, 20, 68, 3))
    lm[..., 2] = 1.0
    lm[..., 36, :2] = (100, 100)
    lm[..., 45, :2] = (200, 100)
    openness = np.full(20, 8.0)
    openness[13] = 0.5  # the lids meet on frame 13
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
        lm[..., upper, 0] = lm[..., lower, 0] = 120 + upper
        lm[..., upper, 1] = 100 - openness / 2
        lm[..., lower, 1] = 100 + openness / 2
    lm[..., :2] += rng.normal(0, 0.05, lm[..., :2].shape)
    eyes = eye_opening(lm)
    assert np.allclose(eyes, openness / 100, atol=0.01)
    assert blink_frame(eyes) == 13
    assert blink_frame(np.full(20, 0.08)) is None  # no blink: eyes open all along


# ---------------------------------------------------------------------------------------------
# Depth errors and points


def _axes_box(img: np.ndarray, colour: tuple[int, int, int], tol: int = 8) -> np.ndarray:
    """(y0, y1, x0, x1) of the pixels of ``colour`` in an RGB image."""
    ys, xs = np.nonzero(np.all(np.abs(img - np.array(colour)) <= tol, axis=-1))
    assert ys.size, f"no pixel of colour {colour}"
    return np.array([ys.min(), ys.max(), xs.min(), xs.max()])


def test_depth_error_figure_draws_missing_pixels_cyan_where_they_are(tmp_path: Path) -> None:
    """Missing face pixels in the left half of a camera are cyan there; the evaluated right half
    is drawn with the colormap (no cyan); the title carries the figures."""
    from talkhead.qc.depth import plot_depth_errors

    H, W = 60, 80
    images = np.full((1, H, W, 3), 128, np.uint8)
    error = np.full((1, H, W), np.nan)
    error[0, :, W // 2 :] = 1.0  # 1 mm on the right half
    missing = np.zeros((1, H, W), bool)
    missing[0, 10:50, 5:30] = True  # a block without depth on the left half
    metrics = {"depth_median_abs_err_mm": 1.0, "depth_p90_abs_err_mm": 1.5, "valid_fraction": 0.5}
    img = read_png(plot_depth_errors(images, error, missing, ["cam0"], tmp_path / "e.png", metrics))
    y0, y1, x0, x1 = _axes_box(img, (51, 255, 255), tol=40)  # cyan over a grey background
    # the image is drawn at a uniform scale: find the panel by the error colour (inferno at 0.5)
    ey0, ey1, ex0, ex1 = _axes_box(img, (188, 55, 84), tol=40)
    assert x1 < ex0  # the cyan block lies left of the evaluated half
    assert y0 > ey0 and y1 < ey1  # and within the image's height
    width = ex1 - ex0
    assert 0.5 * width < (x1 - x0) * (W // 2) / 25 < 1.5 * width  # 25 of 40 columns wide


def test_points_figure_does_not_draw_unlifted_landmarks_at_the_origin(tmp_path: Path) -> None:
    """Rejected landmarks that were lifted are grey crosses where they are; landmarks no view
    lifted (stored at the origin) are not drawn."""
    from talkhead.qc.points import plot_points

    rng = np.random.default_rng(0)
    pts = rng.uniform(-0.05, 0.05, (2000, 3)) + [0.0, 0.0, 1.0]
    nrm = np.tile([0.0, 0.0, 1.0], (2000, 1))
    lmk = np.zeros((68, 3))
    lmk[:10] = [0.04, 0.04, 1.0]  # valid
    lmk[10:20] = [-0.04, -0.04, 1.0]  # lifted, rejected
    valid = np.zeros(68, bool)
    valid[:10] = True

    def draw(keep: np.ndarray, name: str) -> np.ndarray:
        return read_png(plot_points(pts, nrm, lmk[keep], valid[keep], tmp_path / name, title="t"))

    everything = draw(np.ones(68, bool), "all.png")
    lifted = draw(np.arange(68) < 20, "lifted.png")
    valid_only = draw(np.arange(68) < 10, "valid.png")
    assert np.array_equal(everything, lifted)  # nothing drawn for the 48 at the origin
    changed = np.any(lifted != valid_only, axis=-1)  # the rejected crosses (and the legend)
    ys, xs = np.nonzero(changed[:, : lifted.shape[1] // 2])
    assert ys.size > 20
    red = np.all(np.abs(lifted - [255, 0, 0]) < 40, axis=-1)[:, : lifted.shape[1] // 2]
    ry, rx = np.nonzero(red)
    # front view: the crosses at (-x, -y) lie left of and below the valid dots at (+x, +y)
    assert np.median(xs) < rx.mean() and np.median(ys) > ry.mean()
