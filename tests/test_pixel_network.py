"""The per-pixel network's first layer in two halves (`tfp_dgbn.model.pixel_network`) is the 1x1 layer on
the concatenation [coordinates, embedding at every pixel]: the same function of the same weights."""
import numpy as np

from tfp_dgbn.model.pixel_network import AddToPixels, pixel_network
from tfp_dgbn.tfk import keras


def test_the_two_halves_equal_the_layer_on_the_concatenation():
    rng = np.random.default_rng(0)
    coords_in, embed_in = keras.Input((4, 4, 3)), keras.Input((5,))
    out = pixel_network("deterministic", coords_in, embed_in, hidden=(6,), out_filters=2, seed=1, num_train=10)
    model = keras.Model([coords_in, embed_in], out)
    coords = rng.normal(size=(7, 4, 4, 3)).astype("float32")
    embed = rng.normal(size=(7, 5)).astype("float32")
    k_c = model.get_layer("pixel_0").kernel.numpy()[0, 0]  # [3, 6]
    b = model.get_layer("pixel_0").bias.numpy()
    k_e = model.get_layer("pixel_0_embedding").kernel.numpy()  # [5, 6]
    assert model.get_layer("pixel_0_embedding").bias is None
    concatenated = np.concatenate([coords, np.broadcast_to(embed[:, None, None, :], (7, 4, 4, 5))], -1)
    hidden = np.maximum(concatenated @ np.concatenate([k_c, k_e]) + b, 0.0)
    last = model.get_layer("params")
    expected = hidden @ last.kernel.numpy()[0, 0] + last.bias.numpy()
    np.testing.assert_allclose(model([coords, embed]).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_add_to_pixels_round_trips_its_activation():
    layer = AddToPixels("relu", name="s")
    again = AddToPixels.from_config(layer.get_config())
    h, v = -np.ones((1, 2, 2, 3), "float32"), np.array([[0.5, 2.0, 1.0]], "float32")
    np.testing.assert_array_equal(again([h, v]).numpy()[0, 0, 0], [0.0, 1.0, 0.0])
