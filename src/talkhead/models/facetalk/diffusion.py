"""Gaussian diffusion over sequences of expression codes (FaceTalk's generative model).

The supplement gives the denoiser (the expression decoder) but none of the diffusion's
settings; :class:`~talkhead.models.facetalk.config.DiffusionConfig` makes them explicit, with
these defaults and reasons:

- **1000 steps** in training: what EDGE and FaceDiffuser (500/1000) use, the public projects
  closest to FaceTalk; the timestep embedder encodes integers 0..999.
- **Cosine schedule** (Nichol & Dhariwal 2021; FaceDiffuser): the linear DDPM schedule destroys
  a low-dimensional signal such as a 200-d code within the first few hundred steps, so most
  steps would train on pure noise.
- **The network predicts x0**, the clean sequence, as motion-diffusion models do (MDM, EDGE,
  FaceDiffuser): losses on geometry (velocity here; vertices or lip distances in a training
  module) apply to the prediction directly. ``eps`` is an option.
- **DDIM sampling with 50 steps** by default (``eta`` 1: fresh noise at each step, close to
  ancestral DDPM on the sub-sequence): 20x fewer network calls than the 1000 DDPM ancestral
  steps, which remain available (``sampler: ddpm``). Diversity comes from the start noise and
  the per-step noise; ``eta`` 0 keeps only the former.
- **Classifier-free guidance** optional: audio dropped with ``cond_drop_prob`` in training
  (replaced by the decoder's learned null audio), guided sampling
  ``x0 = uncond + w (cond - uncond)`` with ``guidance_scale`` w (EDGE: 0.25 and 2). Off by
  default: lip sync is carried by the audio and a guided sample costs two network calls.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ...config import check
from .config import DiffusionConfig
from .losses import masked_mse, masked_velocity_mse

__all__ = ["GaussianDiffusion", "cosine_betas", "linear_betas"]


def cosine_betas(n_steps: int, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """(N,) float64 betas of the cosine schedule ``alpha_bar(t) = cos^2(((t / N) + s) / (1 + s)
    * pi / 2)`` (Nichol & Dhariwal 2021, eq. 17), each clipped to ``max_beta``."""

    def alpha_bar(t: float) -> float:
        return math.cos((t / n_steps + s) / (1 + s) * math.pi / 2) ** 2

    betas = [min(1 - alpha_bar(i + 1) / alpha_bar(i), max_beta) for i in range(n_steps)]
    return torch.tensor(betas, dtype=torch.float64)


def linear_betas(n_steps: int) -> Tensor:
    """(N,) float64 betas of DDPM's linear schedule, 1e-4 .. 0.02 at 1000 steps (scaled by
    1000 / N for other step counts, as improved DDPM does)."""
    scale = 1000.0 / n_steps
    return torch.linspace(scale * 1e-4, scale * 0.02, n_steps, dtype=torch.float64)


class GaussianDiffusion(nn.Module):
    """Forward noising, training loss and samplers (see the module for the choices).

    The schedule lives in buffers, so ``.to(device)`` moves it with a model. The denoiser is
    called as ``model(x_t, audio, t, mask=mask, drop_audio=drop)`` and returns (B, T, E): an
    :class:`~talkhead.models.facetalk.decoder.ExpressionDecoder` with ``diffusion`` true.

    Args:
        config: :class:`DiffusionConfig`.

    Raises:
        ConfigError: ``config`` breaks its constraints.
    """

    def __init__(self, config: DiffusionConfig | None = None) -> None:
        super().__init__()
        self.config = config = check(config or DiffusionConfig())
        N = config.steps
        betas = cosine_betas(N) if config.schedule == "cosine" else linear_betas(N)
        ac = torch.cumprod(1.0 - betas, dim=0)
        ac_prev = torch.cat([torch.ones(1, dtype=torch.float64), ac[:-1]])
        post_var = betas * (1.0 - ac_prev) / (1.0 - ac)
        buffers = {
            "betas": betas,
            "alphas_cumprod": ac,
            "alphas_cumprod_prev": ac_prev,
            "posterior_variance": post_var,
            "posterior_mean_x0": betas * ac_prev.sqrt() / (1.0 - ac),
            "posterior_mean_xt": (1.0 - ac_prev) * (1.0 - betas).sqrt() / (1.0 - ac),
        }
        for name, value in buffers.items():
            self.register_buffer(name, value.to(torch.float32), persistent=False)

    @property
    def n_steps(self) -> int:
        """N, the training steps."""
        return self.config.steps

    @staticmethod
    def _at(values: Tensor, t: Tensor, like: Tensor) -> Tensor:
        """values[t] (B,) broadcast to ``like`` (B, ...)."""
        return values[t].to(like.dtype).view(-1, *([1] * (like.ndim - 1)))

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise.

        Args:
            x0: (B, ...) clean data.
            t: (B,) integer timesteps in [0, N).
            noise: like ``x0``, standard normal.
        """
        ab = self._at(self.alphas_cumprod, t, x0)
        return ab.sqrt() * x0 + (1.0 - ab).sqrt() * noise

    def predict_x0(self, out: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """The clean data the network's output ``out`` stands for (``out`` itself for x0
        prediction; ``(x_t - sqrt(1 - ab) eps) / sqrt(ab)`` for eps prediction)."""
        if self.config.prediction == "x0":
            return out
        ab = self._at(self.alphas_cumprod, t, x_t)
        return (x_t - (1.0 - ab).sqrt() * out) / ab.sqrt()

    # ----------------------------------------------------------------------------------------
    # training

    def training_terms(
        self,
        model: nn.Module,
        x0: Tensor,
        audio: Tensor,
        mask: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """The loss and its terms for a batch, at uniformly drawn timesteps.

        Args:
            model: the denoiser.
            x0: (B, T, E) clean codes.
            audio: (B, S, A) audio features.
            mask: (B, T) bool valid frames (padding adds nothing to the loss), or None.
            generator: for the timesteps, noise and condition dropping (None: global RNG).

        Returns:
            ``loss`` (the weighted sum), ``simple`` (masked MSE of the prediction against x0 or
            the noise), ``velocity`` (of the x0 estimate; 0 when its weight is 0).
        """
        cfg = self.config
        B, dev = x0.shape[0], x0.device
        t = torch.randint(0, cfg.steps, (B,), device=dev, generator=generator)
        noise = torch.randn(x0.shape, device=dev, dtype=x0.dtype, generator=generator)
        x_t = self.q_sample(x0, t, noise)
        drop = None
        if cfg.cond_drop_prob > 0:
            drop = torch.rand(B, device=dev, generator=generator) < cfg.cond_drop_prob
        out = model(x_t, audio, t, mask=mask, drop_audio=drop)
        target = x0 if cfg.prediction == "x0" else noise
        simple = masked_mse(out, target, mask)
        velocity = torch.zeros((), device=dev)
        if cfg.velocity_weight > 0:
            velocity = masked_velocity_mse(self.predict_x0(out, x_t, t), x0, mask)
        return {
            "loss": simple + cfg.velocity_weight * velocity,
            "simple": simple,
            "velocity": velocity,
        }

    def training_loss(
        self,
        model: nn.Module,
        x0: Tensor,
        audio: Tensor,
        mask: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """() the training loss of :meth:`training_terms`."""
        return self.training_terms(model, x0, audio, mask, generator)["loss"]

    # ----------------------------------------------------------------------------------------
    # sampling

    def denoise(
        self,
        model: nn.Module,
        x_t: Tensor,
        t: Tensor,
        audio: Tensor,
        mask: Tensor | None = None,
        guidance_scale: float = 1.0,
    ) -> Tensor:
        """(B, T, E) the x0 estimate at ``x_t`` (B, T, E), timesteps ``t`` (B,), with
        classifier-free guidance when ``guidance_scale`` is not 1."""
        if guidance_scale == 1.0:
            return self.predict_x0(model(x_t, audio, t, mask=mask), x_t, t)
        B = x_t.shape[0]
        drop = torch.arange(2 * B, device=x_t.device) >= B
        m = None if mask is None else torch.cat([mask, mask])
        out = model(
            torch.cat([x_t, x_t]),
            torch.cat([audio, audio]),
            torch.cat([t, t]),
            mask=m,
            drop_audio=drop,
        )
        x0 = self.predict_x0(out, torch.cat([x_t, x_t]), torch.cat([t, t]))
        cond, uncond = x0[:B], x0[B:]
        return uncond + guidance_scale * (cond - uncond)

    def sample(
        self,
        model: nn.Module,
        audio: Tensor,
        n_frames: int | None = None,
        k_samples: int = 1,
        generator: torch.Generator | None = None,
        mask: Tensor | None = None,
        sampler: str | None = None,
        steps: int | None = None,
        eta: float | None = None,
        guidance_scale: float | None = None,
    ) -> Tensor:
        """Draw ``k_samples`` expression sequences per audio clip.

        The model runs in eval mode (no dropout) and without gradients; its mode is restored.
        Samples differ by their noise: the same generator state gives the same samples.

        Args:
            model: the denoiser (``model.config.expression_dim`` gives E).
            audio: (B, S, A) audio features.
            n_frames: T (default S: features aligned one per frame).
            k_samples: K samples per clip.
            generator: the noise's random generator (on the audio's device; None: global RNG).
            mask: (B, T) bool valid frames, or None.
            sampler, steps, eta, guidance_scale: override the config's ``sampler``,
                ``sample_steps``, ``eta`` and ``guidance_scale``.

        Returns:
            (B, K, T, E) samples (x0 of the last step).

        Raises:
            ValueError: an unknown sampler, ``k_samples`` < 1.
        """
        cfg = self.config
        sampler = sampler or cfg.sampler
        if sampler not in ("ddim", "ddpm"):
            raise ValueError(f"GaussianDiffusion.sample: unknown sampler {sampler!r}")
        if k_samples < 1:
            raise ValueError(f"GaussianDiffusion.sample: k_samples must be >= 1, got {k_samples}")
        steps = steps or cfg.sample_steps
        eta = cfg.eta if eta is None else eta
        w = cfg.guidance_scale if guidance_scale is None else guidance_scale
        B, S, _ = audio.shape
        T = n_frames or S
        E = model.config.expression_dim
        audio_k = audio.repeat_interleave(k_samples, dim=0)
        mask_k = None if mask is None else mask.repeat_interleave(k_samples, dim=0)
        shape = (B * k_samples, T, E)
        dev, dtype = audio.device, audio.dtype
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                x = torch.randn(shape, device=dev, dtype=dtype, generator=generator)
                if sampler == "ddpm":
                    x = self._ddpm(model, x, audio_k, mask_k, w, generator)
                else:
                    x = self._ddim(model, x, audio_k, mask_k, w, steps, eta, generator)
        finally:
            model.train(was_training)
        return x.view(B, k_samples, T, E)

    def _ddpm(
        self,
        model: nn.Module,
        x: Tensor,
        audio: Tensor,
        mask: Tensor | None,
        w: float,
        generator: torch.Generator | None,
    ) -> Tensor:
        """Ancestral sampling over all N steps (posterior variance beta-tilde)."""
        for i in reversed(range(self.n_steps)):
            t = torch.full((x.shape[0],), i, device=x.device, dtype=torch.long)
            x0 = self.denoise(model, x, t, audio, mask, w)
            mean = self._at(self.posterior_mean_x0, t, x) * x0
            mean = mean + self._at(self.posterior_mean_xt, t, x) * x
            if i == 0:
                return mean
            z = torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator)
            x = mean + self._at(self.posterior_variance, t, x).sqrt() * z
        return x

    def _ddim(
        self,
        model: nn.Module,
        x: Tensor,
        audio: Tensor,
        mask: Tensor | None,
        w: float,
        steps: int,
        eta: float,
        generator: torch.Generator | None,
    ) -> Tensor:
        """DDIM (Song et al. 2021, eq. 12) over ``steps`` evenly spaced timesteps."""
        times = torch.linspace(self.n_steps - 1, 0, min(steps, self.n_steps)).round().long()
        times = torch.unique_consecutive(times).tolist()
        ac = self.alphas_cumprod
        x0 = x
        for j, i in enumerate(times):
            t = torch.full((x.shape[0],), i, device=x.device, dtype=torch.long)
            x0 = self.denoise(model, x, t, audio, mask, w)
            if j == len(times) - 1:
                break
            ab = ac[i].to(x.dtype)
            ab_prev = ac[times[j + 1]].to(x.dtype)
            eps = (x - ab.sqrt() * x0) / (1.0 - ab).sqrt()
            sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).sqrt()
            x = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma**2).clamp_min(0).sqrt() * eps
            if eta > 0:
                z = torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator)
                x = x + sigma * z
        return x0
