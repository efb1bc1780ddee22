"""Make src/talkhead importable when a rule runs in a conda env that lacks the package.

Snakemake puts this folder on sys.path for local scripts, so each script starts with
``import _bootstrap``.
"""

import sys
from pathlib import Path

_SRC = str(Path(__file__).resolve().parents[2] / "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)
