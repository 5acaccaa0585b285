"""Explicit per-pixel generators of seed-pattern rings: features -> a law over the image.

The project's approach on the seed's data (issue 18): Flipout weights carry
the epistemic part, and an explicit output law per pixel the aleatoric part.

  features [B, F] --PatternFeatureEncoding--> --DenseFlipout x2--> embedding [B, E]
  features [B, F] --PatternCoordinates------> [B, 32, 32, 7 per ring] ring-relative pixel coordinates
  per-pixel network on (coordinates, embedding at every pixel) (`tfp_dgbn.model.pixel_network`)
      --1x1 Convolution2DFlipout x len(hidden)--> --1x1 Convolution2DFlipout--> raw law parameters per pixel
      --head--> a law over the image

As in the photon generator (`tfp_dgbn.model.ring_generator`), the 1x1
convolutions are one per-pixel network whose weights are drawn once per image.
Output laws (``pixel_law``):
- "scaled": intensity times a learned kernel (`ScaledNormalHead`): the truth per
  pixel is g v with v a discretised Gaussian of mean 1 and sd 0.212, a law this
  family holds to within W1 0.003 g (the grid's rounding);
- "normal": a heteroscedastic Normal with a free scale (`NormalHead`), the first
  attempt, kept to show why the family matters: it cannot vanish with the ring;
- "mixture": a mixture of C = 2 image laws of the "scaled" kind
  (`ImageMixtureHead`), a global discrete latent drawn once per image: for two
  rings it can place the second ring wholly present or absent. Its components
  are a shared log intensity plus deviations that start at zero, and its
  weights start equal. The first two are independent per pixel given the features.
"""
import math

import tensorflow as tf

from tfp_dgbn.model.bayesian_model import BayesianModel
from tfp_dgbn.model.heads import ImageMixtureHead, NormalHead, ScaledNormalHead
from tfp_dgbn.model.layers import dense_layer, zero_output_channels
from tfp_dgbn.model.pixel_network import pixel_network
from tfp_dgbn.model.variational import check_num_train
from tfp_dgbn.validate import InputError
from tfp_dgbn.tfk import keras

SIZE = 32
RING_FEATURES = 6  # ci, cj, R, s, theta, phi per ring


def _rings(f):
    """The per-ring feature columns of [B, 6 k]: a list of k tuples of [B] tensors."""
    width = f.shape[-1]
    return [tf.unstack(f[:, k:k + RING_FEATURES], axis=-1) for k in range(0, width, RING_FEATURES)]


@keras.saving.register_keras_serializable(package="tfp_dgbn")
class PatternFeatureEncoding(keras.layers.Layer):
    """Features -> 7 inputs of order one per ring: centre and R, s scaled by their ranges, theta as
    (cos, sin) because it is periodic, phi scaled by its range."""

    def call(self, f):
        out = []
        for ci, cj, r, s, theta, phi in _rings(f):
            out += [(ci - 15.5) / 8.0, (cj - 15.5) / 8.0, (r - 7.5) / 1.5, (s - 1.2) / 0.4,
                    tf.cos(theta), tf.sin(theta), phi / 0.25 - 1.0]
        return tf.stack(out, axis=-1)


@keras.saving.register_keras_serializable(package="tfp_dgbn")
class PatternCoordinates(keras.layers.Layer):
    """Per-pixel coordinates relative to each ring, [B, 32, 32, 7 per ring].

    Channels per ring: (i - ci)/8, (j - cj)/8, (rho - R)/s with rho the
    distance to the centre, cos and sin of the pixel's angle from the i axis
    relative to theta, rho / 8, and (rho (1 + phi cos(angle)) - R)/s, the
    distance to the distorted ring in widths. The ring's own coordinate system
    is geometry the features define, like the photon generator's; the law's
    intensity as a function of it (and the noise) is left to the network.
    """

    def call(self, f):
        axis = tf.range(SIZE, dtype=f.dtype)
        i, j = tf.reshape(axis, (1, SIZE, 1)), tf.reshape(axis, (1, 1, SIZE))
        channels = []
        for ci, cj, r, s, theta, phi in _rings(f):
            ci, cj, r, s, theta, phi = (tf.reshape(c, (-1, 1, 1)) for c in (ci, cj, r, s, theta, phi))
            di, dj = i - ci + 0.0 * j, j - cj + 0.0 * i
            rho = tf.sqrt(di ** 2 + dj ** 2 + 1e-6)
            angle = tf.atan2(dj, di) - theta
            channels += [di / 8.0, dj / 8.0, (rho - r) / s, tf.cos(angle), tf.sin(angle), rho / 8.0,
                         (rho * (1.0 + phi * tf.cos(angle)) - r) / s]
        return tf.stack(channels, axis=-1)


