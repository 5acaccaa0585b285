"""Evaluate a ring generator against the simulator's exact law.

- KL gap: held-out NLL of the posterior predictive (the mixture over S weight
  draws, by log-mean-exp of the image log-likelihoods) minus the NLL of the
  true law (independent Poisson with mean ``expected``), in nats per image. It
  estimates E_x KL(p_true(.|x) || p_model(.|x)) >= 0.
- The same gap for a feature-blind baseline (Poisson with the mean training
  image everywhere); explained fraction = 1 - gap_model / gap_blind.
- Ring statistics (fitted radius, width, hit count) of generated vs simulated
  images in bins of R: Wasserstein-1 and KS, compared with the two-sample floor
  (independent simulator samples of the same features), both averaged over replicas.
- Per-pixel randomised PIT: u ~ U(F(y - 1), F(y)) under the predictive is
  uniform when the model is calibrated; reported as a 10-bin histogram.
- The joint law of an image: a classifier two-sample test
  (`tfp_dgbn.evaluate.two_sample`): held-out AUC of a network telling the
  generated replica from the simulated image given the features, next to its
  floor (an independent simulator replica against the same images).
"""
import numpy as np
from scipy import stats
from scipy.special import gammaln, logsumexp

from tfp_dgbn import seeds
from tfp_dgbn.evaluate.metrics import mean_se, randomized_pit
from tfp_dgbn.evaluate.ring_statistics import ring_statistics
from tfp_dgbn.evaluate.two_sample import c2st_with_floor
from tfp_dgbn.simulate import rings

STATISTICS = ("radius", "width", "hits")


def poisson_image_log_prob(images, rate=None, log_rate=None):
    """log p(images) under independent Poisson pixels, summed over the last two axes.

    Args:
      images: counts [..., S, S].
      rate or log_rate: broadcastable to images.
    """
    y = np.asarray(images, "float64")
    if log_rate is None:
        rate = np.asarray(rate, "float64")
        log_rate = np.log(rate)
    else:
        log_rate = np.asarray(log_rate, "float64")
        rate = np.exp(log_rate)
    # Three sums over the pixels instead of one sum of a broadcast difference: the draws' axis
    # repeats the images, so log y! is summed once per image, and y log rate is a contraction.
    shape = np.broadcast_shapes(y.shape, log_rate.shape)[:-2]
    return (np.einsum("...ij,...ij->...", y, log_rate) - np.broadcast_to(rate.sum(axis=(-2, -1)), shape)
            - np.broadcast_to(gammaln(y + 1).sum(axis=(-2, -1)), shape))


def _predictive_pass(predictor, features, images, num_samples, batch_size, keep, replicas, block=16):
    """One pass over the features in batches (memory: S * batch images).

    Returns:
      (log p(image) under the mixture over S draws [N], log-rates of the first
      ``replicas`` draws [replicas, N, S, S] (float32), log-rates of all draws
      for the first ``keep`` images [S, keep, S, S] (float32)).
    """
    lp, first, kept = [], [], []
    for start in range(0, len(features), batch_size):
        log_rate = np.asarray(predictor.draws(features[start:start + batch_size], num_samples)["log_rate"], "float32")
        # float64 in blocks of images: small temporaries are reused, where whole-batch ones
        # spent most of their time faulting in fresh pages (as in `pixel_pit`)
        for sub in range(0, log_rate.shape[1], block):
            lr = log_rate[:, sub:sub + block].astype("float64")
            y = images[start + sub:start + sub + lr.shape[1]]
            lp.append(logsumexp(poisson_image_log_prob(y, log_rate=lr), axis=0) - np.log(num_samples))
        first.append(log_rate[:replicas])
        if start < keep:
            kept.append(log_rate[:, :keep - start])
    return np.concatenate(lp), np.concatenate(first, axis=1), np.concatenate(kept, axis=1)


def pixel_pit(images, log_rates, rng, block=8):
    """Randomised PIT of every pixel under the mixture over draws: float64 [N * S * S].

    Args:
      images: counts [N, H, W]; log_rates: [S, N, H, W]; block: images per step.
    """
    lower, upper = np.empty(np.shape(images)), np.empty(np.shape(images))
    # Blocks of images: arrays of a few MB are reused from the allocator, where whole-set
    # temporaries (S x N x H x W) spent most of their time faulting in fresh pages.
    for start in range(0, len(lower), block):
        part = slice(start, start + block)
        low, up = poisson_cdf_pair(images[part], np.exp(np.asarray(log_rates[:, part], "float64")))
        lower[part], upper[part] = low.mean(axis=0), up.mean(axis=0)
    return randomized_pit(lower, upper, rng).ravel()


def poisson_cdf_pair(counts, rate):
    """(F(y - 1), F(y)) of Poisson(rate) at the counts y, broadcast to rate's shape [S, ...].

    F(y) = e^-rate sum_{k <= y} rate^k / k!, summed term by term only where
    y >= k: most pixels hold 0 or 1 counts, so this costs a few passes over
    the array where `scipy.special.pdtr` (an incomplete gamma function per
    element) took 5x longer on the ring evaluation. Exact to float64 rounding
    (`tests/test_ring_model.py` compares it with pdtr).
    """
    rate = np.asarray(rate, "float64")
    shape = rate.shape
    y = np.broadcast_to(np.asarray(counts, "int64"), shape).ravel()
    rate = rate.ravel()
    term = np.exp(-rate)
    upper, pmf = term.copy(), np.where(y == 0, term, 0.0)
    live = np.flatnonzero(y >= 1)  # elements whose sum still needs the term k
    t = term[live]
    for k in range(1, int(y.max(initial=0)) + 1):
        t = t * rate[live] / k
        upper[live] += t
        at_y = y[live] == k
        pmf[live[at_y]] = t[at_y]
        live, t = live[~at_y], t[~at_y]
    return (upper - pmf).reshape(shape), upper.reshape(shape)


