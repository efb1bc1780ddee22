"""The FLAME fit's QC page: loss curves and the fitted mesh over two camera views."""

from pathlib import Path

from _bootstrap import job_sequence

from talkhead.logs import log_to
from talkhead.qc.pages import flame_fit_qc

with log_to(snakemake.log[0]):
    flame_fit_qc(
        job_sequence(snakemake),
        Path(snakemake.input.params).parent,
        snakemake.input.points,
        {k: snakemake.input[f"flame_{k}"] for k in ("model", "landmarks", "masks")},
        snakemake.output.losses,
        snakemake.output.overlay,
        n_frames=snakemake.params.qc["n_frames"],
    )
