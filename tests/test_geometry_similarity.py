"""Umeyama / Procrustes: exact recovery, weights, the reflection guard, optimality, errors, and
hypothesis properties (round trips, inverses, equivariance under rigid motions, permutations,
duplicated pairs as integer weights). The rotation is checked against scipy's
``Rotation.align_vectors`` (an independent solver of the weighted Wahba problem)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from talkhead.geometry.similarity import apply_similarity, procrustes, umeyama

# Derandomized: the same examples on every run (stable for CI and for benchmarks/mutation.py).
FAST = settings(max_examples=50, deadline=None, derandomize=True)


def random_rotation(seed: int) -> np.ndarray:
    return Rotation.random(random_state=seed).as_matrix()


def cost(s, R, t, src, dst, w=None):
    w = np.ones(len(src)) if w is None else w
    return float(w @ np.sum((s * src @ R.T + t - dst) ** 2, axis=1))


def reference_rotation(src, dst, w=None):
    """The weighted Wahba rotation of the centred pairs, by scipy (independent of our SVD)."""
    w = np.ones(len(src)) if w is None else np.asarray(w, float)
    mx, my = w @ src / w.sum(), w @ dst / w.sum()
    rot, _ = Rotation.align_vectors(dst - my, src - mx, weights=w)
    return rot.as_matrix()


@pytest.fixture
def pts(rng):
    return rng.normal(size=(30, 3)) * [0.08, 0.06, 0.04]


# ---------------------------------------------------------------------------------------------
# Exact recovery


def test_a_known_similarity_is_recovered_exactly(pts):
    R = random_rotation(1)
    s, t = 1.7, np.array([0.3, -1.2, 2.5])
    dst = s * pts @ R.T + t
    s2, R2, t2 = umeyama(pts, dst)
    assert s2 == pytest.approx(s, rel=1e-12)
    np.testing.assert_allclose(R2, R, atol=1e-12)
    np.testing.assert_allclose(t2, t, atol=1e-12)
    np.testing.assert_allclose(apply_similarity(s2, R2, t2, pts), dst, atol=1e-12)


def test_without_scale_the_rigid_part_is_recovered(pts):
    R = random_rotation(2)
    t = np.array([0.1, 0.2, -0.3])
    R2, t2 = procrustes(pts, pts @ R.T + t)
    np.testing.assert_allclose(R2, R, atol=1e-12)
    np.testing.assert_allclose(t2, t, atol=1e-12)
    s3, R3, t3 = umeyama(pts, pts @ R.T + t, with_scale=False)
    assert s3 == 1.0
    np.testing.assert_allclose(R3, R, atol=1e-12)
    # a scaled target: the same rotation, s = 1, centroids matched
    dst = 2.0 * pts @ R.T + t
    R4, t4 = procrustes(pts, dst)
    np.testing.assert_allclose(R4, R, atol=1e-12)
    np.testing.assert_allclose(R4 @ pts.mean(0) + t4, dst.mean(0), atol=1e-12)


def test_the_solution_is_optimal_with_noise_and_weights(pts, rng):
    """No nearby (s, R, t) has a lower weighted cost; the scale uses the source's variance."""
    R, s, t = random_rotation(3), 0.8, np.array([0.0, 0.1, 1.0])
    dst = s * pts @ R.T + t + rng.normal(size=pts.shape) * 0.01
    w = rng.random(len(pts)) * 3
    s2, R2, t2 = umeyama(pts, dst, w)
    best = cost(s2, R2, t2, pts, dst, w)
    np.testing.assert_allclose(R2, reference_rotation(pts, dst, w), atol=1e-10)
    for k in range(200):
        ds = rng.normal() * 1e-3 if k % 2 else 0.0
        dR = Rotation.from_rotvec(rng.normal(size=3) * 1e-3).as_matrix()
        dt = rng.normal(size=3) * 1e-3
        assert cost(s2 + ds, dR @ R2, t2 + dt, pts, dst, w) > best
    # and the same for the rigid fit
    R3, t3 = procrustes(pts, dst, w)
    best3 = cost(1.0, R3, t3, pts, dst, w)
    for _ in range(100):
        dR = Rotation.from_rotvec(rng.normal(size=3) * 1e-3).as_matrix()
        assert cost(1.0, dR @ R3, t3 + rng.normal(size=3) * 1e-3, pts, dst, w) > best3


