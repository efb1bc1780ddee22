"""Package every sequence's FLAME fit and audio (and NPHM fit) into the dataset."""

from pathlib import Path

import _bootstrap

from talkhead.dataset.layout import StageOutputs
from talkhead.dataset.stage import run_dataset_stage
from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    nphm = getattr(snakemake.input, "nphm", None)
    outputs = [
        StageOutputs(
            subject,
            sequence,
            Path(snakemake.input.flame[i]).parent,
            Path(snakemake.input.audio[i]).parent,
            Path(nphm[i]).parent if nphm else None,
        )
        for i, (subject, sequence) in enumerate(snakemake.params.pairs)
    ]
    run_dataset_stage(outputs, Path(snakemake.output.manifest).parent, snakemake.params.dataset)
