"""A neural parametric head model: identity as local signed-distance networks around anchors,
expression as a deformation field (NPHM, Giebenhain et al. 2023; FaceTalk's backward variant).

Coordinates. The model works in *model units* ``u = (x - centre) / extent`` of the head
model's rest frame (FLAME's zero pose, metres), with ``centre``/``extent`` the template's
bounding-box centre and half its largest side (:class:`ModelFrame`), so the head fills about
[-1, 1]^3 (NPHM works in FLAME space x 4 for the same reason). Signed distances are in model
units (negative inside); multiply by ``extent`` for metres.

Identity (canonical shape), with codes ``z = (z_glob, z_k)``:
``f_can(u; z) = d_0(u) + g_0(u, z_glob) + sum_k w_k(u) g_k(u - a_k, z_glob, z_k)``, where

- ``d_0``: the signed distance of the model's mean template, stored on a grid and read by
  trilinear interpolation (a fixed prior; see below);
- ``g_k``: small MLPs centred on anchors ``a_k`` placed on the template (farthest-point
  sampling, denser on the face); anchors come in mirrored pairs that share one network, the
  left one reading mirrored coordinates (x -> -x), plus unpaired anchors on the midline, as
  NPHM's local ensemble does; ``z_k`` a local code per anchor, ``z_glob`` a global code;
- ``w_k``: Gaussian weights of the distance to each anchor, normalised over the anchors
  (NPHM eq. 2); ``g_0`` a global network that covers what the anchors do not.

Every network's last layer starts at zero, so an untrained model is the template prior.
Departure from NPHM: the template prior ``d_0``. NPHM learns the whole field from thousands
of scans on a GPU; with the prior the networks learn only the (smooth, millimetre-scale)
difference of an identity from the template, which a few hundred CPU steps can, so the
default run trains its own model in about a minute. ``template_prior: false`` gives NPHM's
plain ensemble.

Expression. A deformation network ``delta(u; e, z_glob)`` conditioned on the expression code
``e`` and the global identity code:

- ``backward`` (FaceTalk's variant, the default): an observed (posed) point maps to the
  canonical space, ``u_can = u + delta(u)``, so ``f(u) = f_can(u + delta(u))`` needs one
  evaluation per point; meshes of a posed frame come from marching cubes of that field;
- ``forward`` (NPHM's): a canonical point moves to ``u_can + delta(u_can)``; the signed
  distance of an observed point needs the inverse, found here by fixed-point iteration
  ``u_can <- u - delta(u_can)`` (``forward_iterations``; NPHM uses Broyden's method; the
  fixed point converges while the deformation is a contraction, which the small, smooth
  facial deformations are), and a posed mesh is the canonical mesh with its vertices moved
  forward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..geometry.mesh_distance import signed_distance_by_rays
from .config import NphmModelConfig

__all__ = [
    "ModelFrame",
    "NeuralHeadModel",
    "farthest_point_sampling",
    "place_anchors",
    "template_sdf_grid",
]


@dataclass(frozen=True)
class ModelFrame:
    """Model units of a head model's rest frame: ``u = (x - centre) / extent``.

    Attributes:
        centre: (3,) metres, the template's bounding-box centre.
        extent: metres per model unit (half the bounding box's largest side).
    """

    centre: np.ndarray
    extent: float

    @classmethod
    def of_template(cls, vertices: np.ndarray) -> ModelFrame:
        """The frame of a template (V, 3) in metres."""
        v = np.asarray(vertices, dtype=np.float64)
        lo, hi = v.min(0), v.max(0)
        return cls(centre=(lo + hi) / 2.0, extent=float((hi - lo).max() / 2.0))

    def to_model(self, x: np.ndarray) -> np.ndarray:
        """Rest-frame metres (..., 3) -> model units."""
        return (np.asarray(x, dtype=np.float64) - self.centre) / self.extent

    def to_metres(self, u: np.ndarray) -> np.ndarray:
        """Model units (..., 3) -> rest-frame metres."""
        return np.asarray(u, dtype=np.float64) * self.extent + self.centre


def farthest_point_sampling(
    points: np.ndarray, k: int, seeds: np.ndarray | None = None
) -> np.ndarray:
    """Indices (k,) of ``k`` points of (N, 3) spread by greedy farthest-point sampling.

    Args:
        points: (N, 3).
        k: how many to pick.
        seeds: (S, 3) points already chosen elsewhere (the picks keep away from them), or
            None: start from the point of largest y.

    Raises:
        ValueError: ``k`` larger than the number of points.
    """
    pts = np.asarray(points, dtype=np.float64)
    if k > len(pts):
        raise ValueError(f"cannot pick {k} anchors from {len(pts)} points")
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    if seeds is not None and len(seeds):
        dist = np.linalg.norm(pts[:, None] - np.asarray(seeds)[None], axis=2).min(1)
        chosen: list[int] = []
    else:
        first = int(np.argmax(pts[:, 1]))
        chosen = [first]
        dist = np.linalg.norm(pts - pts[first], axis=1)
    while len(chosen) < k:
        i = int(np.argmax(dist))
        chosen.append(i)
        dist = np.minimum(dist, np.linalg.norm(pts - pts[i], axis=1))
    return np.asarray(chosen, dtype=np.int64)


def place_anchors(
    vertices: np.ndarray,
    face_vertices: np.ndarray | None,
    n_pairs: int,
    n_midline: int,
    face_share: float = 0.6,
    midline: float = 0.004,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anchor points on a template: mirrored pairs and midline anchors (NPHM's layout).

    The x axis is the left-right axis (x = 0 the midline plane), as in FLAME. ``face_share``
    of each kind are spread over the face region by farthest-point sampling, the rest over
    the whole head, away from those.

    Args:
        vertices: (V, 3) template.
        face_vertices: indices of the face region, or None (whole head only).
        n_pairs: mirrored anchor pairs; n_midline: anchors on the midline.
        face_share: fraction of each kind placed on the face.
        midline: vertices within this |x| count as midline (units of ``vertices``).

    Returns:
        ``anchors`` (K, 3) with K = 2 n_pairs + n_midline (pairs first, right then left),
        ``network`` (K,) index of each anchor's network (a pair shares one), ``mirrored``
        (K,) bool (the anchor reads mirrored coordinates).
    """
    v = np.asarray(vertices, dtype=np.float64)
    face = np.zeros(len(v), dtype=bool)
    if face_vertices is not None:
        face[np.asarray(face_vertices, dtype=np.int64)] = True

    def pick(candidates: np.ndarray, k: int) -> np.ndarray:
        on_face = np.flatnonzero(candidates & face)
        n_face = min(int(round(k * face_share)), len(on_face))
        first = v[on_face[farthest_point_sampling(v[on_face], n_face)]] if n_face else v[:0]
        idx = np.flatnonzero(candidates)
        rest = v[idx[farthest_point_sampling(v[idx], k - n_face, seeds=first)]]
        return np.concatenate([first, rest])

    right = pick(v[:, 0] > midline, n_pairs)
    left = right * np.array([-1.0, 1.0, 1.0])
    mid = pick(np.abs(v[:, 0]) <= midline, n_midline)
    mid[:, 0] = 0.0
    anchors = np.concatenate([right, left, mid])
    network = np.concatenate(
        [np.arange(n_pairs), np.arange(n_pairs), n_pairs + np.arange(n_midline)]
    ).astype(np.int64)
    mirrored = np.concatenate(
        [np.zeros(n_pairs, bool), np.ones(n_pairs, bool), np.zeros(n_midline, bool)]
    )
    return anchors, network, mirrored


def template_sdf_grid(
    vertices: np.ndarray, faces: np.ndarray, resolution: int, bound: float
) -> np.ndarray:
    """Signed distance (model units) of a mesh on a regular grid over [-bound, bound]^3.

    The mesh (model units) need not be watertight: inside is decided by a vote of rays, part
    by part (:func:`~talkhead.geometry.mesh_distance.signed_distance_by_rays`).

    Returns:
        (R, R, R) float32 indexed [z, y, x] (the layout of ``grid_sample``).
    """
    axis = np.linspace(-bound, bound, resolution)
    z, y, x = np.meshgrid(axis, axis, axis, indexing="ij")
    q = np.stack([x, y, z], axis=-1).reshape(-1, 3)
    sdf = signed_distance_by_rays(q, vertices, faces)
    return sdf.reshape(resolution, resolution, resolution).astype(np.float32)


class _BatchedMLP(nn.Module):
    """``n`` independent MLPs of the same shape evaluated together: (n, N, in) -> (n, N, out)."""

    def __init__(self, n: int, dims: list[int]) -> None:
        super().__init__()
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            w = torch.empty(n, a, b)
            for i in range(n):
                nn.init.kaiming_uniform_(w[i].T, a=math.sqrt(5))
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(n, 1, b)))
        with torch.no_grad():
            self.weights[-1].zero_()

    def forward(self, x: Tensor, index: Tensor | None = None) -> Tensor:
        """``x`` (n', N, in); ``index`` (n',) picks the network of each row (default all)."""
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if index is not None:
                w, b = w[index], b[index]
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = F.silu(x)
        return x


