"""QC figures checked by what they draw: cameras, optical axes and frusta where the calibration
puts them; landmarks where they belong, coloured by confidence; the frames picked for the most
open and most closed mouth; normals in the colours the caption names; the report pages' figures
and captions; and figures of a bad stage that say what is missing instead of failing."""

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
from talkhead.qc import contact_sheet, draw, pages
from talkhead.qc import depth as qc_depth
from talkhead.qc import points as qc_points
from talkhead.qc import rig as qc_rig

BG = np.array([40, 40, 120], np.uint8)  # an RGB colour no colormap used here produces


def read_png(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, path
    return img[..., ::-1].astype(np.int32)


def only_file(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def figures(monkeypatch) -> dict[str, object]:
    """``{file name: matplotlib Figure}`` of every QC figure written during the test (they are
    still written)."""
    drawn: dict[str, object] = {}
    for module in (qc_rig, qc_audio, qc_depth, qc_points, contact_sheet):

        def keep(fig, path, real=module.save_figure):
            drawn[Path(path).name] = fig
            return real(fig, path)

        monkeypatch.setattr(module, "save_figure", keep)
    return drawn


def texts(fig) -> list[str]:
    """Every non-empty text of a figure (titles, labels, annotations, legend entries)."""
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def render(fig) -> np.ndarray:
    """(H, W, 3) int RGB pixels of ``fig`` drawn on the Agg canvas (transforms valid after)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].astype(np.int32)


def pixel_of(ax, xy, img: np.ndarray) -> tuple[int, int]:
    """(row, column) of data point ``xy`` of 2D axes ``ax`` in the rendered image."""
    x, y = ax.transData.transform(np.asarray(xy, float))
    return int(round(img.shape[0] - y)), int(round(x))


def gid_lines(ax, gid: str) -> list:
    return [line for line in ax.get_lines() if line.get_gid() == gid]


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
        B = qc_rig.rig_display_basis(rig)
        np.testing.assert_allclose(B[2], up, atol=1e-9)
        np.testing.assert_allclose(B @ B.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(B) == pytest.approx(1.0)


def z_up_rig() -> tuple[list[Camera], np.ndarray]:
    """Four upright cameras at irregular angles and heights around a target, world z up: the
    display frame is the world's (x, y, z), the top view (x, y)."""
    target = np.array([0.05, -0.03, 0.0])
    eyes = [
        (1.0 * np.cos(a), 1.0 * np.sin(a), h)
        for a, h in zip(np.radians([-70, -20, 35, 110]), (0.1, -0.05, 0.0, 0.2), strict=True)
    ]
    cams = [upright_camera(f"2207{k}", e, target, (0, 0, 1)) for k, e in enumerate(eyes)]
    return cams, target


def test_rig_figure_draws_each_camera_where_its_calibration_puts_it(tmp_path: Path) -> None:
    """Top view: each camera's centre marker is at the pixel of its centre (-R^T t) in its own
    colour, its optical axis runs forwards (towards the target it looks at) and its frustum
    lies in front of it; 3D view: the frustum's thick edge is the top of the image (up)."""
    cams, target = z_up_rig()
    fig = qc_rig.camera_rig_figure(cams, title="rig", figsize=(12, 6), dpi=100)
    img = render(fig)
    ax3 = next(a for a in fig.axes if a.name == "3d")
    top = next(a for a in fig.axes if a.name != "3d")
    assert [top.get_xlabel(), top.get_ylabel()] == ["world +x (m)", "world +y (m)"]
    for cam in cams:
        eye = -cam.R.T @ cam.t  # the centre, from the calibration alone
        forward = (target - eye) / np.linalg.norm(target - eye)
        (marker,) = gid_lines(top, f"centre {cam.serial}")
        np.testing.assert_allclose(np.ravel(marker.get_xydata()), eye[:2], atol=1e-9)
        row, col = pixel_of(top, eye[:2], img)
        colour = np.array(marker.get_color()[:3]) * 255
        patch = img[row - 1 : row + 2, col - 1 : col + 2].reshape(-1, 3)
        assert np.abs(patch - colour).max(axis=1).min() < 30, cam.serial  # drawn there

        (axis2d,) = gid_lines(top, f"axis {cam.serial}")
        start, end = axis2d.get_xydata()
        np.testing.assert_allclose(start, eye[:2], atol=1e-9)
        step = end - start
        assert step @ forward[:2] > 0.99 * np.linalg.norm(step) * np.linalg.norm(forward[:2])
        # ... and on screen: from the centre's pixel towards the target's pixel.
        r1, c1 = pixel_of(top, end, img)
        rt, ct = pixel_of(top, target[:2], img)
        assert np.dot([r1 - row, c1 - col], [rt - row, ct - col]) > 0

        corners = np.concatenate(
            [ln.get_xydata() for ln in gid_lines(top, f"frustum {cam.serial}")]
        )
        assert np.all((corners - eye[:2]) @ forward[:2] >= -1e-9)
        assert ((corners - eye[:2]) @ forward[:2]).max() > 0.05

        (axis3d,) = gid_lines(ax3, f"axis {cam.serial}")
        a3 = np.stack(axis3d.get_data_3d(), axis=1)
        np.testing.assert_allclose(a3[0], eye, atol=1e-9)
        np.testing.assert_allclose(np.cross(a3[1] - a3[0], forward), 0, atol=1e-9)
        assert (a3[1] - a3[0]) @ forward > 0
        edges = [
            np.stack(ln.get_data_3d(), axis=1) for ln in gid_lines(ax3, f"frustum {cam.serial}")
        ]
        thick = [
            e
            for e, ln in zip(edges, gid_lines(ax3, f"frustum {cam.serial}"), strict=True)
            if ln.get_linewidth() > 2
        ]
        assert len(thick) == 1
        far = np.concatenate([e for e in edges if not np.allclose(e[0], eye)])
        assert thick[0][:, 2].mean() > far[:, 2].mean()  # the image's top edge is up (+z)


def test_plot_camera_rig_writes_a_png_of_the_asked_size(tmp_path: Path) -> None:
    cams = {c.serial: c for c in ring_rig(8, 320, 240, 30.0)}
    points = np.random.default_rng(0).normal(scale=0.05, size=(68, 3))
    out = qc_rig.plot_camera_rig(
        cams, tmp_path / "rig.png", points=points, title="rig", figsize=(9.0, 4.5), dpi=100
    )
    assert read_png(out).shape == (450, 900, 3)
    assert only_file(tmp_path) == ["rig.png"]  # atomic: no temporary left behind
    with pytest.raises(ValueError, match="at least one camera"):
        qc_rig.plot_camera_rig([], tmp_path / "none.png")


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


def landmark_capture(root: Path, openings: list[float], n_cams: int = 3):
    """A capture whose 2D landmarks open the mouth by ``openings`` pixels per frame (the
    truth), on random images."""
    subj, seq_name = "s1", "SEN"
    cams = ring_rig(n_cams, 64, 48, 30.0)
    write_camera_params(root / subj / "camera_params.json", cams)
    seq_dir = root / subj / "sequences" / seq_name
    rng = np.random.default_rng(2)
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
    return open_sequence(root, subj, seq_name, validate=False)


@pytest.mark.parametrize("openings", [[0.0, 8.0, 2.0, 5.0, 1.0], [6.0, 1.0, 3.0, 0.5, 9.0, 2.0]])
def test_contact_sheet_rows_are_the_most_closed_and_most_open_mouths(
    tmp_path: Path, figures, openings
) -> None:
    seq = landmark_capture(tmp_path / "cap", openings)
    contact_sheet.sequence_contact_sheet(
        seq, tmp_path / "qc" / "sheet.png", n_frames=2, n_cameras=2
    )
    fig = figures["sheet.png"]
    rows = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel().startswith("frame ")]
    opened, closed = int(np.argmax(openings)), int(np.argmin(openings))
    assert [r.split()[1] for r in rows] == [str(t) for t in sorted((opened, closed))]
    (most_open,) = [r for r in rows if "(most open)" in r]
    (most_closed,) = [r for r in rows if "(most closed)" in r]
    assert most_open.startswith(f"frame {opened} ")
    assert most_closed.startswith(f"frame {closed} ")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [seq.serials[0], seq.serials[-1]]  # cameras spread over the rig
    # The images drawn are those of the frames named, in each camera (cropped to the face).
    from talkhead.capture.readers import read_images, read_landmarks

    lmk = read_landmarks(seq, [seq.serials[0], seq.serials[-1]])
    views = iter(ax.images[0].get_array() for ax in fig.axes if ax.images)
    for t in sorted((opened, closed)):
        for c, serial in enumerate([seq.serials[0], seq.serials[-1]]):
            x0, y0, x1, y1 = contact_sheet._landmark_box(
                [lmk[c, opened], lmk[c, closed]], 64, 48, margin=0.35
            )
            frame = read_images(seq, seq.frame_ids[t], [serial])[0]
            np.testing.assert_array_equal(next(views), frame[y0:y1, x0:x1])


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
def test_plot_audio_size_and_title(tmp_path: Path, figures, kind: str) -> None:
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
    assert only_file(tmp_path) == ["mic.png"]
    levels = qc_audio.audio_levels(audio)
    peak = "-inf" if kind == "silent" else f"{levels['peak_dbfs']:.1f}"
    title = figures["mic.png"]._suptitle.get_text()
    assert title.startswith(f"{kind}: peak {peak} dBFS, RMS ")
    assert f"{len(audio) / sr:.2f} s at {sr} Hz" in title


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


# ---------------------------------------------------------------------------------------------
# Depth maps: normals in the colours the caption names


def test_normals_are_drawn_as_half_n_plus_one_in_camera_xyz(tmp_path: Path, figures) -> None:
    """Known normals in three blocks of one camera: facing the camera (0, 0, -1) is olive,
    facing right (+x) pink, facing up (-y) purple; invalid pixels black. Read back from the
    rendered figure's pixels, through the panel's data-to-pixel transform."""
    from talkhead.depth.io import DepthFrame

    H, W = 30, 60
    normal = np.zeros((1, H, W, 3), np.float32)
    normal[0, :, :20] = (0, 0, -1)
    normal[0, :, 20:40] = (1, 0, 0)
    normal[0, :, 40:] = (0, -1, 0)
    depth = np.full((1, H, W), 1.0, np.float32)
    depth[0, :5] = 0.0  # invalid top rows
    frame = DepthFrame(depth, normal, np.ones((1, H, W), np.float32), ("220700191",))
    images = np.full((1, H, W, 3), 128, np.uint8)
    qc_depth.plot_depth_maps(images, frame, ["220700191"], tmp_path / "d.png", title="t")
    fig = figures["d.png"]
    img = render(fig)
    (panel,) = [ax for ax in fig.axes if ax.get_title() == qc_depth.NORMAL_PANEL_TITLE]
    expected = {(15, 10): (0.5, 0.5, 0.0), (15, 30): (1.0, 0.5, 0.5), (15, 50): (0.5, 0.0, 0.5)}
    expected[(2, 30)] = (0.0, 0.0, 0.0)
    for (r, c), rgb in expected.items():
        row, col = pixel_of(panel, (c, r), img)
        np.testing.assert_allclose(img[row, col], 255 * np.array(rgb), atol=3, err_msg=(r, c))
    assert "RGB = (n + 1) / 2" in qc_depth.NORMAL_PANEL_TITLE
    np.testing.assert_allclose(
        qc_depth.normal_rgb(normal[0], depth[0] > 0)[15, [10, 30, 50]],
        [(0.5, 0.5, 0.0), (1.0, 0.5, 0.5), (0.5, 0.0, 0.5)],
    )


def test_report_caption_names_the_normal_colours() -> None:
    caption = (Path(__file__).parents[1] / "workflow/report/depth_maps.rst").read_text()
    assert "RGB = (n + 1) / 2" in " ".join(caption.split())


# ---------------------------------------------------------------------------------------------
# Report pages (talkhead.qc.pages): which figures, which captions


def test_capture_page_draws_rig_sheet_and_microphone_of_the_sequence(
    tiny_studio, tmp_path: Path, figures
) -> None:
    seq = tiny_studio.open()
    out = pages.capture_qc(
        seq, tmp_path / "rig.png", tmp_path / "sheet.png", tmp_path / "mic.png", 2, 2
    )
    assert out == {
        "rig": tmp_path / "rig.png",
        "contact_sheet": tmp_path / "sheet.png",
        "audio": tmp_path / "mic.png",
    }
    assert only_file(tmp_path) == ["mic.png", "rig.png", "sheet.png"]
    rig = figures["rig.png"]
    assert rig._suptitle.get_text() == f"camera rig of subject syn000: {seq.n_cameras} cameras"
    top = next(a for a in rig.axes if a.name != "3d")
    centres = {ln.get_gid().split()[1] for ln in top.get_lines() if "centre" in str(ln.get_gid())}
    assert centres == set(seq.serials)
    sheet = figures["sheet.png"]
    assert sheet._suptitle.get_text() == (
        f"syn000 / SEN-00: {seq.n_frames} frames, {seq.n_cameras} cameras"
    )
    titles = [ax.get_title() for ax in sheet.axes if ax.get_title()]
    assert titles == [seq.serials[0], seq.serials[-1]]
    rows = [ax.get_ylabel() for ax in sheet.axes if ax.get_ylabel().startswith("frame ")]
    assert len(rows) >= 2 and sum("(most open)" in r for r in rows) == 1
    mic = figures["mic.png"]._suptitle.get_text()
    assert mic.startswith("microphone of syn000 / SEN-00: peak ")


def test_depth_page_draws_the_middle_frame_of_the_cameras_named(
    tiny_studio, tmp_path: Path, figures
) -> None:
    """Rows are cameras spread over the rig, each with its own depth and normals."""
    from talkhead.depth.io import depth_frame_path, load_depth_frame
    from talkhead.evaluation.ground_truth import GroundTruth

    seq = tiny_studio.open()
    depth_dir = GroundTruth.open(tiny_studio.gt_dir).path / "depth"
    pages.depth_qc(seq, depth_dir, tmp_path / "maps.png", {"backend": "torch"}, n_cameras=2)
    fig = figures["maps.png"]
    t = seq.frame_ids[seq.n_frames // 2]
    assert fig._suptitle.get_text() == f"syn000 / SEN-00, frame {t}: backend torch"
    shown = [seq.serials[0], seq.serials[-1]]
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    panel = ["depth (m)", qc_depth.NORMAL_PANEL_TITLE, "confidence"]
    assert titles == [x for s in shown for x in (f"cam {s}: image", *panel)]
    frame = load_depth_frame(depth_frame_path(depth_dir, t))
    depth_axes = [ax for ax in fig.axes if ax.get_title() == "depth (m)"]
    normal_axes = [ax for ax in fig.axes if ax.get_title() == qc_depth.NORMAL_PANEL_TITLE]
    for s, d_ax, n_ax in zip(shown, depth_axes, normal_axes, strict=True):
        true = frame.depth[frame.index(s)]
        drawn = np.ma.filled(d_ax.images[0].get_array(), 0.0)
        np.testing.assert_allclose(np.nan_to_num(drawn), true, atol=1e-6)
        np.testing.assert_allclose(
            n_ax.images[0].get_array(), qc_depth.normal_rgb(frame.normal[frame.index(s)], true > 0)
        )


def test_depth_error_page_titles_carry_the_evaluation(tiny_studio, tmp_path: Path, figures):
    from talkhead.evaluation.stage import DepthErrorView

    seq = tiny_studio.open()
    serials = (seq.serials[2], seq.serials[0])
    error = np.full((2, seq.height, seq.width), np.nan)
    error[0, 10:20, 10:20] = 1.5
    error[1, 30:40, 5:15] = 0.5
    view = DepthErrorView(seq.frame_ids[1], serials, error, np.zeros(error.shape, bool))
    evaluation = {
        "depth_median_abs_err_mm": 1.234,
        "depth_p90_abs_err_mm": 4.567,
        "valid_fraction": 0.789,
    }
    pages.depth_error_qc(seq, view, tmp_path / "errors.png", evaluation)
    fig = figures["errors.png"]
    assert fig._suptitle.get_text() == (
        "depth error in the face mask (cyan: no depth)\nmedian 1.23 mm, p90 4.57 mm, valid 78.9 %"
    )
    panels = [ax for ax in fig.axes if ax.get_title().startswith("cam ")]
    assert [ax.get_title() for ax in panels] == [f"cam {s}" for s in serials]
    for c, ax in enumerate(panels):
        np.testing.assert_array_equal(ax.images[1].get_array(), error[c])


def write_points_file(path: Path, valid_middle: np.ndarray, lifted_middle: bool = True) -> dict:
    from talkhead.points.io import save_points

    rng = np.random.default_rng(3)
    sizes = (40, 25, 30)
    pts = rng.uniform(-0.1, 0.1, (sum(sizes), 3)).astype(np.float32)
    nrm = np.tile(np.float32([0, 0, 1]), (sum(sizes), 1))
    lmk = rng.uniform(-0.05, 0.05, (3, 68, 3)).astype(np.float32)
    if not lifted_middle:
        lmk[1] = 0.0
    valid = np.ones((3, 68), bool)
    valid[1] = valid_middle
    data = {
        "points": pts,
        "normals": nrm,
        "frame_offsets": np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        "landmarks3d": lmk,
        "landmarks3d_valid": valid,
        "frames": np.array([4, 8, 12]),
    }
    save_points(path, data)
    return data


def test_points_page_draws_the_middle_frame(tmp_path: Path, figures) -> None:
    valid = np.arange(68) < 34
    data = write_points_file(tmp_path / "points.npz", valid)
    pages.points_qc(tmp_path / "points.npz", tmp_path / "p.png", {"landmarks_valid_fraction": 0.5})
    fig = figures["p.png"]
    assert fig._suptitle.get_text() == "frame 8: 25 points; 3D landmarks valid 50.0 %"
    front = next(ax for ax in fig.axes if ax.get_title() == "front (x, y)")
    cloud, good, bad = front.collections
    np.testing.assert_allclose(cloud.get_offsets(), data["points"][40:65, :2])
    np.testing.assert_allclose(good.get_offsets(), data["landmarks3d"][1, valid, :2])
    np.testing.assert_allclose(bad.get_offsets(), data["landmarks3d"][1, ~valid, :2])
    assert not [t for t in texts(fig) if t.startswith("no ")]


@pytest.mark.parametrize(
    ("lifted", "note"),
    [(True, "no valid 3D landmark: all 68 lifted were rejected"), (False, "no 3D landmark")],
)
def test_points_page_of_a_bad_stage_says_what_is_missing(
    tmp_path: Path, figures, lifted, note
) -> None:
    """No valid landmark in the middle frame and a null figure in metrics.json: the page is
    drawn with what there is and says what is missing."""
    write_points_file(tmp_path / "points.npz", np.zeros(68, bool), lifted_middle=lifted)
    out = pages.points_qc(
        tmp_path / "points.npz", tmp_path / "p.png", {"landmarks_valid_fraction": None}
    )
    assert out.is_file()
    fig = figures["p.png"]
    assert fig._suptitle.get_text() == "frame 8: 25 points; 3D landmarks valid n/a"
    assert any(t.startswith(note) for t in texts(fig))
    front = next(ax for ax in fig.axes if ax.get_title() == "front (x, y)")
    assert len(front.collections[0].get_offsets()) == 25  # the cloud is still drawn
    assert front.get_legend() is None or lifted


def test_points_page_without_any_point_says_so(tmp_path: Path, figures) -> None:
    from talkhead.points.io import save_points

    empty = {
        "points": np.zeros((0, 3), np.float32),
        "normals": np.zeros((0, 3), np.float32),
        "frame_offsets": np.array([0], np.int64),
        "landmarks3d": np.zeros((0, 68, 3), np.float32),
        "landmarks3d_valid": np.zeros((0, 68), bool),
        "frames": np.zeros(0, np.int64),
    }
    save_points(tmp_path / "points.npz", empty)
    pages.points_qc(tmp_path / "points.npz", tmp_path / "p.png", {})
    fig = figures["p.png"]
    assert fig._suptitle.get_text() == "points.npz: no frame"
    assert any(t.startswith("no points in this frame") for t in texts(fig))
