"""Colour calibration of the published NeRSemble kits, applied to 8-bit RGB images.

- NeRSemble v2 (``calibration/color_calibration.json``): a (3, terms) matrix per camera applied
  to Cheung et al. (2004)'s polynomial expansion of *linear* RGB: decode sRGB, expand
  (colour-science's ``matrix_augmented_Cheung2004``), multiply, encode sRGB (as the kit's
  ``correct_color`` does).
- NeRSemble v1 (``annotations/<SEQ>/color_correction/<serial>.npy``): an affine (3, 4) (or
  linear (3, 3)) map of RGB in [0, 1]: ``rgb @ A[:, :3].T + A[:, 3]``.

Matrices come from :mod:`talkhead.capture.layouts` as
:class:`~talkhead.capture.layouts.ColourMatrix`.
"""

from __future__ import annotations

import functools

import numpy as np

from ..capture.layouts import ColourMatrix


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] -> linear RGB (IEC 61966-2-1), float32, same shape."""
    rgb = np.asarray(rgb, dtype=np.float32)
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(rgb: np.ndarray) -> np.ndarray:
    """Linear RGB -> sRGB-encoded values (IEC 61966-2-1), float32, same shape (not clipped)."""
    rgb = np.asarray(rgb, dtype=np.float32)
    pos = np.maximum(rgb, 0.0)
    return np.where(rgb <= 0.0031308, rgb * 12.92, 1.055 * pos ** (1 / 2.4) - 0.055).astype(
        np.float32
    )


#: Linear values are held as 16-bit integers (1/65535 steps) between the sRGB decoding and
#: encoding tables: at most 0.05 of an 8-bit level off at the steepest part of the curve, and
#: OpenCV's table look-up and per-pixel matrix (with saturation) do the work.
_LINEAR_MAX = 65535


@functools.cache
def _tables() -> tuple[np.ndarray, np.ndarray]:
    """(1, 256, 3) uint16 sRGB -> linear (x 65535) and (65536,) uint8 linear -> sRGB tables."""
    decode = srgb_to_linear(np.arange(256, dtype=np.float32) / np.float32(255.0))
    decode16 = np.rint(decode * _LINEAR_MAX).astype(np.uint16)
    encode = linear_to_srgb(np.arange(_LINEAR_MAX + 1, dtype=np.float32) / _LINEAR_MAX)
    encode8 = np.clip(np.rint(encode * 255.0), 0, 255).astype(np.uint8)
    return np.repeat(decode16[:, None], 3, axis=1).reshape(1, 256, 3), encode8


def apply_cheung2004(image: np.ndarray, ccm: np.ndarray) -> np.ndarray:
    """Apply a Cheung-2004 colour matrix in linear RGB to an 8-bit sRGB image.

    Args:
        image: (H, W, 3) uint8 RGB.
        ccm: (3, terms) matrix, terms one of colour-science's Cheung-2004 expansions.

    Returns:
        (H, W, 3) uint8 RGB, clipped to [0, 255].
    """
    import cv2

    decode, encode = _tables()
    ccm = np.asarray(ccm, dtype=np.float32)
    img = np.ascontiguousarray(image, dtype=np.uint8)
    lin = cv2.LUT(img, decode)  # (H, W, 3) uint16, linear x 65535
    if ccm.shape[1] == 3:
        out = cv2.transform(lin, ccm)  # per-pixel ccm @ rgb, saturated to [0, 65535]
    else:
        from colour.characterisation import matrix_augmented_Cheung2004

        rgb = lin.reshape(-1, 3).astype(np.float32) / np.float32(_LINEAR_MAX)
        out = matrix_augmented_Cheung2004(rgb, ccm.shape[1]) @ ccm.T
        out = np.clip(out * _LINEAR_MAX + 0.5, 0, _LINEAR_MAX).astype(np.uint16)
    return encode[out].reshape(image.shape)


def apply_affine(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (3, 3) or (3, 4) affine colour map of RGB in [0, 1] to an 8-bit RGB image.

    Returns:
        (H, W, 3) uint8 RGB, rounded and clipped to [0, 255].
    """
    import cv2

    m = np.zeros((3, 4), dtype=np.float32)
    given = np.asarray(matrix, dtype=np.float32)
    m[:, : given.shape[1]] = given
    m[:, 3] *= 255.0  # the offset in 8-bit levels
    return cv2.transform(np.ascontiguousarray(image, dtype=np.uint8), m)


def apply_colour(image: np.ndarray, colour: ColourMatrix) -> np.ndarray:
    """Apply one camera's colour calibration (v2 ``cheung2004`` or v1 ``affine``).

    Raises:
        ValueError: an unknown kind (a programming error).
    """
    if colour.kind == "cheung2004":
        return apply_cheung2004(image, colour.matrix)
    if colour.kind == "affine":
        return apply_affine(image, colour.matrix)
    raise ValueError(f"unknown colour calibration kind {colour.kind!r}")
