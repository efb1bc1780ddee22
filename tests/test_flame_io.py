"""FLAME model files: restricted unpickling, legacy writer, model/landmark/mask/param files."""

from __future__ import annotations

import collections
import logging
import os
import pickle
import pickletools
import struct
import sys
import types
import warnings
import weakref

import numpy as np
import pytest
import scipy.sparse as sp

from talkhead.errors import ModelFileError
from talkhead.flame import (
    FlameModel,
    describe_model,
    dumps_legacy_pickle,
    format_description,
    load_flame_model,
    load_flame_params,
    load_landmark_embedding,
    load_legacy_pickle,
    load_region_masks,
    loads_legacy_pickle,
    model_from_arrays,
    read_pickled_npy,
    save_flame_model,
    save_flame_params,
    save_landmark_embedding,
    save_legacy_pickle,
    save_region_masks,
)

PARENTS = np.array([-1, 0, 1, 1, 1])


def model_arrays(rng: np.random.Generator, V: int = 30, S: int = 4, E: int = 3) -> dict:
    """A small random model under FLAME's file keys (5 joints, FLAME's kinematic tree)."""
    J = 5
    faces = np.stack([rng.choice(V, 3, replace=False) for _ in range(2 * V)]).astype(np.uint32)
    reg = np.zeros((J, V))
    for j in range(J):
        idx = rng.choice(V, 4, replace=False)
        reg[j, idx] = rng.random(4)
    reg /= reg.sum(1, keepdims=True)
    weights = rng.random((V, J)) ** 4
    weights /= weights.sum(1, keepdims=True)
    kintree = np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64)
    out = {
        "v_template": rng.normal(size=(V, 3)) * 0.1,
        "f": faces,
        "shapedirs": rng.normal(size=(V, 3, S + E)) * 0.01,
        "posedirs": rng.normal(size=(V, 3, (J - 1) * 9)) * 0.01,
        "J_regressor": sp.csc_matrix(reg),
        "weights": weights,
        "kintree_table": kintree,
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    if S + E != 400:
        out["num_shape"] = S
    return out


def globals_in(data: bytes) -> set[str]:
    """``module name`` strings of the GLOBAL opcodes of a pickle."""
    return {arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}


# --------------------------------------------------------------------------------------
# (a) legacy pickles read without chumpy


def test_writer_emits_legacy_names_and_reader_restores_arrays(tmp_path):
    rng = np.random.default_rng(0)
    arrays = model_arrays(rng)
    path = tmp_path / "generic_model.pkl"
    save_flame_model(path, arrays)
    data = path.read_bytes()
    assert data[:2] == b"\x80\x02"  # protocol 2, as Python 2 wrote it
    names = globals_in(data)
    assert {
        "chumpy.ch Ch",
        "scipy.sparse.csc csc_matrix",
        "numpy.core.multiarray _reconstruct",
    } <= names
    assert not any(n.startswith("numpy._core") or "_csc " in n for n in names)
    assert "_codecs encode" not in names  # array data is a Python-2 str, as in FLAME's files
    assert "BINSTRING" in {op.name for op, _, _ in pickletools.genops(data)}

    raw = load_legacy_pickle(path)
    assert "chumpy" not in sys.modules
    assert isinstance(raw["shapedirs"], np.ndarray)  # chumpy Ch -> plain ndarray
    assert sp.issparse(raw["J_regressor"]) and raw["J_regressor"].format == "csc"
    np.testing.assert_array_equal(raw["shapedirs"], arrays["shapedirs"])
    np.testing.assert_array_equal(raw["J_regressor"].toarray(), arrays["J_regressor"].toarray())
    np.testing.assert_array_equal(raw["f"], arrays["f"])
    assert raw["f"].dtype == np.uint32 and raw["bs_style"] == "lbs" and raw["num_shape"] == 4

    model = load_flame_model(path)
    np.testing.assert_array_equal(model.v_template, arrays["v_template"])
    np.testing.assert_array_equal(model.shapedirs, arrays["shapedirs"][:, :, :4])
    np.testing.assert_array_equal(model.exprdirs, arrays["shapedirs"][:, :, 4:])
    np.testing.assert_array_equal(model.parents, PARENTS)
    assert model.faces.dtype == np.int64 and model.J_regressor.shape == (5, 30)


class _FakeCh:
    """Pickles like chumpy's Ch: default protocol-2 reduce, __dict__ without caches."""

    def __init__(self, x):
        self.x = np.asarray(x, dtype=np.float64)
        self._dirty_vars = {"x"}
        self._itr = None
        self._depends_on_deps = {}
        self._make_dense = False
        self._make_sparse = False
        self._parents = weakref.WeakKeyDictionary()
        self._cache = {"r": None}

    def __getstate__(self):
        state = dict(self.__dict__)
        del state["_parents"], state["_cache"]
        return state


class _FakeCsc:
    """Pickles like a scipy 0.x csc_matrix (instance __dict__ with _shape, data, indices...)."""

    def __init__(self, m):
        m = sp.csc_matrix(m)
        self._shape = m.shape
        self.maxprint = 50
        self.format = "csc"
        self.data, self.indices, self.indptr = m.data, m.indices, m.indptr


@pytest.mark.parametrize("protocol", [0, 2])
def test_independent_chumpy_style_pickle_is_read_without_chumpy(monkeypatch, protocol):
    """A pickle built with fake ``chumpy.ch`` / ``scipy.sparse.csc`` modules, as FLAME's was.

    Protocol 2 stores the objects with NEWOBJ; protocol 0 with ``copy_reg._reconstructor``.
    """
    rng = np.random.default_rng(1)
    ch_mod = types.ModuleType("chumpy.ch")
    csc_mod = types.ModuleType("scipy.sparse.csc")
    _FakeCh.__module__, _FakeCh.__qualname__ = "chumpy.ch", "Ch"
    _FakeCsc.__module__, _FakeCsc.__qualname__ = "scipy.sparse.csc", "csc_matrix"
    ch_mod.Ch, csc_mod.csc_matrix = _FakeCh, _FakeCsc
    monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
    monkeypatch.setitem(sys.modules, "chumpy.ch", ch_mod)
    monkeypatch.setitem(sys.modules, "scipy.sparse.csc", csc_mod)
    shapedirs = rng.normal(size=(6, 3, 5))
    reg = sp.random(2, 6, density=0.5, random_state=3, format="csc")
    obj = {
        "shapedirs": _FakeCh(shapedirs),
        "J_regressor": _FakeCsc(reg),
        "nested": [_FakeCh(np.eye(2))],
        "kintree_table": np.array([[4294967295, 0], [0, 1]]),
    }
    data = pickle.dumps(obj, protocol=protocol)
    monkeypatch.undo()
    assert "chumpy" not in sys.modules

    names = globals_in(data)
    assert {"chumpy.ch Ch", "scipy.sparse.csc csc_matrix", "__builtin__ set"} <= names
    assert ("copy_reg _reconstructor" in names) == (protocol == 0)
    out = loads_legacy_pickle(data, "fake_flame.pkl")
    assert "chumpy" not in sys.modules
    np.testing.assert_array_equal(out["shapedirs"], shapedirs)
    np.testing.assert_array_equal(out["nested"][0], np.eye(2))
    assert sp.issparse(out["J_regressor"])
    np.testing.assert_array_equal(out["J_regressor"].toarray(), reg.toarray())
    assert out["kintree_table"][0, 0] == 4294967295


def test_written_file_is_readable_by_a_chumpy_like_class(monkeypatch):
    """Plain pickle + a Ch whose __setstate__ mimics chumpy's reads our writer's output."""

    class Ch:
        def __setstate__(self, d):  # what chumpy.ch.Ch.__setstate__ relies on
            d["_parents"] = weakref.WeakKeyDictionary()
            d["_cache"] = {"r": None}
            object.__setattr__(self, "__dict__", d)
            self._dirty_vars.add("x")
            assert self._itr is None

    Ch.__module__ = "chumpy.ch"
    ch_mod = types.ModuleType("chumpy.ch")
    ch_mod.Ch = Ch
    monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
    monkeypatch.setitem(sys.modules, "chumpy.ch", ch_mod)
    x = np.random.default_rng(2).normal(size=(4, 3))
    reg = sp.csc_matrix(np.eye(3)[:2])
    data = dumps_legacy_pickle({"x": x, "J_regressor": reg}, chumpy_keys={"x"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # scipy.sparse.csc is deprecated
        out = pickle.loads(data, encoding="latin1")
    assert isinstance(out["x"], Ch)
    np.testing.assert_array_equal(out["x"].x, x)
    np.testing.assert_array_equal(out["J_regressor"].toarray(), reg.toarray())


# --------------------------------------------------------------------------------------
# (b) malicious pickles are refused before anything runs


class _Evil:
    def __init__(self, payload):
        self.payload = payload

    def __reduce__(self):
        return os.system, (self.payload,)


class _EvilEval:
    def __reduce__(self):
        return eval, ("__import__('os').system('touch EVAL_MARKER')",)


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_os_system_payload_is_refused(tmp_path, protocol):
    marker = tmp_path / "MARKER"
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps({"v_template": _Evil(f"touch {marker}")}, protocol=protocol))
    with pytest.raises(ModelFileError) as err:
        load_flame_model(path)
    assert str(path) in str(err.value)
    assert f"{os.system.__module__}.system" in str(err.value)
    assert not marker.exists()


def test_eval_and_nested_payloads_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = pickle.dumps({"f": _EvilEval()}, protocol=2)
    with pytest.raises(ModelFileError, match="eval"):
        loads_legacy_pickle(data, "x.pkl")
    # hidden inside an allowed chumpy array's state
    ch = dumps_legacy_pickle({"s": np.zeros(2)}, chumpy_keys={"s"})
    assert b"chumpy.ch" in ch
    nested = pickle.dumps({"s": [np.zeros(1), _Evil("touch NESTED_MARKER")]}, protocol=2)
    with pytest.raises(ModelFileError, match="refused"):
        loads_legacy_pickle(nested, "y.pkl")
    # _codecs.encode is allowed only as pickle uses it for bytes (latin1)
    rot = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R."
    with pytest.raises(ModelFileError, match="latin1"):
        loads_legacy_pickle(rot, "z.pkl")
    assert not (tmp_path / "EVAL_MARKER").exists() and not (tmp_path / "NESTED_MARKER").exists()


def test_malicious_npy_is_refused(tmp_path):
    marker = tmp_path / "NPY_MARKER"
    path = tmp_path / "landmark_embedding.npy"
    np.save(path, np.array({"full_lmk_faces_idx": _Evil(f"touch {marker}")}), allow_pickle=True)
    with pytest.raises(ModelFileError, match="refused"):
        load_landmark_embedding(path)
    assert not marker.exists()


def test_truncated_pickle_is_a_clear_error(tmp_path):
    path = tmp_path / "generic_model.pkl"
    save_flame_model(path, model_arrays(np.random.default_rng(0)))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ModelFileError, match="not a readable model pickle"):
        load_flame_model(path)
    with pytest.raises(ModelFileError, match="missing"):
        load_flame_model(tmp_path / "nope.pkl")


# --------------------------------------------------------------------------------------
# (g) model validation, the 400-column rule, round trips


@pytest.mark.parametrize(
    "key", ["v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table"]
)
def test_missing_key_names_file_and_key(tmp_path, key):
    arrays = model_arrays(np.random.default_rng(0))
    del arrays[key]
    path = tmp_path / "m.pkl"
    save_legacy_pickle(path, arrays, chumpy_keys={"shapedirs"})
    with pytest.raises(ModelFileError, match=f"missing key '{key}'") as err:
        load_flame_model(path)
    assert str(path) in str(err.value)


def test_inconsistent_arrays_are_reported(tmp_path):
    rng = np.random.default_rng(0)
    cases = {
        "weights": ("weights", lambda a: a["weights"][:, :4]),
        "f": ("indexes vertices", lambda a: a["f"] + 100),
        "posedirs": ("posedirs", lambda a: a["posedirs"][:, :, :27]),
        "kintree_table": (
            "parents must precede",
            lambda a: np.array([[-1, 0, 3, 1, 1], [0, 1, 2, 3, 4]]),
        ),
        "v_template": ("NaN", lambda a: np.full_like(a["v_template"], np.nan)),
    }
    for key, (message, corrupt) in cases.items():
        arrays = model_arrays(rng)
        arrays[key] = corrupt(arrays)
        path = tmp_path / f"bad_{key}.pkl"
        save_legacy_pickle(path, arrays)
        with pytest.raises(ModelFileError, match=message) as err:
            load_flame_model(path)
        assert str(path) in str(err.value) and key in str(err.value)


def test_400_column_rule_and_num_shape(tmp_path):
    rng = np.random.default_rng(0)
    flame_like = model_arrays(rng, V=12, S=300, E=100)
    assert "num_shape" not in flame_like
    save_flame_model(tmp_path / "flame.pkl", flame_like)
    m = load_flame_model(tmp_path / "flame.pkl")
    assert (m.num_shape, m.num_expression) == (300, 100)
    np.testing.assert_array_equal(m.exprdirs, flame_like["shapedirs"][:, :, 300:])

    other = model_arrays(rng, S=4, E=3)
    del other["num_shape"]
    save_legacy_pickle(tmp_path / "other.pkl", other)
    with pytest.raises(ModelFileError, match="7 columns.*num_shape"):
        load_flame_model(tmp_path / "other.pkl")
    m = load_flame_model(tmp_path / "other.pkl", num_shape=5)
    assert (m.num_shape, m.num_expression) == (5, 2)
    with pytest.raises(ModelFileError, match="outside"):
        load_flame_model(tmp_path / "other.pkl", num_shape=9)

    other["num_shape"] = 4
    save_legacy_pickle(tmp_path / "stored.pkl", other)
    assert load_flame_model(tmp_path / "stored.pkl").num_expression == 3
    with pytest.raises(ModelFileError, match="num_shape=4"):
        load_flame_model(tmp_path / "stored.pkl", num_shape=5)
    # the writer adds num_shape itself when the split is not 300/100
    del other["num_shape"]
    with pytest.raises(ModelFileError, match="num_shape"):
        save_flame_model(tmp_path / "x.pkl", other)
    assert not (tmp_path / "x.pkl").exists()


def _assert_same_model(a: FlameModel, b: FlameModel) -> None:
    for name in (
        "v_template",
        "faces",
        "shapedirs",
        "exprdirs",
        "posedirs",
        "J_regressor",
        "parents",
        "lbs_weights",
    ):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.mark.parametrize("name,legacy", [("m.npz", True), ("m.pkl", True), ("m.pkl", False)])
def test_model_round_trip(tmp_path, name, legacy):
    model = model_from_arrays(model_arrays(np.random.default_rng(5)))
    save_flame_model(tmp_path / name, model, legacy=legacy)
    if name.endswith(".npz"):
        with np.load(tmp_path / name, allow_pickle=False) as npz:  # no pickles inside
            assert int(npz["num_shape"]) == 4 and npz["J_regressor"].shape == (5, 30)
    else:
        assert ("chumpy.ch Ch" in globals_in((tmp_path / name).read_bytes())) == legacy
    back = load_flame_model(tmp_path / name)
    _assert_same_model(model, back)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize("name", ["generic_model.pkl", "flame2023.pkl"])
def test_flame_2020_and_2023_style_files_load(tmp_path, name):
    """Both releases: FLAME's keys (with ``J``, ``bs_style``, ``bs_type``), 300 + 100 columns
    and no ``num_shape``, chumpy arrays and a legacy csc regressor in a Python-2 pickle."""
    arrays = model_arrays(np.random.default_rng(3), V=12, S=300, E=100)
    arrays["J"] = arrays["J_regressor"] @ arrays["v_template"]
    assert "num_shape" not in arrays
    save_legacy_pickle(tmp_path / name, arrays, chumpy_keys={"v_template", "shapedirs", "J"})
    names = globals_in((tmp_path / name).read_bytes())
    assert {"chumpy.ch Ch", "scipy.sparse.csc csc_matrix"} <= names
    m = load_flame_model(tmp_path / name)
    assert (m.num_shape, m.num_expression, m.num_joints) == (300, 100, 5)
    np.testing.assert_array_equal(m.shapedirs, arrays["shapedirs"][:, :, :300])
    np.testing.assert_array_equal(m.exprdirs, arrays["shapedirs"][:, :, 300:])
    np.testing.assert_array_equal(m.J_regressor, arrays["J_regressor"].toarray())
    np.testing.assert_array_equal(m.parents, PARENTS)


# --------------------------------------------------------------------------------------
# Landmark embeddings and region masks


def test_landmark_embeddings_in_three_formats(tmp_path):
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 60, 68)
    bary = rng.random((68, 3))
    bary /= bary.sum(1, keepdims=True)

    save_landmark_embedding(tmp_path / "lmk.npz", idx, bary)
    save_legacy_pickle(
        tmp_path / "flame_static_embedding.pkl",
        {"lmk_face_idx": idx.astype(np.uint32), "lmk_b_coords": bary},
    )
    deca = {
        "full_lmk_faces_idx": idx[None],
        "full_lmk_bary_coords": bary[None],
        "static_lmk_faces_idx": idx[17:],
        "static_lmk_bary_coords": bary[17:],
    }
    np.save(tmp_path / "landmark_embedding.npy", deca, allow_pickle=True)  # as DECA ships it
    for name in ("lmk.npz", "flame_static_embedding.pkl", "landmark_embedding.npy"):
        got_idx, got_bary = load_landmark_embedding(tmp_path / name)
        assert got_idx.shape == (68,) and got_idx.dtype == np.int64, name
        np.testing.assert_array_equal(got_idx, idx)
        np.testing.assert_allclose(got_bary, bary, rtol=0, atol=0)

    save_legacy_pickle(tmp_path / "wrong.pkl", {"something": idx})
    with pytest.raises(ModelFileError, match="lmk_face_idx"):
        load_landmark_embedding(tmp_path / "wrong.pkl")
    with pytest.raises(ModelFileError, match=r"\(68, 3\)"):
        save_landmark_embedding(tmp_path / "bad.npz", idx, bary[:, :2])


