"""Dataset packaging (FaceTalk's layout), manifest, subject splits, windows and the torch
Dataset, on stage outputs written here in the formats the flame and audio stages write."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from talkhead.config import from_mapping
from talkhead.dataset import layout
from talkhead.dataset.config import DatasetConfig
from talkhead.dataset.manifest import read_manifest
from talkhead.dataset.splits import (
    SPLITS,
    check_splits,
    make_splits,
    read_splits_file,
    split_counts,
)
from talkhead.dataset.stage import run_dataset_stage
from talkhead.dataset.torch_dataset import TalkingFaceDataset, collate_windows
from talkhead.dataset.windows import load_windows, sequence_windows
from talkhead.errors import ConfigError, DatasetError
from talkhead.flame import FlameLayer, FlameModel, load_flame_params, save_flame_model
from talkhead.flame.params import save_flame_params
from talkhead.io import save_json, save_wav

torch.set_num_threads(1)

FPS = 25.0
N_MEL = 80


def small_model(seed: int = 0, V: int = 30, S: int = 5, E: int = 4) -> FlameModel:
    """A FLAME-format model with FLAME's 5 joints, random but valid."""
    rng = np.random.default_rng(seed)
    J = 5
    reg = np.zeros((J, V))
    for j in range(J):
        reg[j, rng.choice(V, 4, replace=False)] = rng.random(4) + 0.1
    reg /= reg.sum(1, keepdims=True)
    weights = rng.random((V, J)) ** 3
    weights /= weights.sum(1, keepdims=True)
    return FlameModel(
        v_template=rng.normal(size=(V, 3)) * 0.1,
        faces=np.stack([rng.choice(V, 3, replace=False) for _ in range(40)]).astype(np.int64),
        shapedirs=rng.normal(size=(V, 3, S)) * 0.02,
        exprdirs=rng.normal(size=(V, 3, E)) * 0.02,
        posedirs=rng.normal(size=(V, 3, (J - 1) * 9)) * 0.02,
        J_regressor=reg,
        parents=np.array([-1, 0, 1, 1, 1]),
        lbs_weights=weights,
    )


def small_head_files(folder: Path) -> dict[str, Path]:
    """:func:`small_model` written as a FLAME pickle with region masks (lips, forehead, eyes)
    in ``folder``: ``{"model": path, "masks": path}``."""
    from talkhead.flame.model import save_region_masks

    save_flame_model(folder / "generic_model.pkl", small_model())
    masks = {
        "lips": np.arange(0, 6),
        "forehead": np.arange(10, 14),
        "left_eye_region": np.arange(14, 17),
        "right_eye_region": np.arange(17, 20),
    }
    save_region_masks(folder / "FLAME_masks.pkl", masks)
    return {"model": folder / "generic_model.pkl", "masks": folder / "FLAME_masks.pkl"}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "generic_model.pkl"
    save_flame_model(path, small_model())
    return path


@pytest.fixture(scope="module")
def layer(model_path) -> FlameLayer:
    return FlameLayer.from_file(model_path)


