# Stage 12 (report pages): the FaceTalk supplement's Tables 1-3 with our figures beside the
# paper's, from the evaluation files (results/evaluation/table{1,2,3}.html, talkhead.qc.tables).
# Table 1: the models of models.train; Table 3: the injection variants (models
# facetalk_<variant>); Table 2: the FLAME fits (with ground truth) and, where the run defines
# NPHM_EVALUATIONS (the NPHM stage's evaluation files), the NPHM fits.

EVALUATION_DIR = "results/evaluation"
# Table 1: the trained models (models.train); Table 3: the injection variants' models
# facetalk_<variant> (models.injection_variants), and FaceTalk itself in the row of its own
# injection (models.facetalk.variant) when that variant is not trained apart; the page says
# which config trains the rest; neither without audio.
TABLE1_MODELS = list(TRAINED_MODELS)
TABLE3_VARIANTS = list(config["models"].get("injection_variants", [])) if AUDIO_PAIRS else []
TABLE3_OWN = (
    config["models"]["facetalk"]["variant"]
    if "facetalk" in TRAINED_MODELS
    and config["models"]["facetalk"]["variant"] not in TABLE3_VARIANTS
    else None
)
# Table 2: the FLAME fits' evaluation files (with ground truth), and the NPHM fits' where the
# run defines NPHM_EVALUATIONS before this file (paths, or patterns over {subject} and
# {sequence}); without it (no NPHM stage) the table has FLAME rows only.
TABLE2_FLAME = (
    per_sequence("results/flame/{subject}/{sequence}/evaluation.json") if HAS_GROUND_TRUTH else []
)
TABLE2_NPHM = (
    None
    if globals().get("NPHM_EVALUATIONS") is None
    else [
        path
        for item in NPHM_EVALUATIONS
        for path in (per_sequence(item) if "{" in item else [item])
    ]
)
REPORT_TABLE_TARGETS = (
    ([f"{EVALUATION_DIR}/table1.html"] if TABLE1_MODELS else [])
    + ([f"{EVALUATION_DIR}/table2.html"] if TABLE2_FLAME or TABLE2_NPHM else [])
    + ([f"{EVALUATION_DIR}/table3.html"] if AUDIO_PAIRS else [])
)


rule report_table1:
    input:
        [f"{MODELS_DIR}/{m}/evaluation.json" for m in TABLE1_MODELS],
    output:
        table=report(
            f"{EVALUATION_DIR}/table1.html",
            caption="../report/table1.rst",
            category="09. Evaluation",
            labels={"table": "1: methods x metrics"},
        ),
    log:
        "logs/report/table1.log",
    localrule: True
    conda:
        "../../envs/talkhead.yaml"
    params:
        models=TABLE1_MODELS,
    script:
        "../scripts/report_table1.py"


rule report_table2:
    input:
        flame=TABLE2_FLAME,
        nphm=TABLE2_NPHM or [],
    output:
        table=report(
            f"{EVALUATION_DIR}/table2.html",
            caption="../report/table2.rst",
            category="09. Evaluation",
            labels={"table": "2: fitting jitter"},
        ),
    log:
        "logs/report/table2.log",
    localrule: True
    conda:
        "../../envs/talkhead.yaml"
    params:
        has_nphm=TABLE2_NPHM is not None,
    script:
        "../scripts/report_table2.py"


rule report_table3:
    input:
        variants=[f"{MODELS_DIR}/facetalk_{v}/evaluation.json" for v in TABLE3_VARIANTS],
        facetalk=[f"{MODELS_DIR}/facetalk/evaluation.json"] if TABLE3_OWN else [],
    output:
        table=report(
            f"{EVALUATION_DIR}/table3.html",
            caption="../report/table3.rst",
            category="09. Evaluation",
            labels={"table": "3: timestep injection"},
        ),
    log:
        "logs/report/table3.log",
    localrule: True
    conda:
        "../../envs/talkhead.yaml"
    params:
        variants=TABLE3_VARIANTS,
        own=TABLE3_OWN,
    script:
        "../scripts/report_table3.py"