def _embedding(rng: np.random.Generator, n: int, faces: int = 60):
    idx = rng.integers(0, faces, n)
    bary = rng.random((n, 3))
    return idx, bary / bary.sum(1, keepdims=True)


def _deca_dict(torch, idx, bary, n_static=51):
    """DECA's ``landmark_embedding.npy`` layout: numpy static/full, torch dynamic entries.

    The dynamic tensors are non-contiguous views (a transpose and a slice), so the decoder
    must honour storage offset and strides.
    """
    dyn_idx = torch.arange(17 * 79 * 2).reshape(17, 79 * 2).t()[::2]  # (79, 17) int64 view
    dyn_bary = torch.rand(79, 17, 4, dtype=torch.float32)[:, :, 1:]  # (79, 17, 3) view
    return {
        "static_lmk_faces_idx": idx[-n_static:].astype(np.int64),
        "static_lmk_bary_coords": bary[-n_static:],
        "dynamic_lmk_faces_idx": dyn_idx,
        "dynamic_lmk_bary_coords": dyn_bary,
        "full_lmk_faces_idx": idx[None].astype(np.int64),
        "full_lmk_bary_coords": bary[None],
    }


def test_deca_embedding_with_torch_tensors_loads_without_torch_unpickling(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    torch_utils = pytest.importorskip("torch._utils")
    torch_storage = pytest.importorskip("torch.storage")

    rng = np.random.default_rng(1)
    idx, bary = _embedding(rng, 68)
    deca = _deca_dict(torch, idx, bary)
    path = tmp_path / "landmark_embedding.npy"
    np.save(path, deca, allow_pickle=True)  # as DECA made it
    payload = path.read_bytes()
    assert b"_rebuild_tensor_v2" in payload and b"_load_from_bytes" in payload
    assert b"LongStorage" in payload and b"FloatStorage" in payload

    def forbidden(*args, **kwargs):
        raise AssertionError("torch's unpickling ran")

    monkeypatch.setattr(torch_utils, "_rebuild_tensor_v2", forbidden)
    monkeypatch.setattr(torch_storage, "_load_from_bytes", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)

    got_idx, got_bary = load_landmark_embedding(path)
    assert got_idx.shape == (68,) and got_idx.dtype == np.int64
    np.testing.assert_array_equal(got_idx, idx)
    np.testing.assert_array_equal(got_bary, bary)

    raw = read_pickled_npy(path)
    for key in ("dynamic_lmk_faces_idx", "dynamic_lmk_bary_coords"):
        want = deca[key].numpy()
        assert isinstance(raw[key], np.ndarray) and raw[key].dtype == want.dtype, key
        np.testing.assert_array_equal(raw[key], want)
    assert raw["dynamic_lmk_faces_idx"].shape == (79, 17)
    assert raw["dynamic_lmk_bary_coords"].shape == (79, 17, 3)
    assert raw["dynamic_lmk_faces_idx"][1, 0] == 2  # row 1 of the strided view

    arrays = model_arrays(rng)
    save_flame_model(tmp_path / "m.pkl", arrays)
    model = load_flame_model(tmp_path / "m.pkl", landmarks_path=path)
    np.testing.assert_array_equal(model.lmk_faces_idx, idx)
    np.testing.assert_array_equal(model.lmk_bary_coords, bary)


def test_embedding_with_eyes_keeps_ibug68(tmp_path, caplog):
    torch = pytest.importorskip("torch")
    idx, bary = _embedding(np.random.default_rng(2), 70)
    path = tmp_path / "landmark_embedding_with_eyes.npy"
    np.save(path, _deca_dict(torch, idx, bary, n_static=53), allow_pickle=True)
    with caplog.at_level(logging.INFO, logger="talkhead.flame.model"):
        got_idx, got_bary = load_landmark_embedding(path)
    np.testing.assert_array_equal(got_idx, idx[:68])
    np.testing.assert_array_equal(got_bary, bary[:68])
    assert "eye points dropped" in caplog.text and str(path) in caplog.text


def test_embeddings_without_68_points_are_refused_naming_what_is_missing(tmp_path):
    rng = np.random.default_rng(3)
    idx, bary = _embedding(rng, 51)
    ringnet = tmp_path / "flame_static_embedding.pkl"  # RingNet's: a protocol-0 text pickle
    ringnet.write_bytes(
        pickle.dumps({"lmk_face_idx": idx.astype(np.uint32), "lmk_b_coords": bary}, protocol=0)
    )
    with pytest.raises(ModelFileError, match="51 points.*jaw-contour points") as err:
        load_landmark_embedding(ringnet)
    assert str(ringnet) in str(err.value) and "\n" not in str(err.value)

    static_only = tmp_path / "static_and_dynamic.npy"
    np.save(
        static_only,
        {"static_lmk_faces_idx": idx, "static_lmk_bary_coords": bary},
        allow_pickle=True,
    )
    with pytest.raises(ModelFileError, match="no 'full_lmk_faces_idx'.*jaw-contour"):
        load_landmark_embedding(static_only)

    idx60, bary60 = _embedding(rng, 60)
    save_landmark_embedding(tmp_path / "sixty.npz", idx60, bary60)
    with pytest.raises(ModelFileError, match="60 points, expected 68"):
        load_landmark_embedding(tmp_path / "sixty.npz")

    mp_idx, mp_bary = _embedding(rng, 105)
    np.savez(
        tmp_path / "mediapipe_landmark_embedding.npz",
        lmk_face_idx=mp_idx.astype(np.uint32),
        lmk_b_coords=mp_bary,
        landmark_indices=np.arange(105),
    )
    with pytest.raises(ModelFileError, match="MediaPipe.*not iBUG-68"):
        load_landmark_embedding(tmp_path / "mediapipe_landmark_embedding.npz")

    deca68 = tmp_path / "bad_bary.npy"
    idx68, bary68 = _embedding(rng, 68)
    np.save(deca68, {"full_lmk_faces_idx": idx68[None], "full_lmk_bary_coords": bary68[None, :67]})
    with pytest.raises(ModelFileError, match="full_lmk_faces_idx.*\\(68, 3\\)"):
        load_landmark_embedding(deca68)


class _EvilStorage:
    """Pickles as ``torch.storage._load_from_bytes(stream)`` with a hostile inner stream."""

    def __init__(self, load_from_bytes, inner: bytes):
        self.load_from_bytes, self.inner = load_from_bytes, inner

    def __reduce__(self):
        return self.load_from_bytes, (self.inner,)


class _TensorFrom:
    """Pickles as ``torch._utils._rebuild_tensor_v2`` over a given storage and geometry."""

    def __init__(self, rebuild, storage, offset, size, stride, hooks=None):
        self.args = (rebuild, storage, offset, size, stride, hooks)

    def __reduce__(self):
        rebuild, storage, offset, size, stride, hooks = self.args
        return rebuild, (storage, offset, size, stride, False, hooks or collections.OrderedDict())


def test_code_in_or_around_torch_tensors_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    torch_utils = pytest.importorskip("torch._utils")
    torch_storage = pytest.importorskip("torch.storage")

    marker = tmp_path / "TORCH_MARKER"
    header = b"".join(
        pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True})
    )
    evil_inner = header + pickle.dumps(_Evil(f"touch {marker}"), protocol=2)
    path = tmp_path / "landmark_embedding.npy"
    storage = _EvilStorage(torch_storage._load_from_bytes, evil_inner)
    np.save(path, {"dynamic_lmk_faces_idx": storage}, allow_pickle=True)
    with pytest.raises(ModelFileError, match="refused.*system.*inside a torch storage") as err:
        load_landmark_embedding(path)
    assert str(path) in str(err.value)

    # an os.system call beside a real tensor in the same file
    np.save(path, {"a": torch.zeros(3), "b": _Evil(f"touch {marker}")}, allow_pickle=True)
    with pytest.raises(ModelFileError, match="refused.*system"):
        load_landmark_embedding(path)

    # a tensor whose size/stride reach past its storage, or that carries backward hooks
    real = torch.arange(4).untyped_storage()
    typed = torch_storage.TypedStorage(wrap_storage=real, dtype=torch.int64, _internal=True)
    rebuild = torch_utils._rebuild_tensor_v2
    for bad, message in (
        (_TensorFrom(rebuild, typed, 0, (5,), (1,)), "reaches element 4"),
        (_TensorFrom(rebuild, typed, 1, (2, 2), (2, 1)), "reaches element 4"),
        (_TensorFrom(rebuild, typed, 0, (2,), (-1,)), "stride"),
        (_TensorFrom(rebuild, typed, 0, (2,), (1,), {0: "hook"}), "backward hooks"),
    ):
        data = pickle.dumps(bad, protocol=2)
        with pytest.raises(ModelFileError, match=message):
            loads_legacy_pickle(data, "t.pkl")
    ok = pickle.dumps(_TensorFrom(rebuild, typed, 1, (3,), (1,)), protocol=2)
    np.testing.assert_array_equal(loads_legacy_pickle(ok, "t.pkl"), [1, 2, 3])
    assert not marker.exists()


