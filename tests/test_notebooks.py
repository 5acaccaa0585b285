"""The story notebooks: stored clean, and executed top to bottom at small size through nbclient."""
import os

import nbformat
import pytest

from tfp_dgbn.notebook_runner import NOTEBOOKS, SMALL, notebook_dir, run_all


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_stored_without_outputs_and_has_one_parameter_cell(name):
    nb = nbformat.read(os.path.join(notebook_dir(), name), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    for key in SMALL[name]:  # every small-size override names a real parameter
        assert f"{key} = " in tagged[0].source


def _stdout(nb):
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                   if o.get("output_type") == "stream")


@pytest.mark.slow
def test_all_notebooks_run_top_to_bottom_at_small_size(tmp_path):
    out_dir = tmp_path / "executed"
    times = run_all(small=True, workdir=str(tmp_path), out_dir=str(out_dir))  # raises on any failing cell
    assert list(times) == list(NOTEBOOKS)
    executed = {n: nbformat.read(str(out_dir / n), as_version=4) for n in NOTEBOOKS}
    for name, nb in executed.items():
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("output_type") == "error"]
        assert not errors, name
    # Each notebook produced what its story needs: figures and its key numbers.
    images = {n: sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                     for o in c.outputs) for n, nb in executed.items()}
    assert images["01_simple_distribution.ipynb"] >= 3 and images["03_ring_dataset.ipynb"] >= 3
    assert images["04_generative_rings.ipynb"] >= 3 and images["05_savedmodel_and_tensorboard.ipynb"] >= 2
    assert "NLL gap" in _stdout(executed["01_simple_distribution.ipynb"])
    assert "TV to the true pmf" in _stdout(executed["02_discrete_distribution.ipynb"])
    assert "chi^2/ndf" in _stdout(executed["03_ring_dataset.ipynb"])
    assert "explained fraction" in _stdout(executed["04_generative_rings.ipynb"])
    assert "90% interval" in _stdout(executed["05_savedmodel_and_tensorboard.ipynb"])
    real = _stdout(executed["06_real_tables.ipynb"])
    assert "MPa" in real and "Bayesian ensemble of 2" in real and "held-out accuracy" in real
    assert images["06_real_tables.ipynb"] >= 3
