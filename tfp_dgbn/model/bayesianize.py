"""Turn a deterministic tf_keras model into a Bayesian one (`bayesianize`).

``Dense`` becomes `DenseFlipout`, ``Conv2D`` becomes `Conv2DFlipout` (same
units, kernel, strides, padding, activation, name); every other layer is
cloned unchanged. The model's output becomes the raw parameters of a
distribution head, so the result is a `BayesianModel` whose output is a
distribution, with the KL weighting of `tfp_dgbn.model.variational`
(``kl_weight * KL / N_train`` in ``model.losses``).

MOPED (Krishnan et al., 2020, "Specifying Weight Priors in Bayesian Deep
Neural Networks with Empirical Bayes"): given a trained model and a relative
scale delta, each posterior starts at mean = the trained weight and stddev =
delta * |weight| (floored at ``min_scale``), so training starts from the
deterministic solution with weight noise proportional to each weight.
"""
import numpy as np

from tfp_dgbn.model.bayesian_model import BayesianModel
from tfp_dgbn.model.heads import DistributionHead, make_head
from tfp_dgbn.model.layers import Conv2DFlipout, DenseFlipout, conv2d_layer, dense_layer
from tfp_dgbn.model.variational import check_num_train, inverse_softplus
from tfp_dgbn.tfk import keras
from tfp_dgbn.validate import InputError

_CONV_KEYS = ("strides", "padding", "data_format", "dilation_rate")


def _no_bias(layer_kwargs):
    for key in ("bias_posterior_fn", "bias_prior_fn", "bias_divergence_fn", "bias_posterior_tensor_fn"):
        layer_kwargs[key] = None
    return layer_kwargs


def _convert(layer, num_train, seed, prior_scale, init_scale):
    """The Bayesian counterpart of one layer (a Flipout layer, or a plain clone)."""
    config = layer.get_config()
    if type(layer) not in (keras.layers.Dense, keras.layers.Conv2D):
        return layer.__class__.from_config(config)
    common = dict(num_train=num_train, seed=seed, prior_scale=prior_scale, init_scale=init_scale,
                  activation=config["activation"], name=config["name"])
    if type(layer) is keras.layers.Dense:
        new = dense_layer("flipout", config["units"], **common)
    else:
        if config.get("groups", 1) != 1:
            raise InputError(f"layer {layer.name!r}: grouped convolutions (groups={config['groups']}) "
                             "have no Flipout counterpart")
        new = conv2d_layer("flipout", config["filters"], config["kernel_size"],
                           **{k: config[k] for k in _CONV_KEYS}, **common)
    if not config.get("use_bias", True):  # keep the architecture: no bias posterior either
        cls = type(new)
        new = cls.from_config(_no_bias(new.get_config()))
    return new


def _moped(new_layer, old_layer, delta, min_scale):
    """Set a Flipout layer's posterior means to the trained weights, stddevs to delta * |w|."""
    weights = dict(zip(("kernel", "bias"), old_layer.get_weights()))
    for which, w in weights.items():
        posterior = getattr(new_layer, f"{which}_posterior")
        loc = posterior.distribution.loc
        raw_scale = posterior.distribution.scale.pretransformed_input
        loc.assign(w.astype("float32"))
        scale = np.maximum(delta * np.abs(w), min_scale)
        raw_scale.assign(np.vectorize(inverse_softplus)(scale).astype("float32"))


def bayesianize(model, num_train, head, moped_delta=None, min_scale=1e-5, seed=0, prior_scale=1.0,
                init_scale=1e-3, kl_weight=1.0):
    """Bayesian version of a deterministic ``tf_keras`` model, ending in a distribution head.

    Args:
      model: a Sequential or functional ``tf_keras`` model, trained or not.
        Its output must be [B, event size * params] raw head parameters.
      num_train: N_train, training examples (divides the KL term).
      head: a `DistributionHead` or a family name ("normal", "poisson").
      moped_delta: None (posteriors start at Glorot means with stddev
        ``init_scale``), or the MOPED relative stddev delta: means = the
        model's weights, stddevs = delta * |weight|.
      min_scale: floor of MOPED stddevs (a zero weight still gets noise).
      seed: base seed; converted layer i gets seeds from ``seed + 10 i``.
      prior_scale: stddev of the N(0, s^2) prior of every weight.
      init_scale: initial posterior stddev without MOPED.
      kl_weight: initial KL weight.

    Returns:
      An uncompiled `BayesianModel` (call it for a distribution; compile and
      ``fit`` it on the negative ELBO).

    Raises:
      ValueError: an output whose width does not fit the head, a bad
        ``num_train`` or ``moped_delta``, or a layer that cannot be converted.
    """
    check_num_train(num_train)
    if moped_delta is not None and not (np.isfinite(moped_delta) and moped_delta > 0):
        raise InputError(f"moped_delta must be > 0 (e.g. 0.1), got {moped_delta!r}")
    if not isinstance(model, keras.Model):
        raise TypeError(f"bayesianize needs a tf_keras Model, got {type(model).__name__}")
    head = head if isinstance(head, DistributionHead) else make_head(head)
    counter = iter(range(10 ** 6))

    def convert(layer):
        return _convert(layer, num_train, seed + 10 * next(counter), prior_scale, init_scale)

    body = keras.models.clone_model(model, clone_function=convert)
    width = int(np.prod(head.event_shape, dtype=int)) * head.params_size
    out = body.outputs[0]
    if out.shape[-1] != width or len(out.shape) != 2:
        raise InputError(f"the model's output has shape {out.shape.as_list()}; a {head.family} head with event "
                         f"shape {list(head.event_shape)} needs [batch, {width}]")
    params = keras.layers.Reshape(tuple(head.event_shape) + (head.params_size,), name="params_shape")(out)
    result = BayesianModel(body.inputs, head(params), kl_weight=kl_weight, name=f"bayesian_{model.name}")
    if moped_delta is not None:
        converted = {layer.name: layer for layer in body.layers if isinstance(layer, (DenseFlipout, Conv2DFlipout))}
        for old in model.layers:
            if old.name in converted:
                _moped(converted[old.name], old, float(moped_delta), float(min_scale))
    return result