def fourier_features(u: Tensor, octaves: int) -> Tensor:
    """``[u, sin(2^k pi u), cos(2^k pi u)]`` for k < ``octaves``: (..., 3) -> (..., 3 + 6 octaves)
    (NeRF's positional encoding: lets a small MLP represent localised detail)."""
    if octaves == 0:
        return u
    freq = (2.0 ** torch.arange(octaves, device=u.device, dtype=u.dtype)) * math.pi
    x = u[..., None, :] * freq[:, None]  # (..., O, 3)
    return torch.cat([u, x.sin().flatten(-2), x.cos().flatten(-2)], dim=-1)


def _code_linear(out: Tensor, code: Tensor, width: int) -> Tensor:
    """Network outputs (..., width + width * C) and codes (..., C) -> (..., width):
    ``out[:width] + out[width:].view(width, C) @ code`` (a code-linear head: the output's
    dependence on the code starts linear, as in blendshapes, and the MLP adds the rest)."""
    C = code.shape[-1]
    lin = out[..., width:].unflatten(-1, (width, C))
    return out[..., :width] + (lin * code[..., None, :]).sum(-1)


def _mlp(dims: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-2], dims[1:-1], strict=True):
        layers += [nn.Linear(a, b), nn.SiLU()]
    last = nn.Linear(dims[-2], dims[-1])
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)


