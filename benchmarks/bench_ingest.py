"""Ingest throughput: a talkhead-layout capture (default: the workflow's synthetic studio,
8 cameras 256x320, 50 frames) written as a NeRSemble v2 kit (one h264 mp4 per camera, colour
matrices) and as v1 frames, then ingested back; prints seconds, frames/s per camera and the
round trip's PSNR. ``--full-size`` adds one camera at NeRSemble's 2200x3208.

    PYTHONPATH=src python benchmarks/bench_ingest.py [CAPTURE_ROOT] [--full-size]

Wall-clock figures depend on the machine and its load; they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def bench_capture(root: Path, subject: str, sequence: str, tmp: Path) -> None:
    from talkhead.capture import export
    from talkhead.capture.readers import read_images
    from talkhead.capture.sequence import open_sequence, open_sequence_dir
    from talkhead.preprocess.ingest import ingest_sequence

    seq = open_sequence(root, subject, sequence, validate=False)
    colour = export.example_colour_matrices(seq.serials)
    export.export_nersemble_v2(seq, tmp / "v2", colour=colour)
    export.export_nersemble_v1(seq, tmp / "v1")
    print(f"{seq.n_cameras} cameras x {seq.n_frames} frames, {seq.width}x{seq.height}")
    print(f"{'ingest':32s} {'s':>7s} {'frames/s/camera':>16s} {'PSNR dB':>8s}")
    runs = [
        ("v2: decode, colour, PNG", "v2", {}),
        ("v2: decode, colour, downscale 2", "v2", {"downscale": 2}),
        ("v2: decode, PNG (no colour)", "v2", {"colour_calibration": False}),
        ("v1: PNG frames", "v1", {}),
    ]
    for name, kit, kwargs in runs:
        out = tmp / "out"
        shutil.rmtree(out, ignore_errors=True)
        res = ingest_sequence(tmp / kit, subject, sequence, out, progress=False, **kwargs)
        psnr = ""
        if not kwargs:
            got = open_sequence_dir(res.sequence_dir, res.calibration)
            t_in, t_out = seq.frame_ids[::10], got.frame_ids[::10]
            psnr = np.mean(
                [
                    _psnr(read_images(seq, a), read_images(got, b))
                    for a, b in zip(t_in, t_out, strict=True)
                ]
            )
            psnr = f"{psnr:8.1f}"
        print(f"{name:32s} {res.seconds:7.2f} {res.n_frames / res.seconds:16.1f} {psnr:>8s}")


def bench_full_size(capture_image: Path, tmp: Path, n: int = 8) -> None:
    import cv2

    from talkhead.capture import export, layouts
    from talkhead.capture.calibration import write_camera_params
    from talkhead.geometry.cameras import Camera, intrinsics_from_fov, look_at
    from talkhead.preprocess.ingest import ingest_sequence

    w, h = 2200, 3208
    base = cv2.imread(str(capture_image))[..., ::-1]
    frames = [cv2.resize(np.roll(base, i, axis=1), (w, h)) for i in range(n)]
    subj = tmp / "full" / "018"
    seq_dir = subj / "sequences" / "SEN-01"
    export.write_video(layouts.video_path(seq_dir, "1"), frames, 24.0)
    cam = Camera("1", intrinsics_from_fov(w, h, 16.0), look_at((0, 0, 1), (0, 0, 0)))
    write_camera_params(layouts.kit_calibration_path(subj), [cam])
    layouts.colour_calibration_path(subj).write_text(json.dumps({"1": np.eye(3).tolist()}))
    for ds in (1, 2):
        res = ingest_sequence(
            tmp / "full", "018", "SEN-01", tmp / f"full_out{ds}", downscale=ds, progress=False
        )
        print(f"{w}x{h} v2, downscale {ds}: {res.n_frames / res.seconds:.2f} frames/s per camera")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default="resources/synthetic/capture")
    ap.add_argument("--subject", default="syn000")
    ap.add_argument("--sequence", default="SEN-00")
    ap.add_argument("--full-size", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    try:
        bench_capture(Path(args.root), args.subject, args.sequence, tmp)
        if args.full_size:
            from talkhead.capture import layout

            seq_dir = layout.sequence_dir(args.root, args.subject, args.sequence)
            first = sorted(layout.timesteps_dir(seq_dir).iterdir())[0]
            bench_full_size(next((first / layout.IMAGES_DIR).iterdir()), tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
