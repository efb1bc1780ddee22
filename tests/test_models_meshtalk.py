"""MeshTalk's modules (talkhead.models.meshtalk): shapes, the context model's masks, the Gumbel
bottleneck, the decoder's skips, the two training stages' losses, sampling, a 60-s input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from talkhead.config import check
from talkhead.errors import ConfigError
from talkhead.models.meshtalk import (
    AudioEncoder,
    ContextModel,
    ExpressionEncoder,
    FusionModel,
    MaskedContextConv,
    MeshTalk,
    MeshTalkConfig,
    VertexDecoder,
    batch_shift,
    cross_modality_loss,
    demo_config,
    gumbel_softmax,
    masked_vertex_mse,
    mel_track,
    mel_windows,
    quantize,
    region_weights,
    stage1_loss,
    stage2_loss,
    vertex_statistics,
)

V = 30  # vertices of the toy meshes


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors: one thread is faster than two on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cfg() -> MeshTalkConfig:
    return demo_config()


def window_rows(cfg: MeshTalkConfig) -> int:
    return int(round(cfg.audio_window_s * 100))


def random_one_hot(B: int, T: int, H: int, C: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, C, (B, T, H), generator=g)
    return torch.nn.functional.one_hot(labels, C).float()


# ------------------------------------------------------------------------------------------
# config


def test_full_scale_config_is_the_papers():
    full = check(MeshTalkConfig())
    assert (full.heads, full.categories) == (64, 128)
    assert full.audio_dilations == (2, 4, 6, 2, 4, 6) and full.audio_kernel == 5
    assert full.context_dilations == (1, 2, 4, 8) and full.context_kernel == 2
    assert full.context_channels == 64 and full.dropout == 0.2
    assert full.audio_receptive_field == 97  # fits in the 100 rows of a 1-s window
    assert full.context_receptive_field == ContextModel(demo_config()).receptive_field == 21
    check(demo_config())
    with pytest.raises(ConfigError, match=r"meshtalk\.audio_window_s: gives 50 .* field of 97"):
        check(dataclasses.replace(full, audio_window_s=0.5), "meshtalk")


# ------------------------------------------------------------------------------------------
# shapes of every block


@pytest.mark.parametrize("K", [20, 5])
def test_block_shapes(cfg, K):
    B, T = 2, 7
    audio = AudioEncoder(cfg)(torch.randn(B, T, K, cfg.n_mels))
    assert audio.shape == (B, T, cfg.audio_dim)
    expr = ExpressionEncoder(cfg, V)(torch.randn(B, T, V, 3))
    assert expr.shape == (B, T, cfg.expression_dim)
    logits = FusionModel(cfg)(expr, audio)
    assert logits.shape == (B, T, cfg.heads, cfg.categories)
    one_hot, labels = quantize(logits, training=True)
    assert one_hot.shape == logits.shape and labels.shape == (B, T, cfg.heads)
    out = VertexDecoder(cfg, V)(torch.randn(B, V, 3), one_hot)
    assert out.shape == (B, T, V, 3)
    ctx = ContextModel(cfg)(one_hot, audio)
    assert ctx.shape == (B, T, cfg.heads, cfg.categories)


def test_blocks_reject_wrong_shapes(cfg):
    with pytest.raises(ValueError, match="AudioEncoder"):
        AudioEncoder(cfg)(torch.randn(2, 7, 20, cfg.n_mels + 1))
    with pytest.raises(ValueError, match="ExpressionEncoder"):
        ExpressionEncoder(cfg, V)(torch.randn(2, 7, V + 1, 3))
    with pytest.raises(ValueError, match="differ"):
        FusionModel(cfg)(torch.randn(2, 7, cfg.expression_dim), torch.randn(2, 6, cfg.audio_dim))
    with pytest.raises(ValueError, match="heads x categories"):
        VertexDecoder(cfg, V)(torch.randn(2, V, 3), torch.randn(2, 7, cfg.heads + 1, 16))
    with pytest.raises(ValueError, match="ContextModel"):
        ContextModel(cfg)(random_one_hot(2, 7, cfg.heads, 16), torch.randn(2, 8, cfg.audio_dim))


def test_audio_codes_are_per_frame_and_dropout_acts_in_training(cfg):
    enc = AudioEncoder(cfg)
    x = torch.randn(1, 6, 20, cfg.n_mels)
    enc.eval()
    base = enc(x)
    y = x.clone()
    y[0, 3] += 1.0
    moved = (enc(y) - base).abs().amax(dim=-1)[0]
    assert moved[3] > 1e-4
    assert torch.all(moved[[0, 1, 2, 4, 5]] == 0)
    assert torch.equal(enc(x), base)
    enc.train()
    assert not torch.allclose(enc(x), enc(x))


def test_audio_skips_carry_the_input_past_dead_convolutions(cfg):
    enc = AudioEncoder(cfg).eval()
    for conv in enc.convs:
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    a, b = torch.randn(2, 1, 3, 20, cfg.n_mels)
    assert not torch.allclose(enc(a), enc(b))


# ------------------------------------------------------------------------------------------
# the context model's masks


@pytest.mark.parametrize("strict", [True, False])
def test_masked_layer_reads_previous_heads_only_at_the_current_frame(strict):
    H, cin, cout = 3, 2, 4
    layer = MaskedContextConv(H, cin, cout, strict=strict, kernel=2, dilation=2)
    x = torch.randn(1, 9, H, cin, requires_grad=True)
    y = layer(x)
    t = 6
    for h in range(H):
        (grad,) = torch.autograd.grad(y[0, t, h].sum(), x, retain_graph=True)
        g = grad[0].abs().sum(dim=-1)  # (T, H)
        seen_now = {k for k in range(H) if g[t, k] > 0}
        assert seen_now == set(range(h if strict else h + 1))
        assert torch.all(g[t + 1 :] == 0)  # no later frame
        # kernel 2, dilation 2: frames t - 1 and t - 3, every head
        assert {s for s in range(t) if g[s].sum() > 0} == {t - 1, t - 3}
        assert torch.all(g[t - 1] > 0) and torch.all(g[t - 3] > 0)


def test_context_model_is_causal_over_frames_and_heads(cfg):
    """Logits at (t, h) depend on the codes of heads < h at t and of every head at t' < t, and
    on nothing else (gradients are exactly zero there, and not zero where they must not be)."""
    model = ContextModel(cfg)
    B, T, H, C = 1, 10, cfg.heads, cfg.categories
    x = random_one_hot(B, T, H, C).requires_grad_(True)
    audio = torch.randn(B, T, cfg.audio_dim, requires_grad=True)
    logits = model(x, audio)
    for t in range(T):
        for h in range(H):
            gx, ga = torch.autograd.grad(logits[0, t, h].sum(), (x, audio), retain_graph=True)
            g = gx[0].abs().sum(dim=-1)  # (T, H)
            assert torch.all(g[t + 1 :] == 0), (t, h)  # later frames
            assert torch.all(g[t, h:] == 0), (t, h)  # this head and later heads, now
            assert torch.all(ga[0, t + 1 :] == 0), (t, h)  # later audio
            assert ga[0, t].abs().sum() > 0  # the current audio code conditions it
            if h > 0:
                assert torch.all(g[t, :h] > 0), (t, h)  # every previous head, now
            if t > 0:
                assert torch.all(g[t - 1] > 0), (t, h)  # every head, previous frame


def test_context_model_receptive_field_and_perturbations(cfg):
    model = ContextModel(cfg).eval()
    B, T, H, C = 1, 24, cfg.heads, cfg.categories
    x = random_one_hot(B, T, H, C)
    audio = torch.randn(B, T, cfg.audio_dim)
    base = model(x, audio)
    t, h = T - 2, 2
    back = model.receptive_field - 1  # 20 frames back

    def change(frames, heads):
        y = x.clone()
        for s in frames:
            for k in heads:
                y[0, s, k] = torch.roll(y[0, s, k], 1)
        return (model(y, audio)[0, t, h] - base[0, t, h]).abs().max().item()

    assert change([t + 1], range(H)) == 0.0  # a later frame
    assert change([t], range(h, H)) == 0.0  # this and later heads at t
    assert change([t - back - 1], range(H)) == 0.0  # beyond the receptive field
    assert change([t], [h - 1]) > 1e-5  # the previous head at t
    assert change([t - 1], [H - 1]) > 1e-5  # the last head of the previous frame
    assert change([t - back], range(H)) > 1e-7  # the receptive field's far end


# ------------------------------------------------------------------------------------------
# Gumbel softmax


def test_gumbel_softmax_hard_is_one_hot_with_gradients():
    logits = torch.randn(2, 5, 3, 8, requires_grad=True)
    sample, labels = gumbel_softmax(logits, tau=0.7, hard=True, generator=torch.Generator())
    assert torch.equal(sample.detach(), torch.nn.functional.one_hot(labels, 8).float())
    weights = torch.randn(8)
    (sample * weights).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    soft, _ = gumbel_softmax(logits, hard=False)
    assert torch.allclose(soft.sum(dim=-1), torch.ones(2, 5, 3))
    assert ((soft > 0) & (soft < 1)).all()


def test_gumbel_samples_follow_the_softmax():
    logits = torch.tensor([2.0, 0.5, 0.0, -1.0])
    g = torch.Generator().manual_seed(3)
    _, labels = gumbel_softmax(logits.expand(40000, 4), generator=g)
    freq = torch.bincount(labels, minlength=4).float() / labels.numel()
    assert torch.allclose(freq, torch.softmax(logits, 0), atol=0.015)


def test_quantize_is_argmax_at_inference():
    logits = torch.randn(2, 4, 3, 6)
    one_hot, labels = quantize(logits, training=False)
    assert torch.equal(labels, logits.argmax(-1))
    assert torch.equal(one_hot.sum(-1), torch.ones(2, 4, 3))


# ------------------------------------------------------------------------------------------
# decoder


def test_decoder_keeps_the_template_through_the_skip(cfg):
    dec = VertexDecoder(cfg, V)
    template = torch.randn(2, V, 3)
    codes = random_one_hot(2, 5, cfg.heads, cfg.categories)
    # untrained: the offset layer starts at zero, the output is exactly the template
    assert torch.equal(dec(template, codes), template[:, None].expand(-1, 5, -1, -1))
    torch.nn.init.normal_(dec.up[-1].weight, std=0.1)
    out = dec(template, codes)
    other = dec(template, random_one_hot(2, 5, cfg.heads, cfg.categories, seed=1))
    assert not torch.allclose(out, other)  # the codes move the mesh
    # the skip: the offset from the template does not contain the template itself
    shifted = dec(template + 10.0, codes)
    assert ((shifted - out) - 10.0).abs().mean() < 10.0 * 0.5


def test_decoder_frames_depend_on_past_codes_only(cfg):
    dec = VertexDecoder(cfg, V)
    torch.nn.init.normal_(dec.up[-1].weight, std=0.1)
    template = torch.randn(1, V, 3)
    codes = random_one_hot(1, 8, cfg.heads, cfg.categories)
    changed = codes.clone()
    changed[0, 5:] = random_one_hot(1, 3, cfg.heads, cfg.categories, seed=4)[0]
    a, b = dec(template, codes), dec(template, changed)
    assert torch.equal(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:])


# ------------------------------------------------------------------------------------------
# losses


def test_masked_vertex_mse_counts_real_frames_and_weighted_vertices():
    pred, target = torch.randn(2, 4, V, 3), torch.randn(2, 4, V, 3)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.bool)
    w = torch.zeros(V)
    w[:5] = 1.0
    loss = masked_vertex_mse(pred, target, mask, w)
    expect = ((pred - target)[mask][:, :5] ** 2).mean()
    assert torch.allclose(loss, expect)
    pred2 = pred.clone()
    pred2[0, 3] += 5.0  # a padded frame
    pred2[:, :, 10:] += 5.0  # vertices of weight 0
    assert torch.allclose(masked_vertex_mse(pred2, target, mask, w), loss)


def test_region_weights_and_batch_shift():
    masks = {"lips": np.array([1, 3]), "forehead": np.array([0]), "eye_region": np.array([3, 4])}
    w = region_weights(masks, 6, ("forehead", "eye_region"))
    assert w.tolist() == [1, 0, 0, 1, 1, 0]
    with pytest.raises(KeyError, match="have: eye_region, forehead, lips"):
        region_weights(masks, 6, ("nose",))
    g = torch.Generator().manual_seed(0)
    for B in (2, 3, 5):
        for _ in range(10):
            perm = batch_shift(B, g)
            assert sorted(perm.tolist()) == list(range(B))
            assert torch.all(perm != torch.arange(B))
    with pytest.raises(ValueError, match="at least 2"):
        batch_shift(1)


def toy_batch(cfg: MeshTalkConfig, B: int = 4, T: int = 16, seed: int = 0):
    """Toy sequences of one subject: the mouth (vertices 0-9) opens with the audio's loudness,
    the upper face (20-29) moves on its own, both about the template (zero mean, so a model
    that predicts the mean mesh scores 1 in normalised units); log-mel windows carry the
    loudness."""
    g = torch.Generator().manual_seed(seed)
    template = (0.1 * torch.randn(1, V, 3, generator=g)).expand(B, -1, -1)
    loud = torch.rand(B, T, generator=g)
    upper = torch.rand(B, T, generator=g)
    vertices = template[:, None].repeat(1, T, 1, 1)
    vertices[:, :, :10, 1] -= 0.01 * (loud[..., None] - 0.5)
    vertices[:, :, 20:, 1] += 0.005 * (upper[..., None] - 0.5)
    K = window_rows(cfg)
    mel = loud[:, :, None, None] * torch.linspace(0, 1, cfg.n_mels) + 0.1 * torch.randn(
        B, T, K, cfg.n_mels, generator=g
    )
    mouth, up = torch.zeros(V), torch.zeros(V)
    mouth[:10], up[20:] = 1.0, 1.0
    return vertices, mel, template, mouth, up


def test_cross_modality_pairs_codes_of_other_sequences(cfg):
    model = MeshTalk(cfg, V).eval()  # argmax codes: deterministic
    torch.nn.init.normal_(model.decoder.up[-1].weight, std=0.1)
    vertices, mel, template, mouth, up = toy_batch(cfg, B=3)
    same = (
        vertices[:1].repeat(3, 1, 1, 1),
        mel[:1].repeat(3, 1, 1, 1),
        template[:1].repeat(3, 1, 1),
    )
    out = model.reconstruct(*same)
    # identical sequences: swapping codes changes nothing, the loss is the masked recon error
    cross = cross_modality_loss(
        model, same[2], same[0], out["expression_code"], out["audio_code"], mouth, up
    )
    recon = model.normalise(out["vertices"])
    target = model.normalise(same[0])
    expect = masked_vertex_mse(recon, target, None, mouth) + masked_vertex_mse(
        recon, target, None, up
    )
    assert torch.allclose(cross, expect)
    out = model.reconstruct(vertices, mel, template)
    cross = cross_modality_loss(
        model, template, vertices, out["expression_code"], out["audio_code"], mouth, up
    )
    assert not torch.allclose(cross, expect)
    single = stage1_loss(model, vertices[:1], mel[:1], template[:1], None, mouth, up)
    assert single["cross_modality"] == 0


def test_stage1_training_lowers_the_reconstruction_loss(cfg):
    torch.manual_seed(0)
    model = MeshTalk(cfg, V)
    vertices, mel, template, mouth, up = toy_batch(cfg)
    model.set_vertex_statistics(*vertex_statistics(vertices))
    mask = torch.ones(vertices.shape[:2], dtype=torch.bool)
    mask[-1, -4:] = False
    opt = torch.optim.Adam(model.stage1_parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    model.train()
    losses = []
    for step in range(60):
        out = stage1_loss(model, vertices, mel, template, mask, mouth, up, generator=g)
        opt.zero_grad()
        out["loss"].backward()
        if step == 2:  # (at step 0 the decoder's zero offset layer stops them)
            # the straight-through codes pass gradients to every stage-1 block
            for module in model.stage1_modules():
                assert any(p.grad.abs().sum() > 0 for p in module.parameters()), module
        opt.step()
        losses.append(out["reconstruction"].item())
    assert out["cross_modality"] > 0
    # below the mean mesh's score (about 1): the codes carry each frame's motion
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5]), losses[::10]


def test_stage2_trains_the_context_model_only(cfg):
    torch.manual_seed(0)
    model = MeshTalk(cfg, V)
    vertices, mel, template, _, _ = toy_batch(cfg)
    model.set_vertex_statistics(*vertex_statistics(vertices))
    model.freeze_stage1()
    model.train()
    assert not model.audio_encoder.training and model.context.training
    frozen = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("context")}
    params = [p for p in model.parameters() if p.requires_grad]
    assert {id(p) for p in params} == {id(p) for p in model.context.parameters()}
    opt = torch.optim.Adam(params, lr=3e-3)
    losses = []
    for _ in range(40):
        out = stage2_loss(model, vertices, mel)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert losses[0] > 0.5 * np.log(cfg.categories)  # an untrained model is unsure
    assert np.mean(losses[-3:]) < 0.5 * losses[0], losses[::5]
    for k, v in model.state_dict().items():
        if k in frozen:
            assert torch.equal(v, frozen[k]), k


def test_padded_frames_do_not_count(cfg):
    """Every block is causal in time, so a window whose last frames are padding scores what
    the window without them scores."""
    model = MeshTalk(cfg, V).eval()  # argmax codes: deterministic
    torch.nn.init.normal_(model.decoder.up[-1].weight, std=0.1)
    vertices, mel, template, mouth, up = toy_batch(cfg, B=3, T=12)
    mask = torch.ones(3, 12, dtype=torch.bool)
    mask[:, 8:] = False
    padded = vertices.clone()
    padded[:, 8:] = 0.0  # the dataset pads with zeros

    def s1(v, m, k):
        return stage1_loss(model, v, mel[:, :k], template, m, mouth, up, generator=gen())

    def gen():
        return torch.Generator().manual_seed(5)

    full, cut = s1(padded, mask, 12), s1(vertices[:, :8], None, 8)
    for key in ("reconstruction", "cross_modality"):
        assert torch.allclose(full[key], cut[key], rtol=1e-5), key
    model.freeze_stage1()
    full = stage2_loss(model, padded, mel, mask)["loss"]
    assert torch.allclose(full, stage2_loss(model, vertices[:, :8], mel[:, :8])["loss"], rtol=1e-5)
    assert not torch.allclose(full, stage2_loss(model, padded, mel)["loss"])


# ------------------------------------------------------------------------------------------
# sampling


def test_sampling_temperature(cfg):
    model = MeshTalk(cfg, V)
    torch.nn.init.normal_(model.decoder.up[-1].weight, std=0.1)
    B, T = 2, 9
    mel = torch.randn(B, T, window_rows(cfg), cfg.n_mels)
    template = torch.randn(B, V, 3)

    def draw(temperature, seed):
        return model.sample(mel, template, temperature, torch.Generator().manual_seed(seed))

    cold = draw(0.0, 1)
    assert model.training  # restored after sampling in eval mode
    assert cold["vertices"].shape == (B, T, V, 3)
    assert torch.equal(cold["labels"], draw(0.0, 2)["labels"])
    # the frame-by-frame, head-by-head sampler computes what the parallel forward does
    model.eval()
    with torch.no_grad():
        audio_code = model.audio_encoder(mel)
        logits = model.context(cold["one_hot"], audio_code)
    assert torch.equal(logits.argmax(-1), cold["labels"])
    assert torch.equal(draw(1e-6, 7)["labels"], cold["labels"])
    warm_a, warm_b = draw(1.0, 1), draw(1.0, 2)
    assert not torch.equal(warm_a["labels"], warm_b["labels"])
    assert not torch.allclose(warm_a["vertices"], warm_b["vertices"])
    assert torch.equal(draw(1.0, 1)["labels"], warm_a["labels"])  # seeded


# ------------------------------------------------------------------------------------------
# a 60-s input


@pytest.mark.parametrize("config", [demo_config(), MeshTalkConfig()], ids=["demo", "full"])
def test_track_encoding_equals_the_per_frame_windows(config):
    audio = np.random.default_rng(0).normal(0, 0.1, int(3.3 * 16000)).astype(np.float32)
    windows = mel_windows(audio, 83, 25.0, config)
    rows, centres, k = mel_track(audio, 83, 25.0, config)
    assert windows.shape == (83, k, 80) and rows.shape == (331, 80)
    encoder = AudioEncoder(config).eval()
    with torch.no_grad():
        a = encoder(torch.from_numpy(windows)[None])
        b = encoder.forward_track(torch.from_numpy(rows)[None], torch.from_numpy(centres), k)
    assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match="receptive field"):
        encoder.forward_track(torch.from_numpy(rows)[None], torch.from_numpy(centres), 10)


def test_a_minute_of_audio_passes_the_audio_encoder():
    """60 s at 25 fps: 1500 frames, no length limit anywhere (the full-scale encoder through
    the track path; the per-frame windows through the demo encoder, the same computation)."""
    sr, fps, seconds = 16000, 25.0, 60.0
    t = np.arange(int(seconds * sr)) / sr
    audio = (0.1 * np.sin(2 * np.pi * (150 + 50 * np.sin(t)) * t)).astype(np.float32)
    n_frames = int(seconds * fps)
    rows, centres, k = mel_track(audio, n_frames, fps)
    assert centres.shape == (1500,) and k == 100
    encoder = AudioEncoder(MeshTalkConfig()).eval()
    with torch.no_grad():
        codes = encoder.forward_track(torch.from_numpy(rows)[None], torch.from_numpy(centres), k)
    assert codes.shape == (1, 1500, 128) and torch.isfinite(codes).all()
    small = demo_config()
    windows = torch.from_numpy(mel_windows(audio, n_frames, fps, small))[None]
    with torch.no_grad():
        codes = AudioEncoder(small).eval()(windows)
    assert codes.shape == (1, 1500, small.audio_dim) and torch.isfinite(codes).all()
    with pytest.raises(ValueError, match="n_mels"):
        mel_windows(audio[:sr], 25, fps, dataclasses.replace(MeshTalkConfig(), n_mels=40))
