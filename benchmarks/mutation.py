"""Mutation score of the algorithm packages (mutmut 3): how many small changes to the code
(an operator flipped, a constant nudged, an argument dropped) make at least one test fail.

Opt-in and slow (mutmut runs the tests once per mutant: about 30-50 mutants a minute on 2
shared cores), so not part of the test suite. For each
package asked for, the script copies ``src/``, ``tests/`` and ``pyproject.toml`` into a
temporary folder, writes a ``[tool.mutmut]`` section naming the package's files and the tests
that exercise them (below, ``PACKAGES``), runs ``mutmut run`` there and prints one row per
file and per package: killed, survived, timed out, no tests, total and the killed
percentage (killed + timed out over all mutants, mutmut's own score). The working tree is
never touched (mutmut 3 writes its ``mutants/`` copy inside the temporary folder).

Only the algorithm files are mutated (``PACKAGES``): not configuration files (``config.py``:
dataclass fields with defaults and help text, checked against ``config/config.yaml`` by
``tests/test_config.py``), package ``__init__`` files, stage runners (``stage.py``: I/O,
exercised by the slower stage tests) nor FLAME's file readers (``model.py``, ``pickle_io.py``).

Examples::

    python benchmarks/mutation.py geometry            # ~2000 mutants: 1-2 h on 2 busy cores
    python benchmarks/mutation.py geometry points flame --jobs 2
    python benchmarks/mutation.py flame --survivors   # also list each surviving mutant
    python benchmarks/mutation.py flame --only lbs.py # one file of the package
    python benchmarks/mutation.py flame --keep /tmp/m # keep the mutmut folder for `mutmut show`
    python benchmarks/mutation.py flame --recheck /tmp/m/flame  # survivors against today's tests

``--recheck FOLDER`` takes a folder kept by ``--keep``, replaces its tests with the working
tree's and runs each mutant that was not killed again (``MUTANT_UNDER_TEST=<name> pytest`` in
the mutated copy, the package's tests, first failure stops): minutes instead of a full run
while new tests are written for the survivors. The figures printed are the full run's with the
rechecked mutants' new statuses; a full run confirms them. Only the tests are replaced: a
fix made in ``src/`` after the run is not in the kept mutated copy (each function's variants
there need the same change) until a full run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PACKAGES: dict[str, dict[str, list[str]]] = {
    "geometry": {
        "files": [
            "cameras.py",
            "depth_maps.py",
            "mesh_distance.py",
            "normals.py",
            "rotations.py",
            "similarity.py",
            "triangulation.py",
        ],
        "tests": [
            "tests/test_cameras.py",
            "tests/test_geometry_rotations.py",
            "tests/test_geometry_triangulation.py",
            "tests/test_geometry_normals.py",
            "tests/test_geometry_similarity.py",
            "tests/test_properties.py",
        ],
    },
    "points": {
        "files": ["backproject.py", "io.py", "landmarks.py"],
        "tests": ["tests/test_backproject.py", "tests/test_points_io.py"],
    },
    "flame": {
        "files": ["align.py", "layer.py", "lbs.py", "params.py"],
        "tests": [
            "tests/test_flame_align.py",
            "tests/test_flame_layer.py",
            "tests/test_flame_io.py",
        ],
    },
    "depth": {
        "files": [
            "colmap.py",
            "io.py",
            "precomputed.py",
            "range.py",
            "mvs/consistency.py",
            "mvs/crops.py",
            "mvs/estimate.py",
            "mvs/filters.py",
            "mvs/neighbours.py",
            "mvs/refine.py",
            "mvs/sweep.py",
        ],
        "tests": [
            "tests/test_depth_io.py",
            "tests/test_depth_mvs.py",
            "tests/test_depth_colmap.py",
        ],
    },
}

STATUSES = ("killed", "survived", "timeout", "no tests", "suspicious", "segfault")


def mutmut_section(package: str, spec: dict[str, list[str]], only: list[str] | None = None) -> str:
    """The ``[tool.mutmut]`` TOML section for one package (its files, or ``only`` those)."""
    names = spec["files"] if not only else [f for f in spec["files"] if f in only]
    if only and len(names) != len(only):
        unknown = sorted(set(only) - set(spec["files"]))
        raise SystemExit(f"--only: {unknown} not among {package}'s files {spec['files']}")
    files = [f"src/talkhead/{package}/{f}" for f in names]
    tests = [t for t in spec["tests"] if (ROOT / t).exists()]
    return "\n".join(
        [
            "[tool.mutmut]",
            'source_paths = ["src"]',
            f"only_mutate = {files!r}".replace("'", '"'),
            f"pytest_add_cli_args_test_selection = {tests!r}".replace("'", '"'),
            # -p no:randomly etc. are not installed; keep pytest quiet and the cache out.
            'pytest_add_cli_args = ["-q", "-p", "no:cacheprovider", "-m", "not slow"]',
            # torch is not fork-safe once its thread pools exist.
            'process_isolation = "forkserver"',
            "use_git_change_detection = false",
            "",
        ]
    )


def prepare(work: Path, package: str, only: list[str] | None = None) -> None:
    """Copy what the tests need into ``work`` and write the package's mutmut section."""
    for name in ("src", "tests", "config", "workflow", "Snakefile"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, work / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, work / name)
    text = (ROOT / "pyproject.toml").read_text()
    text = re.sub(r"(?ms)^\[tool\.mutmut\].*?(?=^\[|\Z)", "", text)
    section = mutmut_section(package, PACKAGES[package], only)
    (work / "pyproject.toml").write_text(text + "\n" + section)


