"""`dgbn evaluate`: how far a model's uncertainty can be trusted, as a report (markdown, PNG, TensorBoard).

For held-out (x, y) and a `Predictor` with scalar targets:
  NLL (nats/example, the mixture over S weight draws) with its standard error;
  calibration: coverage of central 50/80/90/95% intervals, the PIT histogram
  (randomised for counts), and for categorical heads the ECE and reliability diagram;
  uncertainty split: mean epistemic and aleatoric variance (law of total variance;
  for categorical heads also mutual information and expected entropy, in nats);
  out-of-distribution: epistemic uncertainty at features inside the training ranges
  (from the export's metadata) vs pushed outside them.
"""
import json
import os

import numpy as np
import tensorflow as tf

from tfp_dgbn.evaluate.metrics import (LEVELS, expected_calibration_error, interval_coverage, mean_se,
                                       mutual_information, pit_histogram, pit_values)
from tfp_dgbn.predict import mixture


def _epistemic(predictor, draws):
    """Per-example epistemic measure: mutual information for categorical heads, else Var_w E[y | w]."""
    if predictor.head.family == "categorical":
        probs = predictor.head.from_named(draws).probs_parameter().numpy()
        return mutual_information(probs)[0]
    return np.asarray(predictor.summarize(draws)["epistemic_variance"], "float64")


def ood_points(ranges, n, seed=0, push=(0.5, 1.0)):
    """Feature rows inside the training ranges, and the same rows with one feature pushed outside.

    Args:
      ranges: [(low, high)] per feature (the export's ``feature_ranges``).
      n: rows.
      push: how far outside, in range widths (uniform in this interval), on a random side.

    Returns:
      (inside [n, D], outside [n, D]) float32.
    """
    rng = np.random.default_rng(seed)
    lo, hi = np.asarray(ranges, "float64").T
    inside = rng.uniform(lo, hi, size=(n, len(lo)))
    outside = inside.copy()
    j = rng.integers(len(lo), size=n)
    width = (hi - lo)[j]
    side = rng.choice([-1.0, 1.0], size=n)
    d = rng.uniform(*push, size=n) * width
    outside[np.arange(n), j] = np.where(side > 0, hi[j] + d, lo[j] - d)
    return inside.astype("float32"), outside.astype("float32")


def evaluate_predictive(predictor, x, y, num_samples=256, seed=0, levels=LEVELS, ood_rows=500):
    """Metrics of the module docstring, as a JSON-able dict."""
    x = predictor.check(x)
    y = np.asarray(y)
    draws = predictor.draws(x, num_samples)
    dist = mixture(predictor.head, draws)
    lp = dist.log_prob(tf.constant(y, dist.dtype)).numpy().astype("float64")
    u = pit_values(dist, y, seed)
    summary = predictor.summarize(draws)
    nll, nll_se = mean_se(-lp)
    out = {"n": int(len(y)), "num_samples": int(num_samples), "family": predictor.head.family,
           "nll": nll, "nll_se": nll_se,
           "pit": pit_histogram(u), "coverage": interval_coverage(dist, y, levels),
           "epistemic_variance": float(np.mean(summary["epistemic_variance"])),
           "aleatoric_variance": float(np.mean(summary["aleatoric_variance"]))}
    out["epistemic_fraction"] = out["epistemic_variance"] / (out["epistemic_variance"] + out["aleatoric_variance"])
    if predictor.head.family == "categorical":
        probs = predictor.head.from_named(draws).probs_parameter().numpy()
        mi, expected_entropy = mutual_information(probs)
        out["mutual_information"] = float(mi.mean())
        out["expected_entropy"] = float(expected_entropy.mean())
        out["calibration"] = expected_calibration_error(probs.mean(axis=0), y)
    ranges = predictor.metadata.get("feature_ranges")
    if ranges and ood_rows:
        inside, outside = ood_points(ranges, ood_rows, seed)
        e_in = _epistemic(predictor, predictor.draws(inside, num_samples))
        e_out = _epistemic(predictor, predictor.draws(outside, num_samples))
        out["ood"] = {"epistemic_inside": float(e_in.mean()), "epistemic_outside": float(e_out.mean()),
                      "ratio": float(e_out.mean() / max(e_in.mean(), 1e-30)),
                      "fraction_outside_above_inside_median": float((e_out > np.median(e_in)).mean()),
                      "measure": "mutual information" if predictor.head.family == "categorical"
                      else "epistemic variance"}
    return out


