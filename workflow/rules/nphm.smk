# Stage 7: the neural parametric head model. Trained once on the head model's family (identities
# and expressions drawn from its shape and expression spaces) into resources/nphm/; per subject
# an identity code fitted to its sequences; per sequence an expression code per frame, fitted
# to the points in the head's rest frame (the FLAME fit's head pose undone) with a temporal
# Huber loss, and meshes by marching cubes (FaceTalk's nphm_expressions/ and nphm_meshes/).


rule train_nphm:
    input:
        **HEAD_MODEL_FILES,
    output:
        model=f"{NPHM_DIR}/model.pt",
        log_csv=f"{NPHM_DIR}/training_log.csv",
        metrics=f"{NPHM_DIR}/metrics.json",
        # Wall-clock figures: they differ on every run, so nothing reads them.
        timing=f"{NPHM_DIR}/timing.json",
    log:
        "logs/nphm/train.log",
    benchmark:
        "benchmarks/snakemake/train_nphm/train.tsv"
    # Before the side jobs: on two cores it trains beside the depth stage (priority 3), while the
    # FLAME fit (priority 2), which the NPHM fits also wait for, is not ready yet.
    priority: 2
    conda:
        "../../envs/talkhead.yaml"
    # One thread: beside the depth stage on two cores; --set-threads train_nphm=N (or the SLURM
    # profile) gives it more.
    threads: 1
    resources:
        mem_mb=6000,
        gpu=0,
    params:
        nphm=config["nphm"],
        fit=config["fit_nphm"],
    script:
        "../scripts/train_nphm.py"


rule plot_nphm_training:
    input:
        log_csv=f"{NPHM_DIR}/training_log.csv",
        metrics=f"{NPHM_DIR}/metrics.json",
    output:
        losses=report(
            f"{NPHM_DIR}/training_losses.png",
            caption="../report/nphm_training.rst",
            category="05. NPHM",
            subcategory="head model",
            labels={"figure": "training losses"},
        ),
    log:
        "logs/nphm/plot_training.log",
    conda:
        "../../envs/talkhead.yaml"
    script:
        "../scripts/plot_nphm_training.py"


rule fit_nphm_identity:
    input:
        unpack(subject_sequence_inputs),
        **HEAD_MODEL_FILES,
        model=f"{NPHM_DIR}/model.pt",
    output:
        identity="results/nphm/{subject}/identity.npz",
    log:
        "logs/nphm/{subject}/identity.log",
    # On the longest chain (depth, points, FLAME, NPHM): scheduled before side jobs.
    priority: 1
    conda:
        "../../envs/talkhead.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        gpu=0,
    params:
        fit=config["fit_nphm"],
    script:
        "../scripts/fit_nphm_identity.py"


rule fit_nphm:
    input:
        **HEAD_MODEL_FILES,
        points="results/points/{subject}/{sequence}/points.npz",
        flame="results/flame/{subject}/{sequence}/flame.npz",
        identity="results/nphm/{subject}/identity.npz",
        model=f"{NPHM_DIR}/model.pt",
    output:
        codes=f"{NPHM_SEQ}/codes.npz",
        expressions=directory(f"{NPHM_SEQ}/nphm_expressions"),
        meshes=directory(f"{NPHM_SEQ}/nphm_meshes"),
        metrics=f"{NPHM_SEQ}/metrics.json",
        # Wall-clock figures: they differ on every run, so nothing reads them.
        timing=f"{NPHM_SEQ}/timing.json",
        fit_log=f"{NPHM_SEQ}/fit_log.csv",
        residuals=f"{NPHM_SEQ}/frame_residuals.csv",
    log:
        "logs/nphm/{subject}/{sequence}.fit.log",
    benchmark:
        "benchmarks/snakemake/fit_nphm/{subject}/{sequence}.tsv"
    # On the longest chain (depth, points, FLAME, NPHM): scheduled before side jobs.
    priority: 1
    conda:
        "../../envs/talkhead.yaml"
    # One thread: the fits with and without the temporal loss run side by side on two cores.
    threads: 1
    resources:
        mem_mb=4000,
        gpu=0,
    params:
        fit=config["fit_nphm"],
    script:
        "../scripts/fit_nphm.py"


# The same fit without the temporal Huber loss (FaceTalk supplement Table 2).
rule fit_nphm_without_temporal:
    input:
        **HEAD_MODEL_FILES,
        points="results/points/{subject}/{sequence}/points.npz",
        flame="results/flame/{subject}/{sequence}/flame.npz",
        identity="results/nphm/{subject}/identity.npz",
        model=f"{NPHM_DIR}/model.pt",
    output:
        codes=f"{NPHM_SEQ}/unsmoothed/codes.npz",
        expressions=temp(directory(f"{NPHM_SEQ}/unsmoothed/nphm_expressions")),
        meshes=directory(f"{NPHM_SEQ}/unsmoothed/nphm_meshes"),
        metrics=f"{NPHM_SEQ}/unsmoothed/metrics.json",
        timing=f"{NPHM_SEQ}/unsmoothed/timing.json",
        fit_log=f"{NPHM_SEQ}/unsmoothed/fit_log.csv",
        residuals=f"{NPHM_SEQ}/unsmoothed/frame_residuals.csv",
    log:
        "logs/nphm/{subject}/{sequence}.fit_without_temporal.log",
    benchmark:
        "benchmarks/snakemake/fit_nphm_without_temporal/{subject}/{sequence}.tsv"
    # On the longest chain (depth, points, FLAME, NPHM): scheduled before side jobs.
    priority: 1
    conda:
        "../../envs/talkhead.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        gpu=0,
    params:
        fit=config["fit_nphm"],
        overrides={"temporal": 0.0},
    script:
        "../scripts/fit_nphm.py"


rule plot_nphm:
    input:
        unpack(plot_nphm_inputs),
    output:
        meshes=_nphm_report("meshes.png", "nphm_meshes.rst", "decoded meshes"),
        chamfer=_nphm_report("chamfer_frames.png", "nphm_chamfer.rst", "chamfer per frame"),
        autocorrelation=_nphm_report(
            "autocorrelation.png", "nphm_autocorrelation.rst", "code autocorrelation"
        ),
        losses=_nphm_report("fit_losses.png", "nphm_losses.rst", "fit losses"),
        table2=_nphm_report("table2.html", "nphm_table2.rst", "Table 2"),
    log:
        "logs/nphm/{subject}/{sequence}.qc.log",
    conda:
        "../../envs/talkhead.yaml"
    params:
        qc=config["report"],
        chamfer_target_mm=1.5,
    script:
        "../scripts/plot_nphm.py"
