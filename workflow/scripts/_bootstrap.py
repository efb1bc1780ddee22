"""Shared by the workflow scripts: makes this checkout's src/talkhead the package they import
(also in a conda env that lacks it, or next to another checkout's editable install), reports
talkhead's errors once, and opens a job's capture sequence.

Snakemake puts this folder on sys.path for local scripts, so each script starts by importing
this module.

Errors: a :class:`talkhead.errors.TalkheadError` (bad input; its message names the file or
setting and what to fix) that ends a script is printed as ONE line, ``<rule>: <message>``, on
stderr (Snakemake's output), and the job exits with status 1; its traceback is only in the
job's log (``talkhead.logs.log_to`` writes it there). Any other exception is a bug: Python's
own traceback, as usual.
"""

import sys
from pathlib import Path

_SRC = str(Path(__file__).resolve().parents[2] / "src")
# First on the path, even when Snakemake appended it after an editable install of another
# checkout: the rules must run the package of the workflow they belong to.
while _SRC in sys.path:
    sys.path.remove(_SRC)
sys.path.insert(0, _SRC)

from talkhead.errors import TalkheadError  # noqa: E402
from talkhead.logs import one_line  # noqa: E402


def _rule_name():
    smk = getattr(sys.modules.get("__main__"), "snakemake", None)
    return getattr(smk, "rule", None) or "talkhead"


def _report(kind, exc, tb):
    """sys.excepthook: a talkhead error as one line on stderr, anything else as usual."""
    if isinstance(exc, TalkheadError):
        sys.stderr.write(f"{_rule_name()}: {one_line(exc)}\n")
        sys.stderr.flush()
        return
    sys.__excepthook__(kind, exc, tb)


sys.excepthook = _report


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
