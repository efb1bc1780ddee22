"""Alignment of the FLAME template to 3D landmarks (FaceTalk supplement, section D): a known
similarity recovered through noise and gross outliers, units reported, FLAME's root-joint
convention reproduced by FlameLayer, the JSON file, and the errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from talkhead.config import from_mapping
from talkhead.errors import ConfigError, FittingError
from talkhead.flame import FlameLayer, model_from_arrays
from talkhead.flame.align import (
    AlignConfig,
    Alignment,
    align_template,
    flame_rigid_from_similarity,
    load_alignment,
    save_alignment,
)
from talkhead.geometry.similarity import procrustes
from talkhead.synth.head.model import build_head_model

torch.set_num_threads(1)

S_TRUE = 1.08
R_TRUE = Rotation.from_rotvec([0.15, -0.6, 0.2]).as_matrix()
T_TRUE = np.array([0.03, -0.05, 1.1])


@pytest.fixture(scope="module")
def model():
    arrays = build_head_model(seed=0, n_shape=4, n_expression=5, detail=0.5)
    m = model_from_arrays(arrays, "synthetic head")
    m.lmk_faces_idx = np.asarray(arrays["lmk_face_idx"], dtype=np.int64)
    m.lmk_bary_coords = np.asarray(arrays["lmk_b_coords"], dtype=np.float64)
    return m


@pytest.fixture(scope="module")
def layer(model):
    return FlameLayer(model, dtype=torch.float64)


@pytest.fixture(scope="module")
def template(layer) -> np.ndarray:
    """(68, 3) the template's landmarks at zero shape, expression and pose."""
    with torch.no_grad():
        return layer().landmarks[0].numpy()


def sequence(template, T=25, noise=0.001, outliers=0.1, invalid=0.1, seed=0):
    """Landmarks of the template moved by the true similarity, with per-axis Gaussian noise,
    a fraction of gross outliers (3 to 10 cm off) and invalid entries holding garbage."""
    rng = np.random.default_rng(seed)
    L = len(template)
    lmk = np.broadcast_to(S_TRUE * template @ R_TRUE.T + T_TRUE, (T, L, 3)).copy()
    lmk += rng.normal(size=lmk.shape) * noise
    valid = rng.random((T, L)) > invalid
    bad = valid & (rng.random((T, L)) < outliers)
    d = rng.normal(size=(T, L, 3))
    d *= (rng.uniform(0.03, 0.10, size=(T, L)) / np.linalg.norm(d, axis=2))[..., None]
    lmk[bad] += d[bad]
    lmk[~valid] = np.where(rng.random(((~valid).sum(), 1)) < 0.5, np.nan, 1e3)
    return lmk, valid, bad


def angle_deg(Ra, Rb) -> float:
    return float(np.degrees(np.linalg.norm(Rotation.from_matrix(Ra @ Rb.T).as_rotvec())))


def vertex_errors_mm(a: Alignment, vertices) -> np.ndarray:
    want = S_TRUE * vertices @ R_TRUE.T + T_TRUE
    return np.linalg.norm(a.transform(vertices) - want, axis=1) * 1000


# ---------------------------------------------------------------------------------------------
# Recovery


