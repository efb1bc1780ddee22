"""One source of truth for configuration: the config dataclasses, the generated JSON schema
(``workflow/schemas/config.schema.yaml``) and ``config/config.yaml`` must not drift, and every
problem of a config is reported at once, naming the key as the user writes it."""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
import typing
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
import pytest
import yaml

from talkhead.cli import main
from talkhead.config import (
    check,
    from_mapping,
    json_schema,
    option,
    option_of,
    section,
    to_mapping,
)
from talkhead.depth.mvs.config import MVSConfig
from talkhead.errors import ConfigError
from talkhead.workflow_config import (
    SCHEMA_COMMAND,
    WorkflowConfig,
    load_workflow_config,
    workflow_schema,
    workflow_schema_text,
    write_workflow_schema,
)

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "config.yaml"
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def config_yaml() -> dict[str, Any]:
    return copy.deepcopy(_config_yaml())


@functools.cache
def _config_yaml() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text())


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(yaml.safe_load(SCHEMA.read_text()))


def with_value(cfg: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``cfg`` with the dotted key ``path`` set to ``value``."""
    cfg = copy.deepcopy(cfg)
    *parents, last = path.split(".")
    node = cfg
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return cfg


def problem_lines(cfg: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_workflow_config(cfg)
    return str(exc.value).splitlines()


def schema_errors(cfg: dict[str, Any]) -> list[jsonschema.ValidationError]:
    return list(_validator().iter_errors(cfg))


def settings(cls: type, path: str = "") -> list[tuple[str, type, dataclasses.Field]]:
    """Every setting (leaf field) of a config section: (key path, owning class, field)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        key = f"{path}.{f.name}" if path else f.name
        if dataclasses.is_dataclass(hints[f.name]):
            out.extend(settings(hints[f.name], key))
        else:
            out.append((key, cls, f))
    return out


# --------------------------------------------------------------------------------------------
# (a) schema == dataclasses; (b) config.yaml validates and loads; (c) config.yaml == defaults
# --------------------------------------------------------------------------------------------


def test_committed_schema_is_the_generated_one():
    text = SCHEMA.read_text()
    assert yaml.safe_load(text) == workflow_schema(), f"schema out of date: run {SCHEMA_COMMAND}"
    assert text.startswith("# GENERATED") and SCHEMA_COMMAND in text.split("$schema")[0]
    jsonschema.Draft202012Validator.check_schema(workflow_schema())


def test_config_yaml_validates_against_the_schema_and_loads():
    cfg = config_yaml()
    assert schema_errors(cfg) == []
    loaded = load_workflow_config(cfg)
    assert isinstance(loaded, WorkflowConfig)
    assert to_mapping(loaded) == cfg


def test_config_yaml_holds_the_dataclass_defaults():
    """config/config.yaml documents the defaults: each of its values is the dataclass default,
    each of its sections is a config dataclass, and each setting of the dataclasses is in it."""
    defaults = to_mapping(WorkflowConfig())
    cfg = config_yaml()

    def walk(cls: type, node: dict[str, Any], default: dict[str, Any], path: str) -> None:
        hints = typing.get_type_hints(cls)
        fields = {f.name for f in dataclasses.fields(cls)}
        assert set(node) <= fields, f"{path}: {sorted(set(node) - fields)} are not settings"
        for key, value in node.items():
            where = f"{path}.{key}" if path else key
            if dataclasses.is_dataclass(hints[key]):
                assert isinstance(value, dict), f"{where} must be a section"
                walk(hints[key], value, default[key], where)
            else:
                assert value == default[key], f"{where}: {value!r} is not the default"
                assert type(value) is type(default[key]), f"{where}: write it as the default"

    walk(WorkflowConfig, cfg, defaults, "")
    missing = [key for key, _, _ in settings(WorkflowConfig) if not _has(cfg, key)]
    assert not missing, f"settings missing from config/config.yaml: {missing}"


def _has(cfg: dict[str, Any], path: str) -> bool:
    node: Any = cfg
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def test_every_setting_in_config_yaml_has_a_comment():
    """A setting's line follows a comment, directly or through the settings of its group."""
    lines = CONFIG.read_text().splitlines()
    key_line = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_]*):\s*(\S.*)?$")
    undocumented = []
    for i, line in enumerate(lines):
        m = key_line.match(line)
        if not m or not m.group(3):  # a section header
            continue
        indent = m.group(1)
        j = i - 1
        while j >= 0:
            prev = key_line.match(lines[j])
            if prev and prev.group(1) == indent and prev.group(3):
                j -= 1  # a setting of the same group
                continue
            break
        if j < 0 or not lines[j].startswith(indent + "#"):
            undocumented.append(line.strip())
    assert not undocumented, f"config/config.yaml settings without a comment: {undocumented}"


