"""The procedural head of the synthetic studio (talkhead.synth.head)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from talkhead.synth import head as H

LEAVES = (
    "left_eyeball",
    "right_eyeball",
    "mouth_interior",
    "upper_lip",
    "lower_lip",
    "nose",
    "left_eyebrow",
    "right_eyebrow",
    "scalp",
    "neck",
    "left_ear",
    "right_ear",
)


@pytest.fixture(scope="module")
def model() -> dict:
    return H.build_head_model(seed=0, n_shape=20, n_expression=12)


def lmk(model, **kw) -> np.ndarray:
    return H.pose_head(model, **kw)[1]


def dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b))


def first_hit(model, vertices, origin, direction) -> np.ndarray:
    """Vertices of the first triangle a ray hits."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    f = np.asarray(model["f"]).astype(np.uint32)
    scene.add_triangles(o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(f))
    ray = np.concatenate([origin, direction]).astype(np.float32)[None]
    ans = scene.cast_rays(o3d.core.Tensor(ray))
    assert np.isfinite(ans["t_hit"].numpy()[0])
    return f[int(ans["primitive_ids"].numpy()[0])].astype(np.int64)


def test_deterministic_by_seed():
    a = H.build_head_model(seed=3, n_shape=14, n_expression=8, detail=0.5)
    b = H.build_head_model(seed=3, n_shape=14, n_expression=8, detail=0.5)
    c = H.build_head_model(seed=4, n_shape=14, n_expression=8, detail=0.5)
    for key in (
        "v_template",
        "f",
        "shapedirs",
        "posedirs",
        "weights",
        "J",
        "lmk_face_idx",
        "lmk_b_coords",
    ):
        np.testing.assert_array_equal(a[key], b[key])
    np.testing.assert_array_equal(a["J_regressor"].toarray(), b["J_regressor"].toarray())
    # the seed changes the random components only
    np.testing.assert_array_equal(a["v_template"], c["v_template"])
    n_named = len(H.SHAPE_NAMES)
    np.testing.assert_array_equal(a["shapedirs"][:, :, :n_named], c["shapedirs"][:, :, :n_named])
    assert np.abs(a["shapedirs"][:, :, n_named:14] - c["shapedirs"][:, :, n_named:14]).max() > 1e-4
    assert np.abs(a["shapedirs"][:, :, 14 + 5 :] - c["shapedirs"][:, :, 14 + 5 :]).max() > 1e-4


def test_array_shapes_and_frame(model):
    V = len(model["v_template"])
    assert 3000 <= V <= 7000
    assert model["shapedirs"].shape == (V, 3, 20 + 12)
    assert model["posedirs"].shape == (V, 3, 36)
    assert model["J_regressor"].shape == (5, V)
    assert model["weights"].shape == (V, 5)
    assert model["kintree_table"][0, 0] == 4294967295
    np.testing.assert_array_equal(model["kintree_table"][0, 1:], [0, 1, 1, 1])
    v = model["v_template"]
    head = v[np.setdiff1d(np.arange(V), model["masks"]["neck"])]
    ears = np.concatenate([model["masks"]["left_ear"], model["masks"]["right_ear"]])
    no_ears = v[np.setdiff1d(np.arange(V), np.concatenate([ears, model["masks"]["neck"]]))]
    width = np.ptp(no_ears[:, 0])
    assert 0.13 < width < 0.17  # adult skull breadth
    assert 0.21 < head[:, 1].max() - v[model["masks"]["lower_lip"], 1].min() + 0.04 < 0.27
    nose_tip = lmk(model)[30]
    assert nose_tip[2] == pytest.approx(v[:, 2].max(), abs=0.004)  # the face looks to +z
    # the subject's left eye is at +x
    assert v[model["masks"]["left_eyeball"], 0].mean() > 0.02


