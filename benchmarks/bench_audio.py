"""SI-SDR of the audio stage on the synthetic studio's microphone, without rendering video.

    PYTHONPATH=src python benchmarks/bench_audio.py [--subjects 3] [--sequences 2] [--config FILE]

For each synthetic sequence: SI-SDR (dB) against the clean speech of the raw microphone, of the
cleaned audio (talkhead.audio.prepare with the config's ``audio`` section), their difference,
and the ceiling a denoiser cannot pass: the microphone's speech without its noise (room reverb
and the microphone's low-pass stay in it). Prints a Markdown table.
"""

from __future__ import annotations

import argparse

import numpy as np

from talkhead.audio.prepare import prepare_audio
from talkhead.evaluation.audio import si_sdr_db
from talkhead.synth.speech import microphone_parts
from talkhead.synth.studio import sequence_audio, stable_seed
from talkhead.workflow_config import load_config_files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=3)
    ap.add_argument("--sequences", type=int, default=2)
    ap.add_argument("--config", action="append", default=[], help="--configfile-like overrides")
    args = ap.parse_args()
    cfg = load_config_files(["config/config.yaml", *args.config])
    syn = cfg.synthetic
    print("| sequence | raw dB | cleaned dB | gain dB | ceiling dB |")
    print("|---|---|---|---|---|")
    gains = []
    for s in range(args.subjects):
        for q in range(args.sequences):
            subject, sequence = f"syn{s:03d}", f"SEN-{q:02d}"
            recorded, clean = sequence_audio(syn, subject, sequence)
            rng = np.random.default_rng(stable_seed(syn.seed, subject, sequence, "microphone"))
            parts = microphone_parts(clean, syn.sample_rate, rng, syn.mic_level_db, syn.mic_snr_db)
            out = prepare_audio(recorded, syn.sample_rate, cfg.audio, subject).audio
            raw_db, cleaned_db = si_sdr_db(recorded, clean), si_sdr_db(out[: clean.size], clean)
            gains.append(cleaned_db - raw_db)
            print(
                f"| {subject}/{sequence} | {raw_db:.2f} | {cleaned_db:.2f} | "
                f"{cleaned_db - raw_db:+.2f} | {si_sdr_db(parts['speech'], clean):.2f} |"
            )
    print(f"\nmean gain {np.mean(gains):+.2f} dB over {len(gains)} sequences")


if __name__ == "__main__":
    main()
