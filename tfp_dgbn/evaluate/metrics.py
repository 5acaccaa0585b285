"""Every metric of a predictive distribution, each written once.

NLL with its standard error (`mean_se`), PIT and the randomised PIT for counts
(`pit_values`, `randomized_pit`), interval coverage, ECE, Brier score and AUROC.
Evaluations of toys, rings and the report all call these (entropies and mutual
information are part of the predictive summary, `tfp_dgbn.predict.predictive_moments`).

All functions take a `tfd.Distribution` with batch [N] and scalar events (a
`Predictor` output) or plain arrays, and return NumPy values. A predictor that
*is* the law of the data has uniform PIT values and nominal coverage; these
functions are the tests' proof of that (tests/test_calibration.py).
"""
import numpy as np
import tensorflow as tf

from tfp_dgbn import seeds
from tfp_dgbn.predict import _is_count, central_interval, count_cdf

LEVELS = (0.5, 0.8, 0.9, 0.95)


def _discrete_cdf(dist, y):
    """F(y) and F(y - 1) of a count law at integer targets y [N], from its pmf on 0..max(y)."""
    y = np.asarray(y).astype("int64")
    cdf = count_cdf(dist, y.max())  # [K, N]
    cols = np.arange(len(y))
    upper = cdf[y, cols]
    lower = np.where(y > 0, cdf[np.maximum(y - 1, 0), cols], 0.0)
    return np.clip(upper, 0, 1), np.clip(lower, 0, 1)


def mean_se(values):
    """Mean of per-example values and its standard error sd / sqrt(n) (float64 scalars).

    Used for every NLL, NLL gap and KL gap reported with "+-".
    """
    values = np.asarray(values, "float64").ravel()
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


def randomized_pit(lower, upper, rng):
    """Randomised PIT of a discrete law: u = F(y - 1) + V (F(y) - F(y - 1)), V ~ U(0, 1) (Czado et al., 2009).

    Args:
      lower, upper: F(y - 1) and F(y) at the observations (any shape, same shape).
      rng: a NumPy Generator for V.

    Returns:
      u, float64 of the same shape, exactly U(0, 1) when the law is right.
    """
    lower, upper = np.asarray(lower, "float64"), np.asarray(upper, "float64")
    return lower + rng.uniform(size=lower.shape) * (upper - lower)


def pit_values(dist, y, seed=0):
    """Probability integral transform u_i = F_i(y_i), randomised for counts.

    Continuous laws: u = F(y). Count laws (Poisson, categorical over 0..K-1):
    u = F(y - 1) + V (F(y) - F(y - 1)), V ~ U(0, 1) (Czado et al., 2009), which is
    exactly U(0, 1) when the law is right.

    Args:
      dist: predictive distribution, batch [N], scalar events.
      y: observed targets [N].
      seed: seed of V (counts only).

    Returns:
      u, float64 [N] in [0, 1].
    """
    y = np.asarray(y)
    if _is_count(dist):
        upper, lower = _discrete_cdf(dist, y)
        # Its own stream: V must be independent of the data, which a user may have drawn from the same seed.
        return randomized_pit(lower, upper, seeds.rng(seed, "pit"))
    return np.asarray(dist.cdf(tf.constant(y, dist.dtype)), "float64")


def pit_histogram(u, bins=10):
    """Fraction of PIT values per equal bin, the largest deviation from 1/bins, and a chi^2 p-value.

    Returns:
      dict: ``fractions`` [bins], ``max_deviation``, ``chi2_p`` (Pearson test of
      uniformity; small values mean miscalibration), ``n``.
    """
    from scipy import stats

    counts, _ = np.histogram(np.clip(u, 0, 1), bins=bins, range=(0, 1))
    expected = len(u) / bins
    return {"fractions": (counts / len(u)).tolist(), "max_deviation": float(np.abs(counts / len(u) - 1 / bins).max()),
            "chi2_p": float(stats.chisquare(counts, np.full(bins, expected)).pvalue), "n": int(len(u))}


def interval_coverage(dist, y, levels=LEVELS):
    """Fraction of targets inside the central predictive interval at each level.

    Returns:
      dict level -> {"coverage", "se"} with se = sqrt(level (1 - level) / N),
      the binomial standard error if the intervals are right. (Discrete intervals
      cover at least their level, so counts can sit a little above it.)
    """
    y = np.asarray(y, "float64")
    out = {}
    for level in levels:
        lo, hi = central_interval(dist, level)
        inside = (y >= lo) & (y <= hi)
        out[float(level)] = {"coverage": float(inside.mean()), "se": float(np.sqrt(level * (1 - level) / len(y)))}
    return out


def expected_calibration_error(probs, labels, bins=15):
    """ECE of class probabilities: sum over confidence bins of |accuracy - confidence|, weighted by size.

    Args:
      probs: predicted class probabilities [N, K].
      labels: observed classes [N] (integers in 0..K-1).
      bins: equal-width confidence bins on [0, 1].

    Returns:
      dict: ``ece``, and ``bins``: a list of {"confidence", "accuracy", "count"}
      (the reliability diagram; empty bins left out).
    """
    probs, labels = np.asarray(probs, "float64"), np.asarray(labels).astype("int64")
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    correct = (pred == labels).astype("float64")
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            acc, c = correct[mask].mean(), conf[mask].mean()
            ece += mask.mean() * abs(acc - c)
            table.append({"confidence": float(c), "accuracy": float(acc), "count": int(mask.sum())})
    return {"ece": float(ece), "bins": table}


def brier_score(probs, labels):
    """Mean over examples of sum_k (p_k - 1[y = k])^2: 0 for certain and right, 2 for certain and wrong."""
    probs = np.asarray(probs, "float64")
    onehot = np.eye(probs.shape[1])[np.asarray(labels).astype("int64")]
    return float(np.sum((probs - onehot) ** 2, axis=1).mean())


def auroc(inside, outside):
    """Area under the ROC curve of a score that should be larger ``outside`` than ``inside``.

    The probability that a random outside score exceeds a random inside one,
    ties counted one half (the Mann-Whitney U statistic / (n_in n_out)): 0.5 is
    no detection, 1 perfect.
    """
    from scipy.stats import mannwhitneyu

    inside, outside = np.ravel(inside).astype("float64"), np.ravel(outside).astype("float64")
    return float(mannwhitneyu(outside, inside).statistic / (len(inside) * len(outside)))
