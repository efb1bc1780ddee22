"""The workflow's whole configuration (``config/config.yaml``): its sections, loader and schema.

:class:`WorkflowConfig` composes the stages' config sections; ``config/config.yaml`` documents
their defaults and ``workflow/schemas/config.schema.yaml`` is generated from them
(``talkhead config-schema --write workflow/schemas/config.schema.yaml``). In the workflow::

    cfg = load_workflow_config(config)        # every problem at once, YAML key paths
    params: backproject=to_mapping(cfg.backproject)
    # in the script: from_mapping(BackprojectConfig, snakemake.params.backproject, "backproject")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .capture.config import CaptureConfig, FaceMaskConfig
from .config import from_mapping, json_schema, option, section
from .depth.config import DepthConfig
from .flame.config import FlameFilesConfig
from .floors import QCConfig
from .io import PathLike
from .points.config import BackprojectConfig
from .qc.config import ReportConfig
from .synth.config import StudioConfig

__all__ = [
    "SCHEMA_COMMAND",
    "SCHEMA_PATH",
    "WorkflowConfig",
    "load_workflow_config",
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
    face_mask: FaceMaskConfig = section(
        FaceMaskConfig, "Which pixels count as face (depth coverage, back-projection, QC)."
    )
    depth: DepthConfig = section(DepthConfig, "Depth and normal maps per camera and frame.")
    backproject: BackprojectConfig = section(
        BackprojectConfig, "Depth maps to points and 2D landmarks to 3D."
    )
    report: ReportConfig = section(ReportConfig, "QC figures of the report.")
    qc: QCConfig = section(QCConfig, "Floors under the stages' own figures (metrics.json).")


def load_workflow_config(config: Mapping[str, Any] | None) -> WorkflowConfig:
    """The workflow's config (Snakemake's ``config`` dict) as a checked :class:`WorkflowConfig`.

    Missing keys take their defaults.

    Raises:
        ConfigError: one line per problem of the whole config, each starting with the key path
            as written in ``config/config.yaml`` (``depth.torch.n_planes: must be >= 3, got 0``).
    """
    return from_mapping(WorkflowConfig, config, "")


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
