"""Evaluate one trained model (a Table-3 variant included) on the dataset's test split:
results/models/<model>/evaluation.json (models of NPHM codes: with the NPHM model and the
subjects' identities, for the lip surface error)."""

from pathlib import Path

import _bootstrap

from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    import torch

    from talkhead.evaluation.stage import run_evaluate_model

    torch.set_num_threads(snakemake.threads)
    nphm = dict(snakemake.input.items())
    run_evaluate_model(
        snakemake.input.model,
        Path(snakemake.input.manifest).parent,
        snakemake.output.evaluation,
        snakemake.wildcards.model,
        snakemake.params.evaluate,
        flame_model=snakemake.input.flame_model,
        flame_landmarks=snakemake.input.flame_landmarks,
        flame_masks=snakemake.input.flame_masks,
        variant=snakemake.params.variant,
        nphm_model=nphm.get("nphm_model"),
        nphm_identities=list(nphm.get("nphm_identities", [])),
        nphm_margin=snakemake.params.nphm_margin,
    )
