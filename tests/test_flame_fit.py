"""FLAME fitting: the subset layer, loss terms, schedules, correspondences, the loop's
divergence stop, and whole-sequence fits of a known truth (accuracy, smoothing, bad input)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from talkhead.config import from_mapping
from talkhead.errors import FittingError
from talkhead.fitting.correspondences import PointTargets, vertex_normals
from talkhead.fitting.loop import ParamGroup, optimise
from talkhead.fitting.losses import (
    landmark_l1,
    point_to_plane,
    point_to_point,
    temporal_difference,
)
from talkhead.fitting.schedules import every, lr_factor
from talkhead.fitting.temporal import expression_jitter
from talkhead.flame.align import align_template
from talkhead.flame.config import FitFlameConfig
from talkhead.flame.fit import (
    FlameObservations,
    fit_flame_sequence,
    landmark_weights,
    region_vertices,
)
from talkhead.flame.layer import FlameLayer
from talkhead.flame.model import load_flame_model
from talkhead.flame.region import FlameRegion
from talkhead.synth.head import build_head_model, write_head_model

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def head_files(tmp_path_factory):
    """A small synthetic head (about 1.5k vertices) in FLAME's file format."""
    model = build_head_model(seed=0, n_shape=10, n_expression=8, detail=0.5)
    return write_head_model(tmp_path_factory.mktemp("head"), model)


@pytest.fixture(scope="module")
def head(head_files):
    return load_flame_model(head_files["model"], head_files["landmarks"], head_files["masks"])


def _truth(head, T: int, seed: int = 0, frames=None) -> dict[str, np.ndarray]:
    """Smooth true parameters over T frames (ids ``frames``): a jaw opening and closing,
    lip and smile codes, a slow head turn."""
    rng = np.random.default_rng(seed)
    ids = np.arange(T) if frames is None else np.asarray(frames)
    phase = ids / 10.0 * 2 * np.pi
    expr = np.zeros((T, head.num_expression))
    expr[:, 0] = 0.5 * np.sin(phase)
    expr[:, 1] = 0.3 * np.cos(phase)
    expr[:, 2] = 0.4 * np.sin(0.5 * phase)
    jaw = np.zeros((T, 3))
    jaw[:, 0] = 0.08 * (1 + np.sin(phase))
    rot = np.zeros((T, 3))
    rot[:, 1] = 0.05 * np.sin(0.3 * phase)
    trans = np.tile([0.003, -0.01, 0.02], (T, 1))
    return {
        "shape": rng.normal(size=head.num_shape) * 0.8,
        "expression": expr,
        "jaw": jaw,
        "rotation": rot,
        "neck": np.zeros((T, 3)),
        "eyes": np.zeros((T, 6)),
        "translation": trans,
        "scale": np.ones((T, 1)),
        "frames": ids,
    }


def _posed(layer, p):
    keys = ("expression", "rotation", "neck", "jaw", "eyes", "translation", "scale")
    with torch.no_grad():
        out = layer(shape=torch.as_tensor(p["shape"]), **{k: torch.as_tensor(p[k]) for k in keys})
    return out.vertices.double().numpy(), out.landmarks.double().numpy()


