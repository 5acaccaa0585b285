"""Vectorised weight draws (`BayesianModel.sample_params`): exact posterior draws, independent, same law as the loop.

The loop runs S model calls (a Flipout draw per example in each); the vectorised
path samples the S kernels and biases of every layer at once and runs one batched
matmul per layer. Both must give the same per-example law of the head parameters:
the tests compare means and variances over S draws with tolerances from their
sampling error (5 SE over 2 x 40 compared values: a false alarm below 1e-4),
then check that draws are uncorrelated, also across chunk boundaries.
"""
import numpy as np
import pytest
import tensorflow as tf

from tfp_dgbn.model.heads import NormalHead
from tfp_dgbn.model.mlp import bayesian_mlp
from tfp_dgbn.model.ring_generator import ring_generator
from tfp_dgbn.simulate import rings
from tfp_dgbn import seeds

S = 2000


def _draws(model, x, vectorized, chunk_bytes=None):
    kwargs = {} if chunk_bytes is None else {"chunk_bytes": chunk_bytes}
    f = tf.function(lambda x: model.sample_params(x, S, vectorized=vectorized, **kwargs))
    return f(tf.constant(x)).numpy().reshape(S, -1).astype("float64")


def _same_law(a, b, picked):
    """Means and variances over draws of the picked columns agree within 5 SE."""
    a, b = a[:, picked], b[:, picked]
    se_mean = np.sqrt((a.var(0) + b.var(0)) / S)
    assert np.all(np.abs(a.mean(0) - b.mean(0)) < 5 * se_mean + 1e-6), np.abs(a.mean(0) - b.mean(0)) / se_mean
    m4 = lambda d: ((d - d.mean(0)) ** 4).mean(0)  # noqa: E731
    se_var = np.sqrt((m4(a) - a.var(0) ** 2 + m4(b) - b.var(0) ** 2) / S)
    assert np.all(np.abs(a.var(0) - b.var(0)) < 5 * se_var + 1e-9), np.abs(a.var(0) - b.var(0)) / se_var


def _uncorrelated(d, picked):
    """Consecutive draws (pairs 2k, 2k+1) are uncorrelated: |r| < 4.5 / sqrt(pairs) for every picked column."""
    for j in picked:
        r = np.corrcoef(d[0::2, j], d[1::2, j])[0, 1]
        assert abs(r) < 4.5 / np.sqrt(S / 2), (j, r)


def test_toy_mlp_draws_match_the_loop_and_are_independent():
    model = bayesian_mlp(1, NormalHead(), 100, hidden=(16, 16), seed=4, init_scale=0.2)
    x = np.linspace(-1, 1, 20, dtype="float32")[:, None]
    loop, vec = _draws(model, x, False), _draws(model, x, True)
    assert loop.shape == vec.shape == (S, 40)
    every = np.arange(40)
    _same_law(loop, vec, every)
    _uncorrelated(vec, every)


def test_ring_generator_draws_match_the_loop_in_chunks_and_are_independent():
    model = ring_generator(100, embedding=(8, 4), hidden=(8,), seed=2, init_scale=0.1)
    features = rings.simulate(2, seed=seeds.key(3, "test"))["features"].astype("float32")
    loop = _draws(model, features, False)
    per_draw = 2 * model._activation_floats() * 4
    chunked = _draws(model, features, True, chunk_bytes=7 * per_draw)  # chunks of 7 draws: 286 chunks
    picked = seeds.rng(0, "test").choice(loop.shape[1], 40, replace=False)
    _same_law(loop, chunked, picked)
    _uncorrelated(chunked, picked)
    # Across chunk boundaries (draw 7k - 1 vs 7k), and the same place in consecutive chunks
    # (draw j vs j + 7: a chunk that repeated its seeds would repeat its draws).
    for j in picked[:10]:
        r = np.corrcoef(chunked[6:-1:7, j], chunked[7::7, j])[0, 1]
        assert abs(r) < 4.5 / np.sqrt(S / 7), (j, r)
        r = np.corrcoef(chunked[:-7, j], chunked[7:, j])[0, 1]
        assert abs(r) < 4.5 / np.sqrt(S / 7), (j, r)


def test_one_draw_is_one_network_for_every_example():
    """Vectorised: all examples of a draw share its weights (a coherent function per draw), so two
    identical rows get identical parameters in every draw; the draws themselves differ."""
    model = bayesian_mlp(1, NormalHead(), 100, hidden=(8,), seed=1, init_scale=0.2)
    out = model.sample_params(tf.constant([[0.3], [0.3]]), 16, vectorized=True).numpy()
    np.testing.assert_array_equal(out[:, 0], out[:, 1])
    assert np.unique(out[:, 0, 0]).size == 16


