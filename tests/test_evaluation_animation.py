"""Known answers of the animation metrics: lip vertex error, FDD, diversity, jitter and the
lip-to-surface error of outputs without a fixed vertex order."""

from __future__ import annotations

import numpy as np
import pytest

from talkhead.evaluation.animation import (
    diversity,
    jitter,
    lip_surface_error_mm,
    lip_vertex_error_mm,
    lip_vertex_error_squared_mm2,
    upper_face_dynamics_deviation_mm,
)

LIPS = np.array([2, 3, 5])


@pytest.fixture
def truth(rng) -> np.ndarray:
    return rng.normal(scale=0.05, size=(12, 8, 3))


def test_identical_sequences_have_no_lip_error(truth):
    assert lip_vertex_error_mm(truth, truth, LIPS) == 0.0
    assert lip_vertex_error_squared_mm2(truth, truth, LIPS) == 0.0


def test_a_one_millimetre_lip_shift_is_one_millimetre(truth, rng):
    direction = rng.normal(size=3)
    pred = truth.copy()
    pred[:, LIPS] += 0.001 * direction / np.linalg.norm(direction)
    assert lip_vertex_error_mm(pred, truth, LIPS) == pytest.approx(1.0, abs=1e-9)
    assert lip_vertex_error_squared_mm2(pred, truth, LIPS) == pytest.approx(1.0, abs=1e-9)
    # a 2 mm shift: the error doubles, the squared variant quadruples
    pred[:, LIPS] += 0.001 * direction / np.linalg.norm(direction)
    assert lip_vertex_error_mm(pred, truth, LIPS) == pytest.approx(2.0, abs=1e-9)
    assert lip_vertex_error_squared_mm2(pred, truth, LIPS) == pytest.approx(4.0, abs=1e-9)


def test_lip_error_is_the_worst_lip_vertex_per_frame(truth):
    pred = truth.copy()
    pred[:6, 2, 0] += 0.003  # 3 mm on one lip vertex in half of the frames
    pred[:, 0, 0] += 0.5  # not a lip vertex: ignored
    assert lip_vertex_error_mm(pred, truth, LIPS) == pytest.approx(1.5, abs=1e-9)


def test_lip_error_rejects_mismatched_shapes(truth):
    with pytest.raises(ValueError, match="must be"):
        lip_vertex_error_mm(truth[:, :7], truth, LIPS)
    with pytest.raises(ValueError, match="indices"):
        lip_vertex_error_mm(truth, truth, np.array([8]))


def test_fdd_is_zero_for_the_truth_and_known_for_a_sinusoid():
    T, V = 200, 6
    template = np.zeros((V, 3))
    t = np.arange(T)
    a, b = 0.004, 0.002  # displacement a + b sin along x: norm std = b / sqrt(2)
    true = np.zeros((T, V, 3))
    true[..., 0] = (a + b * np.sin(2 * np.pi * t / 20))[:, None]
    upper = np.array([0, 1, 4])
    assert upper_face_dynamics_deviation_mm(true, true, template, upper) == 0.0
    still = np.zeros_like(true) + np.array([a, 0, 0])  # a prediction with a still upper face
    fdd = upper_face_dynamics_deviation_mm(still, true, template, upper)
    assert fdd == pytest.approx(2.0 / np.sqrt(2), rel=1e-6)
    # a prediction that moves twice as much: negative by the same amount
    double = np.zeros_like(true)
    double[..., 0] = (a + 2 * b * np.sin(2 * np.pi * t / 20))[:, None]
    assert upper_face_dynamics_deviation_mm(double, true, template, upper) == pytest.approx(
        -fdd, rel=1e-6
    )


def test_diversity_of_identical_samples_is_zero_and_of_known_distance_that_distance(rng):
    base = rng.normal(size=(10, 16))
    assert diversity(np.stack([base] * 4)) == 0.0
    unit = rng.normal(size=16)
    unit /= np.linalg.norm(unit)
    assert diversity(np.stack([base, base + 0.3 * unit])) == pytest.approx(0.3, abs=1e-12)
    # three samples on a line, 0.3 apart: pairs at 0.3, 0.3, 0.6 -> mean 0.4
    three = np.stack([base, base + 0.3 * unit, base + 0.6 * unit])
    assert diversity(three) == pytest.approx(0.4, abs=1e-12)
    with pytest.raises(ValueError, match="K >= 2"):
        diversity(base[None])


def test_jitter_of_a_still_sequence_is_zero_and_of_a_ramp_its_step():
    assert jitter(np.ones((5, 3, 3))) == {"mae": 0.0, "rmse": 0.0}
    ramp = np.arange(6, dtype=float)[:, None] * np.array([0.5, -0.5])
    j = jitter(ramp)
    assert j["mae"] == pytest.approx(0.5) and j["rmse"] == pytest.approx(0.5)


def test_lip_surface_error_of_a_plane_one_millimetre_away():
    verts = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], float) * 0.05
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    lips = np.zeros((3, 4, 3))
    lips[..., :2] = np.random.default_rng(0).uniform(-0.02, 0.02, size=(3, 4, 2))
    lips[..., 2] = 0.001
    assert lip_surface_error_mm(lips, [(verts, faces)] * 3) == pytest.approx(1.0, abs=1e-4)
    lips[0, 0, 2] = 0.004  # the worst point of frame 0: 4 mm
    assert lip_surface_error_mm(lips, [(verts, faces)] * 3) == pytest.approx(2.0, abs=1e-4)
