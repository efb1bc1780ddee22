# Stage 3: masked back-projection (depth in (min, max] and the facial segmentation) to per-frame
# world point clouds with normals, and 2D landmarks lifted to 3D and fused across views.


rule backproject:
    input:
        **CAPTURE_INPUTS,
        summary="results/capture/{subject}/{sequence}/capture.json",
        frames="results/depth/{subject}/{sequence}/frames",
        ground_truth=GT_SEQUENCE_DIR,
    output:
        points="results/points/{subject}/{sequence}/points.npz",
        metrics="results/points/{subject}/{sequence}/metrics.json",
    params:
        root=lambda wc: CAPTURE_ROOT,
        fps=FPS_PARAM,
        backproject=config["backproject"],
    threads: 2
    resources:
        mem_mb=4000,
    log:
        "logs/backproject/{subject}/{sequence}.log",
    benchmark:
        "benchmarks/snakemake/backproject/{subject}/{sequence}.tsv"
    conda:
        "../../envs/talkhead.yaml"
    script:
        "../scripts/backproject.py"


rule qc_points:
    input:
        points="results/points/{subject}/{sequence}/points.npz",
        metrics="results/points/{subject}/{sequence}/metrics.json",
    output:
        report(
            "results/points/{subject}/{sequence}/points.png",
            caption="../report/points.rst",
            category="3. Back-projection",
            subcategory="{subject} / {sequence}",
            labels={"subject": "{subject}", "sequence": "{sequence}", "figure": "fused points"},
        ),
    params:
        qc=config["report"],
    log:
        "logs/backproject/{subject}/{sequence}.qc.log",
    conda:
        "../../envs/talkhead.yaml"
    script:
        "../scripts/qc_points.py"
