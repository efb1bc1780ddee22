"""The facial-mask policy, defined once: which pixels of a view count as face, or as head.

On arrays:

- :func:`face_mask`: facer (LaPa) labels in the configured set (1-9 by default: skin, brows,
  eyes, nose, lips, inner mouth; FaceTalk supplement section D);
- :func:`alpha_mask`: the alpha matte above a threshold (:data:`ALPHA_THRESHOLD`, 0.5 of full
  scale, by default).

On what a capture ships (one frame, a set of views):

- :func:`head_masks`: the alpha matte above the threshold (the depth stage's matching masks);
- :func:`facial_masks`: the segmentation's face labels when the capture has a segmentation
  (AND the head mask with ``use_alpha``), else the head mask (depth evaluation and the QC
  pages use it without alpha; back-projection's rule is face labels AND alpha).

Depth (matching masks and coverage), back-projection and the QC pages all take their masks
from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .readers import read_alpha, read_segmentation

if TYPE_CHECKING:
    from .sequence import CaptureSequence


LAPA_LABELS: dict[str, int] = {
    "background": 0,
    "skin": 1,
    "right_brow": 2,
    "left_brow": 3,
    "right_eye": 4,
    "left_eye": 5,
    "nose": 6,
    "upper_lip": 7,
    "inner_mouth": 8,
    "lower_lip": 9,
    "hair": 10,
}
"""facer's LaPa segmentation labels (what a capture's segmentation maps hold; "right"/"left" are
the subject's). Ears and neck are background."""

FACE_LABELS: tuple[int, ...] = tuple(range(1, 10))
"""facer / LaPa labels of the facial mask: skin, brows, eyes, nose, lips, inner mouth."""

ALPHA_THRESHOLD = 0.5
"""Alpha above this fraction of full scale is head (foreground)."""


def face_mask(labels: np.ndarray, face_labels: Sequence[int] = FACE_LABELS) -> np.ndarray:
    """Facial area of a facer (LaPa) label map: label in ``face_labels`` (1-9 by default).

    Args:
        labels: (..., H, W) integer labels.
    """
    return np.isin(np.asarray(labels), np.asarray(list(face_labels)))


def alpha_mask(alpha: np.ndarray, threshold: float = ALPHA_THRESHOLD) -> np.ndarray:
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


def head_masks(
    seq: CaptureSequence,
    t: int,
    serials: Sequence[str] | None = None,
    alpha_threshold: float = ALPHA_THRESHOLD,
) -> np.ndarray:
    """Head masks of frame ``t``: alpha > ``alpha_threshold`` (:func:`alpha_mask`).

    A capture without alpha maps gives all-True masks (its mattes read as ones).

    Args:
        seq: the sequence; t: frame id; serials: cameras (default: all, in ``seq.serials``
            order).

    Returns:
        (C, H, W) bool.

    Raises:
        CaptureError: a matte is missing or unreadable (naming the file).
    """
    return alpha_mask(read_alpha(seq, t, serials), alpha_threshold)


def facial_masks(
    seq: CaptureSequence,
    t: int,
    serials: Sequence[str] | None = None,
    labels: Sequence[int] = FACE_LABELS,
    use_alpha: bool = False,
    alpha_threshold: float = ALPHA_THRESHOLD,
) -> np.ndarray:
    """Facial masks of frame ``t`` from what the capture ships.

    With a segmentation: its pixels with a label in ``labels`` (:func:`face_mask`), AND the head
    mask (:func:`head_masks`) when ``use_alpha``. Without a segmentation: the head mask.

    Args:
        seq: the sequence; t: frame id; serials: cameras (default: all, in ``seq.serials``
            order).
        labels: facer (LaPa) labels that count as face (default 1-9).
        use_alpha: also require alpha > ``alpha_threshold`` where there is a segmentation.
        alpha_threshold: fraction of the matte's full scale.

    Returns:
        (C, H, W) bool.

    Raises:
        CaptureError: a label map or matte is missing or unreadable (naming the file).
    """
    segmentation = read_segmentation(seq, t, serials)
    if segmentation is None:
        return head_masks(seq, t, serials, alpha_threshold)
    mask = face_mask(segmentation, labels)
    if use_alpha:
        mask &= head_masks(seq, t, serials, alpha_threshold)
    return mask