def write_ply(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    trimesh.Trimesh(vertices, faces, process=False).export(path)


def write_stage_outputs(
    results: Path,
    layer: FlameLayer,
    subject: str,
    sequence: str,
    T: int = 8,
    first_frame: int = 0,
    feature_rows: int | None = None,
    wav2vec2: bool = False,
    nphm: bool = False,
    metrics: dict | None = None,
    seed: int = 0,
) -> None:
    """One sequence's flame, audio (and NPHM) outputs in the stages' formats."""
    rng = np.random.default_rng(seed)
    frames = np.arange(first_frame, first_frame + T)
    params = {
        "shape": rng.normal(size=layer.num_shape).astype(np.float32),
        "expression": rng.normal(size=(T, layer.num_expression)).astype(np.float32),
        "rotation": rng.normal(scale=0.1, size=(T, 3)),
        "translation": rng.normal(scale=0.01, size=(T, 3)),
        "jaw": rng.normal(scale=0.1, size=(T, 3)),
        "neck": rng.normal(scale=0.05, size=(T, 3)),
        "eyes": rng.normal(scale=0.05, size=(T, 6)),
        "scale": 1 + rng.normal(scale=0.01, size=(T, 1)),
        "frames": frames,
        "fps": np.float64(FPS),
    }
    fl = results / "flame" / subject / sequence
    fl.mkdir(parents=True, exist_ok=True)
    save_flame_params(fl / "flame.npz", params)
    faces = layer.faces.numpy()
    with torch.no_grad():
        verts = layer(**{k: v for k, v in params.items() if k not in ("frames", "fps")})
        neutral = layer(shape=params["shape"]).vertices[0].numpy()
    write_ply(fl / "template.ply", neutral, faces)
    for k, t in enumerate(frames):
        write_ply(fl / "flame_meshes" / f"frame_{t:05d}.ply", verts.vertices[k].numpy(), faces)
    save_json(
        fl / "metrics.json",
        metrics
        if metrics is not None
        else {"landmark_residual_mm": 1.5 + seed, "jitter_rmse": 0.25, "converged": True},
    )
    au = results / "audio" / subject / sequence
    rows = feature_rows if feature_rows is not None else first_frame + T
    save_wav(au / "cleaned_audio.wav", rng.normal(scale=0.1, size=int(rows / FPS * 16000)), 16000)
    (au / "features").mkdir(parents=True, exist_ok=True)
    np.save(au / "features" / "logmel.npy", rng.normal(size=(rows, N_MEL)).astype(np.float32))
    if wav2vec2:
        np.save(au / "features" / "wav2vec2.npy", rng.normal(size=(rows, 12)).astype(np.float32))
    save_json(au / "features" / "meta.json", {"T": rows, "fps": FPS, "n_mels": N_MEL})
    if nphm:
        nd = results / "nphm" / subject / sequence
        for t in frames:
            code = rng.normal(size=16).astype(np.float32)
            (nd / "nphm_expressions").mkdir(parents=True, exist_ok=True)
            np.savez(nd / "nphm_expressions" / f"frame_{t:05d}.npz", expression=code)
            write_ply(nd / "nphm_meshes" / f"frame_{t:05d}.ply", neutral, faces)


NO_NPHM = {"include_nphm": False}
"""Settings of a dataset without NPHM fits (the default packages them)."""


def outputs_of(results: Path, pairs, nphm: bool = False):
    return [layout.stage_outputs(results, s, q, include_nphm=nphm) for s, q in pairs]


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------------------------
# layout


def test_layout_created_exactly_with_hard_links(tmp_path, layer):
    results = tmp_path / "results"
    write_stage_outputs(results, layer, "p001", "EMO-1", T=3, wav2vec2=True, seed=1)
    write_stage_outputs(results, layer, "p002", "SEN-01", T=2, first_frame=4, seed=2)
    root = results / "dataset"
    pairs = [("p001", "EMO-1"), ("p002", "SEN-01")]
    metrics = run_dataset_stage(
        outputs_of(results, pairs), root, {"include_nphm": False, "window_frames": 2}
    )

    a, b = "data/p001_EMO-1", "data/p002_SEN-01"
    expected = {
        "manifest.csv",
        "manifest.parquet",
        "splits.json",
        "windows.csv",
        "metrics.json",
        *(
            f"{seq}/{rel}"
            for seq in (a, b)
            for rel in (
                "audio/cleaned_audio.wav",
                "audio/logmel.npy",
                "audio/features_meta.json",
                "flame_2023_tracking/flame_params.npz",
                "flame_2023_tracking/flame_2023_template.ply",
                "flame_2023_tracking/metrics.json",
            )
        ),
        f"{a}/audio/wav2vec2.npy",
        *(f"{a}/flame_2023_tracking/flame_meshes/frame_{t:05d}.ply" for t in range(3)),
        *(f"{b}/flame_2023_tracking/flame_meshes/frame_{t:05d}.ply" for t in (4, 5)),
    }
    assert files_under(root) == expected
    assert sorted(p.name for p in (root / "data").iterdir()) == ["p001_EMO-1", "p002_SEN-01"]
    src = results / "flame/p002/SEN-01/flame_meshes/frame_00005.ply"
    dst = root / b / "flame_2023_tracking/flame_meshes/frame_00005.ply"
    assert os.stat(src).st_ino == os.stat(dst).st_ino
    assert metrics["files_linked"] == len(expected) - 5 and metrics["files_copied"] == 0


def test_copies_when_hard_links_are_off_and_stale_sequences_go(tmp_path, layer):
    results = tmp_path / "results"
    write_stage_outputs(results, layer, "p001", "A", T=2)
    root = results / "dataset"
    (root / "data" / "old_SEQ").mkdir(parents=True)
    (root / "data" / "p001_A.partial").mkdir(parents=True)
    metrics = run_dataset_stage(
        outputs_of(results, [("p001", "A")]), root, {**NO_NPHM, "hard_links": False}
    )
    src = results / "flame/p001/A/flame.npz"
    dst = root / "data/p001_A/flame_2023_tracking/flame_params.npz"
    assert os.stat(src).st_ino != os.stat(dst).st_ino
    assert dst.read_bytes() == src.read_bytes()
    assert metrics["files_linked"] == 0 and metrics["files_copied"] > 0
    assert [p.name for p in (root / "data").iterdir()] == ["p001_A"]


def test_a_rerun_replaces_a_packaged_sequence_whole(tmp_path, layer):
    results = tmp_path / "results"
    write_stage_outputs(results, layer, "p001", "A", T=4)
    root = results / "dataset"
    run_dataset_stage(outputs_of(results, [("p001", "A")]), root, NO_NPHM)
    write_stage_outputs(results, layer, "p001", "A", T=2, first_frame=6)
    for t in range(4):
        (results / f"flame/p001/A/flame_meshes/frame_{t:05d}.ply").unlink()
    run_dataset_stage(outputs_of(results, [("p001", "A")]), root, NO_NPHM)
    meshes = root / "data/p001_A/flame_2023_tracking/flame_meshes"
    assert sorted(p.name for p in meshes.iterdir()) == ["frame_00006.ply", "frame_00007.ply"]
    assert [p.name for p in (root / "data").iterdir()] == ["p001_A"]
    assert read_manifest(root / "manifest.parquet")[0]["first_frame"] == 6


def test_the_stage_splits_with_the_configured_seed_and_fractions(tmp_path, layer):
    results = tmp_path / "results"
    pairs = [(f"p{i}", "A") for i in range(6)]
    for k, (s, q) in enumerate(pairs):
        write_stage_outputs(results, layer, s, q, T=1, seed=k)
    fractions = {"train": 0.5, "val": 0.5, "test": 0.0}
    settings = {
        "include_nphm": False,
        "seed": 3,
        "train_fraction": 0.5,
        "val_fraction": 0.5,
        "test_fraction": 0.0,
    }
    metrics = run_dataset_stage(outputs_of(results, pairs), results / "dataset", settings)
    written = json.loads((results / "dataset/splits.json").read_text())
    want = make_splits([s for s, _ in pairs], fractions, seed=3)
    assert {s: written[s] for s in SPLITS} == want
    assert (written["source"], written["seed"], written["fractions"]) == ("seeded", 3, fractions)
    assert (metrics["subjects_train"], metrics["subjects_val"], metrics["subjects_test"]) == (
        3,
        3,
        0,
    )


def test_nphm_packaged_when_enabled(tmp_path, layer):
    results = tmp_path / "results"
    write_stage_outputs(results, layer, "p001", "A", T=2, first_frame=3, nphm=True)
    root = results / "dataset"
    run_dataset_stage(outputs_of(results, [("p001", "A")], nphm=True), root, {"include_nphm": True})
    nphm = {f for f in files_under(root) if "/nphm_tracking/" in f}
    assert nphm == {
        f"data/p001_A/nphm_tracking/{kind}/frame_{t:05d}.{ext}"
        for kind, ext in (("nphm_expressions", "npz"), ("nphm_meshes", "ply"))
        for t in (3, 4)
    }
    row = read_manifest(root / "manifest.csv")[0]
    assert row["nphm_expressions"] == "data/p001_A/nphm_tracking/nphm_expressions"
    assert (root / row["nphm_expressions"]).is_dir()


def test_bad_inputs_stop_before_anything_is_written(tmp_path, layer):
    results = tmp_path / "results"
    write_stage_outputs(results, layer, "p001", "A", T=4)
    write_stage_outputs(results, layer, "p002", "B", T=6, feature_rows=5)
    root = results / "dataset"
    pairs = [("p001", "A"), ("p002", "B")]
    with pytest.raises(DatasetError, match=r"logmel\.npy.*different lengths"):
        run_dataset_stage(outputs_of(results, pairs), root, NO_NPHM)
    assert not root.exists()
    write_stage_outputs(results, layer, "p002", "B", T=6)
    (results / "flame/p002/B/flame_meshes/frame_00002.ply").unlink()
    with pytest.raises(DatasetError, match=r"1 of 6 FLAME meshes.*frame_00002\.ply"):
        run_dataset_stage(outputs_of(results, pairs), root, NO_NPHM)
    assert not root.exists()
    with pytest.raises(DatasetError, match="include_nphm"):
        run_dataset_stage(outputs_of(results, pairs), root, {"include_nphm": True})


def test_frame_rate_disagreement_is_refused(tmp_path, layer):
    results = tmp_path / "results"
    write_stage_outputs(results, layer, "p001", "A", T=2)
    save_json(results / "audio/p001/A/features/meta.json", {"T": 2, "fps": 30.0})
    with pytest.raises(DatasetError, match="fps 30 differs from the FLAME fit's 25"):
        run_dataset_stage(outputs_of(results, [("p001", "A")]), tmp_path / "ds", NO_NPHM)


# --------------------------------------------------------------------------------------------
# manifest


def test_manifest_rows_and_both_formats_agree(tmp_path, layer):
    results = tmp_path / "results"
    write_stage_outputs(results, layer, "p002", "B", T=5, first_frame=2, seed=3)
    write_stage_outputs(results, layer, "p001", "A", T=4, wav2vec2=True, seed=1)
    write_stage_outputs(
        results, layer, "p001", "C", T=3, metrics={"plane_residual_mm": 0.7, "note": "x"}
    )
    root = results / "dataset"
    pairs = [("p002", "B"), ("p001", "A"), ("p001", "C")]
    run_dataset_stage(outputs_of(results, pairs), root, NO_NPHM)
    csv_rows = read_manifest(root / "manifest.csv")
    pq_rows = read_manifest(root / "manifest.parquet")
    assert [(r["subject"], r["sequence"]) for r in csv_rows] == [
        ("p001", "A"),
        ("p001", "C"),
        ("p002", "B"),
    ]
    assert list(csv_rows[0]) == list(pq_rows[0])
    for rc, rp in zip(csv_rows, pq_rows, strict=True):
        for key in rc:
            if isinstance(rc[key], float) and math.isnan(rc[key]):
                assert math.isnan(rp[key]), key
            else:
                assert rc[key] == rp[key] and type(rc[key]) is type(rp[key]), key
    a, c, b = csv_rows
    assert (b["frames"], b["first_frame"], b["last_frame"], b["feature_rows"]) == (5, 2, 6, 7)
    assert b["fps"] == FPS and b["seconds"] == 5 / FPS
    assert (a["wav2vec2_dim"], a["logmel_dim"], b["wav2vec2_dim"], b["wav2vec2"]) == (12, 80, 0, "")
    # fit figures: numbers taken, a figure a fit lacks is NaN, booleans and text left out
    assert a["flame_landmark_residual_mm"] == 2.5 and b["flame_landmark_residual_mm"] == 4.5
    assert math.isnan(c["flame_landmark_residual_mm"]) and c["flame_plane_residual_mm"] == 0.7
    assert math.isnan(a["flame_plane_residual_mm"])
    assert "flame_converged" not in a and "flame_note" not in a
    for row in csv_rows:
        for key in ("audio", "logmel", "flame_params", "flame_template", "flame_meshes"):
            assert (root / row[key]).exists(), (row["name"], key)
    assert load_flame_params(root / b["flame_params"])["frames"].tolist() == [2, 3, 4, 5, 6]


def test_missing_manifest_is_named(tmp_path):
    with pytest.raises(DatasetError, match=r"manifest\.csv: manifest missing"):
        read_manifest(tmp_path / "manifest.csv")


# --------------------------------------------------------------------------------------------
# splits

FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


def test_split_counts_honour_fractions_and_give_each_split_a_subject():
    assert split_counts(10, FRACTIONS) == {"train": 8, "val": 1, "test": 1}
    assert split_counts(20, {"train": 0.7, "val": 0.15, "test": 0.15}) == {
        "train": 14,
        "val": 3,
        "test": 3,
    }
    assert split_counts(3, FRACTIONS) == {"train": 1, "val": 1, "test": 1}
    assert split_counts(4, FRACTIONS) == {"train": 2, "val": 1, "test": 1}
    assert split_counts(2, FRACTIONS) == {"train": 1, "val": 1, "test": 0}
    assert split_counts(1, FRACTIONS) == {"train": 1, "val": 0, "test": 0}
    assert split_counts(5, {"train": 1.0, "val": 0.0, "test": 0.0}) == {
        "train": 5,
        "val": 0,
        "test": 0,
    }
    for n in range(0, 40):
        counts = split_counts(n, FRACTIONS)
        assert sum(counts.values()) == n
        if n >= 3:
            assert min(counts.values()) >= 1
        if n >= 10:
            assert all(abs(counts[s] - n * FRACTIONS[s]) < 1 for s in SPLITS), (n, counts)


def test_splits_are_subject_disjoint_and_seeded():
    subjects = [f"p{i:03d}" for i in range(12)]
    a = make_splits(subjects, FRACTIONS, seed=7)
    assert make_splits(list(reversed(subjects)), FRACTIONS, seed=7) == a
    assert sorted(x for s in SPLITS for x in a[s]) == subjects
    assert [len(a[s]) for s in SPLITS] == [10, 1, 1]
    assert check_splits(a, subjects) == []
    others = [make_splits(subjects, FRACTIONS, seed=k) for k in range(1, 6)]
    assert any(o != a for o in others)


def test_user_split_file_is_honoured(tmp_path, layer):
    results = tmp_path / "results"
    pairs = [("p001", "A"), ("p001", "B"), ("p002", "A"), ("p003", "A")]
    for k, (s, q) in enumerate(pairs):
        write_stage_outputs(results, layer, s, q, T=3, seed=k)
    user = tmp_path / "my_splits.json"
    user.write_text(json.dumps({"train": ["p003"], "val": ["p001"], "test": ["p002"]}))
    root = results / "dataset"
    run_dataset_stage(
        outputs_of(results, pairs), root, {"include_nphm": False, "splits_file": str(user)}
    )
    written = json.loads((root / "splits.json").read_text())
    assert (written["train"], written["val"], written["test"]) == (["p003"], ["p001"], ["p002"])
    assert written["source"] == str(user)
    by_name = {w["name"]: w["split"] for w in load_windows(root / "windows.csv")}
    assert by_name == {"p001_A": "val", "p001_B": "val", "p002_A": "test", "p003_A": "train"}
    # the written splits.json, passed back, gives the same split
    again = read_splits_file(root / "splits.json", ["p001", "p002", "p003"])
    assert again == {"train": ["p003"], "val": ["p001"], "test": ["p002"]}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"train": ["p1", "p9"], "val": ["p2"], "test": []}, "unknown subject.*p9"),
        ({"train": ["p1", "p2"], "val": ["p2"]}, "subject p2 is in both train and val"),
        ({"train": ["p1"], "val": [], "test": []}, r"subject\(s\) p2 in no split"),
        ({"train": ["p1", "p2"], "dev": []}, "unknown split 'dev'"),
        ({"train": "p1 p2"}, "train must be a list of subject names"),
        ([["p1"], ["p2"]], "expected a JSON object"),
    ],
)
def test_bad_split_file_names_the_file(tmp_path, content, message):
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ConfigError, match=message) as info:
        read_splits_file(path, ["p1", "p2"])
    assert str(info.value).startswith(f"dataset.splits_file {path}: ")
    assert "\n" not in str(info.value)


