import os

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
