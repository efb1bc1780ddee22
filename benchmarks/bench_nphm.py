"""The implicit head model's costs: training time per step, fitting time per frame (with and
without the normal term), marching-cubes time per mesh at 64/128/256, on the default (demo)
sizes of ``config/config.yaml`` or the papers' sizes of ``config/experiment.yaml``.

    PYTHONPATH=src python benchmarks/bench_nphm.py [--config config/config.yaml]
        [--threads 2] [--device cpu|cuda] [--train-steps 30] [--frames 50] [--fit-steps 20]
        [--resolutions 64 128 256]

The training rows time ``--train-steps`` steps of ``talkhead.nphm.train.train_head_model`` on
a family drawn from the head model in ``resources/head_model`` (run the workflow once, or
``snakemake build_head_model``, to have it); the fitting rows time ``--fit-steps`` steps of
``talkhead.nphm.fit.fit_codes`` on ``--frames`` frames of ``fit_nphm.points_per_frame`` points
each (surface samples of posed family meshes) and scale to ``fit_nphm.steps``; marching cubes
decodes one frame coarse-to-fine as the fit stage does. Wall-clock and CPU seconds of this
process are printed (on a loaded machine the CPU figure is the steadier one), never asserted.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from talkhead.config import from_mapping
from talkhead.flame.layer import FlameLayer
from talkhead.flame.model import load_flame_model
from talkhead.geometry.surface import sample_surface
from talkhead.nphm.config import FitNphmConfig, NphmConfig
from talkhead.nphm.data import draw_family
from talkhead.nphm.fit import fit_codes
from talkhead.nphm.stage import decode_mesh, mesh_bounds
from talkhead.nphm.train import build_model, train_head_model
from talkhead.workflow_config import read_config_file

HEAD = Path("resources/head_model")


class Clock:
    """Wall-clock and process CPU seconds of a block."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--train-steps", type=int, default=30)
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--fit-steps", type=int, default=20)
    ap.add_argument("--resolutions", type=int, nargs="+", default=[64, 128, 256])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    raw = read_config_file(args.config)
    cfg = from_mapping(NphmConfig, raw.get("nphm"), "nphm")
    fit_cfg = from_mapping(FitNphmConfig, raw.get("fit_nphm"), "fit_nphm")
    head = load_flame_model(
        HEAD / "generic_model.pkl", HEAD / "landmark_embedding.npz", HEAD / "FLAME_masks.pkl"
    )
    face = None if head.masks is None else head.masks.get("face")
    print(
        f"# {args.config}: device {args.device}, {args.threads} threads, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    torch.manual_seed(0)
    model, frame = build_model(head.v_template, head.faces, face, cfg.model)
    rng = np.random.default_rng(0)
    t = cfg.train
    family = draw_family(FlameLayer(head), frame, t.identities, t.expressions, t, rng)
    short = replace(cfg, train=replace(t, steps=args.train_steps, lr_milestones=(), lr_factors=()))
    with tempfile.TemporaryDirectory() as tmp, Clock() as c:
        train_head_model(model, family, short, Path(tmp) / "ckpt.pt", args.device)
    per = c.wall / args.train_steps
    print(
        f"training: {model.n_anchors} anchors, {sum(p.numel() for p in model.parameters()):,} "
        f"parameters, {per:.3f} s/step ({c.cpu / args.train_steps:.3f} CPU s); "
        f"{t.steps} steps: {per * t.steps / 60:.1f} min"
    )
    model.eval()
    faces = family.faces
    pts, nrm = [], []
    for k in range(args.frames):
        posed = family.posed[k % family.n_identities, k % family.n_expressions]
        p, n, _ = sample_surface(posed, faces, 4 * fit_cfg.points_per_frame, rng)
        pts.append(p.astype(np.float32))
        nrm.append(n.astype(np.float32))
    frames = np.arange(args.frames)
    for label, normal in (("without normal term", 0.0), ("with normal term", 0.5)):
        fc = replace(
            fit_cfg,
            steps=args.fit_steps,
            lr_milestones=(),
            lr_factors=(),
            weights=replace(fit_cfg.weights, normal=normal),
        )
        with Clock() as c:
            fit = fit_codes(model, frame.extent, pts, nrm, frames, fc, device=args.device)
        scale = fit_cfg.steps / args.fit_steps
        print(
            f"fit {args.frames} frames x {fit_cfg.points_per_frame} points, {label}: "
            f"{c.wall / args.fit_steps:.3f} s/step; {fit_cfg.steps} steps: "
            f"{c.wall * scale / args.frames:.3f} s/frame ({c.cpu * scale / args.frames:.3f} CPU s)"
        )
    bounds = mesh_bounds(frame, head.v_template, fit_cfg.mesh_margin)
    for res in args.resolutions:
        with Clock() as c:
            v, f = decode_mesh(
                model,
                fit.expression[0],
                fit.identity_global,
                fit.identity_local,
                bounds,
                res,
                args.device,
            )
        print(f"marching cubes {res}: {c.wall:.2f} s/mesh ({c.cpu:.2f} CPU s), {len(v):,} vertices")


if __name__ == "__main__":
    main()