def test_missing_split_file_is_a_config_error_in_the_stage(tmp_path, layer):
    results = tmp_path / "results"
    write_stage_outputs(results, layer, "p001", "A", T=2)
    with pytest.raises(ConfigError, match=r"dataset\.splits_file .*nope\.json: file not found"):
        run_dataset_stage(
            outputs_of(results, [("p001", "A")]),
            results / "dataset",
            {**NO_NPHM, "splits_file": str(tmp_path / "nope.json")},
        )


def test_fractions_must_sum_to_one():
    with pytest.raises(ConfigError, match=r"dataset\.train_fraction: .*must be 1, got 1\.1"):
        from_mapping(DatasetConfig, {"train_fraction": 0.9}, "dataset")


# --------------------------------------------------------------------------------------------
# windows


def test_sequence_windows():
    assert sequence_windows(10, 4, 3) == [(0, 4), (3, 4), (6, 4)]
    assert sequence_windows(11, 4, 3) == [(0, 4), (3, 4), (6, 4), (7, 4)]
    assert sequence_windows(11, 4, 3, cover_tail=False) == [(0, 4), (3, 4), (6, 4)]
    assert sequence_windows(4, 4, 3) == [(0, 4)]
    assert sequence_windows(3, 5, 2) == [(0, 3)]
    assert sequence_windows(0, 5, 2) == []
    assert sequence_windows(20, 5, 5) == [(0, 5), (5, 5), (10, 5), (15, 5)]