def test_every_field_is_an_option_with_a_one_line_doc():
    for key, cls, f in settings(WorkflowConfig):
        opt = option_of(f)
        assert opt is not None, f"{key} ({cls.__name__}.{f.name}) is not made with option()"
        assert opt.doc and "\n" not in opt.doc


# --------------------------------------------------------------------------------------------
# (d) errors name YAML keys; (e) every problem at once
# --------------------------------------------------------------------------------------------

ERRORS = [
    ("depth.torch.n_planes", 0, "depth.torch.n_planes: must be >= 3, got 0"),
    ("depth.torch.window", 4, "depth.torch.window: must be odd, got 4"),
    (
        "depth.torch.n_plane",
        48,
        "depth.torch.n_plane: unknown setting (did you mean n_planes?); known: n_planes, ",
    ),
    (
        "synthetic.n_camera",
        4,
        "synthetic.n_camera: unknown setting (did you mean n_cameras?); known: n_subjects, ",
    ),
    ("backproject.min_depth", 2.0, "backproject.min_depth: must be < max_depth (1.4), got 2.0"),
    ("depth.torch.n_planes", "many", "depth.torch.n_planes: expected an integer, got 'many'"),
    ("report.n_frames", True, "report.n_frames: expected an integer, got true"),
    ("synthetic.torso", "yes", "synthetic.torso: expected true or false, got 'yes'"),
    ("synthetic.pitch_deg", 8.0, "synthetic.pitch_deg: expected a list, got 8.0"),
    ("synthetic.pitch_deg", [0, "up"], "synthetic.pitch_deg[1]: expected a number, got 'up'"),
    ("face_mask.labels", [], "face_mask.labels: needs at least 1 item, got []"),
    ("face_mask.labels", [1, 300], "face_mask.labels[1]: must be <= 255, got 300"),
    (
        "depth.backend",
        "patchmatch",
        "depth.backend: must be one of 'auto', 'torch', 'colmap', 'precomputed'; got 'patchmatch'",
    ),
    ("depth.range_radius", 0, "depth.range_radius: must be > 0, got 0"),
    ("depth.torch.range_radius", 0.2, "depth.torch.range_radius: unknown setting"),
    ("backproject.face_labels", [1, 2], "backproject.face_labels: unknown setting"),
    ("depth.torch.coarse_window", 4, "depth.torch.coarse_window: must be odd (or 0: off), got 4"),
    ("depth.torch.n_best", 9, "depth.torch.n_best: must be <= n_neighbours (4), got 9"),
    (
        "depth.colmap.max_image_size",
        0,
        "depth.colmap.max_image_size: must be >= 1 (or -1: off), got 0",
    ),
    ("depth.colmap.gpu_index", 0, "depth.colmap.gpu_index: expected a string, got 0"),
    ("depth.colmap.binary", "", "depth.colmap.binary: must not be empty"),
    ("depth.torch", 3, "depth.torch: expected a mapping of settings, got 3"),
    ("capture.source", "nersemble", "capture.root: must be set when source is 'nersemble'"),
    ("flame.model", "x.pkl", "flame.landmark_embedding: must be set when model is set"),
    ("sampels", "x.tsv", "sampels: unknown setting (did you mean samples?); known: samples, "),
]


