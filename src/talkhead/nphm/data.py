"""Training data of the head model: meshes drawn from a FLAME-format model's family.

Identities are drawn from the shape space and expressions from the expression space with the
jaw opened and the eyes turned; every mesh shares the model's topology, so a posed surface
point has an exact canonical counterpart (the same barycentric point of the identity's
neutral mesh): that is the deformation's supervision. Signed distances of near-surface points
of the neutral (canonical) meshes are measured against dense surface samples (nearest sample,
sign of the offset along its face normal), which needs no watertight mesh.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..flame.layer import FlameLayer
from ..geometry.mesh_distance import signed_distance_by_rays
from ..geometry.surface import sample_surface
from .config import NphmTrainConfig
from .model import ModelFrame

__all__ = ["FamilyMeshes", "draw_family", "sample_canonical", "sample_posed"]


@dataclass
class FamilyMeshes:
    """Meshes of ``I`` identities, neutral and under ``X`` expressions each, in model units.

    Attributes:
        faces: (F, 3) int64, the shared topology.
        canonical: (I, V, 3) float32 neutral meshes (zero expression and pose).
        posed: (I, X, V, 3) float32 meshes under the drawn expressions.
        near_points: (I, M, 3) float32 near-surface samples around each neutral mesh.
        near_sdf: (I, M) float32 their signed distances (model units).
        shape: (I, S) the drawn shape coefficients; expression (I, X, E); jaw (I, X, 3);
            eyes (I, X, 6): the drawn parameters (for the record).
    """

    faces: np.ndarray
    canonical: np.ndarray
    posed: np.ndarray
    near_points: np.ndarray
    near_sdf: np.ndarray
    shape: np.ndarray
    expression: np.ndarray
    jaw: np.ndarray
    eyes: np.ndarray

    @property
    def n_identities(self) -> int:
        return int(self.canonical.shape[0])

    @property
    def n_expressions(self) -> int:
        return int(self.posed.shape[1])


def _near_samples(
    vertices: np.ndarray,
    faces: np.ndarray,
    n: int,
    stds: tuple[float, ...],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points near a mesh (surface points moved along random directions by the
    Gaussian spreads ``stds``, equal shares) and their signed distances."""
    base, _, _ = sample_surface(vertices, faces, n, rng)
    std = np.repeat(np.asarray(stds), int(np.ceil(n / len(stds))))[:n]
    pts = base + rng.normal(size=(n, 3)) * std[:, None]
    return pts.astype(np.float32), signed_distance_by_rays(pts, vertices, faces).astype(np.float32)


def draw_family(
    layer: FlameLayer,
    frame: ModelFrame,
    n_identities: int,
    n_expressions: int,
    cfg: NphmTrainConfig,
    rng: np.random.Generator,
) -> FamilyMeshes:
    """Draw identities and expressions of a FLAME-format model and pose them.

    Shape coefficients ~ N(0, shape_std); the first ``expression_components`` expression
    coefficients ~ N(0, expression_std) (the rest 0); jaw opening ~ U(0, jaw_max_deg) about
    x; eyes ~ U(-eyes_max_deg, eyes_max_deg) about x and y, both eyes alike. Neck and global
    pose stay zero: the fit brings observed points into this rest frame first.

    Args:
        layer: the head model.
        frame: its model units.
        n_identities, n_expressions: how many to draw.
        cfg: the training settings (spreads, sample counts).
        rng: the generator (all draws come from it).

    Returns:
        :class:`FamilyMeshes`.
    """
    S, E = layer.num_shape, layer.num_expression
    shape = rng.normal(size=(n_identities, S)) * cfg.shape_std
    expr = np.zeros((n_identities, n_expressions, E))
    k = min(cfg.expression_components, E)
    expr[..., :k] = rng.normal(size=(n_identities, n_expressions, k)) * cfg.expression_std
    jaw = np.zeros((n_identities, n_expressions, 3))
    jaw[..., 0] = np.deg2rad(rng.uniform(0, cfg.jaw_max_deg, size=(n_identities, n_expressions)))
    eye = np.deg2rad(rng.uniform(-1, 1, size=(n_identities, n_expressions, 2)) * cfg.eyes_max_deg)
    eyes = np.zeros((n_identities, n_expressions, 6))
    eyes[..., 0] = eyes[..., 3] = eye[..., 0]
    eyes[..., 1] = eyes[..., 4] = eye[..., 1]
    faces = layer.faces.cpu().numpy().astype(np.int64)
    with torch.no_grad():
        neutral = layer(shape=torch.as_tensor(shape)).vertices.double().cpu().numpy()
        posed = (
            layer(
                shape=torch.as_tensor(np.repeat(shape, n_expressions, axis=0)),
                expression=torch.as_tensor(expr.reshape(-1, E)),
                jaw=torch.as_tensor(jaw.reshape(-1, 3)),
                eyes=torch.as_tensor(eyes.reshape(-1, 6)),
            )
            .vertices.double()
            .cpu()
            .numpy()
        )
    canonical = frame.to_model(neutral).astype(np.float32)
    posed_u = frame.to_model(posed).reshape(n_identities, n_expressions, -1, 3).astype(np.float32)
    near = [
        _near_samples(canonical[i], faces, cfg.near_samples, cfg.near_std, rng)
        for i in range(n_identities)
    ]
    return FamilyMeshes(
        faces=faces,
        canonical=canonical,
        posed=posed_u,
        near_points=np.stack([p for p, _ in near]),
        near_sdf=np.stack([d for _, d in near]),
        shape=shape,
        expression=expr,
        jaw=jaw,
        eyes=eyes,
    )


