# Stage accuracy against the capture's ground truth (the synthetic studio has one; a real
# capture has none, and then these rules are not in the DAG). Each writes evaluation.json
# beside the stage's own metrics.json; pictures of the errors go to the report.


# The synthetic studio's ground truth, or that of a capture exported from it.
GROUND_TRUTH = SYNTH_GROUND_TRUTH if SYNTHETIC else config["capture"]["ground_truth"]


rule evaluate_depth:
    input:
        **CAPTURE_INPUTS,
        frames="results/depth/{subject}/{sequence}/frames",
        ground_truth=f"{GROUND_TRUTH}/{{subject}}/{{sequence}}",
    output:
        evaluation="results/depth/{subject}/{sequence}/evaluation.json",
        errors=report(
            "results/depth/{subject}/{sequence}/depth_errors.png",
            caption="../report/depth_errors.rst",
            category="02. Depth",
            subcategory="{subject} / {sequence}",
            labels={"subject": "{subject}", "sequence": "{sequence}", "figure": "depth error"},
        ),
    log:
        "logs/evaluate/{subject}/{sequence}/depth.log",
    conda:
        "../../envs/talkhead.yaml"
    params:
        fps=FPS_PARAM,
        face_mask=config["face_mask"],
        qc=config["report"],
    script:
        "../scripts/evaluate_depth.py"


rule evaluate_points:
    input:
        points="results/points/{subject}/{sequence}/points.npz",
        ground_truth=f"{GROUND_TRUTH}/{{subject}}/{{sequence}}",
    output:
        evaluation="results/points/{subject}/{sequence}/evaluation.json",
    log:
        "logs/evaluate/{subject}/{sequence}/points.log",
    conda:
        "../../envs/talkhead.yaml"
    script:
        "../scripts/evaluate_points.py"


rule evaluate_landmarks2d:
    input:
        **RAW_CAPTURE_INPUTS,
        landmarks=f"{PREPROCESS_DIR}/landmarks",
        ground_truth=f"{GROUND_TRUTH}/{{subject}}/{{sequence}}",
    output:
        evaluation=f"{PREPROCESS_DIR}/evaluation.json",
    log:
        "logs/evaluate/{subject}/{sequence}/landmarks2d.log",
    conda:
        "../../envs/talkhead.yaml"
    params:
        fps=FPS_PARAM,
    script:
        "../scripts/evaluate_landmarks2d.py"


rule evaluate_flame:
    input:
        **HEAD_MODEL_FILES,
        **UNSMOOTHED_FIT,
        params="results/flame/{subject}/{sequence}/flame.npz",
        ground_truth=f"{GROUND_TRUTH}/{{subject}}/{{sequence}}",
    output:
        evaluation="results/flame/{subject}/{sequence}/evaluation.json",
        errors=report(
            "results/flame/{subject}/{sequence}/fit_errors.png",
            caption="../report/flame_errors.rst",
            category="04. FLAME",
            subcategory="{subject} / {sequence}",
            labels={"subject": "{subject}", "sequence": "{sequence}", "figure": "fit error"},
        ),
        jitter=report(
            "results/flame/{subject}/{sequence}/fit_jitter.png",
            caption="../report/flame_jitter.rst",
            category="04. FLAME",
            subcategory="{subject} / {sequence}",
            labels={"subject": "{subject}", "sequence": "{sequence}", "figure": "jitter"},
        ),
    log:
        "logs/evaluate/{subject}/{sequence}/flame.log",
    conda:
        "../../envs/talkhead.yaml"
    script:
        "../scripts/evaluate_flame.py"


rule evaluate_audio:
    input:
        **CAPTURE_INPUTS,
        cleaned="results/audio/{subject}/{sequence}/cleaned_audio.wav",
        ground_truth=f"{GROUND_TRUTH}/{{subject}}/{{sequence}}",
    output:
        evaluation="results/audio/{subject}/{sequence}/evaluation.json",
    log:
        "logs/evaluate/{subject}/{sequence}/audio.log",
    conda:
        "../../envs/talkhead.yaml"
    params:
        fps=FPS_PARAM,
    script:
        "../scripts/evaluate_audio.py"


# NPHM meshes against the true meshes over the face region (chamfer-L1, normal consistency,
# F-score at 1 and 5 mm), with and without the temporal loss; the jitter of the codes.
rule evaluate_nphm:
    input:
        **HEAD_MODEL_FILES,
        **(
            {
                "unsmoothed_codes": "results/nphm/{subject}/{sequence}/unsmoothed/codes.npz",
                "unsmoothed_meshes": "results/nphm/{subject}/{sequence}/unsmoothed/nphm_meshes",
            }
            if NPHM_COMPARE
            else {}
        ),
        codes="results/nphm/{subject}/{sequence}/codes.npz",
        meshes="results/nphm/{subject}/{sequence}/nphm_meshes",
        ground_truth=f"{GROUND_TRUTH}/{{subject}}/{{sequence}}",
    output:
        evaluation="results/nphm/{subject}/{sequence}/evaluation.json",
        frames="results/nphm/{subject}/{sequence}/evaluation_frames.csv",
    log:
        "logs/evaluate/{subject}/{sequence}/nphm.log",
    conda:
        "../../envs/talkhead.yaml"
    script:
        "../scripts/evaluate_nphm.py"
