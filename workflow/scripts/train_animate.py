"""Animate a held-out sequence's cleaned audio with a trained model (the first sequence of the
test split, else validation, else training: the log says which); the video shows the dataset's
fitted mesh beside the prediction."""

from pathlib import Path

import _bootstrap

from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    import torch

    from talkhead.training.held_out import animate_held_out

    torch.set_num_threads(snakemake.threads)
    animate_held_out(
        snakemake.input.model,
        Path(snakemake.input.manifest).parent,
        snakemake.input.flame_model,
        snakemake.output.folder,
        snakemake.output.video,
        samples=int(snakemake.params.samples),
    )
