"""A trained NPHM as a decoder of expression codes to surfaces: marching cubes in the NPHM
stage's box (:func:`talkhead.nphm.stage.decode_mesh`), vertices in the head model's rest frame
(metres: FLAME's model space with each frame's head pose undone, as the NPHM fit treats the
observed points, :mod:`talkhead.nphm.observations`). Used to measure models of NPHM codes
(:mod:`talkhead.evaluation.nphm_lips`) and to show their animations
(:mod:`talkhead.training.animate`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FittingError, ModelFileError
from ..io import PathLike
from .model import ModelFrame, NeuralHeadModel
from .stage import decode_mesh, mesh_bounds
from .train import load_model

__all__ = ["NphmDecoder", "identities_by_subject", "load_identity", "load_nphm_decoder"]


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


def identities_by_subject(paths: PathLike | Iterable[PathLike]) -> dict[str, PathLike]:
    """``{subject: identity.npz}`` of the NPHM stage's ``results/nphm/<subject>/identity.npz``
    files (the subject is the file's folder name); one path or several."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    return {Path(p).parent.name: p for p in items}