class NeuralHeadModel(nn.Module):
    """Identity SDF (local ensemble + global code) and expression deformation field.

    Args:
        config: sizes (:class:`~talkhead.nphm.config.NphmModelConfig`).
        anchors: (K, 3) anchor points (model units); ``network`` (K,) and ``mirrored`` (K,)
            as :func:`place_anchors` returns them.
        prior: (R, R, R) template SDF grid over [-bound, bound]^3 (model units), or None.
        bound: half side of the prior grid's cube (model units).
    """

    prior: Tensor
    anchors: Tensor
    network: Tensor
    mirrored: Tensor

    def __init__(
        self,
        config: NphmModelConfig,
        anchors: np.ndarray,
        network: np.ndarray,
        mirrored: np.ndarray,
        prior: np.ndarray | None,
        bound: float,
    ) -> None:
        super().__init__()
        self.config = config
        self.bound = float(bound)
        K = len(anchors)
        self.n_anchors = K
        self.register_buffer("anchors", torch.as_tensor(anchors, dtype=torch.float32))
        self.register_buffer("network", torch.as_tensor(network, dtype=torch.long))
        self.register_buffer("mirrored", torch.as_tensor(mirrored, dtype=torch.bool))
        grid = np.zeros((2, 2, 2), np.float32) if prior is None else prior
        self.register_buffer("prior", torch.as_tensor(grid)[None, None])
        self.use_prior = prior is not None
        c = config
        n_nets = int(np.max(network)) + 1 if K else 0
        enc = 3 + 6 * c.octaves
        local_in = enc + c.identity_local + c.identity_global
        self.local = _BatchedMLP(
            n_nets, [local_in] + [c.local_hidden] * c.local_layers + [1 + c.identity_local]
        )
        self.glob = _mlp(
            [enc + c.identity_global]
            + [c.global_hidden] * c.global_layers
            + [1 + c.identity_global]
        )
        self.deform = _mlp(
            [3 + 6 * c.deform_octaves + c.expression + c.identity_global]
            + [c.deform_hidden] * c.deform_layers
            + [3 + 3 * c.expression]
        )
        self.sigma = float(c.anchor_sigma)

    # -- identity ----------------------------------------------------------------------

    def prior_sdf(self, u: Tensor) -> Tensor:
        """The template prior at (N, 3) model-unit points -> (N,) (0 without a prior).

        Outside the grid the prior grows as the distance to the grid's cube (it never
        claims a surface there)."""
        if not self.use_prior:
            return u.new_zeros(u.shape[0])
        g = (u / self.bound).clamp(-1, 1)
        val = F.grid_sample(
            self.prior, g.view(1, 1, 1, -1, 3), mode="bilinear", align_corners=True
        ).view(-1)
        outside = (u.abs() - self.bound).clamp(min=0).norm(dim=-1)
        return val + outside

    def canonical_sdf(self, u: Tensor, z_global: Tensor, z_local: Tensor) -> Tensor:
        """Signed distance of canonical points.

        Args:
            u: (B, N, 3) canonical points (model units).
            z_global: (B, G) global identity codes.
            z_local: (B, K, L) local identity codes.

        Returns:
            (B, N) signed distances (model units).
        """
        B, N, _ = u.shape
        K = self.n_anchors
        zg = z_global[:, None, :].expand(B, N, -1)
        oct_ = self.config.octaves
        out = _code_linear(self.glob(torch.cat([fourier_features(u, oct_), zg], -1)), zg, 1)[..., 0]
        if K:
            local = u[:, None] - self.anchors[None, :, None]  # (B, K, N, 3)
            flip = torch.where(self.mirrored, -1.0, 1.0).to(u)
            local = (
                local
                * torch.stack([flip, torch.ones_like(flip), torch.ones_like(flip)], dim=-1)[
                    None, :, None
                ]
            )
            zl = z_local[:, :, None, :].expand(B, K, N, -1)
            zgk = zg[:, None].expand(B, K, N, -1)
            x = torch.cat([fourier_features(local, oct_), zl, zgk], dim=-1)  # (B, K, N, in)
            x = x.permute(1, 0, 2, 3).reshape(K, B * N, -1)
            o = self.local(x, self.network).view(K, B, N, -1).permute(1, 0, 2, 3)
            g = _code_linear(o, zl, 1)[..., 0]  # (B, K, N)
            d2 = (u[:, None] - self.anchors[None, :, None]).pow(2).sum(-1)  # (B, K, N)
            w = torch.softmax(-d2 / (2 * self.sigma**2), dim=1)
            out = out + (w * g).sum(1)
        return out + self.prior_sdf(u.reshape(-1, 3)).view(B, N)

    # -- expression --------------------------------------------------------------------

    def deformation(self, u: Tensor, expression: Tensor, z_global: Tensor) -> Tensor:
        """The deformation field: (B, N, 3) points, (B, E) codes, (B, G) -> (B, N, 3)."""
        B, N, _ = u.shape
        cond = torch.cat([expression, z_global], dim=-1)[:, None, :].expand(B, N, -1)
        out = self.deform(torch.cat([fourier_features(u, self.config.deform_octaves), cond], -1))
        return _code_linear(out, expression[:, None, :].expand(B, N, -1), 3)

    def to_canonical(self, u: Tensor, expression: Tensor, z_global: Tensor) -> Tensor:
        """Observed (posed) points (B, N, 3) -> canonical points (B, N, 3)."""
        if self.config.deformation == "backward":
            return u + self.deformation(u, expression, z_global)
        can = u
        for _ in range(self.config.forward_iterations):
            can = u - self.deformation(can, expression, z_global)
        return can

    def to_posed(self, u_can: Tensor, expression: Tensor, z_global: Tensor) -> Tensor:
        """Canonical points (B, N, 3) -> posed points (forward deformation only; the backward
        model is inverted by fixed-point iteration ``u <- u_can - delta(u)``)."""
        if self.config.deformation == "forward":
            return u_can + self.deformation(u_can, expression, z_global)
        u = u_can
        for _ in range(self.config.forward_iterations):
            u = u_can - self.deformation(u, expression, z_global)
        return u

    def forward(self, u: Tensor, expression: Tensor, z_global: Tensor, z_local: Tensor) -> Tensor:
        """Signed distance (B, N) of observed points (B, N, 3) under codes (B, E), (B, G),
        (B, K, L)."""
        return self.canonical_sdf(self.to_canonical(u, expression, z_global), z_global, z_local)


def sdf_gradient(sdf: Tensor, u: Tensor, create_graph: bool) -> Tensor:
    """d sdf / d u for a (B, N) field of points (B, N, 3) with ``requires_grad``."""
    (grad,) = torch.autograd.grad(
        sdf, u, grad_outputs=torch.ones_like(sdf), create_graph=create_graph
    )
    return grad
