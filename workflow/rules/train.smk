# Stage 10: audio-driven face models trained on the packaged dataset, one job per model
# (models.train): results/models/<model>/ model.ckpt (protected: delete it by hand to retrain),
# metrics.json, losses.csv, loss_curve.png, and an animation of a held-out sequence. An
# interrupted training job resumes from results/models/<model>/checkpoints/last.ckpt when rerun.
# GPU: the rule asks for gpu=0 here; a cluster profile gives it `gpu: 1` (bf16 mixed
# precision), or several for DDP.

MODELS_DIR = "results/models"
TRAINED_MODELS = list(config["models"]["train"]) if AUDIO_PAIRS else []
# NPHM codes as a target need them in the dataset: say so at start-up, not in a job.
for _key in ("facetalk", "facetalk_regression"):
    if (
        _key in TRAINED_MODELS
        and config["models"][_key]["target"] == "nphm_expression"
        and not config["dataset"]["include_nphm"]
    ):
        stop(
            "invalid configuration:",
            f"models.{_key}.target: nphm_expression needs dataset.include_nphm: true "
            "(the NPHM codes packaged with the dataset)",
        )
# Models with meshes to show (FaceTalk on NPHM codes writes codes only).
ANIMATED_MODELS = [
    m
    for m in TRAINED_MODELS
    if not (m == "facetalk" and config["models"]["facetalk"]["target"] == "nphm_expression")
    and not (
        m == "facetalk_regression"
        and config["models"]["facetalk_regression"]["target"] == "nphm_expression"
    )
]
MODEL_TARGETS = [f"{MODELS_DIR}/{m}/loss_curve.png" for m in TRAINED_MODELS] + [
    f"{MODELS_DIR}/{m}/held_out.mp4" for m in ANIMATED_MODELS
]


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
            category="10. Models",
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
        models=config["models"],
        audio_features=config["audio_features"],
    script:
        "../scripts/train_model.py"


rule animate_model:
    input:
        **HEAD_MODEL_FILES,
        model=f"{MODELS_DIR}/{{model}}/model.ckpt",
        manifest=f"{DATASET_DIR}/manifest.csv",
        splits=f"{DATASET_DIR}/splits.json",
    output:
        folder=directory(f"{MODELS_DIR}/{{model}}/held_out"),
        video=report(
            f"{MODELS_DIR}/{{model}}/held_out.mp4",
            caption="../report/train_animation.rst",
            category="10. Models",
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
    script:
        "../scripts/train_animate.py"