def _split_pickles(data: bytes, n: int) -> tuple[list[bytes], bytes]:
    """The first ``n`` consecutive pickles of ``data`` and what follows them."""
    parts, start = [], 0
    for _ in range(n):
        end = start + [pos for op, _, pos in pickletools.genops(data[start:])][-1] + 1
        parts.append(data[start:end])
        start = end
    return parts, data[start:]


def test_damaged_torch_storage_streams_are_clear_errors():
    torch = pytest.importorskip("torch")
    torch_storage = pytest.importorskip("torch.storage")
    rebuild = pytest.importorskip("torch._utils")._rebuild_tensor_v2
    typed = torch_storage.TypedStorage(
        wrap_storage=torch.arange(5).untyped_storage(), dtype=torch.int64, _internal=True
    )
    inner = typed.__reduce__()[1][0]  # torch's legacy stream of one storage
    (magic, version, sys_info, storage, keys), raw = _split_pickles(inner, 5)
    assert raw == struct.pack("<q", 5) + np.arange(5, dtype="<i8").tobytes()

    def tensor_over(*parts: bytes) -> bytes:
        evil = _EvilStorage(torch_storage._load_from_bytes, b"".join(parts))
        return pickle.dumps({"t": _TensorFrom(rebuild, evil, 0, (5,), (1,))}, protocol=2)

    got = loads_legacy_pickle(tensor_over(inner), "ok.pkl")["t"]
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, np.arange(5))
    big_endian = pickle.dumps({"little_endian": False}, protocol=2)
    swapped = struct.pack("<q", 5) + np.arange(5, dtype=">i8").tobytes()
    got = loads_legacy_pickle(tensor_over(magic, version, big_endian, storage, keys, swapped), "")
    np.testing.assert_array_equal(got["t"], np.arange(5))

    for parts, message in (
        ((inner[:-1],), "truncated"),
        ((magic, version, sys_info, storage, keys, raw[:7]), "element count"),
        ((magic, version, sys_info, storage, keys, struct.pack("<q", 4), raw[8:]), "count"),
        ((pickle.dumps(12345, protocol=2), version, sys_info, storage, keys, raw), "magic"),
        ((magic, pickle.dumps(1000, protocol=2), sys_info, storage, keys, raw), "magic"),
        ((magic, version, pickle.dumps(3, protocol=2), storage, keys, raw), "sys_info"),
        ((magic, version, sys_info, storage, pickle.dumps(["k"], protocol=2), raw), "keys"),
        ((magic, version, sys_info, pickle.dumps(7, protocol=2), keys, raw), "keys"),
        ((b"PK\x03\x04", inner), "zip form"),
    ):
        with pytest.raises(ModelFileError, match=message) as err:
            loads_legacy_pickle(tensor_over(*parts), "bad.pkl")
        assert "bad.pkl" in str(err.value)