def test_closed_form_scale_against_the_weighted_statistics(pts, rng):
    """s = tr(D S) / σ_x² with σ_x² the weighted variance of src (eq. 42)."""
    dst = pts @ random_rotation(4).T * 1.3 + rng.normal(size=pts.shape) * 0.02
    w = rng.random(len(pts))
    s, R, t = umeyama(pts, dst, w)
    wn = w / w.sum()
    xc, yc = pts - wn @ pts, dst - wn @ dst
    # at the optimum, s = Σ w yc·(R xc) / Σ w |xc|²
    expected = float(wn @ np.sum(yc * (xc @ R.T), axis=1)) / float(wn @ np.sum(xc * xc, axis=1))
    assert s == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(t, wn @ dst - s * R @ (wn @ pts), atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Weights


def test_zero_weights_ignore_pairs_exactly(pts, rng):
    R, s, t = random_rotation(5), 1.2, np.array([1.0, 2.0, 3.0])
    dst = s * pts @ R.T + t
    bad = rng.random(len(pts)) < 0.3
    dst[bad] += rng.normal(size=(bad.sum(), 3))  # gross outliers
    s2, R2, t2 = umeyama(pts, dst, (~bad).astype(float))
    assert s2 == pytest.approx(s, rel=1e-12)
    np.testing.assert_allclose(R2, R, atol=1e-12)
    np.testing.assert_allclose(t2, t, atol=1e-12)
    # without the weights the outliers pull the fit away
    s3, _, _ = umeyama(pts, dst)
    assert abs(s3 - s) > 1e-3


def test_weights_change_the_fit_and_only_their_ratios_matter(pts, rng):
    dst = pts @ random_rotation(6).T + rng.normal(size=pts.shape) * 0.03
    w = rng.random(len(pts))
    a = umeyama(pts, dst, w)
    b = umeyama(pts, dst, 7.5 * w)
    c = umeyama(pts, dst)
    assert a[0] == pytest.approx(b[0], rel=1e-12)
    np.testing.assert_allclose(a[1], b[1], atol=1e-12)
    np.testing.assert_allclose(a[2], b[2], atol=1e-12)
    assert abs(a[0] - c[0]) > 1e-4
    assert np.abs(a[1] - c[1]).max() > 1e-4


# ---------------------------------------------------------------------------------------------
# Reflections


def test_a_mirrored_target_gives_the_best_proper_rotation(pts, rng):
    M = np.diag([-1.0, 1.0, 1.0])
    dst = pts @ (random_rotation(7) @ M).T  # a reflection: no rotation maps src onto it
    for _s, R, _ in (umeyama(pts, dst), (1.0, *procrustes(pts, dst))):
        assert np.linalg.det(R) == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(R, reference_rotation(pts, dst), atol=1e-9)
    # the unguarded solution (U Vᵀ) would be the reflection itself, with zero cost
    s, R, t = umeyama(pts, dst)
    assert cost(s, R, t, pts, dst) > 1e-4
    # tr(D S) subtracts the smallest singular value: the scale that is optimal for this R
    xc, yc = pts - pts.mean(0), dst - dst.mean(0)
    assert s == pytest.approx(np.sum(yc * (xc @ R.T)) / np.sum(xc * xc), rel=1e-12)
    assert s < 0.99


def test_a_mirrored_planar_set_is_matched_exactly_by_a_rotation(rng):
    """A plane's mirror image is a half turn of it: the guard must still find the exact fit."""
    flat = np.c_[rng.normal(size=(12, 2)), np.zeros(12)]
    dst = flat * [-1.0, 1.0, 1.0] * 2.0 + [0.5, 0.0, 0.0]
    s, R, t = umeyama(flat, dst)
    assert np.linalg.det(R) == pytest.approx(1.0, abs=1e-12)
    assert s == pytest.approx(2.0, rel=1e-12)
    np.testing.assert_allclose(apply_similarity(s, R, t, flat), dst, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# apply_similarity and errors


def test_apply_similarity_any_leading_shape():
    R = random_rotation(8)
    p = np.arange(24, dtype=float).reshape(2, 4, 3)
    out = apply_similarity(2.0, R, np.array([1.0, 0.0, -1.0]), p)
    assert out.shape == (2, 4, 3)
    np.testing.assert_allclose(out[1, 2], 2.0 * R @ p[1, 2] + [1.0, 0.0, -1.0])
    np.testing.assert_allclose(apply_similarity(1.0, R, np.zeros(3), p[0, 0]), R @ p[0, 0])
    with pytest.raises(ValueError, match=r"points must be \(\.\.\., 3\)"):
        apply_similarity(1.0, R, np.zeros(3), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"R must be \(3, 3\) and t \(3,\)"):
        apply_similarity(1.0, R[:2], np.zeros(3), p)


# Two spread-out sets whose cross-covariance has rank 1: no rotation is determined.
CROSS = np.array([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]])
CROSS_SQUASHED = np.array([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, 1, 0]])


