"""Audio features of one sequence, one row per video frame (T and fps from capture.json)."""

import _bootstrap

from talkhead.audio.features_stage import run_audio_features_stage
from talkhead.io import load_json
from talkhead.logs import log_to

with log_to(snakemake.log[0]):
    import torch

    torch.set_num_threads(snakemake.threads)
    summary = load_json(snakemake.input.summary)
    run_audio_features_stage(
        snakemake.input.audio,
        int(summary["n_frames"]),
        float(summary["fps"]),
        snakemake.output.features,
        snakemake.params.features,
    )
