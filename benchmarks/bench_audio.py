"""SI-SDR of the audio stage on the synthetic studio's microphone, without rendering video.

    PYTHONPATH=src python benchmarks/bench_audio.py [--subjects 3] [--sequences 2] [--seed 0]
        [--first-subject 0] [--config FILE] [--set audio.denoise.prop_decrease=1.0]

For each synthetic sequence (``syn<k>/SEN-<q>``, the studio's master seed ``--seed``), SI-SDR
(dB) of the raw microphone and of the cleaned audio (talkhead.audio.prepare with the config's
``audio`` section) against two references: the microphone's noise-free speech (the same room
reverb, low-pass and level, no noise: what evaluation.json's ``si_sdr_*`` use, the denoising
figure) and the dry speech before the microphone (``dry_si_sdr_*``; the room reverb and the
low-pass, which no denoiser undoes, bound it: "ceiling" is the noise-free microphone speech
against the dry speech). Prints a Markdown table.

Measured with the default config (synthetic.mic_snr_db 5, audio.denoise stationary,
prop_decrease 1.0, n_std_thresh_stationary 1.5, profile from the quietest 0.25 s; the 80 Hz
high-pass; 2 s clips), ``--subjects 3 --sequences 2``:

TABLE

The denoiser's settings were chosen on other seeds (``--seed 1`` and ``--seed 2``, 6 sequences
each):

TUNING
"""

from __future__ import annotations

import argparse

import numpy as np
import yaml

from talkhead.audio.prepare import prepare_audio
from talkhead.evaluation.audio import si_sdr_db
from talkhead.synth.studio import sequence_audio_parts
from talkhead.workflow_config import load_config_files


def _override(pairs: list[str]) -> dict:
    """``section.key=value`` pairs (values parsed as YAML) -> a nested mapping."""
    out: dict = {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        *path, last = key.split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
        node[last] = yaml.safe_load(value)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=3)
    ap.add_argument("--sequences", type=int, default=2)
    ap.add_argument("--first-subject", type=int, default=0)
    ap.add_argument("--seed", type=int, default=None, help="synthetic.seed (default: config's)")
    ap.add_argument("--config", action="append", default=[], help="--configfile-like overrides")
    ap.add_argument("--set", action="append", default=[], help="key=value, e.g. audio.gain_db=20")
    args = ap.parse_args()
    extra = _override(args.set)
    if args.seed is not None:
        extra.setdefault("synthetic", {})["seed"] = args.seed
    files = ["config/config.yaml", *args.config]
    if extra:
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            yaml.safe_dump(extra, f)
        files.append(f.name)
    cfg = load_config_files(files)
    syn = cfg.synthetic
    print(
        f"seed {syn.seed}, mic_snr_db {syn.mic_snr_db:g}, denoise "
        f"{'stationary' if cfg.audio.denoise.stationary else 'non-stationary'} "
        f"prop_decrease {cfg.audio.denoise.prop_decrease:g}\n"
    )
    print(
        "| sequence | raw dB | cleaned dB | gain dB | dry: raw dB | dry: cleaned dB | "
        "dry: gain dB | dry: ceiling dB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    gains, dry_gains = [], []
    for s in range(args.first_subject, args.first_subject + args.subjects):
        for q in range(args.sequences):
            subject, sequence = f"syn{s:03d}", f"SEN-{q:02d}"
            parts = sequence_audio_parts(syn, subject, sequence)
            recorded, clean, mic = parts["recorded"], parts["clean"], parts["mic_speech"]
            out = prepare_audio(recorded, syn.sample_rate, cfg.audio, subject).audio
            out = out[: clean.size].astype(np.float64)
            raw_db, cleaned_db = si_sdr_db(recorded, mic), si_sdr_db(out, mic)
            draw_db, dcleaned_db = si_sdr_db(recorded, clean), si_sdr_db(out, clean)
            gains.append(cleaned_db - raw_db)
            dry_gains.append(dcleaned_db - draw_db)
            print(
                f"| {subject}/{sequence} | {raw_db:.2f} | {cleaned_db:.2f} | "
                f"{cleaned_db - raw_db:+.2f} | {draw_db:.2f} | {dcleaned_db:.2f} | "
                f"{dcleaned_db - draw_db:+.2f} | {si_sdr_db(mic, clean):.2f} |"
            )
    print(
        f"\ngain against the noise-free microphone speech: mean {np.mean(gains):+.2f} dB, "
        f"min {np.min(gains):+.2f} dB; against the dry speech: mean {np.mean(dry_gains):+.2f} "
        f"dB, min {np.min(dry_gains):+.2f} dB ({len(gains)} sequences)"
    )


if __name__ == "__main__":
    main()