def parse_results(text: str) -> dict[str, str]:
    """``{mutant name: status}`` from ``mutmut results --all true``."""
    out = {}
    for line in text.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and status in (*STATUSES, "not checked", "skipped", "caught by type check"):
            out[name] = status
    return out


def file_of(mutant: str) -> str:
    """``talkhead.geometry.cameras.x_project__mutmut_3`` -> ``geometry/cameras.py``."""
    dotted = mutant.split("__mutmut_")[0]
    parts = dotted.split(".")
    return "/".join(parts[1:-1]) + ".py"


def run_package(
    package: str, jobs: int, keep: Path | None, only: list[str] | None = None
) -> dict[str, str]:
    """Run mutmut over one package; return each mutant's status."""
    work = Path(tempfile.mkdtemp(prefix=f"talkhead-mutation-{package}-"))
    try:
        prepare(work, package, only)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.setdefault("OMP_NUM_THREADS", "1")
        mutmut = [sys.executable, "-m", "mutmut"]
        res = subprocess.run(
            [*mutmut, "run", "--max-children", str(jobs)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
        )
        if res.returncode != 0:
            sys.stderr.write(res.stdout[-3000:] + res.stderr[-3000:])
            raise SystemExit(f"mutmut run failed for {package} (exit {res.returncode})")
        res = subprocess.run(
            [*mutmut, "results", "--all", "true"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return parse_results(res.stdout)
    finally:
        if keep is not None:
            dest = keep / package
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(work, dest, symlinks=True)
        shutil.rmtree(work, ignore_errors=True)


def mutmut_results(folder: Path, env: dict[str, str]) -> dict[str, str]:
    res = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return parse_results(res.stdout)


def recheck(
    folder: Path, package: str, jobs: int, tests: list[str] | None = None
) -> dict[str, str]:
    """Statuses of a kept mutmut ``folder`` with its surviving mutants run again against the
    working tree's tests (see the module docstring)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.setdefault("OMP_NUM_THREADS", "1")
    statuses = mutmut_results(folder, env)
    mutated = folder / "mutants"
    shutil.rmtree(mutated / "tests")
    shutil.copytree(ROOT / "tests", mutated / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    tests = [t for t in tests or PACKAGES[package]["tests"] if (ROOT / t).exists()]

    def run_one(name: str) -> tuple[str, str]:
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
        try:
            res = subprocess.run(
                [*cmd, "-m", "not slow", *tests],
                cwd=mutated,
                env={**env, "MUTANT_UNDER_TEST": name, "PYTHONPATH": "src"},
                capture_output=True,
                timeout=300,
            )
        except subprocess.TimeoutExpired:
            return name, "timeout"
        return name, {0: "survived", 1: "killed", 3: "killed"}.get(res.returncode, "suspicious")

    again = [n for n, s in statuses.items() if s not in ("killed", "timeout", "not checked")]
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for name, status in pool.map(run_one, again):
            statuses[name] = status
            print(f"recheck {name}: {status}", file=sys.stderr, flush=True)
    return statuses


def row(name: str, counts: Counter) -> str:
    total = sum(counts.values())
    score = 100 * (counts["killed"] + counts["timeout"]) / total if total else float("nan")
    cells = [counts[s] for s in ("killed", "survived", "timeout", "no tests")]
    other = total - sum(cells)
    return f"| {name} | " + " | ".join(map(str, [*cells, other, total])) + f" | {score:.1f} % |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("packages", nargs="*", default=["geometry", "points", "flame"])
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once")
    parser.add_argument("--survivors", action="store_true", help="list surviving mutants")
    parser.add_argument("--keep", type=Path, help="copy each package's mutmut folder here")
    parser.add_argument(
        "--only", nargs="+", metavar="FILE", help="mutate only these files (e.g. lbs.py)"
    )
    parser.add_argument(
        "--recheck", type=Path, help="a folder kept by --keep: rerun its survivors (one package)"
    )
    parser.add_argument(
        "--tests", nargs="+", help="with --recheck: only these test files (e.g. the new ones)"
    )
    args = parser.parse_args(argv)
    # A terminated run still removes its temporary folder.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    unknown = sorted(set(args.packages) - set(PACKAGES))
    if unknown:
        parser.error(f"unknown package(s) {unknown}; choose from {sorted(PACKAGES)}")
    if args.recheck is not None and len(args.packages) != 1:
        parser.error("--recheck takes the one package its folder was made for")
    print("| file | killed | survived | timeout | no tests | other | total | killed % |")
    print("|---|---|---|---|---|---|---|---|")
    survivors: list[str] = []
    for package in args.packages:
        start = time.perf_counter()
        if args.recheck is not None:
            statuses = recheck(args.recheck, package, args.jobs, args.tests)
        else:
            statuses = run_package(package, args.jobs, args.keep, args.only)
        by_file: dict[str, Counter] = defaultdict(Counter)
        for name, status in statuses.items():
            by_file[file_of(name)][status] += 1
            if status != "killed" and status != "timeout":
                survivors.append(f"{name}: {status}")
        for f in sorted(by_file):
            print(row(f, by_file[f]))
        total = sum(by_file.values(), Counter())
        minutes = (time.perf_counter() - start) / 60
        print(row(f"**{package}** ({minutes:.1f} min)", total), flush=True)
    if args.survivors:
        print("\n".join(["", *sorted(survivors)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
