"""Predicted (blue) vs true (orange) conditional laws of a warm-up problem."""
import numpy as np

from tfp_dgbn.plots.figures import PREDICTED, TRUE, plt


def plot_predicted_vs_true(predictor, toy, xs=None, data=None, num_samples=64, level=0.9):
    """Predicted vs true conditional laws of a toy problem.

    Top: the data, and the predictive mean and central ``level`` band (blue)
    against the true ones (orange) over the feature range. Bottom: the
    predictive density (continuous) or pmf (discrete) at each of ``xs``.

    Args:
      predictor: a `tfp_dgbn.predict.Predictor`.
      toy: a problem of `tfp_dgbn.simulate.toys` (gives the true law).
      xs: feature values of the bottom panels (default: 4 across the range).
      data: optional (x [N, 1], y [N]) to scatter.
      num_samples: weight draws S of the predictive mixture.
      level: probability of the bands.

    Returns:
      The matplotlib Figure.
    """
    from tfp_dgbn.predict import central_interval

    xs = np.linspace(toy.x_low, toy.x_high, 6)[1:-1] if xs is None else np.asarray(xs, "float64")
    fig = plt.figure(figsize=(3.2 * len(xs), 6.4))
    grid = fig.add_gridspec(2, len(xs))
    top = fig.add_subplot(grid[0, :])
    line = np.linspace(toy.x_low, toy.x_high, 101)[:, None].astype("float32")
    pred = predictor(line, num_samples)
    true = toy.true_distribution(line)
    if data is not None:
        top.scatter(data[0][:, 0], data[1], s=3, color="0.6", alpha=0.4, label="data")
    for dist, color, label in ((pred, PREDICTED, "predicted"), (true, TRUE, "true")):
        lo, hi = central_interval(dist, level)
        top.plot(line[:, 0], np.asarray(dist.mean()), color=color, label=f"{label} mean")
        top.fill_between(line[:, 0], lo, hi, color=color, alpha=0.25, label=f"{label} {level:.0%}")
    top.set_xlabel(f"feature {toy.feature_names[0]}")
    top.set_ylabel("y")
    top.legend(ncol=3, fontsize=8)
    discrete = toy.family != "normal"
    pred_x = predictor(xs[:, None].astype("float32"), num_samples)
    true_x = toy.true_distribution(xs[:, None].astype("float32"))
    if discrete and hasattr(toy, "true_pmf"):  # capped support: show where the pmf has mass
        pmf = toy.true_pmf(xs[:, None])
        top = int(np.max(np.nonzero(pmf.max(axis=0) > 1e-3)[0]))
        support = np.arange(top + 1, dtype="float32")
    elif discrete:
        mean, sd = np.asarray(true_x.mean()), np.asarray(true_x.stddev())
        top = int(np.ceil(np.max(mean + 5 * sd)))
        support = np.arange(top + 1, dtype="float32")
    else:
        mean, sd = np.asarray(true_x.mean()), np.asarray(true_x.stddev())
        support = np.linspace(np.min(mean - 4 * sd), np.max(mean + 4 * sd), 300).astype("float32")
    p_pred = np.exp(pred_x.log_prob(support[:, None]).numpy())
    p_true = np.exp(true_x.log_prob(support[:, None]).numpy())
    for i, x in enumerate(xs):
        ax = fig.add_subplot(grid[1, i])
        if discrete:
            ax.bar(support - 0.2, p_pred[:, i], width=0.4, color=PREDICTED, label="predicted")
            ax.bar(support + 0.2, p_true[:, i], width=0.4, color=TRUE, label="true")
            ax.set_xlabel("count y")
        else:
            ax.plot(support, p_pred[:, i], color=PREDICTED, label="predicted")
            ax.plot(support, p_true[:, i], color=TRUE, label="true")
            ax.set_xlabel("y")
        ax.set_title(f"x = {x:.2f}")
        if i == 0:
            ax.set_ylabel("pmf" if discrete else "density")
            ax.legend(fontsize=8)
    fig.suptitle(f"{toy.name}: predicted (blue) vs true (orange)")
    fig.tight_layout()
    return fig
