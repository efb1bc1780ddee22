"""The neural parametric head model: geometry of its parts, training, resume, fitting, the
temporal Huber loss and the rest-frame transform."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import trimesh

from talkhead.config import from_mapping
from talkhead.errors import FittingError
from talkhead.flame.layer import FlameLayer
from talkhead.nphm.config import FitNphmConfig, NphmConfig, NphmModelConfig
from talkhead.nphm.data import draw_family, sample_posed
from talkhead.nphm.fit import fit_codes, temporal_huber, without_temporal
from talkhead.nphm.model import (
    NeuralHeadModel,
    farthest_point_sampling,
    place_anchors,
    template_sdf_grid,
)
from talkhead.nphm.observations import check_in_frame, head_poses
from talkhead.nphm.train import build_model, load_model, save_model, train_head_model

torch.set_num_threads(1)

TINY = {
    "model": {
        "identity_global": 4,
        "identity_local": 2,
        "expression": 4,
        "anchor_pairs": 2,
        "midline_anchors": 1,
        "local_hidden": 16,
        "global_hidden": 16,
        "deform_hidden": 32,
        "deform_layers": 2,
        "prior_resolution": 24,
    },
    "train": {
        "identities": 4,
        "expressions": 3,
        "near_samples": 300,
        "steps": 40,
        "batch_identities": 2,
        "batch_expressions": 4,
        "points_per_mesh": 64,
        "posed_points": 64,
        "checkpoint_every": 10,
        "log_every": 10,
        "lr_milestones": [],
        "lr_factors": [],
    },
}


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """A small synthetic head (about 1.5k vertices) in FLAME's file format."""
    from talkhead.flame.model import load_flame_model
    from talkhead.synth.head import build_head_model, write_head_model

    files = write_head_model(
        tmp_path_factory.mktemp("head"),
        build_head_model(seed=0, n_shape=10, n_expression=8, detail=0.5),
    )
    return load_flame_model(files["model"], files["landmarks"], files["masks"])


@pytest.fixture(scope="module")
def sphere():
    m = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    return np.asarray(m.vertices), np.asarray(m.faces)


# -- parts --------------------------------------------------------------------------------


def test_template_grid_is_the_signed_distance_of_a_sphere(sphere):
    v, f = sphere
    grid = template_sdf_grid(v, f, 33, 1.0)
    axis = np.linspace(-1, 1, 33)
    z, y, x = np.meshgrid(axis, axis, axis, indexing="ij")
    truth = np.sqrt(x**2 + y**2 + z**2) - 0.5
    # The icosphere's flat facets lie up to ~1 % of the radius inside the sphere.
    assert np.abs(grid - truth).max() < 0.01
    assert grid[16, 16, 16] < 0 and grid[0, 0, 0] > 0


def test_untrained_model_is_the_template_prior(sphere):
    v, f = sphere
    cfg = NphmModelConfig(identity_global=3, identity_local=2, expression=2, prior_resolution=33)
    anchors, net, mir = place_anchors(v, None, 2, 1)
    grid = template_sdf_grid(v, f, 33, 1.0)
    model = NeuralHeadModel(cfg, anchors, net, mir, grid, 1.0)
    u = torch.rand(1, 200, 3) * 1.6 - 0.8
    codes = (torch.randn(1, 2), torch.randn(1, 3), torch.randn(1, len(anchors), 2))
    with torch.no_grad():
        sdf = model(u, *codes)
    expected = u.norm(dim=-1) - 0.5
    assert torch.allclose(sdf, expected, atol=0.015)


def test_anchors_come_in_mirrored_pairs_sharing_a_network(sphere):
    v, _ = sphere
    anchors, network, mirrored = place_anchors(v, None, 3, 2, midline=0.05)
    assert anchors.shape == (8, 3)
    right, left = anchors[:3], anchors[3:6]
    np.testing.assert_allclose(left, right * [-1, 1, 1])
    assert (right[:, 0] > 0).all()
    np.testing.assert_array_equal(network, [0, 1, 2, 0, 1, 2, 3, 4])
    np.testing.assert_array_equal(mirrored, [0, 0, 0, 1, 1, 1, 0, 0])
    assert np.all(anchors[6:, 0] == 0)
    # Spread: no two anchors of a kind on top of each other.
    d = np.linalg.norm(right[:, None] - right[None], axis=2) + np.eye(3)
    assert d.min() > 0.2


