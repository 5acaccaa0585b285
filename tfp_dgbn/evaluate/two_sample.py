"""Judging a generator against an exact law from samples: per pixel (CRPS, Wasserstein-1 vs its floor) and
per image (a classifier two-sample test).

- Per pixel: a generator is sampled M times per held-out feature row; its
  per-pixel sample is compared with M draws of the exact law by
  Wasserstein-1 (for equal sizes, the mean absolute difference of the sorted
  samples), next to the **floor**: the same distance between two independent
  M-draws of the exact law. A model as good as the law sits at the floor.
  CRPS of the model's sample against the observed value, minus the CRPS of the
  exact law's sample, estimates the model's excess score (0 for the law).
- Per image: a classifier two-sample test (C2ST; Lopez-Paz and Oquab, 2017),
  the fast-simulation community's standard for joint laws. A small network
  given (features, image) learns to tell generated from simulated images; its
  held-out AUC is 0.5 when the two laws are the same, and its floor is the
  same test run on two simulated samples. The best possible classifier, the
  likelihood ratio, reaches about Phi(sqrt(KL)) for a small KL gap.
"""
import math

import numpy as np

from tfp_dgbn.evaluate.metrics import auroc
from tfp_dgbn.evaluate.ring_statistics import ring_statistics
from tfp_dgbn.validate import InputError


def w1_equal_samples(a, b):
    """Wasserstein-1 between two samples of equal size M along axis 0, per remaining element.

    For equal sizes the optimal coupling pairs order statistics, so W1 is the
    mean of |a_(k) - b_(k)|.

    Args:
      a, b: [M, ...] samples (same shape).

    Returns:
      float64 [...].
    """
    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    if a.shape != b.shape:
        raise InputError(f"samples must have the same shape, got {a.shape} and {b.shape}")
    return np.abs(np.sort(a, axis=0) - np.sort(b, axis=0)).mean(axis=0)


def crps_samples(samples, observed):
    """CRPS of the empirical law of ``samples`` [M, ...] at ``observed`` [...]: E|X - y| - E|X - X'| / 2.

    E|X - X'| over the M^2 pairs uses the sorted form 2 / M^2 sum_k (2k - M - 1) x_(k).
    Lower is better; the units are those of the values.
    """
    x = np.sort(np.asarray(samples, "float64"), axis=0)
    y = np.asarray(observed, "float64")
    m = x.shape[0]
    weights = (2 * np.arange(1, m + 1) - m - 1).reshape((m,) + (1,) * (x.ndim - 1))
    spread = 2.0 * (weights * x).sum(axis=0) / m ** 2
    return np.abs(x - y[None]).mean(axis=0) - 0.5 * spread


def ring_summaries(images):
    """Per-image summaries a classifier can relate to the features: total intensity, fitted ring centre,
    radius and width (`ring_statistics`), 0 where no ring could be fitted, and a flag for that; [N, 6]."""
    stats = ring_statistics(np.maximum(np.asarray(images, "float64"), 0.0))
    columns = np.stack([stats[k] for k in ("hits", "cx", "cy", "radius", "width")], axis=1)
    fitted = np.isfinite(columns).all(axis=1)
    return np.concatenate([np.where(np.isfinite(columns), columns, 0.0), fitted[:, None]], axis=1)


