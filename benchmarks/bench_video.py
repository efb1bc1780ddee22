"""Memory and speed of a long comparison video (talkhead.training.render): ground truth beside
a prediction, one camera, with the speech, streamed into the encoder a chunk at a time.

    PYTHONPATH=src python benchmarks/bench_video.py [--seconds 60] [--fps 30] [--size 256]
        [--chunk 64] [--flame-model resources/head_model/generic_model.pkl]
        [--checkpoint results/models/<model>/model.ckpt --dataset results/dataset]

The left panel is FLAME parameters posed on demand (:class:`PosedFlame`, random expressions
and jaw of the head model, model space), the right one a (T, V, 3) float32 memory map on disk
(as predicted meshes are); without a head model file both are an icosphere of 10242 vertices
(more than FLAME's 5023). The audio is ``--seconds`` of a 16 kHz tone. Printed: frames, wall
time, the process's peak resident memory (``ru_maxrss``), its resident memory before the video
and at each quarter of the frames (sampled from /proc/self/status), and what stacking the
frames would hold (T x H x W x 3 bytes). Wall-clock figures depend on the machine: printed,
never asserted.

With ``--checkpoint`` and ``--dataset``, the whole held-out job instead
(:func:`talkhead.training.held_out.animate_held_out`, what rule ``animate_model`` runs: the
model animates the audio, its meshes are written, the comparison video rendered): the held-out
sequence's cleaned audio and FLAME parameters tiled to ``--seconds`` in a temporary copy of
the dataset.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def rss_mb() -> float:
    """The process's resident memory now (MiB), from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sources(T: int, flame_model: Path, folder: Path):
    """(truth, prediction, faces, what) of T frames."""
    from talkhead.training.render import PosedFlame

    if flame_model.is_file():
        from talkhead.flame.layer import FlameLayer

        layer = FlameLayer.from_file(flame_model)
        rng = np.random.default_rng(0)
        E = layer.num_expression
        t = np.arange(T)[:, None]
        params = {
            "shape": np.zeros(0, np.float32),
            "expression": (np.sin(t / 7.0 + rng.random(E)) * 1.5).astype(np.float32),
            "jaw": np.concatenate([0.15 * (1 + np.sin(t / 3.0)), np.zeros((T, 2))], axis=1).astype(
                np.float32
            ),
            "rotation": np.zeros((T, 3), np.float32),
            "neck": np.zeros((T, 3), np.float32),
            "eyes": np.zeros((T, 6), np.float32),
            "translation": np.zeros((T, 3), np.float32),
            "scale": np.ones((T, 1), np.float32),
            "frames": np.arange(T),
        }
        truth = PosedFlame(layer, params, T, "model")
        faces = layer.faces.numpy()
        what = f"FLAME-format head model ({layer.num_vertices} vertices, {len(faces)} faces)"
        V = layer.num_vertices
        template = truth[0:1][0]
    else:
        import trimesh

        mesh = trimesh.creation.icosphere(subdivisions=5, radius=0.1)
        template, faces = np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces)
        V = len(template)
        pulse = 1 + 0.1 * np.sin(np.arange(T) / 5.0)
        truth = np.lib.format.open_memmap(
            folder / "truth.npy", mode="w+", dtype=np.float32, shape=(T, V, 3)
        )
        for a in range(0, T, 256):
            truth[a : a + 256] = template[None] * pulse[a : a + 256, None, None]
        truth.flush()
        what = f"icosphere ({V} vertices, {len(faces)} faces)"
    pred = np.lib.format.open_memmap(
        folder / "prediction.npy", mode="w+", dtype=np.float32, shape=(T, V, 3)
    )
    wobble = 0.003 * np.sin(np.arange(T) / 4.0)
    for a in range(0, T, 256):
        block = np.repeat(template[None], min(256, T - a), axis=0)
        block[..., 1] += wobble[a : a + 256, None]
        pred[a : a + 256] = block
    pred.flush()
    del pred
    pred = np.load(folder / "prediction.npy", mmap_mode="r")
    return truth, pred, faces, what


