"""QC figures of an NPHM fit checked by what they draw: a sphere rendered as a lit disc where
the orthographic view puts it (centre, radius, light), the mesh grid's columns in the order
truth / decoded / without the temporal loss, per-frame chamfer at the real frame ids, the code
autocorrelation at its known answers (cos w for a sinusoid, 0 for white noise), the Table-2
numbers in their cells; and the page that reads an NPHM fit's files."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import trimesh

from talkhead.errors import StageOutputError
from talkhead.fitting.temporal import expression_jitter
from talkhead.qc import nphm as qc_nphm
from talkhead.qc.nphm import OrthoView, TrueMeshes

FRONT = OrthoView(
    centre=np.zeros(3),
    forward=np.array([0.0, 0.0, 1.0]),
    up=np.array([0.0, 1.0, 0.0]),
    half_width=0.1,
    size=100,
)  # 2 mm per pixel; world x to the right, y up


def sphere(centre, radius: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
    s = trimesh.creation.icosphere(subdivisions=4, radius=radius)
    return np.asarray(s.vertices) + np.asarray(centre, float), np.asarray(s.faces)


def lit(img: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels that are not the background."""
    return np.any(np.abs(img - np.asarray(qc_nphm.BACKGROUND)) > 1e-6, axis=-1)


def disc(img: np.ndarray) -> tuple[np.ndarray, float]:
    """(column, row) centroid and equivalent radius (px) of the lit pixels."""
    rows, cols = np.nonzero(lit(img))
    return np.array([cols.mean(), rows.mean()]), float(np.sqrt(len(rows) / np.pi))


def gid(ax, name: str) -> list:
    return [a for a in ax.get_children() if getattr(a, "get_gid", lambda: None)() == name]


def find(fig, name: str):
    """(axes, artist) of the one artist with gid ``name`` in ``fig``."""
    found = [(ax, a) for ax in fig.axes for a in gid(ax, name)]
    assert len(found) == 1, (name, len(found))
    return found[0]


# ---------------------------------------------------------------------------------------------
# Renders


def test_a_sphere_renders_as_a_lit_disc_where_the_view_puts_it() -> None:
    centre = np.array([0.024, -0.016, 0.05])  # 12 px right, 8 px down of the image centre
    verts, faces = sphere(centre, 0.03)
    colour = (0.6, 0.7, 0.8)
    img = qc_nphm.render_mesh(verts, faces, FRONT, colour)
    assert img.shape == (100, 100, 3)
    c = (FRONT.size - 1) / 2
    np.testing.assert_allclose(FRONT.project(centre[None])[0], [c + 12, c + 8])
    at, radius = disc(img)
    np.testing.assert_allclose(at, [c + 12, c + 8], atol=0.2)
    assert radius == pytest.approx(15.0, rel=0.03)  # 30 mm at 2 mm per pixel
    # Background everywhere beyond the disc, the surface inside it in the given tint.
    cols, rows = np.meshgrid(np.arange(100), np.arange(100))
    dist = np.hypot(cols - (c + 12), rows - (c + 8))
    assert not lit(img)[dist > 16].any() and lit(img)[dist < 14].all()
    inside = img[dist < 14]
    ratio = inside / np.asarray(colour)
    np.testing.assert_allclose(ratio, ratio[:, :1].repeat(3, axis=1), atol=1e-5)
    assert ratio.min() >= qc_nphm.AMBIENT - 1e-5
    # Lambert shading: the brightest point faces the light; the centre faces the viewer.
    light = qc_nphm.light_direction(FRONT)
    brightest = np.unravel_index(np.argmax(np.where(lit(img), img[..., 0], 0)), (100, 100))
    want = FRONT.project((centre + 0.03 * light)[None])[0]
    assert np.hypot(brightest[1] - want[0], brightest[0] - want[1]) < 1.5
    assert want[1] < c + 8 and want[0] < c + 12  # lit from above and the viewer's left
    # Every pixel shaded by the sphere's true normal where its ray meets it.
    pix = FRONT.pixel_size
    dx, dy = (cols - c) * pix - centre[0], (c - rows) * pix - centre[1]
    inner = dist < 13
    dz = np.sqrt(0.03**2 - dx[inner] ** 2 - dy[inner] ** 2)
    normal = np.stack([dx[inner], dy[inner], dz], axis=1) / 0.03
    want_shade = qc_nphm.AMBIENT + (1 - qc_nphm.AMBIENT) * np.abs(normal @ light)
    np.testing.assert_allclose(img[inner][:, 0] / colour[0], want_shade, atol=0.02)
    # Two-sided: the same mesh wound the other way renders the same.
    np.testing.assert_allclose(
        qc_nphm.render_mesh(verts, faces[:, ::-1], FRONT, colour), img, atol=1e-5
    )


