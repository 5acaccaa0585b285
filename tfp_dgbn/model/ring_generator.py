"""Conditional generator of noised ring images: features -> per-pixel Poisson law.

Architecture (docs/ring_model.md records what was tried and what each gave):

  features [B, 6] --RingFeatureEncoding--> [B, 8] --DenseFlipout x2--> embedding [B, E]
  features [B, 6] --RingCoordinates------> [B, S, S, 7] ring-relative pixel coordinates
  per-pixel network on (coordinates, embedding at every pixel) (`tfp_dgbn.model.pixel_network`)
      --1x1 Convolution2DFlipout x len(hidden)--> --1x1 Convolution2DFlipout--> log-rate [B, S, S, 1]
      --PoissonHead(event_shape=(S, S))--> Independent(Poisson) over the image

The 1x1 convolutions are a per-pixel network shared by all pixels whose
weights are drawn once per image (Flipout perturbs per example, not per
pixel), so one weight draw gives one coherent image. The ring-relative
coordinates tell every pixel where it sits relative to the nominal ring (the
features are known inputs); the embedding carries what the coordinates
cannot (width, incidence), and the per-pixel network learns the profile.
"""
import math

import tensorflow as tf

from tfp_dgbn.model.bayesian_model import BayesianModel
from tfp_dgbn.model.heads import PoissonHead
from tfp_dgbn.model.layers import dense_layer
from tfp_dgbn.model.pixel_network import pixel_network
from tfp_dgbn.model.variational import check_num_train
from tfp_dgbn.tfk import keras


@keras.saving.register_keras_serializable(package="tfp_dgbn")
class RingFeatureEncoding(keras.layers.Layer):
    """Features (x0, y0, R, w, theta, phi) -> 8 inputs of order one.

    Position and radius are divided by the image half-size, w and theta
    centred and scaled by their ranges; phi becomes (cos, sin) because it is
    periodic; r0^2 / s^2 (the position term of the smearing) is added.

    Args:
      image_size: pixels per side S.
      width_range, theta_range: (low, high) used for scaling.
    """

    def __init__(self, image_size=32, width_range=(0.4, 1.2), theta_range=(0.0, 0.35), **kwargs):
        super().__init__(**kwargs)
        self.image_size = int(image_size)
        self.width_range = tuple(float(v) for v in width_range)
        self.theta_range = tuple(float(v) for v in theta_range)

    def call(self, f):
        s = self.image_size / 2.0
        x0, y0, r, w, theta, phi = tf.unstack(f, axis=-1)
        wm, wh = 0.5 * sum(self.width_range), 0.5 * (self.width_range[1] - self.width_range[0]) or 1.0
        tm, th = 0.5 * sum(self.theta_range), 0.5 * (self.theta_range[1] - self.theta_range[0]) or 1.0
        return tf.stack([x0 / s, y0 / s, r / s, (w - wm) / wh, (theta - tm) / th,
                         tf.cos(phi), tf.sin(phi), (x0 ** 2 + y0 ** 2) / s ** 2], axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(image_size=self.image_size, width_range=list(self.width_range),
                      theta_range=list(self.theta_range))
        return config


@keras.saving.register_keras_serializable(package="tfp_dgbn")
class RingCoordinates(keras.layers.Layer):
    """Per-pixel coordinates relative to the nominal ring, [B, S, S, 7].

    Channels: (x - x0)/s, (y - y0)/s, (rho - R)/2 with rho the distance to
    (x0, y0) in pixels, cos and sin of the pixel's azimuth relative to phi,
    (rho - R) sin(theta) cos(azimuth - phi) / 2 (where the tilt moves the
    ring), and the pixel's distance to the image centre / s (background).

    Args:
      image_size: pixels per side S.
    """

    def __init__(self, image_size=32, **kwargs):
        super().__init__(**kwargs)
        self.image_size = int(image_size)

    def call(self, f):
        size, s = self.image_size, self.image_size / 2.0
        axis = tf.range(size, dtype=f.dtype) - s + 0.5
        x = tf.reshape(axis, (1, 1, size))  # columns
        y = tf.reshape(axis, (1, size, 1))  # rows
        x0, y0, r, _, theta, phi = (tf.reshape(c, (-1, 1, 1)) for c in tf.unstack(f, axis=-1))
        zero = 0.0 * (x + y + x0)  # [B, S, S]: broadcasts every channel to full shape
        u, v = x - x0 + zero, y - y0 + zero
        rho = tf.sqrt(u ** 2 + v ** 2 + 1e-6)
        cos_rel = (u * tf.cos(phi) + v * tf.sin(phi)) / rho
        sin_rel = (v * tf.cos(phi) - u * tf.sin(phi)) / rho
        d = (rho - r) / 2.0
        centre = tf.sqrt(x ** 2 + y ** 2) / s + zero
        return tf.stack([u / s, v / s, d, cos_rel, sin_rel, d * tf.sin(theta) * cos_rel, centre], axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(image_size=self.image_size)
        return config


def ring_generator(num_train, config=None, embedding=(32, 16), hidden=(32, 32), activation="relu", seed=0,
                   prior_scale=1.0, init_scale=1e-3, kl_weight=1.0, log_rate_bias=math.log(0.03),
                   name="ring_generator", kind="flipout"):
    """Build the Bayesian ring generator (module docstring) as a `BayesianModel`.

    Args:
      num_train: N_train, training images (scales the KL term: kl_weight * KL / N_train per image).
      config: the simulator's `RingConfig` (image size, ranges for scaling).
      embedding: widths of the DenseFlipout layers on the features (last = embedding size E).
      hidden: widths of the per-pixel 1x1 Convolution2DFlipout layers.
      activation: Keras activation of hidden layers.
      seed: base seed; every layer gets its own seeds from it.
      prior_scale, init_scale: prior stddev and initial posterior stddev.
      kl_weight: initial KL weight.
      log_rate_bias: initial bias of the output log-rate (about the mean pixel count).
      name: model name.
      kind: "flipout" (default), "reparameterization" or "deterministic" (the same
        architecture with point weights and no KL term; `layers.LAYER_KINDS`).

    Returns:
      An uncompiled `BayesianModel`: features [B, 6] -> Independent(Poisson) with event shape [S, S].
    """
    from tfp_dgbn.simulate.rings import NUM_FEATURES, RingConfig

    check_num_train(num_train)
    config = config or RingConfig()
    size = config.image_size
    common = dict(num_train=num_train, prior_scale=prior_scale, init_scale=init_scale)
    features = keras.Input(shape=(NUM_FEATURES,), name="features")
    e = RingFeatureEncoding(size, config.width_range, config.theta_range, name="encode")(features)
    for i, units in enumerate(embedding):
        e = dense_layer(kind, units, seed=seed + 10 * i, activation=activation, name=f"embed_{i}", **common)(e)
    h = pixel_network(kind, RingCoordinates(size, name="coordinates")(features), e, hidden, 1, seed=seed + 100,
                      activation=activation, out_name="log_rate", out_bias=log_rate_bias, **common)
    outputs = PoissonHead(event_shape=(size, size), name="poisson_image")(h)
    return BayesianModel(features, outputs, kl_weight=kl_weight, name=name)
