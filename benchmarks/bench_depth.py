"""Speed and accuracy of the depth backends.

Prints one row per backend x device: resolution, views, frames, seconds per frame,
megapixels x views per second, median / p90 absolute depth error (mm), valid fraction and
median normal error, pooled over all frames and evaluated on the face (segmentation labels
1-9 where the capture has them, else the alpha matte).

Data:
- ``--capture ROOT --subject S --sequence Q --gt GT_ROOT``: a Nersemble-style capture (e.g.
  the synthetic studio) and its ground-truth root (read by talkhead.evaluation.ground_truth).
  The depth range comes from the triangulated 2D landmarks, as in the workflow.
- otherwise: the ray-cast test scene of ``tests/test_depth_mvs.py`` (a bumpy ellipsoid at
  1 m from an arc of cameras; ``--views``, ``--width``, ``--height``).

Adding a backend (e.g. COLMAP): write ``run_<name>(frames, cameras, device, args)`` that
yields ``(depth (C, H, W), normal (C, H, W, 3) or None)`` per frame and register it in
``BACKENDS`` (with the devices it supports in ``BACKEND_DEVICES``).

Examples::

    python benchmarks/bench_depth.py
    python benchmarks/bench_depth.py --frames 3 --views 8 --width 256 --height 320
    python benchmarks/bench_depth.py --capture data/capture --subject s0 --sequence q0 \\
        --gt data/gt --frames 10 --config '{"n_planes": 64}'
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from talkhead.depth.mvs.config import MVSConfig  # noqa: E402
from talkhead.depth.mvs.estimate import estimate_depth_sequence  # noqa: E402
from talkhead.depth.range import depth_range_from_points, depth_range_from_rig  # noqa: E402
from talkhead.evaluation.depth import DepthErrorAccumulator  # noqa: E402
from talkhead.evaluation.ground_truth import GroundTruth, ground_truth_dir  # noqa: E402
from talkhead.geometry.triangulation import triangulate_points  # noqa: E402


@dataclass
class Frame:
    """One frame: images (C, H, W, 3) uint8, masks (C, H, W) bool, depth_range (C, 2),
    and ground truth: depth (C, H, W), normal (C, H, W, 3) or None, eval mask (C, H, W)."""

    images: np.ndarray
    masks: np.ndarray
    depth_range: np.ndarray
    gt_depth: np.ndarray
    gt_normal: np.ndarray | None
    eval_mask: np.ndarray


@dataclass
class Dataset:
    name: str
    cameras: list
    frames: list[Frame] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


def _load_test_scene_module():
    path = ROOT / "tests" / "test_depth_mvs.py"
    spec = importlib.util.spec_from_file_location("_depth_test_scene", path)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def scene_dataset(n_frames: int, views: int, width: int, height: int, fov: float) -> Dataset:
    """The ray-cast test scene; the head's bumps change from frame to frame."""
    scene = _load_test_scene_module()
    cams = scene.make_cameras(views, width, height, fov)
    ds = Dataset(f"test scene ({views} views)", cams)
    for t in range(n_frames):
        images, masks, depth, normals = scene.render_views(cams, phase=0.5 * t, seed=t)
        face = scene.face_masks(cams, masks, normals)
        ds.frames.append(Frame(images, masks, depth_range_from_rig(cams), depth, normals, face))
    return ds


def capture_dataset(
    root: str,
    subject: str,
    sequence: str,
    gt_root: str | None,
    n_frames: int,
    face_labels=tuple(range(1, 10)),
) -> Dataset:
    """Frames of a Nersemble-style capture with ground-truth depth."""
    from talkhead.capture.masks import facial_masks, head_masks
    from talkhead.capture.readers import read_images, read_landmarks
    from talkhead.capture.sequence import open_sequence

    seq = open_sequence(root, subject, sequence, validate=False)
    cams = [seq.cameras[s] for s in seq.serials]
    lmk = read_landmarks(seq) if seq.has_landmarks else None  # (C, T, 68, 3)
    ds = Dataset(f"{subject}/{sequence}", cams)
    for i, t in enumerate(seq.frame_ids[:n_frames]):
        images = read_images(seq, t)
        masks = head_masks(seq, t)
        face = facial_masks(seq, t, labels=face_labels)
        rng = depth_range_from_rig(cams)
        if lmk is not None:
            X, ok = triangulate_points(lmk[:, i, :, :2], lmk[:, i, :, 2], cams)
            if ok.sum() >= 4:
                rng = depth_range_from_points(X[ok], cams)
        gt_depth = np.zeros(masks.shape, np.float32)
        gt_normal = None
        if gt_root is not None:
            true = GroundTruth.open(ground_truth_dir(gt_root, subject, sequence)).depth_frame(t)
            order = [true.index(s) for s in seq.serials]
            gt_depth, gt_normal = true.depth[order], true.normal[order]
        ds.frames.append(Frame(images, masks, rng, gt_depth, gt_normal, face))
    return ds


# --------------------------------------------------------------------------------------------
# backends
# --------------------------------------------------------------------------------------------


def run_torch(frames: list[Frame], cameras, device: str, args) -> Iterator[tuple]:
    cfg = MVSConfig(**json.loads(args.config)) if args.config else MVSConfig()
    items = ((f.images, f.masks, f.depth_range) for f in frames)
    for res in estimate_depth_sequence(
        items, cameras, config=cfg, device=device, progress=False, total=len(frames)
    ):
        yield res.depth, res.normal


