# Input functions and helpers shared by every stage. Keep them cheap: they run for every
# job of the DAG (a Nersemble-scale capture has ~10k sequences).

from pathlib import Path

from talkhead.config import to_mapping
from talkhead.errors import ConfigError
from talkhead.samples import NAME_PATTERN, SampleRow, read_sample_sheet
from talkhead.training.config import MODELS, NPHM_MODELS
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


# Real captures in a published NeRSemble layout (or with a root or camera list of their own on
# the sheet) are ingested into talkhead's tree under results/ingest/ first; a capture already in
# talkhead's tree under capture.root is read in place. Whether the run ingests is decided once
# for every sequence, so that each input stays a pattern.
INGEST_ROOT = "results/ingest"


def _source(row):
    """(root, layout) of a real capture's sheet row; ``auto`` is detected on disk (a few stat
    calls per sequence). A sequence, calibration or audio file that is not there ends the run
    at start-up, naming the sheet's line."""
    from talkhead.capture import layout, layouts
    from talkhead.errors import CaptureError

    where = f"sample sheet {config['samples']}, line {row.line}:"
    root = row.root or config["capture"]["root"]
    name = row.layout or config["capture"]["layout"]
    if name == "auto":
        try:
            name = layouts.detect_layout(root, row.subject, row.sequence)
        except CaptureError as exc:
            stop(where, exc)
    seq_dir = layout.sequence_dir(root, row.subject, row.sequence)
    subject_dir = layout.subject_dir(root, row.subject)
    calibration = (
        layout.calibration_path(subject_dir)
        if name in ("talkhead", "nersemble_v1")
        else layouts.kit_calibration_path(subject_dir)
    )
    for path, what in ((seq_dir, "sequence folder"), (calibration, "calibration")):
        if not path.exists():
            hint = (
                ""
                if row.layout or config["capture"]["layout"] == "auto"
                else (
                    f" (capture.layout / the sheet's layout column is {name!r}: "
                    "is that the layout of this tree? 'auto' detects it)"
                )
            )
            stop(where, f"{path}: {what} of layout {name} is missing{hint}")
    return root, name


def _audio(row):
    """The sheet's audio file of a row, relative paths taken from the sheet's folder; a file
    that is not there ends the run at start-up."""
    if not row.audio:
        return ""
    path = Path(row.audio)
    if not path.is_absolute():
        path = Path(config["samples"]).parent / path
    if not path.is_file():
        stop(
            f"sample sheet {config['samples']}, line {row.line}:",
            f"audio file {path} is missing (a relative path is taken from the sheet's folder)",
        )
    return str(path)


ROWS = {(r.subject, r.sequence): r for r in SEQUENCES}
SOURCES = {} if SYNTHETIC else {(r.subject, r.sequence): _source(r) for r in SEQUENCES}
AUDIO = {} if SYNTHETIC else {(r.subject, r.sequence): _audio(r) for r in SEQUENCES}
INGEST = any(
    name != "talkhead" or root != CAPTURE_ROOT or row.cameras
    for row, (root, name) in zip(SEQUENCES, SOURCES.values())
)

# The capture of one sequence as later stages read it, as patterns: `input: **CAPTURE_INPUTS`.
# An ingested sequence carries its calibration inside (camera_params.json).
if INGEST:
    RAW_CAPTURE_INPUTS = {"sequence": f"{INGEST_ROOT}/{{subject}}/sequences/{{sequence}}"}
else:
    RAW_CAPTURE_INPUTS = {
        "calibration": f"{CAPTURE_ROOT}/{{subject}}/camera_params.json",
        "sequence": f"{CAPTURE_ROOT}/{{subject}}/sequences/{{sequence}}",
    }

# Products made by the preprocess_* rules, beside the capture (overlay folders the sequence
# reader consults for what the capture lacks): every product for a real capture (a rule whose
# product the capture has writes nothing), MediaPipe's landmarks for the synthetic studio when
# capture.landmarks is mediapipe. `input: **PRODUCT_INPUTS`.
PREPROCESS_DIR = "results/preprocess/{subject}/{sequence}"
if not SYNTHETIC:
    PRODUCTS = ("mattes", "landmarks", "segmentation", "audio")
elif config["capture"]["landmarks"] == "mediapipe":
    PRODUCTS = ("landmarks",)
