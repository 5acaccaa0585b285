"""The image laws of issue 18: intensity times a learned kernel, a mixture of image laws, and the
reference decoder's point law trained on MSE."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_dgbn.model.heads import HEADS, ImageMixtureHead, PointImageHead, ScaledNormalHead, make_head
from tfp_dgbn.validate import InputError

tfd = tfp.distributions


def _built(head, params_size):
    head(tf.zeros([1, 2, 3, params_size]))  # builds the learned kernel's weight
    return head


def test_scaled_normal_is_intensity_times_one_learned_kernel():
    head = _built(ScaledNormalHead(event_shape=(2, 3), min_scale=1e-5, initial_spread=0.25), 1)
    raw = tf.constant(np.linspace(-8, 1, 6).reshape(1, 2, 3, 1), tf.float32)
    named = head.named_params(raw)
    m = np.exp(raw.numpy()[..., 0])
    np.testing.assert_allclose(named["loc"], m, rtol=1e-5)
    np.testing.assert_allclose(named["scale"], 0.25 * m + 1e-5, rtol=1e-5)
    # one kernel for every element: changing the weight changes every scale in proportion
    head.log_spread.assign(np.log(0.5))
    np.testing.assert_allclose(head.named_params(raw)["scale"], 0.5 * m + 1e-5, rtol=1e-5)
    y = np.full((1, 2, 3), 0.3, "float32")
    expected = tfd.Normal(m, 0.5 * m + 1e-5).log_prob(y).numpy().sum()
    np.testing.assert_allclose(head.distribution(raw).log_prob(y).numpy(), [expected], rtol=1e-5)
    assert "log_spread" in [w.name.split("/")[-1].split(":")[0] for w in head.trainable_weights]


def test_scaled_normal_stays_finite_where_the_signal_vanishes():
    """A log intensity far below float32's range still gives a finite law and gradient (the soft floor)."""
    head = _built(ScaledNormalHead(event_shape=(2, 3)), 1)
    raw = tf.Variable(tf.fill([1, 2, 3, 1], -500.0))
    with tf.GradientTape() as tape:
        lp = head.distribution(raw).log_prob(tf.zeros([1, 2, 3]))
    grad = tape.gradient(lp, raw)
    assert np.isfinite(lp.numpy()).all() and np.isfinite(grad.numpy()).all()


def test_image_mixture_log_prob_is_the_mixture_of_products():
    """Raw channels: a shared log intensity, two deviations from it, two logit contributions pooled over
    the image."""
    head = _built(ImageMixtureHead(event_shape=(2, 3), components=2, initial_spread=0.2), 5)
    assert head.params_size == 5
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(2, 2, 3, 5)).astype("float32")
    named = head.named_params(tf.constant(raw))
    assert named["loc"].shape == (2, 2, 2, 3) and named["logits"].shape == (2, 2)
    y = rng.uniform(0.3, 1.5, size=(2, 2, 3)).astype("float32")
    logits = raw[..., 3:].mean(axis=(1, 2))
    m = np.exp(np.moveaxis(raw[..., :1] + raw[..., 1:3], -1, 1))  # [B, C, 2, 3]
    per_component = tfd.Normal(m, 0.2 * m + 1e-5).log_prob(y[:, None]).numpy().sum(axis=(2, 3))
    log_w = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    joint = per_component + log_w
    expected = joint.max(-1) + np.log(np.exp(joint - joint.max(-1, keepdims=True)).sum(-1))
    np.testing.assert_allclose(head.distribution(tf.constant(raw)).log_prob(y).numpy(), expected, rtol=1e-4)
    mean, var = head.moments(named)
    w = np.exp(log_w)[:, :, None, None]
    np.testing.assert_allclose(mean, (w * m).sum(1), rtol=1e-5)
    np.testing.assert_allclose(var, (w * ((0.2 * m + 1e-5) ** 2 + m ** 2)).sum(1) - (w * m).sum(1) ** 2,
                               rtol=1e-4, atol=1e-7)


def test_image_mixture_draws_the_component_once_per_image():
    """Components at intensity 1 and 3 with a 1% kernel: every drawn image lies wholly near one of them, and
    the fraction near 3 is the component weight, within 4 binomial SE of 2,000 images."""
    head = _built(ImageMixtureHead(event_shape=(4, 4), components=2, initial_spread=0.01), 5)
    raw = np.zeros((1, 4, 4, 5), "float32")
    raw[..., 0], raw[..., 1], raw[..., 2] = 0.0, 0.0, np.log(3.0)  # intensities e^0 = 1 and e^log 3 = 3
    raw[..., 4] = np.log(0.3 / 0.7)  # logits (0, log 0.3/0.7): weight 0.3 on the second component
    images = head.distribution(tf.constant(raw)).sample(2000, seed=1).numpy()[:, 0]
    high = images.min(axis=(1, 2)) > 2.0
    low = images.max(axis=(1, 2)) < 1.5
    assert (high | low).all()  # no image mixes the components pixel by pixel
    assert abs(high.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 2000)


def test_point_head_samples_its_value_and_trains_on_mse():
    head = PointImageHead(event_shape=(2, 2))
    raw = tf.constant([[[[1.0], [2.0]], [[3.0], [4.0]]]])
    dist = head.distribution(raw)
    np.testing.assert_array_equal(dist.sample().numpy(), raw.numpy()[..., 0])
    y = tf.constant([[[1.0, 0.0], [3.0, 6.0]]])
    np.testing.assert_allclose(head.data_loss(dist, y).numpy(), [(0 + 4 + 0 + 4) / 4])
    mean, var = head.moments(head.named_params(raw))
    np.testing.assert_array_equal(var.numpy(), 0.0)


@pytest.mark.parametrize("family", ["scaled-normal", "image-mixture", "point"])
def test_new_heads_round_trip_their_config(family):
    head = make_head(family, event_shape=(32, 32))
    again = HEADS[family].from_config(head.get_config())
    assert again.get_config() == head.get_config() and again.params_size == head.params_size


def test_bad_kernel_settings_name_the_value():
    with pytest.raises(InputError, match="min_scale"):
        ScaledNormalHead(min_scale=0.0)
    with pytest.raises(InputError, match="components"):
        ImageMixtureHead(components=1)
