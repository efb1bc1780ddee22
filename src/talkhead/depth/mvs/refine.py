"""Narrow-band refinement at full resolution (step 3 of the torch multi-view stereo).

``refine_steps`` sweeps over ``refine_hypotheses`` inverse-depth offsets of the (median then
mean filtered, :func:`talkhead.depth.mvs.filters.smooth_base`) previous estimate, each band
narrower than the last. Because every pixel of a matching window is offset from *its own*
previous depth, the windows follow the surface (slanted, curved) instead of a fronto-parallel
plane: this is what brings the error below a millimetre.
"""

from __future__ import annotations

import torch

from ...errors import ConfigError
from .config import MVSConfig
from .filters import smooth_base
from .sweep import sweep_cost, winner_take_all

__all__ = ["refine_inverse_depth"]


def refine_inverse_depth(
    ref: torch.Tensor,
    srcs: torch.Tensor,
    rays: torch.Tensor,
    A: torch.Tensor,
    bvec: torch.Tensor,
    nb_valid: torch.Tensor,
    base: torch.Tensor,
    spacing: torch.Tensor,
    config: MVSConfig,
    weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``config.refine_steps`` (>= 1) narrow-band sweeps around a per-pixel estimate.

    Sweep k tests ``config.refine_hypotheses`` inverse depths spread uniformly over
    ``base +- config.refine_band x spacing`` (``spacing``: the previous sweep's hypothesis
    step), then the next sweep starts from the smoothed winner.

    Args:
        ref, srcs, rays, A, bvec, nb_valid, weight: as
            :func:`talkhead.depth.mvs.sweep.sweep_cost` (full-resolution crops).
        base: (B, h, w) inverse depth to start from (the smoothed coarse estimate).
        spacing: (B,) positive hypothesis step of the sweep that gave ``base``.
        config: the band, hypotheses, window, ``n_best`` and smoothing settings.

    Returns:
        inv, best, edge of the last sweep: as :func:`talkhead.depth.mvs.sweep.winner_take_all`.

    Raises:
        ConfigError: ``config.refine_steps`` < 1.
    """
    cfg = config
    if cfg.refine_steps < 1:
        raise ConfigError(
            f"depth.torch.refine_steps: must be >= 1 to refine, got {cfg.refine_steps}"
        )
    n = cfg.refine_hypotheses
    unit = torch.linspace(-1, 1, n, device=ref.device, dtype=ref.dtype)
    for step in range(cfg.refine_steps):
        band = cfg.refine_band * spacing  # (B,)
        hyp = base[:, None] + unit[None, :, None, None] * band[:, None, None, None]
        hyp = hyp.clamp_min(1e-6)
        spacing = 2 * band / (n - 1)
        cost = sweep_cost(
            ref,
            srcs,
            rays,
            A,
            bvec,
            nb_valid,
            hyp,
            cfg.window,
            cfg.best,
            cfg.max_chunk_elements,
            weight,
        )
        inv, best, edge = winner_take_all(cost, hyp, spacing)
        del cost
        if step + 1 < cfg.refine_steps:
            base = smooth_base(inv, cfg.base_median, cfg.base_smooth, weight)
    return inv, best, edge
