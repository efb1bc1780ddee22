# Input functions and helpers shared by every stage. Keep them cheap: they run for every
# job of the DAG (a Nersemble-scale capture has ~10k sequences).

import sys
from pathlib import Path

import jsonschema
import pandas as pd
import yaml
from snakemake.exceptions import WorkflowError

# The package, also for a Snakemake installed without it (the rules' conda envs have it).
_SRC = str(Path(workflow.basedir) / "src")
while _SRC in sys.path:
    sys.path.remove(_SRC)
sys.path.insert(0, _SRC)
from talkhead.config import to_mapping
from talkhead.errors import ConfigError
from talkhead.workflow_config import load_workflow_config

SCHEMAS = Path(workflow.basedir) / "workflow" / "schemas"


def schema_problems(instance, schema_name):
    """One line per violation of a JSON schema, each naming the offending key."""
    schema = yaml.safe_load((SCHEMAS / schema_name).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'.'.join(str(p) for p in err.absolute_path) or '(top level)'}: {err.message}"
        for err in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path)))
    ]


def check_config(cfg):
    """The config as talkhead's dataclasses (talkhead.workflow_config): every problem at once,
    one line each, named by its key as written in YAML."""
    try:
        return load_workflow_config(cfg)
    except ConfigError as exc:
        raise WorkflowError(
            f"invalid configuration:\n  {str(exc).replace(chr(10), chr(10) + '  ')}"
        )


CONFIG = check_config(config)
# Every setting spelled out (defaults filled in), so rules and scripts never repeat a default.
config.update(to_mapping(CONFIG))

SYNTHETIC = config["capture"]["source"] == "synthetic"
SYNTH_CAPTURE = "resources/synthetic/capture"
HEAD_MODEL_DIR = "resources/head_model"


def _synthetic_sheet():
    syn = config["synthetic"]
    rows = [
        {"subject": f"syn{s:03d}", "sequence": f"SEN-{q:02d}"}
        for s in range(syn["n_subjects"])
        for q in range(syn["n_sequences"])
    ]
    return pd.DataFrame(rows)


def _read_sheet():
    path = config["samples"]
    try:
        sheet = pd.read_csv(path, sep="\t", dtype=str, comment="#").fillna("")
    except (OSError, pd.errors.ParserError) as exc:
        raise WorkflowError(f"sample sheet {path}: {exc}") from None
    problems = [
        f"row {i + 1}: {problem}"
        for i, row in enumerate(sheet.to_dict("records"))
        for problem in schema_problems(row, "sequences.schema.yaml")
    ]
    if problems:
        raise WorkflowError(f"sample sheet {path}:\n  " + "\n  ".join(problems))
    duplicated = sheet.duplicated(["subject", "sequence"])
    if duplicated.any():
        dup = sheet.loc[duplicated, ["subject", "sequence"]].to_records(index=False).tolist()
        raise ValueError(f"{config['samples']}: duplicated subject/sequence rows {dup}")
    return sheet


SEQUENCES = _synthetic_sheet() if SYNTHETIC else _read_sheet()
SUBJECTS = sorted(SEQUENCES["subject"].unique())


wildcard_constraints:
    subject=r"[A-Za-z0-9_.\-]+",
    sequence=r"[A-Za-z0-9_.\-]+",


# Per-job values. Snakemake evaluates a rule's input and params for every job (10k sequences:
# ~70k jobs), and each input or params *function* costs it far more than a pattern string or
# a constant (signature inspection, a Wildcards object, a call). So what does not depend on
# the sequence is a constant here, inputs are patterns, and the one per-sequence value (the
# frame rate of a real capture) is a dict lookup built once. Rules use the UPPER_CASE names.

CAPTURE_ROOT = SYNTH_CAPTURE if SYNTHETIC else config["capture"]["root"]
DEFAULT_FPS = float(config["capture"]["fps"])


def _fps_table():
    """{(subject, sequence): fps} of the sheet rows that give one (real captures only)."""
    if SYNTHETIC or "fps" not in SEQUENCES:
        return {}
    return {
        (s, q): float(fps)
        for s, q, fps in zip(SEQUENCES["subject"], SEQUENCES["sequence"], SEQUENCES["fps"])
        if fps
    }


