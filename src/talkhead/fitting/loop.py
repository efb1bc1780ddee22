"""The optimiser loop shared by every fit (FLAME, NPHM): Adam over parameter groups, a
piecewise learning-rate schedule, a hook before each step (correspondence refresh), the loss
per term recorded on a schedule, a progress bar, and a stop with the step and the term when
the loss or a gradient stops being finite.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..errors import FittingError
from ..io import PathLike, atomic_path
from .schedules import every, lr_factor

__all__ = ["FitHistory", "ParamGroup", "optimise"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParamGroup:
    """Tensors optimised with one learning rate.

    Attributes:
        name: shown in errors (``"expression"``).
        params: leaf tensors with ``requires_grad``.
        lr: base learning rate.
    """

    name: str
    params: Sequence[Tensor]
    lr: float


@dataclass
class FitHistory:
    """Loss terms (unweighted) and the total (weighted) at the recorded steps.

    Attributes:
        steps: recorded steps.
        terms: name -> value at each recorded step (``"total"`` included).
        lr_factor: learning-rate multiplier at each recorded step.
        seconds: wall time of the whole loop.
        n_steps: steps run.
    """

    steps: list[int] = field(default_factory=list)
    terms: dict[str, list[float]] = field(default_factory=dict)
    lr_factor: list[float] = field(default_factory=list)
    seconds: float = 0.0
    n_steps: int = 0

    def record(self, step: int, values: Mapping[str, float], factor: float) -> None:
        self.steps.append(step)
        self.lr_factor.append(factor)
        for name, value in values.items():
            self.terms.setdefault(name, []).append(float(value))

    def arrays(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``(steps (K,), {term: (K,)})``."""
        return np.asarray(self.steps), {k: np.asarray(v) for k, v in self.terms.items()}

    def last(self) -> dict[str, float]:
        """The last recorded value of every term."""
        return {k: v[-1] for k, v in self.terms.items() if v}

    def save_csv(self, path: PathLike) -> None:
        """Write ``step, lr_factor, <terms...>`` rows atomically."""
        names = list(self.terms)
        with atomic_path(path) as tmp, Path(tmp).open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["step", "lr_factor", *names])
            for i, step in enumerate(self.steps):
                w.writerow(
                    [step, f"{self.lr_factor[i]:.6g}"] + [f"{self.terms[n][i]:.8g}" for n in names]
                )


def _check_finite(step: int, terms: Mapping[str, Tensor], total: Tensor) -> None:
    if torch.isfinite(total):
        return
    bad = {k: float(v.detach()) for k, v in terms.items() if not torch.isfinite(v)}
    name = ", ".join(f"'{k}' = {v}" for k, v in bad.items()) or f"total = {float(total.detach())}"
    raise FittingError(
        f"the fit diverged at step {step}: loss term {name}; lower the learning rates or that "
        "term's weight, and check the inputs for outliers"
    )


def optimise(
    groups: Sequence[ParamGroup],
    closure: Callable[[int], Mapping[str, Tensor]],
    weights: Mapping[str, float],
    steps: int,
    milestones: Sequence[int] = (),
    factors: Sequence[float] = (),
    log_every: int = 100,
    before_step: Callable[[int], None] | None = None,
    desc: str = "fit",
) -> FitHistory:
    """Minimise ``Σ weights[name] · closure(step)[name]`` with Adam.

    Args:
        groups: the parameters, one learning rate per group.
        closure: ``step -> {term name: scalar tensor}``, unweighted; terms missing from
            ``weights`` are recorded but not optimised (weight 0).
        weights: the lambdas.
        steps: number of Adam steps.
        milestones, factors: learning-rate schedule (:func:`~.schedules.lr_factor`).
        log_every: record (and log) the terms every this many steps and at the last step.
        before_step: called with the step before its loss is evaluated (e.g. refresh
            correspondences on a schedule).
        desc: progress-bar label (the bar shows on a terminal only; the log gets a line per
            record).

    Returns:
        :class:`FitHistory`.

    Raises:
        FittingError: a term, the total or a gradient is NaN or infinite, naming the step and
            the term (or parameter group); the parameters are left as they were before that
            step.
    """
    optimiser = torch.optim.Adam([{"params": list(g.params), "lr": g.lr} for g in groups])
    base = [g.lr for g in groups]
    history = FitHistory()
    start = time.perf_counter()
    bar = tqdm(range(steps), desc=desc, disable=None, mininterval=1.0, leave=False)
    for step in bar:
        factor = lr_factor(step, milestones, factors)
        for pg, lr in zip(optimiser.param_groups, base, strict=True):
            pg["lr"] = lr * factor
        if before_step is not None:
            before_step(step)
        optimiser.zero_grad(set_to_none=True)
        terms = closure(step)
        total = sum(
            (weights[k] * v for k, v in terms.items() if weights.get(k, 0.0)),
            start=torch.zeros(()),
        )
        _check_finite(step, terms, total)
        total.backward()
        for g in groups:
            if any(p.grad is not None and not torch.isfinite(p.grad).all() for p in g.params):
                raise FittingError(
                    f"the fit diverged at step {step}: the gradient of '{g.name}' is not "
                    "finite; lower its learning rate or check the inputs"
                )
        if every(step, log_every, last=steps - 1):
            values = {k: float(v.detach()) for k, v in terms.items()}
            values["total"] = float(total.detach())
            history.record(step, values, factor)
            log.info(
                "%s step %d/%d: %s",
                desc,
                step,
                steps,
                "  ".join(f"{k} {v:.4g}" for k, v in values.items()),
            )
            bar.set_postfix(total=f"{values['total']:.4g}", refresh=False)
        optimiser.step()
    history.seconds = time.perf_counter() - start
    history.n_steps = steps
    return history
