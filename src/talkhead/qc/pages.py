"""Stage-level QC pages: each function draws every figure one workflow rule registers.

The figure primitives live in :mod:`talkhead.qc`; these functions pick the frames, cameras and
data a reader needs to see for one sequence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..capture.sequence import CaptureSequence, read_audio
from ..depth.range import landmark_points
from ..io import PathLike
from .figures import plot_audio, plot_sequence_rig, sequence_contact_sheet


def capture_qc(
    seq: CaptureSequence,
    rig_path: PathLike,
    sheet_path: PathLike,
    audio_path: PathLike,
    n_frames: int = 4,
    n_cameras: int = 4,
) -> dict[str, Path]:
    """The first QC page of a sequence: camera rig, contact sheet with landmarks, microphone."""
    points = landmark_points(seq, n_frames=1)  # the face at the rig's centre
    out = {"rig": plot_sequence_rig(seq, rig_path, points=points)}
    out["contact_sheet"] = sequence_contact_sheet(
        seq, sheet_path, n_frames=n_frames, n_cameras=n_cameras
    )
    audio, sr = read_audio(seq)  # validation refuses a capture without audio
    title = f"microphone of {seq.subject} / {seq.sequence}"
    out["audio"] = plot_audio(audio, sr, audio_path, title=title)
    return out


def _face_masks(seq: CaptureSequence, t: int, serials: list[str], face_labels) -> np.ndarray:
    from ..capture.masks import face_mask
    from ..capture.sequence import read_alpha, read_segmentation

    labels = read_segmentation(seq, t, serials)
    if labels is not None:
        return face_mask(labels, tuple(face_labels))
    return read_alpha(seq, t, serials) > 0.5


def _black_bad(name: str):
    """A colormap that draws NaN (invalid) pixels black."""
    import matplotlib

    cmap = matplotlib.colormaps[name].copy()
    cmap.set_bad("black")
    return cmap


def _save(fig, path: PathLike) -> Path:
    import matplotlib.pyplot as plt

    from ..io import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


def depth_qc(
    seq: CaptureSequence,
    depth_dir: PathLike,
    maps_path: PathLike,
    errors_path: PathLike,
    metrics: dict,
    gt_dir: PathLike | None = None,
    n_cameras: int = 4,
    face_labels=tuple(range(1, 10)),
) -> dict[str, Path]:
    """Depth QC of the sequence's middle frame: maps next to the images, and an error map.

    ``maps_path``: per camera, the image, depth (metres), normals (camera frame, RGB = xyz)
    and confidence. ``errors_path``: absolute depth error (mm) inside the face mask against the
    ground truth, or the confidence when there is none.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..capture.sequence import read_images
    from ..depth.io import depth_frame_path, load_depth_frame
    from .figures import pick_evenly

    t = seq.frame_ids[seq.n_frames // 2]
    frame = load_depth_frame(depth_frame_path(depth_dir, t))
    serials = pick_evenly(list(frame.serials), n_cameras)
    idx = [frame.index(s) for s in serials]
    images = read_images(seq, t, serials)
    face = _face_masks(seq, t, serials, face_labels)
    depth = frame.depth[idx]
    valid = depth > 0
    lo, hi = np.percentile(depth[valid], [1, 99]) if valid.any() else (0.0, 1.0)

    fig, axes = plt.subplots(
        len(serials), 4, figsize=(11, 3.2 * len(serials)), dpi=100, squeeze=False
    )
    for r, s in enumerate(serials):
        d = np.where(valid[r], depth[r], np.nan)
        n = frame.normal[idx[r]]
        panels = [
            (images[r], None, f"cam {s}: image"),
            (d, dict(cmap=_black_bad("viridis"), vmin=lo, vmax=hi), "depth (m)"),
            (np.where(valid[r][..., None], (1 - n) / 2, 0), None, "normal (camera frame)"),
            (
                np.where(valid[r], frame.confidence[idx[r]], np.nan),
                dict(cmap=_black_bad("magma"), vmin=0, vmax=1),
                "confidence",
            ),
        ]
        for c, (img, kw, title) in enumerate(panels):
            ax = axes[r, c]
            ax.set_facecolor("black")
            im = ax.imshow(img, **(kw or {}))
            if kw:
                fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.suptitle(f"{seq.subject} / {seq.sequence}, frame {t}: backend {metrics.get('backend')}")
    fig.tight_layout()
    out = {"maps": _save(fig, maps_path)}

    fig, axes = plt.subplots(
        1, len(serials), figsize=(3.2 * len(serials), 4.2), dpi=100, squeeze=False
    )
    if gt_dir is not None:
        gt = load_depth_frame(Path(gt_dir) / "depth" / f"frame_{t:05d}.npz")
        gt_depth = gt.depth[[gt.index(s) for s in serials]]
        err = np.abs(depth - gt_depth) * 1000.0
        shown = np.where(face & valid & (gt_depth > 0), err, np.nan)
        missing = face & ~valid
        kw, label = dict(cmap="inferno", vmin=0, vmax=2.0), "absolute depth error (mm)"
        title = (
            f"depth error in the face mask: median {metrics.get('depth_median_abs_err_mm', 0):.2f}"
            f" mm, p90 {metrics.get('depth_p90_abs_err_mm', 0):.2f} mm, valid "
            f"{100 * metrics.get('valid_fraction', 0):.1f} % (cyan: no depth)"
        )
    else:
        shown = np.where(face & valid, frame.confidence[idx], np.nan)
        missing = face & ~valid
        kw, label = dict(cmap="magma", vmin=0, vmax=1), "confidence (no ground truth)"
        title = f"confidence in the face mask: valid {100 * metrics.get('valid_fraction', 0):.1f} %"
    for c, s in enumerate(serials):
        ax = axes[0, c]
        ax.imshow(images[c].mean(axis=-1), cmap="gray", alpha=0.35)
        im = ax.imshow(shown[c], **kw)
        overlay = np.zeros((*missing[c].shape, 4))
        overlay[missing[c]] = (0, 1, 1, 0.8)
        ax.imshow(overlay)
        ax.set_title(f"cam {s}", fontsize=9)
        ax.axis("off")
    fig.colorbar(im, ax=axes[0, -1], fraction=0.046, pad=0.02, label=label)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out["errors"] = _save(fig, errors_path)
    return out


def points_qc(points_path: PathLike, out_path: PathLike, metrics: dict) -> Path:
    """The fused point cloud of the middle frame coloured by normal, with the fused 3D
    landmarks (red: valid, grey: rejected), from the front and the side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..points.io import load_points

    data = load_points(points_path)
    offsets = data["frame_offsets"]
    i = (len(offsets) - 1) // 2
    pts = data["points"][offsets[i] : offsets[i + 1]]
    nrm = data["normals"][offsets[i] : offsets[i + 1]]
    lmk, ok = data["landmarks3d"][i], data["landmarks3d_valid"][i]
    colors = np.clip((nrm + 1) / 2, 0, 1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 6), dpi=100)
    for ax, (a, b, name) in zip(axes, [(0, 1, "front (x, y)"), (2, 1, "side (z, y)")], strict=True):
        # As a camera facing the subject sees it: the subject's left (+x) on the right.
        ax.scatter(pts[:, a], pts[:, b], c=colors, s=0.5, linewidths=0)
        ax.scatter(lmk[ok, a], lmk[ok, b], c="red", s=12, label="3D landmark (valid)")
        if (~ok).any():
            ax.scatter(
                lmk[~ok, a], lmk[~ok, b], c="0.6", s=12, marker="x", label="3D landmark (rejected)"
            )
        ax.set_aspect("equal")
        ax.set_title(name)
        ax.set_xlabel("metres")
    axes[0].legend(loc="lower left", fontsize=8)
    frame = int(data["frames"][i]) if "frames" in data else i
    parts = [f"frame {frame}: {len(pts)} points"]
    if "points_to_mesh_median_mm" in metrics:
        parts.append(
            f"median distance to the true mesh {metrics['points_to_mesh_median_mm']:.2f} mm"
        )
    if "landmarks3d_median_err_mm" in metrics:
        parts.append(f"3D landmark error {metrics['landmarks3d_median_err_mm']:.2f} mm (median)")
    fig.suptitle("; ".join(parts), fontsize=10)
    fig.tight_layout()
    return _save(fig, out_path)
