"""Cost of the workflow's DAG at scale: dry-run time and memory against a bare Snakefile.

Dry-runs the real workflow (``snakemake -n --forceall --cores 1 --quiet rules all``) on the
synthetic studio scaled to ``--subjects`` x ``--sequences`` (a config override file), then a
bare Snakefile of the same shape, back to back, and prints jobs, wall and CPU seconds and
peak RSS (MB) of each snakemake process and the real / bare ratios; writes them as JSON to
``--out``. Exits 1 when the time or memory ratio is above ``--max-ratio``: the real
workflow's input functions, params and directives should cost little more than Snakemake's
own per-job overhead.

The bare Snakefile is derived from the real workflow, not hard-coded: a small dry-run
(2 subjects x 3 sequences) gives every rule's jobs, wildcards and outputs; a rule whose jobs
carry the subject and sequence wildcards runs once per sequence, one with the subject alone
once per subject, one without wildcards once in all (jobs / sequences, jobs / subjects, jobs
gives how many times). The bare rules have the same names, wildcards and number of outputs;
each depends on the first output of the rule before it in the real DAG's topological order
(expanded over the subject, or over everything, when the one before runs more often), with
``shell: "touch {output}"``, no params, no log, no script. Its target rule requests, from
each rule, as many outputs per job as the real target does. The workflow profile
(``profiles/default``, default resources evaluated for every job) is copied next to it, so
both runs get the same settings; ``--profile none`` runs both with ``--workflow-profile none``.

Times: wall clock and CPU (user + system) of the snakemake process; the CPU ratio is the one
checked unless ``--time wall`` (wall time on a shared, loaded machine is noisy). Run real and
bare several times (``--repeat``) and the best of each measure is kept.

Examples::

    python benchmarks/bench_dag.py                          # 100 x 100: ~10 minutes
    python benchmarks/bench_dag.py --subjects 30 --sequences 30 --repeat 3
    python benchmarks/bench_dag.py --keep /tmp/bare         # keep the bare Snakefile
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Wildcards that make a rule run once per sequence / once per subject.
SUBJECT, SEQUENCE = "subject", "sequence"
KINDS = ("once", "subject", "sequence")
# Names of the synthetic studio's subjects and sequences (talkhead.synth, common.smk).
SUBJECT_NAME = "syn{:03d}"
SEQUENCE_NAME = "SEN-{:02d}"


@dataclass
class Job:
    rule: str
    wildcards: dict[str, str]
    inputs: list[str]
    outputs: list[str]


@dataclass
class RuleShape:
    """One rule of the real workflow: how often it runs, how many outputs its jobs have."""

    name: str
    kind: str  # "once", "subject" or "sequence"
    per_scope: int  # jobs per scope unit (per sequence / per subject / in all)
    n_outputs: int
    # Outputs of this rule the target requests, per job (target rule only: by producer).
    targets: dict[str, int] = field(default_factory=dict)


@dataclass
class Run:
    name: str
    jobs: int
    seconds: float  # wall clock
    cpu_seconds: float  # user + system
    peak_mb: float  # peak resident set size

    def best(self, other: Run | None) -> Run:
        """The best of two runs of the same workflow, measure by measure."""
        if other is None:
            return self
        return Run(
            self.name,
            self.jobs,
            min(self.seconds, other.seconds),
            min(self.cpu_seconds, other.cpu_seconds),
            min(self.peak_mb, other.peak_mb),
        )


MEASURES = ("seconds", "cpu_seconds", "peak_mb")


# --------------------------------------------------------------------------------------------
# running snakemake
# --------------------------------------------------------------------------------------------


def measure(cmd: list[str], cwd: Path, log: Path) -> tuple[float, float, float]:
    """Run ``cmd`` in ``cwd``, stdout and stderr to ``log``: wall s, CPU s, peak RSS (MB).

    Raises SystemExit with the log's tail when the command fails."""
    with open(log, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)  # the rusage of this child alone
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-30:])
        raise SystemExit(f"{' '.join(cmd)} failed (cwd {cwd}), see {log}:\n{tail}")
    # ru_maxrss: kilobytes on Linux, bytes on macOS.
    scale = 1 / 2**20 if sys.platform == "darwin" else 1 / 2**10
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * scale


