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


# Run in parallel with `pytest -n 2 --dist loadfile` (pytest-xdist). The work units are files, so a
# module-scoped fit is made once, with two changes made by the scheduler below:
# - the files that use the session's gaussian fit form one unit, so that one worker makes it (it took
#   85-250 s, made once per worker that ran one of them);
# - each notebook group is a unit of its own (6.6 min for all notebooks in one unit set the makespan).
# (`--dist loadgroup` with xdist_group marks does not group under pytest 9: the group suffix it writes
# to `item._nodeid` never reaches the nodeid; seen with pytest 9.2.0 and pytest-xdist 3.8.0.)
# Units start longest first (LONGEST_FIRST, from the --durations of a fresh-clone run on 2 cores at
# 2dd4b3c), so that none of them starts last and sets the makespan alone; xdist's own reordering (by the
# number of tests in a unit) is turned off, since it started the one-test notebook units last.
LONGEST_FIRST = ("test_notebooks.py::test_notebooks_run_top_to_bottom_at_small_size[01+04+05]",
                 "test_notebooks.py::test_notebooks_run_top_to_bottom_at_small_size[07]",
                 "test_ring_model.py", "gaussian_fit", "test_real_data.py", "test_reliability.py",
                 "test_small_data.py", "test_cli.py", "test_pattern_generator.py", "test_ring_sources.py",
                 "test_distribute.py", "test_schedules.py", "test_ring_files.py", "test_fit_discrete.py",
                 "test_uci.py", "test_notebooks.py::test_notebooks_run_top_to_bottom_at_small_size[06]",
                 "test_notebooks.py::test_notebooks_run_top_to_bottom_at_small_size[02]")
UNITS = {name: "gaussian_fit" for name in ("test_fit_gaussian.py", "test_calibration.py", "test_own_data.py")}
SPLIT_PER_TEST = ("test_notebooks.py",)


def work_unit(nodeid):
    """The scheduling unit of a test: its file, its group of files (UNITS), or itself (SPLIT_PER_TEST)."""
    name = os.path.basename(nodeid.split("::", 1)[0])
    if name in SPLIT_PER_TEST:
        return nodeid
    return UNITS.get(name, nodeid.split("::", 1)[0])


def _rank(nodeid):
    """Position of a test's unit in LONGEST_FIRST (the rest after, in collection order)."""
    unit = work_unit(nodeid)
    for k, key in enumerate(LONGEST_FIRST):
        if unit == key or unit.endswith("/" + key) or os.path.basename(unit) == key:
            return k
    return len(LONGEST_FIRST)


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` with the units of `work_unit`, in collection order (any other --dist mode is
    left to xdist)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    config.option.loadscopereorder = False

    class UnitScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid):
            return work_unit(nodeid)

    return UnitScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    """Collect the longest units first (the scheduler hands units out in collection order)."""
    items.sort(key=lambda item: _rank(item.nodeid))


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable


@pytest.fixture(scope="session")
def gaussian_fit(tmp_path_factory):
    """toy-gaussian with the issue's setting: 2,000 training points, default KL weight 1."""
    from tfp_dgbn.tasks.runner import fit

    root = tmp_path_factory.mktemp("gaussian")
    return fit("toy-gaussian", n_train=2000, logdir=str(root / "logs"), out=str(root / "export"), plot_every=100,
               verbose=0, seed=0)
