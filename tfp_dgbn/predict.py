"""The posterior predictive distribution, from a model in memory or an export.

For S weight draws w_s ~ q(w), the posterior predictive is the equal-weight
mixture p(y | x) ~= (1/S) sum_s p(y | x, w_s). `Predictor` builds it as a
`tfd.MixtureSameFamily` from the named parameters of each draw, so the same
code serves a trained `BayesianModel` and a reloaded SavedModel.

Uncertainty split (law of total variance, per output element):
  aleatoric = mean_s Var[y | w_s],  epistemic = Var_s E[y | w_s].
For unordered classes (categorical head) the split is of the entropy instead:
  predictive entropy H[mean_s p_s] = expected entropy mean_s H[p_s] (aleatoric)
  + mutual information I(y; w) (epistemic).
"""
import json
import os

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_dgbn.model.heads import make_head
from tfp_dgbn.validate import InputError, check_features, check_positive_int

tfd = tfp.distributions

METADATA_FILE = os.path.join("assets.extra", "dgbn.json")


def is_classes(head):
    """Whether the head's values are unordered classes (no means, intervals or PIT)."""
    return head.family == "categorical" and not head.ordinal


def predictive_moments(head, named):
    """Summary of the mixture over axis 0 (S): moments, and for categorical heads class probabilities.

    Args:
      head: the model's `DistributionHead`.
      named: dict of named parameters, each [S, B, ...].

    Returns:
      dict of tensors [B, *event_shape]: mean, stddev, epistemic_variance,
      aleatoric_variance (ordered values: every head but unordered classes);
      categorical heads also ``probs`` [B, *event_shape, K] (the mean of the
      per-draw softmax), ``predictive_entropy``, ``expected_entropy`` and
      ``mutual_information`` (nats).
    """
    out = {}
    if not is_classes(head):
        means, variances = head.moments(named)
        mean = tf.reduce_mean(means, axis=0)
        epistemic = tf.reduce_mean(tf.square(means - mean), axis=0)
        aleatoric = tf.reduce_mean(variances, axis=0)
        out.update(mean=mean, stddev=tf.sqrt(epistemic + aleatoric), epistemic_variance=epistemic,
                   aleatoric_variance=aleatoric)
    if head.family == "categorical":
        draws = tf.nn.softmax(named["logits"], axis=-1)
        probs = tf.reduce_mean(draws, axis=0)

        def entropy(p):
            return -tf.reduce_sum(tf.math.multiply_no_nan(tf.math.log(p), p), axis=-1)

        # I(y; w) = mean_s KL(p_s || mean p): the same as total - expected entropy, without the cancellation
        # of two nearly equal entropies (it is exactly 0 when the draws agree).
        divergence = tf.reduce_sum(tf.math.multiply_no_nan(tf.math.log(draws) - tf.math.log(probs), draws), -1)
        out.update(probs=probs, predictive_entropy=entropy(probs), expected_entropy=tf.reduce_mean(entropy(draws), 0),
                   mutual_information=tf.maximum(tf.reduce_mean(divergence, axis=0), 0.0))
    return out


def mixture(head, named):
    """`MixtureSameFamily` over the S draws; batch [B], the head's event shape.

    Args:
      head: the `DistributionHead` that maps named parameters to a law.
      named: dict of named parameters, each [S, B, ...].
    """
    # Components need batch shape [B, S]: move the draw axis after the batch axis.
    moved = {k: tf.experimental.numpy.moveaxis(tf.convert_to_tensor(v), 0, 1) for k, v in named.items()}
    components = head.from_named(moved)
    num_draws = tf.shape(next(iter(moved.values())))[1]
    batch = tf.shape(next(iter(moved.values())))[0]
    weights = tfd.Categorical(logits=tf.zeros(tf.stack([batch, num_draws])))
    return tfd.MixtureSameFamily(weights, components)


class Predictor:
    """Callable features -> posterior predictive distribution.

    Args:
      sample_named: callable(features [B, D] float32, S int) -> dict of named
        parameters [S, B, ...].
      head: the `DistributionHead` of the model.
      metadata: dict (family, feature names and ranges, version, config).
    """

    def __init__(self, sample_named, head, metadata):
        self._sample_named = sample_named
        self.head = head
        self.metadata = dict(metadata)
        self.num_features = len(self.metadata.get("feature_names", [None]))

    def check(self, features):
        """Validated features as float32 [B, D] (ValueError names what is wrong)."""
        return check_features(features, self.num_features)

    def draws(self, features, num_samples=64):
        """Named parameters of S weight draws, each [S, B, ...] (tensors)."""
        return self._sample_named(self.check(features), check_positive_int(num_samples, "num_samples"))

    def __call__(self, features, num_samples=64):
        """The posterior predictive `tfd.Distribution` at features [B, D]."""
        return mixture(self.head, self.draws(features, num_samples))

    def sample(self, features, num_samples=64):
        """Posterior predictive samples [S, B, *event] (numpy): one output draw per weight draw, as the
        export's ``sample`` signature."""
        return np.asarray(self.head.from_named(self.draws(features, num_samples)).sample())

    def summary(self, features, num_samples=64):
        """`predictive_moments` as numpy arrays: mean, stddev, epistemic and aleatoric variance; for
        categorical heads class probabilities, predictive and expected entropy, mutual information."""
        return self.summarize(self.draws(features, num_samples))

    def probs(self, features, num_samples=64):
        """Predictive class probabilities [B, K] (the mean of the per-draw softmax) of a categorical model."""
        if self.head.family != "categorical":
            raise InputError(f"probs needs a categorical head; this model's is {self.head.family!r}")
        return self.summary(features, num_samples)["probs"]

    def summarize(self, draws):
        """`summary` of draws already taken (named parameters [S, B, ...])."""
        return {k: v.numpy() for k, v in predictive_moments(self.head, draws).items()}


