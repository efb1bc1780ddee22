"""Shared by the workflow scripts: makes this checkout's src/talkhead the package they import
(also in a conda env that lacks it, or next to another checkout's editable install) and opens a
job's capture sequence.

Snakemake puts this folder on sys.path for local scripts, so each script starts by importing
this module.
"""

import sys
from pathlib import Path

_SRC = str(Path(__file__).resolve().parents[2] / "src")
# First on the path, even when Snakemake appended it after an editable install of another
# checkout: the rules must run the package of the workflow they belong to.
while _SRC in sys.path:
    sys.path.remove(_SRC)
sys.path.insert(0, _SRC)


def job_sequence(smk, validate=False, workers=None):
    """The capture sequence of a per-sequence job: its inputs ``sequence`` (the sequence
    folder) and ``calibration`` (camera_params.json), as ``CAPTURE_INPUTS`` declares them, and
    its param ``fps``."""
    from talkhead.capture.sequence import open_sequence_dir

    return open_sequence_dir(
        smk.input.sequence,
        smk.input.calibration,
        fps=smk.params.fps,
        validate=validate,
        workers=workers,
    )
