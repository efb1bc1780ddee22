"""FaceTalk's expression decoder, timestep injections and Gaussian diffusion (models/facetalk)."""

from __future__ import annotations

import math

import pytest
import torch

from talkhead.errors import ConfigError
from talkhead.models.attention import alignment_mask, attention_bias, causal_mask
from talkhead.models.facetalk import (
    INJECTIONS,
    DecoderBlock,
    DiffusionConfig,
    ExpressionDecoder,
    FaceTalkConfig,
    FiLM,
    GaussianDiffusion,
    ScaleShift,
    SqueezeExcite,
    TimestepAttention,
    TimestepEmbedder,
    regression_loss,
)
from talkhead.models.normalise import FeatureNorm
from talkhead.models.positional import periodic_encoding, rotary, sinusoidal_encoding

E, A = 6, 10


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one thread is faster than two on shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small(**kw) -> FaceTalkConfig:
    base = dict(
        expression_dim=E,
        audio_dim=A,
        latent_dim=32,
        n_blocks=2,
        n_heads=4,
        ff_dim=64,
        dropout=0.0,
    )
    return FaceTalkConfig(**{**base, **kw})


def decoder(seed: int = 0, **kw) -> ExpressionDecoder:
    torch.manual_seed(seed)
    return ExpressionDecoder(small(**kw)).eval()


# ---------------------------------------------------------------------------------------------
# encodings and the timestep embedder


