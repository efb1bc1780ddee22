"""FLAME evaluated on a subset of its vertices, for fitting whole sequences fast.

A fit needs, at every step and for every frame, only the vertices it compares with the
observations (the face region and the landmark triangles), and the identity is shared by the
sequence. :class:`FlameRegion` therefore evaluates the same model as
:class:`~talkhead.flame.layer.FlameLayer` (same world transform, same LBS) with

- the identity blendshapes applied once per call, not once per frame;
- joints regressed from the blendshape coefficients directly: ``J = J_regressor · v_template
  + (J_regressor · dirs) · betas``, which is linear, so no full mesh is needed;
- blendshapes, pose correctives and skinning restricted to the selected vertices.

Its outputs equal the full layer's on those vertices (tests/test_flame_fit.py checks it).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..geometry.rotations import batch_rodrigues
from .layer import FlameLayer, FlameOutput
from .lbs import batch_rigid_transform, blend_shapes

__all__ = ["FlameRegion"]


class FlameRegion(torch.nn.Module):
    """The vertices ``vertex_ids`` of a :class:`FlameLayer`, and its landmarks.

    Args:
        layer: the full model.
        vertex_ids: (K,) vertex indices to evaluate; the vertices of the landmark
            triangles are added (after them) so that the landmarks can be computed.

    Attributes:
        vertex_ids: (K',) the vertices evaluated, in output order; the first K are
            ``vertex_ids`` as given.
    """

    def __init__(self, layer: FlameLayer, vertex_ids: np.ndarray) -> None:
        super().__init__()
        ids = np.asarray(vertex_ids, dtype=np.int64)
        lmk_tri = layer.faces[layer.lmk_faces_idx].cpu().numpy()  # (L, 3)
        extra = np.setdiff1d(np.unique(lmk_tri), ids)
        all_ids = np.concatenate([ids, extra])
        position = {int(v): i for i, v in enumerate(all_ids)}
        self.num_selected = len(ids)
        self.num_shape = layer.num_shape
        self.num_expression = layer.num_expression
        self._parents = [int(p) for p in layer.parents]
        sel = torch.as_tensor(all_ids, device=layer.device)
        S = layer.num_shape
        self.register_buffer("vertex_ids", sel)
        n = len(all_ids)

        # Coordinate-major (x of every vertex, then y, then z): one matmul per basis gives
        # (B, 3, n), whose x, y and z rows the skinning takes without copies.
        def flat(dirs: Tensor) -> Tensor:  # (n, 3, K) -> (K, 3 * n)
            return dirs.permute(2, 1, 0).reshape(dirs.shape[2], 3 * n).contiguous()

        self.register_buffer("v_template", layer.v_template[sel].T.contiguous())  # (3, n)
        self.register_buffer("shapedirs", flat(layer.blenddirs[sel, :, :S]))
        self.register_buffer("exprdirs", flat(layer.blenddirs[sel, :, S:]))
        self.register_buffer("posedirs", flat(layer.posedirs[sel]))
        self.register_buffer("lbs_weights", layer.lbs_weights[sel].contiguous())
        J = layer.J_regressor
        self.register_buffer("j_template", J @ layer.v_template)  # (J, 3)
        j_dirs = torch.einsum("jv,vck->jck", J, layer.blenddirs)  # (J, 3, K)
        self.register_buffer("j_shapedirs", j_dirs[..., :S].contiguous())
        self.register_buffer("j_exprdirs", j_dirs[..., S:].contiguous())
        tri = torch.as_tensor(
            np.vectorize(position.__getitem__)(lmk_tri) if len(lmk_tri) else lmk_tri,
            dtype=torch.long,
            device=layer.device,
        )
        self.register_buffer("lmk_tri", tri.reshape(-1, 3))
        self.register_buffer("lmk_bary_coords", layer.lmk_bary_coords)

    def forward(
        self,
        shape: Tensor,
        expression: Tensor,
        rotation: Tensor,
        neck: Tensor,
        jaw: Tensor,
        eyes: Tensor,
        translation: Tensor,
        scale: Tensor,
    ) -> FlameOutput:
        """Pose the selected vertices for B frames.

        Args:
            shape: (S,) identity coefficients, shared by the frames.
            expression: (B, E); rotation, neck, jaw, translation: (B, 3); eyes: (B, 6);
                scale: (B, 1).

        Returns:
            :class:`FlameOutput`: ``vertices`` (B, K', 3) in :attr:`vertex_ids` order,
            ``landmarks`` (B, L, 3), ``joints`` (B, J, 3); world coordinates as
            :class:`FlameLayer`.
        """
        B = expression.shape[0]
        n = self.v_template.shape[1]
        v_id = self.v_template + (shape @ self.shapedirs).view(3, n)
        v_shaped = v_id.unsqueeze(0) + (expression @ self.exprdirs).view(B, 3, n)
        j_id = self.j_template + blend_shapes(shape.unsqueeze(0), self.j_shapedirs)[0]
        joints = j_id.unsqueeze(0) + blend_shapes(expression, self.j_exprdirs)
        pose = torch.cat([rotation, neck, jaw, eyes], dim=1)
        n_joints = joints.shape[1]
        rot_mats = batch_rodrigues(pose.reshape(-1, 3)).view(B, n_joints, 3, 3)
        eye = torch.eye(3, dtype=pose.dtype, device=pose.device)
        pose_feature = (rot_mats[:, 1:] - eye).reshape(B, -1)
        v_posed = v_shaped + (pose_feature @ self.posedirs).view(B, 3, n)
        posed_joints, A = batch_rigid_transform(rot_mats, joints, self._parents)
        # Skinning: the weights blend the joints' (3, 4) transforms, stored column by column,
        # and the vertex is col3 + x col0 + y col1 + z col2 (a batched 3x3 matmul per vertex,
        # or slicing one (B, n, 3, 4) blend, is far slower on a CPU, backward included).
        blend = torch.matmul(self.lbs_weights, A[:, :, :3, :].transpose(2, 3).reshape(B, -1, 12))
        c0, c1, c2, c3 = blend.view(B, n, 4, 3).unbind(2)
        x, y, z = (c.unsqueeze(-1) for c in v_posed.unbind(1))
        verts = c3 + c0 * x + c1 * y + c2 * z
        s = scale.reshape(B, 1, 1)
        t = translation.unsqueeze(1)
        verts = s * verts + t
        joints_w = s * posed_joints + t
        landmarks = torch.einsum("blkc,lk->blc", verts[:, self.lmk_tri], self.lmk_bary_coords)
        return FlameOutput(vertices=verts, landmarks=landmarks, joints=joints_w)
