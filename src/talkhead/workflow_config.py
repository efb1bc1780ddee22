"""The workflow's whole configuration (``config/config.yaml``): its sections, loader and schema.

:class:`WorkflowConfig` composes the stages' config sections; ``config/config.yaml`` documents
their defaults and ``workflow/schemas/config.schema.yaml`` is generated from them
(``talkhead config-schema --write workflow/schemas/config.schema.yaml``). In the workflow::

    cfg = load_workflow_config(config)        # every problem at once, YAML key paths
    params: backproject=to_mapping(cfg.backproject)
    # in the script: from_mapping(BackprojectConfig, snakemake.params.backproject, "backproject")
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .audio.config import AudioConfig
from .audio.feature_config import FeatureConfig
from .capture.config import CaptureConfig, FaceMaskConfig
from .config import from_mapping, json_schema, option, section
from .dataset.config import DatasetConfig
from .depth.config import DepthConfig
from .errors import ConfigError
from .flame.config import AlignConfig, FitFlameConfig, FlameFilesConfig
from .floors import QCConfig
from .io import PathLike
from .nphm.config import FitNphmConfig, NphmConfig
from .points.config import BackprojectConfig
from .preprocess.config import PreprocessConfig
from .qc.config import ReportConfig
from .synth.config import StudioConfig
from .training.config import ModelsConfig

__all__ = [
    "SCHEMA_COMMAND",
    "SCHEMA_PATH",
    "WorkflowConfig",
    "load_config_files",
    "load_workflow_config",
    "merge_config",
    "read_config_file",
    "workflow_schema",
    "workflow_schema_text",
    "write_workflow_schema",
]

#: Where the generated schema lives, relative to the repository root.
SCHEMA_PATH = "workflow/schemas/config.schema.yaml"
#: The command that regenerates it.
SCHEMA_COMMAND = f"talkhead config-schema --write {SCHEMA_PATH}"


@dataclass(frozen=True)
class WorkflowConfig:
    """talkhead configuration (config/config.yaml)."""

    samples: str = option(
        "config/sequences.tsv",
        "Sample sheet (TSV) of real captures, read when capture.source is nersemble.",
    )
    capture: CaptureConfig = section(CaptureConfig, "Where the recordings come from.")
    flame: FlameFilesConfig = section(
        FlameFilesConfig, "FLAME model files (empty: the synthetic head model)."
    )
    synthetic: StudioConfig = section(
        StudioConfig, "The embedded synthetic studio (capture.source: synthetic)."
    )
    preprocess: PreprocessConfig = section(
        PreprocessConfig,
        "What a real capture lacks: mattes, 2D landmarks, facial segmentation, audio.",
    )
    face_mask: FaceMaskConfig = section(
        FaceMaskConfig, "Which pixels count as face (depth coverage, back-projection, QC)."
    )
    depth: DepthConfig = section(DepthConfig, "Depth and normal maps per camera and frame.")
    backproject: BackprojectConfig = section(
        BackprojectConfig, "Depth maps to points and 2D landmarks to 3D."
    )
    align_flame: AlignConfig = section(
        AlignConfig, "Similarity of the FLAME template to the 3D landmarks."
    )
    fit_flame: FitFlameConfig = section(
        FitFlameConfig, "Whole-sequence FLAME fitting (FaceTalk eqs. 3-13)."
    )
    nphm: NphmConfig = section(
        NphmConfig, "The neural parametric head model and its training on the head model's family."
    )
    fit_nphm: FitNphmConfig = section(
        FitNphmConfig, "Per-sequence NPHM fit: identity per subject, expression code per frame."
    )
    audio: AudioConfig = section(
        AudioConfig, "Each sequence's microphone: 16 kHz mono, +20 dB, denoised."
    )
    audio_features: FeatureConfig = section(
        FeatureConfig, "Audio features per video frame: log-mel and optional wav2vec2."
    )
    report: ReportConfig = section(ReportConfig, "QC figures of the report.")
    qc: QCConfig = section(QCConfig, "Floors under the stages' own figures (metrics.json).")
    dataset: DatasetConfig = section(
        DatasetConfig, "The packaged dataset: FaceTalk's layout, subject splits, windows."
    )
    models: ModelsConfig = section(
        ModelsConfig, "Audio-driven face models trained on the dataset (results/models/)."
    )

    def problems(self) -> list[tuple[str, str]]:
        """Rules across sections, as ``(key path, message)`` pairs: models of NPHM codes need
        them in the dataset (:func:`_nphm_code_problems`), and what the synthetic rig must
        give the later stages (a real capture's cameras are checked when it is read)."""
        out = _nphm_code_problems(self)
        if self.capture.source != "synthetic":
            return out
        n = self.synthetic.n_cameras
        views = self.backproject.landmark_min_views
        if views > n:
            out.append(
                (
                    "backproject.landmark_min_views",
                    f"must be <= synthetic.n_cameras ({n}), got {views}: a 3D landmark needs "
                    "that many views, so none would be valid",
                )
            )
        if self.depth.backend in ("torch", "auto"):
            out.extend(_rig_neighbour_problems(self))
        return out


def _nphm_code_problems(cfg: WorkflowConfig) -> list[tuple[str, str]]:
    """Models trained on NPHM expression codes (``facetalk_nphm``; facetalk or its regression
    variant with ``target: nphm_expression``, and then FaceTalk's Table-3 variants) while the
    stage is on but the dataset leaves the codes out (``dataset.include_nphm: false``). With
    ``nphm.enabled: false`` the workflow leaves ``facetalk_nphm`` out with a note instead;
    a target of NPHM codes is refused either way."""
    from .training.config import NPHM_MODELS

    codes = cfg.nphm.enabled and cfg.dataset.include_nphm
    if codes:
        return []
    why = (
        "dataset.include_nphm: true"
        if cfg.nphm.enabled
        else ("nphm.enabled: true and dataset.include_nphm: true")
    )
    train = list(cfg.models.train)
    out = []
    for name in NPHM_MODELS:
        if name in train and cfg.nphm.enabled:
            out.append(
                (
                    "models.train",
                    f"{name} trains on NPHM expression codes and needs {why} (the NPHM codes "
                    f"packaged with the dataset), or leave {name} out of models.train",
                )
            )
    for key in ("facetalk", "facetalk_regression"):
        if key in train and getattr(cfg.models, key).target == "nphm_expression":
            out.append(
                (
                    f"models.{key}.target",
                    f"nphm_expression needs {why} (the NPHM codes packaged with the dataset)",
                )
            )
    if cfg.models.injection_variants and cfg.models.facetalk.target == "nphm_expression":
        out.append(
            (
                "models.injection_variants",
                f"train FaceTalk on models.facetalk.target: nphm_expression, which needs {why} "
                "(or set models.injection_variants: [])",
            )
        )
    return out


def _rig_neighbour_problems(cfg: WorkflowConfig) -> list[tuple[str, str]]:
    """The torch stereo matches each view against neighbours whose viewing direction is within
    [min, max]_neighbour_angle_deg: a synthetic camera without one stops the depth stage."""
    dirs = cfg.synthetic.view_directions()
    lo, hi = cfg.depth.torch.min_neighbour_angle_deg, cfg.depth.torch.max_neighbour_angle_deg
    lonely = []
    nearest = []
    for i, a in enumerate(dirs):
        cosines = [math.fsum(x * y for x, y in zip(a, b, strict=True)) for b in dirs]
        angles = [
            math.degrees(math.acos(max(-1.0, min(1.0, c)))) for j, c in enumerate(cosines) if j != i
        ]
        if not any(lo <= g <= hi for g in angles):
            lonely.append(i)
            nearest.append(min(angles, default=float("nan")))
    if not lonely:
        return []
    syn = cfg.synthetic
    return [
        (
            "synthetic.n_cameras",
            f"{syn.n_cameras} cameras over synthetic.yaw_span_deg {syn.yaw_span_deg:g} leave "
            f"{len(lonely)} camera(s) (nearest other view {min(nearest):.1f} degrees away) "
            f"without a neighbour view within depth.torch.min_neighbour_angle_deg ({lo:g}) .. "
            f"depth.torch.max_neighbour_angle_deg ({hi:g}), which the torch depth backend "
            "needs: add cameras, narrow synthetic.yaw_span_deg or widen those angles",
        )
    ]


def load_workflow_config(config: Mapping[str, Any] | None) -> WorkflowConfig:
    """The workflow's config (Snakemake's ``config`` dict) as a checked :class:`WorkflowConfig`.

    Missing keys take their defaults.

    Raises:
        ConfigError: one line per problem of the whole config, each starting with the key path
            as written in ``config/config.yaml`` (``depth.torch.n_planes: must be >= 3, got 0``).
    """
    return from_mapping(WorkflowConfig, config, "")


def read_config_file(path: PathLike) -> dict[str, Any]:
    """A YAML config file (``config/config.yaml`` or a ``--configfile``) as a mapping.

    Raises:
        ConfigError: one line naming the file: it does not exist or cannot be read, its YAML
            is malformed (with the line and column of the problem, as an editor counts them),
            or it does not hold a mapping of settings.
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        context, problem = getattr(exc, "context", None), getattr(exc, "problem", None)
        begun = getattr(exc, "context_mark", None)
        if context and begun is not None and mark is not None and begun.line != mark.line:
            context = f"{context} (begun on line {begun.line + 1})"
        what = " ".join(str(x) for x in (context, problem) if x)
        raise ConfigError(f"{where}: YAML syntax error: {what or exc}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{path}: a config file holds a mapping of settings (key: value), got "
            f"{type(data).__name__}"
        )
    return dict(data)


def merge_config(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base`` key by key, nested mappings recursively (as
    Snakemake merges a ``--configfile`` over the workflow's defaults)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = value
    return out


def load_config_files(paths: Sequence[PathLike]) -> WorkflowConfig:
    """The config that ``snakemake --configfile`` would run with: the files merged in order
    (``config/config.yaml`` first), then checked.

    Raises:
        ConfigError: as :func:`read_config_file` for the first unreadable file, else as
            :func:`load_workflow_config`.
    """
    merged: dict[str, Any] = {}
    for path in paths:
        merged = merge_config(merged, read_config_file(path))
    return load_workflow_config(merged)


def workflow_schema() -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of ``config/config.yaml``, from the dataclasses."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **json_schema(WorkflowConfig),
    }


def workflow_schema_text() -> str:
    """:func:`workflow_schema` as YAML, under a comment saying it is generated and how."""
    import yaml

    header = (
        "# GENERATED from the config dataclasses (talkhead.workflow_config.WorkflowConfig): do\n"
        "# not edit by hand. Regenerate with\n"
        f"#   {SCHEMA_COMMAND}\n"
        "# tests/test_config.py fails when this file, the dataclasses and config/config.yaml "
        "drift.\n"
    )

    class Dumper(yaml.SafeDumper):
        pass

    def lists(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
        flow = all(not isinstance(x, dict | list) for x in data)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)

    def dicts(dumper: yaml.SafeDumper, data: dict) -> yaml.Node:
        # small constraint dicts ({multipleOf: 2}, items' types) inline; properties as blocks
        flow = "description" not in data and all(
            not isinstance(x, dict | list) for x in data.values()
        )
        return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=flow)

    Dumper.add_representer(list, lists)
    Dumper.add_representer(dict, dicts)
    body = yaml.dump(
        workflow_schema(), Dumper=Dumper, sort_keys=False, width=200, allow_unicode=True
    )
    return header + body


def write_workflow_schema(path: PathLike = SCHEMA_PATH) -> Path:
    """Write :func:`workflow_schema_text` to ``path`` (atomically); return the path."""
    from .io import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(workflow_schema_text())
    return path
