"""The lip error of NPHM expression codes: the codes decoded to surfaces by marching cubes, and
the distance from the true lip vertices to them (:func:`talkhead.evaluation.animation.
lip_surface_error_mm`, the stated equivalent of the lip vertex error for outputs without a
fixed vertex order; FaceTalk supplement C measures lips in FLAME space only).

Frame. The NPHM stage fits its codes to the observed points brought into the head model's rest
frame by the FLAME fit's head pose (:mod:`talkhead.nphm.observations`: the root and neck
rotations, scale and translation undone), and decodes them there
(:func:`talkhead.nphm.stage.decode_mesh`, model units; ``ModelFrame.to_metres``). The true lip
vertices are posed the same way: the FLAME fit in world space, then each frame's head pose
undone (:func:`rest_frame_vertices`). Distances are in rest-frame metres (FLAME's units, the
fit's scale removed), reported in millimetres.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import FittingError, ModelFileError
from ..flame.layer import FlameLayer
from ..io import PathLike
from ..nphm.model import ModelFrame, NeuralHeadModel
from ..nphm.observations import head_poses
from ..nphm.stage import decode_mesh, mesh_bounds
from ..nphm.train import load_model
from .animation import lip_surface_error_mm

__all__ = [
    "NphmDecoder",
    "decoded_lip_surface_error_mm",
    "load_identity",
    "load_nphm_decoder",
    "rest_frame_vertices",
]


@dataclass(frozen=True)
class NphmDecoder:
    """A trained NPHM and the marching-cubes box of the NPHM stage.

    Attributes:
        model: the head model; frame: its model units.
        bounds: (3,), (3,) corners of the marching-cubes box, model units.
        resolution: samples per axis.
        device: torch device of the model.
    """

    model: NeuralHeadModel
    frame: ModelFrame
    bounds: tuple[np.ndarray, np.ndarray]
    resolution: int
    device: str = "cpu"

    def mesh(
        self, expression: np.ndarray, identity: tuple[np.ndarray, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """One code's surface: vertices (N, 3) rest-frame metres, faces (F, 3).

        Raises:
            NphmError: the code decodes no surface inside the box.
        """
        v, f = decode_mesh(
            self.model,
            np.asarray(expression, np.float32),
            identity[0],
            identity[1],
            self.bounds,
            self.resolution,
            self.device,
        )
        return self.frame.to_metres(v), f


def load_nphm_decoder(
    path: PathLike,
    template: np.ndarray,
    resolution: int,
    margin: float = 0.08,
    device: str = "cpu",
) -> NphmDecoder:
    """The NPHM of ``resources/nphm/model.pt`` with the NPHM stage's box: the FLAME-format
    ``template`` (V, 3) metres grown by ``margin`` of its size (``fit_nphm.mesh_margin``).

    Raises:
        ModelFileError: the file is missing or not a talkhead head model.
    """
    if not Path(path).is_file():
        raise ModelFileError(f"{path}: NPHM model file is missing (the train_nphm rule writes it)")
    try:
        model, frame = load_model(path, device)
    except FittingError as exc:
        raise ModelFileError(str(exc)) from None
    bounds = mesh_bounds(frame, np.asarray(template, np.float64), margin)
    return NphmDecoder(model.eval(), frame, bounds, int(resolution), device)


def load_identity(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(identity_global (G,), identity_local (A, L))`` of a subject's ``identity.npz``.

    Raises:
        ModelFileError: the file is missing or lacks those keys.
    """
    try:
        with np.load(path) as data:
            return np.asarray(data["identity_global"]), np.asarray(data["identity_local"])
    except (OSError, KeyError, ValueError) as exc:
        raise ModelFileError(f"{path}: not an NPHM identity file ({exc})") from None


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