def _barycentric_samples(
    vertices: Tensor, faces: Tensor, n: int, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """Area-weighted face indices (B, n), barycentrics (B, n, 3) and face normals (B, n, 3) of
    meshes (B, V, 3)."""
    tri = vertices[:, faces]  # (B, F, 3, 3)
    cross = torch.linalg.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)
    area = cross.norm(dim=-1)
    face = torch.multinomial(area, n, replacement=True, generator=generator)
    r1 = torch.rand(vertices.shape[0], n, generator=generator)
    r2 = torch.rand(vertices.shape[0], n, generator=generator)
    s = r1.sqrt()
    bary = torch.stack([1 - s, s * (1 - r2), s * r2], dim=-1)
    nrm = torch.gather(cross, 1, face[..., None].expand(-1, -1, 3))
    nrm = nrm / nrm.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    return face, bary, nrm


def _at(vertices: Tensor, faces: Tensor, face: Tensor, bary: Tensor) -> Tensor:
    """Points (B, n, 3) at barycentrics of faces of meshes (B, V, 3)."""
    corners = vertices[torch.arange(vertices.shape[0])[:, None, None], faces[face]]
    return (corners * bary[..., None]).sum(-2)


def sample_canonical(
    family: FamilyMeshes, ids: np.ndarray, n: int, bound: float, generator: torch.Generator
) -> dict[str, Tensor]:
    """One step's canonical samples of identities ``ids`` (B,).

    Returns:
        ``surface`` (B, n, 3) and ``normals`` (B, n, 3) on the neutral meshes, ``near``
        (B, n, 3) with ``near_sdf`` (B, n), ``space`` (B, n, 3) uniform in the cube.
    """
    verts = torch.as_tensor(family.canonical[ids])
    faces = torch.as_tensor(family.faces)
    face, bary, nrm = _barycentric_samples(verts, faces, n, generator)
    pick = torch.randint(0, family.near_points.shape[1], (len(ids), n), generator=generator)
    near = torch.as_tensor(family.near_points[ids])
    near_sdf = torch.as_tensor(family.near_sdf[ids])
    rows = torch.arange(len(ids))[:, None]
    space = (torch.rand(len(ids), n, 3, generator=generator) * 2 - 1) * bound
    return {
        "surface": _at(verts, faces, face, bary),
        "normals": nrm,
        "near": near[rows, pick],
        "near_sdf": near_sdf[rows, pick],
        "space": space,
    }


def sample_posed(
    family: FamilyMeshes,
    ids: np.ndarray,
    exprs: np.ndarray,
    n: int,
    offset_std: float,
    generator: torch.Generator,
) -> dict[str, Tensor]:
    """One step's posed/canonical correspondences of meshes ``(ids[b], exprs[b])``.

    Half the points lie on the posed surface; the other half are moved off it along the
    posed normal by N(0, offset_std), their counterpart moved as far along the canonical
    normal (exact on the surface, first order off it).

    Returns:
        ``posed`` (B, n, 3) and ``canonical`` (B, n, 3) model units.
    """
    posed_v = torch.as_tensor(family.posed[ids, exprs])
    can_v = torch.as_tensor(family.canonical[ids])
    faces = torch.as_tensor(family.faces)
    face, bary, n_posed = _barycentric_samples(posed_v, faces, n, generator)
    posed = _at(posed_v, faces, face, bary)
    can = _at(can_v, faces, face, bary)
    tri = can_v[:, faces]
    cross = torch.linalg.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)
    n_can = torch.gather(cross, 1, face[..., None].expand(-1, -1, 3))
    n_can = n_can / n_can.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    off = torch.randn(len(ids), n, 1, generator=generator) * offset_std
    off[:, : n // 2] = 0.0
    return {"posed": posed + off * n_posed, "canonical": can + off * n_can}
