"""Surface metrics (talkhead.geometry.surface): known answers on spheres, plates and fins."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from talkhead.errors import EvaluationError
from talkhead.geometry.surface import sample_surface, surface_metrics, threshold_name

MM = 1e-3
R = 0.1


def sphere(radius: float = R, centre=(0.0, 0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    m = trimesh.creation.icosphere(subdivisions=5, radius=radius)
    return np.asarray(m.vertices) + np.asarray(centre), np.asarray(m.faces)


def plate(x0: float, x1: float, y0: float, y1: float, z: float = 0.0, n: int = 10):
    """An (n x n)-quad grid in the plane z, two triangles per quad."""
    xs, ys = np.linspace(x0, x1, n + 1), np.linspace(y0, y1, n + 1)
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    v = np.stack([X.ravel(), Y.ravel(), np.full(X.size, z)], axis=1)
    i = np.arange(n)[:, None] * (n + 1) + np.arange(n)[None, :]
    a, b, c, d = i.ravel(), i.ravel() + 1, i.ravel() + n + 1, i.ravel() + n + 2
    return v, np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])


def test_threshold_names() -> None:
    assert [threshold_name(t) for t in (0.001, 0.005, 0.0025)] == ["1mm", "5mm", "2.5mm"]


def test_samples_are_uniform_by_area_and_on_the_mesh() -> None:
    v, f = plate(0, 0.03, 0, 0.01, n=3)  # 18 triangles of equal area
    v[:, 0] = np.where(v[:, 0] > 0.015, 0.015 + (v[:, 0] - 0.015) * 3, v[:, 0])  # stretch x>1.5
    rng = np.random.default_rng(0)
    pts, nrm, idx = sample_surface(v, f, 40_000, rng)
    assert np.allclose(pts[:, 2], 0) and np.allclose(np.abs(nrm[:, 2]), 1)
    # the area beyond x = 15 mm is 3 x 15 mm wide against 15 mm: 3/4 of the samples
    assert np.mean(pts[:, 0] > 0.015) == pytest.approx(0.75, abs=0.01)
    mask = np.zeros(len(f), bool)
    mask[:4] = True
    _, _, idx = sample_surface(v, f, 1000, rng, face_mask=mask)
    assert set(np.unique(idx)) <= {0, 1, 2, 3}


def test_identical_meshes_score_perfectly() -> None:
    v, f = sphere()
    m = surface_metrics(v, f, v, f, n_samples=20_000)
    assert m["chamfer_l1"] < 1e-6 and m["accuracy"] < 1e-6 and m["completeness"] < 1e-6
    assert m["fscore_1mm"] == 1.0 and m["fscore_5mm"] == 1.0
    assert m["normal_consistency"] > 0.9999


def test_concentric_spheres_one_millimetre_apart() -> None:
    v, f = sphere()
    v1, f1 = sphere(R + 1 * MM)
    m = surface_metrics(v1, f1, v, f, n_samples=20_000)
    assert m["chamfer_l1"] == pytest.approx(1 * MM, rel=0.03)
    assert m["accuracy"] == pytest.approx(1 * MM, rel=0.03)
    assert m["completeness"] == pytest.approx(1 * MM, rel=0.03)
    assert m["fscore_5mm"] == 1.0
    assert m["normal_consistency"] > 0.999
    v15, f15 = sphere(R + 1.5 * MM)
    m15 = surface_metrics(v15, f15, v, f, n_samples=20_000)
    assert m15["chamfer_l1"] == pytest.approx(1.5 * MM, rel=0.03)
    assert m15["fscore_1mm"] == 0.0 and m15["fscore_5mm"] == 1.0


def test_plate_translated_along_its_normal_by_three_millimetres() -> None:
    v, f = plate(0, 0.05, 0, 0.05)
    m = surface_metrics(v + [0, 0, 3 * MM], f, v, f, n_samples=5000)
    assert m["accuracy"] == pytest.approx(3 * MM, rel=1e-4)
    assert m["completeness"] == pytest.approx(3 * MM, rel=1e-4)
    assert m["fscore_1mm"] == 0.0 and m["fscore_5mm"] == 1.0


def test_sphere_translated_by_three_millimetres() -> None:
    # distance to the shifted sphere ~ |d . n|; its mean over the sphere is |d| / 2
    v, f = sphere()
    m = surface_metrics(v + [3 * MM, 0, 0], f, v, f, n_samples=40_000)
    assert m["chamfer_l1"] == pytest.approx(1.5 * MM, rel=0.03)
    # within 1 mm where |cos| <= 1/3: a third of the sphere
    assert m["recall_1mm"] == pytest.approx(1 / 3, abs=0.02)


def test_half_a_plate_against_the_plate() -> None:
    true_v, true_f = plate(0, 0.01, 0, 0.01)
    pred_v, pred_f = plate(0, 0.005, 0, 0.01)
    m = surface_metrics(pred_v, pred_f, true_v, true_f, n_samples=40_000)
    assert m["accuracy"] < 1e-7 and m["precision_1mm"] == 1.0
    assert m["completeness"] == pytest.approx(1.25 * MM, rel=0.03)  # mean of max(x - 5, 0)
    assert m["recall_1mm"] == pytest.approx(0.6, abs=0.01)
    assert m["fscore_1mm"] == pytest.approx(0.75, abs=0.01)


def test_region_crop_drops_a_blob_only_outside_the_region() -> None:
    true_v, true_f = plate(-0.05, 0.05, -0.05, 0.05)
    centres = true_v[true_f].mean(axis=1)
    region = centres[:, 0] < 0  # the half x < 0
    blob_v, blob_f = sphere(0.01)
    for side, counted in ((-1, True), (1, False)):
        b = blob_v + [side * 0.04, 0.0, 0.05]  # 5 cm above one half
        pred_v = np.concatenate([true_v, b])
        pred_f = np.concatenate([true_f, blob_f + len(true_v)])
        m = surface_metrics(
            pred_v, pred_f, true_v, true_f, true_region_faces=region, n_samples=20_000
        )
        assert m["completeness"] < 1e-7
        if counted:
            assert m["accuracy"] > 5 * MM and m["precision_5mm"] < 0.95
        else:
            assert m["accuracy"] < 1e-7 and m["precision_1mm"] == 1.0
        assert m["pred_samples"] > 15_000  # the crop keeps about n_samples


def test_perpendicular_normals_give_zero_consistency() -> None:
    # a floor (normal z) and a comb of fins standing on it (normals x): every closest point
    # of one lies on the other with a perpendicular normal
    floor_v, floor_f = plate(0, 0.05, 0, 0.05, n=1)
    vs, fs = [], []
    for k, x in enumerate(np.linspace(0.0, 0.05, 26)):
        vs.append([[x, 0, 0], [x, 0.05, 0], [x, 0, 0.002], [x, 0.05, 0.002]])
        fs.append(np.array([[0, 1, 2], [1, 3, 2]]) + 4 * k)
    fins_v, fins_f = np.concatenate(vs), np.concatenate(fs)
    m = surface_metrics(fins_v, fins_f, floor_v, floor_f, n_samples=20_000)
    assert m["normal_consistency"] < 1e-3
    same = surface_metrics(floor_v, floor_f, floor_v, floor_f, n_samples=20_000)
    assert same["normal_consistency"] > 0.9999


def test_seed_fixes_the_figures() -> None:
    v, f = sphere()
    v1, f1 = sphere(R + 1 * MM, centre=(0.001, 0, 0))
    a = surface_metrics(v1, f1, v, f, n_samples=2000, seed=3)
    b = surface_metrics(v1, f1, v, f, n_samples=2000, seed=3)
    c = surface_metrics(v1, f1, v, f, n_samples=2000, seed=4)
    assert a == b and a != c


def test_bad_input_raises() -> None:
    v, f = sphere()
    with pytest.raises(EvaluationError, match="predicted mesh is empty"):
        surface_metrics(np.zeros((0, 3)), np.zeros((0, 3), int), v, f)
    with pytest.raises(EvaluationError, match="true region is empty"):
        surface_metrics(v, f, v, f, true_region_faces=np.zeros(len(f), bool))
    with pytest.raises(EvaluationError, match=r"true region: expected \(\d+,\) bool"):
        surface_metrics(v, f, v, f, true_region_faces=np.ones(3, bool))
    with pytest.raises(EvaluationError, match="face indices"):
        surface_metrics(v, f + len(v), v, f)
    region = v[f].mean(axis=1)[:, 0] < -0.09  # a cap at x < -9 cm
    far_v, far_f = sphere(0.01, centre=(0.2, 0, 0))  # nearest to the other side
    with pytest.raises(EvaluationError, match="nearest to the true region"):
        surface_metrics(far_v, far_f, v, f, true_region_faces=region, n_samples=1000)
