# Stage 9: the dataset. Every sequence's FLAME fit and cleaned audio (and, with
# dataset.include_nphm and nphm.enabled, its NPHM fit) packaged under results/dataset/ in
# FaceTalk's layout (data/<SUBJECT>_<SEQ>/), with a manifest, subject splits and training
# windows; one job for the whole sheet. QC: the summary table and a histogram of sequence
# lengths.

DATASET_DIR = "results/dataset"
FLAME_SEQ_DIR = "results/flame/{subject}/{sequence}"
AUDIO_SEQ_DIR = "results/audio/{subject}/{sequence}"
NPHM_SEQ_DIR = "results/nphm/{subject}/{sequence}"

# Every sequence with audio, in AUDIO_PAIRS order (the script pairs them back by position).
DATASET_INPUTS = {
    "flame": per_sequence(f"{FLAME_SEQ_DIR}/flame.npz", AUDIO_PAIRS),
    "template": per_sequence(f"{FLAME_SEQ_DIR}/template.ply", AUDIO_PAIRS),
    "flame_meshes": per_sequence(f"{FLAME_SEQ_DIR}/flame_meshes", AUDIO_PAIRS),
    "flame_metrics": per_sequence(f"{FLAME_SEQ_DIR}/metrics.json", AUDIO_PAIRS),
    "audio": per_sequence(f"{AUDIO_SEQ_DIR}/cleaned_audio.wav", AUDIO_PAIRS),
    "features": per_sequence(f"{AUDIO_SEQ_DIR}/features", AUDIO_PAIRS),
}
# The NPHM codes are packaged when asked (dataset.include_nphm) and the NPHM stage runs.
INCLUDE_NPHM = bool(config["dataset"]["include_nphm"]) and NPHM
if INCLUDE_NPHM:
    DATASET_INPUTS["nphm"] = per_sequence(f"{NPHM_SEQ_DIR}/nphm_expressions", AUDIO_PAIRS)
# A user's split file: an input (an edit reruns the packaging), checked against the sheet's
# subjects at start-up (the dataset job checks it again against the manifest).
if config["dataset"]["splits_file"]:
    DATASET_INPUTS["splits_file"] = config["dataset"]["splits_file"]
    from talkhead.dataset.splits import read_splits_file

    try:
        read_splits_file(config["dataset"]["splits_file"], SUBJECTS)
    except ConfigError as exc:
        stop("invalid split file:", exc)


rule dataset:
    input:
        **DATASET_INPUTS,
    output:
        data=directory(f"{DATASET_DIR}/data"),
        manifest=f"{DATASET_DIR}/manifest.csv",
        parquet=f"{DATASET_DIR}/manifest.parquet",
        splits=f"{DATASET_DIR}/splits.json",
        windows=f"{DATASET_DIR}/windows.csv",
        metrics=f"{DATASET_DIR}/metrics.json",
    log:
        "logs/dataset/dataset.log",
    benchmark:
        "benchmarks/snakemake/dataset/dataset.tsv"
    conda:
        "../../envs/talkhead.yaml"
    params:
        pairs=AUDIO_PAIRS,
        dataset={**config["dataset"], "include_nphm": INCLUDE_NPHM},
    script:
        "../scripts/dataset.py"


rule plot_dataset:
    input:
        manifest=f"{DATASET_DIR}/manifest.csv",
        splits=f"{DATASET_DIR}/splits.json",
    output:
        summary=report(
            f"{DATASET_DIR}/summary.html",
            caption="../report/dataset_summary.rst",
            category="07. Dataset",
            labels={"figure": "summary"},
        ),
        lengths=report(
            f"{DATASET_DIR}/sequence_lengths.png",
            caption="../report/sequence_lengths.rst",
            category="07. Dataset",
            labels={"figure": "sequence lengths"},
        ),
    log:
        "logs/dataset/qc.log",
    conda:
        "../../envs/talkhead.yaml"
    script:
        "../scripts/plot_dataset.py"
