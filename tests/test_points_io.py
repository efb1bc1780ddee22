"""The ``points.npz`` reader and writer: each check raises naming the file and the fault."""

from __future__ import annotations

import re

import numpy as np
import pytest

from talkhead.errors import DepthError
from talkhead.points.io import load_points, save_points


def _data(offsets=(0, 2, 5), T=None):
    off = np.asarray(offsets, dtype=np.int64)
    P = int(off[-1]) if len(off) else 0
    T = len(off) - 1 if T is None else T
    return {
        "points": np.arange(3 * P, dtype=np.float32).reshape(P, 3),
        "normals": np.tile(np.array([0, 0, 1], np.float32), (P, 1)),
        "frame_offsets": off,
        "landmarks3d": np.zeros((T, 68, 3)),
        "landmarks3d_valid": np.ones((T, 68), bool),
    }


def _write(path, data):
    np.savez(path, **data)
    return path


def _raises(path, message):
    return pytest.raises(DepthError, match=f"^{re.escape(str(path))}: {message}$")


def test_round_trip_keeps_every_array_and_allows_empty_frames(tmp_path):
    data = _data((0, 0, 3, 3))  # frames 0 and 2 have no point
    save_points(tmp_path / "p.npz", data)
    back = load_points(tmp_path / "p.npz")
    assert sorted(back) == sorted(data)
    for k in data:
        assert back[k].dtype == data[k].dtype and np.array_equal(back[k], data[k])
    # a sequence without frames is a valid (empty) file
    save_points(tmp_path / "e.npz", _data((0,)))
    assert len(load_points(tmp_path / "e.npz")["frame_offsets"]) == 1


@pytest.mark.parametrize(
    "offsets", [(1, 2, 5), (0, 2, 4), (0, 6, 5), (0, 2, 6)], ids=["start", "end", "down", "over"]
)
def test_save_rejects_offsets_that_do_not_index_the_points(tmp_path, offsets):
    data = _data((0, 2, 5))
    data["frame_offsets"] = np.asarray(offsets)
    path = tmp_path / "p.npz"
    with _raises(path, "frame_offsets do not index the points"):
        save_points(path, data)
    assert not path.exists()


def test_missing_and_unreadable_files(tmp_path):
    path = tmp_path / "nope.npz"
    with _raises(path, "points file is missing"):
        load_points(path)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip archive")
    with pytest.raises(DepthError, match=rf"^{re.escape(str(bad))}: unreadable points file \("):
        load_points(bad)


def test_pickled_arrays_are_not_loaded(tmp_path):
    data = _data()
    data["landmarks3d"] = np.array([{"a": 1}, None], dtype=object)
    path = _write(tmp_path / "p.npz", data)
    with pytest.raises(DepthError, match=rf"^{re.escape(str(path))}: unreadable points file \("):
        load_points(path)


def test_missing_keys_are_named(tmp_path):
    data = _data()
    del data["normals"], data["landmarks3d_valid"]
    path = _write(tmp_path / "p.npz", data)
    with _raises(path, "lacks normals, landmarks3d_valid"):
        load_points(path)


@pytest.mark.parametrize("key", ["points", "normals"])
def test_points_and_normals_must_be_p_by_3(tmp_path, key):
    data = _data()
    data[key] = data[key][:, :2] if key == "normals" else np.zeros((5, 2), np.float32)
    path = _write(tmp_path / "p.npz", data)
    with _raises(path, re.escape("points/normals must both be (P, 3)")):
        load_points(path)


@pytest.mark.parametrize(
    "offsets", [(1, 2, 5), (0, 2, 4), (0, 6, 5), ()], ids=["start", "end", "down", "empty"]
)
def test_load_rejects_offsets_that_do_not_index_the_points(tmp_path, offsets):
    data = _data()
    data["frame_offsets"] = np.asarray(offsets, dtype=np.int64)
    data["landmarks3d"] = np.zeros((max(len(offsets) - 1, 0), 68, 3))
    data["landmarks3d_valid"] = np.ones((max(len(offsets) - 1, 0), 68), bool)
    path = _write(tmp_path / "p.npz", data)
    with _raises(path, "frame_offsets do not index the points"):
        load_points(path)


@pytest.mark.parametrize("key", ["landmarks3d", "landmarks3d_valid"])
def test_landmarks_must_cover_every_frame(tmp_path, key):
    data = _data()
    data[key] = data[key][:1]
    path = _write(tmp_path / "p.npz", data)
    n = len(data["landmarks3d"])
    with _raises(path, f"landmarks cover {n} frames, the points 2"):
        load_points(path)


def test_non_finite_points_are_rejected(tmp_path):
    data = _data()
    data["points"][3, 1] = np.inf
    path = _write(tmp_path / "p.npz", data)
    with _raises(path, "points contain NaN or infinite values"):
        load_points(path)
