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
from talkhead.errors import EvaluationError, ModelFileError
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
    for name, kind, models in (
        ("facetalk", "facetalk", TINY),
        ("facetalk_regression", "facetalk_regression", TINY),
        ("faceformer", "faceformer", TINY),
        # FaceTalk on NPHM codes whatever models.facetalk.target says (flame_expression here)
        ("facetalk_nphm", "facetalk_nphm", TINY),
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
        "lip_surface_error_mm",
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
    assert result["model"] == "facetalk_nphm"
    m = result["metrics"]
    assert all(m[k] is None for k in ("lve_mm", "lve_squared_mm2", "fdd_mm", "av_correlation"))
    # without the NPHM model and identities: no lip surface error, and the definition says why
    assert m["lip_surface_error_mm"] is None
    assert result["ground_truth"]["lip_surface_error_mm"] is None
    assert "without the NPHM model" in result["definitions"]["lip_surface_error_mm"]
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


# -- the lip surface error of NPHM codes -------------------------------------------------------

SHIFT = 0.1  # model units the surface moves along -x per unit of expression component 0


def sphere_nphm(
    centre: np.ndarray, extent: float, radius: float, expression: int = 16, prior: int = 40
):
    """An NPHM whose surface is a sphere of ``radius`` model units around the frame's centre,
    moved by ``-SHIFT * e[0]`` along x by expression code ``e`` (a backward deformation
    ``delta = SHIFT * e[0] * x``), whatever the identity codes: ``(model, frame)``."""
    import trimesh

    from talkhead.nphm.config import NphmModelConfig
    from talkhead.nphm.model import ModelFrame, NeuralHeadModel, place_anchors, template_sdf_grid

    ico = trimesh.creation.icosphere(subdivisions=4, radius=radius)
    v, f = np.asarray(ico.vertices), np.asarray(ico.faces)
    cfg = NphmModelConfig(
        identity_global=3, identity_local=2, expression=expression, prior_resolution=prior
    )
    anchors, net, mirrored = place_anchors(v, None, 2, 1)
    grid = template_sdf_grid(v, f, cfg.prior_resolution, cfg.bound)
    model = NeuralHeadModel(cfg, anchors, net, mirrored, grid, cfg.bound)
    with torch.no_grad():
        model.deform[-1].bias[3] = SHIFT  # out[3 + 0 * E + 0]: x per e[0]
    return model.eval(), ModelFrame(centre=np.asarray(centre, np.float64), extent=extent)


def shifted_sphere_error_mm(lips, codes, frame, radius):
    """The known answer: per frame the largest distance of the lips (T, L, 3) metres to the
    sphere moved by the codes, mean over frames (mm)."""
    worst = []
    for p, e in zip(lips, codes, strict=True):
        centre = np.array([-SHIFT * e[0], 0.0, 0.0])
        d = np.abs(np.linalg.norm(frame.to_model(p) - centre, axis=1) - radius)
        worst.append(d.max() * frame.extent)
    return 1000.0 * float(np.mean(worst))


def test_decoded_codes_measure_the_lips_against_the_surface_they_decode():
    from talkhead.evaluation.nphm_lips import decoded_lip_surface_error_mm
    from talkhead.nphm.decoder import NphmDecoder

    radius = 0.5
    model, frame = sphere_nphm(np.array([0.0, 0.02, 0.05]), 0.2, radius, expression=4)
    decoder = NphmDecoder(model, frame, (np.full(3, -0.9), np.full(3, 0.9)), 48)
    identity = (np.zeros(3, np.float32), np.zeros((model.n_anchors, 2), np.float32))
    # lips on the undeformed sphere: around its +x pole
    rng = np.random.default_rng(0)
    T, L = 4, 6
    dirs = np.array([1.0, 0.0, 0.0]) + rng.normal(scale=0.3, size=(T, L, 3))
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    lips = frame.to_metres(radius * dirs)
    truth = np.zeros((T, 4), np.float32)
    exact = decoded_lip_surface_error_mm(decoder, identity, truth, lips)
    assert exact < 1.0  # on the surface, up to the grids (0.2 m per unit: 48^3, prior 40^3)
    moved = truth.copy()
    moved[:, 0] = rng.uniform(0.5, 1.0, size=T)  # the mouth 10-20 mm off
    err = decoded_lip_surface_error_mm(decoder, identity, moved, lips)
    assert err == pytest.approx(shifted_sphere_error_mm(lips, moved, frame, radius), abs=1.0)
    assert err > 10.0 > exact
    # every other frame: the mean over frames 0 and 2
    half = decoded_lip_surface_error_mm(decoder, identity, moved, lips, every=2)
    want = shifted_sphere_error_mm(lips[::2], moved[::2], frame, radius)
    assert half == pytest.approx(want, abs=1.0)
    with pytest.raises(ValueError, match="codes"):
        decoded_lip_surface_error_mm(decoder, identity, moved[:3], lips)


def test_rest_frame_vertices_undo_the_head_pose(head):
    from talkhead.evaluation.nphm_lips import rest_frame_vertices

    layer = FlameLayer.from_file(head["model"])
    rng = np.random.default_rng(3)
    T = 3
    params = {
        "shape": rng.normal(size=layer.num_shape).astype(np.float32),
        # no expression: this small model's joint regressor reads vertices the expression
        # moves (FLAME's root and neck joints hardly move; the NPHM stage's poses ignore it)
        "expression": np.zeros((T, layer.num_expression), np.float32),
        "jaw": rng.normal(scale=0.1, size=(T, 3)),
        "eyes": rng.normal(scale=0.05, size=(T, 6)),
        "neck": np.zeros((T, 3)),
        "rotation": rng.normal(scale=0.3, size=(T, 3)),
        "translation": rng.normal(scale=0.1, size=(T, 3)),
        "scale": 1 + rng.normal(scale=0.05, size=(T, 1)),
    }
    with torch.no_grad():
        rest = (
            layer(
                shape=params["shape"],
                expression=params["expression"],
                jaw=params["jaw"],
                eyes=params["eyes"],
            )
            .vertices.double()
            .numpy()
        )
    lips = np.arange(6)
    np.testing.assert_allclose(rest_frame_vertices(layer, params, lips), rest[:, lips], atol=1e-6)


@pytest.fixture(scope="module")
def nphm_files(tmp_path_factory, head):
    """A sphere NPHM (:func:`sphere_nphm`) in the small head's frame, and zero identities of
    both subjects: ``(model.pt, {subject: identity.npz}, radius)``."""
    from talkhead.nphm.train import save_model

    folder = tmp_path_factory.mktemp("nphm")
    template = FlameLayer.from_file(head["model"]).v_template.double().numpy()
    lo, hi = template.min(0), template.max(0)
    extent = float((hi - lo).max() / 2)
    radius = 0.5 * float((hi - lo).min() / 2) / extent  # inside the NPHM stage's box
    model, frame = sphere_nphm((lo + hi) / 2, extent, radius, prior=64)
    save_model(folder / "model.pt", model, frame)
    identities = {}
    for subject in ("p001", "p002"):
        path = folder / subject / "identity.npz"
        path.parent.mkdir()
        zl = np.zeros((model.n_anchors, 2), np.float32)
        np.savez(path, identity_global=np.zeros(3, np.float32), identity_local=zl)
        identities[subject] = path
    return folder / "model.pt", identities, radius


def test_nphm_codes_get_the_lip_surface_error_of_their_decoded_meshes(
    checkpoints, dataset, head, nphm_files, tmp_path, monkeypatch
):
    from talkhead.evaluation.nphm_lips import rest_frame_vertices
    from talkhead.nphm.train import load_model

    model_path, identities, radius = nphm_files
    path = tmp_path / "evaluation.json"
    evaluate = {"samples": 2, "av_max_lag": 3, "nphm_every": 3, "nphm_resolution": 64}
    result = run_evaluate_model(
        checkpoints["facetalk_nphm"],
        dataset,
        path,
        "facetalk_nphm",
        evaluate,
        flame_model=head["model"],
        flame_masks=head["masks"],
        nphm_model=model_path,
        nphm_identities=list(identities.values()),
    )
    check_contract(result)
    assert json.loads(path.read_text()) == json.loads(json.dumps(result))
    m, gt = result["metrics"], result["ground_truth"]
    assert "rest frame" in result["definitions"]["lip_surface_error_mm"]
    # the floor: the test sequence's fitted codes decoded, lips in the rest frame
    _, frame = load_model(model_path)
    params = load_flame_params(dataset / "data/p002_A/flame_2023_tracking/flame_params.npz")
    lips = rest_frame_vertices(FlameLayer.from_file(head["model"]), params, np.arange(6))
    folder = dataset / "data/p002_A/nphm_tracking/nphm_expressions"
    codes = np.stack([np.load(p)["expression"] for p in sorted(folder.iterdir())])
    want = shifted_sphere_error_mm(lips[::3], codes[::3], frame, radius)
    assert gt["lip_surface_error_mm"] == pytest.approx(want, abs=0.6)  # the grids' 64^3
    # (the lips not brought into the rest frame would be 1.8 mm off here)
    assert m["lip_surface_error_mm"] > 0 and m["lip_surface_error_mm"] != gt["lip_surface_error_mm"]

    # a model that returns the fitted codes scores the floor; codes off by 1 in e[0], more
    module = load_module(str(checkpoints["facetalk_nphm"]))
    for offset in (0.0, 1.0):
        moved = codes.copy()
        moved[:, 0] += offset * np.sign(codes[:, 0] + 1e-9)
        monkeypatch.setattr(
            evaluation_models, "load_module", lambda *a, m=moved, **k: Oracle(module, m)
        )
        again = evaluate_checkpoint(
            checkpoints["facetalk_nphm"],
            dataset,
            flame_model=head["model"],
            flame_masks=head["masks"],
            samples=1,
            max_lag=3,
            nphm_model=model_path,
            nphm_identities=identities,
            nphm_every=3,
            nphm_resolution=64,
        )["metrics"]["lip_surface_error_mm"]
        if offset == 0:
            assert again == pytest.approx(gt["lip_surface_error_mm"], abs=1e-9)
        else:
            assert again == pytest.approx(
                shifted_sphere_error_mm(lips[::3], moved[::3], frame, radius), abs=0.6
            )
    # a test subject without an identity file
    with pytest.raises(ModelFileError, match="p002"):
        evaluate_checkpoint(
            checkpoints["facetalk_nphm"],
            dataset,
            samples=1,
            nphm_model=model_path,
            nphm_identities={"p001": identities["p001"]},
        )


def test_cli_evaluate_gives_the_lip_surface_error_with_the_nphm_files(
    checkpoints, dataset, head, nphm_files, tmp_path, capsys
):
    model_path, identities, _ = nphm_files
    out = tmp_path / "full.json"
    common = ["evaluate", "--checkpoint", str(checkpoints["facetalk_nphm"]), "--data"]
    common += [str(dataset), "--samples", "1", "--flame-model", str(head["model"])]
    common += ["--masks", str(head["masks"])]
    fits = str(model_path.parent)  # <subject>/identity.npz beside model.pt here
    assert main([*common, "--out", str(out), "--nphm-model", str(model_path)]) == 2
    assert "go together" in capsys.readouterr().err
    assert main([*common, "--out", str(out), "--nphm-fits", str(tmp_path)]) == 2
    assert (
        main([*common, "--out", str(out), "--nphm-model", str(model_path), "--nphm-fits", fits])
        == 0
    )
    result = json.loads(out.read_text())
    assert result["label"] == "Ours (full)"
    assert result["metrics"]["lip_surface_error_mm"] > 0
    assert result["ground_truth"]["lip_surface_error_mm"] > 0
    assert "lip surface error" in capsys.readouterr().out


# -- animations of NPHM codes: meshes by marching cubes ----------------------------------------


def mesh_centres(folder: Path, frame) -> dict[int, np.ndarray]:
    """{frame: the vertex mean of frame_<t>.ply in model units} of a folder of meshes."""
    import trimesh

    out = {}
    for path in sorted(folder.glob("frame_*.ply")):
        mesh = trimesh.load(str(path), process=False, force="mesh")
        out[int(path.stem[6:])] = frame.to_model(np.asarray(mesh.vertices)).mean(0)
    return out


def test_held_out_animation_of_nphm_codes_decodes_both_panels(
    checkpoints, dataset, head, nphm_files, tmp_path
):
    from test_render_video import decode

    from talkhead.nphm.train import load_model
    from talkhead.training.held_out import animate_held_out

    model_path, identities, _ = nphm_files
    _, frame = load_model(model_path)
    video = tmp_path / "held_out.mp4"
    summary = animate_held_out(
        checkpoints["facetalk_nphm"],
        dataset,
        head["model"],
        tmp_path / "out",
        video,
        size=32,
        nphm_model=model_path,
        nphm_identities=identities,
        mesh_every=3,
        mesh_resolution=40,
    )
    T = summary["frames"]
    assert summary["sequence"] == "p002_A" and summary["vertex_space"] == "nphm_rest"
    kinds, frames, _, _ = decode(video)
    assert kinds == {"video", "audio"} and len(frames) == T and frames[0].shape == (32, 64, 3)
    assert summary["mesh_frames"] == len(range(0, T, 3)) == summary["fitted_frames_shown"]
    # each decoded mesh is its own frame's code: the sphere moved by -SHIFT * e[0] along x
    codes = np.load(tmp_path / "out" / "codes.npz")["codes"][0]
    predicted = mesh_centres(tmp_path / "out" / "sample_00" / "meshes", frame)
    assert sorted(predicted) == list(range(0, T, 3))
    folder = dataset / "data/p002_A/nphm_tracking/nphm_expressions"
    fitted = {int(p.stem[6:]): np.load(p)["expression"] for p in folder.iterdir()}
    truth = mesh_centres(tmp_path / "out" / "ground_truth" / "meshes", frame)
    assert sorted(truth) == list(range(0, T, 3))
    cell = 0.05  # model units: a few marching-cubes cells at 40^3
    for t in range(0, T, 3):
        assert predicted[t] == pytest.approx([-SHIFT * codes[t, 0], 0, 0], abs=cell)
        assert truth[t] == pytest.approx([-SHIFT * fitted[t][0], 0, 0], abs=cell)
    # without the NPHM: refused, naming what is missing
    with pytest.raises(ValueError, match="p002"):
        animate_held_out(
            checkpoints["facetalk_nphm"], dataset, head["model"], tmp_path / "x", tmp_path / "x.mp4"
        )


def test_cli_animate_decodes_nphm_codes_every_nth_frame(
    checkpoints, dataset, nphm_files, tmp_path, capsys
):
    from test_render_video import decode

    model_path, identities, _ = nphm_files
    wav = dataset / "data/p002_A/audio/cleaned_audio.wav"
    args = ["animate", "--checkpoint", str(checkpoints["facetalk_nphm"]), "--audio", str(wav)]
    # codes only without the NPHM, and a clear refusal of half of it
    assert main([*args, "--out", str(tmp_path / "codes")]) == 0
    assert "codes only" in capsys.readouterr().out
    assert not list((tmp_path / "codes").glob("sample_*"))
    assert main([*args, "--out", str(tmp_path / "bad"), "--nphm-model", str(model_path)]) == 2
    assert "go together" in capsys.readouterr().err
    out = tmp_path / "meshes"
    nphm = ["--nphm-model", str(model_path), "--nphm-identity", str(identities["p002"])]
    assert main([*args, "--out", str(out), *nphm, "--mesh-every", "4", "--samples", "2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    T = summary["frames"]
    assert f"meshes of {len(range(0, T, 4))} frames" in capsys.readouterr().out
    for k in range(2):
        names = sorted(p.name for p in (out / f"sample_{k:02d}" / "meshes").iterdir())
        assert names == [f"frame_{t:05d}.ply" for t in range(0, T, 4)]
        kinds, frames, _, _ = decode(out / f"sample_{k:02d}" / "animation.mp4")
        assert kinds == {"video", "audio"} and len(frames) == T
