"""Flipout layers whose prior, posterior and KL term save and reload with the model.

`DenseFlipout` and `Conv2DFlipout` are TFP's layers (Flipout: Wen et al., 2018,
"Flipout: Efficient Pseudo-Independent Weight Perturbations on Mini-Batches"),
which estimate E_q[log p(y | x, w)] with one weight draw per call whose
perturbation is decorrelated across examples by random sign flips. They differ
from TFP's only in configuration: the callables are the named Keras objects of
`tfp_dgbn.model.variational`, so ``get_config``/``from_config`` round-trip.

Example:
  >>> layer = dense_flipout(16, num_train=1000, seed=1, activation="relu")
"""
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_dgbn.model.variational import (
    MeanFieldNormalPosterior,
    NormalPrior,
    ReplicaSample,
    ScaledKLDivergence,
)
from tfp_dgbn.tfk import keras
from tfp_dgbn.validate import InputError

_FN_KEYS = (
    "kernel_posterior_fn",
    "kernel_prior_fn",
    "kernel_divergence_fn",
    "bias_posterior_fn",
    "bias_prior_fn",
    "bias_divergence_fn",
    "kernel_posterior_tensor_fn",
    "bias_posterior_tensor_fn",
)


class _SerializableVariational:
    """Mixin replacing TFP's by-name function serialisation with Keras objects."""

    # Architecture arguments each subclass saves (TFP's own get_config cannot
    # be reused: it calls `func.__name__` on every callable).
    _ARCH_KEYS = ()

    def get_config(self):
        config = keras.layers.Layer.get_config(self)
        for key in self._ARCH_KEYS:
            config[key] = getattr(self, key)
        config["activation"] = keras.activations.serialize(self.activation) if self.activation else None
        if hasattr(self, "seed"):  # Flipout's sign seed (reparameterization layers have none)
            config["seed"] = self.seed
        for key in _FN_KEYS:
            fn = getattr(self, key)
            if key.endswith("_tensor_fn") and not hasattr(fn, "get_config"):
                continue  # TFP's default sampler (a lambda): the constructor restores it
            config[key] = None if fn is None else keras.saving.serialize_keras_object(fn)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in _FN_KEYS:
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    #: S while `BayesianModel.sample_params` evaluates S weight draws at once (the layer's
    #: batch is then draw-major, S x B); None for an ordinary call.
    draws = None
    #: the stateless seed [2] of those S draws: calls with the same seed draw the same weights
    #: (the pieces of one large batch); None: a fresh seed per call.
    draw_seed = None

    #: True while ``inputs`` are the same for all S draws ([B, ...], not draw-major S x B: the
    #: layers before it hold no weights to draw; `BayesianModel._draw_split`).
    shared_input = False

    def call(self, inputs):
        if self.draws is None:
            return super().call(inputs)
        return self._call_draws(inputs, self.draws)

    def vectorizable(self):
        """Whether S draws can be evaluated as one batched matmul: dense, or a 1x1 stride-1 convolution."""
        if not hasattr(self, "kernel_size"):
            return True
        return (tuple(self.kernel_size) == (1, 1) and tuple(self.strides) == (1, 1)
                and tuple(self.dilation_rate) == (1, 1) and self.data_format == "channels_last")

    def _call_draws(self, inputs, draws):
        """``inputs`` [S * B, ..., C] (draw-major; [B, ..., C] when ``shared_input``) through S
        independent exact posterior draws of the weights, one per block of B rows: kernel
        [S, C, units] and bias [S, units] sampled at once. Returns [S * B, ..., units]."""
        units = self.kernel_posterior.event_shape[-1]
        channels = self.kernel_posterior.event_shape[-2]
        if self.draw_seed is None:  # a fresh stateless seed per call (a stateful draw), as `ReplicaSample` does
            seeds = tf.random.uniform([2, 2], minval=tf.int32.min, maxval=tf.int32.max, dtype=tf.int32)
        else:
            seeds = tf.random.experimental.stateless_split(self.draw_seed, 2)
        kernel = tf.reshape(self.kernel_posterior.sample(draws, seed=seeds[0]), [draws, channels, units])
        # shared inputs [1, B * pixels, C] broadcast over the draws' kernels
        x = tf.reshape(inputs, [1 if self.shared_input else draws, -1, channels])
        y = tf.matmul(x, kernel)  # [S, B * pixels, units]
        if self.bias_posterior is not None:
            y = y + self.bias_posterior.sample(draws, seed=seeds[1])[:, None, :]
        shape = tf.shape(inputs)
        rows = shape[0] * draws if self.shared_input else shape[0]  # draw-major S x B
        y = tf.reshape(y, tf.concat([[rows], shape[1:-1], [units]], 0))
        return self.activation(y) if self.activation is not None else y

    def divergence_fns(self):
        """The layer's `ScaledKLDivergence` objects paired with (posterior, prior)."""
        pairs = []
        for which in ("kernel", "bias"):
            fn = getattr(self, f"{which}_divergence_fn")
            if isinstance(fn, ScaledKLDivergence):
                pairs.append((fn, getattr(self, f"{which}_posterior"), getattr(self, f"{which}_prior")))
        return pairs


