"""Observed points brought into the head model's rest frame with the FLAME fit's head pose.

A point that moves with the head (above the neck) is posed by FLAME's root and neck joints:
with rest joints ``J0`` (root) and ``J1`` (neck) of the fitted shape, rotations ``R0``,
``R1`` (axis-angles ``rotation``, ``neck``), scale ``s`` and translation ``t``,

    x_world = s * (R0 (R1 (x_rest - J1) + J1 - J0) + J0) + t,

(the kinematic chain of FLAME's linear blend skinning), a similarity ``x_world = s R x_rest +
b`` with ``R = R0 R1``. Its inverse takes the observed points (and normals, by ``R^T``) to the
rest frame where the head model was trained (zero pose; jaw, eyes and expression left to the
expression code), the FaceTalk recipe's "FLAME similarity" made exact for the neck.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import FittingError
from ..flame.layer import FlameLayer
from ..geometry.rotations import axis_angle_to_matrix

__all__ = ["HeadPoses", "check_in_frame", "head_poses", "to_rest_frame"]


@dataclass(frozen=True)
class HeadPoses:
    """Per-frame similarities of the head: ``x_world = scale[t] * R[t] @ x_rest + b[t]``.

    Attributes:
        scale: (T,); rotation: (T, 3, 3); offset: (T, 3) metres; frames: (T,) frame ids.
    """

    scale: np.ndarray
    rotation: np.ndarray
    offset: np.ndarray
    frames: np.ndarray

    def to_rest(self, t: int, points: np.ndarray) -> np.ndarray:
        """World points (N, 3) of row ``t`` -> rest frame (metres)."""
        return (np.asarray(points) - self.offset[t]) @ self.rotation[t] / self.scale[t]

    def to_world(self, t: int, points: np.ndarray) -> np.ndarray:
        """Rest-frame points (N, 3) of row ``t`` -> world (metres)."""
        return self.scale[t] * np.asarray(points) @ self.rotation[t].T + self.offset[t]


def head_poses(layer: FlameLayer, params: Mapping[str, np.ndarray]) -> HeadPoses:
    """The head's per-frame similarity from fitted FLAME parameters (the benchmark/VHAP keys:
    ``shape``, ``rotation``, ``neck``, ``translation``, ``scale``, ``frames``).

    Raises:
        FittingError: a key is missing.
    """
    missing = [k for k in ("shape", "rotation", "neck", "translation", "scale") if k not in params]
    if missing:
        raise FittingError(f"the FLAME parameters lack {missing}")
    with torch.no_grad():
        joints = layer(shape=torch.as_tensor(params["shape"])).joints[0].double().cpu().numpy()
    j0, j1 = joints[0], joints[1]
    rot = np.asarray(params["rotation"], dtype=np.float64).reshape(-1, 3)
    neck = np.asarray(params["neck"], dtype=np.float64).reshape(-1, 3)
    T = len(rot)
    r0 = axis_angle_to_matrix(rot)
    r1 = axis_angle_to_matrix(neck)
    R = r0 @ r1
    s = np.broadcast_to(np.asarray(params["scale"], dtype=np.float64).reshape(-1), (T,)).copy()
    t = np.asarray(params["translation"], dtype=np.float64).reshape(-1, 3)
    inner = np.einsum("tij,j->ti", r0, j1 - j0) + j0 - np.einsum("tij,j->ti", R, j1)
    offset = s[:, None] * inner + t
    frames = np.asarray(params.get("frames", np.arange(T)), dtype=np.int64)
    return HeadPoses(scale=s, rotation=R, offset=offset, frames=frames)


def to_rest_frame(
    poses: HeadPoses,
    rows: np.ndarray,
    points: Sequence[np.ndarray],
    normals: Sequence[np.ndarray],
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-frame world points and normals -> rest frame (metres), row ``rows[i]`` of the poses
    for frame ``i``."""
    pts, nrm = [], []
    for i, r in enumerate(rows):
        pts.append(poses.to_rest(int(r), points[i]))
        nrm.append(np.asarray(normals[i]) @ poses.rotation[int(r)])
    return pts, nrm


def check_in_frame(distances_m: np.ndarray, source: str, max_median_m: float = 0.01) -> None:
    """Stop a fit whose points do not lie on the head model: ``distances_m`` are the observed
    points' unsigned distances to the model's template in the rest frame (metres).

    Raises:
        FittingError: their median exceeds ``max_median_m``, naming the figure and the likely
            cause (points in other units or another frame than the FLAME fit's).
    """
    med = float(np.median(distances_m)) if len(distances_m) else float("inf")
    if med > max_median_m:
        raise FittingError(
            f"{source}: the points lie a median {med * 1000:.1f} mm from the head model's "
            f"template after the FLAME fit's head pose is undone (at most "
            f"{max_median_m * 1000:.0f} mm expected): the points and the FLAME fit are not in "
            "the same frame or units"
        )
