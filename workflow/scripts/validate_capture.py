"""Validate one capture sequence (every problem listed in the log) and write its summary."""

import _bootstrap

from talkhead.capture.readers import summarize
from talkhead.io import save_json
from talkhead.logs import log_to

with log_to(snakemake.log[0]) as log:
    seq = _bootstrap.job_sequence(snakemake, validate=True, workers=snakemake.threads)
    summary = summarize(seq)
    log.info("capture ok: %s", summary)
    save_json(snakemake.output[0], summary)
