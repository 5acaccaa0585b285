"""Shared fixtures. The end-to-end fit is done once per session and reused."""
import os
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tfp_dgbn  # noqa: E402,F401  (sets the Keras 2 switch before TF loads)
from tfp_dgbn.fit.distribute import configure_cpu_devices  # noqa: E402

# Two logical CPU devices for the MirroredStrategy tests; it must happen
# before the first TensorFlow op. Single-device code runs on the first.
configure_cpu_devices(2)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable


@pytest.fixture(scope="session")
def gaussian_fit(tmp_path_factory):
    """toy-gaussian with the issue's setting: 2,000 training points, default KL weight 1."""
    from tfp_dgbn.tasks.runner import fit

    root = tmp_path_factory.mktemp("gaussian")
    return fit("toy-gaussian", n_train=2000, logdir=str(root / "logs"), out=str(root / "export"), plot_every=100,
               verbose=0, seed=0)
