"""Lightning modules of talkhead's models: the losses of a batch, the optimiser, and
inference over a whole clip (:meth:`TalkModule.animate`).

- :class:`FaceTalkModule`: FaceTalk's expression decoder as a Gaussian diffusion over
  standardised codes (``models.facetalk``; the Table-3 variants by ``variant``; as
  ``facetalk_nphm``, always on NPHM expression codes: "Ours (full)"), or without diffusion
  (``facetalk_regression``, "Ours (w/o diffusion)").
- :class:`FaceFormerModule`: the FaceFormer-style baseline on FLAME vertex offsets from the
  subject's template, teacher-forced in training (one pass), autoregressive at inference.
- :class:`MeshTalkModule`: MeshTalk's two stages in one run (the supplement's order): stage 1
  (reconstruction + cross-modality) for ``stage1_fraction`` of the steps, then stage 2 (the
  context model's cross-entropy over the frozen stage-1 codes).

Each module keeps what inference needs in its checkpoint: the normalisers' statistics, the
training subjects' mean template (V, 3) and FLAME identity coefficients, and its settings
(``hparams``), so ``load_module(path)`` rebuilds it without the dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from ..config import from_mapping
from ..io import PathLike
from ..models.baselines.faceformer import FaceFormer, FaceFormerConfig
from ..models.facetalk import (
    DiffusionConfig,
    ExpressionDecoder,
    FaceTalkConfig,
    GaussianDiffusion,
    masked_mse,
    masked_velocity_mse,
    regression_loss,
)
from ..models.meshtalk import (
    MeshTalk,
    MeshTalkConfig,
    demo_config,
    region_weights,
    stage1_loss,
    stage2_loss,
    vertex_statistics,
)
from ..models.normalise import FeatureNorm
from .config import NPHM_MODELS, ModelsConfig

__all__ = [
    "FaceFormerModule",
    "FaceTalkModule",
    "MeshTalkModule",
    "TalkModule",
    "build_module",
    "dataset_target",
    "load_module",
]

#: The dataset target each model trains on (FaceTalk's: its config's ``target``).
_VERTEX_MODELS = ("faceformer", "meshtalk")
#: Regions of the cross-modality loss: the mouth, and the upper face.
MOUTH_REGIONS = ("lips",)
UPPER_REGIONS = ("forehead", "left_eye_region", "right_eye_region")


def dataset_target(kind: str, models: ModelsConfig) -> str:
    """The dataset target (:data:`talkhead.dataset.torch_dataset.TARGETS`) of model ``kind``."""
    if kind in _VERTEX_MODELS:
        return "flame_vertices"
    if kind in NPHM_MODELS:
        return "nphm_expression"
    return models.facetalk.target if kind == "facetalk" else models.facetalk_regression.target


def _features(kind: str, models: ModelsConfig) -> str:
    return models.faceformer.features if kind == "faceformer" else models.facetalk.features


class TalkModule(pl.LightningModule):
    """What the models share: settings, stored statistics, optimiser, logging.

    Args:
        kind: one of :data:`talkhead.training.config.MODELS`.
        models: the ``models`` section as a mapping.
        dims: sizes and context from the dataset: ``audio_dim``, ``target_dim``,
            ``n_vertices``, ``n_shape``, ``n_subjects``, ``fps``, ``target``, ``features``,
            ``audio_features`` (mapping), ``flame_model`` and ``flame_masks`` (paths or "").
    """

    def __init__(self, kind: str, models: dict[str, Any], dims: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.kind = kind
        self.cfg = from_mapping(ModelsConfig, models, "models")
        self.dims = dims
        self.register_buffer("template", torch.zeros(int(dims["n_vertices"]), 3))
        self.register_buffer("shape_code", torch.zeros(int(dims.get("n_shape", 0))))
        self.first_step = 0

    # ---- statistics ------------------------------------------------------------------------

    def fit_statistics(self, arrays: dict[str, list[np.ndarray]]) -> None:
        """Normalisers and stored template from the training sequences
        (:func:`talkhead.training.data.sequence_arrays`)."""
        self.template.copy_(torch.from_numpy(np.mean(arrays["template"], axis=0)))
        if self.shape_code.numel():
            shape = np.mean(arrays["shape"], axis=0)[: self.shape_code.numel()]
            self.shape_code[: shape.size].copy_(torch.from_numpy(shape))

    # ---- training --------------------------------------------------------------------------

    def losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        raise NotImplementedError

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        terms = self.losses(batch)
        B = batch["mask"].shape[0]
        for name, value in terms.items():
            self.log(f"train/{name}", value.detach().float(), on_step=True, batch_size=B)
        self.log("lr", self.optimizers().param_groups[0]["lr"], on_step=True, batch_size=B)
        # the step being trained, 0-based (Lightning's own log step is off by one after a resume)
        self.log("train_step", float(self.global_step), on_step=True, batch_size=B)
        return terms["loss"]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        terms = self.losses(batch)
        self.log("val/loss", terms["loss"].float(), batch_size=batch["mask"].shape[0])

    def on_train_start(self) -> None:
        self.first_step = int(self.global_step)

    def configure_optimizers(self) -> Any:
        t = self.cfg.training
        params = [p for p in self.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
        warm = max(1, t.warmup_steps)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ---- inference -------------------------------------------------------------------------

    @property
    def needs_mel(self) -> bool:
        """Whether the model takes log-mel windows (MeshTalk) instead of per-frame features."""
        return False

    def animate(
        self,
        audio: Tensor,
        n_samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """A whole clip: ``audio`` (T, D) features (or (T, K, n_mels) windows for MeshTalk).

        Returns:
            ``codes`` (K, T, E) what the model generates, and ``vertices`` (K, T, V, 3)
            (model space, metres) where the model outputs vertices itself.
        """
        raise NotImplementedError


class FaceTalkModule(TalkModule):
    """FaceTalk (diffusion; ``kind`` facetalk or facetalk_nphm) or its regression variant
    (``kind`` facetalk_regression)."""

    def __init__(self, kind: str, models: dict[str, Any], dims: dict[str, Any]) -> None:
        super().__init__(kind, models, dims)
        f = self.cfg.facetalk
        self.diffusion_on = kind != "facetalk_regression"
        self.net = ExpressionDecoder(
            FaceTalkConfig(
                expression_dim=int(dims["target_dim"]),
                audio_dim=int(dims["audio_dim"]),
                latent_dim=f.latent_dim,
                n_blocks=f.n_blocks,
                n_heads=f.n_heads,
                ff_dim=f.ff_dim,
                dropout=f.dropout,
                diffusion=self.diffusion_on,
                timestep_injection=f.variant,
            )
        )
        self.diffusion = GaussianDiffusion(
            DiffusionConfig(
                steps=f.diffusion_steps,
                sample_steps=f.sample_steps,
                velocity_weight=f.velocity_weight,
            )
        )
        self.target_norm = FeatureNorm(int(dims["target_dim"]))

    def fit_statistics(self, arrays: dict[str, list[np.ndarray]]) -> None:
        super().fit_statistics(arrays)
        self.net.audio_norm.fit(torch.from_numpy(np.concatenate(arrays["features"])))
        targets = np.concatenate([t.reshape(t.shape[0], -1) for t in arrays["targets"]])
        self.target_norm.fit(torch.from_numpy(targets))

    def losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        x0 = self.target_norm(batch["targets"])
        audio, mask = batch["audio_features"], batch["mask"]
        if self.diffusion_on:
            return self.diffusion.training_terms(self.net, x0, audio, mask)
        weight = self.cfg.facetalk_regression.velocity_weight
        return {"loss": regression_loss(self.net, x0, audio, mask, weight)}

    def animate(
        self, audio: Tensor, n_samples: int = 1, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        self.eval()
        with torch.no_grad():
            if self.diffusion_on:
                x = self.diffusion.sample(
                    self.net, audio[None], k_samples=n_samples, generator=generator
                )[0]
            else:
                x = self.net(None, audio[None]).expand(n_samples, -1, -1)
        return {"codes": self.target_norm.inverse(x)}


class FaceFormerModule(TalkModule):
    """The FaceFormer-style baseline on vertex offsets from the template, in units of their
    root mean square over the training set (``offset_scale``)."""

    def __init__(self, kind: str, models: dict[str, Any], dims: dict[str, Any]) -> None:
        super().__init__(kind, models, dims)
        f = self.cfg.faceformer
        V = int(dims["n_vertices"])
        self.net = FaceFormer(
            FaceFormerConfig(
                audio_dim=int(dims["audio_dim"]),
                output_dim=V * 3,
                latent_dim=f.latent_dim,
                n_heads=f.n_heads,
                n_layers=f.n_layers,
                ff_dim=f.ff_dim,
                dropout=f.dropout,
                period=max(1, round(float(dims["fps"]))),
                n_subjects=int(dims["n_subjects"]),
            )
        )
        self.register_buffer("offset_scale", torch.ones(()))

    def fit_statistics(self, arrays: dict[str, list[np.ndarray]]) -> None:
        super().fit_statistics(arrays)
        self.net.audio_norm.fit(torch.from_numpy(np.concatenate(arrays["features"])))
        offsets = np.concatenate(
            [v - t[None] for v, t in zip(arrays["targets"], arrays["template"], strict=True)]
        )
        self.offset_scale.fill_(max(float(np.sqrt(np.mean(offsets**2))), 1e-5))

    def losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        verts, mask = batch["targets"], batch["mask"]
        offsets = (verts - batch["template"][:, None]).flatten(2) / self.offset_scale
        pred = self.net(batch["audio_features"], offsets, batch["subject_index"], mask)
        mse = masked_mse(pred, offsets, mask)
        vel = masked_velocity_mse(pred, offsets, mask)
        w = self.cfg.faceformer.velocity_weight
        return {"loss": mse + w * vel, "mse": mse, "velocity": vel}

    def animate(
        self, audio: Tensor, n_samples: int = 1, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        self.eval()
        with torch.no_grad():
            out = self.net.generate(audio[None]) * self.offset_scale
        verts = self.template + out.view(1, out.shape[1], -1, 3)
        verts = verts.expand(n_samples, -1, -1, -1)
        return {"codes": out.expand(n_samples, -1, -1), "vertices": verts}


def meshtalk_config(models: ModelsConfig) -> MeshTalkConfig:
    """MeshTalk's sizes for ``models.meshtalk.scale``."""
    return demo_config() if models.meshtalk.scale == "demo" else MeshTalkConfig()