def test_a_known_similarity_is_recovered_through_noise_and_outliers(template, model):
    """0.5 mm noise per axis, 10 % gross outliers, 40 frames: within 0.1 mm and 0.1 degree."""
    lmk, valid, bad = sequence(template, T=40, noise=0.0005)
    assert bad.sum() > 0.08 * valid.sum()
    a = align_template(template, lmk, valid, frames=np.arange(100, 140))
    assert vertex_errors_mm(a, template).max() < 0.1
    assert vertex_errors_mm(a, model.v_template).mean() < 0.1
    assert angle_deg(a.R, R_TRUE) < 0.1
    assert a.scale == pytest.approx(S_TRUE, abs=5e-4)
    # the outliers and nothing else are dropped
    np.testing.assert_array_equal(a.inliers, valid & ~bad)
    assert a.n_pairs == valid.sum() and a.n_inliers == (valid & ~bad).sum()
    assert a.inlier_fraction == pytest.approx(a.n_inliers / a.n_pairs)
    # residuals of 0.5 mm per-axis noise: mean |n| = 0.5 sqrt(8/pi) mm, RMS 0.5 sqrt(3) mm
    assert a.residual_mean_mm == pytest.approx(0.5 * np.sqrt(8 / np.pi), rel=0.05)
    assert a.residual_rms_mm == pytest.approx(0.5 * np.sqrt(3.0), rel=0.05)
    # step 2 is the rigid (unscaled) fit of every valid pair, its residual taken on the inliers
    f, k = np.nonzero(valid)
    R0, t0 = procrustes(template[k], lmk[f, k])
    np.testing.assert_allclose(a.rigid_R, R0, atol=1e-12)
    np.testing.assert_allclose(a.rigid_t, t0, atol=1e-12)
    f, k = np.nonzero(valid & ~bad)
    rigid_res = np.linalg.norm(template[k] @ R0.T + t0 - lmk[f, k], axis=1).mean() * 1000
    assert a.rigid_residual_mean_mm == pytest.approx(rigid_res, rel=1e-9)
    # the rigid transform cannot absorb the 8 % scale: its residual on the same pairs is larger
    assert a.rigid_residual_mean_mm > 3 * a.residual_mean_mm
    assert a.units_scale == pytest.approx(S_TRUE, rel=0.1)
    np.testing.assert_array_equal(a.frames, np.arange(100, 140))
    np.testing.assert_array_equal(a.inlier_landmarks, np.arange(len(template)))
    # without the outlier step the same data give a visibly worse fit
    loose = align_template(template, lmk, valid, AlignConfig(outlier_threshold=1.0))
    assert loose.n_inliers == loose.n_pairs
    assert vertex_errors_mm(loose, template).max() > 0.3


def test_median_pooling_recovers_the_similarity_too(template, model):
    lmk, valid, bad = sequence(template, T=31)
    a = align_template(template, lmk, valid, AlignConfig(pooling="median"))
    assert a.pooling == "median"
    assert vertex_errors_mm(a, template).max() < 0.5
    assert angle_deg(a.R, R_TRUE) < 0.3
    np.testing.assert_array_equal(a.inliers, valid & ~bad)
    # one pair per landmark, each a median of ~25 noisy frames: a smaller residual
    assert a.residual_mean_mm < 0.6
    ok = valid & ~bad
    med = np.stack([np.median(lmk[ok[:, k], k], axis=0) for k in range(len(template))])
    res = np.linalg.norm(a.transform(template) - med, axis=1) * 1000
    assert a.residual_mean_mm == pytest.approx(res.mean(), rel=1e-9)
    assert a.residual_rms_mm == pytest.approx(np.sqrt(np.mean(res**2)), rel=1e-9)
    # steps 1-2 work on the medians of every valid observation too
    all_med = np.stack([np.median(lmk[valid[:, k], k], axis=0) for k in range(len(template))])
    R0, t0 = procrustes(template, all_med)
    np.testing.assert_allclose(a.rigid_R, R0, atol=1e-12)
    np.testing.assert_allclose(a.rigid_t, t0, atol=1e-12)


def test_median_pooling_takes_the_median_of_each_landmark(template):
    """One landmark 15 mm off (within the outlier threshold) in 1 of 3 frames: the median
    ignores it, the pooled fit does not."""
    lmk, valid, _ = sequence(template, T=3, noise=0.0, outliers=0.0, invalid=0.0)
    lmk[0, 30] += [0.015, 0.0, 0.0]
    a = align_template(template, lmk, valid, AlignConfig(pooling="median"))
    assert a.inliers.all()
    assert a.scale == pytest.approx(S_TRUE, rel=1e-12)
    np.testing.assert_allclose(a.R, R_TRUE, atol=1e-12)
    assert a.residual_mean_mm < 1e-9
    pooled = align_template(template, lmk, valid)
    assert pooled.inliers.all()
    assert pooled.residual_mean_mm > 0.05
    assert abs(pooled.scale - S_TRUE) > 1e-6