else:
    PRODUCTS = ()
PRODUCT_INPUTS = {name: f"{PREPROCESS_DIR}/{name}" for name in PRODUCTS}
# The mattes product, for the rules that crop around the head (real captures only).
MATTES_INPUT = {"mattes": PRODUCT_INPUTS["mattes"]} if "mattes" in PRODUCTS else {}
# The capture with its products, as every stage after preprocess reads it.
CAPTURE_INPUTS = {**RAW_CAPTURE_INPUTS, **PRODUCT_INPUTS}
# Products the overlays replace in the capture (its own landmarks, under mediapipe).
REPLACED_PRODUCTS = ["landmarks"] if config["capture"]["landmarks"] == "mediapipe" else []

# Ground truth: the synthetic studio's, or that of a capture exported from it.
# (the folder itself is named only in synth.smk and evaluate.smk).
HAS_GROUND_TRUTH = SYNTHETIC or bool(config["capture"]["ground_truth"])


def ingest_inputs(wildcards):
    """The source of one sequence: its folder and its calibration file, where its layout
    keeps them (v1 and talkhead: <root>/<subject>/camera_params.json; v2 and the benchmark kit:
    <root>/<subject>/calibration/camera_params.json)."""
    from talkhead.capture import layout, layouts

    root, name = SOURCES[(wildcards.subject, wildcards.sequence)]
    subject_dir = layout.subject_dir(root, wildcards.subject)
    if name in ("talkhead", "nersemble_v1"):
        calibration = layout.calibration_path(subject_dir)
    else:
        calibration = layouts.kit_calibration_path(subject_dir)
    return {
        "source": str(layout.sequence_dir(root, wildcards.subject, wildcards.sequence)),
        "calibration": str(calibration),
    }


def ingest_source(wildcards):
    """{root, layout, cameras} of one sequence, for the ingest script."""
    root, name = SOURCES[(wildcards.subject, wildcards.sequence)]
    cameras = ROWS[(wildcards.subject, wildcards.sequence)].cameras
    return {"root": root, "layout": name, "cameras": list(cameras)}


def audio_source(wildcards):
    """The sheet's audio file of one sequence (none: the capture's own, if any)."""
    audio = AUDIO[(wildcards.subject, wildcards.sequence)]
    return {"audio": audio} if audio else {}


def audio_offset(wildcards):
    """The sheet's audio_offset_s of one sequence."""
    return ROWS[(wildcards.subject, wildcards.sequence)].audio_offset_s


# `params: fps=FPS_PARAM`: a constant unless some sequence of the sheet has its own frame rate.
FPS_PARAM = sequence_fps if FPS else DEFAULT_FPS
# The synthetic head model is shared by every subject: ancient() keeps a rebuild of it (same
# content, e.g. under --forceall on one subject's target) from making every other subject out
# of date. A change of its settings still reruns them (params). A user's FLAME files count by
# date as usual. Inputs flame_model, flame_landmarks, flame_masks (a real capture's inputs
# hold its own 2D `landmarks`).
HEAD_MODEL_FILES = {
    f"flame_{key}": path if config["flame"]["model"] else ancient(path)
    for key, path in head_model_files().items()
}
PAIRS = [(row.subject, row.sequence) for row in SEQUENCES]
# The fit without temporal smoothing, compared with the fit in the evaluation's jitter figure.
UNSMOOTHED_FIT = (
    {"unsmoothed": "results/flame/{subject}/{sequence}/unsmoothed/flame.npz"}
    if config["fit_flame"]["compare_unsmoothed"]
    else {}
)


def per_sequence(pattern, pairs=None):
    """Expand a results pattern over every (subject, sequence) of the sheet (or ``pairs``)."""
    return [pattern.format(subject=s, sequence=q) for s, q in (PAIRS if pairs is None else pairs)]


def _has_audio(subject, sequence):
    """Whether a sequence has a microphone: the synthetic studio's, the sheet's audio file, or
    an audio_recording.* in a capture in talkhead's tree (the published NeRSemble layouts carry
    none)."""
    if SYNTHETIC or AUDIO.get((subject, sequence)):
        return True
    from talkhead.capture.layout import AUDIO_EXTENSIONS, audio_path

    root, name = SOURCES[(subject, sequence)]
    folder = Path(root) / subject / "sequences" / sequence
    return name == "talkhead" and any(audio_path(folder, e).is_file() for e in AUDIO_EXTENSIONS)


