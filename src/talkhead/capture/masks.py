"""The facial-mask policy, defined once: which pixels of a view count as face.

- :func:`face_mask`: facer (LaPa) labels in the configured set (1-9 by default: skin, brows,
  eyes, nose, lips, inner mouth; FaceTalk supplement section D);
- :func:`alpha_mask`: the alpha matte above a threshold (0.5 of full scale by default).

Depth (matching masks and coverage), back-projection and the QC pages all take their masks
from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    pass


FACE_LABELS: tuple[int, ...] = tuple(range(1, 10))
"""facer / LaPa labels of the facial mask: skin, brows, eyes, nose, lips, inner mouth."""


def face_mask(labels: np.ndarray, face_labels: Sequence[int] = FACE_LABELS) -> np.ndarray:
    """Facial area of a facer (LaPa) label map: label in ``face_labels`` (1-9 by default).

    Args:
        labels: (..., H, W) integer labels.
    """
    return np.isin(np.asarray(labels), np.asarray(list(face_labels)))


def alpha_mask(alpha: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Foreground of an alpha matte: alpha > ``threshold`` x full scale.

    Args:
        alpha: (..., H, W) float in [0, 1], uint8 (full scale 255) or uint16 (65535), or bool.
    """
    a = np.asarray(alpha)
    if a.dtype == bool:
        return a
    if a.dtype == np.uint8:
        return a > threshold * 255.0
    if a.dtype == np.uint16:
        return a > threshold * 65535.0
    with np.errstate(invalid="ignore"):
        return a > threshold