def test_farthest_point_sampling_keeps_away_from_seeds():
    pts = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [10, 0, 0]])
    assert farthest_point_sampling(pts, 1, seeds=np.array([[10.0, 0, 0]]))[0] == 0
    with pytest.raises(ValueError, match="cannot pick 5"):
        farthest_point_sampling(pts, 5)


def test_mirrored_anchors_make_a_symmetric_field_for_symmetric_codes(sphere):
    v, f = sphere
    cfg = NphmModelConfig(identity_global=2, identity_local=2, expression=2, prior_resolution=17)
    anchors, net, mir = place_anchors(v, None, 3, 1, midline=0.05)
    model = NeuralHeadModel(cfg, anchors, net, mir, template_sdf_grid(v, f, 17, 1.0), 1.0)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.local.weights:
            p.normal_(0, 0.3)
        model.local.weights[-1][3].zero_()  # the midline network is not mirrored: silence it
    zl = torch.randn(1, 3, 2)
    codes_local = torch.cat([zl, zl, torch.randn(1, 1, 2)], dim=1)  # left = right
    zg = torch.zeros(1, 2)  # the global network is not mirrored: keep it at zero output
    u = torch.rand(1, 100, 3) - 0.5
    mirror = u * torch.tensor([-1.0, 1.0, 1.0])
    with torch.no_grad():
        a = model.canonical_sdf(u, zg, codes_local)
        b = model.canonical_sdf(mirror, zg, codes_local)
        c = model.canonical_sdf(mirror, zg, torch.cat([zl, -zl, codes_local[:, 6:]], 1))
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, c, atol=1e-3)  # and the codes do matter


# -- rest frame ---------------------------------------------------------------------------


def test_head_pose_maps_rest_vertices_onto_the_posed_head(head):
    layer = FlameLayer(head, dtype=torch.float64)
    rng = np.random.default_rng(1)
    params = {
        "shape": rng.normal(size=head.num_shape),
        "rotation": rng.normal(size=(3, 3)) * 0.2,
        "neck": rng.normal(size=(3, 3)) * 0.2,
        "translation": rng.normal(size=(3, 3)) * 0.05,
        "scale": np.array([[1.1], [0.9], [1.0]]),
    }
    poses = head_poses(layer, params)
    with torch.no_grad():
        rest = layer(shape=torch.as_tensor(params["shape"])).vertices[0].numpy()
        posed = layer(**{k: torch.as_tensor(v) for k, v in params.items()}).vertices.numpy()
    # Vertices skinned to the head joint only (weight 1 on the neck joint's child chain).
    w = head.lbs_weights
    rigid = np.flatnonzero(w[:, 1] > 0.999)
    assert len(rigid) > 10
    for t in range(3):
        np.testing.assert_allclose(poses.to_world(t, rest[rigid]), posed[t, rigid], atol=1e-9)
        np.testing.assert_allclose(poses.to_rest(t, posed[t, rigid]), rest[rigid], atol=1e-9)


def test_points_in_other_units_are_refused():
    with pytest.raises(FittingError, match=r"median 95\.0 mm .* not in the same frame or units"):
        check_in_frame(np.full(10, 0.095), "seq")
    check_in_frame(np.full(10, 0.001), "seq")


# -- losses -------------------------------------------------------------------------------


def test_temporal_huber_known_values():
    delta = 0.1
    codes = torch.tensor([[0.0, 0.0], [0.05, 0.0], [0.05, 0.5]])
    gaps = torch.ones(2)
    # pair 1: 0.5 * 0.05^2 / 0.1 = 0.0125; pair 2: |0.5| - 0.05 = 0.45; mean over pairs.
    assert temporal_huber(codes, gaps, delta).item() == pytest.approx((0.0125 + 0.45) / 2)
    # A gap of two frames halves the change per frame.
    two = temporal_huber(codes[:2] * 2, torch.tensor([2.0]), delta).item()
    assert two == pytest.approx(0.0125)
    assert temporal_huber(codes[:1], gaps[:0], delta).item() == 0.0


