"""Seed-pattern rings: generated (blue) vs exact (orange) laws of chosen pixels, and the images."""
import numpy as np

from tfp_dgbn.plots.figures import PREDICTED, TRUE, plt
from tfp_dgbn.simulate import pattern_rings


def plot_pixel_laws(predictor, features, simulated, two_rings=False, num_samples=400, seed=0):
    """One held-out ring: its simulated image, one generated image, and for a pixel on the ring, at its edge
    and far from it, the generated per-pixel law (blue) against the exact one (orange).

    Args:
      predictor: a `Predictor` of a pattern-ring generator; features [6 or 12] of one ring.
      simulated: its simulated image [32, 32]; num_samples: generated and exact draws per pixel.
    """
    f = np.asarray(features, "float32")[None]
    generated = predictor.sample(f, num_samples)[:, 0]
    exact = pattern_rings.noised_images(np.repeat(f.astype("float64"), num_samples, 0),
                                        np.random.default_rng(seed), two_rings)
    g1, g2 = pattern_rings.ring_intensities(f, two_rings)
    g = (g1 + 0.5 * g2 if two_rings else g1)[0]
    picks = {"on the ring": np.argmax(g), "at its edge": np.argmin(np.abs(g - 0.2)),
             "far away": np.argmin(np.abs(g - 0.01))}
    fig, axes = plt.subplots(1, 5, figsize=(17, 3.4))
    vmax = max(float(simulated.max()), 1e-6)
    for ax, image, title in ((axes[0], simulated, "simulated"), (axes[1], generated[0], "generated")):
        ax.imshow(image, vmin=0, vmax=vmax, cmap="viridis")
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax, (name, flat) in zip(axes[2:], picks.items()):
        i, j = np.unravel_index(flat, g.shape)
        axes[0].plot(j, i, "r+", ms=8)
        both = np.concatenate([generated[:, i, j], exact[:, i, j]])
        bins = np.linspace(both.min(), both.max() + 1e-9, 30)
        ax.hist(generated[:, i, j], bins=bins, alpha=0.6, color=PREDICTED, label="predicted")
        ax.hist(exact[:, i, j], bins=bins, alpha=0.6, color=TRUE, label="true")
        ax.set_title(f"pixel ({i}, {j}) {name}, g = {g[i, j]:.2f}", fontsize=9)
    axes[2].legend(fontsize=8)
    fig.suptitle("seed-pattern ring: generated (blue) vs exact (orange) pixel laws")
    fig.tight_layout()
    return fig
