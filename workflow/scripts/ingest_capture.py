"""Ingest one sequence of a capture in any layout into talkhead's tree (videos decoded at the
target fps, colour calibration applied, undistorted, downscaled)."""

from pathlib import Path

import _bootstrap  # noqa: F401

from talkhead.capture.config import IngestConfig
from talkhead.config import from_mapping
from talkhead.logs import log_to
from talkhead.preprocess.ingest import ingest_sequence

with log_to(snakemake.log[0]) as log:
    source = snakemake.params.source
    ingest = from_mapping(IngestConfig, snakemake.params.ingest, "capture.ingest")
    out_root = Path(snakemake.output[0]).parents[2]
    fps = snakemake.params.fps
    result = ingest_sequence(
        source["root"],
        snakemake.wildcards.subject,
        snakemake.wildcards.sequence,
        out_root,
        layout_name=source["layout"],
        downscale=ingest.downscale,
        fps=ingest.fps or None,
        colour_calibration=ingest.colour_calibration,
        default_fps=fps if isinstance(fps, float) else float(fps),
        serials=source["cameras"] or None,
        workers=snakemake.threads,
        progress=True,
    )
    log.info("ingested: %s", result)
