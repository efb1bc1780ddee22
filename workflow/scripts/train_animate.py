"""Animate a held-out sequence's cleaned audio with a trained model (the first sequence of the
test split, else validation, else training: the log says which); the video shows the dataset's
fitted mesh beside the prediction (models of NPHM codes: the NPHM fit's codes and theirs, both
decoded by the NPHM with the subject's identity)."""

from pathlib import Path

import _bootstrap

from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    import torch

    from talkhead.nphm.decoder import identities_by_subject
    from talkhead.training.held_out import animate_held_out

    torch.set_num_threads(snakemake.threads)
    nphm = dict(snakemake.input.items())
    animate_held_out(
        snakemake.input.model,
        Path(snakemake.input.manifest).parent,
        snakemake.input.flame_model,
        snakemake.output.folder,
        snakemake.output.video,
        samples=int(snakemake.params.samples),
        nphm_model=nphm.get("nphm_model"),
        nphm_identities=identities_by_subject(nphm.get("nphm_identities", [])),
        mesh_every=int(snakemake.params.nphm_every),
        mesh_resolution=int(snakemake.params.nphm_resolution),
        mesh_margin=float(snakemake.params.nphm_margin),
    )
