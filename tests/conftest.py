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