FPS = _fps_table()


def sequence_fps(wildcards):
    """Frame rate of a sequence: the sheet's fps column, else capture.fps (sequence.json wins)."""
    return FPS.get((wildcards.subject, wildcards.sequence), DEFAULT_FPS)


def head_model_files():
    """FLAME-format model files: the user's FLAME, or the synthetic head built into resources/."""
    flame = config["flame"]
    if flame["model"]:
        return {
            "model": flame["model"],
            "landmarks": flame["landmark_embedding"],
            "masks": flame["masks"],
        }
    return {
        "model": f"{HEAD_MODEL_DIR}/generic_model.pkl",
        "landmarks": f"{HEAD_MODEL_DIR}/landmark_embedding.npz",
        "masks": f"{HEAD_MODEL_DIR}/FLAME_masks.pkl",
    }


# The raw capture of one sequence, as patterns: `input: **CAPTURE_INPUTS`.
CAPTURE_INPUTS = {
    "calibration": f"{CAPTURE_ROOT}/{{subject}}/camera_params.json",
    "sequence": f"{CAPTURE_ROOT}/{{subject}}/sequences/{{sequence}}",
}
# `params: fps=FPS_PARAM`: a constant unless some sequence of the sheet has its own frame rate.
FPS_PARAM = sequence_fps if FPS else DEFAULT_FPS
# The synthetic head model is shared by every subject: ancient() keeps a rebuild of it (same
# content, e.g. under --forceall on one subject's target) from making every other subject out
# of date. A change of its settings still reruns them (params). A user's FLAME files count by
# date as usual.
HEAD_MODEL_FILES = {
    key: path if config["flame"]["model"] else ancient(path)
    for key, path in head_model_files().items()
}
PAIRS = list(zip(SEQUENCES["subject"], SEQUENCES["sequence"]))


def per_sequence(pattern):
    """Expand a results pattern over every (subject, sequence) of the sheet."""
    return [pattern.format(subject=s, sequence=q) for s, q in PAIRS]


# What a sequence is done with: its production outputs (the QC figures, which need every stage
# before them) and, where the capture has ground truth, its evaluation.
PRODUCTION_TARGETS = [
    "results/capture/{subject}/{sequence}/rig.png",
    "results/capture/{subject}/{sequence}/contact_sheet.png",
    "results/capture/{subject}/{sequence}/microphone.png",
    "results/depth/{subject}/{sequence}/depth_maps.png",
    "results/points/{subject}/{sequence}/points.png",
]
EVALUATION_TARGETS = [
    "results/depth/{subject}/{sequence}/evaluation.json",
    "results/depth/{subject}/{sequence}/depth_errors.png",
    "results/points/{subject}/{sequence}/evaluation.json",
]


def all_targets():
    """The production outputs (QC figures) of every sequence of the sheet."""
    return [target for pattern in PRODUCTION_TARGETS for target in per_sequence(pattern)]


def evaluation_targets():
    """Every evaluation output of the sheet's sequences, or none without ground truth."""
    if not SYNTHETIC:
        return []
    return [target for pattern in EVALUATION_TARGETS for target in per_sequence(pattern)]


def sequence_targets(subject, sequence):
    """Everything of one sequence: its QC figures and, with ground truth, its evaluation."""
    patterns = PRODUCTION_TARGETS + (EVALUATION_TARGETS if SYNTHETIC else [])
    return [pattern.format(subject=subject, sequence=sequence) for pattern in patterns]


def requested_sequences():
    """The (subject, sequence) pairs named as ``sequence_<subject>_<sequence>`` targets on the
    command line."""
    named = set(sys.argv[1:])
    return [(s, q) for s, q in PAIRS if f"sequence_{s}_{q}" in named]


def subject_targets(subject):
    """Everything of one subject: :func:`sequence_targets` of each of its sequences."""
    return [t for s, q in PAIRS if s == subject for t in sequence_targets(s, q)]
