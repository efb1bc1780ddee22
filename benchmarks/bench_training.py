"""Speed of training and animation through talkhead's training path (Lightning modules,
data module, the config's demo sizes), on a packaged dataset: training throughput (windows
per second, after setup) and the time to animate one second of audio, per model.

    PYTHONPATH=src python benchmarks/bench_training.py [--dataset results/dataset]
        [--flame-model resources/head_model/generic_model.pkl] [--masks ...FLAME_masks.pkl]
        [--steps 40] [--audio-s 10] [--threads 1] [--gpus 0] [--models ...]
        [--nphm-model resources/nphm/model.pt] [--nphm-fits results/nphm] [--mesh-every 5]

Each model is trained for ``--steps`` steps (``models.training`` defaults: batches of 4
windows of 25 frames) into a temporary folder; "windows/s" is ``metrics.json``'s (steps x
batch / seconds of ``trainer.fit``, setup excluded). Animation: the dataset's first cleaned
audio tiled to ``--audio-s`` seconds; "features" is the audio cleaner and the model's
features, "model" one sample (FaceTalk: DDIM with ``sample_steps``; FaceFormer:
autoregressive; MeshTalk: the context model draws T x H codes one by one), "meshes + video"
the PLY files and the mp4 of one sample (models of NPHM codes: the NPHM's marching cubes at
48^3 every ``--mesh-every``-th frame, with the dataset's first subject's identity; codes only
when the NPHM files are absent); all in seconds per second of audio. Wall-clock
figures depend on the machine and its load: printed, never asserted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from talkhead.audio.config import AudioConfig
from talkhead.audio.io import read_audio
from talkhead.audio.prepare import prepare_audio
from talkhead.dataset import layout
from talkhead.training.animate import animate_file, model_inputs
from talkhead.training.config import DEFAULT_MODELS, MODELS
from talkhead.training.modules import load_module
from talkhead.training.train import train_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="results/dataset")
    ap.add_argument("--flame-model", default="resources/head_model/generic_model.pkl")
    ap.add_argument("--masks", default="resources/head_model/FLAME_masks.pkl")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--audio-s", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--gpus", type=int, default=0)
    ap.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=MODELS)
    ap.add_argument("--nphm-model", default="resources/nphm/model.pt")
    ap.add_argument("--nphm-fits", default="results/nphm", help="<subject>/identity.npz")
    ap.add_argument("--mesh-every", type=int, default=5)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if args.gpus and torch.cuda.is_available() else "cpu"
    name = sorted(p.name for p in layout.data_dir(args.dataset).iterdir() if p.is_dir())[0]
    identities = sorted(Path(args.nphm_fits).glob("*/identity.npz"))
    nphm = {}
    if Path(args.nphm_model).is_file() and identities:
        nphm = {"nphm_model": args.nphm_model, "nphm_identity": identities[0]}
        nphm["mesh_every"] = args.mesh_every
    wav = layout.wav_path(layout.sequence_dir(args.dataset, name))
    raw, rate = read_audio(wav)
    reps = int(np.ceil(args.audio_s * rate / raw.shape[0]))
    long = np.tile(raw, (reps, 1))[: int(args.audio_s * rate)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        import soundfile as sf

        audio_path = Path(tmp) / "speech.wav"
        sf.write(audio_path, long, rate)
        for kind in args.models:
            out = Path(tmp) / kind
            m = train_model(
                args.dataset,
                kind,
                out,
                {"training": {"steps": args.steps}},
                flame_model=args.flame_model,
                flame_masks=args.masks,
                gpus=args.gpus,
                progress_bar=False,
            )
            module = load_module(str(out / "model.ckpt"), map_location=device)
            t0 = time.perf_counter()
            clean = prepare_audio(long, rate, AudioConfig(), "bench")
            x = model_inputs(module, clean.audio, clean.sample_rate, module.dims["fps"]).to(device)
            t_feat = time.perf_counter() - t0
            g = torch.Generator(device=device).manual_seed(0)
            t0 = time.perf_counter()
            module.animate(x, 1, g)
            if device == "cuda":
                torch.cuda.synchronize()
            t_model = time.perf_counter() - t0
            t0 = time.perf_counter()
            summary = animate_file(
                out / "model.ckpt",
                audio_path,
                Path(tmp) / f"anim_{kind}",
                device=device,
                **(nphm if module.dims["target"] == "nphm_expression" else {}),
            )
            t_all = time.perf_counter() - t0
            s = args.audio_s
            rows.append(
                (
                    kind,
                    m["n_parameters"] / 1e6,
                    m["windows_per_s"],
                    t_feat / s,
                    t_model / s,
                    max(0.0, t_all - t_feat - t_model) / s,
                    summary["mesh_frames"],
                )
            )
    print(
        f"device {device}, {args.threads} thread(s), {args.steps} steps, {args.audio_s:g} s audio"
    )
    print(
        "| model | params (M) | training windows/s | features s/s | model s/s "
        "| meshes + video s/s | frames with a mesh |"
    )
    print("|---|---|---|---|---|---|---|")
    for kind, p, w, f, mdl, rest, n in rows:
        print(f"| {kind} | {p:.2f} | {w:.1f} | {f:.3f} | {mdl:.3f} | {rest:.3f} | {n} |")


if __name__ == "__main__":
    main()
