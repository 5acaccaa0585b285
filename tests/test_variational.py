"""KL term: weighting, scaling by N_train, seeding, and save/load of the callables."""
import numpy as np
import pytest
import tensorflow as tf

from tfp_dgbn.model.heads import NormalHead
from tfp_dgbn.model.layers import DenseFlipout, dense_flipout
from tfp_dgbn.model.mlp import bayesian_mlp
from tfp_dgbn.model.variational import (MeanFieldNormalPosterior, NormalPrior,
                                        ScaledKLDivergence, inverse_softplus)
from tfp_dgbn.tfk import keras


def _model(n=500, kl_weight=1.0):
    return bayesian_mlp(1, NormalHead(), n, hidden=(8, 8), seed=3, kl_weight=kl_weight,
                        init_scale=0.05)


def _analytic_kl(layer, which, prior_scale=1.0):
    q = getattr(layer, f"{which}_posterior").distribution
    mu, s = q.loc.numpy(), tf.convert_to_tensor(q.scale).numpy()
    return np.sum(np.log(prior_scale / s) + (s ** 2 + mu ** 2) / (2 * prior_scale ** 2) - 0.5)


def test_model_losses_are_weighted_kl_over_n_train():
    n, w = 500, 0.37
    model = _model(n, kl_weight=w)
    model(np.zeros((4, 1), "float32"))
    expected = sum(_analytic_kl(l, k) for l in model.layers if isinstance(l, DenseFlipout)
                   for k in ("kernel", "bias")) / n
    assert sum(float(v) for v in model.losses) == pytest.approx(w * expected, rel=1e-5)
    assert float(model.kl_raw()) == pytest.approx(expected, rel=1e-5)


def test_one_kl_weight_variable_shared_by_all_layers():
    model = _model()
    fns = [fn for fn, _, _ in model._divergences()]
    assert len(fns) == 6 and all(fn.kl_weight is model.kl_weight for fn in fns)
    model.set_kl_weight(0.0)
    model(np.zeros((2, 1), "float32"))
    assert sum(float(v) for v in model.losses) == 0.0
    assert float(model.kl_raw()) > 0  # the unweighted term is still reported
    assert [v.name for v in model.non_trainable_variables if "kl_weight" in v.name] == ["kl_weight:0"]


@pytest.mark.parametrize("bad", [0, -5, 2.5, "x", True])
def test_bad_n_train_is_rejected_with_its_value(bad):
    with pytest.raises(ValueError, match="N_train"):
        ScaledKLDivergence(bad)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_negative_or_nonfinite_kl_weight_is_rejected(bad):
    model = _model()
    with pytest.raises(ValueError, match="kl_weight"):
        model.set_kl_weight(bad)
    assert float(model.kl_weight) == 1.0  # unchanged


def test_same_shaped_layers_start_different():
    # TFP's shared unseeded default initializer made these identical.
    a = dense_flipout(8, 100, seed=1)
    b = dense_flipout(8, 100, seed=11)
    x = tf.zeros((1, 8))
    a(x), b(x)
    assert not np.allclose(a.kernel_posterior.distribution.loc.numpy(),
                           b.kernel_posterior.distribution.loc.numpy())
    c = dense_flipout(8, 100, seed=1)
    c(x)
    np.testing.assert_array_equal(a.kernel_posterior.distribution.loc.numpy(),
                                  c.kernel_posterior.distribution.loc.numpy())


def test_initial_posterior_scale_is_as_configured():
    layer = dense_flipout(4, 100, seed=0, init_scale=0.02)
    layer(tf.zeros((1, 3)))
    scale = tf.convert_to_tensor(layer.kernel_posterior.distribution.scale).numpy()
    np.testing.assert_allclose(scale, 0.02, rtol=1e-4)
    assert inverse_softplus(0.02) == pytest.approx(np.log(np.expm1(0.02)))


def test_fan_in_prior_scales_kernels_by_their_inputs_per_unit_and_leaves_biases():
    prior = NormalPrior(2.0, fan_in=True)
    assert prior.stddev_for([16, 8]) == pytest.approx(2.0 / 4.0)  # dense: fan-in 16
    assert prior.stddev_for([3, 3, 4, 8]) == pytest.approx(2.0 / 6.0)  # conv: 3 * 3 * 4 = 36
    assert prior.stddev_for([8]) == 2.0 and NormalPrior(2.0).stddev_for([16, 8]) == 2.0
    layer = dense_flipout(8, 100, seed=0, prior_scale=2.0, prior_fan_in=True)
    layer(tf.zeros((1, 16)))
    np.testing.assert_allclose(layer.kernel_prior.distribution.scale.numpy(), 0.5)
    np.testing.assert_allclose(layer.bias_prior.distribution.scale.numpy(), 2.0)
    again = type(layer).from_config(layer.get_config())
    again(tf.zeros((1, 16)))
    np.testing.assert_allclose(again.kernel_prior.distribution.scale.numpy(), 0.5)


def test_callables_round_trip_through_keras_serialization():
    for obj in (NormalPrior(0.5), NormalPrior(1.5, fan_in=True), MeanFieldNormalPosterior(0.01, "zeros", 7), ScaledKLDivergence(123)):
        again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
        assert type(again) is type(obj) and again.get_config() == obj.get_config()


