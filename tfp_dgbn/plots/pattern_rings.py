"""Seed-pattern rings: generated (blue) vs exact (orange) laws of chosen pixels, and the images."""
import numpy as np

from tfp_dgbn.plots.figures import PREDICTED, TRUE, plt
from tfp_dgbn.simulate import pattern_rings


def exact_pixel_laws(features, two_rings=False, num_samples=400, seed=0):
    """Exact-law draws of one ring's image, its mean intensity and the pixels to show.

    Returns:
      (exact [M, 32, 32], g [32, 32] the mean intensity, picks: dict name -> (i, j) of a pixel on the ring,
      at its edge and far away).
    """
    f = np.asarray(features, "float64")[None]
    exact = pattern_rings.noised_images(np.repeat(f, num_samples, 0), np.random.default_rng(seed), two_rings)
    g1, g2 = pattern_rings.ring_intensities(f, two_rings)
    g = (g1 + 0.5 * g2 if two_rings else g1)[0]
    picks = {name: np.unravel_index(flat, g.shape) for name, flat in (
        ("on the ring", np.argmax(g)), ("at its edge", np.argmin(np.abs(g - 0.2))),
        ("far away", np.argmin(np.abs(g - 0.01))))}
    return exact, g, picks


def _generated(predictor, features, num_samples):
    """``num_samples`` generated images of one ring, [M, 32, 32]."""
    return predictor.sample(np.asarray(features, "float32")[None], num_samples)[:, 0]


def _draw_simulated(ax, simulated, picks, vmax):
    """The simulated image with the picked pixels marked."""
    ax.imshow(simulated, vmin=0, vmax=vmax, cmap="viridis")
    ax.set_title("simulated", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    for i, j in picks.values():
        ax.plot(j, i, "r+", ms=8)


def draw_pixel_laws(axes, generated, exact, g, picks, vmax, label=None):
    """One row of panels: a generated image, then per picked pixel the generated law (blue) against the exact
    one (orange). ``axes``: 1 + len(picks) matplotlib axes; ``label`` titles the image panel."""
    axes[0].imshow(generated[0], vmin=0, vmax=vmax, cmap="viridis")
    axes[0].set_title(label or "generated", fontsize=9)
    axes[0].set_xticks([])
    axes[0].set_yticks([])
    for ax, (name, (i, j)) in zip(axes[1:], picks.items()):
        both = np.concatenate([generated[:, i, j], exact[:, i, j]])
        bins = np.linspace(both.min(), both.max() + 1e-9, 30)
        ax.hist(generated[:, i, j], bins=bins, alpha=0.6, color=PREDICTED, label="predicted")
        ax.hist(exact[:, i, j], bins=bins, alpha=0.6, color=TRUE, label="true")
        ax.set_title(f"pixel ({i}, {j}) {name}, g = {g[i, j]:.2f}", fontsize=9)


def plot_pixel_laws(predictor, features, simulated, two_rings=False, num_samples=400, seed=0):
    """One held-out ring: its simulated image, one generated image, and for a pixel on the ring, at its edge
    and far from it, the generated per-pixel law (blue) against the exact one (orange).

    Args:
      predictor: a `Predictor` of a pattern-ring generator; features [6 or 12] of one ring.
      simulated: its simulated image [32, 32]; num_samples: generated and exact draws per pixel.
    """
    exact, g, picks = exact_pixel_laws(features, two_rings, num_samples, seed)
    fig, axes = plt.subplots(1, 5, figsize=(17, 3.4))
    vmax = max(float(simulated.max()), 1e-6)
    _draw_simulated(axes[0], simulated, picks, vmax)
    draw_pixel_laws(axes[1:], _generated(predictor, features, num_samples), exact, g, picks, vmax)
    axes[2].legend(fontsize=8)
    fig.suptitle("seed-pattern ring: generated (blue) vs exact (orange) pixel laws")
    fig.tight_layout()
    return fig


def plot_generators(predictors, features, simulated, two_rings=False, num_samples=400, seed=0):
    """The generators side by side on one held-out ring: a row each (a generated image and three pixel laws,
    blue) against the exact law (orange), under the simulated image.

    Args:
      predictors: dict label -> `Predictor`; the rest as `plot_pixel_laws`.
    """
    rows = len(predictors) + 1
    fig, axes = plt.subplots(rows, 4, figsize=(13, 2.9 * rows), squeeze=False)
    vmax = max(float(simulated.max()), 1e-6)
    # the exact law does not depend on the generator: drawn once, it is the top row and every row's orange
    exact, g, picks = exact_pixel_laws(features, two_rings, num_samples, seed)
    _draw_simulated(axes[0, 0], simulated, picks, vmax)
    for ax, (name, (i, j)) in zip(axes[0, 1:], picks.items()):
        ax.hist(exact[:, i, j], bins=30, color=TRUE, alpha=0.6, label="true")
        ax.set_title(f"exact law, pixel ({i}, {j}) {name}", fontsize=9)
    for r, (label, predictor) in enumerate(predictors.items(), start=1):
        draw_pixel_laws(axes[r], _generated(predictor, features, num_samples), exact, g, picks, vmax, label=label)
    axes[1, 1].legend(fontsize=8)
    fig.suptitle("seed-pattern rings: each generator (blue) against the exact law (orange)")
    fig.tight_layout(rect=(0, 0, 1, 0.98))  # room for the title above the first row's panel titles
    return fig
