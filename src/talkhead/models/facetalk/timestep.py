"""FaceTalk's timestep embedder (supplement B, Fig. 4a): the diffusion timestep's sinusoidal
encoding through a 2-layer MLP with SiLU."""

from __future__ import annotations

from torch import Tensor, nn

from ..positional import sinusoidal_encoding

__all__ = ["TimestepEmbedder"]


class TimestepEmbedder(nn.Module):
    """Diffusion timestep -> the decoder's latent space.

    ``t_hat = W2 · SiLU(W1 · PE(t) + b1) + b2`` with ``PE`` the sinusoidal encoding of size
    ``dim`` (:func:`talkhead.models.positional.sinusoidal_encoding`, the supplement's formula)
    and both layers ``dim -> dim`` (the supplement gives no hidden size; EDGE widens to 4 dim).

    Args:
        dim: the latent size (even).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        """(B,) integer (or real) timesteps -> (B, dim) embeddings."""
        return self.mlp(sinusoidal_encoding(t, self.dim))
