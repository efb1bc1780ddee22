"""Model evaluation on a packaged dataset's test split (evaluation.json's contract), with tiny
models trained here; an oracle that returns the fits scores zero error; `talkhead evaluate`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_dataset import outputs_of, small_head_files, write_stage_outputs

from talkhead.cli import main
from talkhead.dataset.stage import run_dataset_stage
from talkhead.errors import EvaluationError
from talkhead.evaluation import models as evaluation_models
from talkhead.evaluation.models import METRIC_KEYS, evaluate_checkpoint
from talkhead.evaluation.stage import relabel_model_evaluation, run_evaluate_model
from talkhead.flame import FlameLayer, load_flame_params
from talkhead.training.modules import load_module
from talkhead.training.train import train_model

torch.set_num_threads(1)

TINY = {
    "training": {"steps": 2, "batch_size": 2, "window_frames": 8, "window_stride": 4},
    "facetalk": {"latent_dim": 16, "n_blocks": 1, "n_heads": 2, "ff_dim": 32, "sample_steps": 3},
    "faceformer": {"latent_dim": 16, "n_heads": 2, "ff_dim": 32},
}


@pytest.fixture(scope="module")
def head(tmp_path_factory) -> dict[str, Path]:
    return small_head_files(tmp_path_factory.mktemp("head"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, head) -> Path:
    results = tmp_path_factory.mktemp("evaluation") / "results"
    layer = FlameLayer.from_file(head["model"])
    pairs = [("p001", "A"), ("p001", "B"), ("p002", "A")]
    for i, (s, q) in enumerate(pairs):
        write_stage_outputs(results, layer, s, q, T=16, seed=i, nphm=True)
    root = results / "dataset"
    split = root.parent / "splits_in.json"
    split.write_text(json.dumps({"train": ["p001"], "val": [], "test": ["p002"]}))
    settings = {"splits_file": str(split), "include_nphm": True}
    run_dataset_stage(outputs_of(results, pairs, nphm=True), root, settings)
    return root


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, dataset, head) -> dict[str, Path]:
    out = {}
    nphm = {**TINY, "facetalk": {**TINY["facetalk"], "target": "nphm_expression"}}
    for name, kind, models in (
        ("facetalk", "facetalk", TINY),
        ("facetalk_regression", "facetalk_regression", TINY),
        ("faceformer", "faceformer", TINY),
        ("facetalk_nphm", "facetalk", nphm),
    ):
        folder = tmp_path_factory.mktemp(name)
        train_model(
            dataset,
            kind,
            folder,
            models,
            flame_model=head["model"],
            flame_masks=head["masks"],
            progress_bar=False,
        )
        out[name] = folder / "model.ckpt"
    return out


def check_contract(result: dict) -> None:
    assert set(result) == {
        "model",
        "label",
        "space",
        "variant",
        "split",
        "samples",
        "sequences",
        "metrics",
        "definitions",
        "ground_truth",
    }
    assert list(result["metrics"]) == list(METRIC_KEYS)
    assert set(result["definitions"]) == set(METRIC_KEYS)
    assert set(result["ground_truth"]) == {
        "jitter_mae",
        "jitter_rmse",
        "av_offset_frames",
        "av_correlation",
    }
    json.dumps(result, allow_nan=False)  # valid JSON for the report: no NaN


def test_a_diffusion_model_has_diversity_and_every_metric(checkpoints, dataset, head, tmp_path):
    path = tmp_path / "evaluation.json"
    result = run_evaluate_model(
        checkpoints["facetalk"],
        dataset,
        path,
        "facetalk_film",
        {"samples": 3, "av_max_lag": 3},
        variant="film",
    )
    check_contract(result)
    assert json.loads(path.read_text()) == json.loads(json.dumps(result))
    assert result["label"] == "FiLM" and result["variant"] == "film"
    assert result["split"] == "test" and result["sequences"] == ["p002/A"]
    assert result["samples"] == 3 and result["space"] == "flame_vertices"
    m = result["metrics"]
    assert m["diversity"] > 0 and m["lve_mm"] > 0 and m["lve_squared_mm2"] > 0
    assert m["lse_d"] is None and m["lse_c"] is None
    assert isinstance(m["av_offset_frames"], int) and abs(m["av_offset_frames"]) <= 3
    # the variant that is FaceTalk itself: FaceTalk's figures under the variant's name
    again = relabel_model_evaluation(path, tmp_path / "b.json", "facetalk_input", "Input", "input")
    assert again["metrics"] == result["metrics"] and again["label"] == "Input"
    assert json.loads((tmp_path / "b.json").read_text())["variant"] == "input"
    with pytest.raises(EvaluationError, match="absent.json"):
        relabel_model_evaluation(tmp_path / "absent.json", tmp_path / "c.json", "x", "X", None)


def test_deterministic_models_have_no_diversity(checkpoints, dataset, head):
    for kind, label in (
        ("faceformer", "FaceFormer-style baseline"),
        ("facetalk_regression", "Ours (w/o diffusion)"),
    ):
        result = evaluate_checkpoint(checkpoints[kind], dataset, samples=2, max_lag=3)
        check_contract(result)
        assert result["label"] == label and result["variant"] is None
        assert result["metrics"]["diversity"] is None and result["samples"] == 1
        assert result["metrics"]["lve_mm"] > 0


def test_nphm_codes_have_code_space_figures_and_no_vertex_metrics(checkpoints, dataset):
    result = evaluate_checkpoint(checkpoints["facetalk_nphm"], dataset, samples=2, max_lag=3)
    check_contract(result)
    assert result["label"] == "Ours (full)" and result["space"] == "nphm_expression"
    m = result["metrics"]
    assert all(m[k] is None for k in ("lve_mm", "lve_squared_mm2", "fdd_mm", "av_correlation"))
    assert m["diversity"] > 0 and m["jitter_rmse"] > 0
    assert "NPHM code units" in result["definitions"]["jitter_rmse"]
    # the floor: the fitted codes' own jitter (16-d random codes: about 1.4 per component)
    codes = np.stack(
        [
            np.load(p)["expression"]
            for p in sorted((dataset / "data/p002_A/nphm_tracking/nphm_expressions").iterdir())
        ]
    )
    assert result["ground_truth"]["jitter_rmse"] == pytest.approx(
        float(np.sqrt(np.mean(np.diff(codes, axis=0) ** 2))), rel=1e-5
    )


def test_syncnet_weights_give_lse(checkpoints, dataset, tmp_path):
    from talkhead.evaluation.lipsync import SyncNet

    torch.manual_seed(0)
    weights = tmp_path / "syncnet.pt"
    torch.save(SyncNet().state_dict(), weights)
    result = evaluate_checkpoint(
        checkpoints["facetalk_regression"], dataset, samples=1, syncnet_weights=weights
    )
    m = result["metrics"]
    assert m["lse_d"] > 0 and m["lse_c"] >= 0


class Oracle:
    """A module that returns the test sequence's fit: FLAME codes, or vertices on the
    module's mean template."""

    def __init__(self, module, truth):
        self.module, self.truth = module, truth

    def __getattr__(self, name):
        return getattr(self.module, name)

    def animate(self, audio, n_samples=1, generator=None):
        x = torch.from_numpy(self.truth).float()
        if self.module.kind == "faceformer":
            return {"codes": x.flatten(1)[None], "vertices": x[None].expand(n_samples, -1, -1, -1)}
        return {"codes": x[None].expand(n_samples, -1, -1)}