def test_sinusoidal_encoding_is_the_supplement_formula_for_any_position():
    d = 8
    pos = torch.tensor([0.0, 3.0, 12345.0])
    pe = sinusoidal_encoding(pos, d)
    assert pe.shape == (3, d)
    for k, p in enumerate(pos.tolist()):
        for i in range(d // 2):
            angle = p / 10000 ** (2 * i / d)
            assert pe[k, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-4)
            assert pe[k, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-4)
    with pytest.raises(ValueError):
        sinusoidal_encoding(pos, 7)


def test_periodic_encoding_repeats_with_its_period():
    pe = periodic_encoding(100, 16, period=25)
    assert torch.equal(pe[3], pe[28]) and torch.equal(pe[3], pe[78])
    assert not torch.allclose(pe[3], pe[4])


def test_timestep_embedder_shape_and_depends_on_t():
    torch.manual_seed(0)
    emb = TimestepEmbedder(32)
    out = emb(torch.tensor([0, 1, 500]))
    assert out.shape == (3, 32)
    assert (out[0] - out[1]).abs().max() > 1e-4 and (out[1] - out[2]).abs().max() > 1e-4
    assert isinstance(emb.mlp[1], torch.nn.SiLU) and len(emb.mlp) == 3


def test_rotary_scores_depend_on_the_offset_and_its_sign():
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(p: float, r: float) -> float:
        return (rotary(q, torch.tensor([p])) * rotary(k, torch.tensor([r]))).sum().item()

    assert score(3, 1) == pytest.approx(score(1503, 1501), abs=1e-4)  # same offset, any place
    assert abs(score(3, 1) - score(1, 3)) > 1e-3  # the sign of the offset matters


def test_feature_norm_standardises_valid_frames_and_is_saved():
    x = torch.randn(3, 10, 4) * torch.tensor([1.0, 10.0, 0.1, 5.0]) + 7.0
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[:, 8:] = False
    x[~mask] = 1e6  # padding must not enter the statistics
    norm = FeatureNorm(4).fit(x, mask)
    y = norm(x)[mask]
    assert torch.allclose(y.mean(0), torch.zeros(4), atol=1e-4)
    assert torch.allclose(y.std(0, unbiased=False), torch.ones(4), atol=1e-4)
    assert torch.allclose(norm.inverse(norm(x[mask])), x[mask], atol=1e-3)
    assert "audio_norm.mean" in decoder().state_dict()


# ---------------------------------------------------------------------------------------------
# injections


def test_film_is_mish_linear_and_modulates_as_one_plus_gamma():
    torch.manual_seed(0)
    film = FiLM(4)
    assert isinstance(film.net[0], torch.nn.Mish)
    x, t = torch.randn(2, 5, 4), torch.randn(2, 4)
    torch.nn.init.zeros_(film.net[1].weight)
    torch.nn.init.zeros_(film.net[1].bias)
    assert torch.allclose(film(x, t), x)  # gamma = beta = 0: identity
    film.net[1].bias.data[:4] = 1.0  # gamma = 1
    film.net[1].bias.data[4:] = 0.5  # beta = 0.5
    assert torch.allclose(film(x, t), 2 * x + 0.5)


def test_injection_modules_shapes_and_squeeze_excite_gates():
    torch.manual_seed(0)
    x, t = torch.randn(2, 7, 16), torch.randn(2, 16)
    pairs = ScaleShift(16, 3).params(t)
    assert len(pairs) == 3 and all(g.shape == (2, 16) and b.shape == (2, 16) for g, b in pairs)
    se = SqueezeExcite(16)(x, t)
    assert se.shape == x.shape
    gate = se / x  # gates in (0, 1), one per sequence and channel, the same for every frame
    assert ((gate > 0) & (gate < 1)).all()
    assert torch.allclose(gate[:, 0], gate[:, 5], atol=1e-4)
    assert TimestepAttention(16, 4)(x, t).shape == x.shape


def test_decoder_block_shapes():
    for inj in INJECTIONS:
        block = DecoderBlock(small(timestep_injection=inj))
        out = block(torch.randn(2, 9, 32), torch.randn(2, 9, 32), torch.randn(2, 32))
        assert out.shape == (2, 9, 32)


# ---------------------------------------------------------------------------------------------
# the decoder: the five Table-3 variants and the regression variant


@pytest.mark.parametrize("injection", INJECTIONS)
def test_each_variant_runs_backward_with_gradients_into_the_timestep_embedder(injection):
    model = decoder(timestep_injection=injection).train()
    diffusion = GaussianDiffusion(DiffusionConfig(steps=50))
    x0, audio = torch.randn(3, 12, E), torch.randn(3, 12, A)
    mask = torch.ones(3, 12, dtype=torch.bool)
    mask[1, 8:] = False
    g = torch.Generator().manual_seed(0)
    loss = diffusion.training_loss(model, x0, audio, mask, generator=g)
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert all(p.grad.abs().sum() > 0 for p in model.timestep.parameters())
    # The timestep changes the output (every variant injects it somewhere).
    with torch.no_grad():
        x_t = torch.randn(1, 12, E)
        a = model.eval()(x_t, audio[:1], torch.tensor([3]))
        b = model(x_t, audio[:1], torch.tensor([40]))
    assert (a - b).abs().max() > 1e-5


def test_variants_differ_in_their_modules():
    names = {
        inj: {
            n.split(".")[2]
            for n, _ in decoder(timestep_injection=inj).named_modules()
            if n.startswith("blocks.0.") and n.count(".") >= 2
        }
        for inj in INJECTIONS
    }
    assert "film" in names["film"] and "scale_shift" in names["scale_shift"]
    assert "squeeze_excite" in names["squeeze_excite"] and "time_attn" in names["dot_product"]
    assert not names["input"] & {"film", "scale_shift", "squeeze_excite", "time_attn"}


def test_regression_variant_has_no_timestep_and_learns_from_audio_alone():
    model = decoder(diffusion=False)
    assert not hasattr(model, "timestep") and not hasattr(model, "input_proj")
    out = model(None, torch.randn(2, 15, A))
    assert out.shape == (2, 15, E)
    with pytest.raises(ValueError):
        model(torch.randn(2, 15, E), torch.randn(2, 15, A), torch.tensor([1, 2]))
    with pytest.raises(ValueError):
        decoder()(None, torch.randn(2, 15, A))  # a diffusion decoder needs x and t


def test_config_constraints_raise_config_error():
    with pytest.raises(ConfigError, match="n_heads"):
        ExpressionDecoder(small(n_heads=5))
    with pytest.raises(ConfigError, match="timestep_injection"):
        ExpressionDecoder(small(timestep_injection="adain"))


# ---------------------------------------------------------------------------------------------
# masks


def test_causal_self_attention_hides_later_frames_and_full_does_not():
    audio, x = torch.randn(1, 20, A), torch.randn(1, 20, E)
    x2 = x.clone()
    x2[:, 11:] += 5.0  # change frames > 10
    t = torch.tensor([7])
    with torch.no_grad():
        causal = decoder(self_attention="causal")
        a, b = causal(x, audio, t), causal(x2, audio, t)
        assert torch.allclose(a[:, :11], b[:, :11], atol=1e-5)
        assert (a[:, 11:] - b[:, 11:]).abs().max() > 1e-3
        full = decoder(self_attention="full")
        assert (full(x, audio, t)[:, :11] - full(x2, audio, t)[:, :11]).abs().max() > 1e-3


def test_aligned_cross_attention_sees_only_audio_near_each_frame():
    # One block: the audio enters at the cross-attention, after the self-attention, so a change
    # of the audio at frame s reaches exactly the frames within audio_window of s.
    w, s = 2, 10
    audio, x = torch.randn(1, 24, A), torch.randn(1, 24, E)
    audio2 = audio.clone()
    audio2[:, s] += torch.randn(A)
    t = torch.tensor([5])
    with torch.no_grad():
        model = decoder(n_blocks=1, audio_window=w)
        diff = (model(x, audio, t) - model(x, audio2, t)).abs().amax(-1)[0]
        changed = (diff > 1e-6).nonzero().flatten().tolist()
        assert changed == list(range(s - w, s + w + 1))
        full = decoder(n_blocks=1, cross_attention="full")
        assert ((full(x, audio, t) - full(x, audio2, t)).abs().amax(-1) > 1e-6).all()


def test_alignment_mask_for_audio_at_twice_the_frame_rate():
    m = alignment_mask(4, 8, window=0)
    assert m.tolist() == [[j in (2 * i, 2 * i + 1) for j in range(8)] for i in range(4)]
    assert alignment_mask(5, 5, 1).sum(1).tolist() == [2, 3, 3, 3, 2]


def test_attention_bias_never_leaves_a_row_without_keys():
    pos = torch.arange(6)
    valid = torch.tensor([[True, True, True, False, False, False]])
    bias = attention_bias(alignment_mask(6, 6, 0), None, valid)
    assert torch.isfinite(bias).any(-1).all()  # padded frames see something (finite softmax)
    assert torch.isinf(attention_bias(causal_mask(pos, pos))[0, 0, 0, 1])


def test_padded_frames_do_not_change_valid_frames():
    x, audio = torch.randn(1, 16, E), torch.randn(1, 16, A)
    mask = torch.ones(1, 16, dtype=torch.bool)
    mask[:, 12:] = False
    x2, audio2 = x.clone(), audio.clone()
    x2[:, 12:] = 9.0
    audio2[:, 12:] = -9.0
    model = decoder(cross_attention="full", timestep_injection="squeeze_excite")
    with torch.no_grad():
        a = model(x, audio, torch.tensor([9]), mask=mask)
        b = model(x2, audio2, torch.tensor([9]), mask=mask)
    assert torch.allclose(a[:, :12], b[:, :12], atol=1e-5)


@pytest.mark.parametrize("position", ["rope", "alibi", "sinusoidal"])
def test_sixty_seconds_of_audio_runs_forward(position):
    T = 60 * 25  # 60 s at 25 fps: more than any fixed 600-frame table
    model = decoder(position=position, n_blocks=1)
    with torch.no_grad():
        out = model(torch.randn(1, T, E), torch.randn(1, T, A), torch.tensor([10]))
        reg = decoder(diffusion=False, position=position, n_blocks=1)(None, torch.randn(1, T, A))
    assert out.shape == (1, T, E) and torch.isfinite(out).all() and torch.isfinite(reg).all()
    d = GaussianDiffusion(DiffusionConfig(steps=10, sample_steps=2))
    sample = d.sample(model, torch.randn(1, T, A), generator=torch.Generator().manual_seed(0))
    assert sample.shape == (1, 1, T, E) and torch.isfinite(sample).all()


# ---------------------------------------------------------------------------------------------
# diffusion


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_schedule_is_monotone_and_q_sample_at_zero_is_x0(schedule):
    d = GaussianDiffusion(DiffusionConfig(steps=1000, schedule=schedule))
    ab = d.alphas_cumprod
    assert (ab[1:] < ab[:-1]).all() and ab[0] > 0.999 and ab[-1] < 0.01
    assert ((d.betas > 0) & (d.betas < 1)).all()
    x0, noise = torch.randn(4, 10, E), torch.randn(4, 10, E)
    t0 = torch.zeros(4, dtype=torch.long)
    assert (d.q_sample(x0, t0, noise) - x0).abs().max() < 0.05
    late = d.q_sample(x0, torch.full((4,), 999), noise)
    assert (late - noise).abs().max() < 0.2  # the last step is (almost) pure noise


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_sampling_is_seeded_and_diverse(sampler):
    model = decoder(n_blocks=1)
    d = GaussianDiffusion(DiffusionConfig(steps=20, sample_steps=5))
    audio = torch.randn(2, 14, A)
    s1 = d.sample(
        model, audio, k_samples=3, generator=torch.Generator().manual_seed(1), sampler=sampler
    )
    s1b = d.sample(
        model, audio, k_samples=3, generator=torch.Generator().manual_seed(1), sampler=sampler
    )
    s2 = d.sample(
        model, audio, k_samples=3, generator=torch.Generator().manual_seed(2), sampler=sampler
    )
    assert s1.shape == (2, 3, 14, E) and torch.isfinite(s1).all()
    assert torch.equal(s1, s1b)
    assert (s1 - s2).abs().max() > 1e-3
    assert (s1[:, 0] - s1[:, 1]).abs().amax(dim=(1, 2)).min() > 1e-3  # K samples differ


def test_guidance_weight_zero_is_the_unconditional_prediction():
    model = decoder(n_blocks=1)
    d = GaussianDiffusion(DiffusionConfig(steps=20))
    x, audio, t = torch.randn(2, 8, E), torch.randn(2, 8, A), torch.tensor([4, 9])
    with torch.no_grad():
        uncond = model(x, audio, t, drop_audio=torch.ones(2, dtype=torch.bool))
        cond = model(x, audio, t)
        assert torch.allclose(d.denoise(model, x, t, audio, guidance_scale=0.0), uncond, atol=1e-5)
        assert torch.allclose(d.denoise(model, x, t, audio, guidance_scale=1.0), cond, atol=1e-5)
        two = d.denoise(model, x, t, audio, guidance_scale=2.0)
        assert torch.allclose(two, 2 * cond - uncond, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# tiny training runs on a toy task: the codes are a function of the audio around each frame


def toy_batch(g: torch.Generator, B: int = 8, T: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    audio = torch.randn(B, T, A, generator=g)
    W = torch.linspace(-1, 1, A * E).view(A, E)
    smooth = (audio + torch.roll(audio, 1, dims=1)) / 2  # depends on the frame and the one before
    return torch.tanh(smooth @ W), audio


def train(model, loss_fn, steps: int, lr: float = 3e-3) -> tuple[float, float]:
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        x0, audio = toy_batch(g)
        loss = loss_fn(model, x0, audio, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return sum(losses[:10]) / 10, sum(losses[-20:]) / 20


def test_regression_variant_training_lowers_the_loss():
    model = decoder(diffusion=False, n_blocks=1, audio_window=1).train()
    first, last = train(model, lambda m, x0, a, g: regression_loss(m, x0, a), 150)
    assert last < 0.1 * first, (first, last)


def test_diffusion_training_lowers_the_loss_and_samples_follow_the_audio():
    model = decoder(n_blocks=1, audio_window=1).train()
    d = GaussianDiffusion(DiffusionConfig(steps=100, sample_steps=10))
    first, last = train(model, lambda m, x0, a, g: d.training_loss(m, x0, a, generator=g), 250)
    assert last < 0.15 * first, (first, last)
    x0, audio = toy_batch(torch.Generator().manual_seed(99), B=2)
    s = d.sample(model, audio, k_samples=2, generator=torch.Generator().manual_seed(0))
    err = (s - x0[:, None]).pow(2).mean()
    assert err < 0.1 * x0.pow(2).mean(), (err, x0.pow(2).mean())
