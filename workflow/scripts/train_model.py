"""Train one model on the packaged dataset (on the GPU(s) when the job was given them); an
interrupted job resumes from its last checkpoint when rerun."""

from pathlib import Path

import _bootstrap

from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    import csv

    import torch

    from talkhead.training.curves import plot_losses
    from talkhead.training.train import train_model

    torch.set_num_threads(snakemake.threads)
    out = Path(snakemake.output.model).parent
    train_model(
        Path(snakemake.input.manifest).parent,
        snakemake.wildcards.model,
        out,
        snakemake.params.models,
        audio_features=snakemake.params.audio_features,
        flame_model=snakemake.input.flame_model,
        flame_masks=snakemake.input.flame_masks,
        gpus=int(snakemake.resources.get("gpu", 0)),
        progress_bar=False,
    )
    with open(snakemake.output.losses, newline="") as fh:
        rows = [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(fh)]
    plot_losses(rows, snakemake.output.curve, f"{snakemake.wildcards.model}: training losses")
