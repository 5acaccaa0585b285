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
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_dgbn.tfk import keras
from tfp_dgbn.validate import InputError

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

    def point_estimates(self):
        """The head's own trainable parameters (point estimates, not Bayesian weights) by name, as floats:
        what TensorBoard shows per epoch; none (an empty dict) by default."""
        return {}

    def data_loss(self, dist, y):
        """The per-example data term the ELBO minimises, [B]: the negative log-likelihood of ``y``
        (a head with no likelihood, `PointImageHead`, puts its image loss here)."""
        return -dist.log_prob(y)

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
    """Normal(loc, scale) in the target's own units, from a network that works in standardised units.

    loc = target_mean + target_std * raw_loc, scale = target_std * (min_scale + softplus(raw_scale)).
    The network sees a target of mean 0 and sd 1 whatever the data's units
    (a head starting near 0 with unit scale cannot reach a target of mean 150
    and sd 77), while the law, its ``log_prob`` (the Jacobian -log target_std
    included), intervals and samples are in the original units. The softplus
    keeps the scale smooth and positive; the floor ``min_scale`` (in target
    standard deviations) keeps the NLL bounded when a few points sit on the mean.

    Args:
      target_mean, target_std: the training targets' mean and standard deviation (default 0 and 1).
    """

    family = "normal"

    def __init__(self, event_shape=(), min_scale=1e-3, target_mean=0.0, target_std=1.0, **kwargs):
        self.min_scale = float(min_scale)
        self.target_mean, self.target_std = float(target_mean), float(target_std)
        if not (np.isfinite(self.target_mean) and np.isfinite(self.target_std) and self.target_std > 0):
            raise InputError(f"target_mean must be finite and target_std > 0, got {target_mean!r}, {target_std!r}")
        super().__init__(event_shape, **kwargs)

    params_size = 2

    def named_params(self, params):
        return {"loc": self.target_mean + self.target_std * params[..., 0],
                "scale": self.target_std * (self.min_scale + tf.nn.softplus(params[..., 1]))}

    def from_named(self, named):
        return self._independent(tfd.Normal(loc=named["loc"], scale=named["scale"]))

    def moments(self, named):
        return named["loc"], tf.square(named["scale"])

    def get_config(self):
        config = super().get_config()
        config.update(min_scale=self.min_scale, target_mean=self.target_mean, target_std=self.target_std)
        return config


@keras.saving.register_keras_serializable(package="tfp_dgbn")
class StudentTHead(NormalHead):
    """A heteroscedastic Student-t: `NormalHead`'s location and scale (target standardised inside), with
    one learned degrees of freedom nu > 2 shared by every example.

    For targets whose errors are heavier-tailed than a Normal's (most rows fitted closely, a few far off):
    a Normal wide enough for the far rows is too wide for the rest, so its central intervals over-cover,
    and it still scores the far rows badly. nu is a point estimate of the head, as the kernel spread of
    `LearnedKernel` is (one tail weight for the whole target, not a Bayesian weight per example); nu > 2
    keeps the variance finite, which the epistemic/aleatoric split uses. As nu grows the law becomes
    `NormalHead`'s.

    Named parameters: ``loc``, ``scale`` (the t's scale; its sd is scale sqrt(nu / (nu - 2))) and ``df``
    (nu, broadcast to ``loc``'s shape so that an export serves it with every draw).

    Args:
      initial_df: nu at the start of training (> 2; default 10, close to a Normal).
    """

    family = "student-t"
    min_df = 2.0

    def __init__(self, event_shape=(), min_scale=1e-3, target_mean=0.0, target_std=1.0, initial_df=10.0,
                 **kwargs):
        self.initial_df = float(initial_df)
        if not (np.isfinite(self.initial_df) and self.initial_df > self.min_df):
            raise InputError(f"initial_df must be finite and > {self.min_df:g}, got {initial_df!r}")
        super().__init__(event_shape, min_scale, target_mean, target_std, **kwargs)

    def build(self, input_shape):
        # nu = min_df + softplus(raw): smooth, and above the finite-variance bound at any raw value
        raw = float(np.log(np.expm1(self.initial_df - self.min_df)))
        self.raw_df = self.add_weight(name="raw_df", shape=(), trainable=True,
                                      initializer=keras.initializers.Constant(raw))
        super().build(input_shape)

    def _df(self):
        if not hasattr(self, "raw_df"):  # not yet called on a tensor (no weight yet): the starting nu
            return tf.constant(self.initial_df)
        return self.min_df + tf.nn.softplus(self.raw_df)

    def named_params(self, params):
        named = super().named_params(params)
        named["df"] = tf.broadcast_to(tf.cast(self._df(), named["loc"].dtype), tf.shape(named["loc"]))
        return named

    def from_named(self, named):
        return self._independent(tfd.StudentT(df=named["df"], loc=named["loc"], scale=named["scale"]))

    def moments(self, named):
        return named["loc"], tf.square(named["scale"]) * named["df"] / (named["df"] - 2.0)

    def point_estimates(self):
        return {"df": float(self._df().numpy())}

    def get_config(self):
        config = super().get_config()
        config.update(initial_df=self.initial_df)
        return config


