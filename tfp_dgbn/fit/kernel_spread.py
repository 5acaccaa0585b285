"""Refit a learned kernel's spread after training: the noise level of the network that training ended with.

The heads whose elements are an intensity times a learned kernel
(`tfp_dgbn.model.heads.LearnedKernel`) carry the kernel's spread r as one point
estimate, trained with the network. While Adam moves the network, its
intensities jitter from step to step and r absorbs that jitter as noise; as the
learning rate decays, r can follow its falling optimum by at most about one
learning rate (in log r) per step, and it ends wide. Measured on the
single-ring pattern job (`dgbn fit pattern-rings`, defaults): r was 0.26 in
epoch 2 and 0.245 at the end, where the final network's data term is lowest
at r = 0.218 (the law's kernel: 0.212); with r set to 0.218 the same network's
classifier two-sample AUC fell from 0.81 to 0.53 (floor 0.495; docs/seed_rings.md).

`refit_kernel_spread` minimises the ELBO's data term over r alone, the
network's weights fixed: the mean over rows and S weight draws of
-log p(y | x, w, r), on rows the network was not trained on (the run's
validation split), so that r also holds the intensities' error on new inputs.
It is a one-dimensional bounded minimisation (scipy's Brent) over cached
intensities, so it costs one pass of draws over the rows.
"""
import numpy as np
import tensorflow as tf
from scipy.optimize import minimize_scalar

from tfp_dgbn.model.heads import LearnedKernel
from tfp_dgbn.validate import InputError, check_positive_int


def has_kernel_spread(model):
    """Whether ``model``'s head carries a learned kernel spread that `refit_kernel_spread` can refit."""
    return isinstance(model.head, LearnedKernel)


def refit_kernel_spread(model, features, targets, num_samples=4, batch_size=100, search=3.0, max_rows=2000):
    """Set the head's kernel spread to the value that minimises the data term on ``(features, targets)``.

    Args:
      model: a `BayesianModel` whose head is a `LearnedKernel` (`has_kernel_spread`).
      features: inputs [N, ...]; targets: their targets [N, *event_shape]; N >= 1 rows not trained on.
      num_samples: S, weight draws per row (the data term's Monte-Carlo average).
      batch_size: rows per batch of draws.
      search: the search interval, log r +- ``search`` around the trained value (nats).
      max_rows: only the first ``max_rows`` rows are used: the draws of every row are held in memory
        (S x rows x event floats per parameter), and one scalar needs few rows (2,000 rings of 1,024
        pixels put its standard error near 1e-4 of r).

    Returns:
      dict: ``trained`` and ``refit`` spreads, ``nll_trained`` / ``nll_refit``, the data term at each
      (nats per row), and ``rows``, the rows used. The head's ``log_spread`` holds the refit value afterwards (kept as trained when
      the search found nothing lower).
    """
    head = model.head
    if not isinstance(head, LearnedKernel):
        raise InputError(f"the head {head.name!r} ({type(head).__name__}) has no learned kernel spread to refit")
    features, targets = np.asarray(features, "float32"), np.asarray(targets, "float32")
    if len(features) == 0 or len(features) != len(targets):
        raise InputError(f"features and targets must hold the same positive number of rows, got {len(features)} "
                         f"and {len(targets)}")
    num_samples, batch_size = check_positive_int(num_samples, "num_samples"), check_positive_int(batch_size,
                                                                                                  "batch_size")
    features, targets = features[:check_positive_int(max_rows, "max_rows")], targets[:max_rows]

    @tf.function
    def draws(x):  # sampled in one graph (eager Flipout calls rebuild their distributions each time)
        named = head.named_params(model.sample_params(x, num_samples))
        return {k: v for k, v in named.items() if k != "scale"}  # what the spread does not change

    cached = [(draws(features[i:i + batch_size]), tf.constant(targets[i:i + batch_size]))
              for i in range(0, len(features), batch_size)]

    @tf.function
    def batch_nll(named, y, log_spread):
        return -tf.reduce_sum(head.from_named(head.with_spread(named, log_spread)).log_prob(y))

    def nll(log_spread):
        total = sum(float(batch_nll(named, y, tf.constant(log_spread, tf.float32))) for named, y in cached)
        return total / (num_samples * len(features))

    trained = float(head.log_spread.numpy())
    best = minimize_scalar(nll, bounds=(trained - search, trained + search), method="bounded",
                           options={"xatol": 1e-4})
    nll_trained = nll(trained)
    refit = float(best.x) if best.fun < nll_trained else trained
    head.log_spread.assign(refit)
    return {"trained": float(np.exp(trained)), "refit": float(np.exp(refit)), "nll_trained": nll_trained,
            "nll_refit": min(float(best.fun), nll_trained), "rows": int(len(features))}
