"""Every kind of bad input found so far, run the way a user meets it: each gives ONE line naming
the key, file or row and what is wrong, and leaves no output behind.

Each kind builds its input in a temporary folder and runs what a user would run:

- config values: the workflow's start-up check (``load_workflow_config`` over
  ``config/config.yaml`` and an override, in-process: the same call the Snakefile makes);
- config files: ``talkhead check-config config/config.yaml FILE``;
- sample sheets: ``talkhead.samples.read_sample_sheet`` (what the Snakefile reads it with);
- captures: ``talkhead validate-capture ROOT``;
- model files: ``talkhead inspect-model FILE``;
- the workflow: a few real ``snakemake`` runs (dry-runs, and one failing job) showing the
  message end to end, once per category, with no Python traceback in Snakemake's output.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from talkhead.cli import main
from talkhead.errors import ConfigError, DepthError
from talkhead.samples import read_sample_sheet
from talkhead.workflow_config import WorkflowConfig, load_workflow_config, merge_config

sys.path.insert(0, str(Path(__file__).parent))
from test_capture import SEQ, SUBJECT, Tree, make_tree  # noqa: E402
from test_flame_io import model_arrays  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULTS = REPO / "config" / "config.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


@functools.cache
def _defaults() -> dict[str, Any]:
    return yaml.safe_load(DEFAULTS.read_text())


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _key_paths(cls: type, prefix: str = "") -> set[str]:
    hints = typing.get_type_hints(cls)
    out = set()
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        out.add(key)
        if dataclasses.is_dataclass(hints[f.name]):
            out |= _key_paths(hints[f.name], key + ".")
    return out


KEYS = _key_paths(WorkflowConfig)
_DOTTED = re.compile(
    rf"\b(?:{'|'.join(f.name for f in dataclasses.fields(WorkflowConfig))})(?:\.\w+)+"
)


def assert_advice_names_real_settings(message: str) -> None:
    """Every dotted setting a message mentions, after the key it is about, exists."""
    for line in message.splitlines():
        advice = line.split(": ", 1)[-1]
        for key in _DOTTED.findall(advice):
            assert key in KEYS, f"{key!r} is not a setting: {line}"


def one_line_matching(text: str, pattern: str) -> str:
    """The one line of ``text`` that ``pattern`` matches in full (fails if none or several)."""
    lines = [line for line in text.splitlines() if re.fullmatch(pattern, line)]
    assert len(lines) == 1, f"{pattern!r} matched {len(lines)} lines of:\n{text}"
    return lines[0]


# --------------------------------------------------------------------------------------------
# config values: the start-up check, key paths as written in YAML
# --------------------------------------------------------------------------------------------

CONFIG_VALUES: list[tuple[str, dict[str, Any], str]] = [
    (
        "n_planes_0",
        {"depth": {"torch": {"n_planes": 0}}},
        r"depth\.torch\.n_planes: must be >= 3, got 0",
    ),
    (
        "window_even",
        {"depth": {"torch": {"window": 4}}},
        r"depth\.torch\.window: must be odd, got 4",
    ),
    (
        "coarse_window_even",
        {"depth": {"torch": {"coarse_window": 6}}},
        r"depth\.torch\.coarse_window: must be odd \(or 0: off\), got 6",
    ),
    (
        "n_neighbours_0",
        {"depth": {"torch": {"n_neighbours": 0}}},
        r"depth\.torch\.n_neighbours: must be >= 1, got 0",
    ),
    (
        "n_best_above_n_neighbours",
        {"depth": {"torch": {"n_best": 5}}},
        r"depth\.torch\.n_best: must be <= n_neighbours \(4\), got 5",
    ),
    (
        "neighbour_angles_crossed",
        {"depth": {"torch": {"min_neighbour_angle_deg": 70.0}}},
        r"depth\.torch\.min_neighbour_angle_deg: must be < max_neighbour_angle_deg \(60\.0\), .*",
    ),
    (
        "refine_hypotheses_too_few",
        {"depth": {"torch": {"refine_hypotheses": 2}}},
        r"depth\.torch\.refine_hypotheses: must be >= 3 when refine_steps > 0, got 2",
    ),
    (
        "colmap_source_angles_crossed",
        {"depth": {"colmap": {"min_source_angle_deg": 90.0}}},
        r"depth\.colmap\.min_source_angle_deg: must be < max_source_angle_deg .*",
    ),
    (
        "backend_typo",
        {"depth": {"backend": "mvs"}},
        r"depth\.backend: must be one of 'auto', 'torch', 'colmap', 'precomputed'; got 'mvs'",
    ),
    (
        "min_depth_above_max_depth",
        {"backproject": {"min_depth": 1.5}},
        r"backproject\.min_depth: must be < max_depth \(1\.4\), got 1\.5",
    ),
    (
        "landmark_min_views_above_cameras",
        {"backproject": {"landmark_min_views": 9}},
        r"backproject\.landmark_min_views: must be <= synthetic\.n_cameras \(8\), got 9: .*",
    ),
    (
        "actor_typo",
        {"synthetic": {"actor": {"f0_hx": 110}}},
        r"synthetic\.actor\.f0_hx: unknown actor option \(did you mean f0_hz\?\); known: .*",
    ),
    (
        "actor_wrong_shape",
        {"synthetic": {"actor": {"head_rotation_deg": [2, 3]}}},
        r"synthetic\.actor\.head_rotation_deg: expected a list of 3 numbers, got \[2, 3\]",
    ),
    (
        "two_cameras_no_depth_neighbour",
        {"synthetic": {"n_cameras": 2}},
        r"synthetic\.n_cameras: 2 cameras over synthetic\.yaw_span_deg 100 .* "
        r"depth\.torch\.max_neighbour_angle_deg \(60\), which the torch depth backend needs: .*",
    ),
    ("one_camera", {"synthetic": {"n_cameras": 1}}, r"synthetic\.n_cameras: must be >= 2, got 1"),
    (
        "unknown_key_typo",
        {"sampels": "x.tsv"},
        r"sampels: unknown setting \(did you mean samples\?\); known: .*",
    ),
    (
        "unknown_nested_key",
        {"depth": {"torch": {"n_plane": 32}}},
        r"depth\.torch\.n_plane: unknown setting \(did you mean n_planes\?\); known: .*",
    ),
    (
        "nersemble_without_root",
        {"capture": {"source": "nersemble"}},
        r"capture\.root: must be set when source is 'nersemble'",
    ),
    (
        "flame_model_without_embedding",
        {"flame": {"model": "generic_model.pkl"}},
        r"flame\.landmark_embedding: must be set when model is set",
    ),
    (
        "bool_as_text",
        {"synthetic": {"torso": "yes"}},
        r"synthetic\.torso: expected true or false, got 'yes'",
    ),
    (
        "empty_label_list",
        {"face_mask": {"labels": []}},
        r"face_mask\.labels: needs at least 1 item, got \[\]",
    ),
    (
        "section_not_a_mapping",
        {"depth": {"torch": 3}},
        r"depth\.torch: expected a mapping of settings, got 3",
    ),
]


@pytest.mark.parametrize(
    ("override", "pattern"),
    [c[1:] for c in CONFIG_VALUES],
    ids=[c[0] for c in CONFIG_VALUES],
)
def test_config_value(override, pattern, tmp_path):
    before = files_under(tmp_path)
    with pytest.raises(ConfigError) as exc:
        load_workflow_config(merge_config(copy.deepcopy(_defaults()), override))
    one_line_matching(str(exc.value), pattern)
    assert_advice_names_real_settings(str(exc.value))
    assert files_under(tmp_path) == before


# --------------------------------------------------------------------------------------------
# config files: `talkhead check-config config/config.yaml FILE`
# --------------------------------------------------------------------------------------------

CONFIG_FILES: list[tuple[str, str | None, str]] = [
    (
        "bad_indentation",
        "depth:\n  torch:\n    window: 5\n   n_planes: 32\n",
        r"{file}:4:4: YAML syntax error: .*",
    ),
    ("tab_indentation", "depth:\n\tbackend: torch\n", r"{file}:2:1: YAML syntax error: .*'\\t'.*"),
    (
        "unclosed_list",
        "synthetic:\n  pitch_deg: [-8, 8\n  n_cameras: 4\n",
        r"{file}:3:12: YAML syntax error: .*",
    ),
    (
        "not_a_mapping",
        "- depth\n- torch\n",
        r"{file}: a config file holds a mapping of settings \(key: value\), got list",
    ),
    ("missing_file", None, r"{file}: config file not found"),
    (
        "bad_value_in_file",
        "depth:\n  torch:\n    window: 4\n",
        r"depth\.torch\.window: must be odd, got 4",
    ),
]


@pytest.mark.parametrize(
    ("text", "pattern"), [c[1:] for c in CONFIG_FILES], ids=[c[0] for c in CONFIG_FILES]
)
def test_config_file(text, pattern, tmp_path, capsys):
    path = tmp_path / "override.yaml"
    if text is not None:
        path.write_text(text)
    before = files_under(tmp_path)
    assert main(["check-config", str(DEFAULTS), str(path)]) == 2
    err = capsys.readouterr().err
    one_line_matching(err, "talkhead: error: " + pattern.format(file=re.escape(str(path))))
    assert files_under(tmp_path) == before


# --------------------------------------------------------------------------------------------
# sample sheets: every problem names the sheet and the line
# --------------------------------------------------------------------------------------------

HEADER = "subject\tsequence\tfps\n"
SHEETS: list[tuple[str, str | None, str]] = [
    ("fps_zero", HEADER + "018\tSEN-01\t0\n", r"{file}:2: fps must be a number > 0, got '0'"),
    (
        "fps_negative",
        HEADER + "018\tSEN-01\t25\n018\tSEN-02\t-25\n",
        r"{file}:3: fps must be a number > 0, got '-25'",
    ),
    (
        "fps_not_a_number",
        HEADER + "018\tSEN-01\tfast\n",
        r"{file}:2: fps must be a number > 0, got 'fast'",
    ),
    ("empty_file", "", r"{file}: empty sample sheet: needs a header line .*"),
    ("comments_only", "# nothing yet\n\n", r"{file}: empty sample sheet: needs a header line .*"),
    ("header_only", HEADER, r"{file}: no rows: the sheet has a header and no sequence .*"),
    (
        "duplicated_row",
        HEADER + "# a comment counts as a line\n018\tSEN-01\t\n018\tSEN-01\t30\n",
        r"{file}:4: subject 018 sequence SEN-01 is already on line 3",
    ),
    (
        "missing_sequence_column",
        "subject\tfps\n018\t25\n",
        r"{file}:1: missing column 'sequence' .*",
    ),
    (
        "unknown_column",
        "subject\tsequence\tframe_rate\taudio_ofset_s\n018\tSEN-01\t25\t0.1\n",
        r"{file}:1: unknown column 'audio_ofset_s' \(did you mean audio_offset_s\?\); known: .*",
    ),
    (
        "audio_offset_not_a_number",
        "subject\tsequence\taudio\taudio_offset_s\n018\tSEN-01\ta.wav\tlate\n",
        r"{file}:2: audio_offset_s must be a number \(seconds\), got 'late'",
    ),
    (
        "camera_serials_malformed",
        "subject\tsequence\tcameras\n018\tSEN-01\t220700191;220700192\n",
        r"{file}:2: cameras must be comma-separated serials \(digits\), got '220700191;220700192'",
    ),
    (
        "name_with_spaces",
        HEADER + "018\tSEN 01 with spaces\t\n",
        r"{file}:2: sequence 'SEN 01 with spaces' may hold only letters, digits and _ \. \+ -",
    ),
    ("empty_subject", HEADER + "\tSEN-01\t\n", r"{file}:2: subject is empty"),
    (
        "too_many_fields",
        HEADER + "018\tSEN-01\t25\textra\n",
        r"{file}:2: 4 tab-separated fields, the header has 3",
    ),
    ("missing_sheet", None, r"{file}: sample sheet not found \(config key: samples\)"),
]


@pytest.mark.parametrize(("text", "pattern"), [s[1:] for s in SHEETS], ids=[s[0] for s in SHEETS])
def test_sample_sheet(text, pattern, tmp_path):
    sheet = tmp_path / "sequences.tsv"
    if text is not None:
        sheet.write_text(text)
    before = files_under(tmp_path)
    with pytest.raises(ConfigError) as exc:
        read_sample_sheet(sheet)
    one_line_matching(str(exc.value), pattern.format(file=re.escape(str(sheet))))
    assert files_under(tmp_path) == before


# --------------------------------------------------------------------------------------------
# captures: `talkhead validate-capture ROOT` (the workflow's validate_capture runs the same)
# --------------------------------------------------------------------------------------------


def _edit_calibration(t: Tree, fn: Callable[[dict], None]) -> None:
    data = json.loads(t.calib.read_text())
    fn(data)
    t.calib.write_text(json.dumps(data))


def c_missing_calibration(t: Tree) -> str:
    t.calib.unlink()
    return r".*camera_params\.json.*"


def c_extrinsics_not_square(t: Tree) -> str:
    s = t.serials[0]
    _edit_calibration(t, lambda d: d["world_2_cam"].update({s: d["world_2_cam"][s][:3]}))
    return rf".*camera {s}.*shape \(3, 4\).*"


def c_rotation_not_orthonormal(t: Tree) -> str:
    s = t.serials[1]

    def scale(d: dict) -> None:
        T = np.array(d["world_2_cam"][s])
        T[:3, :3] *= 1.1
        d["world_2_cam"][s] = T.tolist()

    _edit_calibration(t, scale)
    return rf".*{s}.*rotation.*"


def c_missing_image(t: Tree) -> str:
    t.image(2, 1).unlink()
    return rf".*camera {t.serials[1]} has no image in 1 of 4 frames: frame_00002.*"


def c_wrong_image_size(t: Tree) -> str:
    for f in range(4):
        for sub, name in (
            ("images", "cam_"),
            ("alpha_map", "cam_"),
            ("facer_segmentation_masks", "segmentation_cam_"),
        ):
            p = t.frame(f) / sub / f"{name}{t.serials[2]}.png"
            img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            cv2.imwrite(str(p), cv2.resize(img, (img.shape[1], img.shape[0] + 2)))
    return (
        rf"camera {t.serials[2]} images are \d+x\d+ but the calibration says \d+x\d+ "
        r"\(.*camera_params\.json\)"
    )


def c_truncated_png(t: Tree) -> str:
    data = t.image(1, 0).read_bytes()
    t.image(1, 0).write_bytes(data[: len(data) // 2])
    return rf"image of camera {t.serials[0]}, frame_00001 is unreadable: PNG is truncated .*\.png\)"


def c_landmarks_wrong_shape(t: Tree) -> str:
    s = t.serials[1]
    np.save(t.seq_dir / "annotations/landmarks2D" / f"cam_{s}.npy", np.zeros((4, 68, 2)))
    return rf".*{s}.*\(4, 68, 2\).*"


def c_missing_segmentation(t: Tree) -> str:
    s = t.serials[0]
    (t.frame(1) / "facer_segmentation_masks" / f"segmentation_cam_{s}.png").unlink()
    return rf".*segmentation.*{s}.*frame_00001.*|.*frame_00001.*segmentation.*{s}.*"


def c_unreadable_audio(t: Tree) -> str:
    (t.seq_dir / "audio" / "audio_recording.wav").write_bytes(b"\x00" * 100)
    return r".*audio_recording\.wav.*"


def c_bad_sequence_fps(t: Tree) -> str:
    (t.seq_dir / "sequence.json").write_text(json.dumps({"fps": -3}))
    return r"fps must be a positive number, got -3 \(.*sequence\.json\)"


CAPTURES = [v for k, v in dict(globals()).items() if k.startswith("c_")]


@pytest.mark.parametrize("defect", CAPTURES, ids=lambda f: f.__name__[2:])
def test_capture(defect, tmp_path, capsys):
    tree = make_tree(tmp_path / "capture")
    pattern = defect(tree)
    before = files_under(tmp_path)
    assert main(["validate-capture", str(tree.root)]) == 1
    out = capsys.readouterr().out
    # the report lists each problem on one line: "  - <what is wrong, naming the file/camera>"
    one_line_matching(out, r"  - " + pattern)
    assert files_under(tmp_path) == before


# --------------------------------------------------------------------------------------------
# model files: `talkhead inspect-model FILE`
# --------------------------------------------------------------------------------------------


class _Payload:
    def __reduce__(self):
        return (os.system, ("true",))


def _model(d: Path, **change: Any) -> Path:
    from talkhead.flame import save_legacy_pickle

    arrays = model_arrays(np.random.default_rng(0))
    for key, value in change.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value(arrays[key])
    path = d / "generic_model.pkl"
    save_legacy_pickle(path, arrays)
    return path


def m_truncated(d: Path) -> tuple[list[str], str]:
    path = _model(d)
    path.write_bytes(path.read_bytes()[:200])
    return [str(path)], r"{0}: not a readable model pickle \(UnpicklingError: .*truncated\)"


def m_garbage(d: Path) -> tuple[list[str], str]:
    path = d / "generic_model.pkl"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())
    return [str(path)], r"{0}: not a readable model pickle \(.*\)"


def m_empty(d: Path) -> tuple[list[str], str]:
    path = d / "generic_model.pkl"
    path.write_bytes(b"")
    return [str(path)], r"{0}: not a readable model pickle \(EOFError: .*\)"


def m_missing(d: Path) -> tuple[list[str], str]:
    return [str(d / "generic_model.pkl")], r"{0}: model file is missing"


def m_missing_key(d: Path) -> tuple[list[str], str]:
    return [str(_model(d, shapedirs=None))], r"{0}: missing key 'shapedirs'"


def m_nan_template(d: Path) -> tuple[list[str], str]:
    path = _model(d, v_template=lambda v: np.full_like(v, np.nan))
    return [str(path)], r"{0}: 'v_template' contains NaN or infinite values"


def m_code_payload(d: Path) -> tuple[list[str], str]:
    path = d / "generic_model.pkl"
    path.write_bytes(pickle.dumps({"v_template": _Payload()}, protocol=2))
    return [str(path)], r"{0}: refused to unpickle '(posix|nt)\.system' .*"


def m_missing_landmarks(d: Path) -> tuple[list[str], str]:
    path = _model(d)
    lmk = d / "landmark_embedding.npz"
    return (
        [str(path), "--landmarks", str(lmk)],
        rf"{re.escape(str(lmk))}: landmark embedding file is missing",
    )


MODELS = [v for k, v in dict(globals()).items() if k.startswith("m_")]


@pytest.mark.parametrize("defect", MODELS, ids=lambda f: f.__name__[2:])
def test_model_file(defect, tmp_path, capsys):
    args, pattern = defect(tmp_path)
    before = files_under(tmp_path)
    assert main(["inspect-model", *args]) == 2
    err = capsys.readouterr().err
    one_line_matching(err, "talkhead: error: " + pattern.format(re.escape(args[0])))
    assert files_under(tmp_path) == before


# --------------------------------------------------------------------------------------------
# stage settings that cannot work here: the message names the setting to change, a real one
# --------------------------------------------------------------------------------------------


def test_depth_without_neighbour_views_names_the_angle_settings(tmp_path):
    from talkhead.depth.mvs.estimate import estimate_depth
    from talkhead.geometry.cameras import ring_rig

    cams = ring_rig(2, 32, 40, 30.0, yaw_span_deg=100.0)
    with pytest.raises(DepthError) as exc:
        estimate_depth(np.zeros((2, 40, 32, 3), np.uint8), cams, depth_range=(0.8, 1.2))
    one_line_matching(
        str(exc.value),
        r"cameras \[.*\] have no neighbour view within depth\.torch\.min_neighbour_angle_deg "
        r"\(2\) \.\. depth\.torch\.max_neighbour_angle_deg \(60\) degrees .*head rig.*",
    )
    assert_advice_names_real_settings(str(exc.value))
    assert files_under(tmp_path) == []


def test_colmap_without_cuda_advises_settings_that_exist(tmp_path):
    from talkhead.depth.colmap import colmap_dense_available, run_patch_match
    from talkhead.depth.config import BACKENDS, ColmapConfig

    if colmap_dense_available("no-such-colmap")[0]:
        pytest.skip("COLMAP dense stereo is available here")
    with pytest.raises(DepthError) as exc:
        run_patch_match(tmp_path / "ws", (0.5, 1.5), ColmapConfig(binary="no-such-colmap"))
    line = one_line_matching(
        str(exc.value),
        r"COLMAP dense stereo \(PatchMatch\) needs CUDA: .*depth\.colmap\.binary.*"
        r"set depth\.backend to 'torch'.*",
    )
    assert_advice_names_real_settings(line)
    advised = re.findall(r"depth\.backend to '(\w+)'", line)
    assert advised and set(advised) <= set(BACKENDS), line
    assert files_under(tmp_path) == []


# --------------------------------------------------------------------------------------------
# the workflow end to end: one real Snakemake run per category
# --------------------------------------------------------------------------------------------


@dataclass
class Run:
    work: Path
    out: str
    returncode: int


def snakemake(tmp_path: Path, *args: str, snakefile: Path = REPO / "Snakefile") -> Run:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    res = subprocess.run(
        [*SNAKEMAKE, "-s", str(snakefile), "--directory", str(work), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Run(work, res.stdout + res.stderr, res.returncode)


def assert_stopped_at_start_up(run: Run, pattern: str) -> None:
    assert run.returncode != 0, run.out
    one_line_matching(run.out, pattern)
    assert "Traceback" not in run.out and 'File "' not in run.out, run.out
    for folder in ("results", "resources", "logs"):
        assert not (run.work / folder).exists(), folder


def test_workflow_stops_on_a_bad_config_value_with_one_block(tmp_path):
    override = tmp_path / "override.yaml"
    override.write_text("depth:\n  torch:\n    window: 4\n    n_planes: 0\n")
    run = snakemake(
        tmp_path,
        "--dry-run",
        "--configfile",
        str(override),
        "--config",
        "report={n_frames: 3}",  # nested values from --config arrive as text
    )
    assert_stopped_at_start_up(run, r"  depth\.torch\.window: must be odd, got 4")
    one_line_matching(run.out, r"  depth\.torch\.n_planes: must be >= 3, got 0")
    one_line_matching(run.out, r"  report\.n_frames: expected an integer, got '3'")
    one_line_matching(run.out, r"  \(--config sets top-level keys only .* --configfile FILE\)")
    one_line_matching(run.out, r"talkhead: invalid configuration:")


def test_workflow_names_the_line_of_a_yaml_error_in_its_config(tmp_path):
    """A temporary copy of the workflow whose config/config.yaml has a syntax error."""
    copy_ = tmp_path / "talkhead"
    copy_.mkdir()
    for name in ("workflow", "config", "profiles"):
        shutil.copytree(REPO / name, copy_ / name)
    shutil.copy(REPO / "Snakefile", copy_ / "Snakefile")
    (copy_ / "src").symlink_to(REPO / "src")
    config = copy_ / "config" / "config.yaml"
    lines = config.read_text().splitlines()
    at = lines.index("depth:") + 2
    lines.insert(at, "\tbackend: torch")  # a tab cannot indent YAML
    config.write_text("\n".join(lines) + "\n")
    run = snakemake(tmp_path, "--dry-run", snakefile=copy_ / "Snakefile")
    assert_stopped_at_start_up(
        run, rf"talkhead: {re.escape(str(config))}:{at + 1}:\d+: YAML syntax error: .*"
    )


def test_workflow_refuses_a_header_only_sample_sheet(tmp_path):
    sheet = tmp_path / "sequences.tsv"
    sheet.write_text(HEADER)
    override = tmp_path / "override.yaml"
    override.write_text(
        yaml.safe_dump(
            {"capture": {"source": "nersemble", "root": str(tmp_path)}, "samples": str(sheet)}
        )
    )
    run = snakemake(tmp_path, "--dry-run", "--configfile", str(override))
    assert_stopped_at_start_up(run, rf"  {re.escape(str(sheet))}: no rows: .*")


def test_workflow_prints_a_jobs_talkhead_error_once_and_logs_its_traceback(tmp_path):
    """A real capture with a missing image: validate_capture fails; Snakemake's output shows
    the validator's message on one line, once, and no traceback; the job's log has the line
    and the traceback; the job's output is not left behind."""
    tree = make_tree(tmp_path / "capture")
    missing = tree.image(2, 1)
    missing.unlink()
    sheet = tmp_path / "sequences.tsv"
    sheet.write_text(f"subject\tsequence\n{SUBJECT}\t{SEQ}\n")
    override = tmp_path / "override.yaml"
    override.write_text(
        yaml.safe_dump(
            {"capture": {"source": "nersemble", "root": str(tree.root)}, "samples": str(sheet)}
        )
    )
    target = f"results/capture/{SUBJECT}/{SEQ}/capture.json"
    run = snakemake(tmp_path, "--cores", "1", "--configfile", str(override), "--", target)
    assert run.returncode != 0, run.out
    problem = rf".*camera {tree.serials[1]} has no image in 1 of 4 frames.*"
    line = one_line_matching(run.out, rf"validate_capture: capture .* is not usable: {problem}")
    assert missing.name in line
    assert "Traceback" not in run.out, run.out
    log = (run.work / f"logs/capture/{SUBJECT}/{SEQ}/validate.log").read_text()
    one_line_matching(log, rf".* ERROR +talkhead: capture .* is not usable: {problem}")
    assert "Traceback (most recent call last)" in log
    assert not (run.work / target).exists()
    # the capture stage left nothing (the preprocess rules before it ran and skipped)
    stage = run.work / "results" / "capture"
    assert not stage.exists() or not any(stage.rglob("*.*"))