def _log_intensity(raw, low=-30.0, high=10.0):
    """A log-intensity in [low, high]: smooth towards ``low`` (so a vanished signal keeps a gradient) and clipped
    at ``high`` (e^10 is far above any intensity these heads model; the clip keeps exp finite)."""
    return low + tf.nn.softplus(tf.minimum(raw, high) - low)


class LearnedKernel:
    """Mixin of the heads whose elements are an intensity times one learned kernel K ~ Normal(1, r).

    r is one trainable scalar of the head (a point estimate, like the law's own
    noise level): every element shares the kernel, as multiplicative noise of one
    source does. A per-element r lets the network explain a wrong intensity by a
    wider kernel, which it does early in training and never undoes (measured:
    W1 26x the floor after 4 epochs with r per pixel).
    """

    def _check_kernel(self, min_scale, initial_spread):
        self.min_scale, self.initial_spread = float(min_scale), float(initial_spread)
        for name, value in (("min_scale", self.min_scale), ("initial_spread", self.initial_spread)):
            if not (np.isfinite(value) and value > 0):
                raise InputError(f"{name} must be finite and > 0, got {value!r}")

    def build(self, input_shape):
        self.log_spread = self.add_weight(name="log_spread", shape=(), trainable=True,
                                          initializer=keras.initializers.Constant(np.log(self.initial_spread)))
        super().build(input_shape)

    def point_estimates(self):
        return {"kernel_spread": float(tf.exp(self.log_spread).numpy())}

    def with_spread(self, named, log_spread):
        """``named`` parameters with the kernel spread exp(``log_spread``) in place of the head's own: the
        intensities (``loc``) and any other parameter are unchanged, ``scale`` = loc r + min_scale."""
        return dict(named, scale=named["loc"] * tf.exp(tf.cast(log_spread, named["loc"].dtype)) + self.min_scale)

    def _element(self, raw_log_intensity):
        """(loc, scale) of intensity x kernel for raw log intensities (any shape)."""
        intensity = tf.exp(_log_intensity(raw_log_intensity))
        return intensity, intensity * tf.exp(self.log_spread) + self.min_scale

    def _kernel_config(self, config):
        config.update(min_scale=self.min_scale, initial_spread=self.initial_spread)
        return config


@keras.saving.register_keras_serializable(package="tfp_dgbn")
class ScaledNormalHead(LearnedKernel, DistributionHead):
    """Intensity times a learned kernel: value = m K with K ~ Normal(1, r), i.e. Normal(m, m r + min_scale).

    The law of multiplicative noise (a signal m >= 0 times a factor of mean 1),
    whose spread is proportional to the signal. m = exp(raw) is fitted in log
    space, so a pixel at 1e-3 of the peak and one on the peak are fitted to the
    same relative accuracy (a free Normal scale has an absolute floor and puts
    mass below 0 where the signal vanishes); r is one learned scalar
    (`LearnedKernel`). ``min_scale`` (in the target's units) keeps the
    likelihood bounded where the signal vanishes, and stops values far below
    it from dominating the fit.

    Named parameters: ``loc`` = m and ``scale`` = m r + min_scale, the same law
    as `NormalHead` once named.
    """

    family = "scaled-normal"
    params_size = 1

    def __init__(self, event_shape=(), min_scale=1e-5, initial_spread=0.2, **kwargs):
        self._check_kernel(min_scale, initial_spread)
        super().__init__(event_shape, **kwargs)

    def named_params(self, params):
        loc, scale = self._element(params[..., 0])
        return {"loc": loc, "scale": scale}

    from_named = NormalHead.from_named
    moments = NormalHead.moments

    def get_config(self):
        return self._kernel_config(super().get_config())