def test_inlier_landmarks_are_those_inlier_in_half_their_valid_frames(template):
    lmk, valid, _ = sequence(template, T=8, outliers=0.0, invalid=0.0)
    valid[:, 5] = [True] * 4 + [False] * 4
    lmk[:2, 5] += [0.05, 0.0, 0.0]  # 2 of its 4 valid frames are outliers: kept (half)
    lmk[:5, 6] += [0.0, 0.05, 0.0]  # 5 of 8: dropped
    lmk[0, 7] += [0.0, 0.0, 0.05]  # 1 of 8: kept
    valid[:, 8] = False  # never valid: not listed
    a = align_template(template, lmk, valid)
    expected = [k for k in range(len(template)) if k not in (6, 8)]
    np.testing.assert_array_equal(a.inlier_landmarks, expected)
    assert a.inliers[:, 6].sum() == 3 and a.inliers[:, 5].sum() == 2


# ---------------------------------------------------------------------------------------------
# FLAME's convention


def test_flame_parameters_reproduce_the_similarity_in_flame_layer(layer, model, template):
    lmk, valid, _ = sequence(template, T=6, noise=0.0, outliers=0.0)
    a = align_template(template, lmk, valid)
    j0 = model.rest_joints()[0]
    assert np.linalg.norm(j0) > 0.01  # the root joint is off the origin: the test can fail
    p = a.flame_rigid(j0)
    assert p["scale"].shape == (1,) and p["rotation"].shape == (3,)
    assert p["translation"].shape == (3,)
    with torch.no_grad():
        out = layer(
            rotation=torch.from_numpy(p["rotation"]),
            translation=torch.from_numpy(p["translation"]),
            scale=torch.from_numpy(p["scale"]),
        )
    want = a.scale * model.v_template @ a.R.T + a.t
    np.testing.assert_allclose(out.vertices[0].numpy(), want, atol=1e-12)
    np.testing.assert_allclose(out.landmarks[0].numpy(), a.transform(template), atol=1e-12)
    np.testing.assert_allclose(
        out.vertices[0].numpy(), S_TRUE * model.v_template @ R_TRUE.T + T_TRUE, atol=1e-9
    )
    # FLAME's translation is not the similarity's: the rotation turns about j0
    assert np.linalg.norm(p["translation"] - a.t) > 1e-3
    np.testing.assert_allclose(p["translation"], a.t - a.scale * (j0 - a.R @ j0), atol=1e-15)


def test_flame_rigid_conversion_checks_the_root_joint():
    with pytest.raises(ValueError, match=r"root_joint must be a finite \(3,\) point"):
        flame_rigid_from_similarity(1.0, np.eye(3), np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="root_joint"):
        flame_rigid_from_similarity(1.0, np.eye(3), np.zeros(3), np.array([0.0, np.nan, 0.0]))


# ---------------------------------------------------------------------------------------------
# The file

KEYS = {
    "scale",
    "rotation",
    "rotation_matrices",
    "translation",
    "root_joint",
    "similarity",
    "rigid",
    "units_scale",
    "inlier_landmarks",
    "inlier_fraction",
    "n_pairs",
    "n_inliers",
    "residual_mean_mm",
    "residual_rms_mm",
    "rigid_residual_mean_mm",
    "pooling",
    "frames",
    "valid_mask",
    "inlier_mask",
}


