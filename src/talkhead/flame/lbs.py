"""Linear blend skinning for FLAME-style models (torch, batched, differentiable).

The model is the one of SMPL / FLAME:

1. ``v_shaped = v_template + shapedirs · betas`` (identity and expression blendshapes);
2. rest joints ``J = J_regressor · v_shaped``;
3. per-joint rotations ``R_j = exp([θ_j]×)`` from axis-angle ``θ_j``
   (:func:`talkhead.geometry.rotations.batch_rodrigues`);
4. pose correctives ``v_posed = v_shaped + posedirs · vec(R_j - I for j ≥ 1)``;
5. forward kinematics along ``parents`` gives world transforms ``G_j``; skinning moves each
   vertex by ``Σ_j w_vj · G_j · [I | -J_j]`` (the joint transforms relative to rest pose).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..geometry.rotations import batch_rodrigues

__all__ = ["batch_rigid_transform", "blend_shapes", "lbs", "vertices2joints"]


def blend_shapes(coeffs: Tensor, dirs: Tensor) -> Tensor:
    """Vertex offsets of a linear basis.

    Args:
        coeffs: (B, K) coefficients.
        dirs: (V, 3, K) basis.

    Returns:
        (B, V, 3) offsets ``Σ_k coeffs[b, k] · dirs[v, :, k]``.
    """
    return torch.einsum("bk,vck->bvc", coeffs, dirs)


def vertices2joints(J_regressor: Tensor, vertices: Tensor) -> Tensor:
    """Regress joint locations from vertices.

    Args:
        J_regressor: (J, V) dense regressor.
        vertices: (B, V, 3).

    Returns:
        (B, J, 3).
    """
    return torch.einsum("jv,bvc->bjc", J_regressor, vertices)


def _homogeneous(R: Tensor, t: Tensor) -> Tensor:
    """(..., 3, 3) rotations and (..., 3) translations -> (..., 4, 4) transforms."""
    top = torch.cat([R, t.unsqueeze(-1)], dim=-1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


def batch_rigid_transform(
    rot_mats: Tensor, joints: Tensor, parents: Tensor | list[int]
) -> tuple[Tensor, Tensor]:
    """Forward kinematics of a joint tree.

    Each joint ``j`` rotates by ``rot_mats[:, j]`` about its rest location ``joints[:, j]``;
    children follow their parent. Parents must precede children (``parents[j] < j``) and the
    root has parent ``-1``.

    Args:
        rot_mats: (B, J, 3, 3) local joint rotations.
        joints: (B, J, 3) rest joint locations.
        parents: (J,) parent index per joint.

    Returns:
        posed_joints: (B, J, 3) joint locations after posing.
        rel_transforms: (B, J, 4, 4) transforms mapping rest-pose points to posed points
            for a vertex fully bound to joint ``j`` (``G_j · [I | -J_j]``).
    """
    parent_list = [int(p) for p in parents]
    rel_joints = joints.clone()
    rel_joints[:, 1:] = joints[:, 1:] - joints[:, parent_list[1:]]
    local = _homogeneous(rot_mats, rel_joints)  # (B, J, 4, 4)
    chain = [local[:, 0]]
    for j in range(1, len(parent_list)):
        chain.append(chain[parent_list[j]] @ local[:, j])
    world = torch.stack(chain, dim=1)
    posed_joints = world[:, :, :3, 3]
    # Subtract the rotated rest location: G_j [I | -J_j] = [R_j | t_j - R_j J_j].
    offset = torch.einsum("bjcd,bjd->bjc", world[:, :, :3, :3], joints)
    rel = torch.cat([world[:, :, :3, :3], (posed_joints - offset).unsqueeze(-1)], dim=-1)
    rel_transforms = torch.cat([rel, world[:, :, 3:, :]], dim=-2)
    return posed_joints, rel_transforms


def lbs(
    betas: Tensor,
    pose: Tensor,
    v_template: Tensor,
    shapedirs: Tensor,
    posedirs: Tensor,
    J_regressor: Tensor,
    parents: Tensor | list[int],
    lbs_weights: Tensor,
) -> tuple[Tensor, Tensor]:
    """Shape, pose and skin a FLAME/SMPL-style model.

    Args:
        betas: (B, K) blendshape coefficients (shape then expression for FLAME).
        pose: (B, J*3) axis-angle per joint (root first).
        v_template: (V, 3) template vertices.
        shapedirs: (V, 3, K) blendshape basis.
        posedirs: (V, 3, (J-1)*9) pose-corrective basis, indexed by the row-major
            flattening of ``R_j - I`` for joints ``1..J-1``.
        J_regressor: (J, V) dense joint regressor.
        parents: (J,) kinematic tree, ``-1`` for the root.
        lbs_weights: (V, J) skinning weights.

    Returns:
        vertices: (B, V, 3) posed vertices.
        joints: (B, J, 3) posed joints.
    """
    B = betas.shape[0]
    num_joints = J_regressor.shape[0]
    if pose.shape != (B, num_joints * 3):
        raise ValueError(f"pose must be ({B}, {num_joints * 3}), got {tuple(pose.shape)}")
    v_shaped = v_template.unsqueeze(0) + blend_shapes(betas, shapedirs)
    joints = vertices2joints(J_regressor, v_shaped)

    rot_mats = batch_rodrigues(pose.reshape(-1, 3)).view(B, num_joints, 3, 3)
    eye = torch.eye(3, dtype=pose.dtype, device=pose.device)
    pose_feature = (rot_mats[:, 1:] - eye).reshape(B, -1)
    v_posed = v_shaped + blend_shapes(pose_feature, posedirs)

    posed_joints, A = batch_rigid_transform(rot_mats, joints, parents)
    T = torch.einsum("vj,bjcd->bvcd", lbs_weights, A[:, :, :3, :])  # (B, V, 3, 4)
    verts = torch.einsum("bvcd,bvd->bvc", T[..., :3], v_posed) + T[..., 3]
    return verts, posed_joints
