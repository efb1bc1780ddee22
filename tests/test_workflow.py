"""Workflow tests: the DAG builds, the lint is clean, bad config stops with a clear message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(*args: str, cwd: Path = REPO, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def test_dry_run_default_config():
    res = snakemake("-n", "--forceall", "--quiet", "rules")
    assert res.returncode == 0, res.stderr
    for rule in ("synth_sequence", "validate_capture", "qc_capture", "depth", "backproject"):
        assert rule in res.stdout + res.stderr


def test_lint_is_clean():
    res = snakemake("--lint")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "Lints for" not in out, out


def write_config(tmp_path: Path, **sections) -> Path:
    """The default config with some sections updated, written to a file."""
    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    for key, value in sections.items():
        if isinstance(value, dict):
            cfg[key].update(value)
        else:
            cfg[key] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
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
    assert "row 1" in res.stdout + res.stderr


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
    assert "gpu=1" in jobs["depth"]
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