def pooled(images, factor=4):
    """Images summed over factor x factor blocks, flattened: [N, (H / factor) (W / factor)]."""
    x = np.asarray(images, "float64")
    n, h, w = x.shape
    if h % factor or w % factor:
        raise InputError(f"image sides {h} x {w} must be multiples of the pooling factor {factor}")
    return x.reshape(n, h // factor, factor, w // factor, factor).sum(axis=(2, 4)).reshape(n, -1)


def pooled_with_texture(images, factor=4):
    """`pooled` block sums, then per block the sum of squared differences between horizontal and between
    vertical neighbours: [N, 3 (H / factor) (W / factor)].

    Block sums average the per-pixel noise away, so a classifier on them alone cannot see how wide the
    noise is (measured on one-ring pattern images, 2,000 rings: a generator with the law's mean and three
    times its sd scored AUC 0.491 on `pooled`, 0.647 on every pixel, 1.0 with these texture sums; the
    law's own moments 0.499, 0.484 and 0.496). The neighbour differences keep the noise's size.
    """
    x = np.asarray(images, "float64")
    across, down = np.zeros_like(x), np.zeros_like(x)
    across[:, :, 1:] = np.diff(x, axis=2) ** 2
    down[:, 1:, :] = np.diff(x, axis=1) ** 2
    return np.concatenate([pooled(x, factor), pooled(across, factor), pooled(down, factor)], axis=1)


#: the fewest training steps between two early-stopping checks of the classifier test
BLOCK_STEPS = 25


def classifier_two_sample_test(features, real, generated, seed=0, hidden=(64, 32), steps=1500, batch_size=64,
                               test_fraction=0.3, summaries=ring_summaries, view=pooled_with_texture):
    """Held-out AUC of a network telling ``generated`` from ``real`` images given their features.

    The rows are paired: row i of ``real`` and of ``generated`` share
    ``features[i]``. A random ``test_fraction`` of the rows is held out (both
    members of a pair on the same side, so the classifier cannot compare a
    pair); an MLP on (features, a view of the image, summaries of the image)
    is trained with early stopping on a random tenth of the training rows, and
    scored on the held-out rows. The summaries (default: `ring_summaries`) let
    a small network relate an image to its features (where its ring sits, how
    wide it is) without learning a ring fit from a few thousand examples; the
    view's 64 block sums keep the layout and its 128 texture sums the noise's size. On 300 rings (210 training
    pairs) feature-blind images against simulated ones scored AUC 0.44 with every pixel as an input and 0.92
    with the summaries alone (a one-off check that shaped these defaults; the tests pin the behaviour).

    The generator must not have seen the ``real`` images: a law fitted to them
    (say their mean image) carries the training rows' pixels into the
    generated sample, and the classifier then scores held-out rows *below* 0.5.

    Args:
      features: [N, F]; real, generated: [N, ...] images.
      seed: seeds the split, the weights and the batches.
      hidden: widths of the classifier's hidden layers.
      steps: training steps at most (early stopping may end sooner): a budget in steps, not epochs,
        so that a small test set is not left undertrained (300 rows are 3 batches an epoch).
      summaries: callable images -> [N, k] extra inputs, or None.
      view: callable images -> [N, m], what the network sees of the pixels (default
        `pooled_with_texture`: 4 x 4 block sums and block sums of squared neighbour differences, 192
        numbers for 32 x 32 images; until 2026-12-02 it was `pooled` alone, blind to
        the noise's width), or None for every pixel.

    Returns:
      dict: auc, auc_se (Hanley-McNeil), n_test (pairs held out).
    """
    import tensorflow as tf

    from tfp_dgbn.tfk import keras

    features = np.asarray(features, "float32")
    inputs = []
    for images in (real, generated):
        parts = [view(images) if view is not None else np.asarray(images).reshape(len(images), -1)]
        if summaries is not None:
            parts.append(summaries(images))
        inputs.append(np.concatenate(parts, axis=1).astype("float32"))
    real, generated = inputs
    if not (len(features) == len(real) == len(generated)) or real.shape != generated.shape:
        raise InputError(f"features, real and generated must have the same rows and image shape, got "
                         f"{features.shape}, {real.shape}, {generated.shape}")
    n = len(features)
    if n < 20:
        raise InputError(f"the two-sample test needs at least 20 rows, got {n}")
    rng = np.random.default_rng(seed)
    test = np.zeros(n, bool)
    test[rng.permutation(n)[:max(5, int(round(test_fraction * n)))]] = True
    # Standardise with the training rows' statistics (both samples pooled).
    train_x = np.concatenate([real[~test], generated[~test]])
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    f_mu, f_sd = features[~test].mean(0), features[~test].std(0) + 1e-6

    def rows(mask):
        x = np.concatenate([(real[mask] - mu) / sd, (generated[mask] - mu) / sd])
        f = np.tile((features[mask] - f_mu) / f_sd, (2, 1))
        y = np.concatenate([np.zeros(mask.sum()), np.ones(mask.sum())]).astype("float32")
        return np.concatenate([f, x], axis=1), y

    x_train, y_train = rows(~test)
    order = rng.permutation(len(y_train))
    x_train, y_train = x_train[order], y_train[order]
    # Early stopping watches a random tenth of the training rows, split off before the rows are repeated.
    cut = len(y_train) - max(2, int(round(0.1 * len(y_train))))
    x_val, y_val, x_train, y_train = x_train[cut:], y_train[cut:], x_train[:cut], y_train[:cut]
    # An "epoch" of at least BLOCK_STEPS steps: on a small set one pass is a step or two, and Keras's
    # per-epoch work (validation, callbacks) then took most of the time; the step budget is the same.
    per_pass = int(np.ceil(len(y_train) / batch_size))
    repeats = int(np.ceil(BLOCK_STEPS / per_pass))
    x_train, y_train = np.tile(x_train, (repeats, 1)), np.tile(y_train, repeats)
    x_test, y_test = rows(test)
    tf.keras.utils.set_random_seed(seed)
    init = keras.initializers.GlorotUniform(seed=seed)
    layers = [keras.Input((x_train.shape[1],))]
    for k, width in enumerate(hidden):
        layers.append(keras.layers.Dense(width, activation="relu",
                                         kernel_initializer=keras.initializers.GlorotUniform(seed=seed + k + 1)))
    layers.append(keras.layers.Dense(1, kernel_initializer=init))
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    model.optimizer.build(model.trainable_variables)  # slots now: the train function is then traced once, not twice
    per_epoch = int(np.ceil(len(y_train) / batch_size))
    epochs = int(np.clip(np.ceil(steps / per_epoch), 5, 500))
    stop = keras.callbacks.EarlyStopping(patience=max(4, epochs // 10), restore_best_weights=True)
    model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=epochs, batch_size=batch_size, verbose=0,
              callbacks=[stop], shuffle=True)
    scores = model.predict(x_test, verbose=0, batch_size=1024).ravel()
    auc = auroc(scores[y_test == 0], scores[y_test == 1])
    return {"auc": auc, "auc_se": hanley_mcneil_se(auc, int((y_test == 0).sum()), int((y_test == 1).sum())),
            "n_test": int(test.sum())}


def c2st_with_floor(features, real, generated, resimulated, seed=0):
    """The classifier test of ``generated`` against ``real``, next to its floor (an independent simulator
    sample ``resimulated`` of the same features against ``real``).

    Returns:
      dict: c2st_auc, c2st_auc_se, c2st_floor_auc, c2st_floor_auc_se; empty for fewer than 20 rows.
    """
    out = {}
    if len(features) < 20:
        return out
    for key, other in (("c2st", generated), ("c2st_floor", resimulated)):
        result = classifier_two_sample_test(features, real, other, seed=seed)
        out[f"{key}_auc"], out[f"{key}_auc_se"] = result["auc"], result["auc_se"]
    return out


def c2st_lines(metrics):
    """The summary line of `c2st_with_floor`'s metrics (none when they are absent)."""
    if "c2st_auc" not in metrics:
        return []
    m = metrics
    return [f"classifier two-sample test, generated vs simulated: AUC {m['c2st_auc']:.3f} +- {m['c2st_auc_se']:.3f} "
            f"(simulated vs simulated: {m['c2st_floor_auc']:.3f} +- {m['c2st_floor_auc_se']:.3f}; 0.5 when the laws "
            "agree)"]


def hanley_mcneil_se(auc, n_negative, n_positive):
    """Standard error of an AUC estimated from n_negative and n_positive scores (Hanley and McNeil, 1982)."""
    q1, q2 = auc / (2 - auc), 2 * auc ** 2 / (1 + auc)
    var = (auc * (1 - auc) + (n_positive - 1) * (q1 - auc ** 2) + (n_negative - 1) * (q2 - auc ** 2))
    return math.sqrt(max(var, 0.0) / (n_negative * n_positive))
