"""Shared by the workflow scripts: makes src/talkhead importable (for rules run in a conda env
that lacks the package) and opens a job's capture sequence.

Snakemake puts this folder on sys.path for local scripts, so each script starts by importing
this module.
"""

import sys
from pathlib import Path

_SRC = str(Path(__file__).resolve().parents[2] / "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)


def job_sequence(smk, validate=False, workers=None):
    """The capture sequence of a per-sequence job: its inputs ``sequence`` (the sequence
    folder) and ``calibration`` (camera_params.json), as ``capture_inputs`` declares them, and
    its param ``fps``."""
    from talkhead.capture.sequence import open_sequence_dir

    return open_sequence_dir(
        smk.input.sequence,
        smk.input.calibration,
        fps=smk.params.fps,
        validate=validate,
        workers=workers,
    )