@keras.saving.register_keras_serializable(package="tfp_dgbn")
class DenseFlipout(_SerializableVariational, tfp.layers.DenseFlipout):
    """`tfp.layers.DenseFlipout` with serializable prior, posterior and KL term."""

    _ARCH_KEYS = ("units",)


@keras.saving.register_keras_serializable(package="tfp_dgbn")
class Conv2DFlipout(_SerializableVariational, tfp.layers.Convolution2DFlipout):
    """`tfp.layers.Convolution2DFlipout` with serializable prior, posterior and KL term.

    For 1x1 stride-1 convolutions (the ring generator's per-pixel layers) the
    Flipout estimator (Wen et al., 2018) is computed as one batched matmul: TFP
    evaluates x M + ((x * s_in) D) * s_out, two convolutions and three passes
    over the activations, where M is the posterior mean, D a draw of the
    zero-mean perturbation and s_in, s_out per-example random signs. Per
    example b that equals x_b (M + (s_in,b s_out,b^T) * D), a kernel per
    example of C_in x C_out numbers, so the activations are read once. Same
    signs (same seed stream and salt as TFP), same perturbation, same law;
    outputs equal TFP's to float rounding (`tests/test_layer_kinds.py`).
    """

    _ARCH_KEYS = ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate")
    #: False: TFP's two-convolution form (the training benchmark times both)
    fused_1x1 = True

    def _apply_variational_kernel(self, inputs):
        if not (self.fused_1x1 and self.vectorizable()):
            return super()._apply_variational_kernel(inputs)
        from tensorflow_probability.python.util.seed_stream import SeedStream

        posterior = self.kernel_posterior.distribution
        self.kernel_posterior_affine = tfp.distributions.Normal(loc=tf.zeros_like(posterior.loc), scale=posterior.scale)
        self.kernel_posterior_affine_tensor = self.kernel_posterior_tensor_fn(self.kernel_posterior_affine)
        self.kernel_posterior_tensor = None
        shape = tf.shape(inputs)
        batch, channels = shape[0], shape[-1]
        seed_stream = SeedStream(self.seed, salt="ConvFlipout")
        sign_input = tfp.random.rademacher(tf.stack([batch, channels]), dtype=inputs.dtype, seed=seed_stream())
        sign_output = tfp.random.rademacher(tf.stack([batch, self.filters]), dtype=inputs.dtype, seed=seed_stream())
        mean = tf.reshape(posterior.loc, [channels, self.filters])
        delta = tf.reshape(self.kernel_posterior_affine_tensor, [channels, self.filters])
        kernels = mean + sign_input[:, :, None] * delta * sign_output[:, None, :]  # [B, C_in, C_out]
        outputs = tf.matmul(tf.reshape(inputs, [batch, -1, channels]), kernels)
        return tf.reshape(outputs, tf.concat([shape[:-1], [self.filters]], 0))


@keras.saving.register_keras_serializable(package="tfp_dgbn")
class DenseReparameterization(_SerializableVariational, tfp.layers.DenseReparameterization):
    """`tfp.layers.DenseReparameterization` (one weight draw per batch) with serializable callables."""

    _ARCH_KEYS = ("units",)


@keras.saving.register_keras_serializable(package="tfp_dgbn")
class Conv2DReparameterization(_SerializableVariational, tfp.layers.Convolution2DReparameterization):
    """`tfp.layers.Convolution2DReparameterization` with serializable callables."""

    _ARCH_KEYS = Conv2DFlipout._ARCH_KEYS


# How a layer's weights are treated: Flipout (the default: a weight draw per
# example, decorrelated by sign flips), reparameterization (one draw shared by
# the whole batch: cheaper, noisier gradients), or deterministic (point
# weights, no KL: the baseline of the benchmarks).
LAYER_KINDS = ("flipout", "reparameterization", "deterministic")


def _variational_kwargs(num_train, seed, prior_scale, init_scale, bias_loc="zeros", prior_fan_in=False,
                        use_bias=True):
    """Keyword arguments giving a layer seeded posteriors, a prior and the KL term (none for the bias
    when ``use_bias`` is False)."""
    kwargs = dict(
        kernel_posterior_fn=MeanFieldNormalPosterior(init_scale, "glorot", seed),
        kernel_prior_fn=NormalPrior(prior_scale, fan_in=prior_fan_in),
        kernel_divergence_fn=ScaledKLDivergence(num_train),
        kernel_posterior_tensor_fn=ReplicaSample(),
        bias_posterior_tensor_fn=ReplicaSample(),
        bias_posterior_fn=MeanFieldNormalPosterior(init_scale, bias_loc, seed + 1),
        bias_prior_fn=NormalPrior(prior_scale),
        bias_divergence_fn=ScaledKLDivergence(num_train),
        seed=seed + 2,
    )
    if not use_bias:
        kwargs.update(bias_posterior_fn=None, bias_prior_fn=None, bias_divergence_fn=None)
    return kwargs