def _figures(metrics, predictor, num_samples):
    from tfp_dgbn.plots.figures import plt

    figs = {}
    pit = metrics["pit"]
    bins = len(pit["fractions"])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar((np.arange(bins) + 0.5) / bins, pit["fractions"], width=1 / bins, color="C0", edgecolor="white",
           label="held-out PIT")
    se = np.sqrt((1 / bins) * (1 - 1 / bins) / pit["n"])
    ax.axhspan(1 / bins - 2 * se, 1 / bins + 2 * se, color="C1", alpha=0.3, label="uniform +- 2 SE")
    ax.set(xlabel="PIT value" + (" (randomised)" if metrics["family"] != "normal" else ""), ylabel="fraction",
           title=f"PIT histogram (chi^2 p = {pit['chi2_p']:.3f})")
    ax.legend(fontsize=8)
    figs["pit"] = fig

    fig, ax = plt.subplots(figsize=(5, 3.5))
    levels = sorted(metrics["coverage"])
    cov = [metrics["coverage"][lv]["coverage"] for lv in levels]
    err = [2 * metrics["coverage"][lv]["se"] for lv in levels]
    ax.plot([0, 1], [0, 1], color="C1", label="nominal")
    ax.errorbar(levels, cov, yerr=err, fmt="o", color="C0", label="held-out (+- 2 SE)")
    ax.set(xlabel="central interval level", ylabel="coverage", xlim=(0.4, 1), ylim=(0.4, 1),
           title="Interval coverage")
    ax.legend(fontsize=8)
    figs["coverage"] = fig

    if "calibration" in metrics:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        table = metrics["calibration"]["bins"]
        ax.plot([0, 1], [0, 1], color="C1", label="perfect")
        ax.plot([b["confidence"] for b in table], [b["accuracy"] for b in table], "o-", color="C0",
                label="held-out")
        ax.set(xlabel="confidence (top-class probability)", ylabel="accuracy",
               title=f"Reliability diagram (ECE {metrics['calibration']['ece']:.3f})")
        ax.legend(fontsize=8)
        figs["reliability"] = fig

    ranges = predictor.metadata.get("feature_ranges")
    if ranges and len(ranges) == 1:
        lo, hi = ranges[0]
        grid = np.linspace(lo - (hi - lo), hi + (hi - lo), 121, dtype="float32")[:, None]
        s = predictor.summary(grid, num_samples)
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(grid[:, 0], np.sqrt(np.ravel(s["epistemic_variance"])), color="C0", label="epistemic sd")
        ax.plot(grid[:, 0], np.sqrt(np.ravel(s["aleatoric_variance"])), color="C1", label="aleatoric sd")
        ax.axvspan(lo, hi, color="0.9", label="training range")
        ax.set(xlabel=predictor.metadata.get("feature_names", ["x"])[0], ylabel="predictive sd",
               title="Uncertainty inside and outside the training range")
        ax.legend(fontsize=8)
        figs["uncertainty"] = fig
    return figs