def test_the_view_looks_along_forward_with_up_upwards() -> None:
    # Seen from +x (forward = +x, up = +y): world -z is to the viewer's right.
    side = qc_nphm.frontal_view([sphere((0, 0, 0), 0.1)[0]], forward=(1, 0, 0), up=(0.2, 1, 0))
    np.testing.assert_allclose(side.up, [0, 1, 0], atol=1e-12)  # made orthogonal to forward
    np.testing.assert_allclose(side.right, [0, 0, -1], atol=1e-12)
    verts, faces = sphere((0.0, 0.05, -0.05), 0.02)
    view = qc_nphm.frontal_view([sphere((0, 0, 0), 0.1)[0]], forward=(1, 0, 0), size=80)
    at, _ = disc(qc_nphm.render_mesh(verts, faces, view))
    c = (view.size - 1) / 2
    assert at[0] > c + 5 and at[1] < c - 5  # right of and above the centre
    np.testing.assert_allclose(at, view.project(np.array([[0.0, 0.05, -0.05]]))[0], atol=0.3)
    # The default view frames every vertex, with the margin on the widest side.
    a, b = sphere((-0.05, 0.0, 0.0))[0], sphere((0.08, 0.02, 0.1))[0]
    view = qc_nphm.frontal_view([a, b], margin=0.1)
    uv = view.project(np.concatenate([a, b]))
    width = uv[:, 0].max() - uv[:, 0].min()
    assert width == pytest.approx(view.size / 1.2, rel=1e-6)
    assert uv.min() > 0 and uv.max() < view.size - 1
    with pytest.raises(ValueError, match="up \\(orthogonal to forward\\)"):
        qc_nphm.frontal_view([a], forward=(0, 1, 0), up=(0, 2, 0))
    with pytest.raises(ValueError, match="faces index vertices"):
        qc_nphm.render_mesh(a, np.array([[0, 1, len(a)]]), view)


def test_mesh_grid_columns_are_truth_decoded_unsmoothed(tmp_path: Path) -> None:
    places = {"truth": (-0.04, 0.03, 0.0), "decoded": (0.04, 0.0, 0.0), "unsmoothed": (0, -0.04, 0)}
    frames = np.array([3, 7])
    meshes = {k: [sphere(p), sphere(p)] for k, p in places.items()}
    fig = qc_nphm.meshes_figure(
        frames,
        meshes["decoded"],
        truth=meshes["truth"],
        unsmoothed=meshes["unsmoothed"],
        view=FRONT,
        chamfer_mm={"decoded": np.array([1.25, 0.5]), "unsmoothed": np.array([1.5, 0.75])},
        highlight=7,
    )
    for col, key in enumerate(("truth", "decoded", "unsmoothed")):
        for row, t in enumerate(frames):
            ax, image = find(fig, f"render {key} {t}")
            spec = ax.get_subplotspec()
            assert (spec.rowspan.start, spec.colspan.start) == (row, col)
            img = np.asarray(image.get_array())
            at, radius = disc(img)
            np.testing.assert_allclose(at, FRONT.project(np.array([places[key]]))[0], atol=0.3)
            assert radius == pytest.approx(15.0, rel=0.03)
            tint = img[lit(img)][0] / np.asarray(qc_nphm.COLUMN_COLOURS[key])
            np.testing.assert_allclose(tint, tint[0], atol=1e-5)
            if row == 0:
                assert ax.get_title() == qc_nphm.COLUMN_TITLES[key]
            if key != "truth":
                want = {"decoded": [1.25, 0.5], "unsmoothed": [1.5, 0.75]}[key][row]
                assert ax.get_xlabel() == f"chamfer-L1 {want:.2f} mm"
    ax, _ = find(fig, "difference 7")
    assert ax.get_subplotspec().colspan.start == 3 and ax.get_title() == ""
    assert find(fig, "difference 3")[0].get_title() == "decoded - truth (height)"
    left = find(fig, "render truth 3")[0]
    assert left.get_ylabel() == "frame 3"
    assert find(fig, "render truth 7")[0].get_ylabel() == "frame 7\nlargest chamfer-L1"
    assert "panel width 200 mm" in fig._suptitle.get_text()
    # Without truth the decoded meshes come first and frame the default view.
    fig = qc_nphm.meshes_figure(frames, meshes["decoded"])
    ax, image = find(fig, "render decoded 3")
    assert ax.get_subplotspec().colspan.start == 0 and len(fig.axes) == 2
    at, _ = disc(np.asarray(image.get_array()))
    np.testing.assert_allclose(at, (255 / 2, 255 / 2), atol=0.5)  # centred in the frame
    out = qc_nphm.plot_meshes(frames, meshes["decoded"], tmp_path / "m.png", view=FRONT)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.png"] and out.exists()
    with pytest.raises(ValueError, match="1 truth meshes for 2 frames"):
        qc_nphm.meshes_figure(frames, meshes["decoded"], truth=meshes["truth"][:1])


