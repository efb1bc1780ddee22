"""Floors under the stages' own figures (talkhead.floors): degenerate outputs stop the stage
with one line naming the figure, its value, the floor and the usual cause, and leave nothing
behind; ``qc.on_breach: warn`` logs the same line and writes the outputs."""

from __future__ import annotations

import json
import logging
import math
import shutil

import numpy as np
import pytest

from talkhead.capture.sequence import open_sequence
from talkhead.config import from_mapping, to_mapping
from talkhead.depth.io import depth_frame_path, load_depth_frame, save_depth_frame
from talkhead.depth.stage import run_depth_stage
from talkhead.errors import StageOutputError
from talkhead.evaluation.ground_truth import GroundTruth
from talkhead.floors import QCConfig, check_floors, enforce_floors
from talkhead.points.stage import run_backproject_stage

SUBJECT, SEQUENCE = "syn000", "SEN-00"
WARN = {"on_breach": "warn"}


# ---------------------------------------------------------------------------------------------
# check_floors: pure


def test_figures_above_their_floors_pass():
    qc = QCConfig()
    metrics = {
        "backend": "torch",
        "face_pixels": 5000,
        "face_valid_fraction": 0.92,
        "points_per_frame_min": 3000.0,
        "landmarks_valid_fraction": 0.996,
        "median_confidence": None,
    }
    assert check_floors(metrics, qc) == []


@pytest.mark.parametrize(
    ("figure", "value", "floor_key", "shown", "cause"),
    [
        ("face_valid_fraction", 0.0001, "min_depth_valid_fraction", "0.01 %", "centimetres"),
        ("points_per_frame_min", 0.0, "min_points_per_frame", "0 ", "max_depth"),
        ("landmarks_valid_fraction", 0.009, "min_landmarks_valid_fraction", "0.90 %", "views"),
    ],
)
def test_a_figure_below_its_floor_is_named_with_value_floor_and_cause(
    figure, value, floor_key, shown, cause
):
    qc = QCConfig()
    (breach,) = check_floors({figure: value, "face_pixels": 100}, qc)
    assert breach.figure == figure and breach.value == value
    assert breach.floor == getattr(qc, floor_key)
    assert f"qc.{floor_key}" in breach.message and figure in breach.message
    assert shown in breach.message and cause in breach.message
    assert "\n" not in breach.message
    # exactly at the floor passes
    assert check_floors({figure: breach.floor}, qc) == []


def test_floors_follow_the_config():
    metrics = {"face_valid_fraction": 0.5}
    assert check_floors(metrics, QCConfig()) == []
    assert len(check_floors(metrics, QCConfig(min_depth_valid_fraction=0.6))) == 1


def test_a_figure_not_computed_breaches():
    (breach,) = check_floors({"landmarks_valid_fraction": None}, QCConfig())
    assert math.isnan(breach.value) and "not computed" in breach.message
    (breach,) = check_floors({"face_valid_fraction": float("nan")}, QCConfig())
    assert "not computed" in breach.message


def test_an_empty_face_mask_is_the_one_breach_reported():
    breaches = check_floors({"face_pixels": 0, "face_valid_fraction": 0.0}, QCConfig())
    assert [b.figure for b in breaches] == ["face_pixels"]
    assert "face mask empty" in breaches[0].message
    assert "face_mask.labels" in breaches[0].message


def test_enforce_fails_with_one_line_or_warns(caplog):
    breaches = check_floors(
        {"points_per_frame_min": 3, "landmarks_valid_fraction": 0.1}, QCConfig()
    )
    assert len(breaches) == 2
    with pytest.raises(StageOutputError) as err:
        enforce_floors(breaches, QCConfig(), "back-projection of s/q")
    text = str(err.value)
    assert text.startswith("back-projection of s/q: ") and "\n" not in text
    assert all(b.message in text for b in breaches) and "qc.on_breach" in text
    with caplog.at_level(logging.WARNING, logger="talkhead"):
        enforce_floors(breaches, QCConfig(on_breach="warn"), "back-projection of s/q")
    assert breaches[0].message in caplog.text
    enforce_floors([], QCConfig(), "nothing")  # no breach: nothing happens


def test_qc_section_is_checked_like_every_section():
    from talkhead.errors import ConfigError

    with pytest.raises(ConfigError, match="qc.on_breach"):
        from_mapping(QCConfig, {"on_breach": "ignore"}, "qc")
    with pytest.raises(ConfigError, match="qc.min_depth_valid_fraction"):
        from_mapping(QCConfig, {"min_depth_valid_fraction": 1.5}, "qc")
    assert from_mapping(QCConfig, to_mapping(QCConfig()), "qc") == QCConfig()


# ---------------------------------------------------------------------------------------------
# the stages on the shared tiny capture (conftest.py)


def _outputs_absent(tmp_path, *names):
    left = [p.name for p in tmp_path.iterdir() if p.name in names or p.name.endswith(".partial")]
    return not left


def test_depth_defaults_pass_on_the_tiny_capture(tiny_studio, tmp_path):
    metrics = run_depth_stage(
        tiny_studio.open(),
        tmp_path / "frames",
        {"backend": "torch"},
        tmp_path / "m.json",
        progress=False,
        timing_path=tmp_path / "timing.json",
    )
    # measured: 33 % of the face pixels valid at 64x80 with 3 views (default capture: 92 %)
    assert check_floors(metrics, QCConfig()) == []
    written = json.loads((tmp_path / "m.json").read_text())
    assert not any("second" in k for k in written)
    assert json.loads((tmp_path / "timing.json").read_text())["seconds_per_frame"] > 0
    assert not list(tmp_path.glob(".*partial"))