def test_model_with_landmarks_and_masks(tmp_path):
    rng = np.random.default_rng(0)
    arrays = model_arrays(rng)
    save_flame_model(tmp_path / "m.pkl", arrays)
    idx = rng.integers(0, 60, 68)
    bary = np.full((68, 3), 1 / 3)
    save_landmark_embedding(tmp_path / "lmk.npz", idx, bary)
    masks = {"lips": np.arange(5), "eye_region": np.array([7, 8, 9], dtype=np.int32)}
    save_region_masks(tmp_path / "FLAME_masks.pkl", masks)
    save_region_masks(tmp_path / "masks.npz", masks)
    for mask_file in ("FLAME_masks.pkl", "masks.npz"):
        loaded = load_region_masks(tmp_path / mask_file)
        assert set(loaded) == set(masks)
        np.testing.assert_array_equal(loaded["eye_region"], [7, 8, 9])

    m = load_flame_model(tmp_path / "m.pkl", tmp_path / "lmk.npz", tmp_path / "FLAME_masks.pkl")
    d = describe_model(m)
    assert {
        k: d[k]
        for k in ("vertices", "faces", "shape", "expression", "joints", "landmarks", "regions")
    } == {
        "vertices": 30,
        "faces": 60,
        "shape": 4,
        "expression": 3,
        "joints": 5,
        "landmarks": 68,
        "regions": 2,
    }
    text = format_description(d)
    assert "landmarks: 68" in text and "eye_region" in text

    save_region_masks(tmp_path / "far.pkl", {"lips": np.array([0, 30])})
    with pytest.raises(ModelFileError, match="far.pkl.*lips"):
        load_flame_model(tmp_path / "m.pkl", masks_path=tmp_path / "far.pkl")
    save_landmark_embedding(tmp_path / "far.npz", np.full(68, 60), bary)
    with pytest.raises(ModelFileError, match="far.npz.*face indices"):
        load_flame_model(tmp_path / "m.pkl", landmarks_path=tmp_path / "far.npz")