def test_the_alignment_file_round_trips_with_benchmark_keys(tmp_path, template, model):
    lmk, valid, _ = sequence(template, T=5)
    a = align_template(template, lmk, valid, frames=[3, 4, 6, 7, 9])
    j0 = model.rest_joints()[0]
    path = tmp_path / "out" / "alignment.json"
    save_alignment(path, a, j0)
    assert sorted(p.name for p in path.parent.iterdir()) == ["alignment.json"]  # no temp file
    data = json.loads(path.read_text())
    assert set(data) == KEYS
    flame = a.flame_rigid(j0)
    np.testing.assert_allclose(data["scale"], flame["scale"])
    np.testing.assert_allclose(data["rotation"], flame["rotation"])
    np.testing.assert_allclose(data["translation"], flame["translation"])
    np.testing.assert_allclose(data["rotation_matrices"], a.R)
    assert data["similarity"]["s"] == a.scale
    np.testing.assert_allclose(data["similarity"]["R"], a.R)
    np.testing.assert_allclose(data["similarity"]["t"], a.t)
    assert data["frames"] == [3, 4, 6, 7, 9]
    assert data["n_pairs"] == a.n_pairs and data["n_inliers"] == a.n_inliers
    assert data["inlier_landmarks"] == a.inlier_landmarks.tolist()
    assert data["pooling"] == "all_frames"
    assert len(data["valid_mask"]) == 5 and len(data["valid_mask"][0]) == len(template)
    assert data["valid_mask"][2][10] == ("1" if valid[2, 10] else "0")
    b = load_alignment(path)
    median = align_template(template, lmk, valid, AlignConfig(pooling="median"))
    save_alignment(tmp_path / "median.json", median, j0)
    assert load_alignment(tmp_path / "median.json").pooling == "median"
    for name in ("scale", "units_scale", "residual_mean_mm", "residual_rms_mm", "pooling"):
        assert getattr(b, name) == getattr(a, name)
    for name in ("R", "t", "rigid_R", "rigid_t", "valid", "inliers", "frames"):
        np.testing.assert_array_equal(getattr(b, name), getattr(a, name))
    assert b.rigid_residual_mean_mm == a.rigid_residual_mean_mm


def nudge(d: dict, key: str, delta: float, sub: str | None = None) -> None:
    """Add ``delta`` to the first number of ``d[key]`` (or ``d[key][sub]``)."""
    a = np.asarray(d[key][sub] if sub else d[key], dtype=float)
    a.flat[0] += delta
    if sub:
        d[key][sub] = a.tolist()
    else:
        d[key] = a.tolist()


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.pop("similarity"), r"missing keys \['similarity'\]"),
        (lambda d: nudge(d, "translation", 1e-7), "'translation' disagrees"),
        (lambda d: nudge(d, "rotation", 1e-7), "'rotation' disagrees"),
        (lambda d: nudge(d, "scale", 1e-7), "'scale' disagrees"),
        (lambda d: nudge(d, "root_joint", 1e-3), "'translation' disagrees"),
        (lambda d: nudge(d, "similarity", 1e-7, "s"), "'scale' disagrees"),
        (lambda d: nudge(d, "rotation_matrices", 1e-10), "'rotation_matrices' disagrees"),
        (lambda d: d.__setitem__("rotation_matrices", [1.0]), "'rotation_matrices' must be"),
        (lambda d: d["rigid"].__setitem__("R", [[1.0]]), r"'R' must be .*\[3, 3\]"),
        (lambda d: d.__setitem__("residual_mean_mm", None), "'residual_mean_mm' must be"),
        (lambda d: d.__setitem__("rigid_residual_mean_mm", [1.0]), "'rigid_residual_mean_mm'"),
        (lambda d: d.__setitem__("root_joint", [0.0, 0.0]), r"'root_joint' must be .*\[3\]"),
        (lambda d: d.__setitem__("scale", 1.0), r"'scale' must be finite with shape \[1\]"),
        (lambda d: d.__setitem__("rotation", [0.0] * 4), r"'rotation' must be .*\[3\]"),
        (lambda d: d.__setitem__("translation", None), r"'translation' must be .*\[3\]"),
        (lambda d: d["similarity"].__setitem__("R", [[1.0, 0.0]]), r"'R' must be .*\[3, 3\]"),
        (lambda d: d["similarity"].__setitem__("t", [0.0] * 2), r"'t' must be .*\[3\]"),
        (lambda d: d["similarity"].__setitem__("s", "x"), "'s' missing or not numeric"),
        (lambda d: d["rigid"].__setitem__("t", [np.inf] * 3), r"'t' must be finite"),
        (lambda d: d.__setitem__("similarity", [1.0]), "'similarity' and 'rigid' must be"),
        (lambda d: d.__setitem__("rigid", "R"), "'similarity' and 'rigid' must be objects"),
        (lambda d: d.__setitem__("inlier_mask", d["inlier_mask"][:-1]), "do not agree"),
        (lambda d: d.__setitem__("frames", [1, 2]), "do not agree"),
        (lambda d: d.__setitem__("valid_mask", ["0" * 68] * 5), "marks pairs"),
        (lambda d: d.__setitem__("valid_mask", ["x"] * 5), "'valid_mask' must be a list of 0/1"),
        (lambda d: d.__setitem__("inlier_mask", "1"), "'inlier_mask' must be a list of 0/1"),
        (lambda d: d.__setitem__("pooling", "mean"), "'pooling' must be"),
        (lambda d: d["inlier_mask"].__setitem__(0, "0" * 67), "rows of 'inlier_mask' differ"),
        (lambda d: d["valid_mask"].__setitem__(0, "0" * 67), "rows of 'valid_mask' differ"),
        (lambda d: d.__setitem__("units_scale", "big"), "'units_scale' missing or not numeric"),
        (lambda d: d.__setitem__("residual_rms_mm", None), "'residual_rms_mm' must be finite"),
    ],
)
def test_a_malformed_alignment_file_is_refused(tmp_path, template, model, edit, match):
    lmk, valid, _ = sequence(template, T=5)
    path = tmp_path / "alignment.json"
    save_alignment(path, align_template(template, lmk, valid), model.rest_joints()[0])
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(FittingError, match=match) as err:
        load_alignment(path)
    assert str(err.value).startswith(f"{path}: ")