def dry_run_cmd(
    snakemake: list[str], override: Path, target: str, quiet: bool, profile: bool = True
) -> list[str]:
    cmd = [*snakemake, "-n", "--forceall", "--cores", "1", "--configfile", str(override)]
    cmd += [] if profile else ["--workflow-profile", "none"]
    return [*cmd, *(["--quiet", "rules"] if quiet else []), "--", target]


def write_override(path: Path, n_subjects: int, n_sequences: int) -> Path:
    path.write_text(f"synthetic:\n  n_subjects: {n_subjects}\n  n_sequences: {n_sequences}\n")
    return path


def job_count(log: Path) -> int:
    """The ``total`` of the dry-run's job stats table."""
    match = re.search(r"^total\s+(\d+)\s*$", log.read_text(), re.MULTILINE)
    if match is None:
        raise SystemExit(f"{log}: no job stats table (did the dry-run build a DAG?)")
    return int(match.group(1))


# --------------------------------------------------------------------------------------------
# the shape of the real workflow
# --------------------------------------------------------------------------------------------

_RULE = re.compile(r"^(?:local)?(?:rule|checkpoint) (\S+):$")


def parse_jobs(text: str) -> list[Job]:
    """Jobs of a (non-quiet) dry-run log: rule, wildcards, input and output files."""
    jobs: list[Job] = []
    for line in text.splitlines():
        match = _RULE.match(line)
        if match:
            jobs.append(Job(match.group(1), {}, [], []))
            continue
        if not jobs or not line.startswith("    "):
            continue
        key, _, value = line.strip().partition(": ")
        if key == "input":
            jobs[-1].inputs = value.split(", ")
        elif key == "output":
            jobs[-1].outputs = value.split(", ")
        elif key == "wildcards":
            jobs[-1].wildcards = dict(kv.split("=", 1) for kv in value.split(", "))
    return jobs


def _kind(wildcards: dict[str, str]) -> str:
    if SUBJECT in wildcards and SEQUENCE in wildcards:
        return "sequence"
    return "subject" if SUBJECT in wildcards else "once"


def derive_shape(
    jobs: list[Job], target: str, n_subjects: int, n_sequences: int
) -> list[RuleShape]:
    """Rules in the real DAG's topological order (target last), each with its kind and count.

    Raises SystemExit when a rule's job count does not divide by its scope."""
    by_rule: dict[str, list[Job]] = {}
    for job in jobs:
        by_rule.setdefault(job.rule, []).append(job)
    if target not in by_rule:
        raise SystemExit(f"target rule {target!r} not in the dry-run (rules: {sorted(by_rule)})")
    producer = {path: job.rule for job in jobs for path in job.outputs}
    deps = {
        rule: {producer[p] for job in rjobs for p in job.inputs if p in producer} - {rule}
        for rule, rjobs in by_rule.items()
    }
    kinds = {rule: _kind(rjobs[0].wildcards) for rule, rjobs in by_rule.items()}
    # A linear extension of the rule graph; among rules ready together, coarser ones first
    # (once, then per subject, then per sequence), then in the order the dry-run lists them.
    appearance = {rule: i for i, rule in enumerate(by_rule)}
    graph = TopologicalSorter(deps)
    graph.prepare()
    order, ready = [], []
    while graph.is_active():
        ready = sorted(
            {*ready, *graph.get_ready()}, key=lambda r: (KINDS.index(kinds[r]), appearance[r])
        )
        rule = ready.pop(0)
        order.append(rule)
        graph.done(rule)
    order = [rule for rule in order if rule != target] + [target]

    units = {"once": 1, "subject": n_subjects, "sequence": n_subjects * n_sequences}
    shapes = []
    for rule in order:
        rjobs = by_rule[rule]
        kind = kinds[rule]
        per_scope, rest = divmod(len(rjobs), units[kind])
        if rest or per_scope == 0:
            raise SystemExit(f"rule {rule}: {len(rjobs)} jobs is not a multiple of {units[kind]}")
        shapes.append(RuleShape(rule, kind, per_scope, len(rjobs[0].outputs)))
    requested: dict[str, int] = {}
    for path in (p for job in by_rule[target] for p in job.inputs):
        if path in producer:
            requested[producer[path]] = requested.get(producer[path], 0) + 1
    for shape in shapes:
        if shape.name in requested:
            shapes[-1].targets[shape.name] = requested[shape.name] // len(by_rule[shape.name])
    return shapes


