# Stage 8b: audio features of the cleaned audio with exactly one row per video frame (T from
# the capture summary): MeshTalk's log-mel spectrogram, and wav2vec2 hidden states when
# audio_features.wav2vec2_model names a local model directory.


rule audio_features:
    input:
        audio="results/audio/{subject}/{sequence}/cleaned_audio.wav",
        summary="results/capture/{subject}/{sequence}/capture.json",
    output:
        features=directory("results/audio/{subject}/{sequence}/features"),
    log:
        "logs/audio/{subject}/{sequence}/features.log",
    benchmark:
        "benchmarks/snakemake/audio_features/{subject}/{sequence}.tsv"
    conda:
        "../../envs/talkhead.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    params:
        features=config["audio_features"],
    script:
        "../scripts/audio_features.py"
