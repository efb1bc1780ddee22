"""FlameLayer / LBS against an independent numpy implementation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from talkhead.flame import (
    FlameLayer,
    FlameModel,
    batch_rodrigues,
    load_flame_model,
    save_flame_model,
    save_landmark_embedding,
)

torch.set_num_threads(1)

PARENTS = [-1, 0, 1, 1, 1]


def random_model(seed: int = 0, V: int = 40, S: int = 6, E: int = 4, L: int = 68) -> FlameModel:
    rng = np.random.default_rng(seed)
    J = 5
    reg = np.zeros((J, V))
    for j in range(J):
        idx = rng.choice(V, 5, replace=False)
        reg[j, idx] = rng.random(5)
    reg /= reg.sum(1, keepdims=True)
    weights = rng.random((V, J)) ** 3
    weights /= weights.sum(1, keepdims=True)
    faces = np.stack([rng.choice(V, 3, replace=False) for _ in range(50)])
    bary = rng.random((L, 3))
    return FlameModel(
        v_template=rng.normal(size=(V, 3)) * 0.1,
        faces=faces.astype(np.int64),
        shapedirs=rng.normal(size=(V, 3, S)) * 0.02,
        exprdirs=rng.normal(size=(V, 3, E)) * 0.02,
        posedirs=rng.normal(size=(V, 3, (J - 1) * 9)) * 0.02,
        J_regressor=reg,
        parents=np.array(PARENTS),
        lbs_weights=weights,
        lmk_faces_idx=rng.integers(0, len(faces), L),
        lmk_bary_coords=bary / bary.sum(1, keepdims=True),
    )


# --------------------------------------------------------------------------------------
# Independent numpy reference (matrix exponential, explicit loops over the chain)


def _skew(r: np.ndarray) -> np.ndarray:
    return np.array([[0, -r[2], r[1]], [r[2], 0, -r[0]], [-r[1], r[0], 0]])


def reference_flame(model: FlameModel, shape, expression, pose, translation, scale):
    """One frame: pose (5, 3) axis-angles -> world vertices (V, 3), joints (J, 3)."""
    v = model.v_template + model.shapedirs @ shape + model.exprdirs @ expression
    rest = model.J_regressor @ v
    rots = [scipy.linalg.expm(_skew(p)) for p in pose]
    feature = np.concatenate([(R - np.eye(3)).ravel() for R in rots[1:]])
    v = v + model.posedirs @ feature
    world_R, world_t = [], []
    for j, parent in enumerate(model.parents):
        if parent < 0:
            world_R.append(rots[j])
            world_t.append(rest[j])
        else:
            world_R.append(world_R[parent] @ rots[j])
            world_t.append(world_R[parent] @ (rest[j] - rest[parent]) + world_t[parent])
    out = np.zeros_like(v)
    for j in range(len(rots)):
        moved = (v - rest[j]) @ world_R[j].T + world_t[j]
        out += model.lbs_weights[:, j : j + 1] * moved
    return scale * out + translation, scale * np.array(world_t) + translation


def _random_inputs(model: FlameModel, B: int, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, s=1.0):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * s

    return {
        "shape": rnd(model.num_shape),
        "expression": rnd(B, model.num_expression),
        "rotation": rnd(B, 3, s=0.5),
        "neck": rnd(B, 3, s=0.3),
        "jaw": rnd(B, 3, s=0.3),
        "eyes": rnd(B, 6, s=0.2),
        "translation": rnd(B, 3, s=0.1),
        "scale": 1.0 + rnd(B, 1, s=0.1),
    }


def test_layer_matches_independent_numpy_lbs():
    model = random_model()
    layer = FlameLayer(model, dtype=torch.float64)
    B = 4
    inputs = _random_inputs(model, B)
    for key in ("rotation", "neck", "jaw", "eyes"):
        inputs[key][0] = 0.0  # frame 0 at zero pose exercises the zero-angle path
    out = layer(**inputs)
    assert out.vertices.shape == (B, 40, 3) and out.landmarks.shape == (B, 68, 3)
    assert out.joints.shape == (B, 5, 3) and out.vertices.dtype == torch.float64
    x = {k: v.numpy() for k, v in inputs.items()}
    for b in range(B):
        pose = np.concatenate([x["rotation"][b], x["neck"][b], x["jaw"][b], x["eyes"][b]])
        verts, joints = reference_flame(
            model,
            x["shape"],
            x["expression"][b],
            pose.reshape(5, 3),
            x["translation"][b],
            x["scale"][b, 0],
        )
        np.testing.assert_allclose(out.vertices[b].numpy(), verts, atol=1e-5, rtol=0)
        np.testing.assert_allclose(out.joints[b].numpy(), joints, atol=1e-5, rtol=0)
    # the pose moved the head: frame 1 differs from its unposed self by more than the tolerance
    still = layer(
        shape=inputs["shape"],
        expression=inputs["expression"][1:2],
        translation=inputs["translation"][1:2],
        scale=inputs["scale"][1:2],
    )
    assert (still.vertices[0] - out.vertices[1]).abs().max() > 1e-2


def test_landmarks_are_barycentric_points_of_output_vertices():
    model = random_model(3)
    layer = FlameLayer(model, dtype=torch.float64)
    out = layer(**_random_inputs(model, 3, seed=7))
    verts = out.vertices.numpy()
    tri = model.faces[model.lmk_faces_idx]  # (68, 3)
    expected = np.einsum("blkc,lk->blc", verts[:, tri], model.lmk_bary_coords)
    np.testing.assert_allclose(out.landmarks.numpy(), expected, atol=1e-12)
    # landmark l lies in the plane of its triangle
    a, b, c = (verts[:, tri[:, k]] for k in range(3))
    normal = np.cross(b - a, c - a)
    assert np.abs(np.einsum("blc,blc->bl", out.landmarks.numpy() - a, normal)).max() < 1e-10


def test_defaults_broadcasting_and_zero_padding():
    model = random_model(4)
    layer = FlameLayer(model, dtype=torch.float64)
    zero = layer()
    assert zero.vertices.shape == (1, 40, 3)
    np.testing.assert_allclose(zero.vertices[0].numpy(), model.v_template, atol=1e-12)
    np.testing.assert_allclose(zero.joints[0].numpy(), model.rest_joints(), atol=1e-12)

    expr = torch.randn(3, 2, dtype=torch.float64)
    shape = torch.randn(4, dtype=torch.float64)
    short = layer(shape=shape, expression=expr, jaw=torch.full((1, 3), 0.2, dtype=torch.float64))
    full_expr = torch.cat([expr, torch.zeros(3, model.num_expression - 2, dtype=torch.float64)], 1)
    full_shape = torch.cat([shape, torch.zeros(model.num_shape - 4, dtype=torch.float64)])
    padded = layer(
        shape=full_shape.expand(3, -1),
        expression=full_expr,
        jaw=torch.full((3, 3), 0.2, dtype=torch.float64),
    )
    assert short.vertices.shape == (3, 40, 3)
    torch.testing.assert_close(short.vertices, padded.vertices, rtol=0, atol=0)

    with pytest.raises(ValueError, match="batch sizes"):
        layer(rotation=torch.zeros(2, 3), jaw=torch.zeros(3, 3))
    with pytest.raises(ValueError, match="expression has 5 coefficients"):
        layer(expression=torch.zeros(2, 5))
    with pytest.raises(ValueError, match="eyes"):
        layer(eyes=torch.zeros(2, 3))


def test_gradients_reach_every_input():
    model = random_model(5)
    layer = FlameLayer(model)  # float32 default
    inputs = {k: v.float().requires_grad_(True) for k, v in _random_inputs(model, 3).items()}
    out = layer(**inputs)
    assert out.vertices.dtype == torch.float32
    g = torch.Generator().manual_seed(0)
    loss = (out.vertices * torch.randn(out.vertices.shape, generator=g)).sum() + (
        out.landmarks * torch.randn(out.landmarks.shape, generator=g)
    ).sum()
    loss.backward()
    for name, t in inputs.items():
        assert t.grad is not None, name
        assert torch.isfinite(t.grad).all(), name
        assert t.grad.abs().sum() > 0, name


def test_rodrigues_is_stable_at_zero_and_matches_expm():
    r = torch.tensor(
        [[0.0, 0.0, 0.0], [1e-7, -2e-7, 0.0], [0.3, -1.2, 0.5], [3.0, 0.1, 0.0]],
        dtype=torch.float64,
        requires_grad=True,
    )
    R = batch_rodrigues(r)
    for i in range(len(r)):
        expected = scipy.linalg.expm(_skew(r[i].detach().numpy()))
        np.testing.assert_allclose(R[i].detach().numpy(), expected, atol=1e-12)
    assert torch.autograd.gradcheck(batch_rodrigues, (r,))
    # d R / d r at zero is the cross-product generator: dR[2,1]/dr_x = 1
    z = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(batch_rodrigues(z)[0, 2, 1], z)
    np.testing.assert_allclose(grad.numpy(), [[1.0, 0.0, 0.0]])


def test_layer_from_saved_legacy_file(tmp_path):
    model = random_model(6)
    save_flame_model(tmp_path / "generic_model.pkl", model)
    save_landmark_embedding(tmp_path / "lmk.npz", model.lmk_faces_idx, model.lmk_bary_coords)
    loaded = load_flame_model(tmp_path / "generic_model.pkl", tmp_path / "lmk.npz")
    inputs = _random_inputs(model, 2)
    a = FlameLayer(model, dtype=torch.float64)(**inputs)
    b = FlameLayer.from_file(
        tmp_path / "generic_model.pkl", tmp_path / "lmk.npz", dtype=torch.float64
    )(**inputs)
    torch.testing.assert_close(a.vertices, b.vertices, rtol=0, atol=1e-12)
    torch.testing.assert_close(a.landmarks, b.landmarks, rtol=0, atol=1e-12)
    assert loaded.num_landmarks == 68


def test_model_without_landmarks_and_wrong_joint_count():
    model = random_model(7)
    model.lmk_faces_idx = model.lmk_bary_coords = None
    out = FlameLayer(model)(rotation=torch.zeros(2, 3))
    assert out.landmarks.shape == (2, 0, 3)
    bad = random_model(8)
    bad.J_regressor = bad.J_regressor[:4]
    with pytest.raises(ValueError, match="5 joints"):
        FlameLayer(bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    model = random_model(9)
    cpu = FlameLayer(model, dtype=torch.float64)
    gpu = FlameLayer(model, dtype=torch.float64).to("cuda")
    inputs = _random_inputs(model, 5)
    a = cpu(**inputs)
    b = gpu(**{k: v.cuda() for k, v in inputs.items()})
    assert b.vertices.device.type == "cuda"
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y.cpu(), rtol=0, atol=1e-10)
    gpu32 = FlameLayer(model).to("cuda")
    c = gpu32(**{k: v.cuda() for k, v in inputs.items()})  # float64 inputs are cast
    assert c.vertices.dtype == torch.float32
    torch.testing.assert_close(c.vertices.cpu().double(), a.vertices, rtol=0, atol=1e-5)


# --------------------------------------------------------------------------------------
# Buffers, input forms and error messages


def test_buffers_and_no_landmark_layer():
    model = random_model(9)
    layer = FlameLayer(model, dtype=torch.float64)
    assert layer.parents.dtype == torch.long and layer.parents.tolist() == PARENTS
    assert layer.faces.dtype == torch.long
    np.testing.assert_array_equal(layer.faces.numpy(), model.faces)
    assert {"parents", "faces", "lmk_faces_idx", "lmk_bary_coords"} <= set(layer.state_dict())
    assert layer.num_landmarks == 68 and layer.lmk_faces_idx.dtype == torch.long

    model.lmk_faces_idx = model.lmk_bary_coords = None
    bare = FlameLayer(model)
    assert bare.num_landmarks == 0 and bare.lmk_faces_idx.dtype == torch.long
    assert bare.lmk_bary_coords.shape == (0, 3)
    # face indices without barycentric coordinates: no landmarks either
    half = random_model(9)
    half.lmk_bary_coords = None
    layer = FlameLayer(half)
    assert layer.num_landmarks == 0
    assert layer(jaw=torch.zeros(2, 3)).landmarks.shape == (2, 0, 3)
    with pytest.raises(ValueError, match=r"^dtype must be floating point, got torch.int64$"):
        FlameLayer(random_model(9), dtype=torch.int64)


def test_inputs_of_other_dtypes_and_plain_sequences():
    model = random_model(10)
    inputs = _random_inputs(model, 2)
    for dtype, other in ((torch.float32, torch.float64), (torch.float64, torch.float32)):
        layer = FlameLayer(model, dtype=dtype)
        ref = layer(**{k: v.to(dtype) for k, v in inputs.items()})
        out = layer(**{k: v.to(other) for k, v in inputs.items()})
        assert out.vertices.dtype == dtype and out.landmarks.dtype == dtype
        assert out.joints.dtype == dtype
        torch.testing.assert_close(out.vertices, ref.vertices, rtol=1e-5, atol=1e-6)
    layer = FlameLayer(model, dtype=torch.float64)
    ref = layer(**inputs)
    as_numpy = layer(**{k: v.numpy() for k, v in inputs.items()})
    as_lists = layer(**{k: v.tolist() for k, v in inputs.items()})
    torch.testing.assert_close(as_numpy.vertices, ref.vertices, rtol=0, atol=1e-12)
    # plain lists become torch's default float32 before the layer's float64
    torch.testing.assert_close(as_lists.vertices, ref.vertices, rtol=0, atol=1e-6)


def test_scale_forms():
    model = random_model(11)
    layer = FlameLayer(model, dtype=torch.float64)
    jaw = torch.tensor([[0.1, 0.0, 0.0], [0.3, 0.0, 0.0]], dtype=torch.float64)
    trans = torch.tensor([0.01, -0.02, 0.5], dtype=torch.float64)
    base = layer(jaw=jaw)
    for scale in (torch.tensor([1.5, 2.0]), [1.5, 2.0], np.array([1.5, 2.0]), [[1.5], [2.0]]):
        out = layer(jaw=jaw, scale=scale, translation=trans)
        want = torch.tensor([1.5, 2.0], dtype=torch.float64)[:, None, None] * base.vertices + trans
        torch.testing.assert_close(out.vertices, want, rtol=0, atol=1e-12)
        want_j = torch.tensor([1.5, 2.0], dtype=torch.float64)[:, None, None] * base.joints + trans
        torch.testing.assert_close(out.joints, want_j, rtol=0, atol=1e-12)
    for scale in (2.0, torch.tensor(2.0), torch.tensor([2.0]), np.float64(2.0)):
        out = layer(jaw=jaw, scale=scale)
        torch.testing.assert_close(out.vertices, 2.0 * base.vertices, rtol=0, atol=1e-12)
        torch.testing.assert_close(out.landmarks, 2.0 * base.landmarks, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "name,value,message",
    [
        ("rotation", torch.zeros(1, 2), "rotation has 2 coefficients per frame, expected 3"),
        ("neck", torch.zeros(2), "neck has 2 coefficients per frame, expected 3"),
        ("jaw", torch.zeros(1, 2), "jaw has 2 coefficients per frame, expected 3"),
        ("eyes", torch.zeros(1, 3), "eyes has 3 coefficients per frame, expected 6"),
        ("translation", torch.zeros(1, 2), "translation has 2 coefficients per frame, expected 3"),
        ("scale", torch.zeros(2, 0), "scale has 0 coefficients per frame, expected 1"),
        ("shape", torch.zeros(1, 7), "shape has 7 coefficients per frame, expected at most 6"),
        (
            "expression",
            torch.zeros(5),
            "expression has 5 coefficients per frame, expected at most 4",
        ),
        ("rotation", torch.zeros(1, 2, 3), r"rotation must be \(B, 3\) or \(3,\), got \(1, 2, 3\)"),
        ("shape", torch.zeros(1, 1, 6), r"shape must be \(B, 6\) or \(6,\), got \(1, 1, 6\)"),
    ],
)
def test_input_errors_name_the_argument(name, value, message):
    layer = FlameLayer(random_model(12))
    with pytest.raises(ValueError, match=f"^{message}$"):
        layer(**{name: value})


def test_from_file_passes_masks_and_num_shape(tmp_path):
    from talkhead.errors import ModelFileError
    from talkhead.flame import save_region_masks

    model = random_model(13)
    path = tmp_path / "generic_model.pkl"
    save_flame_model(path, model)
    save_region_masks(tmp_path / "far.pkl", {"lips": np.array([0, 40])})  # V = 40
    with pytest.raises(ModelFileError, match="far.pkl.*lips"):
        FlameLayer.from_file(path, masks_path=tmp_path / "far.pkl")
    with pytest.raises(ModelFileError, match="far.pkl.*lips"):
        FlameLayer.from_file(path, None, tmp_path / "far.pkl", 6)
    with pytest.raises(ModelFileError, match="num_shape=6"):
        FlameLayer.from_file(path, num_shape=7)
    layer = FlameLayer.from_file(path, num_shape=6)
    assert (layer.num_shape, layer.num_expression) == (6, 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_layer_takes_cpu_inputs_and_fills_defaults_on_its_device():
    model = random_model(14)
    cpu = FlameLayer(model, dtype=torch.float64)
    gpu = FlameLayer(model, dtype=torch.float64).to("cuda")
    jaw = torch.tensor([[0.2, 0.0, 0.0], [0.1, 0.0, 0.0]], dtype=torch.float64)
    a = cpu(jaw=jaw)
    for value in (jaw, jaw.numpy(), jaw.tolist()):  # CPU inputs, moved by the layer
        b = gpu(jaw=value)
        assert b.vertices.device.type == "cuda"
        torch.testing.assert_close(b.vertices.cpu(), a.vertices, rtol=0, atol=1e-6)
    assert gpu().vertices.device.type == "cuda"  # every argument defaulted