def test_windows_count_and_padding_in_the_stage(tmp_path, layer):
    results = tmp_path / "results"
    write_stage_outputs(results, layer, "p001", "A", T=9)
    write_stage_outputs(results, layer, "p002", "B", T=3)
    root = results / "dataset"
    metrics = run_dataset_stage(
        outputs_of(results, [("p001", "A"), ("p002", "B")]),
        root,
        {**NO_NPHM, "window_frames": 4, "window_stride": 2},
    )
    windows = load_windows(root / "windows.csv")
    assert [(w["name"], w["start"], w["length"], w["padded"]) for w in windows] == [
        ("p001_A", 0, 4, 0),
        ("p001_A", 2, 4, 0),
        ("p001_A", 4, 4, 0),
        ("p001_A", 5, 4, 0),
        ("p002_B", 0, 3, 1),
    ]
    assert all(w["window"] == 4 for w in windows)
    counts = (metrics["n_windows"], metrics["n_padded_windows"], metrics["padded_frames"])
    assert counts == (5, 1, 1)
    saved = json.loads((root / "metrics.json").read_text())
    assert saved["n_frames"] == 12 and saved["hours"] == pytest.approx(12 / FPS / 3600)


# --------------------------------------------------------------------------------------------
# torch Dataset


@pytest.fixture(scope="module")
def packaged(tmp_path_factory, layer) -> Path:
    results = tmp_path_factory.mktemp("packaged") / "results"
    write_stage_outputs(
        results, layer, "p001", "A", T=7, first_frame=2, wav2vec2=True, nphm=True, seed=1
    )
    write_stage_outputs(results, layer, "p002", "A", T=3, nphm=True, wav2vec2=True, seed=2)
    root = results / "dataset"
    split = root.parent / "splits_in.json"
    split.write_text(json.dumps({"train": ["p001", "p002"]}))
    run_dataset_stage(
        outputs_of(results, [("p001", "A"), ("p002", "A")], nphm=True),
        root,
        {"window_frames": 4, "window_stride": 3, "include_nphm": True, "splits_file": str(split)},
    )
    return root