def test_a_batch_split_into_pieces_keeps_one_network_per_draw_and_the_law():
    """When one draw of the batch exceeds the chunk, the batch goes in pieces; every piece of a draw
    chunk re-creates the chunk's weights from its stateless seed. Identical rows in different pieces
    get identical parameters in every draw, and the per-example law is still the loop's."""
    model = bayesian_mlp(1, NormalHead(), 100, hidden=(8,), seed=1, init_scale=0.2)
    per_row = model._activation_floats() * 4
    out = model.sample_params(tf.constant([[0.3]] * 5), 16, vectorized=True, chunk_bytes=2 * per_row).numpy()
    for k in range(1, 5):  # pieces of 2 rows: rows 0-1, 2-3, 4; a matmul of 1 or 2 rows may round differently
        np.testing.assert_allclose(out[:, 0], out[:, k], rtol=1e-5, atol=1e-6)
    # while the 16 draws differ by far more: their spread is 1,000x that tolerance (the smallest gap
    # between 16 random draws is itself random and fell below 1e-4 in about 1 of 20 runs)
    assert out[:, 0, 0].std() > 1e3 * 1e-5, out[:, 0, 0].std()

    ring = ring_generator(100, embedding=(8, 4), hidden=(8,), seed=2, init_scale=0.1)
    features = rings.simulate(3, seed=seeds.key(4, "test"))["features"].astype("float32")
    loop = _draws(ring, features, False)
    pieces = _draws(ring, features, True, chunk_bytes=2 * ring._activation_floats() * 4)  # 1 draw, pieces 2 + 1
    picked = seeds.rng(1, "test").choice(loop.shape[1], 40, replace=False)
    _same_law(loop, pieces, picked)
    _uncorrelated(pieces, picked)


def test_a_layer_that_cannot_be_vectorised_falls_back_to_the_loop_or_is_named():
    from tfp_dgbn.model.bayesian_model import BayesianModel
    from tfp_dgbn.model.heads import PoissonHead
    from tfp_dgbn.model.layers import conv2d_flipout
    from tfp_dgbn.tfk import keras

    inputs = keras.Input((4, 4, 1))
    h = conv2d_flipout(1, 3, num_train=10, seed=0, padding="same")(inputs)
    model = BayesianModel(inputs, PoissonHead(event_shape=(4, 4))(h))
    x = np.ones((2, 4, 4, 1), "float32")
    assert model.sample_params(x, 3).shape == (3, 2, 4, 4, 1)  # 3x3 kernel: the loop
    with pytest.raises(ValueError, match="1x1"):
        model.sample_params(x, 3, vectorized=True)


def _seeded_draws(model, x, num_samples, tile):
    """sample_params under a fixed global seed, with the shared-input plan or with every layer on the
    tiled draw-major batch (``tile``): the same op seeds, so the same weight draws."""
    if tile:
        model.__dict__["_draw_split_cache"] = None
    try:
        tf.random.set_seed(11)
        return tf.function(lambda x: model.sample_params(x, num_samples, vectorized=True))(tf.constant(x)).numpy()
    finally:
        model.__dict__.pop("_draw_split_cache", None)


def test_layers_before_the_weights_run_once_per_example_with_the_same_draws():
    """The coordinates and feature encoding of the ring generator hold no weights: they run once per
    example and the first Bayesian layers broadcast them over the draws. The draws are the very ones
    the tiled batch gives (same seeds), to float32 rounding of a different matmul order."""
    model = ring_generator(100, embedding=(8, 4), hidden=(8,), seed=2, init_scale=0.1)
    assert sorted(layer.name for layer in model._draw_split()[0]) == ["embed_0", "pixel_0"]
    features = rings.simulate(5, seed=seeds.key(5, "test"))["features"].astype("float32")
    shared, tiled = _seeded_draws(model, features, 6, False), _seeded_draws(model, features, 6, True)
    assert shared.shape == tiled.shape == (6, 5, 32, 32, 1)
    np.testing.assert_allclose(shared, tiled, rtol=1e-5, atol=1e-5)
    assert np.ptp(shared, axis=0).min() > 0  # and the draws differ from each other at every pixel


def test_a_layer_mixing_draw_dependent_and_fixed_tensors_keeps_the_tiled_batch():
    """A concatenation of the inputs with a Bayesian layer's output cannot broadcast one over the draws:
    the model then runs every layer on the tiled batch, and a draw is still one network for all rows."""
    from tfp_dgbn.model.bayesian_model import BayesianModel
    from tfp_dgbn.model.layers import dense_flipout
    from tfp_dgbn.tfk import keras

    inputs = keras.Input((1,))
    h = keras.layers.Concatenate()([inputs, dense_flipout(4, num_train=10, seed=0, activation="relu")(inputs)])
    model = BayesianModel(inputs, NormalHead()(dense_flipout(2, num_train=10, seed=3)(h)))
    assert model._draw_split() is None
    out = model.sample_params(tf.constant([[0.3], [0.3]]), 8, vectorized=True).numpy()
    np.testing.assert_array_equal(out[:, 0], out[:, 1])
    assert np.unique(out[:, 0, 0]).size == 8