@pytest.mark.parametrize(
    ("src", "dst", "w", "match"),
    [
        (np.zeros((5, 2)), np.zeros((5, 2)), None, r"src must be \(N, 3\)"),
        (np.eye(3), np.eye(4, 3), None, r"dst must have the shape of src \(3, 3\)"),
        (np.eye(3)[:2], np.eye(3)[:2], None, "at least 3 point pairs .* got 2"),
        (np.eye(3), np.eye(3), np.array([1.0, 1.0, 0.0]), "at least 3 point pairs .* got 2"),
        (np.eye(3), np.eye(3), np.ones(4), r"weights must be \(3,\)"),
        (np.eye(3), np.eye(3), np.array([1.0, -1.0, 1.0]), "non-negative"),
        (np.eye(3), np.eye(3), np.array([1.0, np.nan, 1.0]), "finite"),
        (np.array([[0, 0, 0], [1, 1, 1], [2, 2, 2.0]]), np.eye(3), None, "src points .*collinear"),
        (np.eye(3), np.array([[0, 0, 0], [0, 0, 1], [0, 0, 3.0]]), None, "dst points .*collinear"),
        (np.eye(3), np.ones((3, 3)), None, "dst points are collinear or coincident"),
        (CROSS, CROSS_SQUASHED, None, "covary along one direction only"),
        (np.eye(3) * [1, 1, np.nan], np.eye(3), None, "finite"),
        (np.eye(3), np.full((3, 3), np.inf), None, "finite"),
    ],
)
def test_bad_input_is_refused(src, dst, w, match):
    with pytest.raises(ValueError, match=match):
        umeyama(src, dst, w)
    with pytest.raises(ValueError, match=match):
        procrustes(src, dst, w)


