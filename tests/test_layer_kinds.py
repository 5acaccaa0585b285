"""The ring generator's layer kinds (the benchmarks' baselines) build, train and reload."""
import numpy as np
import pytest

from tfp_dgbn.model.layers import LAYER_KINDS, conv2d_layer, dense_layer
from tfp_dgbn.model.ring_generator import ring_generator
from tfp_dgbn.simulate import rings
from tfp_dgbn.tfk import keras


@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_ring_generator_kind_trains_and_reloads(kind, tmp_path):
    chunk = next(rings.generate(64, 0, rings.RingConfig()))
    x, y = chunk["features"].astype("float32"), chunk["noised"].astype("float32")
    model = ring_generator(1000, kind=kind, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    logs = model.fit(x, y, batch_size=32, epochs=1, verbose=0).history
    assert np.isfinite(logs["loss"][0])
    # only the variational kinds carry a KL term
    assert (logs["kl"][0] > 0) == (kind != "deterministic")
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = keras.models.load_model(path)
    assert [type(a) for a in again.layers] == [type(a) for a in model.layers]
    if kind == "deterministic":  # point weights: the reloaded model gives the same rates
        np.testing.assert_allclose(again.params_model(x[:4]).numpy(), model.params_model(x[:4]).numpy(),
                                   rtol=1e-5)


def test_unknown_kind_is_named():
    with pytest.raises(ValueError, match="unknown layer kind 'bayes'"):
        dense_layer("bayes", 4, 10, 0)
    with pytest.raises(ValueError, match="unknown layer kind 'x'"):
        conv2d_layer("x", 4, 1, 10, 0)


def test_fused_1x1_flipout_equals_tfps_two_convolutions():
    """Our 1x1 Conv2DFlipout computes x_b (M + s_in,b s_out,b^T * D) per example; TFP computes
    x M + ((x * s_in) D) * s_out. With the same global seed both draw the same perturbation D and
    the same signs, so the outputs agree to float32 rounding (sums of 6 products of O(1) terms),
    while a second call draws new signs and differs by O(1)."""
    import tensorflow as tf
    import tensorflow_probability as tfp

    layer = conv2d_layer("flipout", 8, 1, seed=3, num_train=10, prior_scale=1.0, init_scale=0.3, name="c")
    x = tf.random.normal([4, 5, 5, 6], seed=1)
    layer(x)
    tf.random.set_seed(7)
    ours = layer._apply_variational_kernel(x).numpy()
    tf.random.set_seed(7)
    theirs = tfp.layers.Convolution2DFlipout._apply_variational_kernel(layer, x).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)
    assert np.abs(layer._apply_variational_kernel(x).numpy() - ours).max() > 0.1
    # A 3x3 kernel keeps TFP's computation (the per-example kernel is only for 1x1).
    wide = conv2d_layer("flipout", 2, 3, seed=4, num_train=10, padding="same", name="w")
    assert wide(x).shape == (4, 5, 5, 2) and not wide.vectorizable()