# --------------------------------------------------------------------------------------
# FLAME parameter files


def test_flame_params_round_trip_and_errors(tmp_path):
    import torch

    rng = np.random.default_rng(0)
    T = 7
    params = {
        "shape": rng.normal(size=10),
        "expression": torch.randn(T, 5),
        "rotation": rng.normal(size=(T, 3)),
        "translation": rng.normal(size=(T, 3)),
        "jaw": rng.normal(size=(T, 3)),
        "neck": rng.normal(size=(T, 3)),
        "eyes": rng.normal(size=(T, 6)),
        "frames": np.arange(10, 10 + T),
        "fps": 25.0,
    }
    save_flame_params(tmp_path / "flame.npz", params)
    back = load_flame_params(tmp_path / "flame.npz")
    np.testing.assert_allclose(back["rotation"], params["rotation"], rtol=1e-6)
    np.testing.assert_allclose(back["expression"], params["expression"].numpy())
    np.testing.assert_array_equal(back["scale"], np.ones((T, 1)))  # filled default
    np.testing.assert_array_equal(back["frames"], np.arange(10, 10 + T))
    assert float(back["fps"]) == 25.0

    bad = dict(params, jaw=rng.normal(size=(T - 1, 3)))
    with pytest.raises(ModelFileError, match=r"'jaw' has shape \(6, 3\), expected \(7, 3\)"):
        save_flame_params(tmp_path / "bad.npz", bad)
    assert not (tmp_path / "bad.npz").exists()
    np.savez(tmp_path / "nojaw.npz", **{k: np.asarray(v) for k, v in params.items() if k != "jaw"})
    with pytest.raises(ModelFileError, match="nojaw.npz.*jaw"):
        load_flame_params(tmp_path / "nojaw.npz")
    with pytest.raises(ModelFileError, match="eyes"):
        save_flame_params(tmp_path / "e.npz", dict(params, eyes=rng.normal(size=(T, 3))))
    with pytest.raises(ModelFileError, match="NaN"):
        save_flame_params(tmp_path / "n.npz", dict(params, neck=np.full((T, 3), np.nan)))