def test_difference_panel_is_the_height_of_decoded_minus_truth() -> None:
    import matplotlib as mpl

    truth = sphere((0.0, 0.0, 0.0), 0.03)
    decoded = sphere((0.0, 0.0, 0.002), 0.04)  # 2 mm towards the viewer, 1 cm wider
    fig = qc_nphm.meshes_figure([0], [decoded], truth=[truth], view=FRONT)
    _, image = find(fig, "difference 0")
    img = np.asarray(image.get_array())
    c = (FRONT.size - 1) / 2
    cols, rows = np.meshgrid(np.arange(100), np.arange(100))
    dist = np.hypot(cols - c, rows - c) * FRONT.pixel_size  # metres from the axis
    both, one, none = dist < 0.025, (dist > 0.031) & (dist < 0.039), dist > 0.041
    # Where both are hit: the colour of the height difference on the +-5 mm scale.
    r_true = np.sqrt(np.maximum(0.03**2 - dist**2, 0))
    r_dec = np.sqrt(np.maximum(0.04**2 - dist**2, 0))
    diff_mm = (0.002 + r_dec - r_true) * 1000
    want = mpl.colormaps["RdBu_r"](np.clip(0.5 + diff_mm / 10, 0, 1))[..., :3]
    # ... on the true surface's shading (its normal where the ray meets it).
    light = qc_nphm.light_direction(FRONT)
    dx, dy = (cols - c) * FRONT.pixel_size, (c - rows) * FRONT.pixel_size
    normal = np.stack([dx, dy, r_true], axis=-1) / 0.03
    want *= (qc_nphm.AMBIENT + (1 - qc_nphm.AMBIENT) * np.abs(normal @ light))[..., None]
    assert np.abs(img[both] - want[both]).max() < 0.03
    assert np.all(img[both & (dist < 0.005)][:, 0] > img[both & (dist < 0.005)][:, 2])  # red
    np.testing.assert_allclose(img[one], np.broadcast_to(qc_nphm.SILHOUETTE_COLOUR, (one.sum(), 3)))
    np.testing.assert_allclose(img[none], 1.0)
    # The same surface twice: white (no difference) wherever it is hit.
    same = qc_nphm.height_difference_image(np.full((2, 2), 0.1), np.full((2, 2), 0.1))
    np.testing.assert_allclose(same, np.broadcast_to(mpl.colormaps["RdBu_r"](0.5)[:3], (2, 2, 3)))
    behind = qc_nphm.height_difference_image(np.zeros((1, 1)), np.full((1, 1), 0.01), 5.0)
    np.testing.assert_allclose(behind[0, 0], mpl.colormaps["RdBu_r"](0.0)[:3], rtol=1e-6)


def test_picked_frames_are_even_plus_the_worst() -> None:
    ids = np.arange(10, 30)
    chamfer = np.linspace(1.0, 2.0, 20)
    chamfer[13] = 9.0
    chamfer[5] = np.nan
    rows, worst = qc_nphm.pick_mesh_frames(ids, 3, chamfer)
    assert rows.tolist() == [0, 10, 13, 19] and worst == 13
    rows, worst = qc_nphm.pick_mesh_frames(ids, 3)
    assert rows.tolist() == [0, 10, 19] and worst is None
    rows, worst = qc_nphm.pick_mesh_frames(ids, 3, np.where(ids == 29, 5.0, 1.0))
    assert rows.tolist() == [0, 10, 19] and worst == 19  # already shown: no extra row
    rows, worst = qc_nphm.pick_mesh_frames(ids, 3, np.full(20, np.nan))
    assert worst is None
    with pytest.raises(ValueError, match="chamfer_mm has shape"):
        qc_nphm.pick_mesh_frames(ids, 3, chamfer[:4])