def test_dataset_items_shapes_masks_and_features(packaged, layer):
    ds = TalkingFaceDataset(packaged, "train", target="flame_expression")
    assert len(ds) == 3 and ds.window_frames == 4  # p001 (7 frames): starts 0, 3; p002: padded
    logmel = np.load(packaged / "data/p001_A/audio/logmel.npy")
    params = load_flame_params(packaged / "data/p001_A/flame_2023_tracking/flame_params.npz")
    item = ds[1]
    assert (item["name"], item["start"]) == ("p001_A", 3)
    assert item["audio_features"].shape == (4, 80) and item["targets"].shape == (4, 4 + 3)
    # features of the window's capture frames (5..8), targets of its fitted frames (3..6)
    np.testing.assert_array_equal(item["audio_features"].numpy(), logmel[5:9])
    np.testing.assert_allclose(item["targets"][:, :4].numpy(), params["expression"][3:7])
    np.testing.assert_allclose(item["targets"][:, 4:].numpy(), params["jaw"][3:7], rtol=1e-6)
    assert item["mask"].tolist() == [True] * 4
    assert item["subject_index"].item() == 0 and ds.subjects == ["p001", "p002"]
    short = ds[2]
    assert short["name"] == "p002_A" and short["mask"].tolist() == [True, True, True, False]
    assert short["subject_index"].item() == 1
    assert torch.all(short["audio_features"][3] == 0) and torch.all(short["targets"][3] == 0)
    assert torch.all(short["audio_features"][:3] != 0)
    w2v = TalkingFaceDataset(packaged, "train", target="nphm_expression", features="wav2vec2")
    assert w2v[2]["audio_features"].shape == (4, 12) and w2v[2]["targets"].shape == (4, 16)
    code = np.load(packaged / "data/p002_A/nphm_tracking/nphm_expressions/frame_00001.npz")
    np.testing.assert_array_equal(w2v[2]["targets"][1].numpy(), code["expression"])