@keras.saving.register_keras_serializable(package="tfp_dgbn")
class ImageMixtureHead(LearnedKernel, DistributionHead):
    """A mixture of C image laws, each a product of intensity-times-kernel elements: a global discrete latent.

    The component (e.g. "the second ring is absent" / "present") is drawn once
    per image, then every element from that component's independent law, so the
    elements are dependent given the inputs. Raw outputs per element, P = 2 C + 1:
    channel 0 a log intensity shared by the components, channels [1, C + 1) each
    component's deviation from it, [C + 1, 2 C + 1) per-element contributions
    whose mean over the event is the components' logits (a global pooling: the
    weights belong to the image). The kernel is shared (`LearnedKernel`).

    Why a shared part plus deviations: an image's log-likelihood is a sum over
    its elements, so the components' likelihoods differ by thousands of nats
    and each image trains only the component that fits it best. With free
    log intensities per component, the one that starts a little better on
    every image (on the parts all images share) takes them all and the other
    never trains again (measured on two rings: one component's weight 0.97-1.0
    in every run, the second ring always drawn). With the shared part trained
    by every image and deviations that start at zero
    (`tfp_dgbn.model.layers.zero_output_channels`), the components differ only
    where the images do (tried: both seeds split the two-ring images by the
    second ring's presence, weights about 1/2).

    Named parameters: ``logits`` [..., C], ``loc`` and ``scale`` [..., C, *event_shape].
    """

    family = "image-mixture"

    def __init__(self, event_shape=(), components=2, min_scale=1e-5, initial_spread=0.2, **kwargs):
        self.components = int(components)
        if self.components < 2:
            raise InputError(f"components must be >= 2, got {components!r}")
        self._check_kernel(min_scale, initial_spread)
        super().__init__(event_shape, **kwargs)

    @property
    def params_size(self):
        return 2 * self.components + 1

    @property
    def deviation_channels(self):
        """The raw channels that should start at zero (the deviations and the logits' contributions), a slice."""
        return slice(1, self.params_size)

    def named_params(self, params):
        c, rank = self.components, len(self.event_shape)

        def component_first(x):
            # [..., *event, C] -> [..., C, *event], as tfd batches want it (the rank may be unknown in a graph)
            r = tf.rank(x)
            return tf.transpose(x, tf.concat([tf.range(r - 1 - rank), [r - 1], tf.range(r - 1 - rank, r - 1)], 0))

        loc, scale = self._element(params[..., :1] + params[..., 1:c + 1])
        logits = tf.reduce_mean(params[..., c + 1:], axis=list(range(-1 - rank, -1)))
        return {"logits": logits, "loc": component_first(loc), "scale": component_first(scale)}

    def from_named(self, named):
        images = NormalHead.from_named(self, {"loc": named["loc"], "scale": named["scale"]})
        return tfd.MixtureSameFamily(tfd.Categorical(logits=named["logits"]), images)

    def moments(self, named):
        weights = tf.nn.softmax(named["logits"], axis=-1)
        weights = tf.reshape(weights, tf.concat([tf.shape(weights), tf.ones([len(self.event_shape)], tf.int32)], 0))
        mean = tf.reduce_sum(weights * named["loc"], axis=-1 - len(self.event_shape))
        second = tf.reduce_sum(weights * (tf.square(named["scale"]) + tf.square(named["loc"])),
                               axis=-1 - len(self.event_shape))
        return mean, tf.maximum(second - tf.square(mean), 0.0)

    def get_config(self):
        config = super().get_config()
        config.update(components=self.components)
        return self._kernel_config(config)


