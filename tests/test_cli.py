"""The `talkhead` command line: inspect-model and validate-capture, as a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from talkhead.cli import main
from talkhead.flame.model import save_flame_model, save_landmark_embedding, save_region_masks
from talkhead.synth.head import build_head_model

sys.path.insert(0, str(Path(__file__).parent))
from test_capture import make_tree  # noqa: E402


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    head = build_head_model(seed=0, n_shape=12, n_expression=9, detail=0.5)
    arrays = {k: v for k, v in head.items() if k not in ("lmk_face_idx", "lmk_b_coords", "masks")}
    save_flame_model(out / "generic_model.pkl", arrays)
    save_landmark_embedding(out / "lmk.npz", head["lmk_face_idx"], head["lmk_b_coords"])
    save_region_masks(out / "masks.pkl", head["masks"])
    return out, head


def inspect(model_files, *extra: str) -> list[str]:
    out, _ = model_files
    return [
        "inspect-model",
        str(out / "generic_model.pkl"),
        "--landmarks",
        str(out / "lmk.npz"),
        "--masks",
        str(out / "masks.pkl"),
        *extra,
    ]


def expected_counts(model_files) -> dict:
    out, head = model_files
    return {
        "path": str(out / "generic_model.pkl"),
        "vertices": len(head["v_template"]),
        "faces": len(head["f"]),
        "shape": 12,
        "expression": 9,
        "joints": 5,
        "landmarks": 68,
        "regions": len(head["masks"]),
        "region_names": sorted(head["masks"]),
    }


def test_inspect_model_prints_one_line_per_count(model_files, capsys):
    assert main(inspect(model_files)) == 0
    lines = capsys.readouterr().out.splitlines()
    parsed = dict(line.strip().split(": ", 1) for line in lines)
    assert len(parsed) == len(lines)  # every line is "name: value", no name twice
    expected = expected_counts(model_files)
    expected["region_names"] = ", ".join(expected["region_names"])
    assert parsed == {k: str(v) for k, v in expected.items()}
    assert "lips" in parsed["region_names"].split(", ")


def test_inspect_model_json(model_files, capsys):
    assert main(inspect(model_files, "--json")) == 0
    assert json.loads(capsys.readouterr().out) == expected_counts(model_files)


def test_inspect_model_refuses_a_malicious_pickle(tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'PWNED'}",))

    import pickle

    bad = tmp_path / "generic_model.pkl"
    bad.write_bytes(pickle.dumps({"v_template": Payload()}, protocol=2))
    assert main(["inspect-model", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "system" in err and str(bad) in err
    assert not (tmp_path / "PWNED").exists()


def test_validate_capture_entry_point(tmp_path):
    tree = make_tree(tmp_path / "capture")
    exe = Path(sys.executable).with_name("talkhead")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "talkhead"]
    ok = subprocess.run([*cmd, "validate-capture", str(tree.root)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    # Break it twice: one camera loses a frame, the audio disappears.
    frame_dirs = sorted((tree.root).rglob("timesteps/frame_*"))
    victim = next(frame_dirs[-1].glob("images/cam_*.png"))
    victim.unlink()
    for audio in tree.root.rglob("audio/*"):
        audio.unlink()
    bad = subprocess.run([*cmd, "validate-capture", str(tree.root)], capture_output=True, text=True)
    assert bad.returncode != 0
    report = bad.stdout + bad.stderr
    serial = victim.stem.removeprefix("cam_")
    assert serial in report
    assert "audio" in report


def test_validate_capture_flags_a_broken_calibration(tmp_path, capsys):
    tree = make_tree(tmp_path / "capture")
    calib = next(tree.root.rglob("camera_params.json"))
    calib.write_text("{not json")
    assert main(["validate-capture", str(tree.root)]) != 0
    assert "camera_params.json" in capsys.readouterr().out


def test_help_lists_the_subcommands():
    exe = shutil.which("talkhead") or str(Path(sys.executable).with_name("talkhead"))
    res = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert res.returncode == 0
    assert "inspect-model" in res.stdout and "validate-capture" in res.stdout


# --------------------------------------------------------------------------------------------
# validate-capture on the published layouts
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def v2_tree(tiny_studio, tmp_path_factory):
    """The tiny synthetic capture as a NeRSemble v2 download (with BACKGROUND plates)."""
    from talkhead.capture import export

    seq = tiny_studio.open()
    root = tmp_path_factory.mktemp("v2")
    export.export_nersemble_v2(seq, root, backgrounds=export.sequence_plates(seq))
    return root, seq.subject, seq.sequence


def _copy(tree, tmp_path):
    root, subject, sequence = tree
    shutil.copytree(root, tmp_path / "copy")
    return tmp_path / "copy", subject, sequence


def test_validate_capture_reads_a_v2_download(v2_tree, capsys):
    root, subject, sequence = v2_tree
    assert (root / subject / "sequences" / "BACKGROUND").is_dir()
    assert main(["validate-capture", str(root)]) == 0
    out = capsys.readouterr().out
    assert "capture OK" in out
    assert "nersemble_v2 layout" in out and "checked after ingest" in out
    assert "BACKGROUND" not in out and "missing" not in out
    assert main(["validate-capture", str(root), "--subject", subject, "--sequence", sequence]) == 0


def test_validate_capture_flags_a_v2_calibration_in_centimetres(v2_tree, tmp_path, capsys):
    from talkhead.capture import layouts
    from talkhead.capture.calibration import read_camera_params, write_camera_params

    root, subject, _ = _copy(v2_tree, tmp_path)
    calib = layouts.kit_calibration_path(root / subject)
    cams = []
    for c in read_camera_params(calib).values():
        T = c.world_2_cam.copy()
        T[:3, 3] *= 100.0
        cams.append(replace(c, world_2_cam=T))
    write_camera_params(calib, cams)
    assert main(["validate-capture", str(root)]) == 1
    out = capsys.readouterr().out
    assert "calibration_units" in out and "calibration/camera_params.json" in out


def test_validate_capture_names_a_missing_v2_video(v2_tree, tmp_path, capsys):
    from talkhead.capture import layouts

    root, subject, sequence = _copy(v2_tree, tmp_path)
    videos = sorted((root / subject / "sequences" / sequence / layouts.VIDEO_DIR).glob("*.mp4"))
    videos[1].unlink()
    assert main(["validate-capture", str(root)]) == 1
    out = capsys.readouterr().out
    assert "missing_video" in out and videos[1].stem.removeprefix("cam_") in out


def test_validate_capture_forced_layout_that_does_not_fit(v2_tree, capsys):
    root, _, _ = v2_tree
    assert main(["validate-capture", str(root), "--layout", "talkhead"]) == 1
    assert "no frame folders" in capsys.readouterr().out


def test_validate_capture_reads_v1_in_place(tiny_studio, tmp_path, capsys):
    from talkhead.capture import export

    seq = tiny_studio.open()
    export.export_nersemble_v1(seq, tmp_path / "v1")
    assert main(["validate-capture", str(tmp_path / "v1")]) == 0
    out = capsys.readouterr().out
    assert "nersemble_v1 layout" in out and "checked after ingest" in out
    victim = next((tmp_path / "v1").rglob("images-2x/cam_*"))
    victim.unlink()
    assert main(["validate-capture", str(tmp_path / "v1")]) == 1
    assert victim.stem.removeprefix("cam_") in capsys.readouterr().out


def test_validate_capture_sequence_needs_subject(capsys):
    with pytest.raises(SystemExit) as info:
        main(["validate-capture", "somewhere", "--sequence", "SEN-00"])
    assert info.value.code == 2
    assert "--sequence needs --subject" in capsys.readouterr().err


def test_validate_capture_names_a_missing_root(tmp_path, capsys):
    missing = tmp_path / "no-such-capture"
    assert main(["validate-capture", str(missing)]) == 1
    assert f"capture root {missing} does not exist" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# check-config
# --------------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


def test_check_config_reads_the_sample_sheet(tmp_path, capsys):
    sheet = tmp_path / "samples.tsv"
    sheet.write_text("subject\tsequence\tfps\n018\tEXP-1\tfast\n")
    override = tmp_path / "real.yaml"
    override.write_text(
        f"samples: {sheet}\ncapture:\n  source: nersemble\n  root: {tmp_path / 'capture'}\n"
    )
    base = str(REPO / "config" / "config.yaml")
    assert main(["check-config", base, str(override)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"talkhead: error: invalid sample sheet (config key: samples): {sheet}:2: fps must be a "
        "number > 0, got 'fast'"
    ]
    sheet.write_text("subject\tsequence\n018\tEXP-1\n")
    assert main(["check-config", base, str(override)]) == 0
    assert "config ok" in capsys.readouterr().out


def test_check_config_prefixes_every_problem_alike(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("depth:\n  torch:\n    window: 4\n    windw: 5\nnphm:\n  nosuch: 2\n")
    assert main(["check-config", str(REPO / "config" / "config.yaml"), str(bad)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3, lines
    assert all(line.startswith("talkhead: error: ") for line in lines), lines
    problems = sorted(line.removeprefix("talkhead: error: ").split(":")[0] for line in lines)
    assert problems == ["depth.torch.window", "depth.torch.windw", "nphm.nosuch"]


def test_check_config_without_arguments_checks_the_default(tmp_path, monkeypatch, capsys):
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    monkeypatch.chdir(tmp_path)
    assert main(["check-config"]) == 0
    assert "config ok: config/config.yaml" in capsys.readouterr().out
    (tmp_path / "config" / "config.yaml").write_text("capture: [1\n")
    assert main(["check-config"]) == 2
    assert "config/config.yaml" in capsys.readouterr().err


def test_check_config_lists_unknown_keys_with_the_value_problems(tmp_path, capsys):
    # unknown keys beside a bad value, then beside a cross-field breach: each listed in one
    # run, as start-up (the same loader) lists them; an unknown key used to hide the rules
    base = str(REPO / "config" / "config.yaml")
    bad = tmp_path / "bad.yaml"

    def problems(text: str) -> list[str]:
        bad.write_text(text)
        assert main(["check-config", base, str(bad)]) == 2
        lines = capsys.readouterr().err.splitlines()
        assert all(line.startswith("talkhead: error: ") for line in lines), lines
        return sorted(line.removeprefix("talkhead: error: ") for line in lines)

    found = problems("modles: 1\nmodels:\n  training:\n    steps: -5\n")
    assert [line.split(":")[0] for line in found] == ["models.training.steps", "modles"], found
    assert found[0] == "models.training.steps: must be >= 1, got -5"
    found = problems("modles: 1\nbackproject:\n  landmark_min_views: 99\nnphm:\n  nosuch: 2\n")
    keys = [line.split(":")[0] for line in found]
    assert keys == ["backproject.landmark_min_views", "modles", "nphm.nosuch"], found
    assert "must be <= synthetic.n_cameras" in found[0]


def test_check_config_lists_models_of_nphm_codes_without_the_codes(tmp_path, capsys):
    """The rules start-up applies to models of NPHM codes, listed by check-config too."""
    base = str(REPO / "config" / "config.yaml")
    bad = tmp_path / "bad.yaml"

    def problems(text: str) -> list[str]:
        bad.write_text(text)
        code = main(["check-config", base, str(bad)])
        lines = capsys.readouterr().err.splitlines()
        assert code == (2 if lines else 0), lines
        return sorted(line.removeprefix("talkhead: error: ") for line in lines)

    # the default trains facetalk_nphm: leaving the codes out of the dataset is refused
    found = problems("dataset:\n  include_nphm: false\n")
    assert len(found) == 1 and found[0].startswith("models.train: facetalk_nphm trains on NPHM")
    assert "dataset.include_nphm: true" in found[0]
    # a FaceTalk target of NPHM codes with its Table-3 variants, the codes left out
    text = "dataset:\n  include_nphm: false\nmodels:\n  train: [facetalk]\n"
    text += "  injection_variants: [input]\n  facetalk:\n    target: nphm_expression\n"
    assert [line.split(":")[0] for line in problems(text)] == [
        "models.facetalk.target",
        "models.injection_variants",
    ]
    # without the NPHM stage the default's facetalk_nphm is left out by the workflow (a note,
    # not a problem), but a target of NPHM codes cannot be trained
    assert problems("nphm:\n  enabled: false\n") == []
    text = "nphm:\n  enabled: false\nmodels:\n  facetalk_regression:\n    target: nphm_expression\n"
    (line,) = problems(text)
    assert line.startswith("models.facetalk_regression.target") and "nphm.enabled: true" in line


def test_check_config_suggests_the_closest_choice(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  train: [facetalk, fcaeformer]\ndepth:\n  backend: patchmatch\n")
    assert main(["check-config", str(REPO / "config" / "config.yaml"), str(bad)]) == 2
    lines = capsys.readouterr().err.splitlines()
    (train,) = [line for line in lines if "models.train[1]" in line]
    assert train.endswith("got 'fcaeformer' (did you mean faceformer?)"), train
    (backend,) = [line for line in lines if "depth.backend" in line]
    assert "did you mean" not in backend  # nothing close: no guess


# --------------------------------------------------------------------------------------------
# animate and evaluate: arguments and files refused before any work
# --------------------------------------------------------------------------------------------


@pytest.fixture
def speech(tmp_path) -> Path:
    import numpy as np
    import soundfile as sf

    path = tmp_path / "speech.wav"
    t = np.arange(16000) / 16000
    sf.write(path, 0.2 * np.sin(2 * np.pi * 180 * t), 16000)
    return path


def test_animate_refuses_a_file_that_is_not_a_checkpoint(speech, tmp_path, capsys):
    out = tmp_path / "anim"
    args = ["--audio", str(speech), "--out", str(out)]
    assert main(["animate", "--checkpoint", str(speech), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"talkhead: error: {speech}: not a talkhead model checkpoint ("), err
    assert len(err.splitlines()) == 1, err
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    assert main(["animate", "--checkpoint", str(empty), *args]) == 2
    assert f"{empty}: not a talkhead model checkpoint (" in capsys.readouterr().err
    assert not out.exists()


def test_animate_and_evaluate_name_a_missing_checkpoint_alike(speech, tmp_path, capsys):
    missing = tmp_path / "models" / "facetalk" / "model.ckpt"
    expected = f"talkhead: error: {missing}: model checkpoint is missing\n"
    anim = ["--audio", str(speech), "--out", str(tmp_path / "anim")]
    assert main(["animate", "--checkpoint", str(missing), *anim]) == 2
    assert capsys.readouterr().err == expected
    data = tmp_path / "dataset"
    data.mkdir()
    (data / "splits.json").write_text("{}")
    ev = ["--data", str(data), "--out", str(tmp_path / "eval.json")]
    assert main(["evaluate", "--checkpoint", str(missing), *ev]) == 2
    assert capsys.readouterr().err == expected


@pytest.mark.parametrize("fps", ["-3", "0", "nan", "inf", "fast"])
def test_animate_fps_must_be_a_positive_number(fps, speech, tmp_path, capsys):
    args = ["--checkpoint", str(speech), "--audio", str(speech), "--out", str(tmp_path / "a")]
    with pytest.raises(SystemExit) as stop:
        main(["animate", *args, "--fps", fps])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "argument --fps:" in err and "Traceback" not in err, err
    assert not (tmp_path / "a").exists()


def test_evaluate_refuses_to_overwrite_the_workflows_evaluation(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "results" / "models" / "facetalk"
    folder.mkdir(parents=True)
    owned = folder / "evaluation.json"
    owned.write_text('{"kept": true}')
    monkeypatch.chdir(tmp_path)
    # the same file spelt another way: relative, through a detour
    out = "results/models/../models/facetalk/evaluation.json"
    args = ["--checkpoint", str(folder / "model.ckpt"), "--data", str(tmp_path), "--out", out]
    assert main(["evaluate", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"talkhead: error: {out}: the workflow's own evaluation.json"), err
    assert len(err.splitlines()) == 1, err
    assert owned.read_text() == '{"kept": true}'
    # another name beside it passes this check (and stops at the dataset, missing here)
    args[-1] = "results/models/facetalk/evaluation_mine.json"
    assert main(["evaluate", *args]) == 2
    assert "splits.json" in capsys.readouterr().err
