"""`dgbn evaluate`: how far a model's uncertainty can be trusted, as a report (markdown, PNG, TensorBoard).

For held-out (x, y) and a `Predictor` with scalar targets, always: NLL
(nats/example, the mixture over S weight draws) with its standard error, and
out-of-distribution behaviour: the held-out rows against the same rows with one
feature pushed 0.5-1 range widths outside the training ranges (from the
export's metadata).

Ordered targets (Normal, Poisson, counts with an ordinal categorical head):
  calibration: coverage of central 50/80/90/95% intervals and the PIT histogram
  (randomised for counts); uncertainty split: mean epistemic and aleatoric
  variance (law of total variance); OOD: the epistemic variance inside vs outside.
Unordered classes (categorical head): accuracy, Brier score, ECE with its
  reliability diagram, predictive entropy split into expected entropy
  (aleatoric) and mutual information (epistemic), their histograms, and OOD
  detection as the AUROC of entropy and of mutual information (held-out rows
  vs shifted rows). No intervals or PIT: classes have no order.
"""
import json
import os

import numpy as np
import tensorflow as tf

from tfp_dgbn import seeds
from tfp_dgbn.evaluate.metrics import (LEVELS, auroc, brier_score, expected_calibration_error, interval_coverage,
                                       mean_se, pit_histogram, pit_values)
from tfp_dgbn.model.heads import REAL_FAMILIES
from tfp_dgbn.predict import is_classes, mixture


def shifted_rows(x, ranges, n, seed=0, push=(0.5, 1.0)):
    """Up to ``n`` rows of ``x``, and the same rows with one random feature pushed outside its training range.

    Args:
      x: in-distribution rows [N, D].
      ranges: [(low, high)] per feature (the export's ``feature_ranges``).
      n: rows.
      push: how far outside, in range widths (uniform in this interval), on a random side.

    Returns:
      (inside [m, D], outside [m, D]) float32, m = min(n, N).
    """
    rng = seeds.rng(seed, "ood")
    inside = np.asarray(x, "float64")[rng.permutation(len(x))[:n]]
    lo, hi = np.asarray(ranges, "float64").T
    m = len(inside)
    outside = inside.copy()
    j = rng.integers(len(lo), size=m)
    d = rng.uniform(*push, size=m) * (hi - lo)[j]
    outside[np.arange(m), j] = np.where(rng.random(m) < 0.5, lo[j] - d, hi[j] + d)
    return inside.astype("float32"), outside.astype("float32")


def evaluate_predictive(predictor, x, y, num_samples=256, seed=0, levels=LEVELS, ood_rows=500):
    """Metrics of the module docstring, as a JSON-able dict."""
    x = predictor.check(x)
    y = np.asarray(y)
    draws = predictor.draws(x, num_samples)
    dist = mixture(predictor.head, draws)
    lp = dist.log_prob(tf.constant(y, dist.dtype)).numpy().astype("float64")
    summary = predictor.summarize(draws)
    nll, nll_se = mean_se(-lp)
    out = {"n": int(len(y)), "num_samples": int(num_samples), "family": predictor.head.family,
           "classes": is_classes(predictor.head), "nll": nll, "nll_se": nll_se}
    if out["classes"]:
        probs, labels = summary["probs"], y.astype("int64")
        out.update(accuracy=float((probs.argmax(axis=1) == labels).mean()), brier=brier_score(probs, labels),
                   calibration=expected_calibration_error(probs, labels))
        for key in ("predictive_entropy", "expected_entropy", "mutual_information"):
            out[key] = float(np.mean(summary[key]))
    else:
        out.update(pit=pit_histogram(pit_values(dist, y, seed)), coverage=interval_coverage(dist, y, levels),
                   epistemic_variance=float(np.mean(summary["epistemic_variance"])),
                   aleatoric_variance=float(np.mean(summary["aleatoric_variance"])))
        out["epistemic_fraction"] = out["epistemic_variance"] / (out["epistemic_variance"] + out["aleatoric_variance"])
    ranges = predictor.metadata.get("feature_ranges")
    if ranges and ood_rows:
        inside, outside = shifted_rows(x, ranges, ood_rows, seed)
        s_in, s_out = predictor.summary(inside, num_samples), predictor.summary(outside, num_samples)
        if out["classes"]:
            out["ood"] = {key: {"inside": float(np.mean(s_in[key])), "outside": float(np.mean(s_out[key])),
                                "auroc": auroc(s_in[key], s_out[key])}
                          for key in ("predictive_entropy", "mutual_information")}
        else:
            e_in, e_out = np.ravel(s_in["epistemic_variance"]), np.ravel(s_out["epistemic_variance"])
            out["ood"] = {"epistemic_inside": float(e_in.mean()), "epistemic_outside": float(e_out.mean()),
                          "ratio": float(e_out.mean() / max(e_in.mean(), 1e-30)),
                          "fraction_outside_above_inside_median": float((e_out > np.median(e_in)).mean()),
                          "auroc": auroc(e_in, e_out), "measure": "epistemic variance"}
    out["_summary"] = summary  # per-example values for the figures (not written)
    return out


