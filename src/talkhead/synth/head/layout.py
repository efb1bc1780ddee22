"""Ray space: where the skin grid's features lie in (elevation, azimuth).

Head rays leave :data:`~.constants.RAY_ORIGIN`; a direction is given by its elevation
``theta`` (radians, +pi/2 straight up) and azimuth ``phi`` (0 towards +z, +pi/2 towards +x).
The curves here (palpebral fissure, vermilion, eyebrows) are functions of the grid
parameter, shared by the grid (:mod:`.grid`), the skin (:mod:`.skin`), the blendshapes and
the annotations.
"""

from __future__ import annotations

import numpy as np

from .constants import (
    EYE_CENTER,
    EYE_RADIUS,
    FISSURE_HALF_ANGLE,
    LID_OFFSET,
    MOUTH_CORNER_AZIMUTH,
    RAY_ORIGIN,
)


def vermilion(phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Heights (grid elevation above / below the slit) of the upper and lower vermilion."""
    deg = np.deg2rad
    q = np.clip(1.0 - (phi / (MOUTH_CORNER_AZIMUTH * 1.04)) ** 2, 0.0, 1.0)
    bow = (
        1.0
        + 0.10 * np.exp(-(((np.abs(phi) - deg(4.5)) / deg(2.5)) ** 2))
        - 0.08 * np.exp(-((phi / deg(1.8)) ** 2))
    )
    return deg(5.4) * bow * q**0.6, deg(6.6) * q**0.6


def brow_arch(phi: np.ndarray) -> np.ndarray:
    """Elevation (grid parameter) of the middle of the eyebrow at azimuth phi (|phi| in
    [10, 52] degrees)."""
    deg = np.deg2rad
    theta_e = eye_angles()[0]
    u = np.clip((np.abs(phi) - deg(10.0)) / deg(42.0), 0.0, 1.0)
    return theta_e + deg(11.0) + deg(2.5) * np.sin(np.pi * u**0.8) - deg(2.0) * u**2


def brow_half_width(phi: np.ndarray) -> np.ndarray:
    """Half-height (grid elevation) of the eyebrow at azimuth phi, thinning outwards."""
    deg = np.deg2rad
    u = np.clip((np.abs(phi) - deg(10.0)) / deg(42.0), 0.0, 1.0)
    return deg(2.3) * (1.0 - 0.5 * u)


def ray_dirs(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Unit directions at elevation theta and azimuth phi (0 = +z, +pi/2 = +x): (..., 3)."""
    theta, phi = np.broadcast_arrays(theta, phi)
    ct = np.cos(theta)
    return np.stack([ct * np.sin(phi), np.sin(theta), ct * np.cos(phi)], axis=-1)


def eye_angles() -> tuple[float, float, float]:
    """Elevation of the left palpebral fissure and azimuths of its inner and outer canthi."""
    r = EYE_RADIUS + LID_OFFSET
    front = EYE_CENTER + np.array([0.0, 0.0, r]) - RAY_ORIGIN
    theta = float(np.arctan2(front[1], np.hypot(front[0], front[2])))
    out = []
    for sgn in (-1.0, 1.0):
        q = (
            EYE_CENTER
            + r * np.array([sgn * np.sin(FISSURE_HALF_ANGLE), 0.0, np.cos(FISSURE_HALF_ANGLE)])
            - RAY_ORIGIN
        )
        out.append(float(np.arctan2(q[0], q[2])))
    return theta, out[0], out[1]
