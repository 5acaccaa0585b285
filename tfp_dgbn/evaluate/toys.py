"""Held-out metrics of a predictive distribution against a known true law."""
import numpy as np

from tfp_dgbn.evaluate.metrics import interval_coverage, mean_se


def evaluate_toy(predictor, toy, x, y, num_samples=64, level=0.9, grid_size=21):
    """Compare the posterior predictive with the toy's exact law on held-out data.

    Args:
      predictor: a `tfp_dgbn.predict.Predictor`.
      toy: the problem (gives ``true_distribution``).
      x, y: held-out features [N, 1] and targets [N].
      num_samples: weight draws S in the predictive mixture.
      level: central interval probability for the coverage.
      grid_size: feature grid of the total-variation distance (discrete toys).

    Returns:
      dict with, in nats per example: ``nll`` (model, by the mixture's
      log-mean-exp over draws), ``nll_true`` (the true law on the same points,
      an estimate of H(y|x)), ``nll_gap`` = nll - nll_true and its standard
      error; ``coverage`` of the central ``level`` interval with its binomial
      standard error; for discrete toys ``tv`` = mean total-variation distance
      between predicted and true pmf over a feature grid.
    """
    y = np.asarray(y, "float32")
    pred = predictor(x, num_samples)
    true = toy.true_distribution(x)
    lp_model = pred.log_prob(y).numpy().astype("float64")
    lp_true = true.log_prob(y).numpy().astype("float64")
    coverage = interval_coverage(pred, y, (level,))[float(level)]
    gap, gap_se = mean_se(lp_true - lp_model)
    out = {
        "n": int(len(y)),
        "nll": float(-lp_model.mean()),
        "nll_true": float(-lp_true.mean()),
        "nll_gap": gap,
        "nll_gap_se": gap_se,
        "coverage_level": level,
        "coverage": coverage["coverage"],
        "coverage_se": coverage["se"],
    }
    if hasattr(toy, "conditional_entropy"):
        out["conditional_entropy"] = toy.conditional_entropy()
    if hasattr(toy, "true_pmf"):
        grid = np.linspace(toy.x_low, toy.x_high, grid_size)[:, None].astype("float32")
        k = np.arange(toy.max_count + 1, dtype="float32")[:, None]
        p_pred = np.exp(predictor(grid, num_samples).log_prob(k).numpy().T.astype("float64"))
        # Mass a Poisson head puts above max_count belongs to the capped top value.
        p_pred[:, -1] += np.clip(1.0 - p_pred.sum(axis=1), 0.0, 1.0)
        out["tv"] = float(0.5 * np.abs(p_pred - toy.true_pmf(grid)).sum(axis=1).mean())
    return out