def _observe(head, layer, truth, seed=0, lmk_noise=0.001, point_noise=0.0002, n_points=3000):
    """Noisy multi-view-like observations of the true meshes: landmarks with noise and points
    sampled on the face region's triangles (area-weighted) with noise along the normal."""
    rng = np.random.default_rng(seed)
    verts, lmk = _posed(layer, truth)
    face = set(head.masks["face"].tolist())
    tri = np.asarray([f for f in head.faces if all(int(v) in face for v in f)])
    points, normals = [], []
    for v in verts:
        a, b, c = v[tri[:, 0]], v[tri[:, 1]], v[tri[:, 2]]
        n = np.cross(b - a, c - a)
        area = np.linalg.norm(n, axis=1)
        pick = rng.choice(len(tri), n_points, p=area / area.sum())
        u, w = rng.random((2, n_points))
        flip = u + w > 1
        u[flip], w[flip] = 1 - u[flip], 1 - w[flip]
        p = a[pick] + u[:, None] * (b[pick] - a[pick]) + w[:, None] * (c[pick] - a[pick])
        nn = n[pick] / area[pick, None]
        points.append(p + nn * rng.normal(scale=point_noise, size=(n_points, 1)))
        normals.append(nn)
    return FlameObservations(
        landmarks=lmk + rng.normal(scale=lmk_noise, size=lmk.shape),
        valid=np.ones(lmk.shape[:2], dtype=bool),
        points=points,
        normals=normals,
        frames=np.asarray(truth["frames"]),
    ), verts


def _init(head, layer, obs):
    with torch.no_grad():
        template = layer().landmarks[0].double().numpy()
    alignment = align_template(template, obs.landmarks, obs.valid, frames=obs.frames)
    return alignment.flame_rigid(head.rest_joints()[0])


def _config(**over):
    base = {"steps": 400, "lr_milestones": [250, 350], "log_every": 50}
    return from_mapping(FitFlameConfig, {**base, **over}, "fit_flame")


# ------------------------------------------------------------------------------------------
# building blocks


def test_region_layer_equals_the_full_layer_on_its_vertices(head):
    layer = FlameLayer(head, dtype=torch.float64)
    ids = np.asarray(head.masks["face"])[::3]
    region = FlameRegion(layer, ids)
    rng = np.random.default_rng(1)
    B = 3
    p = {
        "shape": torch.as_tensor(rng.normal(size=head.num_shape)),
        "expression": torch.as_tensor(rng.normal(size=(B, head.num_expression))),
        "rotation": torch.as_tensor(rng.normal(size=(B, 3)) * 0.2),
        "neck": torch.as_tensor(rng.normal(size=(B, 3)) * 0.1),
        "jaw": torch.as_tensor(rng.normal(size=(B, 3)) * 0.1),
        "eyes": torch.as_tensor(rng.normal(size=(B, 6)) * 0.1),
        "translation": torch.as_tensor(rng.normal(size=(B, 3)) * 0.05),
        "scale": torch.as_tensor(1 + rng.normal(size=(B, 1)) * 0.1),
    }
    full = layer(**p)
    sub = region(**p)
    np.testing.assert_allclose(sub.vertices[:, : len(ids)], full.vertices[:, ids], atol=1e-12)
    np.testing.assert_allclose(
        sub.vertices.numpy(), full.vertices[:, region.vertex_ids].numpy(), atol=1e-12
    )
    np.testing.assert_allclose(sub.landmarks, full.landmarks, atol=1e-12)
    np.testing.assert_allclose(sub.joints, full.joints, atol=1e-12)


def test_point_to_plane_measures_only_the_normal_component():
    v = torch.tensor([[[0.0, 0.0, 1.0], [3.0, 4.0, 2.0], [1.0, 1.0, 1.0]]])
    p = torch.zeros_like(v)
    n = torch.tensor([[[0.0, 0.0, 1.0]] * 3])
    valid = torch.tensor([[True, True, False]])
    assert float(point_to_plane(v, p, n, valid)) == pytest.approx(1.5)
    assert float(point_to_point(v, p, valid)) == pytest.approx((1 + 9) / 2)


def test_landmark_l1_weights_regions_and_skips_invalid():
    pred = torch.zeros(1, 3, 3)
    target = torch.tensor([[[1.0, 0, 0], [0, 2.0, 0], [0, 0, 100.0]]])
    valid = torch.tensor([[True, True, False]])
    w = torch.tensor([1.0, 3.0, 1.0])
    # (1*1 + 3*2) / (1 + 3); the invalid landmark 100 away does not count.
    assert float(landmark_l1(pred, target, valid, w)) == pytest.approx(7 / 4)
    lw = landmark_weights(68, FitFlameConfig().landmark_weights)
    assert lw[0] == 0.1 and lw[16] == 0.1 and lw[17] == 1.0 and lw[48] == 2.0 and lw[67] == 2.0
    with pytest.raises(FittingError, match="68"):
        landmark_weights(51, FitFlameConfig().landmark_weights)


