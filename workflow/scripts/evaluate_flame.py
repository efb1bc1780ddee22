"""One sequence's FLAME fit against its ground truth: figures, per-frame errors, jitter."""

import _bootstrap

from talkhead.evaluation.stage import run_evaluate_flame
from talkhead.logs import log_to
from talkhead.qc.flame import plot_frame_errors, plot_jitter

with log_to(snakemake.log[0]):
    result = run_evaluate_flame(
        snakemake.input.params,
        {k: snakemake.input[f"flame_{k}"] for k in ("model", "landmarks", "masks")},
        snakemake.input.ground_truth,
        snakemake.output.evaluation,
        unsmoothed_path=snakemake.input.get("unsmoothed"),
    )
    title = f"{snakemake.wildcards.subject} / {snakemake.wildcards.sequence}"
    plot_frame_errors(
        result.frames,
        result.per_frame,
        snakemake.output.errors,
        title=f"{title}: FLAME fit error per frame against ground truth",
    )
    plot_jitter(
        result.frames,
        result.expressions,
        snakemake.output.jitter,
        title=f"{title}: expression jitter",
    )