def compare_ring_statistics(generated, simulated, floor_samples, features, bins=3):
    """Wasserstein-1 and KS of ring statistics, generated vs simulated, per bin of R.

    A single W1 between two finite samples is noisy, so both sides are averaged
    over replicas: the model's W1 is the mean over the ``generated`` replicas
    against ``simulated``, the floor the mean over independent simulator
    replicas (``floor_samples``) against the same ``simulated`` sample.

    Args:
      generated: K generated replicas [K, N, S, S] for the features.
      simulated: the held-out simulated images [N, S, S].
      floor_samples: K independent simulator replicas [K, N, S, S] of the same features.
      features: [N, 6]; bins: number of equal-count bins of R.

    Returns:
      list of dicts per (bin, statistic): R range, n, w1, w1_floor, ratio, ks, ks_floor.
    """
    reference = ring_statistics(simulated)
    gen = [ring_statistics(im) for im in generated]
    floor = [ring_statistics(im) for im in floor_samples]
    radius = np.asarray(features)[:, 2]
    edges = np.quantile(radius, np.linspace(0, 1, bins + 1))

    def finite(a):
        return a[np.isfinite(a)]

    rows = []
    for b in range(bins):
        sel = (radius >= edges[b]) & (radius <= edges[b + 1])
        for name in STATISTICS:
            ref = finite(reference[name][sel])
            w1 = np.mean([stats.wasserstein_distance(finite(g[name][sel]), ref) for g in gen])
            w1_floor = np.mean([stats.wasserstein_distance(finite(f[name][sel]), ref) for f in floor])
            ks = np.mean([stats.ks_2samp(finite(g[name][sel]), ref).statistic for g in gen])
            ks_floor = np.mean([stats.ks_2samp(finite(f[name][sel]), ref).statistic for f in floor])
            rows.append({"bin": b, "R": [float(edges[b]), float(edges[b + 1])], "statistic": name,
                         "n": int(sel.sum()), "w1": float(w1), "w1_floor": float(w1_floor),
                         "ratio": float(w1 / w1_floor) if w1_floor > 0 else float("inf"),
                         "ks": float(ks), "ks_floor": float(ks_floor)})
    return rows


def evaluate_rings(predictor, features, images, expected, train_mean_image, config, num_samples=32,
                   batch_size=250, pit_images=500, replicas=5, seed=0, c2st=True):
    """All held-out metrics of a ring generator (module docstring).

    Args:
      predictor: a `tfp_dgbn.predict.Predictor` of a Poisson image model.
      features: held-out features [N, 6]; images: their noised counts [N, S, S];
      expected: their exact mean images [N, S, S].
      train_mean_image: mean training image [S, S] (the feature-blind baseline).
      config: the simulator's `RingConfig` (for the floor sample).
      num_samples: weight draws S of the predictive (>= 32 for the issue's criterion).
      batch_size: features per predictive call (memory: S * batch * S^2 floats).
      pit_images: images whose pixels enter the PIT histogram (cost ~ S * pixels CDFs).
      replicas: generated and floor replicas averaged in the ring-statistics W1 (<= num_samples).
      seed: seeds the generated sample, the floor sample and the PIT.
      c2st: also run the classifier two-sample test (needs >= 20 rings).

    Returns:
      dict: nll, nll_true, nll_blind (nats/image), kl_gap (+ se), kl_gap_blind,
      explained_fraction, pit_histogram (10 bins, ideal 0.1 each), pit_max_deviation,
      ring_statistics (list of rows), ring_w1_worst_ratio, c2st_auc (+ se) and
      c2st_floor_auc (+ se), and ``generated`` images [replicas, N, S, S].
    """
    features = np.asarray(features, "float32")
    replicas = min(int(replicas), int(num_samples))
    rng = seeds.rng(seed, "evaluate")
    pit_images = min(len(features), pit_images)
    lp_model, first_draws, log_rates = _predictive_pass(predictor, features, images, num_samples, batch_size,
                                                        pit_images, replicas)
    lp_true = poisson_image_log_prob(images, rate=expected)
    lp_blind = poisson_image_log_prob(images, rate=np.maximum(train_mean_image, 1e-6))
    gap, gap_se = mean_se(lp_true - lp_model)
    gap_blind = float(np.mean(lp_true - lp_blind))
    n = len(features)
    pit = pixel_pit(images[:pit_images], log_rates, rng)
    hist = np.histogram(pit, bins=10, range=(0, 1))[0] / pit.size
    # Generated images: weight draw k for replica k, then Poisson counts.
    generated = np.stack([rng.poisson(np.exp(d)) for d in first_draws])
    floor_samples = np.stack([rings.noised_images(features, rng, config) for _ in range(replicas)])
    ring_rows = compare_ring_statistics(generated, images, floor_samples, features)
    joint = c2st_with_floor(features, images, generated[0], floor_samples[0], seed) if c2st else {}
    return {**joint,
        "n": int(n), "num_samples": int(num_samples),
        "nll": float(-lp_model.mean()), "nll_true": float(-lp_true.mean()), "nll_blind": float(-lp_blind.mean()),
        "kl_gap": gap, "kl_gap_se": gap_se, "kl_gap_blind": gap_blind,
        "explained_fraction": float(1 - gap / gap_blind),
        "pit_histogram": hist.tolist(), "pit_max_deviation": float(np.abs(hist - 0.1).max()),
        "ring_statistics": ring_rows,
        "ring_w1_worst_ratio": float(max(r["ratio"] for r in ring_rows)),
        "generated": generated,
    }
