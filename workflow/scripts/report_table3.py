"""Table 3 of the report: the evaluation.json of each injection variant's model."""

import _bootstrap

from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    from talkhead.qc.tables import read_evaluation, table3_html, write_page

    variants = list(snakemake.params.variants)
    evaluations = {v: read_evaluation(p) for v, p in zip(variants, snakemake.input, strict=True)}
    note = (
        ""
        if variants
        else "No injection variant was trained in this run (models.injection_variants is "
        "empty, the default at demo scale); config/experiment-cpu.yaml and "
        "config/experiment.yaml train all five."
    )
    write_page(table3_html(evaluations, note=note), snakemake.output.table)
