"""bayesianize: Dense -> DenseFlipout, Conv2D -> Conv2DFlipout, other layers kept, MOPED means and scales."""
import numpy as np
import pytest
import tensorflow as tf

from tfp_dgbn.model.bayesianize import bayesianize
from tfp_dgbn.model.layers import Conv2DFlipout, DenseFlipout
from tfp_dgbn.tfk import keras


def _trained_mlp():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(16, activation="relu", name="h"),
                              keras.layers.Dropout(0.1, name="drop"), keras.layers.Dense(2, name="out")])
    x = np.linspace(-1, 1, 256, dtype="float32")[:, None]
    y = np.concatenate([np.sin(3 * x), np.zeros_like(x)], 1)
    model.compile("adam", "mse")
    model.fit(x, y, epochs=3, verbose=0)
    return model, x, y[:, 0]


def test_sequential_mlp_becomes_flipout_with_moped_posteriors():
    model, x, y = _trained_mlp()
    bnn = bayesianize(model, num_train=256, head="normal", moped_delta=0.1)
    kinds = {layer.name: type(layer) for layer in bnn.layers}
    assert kinds["h"] is DenseFlipout and kinds["out"] is DenseFlipout
    assert kinds["drop"] is keras.layers.Dropout  # other layers are kept
    for name in ("h", "out"):
        old, new = model.get_layer(name), bnn.get_layer(name)
        w = old.get_weights()[0]
        np.testing.assert_allclose(new.kernel_posterior.distribution.loc.numpy(), w, rtol=1e-6)
        sd = tf.convert_to_tensor(new.kernel_posterior.distribution.scale).numpy()
        np.testing.assert_allclose(sd, np.maximum(0.1 * np.abs(w), 1e-5), rtol=1e-3, atol=1e-6)
    # the output is a distribution, the KL term reaches model.losses divided by N_train
    dist = bnn(x[:4])
    assert dist.log_prob(y[:4]).shape == (4,)
    assert len(bnn.losses) == 4 and float(tf.add_n(bnn.losses)) > 0
    # MOPED starts at the trained solution: the predictive mean is near the deterministic output
    mean = np.mean([bnn(x).mean().numpy() for _ in range(20)], axis=0)
    np.testing.assert_allclose(mean, model(x).numpy()[:, 0], atol=0.1)
    bnn.compile(optimizer=keras.optimizers.Adam(1e-3))
    logs = bnn.fit(x, y, epochs=2, batch_size=64, verbose=0).history
    assert np.isfinite(logs["loss"]).all() and logs["kl"][0] > 0


def test_functional_conv_net_and_no_bias_layers():
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp)
    h = keras.layers.MaxPooling2D(name="pool")(h)
    h = keras.layers.Flatten(name="flat")(h)
    out = keras.layers.Dense(1, use_bias=False, name="rate")(h)
    model = keras.Model(inp, out)
    bnn = bayesianize(model, num_train=100, head="poisson", seed=3)
    assert type(bnn.get_layer("conv")) is Conv2DFlipout and bnn.get_layer("conv").padding == "same"
    assert type(bnn.get_layer("pool")) is keras.layers.MaxPooling2D
    assert bnn.get_layer("rate").bias_posterior is None  # no bias in, no bias out
    x = np.random.default_rng(0).uniform(size=(5, 8, 8, 1)).astype("float32")
    assert bnn(x).sample().shape == (5,)


def test_bad_inputs_are_named():
    model, _, _ = _trained_mlp()
    with pytest.raises(ValueError, match=r"output has shape \[None, 2\]; a poisson head .* needs \[batch, 1\]"):
        bayesianize(model, 256, "poisson")
    with pytest.raises(ValueError, match="moped_delta must be > 0"):
        bayesianize(model, 256, "normal", moped_delta=-1)
    with pytest.raises(ValueError, match="N_train must be a positive integer"):
        bayesianize(model, 0, "normal")