def test_mesh_is_oriented_and_closed_but_the_eyes(model):
    v = model["v_template"]
    f = np.asarray(model["f"]).astype(np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    directed = {tuple(x) for x in e.tolist()}
    assert len(directed) == len(e)  # no directed edge twice: consistent orientation
    undirected, counts = np.unique(np.sort(e, axis=1), axis=0, return_counts=True)
    assert counts.max() == 2  # manifold
    border = undirected[counts == 1]
    # the only holes are the two almond eye openings
    lids = np.unique(border)
    eyes_x = np.sign(v[lids, 0])
    assert set(eyes_x.tolist()) == {-1.0, 1.0}
    for sgn in (1.0, -1.0):
        c = H.EYE_CENTER * [sgn, 1.0, 1.0]
        r = np.linalg.norm(v[lids[eyes_x == sgn]] - c, axis=1)
        assert np.allclose(r, H.EYE_RADIUS + H.LID_MARGIN, atol=1e-6)
    # positive signed volume (outward normals); face normals point forward
    cross = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    assert np.einsum("ij,ij->", v[f[:, 0]], cross) / 6.0 > 0.002
    centroid = v[f].mean(axis=1)
    front = (np.abs(centroid[:, 0]) < 0.02) & (centroid[:, 1] > 0.04) & (centroid[:, 1] < 0.09)
    front &= centroid[:, 2] > 0.05
    assert front.sum() > 20
    assert (cross[front, 2] > 0).mean() > 0.95


def test_lips_touch_at_rest_and_part_when_the_jaw_opens(model):
    rest = lmk(model)
    opened = lmk(model, jaw=np.array([0.25, 0.0, 0.0]))
    for up, lo in ((61, 67), (62, 66), (63, 65)):
        assert dist(rest[up], rest[lo]) < 0.001
        assert dist(opened[up], opened[lo]) > 0.010
    assert opened[66, 1] < rest[66, 1] - 0.01  # the lower lip moves down
    assert dist(opened[62], rest[62]) < 0.001  # the upper lip stays
    # through the open mouth one sees the mouth cavity, not the back of the head
    v, _ = H.pose_head(model, jaw=np.array([0.25, 0.0, 0.0]))
    mid = 0.5 * (opened[62] + opened[66])
    tri = first_hit(model, v, np.array([0.0, mid[1], 0.5]), np.array([0.0, 0.0, -1.0]))
    assert np.isin(tri, model["masks"]["mouth_interior"]).any()


def test_blink_closes_the_eye_openings(model):
    rest = lmk(model)
    shut = lmk(model, expression=np.array([0, 0, 0, 0, 1.0]))
    for up, lo in ((37, 41), (38, 40), (43, 47), (44, 46)):
        assert dist(rest[up], rest[lo]) > 0.005
        assert dist(shut[up], shut[lo]) < 0.001
    v, _ = H.pose_head(model, expression=np.array([0, 0, 0, 0, 1.0]))
    centre = H.EYE_CENTER
    origin = centre + [0.0, 0.0, 0.3]
    seen_open = first_hit(model, model["v_template"], origin, np.array([0.0, 0.0, -1.0]))
    seen_shut = first_hit(model, v, origin, np.array([0.0, 0.0, -1.0]))
    assert np.isin(seen_open, model["masks"]["left_eyeball"]).all()
    assert not np.isin(seen_shut, model["masks"]["left_eyeball"]).any()
    # half way the lids still pass over the eyeballs, not through them
    skin = np.setdiff1d(
        np.arange(len(v)),
        np.concatenate([model["masks"]["left_eyeball"], model["masks"]["right_eyeball"]]),
    )
    for b in (0.25, 0.5, 0.75):
        v, _ = H.pose_head(model, expression=np.array([0, 0, 0, 0, b]))
        gap = np.linalg.norm(v[skin] - centre, axis=1).min() - H.EYE_RADIUS
        assert gap > -1e-4


def test_meaningful_expressions(model):
    rest = lmk(model)
    rounded = lmk(model, expression=np.array([1.0]))
    assert dist(rounded[48], rounded[54]) < dist(rest[48], rest[54]) - 0.006
    assert dist(rounded[60], rounded[64]) < dist(rest[60], rest[64]) - 0.006
    assert rounded[62, 2] > rest[62, 2] + 0.002  # lips protrude
    smile = lmk(model, expression=np.array([0, 0, 1.0]))
    assert (smile[[48, 54, 60, 64], 1] > rest[[48, 54, 60, 64], 1] + 0.003).all()
    assert dist(smile[48], smile[54]) > dist(rest[48], rest[54])
    brows = lmk(model, expression=np.array([0, 0, 0, 1.0]))
    assert (brows[17:27, 1] > rest[17:27, 1] + 0.003).all()
    assert np.abs(brows[48:68] - rest[48:68]).max() < 1e-6  # the mouth does not move
    # lip closure brings the lips of a slightly open jaw together
    jaw = np.array([0.1, 0.0, 0.0])
    ajar, closed = lmk(model, jaw=jaw), lmk(model, jaw=jaw, expression=np.array([0, 1.0]))
    assert dist(closed[62], closed[66]) < dist(ajar[62], ajar[66]) - 0.004
    # unit coefficients move the face by a few millimetres up to about a centimetre
    E = model["shapedirs"][:, :, model["num_shape"] :]
    peak = np.linalg.norm(E, axis=1).max(axis=0)
    assert (peak[:5] > 0.004).all() and (peak[:5] < 0.015).all()
    assert (peak[5:] < 0.006).all() and peak[5] > peak[-1]


def test_eye_rotation_moves_only_the_eyeballs(model):
    rest, _ = H.pose_head(model)
    v, _ = H.pose_head(model, eyes=np.array([0.1, 0.3, 0.0, -0.2, 0.1, 0.0]))
    moved = np.where(np.linalg.norm(v - rest, axis=1) > 1e-9)[0]
    eyeballs = np.concatenate([model["masks"]["left_eyeball"], model["masks"]["right_eyeball"]])
    assert set(moved.tolist()) <= set(eyeballs.tolist())
    assert len(moved) > 0.9 * len(eyeballs)
    for name in ("left_eyeball", "right_eyeball"):
        idx = model["masks"][name]
        np.testing.assert_allclose(v[idx].mean(axis=0), rest[idx].mean(axis=0), atol=1e-9)


def test_joint_regressor_and_weights(model):
    Jr = model["J_regressor"]
    dense = Jr.toarray()
    np.testing.assert_allclose(dense.sum(axis=1), 1.0, atol=1e-12)
    assert (dense >= 0).all()
    assert (np.count_nonzero(dense[:3], axis=1) <= 16).all()  # sparse
    J = model["J"]
    np.testing.assert_allclose(Jr @ model["v_template"], J, atol=1e-12)
    np.testing.assert_allclose(J[3], H.EYE_CENTER, atol=1e-9)
    np.testing.assert_allclose(J[4], H.EYE_CENTER * [-1, 1, 1], atol=1e-9)
    assert abs(J[2, 0]) < 1e-9 and -0.02 < J[2, 1] < 0.015  # jaw joint at the TMJ level
    assert J[0, 1] < J[1, 1] < J[2, 1]  # root and neck below the jaw, in the neck
    w = model["weights"]
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
    assert w.min() >= 0.0
    m = model["masks"]
    assert (w[m["left_eyeball"], 3] == 1).all() and (w[m["right_eyeball"], 4] == 1).all()
    assert w[:, 3:].sum() == len(m["left_eyeball"]) + len(m["right_eyeball"])
    lip_lo = np.setdiff1d(m["lower_lip"], m["upper_lip"])
    assert np.median(w[lip_lo, 2]) > 0.95 and np.median(w[m["upper_lip"], 2]) < 0.05
    assert w[m["boundary"], 0].min() > 0.99  # the neck's cut follows the body
    # smooth: away from the lips' slit and the mouth, a vertex's weights are close to the
    # mean of its neighbours'
    f = np.asarray(model["f"]).astype(np.int64)
    e = np.unique(
        np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1), axis=0
    )
    V = len(w)
    adj = sp.coo_matrix(
        (np.ones(2 * len(e)), (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])), shape=(V, V)
    ).tocsr()
    deviation = np.abs(w - adj @ w / np.asarray(adj.sum(axis=1))).max(axis=1)
    rest = np.ones(V, dtype=bool)
    rest[np.concatenate([m["mouth_interior"], m["lips"]])] = False
    assert np.quantile(deviation[rest], 0.99) < 0.1
    assert np.quantile(deviation[rest], 0.9) < 0.03


