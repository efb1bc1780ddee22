# Stage 4: masked back-projection (depth in (min, max] and the facial mask) to per-frame world
# point clouds with normals, and 2D landmarks lifted to 3D and fused across views.


rule backproject_points:
    input:
        **CAPTURE_INPUTS,
        summary="results/capture/{subject}/{sequence}/capture.json",
        frames="results/depth/{subject}/{sequence}/frames",
    output:
        points="results/points/{subject}/{sequence}/points.npz",
        metrics="results/points/{subject}/{sequence}/metrics.json",
    log:
        "logs/points/{subject}/{sequence}.log",
    benchmark:
        "benchmarks/snakemake/backproject_points/{subject}/{sequence}.tsv"
    # On the longest chain (depth, points, FLAME, NPHM): scheduled before side jobs.
    priority: 3
    conda:
        "../../envs/talkhead.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    params:
        fps=FPS_PARAM,
        backproject=config["backproject"],
        face_mask=config["face_mask"],
        floors=config["qc"],
    script:
        "../scripts/backproject_points.py"


rule plot_points:
    input:
        points="results/points/{subject}/{sequence}/points.npz",
        metrics="results/points/{subject}/{sequence}/metrics.json",
    output:
        report(
            "results/points/{subject}/{sequence}/points.png",
            caption="../report/points.rst",
            category="03. Back-projection",
            subcategory="{subject} / {sequence}",
            labels={"subject": "{subject}", "sequence": "{sequence}", "figure": "fused points"},
        ),
    log:
        "logs/points/{subject}/{sequence}.qc.log",
    conda:
        "../../envs/talkhead.yaml"
    script:
        "../scripts/plot_points.py"
