"""Loss curves of the head model's training."""

import _bootstrap

from talkhead.logs import log_to
from talkhead.qc.flame import plot_fit_losses
from talkhead.qc.pages import read_fit_log

with log_to(snakemake.log[0]):
    steps, terms = read_fit_log(snakemake.input.log_csv)
    plot_fit_losses(
        steps,
        terms,
        snakemake.output.losses,
        title="Head model training: loss per term (held-out figures in metrics.json)",
    )