def run_colmap(frames: list[Frame], cameras, device: str, args) -> Iterator[tuple]:
    """COLMAP PatchMatch stereo (CUDA pycolmap or a CUDA ``colmap`` binary) on each frame."""
    import tempfile

    from talkhead.depth.colmap import estimate_depth_colmap
    from talkhead.depth.config import ColmapConfig

    for f in frames:
        rng = np.asarray(f.depth_range, dtype=np.float64).reshape(-1, 2)
        near_far = (float(rng[:, 0].min()), float(rng[:, 1].max()))
        with tempfile.TemporaryDirectory(prefix="bench-colmap-") as work:
            res = estimate_depth_colmap(f.images, cameras, f.masks, work, near_far, ColmapConfig())
        yield res.depth, res.normal


def _colmap_devices() -> tuple[str, ...]:
    from talkhead.depth.colmap import colmap_dense_available

    return ("cuda",) if colmap_dense_available()[0] else ()


BACKENDS: dict[str, Callable] = {"torch": run_torch, "colmap": run_colmap}
BACKEND_DEVICES: dict[str, tuple[str, ...]] = {"torch": ("cpu", "cuda")}


# --------------------------------------------------------------------------------------------
# table
# --------------------------------------------------------------------------------------------


@dataclass
class Row:
    backend: str
    device: str
    resolution: str
    views: int
    frames: int
    s_per_frame: float
    mpix_views_per_s: float
    median_mm: float
    p90_mm: float
    valid: float
    normal_deg: float


def benchmark(ds: Dataset, backend: str, device: str, args) -> Row:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("no CUDA device")
    run = BACKENDS[backend]
    if args.warmup:
        for _ in run(ds.frames[:1], ds.cameras, device, args):
            pass
    acc = DepthErrorAccumulator()
    outputs = []
    t0 = time.perf_counter()
    for depth, normal in run(ds.frames, ds.cameras, device, args):
        outputs.append((depth, normal))
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    for frame, (depth, normal) in zip(ds.frames, outputs, strict=True):
        acc.update(
            depth,
            frame.gt_depth,
            frame.eval_mask,
            normal if frame.gt_normal is not None else None,
            frame.gt_normal,
        )
    m = acc.compute()
    C, H, W = ds.frames[0].images.shape[:3]
    spf = seconds / len(ds.frames)
    return Row(
        backend,
        device,
        f"{W}x{H}",
        C,
        len(ds.frames),
        spf,
        W * H * C / 1e6 / spf,
        m["depth_median_abs_err_mm"],
        m["depth_p90_abs_err_mm"],
        m["valid_fraction"],
        m["normal_median_angle_deg"],
    )


def print_table(rows: list[Row], title: str) -> None:
    header = [
        "backend",
        "device",
        "resolution",
        "views",
        "frames",
        "s/frame",
        "MPix*views/s",
        "median mm",
        "p90 mm",
        "valid",
        "normal deg",
    ]
    cells = [
        [
            r.backend,
            r.device,
            r.resolution,
            str(r.views),
            str(r.frames),
            f"{r.s_per_frame:.2f}",
            f"{r.mpix_views_per_s:.3f}",
            f"{r.median_mm:.3f}",
            f"{r.p90_mm:.3f}",
            f"{100 * r.valid:.1f} %",
            f"{r.normal_deg:.1f}",
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for c in cells:
        print("| " + " | ".join(x.ljust(w) for x, w in zip(c, widths, strict=True)) + " |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--capture", help="capture root (Nersemble layout)")
    p.add_argument("--subject")
    p.add_argument("--sequence")
    p.add_argument("--gt", help="ground-truth root (resources/synthetic/ground_truth)")
    p.add_argument("--frames", type=int, default=3)
    p.add_argument("--views", type=int, default=8, help="test scene: cameras")
    p.add_argument("--width", type=int, default=256, help="test scene: image width")
    p.add_argument("--height", type=int, default=320, help="test scene: image height")
    p.add_argument("--fov", type=float, default=18.0, help="test scene: horizontal fov (deg)")
    p.add_argument("--backends", default="torch", help=f"comma list of {sorted(BACKENDS)}")
    p.add_argument(
        "--devices",
        default="auto",
        help="comma list of cpu,cuda; auto = cpu and cuda when available",
    )
    p.add_argument(
        "--config",
        default="",
        help="JSON overrides of MVSConfig fields, e.g. "
        "'{\"n_planes\": 64}'; fields: " + ", ".join(f.name for f in fields(MVSConfig)),
    )
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--no-warmup", dest="warmup", action="store_false")
    p.add_argument("--json", help="also write the rows to this JSON file")
    args = p.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.capture:
        if not (args.subject and args.sequence):
            p.error("--capture needs --subject and --sequence")
        ds = capture_dataset(args.capture, args.subject, args.sequence, args.gt, args.frames)
        if args.gt is None:
            print("no --gt: accuracy columns are NaN", file=sys.stderr)
    else:
        ds = scene_dataset(args.frames, args.views, args.width, args.height, args.fov)
    devices = (
        (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
        if args.devices == "auto"
        else args.devices.split(",")
    )
    rows = []
    for backend in args.backends.split(","):
        if backend not in BACKENDS:
            p.error(f"unknown backend {backend!r}; known: {sorted(BACKENDS)}")
        if backend == "colmap":
            BACKEND_DEVICES["colmap"] = _colmap_devices()
            if not BACKEND_DEVICES["colmap"]:
                print("colmap: dense stereo unavailable here (no CUDA): skipped", file=sys.stderr)
        for device in devices:
            if device not in BACKEND_DEVICES.get(backend, ("cpu",)):
                continue
            rows.append(benchmark(ds, backend, device, args))
    print_table(rows, f"depth: {ds.name}, torch threads {torch.get_num_threads()}")
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