@pytest.mark.parametrize(("key", "value", "line"), ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_name_the_yaml_key(key, value, line):
    lines = problem_lines(with_value(config_yaml(), key, value))
    assert any(got.startswith(line) for got in lines), lines


def test_every_problem_is_listed_at_once():
    cfg = config_yaml()
    bad = {
        "depth.torch.n_planes": 0,
        "depth.torch.window": 4,
        "depth.colmap.window_radiuss": 3,
        "synthetic.n_camera": 4,
        "backproject.min_depth": 2.0,
        "report.n_frames": "x",
        "capture.source": "nersemble",
    }
    for key, value in bad.items():
        cfg = with_value(cfg, key, value)
    lines = problem_lines(cfg)
    expected = [*(k for k in bad if k != "capture.source"), "capture.root"]
    assert len(lines) == len(expected), lines
    for key in expected:
        assert sum(line.startswith(f"{key}: ") for line in lines) == 1, (key, lines)


def test_int_for_float_list_for_tuple_and_missing_keys_take_defaults():
    cfg = load_workflow_config({"depth": {"range_radius": 1, "torch": None}})
    assert cfg.depth.range_radius == 1.0 and isinstance(cfg.depth.range_radius, float)
    assert cfg.depth.torch == MVSConfig() and cfg.synthetic == WorkflowConfig().synthetic
    cfg = load_workflow_config(
        {"face_mask": {"labels": [1, 2]}, "depth": {"torch": {"window": 7.0}}}
    )
    assert cfg.face_mask.labels == (1, 2) and cfg.depth.torch.window == 7
    assert load_workflow_config(None) == WorkflowConfig()


def test_check_validates_a_config_built_in_python():
    assert check(MVSConfig(n_planes=24), "depth.torch") == MVSConfig(n_planes=24)
    with pytest.raises(ConfigError, match=r"^depth.torch.n_planes: must be >= 3, got 2$"):
        check(MVSConfig(n_planes=2), "depth.torch")


def test_torch_stereo_refuses_a_bad_config_naming_the_key():
    import numpy as np

    from talkhead.depth.mvs.estimate import estimate_depth

    with pytest.raises(ConfigError, match="depth.torch.window: must be odd, got 4"):
        estimate_depth(np.zeros((2, 8, 8, 3), np.uint8), [], config=MVSConfig(window=4))


# --------------------------------------------------------------------------------------------
# the schema rejects what from_mapping rejects
# --------------------------------------------------------------------------------------------


def _violations(key: str, cls: type, f: dataclasses.Field) -> list[tuple[str, Any]]:
    """(key, value) pairs that break one constraint of a setting, each on its own."""
    tp = typing.get_type_hints(cls)[f.name]
    opt = option_of(f)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    item = args[0] if origin is tuple else tp
    wrong_type = {bool: "yes", int: "many", float: "many", str: 3, dict: [1]}.get(tp, 3)
    out = [(key, wrong_type)]
    step = 1 if item is int else 0.5
    bad: list[Any] = []
    if opt.minimum is not None:
        bad += [opt.minimum - step, opt.minimum - 2 * step]
    if opt.exclusive_minimum is not None:
        bad.append(opt.exclusive_minimum)
    if opt.maximum is not None:
        bad.append(opt.maximum + step)
    if opt.exclusive_maximum is not None:
        bad.append(opt.exclusive_maximum)
    if opt.odd:
        bad.append(max(opt.minimum or 0, 2) + (max(opt.minimum or 0, 2) % 2))
    if opt.choices is not None:
        bad.append("no-such-choice")
    if opt.min_length:
        bad.append("")
    bad = [v for v in bad if v != opt.off]
    seen = set()
    for value in bad:
        if value in seen:
            continue
        seen.add(value)
        out.append((key, [value] if origin is tuple else value))
    if opt.min_items:
        out.append((key, []))
    return out


VIOLATIONS = [v for key, cls, f in settings(WorkflowConfig) for v in _violations(key, cls, f)]


@pytest.mark.parametrize(("key", "value"), VIOLATIONS, ids=[f"{k}={v!r}" for k, v in VIOLATIONS])
def test_schema_and_from_mapping_reject_the_same_simple_breaches(key, value):
    cfg = with_value(config_yaml(), key, value)
    lines = problem_lines(cfg)
    assert any(line.startswith((f"{key}:", f"{key}[")) for line in lines), lines
    parts = key.split(".")
    paths = [[str(p) for p in e.absolute_path][: len(parts)] for e in schema_errors(cfg)]
    assert parts in paths, paths


BOUNDARY = [
    ("depth.torch.coarse_window", 0),
    ("depth.torch.coarse_window", 3),
    ("depth.torch.median_filter", 1),
    ("depth.torch.base_smooth", 0),
    ("depth.colmap.max_image_size", -1),
    ("depth.colmap.max_image_size", 1),
    ("synthetic.pitch_deg", [-60, 60]),
    ("synthetic.duration_s", 0.2),
    ("backproject.min_confidence", 1),
    ("capture.fps", 1),
]


@pytest.mark.parametrize(("key", "value"), BOUNDARY)
def test_schema_and_from_mapping_accept_the_same_boundaries(key, value):
    cfg = with_value(config_yaml(), key, value)
    assert schema_errors(cfg) == []
    load_workflow_config(cfg)


def test_schema_enforces_the_cross_field_rules_it_can_express():
    for key, value in (("capture.source", "nersemble"), ("flame.model", "x.pkl")):
        cfg = with_value(config_yaml(), key, value)
        assert schema_errors(cfg) and problem_lines(cfg)
    cfg = with_value(with_value(config_yaml(), "capture.source", "nersemble"), "capture.root", "r")
    assert schema_errors(cfg) == [] and load_workflow_config(cfg).capture.root == "r"


# --------------------------------------------------------------------------------------------
# the machinery on a small section of its own
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Inner:
    """An inner section."""

    size: int = option(3, "An odd size.", minimum=1, odd=True)


@dataclasses.dataclass(frozen=True)
class Outer:
    """An outer section."""

    name: str = option("a", "A name.", choices=("a", "b"))
    scale: float | None = option(None, "A scale; null: automatic.", exclusive_minimum=0)
    values: tuple[float, ...] = option((1.0,), "Some values.", min_items=1)
    extra: dict = option({}, "Free-form options.")
    inner: Inner = section(Inner, "The inner section.")

    SCHEMA_RULES: ClassVar[dict[str, Any]] = {"required": ["name"]}


def test_machinery_on_a_small_section():
    cfg = from_mapping(Outer, {"scale": 2, "values": [1, 2], "inner": {"size": 5}}, "outer")
    assert cfg == Outer(scale=2.0, values=(1.0, 2.0), inner=Inner(size=5))
    assert from_mapping(Outer, {"scale": None}, "outer").scale is None
    assert to_mapping(cfg) == {
        "name": "a",
        "scale": 2.0,
        "values": [1.0, 2.0],
        "extra": {},
        "inner": {"size": 5},
    }
    assert Outer().extra is not Outer().extra  # mutable defaults are copied
    with pytest.raises(ConfigError) as exc:
        from_mapping(Outer, {"name": "c", "scale": 0, "inner": {"size": 2, "sise": 1}}, "outer")
    assert str(exc.value).splitlines() == [
        "outer.name: must be one of 'a', 'b'; got 'c'",
        "outer.scale: must be > 0, got 0",
        "outer.inner.sise: unknown setting (did you mean size?); known: size",
        "outer.inner.size: must be odd, got 2",
    ]

    schema = json_schema(Outer)
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["description"] == "An outer section." and schema["required"] == ["name"]
    props = schema["properties"]
    assert props["scale"] == {
        "type": ["number", "null"],
        "description": "A scale; null: automatic.",
        "default": None,
        "exclusiveMinimum": 0,
    }
    assert props["values"]["minItems"] == 1 and props["values"]["items"] == {"type": "number"}
    assert props["inner"]["properties"]["size"]["not"] == {"multipleOf": 2}
    assert props["inner"]["description"] == "The inner section."
    with pytest.raises(ValueError):
        option(1, "two\nlines")


# --------------------------------------------------------------------------------------------
# the command that regenerates the schema
# --------------------------------------------------------------------------------------------


def test_config_schema_command_prints_and_writes(tmp_path, capsys):
    assert main(["config-schema"]) == 0
    out = capsys.readouterr().out
    assert out == workflow_schema_text() and yaml.safe_load(out) == workflow_schema()
    target = tmp_path / "schemas" / "config.schema.yaml"
    assert main(["config-schema", "--write", str(target)]) == 0
    assert target.read_text() == workflow_schema_text()
    assert write_workflow_schema(tmp_path / "again.yaml").read_text() == target.read_text()


# --------------------------------------------------------------------------------------------
# tables kept beside their source: the actor's options, the sample sheet's columns
# --------------------------------------------------------------------------------------------


def test_actor_options_are_the_speaking_actors_keyword_options():
    """synthetic.actor is checked at start-up against a table (the actor's module is heavy to
    import there): the table must list every keyword option of the actor, with its shape."""
    import inspect

    from talkhead.synth.actor import _keyword_options, animate, random_utterance
    from talkhead.synth.config import ACTOR_OPTIONS
    from talkhead.synth.speech import synthesize

    expected = {}
    for fn in (random_utterance, synthesize, animate):
        params = inspect.signature(fn).parameters
        for name in _keyword_options(fn):
            default = params[name].default
            expected[name] = len(default) if isinstance(default, tuple) else 0
    assert ACTOR_OPTIONS == expected
    # each option accepted with its default's shape; a wrong shape or name refused
    ok = {k: [1.0] * n if n else 1.0 for k, n in ACTOR_OPTIONS.items()}
    load_workflow_config({"synthetic": {"actor": ok}})
    lines = problem_lines({"synthetic": {"actor": {"gaze_deg": 3.0, "blink_interval": [2, 5]}}})
    assert lines[0] == "synthetic.actor.gaze_deg: expected a list of 2 numbers, got 3.0"
    assert lines[1].startswith(
        "synthetic.actor.blink_interval: unknown actor option (did you mean blink_interval_s?)"
    )


def test_synthetic_rig_directions_are_the_rendered_rigs():
    """The start-up check of depth neighbours uses the nominal rig: the same viewing directions
    as the cameras the studio places (before their jitter)."""
    import numpy as np

    from talkhead.geometry.cameras import ring_rig
    from talkhead.synth.config import StudioConfig

    cfg = StudioConfig(n_cameras=5, yaw_span_deg=140.0, pitch_deg=(-10.0, 5.0, 12.0))
    cams = ring_rig(5, 64, 80, cfg.fov_deg, cfg.rig_radius, cfg.yaw_span_deg, cfg.pitch_deg)
    centres = np.stack([c.center / np.linalg.norm(c.center) for c in cams])
    np.testing.assert_allclose(np.array(cfg.view_directions()), centres, atol=1e-9)


def test_start_up_checks_follow_the_settings_they_name():
    """Cross-section rules fire exactly when their settings conflict."""
    load_workflow_config({"synthetic": {"n_cameras": 2}, "depth": {"backend": "colmap"}})
    load_workflow_config(
        {"synthetic": {"n_cameras": 2}, "depth": {"torch": {"max_neighbour_angle_deg": 120.0}}}
    )
    load_workflow_config({"synthetic": {"n_cameras": 3}, "backproject": {"landmark_min_views": 3}})
    assert problem_lines({"synthetic": {"n_cameras": 3, "yaw_span_deg": 170.0}})[0].startswith(
        "synthetic.n_cameras: 3 cameras over synthetic.yaw_span_deg 170 "
    )
    assert problem_lines({"backproject": {"landmark_min_views": 4}, "synthetic": {"n_cameras": 3}})
    # a real capture's camera count is unknown at start-up: checked when the points stage runs
    real = {"capture": {"source": "nersemble", "root": "/data"}}
    load_workflow_config({**real, "backproject": {"landmark_min_views": 40}})
    with pytest.raises(ConfigError, match=r"^backproject.landmark_min_views: must be <= the 3 "):
        from talkhead.points.config import BackprojectConfig

        BackprojectConfig(landmark_min_views=4).check_cameras(3)


def test_sample_sheet_schema_lists_the_reader_columns():
    from talkhead.samples import COLUMNS, REQUIRED

    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "sequences.schema.yaml").read_text())
    assert tuple(schema["properties"]) == COLUMNS
    assert tuple(schema["required"]) == REQUIRED


