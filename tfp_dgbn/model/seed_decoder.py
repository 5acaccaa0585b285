"""The reference work's generator, rebuilt: a Bayesian deconvolution decoder with no output likelihood.

  features [B, F] --PatternFeatureEncoding--> --DenseFlipout (64)--> --DenseFlipout (4*4*C)--> [B, 4, 4, C]
      --(UpSampling2D x2, 3x3 Convolution2DFlipout) x 3--> [B, 32, 32, 8]
      --3x3 Convolution2DFlipout (1 filter)--> --PointImageHead--> the image itself

One weight draw is one generated image: there is no output noise, so every
spread the model shows comes from its weight posterior. It is trained on the
image loss (the mean squared error over pixels, Keras's ``"mse"``) plus the
weighted KL, with the KL schedules of `tfp_dgbn.fit.schedules` (the "factor
switch" is ``step``, the "kl_factor adjust" is ``adaptive``).

TFP has no transposed Flipout convolution, so each x2 "deconvolution" is a
nearest-neighbour upsampling followed by a 3x3 Flipout convolution, the form
that avoids the checkerboard artefacts of strided transposed convolutions
(Odena et al., Distill 2016) and spans the same maps.
"""
from tfp_dgbn.model.bayesian_model import BayesianModel
from tfp_dgbn.model.heads import PointImageHead
from tfp_dgbn.model.layers import conv2d_layer, dense_layer
from tfp_dgbn.model.pattern_generator import RING_FEATURES, SIZE, PatternFeatureEncoding
from tfp_dgbn.model.variational import check_num_train
from tfp_dgbn.tfk import keras


def seed_decoder(num_train, two_rings=False, dense=64, channels=(32, 16, 8), activation="relu", seed=0,
                 prior_scale=1.0, init_scale=1e-3, kl_weight=1.0, name="seed_decoder"):
    """Build the reference decoder (module docstring) as a `BayesianModel`.

    Args:
      num_train: N_train, training images (scales the KL term).
      two_rings: 12 features (two rings) instead of 6.
      dense: width of the first DenseFlipout layer.
      channels: filters after each of the three x2 upsamplings (4 -> 8 -> 16 -> 32 pixels); the 4 x 4 map
        has ``channels[0]`` filters.
      seed: base seed; every layer gets its own seeds from it.
      prior_scale, init_scale, kl_weight: prior stddev, initial posterior stddev, initial KL weight.

    Returns:
      An uncompiled `BayesianModel`: features [B, F] -> a point mass on a [32, 32] image.
    """
    check_num_train(num_train)
    channels = tuple(int(c) for c in channels)
    if len(channels) != 3:
        raise ValueError(f"channels needs one width per upsampling (3), got {channels!r}")
    common = dict(num_train=num_train, prior_scale=prior_scale, init_scale=init_scale)
    features = keras.Input(shape=(2 * RING_FEATURES if two_rings else RING_FEATURES,), name="features")
    h = PatternFeatureEncoding(name="encode")(features)
    h = dense_layer("flipout", dense, seed=seed, activation=activation, name="dense_0", **common)(h)
    h = dense_layer("flipout", 4 * 4 * channels[0], seed=seed + 10, activation=activation, name="dense_1",
                    **common)(h)
    h = keras.layers.Reshape((4, 4, channels[0]), name="to_map")(h)
    for k, filters in enumerate(channels):
        h = keras.layers.UpSampling2D(2, name=f"up_{k}")(h)
        h = conv2d_layer("flipout", filters, 3, seed=seed + 100 + 10 * k, activation=activation, padding="same",
                         name=f"deconv_{k}", **common)(h)
    h = conv2d_layer("flipout", 1, 3, seed=seed + 200, padding="same", name="image", **common)(h)
    outputs = PointImageHead(event_shape=(SIZE, SIZE), name="point_image")(h)
    return BayesianModel(features, outputs, kl_weight=kl_weight, name=name)
