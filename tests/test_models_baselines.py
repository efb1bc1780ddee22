"""The FaceFormer-style regression baseline (models/baselines/faceformer.py)."""

from __future__ import annotations

import pytest
import torch

from talkhead.errors import ConfigError
from talkhead.models.attention import alibi_slopes, relative_bias
from talkhead.models.baselines import FaceFormer, FaceFormerConfig, FaceFormerLayer, to_vertices

A, V = 10, 4
O = V * 3


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one thread is faster than two on shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def model(seed: int = 0, random_output: bool = True, **kw) -> FaceFormer:
    """A small FaceFormer; its zero-initialised output layer randomised (else every output is
    the template and no dependency shows)."""
    base = dict(
        audio_dim=A,
        output_dim=O,
        latent_dim=32,
        n_heads=4,
        n_layers=2,
        ff_dim=64,
        dropout=0.0,
        period=5,
        audio_window=1,
        n_subjects=3,
    )
    torch.manual_seed(seed)
    m = FaceFormer(FaceFormerConfig(**{**base, **kw})).eval()
    if random_output:
        torch.nn.init.normal_(m.output_proj.weight, std=0.3)
    return m


def test_shapes_and_vertices_from_offsets():
    m = model()
    audio, motion = torch.randn(2, 17, A), torch.randn(2, 17, O)
    with torch.no_grad():
        out = m(audio, motion, subject=torch.tensor([0, 2]))
        gen = m.generate(audio, subject=torch.tensor([0, 2]))
    assert out.shape == gen.shape == (2, 17, O)
    template = torch.randn(2, V, 3)
    verts = to_vertices(out, template)
    assert verts.shape == (2, 17, V, 3)
    assert torch.allclose(verts[1, 5] - template[1], out[1, 5].view(V, 3))
    layer = FaceFormerLayer(32, 4, 64, 0.0)
    kv = layer.cross_attn.keys_values(torch.randn(2, 17, 32))
    y, (k, v) = layer(torch.randn(2, 17, 32), kv, None, None)
    assert y.shape == (2, 17, 32) and k.shape == v.shape == (2, 4, 17, 8)


def test_untrained_model_outputs_the_template():
    m = model(random_output=False)
    with torch.no_grad():
        out = m.generate(torch.randn(1, 9, A))
    assert torch.equal(out, torch.zeros_like(out))


def test_teacher_forced_output_at_t_ignores_motion_from_t_on():
    m = model()
    audio, motion = torch.randn(1, 20, A), torch.randn(1, 20, O)
    motion2 = motion.clone()
    motion2[:, 10:] += 3.0  # change frames >= 10: outputs at frames <= 10 must not move
    with torch.no_grad():
        a, b = m(audio, motion), m(audio, motion2)
    assert torch.allclose(a[:, :11], b[:, :11], atol=1e-5)
    assert (a[:, 11:] - b[:, 11:]).abs().max() > 1e-3


def test_generate_feeds_back_its_own_output_as_teacher_forcing_would():
    # The cached autoregressive loop equals one teacher-forced pass over its own outputs.
    m = model()
    audio, subject = torch.randn(2, 23, A), torch.tensor([1, -1])
    with torch.no_grad():
        gen = m.generate(audio, subject=subject)
        forced = m(audio, gen, subject=subject)
    assert torch.allclose(gen, forced, atol=1e-5)


def test_cross_attention_is_aligned_to_the_frame_time():
    # One layer: audio at frame s reaches frame t only through frame t's own cross-attention
    # (later frames see earlier ones, but the motion is held fixed by teacher forcing).
    w, s = 1, 8
    m = model(n_layers=1, audio_window=w)
    audio, motion = torch.randn(1, 20, A), torch.randn(1, 20, O)
    audio2 = audio.clone()
    audio2[:, s] += torch.randn(A)
    with torch.no_grad():
        diff = (m(audio, motion) - m(audio2, motion)).abs().amax(-1)[0]
    assert (diff > 1e-6).nonzero().flatten().tolist() == list(range(s - w, s + w + 1))


def test_biased_causal_mask_counts_whole_periods():
    pos = torch.arange(12)
    bias = relative_bias(pos, pos, alibi_slopes(4), period=5)
    slope = alibi_slopes(4)[0]
    assert bias[0, 11, 10] == 0 and bias[0, 11, 7] == 0  # same period back
    assert bias[0, 11, 6] == pytest.approx(-slope.item()) and bias[0, 11, 0] == pytest.approx(
        -2 * slope.item()
    )
    assert alibi_slopes(6).shape == (6,) and (alibi_slopes(8).diff() < 0).all()


def test_unseen_subject_gets_the_mean_style():
    m = model()
    s = m.style_vector(torch.tensor([-1, 0, 2]), 3)
    assert torch.allclose(s[0], m.style.weight.mean(0))
    assert torch.allclose(s[2], m.style.weight[2])


def test_sixty_seconds_of_audio_runs_forward():
    T = 60 * 25  # FaceFormer's 600-frame table would break here
    m = model(n_layers=1)
    with torch.no_grad():
        out = m(torch.randn(1, T, A), torch.randn(1, T, O))
    assert out.shape == (1, T, O) and torch.isfinite(out).all()


def test_bad_shapes_and_config():
    m = model()
    with pytest.raises(ValueError, match="audio"):
        m(torch.randn(1, 5, A + 1), torch.randn(1, 5, O))
    with pytest.raises(ValueError, match="motion"):
        m(torch.randn(1, 5, A), torch.randn(1, 5, O + 1))
    with pytest.raises(ConfigError, match="n_heads"):
        FaceFormer(FaceFormerConfig(latent_dim=30, n_heads=4))


def test_teacher_forced_training_lowers_the_loss():
    m = model(random_output=False, n_layers=1).train()
    g = torch.Generator().manual_seed(0)
    W = torch.linspace(-1, 1, A * O).view(A, O)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        audio = torch.randn(8, 24, A, generator=g)
        target = torch.tanh((audio + torch.roll(audio, 1, dims=1)) / 2 @ W)
        loss = (m(audio, target) - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:10]) / 10, sum(losses[-20:]) / 20
    assert last < 0.1 * first, (first, last)
