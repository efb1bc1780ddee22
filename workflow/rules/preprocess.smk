# Stage 2: what a real capture lacks. A capture in a published NeRSemble layout is ingested
# into talkhead's tree (frames decoded from video at the target fps, colour calibration
# applied, undistorted, downscaled); then each product the capture does not have is made
# beside it: mattes, 2D landmarks, facial segmentation, audio from the sample sheet. A product
# rule whose product the capture already has writes an empty folder (its metrics.json says so).


rule ingest_capture:
    input:
        unpack(ingest_inputs),
    output:
        directory(f"{INGEST_ROOT}/{{subject}}/sequences/{{sequence}}"),
    log:
        "logs/ingest/{subject}/{sequence}.log",
    benchmark:
        "benchmarks/snakemake/ingest_capture/{subject}/{sequence}.tsv"
    conda:
        "../../envs/talkhead.yaml"
    threads: 4
    resources:
        mem_mb=8000,
    params:
        source=ingest_source,
        ingest=config["capture"]["ingest"],
        fps=FPS_PARAM,
    script:
        "../scripts/ingest_capture.py"


rule preprocess_mattes:
    input:
        **RAW_CAPTURE_INPUTS,
    output:
        directory(f"{PREPROCESS_DIR}/mattes"),
    log:
        "logs/preprocess/{subject}/{sequence}/mattes.log",
    conda:
        "../../envs/talkhead.yaml"
    threads: 2
    params:
        fps=FPS_PARAM,
        preprocess=config["preprocess"],
    script:
        "../scripts/preprocess_mattes.py"


rule preprocess_landmarks:
    input:
        **RAW_CAPTURE_INPUTS,
        **MATTES_INPUT,
    output:
        directory(f"{PREPROCESS_DIR}/landmarks"),
    log:
        "logs/preprocess/{subject}/{sequence}/landmarks.log",
    conda:
        "../../envs/talkhead.yaml"
    threads: 2
    params:
        fps=FPS_PARAM,
        preprocess=config["preprocess"],
        replace=REPLACED_PRODUCTS,
    script:
        "../scripts/preprocess_landmarks.py"


rule preprocess_segmentation:
    input:
        **RAW_CAPTURE_INPUTS,
        **MATTES_INPUT,
    output:
        directory(f"{PREPROCESS_DIR}/segmentation"),
    log:
        "logs/preprocess/{subject}/{sequence}/segmentation.log",
    conda:
        "../../envs/talkhead.yaml"
    threads: 2
    params:
        fps=FPS_PARAM,
        preprocess=config["preprocess"],
    script:
        "../scripts/preprocess_segmentation.py"


rule preprocess_audio:
    input:
        unpack(audio_source),
        **RAW_CAPTURE_INPUTS,
    output:
        directory(f"{PREPROCESS_DIR}/audio"),
    log:
        "logs/preprocess/{subject}/{sequence}/audio.log",
    conda:
        "../../envs/talkhead.yaml"
    params:
        fps=FPS_PARAM,
        offset_s=audio_offset,
        preprocess=config["preprocess"],
    script:
        "../scripts/preprocess_audio.py"