def _markdown(m, model_path, data_name):
    cov = m["coverage"]
    lines = [f"# Evaluation of `{model_path}`", "", f"Data: {data_name}; {m['n']} examples; {m['family']} head; "
             f"S = {m['num_samples']} weight draws.", "",
             f"- NLL: **{m['nll']:.4f} +- {m['nll_se']:.4f}** nats/example",
             f"- PIT: max deviation from uniform {m['pit']['max_deviation']:.4f} per bin "
             f"(chi^2 p = {m['pit']['chi2_p']:.3f}) — `pit.png`",
             f"- uncertainty split: mean epistemic variance {m['epistemic_variance']:.4g}, aleatoric "
             f"{m['aleatoric_variance']:.4g} (epistemic fraction {m['epistemic_fraction']:.3f})", "",
             "| central interval | coverage | +- 2 SE |", "|---|---|---|"]
    lines += [f"| {lv:.0%} | {cov[lv]['coverage']:.3f} | {2 * cov[lv]['se']:.3f} |" for lv in sorted(cov)]
    if "calibration" in m:
        lines += ["", f"- ECE {m['calibration']['ece']:.4f} (`reliability.png`); mutual information "
                  f"{m['mutual_information']:.4f} nats (epistemic), expected entropy {m['expected_entropy']:.4f} "
                  "nats (aleatoric)"]
    if "ood" in m:
        o = m["ood"]
        lines += ["", f"Out of distribution ({o['measure']}): inside the training ranges {o['epistemic_inside']:.4g}, "
                  f"one feature pushed 0.5-1 range widths outside {o['epistemic_outside']:.4g} "
                  f"(**{o['ratio']:.1f}x**; {o['fraction_outside_above_inside_median']:.0%} of the outside rows "
                  "above the inside median)."]
    lines += ["", "Figures: `pit.png`, `coverage.png`" + (", `reliability.png`" if "calibration" in m else "")
              + (", `uncertainty.png`" if "ood" in m else "") + "; TensorBoard: `tensorboard/`.", ""]
    return "\n".join(lines)


def write_report(predictor, x, y, out_dir, model_path="model", data_name="held-out data", num_samples=256, seed=0):
    """Evaluate and write ``report.md``, ``metrics.json``, PNG figures and TensorBoard summaries to ``out_dir``.

    Returns:
      the metrics dict (as `evaluate_predictive`, without arrays).
    """
    from tfp_dgbn.atomic import atomic_file
    from tfp_dgbn.fit.callbacks import figure_to_image
    from tfp_dgbn.plots.figures import save_figure

    metrics = evaluate_predictive(predictor, x, y, num_samples=num_samples, seed=seed)
    os.makedirs(out_dir, exist_ok=True)
    figs = _figures(metrics, predictor, num_samples)
    writer = tf.summary.create_file_writer(os.path.join(out_dir, "tensorboard"))
    with writer.as_default():
        tf.summary.scalar("evaluate/nll", metrics["nll"], step=0)
        tf.summary.scalar("evaluate/pit_max_deviation", metrics["pit"]["max_deviation"], step=0)
        for level, c in metrics["coverage"].items():
            tf.summary.scalar(f"evaluate/coverage_{int(round(100 * level))}", c["coverage"], step=0)
        if "calibration" in metrics:
            tf.summary.scalar("evaluate/ece", metrics["calibration"]["ece"], step=0)
        if "ood" in metrics:
            tf.summary.scalar("evaluate/ood_epistemic_ratio", metrics["ood"]["ratio"], step=0)
        for name, fig in figs.items():
            tf.summary.image(f"evaluate/{name}", figure_to_image(fig), step=0)
    writer.close()
    for name, fig in figs.items():
        save_figure(fig, os.path.join(out_dir, f"{name}.png"))
    with atomic_file(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1, default=float)
    with atomic_file(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(_markdown(metrics, model_path, data_name))
    return metrics


def summary_lines(m):
    """Human-readable lines of a report's metrics (printed by ``dgbn evaluate`` and ``dgbn fit table``)."""
    cov = ", ".join(f"{float(k):.0%}: {v['coverage']:.3f}" for k, v in sorted(m["coverage"].items()))
    lines = [f"held-out NLL {m['nll']:.4f} +- {m['nll_se']:.4f} nats/example; interval coverage {cov}; "
             f"PIT max deviation {m['pit']['max_deviation']:.4f}"]
    if "calibration" in m:
        lines.append(f"ECE {m['calibration']['ece']:.4f}; mutual information {m['mutual_information']:.4f} nats")
    if "ood" in m:
        lines.append(f"{m['ood']['measure']} outside the training ranges / inside: {m['ood']['ratio']:.1f}x")
    return lines