@pytest.mark.parametrize("kind", ["facetalk_regression", "faceformer"])
def test_an_oracle_scores_zero_error_and_the_floor(checkpoints, dataset, head, monkeypatch, kind):
    module = load_module(str(checkpoints[kind]))
    params = load_flame_params(dataset / "data/p002_A/flame_2023_tracking/flame_params.npz")
    if kind == "faceformer":
        layer = FlameLayer.from_file(head["model"])
        with torch.no_grad():
            verts = layer(
                shape=params["shape"],
                expression=params["expression"],
                jaw=params["jaw"],
                neck=params["neck"],
                eyes=params["eyes"],
            ).vertices.numpy()
        neutral = layer(shape=params["shape"]).vertices[0].numpy()
        truth = verts - neutral + module.template.numpy()  # on the module's mean template
    else:
        truth = np.concatenate([params["expression"], params["jaw"]], axis=1)
    monkeypatch.setattr(evaluation_models, "load_module", lambda *a, **k: Oracle(module, truth))
    result = evaluate_checkpoint(checkpoints[kind], dataset, samples=1, max_lag=3)
    m, gt = result["metrics"], result["ground_truth"]
    assert m["lve_mm"] == pytest.approx(0, abs=1e-3)
    assert m["fdd_mm"] == pytest.approx(0, abs=1e-3)
    assert m["jitter_rmse"] == pytest.approx(gt["jitter_rmse"], rel=1e-4)
    assert m["av_offset_frames"] == gt["av_offset_frames"]
    assert m["av_correlation"] == pytest.approx(gt["av_correlation"], abs=1e-4)


def test_cli_evaluate_writes_the_json_and_names_missing_files(
    checkpoints, dataset, tmp_path, capsys
):
    out = tmp_path / "eval.json"
    code = main(
        [
            "evaluate",
            "--checkpoint",
            str(checkpoints["facetalk"]),
            "--data",
            str(dataset),
            "--out",
            str(out),
            "--samples",
            "2",
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    check_contract(result)
    assert result["samples"] == 2 and result["metrics"]["diversity"] > 0
    assert "Ours (Flame)" in capsys.readouterr().out
    missing = tmp_path / "absent.ckpt"
    elsewhere = ["--out", str(tmp_path / "other.json")]
    assert main(["evaluate", "--checkpoint", str(missing), "--data", str(dataset), *elsewhere]) == 2
    assert "absent.ckpt" in capsys.readouterr().err
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(checkpoints["facetalk"]),
                "--data",
                str(tmp_path),
                *elsewhere,
            ]
        )
        == 2
    )
    assert "splits.json" in capsys.readouterr().err
    weights = tmp_path / "no_syncnet.pt"
    code = main(
        [
            "evaluate",
            "--checkpoint",
            str(checkpoints["facetalk"]),
            "--data",
            str(dataset),
            "--syncnet-weights",
            str(weights),
            *elsewhere,
        ]
    )
    assert code == 2 and "no_syncnet.pt" in capsys.readouterr().err
    # --out is required (the workflow's evaluation.json beside the checkpoint is not replaced)
    with pytest.raises(SystemExit):
        main(["evaluate", "--checkpoint", str(checkpoints["facetalk"]), "--data", str(dataset)])
    assert "--out" in capsys.readouterr().err
