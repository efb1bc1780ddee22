"""Facial segmentation (LaPa labels) from MediaPipe's face mesh, for a sequence without one."""

from pathlib import Path

from _bootstrap import job_sequence

from talkhead.config import from_mapping
from talkhead.logs import log_to
from talkhead.preprocess.config import PreprocessConfig
from talkhead.preprocess.stage import run_segmentation_stage, save_product_metrics

with log_to(snakemake.log[0]) as log:
    out = Path(snakemake.output[0])
    cfg = from_mapping(PreprocessConfig, snakemake.params.preprocess, "preprocess")
    seq = job_sequence(snakemake)  # the mattes product, if any
    metrics = run_segmentation_stage(seq, out, cfg.segmentation, cfg.landmarks)
    save_product_metrics(out, metrics)
    log.info("segmentation: %s", metrics)
