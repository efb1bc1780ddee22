# Stages 5-6: the FLAME template aligned to the 3D landmarks (similarity), then FLAME fitted to
# the whole sequence (landmarks, points and normals, regularisers, temporal smoothness).


rule align_flame:
    input:
        **HEAD_MODEL_FILES,
        points="results/points/{subject}/{sequence}/points.npz",
    output:
        alignment="results/flame/{subject}/{sequence}/alignment.json",
    log:
        "logs/flame/{subject}/{sequence}.align.log",
    # On the longest chain (depth, points, FLAME, NPHM): scheduled before side jobs.
    priority: 3
    conda:
        "../../envs/talkhead.yaml"
    params:
        align=config["align_flame"],
    script:
        "../scripts/align_flame.py"


rule fit_flame:
    input:
        **HEAD_MODEL_FILES,
        points="results/points/{subject}/{sequence}/points.npz",
        alignment="results/flame/{subject}/{sequence}/alignment.json",
    output:
        params="results/flame/{subject}/{sequence}/flame.npz",
        template="results/flame/{subject}/{sequence}/template.ply",
        meshes=directory("results/flame/{subject}/{sequence}/flame_meshes"),
        metrics="results/flame/{subject}/{sequence}/metrics.json",
        # Wall-clock figures: they differ on every run, so nothing reads them.
        timing="results/flame/{subject}/{sequence}/timing.json",
        fit_log="results/flame/{subject}/{sequence}/fit_log.csv",
        residuals="results/flame/{subject}/{sequence}/frame_residuals.csv",
    log:
        "logs/flame/{subject}/{sequence}.fit.log",
    benchmark:
        "benchmarks/snakemake/fit_flame/{subject}/{sequence}.tsv"
    # On the longest chain (depth, points, FLAME, NPHM): scheduled before side jobs.
    priority: 2
    conda:
        "../../envs/talkhead.yaml"
    # One thread: the fit's tensors are small, and two fits (with and without smoothing) then
    # run side by side on two cores; --set-threads fit_flame=N gives it more.
    threads: 1
    resources:
        mem_mb=4000,
        gpu=0,
    params:
        fit=config["fit_flame"],
        fps=FPS_PARAM,
        floors=config["qc"],
    script:
        "../scripts/fit_flame.py"


# The same fit without temporal smoothing (lambda_smooth 0), for the report's jitter
# comparison (FaceTalk supplement Table 2); turned on by fit_flame.compare_unsmoothed.
rule fit_flame_unsmoothed:
    input:
        **HEAD_MODEL_FILES,
        points="results/points/{subject}/{sequence}/points.npz",
        alignment="results/flame/{subject}/{sequence}/alignment.json",
    output:
        params="results/flame/{subject}/{sequence}/unsmoothed/flame.npz",
        template=temp("results/flame/{subject}/{sequence}/unsmoothed/template.ply"),
        meshes=temp(directory("results/flame/{subject}/{sequence}/unsmoothed/flame_meshes")),
        metrics="results/flame/{subject}/{sequence}/unsmoothed/metrics.json",
        timing="results/flame/{subject}/{sequence}/unsmoothed/timing.json",
        fit_log="results/flame/{subject}/{sequence}/unsmoothed/fit_log.csv",
        residuals="results/flame/{subject}/{sequence}/unsmoothed/frame_residuals.csv",
    log:
        "logs/flame/{subject}/{sequence}.fit_unsmoothed.log",
    benchmark:
        "benchmarks/snakemake/fit_flame_unsmoothed/{subject}/{sequence}.tsv"
    conda:
        "../../envs/talkhead.yaml"
    # One thread: the fit's tensors are small, and two fits (with and without smoothing) then
    # run side by side on two cores; --set-threads fit_flame=N gives it more.
    threads: 1
    resources:
        mem_mb=4000,
        gpu=0,
    params:
        fit=config["fit_flame"],
        fps=FPS_PARAM,
        overrides={"lambda_smooth": 0.0},
        floors=config["qc"],
    script:
        "../scripts/fit_flame.py"


rule plot_flame:
    input:
        **CAPTURE_INPUTS,
        **HEAD_MODEL_FILES,
        points="results/points/{subject}/{sequence}/points.npz",
        params="results/flame/{subject}/{sequence}/flame.npz",
        fit_log="results/flame/{subject}/{sequence}/fit_log.csv",
    output:
        losses=report(
            "results/flame/{subject}/{sequence}/fit_losses.png",
            caption="../report/flame_losses.rst",
            category="04. FLAME",
            subcategory="{subject} / {sequence}",
            labels={"subject": "{subject}", "sequence": "{sequence}", "figure": "fit losses"},
        ),
        overlay=report(
            "results/flame/{subject}/{sequence}/fit_overlay.png",
            caption="../report/flame_overlay.rst",
            category="04. FLAME",
            subcategory="{subject} / {sequence}",
            labels={"subject": "{subject}", "sequence": "{sequence}", "figure": "fitted mesh"},
        ),
    log:
        "logs/flame/{subject}/{sequence}.qc.log",
    conda:
        "../../envs/talkhead.yaml"
    params:
        fps=FPS_PARAM,
        qc=config["report"],
    script:
        "../scripts/plot_flame.py"
