# Stage 1: the capture. Every sequence is validated before any stage reads it, and gets a first
# QC page: the camera rig, a contact sheet of the views with landmarks, the microphone.


rule validate_capture:
    input:
        **CAPTURE_INPUTS,
    output:
        "results/capture/{subject}/{sequence}/capture.json",
    log:
        "logs/capture/{subject}/{sequence}/validate.log",
    conda:
        "../../envs/talkhead.yaml"
    params:
        fps=FPS_PARAM,
    script:
        "../scripts/validate_capture.py"


rule plot_capture:
    input:
        **CAPTURE_INPUTS,
        summary="results/capture/{subject}/{sequence}/capture.json",
    output:
        rig=report(
            "results/capture/{subject}/{sequence}/rig.png",
            caption="../report/rig.rst",
            category="01. Capture",
            subcategory="{subject} / {sequence}",
            labels={"subject": "{subject}", "sequence": "{sequence}", "figure": "camera rig"},
        ),
        contact_sheet=report(
            "results/capture/{subject}/{sequence}/contact_sheet.png",
            caption="../report/contact_sheet.rst",
            category="01. Capture",
            subcategory="{subject} / {sequence}",
            labels={"subject": "{subject}", "sequence": "{sequence}", "figure": "contact sheet"},
        ),
        audio=report(
            "results/capture/{subject}/{sequence}/microphone.png",
            caption="../report/microphone.rst",
            category="01. Capture",
            subcategory="{subject} / {sequence}",
            labels={"subject": "{subject}", "sequence": "{sequence}", "figure": "microphone"},
        ),
    log:
        "logs/capture/{subject}/{sequence}/qc.log",
    conda:
        "../../envs/talkhead.yaml"
    params:
        fps=FPS_PARAM,
        qc=config["report"],
    script:
        "../scripts/plot_capture.py"
