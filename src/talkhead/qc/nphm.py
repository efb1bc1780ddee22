"""QC figures of an NPHM fit: decoded meshes beside the true ones, chamfer-L1 per frame, the
FaceTalk supplement's Table 2 (expression fitting with and without the temporal loss) as an
HTML table, and the correlation of the expression codes between neighbouring frames (the
supplement's Fig. 2).

Pure functions over arrays (meshes, codes, figures of ``evaluation.json``); each ``plot_*``
writes a PNG atomically and returns its path, and its ``*_figure`` twin returns the matplotlib
figure (as in :mod:`talkhead.qc.flame`). Every drawn artist carries a ``gid`` naming what it
shows (``"render truth <frame>"``, ``"acf <series>"``, ...), so the figures can be checked by
what they draw. Meshes are rendered headless by ray casting (open3d's ``RaycastingScene``,
CPU), not by matplotlib's 3D axes.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..fitting.temporal import frame_spacing
from ..io import PathLike, atomic_path
from .draw import new_figure, pick_evenly, save_figure
from .flame import frame_errors_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "COLUMN_COLOURS",
    "COLUMN_TITLES",
    "FACETALK_TABLE2",
    "OrthoView",
    "TrueMeshes",
    "chamfer_frames_figure",
    "code_autocorrelation",
    "frame_correlation",
    "frontal_view",
    "height_difference_image",
    "lambert",
    "autocorrelation_figure",
    "meshes_figure",
    "pick_mesh_frames",
    "plot_autocorrelation",
    "plot_chamfer_frames",
    "plot_meshes",
    "raycast",
    "render_mesh",
    "shade",
    "table2_html",
    "table2_rows",
    "write_table2",
]

BACKGROUND = (1.0, 1.0, 1.0)
"""RGB of the renders where no mesh is hit (white, as the figure)."""
AMBIENT = 0.25
"""Share of a surface's colour it keeps facing away from the light (so no mesh pixel is as
dark as a shadow, nor ever the background's white)."""
LIGHT_TILT = (0.5, -0.35)
"""The light's direction as ``forward + a * up + b * right`` for these (a, b): from above and
from the viewer's left, so that relief shows."""
COLUMN_TITLES = {
    "truth": "ground truth",
    "decoded": "decoded, w/ temporal loss",
    "unsmoothed": "decoded, w/o temporal loss",
}
"""The mesh figure's columns, left to right (the ones given), and their titles."""
COLUMN_COLOURS = {
    "truth": (0.86, 0.74, 0.60),
    "decoded": (0.60, 0.74, 0.88),
    "unsmoothed": (0.68, 0.84, 0.62),
}
"""RGB albedo of each column's meshes (warm truth, blue decoded, green decoded without the
temporal loss), so a panel says what it shows even when cut out of the figure."""
DIFFERENCE_CMAP = "RdBu_r"
"""Colormap of the decoded-minus-true height panel (blue: decoded behind the truth, white: on
it, red: in front of it)."""
SILHOUETTE_COLOUR = (0.45, 0.45, 0.45)
"""RGB of the difference panel's pixels where only one of the two meshes is hit."""
DIFFERENCE_RANGE_MM = 5.0
"""Height difference (mm) at the ends of the difference panel's colour scale (the F-score's
outer threshold)."""
SERIES = {"decoded": "w/ temporal loss", "unsmoothed": "w/o temporal loss"}
"""Labels of the fit with and without the temporal Huber loss in plots and tables (the
mesh figure's column keys to the series names the other figures and the table use)."""


# ---------------------------------------------------------------------------------------------
# Headless renders


def _unit(v: Sequence[float], name: str) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    n = float(np.linalg.norm(v)) if v.shape == (3,) else 0.0
    if not np.isfinite(n) or n < 1e-12:
        raise ValueError(f"{name} must be a non-zero 3-vector, got {v.tolist()}")
    return v / n


