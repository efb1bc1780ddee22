"""The ``talkhead`` command line.

    talkhead inspect-model PATH [--landmarks FILE] [--masks FILE] [--json]
    talkhead validate-capture ROOT [--subject S [--sequence Q]] [--layout L]
    talkhead config-schema [--write PATH]
    talkhead check-config [FILE ...]
    talkhead clean-audio IN OUT [--gain-db DB] [--config FILE] [--video-duration S]
    talkhead animate --checkpoint C --audio SPEECH --out DIR [--samples K] [--fps F]
        [--nphm-model M --nphm-identity I [--mesh-every N]]
    talkhead evaluate --checkpoint C --data DIR --out F [--samples K] [--syncnet-weights W]

Heavy imports happen inside the subcommands so that ``talkhead --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence

from . import __version__
from .errors import TalkheadError

#: What ``check-config`` checks without arguments (relative to the current directory).
DEFAULT_CONFIG = "config/config.yaml"


def _inspect_model(args: argparse.Namespace) -> int:
    from .flame.model import describe_model, format_description, load_flame_model

    model = load_flame_model(args.path, landmarks_path=args.landmarks, masks_path=args.masks)
    description = describe_model(model)
    if args.json:
        print(json.dumps({"path": str(args.path), **description}, indent=2))
    else:
        print(f"{'path':>12}: {args.path}")
        print(format_description(description))
    return 0


def _validate_capture(args: argparse.Namespace) -> int:
    from .capture.validate import validate_main

    return validate_main(
        args.root, subject=args.subject, sequence=args.sequence, layout_name=args.layout
    )


def _config_schema(args: argparse.Namespace) -> int:
    from .workflow_config import workflow_schema_text, write_workflow_schema

    if args.write:
        print(write_workflow_schema(args.write))
    else:
        sys.stdout.write(workflow_schema_text())
    return 0


def _print_error(exc: Exception, context: str = "") -> None:
    """An error on stderr, one problem a line, every line ``talkhead: error: <context><problem>``
    (a config check lists all its problems in one error, a line each)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [repr(exc)]
    for line in lines:
        print(f"talkhead: error: {context}{line}", file=sys.stderr)


def _check_config(args: argparse.Namespace) -> int:
    from .errors import ConfigError
    from .workflow_config import load_config_files

    files = args.files or [DEFAULT_CONFIG]
    cfg = load_config_files(files)
    if cfg.capture.source == "nersemble":
        from .samples import read_sample_sheet

        try:
            rows = read_sample_sheet(cfg.samples)
        except ConfigError as exc:
            _print_error(exc, "invalid sample sheet (config key: samples): ")
            return 2
        print(f"config ok: {' + '.join(files)}; sample sheet {cfg.samples}: {len(rows)} rows")
        return 0
    print(f"config ok: {' + '.join(files)}")
    return 0