def _params(rng: np.random.Generator, T: int = 4) -> dict:
    """Valid FLAME parameters in float64, without ``scale`` or ``frames``."""
    return {
        "shape": rng.normal(size=6),
        "expression": rng.normal(size=(T, 5)),
        "rotation": rng.normal(size=(T, 3)),
        "translation": rng.normal(size=(T, 3)),
        "jaw": rng.normal(size=(T, 3)),
        "neck": rng.normal(size=(T, 3)),
        "eyes": rng.normal(size=(T, 6)),
    }


def test_flame_params_defaults_dtypes_and_extra_keys():
    from talkhead.flame import check_flame_params

    params = _params(np.random.default_rng(3))
    params["subject"] = np.array("alice")  # a non-numeric extra key is kept as it is
    out = check_flame_params(params)
    for key in ("shape", "expression", "rotation", "translation", "jaw", "neck", "eyes"):
        assert out[key].dtype == np.float32, key
        np.testing.assert_allclose(out[key], params[key], rtol=1e-6)
    assert out["scale"].dtype == np.float32 and out["scale"].shape == (4, 1)
    np.testing.assert_array_equal(out["scale"], np.ones((4, 1)))
    assert out["frames"].dtype == np.int64
    np.testing.assert_array_equal(out["frames"], [0, 1, 2, 3])
    assert str(out["subject"]) == "alice"