# Sequences with audio: the audio stages and the dataset are theirs; the others get depth,
# points and FLAME fits, and a start-up note names them.
AUDIO_PAIRS = [pair for pair in PAIRS if _has_audio(*pair)]
_SILENT = [f"{s}/{q}" for s, q in PAIRS if (s, q) not in AUDIO_PAIRS]
if _SILENT:
    print(
        f"talkhead: {len(_SILENT)} sequence(s) without audio (no audio column on the sheet, "
        f"none in the capture) get no audio stages and stay out of the dataset: "
        f"{', '.join(_SILENT[:10])}{' ...' if len(_SILENT) > 10 else ''}",
        file=sys.stderr,
    )


# What a sequence is done with: its production outputs (the QC figures, which need every stage
# before them) and, where the capture has ground truth, its evaluation.
PRODUCTION_TARGETS = [
    "results/capture/{subject}/{sequence}/rig.png",
    "results/capture/{subject}/{sequence}/contact_sheet.png",
    "results/capture/{subject}/{sequence}/microphone.png",
    "results/depth/{subject}/{sequence}/depth_maps.png",
    "results/points/{subject}/{sequence}/points.png",
    "results/flame/{subject}/{sequence}/fit_losses.png",
    "results/flame/{subject}/{sequence}/fit_overlay.png",
]
# Stage 7 (nphm.enabled): the head model's training curves (the model is shared by every
# subject), and each sequence's decoded meshes.
NPHM = bool(config["nphm"]["enabled"])
NPHM_TARGETS = ["resources/nphm/training_losses.png"] if NPHM else []
if NPHM:
    PRODUCTION_TARGETS.append("results/nphm/{subject}/{sequence}/qc/meshes.png")
# The same, of sequences with audio (AUDIO_PAIRS).
AUDIO_TARGETS = [
    "results/audio/{subject}/{sequence}/before_after.png",
    "results/audio/{subject}/{sequence}/features",
]
# Dataset-level outputs (every sequence aggregated): built by `all`, not by the subject targets.
DATASET_TARGETS = ["results/dataset/manifest.csv", "results/dataset/summary.html"]
EVALUATION_TARGETS = [
    "results/depth/{subject}/{sequence}/evaluation.json",
    "results/depth/{subject}/{sequence}/depth_errors.png",
    "results/points/{subject}/{sequence}/evaluation.json",
    "results/flame/{subject}/{sequence}/evaluation.json",
    "results/flame/{subject}/{sequence}/fit_errors.png",
    "results/flame/{subject}/{sequence}/fit_jitter.png",
]
if NPHM:
    EVALUATION_TARGETS.append("results/nphm/{subject}/{sequence}/evaluation.json")
# The NPHM rows of the report's Table 2 (workflow/rules/report.smk).
NPHM_EVALUATIONS = (
    ["results/nphm/{subject}/{sequence}/evaluation.json"] if NPHM and HAS_GROUND_TRUTH else None
)
AUDIO_EVALUATION_TARGETS = ["results/audio/{subject}/{sequence}/evaluation.json"]
if "landmarks" in PRODUCTS:  # MediaPipe's 2D landmarks against the true projected ones
    EVALUATION_TARGETS.append(f"{PREPROCESS_DIR}/evaluation.json")


def _targets(production, evaluation):
    """Patterns of a sequence: the production ones and, with ground truth, the evaluation
    ones."""
    return production + (evaluation if HAS_GROUND_TRUTH else [])


def all_targets():
    """The production outputs (QC figures) of every sequence of the sheet, and the dataset."""
    return (
        [t for pattern in PRODUCTION_TARGETS for t in per_sequence(pattern)]
        + [t for pattern in AUDIO_TARGETS for t in per_sequence(pattern, AUDIO_PAIRS)]
        + (DATASET_TARGETS if AUDIO_PAIRS else [])
        + NPHM_TARGETS
        + MODEL_TARGETS
        + REPORT_TABLE_TARGETS
    )


