"""Posterior predictive mixture, uncertainty split and intervals on cases with known answers."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import stats

from tfp_dgbn.model.heads import CategoricalHead, NormalHead, PoissonHead, make_head
from tfp_dgbn.predict import central_interval, mixture, predictive_moments

tfd = tfp.distributions


def test_normal_mixture_moments_follow_total_variance():
    head = NormalHead()
    loc = tf.constant([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])  # S=3, B=2
    scale = tf.constant([[1.0, 0.5], [1.0, 0.5], [1.0, 0.5]])
    named = {"loc": loc, "scale": scale}
    m = predictive_moments(head, named)
    np.testing.assert_allclose(m["mean"], [2.0, 1.0])
    np.testing.assert_allclose(m["epistemic_variance"], [8.0 / 3.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(m["aleatoric_variance"], [1.0, 0.25])
    dist = mixture(head, named)
    np.testing.assert_allclose(dist.mean(), m["mean"], rtol=1e-6)
    np.testing.assert_allclose(dist.stddev(), m["stddev"], rtol=1e-5)
    # log_prob is the log-mean-exp of the component densities.
    y = np.array([0.5, 1.2], "float32")
    comp = stats.norm(loc.numpy(), scale.numpy()).pdf(y)
    np.testing.assert_allclose(dist.log_prob(y), np.log(comp.mean(axis=0)), rtol=1e-5)


def test_poisson_and_categorical_heads_split_uncertainty():
    log_rate = tf.math.log(tf.constant([[2.0], [4.0]]))
    m = predictive_moments(PoissonHead(), {"log_rate": log_rate})
    np.testing.assert_allclose(m["mean"], [3.0], rtol=1e-6)
    np.testing.assert_allclose(m["aleatoric_variance"], [3.0], rtol=1e-6)
    np.testing.assert_allclose(m["epistemic_variance"], [1.0], rtol=1e-5)
    logits = tf.math.log(tf.constant([[[0.5, 0.5, 0.0]], [[0.0, 0.5, 0.5]]]) + 1e-30)
    m = predictive_moments(CategoricalHead(num_classes=3, ordinal=True), {"logits": logits})  # counts 0, 1, 2
    np.testing.assert_allclose(m["mean"], [1.0], rtol=1e-5)
    np.testing.assert_allclose(m["epistemic_variance"], [0.25], rtol=1e-4)
    np.testing.assert_allclose(m["aleatoric_variance"], [0.25], rtol=1e-4)
    # Unordered classes: probabilities and the entropy split, no moments of a class index.
    m = predictive_moments(CategoricalHead(num_classes=3), {"logits": logits})
    assert "mean" not in m and "epistemic_variance" not in m
    np.testing.assert_allclose(m["probs"], [[0.25, 0.5, 0.25]], rtol=1e-5)
    np.testing.assert_allclose(m["expected_entropy"], [np.log(2)], rtol=1e-5)  # each draw: two classes at 1/2
    np.testing.assert_allclose(m["mutual_information"], [1.5 * np.log(2) - np.log(2)], rtol=1e-4)


def test_image_event_shape_mixture():
    head = PoissonHead(event_shape=(4, 5))
    named = {"log_rate": tf.zeros([3, 2, 4, 5])}
    dist = mixture(head, named)
    assert dist.batch_shape == [2] and dist.event_shape == [4, 5]
    y = np.ones((2, 4, 5), "float32")
    np.testing.assert_allclose(dist.log_prob(y), [20 * stats.poisson(1.0).logpmf(1)] * 2, rtol=1e-5)


def test_central_interval_exact_for_normal_and_poisson():
    lo, hi = central_interval(tfd.Normal([0.0, 3.0], [1.0, 2.0]), 0.9)
    np.testing.assert_allclose(lo, stats.norm([0, 3], [1, 2]).ppf(0.05), atol=1e-4)
    np.testing.assert_allclose(hi, stats.norm([0, 3], [1, 2]).ppf(0.95), atol=1e-4)
    lo, hi = central_interval(tfd.Poisson(rate=[3.0, 10.0]), 0.8)
    np.testing.assert_array_equal(lo, stats.poisson([3, 10]).ppf(0.1))
    np.testing.assert_array_equal(hi, stats.poisson([3, 10]).ppf(0.9))
    with pytest.raises(ValueError, match="level"):
        central_interval(tfd.Normal(0.0, 1.0), 1.5)


def test_calibrated_normal_predictor_has_nominal_coverage():
    rng = np.random.default_rng(0)
    n = 20000
    mu, sd = rng.normal(size=n), rng.uniform(0.5, 2, n)
    y = rng.normal(mu, sd)
    lo, hi = central_interval(tfd.Normal(mu.astype("float32"), sd.astype("float32")), 0.9)
    cover = np.mean((y >= lo) & (y <= hi))
    assert abs(cover - 0.9) < 4 * np.sqrt(0.09 / n)  # 4 binomial standard errors
    lo, hi = central_interval(tfd.Normal(mu.astype("float32"), 0.5 * sd.astype("float32")), 0.9)
    assert np.mean((y >= lo) & (y <= hi)) < 0.9 - 10 * np.sqrt(0.09 / n)  # too narrow is caught


def test_make_head_rejects_unknown_family():
    with pytest.raises(ValueError, match="'gamma'"):
        make_head("gamma")
    with pytest.raises(ValueError, match="num_classes"):
        make_head("categorical", num_classes=1)


def test_central_interval_of_categorical_mixture_stays_in_support():
    probs = np.array([[0.1, 0.2, 0.4, 0.3]], "float32")
    lo, hi = central_interval(tfd.Categorical(probs=probs), 0.7)
    assert (lo[0], hi[0]) == (1, 3)  # F = .1 .3 .7 1.0; q(.15) = 1, q(.85) = 3


@pytest.mark.parametrize("family,config", [("normal", {}), ("poisson", {}), ("categorical", {"num_classes": 3}),
                                           ("scaled-normal", {"event_shape": (2, 2)}),
                                           ("image-mixture", {"event_shape": (2, 2)}), ("point", {"event_shape": (2,)})])
def test_the_export_metadata_names_the_signatures_outputs_for_every_head(family, config, tmp_path):
    # The export computes the output names from the head on a zero draw instead of tracing the signature
    # (export.py): they must be the names the traced, saved signature returns, and the export reloads.
    import tfp_dgbn
    from tfp_dgbn.export import export_predictive
    from tfp_dgbn.model.mlp import bayesian_mlp

    head = make_head(family, **config)
    meta = export_predictive(bayesian_mlp(2, head, 10, hidden=(3,), seed=1), str(tmp_path / "m"))
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    assert meta["signatures"]["predictive"] == sorted(loaded.signatures["predictive"].structured_outputs)
    assert not hasattr(loaded, "members")  # only the variables are in the object graph, not the Keras models
    dist = tfp_dgbn.load(str(tmp_path / "m"))(np.zeros((4, 2), "float32"), 3)
    assert dist.batch_shape == (4,) and dist.event_shape == tuple(config.get("event_shape", ()))