PIXEL_LAWS = ("scaled", "normal", "mixture")


def _head(pixel_law):
    """(head, initial bias of the raw parameters) for a ``pixel_law`` of PIXEL_LAWS."""
    if pixel_law == "normal":
        # loc starts near 0 (most pixels are dark), the scale near softplus(log(e^0.05 - 1)) = 0.05
        return NormalHead(event_shape=(SIZE, SIZE), min_scale=1e-3, name="normal_image"), \
            [0.0, math.log(math.expm1(0.05))]
    # intensities start at e^-3 = 0.05 (most pixels are dark)
    if pixel_law == "scaled":
        return ScaledNormalHead(event_shape=(SIZE, SIZE), name="scaled_image"), [-3.0]
    if pixel_law == "mixture":
        # the shared intensity starts at e^-3; the components' deviations and logits at 0 (equal components,
        # equal weights: `ImageMixtureHead` says why)
        head = ImageMixtureHead(event_shape=(SIZE, SIZE), components=2, name="image_mixture")
        return head, [-3.0] + [0.0] * (head.params_size - 1)
    raise InputError(f"unknown pixel_law {pixel_law!r}; choose one of {PIXEL_LAWS}")


def pattern_generator(num_train, two_rings=False, pixel_law="scaled", embedding=(32, 16), hidden=(32, 32),
                      activation="relu", seed=0, prior_scale=1.0, init_scale=1e-3, kl_weight=1.0,
                      name="pattern_generator"):
    """Build the explicit per-pixel pattern-ring generator (module docstring) as a `BayesianModel`.

    Args:
      num_train: N_train, training images (scales the KL term).
      two_rings: 12 features (two rings) instead of 6.
      pixel_law: the output law, one of PIXEL_LAWS (module docstring).
      embedding: widths of the DenseFlipout feature layers; hidden: of the per-pixel 1x1 Flipout layers.
      seed: base seed; every layer gets its own seeds from it.
      prior_scale, init_scale, kl_weight: prior stddev, initial posterior stddev, initial KL weight.

    Returns:
      An uncompiled `BayesianModel`: features [B, F] -> a law with event shape [32, 32].
    """
    check_num_train(num_train)
    head, bias = _head(pixel_law)
    common = dict(num_train=num_train, prior_scale=prior_scale, init_scale=init_scale)
    features = keras.Input(shape=(2 * RING_FEATURES if two_rings else RING_FEATURES,), name="features")
    e = PatternFeatureEncoding(name="encode")(features)
    for k, units in enumerate(embedding):
        e = dense_layer("flipout", units, seed=seed + 10 * k, activation=activation, name=f"embed_{k}", **common)(e)
    h = pixel_network("flipout", PatternCoordinates(name="coordinates")(features), e, hidden, head.params_size,
                      seed=seed + 100, activation=activation, out_name="law_params", out_bias=bias, **common)
    outputs = head(h)
    model = BayesianModel(features, outputs, kl_weight=kl_weight, name=name)
    if isinstance(head, ImageMixtureHead):
        for layer in model.layers:  # the output layer (and, without hidden layers, its embedding half)
            if layer.name in ("law_params", "law_params_embedding"):
                zero_output_channels(layer, head.deviation_channels)
    return model
