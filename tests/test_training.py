"""Training (Lightning modules, train_model: loss, resume, seeding) and `talkhead animate`, on a
small packaged dataset written here with the dataset stage's own writers (two subjects, a
30-vertex FLAME-format model with region masks)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_dataset import outputs_of, small_head_files, write_stage_outputs

from talkhead.cli import main
from talkhead.dataset.stage import run_dataset_stage
from talkhead.dataset.torch_dataset import TalkingFaceDataset
from talkhead.flame import FlameLayer, load_flame_params
from talkhead.models.facetalk import INJECTIONS
from talkhead.training import config as training_config
from talkhead.training.modules import load_module
from talkhead.training.train import train_model

torch.set_num_threads(1)

V = 30


@pytest.fixture(scope="module")
def head(tmp_path_factory) -> dict[str, Path]:
    return small_head_files(tmp_path_factory.mktemp("head"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, head) -> Path:
    results = tmp_path_factory.mktemp("training") / "results"
    layer = FlameLayer.from_file(head["model"])
    pairs = [("p001", "A"), ("p001", "B"), ("p002", "A")]
    for i, (s, q) in enumerate(pairs):
        write_stage_outputs(results, layer, s, q, T=16, seed=i, nphm=True)
        # audio that carries the face: the first log-mel bins are the expression and jaw
        params = load_flame_params(results / "flame" / s / q / "flame.npz")
        mel_path = results / "audio" / s / q / "features" / "logmel.npy"
        mel = np.load(mel_path)
        mel[:, :7] = 3 * np.concatenate([params["expression"], params["jaw"]], axis=1)
        np.save(mel_path, mel)
    root = results / "dataset"
    split = root.parent / "splits_in.json"
    split.write_text(json.dumps({"train": ["p001"], "val": ["p002"]}))
    settings = {"splits_file": str(split), "include_nphm": True}  # 16-d NPHM codes too
    run_dataset_stage(outputs_of(results, pairs, nphm=True), root, settings)
    return root


def settings(**training) -> dict:
    return {
        "training": {
            "steps": 20,
            "batch_size": 2,
            "window_frames": 8,
            "window_stride": 4,
            **training,
        },
        "facetalk": {
            "latent_dim": 16,
            "n_blocks": 1,
            "n_heads": 2,
            "ff_dim": 32,
            "sample_steps": 4,
        },
        "faceformer": {"latent_dim": 16, "n_heads": 2, "ff_dim": 32},
    }


def train(dataset, head, kind, out, models, **kwargs) -> dict:
    return train_model(
        dataset,
        kind,
        out,
        models,
        flame_model=head["model"],
        flame_masks=head["masks"],
        progress_bar=False,
        **kwargs,
    )


def test_config_injections_are_the_models():
    assert training_config.INJECTIONS == INJECTIONS


def test_model_space_vertices_drop_the_head_pose(dataset, head):
    ds = TalkingFaceDataset(
        dataset, "train", window_frames=8, flame_model=head["model"], vertex_space="model"
    )
    world = TalkingFaceDataset(dataset, "train", window_frames=8, flame_model=head["model"])
    item, w = ds[0], world[0]
    params = load_flame_params(dataset / "data/p001_A/flame_2023_tracking/flame_params.npz")
    layer = FlameLayer.from_file(head["model"])
    with torch.no_grad():
        want = layer(
            shape=params["shape"],
            expression=params["expression"][:8],
            jaw=params["jaw"][:8],
            neck=params["neck"][:8],
            eyes=params["eyes"][:8],
        ).vertices
    torch.testing.assert_close(item["targets"], want.float(), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(item["targets"], w["targets"], atol=1e-3)


@pytest.mark.parametrize("kind", training_config.MODELS)
def test_each_model_trains_a_step_and_reloads(dataset, head, tmp_path, kind):
    m = train(dataset, head, kind, tmp_path, settings(steps=2, log_every=1))
    assert m["steps"] == 2 and np.isfinite(m["final_loss"])
    assert m["n_val_windows"] > 0  # p002 is the validation subject
    module = load_module(str(tmp_path / "model.ckpt"))
    saved = torch.load(tmp_path / "model.ckpt", weights_only=True)["state_dict"]
    for key, value in module.state_dict().items():
        torch.testing.assert_close(value, saved[key])
    if kind == "meshtalk":  # the masks give the cross-modality loss its regions
        assert module.mouth_weights.sum() == 6 and module.upper_weights.sum() == 10
    if kind == "facetalk_nphm":  # NPHM codes, though models.facetalk.target is FLAME's
        assert settings()["facetalk"].get("target", "flame_expression") == "flame_expression"
        assert m["target"] == "nphm_expression" and module.dims["target_dim"] == 16
        assert module.diffusion_on
        codes = module.animate(torch.zeros(10, module.dims["audio_dim"]), 2)["codes"]
        assert codes.shape == (2, 10, 16) and not torch.allclose(codes[0], codes[1])


def test_default_models_are_every_model_table_1_compares():
    cfg = training_config.ModelsConfig()
    assert tuple(cfg.train) == training_config.DEFAULT_MODELS == training_config.MODELS
    assert set(training_config.NPHM_MODELS) <= set(cfg.train)


def test_meshtalk_switches_to_stage_two_with_stage_one_frozen(dataset, head, tmp_path):
    m = train(dataset, head, "meshtalk", tmp_path, {**settings(steps=6, log_every=1)})
    rows = (tmp_path / "losses.csv").read_text().splitlines()
    header = rows[0].split(",")
    stages = [
        float(r.split(",")[header.index("train/stage")])
        for r in rows[1:]
        if r.split(",")[header.index("train/stage")]
    ]
    assert stages[0] == 1.0 and stages[-1] == 2.0 and m["steps"] == 6
    module = load_module(str(tmp_path / "model.ckpt"))
    assert module.net.stage1_frozen


def test_a_short_training_lowers_the_loss(dataset, head, tmp_path):
    models = {
        **settings(steps=150, log_every=1, lr=3e-3),
        "facetalk_regression": {"velocity_weight": 0},
    }
    m = train(dataset, head, "facetalk_regression", tmp_path, models)
    rows = [line.split(",") for line in (tmp_path / "losses.csv").read_text().splitlines()]
    col = rows[0].index("train/loss")
    losses = [float(r[col]) for r in rows[1:] if r[col]]
    assert len(losses) >= 140
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10]), (losses[:10], losses[-10:])
    assert m["steps"] == 150


def test_an_interrupted_training_resumes_where_it_stopped(dataset, head, tmp_path):
    N = 6
    models = settings(steps=2 * N, checkpoint_every=N, log_every=1)
    first = train(dataset, head, "facetalk", tmp_path, models, max_steps=N)
    assert first["steps"] == N and (tmp_path / "checkpoints/last.ckpt").is_file()
    second = train(dataset, head, "facetalk", tmp_path, models)
    assert second["resumed_from_step"] == N and second["steps"] == 2 * N
    rows = [r.split(",") for r in (tmp_path / "losses.csv").read_text().splitlines()]
    col = rows[0].index("train/loss")
    # both runs' losses, one per step: steps 0..N-1 from the first, N..2N-1 after resuming
    assert [int(r[0]) for r in rows[1:] if r[col]] == list(range(2 * N))
    # other settings: the old checkpoint is not resumed from
    other = settings(steps=2 * N, checkpoint_every=N, log_every=1, lr=1e-3)
    third = train(dataset, head, "facetalk", tmp_path, other, max_steps=2)
    assert third["resumed_from_step"] == 0 and third["steps"] == 2


def test_seeded_runs_give_identical_weights(dataset, head, tmp_path):
    def weights(out, seed):
        train(dataset, head, "facetalk", out, settings(steps=4, seed=seed))
        return torch.load(out / "model.ckpt", weights_only=True)["state_dict"]

    a, b, c = weights(tmp_path / "a", 0), weights(tmp_path / "b", 0), weights(tmp_path / "c", 1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_animate_a_minute_of_audio(dataset, head, tmp_path, capsys):
    import av
    import soundfile as sf

    train(dataset, head, "facetalk", tmp_path / "model", settings(steps=2))
    sr, seconds, fps = 16000, 60.0, 10.0
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(0)
    speech = 0.2 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    sf.write(tmp_path / "speech.flac", speech + 0.01 * rng.normal(size=t.size), sr)
    out = tmp_path / "anim"
    code = main(
        [
            "animate",
            "--checkpoint",
            str(tmp_path / "model/model.ckpt"),
            "--audio",
            str(tmp_path / "speech.flac"),
            "--out",
            str(out),
            "--samples",
            "2",
            "--fps",
            str(fps),
        ]
    )
    assert code == 0, capsys.readouterr().err
    T = int(seconds * fps)
    codes = np.load(out / "codes.npz")["codes"]
    assert codes.shape == (2, T, 4 + 3)
    assert not np.allclose(codes[0], codes[1])  # two diffusion samples differ
    for k in range(2):
        assert len(list((out / f"sample_{k:02d}/meshes").glob("frame_*.ply"))) == T
    with av.open(str(out / "sample_00/animation.mp4")) as box:
        kinds = {s.type for s in box.streams}
        video = box.streams.video[0]
        assert kinds == {"video", "audio"}
        n = sum(1 for _ in box.decode(video=0))
    assert n == T
    assert float(video.duration * video.time_base) == pytest.approx(seconds, abs=0.2)


def test_animate_without_video_says_what_it_wrote(dataset, head, tmp_path, capsys):
    import soundfile as sf

    train(dataset, head, "faceformer", tmp_path / "model", settings(steps=1))
    t = np.arange(16000) / 16000
    sf.write(tmp_path / "speech.wav", 0.2 * np.sin(2 * np.pi * 180 * t), 16000)
    out = tmp_path / "anim"
    args = ["--checkpoint", str(tmp_path / "model/model.ckpt"), "--audio"]
    args += [str(tmp_path / "speech.wav"), "--out", str(out), "--fps", "10"]
    assert main(["animate", *args, "--no-video"]) == 0, capsys.readouterr().err
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.endswith(": meshes and codes"), line
    assert len(list(out.glob("sample_00/meshes/frame_*.ply"))) == 10
    assert not list(out.rglob("*.mp4"))
    assert main(["animate", *args]) == 0, capsys.readouterr().err
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.endswith(": meshes, codes and mp4"), line
    assert (out / "sample_00/animation.mp4").is_file()
