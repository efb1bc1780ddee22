# Stage 2: per camera per frame depth + normal maps (+ confidence), one format whatever the
# backend (torch multi-view stereo, COLMAP PatchMatch, or depth shipped with the capture).


rule depth:
    input:
        **CAPTURE_INPUTS,
        summary="results/capture/{subject}/{sequence}/capture.json",
        ground_truth=GT_SEQUENCE_DIR,
    output:
        frames=directory("results/depth/{subject}/{sequence}/frames"),
        metrics="results/depth/{subject}/{sequence}/metrics.json",
    params:
        root=lambda wc: CAPTURE_ROOT,
        fps=FPS_PARAM,
        depth=config["depth"],
        backproject=config["backproject"],
    threads: 8
    resources:
        mem_mb=8000,
        gpu=0,
    log:
        "logs/depth/{subject}/{sequence}.log",
    benchmark:
        "benchmarks/snakemake/depth/{subject}/{sequence}.tsv"
    conda:
        "../../envs/talkhead.yaml"
    script:
        "../scripts/depth.py"


rule qc_depth:
    input:
        **CAPTURE_INPUTS,
        frames="results/depth/{subject}/{sequence}/frames",
        metrics="results/depth/{subject}/{sequence}/metrics.json",
        ground_truth=GT_SEQUENCE_DIR,
    output:
        maps=report(
            "results/depth/{subject}/{sequence}/depth_maps.png",
            caption="../report/depth_maps.rst",
            category="2. Depth",
            subcategory="{subject} / {sequence}",
            labels={"subject": "{subject}", "sequence": "{sequence}", "figure": "depth and normals"},
        ),
        errors=report(
            "results/depth/{subject}/{sequence}/depth_errors.png",
            caption="../report/depth_errors.rst",
            category="2. Depth",
            subcategory="{subject} / {sequence}",
            labels={"subject": "{subject}", "sequence": "{sequence}", "figure": "depth error"},
        ),
    params:
        root=lambda wc: CAPTURE_ROOT,
        fps=FPS_PARAM,
        backproject=config["backproject"],
        qc=config["report"],
    log:
        "logs/depth/{subject}/{sequence}.qc.log",
    conda:
        "../../envs/talkhead.yaml"
    script:
        "../scripts/qc_depth.py"
