# The embedded synthetic studio: a procedural head in FLAME's file format, a speaking actor and
# a multi-view recording of it, with ground truth. Used when capture.source is "synthetic".


rule synth_head_model:
    output:
        model=f"{HEAD_MODEL_DIR}/generic_model.pkl",
        landmarks=f"{HEAD_MODEL_DIR}/landmark_embedding.npz",
        masks=f"{HEAD_MODEL_DIR}/FLAME_masks.pkl",
    params:
        synthetic=config["synthetic"],
    log:
        "logs/synth/head_model.log",
    conda:
        "../../envs/talkhead.yaml"
    script:
        "../scripts/synth_head_model.py"


rule synth_rig:
    output:
        f"{SYNTH_CAPTURE}/{{subject}}/camera_params.json",
    params:
        synthetic=config["synthetic"],
    log:
        "logs/synth/{subject}/rig.log",
    conda:
        "../../envs/talkhead.yaml"
    script:
        "../scripts/synth_rig.py"


rule synth_sequence:
    input:
        **HEAD_MODEL_FILES,
        calibration=f"{SYNTH_CAPTURE}/{{subject}}/camera_params.json",
    output:
        sequence=directory(f"{SYNTH_CAPTURE}/{{subject}}/sequences/{{sequence}}"),
        ground_truth=directory(f"{SYNTH_GT}/{{subject}}/{{sequence}}"),
    params:
        synthetic=config["synthetic"],
    threads: 4
    resources:
        mem_mb=4000,
    log:
        "logs/synth/{subject}/{sequence}.log",
    benchmark:
        "benchmarks/snakemake/synth/{subject}/{sequence}.tsv"
    conda:
        "../../envs/talkhead.yaml"
    script:
        "../scripts/synth_sequence.py"
