"""Animate a held-out sequence's cleaned audio with a trained model (the first sequence of the
test split, else validation, else training: the log says which)."""

import shutil
from pathlib import Path

import _bootstrap

from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    import json
    import logging

    import torch

    from talkhead.dataset import layout
    from talkhead.dataset.manifest import read_manifest
    from talkhead.training.animate import animate_file

    torch.set_num_threads(snakemake.threads)
    root = Path(snakemake.input.manifest).parent
    splits = json.loads(Path(snakemake.input.splits).read_text())
    rows = read_manifest(snakemake.input.manifest)
    for split in ("test", "val", "train"):
        names = [r["name"] for r in rows if r["subject"] in splits.get(split, [])]
        if names:
            break
    logging.getLogger("talkhead").info("animating %s (%s split)", names[0], split)
    out = Path(snakemake.output.folder)
    animate_file(
        snakemake.input.model,
        layout.wav_path(layout.sequence_dir(root, names[0])),
        out,
        samples=int(snakemake.params.samples),
    )
    shutil.copyfile(out / "sample_00" / "animation.mp4", snakemake.output.video)
