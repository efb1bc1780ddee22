"""QC figure of a camera rig: cameras, frustums and the face they look at, in 3D and from above."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..geometry.cameras import Camera
from ..io import PathLike
from .draw import new_figure, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..capture.sequence import CaptureSequence


def rig_target(cameras: Sequence[Camera]) -> np.ndarray:
    """(3,) the world point closest (least squares) to every camera's optical axis: where the
    rig looks. Falls back to the centroid of the cameras when the axes are (near) parallel."""
    centers = np.stack([c.center for c in cameras])
    A = np.zeros((3, 3))
    b = np.zeros(3)
    for c, o in zip(cameras, centers, strict=True):
        d = c.R[2] / np.linalg.norm(c.R[2])
        P = np.eye(3) - np.outer(d, d)
        A += P
        b += P @ o
    if len(cameras) < 2 or np.linalg.cond(A) > 1e8:
        return centers.mean(axis=0)
    return np.linalg.solve(A, b)


def rig_display_basis(cameras: Sequence[Camera]) -> np.ndarray:
    """(3, 3) rows e1, e2, up: a right-handed display frame whose third axis is the rig's up.

    Cameras of a studio are mounted without roll, so their x axes are horizontal: up is the
    direction most orthogonal to all of them (smallest eigenvector of sum x x^T), signed like
    the cameras' image-up (-y). When the x axes do not span a plane (a single camera, or all
    cameras with the same yaw), up is the mean image-up.
    """
    xs = np.stack([c.R[0] for c in cameras])
    image_up = -np.mean([c.R[1] for c in cameras], axis=0)
    evals, evecs = np.linalg.eigh(xs.T @ xs)
    if evals[1] > 1e-3 * max(evals[2], 1e-12):
        up = evecs[:, 0] * (1.0 if evecs[:, 0] @ image_up >= 0 else -1.0)
    else:
        up = image_up
    if np.linalg.norm(up) < 1e-6:
        up = np.array([0.0, 1.0, 0.0])
    up = up / np.linalg.norm(up)
    axes = np.eye(3)
    # The world axis most orthogonal to up (the first of ties, not the one numerical noise
    # favours) is the first horizontal display axis.
    a = axes[int(np.argmin(np.round(np.abs(axes @ up), 9)))]
    e1 = a - (a @ up) * up
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    return np.stack([e1, e2, up])


def _axis_name(v: np.ndarray, fallback: str) -> str:
    i = int(np.argmax(np.abs(v)))
    if abs(v[i]) > 0.999:
        return f"world {'+' if v[i] > 0 else '-'}{'xyz'[i]} (m)"
    return f"{fallback} (m)"


def _frustum(cam: Camera, depth: float) -> np.ndarray:
    """(4, 3) world corners of the image plane at ``depth``."""
    w = cam.width or 2.0 * cam.K[0, 2] + 1.0
    h = cam.height or 2.0 * cam.K[1, 2] + 1.0
    uv = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
    return cam.unproject(uv, np.full(4, depth))


def plot_camera_rig(
    cameras: Mapping[str, Camera] | Sequence[Camera],
    path: PathLike,
    points: np.ndarray | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (12.0, 6.0),
    dpi: float = 100,
) -> Path:
    """:func:`camera_rig_figure` written to ``path`` (PNG, ``figsize`` x ``dpi`` pixels)."""
    return save_figure(camera_rig_figure(cameras, points, title, figsize, dpi), path)


def camera_rig_figure(
    cameras: Mapping[str, Camera] | Sequence[Camera],
    points: np.ndarray | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (12.0, 6.0),
    dpi: float = 100,
) -> Figure:
    """Draw the rig in 3D and from the top: frusta labelled with serials, optical axes (dashed,
    from the camera centre forwards, up to their closest approach to the point the rig looks
    at), world axes at the origin, and optionally a point cloud.

    The display frame (:func:`rig_display_basis`) puts the rig's up direction vertical in 3D
    and looks down it in the top view; axis labels name the world axis when the display axis
    is one. Each camera's artists carry a ``gid``: ``"centre <serial>"`` (top view),
    ``"axis <serial>"`` and ``"frustum <serial>"`` (both views), in display coordinates.

    Args:
        cameras: ``{serial: Camera}`` or a list of cameras.
        points: (P, 3) world points (e.g. the head's landmarks), drawn at the centre.
        title: figure title (default: the number of cameras).

    Raises:
        ValueError: no camera.
    """
    cams = list(cameras.values()) if isinstance(cameras, Mapping) else list(cameras)
    if not cams:
        raise ValueError("plot_camera_rig needs at least one camera")
    import matplotlib as mpl
    from mpl_toolkits.mplot3d import Axes3D  # noqa: F401  (registers the 3d projection)

    pts = None
    if points is not None:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        pts = pts[np.all(np.isfinite(pts), axis=1)]
        if not len(pts):
            pts = None
    centers = np.stack([c.center for c in cams])
    target = np.median(pts, axis=0) if pts is not None else rig_target(cams)
    dist = np.linalg.norm(centers - target, axis=1)
    scale = float(np.median(dist)) if np.median(dist) > 0 else 1.0
    B = rig_display_basis(cams)

    def disp(x: np.ndarray) -> np.ndarray:
        return np.asarray(x) @ B.T

    cmap = mpl.colormaps["tab20" if len(cams) > 10 else "tab10"]
    fig = new_figure(figsize, dpi)
    gs = fig.add_gridspec(1, 2, width_ratios=(1.25, 1.0))
    ax3 = fig.add_subplot(gs[0], projection="3d")
    ax2 = fig.add_subplot(gs[1])
    drawn = [disp(centers), disp(target[None])]
    for i, cam in enumerate(cams):
        color = cmap(i % cmap.N)
        o = cam.center
        corners = _frustum(cam, 0.2 * scale)
        axis_len = max(float((target - o) @ cam.R[2]), 0.3 * scale)
        axis_end = o + axis_len * cam.R[2]
        drawn += [disp(corners), disp(axis_end[None])]
        O, Cn, A = disp(o), disp(corners), disp(axis_end)
        frustum = {"color": color, "gid": f"frustum {cam.serial}"}
        for k in range(4):
            ax3.plot(*np.stack([O, Cn[k]]).T, lw=1.0, **frustum)
            ax3.plot(*np.stack([Cn[k], Cn[(k + 1) % 4]]).T, lw=1.0, **frustum)
            ax2.plot(*np.stack([O, Cn[k]])[:, :2].T, lw=0.8, **frustum)
        ax3.plot(*np.stack([Cn[0], Cn[1]]).T, lw=2.5, **frustum)  # image top edge
        axis = {"color": color, "lw": 0.7, "ls": "--", "gid": f"axis {cam.serial}"}
        ax3.plot(*np.stack([O, A]).T, **axis)
        ax2.plot(*np.stack([O, A])[:, :2].T, **axis)
        ax3.text(*O, cam.serial, fontsize=7, color=color)
        ax2.annotate(
            cam.serial, O[:2], fontsize=7, color=color, xytext=(3, 3), textcoords="offset points"
        )
        ax2.plot(*O[:2], "o", color=color, ms=4, gid=f"centre {cam.serial}")
    # World axes at the origin.
    L = 0.25 * scale
    for k, (name, color) in enumerate(
        zip("xyz", ("tab:red", "tab:green", "tab:blue"), strict=True)
    ):
        seg = disp(np.stack([np.zeros(3), L * np.eye(3)[k]]))
        ax3.plot(*seg.T, color=color, lw=2.0)
        ax3.text(*seg[1], name, color=color, fontsize=9, fontweight="bold")
        ax2.plot(*seg[:, :2].T, color=color, lw=2.0)
        ax2.annotate(name, seg[1, :2], color=color, fontsize=9, fontweight="bold")
    drawn.append(disp(np.concatenate([np.zeros((1, 3)), L * np.eye(3)])))
    if pts is not None:
        P = disp(pts)
        ax3.scatter(*P.T, s=2, c="0.2", depthshade=False)
        ax2.scatter(P[:, 0], P[:, 1], s=2, c="0.2")
        drawn.append(P)
    else:
        T = disp(target)
        ax3.scatter(*T, marker="+", s=60, c="k")
        ax2.plot(*T[:2], "k+", ms=10)
    allp = np.concatenate(drawn)
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    mid, half = (lo + hi) / 2, 0.55 * float((hi - lo).max() or 1.0)
    ax3.set_xlim(mid[0] - half, mid[0] + half)
    ax3.set_ylim(mid[1] - half, mid[1] + half)
    ax3.set_zlim(mid[2] - half, mid[2] + half)
    ax3.set_box_aspect((1, 1, 1))
    ax3.view_init(elev=25, azim=-65)
    names = [
        _axis_name(B[0], "horizontal 1"),
        _axis_name(B[1], "horizontal 2"),
        _axis_name(B[2], "up"),
    ]
    ax3.set_xlabel(names[0], fontsize=8)
    ax3.set_ylabel(names[1], fontsize=8)
    ax3.set_zlabel(names[2], fontsize=8)
    ax3.tick_params(labelsize=7)
    ax3.set_title("3D (top edge of each image drawn thick)", fontsize=10)
    ax2.set_aspect("equal", adjustable="datalim")
    ax2.set_xlabel(names[0], fontsize=8)
    ax2.set_ylabel(names[1], fontsize=8)
    ax2.tick_params(labelsize=7)
    ax2.grid(True, lw=0.3, alpha=0.5)
    ax2.set_title("top view (looking down the rig's up axis)", fontsize=10)
    fig.suptitle(
        title or f"camera rig: {len(cams)} cameras, median distance to the head {scale:.2f} m",
        fontsize=11,
    )
    return fig


def plot_sequence_rig(
    seq: CaptureSequence, path: PathLike, points: np.ndarray | None = None, dpi: float = 100
) -> Path:
    """:func:`plot_camera_rig` of a capture sequence's cameras, titled with its subject."""
    return plot_camera_rig(
        seq.cameras,
        path,
        points=points,
        dpi=dpi,
        title=f"camera rig of subject {seq.subject}: {seq.n_cameras} cameras",
    )
