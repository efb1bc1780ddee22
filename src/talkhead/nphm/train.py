"""Training of the head model on its family (auto-decoder, as NPHM): the networks and one code
per training identity and per posed mesh are optimised together.

Losses per step (weights in :class:`~talkhead.nphm.config.NphmTrainWeights`):

- canonical identity field on the neutral meshes: ``surface`` |f| at surface samples,
  ``near`` |f - sdf| at near-surface samples, ``normal`` 1 - cos(grad f, n) at surface
  samples, ``eikonal`` (|grad f| - 1)^2 at near and uniform samples (IGR / NPHM);
- deformation on posed meshes: ``correspondence`` |deform(posed) - canonical| (backward) or
  |deform(canonical) - posed| (forward) for points on and near the surface (NPHM trains its
  deformation on registered correspondences the same way);
- ``reg_identity`` / ``reg_expression``: mean squared codes (NPHM's code regularisers).

Checkpoints (every ``checkpoint_every`` steps and at the end) hold the networks, the codes,
Adam's state, the step and the batch generator's state; training resumes from the last one
and, given the same settings, continues as if it had not stopped.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..errors import FittingError
from ..fitting.loop import FitHistory
from ..fitting.schedules import every, lr_factor
from ..io import PathLike, atomic_path
from .config import NphmConfig, NphmModelConfig
from .data import FamilyMeshes, sample_canonical, sample_posed
from .model import ModelFrame, NeuralHeadModel, place_anchors, sdf_gradient, template_sdf_grid

__all__ = [
    "HeadModelCodes",
    "build_model",
    "load_model",
    "save_model",
    "train_head_model",
]

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1


@dataclass
class HeadModelCodes:
    """Auto-decoded codes of the training meshes.

    Attributes:
        identity_global: (I, G); identity_local: (I, K, L); expression: (I, X, E).
    """

    identity_global: Tensor
    identity_local: Tensor
    expression: Tensor

    @classmethod
    def initial(
        cls, model: NeuralHeadModel, family: FamilyMeshes, generator: torch.Generator
    ) -> HeadModelCodes:
        """Codes that start from the family's coefficients: each code is a fixed random
        orthonormal projection of its mesh's standardised coefficients (identity: shape;
        expression: expression, jaw and eyes), scaled to a spread of 0.1. Training then
        refines them as NPHM's randomly initialised codes are; starting from the coefficients
        means codes of similar meshes start close, so a few visits per code suffice."""
        c = model.config

        def project(x: np.ndarray, width: int) -> Tensor:
            flat = x.reshape(-1, x.shape[-1])
            std = flat.std(0)
            z = flat / np.where(std > 0, std, 1.0)
            m = torch.randn(z.shape[1], width, generator=generator, dtype=torch.float64)
            q, _ = torch.linalg.qr(m if z.shape[1] >= width else m.T)
            basis = q if z.shape[1] >= width else q.T
            out = torch.as_tensor(z) @ basis[: z.shape[1], :width] * 0.1
            return out.float().reshape(*x.shape[:-1], width)

        I, X = family.n_identities, family.n_expressions
        shape = project(family.shape, c.identity_global + model.n_anchors * c.identity_local)
        motion = np.concatenate(
            [family.expression, family.jaw[..., :1], family.eyes[..., :2]], axis=-1
        )
        return cls(
            shape[:, : c.identity_global].contiguous().requires_grad_(True),
            shape[:, c.identity_global :]
            .reshape(I, model.n_anchors, c.identity_local)
            .contiguous()
            .requires_grad_(True),
            project(motion, c.expression).reshape(I, X, c.expression).requires_grad_(True),
        )


def build_model(
    template: np.ndarray,
    faces: np.ndarray,
    face_vertices: np.ndarray | None,
    config: NphmModelConfig,
) -> tuple[NeuralHeadModel, ModelFrame]:
    """A fresh model for a head model's template.

    Args:
        template: (V, 3) the head model's template (metres).
        faces: (F, 3) its triangles.
        face_vertices: indices of its face region (anchors are denser there), or None.
        config: the sizes.

    Returns:
        ``(model, frame)``: the model (networks' last layers zero: it starts as the template
        prior) and its model units.
    """
    frame = ModelFrame.of_template(template)
    u = frame.to_model(template)
    anchors, network, mirrored = place_anchors(
        u, face_vertices, config.anchor_pairs, config.midline_anchors, midline=0.004 / frame.extent
    )
    prior = (
        template_sdf_grid(u, faces, config.prior_resolution, config.bound)
        if config.template_prior
        else None
    )
    return NeuralHeadModel(config, anchors, network, mirrored, prior, config.bound), frame


def save_model(
    path: PathLike,
    model: NeuralHeadModel,
    frame: ModelFrame,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write a trained model (networks, anchors, prior, sizes, model units) atomically."""
    state = {
        "version": CHECKPOINT_VERSION,
        "config": asdict(model.config),
        "state": model.state_dict(),
        "centre": torch.as_tensor(frame.centre),
        "extent": frame.extent,
        "use_prior": model.use_prior,
        **(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_model(path: PathLike, device: str = "cpu") -> tuple[NeuralHeadModel, ModelFrame]:
    """Read a model written by :func:`save_model` (``torch.load`` with ``weights_only``).

    Raises:
        FittingError: the file is not such a model (naming the file).
    """
    try:
        data = torch.load(Path(path), map_location=device, weights_only=True)
        cfg = NphmModelConfig(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in data["config"].items()}
        )
        state = data["state"]
        prior = state["prior"][0, 0].cpu().numpy() if data["use_prior"] else None
        model = NeuralHeadModel(
            cfg,
            state["anchors"].cpu().numpy(),
            state["network"].cpu().numpy(),
            state["mirrored"].cpu().numpy(),
            prior,
            cfg.bound,
        )
        model.load_state_dict(state)
    except (
        OSError,
        EOFError,
        KeyError,
        RuntimeError,
        TypeError,
        ValueError,
        pickle.UnpicklingError,
    ) as exc:
        raise FittingError(f"{path}: not a talkhead head model checkpoint ({exc})") from exc
    frame = ModelFrame(centre=data["centre"].double().numpy(), extent=float(data["extent"]))
    return model.to(device), frame


def _losses(
    model: NeuralHeadModel,
    codes: HeadModelCodes,
    family: FamilyMeshes,
    cfg: NphmConfig,
    generator: torch.Generator,
    rng: np.random.Generator,
    device: str,
) -> dict[str, Tensor]:
    t = cfg.train
    n = t.points_per_mesh
    ids = rng.choice(
        family.n_identities, size=min(t.batch_identities, family.n_identities), replace=False
    )
    can = {
        k: v.to(device)
        for k, v in sample_canonical(family, ids, n, cfg.model.bound, generator).items()
    }
    zg = codes.identity_global[ids].to(device)
    zl = codes.identity_local[ids].to(device)
    pts = torch.cat([can["surface"], can["near"], can["space"]], dim=1).requires_grad_(True)
    sdf = model.canonical_sdf(pts, zg, zl)
    grad = sdf_gradient(sdf, pts, create_graph=True)
    s_surf, s_near = sdf[:, :n], sdf[:, n : 2 * n]
    g_surf = grad[:, :n]
    cos = torch.nn.functional.cosine_similarity(g_surf, can["normals"], dim=-1)
    terms = {
        "surface": s_surf.abs().mean(),
        "near": (s_near - can["near_sdf"]).abs().mean(),
        "normal": (1 - cos).mean(),
        "eikonal": (grad[:, n:].norm(dim=-1) - 1).pow(2).mean(),
    }
    b = t.batch_expressions
    pid = rng.integers(0, family.n_identities, size=b)
    pex = rng.integers(0, family.n_expressions, size=b)
    pose = {
        k: v.to(device)
        for k, v in sample_posed(family, pid, pex, t.posed_points, t.near_std[0], generator).items()
    }
    e = codes.expression[pid, pex].to(device)
    zgp = codes.identity_global[pid].to(device)
    if model.config.deformation == "backward":
        pred = pose["posed"] + model.deformation(pose["posed"], e, zgp)
        terms["correspondence"] = (pred - pose["canonical"]).norm(dim=-1).mean()
    else:
        pred = pose["canonical"] + model.deformation(pose["canonical"], e, zgp)
        terms["correspondence"] = (pred - pose["posed"]).norm(dim=-1).mean()
    terms["reg_identity"] = zg.pow(2).mean() + zl.pow(2).mean()
    terms["reg_expression"] = e.pow(2).mean()
    return terms


def _save_checkpoint(
    path: Path,
    model: NeuralHeadModel,
    codes: HeadModelCodes,
    optimiser: torch.optim.Optimizer,
    step: int,
    generator: torch.Generator,
    rng: np.random.Generator,
    history: FitHistory,
) -> None:
    state = {
        "step": step,
        "model": model.state_dict(),
        "codes": {k: v.detach().cpu() for k, v in asdict(codes).items()},
        "optimiser": optimiser.state_dict(),
        "generator": generator.get_state(),
        "rng": rng.bit_generator.state["state"]["state"].to_bytes(16, "little"),
        "rng_inc": rng.bit_generator.state["state"]["inc"].to_bytes(16, "little"),
        "history": {
            "steps": history.steps,
            "terms": history.terms,
            "lr_factor": history.lr_factor,
        },
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _restore_rng(rng: np.random.Generator, state: bytes, inc: bytes) -> None:
    st = rng.bit_generator.state
    st["state"] = {
        "state": int.from_bytes(state, "little"),
        "inc": int.from_bytes(inc, "little"),
    }
    rng.bit_generator.state = st


def train_head_model(
    model: NeuralHeadModel,
    family: FamilyMeshes,
    cfg: NphmConfig,
    checkpoint: PathLike | None = None,
    device: str = "cpu",
    on_checkpoint: Callable[[int], None] | None = None,
) -> tuple[HeadModelCodes, FitHistory]:
    """Train ``model`` (in place) on ``family``; resume from ``checkpoint`` when it exists.

    Args:
        model: from :func:`build_model`.
        family: the training meshes (:func:`~talkhead.nphm.data.draw_family`).
        cfg: the ``nphm`` settings.
        checkpoint: file of the running checkpoint (written every ``checkpoint_every`` steps
            and at the end; read first when it exists), or None (no checkpoints).
        device: ``"cpu"`` or ``"cuda"``.
        on_checkpoint: called with the step after each checkpoint is written.

    Returns:
        ``(codes, history)``: the training meshes' codes and the recorded losses (``total``
        and each term, unweighted).

    Raises:
        FittingError: a loss or gradient became NaN or infinite (naming the step and term),
            or the checkpoint belongs to other settings.
    """
    t = cfg.train
    torch.manual_seed(t.seed)
    generator = torch.Generator().manual_seed(t.seed)
    rng = np.random.default_rng(t.seed + 1)
    codes = HeadModelCodes.initial(model, family, generator)
    model.to(device)
    net_params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(
        [
            {"params": net_params, "lr": t.lr},
            {
                "params": [codes.identity_global, codes.identity_local, codes.expression],
                "lr": t.lr_codes,
            },
        ]
    )
    history = FitHistory()
    start_step = 0
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.exists():
        data = torch.load(path, map_location="cpu", weights_only=True)
        try:
            model.load_state_dict(data["model"])
            for name, value in data["codes"].items():
                getattr(codes, name).data.copy_(value)
            optimiser.load_state_dict(data["optimiser"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise FittingError(
                f"{path}: a checkpoint of other settings ({exc}); delete it to start over"
            ) from exc
        generator.set_state(data["generator"])
        _restore_rng(rng, data["rng"], data["rng_inc"])
        start_step = int(data["step"])
        h = data["history"]
        history.steps, history.terms, history.lr_factor = h["steps"], h["terms"], h["lr_factor"]
        log.info("resuming training at step %d/%d from %s", start_step, t.steps, path)
    weights = asdict(t.weights)
    bases = [t.lr, t.lr_codes]
    started = time.perf_counter()
    bar = tqdm(
        range(start_step, t.steps),
        desc="train head model",
        disable=None,
        mininterval=1.0,
        leave=False,
        initial=start_step,
        total=t.steps,
    )
    for step in bar:
        factor = lr_factor(step, t.lr_milestones, t.lr_factors)
        for g, base in zip(optimiser.param_groups, bases, strict=True):
            g["lr"] = base * factor
        optimiser.zero_grad(set_to_none=True)
        terms = _losses(model, codes, family, cfg, generator, rng, device)
        total = sum(
            (weights[k] * v for k, v in terms.items()), start=torch.zeros((), device=device)
        )
        if not torch.isfinite(total):
            bad = [k for k, v in terms.items() if not torch.isfinite(v)]
            raise FittingError(
                f"training diverged at step {step}: loss term(s) {bad or ['total']} not finite; "
                "lower nphm.train.lr"
            )
        total.backward()
        optimiser.step()
        if every(step, t.log_every, last=t.steps - 1):
            values = {k: float(v.detach()) for k, v in terms.items()}
            values["total"] = float(total.detach())
            history.record(step, values, factor)
            log.info(
                "train step %d/%d: %s",
                step,
                t.steps,
                "  ".join(f"{k} {v:.4g}" for k, v in values.items()),
            )
            bar.set_postfix(total=f"{values['total']:.4g}", refresh=False)
        done = step + 1
        if path is not None and (done % t.checkpoint_every == 0 or done == t.steps):
            _save_checkpoint(path, model, codes, optimiser, done, generator, rng, history)
            if on_checkpoint is not None:
                on_checkpoint(done)
    history.seconds = time.perf_counter() - started
    history.n_steps = t.steps - start_step
    return codes, history
