"""Floors under the stages' own figures: a stage whose output is empty or degenerate stops
(or warns) instead of handing garbage to the next stage.

Each stage writes a flat ``metrics.json`` of its own figures (no ground truth involved);
:func:`check_floors` compares the figures it knows with the ``qc`` config section
(:class:`QCConfig`) and returns one :class:`Breach` per figure below its floor, with what
usually causes it; :func:`enforce_floors` raises :class:`~talkhead.errors.StageOutputError` or
logs the breaches, as ``qc.on_breach`` says. Pure functions over plain numbers: a stage runner
checks its figures before it publishes its outputs, so a failed floor leaves no output behind.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

from .config import option
from .errors import StageOutputError

__all__ = ["Breach", "QCConfig", "check_floors", "enforce_floors"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QCConfig:
    """Floors under the stages' own figures (metrics.json), and what a breach does."""

    on_breach: str = option(
        "fail",
        "What a figure below its floor does: fail (the job stops, no output) or warn (logged).",
        choices=("fail", "warn"),
    )
    min_depth_valid_fraction: float = option(
        0.1,
        "Depth: least fraction of face-mask pixels with a valid depth (default capture: 0.92).",
        minimum=0.0,
        maximum=1.0,
    )
    min_points_per_frame: int = option(
        200,
        "Back-projection: least number of points in every frame (after voxel downsampling).",
        minimum=0,
    )
    min_landmarks_valid_fraction: float = option(
        0.25,
        "Back-projection: least fraction of valid fused 3D landmarks (default capture: 0.996).",
        minimum=0.0,
        maximum=1.0,
    )
    min_fit_matched_fraction: float = option(
        0.2,
        "FLAME fit: least fraction of face-region vertices matched to a back-projected point "
        "(default capture: 0.94).",
        minimum=0.0,
        maximum=1.0,
    )


@dataclass(frozen=True)
class _Floor:
    """How one figure of a metrics.json is checked: its name in words, the qc key of its
    floor (None: a fixed floor), whether it prints as a percentage, and its usual causes."""

    words: str
    key: str | None
    percent: bool
    cause: str
    fixed: float = 0.0


#: The figures with a floor, by their metrics.json key.
FLOORS: dict[str, _Floor] = {
    "face_pixels": _Floor(
        "face-mask pixels",
        None,
        False,
        "face mask empty: no pixel carries a face_mask.labels label (with an alpha matte above "
        "face_mask.alpha_threshold); wrong labels, or segmentation or mattes missing",
        fixed=1.0,
    ),
    "face_valid_fraction": _Floor(
        "face-mask pixels with a valid depth",
        "min_depth_valid_fraction",
        True,
        "depth range wrong (see the log's depth range; depth.range_radius), calibration not in "
        "metres (e.g. centimetres), or views that barely overlap",
    ),
    "points_per_frame_min": _Floor(
        "points in the poorest frame",
        "min_points_per_frame",
        False,
        "no valid depth inside the face mask in that frame, or backproject.min_depth/max_depth "
        "excluding the face (depth or calibration not in metres, e.g. centimetres)",
    ),
    "landmarks_valid_fraction": _Floor(
        "valid fused 3D landmarks",
        "min_landmarks_valid_fraction",
        True,
        "views that disagree (calibration wrong or not in metres), no depth under the 2D "
        "landmarks, or landmarks below backproject.landmark_min_conf",
    ),
    "matched_fraction": _Floor(
        "face-region vertices matched to a back-projected point",
        "min_fit_matched_fraction",
        True,
        "a fit that drifted off the points (the alignment is wrong: see alignment.json's "
        "residual), points covering only part of the face, or "
        "fit_flame.correspondences.max_distance too tight for the depth noise",
    ),
}


@dataclass(frozen=True)
class Breach:
    """A figure below its floor.

    Attributes:
        figure: its metrics.json key (``face_valid_fraction``).
        value: the figure (NaN when the stage could not compute it).
        floor: the floor it is below.
        message: one line naming the figure, its value, the floor and the usual causes.
    """

    figure: str
    value: float
    floor: float
    message: str


def _show(value: float, percent: bool) -> str:
    if math.isnan(value):
        return "not computed"
    return f"{100 * value:.2f} %" if percent else f"{value:g}"


def check_floors(metrics: Mapping[str, float | int | str | None], qc: QCConfig) -> list[Breach]:
    """The figures of ``metrics`` below their floors in ``qc`` (empty list: all clear).

    Only the figures listed in :data:`FLOORS` are checked; a figure that is None or NaN counts
    as 0. When the face mask is empty (``face_pixels`` 0), that breach is the only one reported
    (the coverage inside an empty mask says nothing more).

    Args:
        metrics: a stage's flat figures (``metrics.json``).
        qc: the ``qc`` config section.

    Returns:
        One :class:`Breach` per figure below its floor, in :data:`FLOORS` order.
    """
    breaches = []
    for figure, spec in FLOORS.items():
        if figure not in metrics:
            continue
        raw = metrics[figure]
        value = float("nan") if raw is None else float(raw)
        floor = spec.fixed if spec.key is None else float(getattr(qc, spec.key))
        if not math.isnan(value) and value >= floor:
            continue
        if spec.key is None:
            message = f"{spec.words} ({figure}) {_show(value, spec.percent)}: {spec.cause}"
        else:
            message = (
                f"{spec.words} ({figure}) {_show(value, spec.percent)} is below the floor "
                f"qc.{spec.key} {_show(floor, spec.percent)}; usually: {spec.cause}"
            )
        breaches.append(Breach(figure, value, floor, message))
        if figure == "face_pixels":
            break
    return breaches


def enforce_floors(breaches: list[Breach], qc: QCConfig, source: str) -> None:
    """Stop or warn on ``breaches``, as ``qc.on_breach`` says.

    Args:
        breaches: from :func:`check_floors`.
        qc: the ``qc`` config section.
        source: what the figures are of (``"depth of syn000/SEN-00"``), first in the message.

    Raises:
        StageOutputError: one line, ``source`` then every breach, when ``qc.on_breach`` is
            ``fail`` and there is a breach.
    """
    if not breaches:
        return
    text = f"{source}: " + "; ".join(b.message for b in breaches)
    if qc.on_breach == "fail":
        raise StageOutputError(text + " (qc.on_breach: warn lets the run go on)")
    log.warning("%s", text)
