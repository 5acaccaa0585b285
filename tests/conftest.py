"""Shared fixtures. The end-to-end fit is done once per session and reused."""
import os
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
    """Set up TensorFlow in every process that runs tests (not in pytest-xdist's controller, which runs none)."""
    if getattr(config.option, "numprocesses", None) and not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    import tfp_dgbn  # noqa: F401  (sets the Keras 2 switch before TF loads)
    from tfp_dgbn.fit.distribute import configure_cpu_devices

    # Two logical CPU devices for the MirroredStrategy tests; it must happen
    # before the first TensorFlow op. Single-device code runs on the first.
    configure_cpu_devices(2)


# Run in parallel with `pytest -n 2 --dist loadfile` (pytest-xdist): every test of a file goes to
# one worker, so a module-scoped fit is made once. (`--dist loadgroup` with xdist_group marks does
# not group under pytest 9: the group suffix it writes to `item._nodeid` never reaches the nodeid;
# seen with pytest 9.2.0 and pytest-xdist 3.8.0.) The session's gaussian fit is made once per
# worker that runs one of its three files. The longest test starts first so that it does not set
# the makespan alone.
START_FIRST = ("test_notebooks.py",)


def pytest_collection_modifyitems(config, items):
    """Start the longest test file first (xdist hands out files in collection order)."""
    items.sort(key=lambda item: os.path.basename(item.nodeid.split("::")[0]) not in START_FIRST)


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable


@pytest.fixture(scope="session")
def gaussian_fit(tmp_path_factory):
    """toy-gaussian with the issue's setting: 2,000 training points, default KL weight 1."""
    from tfp_dgbn.tasks.runner import fit

    root = tmp_path_factory.mktemp("gaussian")
    return fit("toy-gaussian", n_train=2000, logdir=str(root / "logs"), out=str(root / "export"), plot_every=100,
               verbose=0, seed=0)
