"""The one place that picks Matplotlib's backend, and figures every run writes (training curves)."""
import sys

import matplotlib

# Figures go to files and TensorBoard, so scripts need no screen: Agg. Inside a
# Jupyter kernel keep its inline backend, or notebooks would show no figures.
if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

PREDICTED = "C0"  # blue
TRUE = "C1"  # orange


def plot_history(history, keys=("nll", "kl", "kl_weight")):
    """Training curves of ``keys`` (and their ``val_`` twins) from a Keras History dict."""
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2))
    for ax, key in zip(np.atleast_1d(axes), keys):
        for name, style in ((key, "-"), ("val_" + key, "--")):
            if name in history:
                ax.plot(np.arange(1, len(history[name]) + 1), history[name], style, label=name)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def save_figure(fig, path, dpi=100):
    """Write ``fig`` to ``path`` (PNG) atomically, then close it (so notebooks do not show it twice)."""
    from tfp_dgbn.atomic import atomic_file

    with atomic_file(path, "wb") as f:
        fig.savefig(f, format="png", dpi=dpi)
    plt.close(fig)
    return path
