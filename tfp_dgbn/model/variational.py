"""Named, serializable priors, posteriors and the KL term of Bayesian layers.

TFP's variational layers take their prior, posterior and divergence as
callables. TFP serialises those by function *name* (or by pickled bytecode for
lambdas), so a model built with closures cannot be saved and reloaded
(tensorflow/probability#128, #289, #1350). Here each callable is a small class
registered with Keras, with a ``get_config``; the layer subclasses in
`tfp_dgbn.model.layers` serialise them as Keras objects.

This module is also the one place that defines the KL weighting:
every Bayesian layer adds ``kl_weight * KL(q || p) / N_train`` to
``model.losses``, so that ``mean NLL + sum(model.losses)`` is the per-example
negative ELBO (Blundell et al., 2015, "Weight Uncertainty in Neural Networks").
"""
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_dgbn.tfk import keras
from tfp_dgbn.validate import InputError, check_positive_int

tfd = tfp.distributions

_PACKAGE = "tfp_dgbn"


def inverse_softplus(y):
    """Return x with softplus(x) = y, for y > 0 (a float)."""
    y = float(y)
    if not y > 0:
        raise InputError(f"inverse_softplus needs y > 0, got {y!r}")
    return float(y + np.log(-np.expm1(-y)))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class NormalPrior:
    """Fixed isotropic prior p(w) = N(0, s^2) over a weight tensor.

    Args:
      scale: prior standard deviation (> 0), in the units of the weights; with
        ``fan_in=True`` the stddev of a kernel is ``scale / sqrt(fan_in)``.
      fan_in: scale kernel priors by the layer's fan-in (inputs per output
        unit: all kernel dimensions but the last). A fixed N(0, 1) on every
        weight makes the prior over *functions* grow with the width (a unit
        of a 32-wide layer sums 32 unit-variance terms), and mean-field VI
        pulls unused weights back to that noisy prior; scaling by fan-in keeps
        every layer's prior pre-activations O(scale) whatever the width, like
        He/Glorot initialisation (Neal, 1996; Fortuin, 2022). Biases (1-D)
        keep ``scale``.
    """

    def __init__(self, scale=1.0, fan_in=False):
        if not float(scale) > 0:
            raise InputError(f"NormalPrior scale must be > 0, got {scale!r}")
        self.scale = float(scale)
        self.fan_in = bool(fan_in)

    def stddev_for(self, shape):
        """Prior stddev of a weight tensor of this shape (a float)."""
        shape = [int(d) for d in shape]
        if self.fan_in and len(shape) >= 2:
            return self.scale / float(np.sqrt(np.prod(shape[:-1])))
        return self.scale

    def __call__(self, dtype, shape, name, trainable, add_variable_fn):
        del name, trainable, add_variable_fn  # the prior has no variables
        dist = tfd.Normal(loc=tf.zeros(shape, dtype), scale=tf.cast(self.stddev_for(shape), dtype))
        return tfd.Independent(dist, reinterpreted_batch_ndims=len(shape))

    def get_config(self):
        return {"scale": self.scale, "fan_in": self.fan_in}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MeanFieldNormalPosterior:
    """Mean-field Gaussian posterior q(w) = N(mu, softplus(rho)^2), trainable.

    Each instance carries its own seed: TFP's default initializer is a single
    unseeded ``RandomNormal`` shared by all layers, which makes same-shaped
    layers start identical.

    Args:
      init_scale: initial posterior stddev softplus(rho) (> 0). Small values
        let the means learn first, before weight noise is allowed to grow.
      loc_init: "glorot" (variance scaling, for kernels), "zeros" (biases), a
        number: every mean starts there (e.g. an output bias at the log of
        the mean count), or a list with one start per unit (e.g. log class frequencies).
      seed: integer seed of the mean initializer.
    """

    def __init__(self, init_scale=1e-3, loc_init="glorot", seed=0):
        if not float(init_scale) > 0:
            raise InputError(f"init_scale must be > 0, got {init_scale!r}")
        if not isinstance(loc_init, str) or loc_init not in ("glorot", "zeros"):
            try:
                value = np.asarray(loc_init, "float64")
            except (TypeError, ValueError):
                value = np.array(np.nan)
            if value.ndim > 1 or value.size == 0 or not np.all(np.isfinite(value)):
                raise InputError(f"loc_init must be 'glorot', 'zeros', a finite number or a list of them, "
                                 f"got {loc_init!r}")
            loc_init = value.tolist()
        self.init_scale = float(init_scale)
        self.loc_init = loc_init
        self.seed = int(seed)

    def __call__(self, dtype, shape, name, trainable, add_variable_fn):
        if self.loc_init == "glorot":
            loc_initializer = keras.initializers.VarianceScaling(
                scale=1.0, mode="fan_avg", distribution="truncated_normal", seed=self.seed)
        elif self.loc_init == "zeros":
            loc_initializer = keras.initializers.Zeros()
        else:
            loc_initializer = keras.initializers.Constant(self.loc_init)
        make = tfp.layers.default_mean_field_normal_fn(
            loc_initializer=loc_initializer,
            untransformed_scale_initializer=keras.initializers.Constant(
                inverse_softplus(self.init_scale)),
        )
        return make(dtype, shape, name, trainable, add_variable_fn)

    def get_config(self):
        return {"init_scale": self.init_scale, "loc_init": self.loc_init, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ScaledKLDivergence:
    """The KL term one layer adds to ``model.losses``: kl_weight * KL(q||p) / N_train.

    ``kl_weight`` is the model's single non-trainable variable, bound by
    `bind_kl_weight` when the model is built or reloaded (it is model state,
    saved with the weights, not part of this object's config). Unbound, the
    weight is 1 (the true ELBO).

    Args:
      num_train: number of training examples N_train (> 0); dividing by it
        makes the loss a per-example negative ELBO.
    """

    def __init__(self, num_train):
        check_num_train(num_train)
        self.num_train = int(num_train)
        self.kl_weight = None

    def unweighted(self, posterior, prior):
        """KL(q || p) / N_train, analytic (both are Normal), a scalar tensor."""
        kl = tfd.kl_divergence(posterior, prior)
        return tf.reduce_sum(kl) / tf.cast(self.num_train, kl.dtype)

    def __call__(self, posterior, prior, posterior_tensor):
        del posterior_tensor  # the KL is analytic, no Monte-Carlo estimate
        raw = self.unweighted(posterior, prior)
        if self.kl_weight is None:
            return raw
        return tf.cast(self.kl_weight, raw.dtype) * raw

    def get_config(self):
        return {"num_train": self.num_train}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ReplicaSample:
    """Draw a layer's weight tensor from its posterior, independently on every replica.

    TFP's default ``d.sample()`` is a stateful random op: under a distribution
    strategy, workers running the same graph from the same global seed would
    draw the *same* weights, and the replicas' gradients would not be
    independent Monte-Carlo estimates. Here a fresh stateless seed (from a
    stateful draw, so every call differs) is folded with the replica's global
    id (``replica_id_in_sync_group``; 0 outside a strategy), which makes draws
    independent across replicas and workers and reproducible from the global seed.
    """

    def __call__(self, dist):
        base = tf.random.uniform([2], minval=tf.int32.min, maxval=tf.int32.max, dtype=tf.int32)
        return dist.sample(seed=tf.random.experimental.stateless_fold_in(base, replica_id()))

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def replica_id():
    """The global id of the replica running this code (int32 scalar; 0 outside a strategy)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None:  # cross-replica context: code runs once, as replica 0
        return tf.constant(0, tf.int32)
    return tf.cast(ctx.replica_id_in_sync_group, tf.int32)


def check_num_train(num_train):
    """Raise ValueError unless num_train is a positive integer."""
    check_positive_int(num_train, "N_train")
