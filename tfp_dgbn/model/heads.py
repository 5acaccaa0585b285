"""Distribution heads: the last layer of every model, mapping parameters to a law.

A head turns a network's raw output of shape [B, *event_shape, P] into a
`tfp.distributions.Distribution` with batch shape [B] and event shape
``event_shape`` (elements independent). The same head serves the 1-D toys
(``event_shape=()``) and images (``event_shape=(H, W)``).

Each head also names its parameters (``named_params``) and rebuilds the law
from those names (``from_named``): that is what an export serves and what
`tfp_dgbn.load` turns back into a distribution, so both sides share one code
path. ``moments`` gives per-sample mean and variance, from which the predictive
epistemic/aleatoric split follows (law of total variance).
"""
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_dgbn.tfk import keras

tfd = tfp.distributions


class DistributionHead(tfp.layers.DistributionLambda):
    """Base class. Subclasses set ``family`` and implement the parameter maps.

    Args:
      event_shape: shape of one target (``()`` for a scalar, ``(H, W)`` for an image).
    """

    family = None
    target_dtype = tf.float32

    def __init__(self, event_shape=(), **kwargs):
        kwargs.pop("make_distribution_fn", None)
        kwargs.pop("convert_to_tensor_fn", None)
        self.event_shape = tuple(int(d) for d in event_shape)
        # Keras needs a tensor from a layer output: use the mean, not a sample,
        # so predict() is deterministic given the weight draw.
        super().__init__(self.distribution, convert_to_tensor_fn=tfd.Distribution.mean, **kwargs)

    @property
    def params_size(self):
        """Number of raw outputs per event element (the trailing dim P)."""
        raise NotImplementedError

    def named_params(self, params):
        """Dict of named parameter tensors, each [..., *event_shape] (or [..., K])."""
        raise NotImplementedError

    def from_named(self, named):
        """The element-wise law from named parameters, then made independent over the event."""
        raise NotImplementedError

    def moments(self, named):
        """(mean, variance) of each element given named parameters."""
        raise NotImplementedError

    def distribution(self, params):
        """The distribution for a raw parameter tensor [B, *event_shape, P]."""
        return self.from_named(self.named_params(params))

    def _independent(self, dist):
        if not self.event_shape:
            return dist
        return tfd.Independent(dist, reinterpreted_batch_ndims=len(self.event_shape))

    def get_config(self):
        base = keras.layers.Layer.get_config(self)
        base.update(event_shape=list(self.event_shape))
        return base

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def head_config(self):
        """JSON-able description saved with exports: {'family', 'config'}."""
        config = self.get_config()
        for key in ("name", "trainable", "dtype"):
            config.pop(key, None)
        return {"family": self.family, "config": config}


@keras.saving.register_keras_serializable(package="tfp_dgbn")
class NormalHead(DistributionHead):
    """Normal(loc, scale) with scale = min_scale + softplus(raw).

    The softplus keeps the scale smooth and positive; the floor ``min_scale``
    (target units) keeps the NLL bounded when a few points sit on the mean.
    """

    family = "normal"

    def __init__(self, event_shape=(), min_scale=1e-3, **kwargs):
        self.min_scale = float(min_scale)
        super().__init__(event_shape, **kwargs)

    params_size = 2

    def named_params(self, params):
        return {"loc": params[..., 0],
                "scale": self.min_scale + tf.nn.softplus(params[..., 1])}

    def from_named(self, named):
        return self._independent(tfd.Normal(loc=named["loc"], scale=named["scale"]))

    def moments(self, named):
        return named["loc"], tf.square(named["scale"])

    def get_config(self):
        config = super().get_config()
        config.update(min_scale=self.min_scale)
        return config


@keras.saving.register_keras_serializable(package="tfp_dgbn")
class PoissonHead(DistributionHead):
    """Poisson counts parameterised by the log-rate (unbounded, so no clipping)."""

    family = "poisson"
    params_size = 1

    def named_params(self, params):
        return {"log_rate": params[..., 0]}

    def from_named(self, named):
        return self._independent(tfd.Poisson(log_rate=named["log_rate"]))

    def moments(self, named):
        rate = tf.exp(named["log_rate"])
        return rate, rate


@keras.saving.register_keras_serializable(package="tfp_dgbn")
class CategoricalHead(DistributionHead):
    """Categorical over the integer values 0..K-1 (a discrete law of any shape).

    Args:
      num_classes: K, the number of values.
    """

    family = "categorical"
    target_dtype = tf.int32

    def __init__(self, event_shape=(), num_classes=2, **kwargs):
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes!r}")
        self.num_classes = int(num_classes)
        super().__init__(event_shape, **kwargs)

    @property
    def params_size(self):
        return self.num_classes

    def named_params(self, params):
        return {"logits": params}

    def from_named(self, named):
        return self._independent(tfd.Categorical(logits=named["logits"]))

    def moments(self, named):
        probs = tf.nn.softmax(named["logits"], axis=-1)
        values = tf.range(self.num_classes, dtype=probs.dtype)
        mean = tf.reduce_sum(probs * values, axis=-1)
        second = tf.reduce_sum(probs * tf.square(values), axis=-1)
        return mean, second - tf.square(mean)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes)
        return config


HEADS = {cls.family: cls for cls in (NormalHead, PoissonHead, CategoricalHead)}


def make_head(family, **config):
    """Build a head by family name ('normal', 'poisson', 'categorical')."""
    if family not in HEADS:
        raise ValueError(f"unknown head {family!r}; choose one of {sorted(HEADS)}")
    return HEADS[family](**config)