def test_flame_params_given_scale_and_float_frames_are_kept(tmp_path):
    import torch

    rng = np.random.default_rng(4)
    params = _params(rng)
    params["scale"] = np.array([[1.5], [2.0], [0.5], [3.0]])
    params["frames"] = np.array([3.0, 5.0, 8.0, 13.0])  # whole numbers stored as floats
    params["jaw"] = torch.tensor(params["jaw"], requires_grad=True)  # a tensor still in a graph
    path = tmp_path / "flame.npz"
    save_flame_params(path, params)
    back = load_flame_params(path)
    np.testing.assert_array_equal(back["scale"], [[1.5], [2.0], [0.5], [3.0]])
    assert back["frames"].dtype == np.int64
    np.testing.assert_array_equal(back["frames"], [3, 5, 8, 13])
    np.testing.assert_allclose(back["jaw"], params["jaw"].detach().numpy(), rtol=1e-6)
    assert back["jaw"].dtype == np.float32


@pytest.mark.parametrize(
    "change,message",
    [
        ({"frames": np.array([0.0, 1.5, 2.0, 3.0])}, "'frames' must hold integer frame indices"),
        ({"frames": np.arange(3)}, r"'frames' has shape \(3,\), expected \(4,\)"),
        ({"jaw": np.full((4, 3), "a")}, r"'jaw' is not numeric \(<U1\)"),
        ({"shape": np.zeros((2, 3))}, r"'shape' has shape \(2, 3\), expected \(S,\)"),
        ({"expression": np.zeros(4)}, r"'expression' has shape \(4,\), expected \(T, E\)"),
        ({"scale": np.ones((4, 2))}, r"'scale' has shape \(4, 2\), expected \(4, 1\)"),
    ],
)
def test_flame_params_errors_name_the_source_and_key(change, message):
    from talkhead.flame import check_flame_params

    params = dict(_params(np.random.default_rng(5)), **change)
    with pytest.raises(ModelFileError, match=f"^src.npz: {message}") as err:
        check_flame_params(params, "src.npz")
    assert "\n" not in str(err.value)
    with pytest.raises(ModelFileError, match=f"^<params>: {message}"):
        check_flame_params(params)


def test_flame_params_file_errors(tmp_path):
    from talkhead.flame import check_flame_params

    params = _params(np.random.default_rng(6))
    with pytest.raises(ModelFileError, match=r"^<params>: missing FLAME parameter\(s\) \['neck'\]"):
        check_flame_params({k: v for k, v in params.items() if k != "neck"})
    target = tmp_path / "out.npz"
    with pytest.raises(ModelFileError, match=f"^{target} \\(being written\\): 'eyes' has shape"):
        save_flame_params(target, dict(params, eyes=np.zeros((4, 3))))
    missing = tmp_path / "none.npz"
    with pytest.raises(ModelFileError, match=f"^{missing}: FLAME parameter file is missing$"):
        load_flame_params(missing)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip archive at all")
    with pytest.raises(ModelFileError, match=f"^{garbage}: unreadable FLAME parameter file"):
        load_flame_params(garbage)
    pickled = tmp_path / "pickled.npz"  # an object array needs pickle: refused, not loaded
    np.savez(pickled, **params, notes=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ModelFileError, match=f"^{pickled}: unreadable FLAME parameter file"):
        load_flame_params(pickled)
