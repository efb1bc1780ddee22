"""Table 1 of the report: every trained model's evaluation.json, by the model's label."""

import _bootstrap

from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    from talkhead.qc.tables import read_evaluation, table1_html, write_page

    models = list(snakemake.params.models)
    evaluations = {m: read_evaluation(p) for m, p in zip(models, snakemake.input, strict=True)}
    write_page(table1_html(evaluations), snakemake.output.table)
