"""Schedules of an optimisation: the learning rate's piecewise-constant decay and the steps at
which something periodic happens (correspondence refresh, logging).

Source: MonoNPHM's ICP tracker (``src/mononphm/utils_3d/icp.py``) halves the learning rate at
step 500 and divides it by 5 at step 2000 of 2500, which is ``milestones=(500, 2000)``,
``factors=(0.5, 0.2)`` here (factors multiply: 0.5, then 0.1 of the base rate).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["every", "lr_factor"]


def lr_factor(step: int, milestones: Sequence[int], factors: Sequence[float]) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based).

    Args:
        step: the optimisation step.
        milestones: increasing steps at which the rate changes.
        factors: one per milestone; from ``milestones[k]`` on, the rate is multiplied by
            ``factors[0] * ... * factors[k]``.

    Returns:
        The product of the factors of the milestones reached (``step >= milestone``).

    Raises:
        ValueError: lengths differ or milestones do not increase.
    """
    if len(milestones) != len(factors):
        raise ValueError(f"{len(milestones)} milestones but {len(factors)} factors")
    if any(b <= a for a, b in zip(milestones, milestones[1:], strict=False)):
        raise ValueError(f"milestones must increase, got {list(milestones)}")
    out = 1.0
    for milestone, factor in zip(milestones, factors, strict=True):
        if step >= milestone:
            out *= factor
    return out


def every(step: int, interval: int, last: int | None = None) -> bool:
    """Whether a periodic action runs at ``step``: steps 0, interval, 2·interval, ..., and
    the ``last`` step when given. ``interval <= 0`` means only step 0 (and ``last``)."""
    if last is not None and step == last:
        return True
    if interval <= 0:
        return step == 0
    return step % interval == 0
