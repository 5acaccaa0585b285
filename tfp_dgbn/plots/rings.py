"""Figures of ring images: feature sweeps (true vs noised) and pixel-count histograms."""
import numpy as np
from scipy import stats

from tfp_dgbn.plots.figures import plt
from tfp_dgbn.simulate import rings


def _show(ax, image, vmax=None, cmap="viridis"):
    size = image.shape[-1]
    ax.imshow(image, origin="lower", cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest",
              extent=(-size / 2, size / 2, -size / 2, size / 2))
    ax.set_xticks([])
    ax.set_yticks([])


def plot_feature_sweeps(config=None, num_values=5, seed=0):
    """A grid of true vs noised rings, sweeping each feature alone over its range.

    The other features stay at `RingConfig.reference_features` (a centred ring,
    mid radius, width and angle). Each feature has two rows: the true ring and
    one noised ring (counts).

    Args:
      config: `RingConfig` (default: defaults).
      num_values: values per feature, evenly spaced over its range.
      seed: seed of the noised draws.

    Returns:
      The matplotlib Figure.
    """
    config = config or rings.RingConfig()
    rng = np.random.default_rng(seed)
    n_feat = rings.NUM_FEATURES
    fig, axes = plt.subplots(2 * n_feat, num_values, figsize=(1.6 * num_values, 1.6 * 2 * n_feat + 0.6))
    for j, (name, (lo, hi)) in enumerate(zip(rings.FEATURE_NAMES, config.feature_ranges)):
        values = np.linspace(lo, hi, num_values, endpoint=name != "phi")
        f = config.sweep(name, values)
        true = rings.true_rings(f, config)
        noised = rings.noised_images(f, rng, config)
        vmax = max(1, noised.max())
        for i in range(num_values):
            _show(axes[2 * j, i], true[i], vmax=1, cmap="gray_r")
            _show(axes[2 * j + 1, i], noised[i], vmax=vmax)
            axes[2 * j, i].set_title(f"{name} = {values[i]:.2f}", fontsize=8)
        axes[2 * j, 0].set_ylabel("true", fontsize=8)
        axes[2 * j + 1, 0].set_ylabel("noised", fontsize=8)
    fig.suptitle("Rings: one feature swept at a time (true ring above, noised counts below)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    return fig


def plot_count_histograms(noised, expected, max_count=None):
    """Histogram of pixel counts of noised images vs the exact law.

    The exact law of a pixel drawn at random from the images is the mixture of
    Poisson(expected) over those pixels; both are shown on a log scale.

    Args:
      noised: counts [N, S, S].
      expected: exact means [N, S, S] of the same images.
      max_count: largest count shown (default: the largest observed).

    Returns:
      The matplotlib Figure.
    """
    counts = np.asarray(noised).ravel()
    mu = np.asarray(expected, "float64").ravel()
    top = int(max_count if max_count is not None else counts.max())
    k = np.arange(top + 1)
    observed = np.bincount(np.minimum(counts, top).astype(np.int64), minlength=top + 1)[: top + 1]
    # Mixture pmf in chunks of pixels (memory: chunk x (top + 1)).
    pmf = np.zeros(top + 1)
    for start in range(0, mu.size, 200_000):
        pmf += stats.poisson.pmf(k[None, :], mu[start:start + 200_000, None]).sum(axis=0)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(k, observed, color="C0", alpha=0.7, label="simulated (noised)")
    ax.plot(k, pmf, "o-", color="C1", label="exact law (Poisson mixture of expected)")
    ax.set_yscale("log")
    ax.set_xlabel("counts per pixel")
    ax.set_ylabel("pixels")
    ax.set_title(f"Pixel counts of {len(noised)} images")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_generated_vs_simulated(predictor, features, simulated, expected=None, num_samples=32, seed=0):
    """Rows: simulated noised ring, generated ring (one weight draw), predictive mean, exact mean.

    Args:
      predictor: a `tfp_dgbn.predict.Predictor` of a ring generator.
      features: [K, 6] rings to show (one column each).
      simulated: their simulated noised images [K, S, S].
      expected: their exact mean images (optional last row).
      num_samples: weight draws for the predictive mean.
      seed: seed of the generated counts.

    Returns:
      The matplotlib Figure.
    """
    draws = predictor.draws(features, num_samples)
    rate = np.exp(np.asarray(draws["log_rate"], "float64"))
    generated = np.random.default_rng(seed).poisson(rate[0])
    mean = rate.mean(axis=0)
    rows = [("simulated", simulated), ("generated", generated), ("predictive mean", mean)]
    if expected is not None:
        rows.append(("exact mean", expected))
    k = len(features)
    fig, axes = plt.subplots(len(rows), k, figsize=(1.7 * k, 1.7 * len(rows) + 0.5), squeeze=False)
    for i, (label, images) in enumerate(rows):
        for j in range(k):
            counts = i < 2
            vmax = max(1, simulated[j].max()) if counts else max(mean[j].max(), 1e-3)
            _show(axes[i, j], np.asarray(images[j]), vmax=vmax)
            if i == 0:
                f = features[j]
                axes[i, j].set_title(f"R={f[2]:.1f} w={f[3]:.2f}\nth={f[4]:.2f} r0={np.hypot(f[0], f[1]):.1f}",
                                     fontsize=7)
        axes[i, 0].set_ylabel(label, fontsize=8)
    fig.suptitle("Generated vs simulated rings (same features per column)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


def plot_generated_grid(predictor, features, n, seed=0):
    """n generated rings per feature row, each from its own weight draw, plus the predictive mean.

    Args:
      predictor: a `tfp_dgbn.predict.Predictor` of a ring generator.
      features: [K, 6]; n: rings per row; seed: seed of the Poisson counts.

    Returns:
      (Figure, generated counts int64 [K, n, S, S]).
    """
    draws = predictor.draws(features, n)  # n independent weight draws: [n, K, S, S]
    rate = np.exp(np.asarray(draws["log_rate"], "float64"))
    counts = np.random.default_rng(seed).poisson(rate).transpose(1, 0, 2, 3)
    k = len(features)
    fig, axes = plt.subplots(k, n + 1, figsize=(1.2 * (n + 1), 1.3 * k + 0.5), squeeze=False)
    for i in range(k):
        vmax = max(1, counts[i].max())
        for j in range(n):
            _show(axes[i, j], counts[i, j], vmax=vmax)
        _show(axes[i, n], rate[:, i].mean(axis=0))
        f = features[i]
        axes[i, 0].set_ylabel(f"R={f[2]:.1f} w={f[3]:.2f}\nth={f[4]:.2f}", fontsize=7)
    axes[0, n].set_title("mean", fontsize=8)
    fig.suptitle("Generated noised rings (one weight draw each)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return fig, counts
