"""Compare KL strategies on the ring generator: same data, same budget, one command.

`dgbn compare-kl` trains the ring generator once per strategy (constant weight
1, the step "factor switch", the adaptive "kl_factor adjust", a linear
warm-up), each with its own TensorBoard run under ``<logdir>/<strategy>`` so
TensorBoard overlays their image-loss, KL-loss and kl_weight curves, and
writes a figure of the curves (PNG) and a table of the final metrics (markdown).
"""
import os

import numpy as np

from tfp_dgbn.atomic import atomic_file
from tfp_dgbn.validate import InputError


def strategies(epochs):
    """Schedule specs per strategy for a run of ``epochs`` epochs (all but adaptive end at weight 1)."""
    half = max(epochs // 2, 1)
    return {
        "constant": "constant:weight=1",
        "factor switch": f"step:w0=0.01,w1=1,epoch={half}",
        "kl_factor adjust": "adaptive:target=0.8,quantity=kl_raw,initial=0.01,max_step=0.3,max=1",
        "linear warm-up": f"linear:start=0,end=1,epochs={half}",
    }


def compare_kl_strategies(base_config, out_dir, names=None):
    """Train once per strategy and write ``kl_strategies.png`` and ``kl_strategies.md`` to ``out_dir``.

    Args:
      base_config: `tfp_dgbn.tasks.rings.RingSettings`; its kl_schedule, logdir and out are replaced per strategy
        (logdir/<strategy>, out/<strategy>).
      out_dir: where the figure and table go.
      names: subset of `strategies` (default all).

    Returns:
      dict strategy -> (history, metrics).
    """
    import dataclasses

    from matplotlib.ticker import MaxNLocator

    from tfp_dgbn.tasks.runner import run
    from tfp_dgbn.plots.figures import plt, save_figure

    specs = strategies(base_config.epochs)
    names = names or list(specs)
    unknown = set(names) - set(specs)
    if unknown:
        raise InputError(f"unknown strategies {sorted(unknown)}; choose from {sorted(specs)}")
    results = {}
    for name in names:
        slug = name.replace(" ", "_")
        config = dataclasses.replace(base_config, kl_schedule=specs[name],
                                     logdir=os.path.join(base_config.logdir, slug),
                                     out=os.path.join(base_config.out, slug))
        print(f"[dgbn] strategy {name!r}: {specs[name]}", flush=True)
        result = run(config)
        results[name] = (result.history, result.metrics)

    os.makedirs(out_dir, exist_ok=True)

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for i, (name, (history, _)) in enumerate(results.items()):
        epochs = np.arange(1, len(history["nll"]) + 1)
        for ax, key in zip(axes, ("nll", "kl", "kl_weight")):
            ax.plot(epochs, history[key], "-o", color=f"C{i}", label=name)
            if "val_" + key in history and key != "kl_weight":
                ax.plot(epochs, history["val_" + key], "--", color=f"C{i}", alpha=0.6)
    for ax, title in zip(axes, ("image loss (NLL, nats/image; dashed: validation)",
                                "KL loss (kl_weight * KL / N, nats/image)", "kl_weight")):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, os.path.join(out_dir, "kl_strategies.png"))

    rows = ["| strategy | schedule | final kl_weight | KL gap (nats/image) | explained | "
            "image loss | KL loss | KL raw | median posterior sd | ring W1 / floor (worst) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name, (history, m) in results.items():
        rows.append(f"| {name} | `{specs[name]}` | {m['final_kl_weight']:.3g} | {m['kl_gap']:.3f} +- "
                    f"{m['kl_gap_se']:.3f} | {m['explained_fraction']:.3f} | {history['nll'][-1]:.2f} | "
                    f"{history['kl'][-1]:.3f} | {history['kl_raw'][-1]:.3f} | "
                    f"{m['posterior_stddev']['median']:.2g} | {m['ring_w1_worst_ratio']:.2f} |")
    c = base_config
    text = "\n".join([f"KL strategies on the ring generator: {c.n_train} training rings, {c.epochs} epochs, "
                      f"seed {c.seed}, {c.n_test} held-out rings, S = {c.num_samples} weight draws.", ""] + rows)
    with atomic_file(os.path.join(out_dir, "kl_strategies.md"), "w") as f:
        f.write(text + "\n")
    print(text)
    return results