def test_model_save_load_round_trip_keeps_weights_kl_weight_and_resumes(tmp_path):
    n = 300
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (n, 1)).astype("float32")
    y = (x[:, 0] + 0.1 * rng.standard_normal(n)).astype("float32")
    model = _model(n, kl_weight=0.25)
    model.compile(keras.optimizers.Adam(1e-2))
    model.fit(x, y, epochs=2, batch_size=64, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = keras.models.load_model(path)
    assert float(again.kl_weight) == 0.25
    for a, b in zip(model.weights, again.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert float(again.kl_raw()) == pytest.approx(float(model.kl_raw()), rel=1e-6)
    # Every reloaded layer's KL term is bound to the reloaded model's variable.
    assert all(fn.kl_weight is again.kl_weight for fn, _, _ in again._divergences())
    history = again.fit(x, y, epochs=1, batch_size=64, verbose=0).history  # training resumes
    assert history["kl_weight"][0] == pytest.approx(0.25)
    assert np.isfinite(history["loss"][0])


def test_tracked_names_resolve_as_in_keras_functional_and_a_checkpoint_restores(tmp_path):
    """`BayesianModel._lookup_dependency` skips Functional's walk over the layers only for names that
    are not layers: every name resolves to the same object, and a TF checkpoint round-trips."""
    from tf_keras.src.engine.functional import Functional

    model = _model()
    x = np.linspace(-1, 1, 64, dtype="float32")[:, None]
    model.compile(keras.optimizers.Adam(1e-2))
    model.evaluate(x, x[:, 0], verbose=0)  # assigns (and tracks) test_function
    names = list(model._trackable_children()) + ["test_function", "train_function", "no_such_name"]
    assert {"layer-0", "layer_with_weights-0", "kl_weight"} <= set(names)
    for name in names:
        assert model._lookup_dependency(name) is Functional._lookup_dependency(model, name), name
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    again = _model()
    for v in again.trainable_variables:
        v.assign(tf.zeros_like(v))
    tf.train.Checkpoint(model=again).read(path).assert_existing_objects_matched()
    for a, b in zip(model.weights, again.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_fit_logs_separate_terms_that_add_up():
    n = 256
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (n, 1)).astype("float32")
    y = rng.standard_normal(n).astype("float32")
    model = _model(n, kl_weight=0.5)
    model.compile(keras.optimizers.Adam(1e-3))
    h = model.fit(x, y, validation_data=(x, y), epochs=1, batch_size=n, verbose=0).history
    for key in ("loss", "nll", "kl", "kl_raw", "kl_weight"):
        assert key in h and "val_" + key in h
    assert h["kl"][0] == pytest.approx(0.5 * h["kl_raw"][0], rel=1e-5)


def test_the_step_minimises_nll_plus_weighted_kl_over_n():
    """What `train_step` differentiates, not what it logs: one SGD step (rate 1) from the same
    weights with the same Flipout noise at KL weights 0 and w moves each kernel's posterior
    mean by w * d(KL/N)/d(mean) = w * mean / (prior_sd^2 N) more (prior N(0, 1)); the NLL
    part cancels exactly because the noise is the same (checked: two steps at weight 0 agree)."""
    n, w = 256, 0.7
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (n, 1)).astype("float32")
    y = rng.standard_normal(n).astype("float32")
    start = _model(n).get_weights()

    def step(weight):
        keras.utils.set_random_seed(5)
        model = _model(n)
        model(x[:2])
        model.set_weights(start)  # (the weights include the KL weight variable: set it after)
        model.set_kl_weight(weight)
        model.compile(keras.optimizers.SGD(1.0))
        model.train_on_batch(x, y)
        return {v.name: v.numpy() for v in model.trainable_variables}, model

    plain, _ = step(0.0)
    again, _ = step(0.0)
    tempered, model = step(w)
    kernels = [v.name for v in model.trainable_variables if "kernel_posterior_loc" in v.name]
    assert len(kernels) == 3
    before = {v.name: value for v, value in zip(model.weights, start)}
    for name in kernels:
        np.testing.assert_array_equal(plain[name], again[name])
        kl_grad = w * before[name] / n
        np.testing.assert_allclose(plain[name] - tempered[name], kl_grad, rtol=1e-3, atol=1e-7)


def test_conv2d_flipout_round_trips_and_adds_its_kl_term():
    from tfp_dgbn.model.layers import Conv2DFlipout, conv2d_flipout

    layer = conv2d_flipout(3, 3, num_train=50, seed=4, padding="same", activation="relu")
    x = tf.zeros((2, 8, 8, 1))
    y = layer(x)
    assert y.shape == (2, 8, 8, 3)
    expected = (_analytic_kl(layer, "kernel") + _analytic_kl(layer, "bias")) / 50
    assert sum(float(v) for v in layer.losses) == pytest.approx(expected, rel=1e-5)
    again = Conv2DFlipout.from_config(layer.get_config())
    assert again.get_config() == layer.get_config()
    again(x)
    assert [w.shape for w in again.weights] == [w.shape for w in layer.weights]