def test_collate_pads_to_the_longest_with_a_mask(packaged):
    long = TalkingFaceDataset(packaged, "train", target="flame_expression", window_frames=6)
    short = TalkingFaceDataset(packaged, "train", target="flame_expression")
    batch = collate_windows([long[0], short[0], short[2]])
    assert batch["audio_features"].shape == (3, 6, 80) and batch["targets"].shape == (3, 6, 7)
    assert batch["mask"].dtype == torch.bool
    assert batch["mask"].sum(1).tolist() == [6, 4, 3]
    assert torch.all(batch["targets"][1, 4:] == 0) and torch.all(batch["targets"][2, 3:] == 0)
    assert batch["subject_index"].tolist() == [0, 0, 1]
    assert batch["template"].shape == (3, 30, 3)
    assert batch["name"] == ["p001_A", "p001_A", "p002_A"]
    torch.testing.assert_close(batch["targets"][1, :4], short[0]["targets"])


def test_flame_vertex_target_equals_flame_layer_output(packaged, model_path, layer, tmp_path):
    ds = TalkingFaceDataset(packaged, "train", flame_model=model_path, cache_dir=tmp_path)
    params = load_flame_params(packaged / "data/p001_A/flame_2023_tracking/flame_params.npz")
    item = ds[1]  # fitted frames 3..6
    assert item["targets"].shape == (4, 30, 3)
    for k in range(4):
        f = 3 + k
        with torch.no_grad():
            want = layer(
                shape=params["shape"],
                expression=params["expression"][f],
                rotation=params["rotation"][f],
                neck=params["neck"][f],
                jaw=params["jaw"][f],
                eyes=params["eyes"][f],
                translation=params["translation"][f],
                scale=params["scale"][f],
            ).vertices[0]
        torch.testing.assert_close(item["targets"][k], want, rtol=1e-5, atol=1e-6)
    assert (tmp_path / "p001_A.params.npy").is_file()
    cached = TalkingFaceDataset(packaged, "train", flame_model=layer, cache_dir=tmp_path)
    torch.testing.assert_close(cached[1]["targets"], item["targets"])
    meshes = TalkingFaceDataset(packaged, "train")
    assert meshes.vertices_from == "meshes"
    torch.testing.assert_close(meshes[1]["targets"], item["targets"], rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        neutral = layer(shape=params["shape"]).vertices[0]
    torch.testing.assert_close(item["template"], neutral, rtol=1e-5, atol=1e-6)


def test_dataset_refuses_what_the_package_lacks(packaged, tmp_path):
    with pytest.raises(DatasetError, match="unknown split 'dev'"):
        TalkingFaceDataset(packaged, "dev")
    with pytest.raises(ValueError, match="needs flame_model"):
        TalkingFaceDataset(packaged, "train", vertices_from="params")
    assert len(TalkingFaceDataset(packaged, "test", target="flame_expression")) == 0
    other = FlameLayer(small_model(seed=1, S=3))  # fewer shape coefficients than the fit's 5
    with pytest.raises(DatasetError, match="flame_params.npz: cannot pose .* the head model"):
        TalkingFaceDataset(packaged, "train", flame_model=other)[0]
    with pytest.raises(DatasetError, match="manifest missing"):
        TalkingFaceDataset(tmp_path, "train")


# --------------------------------------------------------------------------------------------
# QC: summary table and length histogram


def manifest_like(subject, sequence, frames, **fit):
    return {
        "subject": subject,
        "sequence": sequence,
        "name": f"{subject}_{sequence}",
        "frames": frames,
        "seconds": frames / FPS,
        "flame_meshes": "data/x/flame_2023_tracking/flame_meshes",
        **fit,
    }


def test_summary_table_by_content():
    from talkhead.qc.dataset import dataset_summary, fit_quality, summary_table_html

    rows = [
        manifest_like("p1", "A", 50, flame_landmark_residual_mm=1.0),
        manifest_like("p1", "B", 100, flame_landmark_residual_mm=3.0),
        manifest_like("p2", "A", 75, flame_landmark_residual_mm=math.nan, nphm_chamfer_mm=2.0),
    ]
    splits = {"train": ["p1"], "val": ["p2"], "test": []}
    s = dataset_summary(rows, splits)
    assert (s["subjects"], s["sequences"], s["frames"]) == (2, 3, 225)
    assert s["hours"] == pytest.approx(225 / FPS / 3600)
    assert (s["seconds_min"], s["seconds_median"], s["seconds_max"]) == (2.0, 3.0, 4.0)
    assert (s["sequences_train"], s["sequences_val"], s["subjects_test"]) == (2, 1, 0)
    fit = fit_quality(rows)
    assert list(fit) == ["flame_landmark_residual_mm", "nphm_chamfer_mm"]  # paths left out
    assert fit["flame_landmark_residual_mm"] == {"n": 2, "mean": 2.0, "median": 2.0, "max": 3.0}
    page = summary_table_html(rows, splits)
    assert "<tr><th>Subjects</th><td>2</td></tr>" in page
    assert "<tr><th>Sequences</th><td>3</td></tr>" in page
    assert "<tr><th>Frames</th><td>225</td></tr>" in page
    assert f"<tr><th>Hours</th><td>{225 / FPS / 3600:.4f}</td></tr>" in page
    assert "<tr><th>train: subjects / sequences</th><td>1 / 2</td></tr>" in page
    assert (
        "<tr><td>flame_landmark_residual_mm</td><td>2</td><td>2</td><td>2</td><td>3</td></tr>"
        in page
    )


def test_sequence_length_histogram_and_report(packaged, tmp_path):
    from talkhead.qc.dataset import sequence_length_histogram, write_dataset_report

    counts, edges = sequence_length_histogram([1.0, 1.0, 2.0, 10.0], bins=3)
    assert counts.tolist() == [3, 0, 1] and edges.tolist() == [1.0, 4.0, 7.0, 10.0]
    write_dataset_report(packaged, tmp_path / "summary.html", tmp_path / "lengths.png")
    page = (tmp_path / "summary.html").read_text()
    assert "<tr><th>Sequences</th><td>2</td></tr>" in page
    assert "<tr><th>Frames</th><td>10</td></tr>" in page
    assert "flame_landmark_residual_mm" in page and "flame_jitter_rmse" in page
    assert (tmp_path / "lengths.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------------------------
# workflow

REPO = Path(__file__).resolve().parents[1]


def snakemake(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_workflow_dry_run_packages_every_sequence_in_one_job():
    """Needs the rules that make results/flame/.../flame.npz and results/audio/.../
    cleaned_audio.wav; skipped (saying so) where the workflow has none yet."""
    res = snakemake(
        "results/dataset/summary.html",
        "-n",
        "--forceall",
        "--quiet",
        "rules",
        "--configfile",
        str(REPO / "tests/configs/two_by_two.yaml"),
    )
    out = res.stdout + res.stderr
    if res.returncode != 0 and "MissingInputException" in out:
        missing = re.findall(r"^\s+(results/\S+)$", out, re.M)
        if missing and all(m.startswith(("results/flame/", "results/audio/")) for m in missing):
            pytest.skip(f"no rule makes the dataset's inputs yet ({missing[0]}, ...)")
    assert res.returncode == 0, out
    counts = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^([a-z][a-z0-9_]*)\s+(\d+)\s*$", out, re.M)
    }
    assert counts["dataset"] == 1 and counts["plot_dataset"] == 1, counts


def test_workflow_refuses_a_bad_split_file_at_start_up(tmp_path):
    splits = tmp_path / "edited_splits.json"
    splits.write_text(json.dumps({"train": ["syn000", "syn007"], "val": ["syn000"]}))
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"dataset:\n  splits_file: {splits}\n")
    res = snakemake("-n", "--configfile", str(cfg))
    assert res.returncode != 0
    assert "talkhead: invalid split file:" in res.stderr
    assert f"dataset.splits_file {splits}: " in res.stderr
    assert "subject syn000 is in both train and val" in res.stderr
    assert "unknown subject(s) syn007" in res.stderr
    assert "Traceback" not in res.stderr
