"""Bayesian MLP of `DenseFlipout` layers ending in a distribution head."""
import numpy as np

from tfp_dgbn.model.bayesian_model import BayesianModel
from tfp_dgbn.model.layers import dense_layer
from tfp_dgbn.model.variational import check_num_train
from tfp_dgbn.tfk import keras
from tfp_dgbn.validate import InputError


@keras.saving.register_keras_serializable(package="tfp_dgbn")
class MCDropout(keras.layers.Dropout):
    """Dropout that stays on at prediction: each call is one draw of the MC-dropout predictive."""

    def call(self, inputs, training=None):
        return super().call(inputs, training=True)


def bayesian_mlp(input_dim, head, num_train, hidden=(32, 32), activation="relu", seed=0,
                 prior_scale=1.0, init_scale=1e-3, kl_weight=1.0, feature_mean=None,
                 feature_std=None, name="bayesian_mlp", kind="flipout", dropout=0.0, prior_fan_in=False,
                 output_bias="zeros"):
    """Build features -> DenseFlipout stack -> head, as a `BayesianModel`.

    Args:
      input_dim: number of features D.
      head: a `DistributionHead` (fixes the event shape and the parameter count).
      num_train: N_train, number of training examples (scales the KL term).
      hidden: widths of the hidden layers.
      activation: Keras activation of the hidden layers.
      seed: base integer seed; each layer gets its own seeds from it.
      prior_scale, init_scale: prior stddev and initial posterior stddev.
      prior_fan_in: kernel prior stddev ``prior_scale / sqrt(fan_in)``
        (`tfp_dgbn.model.variational.NormalPrior`).
      kl_weight: initial KL weight.
      feature_mean, feature_std: per-feature standardisation built into the
        model (length D), so exports take raw features.
      name: model name.
      kind: "flipout" (default), "reparameterization" or "deterministic"
        (`tfp_dgbn.model.layers.LAYER_KINDS`; the baselines of the small-data study).
      dropout: rate of an `MCDropout` after each hidden layer (0: none); with
        ``kind="deterministic"`` this is MC dropout (Gal & Ghahramani, 2016).
      output_bias: initial (posterior mean of the) bias of the output layer:
        "zeros", a number, or one number per raw output (`heads.head_for_targets`).

    Returns:
      An uncompiled `BayesianModel` whose call returns a distribution with
      batch shape [B] and the head's event shape.
    """
    check_num_train(num_train)
    if int(input_dim) <= 0:
        raise InputError(f"input_dim must be positive, got {input_dim!r}")
    inputs = keras.Input(shape=(int(input_dim),), name="features")
    h = inputs
    if feature_mean is not None:
        h = keras.layers.Normalization(
            mean=np.asarray(feature_mean, "float32"),
            variance=np.square(np.asarray(feature_std, "float32")), name="standardize")(h)
    for i, units in enumerate(hidden):
        h = dense_layer(kind, units, num_train, seed=seed + 10 * i, prior_scale=prior_scale,
                        init_scale=init_scale, prior_fan_in=prior_fan_in, activation=activation,
                        name=f"dense_flipout_{i}")(h)
        if dropout:
            h = MCDropout(dropout, seed=seed + 10 * i + 5, name=f"mc_dropout_{i}")(h)
    n_out = int(np.prod(head.event_shape, dtype=int)) * head.params_size
    h = dense_layer(kind, n_out, num_train, seed=seed + 10 * len(hidden), prior_scale=prior_scale,
                    init_scale=init_scale, prior_fan_in=prior_fan_in, bias_loc=output_bias, name="params")(h)
    h = keras.layers.Reshape(tuple(head.event_shape) + (head.params_size,), name="params_shape")(h)
    outputs = head(h)
    return BayesianModel(inputs, outputs, kl_weight=kl_weight, name=name)