def test_sample_sheet_reads_every_column(tmp_path):
    from talkhead.samples import SampleRow, read_sample_sheet

    sheet = tmp_path / "s.tsv"
    sheet.write_text(
        "# comment\n"
        "subject\tsequence\tlayout\troot\tfps\taudio\taudio_offset_s\tcameras\n"
        "018\tEXP-1+head\tv2\t/data\t73\ta.wav\t-0.25\t220700191, 220700192\n"
        "\n"
        "019\tSEN-01\n"
    )
    rows = read_sample_sheet(sheet, layouts=("v1", "v2"))
    assert rows == [
        SampleRow(
            "018",
            "EXP-1+head",
            "v2",
            "/data",
            73.0,
            "a.wav",
            -0.25,
            ("220700191", "220700192"),
            line=3,
        ),
        SampleRow("019", "SEN-01", line=5),
    ]
    sheet.write_text("subject\tsequence\tlayout\n018\tSEN-01\tnersembl\n")
    with pytest.raises(ConfigError, match=r":2: layout must be one of v1, nersemble \(did you"):
        read_sample_sheet(sheet, layouts=("v1", "nersemble"))


def test_check_config_command_merges_files_in_order(tmp_path, capsys):
    over = tmp_path / "a.yaml"
    over.write_text("depth:\n  torch:\n    window: 4\n")
    fix = tmp_path / "b.yaml"
    fix.write_text("depth:\n  torch:\n    window: 7\n")
    assert main(["check-config", str(CONFIG), str(over)]) == 2
    assert main(["check-config", str(CONFIG), str(over), str(fix)]) == 0
    assert "config ok" in capsys.readouterr().out
