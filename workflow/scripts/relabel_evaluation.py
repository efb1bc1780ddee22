"""FaceTalk's evaluation.json under the name of the Table-3 variant it is (the same checkpoint,
seed and data): results/models/facetalk_<variant>/evaluation.json."""

import _bootstrap

from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    from talkhead.evaluation.stage import relabel_model_evaluation

    relabel_model_evaluation(
        snakemake.input.evaluation,
        snakemake.output.evaluation,
        snakemake.wildcards.model,
        snakemake.params.label,
        snakemake.params.variant,
    )