@keras.saving.register_keras_serializable(package="tfp_dgbn")
class PointImageHead(DistributionHead):
    """No output likelihood: the network's output *is* the value (a point mass), the reference decoder's law.

    Every weight draw gives one value, so all the predictive spread is
    epistemic. It has no density to train on: the data term is the image loss,
    the mean squared error over the event's elements (Keras's ``"mse"``, as the
    reference generator was compiled), added to the weighted KL. That loss is
    the NLL of a Normal of variance n/2 per element (n elements) up to a
    constant: for a 32 x 32 image, a noise sd of 22.6 in the data's units.
    """

    family = "point"
    params_size = 1

    def named_params(self, params):
        return {"loc": params[..., 0]}

    def from_named(self, named):
        return self._independent(tfd.Deterministic(loc=named["loc"]))

    def moments(self, named):
        return named["loc"], tf.zeros_like(named["loc"])

    def data_loss(self, dist, y):
        # the mean over the event's elements (over none for a scalar event)
        return tf.reduce_mean(tf.square(y - dist.mean()), axis=list(range(-len(self.event_shape), 0)))


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
      ordinal: the values are ordered quantities (counts 0..K-1), so means,
        variances, intervals and PIT mean something; False (default): unordered
        classes, summarised by class probabilities, entropies and mutual information only.
    """

    family = "categorical"
    target_dtype = tf.int32

    def __init__(self, event_shape=(), num_classes=2, ordinal=False, **kwargs):
        if int(num_classes) < 2:
            raise InputError(f"num_classes must be >= 2, got {num_classes!r}")
        self.num_classes = int(num_classes)
        self.ordinal = bool(ordinal)
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
        config.update(num_classes=self.num_classes, ordinal=self.ordinal)
        return config


HEADS = {cls.family: cls for cls in (NormalHead, StudentTHead, PoissonHead, CategoricalHead, ScaledNormalHead,
                                            ImageMixtureHead, PointImageHead)}

#: the scalar heads of real-valued targets (standardised inside the head); the others model counts or classes
REAL_FAMILIES = ("normal", "student-t")


def make_head(family, **config):
    """Build a head by family name (a key of ``HEADS``: 'normal', 'student-t', 'poisson', 'categorical',
    'scaled-normal', 'image-mixture', 'point')."""
    if family not in HEADS:
        raise InputError(f"unknown head {family!r}; choose one of {sorted(HEADS)}")
    return HEADS[family](**config)


def head_for_targets(family, y, **config):
    """A scalar-target head fitted to the training targets, and the output bias its network starts from.

    So that a network starts at the data, whatever its units:
      normal, student-t: the head standardises (``target_mean``, ``target_std`` of ``y``);
        the network's raw scale starts at one target sd;
      poisson: the log-rate starts at the log of the mean count;
      categorical: the logits start at the log class frequencies (add-one
        smoothed), K = max(y) + 1 unless ``num_classes`` is given.

    Args:
      family: "normal", "student-t", "poisson" or "categorical".
      y: training targets [N] (counts and classes: non-negative integers).
      **config: further head arguments.

    Returns:
      (head, output bias: a list of the params layer's initial bias, one per raw output).
    """
    y = np.asarray(y, "float64")
    if family in REAL_FAMILIES:
        sd = float(y.std()) if len(y) > 1 and y.std() > 0 else 1.0
        head = make_head(family, target_mean=float(y.mean()), target_std=sd, **config)
        return head, [0.0, float(np.log(np.expm1(1.0 - head.min_scale)))]
    if family == "poisson":
        return make_head(family, **config), [float(np.log(max(y.mean(), 1e-3)))]
    config.setdefault("num_classes", int(y.max()) + 1)
    counts = np.bincount(y.astype("int64"), minlength=config["num_classes"])[:config["num_classes"]]
    return make_head(family, **config), np.log((counts + 1) / (len(y) + len(counts))).tolist()