def test_shape_components_are_plausible(model):
    S = model["num_shape"]
    dirs = model["shapedirs"][:, :, :S]
    peak = np.linalg.norm(dirs, axis=1).max(axis=0)
    assert (peak > 0.0003).all() and (peak < 0.012).all()
    v0 = model["v_template"]
    wide, _ = H.pose_head(model, shape=np.eye(S)[0])
    assert np.ptp(wide[:, 0]) > np.ptp(v0[:, 0]) + 0.004
    # a random person: a few millimetres away from the template, eyes still in their sockets
    rng = np.random.default_rng(0)
    for _ in range(3):
        v, _ = H.pose_head(model, shape=rng.normal(size=S))
        d = np.linalg.norm(v - v0, axis=1)
        assert 0.001 < np.sqrt((d**2).mean()) < 0.012
        for name, sgn in (("left_eyeball", 1.0), ("right_eyeball", -1.0)):
            eye = v[model["masks"][name]]
            c = eye.mean(axis=0)
            np.testing.assert_allclose(np.linalg.norm(eye - c, axis=1), H.EYE_RADIUS, atol=1e-6)
            lids = model["masks"][f"{name.split('_')[0]}_eye_region"]
            r = np.linalg.norm(v[lids] - c, axis=1)
            assert r.min() > H.EYE_RADIUS  # no lid inside the eyeball
            del sgn