def evaluation_targets():
    """Every evaluation output of the sheet's sequences, or none without ground truth."""
    if not HAS_GROUND_TRUTH:
        return []
    return [t for pattern in EVALUATION_TARGETS for t in per_sequence(pattern)] + [
        t for pattern in AUDIO_EVALUATION_TARGETS for t in per_sequence(pattern, AUDIO_PAIRS)
    ]


def sequence_targets(subject, sequence):
    """Everything of one sequence: its QC figures and, with ground truth, its evaluation."""
    patterns = _targets(PRODUCTION_TARGETS, EVALUATION_TARGETS)
    if (subject, sequence) in AUDIO_PAIRS:
        patterns = patterns + _targets(AUDIO_TARGETS, AUDIO_EVALUATION_TARGETS)
    return [pattern.format(subject=subject, sequence=sequence) for pattern in patterns]


def requested_sequences():
    """The (subject, sequence) pairs named as ``sequence_<subject>_<sequence>`` targets on the
    command line."""
    named = set(sys.argv[1:])
    return [(s, q) for s, q in PAIRS if f"sequence_{s}_{q}" in named]


def subject_targets(subject):
    """Everything of one subject: :func:`sequence_targets` of each of its sequences."""
    return [t for s, q in PAIRS if s == subject for t in sequence_targets(s, q)]


# -- NPHM (stage 7) --------------------------------------------------------------------------

NPHM_DIR = "resources/nphm"
NPHM_SEQ = "results/nphm/{subject}/{sequence}"
# The fit without the temporal loss, for the Table-2 comparison (fit_nphm.compare_without_temporal).
NPHM_COMPARE = config["fit_nphm"]["compare_without_temporal"]


def subject_sequence_inputs(wildcards):
    """Points and FLAME fits of every sequence of a subject (its identity is fitted on all)."""
    pairs = [(s, q) for s, q in PAIRS if s == wildcards.subject]
    return {
        "points": [f"results/points/{s}/{q}/points.npz" for s, q in pairs],
        "flame": [f"results/flame/{s}/{q}/flame.npz" for s, q in pairs],
    }


def plot_nphm_inputs(wildcards):
    """The fit (and the one without the temporal loss), and with ground truth its evaluation."""
    seq = NPHM_SEQ.format(**wildcards)
    inputs = {
        "codes": f"{seq}/codes.npz",
        "fit_log": f"{seq}/fit_log.csv",
        "meshes": f"{seq}/nphm_meshes",
        "flame_params": "results/flame/{subject}/{sequence}/flame.npz".format(**wildcards),
    }
    if NPHM_COMPARE:
        inputs |= {
            "unsmoothed_codes": f"{seq}/unsmoothed/codes.npz",
            "unsmoothed_fit_log": f"{seq}/unsmoothed/fit_log.csv",
            "unsmoothed_meshes": f"{seq}/unsmoothed/nphm_meshes",
        }
    if HAS_GROUND_TRUTH:
        inputs |= {
            "evaluation": f"{seq}/evaluation.json",
            "frames_csv": f"{seq}/evaluation_frames.csv",
            "ground_truth": f"{GROUND_TRUTH}/{wildcards.subject}/{wildcards.sequence}",
        }
    return inputs


def nphm_decoding_inputs(wildcards):
    """The NPHM model and the identity of every subject with audio, for evaluate_model and
    animate_model of a model of NPHM codes (its lip surface error and its meshes decode them);
    none for the other models."""
    facetalk = config["models"]["facetalk"]["target"] == "nphm_expression"
    regression = config["models"]["facetalk_regression"]["target"] == "nphm_expression"
    model = wildcards.model
    nphm_codes = (
        model in NPHM_MODELS
        or (facetalk and (model == "facetalk" or model in VARIANT_INJECTION))
        or (regression and model == "facetalk_regression")
    )
    if not nphm_codes:
        return {}
    subjects = sorted({s for s, _ in AUDIO_PAIRS})
    return {
        "nphm_model": f"{NPHM_DIR}/model.pt",
        "nphm_identities": [f"results/nphm/{s}/identity.npz" for s in subjects],
    }


def _nphm_report(name, caption, figure):
    return report(
        f"{NPHM_SEQ}/qc/{name}",
        caption=f"../report/{caption}",
        category="05. NPHM",
        subcategory="{subject} / {sequence}",
        labels={"subject": "{subject}", "sequence": "{sequence}", "figure": figure},
    )