# -- training -----------------------------------------------------------------------------


def _tiny(head, **train):
    cfg = from_mapping(NphmConfig, {**TINY, "train": {**TINY["train"], **train}}, "nphm")
    model, frame = build_model(head.v_template, head.faces, head.masks["face"], cfg.model)
    family = draw_family(
        FlameLayer(head),
        frame,
        cfg.train.identities,
        cfg.train.expressions,
        cfg.train,
        np.random.default_rng(0),
    )
    return cfg, model, frame, family


def test_family_correspondences_are_exact_on_the_surface(head):
    cfg, _, frame, family = _tiny(head)
    g = torch.Generator().manual_seed(0)
    s = sample_posed(family, np.array([0, 1]), np.array([2, 0]), 50, 0.0, g)
    # Zero offset: the canonical counterpart lies on the neutral mesh, the posed on the posed.
    from talkhead.geometry.mesh_distance import point_to_mesh_distance

    d_can = point_to_mesh_distance(s["canonical"][0].numpy(), family.canonical[0], family.faces)
    d_pos = point_to_mesh_distance(s["posed"][0].numpy(), family.posed[0, 2], family.faces)
    assert d_can.max() < 1e-5 and d_pos.max() < 1e-5
    # The jaw opened: the two differ somewhere by millimetres.
    assert (s["posed"] - s["canonical"]).norm(dim=-1).max() * frame.extent > 0.001


def _errors(model, family, codes):
    """Mean correspondence error and mean |SDF| at canonical surface samples, on fixed samples
    of every training mesh (model units)."""
    g = torch.Generator().manual_seed(123)
    ids = np.repeat(np.arange(family.n_identities), family.n_expressions)
    exprs = np.tile(np.arange(family.n_expressions), family.n_identities)
    s = sample_posed(family, ids, exprs, 200, 0.0, g)
    with torch.no_grad():
        pred = model.to_canonical(
            s["posed"], codes.expression[ids, exprs], codes.identity_global[ids]
        )
        corr = (pred - s["canonical"]).norm(dim=-1).mean().item()
        sdf = model.canonical_sdf(
            s["canonical"], codes.identity_global[ids], codes.identity_local[ids]
        )
    return corr, sdf.abs().mean().item()


def test_training_lowers_the_losses(head):
    from talkhead.nphm.train import HeadModelCodes

    cfg, model, _, family = _tiny(head, steps=80)
    start = _errors(model, family, HeadModelCodes.initial(model, family, torch.Generator()))
    codes, _ = train_head_model(model, family, cfg)
    corr, sdf = _errors(model, family, codes)
    assert corr < 0.85 * start[0]
    assert sdf < 0.8 * start[1]


def test_training_resumes_from_its_checkpoint_as_if_uninterrupted(head, tmp_path):
    cfg, model, _, family = _tiny(head, steps=20)
    train_head_model(model, family, cfg)
    whole = {k: v.clone() for k, v in model.state_dict().items()}

    half = replace(cfg, train=replace(cfg.train, steps=10))
    ckpt = tmp_path / "ckpt.pt"
    _, m1, _, _ = _tiny(head)
    train_head_model(m1, family, half, ckpt)
    _, m2, _, _ = _tiny(head)
    seen = []
    _, history = train_head_model(m2, family, cfg, ckpt, on_checkpoint=seen.append)
    assert seen == [20]  # resumed at 10: the next checkpoint is the last step's
    assert history.steps[0] == 0 and history.steps[-1] == 19
    for k, v in m2.state_dict().items():
        assert torch.allclose(v, whole[k], atol=1e-6), k