def _check_kind(kind):
    if kind not in LAYER_KINDS:
        raise InputError(f"unknown layer kind {kind!r}; choose one of {list(LAYER_KINDS)}")


def _deterministic_kwargs(seed, bias_loc):
    """Initialisers of a point-weight layer matching the variational posterior means at start."""
    bias = keras.initializers.Zeros() if isinstance(bias_loc, str) else keras.initializers.Constant(bias_loc)
    return dict(kernel_initializer=keras.initializers.VarianceScaling(
        scale=1.0, mode="fan_avg", distribution="truncated_normal", seed=seed), bias_initializer=bias)


def dense_layer(kind, units, num_train, seed, prior_scale=1.0, init_scale=1e-3, bias_loc="zeros",
                prior_fan_in=False, use_bias=True, **kwargs):
    """A dense layer of the given kind (`LAYER_KINDS`); arguments as `dense_flipout`, and ``use_bias``
    (False: no bias, so no bias posterior or KL term)."""
    _check_kind(kind)
    if kind == "deterministic":
        return keras.layers.Dense(units, use_bias=use_bias, **_deterministic_kwargs(seed, bias_loc), **kwargs)
    variational = _variational_kwargs(num_train, seed, prior_scale, init_scale, bias_loc, prior_fan_in, use_bias)
    if kind == "reparameterization":
        variational.pop("seed")
        return DenseReparameterization(units, **variational, **kwargs)
    return DenseFlipout(units, **variational, **kwargs)


def conv2d_layer(kind, filters, kernel_size, num_train, seed, prior_scale=1.0, init_scale=1e-3, bias_loc="zeros",
                 prior_fan_in=False, use_bias=True, **kwargs):
    """A 2-D convolution of the given kind (`LAYER_KINDS`); arguments as `conv2d_flipout`, and
    ``use_bias`` as `dense_layer`'s."""
    _check_kind(kind)
    if kind == "deterministic":
        return keras.layers.Conv2D(filters, kernel_size, use_bias=use_bias, **_deterministic_kwargs(seed, bias_loc),
                                   **kwargs)
    variational = _variational_kwargs(num_train, seed, prior_scale, init_scale, bias_loc, prior_fan_in, use_bias)
    if kind == "reparameterization":
        variational.pop("seed")
        return Conv2DReparameterization(filters, kernel_size, **variational, **kwargs)
    return Conv2DFlipout(filters, kernel_size, **variational, **kwargs)


def dense_flipout(units, num_train, seed, prior_scale=1.0, init_scale=1e-3, bias_loc="zeros", prior_fan_in=False,
                  **kwargs):
    """A `DenseFlipout` with Bayesian kernel and bias.

    Args:
      units: output width.
      num_train: N_train, the divisor of the KL term (per-example ELBO).
      seed: integer; posterior initializers and Flipout signs derive from it.
      prior_scale: stddev of the N(0, s^2) prior on every weight.
      prior_fan_in: divide the kernel's prior stddev by sqrt(fan-in)
        (`tfp_dgbn.model.variational.NormalPrior`).
      init_scale: initial posterior stddev.
      bias_loc: initial posterior mean of the bias ("zeros", a number, or one number per unit).
      **kwargs: passed to the layer (activation, name, ...).

    Returns:
      A `DenseFlipout` layer; its KL term reaches ``model.losses`` when called.
    """
    return dense_layer("flipout", units, num_train, seed, prior_scale, init_scale, bias_loc, prior_fan_in, **kwargs)


def conv2d_flipout(filters, kernel_size, num_train, seed, prior_scale=1.0, init_scale=1e-3, bias_loc="zeros",
                   prior_fan_in=False, **kwargs):
    """A `Conv2DFlipout` with Bayesian kernel and bias (arguments as `dense_flipout`)."""
    return conv2d_layer("flipout", filters, kernel_size, num_train, seed, prior_scale, init_scale, bias_loc,
                        prior_fan_in, **kwargs)


def zero_output_channels(layer, channels):
    """Start the given output units of a built layer at zero kernel mean (its bias is kept).

    For an output whose units must start equal (`ImageMixtureHead`'s deviations
    and logits): the posterior means (a point layer's kernel) of those units
    become 0, their posterior spread stays, so the weight draws still tell them
    apart a little and training can separate them where the data ask it to.

    Args:
      layer: a built dense or convolution layer of any `LAYER_KINDS`.
      channels: a slice or index list of the last (output) axis.
    """
    posterior = getattr(layer, "kernel_posterior", None)
    kernel = layer.kernel if posterior is None else posterior.distribution.loc
    value = kernel.numpy()
    value[..., channels] = 0.0
    kernel.assign(value)