# ---------------------------------------------------------------------------------------------
# Chamfer per frame


def test_chamfer_per_frame_lines_at_real_ids_broken_at_gaps(tmp_path: Path) -> None:
    ids = np.array([0, 1, 2, 6, 7])  # frames 3-5 dropped
    series = {
        "w/ temporal loss": np.array([1.0, 1.2, 1.1, 1.3, 1.4]),
        "w/o temporal loss": np.array([0.9, 1.1, np.nan, 1.2, 1.3]),
    }
    fig = qc_nphm.chamfer_frames_figure(ids, series, target_mm=1.5)
    (ax,) = fig.axes
    assert ax.get_ylabel() == "chamfer-L1 (mm)"
    for name, y in series.items():
        (line,) = gid(ax, f"error {name}")
        x, ly = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
        assert np.isnan(x[3]) and np.isnan(ly[3])  # the break between frames 2 and 6
        np.testing.assert_array_equal(np.delete(x, 3), ids)
        np.testing.assert_array_equal(np.delete(ly, 3), y)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[:2] == ["w/ temporal loss: mean 1.20 mm", "w/o temporal loss: mean 1.12 mm"]
    (target,) = gid(ax, "threshold w/ temporal loss")
    np.testing.assert_allclose(target.get_ydata(), 1.5)
    qc_nphm.plot_chamfer_frames(ids, series, tmp_path / "c.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png"]


def test_chamfer_legend_lies_below_the_axes_inside_the_figure() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    ids = np.arange(40)
    series = {"w/ temporal loss": np.full(40, 1.1), "w/o temporal loss": np.full(40, 1.2)}
    fig = qc_nphm.chamfer_frames_figure(
        ids, series, target_mm=1.5, title="syn000 / SEN-00: NPHM chamfer-L1 per frame"
    )
    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # the layout of the saved figure (save_figure draws at the figure's dpi)
    renderer = canvas.get_renderer()
    (legend,) = fig.legends
    box, ax = legend.get_window_extent(renderer), fig.axes[0].get_window_extent(renderer)
    page = fig.bbox
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1
    assert box.y1 <= ax.y0  # below the axes, not beside them
    assert len(legend.get_texts()) == 3
    assert fig.get_size_inches()[1] == pytest.approx(4 + qc_nphm.LEGEND_ROW_IN)
    # nothing drawn outside the figure (tick labels, title, legend)
    tight = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)
    assert tight.x0 >= 0 and tight.y0 >= 0
    assert tight.x1 <= fig.bbox.x1 and tight.y1 <= fig.bbox.y1


# ---------------------------------------------------------------------------------------------
# Autocorrelation


def test_autocorrelation_known_answers() -> None:
    t = np.arange(600)
    omega = np.array([0.1, 0.25, 0.4])
    phase = np.array([0.0, 1.0, 2.0])
    smooth = np.sin(omega[:, None] * 0 + 0.2 * t[None] + phase[:, None]).T  # (T, 3), w = 0.2
    r = qc_nphm.code_autocorrelation(smooth, max_lag=5)
    np.testing.assert_allclose(r, np.cos(0.2 * np.arange(1, 6)), atol=0.01)
    noise = np.random.default_rng(0).normal(size=(2000, 8))
    assert np.abs(qc_nphm.code_autocorrelation(noise, max_lag=3)).max() < 0.05
    # Variance-weighted: a still dimension with tiny noise does not dilute the moving one.
    mixed = np.stack([np.sin(0.2 * t), 1e-3 * np.random.default_rng(1).normal(size=600)], 1)
    assert qc_nphm.code_autocorrelation(mixed, max_lag=1)[0] == pytest.approx(np.cos(0.2), abs=0.01)
    # Lags count frames, not rows: every other frame kept -> no lag-1 pair, lag 2 is 2 frames.
    ids = t[::2]
    r = qc_nphm.code_autocorrelation(smooth[::2], ids, max_lag=2)
    assert np.isnan(r[0]) and r[1] == pytest.approx(np.cos(0.4), abs=0.01)
    assert np.isnan(qc_nphm.code_autocorrelation(np.ones((5, 2)), max_lag=1)[0])  # no variance
    with pytest.raises(ValueError, match="strictly increasing"):
        qc_nphm.code_autocorrelation(smooth[:3], [0, 2, 1])
    with pytest.raises(ValueError, match="max_lag"):
        qc_nphm.code_autocorrelation(smooth, max_lag=0)


