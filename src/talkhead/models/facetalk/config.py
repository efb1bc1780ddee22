"""Settings of the FaceTalk expression decoder and of its Gaussian diffusion.

The defaults are the paper's full scale (FaceTalk supplement B: 4 decoder blocks, latent 256,
8 heads, feed-forward 1024, NPHM expression codes of 200 dimensions, FiLM timestep injection);
the demo scale (config/config.yaml) shrinks them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...config import option

__all__ = ["INJECTIONS", "DiffusionConfig", "FaceTalkConfig"]

#: The five ways of injecting the diffusion timestep of FaceTalk's Table 3 / Fig. 3:
#: (a) input, (b) scale_shift, (c) film, (d) squeeze_excite, (e) dot_product.
INJECTIONS = ("input", "scale_shift", "squeeze_excite", "dot_product", "film")


@dataclass(frozen=True)
class FaceTalkConfig:
    """FaceTalk's expression decoder: audio features -> expression codes (supplement B)."""

    expression_dim: int = option(
        200, "Size of a frame's expression code (NPHM: 200; FLAME: expression + 3 jaw).", minimum=1
    )
    audio_dim: int = option(
        768, "Size of a frame's audio feature (wav2vec2-base: 768; log-mel: 80).", minimum=1
    )
    latent_dim: int = option(256, "Width of the decoder (FaceTalk: 256).", minimum=2)
    n_blocks: int = option(4, "Decoder blocks (FaceTalk: 4).", minimum=1)
    n_heads: int = option(8, "Attention heads; must divide latent_dim (FaceTalk: 8).", minimum=1)
    ff_dim: int = option(
        1024, "Hidden size of each block's feed-forward (FaceTalk: 1024).", minimum=1
    )
    dropout: float = option(0.1, "Dropout in attention and feed-forward.", minimum=0, maximum=0.9)
    diffusion: bool = option(
        True,
        "A diffusion model over expression sequences; false: the regression variant "
        "('Ours (w/o diffusion)': no noisy input, no timestep).",
    )
    timestep_injection: str = option(
        "film",
        "How the diffusion timestep enters the decoder (Table 3; FaceTalk: film).",
        choices=INJECTIONS,
    )
    self_attention: str = option(
        "full",
        "Frames see all frames (full) or only earlier ones (causal); the paper does not say.",
        choices=("full", "causal"),
    )
    cross_attention: str = option(
        "aligned",
        "Frames see the audio within audio_window frames of their time (aligned) or all of it.",
        choices=("aligned", "full"),
    )
    audio_window: int = option(
        4, "aligned: audio frames each side a frame sees (4 at 25 fps: +-160 ms).", minimum=0
    )
    position: str = option(
        "rope",
        "Frame order: rope (rotary, relative; EDGE), alibi (distance bias) or sinusoidal "
        "(absolute); all work for any length.",
        choices=("rope", "alibi", "sinusoidal"),
    )

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules, as ``(field, message)`` pairs."""
        out = []
        if self.latent_dim % self.n_heads:
            out.append(("n_heads", f"must divide latent_dim ({self.latent_dim})"))
        if self.latent_dim % 2:
            out.append(("latent_dim", "must be even (sinusoidal encodings)"))
        return out


@dataclass(frozen=True)
class DiffusionConfig:
    """FaceTalk's Gaussian diffusion; the supplement leaves all of it open (see
    :class:`talkhead.models.facetalk.diffusion.GaussianDiffusion` for the reasons)."""

    steps: int = option(1000, "Diffusion steps in training (EDGE, FaceDiffuser: 1000).", minimum=2)
    schedule: str = option(
        "cosine",
        "Noise schedule: cosine (Nichol & Dhariwal 2021) or linear (DDPM).",
        choices=("cosine", "linear"),
    )
    prediction: str = option(
        "x0",
        "What the network predicts: x0 (the clean sequence) or eps (the noise).",
        choices=("x0", "eps"),
    )
    sampler: str = option(
        "ddim",
        "Sampler: ddim (sample_steps steps) or ddpm (ancestral, all steps).",
        choices=("ddim", "ddpm"),
    )
    sample_steps: int = option(50, "ddim: denoising steps when sampling.", minimum=1)
    eta: float = option(
        1.0,
        "ddim: noise per step (0: deterministic given the start noise; 1: DDPM-like).",
        minimum=0,
    )
    velocity_weight: float = option(
        0.0,
        "Weight of the frame-to-frame velocity loss (x0 prediction only; EDGE: 2.964).",
        minimum=0,
    )
    cond_drop_prob: float = option(
        0.0,
        "Training: probability of dropping the audio (classifier-free guidance; EDGE 0.25).",
        minimum=0,
        maximum=1,
    )
    guidance_scale: float = option(
        1.0,
        "Sampling: classifier-free guidance weight (1: none; EDGE: 2); needs cond_drop_prob.",
        minimum=0,
    )