def test_temporal_difference_uses_the_frame_spacing_and_ignores_a_single_frame():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [3.0, 4.0], [9.0, 12.0]])
    gaps = torch.tensor([1.0, 1.0, 2.0])
    # (5 + 0 + 10 / 2) / 4 frames
    assert float(temporal_difference(x, gaps)) == pytest.approx(10 / 4)
    assert float(temporal_difference(x, gaps, scale=2.0)) == pytest.approx(5 / 4)
    assert float(temporal_difference(x[:1], gaps[:0])) == 0.0


def test_learning_rate_schedule_and_periodic_steps():
    assert lr_factor(0, [500, 2000], [0.5, 0.2]) == 1.0
    assert lr_factor(499, [500, 2000], [0.5, 0.2]) == 1.0
    assert lr_factor(500, [500, 2000], [0.5, 0.2]) == 0.5
    assert lr_factor(2000, [500, 2000], [0.5, 0.2]) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        lr_factor(0, [500], [0.5, 0.2])
    with pytest.raises(ValueError):
        lr_factor(0, [500, 400], [0.5, 0.2])
    assert [s for s in range(10) if every(s, 4)] == [0, 4, 8]
    assert [s for s in range(10) if every(s, 4, last=9)] == [0, 4, 8, 9]


def test_correspondences_reject_far_pairs_and_disagreeing_normals():
    pts = [np.array([[0.0, 0, 0], [1.0, 0, 0]]), np.zeros((0, 3))]
    nrm = [np.array([[0.0, 0, 1], [0.0, 0, -1]]), np.zeros((0, 3))]
    targets = PointTargets(pts, nrm)
    verts = np.array([[[0.001, 0, 0], [0.999, 0, 0], [0.5, 0, 0]], [[0.0, 0, 0]] * 3])
    vn = np.array([[[0.0, 0, 1], [0.0, 0, 1], [0.0, 0, 1]], [[0.0, 0, 1]] * 3])
    c = targets.match(verts, vn, max_distance=0.01, min_normal_dot=0.5)
    # near with agreeing normal; near with opposite normal; too far; a frame without points
    assert c.valid.tolist() == [[True, False, False], [False, False, False]]
    np.testing.assert_allclose(c.points[0, 0], [0, 0, 0])
    assert np.isinf(c.distance[1]).all()
    with pytest.raises(ValueError, match="NaN"):
        PointTargets([np.array([[np.nan, 0, 0]])], [np.array([[0.0, 0, 1]])])


def test_vertex_normals_of_a_flat_square_point_up():
    v = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0], [1.0, 1, 0], [0.0, 1, 0]]])
    f = torch.tensor([[0, 1, 2], [0, 2, 3]])
    np.testing.assert_allclose(vertex_normals(v, f)[0], [[0, 0, 1]] * 4, atol=1e-7)


def test_the_loop_stops_with_the_step_and_the_term_that_blew_up():
    x = torch.zeros(2, requires_grad=True)

    def closure(step):
        bad = torch.tensor(float("nan")) if step == 3 else torch.tensor(0.0)
        return {"fine": (x - 1).pow(2).sum(), "plane": x.sum() * 0 + bad}

    with pytest.raises(FittingError, match=r"step 3: loss term 'plane' = nan"):
        optimise([ParamGroup("x", [x], 0.1)], closure, {"fine": 1.0, "plane": 1.0}, steps=10)
    # the parameters are those before the step that diverged: three Adam steps of about 0.1
    assert float(x[0].detach()) == pytest.approx(0.3, abs=0.01)


