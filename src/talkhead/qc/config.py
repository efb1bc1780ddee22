"""Settings of the QC figures and report pages (the ``report`` config section)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option

__all__ = ["ReportConfig"]


@dataclass(frozen=True)
class ReportConfig:
    """What the QC figures show."""

    n_frames: int = option(
        4, "Frames shown in contact sheets and QC figures (evenly spread).", minimum=1
    )
    n_cameras: int = option(
        4, "Cameras shown in the depth figures (evenly spaced over the rig).", minimum=1
    )
