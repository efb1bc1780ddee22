"""QC figures of a FLAME fit checked by what they draw: loss curves at the values logged (terms
switched off named, not drawn), the mesh's vertices at the pixels the cameras project them to in
the wire colour, landmarks in their two colours, per-frame errors at their real frame ids, and
jitter bars as high as the hand-computed MAE and RMSE; and the jitter figures themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from talkhead.fitting.temporal import expression_jitter, frame_differences
from talkhead.geometry.cameras import Camera
from talkhead.qc import flame as qc_flame

BG = np.array([40, 40, 120])  # an RGB colour none of the figures' markers use
BG2 = np.array([110, 60, 30])


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


def near(img: np.ndarray, rc: tuple[int, int], colour, r: int = 1) -> float:
    """Smallest max-channel distance between ``colour`` (RGB in [0, 1]) and the pixels within
    ``r`` of ``rc``."""
    row, col = rc
    patch = img[row - r : row + r + 1, col - r : col + r + 1].reshape(-1, 3)
    return float(np.abs(patch - np.asarray(colour[:3]) * 255).max(axis=1).min())


def towards(pixel: np.ndarray, bg: np.ndarray, colour) -> tuple[float, float]:
    """(k, residual): ``pixel`` as ``bg + k (colour - bg)`` (alpha blending of ``colour`` over
    ``bg``) and how far it is from that segment."""
    d = np.asarray(colour) * 255 - bg
    k = float((pixel - bg) @ d / (d @ d))
    return k, float(np.linalg.norm(pixel - bg - k * d))


def gid(ax, name: str) -> list:
    return [a for a in ax.get_children() if getattr(a, "get_gid", lambda: None)() == name]


def texts(fig) -> list[str]:
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


# ---------------------------------------------------------------------------------------------
# Jitter figures


def test_expression_jitter_by_hand() -> None:
    codes = np.array([[0.0, 0.0], [1.0, -2.0], [3.0, 2.0]])
    # Frames 0, 1, 3: the second change spans 2 frames and is halved: d = [[1, -2], [1, 2]].
    np.testing.assert_allclose(frame_differences(codes, [0, 1, 3]), [[1, -2], [1, 2]])
    j = expression_jitter(codes, np.array([0, 1, 3]))
    assert j["mae"] == pytest.approx(1.5)  # (1 + 2 + 1 + 2) / 4
    assert j["rmse"] == pytest.approx(np.sqrt(2.5))  # sqrt((1 + 4 + 1 + 4) / 4)
    # Consecutive frames (no ids): d = [[1, -2], [2, 4]].
    j = expression_jitter(codes)
    assert j["mae"] == pytest.approx(2.25)
    assert j["rmse"] == pytest.approx(2.5)
    assert expression_jitter(codes, [10, 11, 12]) == expression_jitter(codes)  # ids, not indices
    one = expression_jitter(codes[:1], [4])
    assert np.isnan(one["mae"]) and np.isnan(one["rmse"])
    with pytest.raises(ValueError, match="strictly increasing"):
        expression_jitter(codes, [0, 2, 2])
    with pytest.raises(ValueError, match="expected \\(3,\\)"):
        expression_jitter(codes, [0, 1])
    with pytest.raises(ValueError, match="expected \\(T, E\\)"):
        expression_jitter(codes[0])


# ---------------------------------------------------------------------------------------------
# Loss curves


def test_loss_curves_at_their_values_and_off_terms_named(tmp_path: Path) -> None:
    from matplotlib.colors import to_rgb

    steps = np.arange(0, 501, 50)
    terms = {
        "landmark": 0.2 * np.exp(-steps / 150),
        "plane": np.zeros(steps.shape),  # switched off
        "expression reg": np.where(steps == 0, 0.0, 1e-4 * (1 + steps / 500)),  # 0 at start
        "point": np.full(steps.shape, 3e-3),
        "total": 4.0 * np.exp(-steps / 300),
    }
    fig = qc_flame.fit_losses_figure(steps, terms, title="fit")
    img = render(fig)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    assert not gid(ax, "loss plane")
    assert "off: plane" in ax.get_title()
    colours = {}
    for name in ("landmark", "expression reg", "point", "total"):
        (line,) = gid(ax, f"loss {name}")
        colours[name] = to_rgb(line.get_color())
        for i in (1, 5, 9):
            rc = pixel_of(ax, (steps[i], terms[name][i]), img)
            assert near(img, rc, colours[name]) < 40, (name, i)
    assert colours["total"] == (0.0, 0.0, 0.0)
    assert len(set(colours.values())) == 4
    # The landmark curve is not at the point term's level (the pixel there is another colour).
    rc = pixel_of(ax, (steps[5], terms["point"][5]), img)
    assert near(img, rc, colours["landmark"]) > 60
    (reg,) = gid(ax, "loss expression reg")
    assert np.isnan(reg.get_ydata()[0])  # a log axis cannot show the initial zero
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "landmark",
        "expression reg",
        "point",
        "total",
    ]
    out = qc_flame.plot_fit_losses(steps, terms, tmp_path / "losses.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["losses.png"]
    assert out.stat().st_size > 0


def test_loss_curves_linear_when_a_term_is_negative() -> None:
    steps = np.arange(5)
    terms = {"likelihood": np.array([-2.0, -1.0, 0.0, 1.0, 2.0]), "total": np.full(5, 5.0)}
    fig = qc_flame.fit_losses_figure(steps, terms)
    img = render(fig)
    (ax,) = fig.axes
    assert ax.get_yscale() == "linear"
    (line,) = gid(ax, "loss likelihood")
    from matplotlib.colors import to_rgb

    for i in range(5):
        assert (
            near(img, pixel_of(ax, (i, terms["likelihood"][i]), img), to_rgb(line.get_color())) < 40
        )
    assert "off" not in ax.get_title()
    with pytest.raises(ValueError, match="'total' has shape"):
        qc_flame.fit_losses_figure(steps, {"total": np.ones(4)})


# ---------------------------------------------------------------------------------------------
# Mesh over the images

W, H, FOCAL = 64, 48, 100.0
K = np.array([[FOCAL, 0, (W - 1) / 2], [0, FOCAL, (H - 1) / 2], [0, 0, 1]])


def front_camera() -> Camera:
    """At the world origin looking down +z (world = camera frame)."""
    return Camera("220700191", K.copy(), np.eye(4), W, H)


def back_camera() -> Camera:
    """At (0, 0, 2) looking down -z (turned 180 degrees about y): camera x = -world x,
    y = world y, z = 2 - world z."""
    T = np.diag([-1.0, 1.0, -1.0, 1.0])
    T[2, 3] = 2.0
    return Camera("220700192", K.copy(), T, W, H)


def fan(centre) -> tuple[np.ndarray, np.ndarray]:
    """(7, 3) vertices, (6, 3) faces: a hexagon of radius 8 cm in the plane z = centre z around
    ``centre`` (vertex 0), wound counter-clockwise seen from -z (its front faces the origin)."""
    a = np.radians(np.arange(6) * 60.0)
    ring = np.asarray(centre) + 0.08 * np.stack([np.cos(a), np.sin(a), np.zeros(6)], axis=1)
    verts = np.concatenate([np.asarray(centre, float)[None], ring])
    faces = np.array([[0, 1 + (i + 1) % 6, 1 + i] for i in range(6)])
    return verts, faces


def pixel_by_hand(point, camera: str) -> np.ndarray:
    """(u, v) of a world point in ``front_camera`` / ``back_camera``, from their definitions."""
    x, y, z = point
    if camera == "back":
        x, z = -x, 2.0 - z
    return np.array([FOCAL * x / z + (W - 1) / 2, FOCAL * y / z + (H - 1) / 2])


def uniform(colour) -> np.ndarray:
    return np.broadcast_to(np.asarray(colour, np.uint8), (H, W, 3)).copy()


@pytest.mark.parametrize("crop", [True, False])
def test_mesh_overlay_draws_vertices_where_the_cameras_project_them(crop: bool) -> None:
    centres = [(0.02, -0.01, 1.0), (-0.05, 0.04, 1.0)]  # frames 7 and 9: the head moved
    meshes = [fan(c) for c in centres]
    faces = meshes[0][1]
    vertices = np.stack([m[0] for m in meshes])
    fitted = np.full((2, 3, 3), np.nan)
    observed = np.zeros((2, 3, 3))  # the origin: not lifted, not drawn
    fitted[:, 0] = (-0.12, 0.1, 1.0)
    observed[:, 0] = (0.12, 0.1, 1.0)
    observed[:, 1] = (0.0, 0.0, -1.0)  # behind the front camera
    images = [[uniform(BG), uniform(BG)], [uniform(BG2), uniform(BG2)]]
    cams = [front_camera(), back_camera()]
    fig = qc_flame.mesh_overlay_figure(
        images, cams, vertices, faces, [7, 9], fitted, observed, crop=crop
    )
    img = render(fig)
    grid = [ax for ax in fig.axes if ax.images]
    assert len(grid) == 4
    assert [ax.get_ylabel() for ax in grid[::2]] == ["frame 7", "frame 9"]
    assert [ax.get_title() for ax in grid[:2]] == ["cam 220700191", "cam 220700192"]
    for f, bg in enumerate((BG, BG2)):
        front, back = grid[2 * f], grid[2 * f + 1]
        # Front camera: the fan's front; its centre vertex (where all 6 wires meet) is drawn in
        # the wire colour over the image at the pixel the calibration puts it.
        u, v = pixel_by_hand(centres[f], "front")
        row, col = pixel_of(front, (u, v), img)
        patch = img[row - 1 : row + 2, col - 1 : col + 2].reshape(-1, 3)
        k, residual = max((towards(p, bg, qc_flame.WIRE_COLOUR) for p in patch), key=lambda t: t[0])
        assert k > 0.3 and residual < 20, (f, k, residual)
        # ... and so is a rim vertex; the middle of a face (no edge) shows the image.
        rim = meshes[f][0][1]
        k, residual = towards(
            img[pixel_of(front, pixel_by_hand(rim, "front"), img)], bg, qc_flame.WIRE_COLOUR
        )
        assert k > 0.15 and residual < 20
        inside = (meshes[f][0][0] + meshes[f][0][1] + meshes[f][0][2]) / 3
        assert np.abs(img[pixel_of(front, pixel_by_hand(inside, "front"), img)] - bg).max() <= 3
        (wire,) = gid(front, "wire 220700191")
        assert len(wire.get_segments()) == 12  # 6 spokes + 6 rim edges
        # Back camera: it sees the fan from behind: nothing drawn (back faces culled).
        (wire,) = gid(back, "wire 220700192")
        assert len(wire.get_segments()) == 0
        rc = pixel_of(back, pixel_by_hand(centres[f], "back"), img)
        assert np.abs(img[rc] - bg).max() <= 3
        # Landmarks: fitted red, observed yellow, each where its camera projects it; the ones
        # at the origin or behind the camera are not drawn.
        for ax, cam in ((front, "front"), (back, "back")):
            (fit,) = gid(ax, f"fitted {cams[ax is back].serial}")
            (obs,) = gid(ax, f"observed {cams[ax is back].serial}")
            np.testing.assert_allclose(fit.get_xydata(), [pixel_by_hand(fitted[f, 0], cam)])
            want_obs = [pixel_by_hand(observed[f, 0], cam)]
            if cam == "back":  # (0, 0, -1) is in front of the back camera
                want_obs.append(pixel_by_hand(observed[f, 1], cam))
            np.testing.assert_allclose(obs.get_xydata(), want_obs)
            rc = pixel_of(ax, pixel_by_hand(fitted[f, 0], cam), img)
            assert near(img, rc, qc_flame.FITTED_LANDMARK_COLOUR, 0) < 30
            rc = pixel_of(ax, pixel_by_hand(observed[f, 0], cam), img)
            assert near(img, rc, qc_flame.OBSERVED_LANDMARK_COLOUR, 0) < 30
        # 0.24 m apart at 1 m, f = 100 px; only landmarks drawn in both colours count.
        assert front.get_xlabel() == back.get_xlabel() == "landmarks: 24.0 px mean"
    if crop:  # zoomed on the drawn geometry, not the whole image
        assert grid[0].get_xlim()[1] - grid[0].get_xlim()[0] < W - 1
    else:
        assert grid[0].get_xlim() == (-0.5, W - 0.5)
        assert grid[0].get_ylim() == (H - 0.5, -0.5)  # image rows downwards


def test_mesh_overlay_without_culling_draws_the_back() -> None:
    centre = (0.02, -0.01, 1.0)
    verts, faces = fan(centre)
    cams = [front_camera(), back_camera()]
    fig = qc_flame.mesh_overlay_figure(
        [[uniform(BG), uniform(BG)]], cams, verts[None], faces, [0], cull_back_faces=False
    )
    img = render(fig)
    back = [ax for ax in fig.axes if ax.images][1]
    (wire,) = gid(back, "wire 220700192")
    assert len(wire.get_segments()) == 12
    row, col = pixel_of(back, pixel_by_hand(centre, "back"), img)
    patch = img[row - 1 : row + 2, col - 1 : col + 2].reshape(-1, 3)
    k, residual = max((towards(p, BG, qc_flame.WIRE_COLOUR) for p in patch), key=lambda t: t[0])
    assert k > 0.3 and residual < 20
    # Every vertex of the wire is where the back camera (mirrored in x) puts it: the rim vertex
    # at +x is drawn left of the centre; the inside of a triangle shows the image.
    ends = np.concatenate(wire.get_segments())
    by_hand = np.array([pixel_by_hand(v, "back") for v in verts])
    assert np.abs(ends[:, None] - by_hand[None]).sum(axis=-1).min(axis=1).max() < 1e-9
    rim = pixel_by_hand(verts[1], "back")
    assert rim[0] < pixel_by_hand(centre, "back")[0]
    k, residual = towards(img[pixel_of(back, rim, img)], BG, qc_flame.WIRE_COLOUR)
    assert k > 0.15 and residual < 20
    inside = pixel_by_hand(verts[:3].mean(axis=0), "back")
    assert np.abs(img[pixel_of(back, inside, img)] - BG).max() <= 3


def test_mesh_edges_and_input_checks(tmp_path: Path) -> None:
    edges = qc_flame.mesh_edges(np.array([[0, 1, 2], [2, 1, 3]]))
    assert edges.tolist() == [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3]]
    verts, faces = fan((0.0, 0.0, 1.0))
    cams = [front_camera()]
    with pytest.raises(ValueError, match="\\[frame\\]\\[view\\]"):
        qc_flame.plot_mesh_overlay(
            [[uniform(BG)]], cams, np.stack([verts] * 2), faces, [0, 1], tmp_path / "x.png"
        )
    with pytest.raises(ValueError, match="vertices has shape"):
        qc_flame.plot_mesh_overlay([[uniform(BG)]], cams, verts, faces, [0], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
    out = qc_flame.plot_mesh_overlay(
        [[uniform(BG)]], cams, verts[None], faces, [0], tmp_path / "ok.png"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.png"] and out.exists()


# ---------------------------------------------------------------------------------------------
# Per-frame errors


def test_frame_errors_at_real_frame_ids_with_means_and_thresholds(tmp_path: Path) -> None:
    from matplotlib.colors import to_rgb

    ids = np.array([0, 1, 2, 5, 6])  # frames 3 and 4 dropped
    errors = {
        "face": np.array([0.5, 0.6, 0.7, 0.8, 0.4]),
        "lips": np.array([1.0, 1.4, np.nan, 1.6, 1.2]),  # frame 2 not evaluated
    }
    fig = qc_flame.frame_errors_figure(ids, errors, {"face": 1.0, "lips": 1.5})
    img = render(fig)
    (ax,) = fig.axes
    (face,) = gid(ax, "error face")
    (lips,) = gid(ax, "error lips")
    x = face.get_xdata()
    np.testing.assert_array_equal(x[np.isfinite(x)], ids)  # real ids, not 0..4
    assert np.isnan(x[3])  # the line breaks over the gap
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[:2] == ["face: mean 0.60 mm", "lips: mean 1.30 mm"]
    assert labels[2:] == ["face target 1 mm", "lips target 1.5 mm"]
    for name, line in (("face", face), ("lips", lips)):
        for fid, e in zip(ids, errors[name], strict=True):
            if np.isfinite(e):
                assert near(img, pixel_of(ax, (fid, e), img), to_rgb(line.get_color())) < 40
    (face_target,) = gid(ax, "threshold face")
    assert face_target.get_color() == face.get_color()
    np.testing.assert_allclose(face_target.get_ydata(), 1.0)
    row, _ = pixel_of(ax, (3, 1.0), img)
    left = int(round(ax.transData.transform((ids[0], 1.0))[0]))
    right = int(round(ax.transData.transform((ids[-1], 1.0))[0]))
    along = np.abs(img[row, left:right] - np.array(to_rgb(face.get_color())) * 255).max(axis=1)
    assert (along < 40).mean() > 0.3  # a dashed line at 1 mm in the face colour
    qc_flame.plot_frame_errors(ids, errors, tmp_path / "errors.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["errors.png"]
    with pytest.raises(ValueError, match="'face' has shape"):
        qc_flame.frame_errors_figure(ids[:4], errors)
    with pytest.raises(ValueError, match="strictly increasing"):
        qc_flame.frame_errors_figure(ids[::-1], errors)


# ---------------------------------------------------------------------------------------------
# Jitter figure


def test_jitter_bars_are_the_hand_computed_mae_and_rmse(tmp_path: Path) -> None:
    from matplotlib.colors import to_rgb

    rng = np.random.default_rng(3)
    ids = np.array([0, 1, 2, 4, 5, 6, 8])
    truth = np.cumsum(rng.normal(0, 0.05, (len(ids), 4)), axis=0)
    series = {
        "with smoothing": truth + rng.normal(0, 0.01, truth.shape),
        "without smoothing": truth + rng.normal(0, 0.1, truth.shape),
        "ground truth": truth,
    }
    fig = qc_flame.jitter_figure(ids, series)
    img = render(fig)
    curves, bars = fig.axes
    gaps = np.diff(ids)
    for name, codes in series.items():
        d = np.diff(codes, axis=0) / gaps[:, None]  # by hand
        want = {"mae": np.abs(d).mean(), "rmse": np.sqrt((d**2).mean())}
        (line,) = gid(curves, f"change {name}")
        np.testing.assert_array_equal(line.get_xdata(), ids[1:])
        np.testing.assert_allclose(line.get_ydata(), np.linalg.norm(d, axis=1))
        for metric in ("mae", "rmse"):
            (bar,) = gid(bars, f"bar {name} {metric}")
            assert bar.get_height() == pytest.approx(want[metric])
            colour = to_rgb(bar.get_facecolor())
            x = bar.get_x() + 0.15 * bar.get_width()  # beside the value written on top
            assert near(img, pixel_of(bars, (x, 0.95 * want[metric]), img), colour, 0) < 10
            assert near(img, pixel_of(bars, (x, 1.08 * want[metric]), img), colour, 0) > 60
            assert f"{want[metric]:.3g}" in texts(fig)
    mae = {n: gid(bars, f"bar {n} mae")[0].get_height() for n in series}
    assert mae["without smoothing"] > mae["with smoothing"] > 0
    qc_flame.plot_jitter(ids, series, tmp_path / "jitter.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jitter.png"]
    with pytest.raises(ValueError, match="'truth' has shape"):
        qc_flame.jitter_figure(ids, {"truth": truth[:3]})
