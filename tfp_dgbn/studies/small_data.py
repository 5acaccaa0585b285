"""Small-data robustness: Bayesian vs deterministic vs MC-dropout networks of the same architecture.

For each training size (default 50, 200, 1,000, 5,000 examples of a warm-up
toy), three MLPs with the same layers (hidden 32-32, Normal or Poisson head)
are trained with the same optimiser and number of steps:
  - Bayesian: Flipout layers, priors N(0, 2 / fan_in) on kernels (He scaling:
    a width-independent prior over functions), KL weight w (a tempered
    posterior, w = 1 is the plain negative ELBO);
  - deterministic: point weights, maximum likelihood (no knob);
  - MC dropout: point weights with dropout rate p after each hidden layer,
    kept on at prediction (Gal & Ghahramani, 2016).
The one regularisation knob of each (w, p) is chosen per training set by
K-fold cross-validation on that training set alone (held-out NLL of the
folds), from a grid fixed in advance: the test set never picks a setting.
Each model is then retrained on the whole training set and scored on the same
held-out set: NLL of its predictive (mixture over S draws; one for the
deterministic net), its paired difference to the Bayesian net's with a
standard error, and the coverage of central 90% intervals.
`dgbn small-data` writes a figure, a markdown table and the rows as JSON.
"""
import os
import time
from dataclasses import dataclass

import numpy as np

from tfp_dgbn import seeds
from tfp_dgbn.evaluate.metrics import interval_coverage, mean_se
from tfp_dgbn.model.heads import make_head
from tfp_dgbn.simulate.toys import make_toy
from tfp_dgbn.studies.fitting import cross_validate, log_predictive, train_mlp
from tfp_dgbn.validate import InputError

SIZES = (50, 200, 1000, 5000)
BAYESIAN = "Bayesian (Flipout)"


@dataclass(frozen=True)
class ModelSpec:
    """One contender: fixed `bayesian_mlp` arguments and the knob chosen by cross-validation.

    Attributes:
      build: keyword arguments of `bayesian_mlp` (kind, prior, ...).
      knob: the `bayesian_mlp` argument selected per training set, or None.
      grid: candidate values of ``knob``; the first is used without cross-validation.
    """

    build: dict
    knob: str = None
    grid: tuple = ()

    @property
    def default(self):
        """The knob's value without cross-validation (the grid's first), or None without a knob."""
        return self.grid[0] if self.grid else None


MODELS = {
    # Mean-field VI with w = 1 over-regularises wide networks on few examples (the posterior falls back to
    # the prior and the predictive is far too wide: docs/uncertainty.md), hence the tempered grid.
    BAYESIAN: ModelSpec(dict(kind="flipout", prior_fan_in=True, prior_scale=float(np.sqrt(2.0))),
                        "kl_weight", (1.0, 0.3, 0.1, 0.03)),
    "deterministic": ModelSpec(dict(kind="deterministic")),
    "MC dropout": ModelSpec(dict(kind="deterministic"), "dropout", (0.1, 0.05, 0.2, 0.4)),
}


def _train(name, toy, family, x, y, steps, seed, setting=None):
    spec = MODELS[name]
    build = dict(spec.build)
    if spec.knob is not None:
        build[spec.knob] = spec.default if setting is None else setting
    return train_mlp(x, y, lambda: make_head(family), steps, seed, feature_mean=[0.5 * (toy.x_low + toy.x_high)],
                     feature_std=[(toy.x_high - toy.x_low) / np.sqrt(12.0)], **build)


def _log_prob(name, model, x, y, num_samples):
    """Per-example log predictive density [n] (float64) and the predictive distribution."""
    spec = MODELS[name]
    stochastic = spec.build["kind"] != "deterministic" or spec.knob == "dropout" or spec.build.get("dropout")
    return log_predictive(model, x, y, num_samples, stochastic)


def select_setting(name, toy, family, x, y, steps, seed, folds=3, num_samples=32):
    """Choose a model's knob by K-fold cross-validation on one training set.

    Args:
      name: a key of `MODELS`.
      toy, family: the warm-up problem (`make_toy`) and its head family.
      x, y: the training set ([n, 1], [n]); nothing else is looked at.
      steps: gradient steps per fold fit (the study's budget).
      seed: seeds the fold permutation and (+ k) the fit of fold k.
      folds: K (>= 2).
      num_samples: predictive draws S scoring each fold.

    Returns:
      (chosen value or None, {value: mean fold NLL in nats/example}).
    """
    spec = MODELS[name]
    if spec.knob is None or not spec.grid:
        return spec.default, {}

    def fold_nll(value, fit, held, k):
        model = _train(name, toy, family, x[fit], y[fit], steps, seed + k, setting=value)
        return -_log_prob(name, model, x[held], y[held], num_samples)[0]

    return cross_validate(spec.grid, fold_nll, len(y), folds, seed)


