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


#: Products the preprocess rules make, as a job's input names (CAPTURE_INPUTS in common.smk).
PRODUCTS = ("mattes", "landmarks", "segmentation", "audio")


def job_sequence(smk, validate=False, workers=None, overlays=True):
    """The capture sequence of a per-sequence job, from its inputs as ``CAPTURE_INPUTS``
    declares them: ``sequence`` (the sequence folder), ``calibration`` (camera_params.json;
    an ingested sequence carries its own inside) and the preprocess products present among
    the inputs (overlay folders; ``capture.landmarks: mediapipe`` puts MediaPipe's landmarks
    before the capture's own), and its param ``fps``."""
    from talkhead.capture.sequence import open_sequence_dir

    inputs = dict(smk.input.items())
    calibration = inputs.get("calibration") or str(Path(inputs["sequence"]) / "camera_params.json")
    folders = [inputs[name] for name in PRODUCTS if name in inputs] if overlays else []
    replace = ["landmarks"] if folders and smk.config["capture"]["landmarks"] == "mediapipe" else []
    return open_sequence_dir(
        inputs["sequence"],
        calibration,
        fps=smk.params.fps,
        validate=validate,
        workers=workers,
        overlays=folders,
        replace=replace,
    )