def _export_capture(args: argparse.Namespace) -> int:
    """Write one sequence of a talkhead tree in a published NeRSemble layout; exit 1 on errors."""
    from pathlib import Path

    from .capture import export, layouts
    from .capture import layout as tree
    from .capture.sequence import open_sequence

    try:
        found = layouts.detect_layout(args.root, args.subject, args.sequence)
        if found != "talkhead":
            raise TalkheadError(
                f"{tree.sequence_dir(args.root, args.subject, args.sequence)}: a {found} capture; "
                "export-capture reads talkhead trees (the synthetic capture, or an ingested one)"
            )
        seq = open_sequence(args.root, args.subject, args.sequence, validate=False)
        subject = args.as_subject or seq.subject
        out_seq = tree.sequence_dir(args.out, subject, seq.sequence)
        if out_seq.resolve() == seq.sequence_dir.resolve():
            raise TalkheadError(
                f"{out_seq}: exporting over the sequence itself; choose another OUT or --as-subject"
            )
        colour_choice = args.colour_matrices
        if colour_choice is None:
            colour_choice = "none" if args.layout == "nersemble_benchmark" else "example"
        if colour_choice == "example" and args.layout == "nersemble_benchmark":
            raise TalkheadError(
                "--colour-matrices example: the benchmark kit ships no colour calibration"
            )
        kwargs: dict = {"subject": subject}
        if args.layout != "nersemble_benchmark":
            colour = (
                export.example_colour_matrices(seq.serials) if colour_choice == "example" else None
            )
            kwargs["colour"] = colour
        n_own = sum(seq.background_path(s).is_file() for s in seq.serials)
        if args.layout == "nersemble_v2":
            kwargs["backgrounds"] = export.sequence_plates(seq)
        seq_dir = export.export_sequence(seq, args.out, args.layout, **kwargs)
        src = layouts.open_source(args.out, subject, seq.sequence, args.layout)
    except (TalkheadError, OSError) as exc:
        print(f"talkhead: error: {'; '.join(str(exc).splitlines())}", file=sys.stderr)
        return 1
    serials = list(src.serials)
    print(f"{seq_dir}: {args.layout}, from {seq.sequence_dir}")
    print(f"cameras: {len(serials)} ({src.calibration_path})")
    if src.is_video:
        print(f"frames: {seq.n_frames} at {seq.fps:g} fps, in the videos")
        mattes = [p for s in serials if (p := src.alpha_video_path(s)) is not None]
        folders = [f"{len(serials)} in {src.video_path(serials[0]).parent.name}/"]
        if mattes:
            folders.append(f"{len(mattes)} in {mattes[0].parent.name}/")
        print(
            f"videos: {len(serials) + len(mattes)} ({', '.join(folders)} of {src.sequence_dir}, "
            "cam_<serial>.mp4)"
        )
    else:
        mattes = ", with mattes" if src.alpha_path(src.frame_ids[0], serials[0]) else ""
        first = Path(src.image_path(src.frame_ids[0], serials[0]))
        print(
            f"frames: {len(src.frame_ids)} x {len(serials)} images{mattes} "
            f"({first.parent.parent.parent}/frame_<t>/{first.parent.name}/)"
        )
        print("videos: none (this layout ships image files)")
    plates = [p for s in serials if (p := src.background_path(s)) is not None]
    if plates:
        origin = "the sequence's own" if n_own == len(serials) else "estimated from the frames"
        print(f"plates: {len(plates)} ({origin}, {plates[0].parent}/)")
    else:
        print("plates: none")
    if seq.audio_path is not None:
        print(
            f"audio: none in this layout (a sample sheet's audio column can name {seq.audio_path})"
        )
    if src.colour:
        sources = sorted({str(c.source) for c in src.colour.values()})
        where = sources[0] if len(sources) == 1 else f"{Path(sources[0]).parent}/"
        print(f"colour: example matrices for {len(src.colour)} cameras ({where})")
    return 0


def _clean_audio(args: argparse.Namespace) -> int:
    from .audio.config import AudioConfig
    from .audio.stage import clean_audio_file
    from .config import from_mapping, to_mapping
    from .workflow_config import load_config_files

    cfg = load_config_files(args.config).audio if args.config else AudioConfig()
    if args.gain_db is not None:
        cfg = from_mapping(AudioConfig, {**to_mapping(cfg), "gain_db": args.gain_db}, "audio")
    done = clean_audio_file(args.input, args.output, cfg, video_duration_s=args.video_duration)
    m = done.metrics
    print(
        f"{args.output}: {m['duration_s']:.3f} s, {m['sample_rate']} Hz mono "
        f"{cfg.output_subtype}, from {args.input} ({m['channels_in']} ch, "
        f"{m['sample_rate_in']} Hz)"
    )
    print(
        f"peak {m['peak_dbfs_before']:.1f} -> {m['peak_dbfs_after']:.1f} dBFS, "
        f"RMS {m['rms_dbfs_before']:.1f} -> {m['rms_dbfs_after']:.1f} dBFS, "
        f"gain {m['gain_applied_db']:+.1f} dB ({cfg.gain_mode}; "
        f"{100 * m['would_clip_fraction']:.3f} % would have clipped)"
    )
    print(
        f"SNR estimate {m['snr_estimate_db_before']:.1f} -> {m['snr_estimate_db_after']:.1f} dB, "
        f"denoise {m['denoise']}"
    )
    return 0


