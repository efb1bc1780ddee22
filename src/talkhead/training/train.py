"""Train one model on the packaged dataset: :func:`train_model`.

Seeded (``models.training.seed``: weights, batch order, diffusion noise); on the CPU in 32-bit,
on GPUs in bf16 mixed precision, with DDP when given several; ``last.ckpt`` every
``checkpoint_every`` steps, from which a rerun after an interruption resumes (the step count,
optimiser and learning-rate schedule continue); the final weights in ``model.ckpt`` (a slim
checkpoint: settings, weights, step; :func:`talkhead.training.modules.load_module`); losses in
``losses.csv`` (CSVLogger, merged over resumed runs) and figures in ``metrics.json``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import from_mapping, to_mapping
from ..flame.model import load_flame_model
from ..io import PathLike, atomic_path, save_json
from .config import ModelsConfig
from .data import TalkingFaceDataModule, sequence_arrays
from .modules import MeshTalkModule, TalkModule, build_module, dataset_target, meshtalk_config

__all__ = ["CHECKPOINT_DIR", "merge_losses", "train_model"]

log = logging.getLogger(__name__)

#: Lightning's checkpoints (last.ckpt) and CSV logs, inside a model's output folder.
CHECKPOINT_DIR = "checkpoints"


def _devices(gpus: int) -> tuple[str, int, str]:
    """(accelerator, devices, precision) for ``gpus`` asked-for GPUs."""
    if gpus > 0 and torch.cuda.is_available():
        return "gpu", min(gpus, torch.cuda.device_count()), "bf16-mixed"
    if gpus > 0:
        log.warning("the job asked for %d GPU(s) but torch sees none: training on the CPU", gpus)
    return "cpu", 1, "32-true"


def merge_losses(log_dir: Path, out: Path) -> list[dict[str, float]]:
    """The CSVLogger's ``metrics.csv`` of every run under ``log_dir`` (a resumed run is a new
    version) merged by the trained step (``train_step``, 0-based; Lightning's ``step`` for
    validation rows), later runs winning, written to ``out``; returns the rows."""
    rows: dict[int, dict[str, float]] = {}
    for path in sorted(log_dir.glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name[8:])):
        with path.open(newline="") as fh:
            for rec in csv.DictReader(fh):
                step = int(float(rec.get("train_step") or rec["step"]))
                row = rows.setdefault(step, {"step": step})
                for key, value in rec.items():
                    if key not in ("step", "train_step") and value not in ("", None):
                        row[key] = float(value)
    table = [rows[s] for s in sorted(rows)]
    keys = ["step", *sorted({k for r in table for k in r} - {"step"})]
    with atomic_path(out, suffix=".csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(table)
    return table


def trainer_rank_zero() -> bool:
    """Whether this process is the first of a distributed run (or the only one)."""
    import os

    return (
        int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0
    )


def _fingerprint(kind: str, cfg: ModelsConfig, dims: dict, dataset_root: PathLike) -> dict:
    """What a resumable ``last.ckpt`` must share with this run: the model, its settings
    (except the step count, which a resumed run may raise), the data's sizes and the dataset's
    manifest. Anything else starts training from scratch."""
    settings = to_mapping(cfg)
    settings["training"] = {k: v for k, v in settings["training"].items() if k != "steps"}
    manifest = Path(dataset_root) / "manifest.csv"
    digest = hashlib.sha1(manifest.read_bytes()).hexdigest() if manifest.is_file() else ""
    fingerprint = {"model": kind, "models": settings, "dims": dims, "manifest_sha1": digest}
    return json.loads(json.dumps(fingerprint))  # as read back from settings.json


def _dims(dm: TalkingFaceDataModule, kind: str, models: ModelsConfig, extra: dict) -> dict:
    ds = dm.train_set
    first = ds.sequence(next(iter(ds.rows)))
    return {
        "audio_dim": int(first["features"].shape[-1]),
        "target_dim": int(np.prod(first["targets"].shape[1:])),
        "n_vertices": int(first["template"].shape[0]),
        "n_subjects": len(ds.subjects),
        "fps": float(next(iter(ds.rows.values()))["fps"]),
        "target": dataset_target(kind, models),
        "features": ds.features,
        **extra,
    }


def train_model(
    dataset_root: PathLike,
    kind: str,
    out_dir: PathLike,
    models: Mapping[str, Any] | ModelsConfig | None = None,
    audio_features: Mapping[str, Any] | None = None,
    flame_model: PathLike | None = None,
    flame_masks: PathLike | None = None,
    gpus: int = 0,
    progress_bar: bool | None = None,
    max_steps: int | None = None,
) -> dict[str, Any]:
    """Train model ``kind`` (:data:`talkhead.training.config.MODELS`) into ``out_dir``.

    Resumes from ``out_dir/checkpoints/last.ckpt`` when it exists and was written with the
    same settings (``models.training.steps`` aside) on the same dataset (``settings.json``
    beside it); otherwise the checkpoints are cleared and training starts from scratch.

    Args:
        dataset_root: the packaged dataset (``results/dataset``).
        kind: the model.
        out_dir: ``results/models/<kind>``: model.ckpt, metrics.json, losses.csv.
        models: the ``models`` config section.
        audio_features: the ``audio_features`` section (MeshTalk's log-mel settings).
        flame_model, flame_masks: the head model files (vertex targets, meshes at inference;
            masks: MeshTalk's cross-modality regions).
        gpus: GPUs the job was given (0: CPU; several: DDP).
        progress_bar: show Lightning's bar (None: when stderr is a terminal).
        max_steps: stop at this step instead of ``models.training.steps`` (a partial run,
            e.g. to test resuming).

    Returns:
        The figures written to ``metrics.json``.

    Raises:
        DatasetError: the dataset lacks what the model needs.
        ConfigError: invalid settings.
    """
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger

    cfg = (
        models if isinstance(models, ModelsConfig) else from_mapping(ModelsConfig, models, "models")
    )
    t = cfg.training
    out = Path(out_dir)
    ckpt_dir = out / CHECKPOINT_DIR
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(t.seed, workers=True, verbose=False)
    target = dataset_target(kind, cfg)
    features = cfg.faceformer.features if kind == "faceformer" else cfg.facetalk.features
    dm = TalkingFaceDataModule(
        dataset_root,
        target=target,
        features=features,
        batch_size=t.batch_size,
        window_frames=t.window_frames,
        window_stride=t.window_stride,
        flame_model=flame_model,
        vertex_space=t.vertex_space,
        mel=meshtalk_config(cfg) if kind == "meshtalk" else None,
        audio_features=audio_features,
        seed=t.seed,
    )
    dm.setup()
    n_shape = 0
    masks: dict[str, np.ndarray] = {}
    if flame_model:
        head = load_flame_model(flame_model, masks_path=flame_masks or None)
        n_shape, masks = head.num_shape, head.masks
    dims = _dims(
        dm,
        kind,
        cfg,
        {
            "n_shape": n_shape,
            "audio_features": dict(audio_features or {}),
            "flame_model": str(flame_model or ""),
            "flame_masks": str(flame_masks or ""),
            "vertex_space": t.vertex_space,
        },
    )
    module: TalkModule = build_module(kind, to_mapping(cfg), dims)
    module.fit_statistics(sequence_arrays(dm.train_set))
    if isinstance(module, MeshTalkModule) and not module.set_regions(masks):
        log.warning("the head model's masks lack lips/forehead/eye regions: no cross-modality loss")

    accelerator, devices, precision = _devices(gpus)
    strategy: Any = "auto"
    if devices > 1:
        strategy = "ddp_find_unused_parameters_true" if kind == "meshtalk" else "ddp"
    last = ckpt_dir / "last.ckpt"
    fingerprint = _fingerprint(kind, cfg, dims, dataset_root)
    stamp = ckpt_dir / "settings.json"
    if last.is_file() and (not stamp.is_file() or json.loads(stamp.read_text()) != fingerprint):
        log.info("%s: %s is of other settings or data: training from scratch", kind, last)
        shutil.rmtree(ckpt_dir)
        ckpt_dir.mkdir(parents=True)
    if trainer_rank_zero():
        save_json(stamp, fingerprint)
    resume = str(last) if last.is_file() else None
    steps = max_steps or t.steps
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        precision=precision,
        max_steps=steps,
        max_epochs=-1,
        gradient_clip_val=t.grad_clip or None,
        deterministic=accelerator == "cpu",
        logger=CSVLogger(str(ckpt_dir), name="logs"),
        log_every_n_steps=t.log_every,
        callbacks=[
            ModelCheckpoint(
                dirpath=str(ckpt_dir),
                save_last=True,
                save_top_k=0,
                every_n_train_steps=t.checkpoint_every,
            )
        ],
        enable_progress_bar=sys.stderr.isatty() if progress_bar is None else progress_bar,
        enable_model_summary=False,
        check_val_every_n_epoch=None,
        val_check_interval=t.checkpoint_every if dm.val_set is not None else None,
        limit_val_batches=None if dm.val_set is not None else 0,
        num_sanity_val_steps=0,
    )
    if resume:
        log.info("%s: resuming from %s", kind, resume)
    start = time.perf_counter()
    trainer.fit(module, datamodule=dm, ckpt_path=resume, weights_only=True)
    wall = time.perf_counter() - start
    trainer.save_checkpoint(str(last))
    if trainer.global_rank != 0:
        return {}
    slim = {
        "hyper_parameters": {"kind": kind, "models": to_mapping(cfg), "dims": dims},
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "global_step": int(trainer.global_step),
    }
    with atomic_path(out / "model.ckpt", suffix=".ckpt") as tmp:
        torch.save(slim, tmp)
    table = merge_losses(ckpt_dir / "logs", out / "losses.csv")
    trained = int(trainer.global_step) - module.first_step
    final: dict[str, float] = {}
    for row in table:  # each logged figure's last value
        final.update({k: v for k, v in row.items() if k.startswith(("train/", "val/"))})
    metrics = {
        "model": kind,
        "target": target,
        "features": features,
        "steps": int(trainer.global_step),
        "resumed_from_step": module.first_step,
        "n_parameters": int(sum(p.numel() for p in module.parameters())),
        "n_train_windows": len(dm.train_set),
        "n_val_windows": len(dm.val_set) if dm.val_set is not None else 0,
        "batch_size": t.batch_size,
        "device": accelerator,
        "devices": devices,
        "precision": precision,
        "wall_s": wall,
        "steps_per_s": trained / wall if wall > 0 else 0.0,
        "windows_per_s": trained * t.batch_size * devices / wall if wall > 0 else 0.0,
        **{f"final_{k.replace('train/', '').replace('/', '_')}": v for k, v in final.items()},
    }
    save_json(out / "metrics.json", metrics)
    return metrics
