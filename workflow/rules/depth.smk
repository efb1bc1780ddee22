# Stage 3: per camera per frame depth + normal maps (+ confidence), one format whatever the
# backend (torch multi-view stereo, COLMAP PatchMatch, or depth shipped with the capture).


rule estimate_depth:
    input:
        **CAPTURE_INPUTS,
        summary="results/capture/{subject}/{sequence}/capture.json",
    output:
        frames=directory("results/depth/{subject}/{sequence}/frames"),
        metrics="results/depth/{subject}/{sequence}/metrics.json",
        # Wall-clock figures: they differ on every run, so nothing reads them.
        timing="results/depth/{subject}/{sequence}/timing.json",
    log:
        "logs/depth/{subject}/{sequence}.log",
    benchmark:
        "benchmarks/snakemake/estimate_depth/{subject}/{sequence}.tsv"
    # On the longest chain (depth, points, FLAME, NPHM): scheduled before side jobs.
    priority: 3
    conda:
        "../../envs/talkhead.yaml"
    # One thread: the plane sweep gains a third from a second thread (benchmarks/bench_depth.py),
    # so two cores do more as two jobs (or depth beside the NPHM training); one long sequence
    # on a big machine: --set-threads estimate_depth=N (the SLURM profile gives 8).
    threads: 1
    resources:
        mem_mb=8000,
        gpu=0,
    params:
        fps=FPS_PARAM,
        depth=config["depth"],
        face_mask=config["face_mask"],
        floors=config["qc"],
    script:
        "../scripts/estimate_depth.py"


rule plot_depth:
    input:
        **CAPTURE_INPUTS,
        frames="results/depth/{subject}/{sequence}/frames",
        metrics="results/depth/{subject}/{sequence}/metrics.json",
    output:
        maps=report(
            "results/depth/{subject}/{sequence}/depth_maps.png",
            caption="../report/depth_maps.rst",
            category="02. Depth",
            subcategory="{subject} / {sequence}",
            labels={
                "subject": "{subject}",
                "sequence": "{sequence}",
                "figure": "depth and normals",
            },
        ),
    log:
        "logs/depth/{subject}/{sequence}.qc.log",
    conda:
        "../../envs/talkhead.yaml"
    params:
        fps=FPS_PARAM,
        qc=config["report"],
    script:
        "../scripts/plot_depth.py"
