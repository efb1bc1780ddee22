"""The `talkhead` command line: inspect-model and validate-capture, as a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
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
