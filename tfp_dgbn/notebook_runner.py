"""Execute the story notebooks (``notebooks/*.ipynb``) top to bottom with nbclient.

Each notebook has one cell tagged ``parameters`` (its sizes). Like papermill,
`run_notebook` inserts a cell after it that overrides chosen values, so the test
suite runs every notebook at a small size and ``dgbn notebooks`` at full size.
Notebooks are stored without outputs; executed copies go to ``out_dir``.
"""
import os
import time

from tfp_dgbn.validate import InputError

NOTEBOOKS = ("01_simple_distribution.ipynb", "02_discrete_distribution.ipynb", "03_ring_dataset.ipynb",
             "04_generative_rings.ipynb", "05_savedmodel_and_tensorboard.ipynb", "06_real_tables.ipynb",
             "07_seed_rings.ipynb")

# Sizes at which the whole story runs in the test suite (tests/test_notebooks.py).
SMALL = {
    "01_simple_distribution.ipynb": {"EPOCHS": 5, "N_TRAIN": 300, "N_TEST": 300},
    "02_discrete_distribution.ipynb": {"EPOCHS": 5, "N_TRAIN": 300, "N_TEST": 300},
    "03_ring_dataset.ipynb": {"N_RINGS": 300, "REPLICAS": 20},
    "04_generative_rings.ipynb": {"N_TRAIN": 1000, "EPOCHS": 1, "N_TEST": 200, "COMPARE_N_TRAIN": 500,
                                  "COMPARE_EPOCHS": 2},
    "05_savedmodel_and_tensorboard.ipynb": {},
    "06_real_tables.ipynb": {"EPOCHS": 8, "CLASS_EPOCHS": 4, "ENSEMBLE": 2},
    "07_seed_rings.ipynb": {"N_TRAIN": 600, "EPOCHS": 1, "N_TEST": 100},
}


def notebook_dir():
    """The repository's ``notebooks/`` folder."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks")


def run_notebook(path, parameters=None, workdir=".", out=None, timeout=3600):
    """Execute one notebook; returns the executed `nbformat.NotebookNode`.

    Args:
      path: the ``.ipynb`` file.
      parameters: dict of values overriding the ``parameters`` cell (repr'd into code).
      workdir: working directory of the kernel (relative paths in the notebook resolve there).
      out: where to write the executed copy (optional).
      timeout: seconds allowed per cell.

    Raises:
      nbclient.exceptions.CellExecutionError naming the failing cell.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    if parameters:
        index = next((i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])),
                     None)
        if index is None:
            raise InputError(f"{path!r} has no cell tagged 'parameters'")
        source = "# Injected parameters\n" + "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
        nb.cells.insert(index + 1, cell)
    os.makedirs(workdir, exist_ok=True)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": os.path.abspath(workdir)}}).execute()
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        nbformat.write(nb, out)
    return nb


def run_all(small=False, workdir=".", out_dir=os.path.join("runs", "notebooks", "executed"), names=NOTEBOOKS):
    """Execute the notebooks in order (05 reads what 04 exported); returns {name: seconds}."""
    times = {}
    for name in names:
        t = time.time()
        print(f"[dgbn] running {name}" + (" (small)" if small else ""), flush=True)
        run_notebook(os.path.join(notebook_dir(), name), SMALL[name] if small else None, workdir,
                     os.path.join(out_dir, name))
        times[name] = time.time() - t
    return times