def tiled_dataset(dataset: Path, seconds: float, fps: float, folder: Path) -> Path:
    """A copy of ``dataset`` whose held-out sequence (alone) lasts ``seconds`` at ``fps``: its
    audio and FLAME parameters repeated."""
    import csv
    import shutil

    from talkhead.audio.io import read_audio, write_audio
    from talkhead.dataset import layout
    from talkhead.flame.params import load_flame_params, save_flame_params
    from talkhead.training.held_out import held_out_sequence

    row, _ = held_out_sequence(dataset)
    root = folder / "dataset"
    root.mkdir()
    shutil.copy(dataset / "splits.json", root / "splits.json")
    with open(dataset / "manifest.csv", newline="") as f:  # the sequence at --fps
        rows = list(csv.DictReader(f))
    for r in rows:
        r["fps"] = str(fps)
    with open(root / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    src, dst = layout.sequence_dir(dataset, row["name"]), layout.sequence_dir(root, row["name"])
    audio, rate = read_audio(layout.wav_path(src))
    n = int(seconds * rate)
    write_audio(layout.wav_path(dst), np.resize(audio, (n, audio.shape[1])), rate)
    params = load_flame_params(layout.flame_params_path(src))
    T = int(round(seconds * fps))
    frames = len(params["frames"])
    tiled = {
        k: (np.resize(v, (T, *np.shape(v)[1:])) if np.ndim(v) and len(v) == frames else v)
        for k, v in params.items()
        if k != "shape"
    }
    tiled.update({"shape": params["shape"], "frames": np.arange(T)})
    save_flame_params(layout.flame_params_path(dst), tiled)
    return root


def held_out_job(args: argparse.Namespace) -> None:
    """Peak memory of the held-out animation job on a ``--seconds`` sequence."""
    from talkhead.training.held_out import animate_held_out

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        root = tiled_dataset(args.dataset, args.seconds, args.fps, folder)
        before = rss_mb()
        start = time.perf_counter()
        summary = animate_held_out(
            args.checkpoint,
            root,
            args.flame_model,
            folder / "held_out",
            folder / "held_out.mp4",
            size=args.size,
            chunk=args.chunk,
        )
        wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"held-out job of {args.checkpoint} ({summary['model']}), {summary['sequence']}")
    print("| seconds | fps | frames | wall (s) | peak RSS (MiB) | RSS before (MiB) |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {summary['seconds']:.1f} | {summary['fps']:g} | {summary['frames']} | {wall:.1f} | "
        f"{peak:.0f} | {before:.0f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument(
        "--flame-model", type=Path, default=Path("resources/head_model/generic_model.pkl")
    )
    ap.add_argument("--checkpoint", type=Path, help="a trained model: time its held-out job")
    ap.add_argument("--dataset", type=Path, default=Path("results/dataset"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.checkpoint is not None:
        held_out_job(args)
        return

    from talkhead.training.render import Panel, render_panels, write_video

    T = int(round(args.seconds * args.fps))
    rate = 16000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        truth, pred, faces, what = sources(T, args.flame_model, folder)
        audio = 0.3 * np.sin(2 * np.pi * 180 * np.arange(int(args.seconds * rate)) / rate)
        before = rss_mb()
        samples: dict[int, float] = {}
        quarters = {T // 4, T // 2, 3 * T // 4, T}

        def frames():
            for i, image in enumerate(
                render_panels(
                    [Panel(truth, faces, "ground truth"), Panel(pred, faces, "prediction")],
                    size=args.size,
                    chunk=args.chunk,
                ),
                start=1,
            ):
                if i in quarters:
                    samples[i] = rss_mb()
                yield image

        start = time.perf_counter()
        out = write_video(folder / "comparison.mp4", frames(), args.fps, audio, rate)
        wall = time.perf_counter() - start
        size_mb = out.stat().st_size / 2**20
        import av

        with av.open(str(out)) as box:
            n = box.streams.video[0].frames
            kinds = sorted({s.type for s in box.streams})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stacked = T * args.size * 2 * args.size * 3 / 2**20
    print(f"meshes: {what}; video {2 * args.size}x{args.size}, chunk {args.chunk} frames")
    print(
        "| seconds | fps | frames written | streams | wall (s) | peak RSS (MiB) | "
        "RSS before (MiB) | RSS at 1/4, 1/2, 3/4, all frames (MiB) | stacked frames (MiB) "
        "| mp4 (MiB) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    at = ", ".join(f"{samples.get(q, float('nan')):.0f}" for q in sorted(quarters))
    print(
        f"| {args.seconds:g} | {args.fps:g} | {n} | {'+'.join(kinds)} | {wall:.1f} | "
        f"{peak:.0f} | {before:.0f} | {at} | {stacked:.0f} | {size_mb:.1f} |"
    )


if __name__ == "__main__":
    main()
