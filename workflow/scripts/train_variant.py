"""Train FaceTalk with one timestep injection of its Table 3 (models.facetalk.variant replaced;
the rule gives models.variant_steps as the steps when not 0): results/models/facetalk_<variant>/.
"""

import copy
from pathlib import Path

import _bootstrap

from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    import csv

    import torch

    from talkhead.training.curves import plot_losses
    from talkhead.training.train import train_model

    torch.set_num_threads(snakemake.threads)
    variant = snakemake.wildcards.variant
    models = copy.deepcopy(dict(snakemake.params.models))
    models["facetalk"] = {**models["facetalk"], "variant": variant}
    train_model(
        Path(snakemake.input.manifest).parent,
        "facetalk",
        Path(snakemake.output.model).parent,
        models,
        audio_features=snakemake.params.audio_features,
        flame_model=snakemake.input.flame_model,
        flame_masks=snakemake.input.flame_masks,
        gpus=int(snakemake.resources.get("gpu", 0)),
        progress_bar=False,
    )
    with open(snakemake.output.losses, newline="") as fh:
        rows = [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(fh)]
    plot_losses(rows, snakemake.output.curve, f"facetalk_{variant}: training losses")