# --------------------------------------------------------------------------------------------
# the bare Snakefile
# --------------------------------------------------------------------------------------------


def _pattern(shape: RuleShape, index: int) -> str:
    parts = {"once": "", "subject": "{subject}/", "sequence": "{subject}/{sequence}/"}[shape.kind]
    part = "{part}." if shape.per_scope > 1 else ""
    return f"bare/{shape.name}/{parts}{part}out{index}.txt"


def _expand(shape: RuleShape, index: int, consumer_kind: str) -> str:
    """Python expression: the files of ``shape`` one job of a ``consumer_kind`` rule needs."""
    pattern = _pattern(shape, index)
    fine = KINDS.index(shape.kind) > KINDS.index(consumer_kind)
    loops = []
    if shape.per_scope > 1:
        loops.append(f"for part in range({shape.per_scope})")
    if fine and consumer_kind == "once" and shape.kind == "sequence":
        loops.append("for subject, sequence in PAIRS")
    elif fine and consumer_kind == "once":
        loops.append("for subject in SUBJECTS")
    elif fine:
        loops.append("for sequence in SEQUENCES")
    if not loops:
        return f'"{pattern}"'
    fmt = pattern
    for name in (SUBJECT, SEQUENCE):
        # Inside a consumer's own scope the wildcard stays a wildcard: {{subject}} in an f-string.
        if not fine or (name == SUBJECT and consumer_kind == "subject"):
            fmt = fmt.replace("{" + name + "}", "{{" + name + "}}")
    return f'[f"{fmt}" {" ".join(loops)}]'