@dataclass(frozen=True)
class OrthoView:
    """An orthographic camera looking at a head from the front: square image, pixel centres at
    integer (column, row), row 0 at the top.

    Attributes:
        centre: (3,) world point (metres) imaged at the image's centre.
        forward: (3,) unit direction from the head towards the viewer (the rays run along
            ``-forward``).
        up: (3,) unit direction imaged upwards, orthogonal to ``forward``.
        half_width: metres from the image's centre to its left (and top) edge.
        size: pixels per side.
    """

    centre: np.ndarray
    forward: np.ndarray
    up: np.ndarray
    half_width: float
    size: int

    @property
    def right(self) -> np.ndarray:
        """(3,) unit direction imaged to the right (the viewer's right: ``up x forward``)."""
        return np.cross(self.up, self.forward)

    @property
    def pixel_size(self) -> float:
        """Metres per pixel."""
        return 2.0 * self.half_width / self.size

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) float (column, row) pixel coordinates of world points (N, 3)."""
        d = np.asarray(points, dtype=np.float64).reshape(-1, 3) - self.centre
        c = (self.size - 1) / 2.0
        return np.stack(
            [c + d @ self.right / self.pixel_size, c - d @ self.up / self.pixel_size], 1
        )

    def rays(self, depth: float) -> np.ndarray:
        """(size * size, 6) float32 rays, row-major over the image: origins on the plane
        ``depth`` metres in front of the centre (along ``forward``), directions ``-forward``."""
        c = (self.size - 1) / 2.0
        k = (np.arange(self.size) - c) * self.pixel_size
        cols, rows = np.meshgrid(k, k)  # rows grow downwards
        origin = (
            self.centre
            + depth * self.forward
            + cols.reshape(-1, 1) * self.right
            - rows.reshape(-1, 1) * self.up
        )
        direction = np.broadcast_to(-self.forward, origin.shape)
        return np.concatenate([origin, direction], axis=1).astype(np.float32)


def frontal_view(
    vertex_sets: Sequence[np.ndarray],
    forward: Sequence[float] = (0.0, 0.0, 1.0),
    up: Sequence[float] = (0.0, 1.0, 0.0),
    size: int = 256,
    margin: float = 0.08,
) -> OrthoView:
    """The :class:`OrthoView` along ``forward`` framing every vertex of ``vertex_sets``
    (square, padded by ``margin`` of its width on each side).

    The defaults are the head model's frame (and the synthetic studio's world): y up, the
    face looking towards +z (FLAME's convention).

    Args:
        vertex_sets: meshes' vertices, each (V, 3) world metres (non-finite ones ignored).
        forward: (3,) from the head towards the viewer; up: (3,) roughly up (made orthogonal
            to ``forward``).

    Raises:
        ValueError: no finite vertex, ``forward`` or ``up`` zero, or parallel.
    """
    f = _unit(forward, "forward")
    u = np.asarray(up, dtype=np.float64).reshape(-1)
    u = _unit(u - (u @ f) * f if u.shape == (3,) else u, "up (orthogonal to forward)")
    pts = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1, 3) for v in vertex_sets])
    pts = pts[np.all(np.isfinite(pts), axis=1)] if len(pts) else pts
    if len(pts) == 0:
        raise ValueError("frontal_view needs at least one finite vertex")
    r = np.cross(u, f)
    x, y, z = pts @ r, pts @ u, pts @ f
    mid_x, mid_y = (x.min() + x.max()) / 2, (y.min() + y.max()) / 2
    centre = mid_x * r + mid_y * u + (z.min() + z.max()) / 2 * f
    half = max(x.max() - x.min(), y.max() - y.min(), 1e-6) / 2 * (1 + 2 * margin)
    return OrthoView(centre, f, u, float(half), int(size))


def _check_mesh(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices has shape {v.shape}, expected (V, 3)")
    if f.ndim != 2 or f.shape[1] != 3 or (f.size and not np.issubdtype(f.dtype, np.integer)):
        raise ValueError(f"faces has shape {f.shape} and dtype {f.dtype}, expected (F, 3) int")
    if f.size and (f.min() < 0 or f.max() >= len(v)):
        raise ValueError(f"faces index vertices 0..{len(v) - 1}, got {f.min()}..{f.max()}")
    return v, f.astype(np.int64)


def _vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """(V, 3) area-weighted vertex normals (zero where a vertex has no face of any area)."""
    tri = v[f]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # length: twice the area
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], face_n)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, length, out=np.zeros_like(n), where=length > 0)


def raycast(
    vertices: np.ndarray, faces: np.ndarray, view: OrthoView
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cast one ray per pixel of ``view`` at a triangle mesh.

    Normals are the vertex normals (area-weighted) interpolated at the hit with its barycentric
    coordinates, or the face's normal where those cancel; their sign follows the mesh's winding
    (either way round: :func:`shade` lights both sides alike).

    Args:
        vertices: (V, 3) world metres; faces: (F, 3) vertex indices.

    Returns:
        hit: (size, size) bool, the pixels whose ray meets the mesh; normal: (size, size, 3)
        unit world normals at the first hit (zero elsewhere); height: (size, size) metres of
        the first hit towards the viewer, ``(p - view.centre) . view.forward`` (NaN elsewhere).

    Raises:
        ValueError: ``vertices`` or ``faces`` malformed, or faces indexing missing vertices.
    """
    import open3d as o3d

    v, f = _check_mesh(vertices, faces)
    n_pix = view.size * view.size
    hit = np.zeros(n_pix, dtype=bool)
    normal = np.zeros((n_pix, 3))
    height = np.full(n_pix, np.nan)
    finite = np.all(np.isfinite(v[f]), axis=(1, 2)) if len(f) else np.zeros(0, bool)
    f = f[finite]
    if len(f):
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(
            o3d.core.Tensor(v.astype(np.float32)), o3d.core.Tensor(f.astype(np.uint32))
        )
        depth = float(np.abs((v[np.unique(f)] - view.centre) @ view.forward).max()) + 1.0
        ans = scene.cast_rays(o3d.core.Tensor(view.rays(depth)))
        t_hit = ans["t_hit"].numpy().astype(np.float64)
        hit = np.isfinite(t_hit)
        height[hit] = depth - t_hit[hit]
        prim = ans["primitive_ids"].numpy()[hit].astype(np.int64)
        uv = ans["primitive_uvs"].numpy()[hit].astype(np.float64)
        corners = _vertex_normals(v, f)[f[prim]]  # (N, 3 corners, 3)
        w = np.stack([1.0 - uv[:, 0] - uv[:, 1], uv[:, 0], uv[:, 1]], axis=1)
        n = np.einsum("nk,nkd->nd", w, corners)
        length = np.linalg.norm(n, axis=1, keepdims=True)
        flat = ans["primitive_normals"].numpy()[hit].astype(np.float64)
        normal[hit] = np.where(length > 1e-9, n / np.maximum(length, 1e-12), flat)
    shape = (view.size, view.size)
    return hit.reshape(shape), normal.reshape(*shape, 3), height.reshape(shape)


def light_direction(view: OrthoView) -> np.ndarray:
    """(3,) unit direction towards the light of :func:`shade` (:data:`LIGHT_TILT`)."""
    a, b = LIGHT_TILT
    return _unit(view.forward + a * view.up + b * view.right, "light")


def shade(
    hit: np.ndarray,
    normal: np.ndarray,
    view: OrthoView,
    colour: Sequence[float] = (0.8, 0.8, 0.8),
) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1]: ``colour * (AMBIENT + (1 - AMBIENT) |n . l|)`` where
    ``hit`` (n: ``normal`` (H, W, 3), l: :func:`light_direction`; two-sided, so a mesh wound
    either way looks the same), :data:`BACKGROUND` elsewhere.

    Args:
        colour: RGB albedo in [0, 1) (below 1 in some channel, so no surface is background).
    """
    surface = lambert(normal, view)[..., None] * np.asarray(colour)[:3]
    return np.where(hit[..., None], surface, np.asarray(BACKGROUND)).astype(np.float32)


def lambert(normal: np.ndarray, view: OrthoView) -> np.ndarray:
    """(H, W) brightness ``AMBIENT + (1 - AMBIENT) |n . l|`` of unit normals (H, W, 3) under
    :func:`light_direction` (two-sided), in [AMBIENT, 1]."""
    return AMBIENT + (1.0 - AMBIENT) * np.abs(np.asarray(normal) @ light_direction(view))


def render_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    view: OrthoView,
    colour: Sequence[float] = (0.8, 0.8, 0.8),
) -> np.ndarray:
    """A shaded render of a mesh seen by ``view`` (:func:`raycast`, then :func:`shade`).

    Args:
        vertices: (V, 3) world metres; faces: (F, 3) vertex indices; colour: RGB albedo.

    Returns:
        (size, size, 3) float32 RGB in [0, 1].

    Raises:
        ValueError: as :func:`raycast`.
    """
    hit, normal, _ = raycast(vertices, faces, view)
    return shade(hit, normal, view, colour)


def height_difference_image(
    height: np.ndarray,
    true_height: np.ndarray,
    range_mm: float = 5.0,
    brightness: np.ndarray | None = None,
) -> np.ndarray:
    """(H, W, 3) float32 RGB of ``height - true_height`` in mm where both surfaces are hit,
    through :data:`DIFFERENCE_CMAP` from ``-range_mm`` (blue: behind the truth) to
    ``+range_mm`` (red: in front of it), times ``brightness`` (the true surface's shading, so
    the face shows where the difference is white); :data:`SILHOUETTE_COLOUR` where only one of
    them is hit (a part missing or too much), :data:`BACKGROUND` where neither is.

    Args:
        height, true_height: (H, W) metres towards the viewer (:func:`raycast`; NaN: no hit).
        brightness: (H, W) factors in [0, 1] (:func:`lambert`), or None for 1.
    """
    import matplotlib as mpl

    h, g = np.asarray(height, np.float64), np.asarray(true_height, np.float64)
    both = np.isfinite(h) & np.isfinite(g)
    one = np.isfinite(h) ^ np.isfinite(g)
    diff = np.where(both, (h - g) * 1000.0, 0.0)
    rgb = mpl.colormaps[DIFFERENCE_CMAP](np.clip(0.5 + diff / (2.0 * range_mm), 0.0, 1.0))[..., :3]
    if brightness is not None:
        rgb = rgb * np.asarray(brightness, np.float64)[..., None]
    img = np.where(both[..., None], rgb, BACKGROUND)
    img = np.where(one[..., None], np.asarray(SILHOUETTE_COLOUR), img)
    return img.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Decoded meshes beside the true ones


def pick_mesh_frames(
    frame_ids: np.ndarray, n: int = 3, chamfer_mm: np.ndarray | None = None
) -> tuple[np.ndarray, int | None]:
    """Rows of the frames the mesh figure shows: ``n`` spread evenly over the sequence plus,
    when per-frame chamfer is given, the frame where it is largest (NaN frames skipped).

    Args:
        frame_ids: (T,) frame ids; chamfer_mm: (T,) chamfer-L1 per frame, or None.

    Returns:
        (K,) increasing row indices into ``frame_ids``, and the row of the largest chamfer
        (None without chamfer or when every value is NaN).

    Raises:
        ValueError: ``chamfer_mm`` does not have ``frame_ids``' shape.
    """
    ids = np.asarray(frame_ids).reshape(-1)
    rows = set(pick_evenly(list(range(len(ids))), max(n, 1)))
    worst = None
    if chamfer_mm is not None:
        c = np.asarray(chamfer_mm, dtype=np.float64)
        if c.shape != ids.shape:
            raise ValueError(f"chamfer_mm has shape {c.shape}, expected {ids.shape}")
        if np.any(np.isfinite(c)):
            worst = int(np.nanargmax(c))
            rows.add(worst)
    return np.asarray(sorted(rows), dtype=np.int64), worst


Mesh = tuple[np.ndarray, np.ndarray]
"""``(vertices (V, 3) world metres, faces (F, 3))``."""


@dataclass(frozen=True)
class TrueMeshes:
    """The true meshes of a sequence, as the caller read them (the QC figures never open
    ground truth themselves).

    Attributes:
        frames: (T,) frame ids of the rows.
        vertices: (T, V, 3) world metres (a memory map is fine: only shown rows are read).
        faces: (F, 3) vertex indices.
    """

    frames: np.ndarray
    vertices: np.ndarray
    faces: np.ndarray

    def mesh(self, frame: int) -> Mesh:
        """``(vertices, faces)`` of frame id ``frame``.

        Raises:
            KeyError: the truth has no such frame.
        """
        rows = np.flatnonzero(np.asarray(self.frames) == int(frame))
        if len(rows) == 0:
            raise KeyError(frame)
        return np.asarray(self.vertices[int(rows[0])], dtype=np.float64), np.asarray(self.faces)


def plot_meshes(
    frame_ids: np.ndarray,
    decoded: Sequence[Mesh],
    path: PathLike,
    truth: Sequence[Mesh] | None = None,
    unsmoothed: Sequence[Mesh] | None = None,
    view: OrthoView | None = None,
    chamfer_mm: Mapping[str, np.ndarray] | None = None,
    highlight: int | None = None,
    title: str = "",
    panel_inches: float = 2.6,
    dpi: float = 100,
) -> Path:
    """:func:`meshes_figure` written to ``path`` (PNG)."""
    fig = meshes_figure(
        frame_ids,
        decoded,
        truth,
        unsmoothed,
        view,
        chamfer_mm,
        highlight,
        title,
        panel_inches,
        dpi,
    )
    return save_figure(fig, path)


def meshes_figure(
    frame_ids: np.ndarray,
    decoded: Sequence[Mesh],
    truth: Sequence[Mesh] | None = None,
    unsmoothed: Sequence[Mesh] | None = None,
    view: OrthoView | None = None,
    chamfer_mm: Mapping[str, np.ndarray] | None = None,
    highlight: int | None = None,
    title: str = "",
    panel_inches: float = 2.6,
    dpi: float = 100,
) -> Figure:
    """A grid of shaded renders (:func:`raycast`, :func:`shade`), one row per frame; columns
    left to right: the true mesh, the decoded one, the decoded one of the fit without the
    temporal loss (those given; :data:`COLUMN_TITLES`, tinted :data:`COLUMN_COLOURS`), and with
    truth the decoded mesh's height minus the true one's along each ray on the shaded true
    surface (:func:`height_difference_image`, +-:data:`DIFFERENCE_RANGE_MM`, with its colour
    bar).
    Every panel is an ``imshow`` in pixels of one shared ``view``, so the columns compare shape
    and placement directly: ``gid="render <column> <frame>"`` (column: ``truth``, ``decoded``,
    ``unsmoothed``) and ``gid="difference <frame>"``.

    Args:
        frame_ids: (K,) ids of the shown frames (row labels).
        decoded: K meshes ``(vertices (V, 3) world metres, faces (F, 3))`` of the fit.
        truth: K true meshes of the same frames, or None (a capture without ground truth).
        unsmoothed: K meshes of the fit without the temporal loss, or None.
        view: the camera of every panel; by default :func:`frontal_view` of the true meshes
            (of the decoded ones without truth) seen from +z with y up (the head model's frame).
        chamfer_mm: ``{column: (K,) mm}`` chamfer-L1 against the truth, written under the
            panels (``decoded``, ``unsmoothed``).
        highlight: a frame id among ``frame_ids`` labelled "largest chamfer-L1".

    Raises:
        ValueError: no frame, a column's count differs from the frames', or a mesh is
            malformed.
    """
    import matplotlib as mpl
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    ids = np.asarray(frame_ids).reshape(-1)
    columns = {
        k: m for k, m in (("truth", truth), ("decoded", decoded), ("unsmoothed", unsmoothed)) if m
    }
    if len(ids) == 0 or "decoded" not in columns:
        raise ValueError("the mesh figure needs at least one frame and its decoded mesh")
    for k, meshes in columns.items():
        if len(meshes) != len(ids):
            raise ValueError(f"{len(meshes)} {k} meshes for {len(ids)} frames")
    if view is None:
        framed = columns.get("truth", columns["decoded"])
        view = frontal_view([v for v, _ in framed])
    n_cols = len(columns) + ("truth" in columns)
    fig = new_figure((panel_inches * n_cols + 0.6, panel_inches * len(ids) + 0.5), dpi)
    axes = fig.subplots(len(ids), n_cols, squeeze=False)
    for r, frame in enumerate(ids):
        heights = {}
        for c, (key, meshes) in enumerate(columns.items()):
            ax = axes[r, c]
            hit, normal, heights[key] = raycast(*meshes[r], view)
            if key == "truth":
                true_brightness = lambert(normal, view)
            img = shade(hit, normal, view, COLUMN_COLOURS[key])
            ax.imshow(img, interpolation="nearest", gid=f"render {key} {int(frame)}")
            if r == 0:
                ax.set_title(COLUMN_TITLES[key], fontsize=9)
            if chamfer_mm is not None and key in chamfer_mm:
                value = float(np.asarray(chamfer_mm[key], dtype=np.float64)[r])
                ax.set_xlabel(f"chamfer-L1 {value:.2f} mm", fontsize=8)
        if "truth" in heights:
            ax = axes[r, -1]
            img = height_difference_image(
                heights["decoded"], heights["truth"], DIFFERENCE_RANGE_MM, true_brightness
            )
            ax.imshow(img, interpolation="nearest", gid=f"difference {int(frame)}")
            if r == 0:
                ax.set_title("decoded - truth (height)", fontsize=9)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
        note = "\nlargest chamfer-L1" if highlight is not None and frame == highlight else ""
        axes[r, 0].set_ylabel(f"frame {int(frame)}{note}", fontsize=9)
    if "truth" in columns:
        bar = ScalarMappable(
            Normalize(-DIFFERENCE_RANGE_MM, DIFFERENCE_RANGE_MM),
            mpl.colormaps[DIFFERENCE_CMAP],
        )
        fig.colorbar(
            bar,
            ax=list(axes[:, -1]),
            shrink=0.6,
            label="decoded in front of (+) / behind (-) the truth, mm; grey: one mesh only",
        )
    width_mm = 2000.0 * view.half_width
    fig.suptitle(
        (title + "\n" if title else "") + f"orthographic, front; panel width {width_mm:.0f} mm",
        fontsize=10,
    )
    return fig


# ---------------------------------------------------------------------------------------------
# Chamfer per frame

LEGEND_ROW_IN = 0.35
"""Inches the chamfer-per-frame figure grows by to hold its legend row below the axes."""


def plot_chamfer_frames(
    frame_ids: np.ndarray,
    chamfer_mm: Mapping[str, np.ndarray],
    path: PathLike,
    target_mm: float | None = None,
    title: str = "NPHM fit: chamfer-L1 per frame against ground truth",
    dpi: float = 100,
) -> Path:
    """:func:`chamfer_frames_figure` written to ``path`` (PNG)."""
    return save_figure(chamfer_frames_figure(frame_ids, chamfer_mm, target_mm, title, dpi), path)


def chamfer_frames_figure(
    frame_ids: np.ndarray,
    chamfer_mm: Mapping[str, np.ndarray],
    target_mm: float | None = None,
    title: str = "NPHM fit: chamfer-L1 per frame against ground truth",
    dpi: float = 100,
) -> Figure:
    """Chamfer-L1 (mm) per frame of the fits with and without the temporal loss at the frames'
    real ids, the line broken where ids skip, each labelled with its mean
    (:func:`talkhead.qc.flame.frame_errors_figure`: ``gid="error <series>"``), and the target
    as a dashed line (``gid="threshold <first series>"``). The legend (``fig.legends[0]``) is
    one row below the axes, the figure grown by :data:`LEGEND_ROW_IN` to hold it: beside the
    axes it took a third of the width and reached the figure's edge.

    Args:
        frame_ids: (T,) strictly increasing frame ids.
        chamfer_mm: ``{series: (T,) mm}``, e.g. ``{"w/ temporal loss": ..., "w/o temporal
            loss": ...}`` (NaN: not evaluated).
        target_mm: the chamfer-L1 target drawn, or None.

    Raises:
        ValueError: a series' shape differs from ``frame_ids``', or the ids do not increase.
    """
    first = next(iter(chamfer_mm), "chamfer")
    thresholds = None if target_mm is None else {first: float(target_mm)}
    fig = frame_errors_figure(frame_ids, chamfer_mm, thresholds, title, dpi)
    ax = fig.axes[0]
    ax.set_ylabel("chamfer-L1 (mm)")
    for legend in list(fig.legends):
        legend.remove()
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        width, height = fig.get_size_inches()
        fig.set_size_inches(width, height + LEGEND_ROW_IN)
        fig.legend(
            handles, labels, loc="outside lower center", ncols=min(len(handles), 3), fontsize=8
        )
    return fig


# ---------------------------------------------------------------------------------------------
# Correlation of the codes between neighbouring frames


def code_autocorrelation(
    codes: np.ndarray, frame_ids: np.ndarray | None = None, max_lag: int = 10
) -> np.ndarray:
    """Autocorrelation of an expression-code track at lags 1..``max_lag`` frames.

    With ``x[t] = codes[t] - mean_t codes`` (each dimension's mean over the sequence removed)
    and ``P_k`` the pairs of rows whose frame ids differ by exactly ``k`` (frames missing from
    the track make no pair), the lag-k autocorrelation is the Pearson correlation of the pooled
    samples ``(x[i, e], x[j, e])`` over pairs ``(i, j)`` in ``P_k`` and dimensions e::

        r(k) = sum <x[i], x[j]> / sqrt(sum |x[i]|^2 * sum |x[j]|^2)

    so each dimension counts by its variance (dimensions the fit leaves still do not dilute
    it). 1 for a track that does not change between neighbours, about ``cos(w k)`` for
    sinusoids of ``w`` radians per frame, about 0 for white noise (jitter). The FaceTalk
    supplement's Fig. 2 shows this correlation between neighbouring frames.

    Args:
        codes: (T, E) per-frame codes; frame_ids: (T,) strictly increasing, or None for
            consecutive frames.
        max_lag: L >= 1.

    Returns:
        (L,) float64; NaN at a lag with no pair or with no variance in its pairs.

    Raises:
        ValueError: ``codes`` not (T, E), ``frame_ids`` not matching or not increasing, or
            ``max_lag`` < 1.
    """
    x = np.asarray(codes, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"codes has shape {x.shape}, expected (T, E)")
    if max_lag < 1:
        raise ValueError(f"max_lag must be at least 1, got {max_lag}")
    frame_spacing(frame_ids, x.shape[0])  # checks the ids
    ids = np.arange(x.shape[0]) if frame_ids is None else np.asarray(frame_ids, dtype=np.int64)
    x = x - x.mean(axis=0) if len(x) else x
    row = {int(t): i for i, t in enumerate(ids)}
    out = np.full(max_lag, np.nan)
    for k in range(1, max_lag + 1):
        pairs = [(i, row[int(t) + k]) for i, t in enumerate(ids) if int(t) + k in row]
        if not pairs:
            continue
        a, b = x[[p[0] for p in pairs]], x[[p[1] for p in pairs]]
        denom = math.sqrt(float(np.sum(a**2)) * float(np.sum(b**2)))
        if denom > 0:
            out[k - 1] = float(np.sum(a * b)) / denom
    return out


def frame_correlation(codes: np.ndarray) -> np.ndarray:
    """(T, T) correlation between the codes of every two frames: the cosine of the angle
    between ``x[i]`` and ``x[j]`` with ``x = codes - mean_t codes`` (each dimension's mean over
    the sequence removed); NaN in the row and column of a frame at the mean.

    A smooth track shows a bright band along the diagonal, as wide as the codes stay alike; a
    jittery one a diagonal of ones in a grainy field (the FaceTalk supplement's Fig. 2).

    Args:
        codes: (T, E) per-frame codes.

    Raises:
        ValueError: ``codes`` not (T, E).
    """
    x = np.asarray(codes, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"codes has shape {x.shape}, expected (T, E)")
    x = x - x.mean(axis=0) if len(x) else x
    n = np.linalg.norm(x, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = (x @ x.T) / np.outer(n, n)
    c[~np.isfinite(c)] = np.nan
    return np.clip(c, -1.0, 1.0)


def plot_autocorrelation(
    frame_ids: np.ndarray,
    series: Mapping[str, np.ndarray],
    path: PathLike,
    max_lag: int = 10,
    title: str = "NPHM expression codes: correlation between neighbouring frames",
    dpi: float = 100,
) -> Path:
    """:func:`autocorrelation_figure` written to ``path`` (PNG)."""
    return save_figure(autocorrelation_figure(frame_ids, series, max_lag, title, dpi), path)


def autocorrelation_figure(
    frame_ids: np.ndarray,
    series: Mapping[str, np.ndarray],
    max_lag: int = 10,
    title: str = "NPHM expression codes: correlation between neighbouring frames",
    dpi: float = 100,
) -> Figure:
    """Left: each series' :func:`code_autocorrelation` against the lag in frames (1..
    ``max_lag``; ``gid="acf <series>"``, legend ``<series>: r(1) = ...``). Right, one panel per
    series: the frame x frame :func:`frame_correlation` (``gid="correlation <series>"``, rows
    and columns in the order of the codes, -1 blue to 1 red).

    Args:
        frame_ids: (T,) strictly increasing frame ids (gaps allowed).
        series: ``{name: (T, E) codes}``, e.g. ``{"w/ temporal loss": ..., "w/o temporal
            loss": ...}``.
        max_lag: the largest lag drawn.

    Raises:
        ValueError: a series is not (T, E), the ids do not increase, or ``max_lag`` < 1.
    """
    import matplotlib as mpl

    ids = np.asarray(frame_ids)
    if ids.ndim != 1:
        raise ValueError(f"frame_ids has shape {ids.shape}, expected (T,)")
    frame_spacing(ids, len(ids))  # strictly increasing
    n = len(series)
    fig = new_figure((5.0 + 3.2 * n, 3.8), dpi)
    grid = fig.subplots(1, 1 + n, squeeze=False, width_ratios=(1.6,) + (1.0,) * n)[0]
    ax = grid[0]
    cmap = mpl.colormaps["tab10"]
    lags = np.arange(1, max_lag + 1)
    image = None
    for k, (name, codes) in enumerate(series.items()):
        codes = np.asarray(codes, dtype=np.float64)
        if codes.ndim != 2 or codes.shape[0] != len(ids):
            raise ValueError(f"series {name!r} has shape {codes.shape}, expected ({len(ids)}, E)")
        r = code_autocorrelation(codes, ids, max_lag)
        ax.plot(
            lags,
            r,
            marker="o",
            ms=3,
            lw=1.4,
            color=cmap(k % 10),
            label=f"{name}: r(1) = {r[0]:.3f}",
            gid=f"acf {name}",
        )
        panel = grid[1 + k]
        image = panel.imshow(
            frame_correlation(codes),
            cmap="RdBu_r",
            vmin=-1.0,
            vmax=1.0,
            interpolation="nearest",
            gid=f"correlation {name}",
        )
        panel.set_title(name, fontsize=9, color=cmap(k % 10))
        panel.set_xlabel("frame index")
        panel.set_ylabel("frame index")
    ax.axhline(0.0, color="0.5", lw=0.6)
    ax.set_xlim(0.5, max_lag + 0.5)
    ax.set_ylim(min(-0.1, float(np.nanmin(ax.get_ylim()))), 1.05)
    ax.set_xlabel("lag (frames)")
    ax.set_ylabel("autocorrelation of the codes")
    ax.grid(True, lw=0.3, alpha=0.5)
    if series:
        ax.legend(fontsize=8, loc="lower left")
    ax.set_title("code autocorrelation against lag", fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=list(grid[1:]), shrink=0.8, label="correlation between frames")
    fig.suptitle(title, fontsize=10)
    return fig


# ---------------------------------------------------------------------------------------------
# Table 2

FACETALK_TABLE2 = {
    "w/o temporal loss": {"mae": 0.01422, "rmse": 0.01978, "lse_d": 10.9221},
    "w/ temporal loss": {"mae": 0.00248, "rmse": 0.00623, "lse_d": 10.5478},
}
"""The FaceTalk supplement's Table 2 (expression fitting, real captures, their NPHM): MAE and
RMSE of adjacent expression codes, LSE-D of the lips against the audio."""

TABLE2_COLUMNS = (
    ("MAE (ours)", "mae", False, "{:.5f}"),
    ("MAE (FaceTalk)", "mae", True, "{:.5f}"),
    ("RMSE (ours)", "rmse", False, "{:.5f}"),
    ("RMSE (FaceTalk)", "rmse", True, "{:.5f}"),
    ("LSE-D (ours)", "lse_d", False, "{:.4f}"),
    ("LSE-D (FaceTalk)", "lse_d", True, "{:.4f}"),
    ("chamfer-L1 (mm)", "chamfer_l1_mm", False, "{:.3f}"),
    ("F-score@5mm", "fscore_5mm", False, "{:.3f}"),
)
"""The table's columns after the row label: (header, figure, from FaceTalk's paper, format)."""
_OURS_KEYS = {"mae": "jitter_mae", "rmse": "jitter_rmse"}
RATIO_ROW = "w/o ÷ w/"
"""The last row: each figure without the temporal loss divided by the one with it."""


def _number(value: object) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")
    return v


def table2_rows(evaluation: Mapping[str, object]) -> dict[str, dict[str, float]]:
    """The table's numbers: ``{row: {header: value}}`` (NaN where a figure is missing), rows
    ``w/o temporal loss``, ``w/ temporal loss`` and :data:`RATIO_ROW`.

    Args:
        evaluation: flat figures of the fit with the temporal loss (``jitter_mae``,
            ``jitter_rmse``, ``chamfer_l1_mm``, ``fscore_5mm``, ``lse_d`` when lip sync was
            measured) and the same prefixed ``unsmoothed_`` for the fit without it, as in
            ``evaluation.json``.
    """
    rows: dict[str, dict[str, float]] = {}
    for label, prefix in (("w/o temporal loss", "unsmoothed_"), ("w/ temporal loss", "")):
        rows[label] = {}
        for header, key, paper, _ in TABLE2_COLUMNS:
            if paper:
                rows[label][header] = FACETALK_TABLE2[label][key]
            else:
                rows[label][header] = _number(evaluation.get(prefix + _OURS_KEYS.get(key, key)))
    with np.errstate(divide="ignore", invalid="ignore"):
        rows[RATIO_ROW] = {
            h: float(np.float64(rows["w/o temporal loss"][h]) / rows["w/ temporal loss"][h])
            for h, key, _, _ in TABLE2_COLUMNS
            if key != "lse_d"
        }
    for h in rows[RATIO_ROW]:
        if not np.isfinite(rows[RATIO_ROW][h]):
            rows[RATIO_ROW][h] = float("nan")
    return rows


def _cell(value: float | None, fmt: str) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    return fmt.format(value)


def table2_html(evaluation: Mapping[str, object], title: str = "") -> str:
    """The FaceTalk supplement's Table 2 with our figures beside theirs, as an HTML page.

    One header row (``method``, then :data:`TABLE2_COLUMNS`' headers) and three rows: ``w/o
    temporal loss``, ``w/ temporal loss`` (:func:`table2_rows`) and :data:`RATIO_ROW` (ratios
    with two decimals and a trailing ``x``). Missing figures (LSE-D until lip sync is
    measured; chamfer and F-score without ground truth) show ``-``. The caption says what
    differs from the paper and the jitter and chamfer changes the temporal loss makes.

    Args:
        evaluation: as :func:`table2_rows`.
        title: a heading above the table (e.g. subject / sequence), or empty.
    """
    rows = table2_rows(evaluation)
    ours, theirs = rows[RATIO_ROW]["MAE (ours)"], rows[RATIO_ROW]["MAE (FaceTalk)"]
    with_ = rows["w/ temporal loss"]["chamfer-L1 (mm)"]
    without = rows["w/o temporal loss"]["chamfer-L1 (mm)"]
    change = 100.0 * (with_ / without - 1.0) if without and np.isfinite(without) else float("nan")
    caption = (
        "Expression fitting with and without the temporal Huber loss (FaceTalk supplement, "
        "Table 2). MAE and RMSE: mean absolute and root-mean-square change of the expression "
        "codes between adjacent frames (per frame, over frames and code dimensions). Ours: the "
        "synthetic studio and talkhead's own NPHM (trained on the head model's family, not "
        "FaceTalk's); chamfer-L1 and F-score against the true meshes over the face region. "
        "FaceTalk: real captures with their NPHM; their codes live in another space, so compare "
        "the ratios, not the values. LSE-D is '-' until lip sync is measured. "
        f"Jitter MAE without / with the loss: {_cell(ours, '{:.2f}x')} "
        f"(FaceTalk: {_cell(theirs, '{:.2f}x')}); chamfer-L1 with the loss: "
        f"{_cell(change, '{:+.1f} %')} against without."
    )
    head = "".join(f"<th>{html.escape(h)}</th>" for h, *_ in TABLE2_COLUMNS)
    body = []
    for label, values in rows.items():
        cells = []
        for h, _, _, fmt in TABLE2_COLUMNS:
            v = values.get(h)
            cells.append(
                f"<td>{html.escape(_cell(v, '{:.2f}x' if label == RATIO_ROW else fmt))}</td>"
            )
        body.append(f"<tr><th>{html.escape(label)}</th>{''.join(cells)}</tr>")
    heading = f"<h3>{html.escape(title)}</h3>\n" if title else ""
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Table 2</title>\n"
        "<style>table{border-collapse:collapse;font-family:sans-serif;font-size:13px}"
        "th,td{border:1px solid #bbb;padding:3px 8px;text-align:right}"
        "caption{caption-side:bottom;text-align:left;max-width:60em;padding-top:6px}</style>"
        "</head><body>\n"
        f"{heading}<table id='table2'>\n<caption>{html.escape(caption)}</caption>\n"
        f"<thead><tr><th>method</th>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(body)
        + "\n</tbody></table>\n</body></html>\n"
    )


def write_table2(evaluation: Mapping[str, object], path: PathLike, title: str = "") -> Path:
    """:func:`table2_html` written to ``path`` atomically (UTF-8); returns the path."""
    path = Path(path)
    with atomic_path(path, suffix=".html") as tmp:
        Path(tmp).write_text(table2_html(evaluation, title), encoding="utf-8")
    return path
