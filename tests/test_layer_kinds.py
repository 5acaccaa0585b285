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