def small_data_study(task="toy-gaussian", sizes=SIZES, steps=3000, n_test=5000, num_samples=64, seed=0,
                     folds=3, settings=None, progress=print):
    """Train every model at every size; returns a list of result rows (dicts).

    Args:
      task: "toy-gaussian" (Normal head) or "toy-discrete" (Poisson head).
      sizes: training-set sizes (each drawn with its own seed, nested in none).
      steps: gradient steps per model (the same for all, whatever the size).
      n_test: held-out examples (one set for all).
      num_samples: predictive draws S (Bayesian and MC dropout).
      folds: K of the cross-validation choosing each model's knob; 0 uses
        the first grid value (KL weight 1, dropout 0.1) without selection.
      settings: optional {model name: knob value} fixing a knob at every
        size instead of selecting it (e.g. to re-run what a study chose).

    Returns:
      One dict per (size, model): n_train, model, setting (the chosen knob
      value), cv_nll ({value: fold NLL}), nll, nll_true, coverage90,
      coverage_se, nll_minus_bayesian (+ _se), seconds.
    """
    tunable = [name for name, spec in MODELS.items() if spec.knob]
    unknown = sorted(set(settings or {}) - set(tunable))
    if unknown:
        raise InputError(f"settings name models without a knob: {unknown}; choose from {tunable}")
    toy = make_toy(task)
    family = "normal" if task == "toy-gaussian" else "poisson"
    x_test, y_test = toy.sample(n_test, seed=seeds.key(seed, "test"))
    nll_true = -toy.true_distribution(x_test).log_prob(y_test).numpy().astype("float64")
    rows = []
    for n in sizes:
        x, y = toy.sample(int(n), seed=seeds.key(seed, "train", n))
        lps = {}
        for name, spec in MODELS.items():
            t = time.time()
            if settings and name in settings:
                setting, cv = settings[name], {}
            elif folds:
                setting, cv = select_setting(name, toy, family, x, y, steps, seed, folds, num_samples)
            else:
                setting, cv = spec.default, {}
            model = _train(name, toy, family, x, y, steps, seed, setting)
            lps[name], dist = _log_prob(name, model, x_test, y_test, num_samples)
            cov = interval_coverage(dist, y_test, (0.9,))[0.9]
            rows.append({"n_train": int(n), "model": name, "knob": spec.knob, "setting": setting, "cv_nll": cv,
                         "nll": float(-lps[name].mean()), "nll_true": float(nll_true.mean()),
                         "coverage90": cov["coverage"], "coverage_se": cov["se"], "seconds": time.time() - t})
            chosen = "" if spec.knob is None else f"{spec.knob} {setting:g}"
            progress(f"n = {n:5d}  {name:20s} {chosen:16s} NLL {rows[-1]['nll']:.4f}  "
                     f"90% coverage {cov['coverage']:.3f}")
        ref = lps[BAYESIAN]
        for row in rows[-len(MODELS):]:
            diff = -lps[row["model"]] - (-ref)  # > 0: worse than the Bayesian net
            row["nll_minus_bayesian"], row["nll_minus_bayesian_se"] = mean_se(diff)
    return rows


def write_small_data_report(rows, out_dir, task, steps):
    """Write ``small_data.png`` (excess NLL and coverage vs size), ``small_data.md`` (the table) and
    ``small_data.json`` (the rows) in ``out_dir``."""
    import json

    from tfp_dgbn.atomic import atomic_file
    from tfp_dgbn.plots.figures import plt, save_figure

    os.makedirs(out_dir, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    # Excess NLL over the true law's on the same points (an estimate of E_x KL(true || predictive)) on a log
    # axis: an overfitted net's hundreds of nats and the few millinats between good ones both stay readable.
    floor = 1e-4
    for i, name in enumerate(MODELS):
        r = [row for row in rows if row["model"] == name]
        n = [row["n_train"] for row in r]
        axes[0].plot(n, [max(row["nll"] - row["nll_true"], floor) for row in r], "o-", color=f"C{i}", label=name)
        axes[1].errorbar(n, [row["coverage90"] for row in r], yerr=[2 * row["coverage_se"] for row in r],
                         fmt="o-", color=f"C{i}", label=name)
    axes[0].set(xscale="log", yscale="log", xlabel="training examples",
                ylabel="held-out NLL - true law's (nats/example)", title=f"{task}: excess held-out NLL")
    if any(row["nll"] - row["nll_true"] < floor for row in rows):
        axes[0].axhline(floor, color="grey", lw=0.5, label=f"<= {floor:g} drawn at {floor:g}")
    axes[1].axhline(0.9, color="k", ls="--", label="nominal 0.9")
    axes[1].set(xscale="log", xlabel="training examples", ylabel="coverage of 90% intervals", ylim=(0, 1.02),
                title="interval coverage")
    # After the last set(xscale=...), which resets the tick locators.
    sizes = sorted({row["n_train"] for row in rows})
    for ax in axes:
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.xaxis.set_minor_locator(plt.NullLocator())  # the log axis would add 6x10^1-style labels
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save_figure(fig, os.path.join(out_dir, "small_data.png"))
    lines = [f"# Small-data robustness: {task}, {steps} gradient steps per model", "",
             "| n train | model | chosen by CV (fold NLL per candidate) | held-out NLL | minus Bayesian (+- SE) "
             "| 90% coverage |", "|---|---|---|---|---|---|"]
    for row in rows:
        chosen = "-" if row["knob"] is None else f"{row['knob']} {row['setting']:g}"
        if row["cv_nll"]:
            # float(): rows reloaded from small_data.json have the candidate values as string keys
            chosen += " (" + ", ".join(f"{float(v):g}: {s:.3f}" for v, s in row["cv_nll"].items()) + ")"
        lines.append(f"| {row['n_train']} | {row['model']} | {chosen} | {row['nll']:.4f} | "
                     f"{row['nll_minus_bayesian']:+.4f} +- {row['nll_minus_bayesian_se']:.4f} | "
                     f"{row['coverage90']:.3f} |")
    lines += ["", f"True-law NLL (conditional entropy estimate): {rows[0]['nll_true']:.4f}. Written by "
              f"`dgbn small-data --task {task}`.", ""]
    with atomic_file(os.path.join(out_dir, "small_data.md"), "w") as f:
        f.write("\n".join(lines))
    with atomic_file(os.path.join(out_dir, "small_data.json"), "w") as f:
        json.dump({"task": task, "steps": int(steps), "rows": rows}, f, indent=1)
