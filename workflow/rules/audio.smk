# Stage 8: each sequence's microphone -> results/audio/<subject>/<sequence>/cleaned_audio.wav
# (16 kHz mono, +20 dB without clipping, denoised; FaceTalk supplement, section D) and its
# metrics.json; a before/after figure for the report.


rule prepare_audio:
    input:
        **CAPTURE_INPUTS,
    output:
        audio="results/audio/{subject}/{sequence}/cleaned_audio.wav",
        metrics="results/audio/{subject}/{sequence}/metrics.json",
    log:
        "logs/audio/{subject}/{sequence}.log",
    benchmark:
        "benchmarks/snakemake/prepare_audio/{subject}/{sequence}.tsv"
    conda:
        "../../envs/talkhead.yaml"
    params:
        fps=FPS_PARAM,
        audio=config["audio"],
    script:
        "../scripts/prepare_audio.py"


rule plot_audio:
    input:
        **CAPTURE_INPUTS,
        cleaned="results/audio/{subject}/{sequence}/cleaned_audio.wav",
    output:
        report(
            "results/audio/{subject}/{sequence}/before_after.png",
            caption="../report/audio_before_after.rst",
            category="06. Audio",
            subcategory="{subject} / {sequence}",
            labels={"subject": "{subject}", "sequence": "{sequence}", "figure": "audio"},
        ),
    log:
        "logs/audio/{subject}/{sequence}.qc.log",
    conda:
        "../../envs/talkhead.yaml"
    params:
        fps=FPS_PARAM,
    script:
        "../scripts/plot_audio.py"
