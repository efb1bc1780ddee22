"""The ``talkhead`` command line.

    talkhead inspect-model PATH [--landmarks FILE] [--masks FILE] [--json]
    talkhead validate-capture ROOT [--subject S] [--sequence Q]
    talkhead config-schema [--write PATH]

Heavy imports happen inside the subcommands so that ``talkhead --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import __version__
from .errors import TalkheadError


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

    return validate_main(args.root, subject=args.subject, sequence=args.sequence)


def _config_schema(args: argparse.Namespace) -> int:
    from .workflow_config import workflow_schema_text, write_workflow_schema

    if args.write:
        print(write_workflow_schema(args.write))
    else:
        sys.stdout.write(workflow_schema_text())
    return 0


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except TalkheadError as exc:
        print(f"talkhead: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
