"""A tiny end-to-end run of the whole workflow on CPU, then the report.

The synthetic studio renders 3 cameras x a few frames at a small size, and every stage runs on
it; the test checks the outputs exist, the capture passes validation and the stages' metrics
against ground truth are sane.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

TINY = {
    "synthetic": {
        "n_cameras": 4,
        "width": 96,
        "height": 120,
        "duration_s": 0.24,
        "fps": 25.0,
        "n_shape": 20,
        "n_expression": 20,
    },
    "depth": {"torch": {"n_planes": 48}},
    "report": {"n_frames": 2, "n_cameras": 2},
}


def tiny_config() -> dict:
    """The default config with the TINY settings."""
    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    for section, values in TINY.items():
        for key, value in values.items():
            if isinstance(value, dict):
                cfg[section][key].update(value)
            else:
                cfg[section][key] = value
    return cfg


def copy_workflow(work: Path) -> None:
    """The workflow's files in ``work``, with config/tiny.yaml beside the default config."""
    work.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "workflow", "config", "profiles", "envs"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
    (work / "config" / "tiny.yaml").write_text(yaml.safe_dump(tiny_config()))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wf")
    copy_workflow(work)
    # --configfile takes several values: it goes last.
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2"]
    tiny = ["--configfile", "config/tiny.yaml"]
    res = subprocess.run(
        [*cmd, "all", *tiny], cwd=work, capture_output=True, text=True, timeout=1500
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    res = subprocess.run(
        [*cmd, "--report", "results/report.zip", *tiny],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return work


def test_capture_stage_outputs(tiny_run):
    out = tiny_run / "results/capture/syn000/SEN-00"
    summary = json.loads((out / "capture.json").read_text())
    assert len(summary["cameras"]) == 4
    assert summary["n_frames"] == 6
    for name in ("rig.png", "contact_sheet.png", "microphone.png"):
        assert (out / name).stat().st_size > 10_000


def test_depth_and_points_are_measured_against_ground_truth(tiny_run):
    depth = json.loads((tiny_run / "results/depth/syn000/SEN-00/metrics.json").read_text())
    frames = sorted((tiny_run / "results/depth/syn000/SEN-00/frames").glob("frame_*.npz"))
    assert len(frames) == 6
    # At 96x120 pixels a pixel spans ~4 mm on the face; the stereo must still be sub-pixel
    # (measured: 0.8 mm median, 68 % valid).
    assert depth["depth_median_abs_err_mm"] < 2.0
    assert depth["valid_fraction"] > 0.5
    points = json.loads((tiny_run / "results/points/syn000/SEN-00/metrics.json").read_text())
    # measured: 0.6 mm to the true mesh, 3.2 mm landmark error, 71 % of landmarks valid
    assert points["points_to_mesh_median_mm"] < 1.5
    assert points["landmarks3d_median_err_mm"] < 8.0
    assert points["landmarks_valid_fraction"] > 0.5


def test_report_has_every_qc_figure(tiny_run):
    with zipfile.ZipFile(tiny_run / "results/report.zip") as z:
        names = z.namelist()
    figures = ("rig.png", "contact_sheet.png", "microphone.png", "depth_maps.png", "points.png")
    for figure in figures:
        assert any(n.endswith(figure) for n in names), figure


def test_logs_are_written_for_every_job(tiny_run):
    logs = list((tiny_run / "logs").rglob("*.log"))
    assert len(logs) >= 9


@pytest.mark.skipif(
    os.environ.get("TALKHEAD_TEST_SLURM") != "1" or shutil.which("sbatch") is None,
    reason="set TALKHEAD_TEST_SLURM=1 on a machine with a running SLURM (sbatch, squeue)",
)
def test_tiny_workflow_on_slurm(tmp_path):
    """The tiny run through the SLURM executor (profiles/slurm-local: one node, no accounting
    database). Opt-in: it needs slurmctld and slurmd running on this machine."""
    work = tmp_path / "wf"
    copy_workflow(work)
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--profile",
            "profiles/slurm-local",
            "all",
            "--configfile",
            "config/tiny.yaml",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert "SLURM jobid" in res.stdout + res.stderr
    metrics = json.loads((work / "results/points/syn000/SEN-00/metrics.json").read_text())
    assert metrics["points_to_mesh_median_mm"] < 1.5
