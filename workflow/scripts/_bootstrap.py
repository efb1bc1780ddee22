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


def job_sequence(smk, validate=False):
    """The capture sequence of a per-sequence job (params root and fps, wildcards)."""
    from talkhead.capture.sequence import open_sequence

    return open_sequence(
        smk.params.root,
        smk.wildcards.subject,
        smk.wildcards.sequence,
        fps=smk.params.fps,
        validate=validate,
    )