def test_region_vertices_names_missing_regions(head):
    assert len(region_vertices(head.masks, ["face", "lips"])) >= len(head.masks["face"])
    with pytest.raises(FittingError, match="cheek"):
        region_vertices(head.masks, ["cheek"])


# ------------------------------------------------------------------------------------------
# whole fits


def test_fit_recovers_the_true_meshes_within_a_millimetre(head):
    layer = FlameLayer(head)
    truth = _truth(head, T=5, seed=2)
    obs, true_verts = _observe(head, layer, truth, seed=3)
    fit = fit_flame_sequence(layer, obs, _init(head, layer, obs), head.masks, _config())
    face = head.masks["face"]
    err = np.linalg.norm(fit.vertices - true_verts, axis=-1) * 1000
    assert err[:, face].mean() < 1.0
    assert err[:, head.masks["lips"]].mean() < 1.5
    # the starting point (the alignment, zero shape and expression) was far worse
    init = _posed(layer, {**truth, **_start(head, layer, obs, 5)})[0]
    assert (np.linalg.norm(init - true_verts, axis=-1) * 1000)[:, face].mean() > 3.0
    assert set(fit.params) >= {"shape", "expression", "rotation", "translation", "jaw"}
    assert fit.params["expression"].shape == (5, head.num_expression)
    assert fit.params["scale"].shape == (5, 1) and fit.params["eyes"].shape == (5, 6)
    assert np.nanmean(fit.frame_residuals["plane_mm"]) < 0.5
    assert fit.history.steps[-1] == 399 and "plane" in fit.history.terms


def _start(head, layer, obs, T):
    r = _init(head, layer, obs)
    return {
        "shape": np.zeros(head.num_shape),
        "expression": np.zeros((T, head.num_expression)),
        "jaw": np.zeros((T, 3)),
        "rotation": np.tile(r["rotation"], (T, 1)),
        "translation": np.tile(r["translation"], (T, 1)),
        "scale": np.tile(r["scale"], (T, 1)),
    }


def test_temporal_smoothing_lowers_jitter_towards_the_truth(head):
    """FaceTalk supplement Table 2 on a short sequence: without L_smooth the expression codes
    jitter more between adjacent frames than with it, and the smoothed fit's jitter is closer
    to that of the (smooth) truth."""
    layer = FlameLayer(head)
    truth = _truth(head, T=10, seed=4)
    obs, _ = _observe(head, layer, truth, seed=5, lmk_noise=0.002, point_noise=0.0006)
    init = _init(head, layer, obs)
    smooth = fit_flame_sequence(layer, obs, init, head.masks, _config(lambda_smooth=1.0))
    plain = fit_flame_sequence(layer, obs, init, head.masks, _config(lambda_smooth=0.0))
    j_true = expression_jitter(truth["expression"], truth["frames"])["mae"]
    j_smooth = expression_jitter(smooth.params["expression"], truth["frames"])["mae"]
    j_plain = expression_jitter(plain.params["expression"], truth["frames"])["mae"]
    assert j_plain > j_smooth
    assert abs(j_smooth - j_true) < abs(j_plain - j_true)


def test_frame_gaps_single_frames_and_frames_without_points(head, caplog):
    layer = FlameLayer(head)
    truth = _truth(head, T=4, seed=6, frames=[0, 1, 5, 6])
    obs, true_verts = _observe(head, layer, truth, seed=7)
    obs.points[2] = np.zeros((0, 3))
    obs.normals[2] = np.zeros((0, 3))
    with caplog.at_level(logging.WARNING):
        fit = fit_flame_sequence(
            layer, obs, _init(head, layer, obs), head.masks, _config(steps=150)
        )
    assert "1 of 4 frames have no points" in caplog.text
    assert fit.params["frames"].tolist() == [0, 1, 5, 6]
    assert np.isnan(fit.frame_residuals["plane_mm"][2])
    one = FlameObservations(
        obs.landmarks[:1], obs.valid[:1], obs.points[:1], obs.normals[:1], obs.frames[:1]
    )
    single = fit_flame_sequence(layer, one, _init(head, layer, one), head.masks, _config(steps=100))
    assert single.history.terms["smooth"][-1] == 0.0
    assert single.params["expression"].shape == (1, head.num_expression)


