"""Logging set-up shared by the workflow scripts and the command line."""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

from .errors import TalkheadError
from .io import PathLike

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def one_line(message: object) -> str:
    """An error message on one line: its lines stripped and joined by spaces."""
    return " ".join(line.strip() for line in str(message).splitlines() if line.strip())


@contextlib.contextmanager
def log_to(path: PathLike | None, level: int = logging.INFO) -> Iterator[logging.Logger]:
    """Send ``talkhead`` log records to ``path`` (and stderr) for the duration of the block.

    An exception escaping the block is written to the log with its traceback, then re-raised,
    so a failed Snakemake job's log says why it failed. A :class:`TalkheadError` (bad input,
    its message says what to fix) goes to the log file only: the caller shows its message once
    (the workflow scripts print one line, see ``workflow/scripts/_bootstrap.py``).
    """
    logger = logging.getLogger("talkhead")
    logger.setLevel(level)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="w"))
    for h in handlers:
        h.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(h)
    try:
        yield logger
    except TalkheadError as exc:
        if path is not None:
            handlers[0].setLevel(logging.CRITICAL + 1)  # not on stderr
        logger.error("%s\n%s", one_line(exc), traceback.format_exc())
        raise
    except BaseException as exc:
        logger.error("%s: %s\n%s", type(exc).__name__, exc, traceback.format_exc())
        raise
    finally:
        for h in handlers:
            logger.removeHandler(h)
            h.close()
