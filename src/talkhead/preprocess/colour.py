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


def apply_cheung2004(image: np.ndarray, ccm: np.ndarray) -> np.ndarray:
    """Apply a Cheung-2004 colour matrix in linear RGB to an 8-bit sRGB image.

    Args:
        image: (H, W, 3) uint8 RGB.
        ccm: (3, terms) matrix, terms one of colour-science's Cheung-2004 expansions.

    Returns:
        (H, W, 3) uint8 RGB, clipped to [0, 255].
    """
    from colour.characterisation import matrix_augmented_Cheung2004

    ccm = np.asarray(ccm, dtype=np.float64)
    shape = image.shape
    lin = srgb_to_linear(np.asarray(image).reshape(-1, 3) / np.float32(255.0))
    if ccm.shape[1] == 3:
        out = lin @ ccm.T.astype(np.float32)
    else:
        out = matrix_augmented_Cheung2004(lin, ccm.shape[1]) @ ccm.T
    srgb = linear_to_srgb(np.asarray(out, dtype=np.float32))
    return np.clip(np.rint(srgb * 255.0), 0, 255).astype(np.uint8).reshape(shape)


def apply_affine(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (3, 3) or (3, 4) affine colour map to an 8-bit RGB image in [0, 1] units.

    Returns:
        (H, W, 3) uint8 RGB, clipped to [0, 255].
    """
    m = np.asarray(matrix, dtype=np.float32)
    shape = image.shape
    rgb = np.asarray(image).reshape(-1, 3).astype(np.float32) / np.float32(255.0)
    out = rgb @ m[:, :3].T
    if m.shape[1] == 4:
        out += m[:, 3]
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8).reshape(shape)


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
