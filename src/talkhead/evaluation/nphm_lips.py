"""The lip error of NPHM expression codes: the codes decoded to surfaces by marching cubes, and
the distance from the true lip vertices to them (:func:`talkhead.evaluation.animation.
lip_surface_error_mm`, the stated equivalent of the lip vertex error for outputs without a
fixed vertex order; FaceTalk supplement C measures lips in FLAME space only).

Frame. The NPHM stage fits its codes to the observed points brought into the head model's rest
frame by the FLAME fit's head pose (:mod:`talkhead.nphm.observations`: the root and neck
rotations, scale and translation undone), and decodes them there
(:class:`talkhead.nphm.decoder.NphmDecoder`). The true lip
vertices are posed the same way: the FLAME fit in world space, then each frame's head pose
undone (:func:`rest_frame_vertices`). Distances are in rest-frame metres (FLAME's units, the
fit's scale removed), reported in millimetres.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from ..flame.layer import FlameLayer
from ..nphm.decoder import NphmDecoder
from ..nphm.observations import head_poses
from .animation import lip_surface_error_mm

__all__ = ["decoded_lip_surface_error_mm", "rest_frame_vertices"]


def rest_frame_vertices(
    layer: FlameLayer, params: Mapping[str, np.ndarray], index: np.ndarray | None = None
) -> np.ndarray:
    """(T, L, 3) vertices of a FLAME fit in the head model's rest frame (metres): posed in
    world space with every fitted parameter, then each frame's head similarity undone
    (:class:`talkhead.nphm.observations.HeadPoses`), as the NPHM fit treats observed points.

    Args:
        layer: the FLAME-format head model the fit used.
        params: the fit (``shape``, ``expression``, ``jaw``, ``neck``, ``eyes``, ``rotation``,
            ``translation``, ``scale``).
        index: vertex indices kept (e.g. the lips), or None: all.
    """
    keys = ("shape", "expression", "jaw", "neck", "eyes", "rotation", "translation", "scale")
    with torch.no_grad():
        out = layer(**{k: params[k] for k in keys if k in params})
    world = out.vertices.double().cpu().numpy()
    if index is not None:
        world = world[:, np.asarray(index)]
    poses = head_poses(layer, params)
    return np.stack([poses.to_rest(t, w) for t, w in enumerate(world)])


def decoded_lip_surface_error_mm(
    decoder: NphmDecoder,
    identity: tuple[np.ndarray, np.ndarray],
    codes: np.ndarray,
    true_lips: np.ndarray,
    every: int = 1,
) -> float:
    """The lip surface error of a sequence of NPHM expression codes: every ``every``-th frame
    decoded (:meth:`NphmDecoder.mesh`), per frame the largest distance from a true lip vertex
    to that surface, mean over the decoded frames.

    Args:
        decoder: the NPHM and its box.
        identity: the subject's fitted identity codes.
        codes: (T, E) expression codes, row t for frame t.
        true_lips: (T, L, 3) true lip vertices in the rest frame, metres
            (:func:`rest_frame_vertices`).
        every: frame step (1: every frame).

    Returns:
        Millimetres.

    Raises:
        ValueError: codes and lips of different lengths, or ``every`` below 1; NphmError: a
            code that decodes no surface.
    """
    codes = np.asarray(codes)
    lips = np.asarray(true_lips, np.float64)
    if codes.ndim != 2 or lips.ndim != 3 or len(codes) != len(lips):
        raise ValueError(f"lip surface error: codes {codes.shape} for true lips {lips.shape}")
    if every < 1:
        raise ValueError(f"lip surface error: frame step {every} (at least 1)")
    rows = np.arange(0, len(codes), every)
    meshes = [decoder.mesh(codes[t], identity) for t in rows]
    return lip_surface_error_mm(lips[rows], meshes)
