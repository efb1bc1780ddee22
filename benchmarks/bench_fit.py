"""FLAME fitting speed: seconds per frame of the whole-sequence fit (``fit_flame``) for the
default sequence, and how the time per step grows with the number of frames and the points
per frame.

Input: a sequence's ``points.npz`` and ``alignment.json`` from a workflow run (default: the
default synthetic sequence, ``results/points/syn000/SEN-00`` and ``results/flame/...``).
Longer sequences than the recording are made by playing it forwards and backwards; fewer
points by taking every k-th point of each frame.

    PYTHONPATH=src python benchmarks/bench_fit.py [--threads 2] [--device cpu|cuda]
        [--steps 2500] [--scaling-steps 200] [--frames 25 50 100]

Rows: the default fit (all frames and points, ``--steps`` steps, the configured schedule),
then the scaling runs (``--scaling-steps`` steps each), each with seconds per step and the
seconds per frame a 2500-step fit would take at that rate. Wall-clock figures depend on the
machine and its load; they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def _observations(data: dict, n_frames: int, every: int):
    from talkhead.flame.fit import FlameObservations
    from talkhead.flame.stage import observations_from_points

    obs = observations_from_points(data)
    T = obs.n_frames
    order = np.concatenate([np.arange(T), np.arange(T)[::-1]])  # forwards, then backwards
    rows = np.resize(order, n_frames)
    return FlameObservations(
        landmarks=obs.landmarks[rows],
        valid=obs.valid[rows],
        points=[obs.points[r][::every] for r in rows],
        normals=[obs.normals[r][::every] for r in rows],
        frames=np.arange(n_frames),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", default="results/points/syn000/SEN-00/points.npz")
    parser.add_argument("--alignment", default="results/flame/syn000/SEN-00/alignment.json")
    parser.add_argument("--model-dir", default="resources/head_model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--scaling-steps", type=int, default=200)
    parser.add_argument("--frames", type=int, nargs="*", default=[25, 50, 100])
    parser.add_argument("--every", type=int, nargs="*", default=[4, 2, 1])
    args = parser.parse_args()

    import torch

    from talkhead.config import from_mapping
    from talkhead.flame.config import FitFlameConfig
    from talkhead.flame.fit import fit_flame_sequence
    from talkhead.flame.layer import FlameLayer
    from talkhead.flame.model import load_flame_model
    from talkhead.flame.stage import load_alignment_init
    from talkhead.points.io import load_points

    torch.set_num_threads(args.threads)
    d = Path(args.model_dir)
    model = load_flame_model(
        d / "generic_model.pkl", d / "landmark_embedding.npz", d / "FLAME_masks.pkl"
    )
    layer = FlameLayer(model)
    data = load_points(args.points)
    init = load_alignment_init(args.alignment)
    T0 = len(data["frame_offsets"]) - 1
    ppf = int(np.diff(data["frame_offsets"]).mean())

    def run(n_frames: int, every: int, steps: int, scaled: bool) -> tuple[float, int]:
        obs = _observations(data, n_frames, every)
        over = {"steps": steps, "log_every": steps}
        if scaled:  # the schedule's milestones scaled with the steps
            over["lr_milestones"] = [int(steps * 0.2), int(steps * 0.8)]
        cfg = from_mapping(FitFlameConfig, over, "fit_flame")
        start = time.perf_counter()
        fit_flame_sequence(layer, obs, init, model.masks, cfg, args.device, args.threads)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        n_points = int(np.mean([len(p) for p in obs.points]))
        return time.perf_counter() - start, n_points

    print(
        f"FLAME fit on {args.device} with {args.threads} threads: {model.num_vertices} "
        f"vertices, {len(model.masks['face'])} matched (face region)"
    )
    print(
        f"{'run':34s} {'frames':>6s} {'points/frame':>12s} {'steps':>6s} {'s':>8s} "
        f"{'ms/step':>8s} {'s/frame @2500':>14s}"
    )

    def row(name: str, frames: int, every: int, steps: int, scaled: bool) -> None:
        seconds, n_points = run(frames, every, steps, scaled)
        per_step = seconds / steps
        print(
            f"{name:34s} {frames:6d} {n_points:12d} {steps:6d} {seconds:8.1f} "
            f"{per_step * 1000:8.1f} {per_step * 2500 / frames:14.2f}"
        )

    if args.steps:
        row("default sequence", T0, 1, args.steps, False)
    for frames in args.frames:
        row("frames", frames, 1, args.scaling_steps, True)
    for every in args.every:
        row(f"points per frame (every {every})", T0, every, args.scaling_steps, True)
    print(f"(recording: {T0} frames, {ppf} points per frame on average)")


if __name__ == "__main__":
    main()