def test_unusable_observations_are_refused(head):
    layer = FlameLayer(head)
    truth = _truth(head, T=3)
    obs, _ = _observe(head, layer, truth)
    init = _init(head, layer, obs)
    no_lmk = FlameObservations(
        obs.landmarks, np.zeros_like(obs.valid), obs.points, obs.normals, obs.frames
    )
    with pytest.raises(FittingError, match="no valid 3D landmark"):
        fit_flame_sequence(layer, no_lmk, init, head.masks, _config(steps=5))
    bad_points = list(obs.points)
    bad_points[1] = bad_points[1].copy()
    bad_points[1][0, 0] = np.nan
    nan_obs = FlameObservations(obs.landmarks, obs.valid, bad_points, obs.normals, obs.frames)
    with pytest.raises(FittingError, match="frame 1: points or normals contain NaN"):
        fit_flame_sequence(layer, nan_obs, init, head.masks, _config(steps=5))
    back = FlameObservations(obs.landmarks, obs.valid, obs.points, obs.normals, np.array([0, 2, 1]))
    with pytest.raises(FittingError, match="strictly increasing"):
        fit_flame_sequence(layer, back, init, head.masks, _config(steps=5))


def test_a_diverging_fit_names_step_and_term(head):
    layer = FlameLayer(head)
    obs, _ = _observe(head, layer, _truth(head, T=2))
    init = _init(head, layer, obs)
    init["scale"] = np.array([np.inf])
    with pytest.raises(FittingError, match=r"diverged at step 0: the model's vertices"):
        fit_flame_sequence(layer, obs, init, head.masks, _config(steps=5))
    # a learning rate far too large: the codes explode and the step and term are named
    huge = _config(steps=200, learning_rates={"expression": 1e30, "shape": 1e30})
    with pytest.raises(FittingError, match=r"diverged at step [1-9]\d*: "):
        fit_flame_sequence(layer, obs, _init(head, layer, obs), head.masks, huge)


def _write_points(head, path):
    from talkhead.points.io import save_points

    layer = FlameLayer(head)
    truth = _truth(head, T=3, seed=8, frames=[10, 11, 13])
    obs, _ = _observe(head, layer, truth, seed=9, n_points=800)
    sizes = [len(p) for p in obs.points]
    save_points(
        path,
        {
            "points": np.concatenate(obs.points).astype(np.float32),
            "normals": np.concatenate(obs.normals).astype(np.float32),
            "frame_offsets": np.concatenate([[0], np.cumsum(sizes)]),
            "landmarks3d": obs.landmarks.astype(np.float32),
            "landmarks3d_valid": obs.valid,
            "frames": obs.frames,
        },
    )
    return obs


def test_a_fit_below_the_matched_floor_stops_and_writes_nothing(head, head_files, tmp_path):
    from talkhead.errors import StageOutputError
    from talkhead.flame.stage import run_align_stage, run_fit_stage

    _write_points(head, tmp_path / "points.npz")
    run_align_stage(tmp_path / "points.npz", head_files, tmp_path / "alignment.json")
    with pytest.raises(StageOutputError, match=r"matched_fraction.*qc.min_fit_matched_fraction"):
        run_fit_stage(
            tmp_path / "points.npz",
            tmp_path / "alignment.json",
            head_files,
            tmp_path / "out",
            # pairs farther than a micrometre rejected: hardly any vertex finds a point
            {"steps": 5, "correspondences": {"max_distance": 1e-6}},
            qc={"min_fit_matched_fraction": 0.2},
        )
    assert not (tmp_path / "out").exists()