def test_pose_correctives_are_small_and_nonzero(model):
    pd = model["posedirs"]
    jaw = np.linalg.norm(pd[:, :, 9:18], axis=1).max()
    assert 0.0005 < jaw < 0.01
    assert np.abs(pd[:, :, :9]).max() == 0.0 and np.abs(pd[:, :, 18:]).max() == 0.0


def test_masks_partition_the_head(model):
    m = model["masks"]
    V = len(model["v_template"])
    assert set(H.MASK_NAMES) <= set(m)
    seen = np.zeros(V, dtype=int)
    for name in LEAVES:
        seen[m[name]] += 1
    assert seen.max() == 1  # leaf regions are disjoint
    face_only = np.setdiff1d(m["face"], np.concatenate([m[n] for n in LEAVES]))
    seen[face_only] += 1
    assert seen.min() == 1  # leaves + the rest of the face cover everything
    for part in (
        "nose",
        "lips",
        "left_eyebrow",
        "right_eyebrow",
        "forehead",
        "left_eye_region",
        "right_eye_region",
    ):
        assert np.isin(m[part], m["face"]).all(), part
    np.testing.assert_array_equal(np.sort(m["lips"]), np.union1d(m["upper_lip"], m["lower_lip"]))
    assert np.isin(m["boundary"], m["neck"]).all()
    v = model["v_template"]
    y = lambda name: v[m[name], 1].mean()  # noqa: E731
    assert y("left_eyebrow") > y("left_eyeball") + 0.008
    assert y("right_eyebrow") > y("right_eyeball") + 0.008
    assert y("scalp") > y("forehead") > y("nose") > y("upper_lip") > y("lower_lip") > y("neck")
    assert v[m["left_eyebrow"], 0].min() > 0 > v[m["right_eyebrow"], 0].max()
    assert v[m["mouth_interior"], 2].max() < v[m["lips"], 2].max()
    f = np.asarray(model["f"]).astype(np.int64)
    area = np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
    vertex_area = np.bincount(f.ravel(), np.repeat(area, 3), minlength=V)
    share = lambda name: vertex_area[m[name]].sum() / vertex_area.sum()  # noqa: E731
    assert 0.25 < share("scalp") < 0.5  # hair covers the top and back of the head
    assert 0.2 < share("face") < 0.45