def test_frame_correlation_by_hand() -> None:
    codes = np.array([[1.0, 0.0], [3.0, 2.0], [-1.0, -2.0], [1.0, 0.0]])  # mean (1, 0)
    c = qc_nphm.frame_correlation(codes)
    x = codes - [1.0, 0.0]  # rows 0 and 3 at the mean: NaN
    assert np.isnan(c[0]).all() and np.isnan(c[:, 3]).all()
    assert c[1, 2] == pytest.approx(-1.0) and c[1, 1] == pytest.approx(1.0)
    assert c[1, 2] == pytest.approx(x[1] @ x[2] / np.linalg.norm(x[1]) / np.linalg.norm(x[2]))


def test_autocorrelation_figure_draws_the_values(tmp_path: Path) -> None:
    t = np.arange(200)
    smooth = np.stack([np.sin(0.3 * t), np.cos(0.3 * t + 0.5)], axis=1)
    jittery = smooth + np.random.default_rng(2).normal(0, 1.0, smooth.shape)
    series = {"w/ temporal loss": smooth, "w/o temporal loss": jittery}
    fig = qc_nphm.autocorrelation_figure(t, series, max_lag=6)
    for name, codes in series.items():
        ax, line = find(fig, f"acf {name}")
        want = qc_nphm.code_autocorrelation(codes, t, 6)
        np.testing.assert_array_equal(line.get_xdata(), np.arange(1, 7))
        np.testing.assert_allclose(line.get_ydata(), want)
        assert f"{name}: r(1) = {want[0]:.3f}" in [x.get_text() for x in ax.get_legend().texts]
        _, image = find(fig, f"correlation {name}")
        np.testing.assert_allclose(np.asarray(image.get_array()), qc_nphm.frame_correlation(codes))
        assert image.get_clim() == (-1.0, 1.0)
    smooth_r1 = find(fig, "acf w/ temporal loss")[1].get_ydata()[0]
    assert smooth_r1 == pytest.approx(np.cos(0.3), abs=0.02)
    assert find(fig, "acf w/o temporal loss")[1].get_ydata()[0] < smooth_r1 - 0.2
    qc_nphm.plot_autocorrelation(t, series, tmp_path / "a.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
    with pytest.raises(ValueError, match="expected \\(200, E\\)"):
        qc_nphm.autocorrelation_figure(t, {"x": smooth[:10]})


# ---------------------------------------------------------------------------------------------
# Table 2


class _Tables(HTMLParser):
    """Rows of cell texts of the HTML's tables, and the caption's text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.caption = ""
        self._cell: list[str] | None = None
        self._in_caption = False

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "caption":
            self._in_caption = True

    def handle_endtag(self, tag) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "caption":
            self._in_caption = False

    def handle_data(self, data) -> None:
        if self._cell is not None:
            self._cell.append(data)
        elif self._in_caption:
            self.caption += data


def parse_table(text: str) -> tuple[dict[str, dict[str, str]], str]:
    p = _Tables()
    p.feed(text)
    header, *body = p.rows
    assert header[0] == "method"
    return {row[0]: dict(zip(header[1:], row[1:], strict=True)) for row in body}, p.caption


EVALUATION = {
    "chamfer_l1_mm": 1.1,
    "fscore_5mm": 0.975,
    "jitter_mae": 0.002,
    "jitter_rmse": 0.004,
    "unsmoothed_chamfer_l1_mm": 1.0,
    "unsmoothed_fscore_5mm": 0.98,
    "unsmoothed_jitter_mae": 0.01,
    "unsmoothed_jitter_rmse": 0.013,
    "accuracy_mm": 0.9,
}


def test_table2_numbers_land_in_their_cells(tmp_path: Path) -> None:
    out = qc_nphm.write_table2(EVALUATION, tmp_path / "table2.html", title="syn001 / s1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table2.html"]
    rows, caption = parse_table(out.read_text(encoding="utf-8"))
    assert list(rows) == ["w/o temporal loss", "w/ temporal loss", "w/o ÷ w/"]
    w, wo, ratio = rows["w/ temporal loss"], rows["w/o temporal loss"], rows["w/o ÷ w/"]
    assert (w["MAE (ours)"], w["RMSE (ours)"]) == ("0.00200", "0.00400")
    assert (wo["MAE (ours)"], wo["RMSE (ours)"]) == ("0.01000", "0.01300")
    assert (w["chamfer-L1 (mm)"], wo["chamfer-L1 (mm)"]) == ("1.100", "1.000")
    assert (w["F-score@5mm"], wo["F-score@5mm"]) == ("0.975", "0.980")
    assert (w["MAE (FaceTalk)"], wo["MAE (FaceTalk)"]) == ("0.00248", "0.01422")
    assert (w["RMSE (FaceTalk)"], wo["RMSE (FaceTalk)"]) == ("0.00623", "0.01978")
    assert (w["LSE-D (FaceTalk)"], wo["LSE-D (FaceTalk)"]) == ("10.5478", "10.9221")
    assert w["LSE-D (ours)"] == wo["LSE-D (ours)"] == "-"  # no lip sync yet
    assert ratio["MAE (ours)"] == "5.00x" and ratio["MAE (FaceTalk)"] == "5.73x"
    assert ratio["RMSE (ours)"] == "3.25x" and ratio["chamfer-L1 (mm)"] == "0.91x"
    assert ratio["LSE-D (ours)"] == "-"
    assert "synthetic studio" in caption and "own NPHM" in caption
    assert "without / with the loss: 5.00x (FaceTalk: 5.73x)" in caption
    assert "chamfer-L1 with the loss: +10.0 % against without" in caption
    # Lip sync, once measured, shows; missing figures are '-'.
    rows, caption = parse_table(qc_nphm.table2_html({"lse_d": 10.2, "jitter_mae": 0.003}))
    assert rows["w/ temporal loss"]["LSE-D (ours)"] == "10.2000"
    assert rows["w/ temporal loss"]["MAE (ours)"] == "0.00300"
    assert rows["w/o temporal loss"]["MAE (ours)"] == "-"
    assert rows["w/ temporal loss"]["chamfer-L1 (mm)"] == "-"
    assert rows["w/o ÷ w/"]["MAE (ours)"] == "-"
    assert "without / with the loss: - (FaceTalk: 5.73x)" in caption


# ---------------------------------------------------------------------------------------------
# The page


def write_fit(folder: Path, frames: np.ndarray, codes: np.ndarray, centres: np.ndarray) -> None:
    """An NPHM fit's files as the fit writes them: codes, one sphere mesh per frame, log."""
    (folder / "nphm_meshes").mkdir(parents=True)
    np.savez(folder / "codes.npz", frames=frames, expression=codes.astype(np.float32))
    for t, c in zip(frames, centres, strict=True):
        v, f = sphere(c, 0.02)
        trimesh.Trimesh(v, f, process=False).export(folder / "nphm_meshes" / f"frame_{t:05d}.ply")
    with (folder / "fit_log.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "lr_factor", "sdf", "normal", "reg_expression", "temporal", "total"])
        for s in range(0, 300, 50):
            w.writerow([s, 1, 1e-3 / (s + 1), 0.1, 1e-4, 1e-5, 2e-3 / (s + 1)])


@pytest.fixture
def nphm_fit(tmp_path: Path) -> dict:
    frames = np.array([0, 1, 2, 3, 5, 6, 7, 8])  # frame 4 dropped
    t = frames.astype(float)
    smooth = np.stack([np.sin(0.3 * t), np.cos(0.3 * t)], axis=1)
    jittery = smooth + np.random.default_rng(4).normal(0, 0.3, smooth.shape)
    centres = np.stack([0.002 * t, np.zeros_like(t), np.zeros_like(t)], axis=1)
    fit = tmp_path / "results" / "nphm" / "syn001" / "s1"
    write_fit(fit, frames, smooth, centres)
    write_fit(fit / "unsmoothed", frames, jittery, centres + [0, 0.01, 0])
    (fit / "evaluation.json").write_text(json.dumps(EVALUATION))
    with (fit / "evaluation_frames.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["frame", "chamfer_l1_mm", "fscore_5mm", "unsmoothed_chamfer_l1_mm"])
        for i, f in enumerate(frames):
            w.writerow([f, 1.0 + (2.0 if f == 6 else 0.01 * i), 0.99, 0.9 + 0.01 * i])
    every = np.arange(9)  # the truth has frame 4 too: its rows are not the codes' rows
    true_v = np.stack([sphere((0.002 * f, -0.01, 0.0), 0.02)[0] for f in every])
    truth = TrueMeshes(every, true_v, sphere((0, 0, 0), 0.02)[1])
    qc = tmp_path / "qc"
    outputs = {
        "meshes_path": qc / "meshes.png",
        "chamfer_path": qc / "chamfer_frames.png",
        "autocorrelation_path": qc / "autocorrelation.png",
        "losses_path": qc / "fit_losses.png",
        "table_path": qc / "table2.html",
    }
    return {
        "dir": fit,
        "frames": frames,
        "smooth": smooth,
        "jittery": jittery,
        "truth": truth,
        "centres": centres,
        "outputs": outputs,
        "qc": qc,
    }


def spy(monkeypatch, name: str) -> list:
    """Record the arguments of ``talkhead.qc.nphm.<name>`` (still called)."""
    calls: list = []
    real = getattr(qc_nphm, name)

    def record(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(qc_nphm, name, record)
    return calls


def test_page_reads_the_fit_and_draws_what_it_holds(nphm_fit: dict, monkeypatch) -> None:
    from talkhead.qc.pages import nphm_fit_qc

    meshes, chamfer, acf = (
        spy(monkeypatch, n) for n in ("plot_meshes", "plot_chamfer_frames", "plot_autocorrelation")
    )
    fit = nphm_fit["dir"]
    out = nphm_fit_qc(
        fit / "codes.npz",
        fit / "fit_log.csv",
        **nphm_fit["outputs"],
        unsmoothed_codes_path=fit / "unsmoothed" / "codes.npz",
        evaluation_path=fit / "evaluation.json",
        frames_csv_path=fit / "evaluation_frames.csv",
        truth=nphm_fit["truth"],
        n_frames=3,
        title="syn001 / s1",
        chamfer_target_mm=1.5,
    )
    assert sorted(out) == ["autocorrelation", "chamfer", "losses", "meshes", "table2"]
    assert sorted(p.name for p in nphm_fit["qc"].iterdir()) == [
        "autocorrelation.png",
        "chamfer_frames.png",
        "fit_losses.png",
        "meshes.png",
        "table2.html",
    ]
    # Meshes: 3 even frames (rows 0, 4, 7) + frame 6 (largest chamfer), each column from its
    # own source.
    ((args, kw),) = meshes
    shown = np.asarray(args[0])
    assert shown.tolist() == [0, 5, 6, 8] and kw["highlight"] == 6
    frames, centres = nphm_fit["frames"], nphm_fit["centres"]
    for i, t in enumerate(shown):
        row = int(np.flatnonzero(frames == t)[0])
        for key, shift in (("decoded", 0.0), ("unsmoothed", 0.01), ("truth", -0.01)):
            v, _ = (args[1] if key == "decoded" else kw[key])[i]
            np.testing.assert_allclose(v.mean(axis=0), centres[row] + [0, shift, 0], atol=1e-9)
    np.testing.assert_allclose(kw["chamfer_mm"]["decoded"], [1.0, 1.04, 3.0, 1.07])
    np.testing.assert_allclose(kw["chamfer_mm"]["unsmoothed"], [0.9, 0.94, 0.95, 0.97])
    # Chamfer per frame at the codes' frames, both fits, with the target.
    ((args, kw),) = chamfer
    np.testing.assert_array_equal(args[0], frames)
    assert list(args[1]) == ["w/ temporal loss", "w/o temporal loss"]
    np.testing.assert_allclose(args[1]["w/o temporal loss"], 0.9 + 0.01 * np.arange(8))
    assert kw["target_mm"] == 1.5
    # Autocorrelation of the two code tracks.
    ((args, kw),) = acf
    np.testing.assert_array_equal(args[0], frames)
    np.testing.assert_allclose(args[1]["w/ temporal loss"], nphm_fit["smooth"], rtol=1e-6)
    np.testing.assert_allclose(args[1]["w/o temporal loss"], nphm_fit["jittery"], rtol=1e-6)
    # The table holds evaluation.json's figures.
    rows, _ = parse_table(out["table2"].read_text(encoding="utf-8"))
    assert rows["w/ temporal loss"]["MAE (ours)"] == "0.00200"
    assert rows["w/o temporal loss"]["chamfer-L1 (mm)"] == "1.000"


def test_page_without_ground_truth_or_second_fit(nphm_fit: dict, monkeypatch) -> None:
    from talkhead.qc.pages import nphm_fit_qc

    meshes = spy(monkeypatch, "plot_meshes")
    fit = nphm_fit["dir"]
    out = nphm_fit_qc(fit / "codes.npz", fit / "fit_log.csv", **nphm_fit["outputs"])
    ((args, kw),) = meshes
    assert kw["truth"] is None and kw["unsmoothed"] is None and kw["highlight"] is None
    assert np.asarray(args[0]).tolist() == [0, 5, 8]
    assert out["chamfer"].exists()
    rows, _ = parse_table(out["table2"].read_text(encoding="utf-8"))
    jitter = expression_jitter(nphm_fit["smooth"].astype(np.float32), nphm_fit["frames"])
    assert rows["w/ temporal loss"]["MAE (ours)"] == f"{jitter['mae']:.5f}"  # from the codes
    assert rows["w/ temporal loss"]["chamfer-L1 (mm)"] == "-"
    assert rows["w/o temporal loss"]["MAE (ours)"] == "-"
    # A mesh folder named by the caller is read instead of the one beside the codes.
    other = fit / "unsmoothed" / "nphm_meshes"
    nphm_fit_qc(fit / "codes.npz", fit / "fit_log.csv", **nphm_fit["outputs"], meshes_dir=other)
    v, _ = meshes[-1][0][1][0]
    np.testing.assert_allclose(v.mean(axis=0), nphm_fit["centres"][0] + [0, 0.01, 0], atol=1e-9)


def test_page_names_a_missing_mesh(nphm_fit: dict) -> None:
    from talkhead.qc.pages import nphm_fit_qc

    fit = nphm_fit["dir"]
    (fit / "nphm_meshes" / "frame_00008.ply").unlink()
    with pytest.raises(StageOutputError, match="frame_00008.ply: the NPHM fit wrote no mesh"):
        nphm_fit_qc(fit / "codes.npz", fit / "fit_log.csv", **nphm_fit["outputs"])
    np.savez(fit / "unsmoothed" / "codes.npz", frames=np.arange(3), expression=np.zeros((3, 2)))
    with pytest.raises(StageOutputError, match="must cover the same frames"):
        nphm_fit_qc(
            fit / "codes.npz",
            fit / "fit_log.csv",
            **nphm_fit["outputs"],
            unsmoothed_codes_path=fit / "unsmoothed" / "codes.npz",
        )


def test_page_draws_the_second_fit_total_and_faces_the_head(
    nphm_fit: dict, monkeypatch, tmp_path: Path
) -> None:
    from talkhead.flame.params import save_flame_params
    from talkhead.qc import flame as qc_flame
    from talkhead.qc.pages import nphm_fit_qc

    losses = []
    real = qc_flame.fit_losses_figure

    def record(*args, **kwargs):
        losses.append((args, real(*args, **kwargs)))
        return losses[-1][1]

    monkeypatch.setattr(qc_flame, "fit_losses_figure", record)
    meshes = spy(monkeypatch, "plot_meshes")
    T = 5
    turned = np.zeros((T, 3))
    turned[T // 2] = [0.0, np.pi / 2, 0.0]  # the middle frame: turned 90 degrees about y
    save_flame_params(
        tmp_path / "flame.npz",
        {
            "shape": np.zeros(4),
            "expression": np.zeros((T, 3)),
            "rotation": turned,
            "translation": np.zeros((T, 3)),
            "jaw": np.zeros((T, 3)),
            "neck": np.zeros((T, 3)),
            "eyes": np.zeros((T, 6)),
        },
    )
    fit = nphm_fit["dir"]
    nphm_fit_qc(
        fit / "codes.npz",
        fit / "fit_log.csv",
        **nphm_fit["outputs"],
        unsmoothed_fit_log_path=fit / "unsmoothed" / "fit_log.csv",
        flame_params_path=tmp_path / "flame.npz",
    )
    (((steps, terms), fig),) = losses
    assert list(terms)[-1] == "total, w/o temporal loss"
    np.testing.assert_allclose(terms["total, w/o temporal loss"], 2e-3 / (steps + 1))
    (line,) = gid(fig.axes[0], "loss total, w/o temporal loss")
    assert line.get_linestyle() == "--" and line.get_color() == "black"
    np.testing.assert_allclose(line.get_ydata(), 2e-3 / (steps + 1))
    assert [t.get_text() for t in fig.legends[0].get_texts()][-1] == "total, w/o temporal loss"
    assert len(fig.legends) == 1
    ((_, kw),) = meshes
    # FLAME's face looks along the model's +z; turned about y it looks along world +x.
    np.testing.assert_allclose(kw["view"].forward, [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(kw["view"].up, [0, 1, 0], atol=1e-6)