def test_an_alignment_file_must_hold_an_object(tmp_path):
    path = tmp_path / "alignment.json"
    path.write_text("[1, 2]")
    with pytest.raises(FittingError, match=f"^{path}: expected a JSON object$"):
        load_alignment(path)


def test_an_unreadable_alignment_file_is_named(tmp_path):
    path = tmp_path / "alignment.json"
    path.write_text("{not json")
    with pytest.raises(FittingError, match="alignment.json: not a readable alignment file"):
        load_alignment(path)


# ---------------------------------------------------------------------------------------------
# Units


@pytest.mark.parametrize(
    ("factor", "unit", "figure"),
    [(1000.0, "millimetres", "1080"), (100.0, "centimetres", "108")],
)
def test_landmarks_in_millimetres_or_centimetres_are_reported(template, factor, unit, figure):
    lmk, valid, _ = sequence(template, T=4, noise=0.0, outliers=0.0)
    with pytest.raises(FittingError) as err:
        align_template(template, lmk * factor, valid, source="seq.npz")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"seq.npz: the 3D landmarks are {figure}")
    assert f"look to be in {unit}" in msg and "align_flame.scale_range [0.5, 2.0]" in msg
    assert f"divide the landmarks by {factor:g}" in msg


def test_a_model_in_millimetres_and_an_odd_scale_are_reported(template):
    lmk, valid, _ = sequence(template, T=4, noise=0.0, outliers=0.0)
    with pytest.raises(FittingError, match=r"model \(flame.model\) looks to be in millimetres"):
        align_template(template * 1000, lmk, valid)
    with pytest.raises(FittingError) as err:
        align_template(template, lmk * 4, valid)
    msg = str(err.value)
    assert "are 4.32 times the size" in msg and "millimetres" not in msg
    assert "centimetres" not in msg
    assert msg.endswith("check the capture's calibration units and flame.landmark_embedding)")
    # a wider range admits it, but the rigid step (no scale) cannot place such a head
    with pytest.raises(FittingError, match="a head 4.32 times the template's size"):
        align_template(template, lmk * 4, valid, AlignConfig(scale_range=(0.5, 5.0)))
    a = align_template(template, lmk * 1.1, valid, AlignConfig(scale_range=(0.5, 5.0)))
    assert a.scale == pytest.approx(1.1 * S_TRUE, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# Errors


def test_no_valid_landmark_is_an_error(template):
    lmk, valid, _ = sequence(template, T=3)
    with pytest.raises(
        FittingError,
        match=r"^seq: no valid 3D landmark in any of its 3 frames: the 2D landmarks were not "
        r"lifted \(see the points stage's landmark figures, backproject.landmark_min_views and "
        r"backproject.landmark_min_conf\)$",
    ):
        align_template(template, lmk, np.zeros_like(valid), source="seq")


def test_nan_in_a_valid_landmark_is_an_error(template):
    lmk, valid, _ = sequence(template, T=3, invalid=0.0)
    lmk[2, 17, 1] = np.nan
    with pytest.raises(FittingError, match="^the sequence: 1 landmarks marked valid"):
        align_template(template, lmk, valid)
    with pytest.raises(
        FittingError, match=r"1 landmarks marked valid are NaN .*frame index 2, landmark 17"
    ):
        align_template(template, lmk, valid)


def test_too_few_inlier_landmarks_is_an_error(template):
    lmk, valid, _ = sequence(template, T=10, outliers=0.0, invalid=0.0)
    valid[:, 5:] = False  # 5 landmarks over 10 frames: 50 pairs but 5 distinct landmarks
    with pytest.raises(FittingError, match=r"5 of 5 landmarks .*align_flame.min_landmarks = 6"):
        align_template(template, lmk, valid)
    a = align_template(template, lmk, valid, AlignConfig(min_landmarks=5))
    assert a.n_inliers == 50
    # a threshold too tight for the noise leaves no inlier landmark
    with pytest.raises(
        FittingError,
        match=r"0 of 68 landmarks lie within align_flame.outlier_threshold \(1e-05 m\)",
    ):
        align_template(template, *sequence(template, T=4)[:2], AlignConfig(outlier_threshold=1e-5))


def test_landmarks_of_another_embedding_are_refused(template):
    lmk, valid, _ = sequence(template, T=3)
    with pytest.raises(
        FittingError, match="67 landmarks per frame, the model's landmark embedding has 68"
    ):
        align_template(template, lmk[:, :67], valid[:, :67])
    with pytest.raises(FittingError, match=r"^the sequence: .*template's"):
        align_template(template, lmk * 40, valid)
    with pytest.raises(FittingError, match="template landmarks must be"):
        align_template(template[:, :2], lmk, valid)
    with pytest.raises(FittingError, match="^template landmarks are not finite"):
        align_template(np.where(np.arange(68)[:, None] == 3, np.nan, template), lmk, valid)
    with pytest.raises(FittingError, match=r"bool \(T, L\) = \(3, 68\) mask, got int64"):
        align_template(template, lmk, valid.astype(int))
    with pytest.raises(FittingError, match=r"\(T, L, 3\)"):
        align_template(template, lmk[0], valid)
    with pytest.raises(FittingError, match="4 frame ids for 3 frames"):
        align_template(template, lmk, valid, frames=[1, 2, 3, 4])


def test_collinear_landmarks_are_a_fitting_error(template):
    lmk, valid, _ = sequence(template, T=3, outliers=0.0, invalid=0.0)
    line = template.copy()
    line[:] = np.linspace(0, 0.1, len(template))[:, None] * [1.0, 0.0, 0.0]
    with pytest.raises(
        FittingError, match="^seq: the similarity on all valid landmarks is not determined"
    ):
        align_template(line, lmk, valid, source="seq")


def test_align_config_checks_its_scale_range():
    cfg = from_mapping(AlignConfig, {"scale_range": [0.8, 1.25]}, "align_flame")
    assert cfg.scale_range == (0.8, 1.25) and cfg.pooling == "all_frames"
    with pytest.raises(ConfigError, match=r"align_flame.scale_range: must be \[low, high\]"):
        from_mapping(AlignConfig, {"scale_range": [1.5, 2.0]}, "align_flame")
    with pytest.raises(ConfigError, match="align_flame.pooling"):
        from_mapping(AlignConfig, {"pooling": "mean"}, "align_flame")
    # a config built in Python is checked too
    lmk, valid, _ = sequence(np.eye(3), T=2)
    with pytest.raises(ConfigError, match=r"align_flame.scale_range: must be \[low, high\]"):
        align_template(np.eye(3), lmk, valid, AlignConfig(scale_range=(0.5, 0.9)))
