"""Evaluate a seed-pattern ring generator against the exact law, per pixel and per image (issue 18).

- Per pixel: M posterior-predictive samples of every pixel of each held-out
  ring (one weight draw and one output draw each) against M draws of the
  exact law: Wasserstein-1 next to the two-sample floor (two independent
  M-draws of the law), overall and for pixels on the ring (g >= 0.5), at its
  edge (0.05 <= g < 0.5) and far from it (g < 0.05); CRPS of the model's
  sample at the held-out image minus that of the law's own M-sample.
- Per image: the classifier two-sample test (`tfp_dgbn.evaluate.two_sample`),
  generated vs simulated, next to simulated vs simulated.
- Two rings: the second ring's total intensity over its own pixels relative to
  its present value, per generated image; the fraction between 25% and 75%
  (0 for the law, whose second ring is wholly present or absent) and above
  75% (1/2 for the law).
- An image-mixture generator: the mean weight of each component (a dead
  component's is near 0).
"""
import numpy as np
import tensorflow as tf

from tfp_dgbn import seeds
from tfp_dgbn.evaluate.two_sample import c2st_with_floor, crps_samples, w1_equal_samples
from tfp_dgbn.simulate import pattern_rings
from tfp_dgbn.validate import InputError

PIXEL_CLASSES = {"ring": (0.5, np.inf), "edge": (0.05, 0.5), "far": (-np.inf, 0.05)}


def _batch_draws(predictor, features, num_samples, batch_size=100):
    """The named parameters of ``num_samples`` weight draws, batch by batch of rows (a generator)."""
    features = np.asarray(features, "float32")
    for start in range(0, len(features), batch_size):
        yield predictor.draws(features[start:start + batch_size], num_samples)


def _images(predictor, named):
    """One output draw per weight draw of ``named``: float32 [M, B, 32, 32] (as `Predictor.sample`)."""
    return np.asarray(predictor.head.from_named(named).sample(), "float32")


def _mean_weights(logits_batches):
    """Mean softmax weight per component over every row and draw of logit batches [M, B, C], [C]."""
    weights = [tf.nn.softmax(logits).numpy() for logits in logits_batches]
    return np.concatenate([w.reshape(-1, w.shape[-1]) for w in weights]).mean(axis=0)


def generated_samples(predictor, features, num_samples, batch_size=100):
    """M posterior-predictive images per row: weight draw m, then an output draw; float32 [M, N, 32, 32]."""
    return np.concatenate([_images(predictor, named)
                           for named in _batch_draws(predictor, features, num_samples, batch_size)], axis=1)


def second_ring_ratio(images, features):
    """Second ring's intensity over its own pixels (g2 >= 0.5 and g1 < 0.01) / its present value, [N] (NaN when
    fewer than 10 such pixels)."""
    g1, g2 = pattern_rings.ring_intensities(features, two_rings=True)
    mask = (g2 >= 0.5) & (g1 < 0.01)
    count = mask.sum(axis=(1, 2))
    ratio = np.full(len(g1), np.nan)
    ok = count >= 10
    ratio[ok] = (np.asarray(images, "float64") * mask).sum(axis=(1, 2))[ok] / (g2 * mask).sum(axis=(1, 2))[ok]
    return ratio


def component_weights(predictor, features, num_samples=32, batch_size=100):
    """Mean weight of each component of an image-mixture generator over rows and weight draws, [C] (numpy).

    A component whose weight is near 0 everywhere is dead: the generator then draws one image law only.
    """
    if predictor.head.family != "image-mixture":
        raise InputError(f"component weights need an image-mixture generator; this one's law is "
                         f"{predictor.head.family!r}")
    return _mean_weights(named["logits"] for named in _batch_draws(predictor, features, num_samples, batch_size))


def second_ring_fractions(images, features):
    """(half, present): the fractions of images [N, 32, 32] whose second ring is between 25% and 75% of its
    present intensity, and above 75%, over the rings where `second_ring_ratio` is defined.

    The law's are 0 and 1/2. A generator can avoid half rings by always drawing the second ring (a mixture
    with one live component does), which only the present fraction shows.
    """
    ratio = second_ring_ratio(images, features)
    ratio = ratio[np.isfinite(ratio)]
    return float(np.mean((ratio > 0.25) & (ratio < 0.75))), float(np.mean(ratio >= 0.75))


def evaluate_pattern_rings(predictor, features, images, two_rings=False, num_samples=32, seed=0, c2st=True):
    """All held-out metrics of a pattern-ring generator (module docstring).

    Args:
      predictor: a `tfp_dgbn.predict.Predictor` over [N, 6 or 12] features.
      features: held-out features; images: their simulated images [N, 32, 32].
      num_samples: M, draws per ring on each side of the per-pixel comparison.
      seed: seeds the exact-law draws and the two-sample test.

    Returns:
      dict: w1, w1_floor, w1_ratio (+ per pixel class), crps_excess (+ se), c2st_auc (+ se),
      c2st_floor_auc (+ se), and for two rings half_ring_fraction (second ring between 25% and 75% of its
      present intensity) and present_fraction (above 75%: the law's is 1/2), each for the generated
      images and, suffixed ``_law``, for a draw of the law.
    """
    features = np.asarray(features, "float32")
    rng = seeds.rng(seed, "evaluate")
    # one pass of weight draws gives the images and, for a mixture, the component weights
    mixture = predictor.head.family == "image-mixture"
    images_batches, logits = [], []
    for named in _batch_draws(predictor, features, num_samples):
        images_batches.append(_images(predictor, named))
        if mixture:
            logits.append(named["logits"])
    model = np.concatenate(images_batches, axis=1)
    repeat = np.tile(features.astype("float64"), (num_samples, 1))
    law = [pattern_rings.noised_images(repeat, rng, two_rings).reshape(model.shape) for _ in range(2)]
    w1, floor = w1_equal_samples(model, law[0]), w1_equal_samples(law[1], law[0])
    g1, g2 = pattern_rings.ring_intensities(features, two_rings)
    g = g1 + (0.5 * g2 if two_rings else 0.0)
    metrics = {"n": int(len(features)), "num_samples": int(num_samples), "w1": float(w1.mean()),
               "w1_floor": float(floor.mean()), "w1_ratio": float(w1.mean() / floor.mean())}
    for name, (lo, hi) in PIXEL_CLASSES.items():
        sel = (g >= lo) & (g < hi)
        metrics[f"w1_ratio_{name}"] = float(w1[sel].mean() / floor[sel].mean())
    excess = (crps_samples(model, images) - crps_samples(law[0], images)).mean(axis=(1, 2))
    metrics["crps_excess"], metrics["crps_excess_se"] = float(excess.mean()), float(excess.std() / np.sqrt(len(excess)))
    if c2st:
        metrics.update(c2st_with_floor(features, images, model[0], law[1][0], seed))
    if two_rings:
        for suffix, sample in (("", model[0]), ("_law", law[1][0])):
            half, present = second_ring_fractions(sample, features)
            metrics["half_ring_fraction" + suffix], metrics["present_fraction" + suffix] = half, present
    if mixture:
        metrics["component_weights"] = [float(w) for w in _mean_weights(logits)]
    return metrics