def test_saved_model_decodes_the_same(head, tmp_path):
    cfg, model, frame, family = _tiny(head, steps=5)
    train_head_model(model, family, cfg)
    save_model(tmp_path / "m.pt", model, frame)
    again, frame2 = load_model(tmp_path / "m.pt")
    u = torch.rand(2, 50, 3) - 0.5
    codes = (torch.randn(2, 4), torch.randn(2, 4), torch.randn(2, model.n_anchors, 2))
    with torch.no_grad():
        assert torch.equal(model(u, *codes), again(u, *codes))
    np.testing.assert_allclose(frame2.centre, frame.centre)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(FittingError, match="bad.pt: not a talkhead head model"):
        load_model(tmp_path / "bad.pt")


# -- fitting ------------------------------------------------------------------------------


def _observed(model, frame, codes_e, zg, zl, n=400, noise=0.0, seed=0):
    """Surface points and normals of the model itself under known codes (model units)."""
    from talkhead.geometry.surface import sample_surface
    from talkhead.nphm.marching import extract_mesh

    rng = np.random.default_rng(seed)
    pts, nrm = [], []
    for e in codes_e:

        def sdf(u, e=e):
            return model(u[None], torch.as_tensor(e)[None], zg, zl)[0]

        res = extract_mesh(sdf, [-0.9] * 3, [0.9] * 3, 48)
        p, q, _ = sample_surface(res.vertices, res.faces, n, rng)
        pts.append(p + rng.normal(size=p.shape) * noise)
        nrm.append(q)
    return pts, nrm


@pytest.fixture(scope="module")
def trained(head):
    cfg, model, frame, family = _tiny(head, steps=60)
    codes, _ = train_head_model(model, family, cfg)
    return model, frame, codes


def test_fit_matches_the_observed_surface(trained):
    model, frame, codes = trained
    zg, zl = codes.identity_global[:1].detach(), codes.identity_local[:1].detach()
    e = codes.expression[0, :3].detach().numpy()
    pts, nrm = _observed(model, frame, e, zg, zl)
    cfg = FitNphmConfig(steps=120, points_per_frame=200, lr_milestones=(), lr_factors=())
    cfg = replace(cfg, weights=replace(cfg.weights, reg_identity=0.0, reg_expression=0.0))
    before = fit_codes(model, frame.extent, pts, nrm, np.arange(3), replace(cfg, steps=1))
    fit = fit_codes(model, frame.extent, pts, nrm, np.arange(3), cfg)
    assert fit.sdf_mm.mean() < 0.6 * before.sdf_mm.mean()
    assert fit.expression.shape == (3, 4) and fit.identity_local.shape == (model.n_anchors, 2)


def test_temporal_loss_lowers_the_jitter_of_the_codes(trained):
    from talkhead.fitting.temporal import expression_jitter

    model, frame, codes = trained
    zg, zl = codes.identity_global[:1].detach(), codes.identity_local[:1].detach()
    e = codes.expression[0, :1].detach().numpy()
    # One expression held for 6 frames, observed with 1 mm noise.
    pts, nrm = _observed(model, frame, np.repeat(e, 6, axis=0), zg, zl, noise=0.001 / frame.extent)
    cfg = FitNphmConfig(steps=80, points_per_frame=100, lr_milestones=(), lr_factors=())
    frames = np.arange(6)
    with_t = fit_codes(model, frame.extent, pts, nrm, frames, cfg, identity=(zg[0], zl[0]))
    without = fit_codes(
        model, frame.extent, pts, nrm, frames, without_temporal(cfg), identity=(zg[0], zl[0])
    )
    j_with = expression_jitter(with_t.expression)["mae"]
    j_without = expression_jitter(without.expression)["mae"]
    assert j_with < j_without / 3


def test_fit_refuses_empty_frames_and_bad_identity(trained):
    model, frame, _ = trained
    cfg = FitNphmConfig(steps=2)
    pts = [np.zeros((5, 3)), np.zeros((0, 3))]
    with pytest.raises(FittingError, match=r"frame row\(s\) \[1\] have no points"):
        fit_codes(model, frame.extent, pts, pts, np.arange(2), cfg)
    with pytest.raises(FittingError, match="identity codes"):
        fit_codes(
            model,
            frame.extent,
            pts[:1],
            pts[:1],
            np.arange(1),
            cfg,
            identity=(np.zeros(3), np.zeros((1, 1))),
        )