def _animate(args: argparse.Namespace) -> int:
    from .training.animate import animate_file

    s = animate_file(
        args.checkpoint,
        args.audio,
        args.out,
        samples=args.samples,
        fps=args.fps,
        seed=args.seed,
        video=not args.no_video,
        device=args.device,
        nphm_model=args.nphm_model,
        nphm_identity=args.nphm_identity,
        mesh_every=args.mesh_every,
        mesh_resolution=args.mesh_resolution,
    )
    if not s["meshes"]:
        what = "codes only (NPHM codes: --nphm-model and --nphm-identity decode them to meshes)"
    else:
        # what was written: the mp4s only without --no-video
        meshes = "meshes"
        if s["mesh_frames"] < s["frames"]:
            meshes = f"meshes of {s['mesh_frames']} frames"
        mp4 = any(f.endswith(".mp4") for f in s["files"])
        what = f"{meshes}, codes and mp4" if mp4 else f"{meshes} and codes"
    print(
        f"{args.out}: {s['model']}, {s['samples']} sample(s) x {s['frames']} frames at "
        f"{s['fps']:g} fps ({s['seconds']:.2f} s of audio): {what}"
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .errors import DatasetError
    from .evaluation.models import evaluate_checkpoint
    from .io import save_json
    from .nphm.decoder import identities_by_subject

    out = Path(args.out)
    owned = Path(args.checkpoint).parent / "evaluation.json"
    if out.resolve() == owned.resolve():
        raise TalkheadError(
            f"{out}: the workflow's own evaluation.json of this checkpoint (its evaluate_model "
            "rule writes it); choose another --out"
        )
    data = Path(args.data)
    if not (data / "splits.json").is_file():
        raise DatasetError(
            f"{data / 'splits.json'}: missing: --data must be a packaged dataset folder "
            "(results/dataset: manifest.csv, splits.json, data/)"
        )
    if bool(args.nphm_model) != bool(args.nphm_fits):
        raise DatasetError(
            "--nphm-model and --nphm-fits go together: the NPHM that decodes the codes and "
            "the fitted identities (results/nphm) it decodes them with"
        )
    identities = None
    if args.nphm_fits:
        fits = Path(args.nphm_fits)
        identities = identities_by_subject(sorted(fits.glob("*/identity.npz")))
        if not identities:
            raise DatasetError(
                f"{fits}: no <subject>/identity.npz: --nphm-fits must be the NPHM stage's "
                "results folder (results/nphm)"
            )
    result = evaluate_checkpoint(
        args.checkpoint,
        data,
        nphm_model=args.nphm_model,
        nphm_identities=identities,
        flame_model=args.flame_model,
        flame_landmarks=args.landmarks,
        flame_masks=args.masks,
        samples=args.samples,
        max_lag=args.max_lag,
        syncnet_weights=args.syncnet_weights,
        seed=args.seed,
        split=args.split,
        device=args.device,
    )
    save_json(out, result)
    m = result["metrics"]

    def fmt(key: str) -> str:
        v = m[key]
        return "n/a" if v is None else f"{v:.4g}"

    print(
        f"{out}: {result['model']} ({result['label']}) on {len(result['sequences'])} "
        f"{result['split']} sequence(s), {result['samples']} sample(s): "
        f"LVE {fmt('lve_mm')} mm, FDD {fmt('fdd_mm')} mm, diversity {fmt('diversity')}, "
        f"jitter RMSE {fmt('jitter_rmse')}, AV offset {m['av_offset_frames']} frames "
        f"(r = {fmt('av_correlation')}), LSE-D {fmt('lse_d')}"
        + (
            f", lip surface error {fmt('lip_surface_error_mm')} mm"
            if m.get("lip_surface_error_mm") is not None
            else ""
        )
    )
    return 0


def _positive(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    """An argparse type: a finite number above 0 (a frame rate, in frames per second)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="talkhead",
        description="Multi-view recordings of people speaking -> paired audio / 3D-face dataset.",
    )
    parser.add_argument("--version", action="version", version=f"talkhead {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "inspect-model",
        help="print a FLAME-style model's vertex, face, shape, expression and joint counts",
    )
    p.add_argument("path", help="generic_model.pkl (FLAME 2020/2023) or .npz")
    p.add_argument("--landmarks", help="landmark embedding (.npz, landmark_embedding.npy, .pkl)")
    p.add_argument("--masks", help="region masks (FLAME_masks.pkl)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (path, vertices, faces, shape, expression, joints, "
        "landmarks, regions, region_names) instead of one 'name: value' line per count",
    )
    p.set_defaults(func=_inspect_model)

    p = sub.add_parser(
        "validate-capture",
        help="check a Nersemble-style capture tree; list every problem, exit non-zero if any",
    )
    p.add_argument("root", help="capture root holding <subject>/camera_params.json")
    p.add_argument("--subject", help="check only this subject")
    p.add_argument("--sequence", help="check only this sequence (with --subject)")
    p.add_argument(
        "--layout",
        default="auto",
        choices=("auto", "talkhead", "nersemble_v1", "nersemble_v2", "nersemble_benchmark"),
        help="the capture layout (default auto: detected per sequence); video layouts get "
        "their calibration and videos checked, their frames are checked after ingest",
    )
    p.set_defaults(func=_validate_capture)

    p = sub.add_parser(
        "config-schema",
        help="print the JSON schema of config/config.yaml, generated from the config dataclasses",
    )
    p.add_argument(
        "--write",
        metavar="PATH",
        help="write it to PATH (the workflow's: workflow/schemas/config.schema.yaml)",
    )
    p.set_defaults(func=_config_schema)

    p = sub.add_parser(
        "check-config",
        help="check config files as the workflow would (merged in order): YAML syntax with "
        "file and line, then every setting",
    )
    p.add_argument(
        "files",
        nargs="*",
        help="config/config.yaml, then the files given to --configfile (default: "
        f"{DEFAULT_CONFIG}); the sample sheet too when capture.source is nersemble",
    )
    p.set_defaults(func=_check_config)

    p = sub.add_parser(
        "export-capture",
        help="write one sequence of a talkhead tree (e.g. the synthetic capture) in a published "
        "NeRSemble layout, to try the real-capture path; exit 1 on errors",
    )
    p.add_argument("root", help="talkhead capture root holding <subject>/camera_params.json")
    p.add_argument("subject", help="subject folder name")
    p.add_argument("sequence", help="sequence folder name")
    p.add_argument("out", help="root of the tree to write")
    p.add_argument(
        "--layout",
        required=True,
        choices=("nersemble_v1", "nersemble_v2", "nersemble_benchmark"),
        help="the layout to write",
    )
    p.add_argument("--as-subject", metavar="ID", help="subject folder name to write (v2: 018)")
    p.add_argument(
        "--colour-matrices",
        choices=("example", "none"),
        help="example: per-camera colour matrices written beside the images, which carry their "
        "inverse (default for v1 and v2); none: no colour calibration (default, and the only "
        "choice, for the benchmark kit)",
    )
    p.set_defaults(func=_export_capture)

    p = sub.add_parser(
        "clean-audio",
        help="one audio file (wav, flac, ogg, mp3, m4a, webm, a video's audio) -> a 16 kHz mono "
        "wav: mixed, resampled, denoised, +20 dB without clipping, as the audio stage does",
    )
    p.add_argument("input", help="the recording (any common audio format, or a video)")
    p.add_argument("output", help="the cleaned wav to write")
    p.add_argument("--gain-db", type=float, help="gain in dB (default: audio.gain_db, 20)")
    p.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="FILE",
        help="config files whose audio section to use (config/config.yaml, then overrides)",
    )
    p.add_argument(
        "--video-duration",
        type=float,
        metavar="S",
        help="the video's duration (seconds): audio longer or shorter by more than "
        "audio.length_tolerance_s is refused",
    )
    p.set_defaults(func=_clean_audio)

    p = sub.add_parser(
        "animate",
        help="animate an audio file of any length with a trained model: per-frame meshes, "
        "the codes, an mp4 with the sound",
    )
    p.add_argument("--checkpoint", required=True, help="results/models/<model>/model.ckpt")
    p.add_argument("--audio", required=True, help="speech (any common audio format, or a video)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--samples", type=_positive, default=1, help="samples to draw (diffusion, MeshTalk)"
    )
    p.add_argument(
        "--fps", type=_positive_float, help="frame rate, above 0 (default: the training data's)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the samples' noise")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    p.add_argument("--no-video", action="store_true", help="meshes and codes only")
    p.add_argument(
        "--nphm-model",
        help="models of NPHM codes: the NPHM (resources/nphm/model.pt) that decodes the codes "
        "to meshes by marching cubes (with --nphm-identity; without both: codes only)",
    )
    p.add_argument(
        "--nphm-identity",
        help="a subject's NPHM identity the codes are decoded with "
        "(results/nphm/<subject>/identity.npz)",
    )
    p.add_argument(
        "--mesh-every",
        type=_positive,
        default=1,
        help="NPHM models: decode every N-th frame (about 1 s a frame on one CPU core at "
        "48^3; the video holds each mesh until the next)",
    )
    p.add_argument(
        "--mesh-resolution",
        type=_positive,
        default=48,
        help="NPHM models: marching-cubes samples per axis (default 48)",
    )
    p.set_defaults(func=_animate)

    p = sub.add_parser(
        "evaluate",
        help="a trained model's lip vertex error, FDD, diversity, jitter and lip sync on a "
        "packaged dataset's test split, against its fitted FLAME; writes evaluation.json",
    )
    p.add_argument("--checkpoint", required=True, help="results/models/<model>/model.ckpt")
    p.add_argument(
        "--data", required=True, help="a packaged dataset folder (results/dataset layout)"
    )
    p.add_argument(
        "--out",
        required=True,
        help="the JSON to write (not the workflow's results/models/<model>/evaluation.json, "
        "which its rule owns: refused)",
    )
    p.add_argument(
        "--samples", type=_positive, default=4, help="samples per test audio (default 4)"
    )
    p.add_argument(
        "--syncnet-weights",
        metavar="W",
        help="a local SyncNet state dict for LSE-D / LSE-C (default: none, LSE null)",
    )
    p.add_argument(
        "--split",
        default="test",
        choices=("test", "val", "train"),
        help="split to evaluate (default test; an empty one falls back to val, then train)",
    )
    p.add_argument("--flame-model", help="head model the fits used (default: the checkpoint's)")
    p.add_argument("--landmarks", help="its iBUG-68 landmark embedding (mouth opening)")
    p.add_argument("--masks", help="its region masks (default: the checkpoint's)")
    p.add_argument(
        "--nphm-model",
        help="models of NPHM codes: the NPHM (resources/nphm/model.pt) that decodes them, for "
        "the lip surface error (with --nphm-fits)",
    )
    p.add_argument(
        "--nphm-fits",
        help="the NPHM stage's results folder (results/nphm: <subject>/identity.npz)",
    )
    p.add_argument("--max-lag", type=int, default=6, help="audio-visual offsets searched, +-frames")
    p.add_argument("--seed", type=int, default=0, help="seed of the samples' noise")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    p.set_defaults(func=_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "validate-capture" and args.sequence and not args.subject:
        parser.error("validate-capture: --sequence needs --subject (sequences belong to a subject)")
    try:
        return int(args.func(args))
    except TalkheadError as exc:
        _print_error(exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
