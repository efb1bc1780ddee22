# Stage 10: audio-driven face models trained on the packaged dataset, one job per model
# (models.train): results/models/<model>/ model.ckpt (protected: delete it by hand to retrain),
# metrics.json, losses.csv, loss_curve.png, and an animation of a held-out sequence. An
# interrupted training job resumes from results/models/<model>/checkpoints/last.ckpt when rerun.
# GPU: the rule asks for gpu=0 here; a cluster profile gives it `gpu: 1` (bf16 mixed
# precision), or several for DDP.
# Table 3: FaceTalk once per timestep injection (models.injection_variants) in
# results/models/facetalk_<variant>/ (FaceTalk's own injection, at its steps, is not trained
# twice: FaceTalk's evaluation.json is relabelled as that variant's). Step 11: every model, variants included, evaluated on the
# dataset's test split: results/models/<model>/evaluation.json. facetalk_nphm is FaceTalk
# (models.facetalk) on NPHM expression codes ("Ours (full)"), beside facetalk ("Ours (Flame)").

from talkhead.training.config import INJECTION_LABELS, INJECTIONS, NPHM_MODELS

MODELS_DIR = "results/models"
TRAINED_MODELS = list(config["models"]["train"]) if AUDIO_PAIRS else []
# Without the NPHM stage there are no NPHM codes: its models are left out, with a note.
_NO_CODES = [m for m in TRAINED_MODELS if m in NPHM_MODELS and not NPHM]
if _NO_CODES:
    TRAINED_MODELS = [m for m in TRAINED_MODELS if m not in _NO_CODES]
    print(
        f"talkhead: nphm.enabled is false: {', '.join(_NO_CODES)} (NPHM expression codes) "
        "not trained",
        file=sys.stderr,
    )
# A model of NPHM codes without them in the dataset is refused at start-up with the other
# configuration problems (talkhead.workflow_config, also `talkhead check-config`).

# FaceTalk's timestep-injection variants (Table 3): facetalk_<variant>, FaceTalk's settings
# with models.facetalk.variant replaced (and models.variant_steps steps when not 0).
INJECTION_VARIANTS = list(config["models"]["injection_variants"]) if AUDIO_PAIRS else []
VARIANT_MODELS = [f"facetalk_{v}" for v in INJECTION_VARIANTS]
# The model names evaluate_model accepts: the models, and FaceTalk's variants (their injection).
VARIANT_INJECTION = {f"facetalk_{v}": v for v in INJECTIONS}
EVALUATED_MODEL_NAMES = [*MODELS, *VARIANT_INJECTION]
# The models section as training reads it: without the evaluation and variant settings, so that
# changing those neither retrains the models nor resets a resumable checkpoint; the variants
# with models.variant_steps steps when not 0.
TRAINING_SETTINGS = {
    k: v
    for k, v in config["models"].items()
    if k not in ("evaluate", "injection_variants", "variant_steps")
}
VARIANT_SETTINGS = {
    **TRAINING_SETTINGS,
    "training": {
        **TRAINING_SETTINGS["training"],
        "steps": config["models"]["variant_steps"] or TRAINING_SETTINGS["training"]["steps"],
    },
}
# The variant with FaceTalk's own injection and steps is FaceTalk: trained and evaluated once,
# its evaluation.json written again under the variant's name (relabel_evaluation).
SHARED_VARIANT = (
    f"facetalk_{config['models']['facetalk']['variant']}"
    if "facetalk" in TRAINED_MODELS
    and config["models"]["facetalk"]["variant"] in INJECTION_VARIANTS
    and VARIANT_SETTINGS["training"]["steps"] == TRAINING_SETTINGS["training"]["steps"]
    else None
)
# Names evaluate_model evaluates (the shared variant's evaluation is FaceTalk's, relabelled).
EVALUATED_BY_RULE = [m for m in EVALUATED_MODEL_NAMES if m != SHARED_VARIANT]
MODEL_TARGETS = (
    [
        f"{MODELS_DIR}/{m}/loss_curve.png"
        for m in TRAINED_MODELS + VARIANT_MODELS
        if m != SHARED_VARIANT
    ]
    # every model's held-out animation (models of NPHM codes decoded by stage 7's NPHM)
    + [f"{MODELS_DIR}/{m}/held_out.mp4" for m in TRAINED_MODELS]
    + [f"{MODELS_DIR}/{m}/evaluation.json" for m in TRAINED_MODELS + VARIANT_MODELS]
)
# SyncNet's weights as an input of evaluate_model (none when models.evaluate.syncnet_weights
# is empty).
SYNCNET_INPUT = (
    {"syncnet": config["models"]["evaluate"]["syncnet_weights"]}
    if config["models"]["evaluate"]["syncnet_weights"]
    else {}
)


