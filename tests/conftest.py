import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Tests share 2 CPU cores: keep torch and BLAS from oversubscribing them.
os.environ.setdefault("OMP_NUM_THREADS", "2")

try:
    import torch

    torch.set_num_threads(2)
except ImportError:  # pragma: no cover
    pass


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(0)


# ---------------------------------------------------------------------------------------------
# One tiny synthetic-studio recording shared by every test that needs a capture with ground
# truth: 3 cameras at 64x80, 3 frames at 25 fps, an 8+8 head model. Tests must not modify it:
# copy it (shutil.copytree) before writing into the tree.

TINY_STUDIO = dict(
    n_cameras=3,
    width=64,
    height=80,
    duration_s=0.12,
    fps=25.0,
    n_shape=8,
    n_expression=8,
    landmark_outlier_prob=0.0,
)


class TinyStudio:
    """Where the shared tiny recording lives and how it was made."""

    subject = "syn000"
    sequence = "SEN-00"

    def __init__(self, root, config, summary):
        self.root = root
        self.config = config
        self.summary = summary
        self.head_dir = root / "head"
        self.capture_root = root / "capture"
        self.gt_root = root / "ground_truth"

    @property
    def sequence_dir(self):
        from talkhead.capture import layout

        return layout.sequence_dir(self.capture_root, self.subject, self.sequence)

    @property
    def gt_dir(self):
        from talkhead.evaluation.ground_truth import ground_truth_dir

        return ground_truth_dir(self.gt_root, self.subject, self.sequence)

    def open(self, validate: bool = False):
        from talkhead.capture.sequence import open_sequence

        return open_sequence(self.capture_root, self.subject, self.sequence, validate=validate)


@pytest.fixture(scope="session")
def tiny_studio(tmp_path_factory) -> TinyStudio:
    from talkhead.synth.config import StudioConfig
    from talkhead.synth.studio import render_sequence, write_head_model_for

    root = tmp_path_factory.mktemp("tiny_studio")
    cfg = StudioConfig(**TINY_STUDIO)
    studio = TinyStudio(root, cfg, None)
    write_head_model_for(cfg, studio.head_dir / "generic_model.pkl")
    studio.summary = render_sequence(
        studio.head_dir,
        studio.capture_root,
        studio.gt_root,
        studio.subject,
        studio.sequence,
        cfg,
        progress=False,
    )
    return studio


# ---------------------------------------------------------------------------------------------
# The tiny end-to-end workflow run (tests/configs/tiny.yaml) and its report, made once per test
# session: tests/test_workflow_e2e.py checks its outputs, tests/test_report_browser.py opens
# its report in a browser. Minutes on 2 cores (the tests that use it are marked slow).

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"


def copy_workflow(work: Path) -> None:
    """The workflow's files in ``work``, with the tiny config at config/tiny.yaml."""
    work.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "workflow", "config", "profiles", "envs", "src"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
    shutil.copy(TINY, work / "config" / "tiny.yaml")


@pytest.fixture(scope="session")
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
