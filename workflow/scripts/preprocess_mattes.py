"""Alpha mattes of a sequence that has none (background plates, else selfie segmentation)."""

from pathlib import Path

from _bootstrap import job_sequence

from talkhead.config import from_mapping
from talkhead.logs import log_to
from talkhead.preprocess.config import PreprocessConfig
from talkhead.preprocess.stage import run_mattes_stage, save_product_metrics

with log_to(snakemake.log[0]) as log:
    out = Path(snakemake.output[0])
    cfg = from_mapping(PreprocessConfig, snakemake.params.preprocess, "preprocess")
    seq = job_sequence(snakemake, overlays=False)
    metrics = run_mattes_stage(seq, out, cfg.mattes)
    save_product_metrics(out, metrics)
    log.info("mattes: %s", metrics)