def test_stage_writes_the_benchmark_keys_meshes_and_figures(head, head_files, tmp_path):
    from talkhead.flame.meshes import frame_mesh_name
    from talkhead.flame.params import FLAME_PARAM_KEYS, load_flame_params
    from talkhead.flame.stage import run_align_stage, run_fit_stage
    from talkhead.io import load_json

    _write_points(head, tmp_path / "points.npz")
    align = run_align_stage(tmp_path / "points.npz", head_files, tmp_path / "out/alignment.json")
    assert align["n_inliers"] > 0 and align["pooling"] == "all_frames"
    for key in ("scale", "rotation", "rotation_matrices", "translation"):
        assert key in align
    metrics = run_fit_stage(
        tmp_path / "points.npz",
        tmp_path / "out/alignment.json",
        head_files,
        tmp_path / "out",
        {"steps": 60, "lr_milestones": [40, 50], "log_every": 20},
        fps=25.0,
    )
    params = load_flame_params(tmp_path / "out/flame.npz")
    assert set(FLAME_PARAM_KEYS) <= set(params) and float(params["fps"]) == 25.0
    assert params["shape"].shape == (head.num_shape,)
    assert params["expression"].shape == (3, head.num_expression)
    for key, width in (("rotation", 3), ("translation", 3), ("jaw", 3), ("neck", 3)):
        assert params[key].shape == (3, width), key
    assert params["eyes"].shape == (3, 6) and params["scale"].shape == (3, 1)
    assert params["frames"].tolist() == [10, 11, 13]
    meshes = sorted(p.name for p in (tmp_path / "out/flame_meshes").iterdir())
    assert (
        meshes
        == [frame_mesh_name(t) for t in (10, 11, 13)]
        == [
            "frame_00010.ply",
            "frame_00011.ply",
            "frame_00013.ply",
        ]
    )
    import trimesh

    mesh = trimesh.load(tmp_path / "out/flame_meshes/frame_00013.ply", process=False)
    np.testing.assert_allclose(mesh.vertices, _posed(FlameLayer(head), params)[0][2], atol=1e-5)
    template = trimesh.load(tmp_path / "out/template.ply", process=False)
    assert template.vertices.shape == (head.num_vertices, 3)
    written = load_json(tmp_path / "out/metrics.json")
    assert written == pytest.approx(metrics, nan_ok=True)
    assert {"landmark_residual_mm", "plane_residual_mm", "jitter_mae", "jitter_rmse"} <= set(
        written
    )
    assert "seconds_per_frame" in load_json(tmp_path / "out/timing.json")
    log_rows = (tmp_path / "out/fit_log.csv").read_text().splitlines()
    assert log_rows[0].startswith("step,lr_factor,lmk,point,plane")
    assert [r.split(",")[0] for r in log_rows[1:]] == ["0", "20", "40", "59"]
    assert not list((tmp_path / "out").glob(".*"))  # nothing partial left behind


def test_landmarks_in_millimetres_are_reported_not_fitted(head, head_files, tmp_path):
    from talkhead.flame.stage import run_align_stage
    from talkhead.points.io import save_points

    layer = FlameLayer(head)
    obs, _ = _observe(head, layer, _truth(head, T=2), n_points=100)
    save_points(
        tmp_path / "points.npz",
        {
            "points": np.concatenate(obs.points).astype(np.float32) * 1000,
            "normals": np.concatenate(obs.normals).astype(np.float32),
            "frame_offsets": np.array([0, 100, 200]),
            "landmarks3d": (obs.landmarks * 1000).astype(np.float32),
            "landmarks3d_valid": obs.valid,
            "frames": obs.frames,
        },
    )
    with pytest.raises(FittingError, match="millimetres"):
        run_align_stage(tmp_path / "points.npz", head_files, tmp_path / "alignment.json")
    assert not (tmp_path / "alignment.json").exists()