def bare_snakefile(shapes: list[RuleShape], target: str) -> str:
    """A Snakefile with the same rules, kinds and outputs as ``shapes``, chained in order."""
    lines = [
        "# Generated by benchmarks/bench_dag.py: the real workflow's shape, trivial rules.",
        "",
        'N_SUBJECTS = config["synthetic"]["n_subjects"]',
        'N_SEQUENCES = config["synthetic"]["n_sequences"]',
        f'SUBJECTS = ["{SUBJECT_NAME}".format(s) for s in range(N_SUBJECTS)]',
        f'SEQUENCES = ["{SEQUENCE_NAME}".format(q) for q in range(N_SEQUENCES)]',
        "PAIRS = [(s, q) for s in SUBJECTS for q in SEQUENCES]",
        "",
    ]
    body = shapes[:-1]
    for i, shape in enumerate(body):
        lines += ["", "", f"rule {shape.name}:"]
        if i > 0:
            lines += ["    input:", f"        {_expand(body[i - 1], 0, shape.kind)},"]
        lines += ["    output:"]
        lines += [f'        "{_pattern(shape, k)}",' for k in range(shape.n_outputs)]
        lines += ["    shell:", '        "touch {output}"']
    requested = []
    for shape in body:
        for k in range(shapes[-1].targets.get(shape.name, 0)):
            requested.append(_expand(shape, k, "once"))
    lines += ["", "", f"rule {target}:", "    input:"]
    lines += [f"        {expr}," for expr in requested]
    lines += ["    default_target: True", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def print_table(runs: dict[str, Run], ratios: dict[str, float], title: str) -> None:
    header = ["workflow", "jobs", "wall s", "CPU s", "peak MB"]
    rows = [
        [r.name, str(r.jobs), f"{r.seconds:.1f}", f"{r.cpu_seconds:.1f}", f"{r.peak_mb:.0f}"]
        for r in runs.values()
    ]
    rows.append(["real / bare", "", *(f"{ratios[m]:.2f}x" for m in MEASURES)])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)) + " |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--subjects", type=int, default=100, help="synthetic.n_subjects")
    p.add_argument("--sequences", type=int, default=100, help="synthetic.n_sequences")
    p.add_argument("--repeat", type=int, default=1, help="best of N (real, bare, real, ...)")
    p.add_argument("--max-ratio", type=float, default=1.5, help="fail above this real / bare")
    p.add_argument(
        "--time",
        choices=("cpu", "wall"),
        default="cpu",
        help="time whose ratio is checked (CPU: robust to a loaded machine)",
    )
    p.add_argument(
        "--profile",
        choices=("copy", "none"),
        default="copy",
        help="copy: the real workflow profile for both; none: no workflow profile for either",
    )
    p.add_argument("--target", default="all", help="target rule of both dry-runs")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/dag.json"), help="JSON")
    p.add_argument(
        "--snakemake",
        default=shlex.join([sys.executable, "-m", "snakemake"]),
        help="snakemake command (default: this Python's snakemake)",
    )
    p.add_argument("--keep", help="work in this folder (bare Snakefile, logs) and keep it")
    args = p.parse_args(argv)
    snakemake = shlex.split(args.snakemake)
    load_before = os.getloadavg()

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_dag_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"shape: dry-run of the real workflow at 2 x 3 ({work})", file=sys.stderr)
        small = write_override(work / "small.yaml", 2, 3)
        log = work / "shape.log"
        measure(dry_run_cmd(snakemake, small, args.target, quiet=False), ROOT, log)
        shapes = derive_shape(parse_jobs(log.read_text()), args.target, 2, 3)
        for s in shapes:
            scope = "in all" if s.kind == "once" else f"per {s.kind}"
            print(f"  {s.name}: {s.per_scope} {scope}, {s.n_outputs} outputs", file=sys.stderr)

        bare = work / "bare"
        shutil.rmtree(bare, ignore_errors=True)
        bare.mkdir()
        (bare / "Snakefile").write_text(bare_snakefile(shapes, args.target))
        if args.profile == "copy" and (ROOT / "profiles/default").is_dir():
            shutil.copytree(ROOT / "profiles/default", bare / "profiles/default")
        override = write_override(work / "override.yaml", args.subjects, args.sequences)
        where = {"real": ROOT, "bare": bare}

        best: dict[str, Run] = {}
        for attempt in range(args.repeat):
            for name in ("real", "bare"):
                print(
                    f"{name} {attempt + 1}/{args.repeat}: dry-run at "
                    f"{args.subjects} x {args.sequences}",
                    file=sys.stderr,
                )
                log = work / f"{name}.log"
                cmd = dry_run_cmd(
                    snakemake, override, args.target, quiet=True, profile=args.profile == "copy"
                )
                measures = measure(cmd, where[name], log)
                run = Run(name, job_count(log), *measures)
                print(
                    f"  {run.jobs} jobs, {run.seconds:.1f} s wall, {run.cpu_seconds:.1f} s CPU, "
                    f"{run.peak_mb:.0f} MB",
                    file=sys.stderr,
                )
                best[name] = run.best(best.get(name))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    real, bare_run = best["real"], best["bare"]
    if real.jobs != bare_run.jobs:
        print(f"warning: {real.jobs} real jobs, {bare_run.jobs} bare jobs", file=sys.stderr)
    ratios = {m: getattr(real, m) / getattr(bare_run, m) for m in MEASURES}
    checked = ("seconds" if args.time == "wall" else "cpu_seconds", "peak_mb")
    load = {"before": load_before, "after": os.getloadavg()}
    title = (
        f"DAG dry-run at {args.subjects} x {args.sequences} sequences, best of {args.repeat}; "
        f"{os.cpu_count()} CPUs, load average (1 min) {load['before'][0]:.2f} before, "
        f"{load['after'][0]:.2f} after"
    )
    print_table(best, ratios, title)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "subjects": args.subjects,
        "sequences": args.sequences,
        "repeat": args.repeat,
        "profile": args.profile,
        "load_average": load,
        "cpus": os.cpu_count(),
        "runs": {name: asdict(run) for name, run in best.items()},
        "ratios": ratios,
        "max_ratio": args.max_ratio,
        "checked": checked,
        "shape": [asdict(s) for s in shapes],
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    over = {m: round(ratios[m], 2) for m in checked if ratios[m] > args.max_ratio}
    if over:
        print(f"ratio above {args.max_ratio}: {over}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
