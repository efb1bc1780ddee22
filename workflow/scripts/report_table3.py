"""Table 3 of the report: the evaluation.json of each injection variant's model, and FaceTalk's
own in the row of its injection when that variant is not trained apart."""

import _bootstrap

from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    from talkhead.qc.tables import read_evaluation, table3_html, write_page

    variants = list(snakemake.params.variants)
    evaluations = {
        v: read_evaluation(p) for v, p in zip(variants, snakemake.input.variants, strict=True)
    }
    own = snakemake.params.own
    if own and snakemake.input.facetalk:
        evaluations[own] = read_evaluation(snakemake.input.facetalk[0])
    note = ""
    if not variants:
        note = (
            "No injection variant was trained apart in this run (models.injection_variants is "
            "empty, the default at demo scale)"
            + (f"; the {own} row is FaceTalk itself (models.facetalk.variant)" if own else "")
            + ". config/experiment-cpu.yaml and config/experiment.yaml train all five."
        )
    write_page(table3_html(evaluations, note=note), snakemake.output.table)