#: head families whose predictive `Recalibrated` can scale about its mean: each draw's law is loc + scale * Z
SPREAD_FAMILIES = ("normal", "student-t")


class Recalibrated:
    """A model whose posterior predictive is scaled about its mean by one factor, ``spread`` (tau).

    p_tau(y | x) = p(m + (y - m) / tau | x) / tau, with m(x) the predictive mean: every draw's ``loc`` moves to
    m + tau (loc - m) and its ``scale`` is multiplied by tau. The mixture keeps its mean and shape, and its
    standard deviation, epistemic and aleatoric parts alike, is multiplied by tau. Fitted on rows the
    networks were not trained on (`tfp_dgbn.evaluate.recalibrate`), it corrects an ensemble whose mixture is
    wider than its errors (pool-then-calibrate): each network's own spread plus the spread between the
    networks' means over-covers where each network alone is calibrated.

    Args:
      model: a `BayesianModel` or a list of them (a Bayesian ensemble), with a head of `SPREAD_FAMILIES`.
      spread: tau > 0 (1: the model unchanged).
    """

    def __init__(self, model, spread):
        self.networks = tuple(members(model))
        family = self.networks[0].head.family
        if family not in SPREAD_FAMILIES:
            raise InputError(f"a {family!r} head has no location and scale to recalibrate; only "
                             f"{list(SPREAD_FAMILIES)} heads can be")
        if isinstance(spread, bool) or not np.isfinite(spread) or spread <= 0:
            raise InputError(f"spread must be a finite number > 0, got {spread!r}")
        self.spread = float(spread)


def spread_of(model):
    """The recalibration factor tau of a model (`Recalibrated`; 1.0 for any other model)."""
    return model.spread if isinstance(model, Recalibrated) else 1.0


def rescale_about_mean(named, spread):
    """Named ``loc``/``scale`` draws [S, B, ...] of a location-scale law, scaled by ``spread`` about the mean of
    their mixture (`Recalibrated`); other parameters pass through."""
    mean = tf.reduce_mean(named["loc"], axis=0, keepdims=True)
    # any further parameter (a Student-t's df) is a shape, unchanged by the affine map
    return dict(named, loc=mean + spread * (named["loc"] - mean), scale=spread * named["scale"])


def members(model):
    """The networks of a model: a `BayesianModel`, a list of them (a Bayesian ensemble), or a `Recalibrated`."""
    if isinstance(model, Recalibrated):
        return list(model.networks)
    models = list(model) if isinstance(model, (list, tuple)) else [model]
    if not models:
        raise InputError("an ensemble needs at least one model")
    return models


def sample_named(model, features, num_samples, vectorized=None):
    """Named head parameters of S weight draws, each [S, B, ...], from one model or an equal mixture of several.

    ``vectorized``: as `BayesianModel.sample_params` (None: all draws of a chunk in one batched
    computation where the layers allow it).

    A `Recalibrated` model's draws are scaled about their mean (`rescale_about_mean`).

    A Bayesian ensemble of K networks (each its own posterior q_k) has the
    predictive (1/K) sum_k p_k(y | x); draw i comes from network i mod K, so S
    a multiple of K weights every network equally. Each network runs
    ceil(S / K) draws and the interleaved draws are cut to S.
    """
    models = members(model)
    if len(models) == 1:
        out = models[0].head.named_params(models[0].sample_params(features, num_samples, vectorized))
    else:
        per = (num_samples + len(models) - 1) // len(models)
        # each network through its own head: a head's own weights (a Student-t's df) are the network's
        parts = [m.head.named_params(m.sample_params(features, per, vectorized)) for m in models]
        out = {}
        for key in parts[0]:
            stacked = tf.stack([p[key] for p in parts], axis=1)  # [per, K, B, ...]: draw j of every network
            shape = tf.shape(stacked)
            out[key] = tf.reshape(stacked, tf.concat([[shape[0] * shape[1]], shape[2:]], 0))[:num_samples]
    return rescale_about_mean(out, spread_of(model)) if isinstance(model, Recalibrated) else out