def _value_figures(metrics, predictor, num_samples, plt):
    figs = {}
    pit = metrics["pit"]
    bins = len(pit["fractions"])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar((np.arange(bins) + 0.5) / bins, pit["fractions"], width=1 / bins, color="C0", edgecolor="white",
           label="held-out PIT")
    se = np.sqrt((1 / bins) * (1 - 1 / bins) / pit["n"])
    ax.axhspan(1 / bins - 2 * se, 1 / bins + 2 * se, color="C1", alpha=0.3, label="uniform +- 2 SE")
    ax.set(xlabel="PIT value" + (" (randomised)" if metrics["family"] not in REAL_FAMILIES else ""), ylabel="fraction",
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


def _class_figures(metrics, summary, plt):
    fig, ax = plt.subplots(figsize=(5, 3.5))
    table = metrics["calibration"]["bins"]
    ax.plot([0, 1], [0, 1], color="C1", label="perfect")
    ax.plot([b["confidence"] for b in table], [b["accuracy"] for b in table], "o-", color="C0", label="held-out")
    ax.set(xlabel="confidence (top-class probability)", ylabel="accuracy",
           title=f"Reliability diagram (ECE {metrics['calibration']['ece']:.3f})")
    ax.legend(fontsize=8)
    figs = {"reliability": fig}
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key, title in zip(axes, ("predictive_entropy", "mutual_information"),
                              ("predictive entropy (total)", "mutual information (epistemic)")):
        ax.hist(np.ravel(summary[key]), bins=30, color="C0")
        ax.set(xlabel="nats", ylabel="held-out examples", title=title)
    fig.tight_layout()
    figs["entropy"] = fig
    return figs


def _markdown(m, model_path, data_name):
    lines = [f"# Evaluation of `{model_path}`", "", f"Data: {data_name}; {m['n']} examples; {m['family']} head"
             + (" (unordered classes)" if m["classes"] else "") + f"; S = {m['num_samples']} weight draws.", "",
             f"- NLL: **{m['nll']:.4f} +- {m['nll_se']:.4f}** nats/example"]
    if m["classes"]:
        lines += [f"- accuracy {m['accuracy']:.4f}; Brier score {m['brier']:.4f}; ECE {m['calibration']['ece']:.4f} "
                  "(`reliability.png`)",
                  f"- uncertainty split: predictive entropy {m['predictive_entropy']:.4f} nats = expected entropy "
                  f"{m['expected_entropy']:.4f} (aleatoric) + mutual information {m['mutual_information']:.4f} "
                  "(epistemic) — `entropy.png`"]
        figures = ["reliability.png", "entropy.png"]
    else:
        cov = m["coverage"]
        lines += [f"- PIT: max deviation from uniform {m['pit']['max_deviation']:.4f} per bin "
                  f"(chi^2 p = {m['pit']['chi2_p']:.3f}) — `pit.png`",
                  f"- uncertainty split: mean epistemic variance {m['epistemic_variance']:.4g}, aleatoric "
                  f"{m['aleatoric_variance']:.4g} (epistemic fraction {m['epistemic_fraction']:.3f})", "",
                  "| central interval | coverage | +- 2 SE |", "|---|---|---|"]
        lines += [f"| {lv:.0%} | {cov[lv]['coverage']:.3f} | {2 * cov[lv]['se']:.3f} |" for lv in sorted(cov)]
        figures = ["pit.png", "coverage.png"] + ["uncertainty.png"] * ("ood" in m)
    if "ood" in m:
        o = m["ood"]
        lines += ["", "Out of distribution: the held-out rows against the same rows with one feature pushed 0.5-1 "
                  "range widths outside the training ranges."]
        if m["classes"]:
            lines += [f"- {k.replace('_', ' ')}: inside {v['inside']:.4f}, outside {v['outside']:.4f} nats; "
                      f"AUROC **{v['auroc']:.3f}** (0.5: no detection)" for k, v in o.items()]
        else:
            lines += [f"- epistemic variance: inside {o['epistemic_inside']:.4g}, outside {o['epistemic_outside']:.4g} "
                      f"(**{o['ratio']:.1f}x**; {o['fraction_outside_above_inside_median']:.0%} of the outside rows "
                      f"above the inside median; AUROC {o['auroc']:.3f})"]
    lines += ["", "Figures: " + ", ".join(f"`{f}`" for f in figures) + "; TensorBoard: `tensorboard/`.", ""]
    return "\n".join(lines)


def _scalars(m):
    """The report's headline numbers for TensorBoard: name -> value."""
    out = {"nll": m["nll"]}
    if m["classes"]:
        out.update(accuracy=m["accuracy"], brier=m["brier"], ece=m["calibration"]["ece"],
                   mutual_information=m["mutual_information"])
        out.update({f"ood_auroc_{k}": v["auroc"] for k, v in m.get("ood", {}).items()})
    else:
        out["pit_max_deviation"] = m["pit"]["max_deviation"]
        out.update({f"coverage_{int(round(100 * lv))}": c["coverage"] for lv, c in m["coverage"].items()})
        if "ood" in m:
            out["ood_epistemic_ratio"] = m["ood"]["ratio"]
    return out


def write_report(predictor, x, y, out_dir, model_path="model", data_name="held-out data", num_samples=256, seed=0):
    """Evaluate and write ``report.md``, ``metrics.json``, PNG figures and TensorBoard summaries to ``out_dir``.

    Returns:
      the metrics dict of `evaluate_predictive`.
    """
    from tfp_dgbn.atomic import atomic_file
    from tfp_dgbn.fit.callbacks import figure_to_image
    from tfp_dgbn.plots.figures import plt, save_figure

    metrics = evaluate_predictive(predictor, x, y, num_samples=num_samples, seed=seed)
    summary = metrics.pop("_summary")
    os.makedirs(out_dir, exist_ok=True)
    figs = (_class_figures(metrics, summary, plt) if metrics["classes"]
            else _value_figures(metrics, predictor, num_samples, plt))
    writer = tf.summary.create_file_writer(os.path.join(out_dir, "tensorboard"))
    with writer.as_default():
        for name, value in _scalars(metrics).items():
            tf.summary.scalar(f"evaluate/{name}", value, step=0)
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
    if m["classes"]:
        lines = [f"held-out NLL {m['nll']:.4f} +- {m['nll_se']:.4f} nats/example; accuracy {m['accuracy']:.4f}; "
                 f"Brier {m['brier']:.4f}; ECE {m['calibration']['ece']:.4f}",
                 f"entropy {m['predictive_entropy']:.4f} nats = expected entropy {m['expected_entropy']:.4f} + "
                 f"mutual information {m['mutual_information']:.4f}"]
        if "ood" in m:
            lines.append("out-of-range detection AUROC: " + ", ".join(
                f"{k.replace('_', ' ')} {v['auroc']:.3f}" for k, v in m["ood"].items()))
        return lines
    cov = ", ".join(f"{float(k):.0%}: {v['coverage']:.3f}" for k, v in sorted(m["coverage"].items()))
    lines = [f"held-out NLL {m['nll']:.4f} +- {m['nll_se']:.4f} nats/example; interval coverage {cov}; "
             f"PIT max deviation {m['pit']['max_deviation']:.4f}"]
    if "ood" in m:
        lines.append(f"{m['ood']['measure']} outside the training ranges / inside: {m['ood']['ratio']:.1f}x "
                     f"(AUROC {m['ood']['auroc']:.3f})")
    return lines
