"""Speed of the audio-driven face models: training throughput (windows per second) and the
inference time per second of audio, at the demo and the full (paper) sizes, on random inputs.

    PYTHONPATH=src python benchmarks/bench_models.py [--threads 1] [--device cpu|cuda]
        [--scales demo full] [--batch 8] [--window 50] [--audio-s 10] [--steps 5]

Rows (each model at each scale):

- ``facetalk``: the FiLM diffusion decoder (training: one diffusion loss step; inference: one
  DDIM sample of ``--audio-s`` seconds with the default 50 steps; a DDPM ancestral sample
  makes 1000 network calls, 20x as many);
- ``facetalk-regression``: the same decoder without diffusion (inference: one forward pass);
- ``faceformer``: the FaceFormer-style baseline (training: teacher-forced; inference:
  autoregressive, one frame at a time with cached keys and values).

Training rows time ``--steps`` Adam steps on batches of ``--batch`` windows of ``--window``
frames (25 fps) after one warm-up step; "windows/s" is batch x steps / seconds. Inference rows
give seconds of compute per second of audio (25 fps). Sizes: demo FaceTalk latent 64, 2
blocks, 4 heads, feed-forward 128, log-mel audio (80); full FaceTalk latent 256, 4 blocks, 8
heads, feed-forward 1024, wav2vec2 audio (768) (supplement B); codes of 200 (NPHM) at both;
FaceFormer latent 64, 1 layer, 4 heads (its VOCASET settings) at both, FLAME vertices
(5023 x 3). Wall-clock figures depend on the machine and its load; they are printed, never
asserted.

Measured on 1 thread of a 2-core CPU shared with other jobs (load average about 5, so the
figures vary by up to 2x between runs: two runs, ``--steps 5`` and ``--steps 10``):

| model | scale | params (M) | training windows/s | inference s per s of audio |
|---|---|---|---|---|
| facetalk | demo | 0.19 | 84 - 107 | 0.11 - 0.13 (DDIM 50) |
| facetalk-regression | demo | 0.12 | 101 - 102 | 0.002 |
| faceformer | demo | 2.00 | 17 - 22 | 0.13 (autoregressive) |
| facetalk | full | 6.22 | 9 - 12 | 0.37 - 0.96 (DDIM 50) |
| facetalk-regression | full | 4.46 | 10 - 30 | 0.006 - 0.015 |
| faceformer | full | 2.04 | 21 - 32 | 0.05 - 0.16 (autoregressive) |
"""

from __future__ import annotations

import argparse
import time

import torch

FPS = 25


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def facetalk_config(scale: str, diffusion: bool):
    from talkhead.models.facetalk import FaceTalkConfig

    if scale == "full":
        return FaceTalkConfig(diffusion=diffusion)
    return FaceTalkConfig(
        audio_dim=80, latent_dim=64, n_blocks=2, n_heads=4, ff_dim=128, diffusion=diffusion
    )


def faceformer_config(scale: str):
    from talkhead.models.baselines import FaceFormerConfig

    return FaceFormerConfig(audio_dim=768 if scale == "full" else 80)


def bench_row(name: str, scale: str, args, device: torch.device) -> dict:
    from talkhead.models.baselines import FaceFormer
    from talkhead.models.facetalk import ExpressionDecoder, GaussianDiffusion, regression_loss

    torch.manual_seed(0)
    if name == "faceformer":
        model = FaceFormer(faceformer_config(scale)).to(device)
        out_dim = model.config.output_dim
    else:
        model = ExpressionDecoder(facetalk_config(scale, name == "facetalk")).to(device)
        out_dim = model.config.expression_dim
    diffusion = GaussianDiffusion().to(device)
    A = model.config.audio_dim
    B, W = args.batch, args.window
    audio = torch.randn(B, W, A, device=device)
    target = torch.randn(B, W, out_dim, device=device)

    def loss():
        if name == "facetalk":
            return diffusion.training_loss(model, target, audio)
        if name == "facetalk-regression":
            return regression_loss(model, target, audio)
        return (model(audio, target) - target).pow(2).mean()

    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def train(n: int) -> None:
        for _ in range(n):
            opt.zero_grad()
            loss().backward()
            opt.step()

    model.train()
    train(1)
    seconds = _timed(lambda: train(args.steps), device)
    windows_per_s = B * args.steps / seconds

    T = int(args.audio_s * FPS)
    clip = torch.randn(1, T, A, device=device)
    model.eval()

    def infer() -> None:
        with torch.no_grad():
            if name == "facetalk":
                diffusion.sample(model, clip, generator=None)
            elif name == "facetalk-regression":
                model(None, clip)
            else:
                model.generate(clip)

    infer_s = _timed(infer, device)
    n_params = sum(p.numel() for p in model.parameters())
    return {
        "model": name,
        "scale": scale,
        "params_m": n_params / 1e6,
        "windows_per_s": windows_per_s,
        "infer_s_per_audio_s": infer_s / args.audio_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--scales", nargs="+", default=["demo", "full"], choices=["demo", "full"])
    ap.add_argument(
        "--models",
        nargs="+",
        default=["facetalk", "facetalk-regression", "faceformer"],
        choices=["facetalk", "facetalk-regression", "faceformer"],
    )
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--window", type=int, default=50, help="frames per training window")
    ap.add_argument("--audio-s", type=float, default=10.0, help="seconds of audio to animate")
    ap.add_argument("--steps", type=int, default=5, help="timed training steps")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(
        f"device {device}, threads {torch.get_num_threads()}, batch {args.batch} x "
        f"{args.window} frames, inference on {args.audio_s:g} s of audio ({FPS} fps)\n"
    )
    print("| model | scale | params (M) | training windows/s | inference s per s of audio |")
    print("|---|---|---|---|---|")
    for scale in args.scales:
        for name in args.models:
            r = bench_row(name, scale, args, device)
            print(
                f"| {r['model']} | {r['scale']} | {r['params_m']:.2f} | "
                f"{r['windows_per_s']:.1f} | {r['infer_s_per_audio_s']:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
