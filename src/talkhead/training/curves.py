"""The loss-curve figure of a training run (``loss_curve.png`` beside ``losses.csv``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..io import PathLike, atomic_path

__all__ = ["plot_losses"]


def plot_losses(rows: Sequence[dict[str, float]], path: PathLike, title: str) -> Path:
    """Each ``train/*`` and ``val/*`` figure of ``losses.csv`` rows against the step, on a log
    axis when all its values are positive; MeshTalk's stage change as a dashed line.

    Args:
        rows: :func:`talkhead.training.train.merge_losses` rows (``step`` and figures).
        path: the PNG to write (atomically).
        title: the figure's title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted(
        {k for r in rows for k in r if k.startswith(("train/", "val/")) and k != "train/stage"}
    )
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    positive = True
    for key in keys:
        pts = [(r["step"], r[key]) for r in rows if key in r]
        if not pts:
            continue
        steps, values = zip(*pts, strict=True)
        positive &= min(values) > 0
        style = "k-" if key == "train/loss" else "-"
        ax.plot(steps, values, style, label=key, lw=2 if key == "train/loss" else 1)
    stage = [r["step"] for r in rows if r.get("train/stage") == 2.0]
    if stage:
        ax.axvline(min(stage), color="grey", ls="--", lw=1, label="stage 2 starts")
    if positive and keys:
        ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss (as logged)")
    ax.set_title(title)
    if keys:
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return path
