"""Marching-cubes time per mesh (talkhead.nphm.marching.extract_mesh), dense and coarse-to-fine.

    PYTHONPATH=src python benchmarks/bench_marching.py [--threads 2] [--device cpu|cuda]
        [--resolutions 64 128 256] [--coarse-factor 4] [--sdf analytic mlp] [--repeat 1]

Two SDFs over NPHM's meshing box brought to FLAME metres (NPHM's bounds divided by 4:
[-0.1375, -0.125, -0.2375] .. [0.1375, 0.1875, 0.1]):

- ``analytic``: an ellipsoid-like head (a sphere of radius 9 cm stretched 1.2x along y), almost
  free to evaluate: the time is the grid, marching cubes and bookkeeping;
- ``mlp``: a network of an implicit head model's cost (3 -> 4 x 128 Softplus -> 1, seeded
  random init) added (x 0.01) to that analytic term, so a surface exists and the network's
  evaluations dominate.

Rows: resolution, SDF, mode (dense, or coarse-to-fine with ``resolution // coarse-factor``
coarse samples; ``(=)`` when its triangles are the dense mesh's), SDF evaluations, wall-clock
seconds per mesh and the CPU seconds of this process (best of ``--repeat``; on a loaded
machine the CPU time is the steadier figure), vertices and faces. Wall-clock figures depend
on the machine and its load (printed with the load average); they are printed, never
asserted.

Measured on the 2-core development machine (``--threads 2``, load average about 2 from other
jobs at the start, so the CPU seconds are close to the wall-clock seconds: about one core):

| resolution | SDF | mode | points evaluated | seconds | CPU seconds | vertices | faces |
|---|---|---|---|---|---|---|---|
| 64 | analytic | dense | 262,144 | 0.18 | 0.18 | 7,308 | 14,612 |
| 64 | analytic | coarse 16 (=) | 97,150 | 0.09 | 0.09 | 7,308 | 14,612 |
| 64 | mlp | dense | 262,144 | 2.33 | 2.30 | 7,110 | 14,216 |
| 64 | mlp | coarse 16 (=) | 94,110 | 0.90 | 0.90 | 7,110 | 14,216 |
| 128 | analytic | dense | 2,097,152 | 1.29 | 1.28 | 29,654 | 59,304 |
| 128 | analytic | coarse 32 (=) | 402,042 | 0.35 | 0.34 | 29,654 | 59,304 |
| 128 | mlp | dense | 2,097,152 | 17.97 | 17.68 | 28,906 | 57,808 |
| 128 | mlp | coarse 32 (=) | 395,466 | 3.58 | 3.43 | 28,906 | 57,808 |
| 256 | analytic | dense | 16,777,216 | 8.61 | 8.41 | 119,484 | 238,964 |
| 256 | analytic | coarse 64 (=) | 1,742,050 | 1.92 | 1.90 | 119,484 | 238,964 |
| 256 | mlp | dense | 16,777,216 | 142.21 | 140.39 | 116,580 | 233,156 |
| 256 | mlp | coarse 64 (=) | 1,708,850 | 15.00 | 14.73 | 116,580 | 233,156 |

Coarse-to-fine gave the dense mesh's triangles in every row, with 5x (128) and 9.5x (256)
fewer MLP evaluations; the MLP evaluates about 120k points per CPU-second here.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from talkhead.nphm.marching import extract_mesh

BOUNDS_MIN = (-0.1375, -0.125, -0.2375)
BOUNDS_MAX = (0.1375, 0.1875, 0.1)
RADIUS = 0.09
STRETCH = torch.tensor([1.0, 1.2, 1.0])


def analytic_sdf(x: torch.Tensor) -> torch.Tensor:
    """A sphere stretched along y (a distance bound, not exact, as a learned SDF)."""
    return (x / STRETCH.to(x.device)).norm(dim=1) - RADIUS


def mlp_sdf(device: str, width: int = 128, layers: int = 4, seed: int = 0):
    torch.manual_seed(seed)
    mods: list[torch.nn.Module] = []
    dim = 3
    for _ in range(layers):
        mods += [torch.nn.Linear(dim, width), torch.nn.Softplus(beta=100)]
        dim = width
    mods.append(torch.nn.Linear(dim, 1))
    net = torch.nn.Sequential(*mods).to(device).eval()

    def sdf(x: torch.Tensor) -> torch.Tensor:
        return analytic_sdf(x) + 0.01 * net(x)[:, 0]

    return sdf


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--device", default="cpu", help="where the SDF runs (cpu, cuda)")
    p.add_argument("--resolutions", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--coarse-factor", type=int, default=4)
    p.add_argument("--sdf", nargs="+", default=["analytic", "mlp"], choices=["analytic", "mlp"])
    p.add_argument("--chunk", type=int, default=65536)
    p.add_argument("--repeat", type=int, default=1, help="runs per row; the best is printed")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    sdfs = {"analytic": analytic_sdf, "mlp": mlp_sdf(args.device)}
    for sdf in sdfs.values():  # warm up: imports, allocator, kernels
        extract_mesh(sdf, BOUNDS_MIN, BOUNDS_MAX, 16, coarse=8, device=args.device)
    load = os.getloadavg()
    print(
        f"marching cubes on {args.device}, torch threads {torch.get_num_threads()}, "
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print()
    print(
        "| resolution | SDF | mode | points evaluated | seconds | CPU seconds | vertices | faces |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for res in args.resolutions:
        for name in args.sdf:
            dense_faces = None
            for coarse in (None, res // args.coarse_factor):
                best, best_cpu, result = float("inf"), float("inf"), None
                for _ in range(args.repeat):
                    t0, c0 = time.perf_counter(), time.process_time()
                    result = extract_mesh(
                        sdfs[name],
                        BOUNDS_MIN,
                        BOUNDS_MAX,
                        res,
                        chunk=args.chunk,
                        coarse=coarse,
                        device=args.device,
                    )
                    if args.device.startswith("cuda"):
                        torch.cuda.synchronize()
                    best = min(best, time.perf_counter() - t0)
                    best_cpu = min(best_cpu, time.process_time() - c0)
                assert result is not None
                mode = "dense" if coarse is None else f"coarse {coarse}"
                same = ""
                if coarse is None:
                    dense_faces = result.faces
                elif dense_faces is not None:
                    same = " (=)" if np.array_equal(dense_faces, result.faces) else " (differs)"
                cells = [res, name, mode + same, f"{result.n_evaluated:,}", f"{best:.2f}"]
                cells += [f"{best_cpu:.2f}", f"{len(result.vertices):,}", f"{len(result.faces):,}"]
                print("| " + " | ".join(map(str, cells)) + " |", flush=True)


if __name__ == "__main__":
    main()