def model_predictor(model, metadata=None, vectorized=None):
    """A `Predictor` over a `BayesianModel` in memory, or a list of them (an ensemble); draws in one tf.function
    (``vectorized``: as `BayesianModel.sample_params`)."""
    models = members(model)
    head = models[0].head

    # one trace for every batch size and S (a job's figures and evaluation call it with several; each
    # trace of the draws costs seconds)
    inputs = models[0].inputs[0]
    spec = (tf.TensorSpec([None] + list(inputs.shape[1:]), inputs.dtype), tf.TensorSpec([], tf.int32))

    @tf.function(input_signature=spec)
    def draw(x, s):
        return sample_named(model, x, s, vectorized)

    def call(x, s):
        return draw(tf.convert_to_tensor(x, inputs.dtype), tf.constant(s, tf.int32))

    meta = {"family": head.family, "head": head.head_config(), "ensemble": len(models), "spread": spread_of(model),
            "feature_names": [f"x{i}" for i in range(models[0].inputs[0].shape[-1])]}
    meta.update(metadata or {})
    return Predictor(call, head, meta)


def load_metadata(path):
    """Read the JSON metadata of an export (no code is executed)."""
    with open(os.path.join(path, METADATA_FILE)) as f:
        return json.load(f)


def load_predictor(path):
    """Load an export written by `tfp_dgbn.export.export_predictive` as a `Predictor`."""
    from tfp_dgbn.atomic import recover_directory

    recover_directory(path)  # an export whose replacement a kill interrupted: the previous one
    if not os.path.isdir(path) or not os.path.exists(os.path.join(path, "saved_model.pb")):
        raise FileNotFoundError(f"no SavedModel at {path!r}")
    metadata = load_metadata(path)
    head = make_head(metadata["head"]["family"], **metadata["head"]["config"])
    loaded = tf.saved_model.load(path)
    signature = loaded.signatures["predictive"]
    names = list(metadata["param_names"])

    def call(x, s):
        out = signature(features=tf.constant(x), num_samples=tf.constant(s, tf.int32))
        return {k: out[k] for k in names}

    predictor = Predictor(call, head, metadata)
    predictor.saved_model = loaded  # keep the variables alive
    return predictor


def central_interval(dist, level=0.9, support_max=None):
    """Central predictive interval [q_(1-level)/2, q_(1+level)/2] of a scalar-event distribution.

    Continuous laws: 80-step bisection on the cdf (exact to ~1e-12 of the
    bracket). Discrete laws (integer support): the smallest k with F(k) >= q,
    from the pmf summed over 0..support_max, so coverage is >= ``level``.

    Args:
      dist: distribution with batch [B] and scalar events (e.g. a `Predictor` output).
      level: interval probability in (0, 1).
      support_max: largest count considered for discrete laws (default: mean + 20 sd + 10).

    Returns:
      (lower, upper), numpy arrays [B].
    """
    if not 0 < level < 1:
        raise InputError(f"level must be in (0, 1), got {level!r}")
    q = np.array([(1 - level) / 2, (1 + level) / 2])
    mean = np.asarray(dist.mean(), "float64")
    sd = np.asarray(dist.stddev(), "float64")
    if dist.dtype.is_integer or _is_count(dist):
        top = int(support_max if support_max is not None else np.max(mean + 20 * sd) + 10)
        if isinstance(_element_law(dist), tfd.Categorical):
            top = min(top, int(tf.shape(_element_law(dist).logits_parameter())[-1]) - 1)  # larger labels are invalid
        cdf = count_cdf(dist, top)
        lo = np.argmax(cdf >= q[0] - 1e-12, axis=0)
        hi = np.argmax(cdf >= q[1] - 1e-12, axis=0)
        return lo.astype("float64"), hi.astype("float64")
    # Both quantiles at once, the 80 steps in one graph: eager cdf calls of a mixture cost ~16 ms each,
    # 160 of them per interval (the toy job's figures spent 18 s here).
    target = tf.constant(q[:, None])

    @tf.function(autograph=False)
    def bisect(a, b):
        def step(_, a, b):
            mid = 0.5 * (a + b)
            below = tf.cast(dist.cdf(tf.cast(mid, tf.float32)), tf.float64) < target
            return _ + 1, tf.where(below, mid, a), tf.where(below, b, mid)
        _, a, b = tf.while_loop(lambda i, a, b: i < 80, step, (tf.constant(0), a, b))
        return 0.5 * (a + b)

    lo, hi = np.asarray(bisect(tf.constant(np.stack([mean - 40 * sd - 1] * 2)),
                               tf.constant(np.stack([mean + 40 * sd + 1] * 2))))
    return lo, hi


def count_cdf(dist, top):
    """F(k) for k = 0..top of a count law with batch [B], from its pmf: float64 [top + 1, B]."""
    k = np.arange(int(top) + 1, dtype=dist.dtype.as_numpy_dtype)[:, None]
    return np.cumsum(np.exp(dist.log_prob(k).numpy().astype("float64")), axis=0)


def _element_law(dist):
    """The per-element law under a mixture and/or Independent wrapper."""
    base = getattr(dist, "components_distribution", dist)
    return getattr(base, "distribution", base)


def _is_count(dist):
    return isinstance(_element_law(dist), (tfd.Poisson, tfd.Categorical, tfd.NegativeBinomial))