def test_depth_with_an_empty_face_mask_fails_and_writes_nothing(tiny_studio, tmp_path):
    seq = tiny_studio.open()
    face = {"labels": [200]}
    with pytest.raises(StageOutputError, match=r"face mask empty.*face_mask\.labels"):
        run_depth_stage(
            seq,
            tmp_path / "frames",
            {"backend": "torch"},
            tmp_path / "m.json",
            face_mask=face,
            progress=False,
            timing_path=tmp_path / "timing.json",
        )
    assert _outputs_absent(tmp_path, "frames", "m.json", "timing.json")


def _centimetre_rig(tiny_studio, tmp_path):
    """A copy of the tiny capture whose calibration translations are in centimetres."""
    root = tmp_path / "capture"
    shutil.copytree(tiny_studio.capture_root, root)
    path = root / SUBJECT / "camera_params.json"
    params = json.loads(path.read_text())
    for w2c in params["world_2_cam"].values():
        for row in w2c[:3]:
            row[3] *= 100.0
    path.write_text(json.dumps(params))
    return open_sequence(root, SUBJECT, SEQUENCE, validate=False)


def test_depth_with_a_calibration_in_centimetres_fails_then_warns(tiny_studio, tmp_path, caplog):
    seq = _centimetre_rig(tiny_studio, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(StageOutputError) as err:
        run_depth_stage(seq, out / "frames", {"backend": "torch"}, out / "m.json", progress=False)
    text = str(err.value)
    assert text.startswith(f"depth of {SUBJECT}/{SEQUENCE}: ")
    assert "face_valid_fraction" in text and "qc.min_depth_valid_fraction 10.00 %" in text
    assert "centimetres" in text
    assert _outputs_absent(out, "frames", "m.json")

    with caplog.at_level(logging.WARNING, logger="talkhead"):
        metrics = run_depth_stage(
            seq, out / "frames", {"backend": "torch"}, out / "m.json", progress=False, qc=WARN
        )
    assert metrics["face_valid_fraction"] < 0.1
    assert "face_valid_fraction" in caplog.text
    assert len(list((out / "frames").glob("frame_*.npz"))) == seq.n_frames
    assert (out / "m.json").exists()


def _depth_in_centimetres(tiny_studio, tmp_path):
    """The true depth of the tiny capture, written in centimetres."""
    gt = GroundTruth.open(tiny_studio.gt_dir)
    seq = tiny_studio.open()
    out = tmp_path / "depth_cm"
    for t in seq.frame_ids:
        true = gt.depth_frame(t)
        save_depth_frame(
            depth_frame_path(out, t),
            true.depth * 100.0,
            true.normal,
            true.confidence,
            true.serials,
        )
    return seq, out


def test_points_defaults_pass_on_true_depth(tiny_studio, tmp_path):
    gt = GroundTruth.open(tiny_studio.gt_dir)
    metrics = run_backproject_stage(
        tiny_studio.open(), gt.path / "depth", tmp_path / "p.npz", tmp_path / "m.json"
    )
    # measured: 3213 points in the poorest frame, 41 % of the landmarks valid (3 views)
    assert check_floors(metrics, QCConfig()) == []


def test_points_from_depth_in_centimetres_fail_then_warn(tiny_studio, tmp_path, caplog):
    seq, depth = _depth_in_centimetres(tiny_studio, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(StageOutputError) as err:
        run_backproject_stage(seq, depth, out / "p.npz", out / "m.json")
    text = str(err.value)
    assert text.startswith(f"back-projection of {SUBJECT}/{SEQUENCE}: ")
    assert "(points_per_frame_min) 0 is below the floor qc.min_points_per_frame 200" in text
    assert "(landmarks_valid_fraction) 0.00 %" in text
    assert _outputs_absent(out, "p.npz", "m.json")

    with caplog.at_level(logging.WARNING, logger="talkhead"):
        metrics = run_backproject_stage(seq, depth, out / "p.npz", out / "m.json", qc=WARN)
    assert metrics["points_per_frame_min"] == 0
    assert "points_per_frame_min" in caplog.text
    assert (out / "p.npz").exists() and (out / "m.json").exists()


def test_points_with_a_calibration_in_centimetres_fail_on_landmarks(tiny_studio, tmp_path):
    """True depth, but views placed 100 times too far apart: every frame still has points,
    but no two views agree on a landmark."""
    seq = _centimetre_rig(tiny_studio, tmp_path)
    gt = GroundTruth.open(tiny_studio.gt_dir)
    with pytest.raises(StageOutputError, match="landmarks_valid_fraction") as err:
        run_backproject_stage(seq, gt.path / "depth", tmp_path / "p.npz", tmp_path / "m.json")
    assert "points_per_frame_min" not in str(err.value)
    assert not (tmp_path / "p.npz").exists()
    frame = load_depth_frame(depth_frame_path(gt.path / "depth", seq.frame_ids[0]))
    assert np.count_nonzero(frame.depth) > 0
