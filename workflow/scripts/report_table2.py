"""Table 2 of the report: the FLAME and NPHM fits' jitter with and without the temporal loss,
per sequence (named subject/sequence from results/<stage>/<subject>/<sequence>/evaluation.json)."""

from pathlib import Path

import _bootstrap

from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    from talkhead.qc.tables import read_evaluation, table2_html, write_page

    def by_sequence(paths):
        return {"/".join(Path(p).parts[-3:-1]): read_evaluation(p) for p in paths}

    flame = by_sequence(snakemake.input.get("flame", []))
    nphm = by_sequence(snakemake.input.get("nphm", [])) if snakemake.params.has_nphm else None
    write_page(table2_html(flame, nphm), snakemake.output.table)
