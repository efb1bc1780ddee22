"""``FlameLayer``: FLAME parameters -> posed vertices, landmarks and joints (torch).

World transform (the convention of every stage that uses FLAME parameters)::

    v_lbs   = LBS(shape, expression, pose=[rotation, neck, jaw, eye_left, eye_right])
    v_world = scale * v_lbs + translation

``rotation`` is the pose of FLAME's root joint inside LBS, so it turns the head about the
root joint's rest location (not about the origin); ``scale`` and ``translation`` are then
applied to the skinned result. Joints and landmarks are transformed the same way.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..io import PathLike
from .lbs import lbs
from .model import FlameModel, load_flame_model

__all__ = ["FLAME_JOINTS", "FlameLayer", "FlameOutput", "barycentric_landmarks"]

#: FLAME's joints, in the order of the full pose vector.
FLAME_JOINTS = ("root", "neck", "jaw", "eye_left", "eye_right")


class FlameOutput(NamedTuple):
    """Result of :meth:`FlameLayer.forward`.

    Attributes:
        vertices: (B, V, 3) world vertices.
        landmarks: (B, L, 3) world landmarks (L = 68 for an iBUG embedding); (B, 0, 3) when
            the model has no landmark embedding.
        joints: (B, J, 3) world joints.
    """

    vertices: Tensor
    landmarks: Tensor
    joints: Tensor


def barycentric_landmarks(
    vertices: Tensor, faces: Tensor, lmk_faces_idx: Tensor, lmk_bary_coords: Tensor
) -> Tensor:
    """Points on a batch of meshes given by a face index and barycentric coordinates.

    Args:
        vertices: (B, V, 3).
        faces: (F, 3) long.
        lmk_faces_idx: (L,) long.
        lmk_bary_coords: (L, 3).

    Returns:
        (B, L, 3) ``Σ_k bary[l, k] · vertices[:, faces[idx[l], k]]``.
    """
    tri = faces[lmk_faces_idx]  # (L, 3)
    corners = vertices[:, tri]  # (B, L, 3, 3): landmark, corner, xyz
    return torch.einsum("blkc,lk->blc", corners, lmk_bary_coords)


class FlameLayer(torch.nn.Module):
    """Differentiable FLAME, batched over frames; follows the module's device and dtype.

    Args:
        model: the model arrays (needs FLAME's 5 joints: root, neck, jaw, two eyes).
        dtype: floating dtype of the buffers and outputs.
    """

    v_template: Tensor
    blenddirs: Tensor
    posedirs: Tensor
    J_regressor: Tensor
    lbs_weights: Tensor
    parents: Tensor
    faces: Tensor
    lmk_faces_idx: Tensor
    lmk_bary_coords: Tensor

    def __init__(self, model: FlameModel, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if model.num_joints != len(FLAME_JOINTS):
            raise ValueError(
                f"FlameLayer needs FLAME's {len(FLAME_JOINTS)} joints {FLAME_JOINTS}, the model "
                f"has {model.num_joints}"
            )
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be floating point, got {dtype}")
        self.num_shape = model.num_shape
        self.num_expression = model.num_expression
        self._parents_list = [int(p) for p in model.parents]

        def fbuf(name: str, value: Any) -> None:
            self.register_buffer(name, torch.as_tensor(value).to(dtype).contiguous())

        fbuf("v_template", model.v_template)
        blend = torch.cat(
            [torch.as_tensor(model.shapedirs), torch.as_tensor(model.exprdirs)], dim=2
        )
        fbuf("blenddirs", blend)
        fbuf("posedirs", model.posedirs)
        fbuf("J_regressor", model.J_regressor)
        fbuf("lbs_weights", model.lbs_weights)
        self.register_buffer("parents", torch.as_tensor(model.parents, dtype=torch.long))
        self.register_buffer("faces", torch.as_tensor(model.faces, dtype=torch.long))
        if model.lmk_faces_idx is not None and model.lmk_bary_coords is not None:
            idx, bary = model.lmk_faces_idx, model.lmk_bary_coords
        else:
            idx, bary = torch.zeros(0, dtype=torch.long), torch.zeros(0, 3)
        self.register_buffer("lmk_faces_idx", torch.as_tensor(idx, dtype=torch.long))
        fbuf("lmk_bary_coords", bary)

    @classmethod
    def from_file(
        cls,
        path: PathLike,
        landmarks_path: PathLike | None = None,
        masks_path: PathLike | None = None,
        num_shape: int | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> FlameLayer:
        """Load a model file (see :func:`load_flame_model`) and build the layer."""
        return cls(load_flame_model(path, landmarks_path, masks_path, num_shape), dtype=dtype)

    @property
    def dtype(self) -> torch.dtype:
        return self.v_template.dtype

    @property
    def device(self) -> torch.device:
        return self.v_template.device

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def num_landmarks(self) -> int:
        return int(self.lmk_faces_idx.shape[0])

    def _input(self, value: Any, name: str, max_dim: int, exact: bool) -> Tensor | None:
        if value is None:
            return None
        t = torch.as_tensor(value) if not isinstance(value, Tensor) else value
        t = t.to(device=self.device, dtype=self.dtype)
        if t.ndim == 0:
            t = t.reshape(1, 1)
        if t.ndim == 1:
            t = t.unsqueeze(0)
        if t.ndim != 2:
            raise ValueError(f"{name} must be (B, {max_dim}) or ({max_dim},), got {tuple(t.shape)}")
        n = t.shape[1]
        if (exact and n != max_dim) or n > max_dim:
            want = f"{max_dim}" if exact else f"at most {max_dim}"
            raise ValueError(f"{name} has {n} coefficients per frame, expected {want}")
        return t

    def pose_params(self, params: Any, rows: Any = None) -> FlameOutput:
        """Pose stored FLAME parameters (the benchmark / VHAP keys of
        :mod:`talkhead.flame.params`: ``shape`` (S,), per-frame ``expression``, ``rotation``,
        ``neck``, ``jaw``, ``eyes``, ``translation``, ``scale``), without gradients.

        Args:
            params: mapping of those keys to arrays.
            rows: frame rows to pose (an index array), or None for every frame.

        Returns:
            :class:`FlameOutput` of the selected frames.
        """
        keys = ("expression", "rotation", "neck", "jaw", "eyes", "translation", "scale")
        pick = (lambda a: a) if rows is None else (lambda a: a[rows])
        with torch.no_grad():
            return self(
                shape=torch.as_tensor(params["shape"]),
                **{k: torch.as_tensor(pick(params[k])) for k in keys},
            )

    def forward(
        self,
        shape: Tensor | None = None,
        expression: Tensor | None = None,
        rotation: Tensor | None = None,
        neck: Tensor | None = None,
        jaw: Tensor | None = None,
        eyes: Tensor | None = None,
        translation: Tensor | None = None,
        scale: Tensor | None = None,
    ) -> FlameOutput:
        """Pose the model for B frames.

        Every argument is optional (zeros; ``scale`` ones) and may be given for all frames
        (B, D) or once, (D,) or (1, D), to broadcast over frames. B is taken from the
        arguments that have more than one row.

        Args:
            shape: (B, S') identity coefficients, S' <= S (missing ones are zero).
            expression: (B, E') expression coefficients, E' <= E.
            rotation: (B, 3) axis-angle of the root joint (global head rotation).
            neck: (B, 3) axis-angle of the neck joint.
            jaw: (B, 3) axis-angle of the jaw joint.
            eyes: (B, 6) axis-angles of the left then the right eye.
            translation: (B, 3) world translation (metres).
            scale: (B, 1) (or (B,)) uniform scale.

        Returns:
            :class:`FlameOutput` with world vertices (B, V, 3), landmarks (B, L, 3) and joints
            (B, J, 3).
        """
        if scale is not None and not isinstance(scale, Tensor):
            scale = torch.as_tensor(scale)
        if isinstance(scale, Tensor) and scale.ndim == 1 and scale.shape[0] != 1:
            scale = scale.unsqueeze(-1)
        args = {
            "shape": self._input(shape, "shape", self.num_shape, exact=False),
            "expression": self._input(expression, "expression", self.num_expression, False),
            "rotation": self._input(rotation, "rotation", 3, exact=True),
            "neck": self._input(neck, "neck", 3, exact=True),
            "jaw": self._input(jaw, "jaw", 3, exact=True),
            "eyes": self._input(eyes, "eyes", 6, exact=True),
            "translation": self._input(translation, "translation", 3, exact=True),
            "scale": self._input(scale, "scale", 1, exact=True),
        }
        rows = {name: t.shape[0] for name, t in args.items() if t is not None}
        B = max([1, *rows.values()])
        bad = {name: n for name, n in rows.items() if n not in (1, B)}
        if bad:
            raise ValueError(f"inconsistent batch sizes: {rows} (each must be 1 or {B})")

        def full(name: str, width: int, fill: float = 0.0) -> Tensor:
            t = args[name]
            if t is None:
                return torch.full((B, width), fill, dtype=self.dtype, device=self.device)
            t = t.expand(B, -1)
            return F.pad(t, (0, width - t.shape[1])) if t.shape[1] < width else t

        betas = torch.cat(
            [full("shape", self.num_shape), full("expression", self.num_expression)], dim=1
        )
        pose = torch.cat(
            [full("rotation", 3), full("neck", 3), full("jaw", 3), full("eyes", 6)], dim=1
        )
        verts, joints = lbs(
            betas,
            pose,
            self.v_template,
            self.blenddirs,
            self.posedirs,
            self.J_regressor,
            self._parents_list,
            self.lbs_weights,
        )
        s = full("scale", 1, 1.0).unsqueeze(1)  # (B, 1, 1)
        t = full("translation", 3).unsqueeze(1)  # (B, 1, 3)
        verts = s * verts + t
        joints = s * joints + t
        landmarks = barycentric_landmarks(
            verts, self.faces, self.lmk_faces_idx, self.lmk_bary_coords
        )
        return FlameOutput(vertices=verts, landmarks=landmarks, joints=joints)
