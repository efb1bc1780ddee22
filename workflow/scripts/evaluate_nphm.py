"""One sequence's NPHM fit against its ground truth: figures, per-frame table, plots."""

from pathlib import Path

import _bootstrap

from talkhead.evaluation.stage import run_evaluate_nphm
from talkhead.logs import log_to
from talkhead.qc.flame import plot_frame_errors, plot_jitter

with log_to(snakemake.log[0]):
    unsmoothed = snakemake.input.get("unsmoothed_codes")
    evaluate = dict(snakemake.params.get("evaluate") or {})
    result = run_evaluate_nphm(
        Path(snakemake.input.codes).parent,
        snakemake.input.flame_masks,
        snakemake.input.ground_truth,
        snakemake.output.evaluation,
        frames_path=snakemake.output.get("frames"),
        unsmoothed_dir=Path(unsmoothed).parent if unsmoothed else None,
        **{k: evaluate[k] for k in ("n_samples", "seed") if k in evaluate},
    )
    title = f"{snakemake.wildcards.subject} / {snakemake.wildcards.sequence}"
    if snakemake.output.get("errors"):
        chamfer = {"chamfer-L1": result.per_frame["chamfer_l1_mm"]}
        if "unsmoothed_chamfer_l1_mm" in result.per_frame:
            chamfer["chamfer-L1 without smoothing"] = result.per_frame["unsmoothed_chamfer_l1_mm"]
        plot_frame_errors(
            result.frames,
            chamfer,
            snakemake.output.errors,
            thresholds={"chamfer-L1": 1.5},  # the target on the synthetic studio
            title=f"{title}: NPHM chamfer-L1 per frame against ground truth (face)",
        )
    if snakemake.output.get("jitter"):
        plot_jitter(
            result.frames,
            result.expressions,
            snakemake.output.jitter,
            title=f"{title}: NPHM expression-code jitter",
        )
