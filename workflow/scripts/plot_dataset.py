"""The dataset's summary table and histogram of sequence lengths."""

from pathlib import Path

import _bootstrap

from talkhead.logs import log_to
from talkhead.qc.dataset import write_dataset_report

with log_to(snakemake.log[0]):
    root = Path(snakemake.input.manifest).parent
    write_dataset_report(root, snakemake.output.summary, snakemake.output.lengths)
