"""Reruns give the same results byte for byte, also after an interrupted run.

Two runs of the tiny workflow (tests/configs/tiny.yaml) into separate folders: the session's
straight run (``tiny_run`` of conftest.py, shared with the end-to-end and report tests); one
killed with SIGKILL while the depth stage runs (Snakemake and its jobs, as a power cut or an
out-of-memory kill would), then recovered the way the README says (the plain rerun stops on the
lock, ``--unlock``, the same command again). Every file the workflow writes under ``results/``
is the same in both, metrics included; only ``timing.json`` (wall-clock figures, read by
nothing) may differ.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import copy_workflow

#: Files that may differ between runs: wall-clock figures.
UNSTABLE = {"timing.json"}
#: The reports other tests make from the straight run (not workflow outputs).
REPORTS = {"report.zip", "report.html"}

pytestmark = pytest.mark.slow


def _same_model_file(a: Path, b: Path) -> None:
    """Two runs' trained-model files hold the same weights (checkpoints) or the same losses
    (metrics.json; wall-clock figures aside)."""
    if a.suffix == ".ckpt":
        import torch

        sa = torch.load(a, map_location="cpu", weights_only=False)["state_dict"]
        sb = torch.load(b, map_location="cpu", weights_only=False)["state_dict"]
        assert sa.keys() == sb.keys(), a
        for k in sa:
            assert torch.equal(sa[k], sb[k]), f"{a}: {k} differs between the runs"
    elif a.name == "metrics.json":
        import json

        clock = {"wall_s", "steps_per_s", "windows_per_s"}
        ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
        assert {k: v for k, v in ja.items() if k not in clock} == {
            k: v for k, v in jb.items() if k not in clock
        }, a
    else:
        raise AssertionError(f"{a.name} differs between the runs")


def _same_torch_file(a: Path, b: Path) -> None:
    """Two torch.save files hold the same values (tensors equal, everything else equal)."""
    import torch

    def same(x, y, where: str) -> None:
        if isinstance(x, torch.Tensor):
            assert isinstance(y, torch.Tensor) and torch.equal(x, y), f"{a}: {where} differs"
        elif isinstance(x, dict):
            assert isinstance(y, dict) and x.keys() == y.keys(), f"{a}: {where} keys differ"
            for k in x:
                same(x[k], y[k], f"{where}/{k}")
        elif isinstance(x, list | tuple):
            assert len(x) == len(y), f"{a}: {where} lengths differ"
            for i, (u, v) in enumerate(zip(x, y, strict=True)):
                same(u, v, f"{where}[{i}]")
        else:
            assert x == y, f"{a}: {where} differs"

    same(torch.load(a, weights_only=False), torch.load(b, weights_only=False), "")


def command(*extra: str) -> list[str]:
    """The user's command in a copy of the workflow (--configfile last: it takes several
    values), as ``tiny_run`` runs it."""
    return [
        *(sys.executable, "-m", "snakemake", "--cores", "2", *extra),
        *("all", "--configfile", "config/tiny.yaml"),
    ]


def run(cmd: list[str], work: Path, timeout: int = 1200) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=timeout)


def files_of(root: Path) -> dict[str, bytes]:
    """{relative path: content} of every file under ``root``."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def kill_during_depth(work: Path, timeout: float = 900) -> None:
    """Start the run and SIGKILL Snakemake and its jobs once the depth stage is under way."""
    proc = subprocess.Popen(
        command(),
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    partial = work / "results/depth/syn000/SEN-00/.frames.partial"
    deadline = time.monotonic() + timeout
    try:
        # Killed as soon as the depth stage has opened its partial folder: the tiny depth job
        # takes a few seconds on an idle machine, so waiting longer can miss it.
        while not partial.exists():
            assert proc.poll() is None, "the run ended before the depth stage started"
            assert time.monotonic() < deadline, "the depth stage did not start"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_interrupted_run_recovers_to_the_same_results(tiny_run, tmp_path):
    straight = tiny_run
    work = tmp_path / "interrupted"
    copy_workflow(work)
    kill_during_depth(work)
    assert not (work / "results/depth/syn000/SEN-00/metrics.json").exists()

    res = run(command(), work)
    assert res.returncode != 0
    assert "LockException" in res.stdout + res.stderr

    res = run(command("--unlock"), work)
    assert res.returncode == 0, res.stderr[-3000:]
    res = run(command(), work)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]

    # the capture rendered, then everything made from it; torch.save writes a new
    # serialization id into every file, so the NPHM model and its resume checkpoint are
    # compared by what they hold
    res_a, res_b = files_of(straight / "resources"), files_of(work / "resources")
    assert sorted(res_a) == sorted(res_b)
    for name in [n for n in res_a if res_a[n] != res_b[n]]:
        if Path(name).name in UNSTABLE:
            continue
        assert name.endswith(".pt"), f"resources/{name} differs between the runs"
        _same_torch_file(straight / "resources" / name, work / "resources" / name)
    first, second = files_of(straight / "results"), files_of(work / "results")
    first = {name: data for name, data in first.items() if name not in REPORTS}
    assert sorted(first) == sorted(second)
    # nothing left by the killed job: no hidden file but Snakemake's directory-output marker
    hidden = [n for n in second if "/." in n and not n.endswith("/.snakemake_timestamp")]
    assert not hidden
    differ = [name for name in first if first[name] != second[name]]
    # Trained models: the checkpoints also hold Lightning's loop and timer state and
    # metrics.json the training time, so they are compared by their weights and losses.
    models = [n for n in differ if n.startswith("models/")]
    for name in models:
        _same_model_file(straight / "results" / name, work / "results" / name)
    differ = [n for n in differ if n not in models]
    assert [Path(name).name for name in differ if Path(name).name not in UNSTABLE] == []
    assert any(Path(name).name == "metrics.json" for name in first)
    assert any(name.endswith(".npz") for name in first) and any(
        name.endswith(".png") for name in first
    )


def test_a_second_run_does_nothing(tiny_run):
    """Nothing a run writes makes its own outputs out of date (timing.json is read by no rule)."""
    res = run(command("-n"), tiny_run)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Nothing to be done" in res.stdout + res.stderr
