"""The package's layers (../shared DESIGN.md, "Package layout"): imports point down, ground truth
is written by synth/ and read by evaluation/ only, nothing imports snakemake, light readers stay
light."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "src" / "talkhead"

#: Floors bottom-up; a module imports only from its own floor or below. A floor is a top-level
#: module or subpackage of talkhead.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("errors", "io", "logs", "config", "samples", "floors"),
    ("geometry",),
    ("capture",),
    ("preprocess",),
    ("depth",),
    ("points",),
    ("fitting",),
    ("flame",),
    ("nphm",),
    ("audio",),
    ("dataset",),
    ("models",),
    ("training",),
    ("evaluation",),
    ("qc",),
    ("synth",),
    ("cli", "workflow_config", "__main__", "__init__"),
)
FLOOR_OF = {name: level for level, names in enumerate(FLOORS) for name in names}

#: Ground-truth paths and file names: spelled only in synth/ and evaluation/ (and their rules).
GROUND_TRUTH_NAMES = (
    "synthetic/ground_truth",
    "ground_truth/",
    "vertices.npy",
    "landmarks3d.npy",
    "audio_clean.wav",
    "phonemes.json",
    "faces.npy",
)


def modules() -> list[Path]:
    return sorted(PKG.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every talkhead module ``path`` imports (module level, in functions, TYPE_CHECKING)."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                # `from . import x` imports the submodule x
                if not node.module:
                    out.update(f"{target}.{a.name}" for a in node.names)
                    continue
            else:
                target = node.module or ""
            out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names)
    return out


def floor(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "talkhead":
        return None
    if len(parts) == 1:
        return FLOOR_OF["__init__"]
    return FLOOR_OF.get(parts[1])


def test_every_module_is_on_a_floor() -> None:
    lost = [module_name(p) for p in modules() if floor(module_name(p)) is None]
    assert not lost, f"modules on no floor of DESIGN.md: {lost}"


def test_imports_point_down() -> None:
    upward = []
    for path in modules():
        me = module_name(path)
        for target in imported_modules(path):
            f = floor(target)
            if f is not None and f > floor(me):
                upward.append(f"{me} imports {target}")
    assert not upward, "imports from a floor above:\n" + "\n".join(sorted(set(upward)))


def test_only_evaluation_reads_and_only_synth_writes_ground_truth() -> None:
    readers, writers = set(), set()
    for path in modules():
        me = module_name(path)
        names = imported_modules(path)
        if any(n.endswith(".ground_truth.GroundTruth") for n in names):
            readers.add(me)
        if any(n.endswith(".ground_truth.GroundTruthWriter") for n in names):
            writers.add(me)
    assert readers and all(m.startswith("talkhead.evaluation.") for m in readers), readers
    assert writers and all(m.startswith("talkhead.synth.") for m in writers), writers


def _spells_ground_truth(text: str) -> list[str]:
    return [name for name in GROUND_TRUTH_NAMES if re.search(re.escape(name), text)]


def test_no_ground_truth_path_is_spelled_outside_synth_and_evaluation() -> None:
    allowed_pkg = ("synth", "evaluation")
    offenders = {}
    for path in modules():
        rel = path.relative_to(PKG)
        if rel.parts[0] in allowed_pkg:
            continue
        found = _spells_ground_truth(path.read_text())
        if found:
            offenders[str(rel)] = found
    workflow = REPO / "workflow"
    allowed_workflow = {
        "rules/synth.smk",
        "rules/evaluate.smk",
        "scripts/render_synthetic_sequence.py",
        "scripts/evaluate_depth.py",
        "scripts/evaluate_points.py",
    }
    for path in sorted(workflow.rglob("*")):
        rel = str(path.relative_to(workflow))
        if path.suffix in (".smk", ".py") and rel not in allowed_workflow:
            found = _spells_ground_truth(path.read_text())
            if found:
                offenders[f"workflow/{rel}"] = found
    assert not offenders, f"ground truth spelled outside synth/ and evaluation/: {offenders}"


def test_nothing_in_the_package_imports_snakemake() -> None:
    users = [
        module_name(p)
        for p in modules()
        if any(n == "snakemake" or n.startswith("snakemake.") for n in imported_modules(p))
    ]
    assert not users


LIGHT = (
    "talkhead.io",
    "talkhead.config",
    "talkhead.depth.io",
    "talkhead.points.io",
    "talkhead.capture.sequence",
    "talkhead.evaluation.ground_truth",
    "talkhead.geometry.cameras",
    "talkhead.geometry.rotations",
)


@pytest.mark.parametrize("module", LIGHT)
def test_light_readers_import_neither_torch_nor_open3d(module: str) -> None:
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        "heavy = [m for m in ('torch', 'open3d', 'matplotlib') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert res.returncode == 0, f"import {module} pulls in {res.stdout.strip()} {res.stderr}"