def test_landmarks_follow_ibug_order(model):
    L = lmk(model)
    # mirror pairs
    pairs = [
        (0, 16),
        (4, 12),
        (17, 26),
        (21, 22),
        (31, 35),
        (36, 45),
        (39, 42),
        (48, 54),
        (60, 64),
        (37, 44),
        (41, 46),
    ]
    for a, b in pairs:
        np.testing.assert_allclose(L[a] * [-1, 1, 1], L[b], atol=2e-4)
        assert L[a, 0] < 0 < L[b, 0]  # image-left (the subject's right) first
    assert (np.diff(L[0:9, 1]) < 0).all()  # contour goes down to the chin
    assert L[66, 1] == pytest.approx(L[62, 1], abs=1e-9)  # closed lips
    assert L[8, 1] < L[57, 1] < L[62, 1] < L[51, 1] < L[33, 1] < L[30, 1] < L[27, 1]
    assert L[30, 2] == L[:, 2].max()  # the nose tip is the most frontal
    assert (L[17:27, 1] > L[36:48, 1].max()).all()  # brows above the eyes
    assert L[37, 1] > L[41, 1] and L[43, 1] > L[47, 1]  # upper lids above lower lids


def test_written_files_roundtrip_through_the_flame_loader(model, tmp_path):
    torch = pytest.importorskip("torch")
    from talkhead.flame import FlameLayer, load_flame_model

    paths = H.write_head_model(tmp_path, model)
    assert {p.name for p in paths.values()} == {
        "generic_model.pkl",
        "landmark_embedding.npz",
        "FLAME_masks.pkl",
    }
    loaded = load_flame_model(paths["model"], paths["landmarks"], paths["masks"])
    np.testing.assert_allclose(loaded.v_template, model["v_template"])
    assert loaded.num_shape == 20 and loaded.num_expression == 12
    np.testing.assert_array_equal(loaded.lmk_faces_idx, model["lmk_face_idx"])
    assert set(loaded.masks) == set(model["masks"])
    layer = FlameLayer(loaded, dtype=torch.float64)
    rng = np.random.default_rng(1)
    params = {
        "shape": rng.normal(size=20),
        "expression": rng.normal(size=12) * 0.5,
        "rotation": np.array([0.1, -0.3, 0.05]),
        "neck": np.array([0.2, 0.1, 0.0]),
        "jaw": np.array([0.22, 0.01, 0.0]),
        "eyes": np.array([0.1, 0.2, 0, -0.1, 0.2, 0]),
    }
    out = layer(**{k: torch.as_tensor(v) for k, v in params.items()})
    v, L = H.pose_head(model, **params)
    np.testing.assert_allclose(out.vertices[0].numpy(), v, atol=1e-9)
    np.testing.assert_allclose(out.landmarks[0].numpy(), L, atol=1e-9)


def test_without_identity_components():
    m = H.build_head_model(seed=0, n_shape=0, n_expression=5, detail=0.5)
    assert m["num_shape"] == 0 and m["shapedirs"].shape[2] == 5


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="n_expression"):
        H.build_head_model(n_expression=3)
    with pytest.raises(ValueError, match="detail"):
        H.build_head_model(detail=10.0)


def test_pose_head_rejects_too_many_coefficients(model):
    with pytest.raises(ValueError, match="shape has 21 coefficients"):
        H.pose_head(model, shape=np.zeros(21))
    with pytest.raises(ValueError, match="expression has 13 coefficients"):
        H.pose_head(model, expression=np.zeros(13))


def test_import_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, talkhead.synth.head; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