rule train_model:
    input:
        **HEAD_MODEL_FILES,
        manifest=f"{DATASET_DIR}/manifest.csv",
        splits=f"{DATASET_DIR}/splits.json",
        windows=f"{DATASET_DIR}/windows.csv",
    output:
        model=protected(f"{MODELS_DIR}/{{model}}/model.ckpt"),
        metrics=f"{MODELS_DIR}/{{model}}/metrics.json",
        losses=f"{MODELS_DIR}/{{model}}/losses.csv",
        curve=report(
            f"{MODELS_DIR}/{{model}}/loss_curve.png",
            caption="../report/train_losses.rst",
            category="08. Models",
            labels={"model": "{model}", "figure": "loss curve"},
        ),
    log:
        "logs/models/{model}.train.log",
    benchmark:
        "benchmarks/snakemake/train_model/{model}.tsv"
    wildcard_constraints:
        model="|".join(MODELS),
    conda:
        "../../envs/talkhead.yaml"
    # One thread: the demo models are tiny, and two trainings then run side by side on two
    # cores; --set-threads train_model=N gives it more.
    threads: 1
    resources:
        mem_mb=4000,
        gpu=0,
    params:
        models=TRAINING_SETTINGS,
        audio_features=config["audio_features"],
    script:
        "../scripts/train_model.py"


rule animate_model:
    input:
        unpack(nphm_decoding_inputs),
        **HEAD_MODEL_FILES,
        model=f"{MODELS_DIR}/{{model}}/model.ckpt",
        manifest=f"{DATASET_DIR}/manifest.csv",
        splits=f"{DATASET_DIR}/splits.json",
    output:
        folder=directory(f"{MODELS_DIR}/{{model}}/held_out"),
        video=report(
            f"{MODELS_DIR}/{{model}}/held_out.mp4",
            caption="../report/train_animation.rst",
            category="08. Models",
            labels={"model": "{model}", "figure": "held-out animation"},
        ),
    log:
        "logs/models/{model}.animate.log",
    wildcard_constraints:
        model="|".join(MODELS),
    conda:
        "../../envs/talkhead.yaml"
    threads: 1
    params:
        samples=1,
        # models of NPHM codes: decoded like their evaluation (models.evaluate.nphm_every,
        # nphm_resolution), in the NPHM stage's box
        nphm_every=config["models"]["evaluate"]["nphm_every"],
        nphm_resolution=config["models"]["evaluate"]["nphm_resolution"],
        nphm_margin=config["fit_nphm"]["mesh_margin"],
    script:
        "../scripts/train_animate.py"


rule train_variant:
    input:
        **HEAD_MODEL_FILES,
        manifest=f"{DATASET_DIR}/manifest.csv",
        splits=f"{DATASET_DIR}/splits.json",
        windows=f"{DATASET_DIR}/windows.csv",
    output:
        model=protected(f"{MODELS_DIR}/facetalk_{{variant}}/model.ckpt"),
        metrics=f"{MODELS_DIR}/facetalk_{{variant}}/metrics.json",
        losses=f"{MODELS_DIR}/facetalk_{{variant}}/losses.csv",
        curve=report(
            f"{MODELS_DIR}/facetalk_{{variant}}/loss_curve.png",
            caption="../report/train_losses.rst",
            category="08. Models",
            labels={"model": "facetalk_{variant}", "figure": "loss curve"},
        ),
    log:
        "logs/models/facetalk_{variant}.train.log",
    benchmark:
        "benchmarks/snakemake/train_variant/{variant}.tsv"
    wildcard_constraints:
        variant="|".join(INJECTIONS),
    conda:
        "../../envs/talkhead.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        gpu=0,
    params:
        models=VARIANT_SETTINGS,
        audio_features=config["audio_features"],
    script:
        "../scripts/train_variant.py"


rule evaluate_model:
    input:
        unpack(nphm_decoding_inputs),
        **HEAD_MODEL_FILES,
        **SYNCNET_INPUT,
        model=f"{MODELS_DIR}/{{model}}/model.ckpt",
        manifest=f"{DATASET_DIR}/manifest.csv",
        splits=f"{DATASET_DIR}/splits.json",
    output:
        evaluation=f"{MODELS_DIR}/{{model}}/evaluation.json",
    log:
        "logs/models/{model}.evaluate.log",
    benchmark:
        "benchmarks/snakemake/evaluate_model/{model}.tsv"
    wildcard_constraints:
        model="|".join(EVALUATED_BY_RULE),
    conda:
        "../../envs/talkhead.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        gpu=0,
    params:
        evaluate=config["models"]["evaluate"],
        variant=lambda wc: VARIANT_INJECTION.get(wc.model),
        # the NPHM stage's marching-cubes box (models of NPHM codes' lip surface error)
        nphm_margin=config["fit_nphm"]["mesh_margin"],
    script:
        "../scripts/evaluate_model.py"


# FaceTalk's evaluation under the name of the variant it is (same checkpoint, seed and data).
rule relabel_evaluation:
    input:
        evaluation=f"{MODELS_DIR}/facetalk/evaluation.json",
    output:
        evaluation=f"{MODELS_DIR}/{{model}}/evaluation.json",
    log:
        "logs/models/{model}.relabel.log",
    wildcard_constraints:
        # a pattern that matches nothing when no variant is shared
        model=SHARED_VARIANT or "(?!x)x",
    conda:
        "../../envs/talkhead.yaml"
    threads: 1
    params:
        variant=lambda wc: VARIANT_INJECTION[wc.model],
        label=lambda wc: INJECTION_LABELS[VARIANT_INJECTION[wc.model]],
    script:
        "../scripts/relabel_evaluation.py"