class MeshTalkModule(TalkModule):
    """MeshTalk, stage 1 then stage 2 at step ``stage1_steps``."""

    def __init__(self, kind: str, models: dict[str, Any], dims: dict[str, Any]) -> None:
        super().__init__(kind, models, dims)
        self.net = MeshTalk(meshtalk_config(self.cfg), int(dims["n_vertices"]))
        steps = self.cfg.training.steps
        self.stage1_steps = max(1, min(steps - 1, round(steps * self.cfg.meshtalk.stage1_fraction)))
        V = int(dims["n_vertices"])
        self.register_buffer("mouth_weights", torch.zeros(V))
        self.register_buffer("upper_weights", torch.zeros(V))

    @property
    def needs_mel(self) -> bool:
        return True

    def set_regions(self, masks: dict[str, np.ndarray]) -> bool:
        """Region weights of the cross-modality loss from a head model's masks; False (and
        no cross-modality term) when the masks lack those regions."""
        V = self.mouth_weights.numel()
        try:
            self.mouth_weights.copy_(region_weights(masks, V, MOUTH_REGIONS))
            self.upper_weights.copy_(region_weights(masks, V, UPPER_REGIONS))
        except KeyError:
            return False
        return True

    def fit_statistics(self, arrays: dict[str, list[np.ndarray]]) -> None:
        super().fit_statistics(arrays)
        verts = torch.from_numpy(np.concatenate(arrays["targets"]))
        self.net.set_vertex_statistics(*vertex_statistics(verts))

    def losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        verts, mel, mask = batch["targets"], batch["mel_windows"], batch["mask"]
        if self.global_step < self.stage1_steps and not self.net.stage1_frozen:
            regions = self.mouth_weights.sum() > 0 and self.cfg.meshtalk.cross_modality_weight > 0
            terms = stage1_loss(
                self.net,
                verts,
                mel,
                batch["template"],
                mask,
                self.mouth_weights if regions else None,
                self.upper_weights if regions else None,
                cross_modality_weight=self.cfg.meshtalk.cross_modality_weight,
            )
            return {**terms, "stage": torch.ones(())}
        if not self.net.stage1_frozen:
            self.net.freeze_stage1()
        terms = stage2_loss(self.net, verts, mel, mask)
        return {**terms, "stage": torch.full((), 2.0)}

    def animate(
        self, audio: Tensor, n_samples: int = 1, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        self.eval()
        out = self.net.sample(
            audio[None].expand(n_samples, -1, -1, -1),
            self.template[None].expand(n_samples, -1, -1),
            temperature=self.cfg.meshtalk.temperature,
            generator=generator,
        )
        return {"codes": out["labels"].to(torch.float32), "vertices": out["vertices"]}


_CLASSES = {
    "facetalk": FaceTalkModule,
    "facetalk_regression": FaceTalkModule,
    "faceformer": FaceFormerModule,
    "meshtalk": MeshTalkModule,
    "facetalk_nphm": FaceTalkModule,
}


def build_module(kind: str, models: dict[str, Any], dims: dict[str, Any]) -> TalkModule:
    """A fresh module of model ``kind``.

    Raises:
        ValueError: an unknown ``kind``.
    """
    if kind not in _CLASSES:
        raise ValueError(f"unknown model {kind!r}: one of {', '.join(_CLASSES)}")
    return _CLASSES[kind](kind, models, dims)


def _read_failure(exc: BaseException) -> str:
    """A reader's exception as a short one-line reason: its type and its message on one line,
    cut at 160 characters (of the weights-only unpickler's long advice, only its own part)."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    text = " ".join(text.split())
    text = text.split(" Check the documentation of torch.load")[0].strip()
    if len(text) > 160:
        text = text[:157].rstrip() + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def load_module(path: PathLike, map_location: str = "cpu") -> TalkModule:
    """A trained module from its checkpoint (``model.ckpt`` or ``last.ckpt``).

    Raises:
        ModelFileError: ``<path>: model checkpoint is missing``, or ``<path>: not a talkhead
            model checkpoint (<reason>)`` for any file that does not read as one (another
            format, a truncated file, a torch file without talkhead's entries).
    """
    from ..errors import ModelFileError

    if not Path(path).exists():
        raise ModelFileError(f"{path}: model checkpoint is missing")

    def refuse(reason: str) -> ModelFileError:
        return ModelFileError(f"{path}: not a talkhead model checkpoint ({reason})")

    try:
        ckpt = torch.load(str(path), map_location=map_location, weights_only=True)
    except Exception as exc:  # the unpickler raises anything on a file of another format
        raise refuse(f"torch.load cannot read it: {_read_failure(exc)}") from None
    if not isinstance(ckpt, dict):
        raise refuse(f"holds a {type(ckpt).__name__}, not a checkpoint's dict")
    lacks = [k for k in ("hyper_parameters", "state_dict") if k not in ckpt]
    if lacks:
        raise refuse(f"lacks {' and '.join(repr(k) for k in lacks)}")
    try:
        hp = ckpt["hyper_parameters"]
        module = build_module(hp["kind"], hp["models"], hp["dims"])
        module.load_state_dict(ckpt["state_dict"])
    except Exception as exc:  # hyper-parameters or weights of another shape
        raise refuse(_read_failure(exc)) from None
    module.first_step = int(ckpt.get("global_step", 0))
    if isinstance(module, MeshTalkModule) and module.first_step >= module.stage1_steps:
        module.net.freeze_stage1()
    return module.eval()