def test_nearly_collinear_but_measurable_input_is_fitted(rng):
    line = np.c_[np.linspace(0, 1, 10), np.zeros(10), np.zeros(10)]
    wobble = line + rng.normal(size=line.shape) * 1e-4
    R = random_rotation(9)
    s, R2, _ = umeyama(wobble, wobble @ R.T)
    np.testing.assert_allclose(R2, R, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# Properties

seeds = st.integers(0, 2**31 - 1)
scales = st.floats(0.05, 20.0)
translations = st.tuples(*[st.floats(-5, 5)] * 3).map(np.array)
sizes = st.integers(3, 25)


def cloud(seed: int, n: int, planar: bool = False) -> np.ndarray:
    p = np.random.default_rng(seed).normal(size=(n, 3)) * [0.1, 0.07, 0.05]
    if planar:
        p[:, 2] = 0.0
    return p


def well_spread(p: np.ndarray) -> bool:
    sv = np.linalg.svd(p - p.mean(0), compute_uv=False)
    return sv[1] > 1e-3 * sv[0]


@FAST
@given(seeds, seeds, sizes, scales, translations, st.booleans())
def test_round_trip_recovers_any_similarity(seed, rot_seed, n, s, t, planar):
    src = cloud(seed, n, planar)
    assume(well_spread(src))
    R = random_rotation(rot_seed)
    s2, R2, t2 = umeyama(src, apply_similarity(s, R, t, src))
    assert s2 == pytest.approx(s, rel=1e-9)
    np.testing.assert_allclose(R2, R, atol=1e-8)
    np.testing.assert_allclose(t2, t, atol=1e-8 * max(1.0, s))
    assert np.linalg.det(R2) == pytest.approx(1.0, abs=1e-12)


@FAST
@given(seeds, seeds, sizes, scales, translations)
def test_swapping_source_and_target_gives_the_inverse(seed, rot_seed, n, s, t):
    src = cloud(seed, n)
    assume(well_spread(src))
    R = random_rotation(rot_seed)
    dst = apply_similarity(s, R, t, src)
    si, Ri, ti = umeyama(dst, src)
    assert si == pytest.approx(1.0 / s, rel=1e-9)
    np.testing.assert_allclose(Ri, R.T, atol=1e-8)
    np.testing.assert_allclose(ti, -(R.T @ t) / s, atol=1e-8 * max(1.0, 1.0 / s))


@FAST
@given(seeds, seeds, seeds, sizes, translations, st.floats(0.1, 10.0))
def test_rigid_motions_and_scalings_of_the_target_compose(seed, rot_seed, g_seed, n, g, k):
    """Noisy data: moving dst by (G, g) and scaling it by k moves the solution the same way."""
    rng = np.random.default_rng(seed)
    src = cloud(seed, n + 3)
    assume(well_spread(src))
    dst = src @ random_rotation(rot_seed).T + rng.normal(size=src.shape) * 0.02
    assume(well_spread(dst))
    w = rng.random(len(src)) + 0.1
    s, R, t = umeyama(src, dst, w)
    G = random_rotation(g_seed)
    s2, R2, t2 = umeyama(src, k * dst @ G.T + g, w)
    assert s2 == pytest.approx(k * s, rel=1e-9)
    np.testing.assert_allclose(R2, G @ R, atol=1e-8)
    np.testing.assert_allclose(t2, k * G @ t + g, atol=1e-8 * max(1.0, k))
    # a rigid motion of the source: R' = R Gᵀ, same scale
    s3, R3, _ = umeyama(src @ G.T + g, dst, w)
    assert s3 == pytest.approx(s, rel=1e-9)
    np.testing.assert_allclose(R3, R @ G.T, atol=1e-8)
    # procrustes alike
    R4, t4 = procrustes(src, dst @ G.T + g, w)
    R5, t5 = procrustes(src, dst, w)
    np.testing.assert_allclose(R4, G @ R5, atol=1e-8)
    np.testing.assert_allclose(t4, G @ t5 + g, atol=1e-8)


@FAST
@given(seeds, seeds, sizes, st.lists(st.integers(1, 4), min_size=28, max_size=28))
def test_pair_order_does_not_matter_and_integer_weights_duplicate_pairs(seed, rot_seed, n, reps):
    rng = np.random.default_rng(seed)
    src = cloud(seed, n)
    assume(well_spread(src))
    dst = src @ random_rotation(rot_seed).T * 1.1 + rng.normal(size=src.shape) * 0.02
    assume(well_spread(dst))
    reps = np.array(reps[:n])
    s, R, t = umeyama(src, dst, reps.astype(float))
    perm = rng.permutation(n)
    sp, Rp, tp = umeyama(src[perm], dst[perm], reps[perm].astype(float))
    sd, Rd, td = umeyama(np.repeat(src, reps, axis=0), np.repeat(dst, reps, axis=0))
    for s2, R2, t2 in ((sp, Rp, tp), (sd, Rd, td)):
        assert s2 == pytest.approx(s, rel=1e-9)
        np.testing.assert_allclose(R2, R, atol=1e-9)
        np.testing.assert_allclose(t2, t, atol=1e-9)
    np.testing.assert_allclose(R, reference_rotation(src, dst, reps), atol=1e-8)


@FAST
@given(seeds, seeds, sizes)
def test_the_residual_never_beats_the_unconstrained_rotation(seed, rot_seed, n):
    """The guarded R is a rotation whose cost is never below the best orthogonal matrix's."""
    src = cloud(seed, n)
    assume(well_spread(src))
    rng = np.random.default_rng(rot_seed)
    dst = rng.normal(size=src.shape)  # unrelated points: reflections as likely as rotations
    assume(well_spread(dst))
    R, t = procrustes(src, dst)
    assert np.linalg.det(R) == pytest.approx(1.0, abs=1e-9)
    xc, yc = src - src.mean(0), dst - dst.mean(0)
    U, _, Vt = np.linalg.svd(yc.T @ xc)
    O = U @ Vt  # best orthogonal matrix (may be a reflection)
    assert cost(1.0, R, t, src, dst) >= cost(1.0, O, dst.mean(0) - O @ src.mean(0), src, dst) - 1e-9
    assert math.isclose(np.linalg.det(O), 1.0) == np.allclose(O, R, atol=1e-8)


@pytest.mark.parametrize("size", [1e-6, 1e4])
def test_the_collinearity_test_does_not_depend_on_the_units(pts, size):
    """Micrometre- or kilometre-sized sets are fitted; a line of that size is still refused."""
    R = random_rotation(10)
    s, R2, _ = umeyama(pts * size, pts * size @ R.T * 3.0)
    assert s == pytest.approx(3.0, rel=1e-9)
    np.testing.assert_allclose(R2, R, atol=1e-9)
    line = np.linspace(0, 1, 5)[:, None] * [1.0, 2.0, 3.0] * size
    with pytest.raises(ValueError, match="src points are collinear"):
        umeyama(line, pts[:5] * size)
