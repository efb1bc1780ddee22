# The embedded synthetic studio: a procedural head in FLAME's file format, a speaking actor and
# a multi-view recording of it, with ground truth. Used when capture.source is "synthetic".
# Ground truth is written here and read only by the evaluate rules (evaluate.smk).


SYNTH_GROUND_TRUTH = "resources/synthetic/ground_truth"


rule build_head_model:
    output:
        model=f"{HEAD_MODEL_DIR}/generic_model.pkl",
        landmarks=f"{HEAD_MODEL_DIR}/landmark_embedding.npz",
        masks=f"{HEAD_MODEL_DIR}/FLAME_masks.pkl",
    log:
        "logs/synth/head_model.log",
    conda:
        "../../envs/talkhead.yaml"
    params:
        synthetic=config["synthetic"],
    script:
        "../scripts/build_head_model.py"


rule write_synthetic_rig:
    output:
        f"{SYNTH_CAPTURE}/{{subject}}/camera_params.json",
    log:
        "logs/synth/{subject}/rig.log",
    conda:
        "../../envs/talkhead.yaml"
    params:
        synthetic=config["synthetic"],
    script:
        "../scripts/write_synthetic_rig.py"


rule render_synthetic_sequence:
    input:
        **HEAD_MODEL_FILES,
        calibration=f"{SYNTH_CAPTURE}/{{subject}}/camera_params.json",
    output:
        sequence=directory(f"{SYNTH_CAPTURE}/{{subject}}/sequences/{{sequence}}"),
        ground_truth=directory(f"{SYNTH_GROUND_TRUTH}/{{subject}}/{{sequence}}"),
    log:
        "logs/synth/{subject}/{sequence}.log",
    benchmark:
        "benchmarks/snakemake/render_synthetic_sequence/{subject}/{sequence}.tsv"
    # Everything is made from it: before the NPHM training, which needs only the head model.
    priority: 4
    conda:
        "../../envs/talkhead.yaml"
    threads: 4
    resources:
        mem_mb=4000,
    params:
        synthetic=config["synthetic"],
    script:
        "../scripts/render_synthetic_sequence.py"
