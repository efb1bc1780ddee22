# Input functions and helpers shared by every stage. Keep them cheap: they run for every
# job of the DAG (a Nersemble-scale capture has ~10k sequences).

from talkhead.config import to_mapping
from talkhead.errors import ConfigError
from talkhead.samples import NAME_PATTERN, SampleRow, read_sample_sheet
from talkhead.workflow_config import load_workflow_config


def stop(message, problems):
    """End the run at start-up: ``message`` then the problems (a ConfigError's lines), one
    indented line each, on stderr, and no Python traceback."""
    lines = str(problems).splitlines()
    raise SystemExit("\n  ".join([f"talkhead: {message}", *lines]))


# --config KEY=VALUE sets top-level keys only, and nested values arrive as text: say so when
# a check fails on a run that used it.
_CONFIG_ARGS_HINT = (
    "(--config sets top-level keys only and passes nested values as text: put nested "
    "settings in a small YAML file and pass it with --configfile FILE)"
)


def check_config(cfg):
    """The config as talkhead's dataclasses (talkhead.workflow_config): every problem at once,
    one line each, named by its key as written in YAML; ends the run on any."""
    try:
        return load_workflow_config(cfg)
    except ConfigError as exc:
        hint = f"\n{_CONFIG_ARGS_HINT}" if workflow.config_settings.config_args else ""
        stop("invalid configuration:", f"{exc}{hint}")


CONFIG = check_config(config)
# Every setting spelled out (defaults filled in), so rules and scripts never repeat a default.
config.update(to_mapping(CONFIG))

SYNTHETIC = config["capture"]["source"] == "synthetic"
SYNTH_CAPTURE = "resources/synthetic/capture"
HEAD_MODEL_DIR = "resources/head_model"


def _synthetic_sheet():
    """The synthetic studio's sequences: syn000/SEN-00, ... (synthetic.n_subjects, n_sequences)."""
    syn = config["synthetic"]
    return [
        SampleRow(subject=f"syn{s:03d}", sequence=f"SEN-{q:02d}")
        for s in range(syn["n_subjects"])
        for q in range(syn["n_sequences"])
    ]


def _read_sheet():
    """The sample sheet's rows (talkhead.samples): every problem at once, naming the line."""
    try:
        return read_sample_sheet(config["samples"])
    except ConfigError as exc:
        stop("invalid sample sheet (config key: samples):", exc)


#: Every sequence of the run, as talkhead.samples.SampleRow (subject, sequence, fps, ...).
SEQUENCES = _synthetic_sheet() if SYNTHETIC else _read_sheet()
SUBJECTS = sorted({row.subject for row in SEQUENCES})


wildcard_constraints:
    subject=NAME_PATTERN,
    sequence=NAME_PATTERN,


# Per-job values. Snakemake evaluates a rule's input and params for every job (10k sequences:
# ~70k jobs), and each input or params *function* costs it far more than a pattern string or
# a constant (signature inspection, a Wildcards object, a call). So what does not depend on
# the sequence is a constant here, inputs are patterns, and the one per-sequence value (the
# frame rate of a real capture) is a dict lookup built once. Rules use the UPPER_CASE names.

CAPTURE_ROOT = SYNTH_CAPTURE if SYNTHETIC else config["capture"]["root"]
DEFAULT_FPS = float(config["capture"]["fps"])


def _fps_table():
    """{(subject, sequence): fps} of the sheet rows that give one (real captures only)."""
    return {(r.subject, r.sequence): r.fps for r in SEQUENCES if r.fps is not None}


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
PAIRS = [(row.subject, row.sequence) for row in SEQUENCES]


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
