"""iBUG-68 2D landmarks from MediaPipe's face mesh, for a sequence without its own (or every
sequence, with capture.landmarks: mediapipe)."""

from pathlib import Path

from _bootstrap import job_sequence

from talkhead.config import from_mapping
from talkhead.logs import log_to
from talkhead.preprocess.config import PreprocessConfig
from talkhead.preprocess.stage import run_landmarks_stage, save_product_metrics

with log_to(snakemake.log[0]) as log:
    out = Path(snakemake.output[0])
    cfg = from_mapping(PreprocessConfig, snakemake.params.preprocess, "preprocess")
    seq = job_sequence(snakemake)  # the mattes product, if any, for the head crop
    force = "landmarks" in snakemake.params.replace
    metrics = run_landmarks_stage(seq, out, cfg.landmarks, force=force)
    save_product_metrics(out, metrics)
    log.info("landmarks: %s", metrics)
