"""Workflow tests: the DAG builds, the lint is clean, ground truth reaches only the evaluate
rules, bad config stops with a clear message."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "tests" / "configs"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
PRODUCTION_RULES = (
    "validate_capture",
    "plot_capture",
    "estimate_depth",
    "plot_depth",
    "backproject_points",
    "plot_points",
)
EVALUATE_RULES = ("evaluate_depth", "evaluate_points")


def snakemake(*args: str, cwd: Path = REPO, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def job_counts(out: str) -> dict[str, int]:
    """Snakemake's job-count table of a dry-run: {rule: jobs}."""
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^([a-z_]+)\s+(\d+)\s*$", out, re.M)
        if m.group(1) != "total"
    }


def test_dry_run_default_config_lists_production_and_evaluate_rules():
    res = snakemake("-n", "--forceall", "--quiet", "rules")
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout + res.stderr)
    synth = ("build_head_model", "write_synthetic_rig", "render_synthetic_sequence")
    for rule in (*synth, *PRODUCTION_RULES, *EVALUATE_RULES):
        assert counts.get(rule) == 1, (rule, counts)


def test_two_by_two_dry_run_has_one_job_per_sequence_and_one_head_model():
    res = snakemake(
        "-n", "--forceall", "--quiet", "rules", "--configfile", str(CONFIGS / "two_by_two.yaml")
    )
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout + res.stderr)
    assert counts["build_head_model"] == 1 and counts["write_synthetic_rig"] == 2
    for rule in ("render_synthetic_sequence", *PRODUCTION_RULES, *EVALUATE_RULES):
        assert counts[rule] == 4, (rule, counts)


def rule_inputs(filegraph: str) -> dict[str, list[str]]:
    """{rule: its input patterns} from ``snakemake --filegraph`` (one node per rule)."""
    out: dict[str, list[str]] = {}
    for node in filegraph.split("label=<<table")[1:]:
        rule = re.search(r'<font point-size="18">([^<]+)</font>', node).group(1)
        inputs = node.split("&#8618; input", 1)[1].split("<hr/>", 1)[0] if "input" in node else ""
        out[rule] = re.findall(r'<font face="monospace">([^<]+)</font>', inputs)
    return out


def test_ground_truth_reaches_only_the_evaluate_rules():
    """Inputs are patterns (no input functions), so the file graph shows every rule's inputs:
    only the evaluate rules read the ground truth."""
    res = snakemake("--nolock", "--forceall", "--filegraph")
    assert res.returncode == 0, res.stderr
    inputs = rule_inputs(res.stdout)
    for rule in PRODUCTION_RULES:
        assert inputs[rule], rule
        assert not [f for f in inputs[rule] if "function" in f], (rule, inputs[rule])
        assert not [f for f in inputs[rule] if "ground_truth" in f], (rule, inputs[rule])
    for rule in EVALUATE_RULES:
        assert any("ground_truth" in f for f in inputs[rule]), (rule, inputs[rule])


def write_config(tmp_path: Path, **sections) -> Path:
    """A small override file holding only ``sections`` (Snakemake merges it over the defaults)."""
    path = tmp_path / "override.yaml"
    path.write_text(yaml.safe_dump(sections))
    return path


def test_bad_config_value_names_the_key(tmp_path):
    res = snakemake("-n", "--configfile", str(write_config(tmp_path, synthetic={"n_cameras": 1})))
    assert res.returncode != 0
    assert "synthetic.n_cameras" in res.stdout + res.stderr


def test_unknown_config_key_is_refused(tmp_path):
    res = snakemake("-n", "--config", "depth_backend=torch")
    assert res.returncode != 0
    assert "depth_backend" in res.stdout + res.stderr


def test_bad_sample_sheet_stops(tmp_path):
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text("subject\tsequence\n018\tSEN 01 with spaces\n")
    cfg = write_config(
        tmp_path, capture={"source": "nersemble", "root": "/nonexistent"}, samples=str(sheet)
    )
    res = snakemake("-n", "--configfile", str(cfg))
    assert res.returncode != 0
    assert f"{sheet}:2: sequence" in res.stdout + res.stderr


def test_nersemble_source_requires_root(tmp_path):
    res = snakemake(
        "-n", "--configfile", str(write_config(tmp_path, capture={"source": "nersemble"}))
    )
    assert res.returncode != 0
    assert "capture.root" in res.stdout + res.stderr


def test_slurm_profile_asks_gpu_for_gpu_rules():
    res = snakemake("-n", "--forceall", "--profile", "profiles/slurm")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    jobs = {}
    for block in out.split("\nrule ")[1:]:
        name = block.split(":", 1)[0]
        jobs[name] = next(line for line in block.splitlines() if "resources:" in line)
    assert "gpu=1" in jobs["estimate_depth"]
    assert "gpu=0" in jobs["validate_capture"]


def test_workflow_refuses_a_broken_capture_with_the_validators_message(tmp_path):
    """A real-capture run on a tree with a missing camera image stops in validate_capture, and
    its log names the same problem `talkhead validate-capture` reports."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_capture import SEQ, SUBJECT, make_tree

    from talkhead.capture.validate import format_problems, validate_capture

    tree = make_tree(tmp_path / "capture")
    victim = next((tree.root / SUBJECT).rglob("frame_00002/images/cam_*.png"))
    victim.unlink()
    expected = format_problems(validate_capture(tree.root), root=tree.root)
    assert victim.stem.removeprefix("cam_") in expected

    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(f"subject\tsequence\tfps\n{SUBJECT}\t{SEQ}\t\n")
    cfg = write_config(
        tmp_path, capture={"source": "nersemble", "root": str(tree.root)}, samples=str(sheet)
    )
    target = f"results/capture/{SUBJECT}/{SEQ}/capture.json"
    work = tmp_path / "run"
    work.mkdir()
    res = snakemake(
        "--cores",
        "1",
        "--directory",
        str(work),
        "-s",
        str(REPO / "Snakefile"),
        target,
        "--configfile",
        str(cfg),
    )
    assert res.returncode != 0
    log = (work / f"logs/capture/{SUBJECT}/{SEQ}/validate.log").read_text()
    serial = victim.stem.removeprefix("cam_")
    problem = next(line for line in expected.splitlines() if serial in line)
    assert "has no image" in problem and problem.strip() in log
    assert not (work / target).exists()


def test_a_real_capture_has_no_evaluate_rules(tmp_path):
    """Without ground truth (a NeRSemble-style capture), the evaluate rules are not in the DAG
    and the production rules are."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_capture import SEQ, SUBJECT, make_tree

    tree = make_tree(tmp_path / "capture")
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(f"subject\tsequence\tfps\n{SUBJECT}\t{SEQ}\t\n")
    cfg = tmp_path / "real.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {"capture": {"source": "nersemble", "root": str(tree.root)}, "samples": str(sheet)}
        )
    )
    work = tmp_path / "run"
    work.mkdir()
    res = snakemake(
        "-n",
        "--quiet",
        "rules",
        "--directory",
        str(work),
        "-s",
        str(REPO / "Snakefile"),
        "--configfile",
        str(cfg),
    )
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout + res.stderr)
    assert all(counts.get(rule) == 1 for rule in PRODUCTION_RULES), counts
    assert not any(rule in counts for rule in EVALUATE_RULES), counts
    assert "render_synthetic_sequence" not in counts
