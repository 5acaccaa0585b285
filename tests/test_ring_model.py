"""The Bayesian ring generator: layers, export as a distribution over images, exact-law evaluation, a short fit."""
import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_dgbn
from conftest import PYTHON, REPO
from tfp_dgbn import seeds
from tfp_dgbn.evaluate.rings import evaluate_rings, pixel_pit, poisson_image_log_prob
from tfp_dgbn.model.ring_generator import RingCoordinates, ring_generator
from tfp_dgbn.predict import Predictor
from tfp_dgbn.model.heads import PoissonHead
from tfp_dgbn.simulate import rings

CONFIG = rings.RingConfig()


@pytest.fixture(scope="module")
def ring_fit(tmp_path_factory):
    """A reduced main job: 10,000 rings, 2 epochs, KL weight 1 throughout (~1 min)."""
    from tfp_dgbn.tasks import make_settings
    from tfp_dgbn.tasks.runner import run

    root = tmp_path_factory.mktemp("rings")
    return run(make_settings("rings", n_train=10000, n_val=500, n_test=2000, epochs=2, logdir=str(root / "logs"),
                                      out=str(root / "export"), verbose=0))


def test_ring_coordinates_put_the_ring_at_zero_radial_distance():
    f = np.array([[1.5, -2.5, 7.0, 0.8, 0.0, 0.0]], "float32")
    c = RingCoordinates(32)(tf.constant(f)).numpy()[0]
    assert c.shape == (32, 32, 7)
    # Pixel centre (x, y) = (col - 15.5, row - 15.5); pixel (row 13, col 25) is at (9.5, -2.5): 8 px
    # from the centre along phi = 0, so (rho - R) / 2 = 0.5, cos 1, sin 0.
    np.testing.assert_allclose(c[13, 25, :5], [8 / 16, 0.0, 0.5, 1.0, 0.0], atol=1e-5)
    # Pixel (row 20, col 17) at (1.5, 4.5) is 7 px straight above the centre: on the ring, at
    # azimuth 90 degrees from phi.
    np.testing.assert_allclose(c[20, 17, 2:5], [0.0, 0.0, 1.0], atol=1e-5)


def test_generator_is_a_poisson_law_over_images_and_saves(tmp_path):
    model = ring_generator(1000, CONFIG, embedding=(8, 4), hidden=(8,), seed=3)
    f = rings.sample_features(4, np.random.default_rng(0), CONFIG).astype("float32")
    dist = model(f)
    assert dist.event_shape == (32, 32) and dist.batch_shape == (4,)
    # The initial output is near the mean pixel count (bias at log 0.03).
    assert 0.005 < float(tf.reduce_mean(dist.mean())) < 0.2
    # kernel + bias KL of 2 dense and 2 conv (hidden, output) layers, and the kernel KL of the first
    # pixel layer's embedding half (`pixel_network`: no bias)
    assert len(model.losses) == 2 * 4 + 1
    path = str(tmp_path / "m.keras")
    model.save(path)
    from tfp_dgbn.tfk import keras

    again = keras.models.load_model(path)
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_evaluation_is_exact_for_the_true_law_and_zero_for_the_blind_baseline():
    data = rings.simulate(300, seed=seeds.key(5, "test"), expected=True)
    blind = np.maximum(data["noised"].mean(axis=0), 1e-6)  # the floor evaluate_rings applies

    def oracle(log_rate_of):
        head = PoissonHead(event_shape=(32, 32))

        def sample_named(x, s):
            log_rate = log_rate_of(x)
            return {"log_rate": tf.constant(np.repeat(log_rate[None], s, axis=0), tf.float32)}
        return Predictor(sample_named, head, {"feature_names": list(rings.FEATURE_NAMES)})

    index = {f.tobytes(): i for i, f in enumerate(data["features"])}
    true = oracle(lambda x: np.log(data["expected"][[index[r.tobytes()] for r in x]]))
    m = evaluate_rings(true, data["features"], data["noised"], data["expected"], blind, CONFIG, num_samples=2,
                       batch_size=100, pit_images=300)
    assert m["kl_gap"] == pytest.approx(0.0, abs=1e-3) and m["explained_fraction"] == pytest.approx(1.0, abs=1e-4)
    # Under the true law the randomised PIT is uniform: each of 10 bins holds 0.1 of 307,200
    # pixels (binomial SE 5e-4; pixels of one image are independent given the features).
    assert m["pit_max_deviation"] < 5 * np.sqrt(0.1 * 0.9 / 307200)
    # Generated = simulated law: W1 is of the order of the two-sample floor, and the classifier
    # two-sample test (90 held-out pairs) cannot tell them apart: AUC 0.5 within 4 SE, as its floor.
    assert m["ring_w1_worst_ratio"] < 3.0
    assert abs(m["c2st_auc"] - 0.5) < 4 * m["c2st_auc_se"]
    assert abs(m["c2st_floor_auc"] - 0.5) < 4 * m["c2st_floor_auc_se"]
    blind_m = evaluate_rings(oracle(lambda x: np.log(np.repeat(blind[None], len(x), 0))), data["features"],
                             data["noised"], data["expected"], blind, CONFIG, num_samples=2, batch_size=100,
                             c2st=False)
    assert blind_m["explained_fraction"] == pytest.approx(0.0, abs=1e-6) and blind_m["kl_gap"] > 5
    # The classifier tells feature-blind images from simulated ones. Their rate comes from other rings:
    # the mean of these very images would carry the classifier's training rows into the generated
    # sample and push the held-out AUC below 0.5 (two_sample.classifier_two_sample_test).
    other = np.maximum(rings.simulate(2000, seed=seeds.key(6, "test"))["noised"].mean(axis=0), 1e-6)
    other_m = evaluate_rings(oracle(lambda x: np.log(np.repeat(other[None], len(x), 0))), data["features"],
                             data["noised"], data["expected"], other, CONFIG, num_samples=2, batch_size=100,
                             pit_images=10, replicas=1)
    assert other_m["c2st_auc"] > 0.5 + 4 * other_m["c2st_auc_se"], other_m["c2st_auc"]
    # Known answer: rates c times the true ones give KL(Poisson(l) || Poisson(c l)) = l (c - 1 - log c) per
    # pixel, summed over the image; the estimate's own standard error (300 images) bounds the check at 4 SE.
    for c in (0.9, 1.1):
        scaled = oracle(lambda x: np.log(c * data["expected"][[index[r.tobytes()] for r in x]]))
        m = evaluate_rings(scaled, data["features"], data["noised"], data["expected"], blind, CONFIG, num_samples=2,
                           batch_size=100, pit_images=10, replicas=1, c2st=False)
        want = float(np.mean(data["expected"].sum(axis=(1, 2)))) * (c - 1 - np.log(c))
        assert abs(m["kl_gap"] - want) < 4 * m["kl_gap_se"], (c, m["kl_gap"], m["kl_gap_se"], want)
        assert m["kl_gap"] > 4 * m["kl_gap_se"]  # and it is detected: > 0


def test_image_log_prob_and_pit_helpers():
    y = np.array([[[0, 2], [1, 0]]])
    rate = np.array([[[0.5, 1.5], [1.0, 0.1]]])
    from scipy import stats

    assert poisson_image_log_prob(y, rate=rate)[0] == pytest.approx(stats.poisson.logpmf(y, rate).sum())
    u = pixel_pit(y, np.log(rate)[None], np.random.default_rng(0))
    lo, hi = stats.poisson.cdf(y - 1, rate).ravel(), stats.poisson.cdf(y, rate).ravel()
    assert np.all((u >= lo) & (u <= hi))


def test_short_fit_explains_the_noise_with_kl_weight_one(ring_fit):
    m = ring_fit.metrics
    # Measured: explained 0.95, gap ~0.7 nats/image (docs/ring_model.md). The main-job
    # criteria, already met by this reduced run: explained >= 0.90, gap <= 2, KL weight 1 at the end.
    assert m["final_kl_weight"] == 1.0
    assert m["explained_fraction"] >= 0.90, m["explained_fraction"]
    assert m["kl_gap"] <= 2.0
    # The posterior scales did not collapse: all positive, and they grew from the 1e-3 start.
    assert m["posterior_stddev"]["min"] > 0 and m["posterior_stddev"]["median"] > 1e-3
    for key in ("plot", "history_plot", "metrics"):
        assert os.path.getsize(ring_fit.paths[key]) > 0
    assert set(ring_fit.history) >= {"nll", "kl", "kl_weight", "val_nll"}


def test_sample_signature_draws_from_the_served_predictive(ring_fit):
    # S samples of the `sample` signature (one weight draw each) against the `predictive` signature's
    # per-pixel mean and variance: z = (sample mean - mean) / sqrt(variance / S) is ~N(0, 1) per pixel,
    # so of 2 x 1,024 pixels |z| > 4 expects 0.13 (6e-5 each; a little more for skewed low-rate pixels).
    loaded = tf.saved_model.load(ring_fit.paths["savedmodel"])
    features = tf.constant(rings.simulate(2, seed=seeds.key(9, "test"))["features"])
    S = 800
    samples = loaded.signatures["sample"](features=features, num_samples=tf.constant(S))["samples"].numpy()
    served = loaded.signatures["predictive"](features=features, num_samples=tf.constant(4096))
    mean, var = served["mean"].numpy(), served["stddev"].numpy() ** 2
    z = (samples.mean(axis=0) - mean) / np.sqrt(var / S)
    assert samples.shape == (S, 2, 32, 32) and np.sum(np.abs(z) > 4) <= 3, np.sort(np.abs(z).ravel())[-5:]
    # Whole images: the mean hit count agrees within 4 SE (the samples' own spread, pixels being correlated
    # through the weight draw), and a sampler 10% off would not.
    totals, want = samples.sum(axis=(2, 3)), mean.sum(axis=(1, 2))
    se = totals.std(axis=0, ddof=1) / np.sqrt(S)
    assert np.all(np.abs(totals.mean(axis=0) - want) < 4 * se), (totals.mean(axis=0), want, se)
    assert np.all(np.abs(1.1 * totals.mean(axis=0) - want) > 4 * se)


def test_export_reloads_as_distribution_over_images(ring_fit):
    predictor = tfp_dgbn.load(ring_fit.paths["savedmodel"])
    data = rings.simulate(32, seed=seeds.key(9, "test"), expected=True)
    dist = predictor(data["features"], num_samples=16)
    assert dist.event_shape == (32, 32) and dist.batch_shape == (32,)
    lp = dist.log_prob(data["noised"].astype("float32")).numpy()
    assert np.all(np.isfinite(lp))
    summary = predictor.summary(data["features"], num_samples=16)
    for key in ("mean", "epistemic_variance", "aleatoric_variance"):
        assert summary[key].shape == (32, 32, 32)
    # The served moments are those of the equal mixture of the served Poisson draws (TFP computes it).
    out = predictor.saved_model.signatures["predictive"](features=tf.constant(data["features"][:4]),
                                                         num_samples=tf.constant(8))
    rate = tf.exp(tf.transpose(out["log_rate"], [1, 2, 3, 0]))  # [B, H, W, S]
    mix = tfp.distributions.MixtureSameFamily(tfp.distributions.Categorical(logits=tf.zeros([8])),
                                              tfp.distributions.Poisson(rate=rate))
    np.testing.assert_allclose(out["mean"], mix.mean(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["epistemic_variance"] + out["aleatoric_variance"], mix.variance(),
                               rtol=1e-3, atol=1e-6)
    # Predictive mean tracks the exact mean where the ring is (the bright pixels), far better than the
    # feature-blind mean image does (a model ignoring the features would not). The floor is loose: the
    # fixture is a 2-epoch fit (correlation 0.71 with the seed tree's streams; 0.8+ on earlier streams).
    ring = data["expected"] > 0.1
    assert ring.sum() > 500
    model_corr = np.corrcoef(summary["mean"][ring], data["expected"][ring])[0, 1]
    blind = np.broadcast_to(data["expected"].mean(axis=0), data["expected"].shape)
    blind_corr = np.corrcoef(blind[ring], data["expected"][ring])[0, 1]
    assert model_corr > 0.5 and model_corr > blind_corr + 0.2, (model_corr, blind_corr)
    samples = predictor.saved_model.signatures["sample"](
        features=tf.constant(data["features"]), num_samples=tf.constant(3))["samples"].numpy()
    assert samples.shape == (3, 32, 32, 32) and np.all(samples == np.round(samples)) and samples.min() >= 0


_RELOAD = r"""
import sys
import numpy as np
import tfp_dgbn
p = tfp_dgbn.load(sys.argv[1])
f = np.load(sys.argv[2])["features"]
s = p.summary(f, int(sys.argv[3]))
d = p(f, 2)
np.savez(sys.argv[4], mean=s["mean"], epistemic=s["epistemic_variance"], type=type(d).__name__, event=d.event_shape)
"""


def test_export_reloaded_in_a_fresh_process_gives_the_models_predictive(ring_fit, tmp_path):
    S = 256
    features = rings.simulate(8, seed=seeds.key(11, "test"))["features"]
    np.savez(tmp_path / "f.npz", features=features)
    subprocess.run([PYTHON, "-c", _RELOAD, ring_fit.paths["savedmodel"], str(tmp_path / "f.npz"), str(S),
                    str(tmp_path / "out.npz")], cwd=REPO, check=True, capture_output=True, timeout=300)
    there = np.load(tmp_path / "out.npz")
    here = ring_fit.predictor.summary(features, S)
    assert str(there["type"]) == "MixtureSameFamily" and tuple(there["event"]) == (32, 32)
    # Two independent S-draw estimates of each pixel's predictive mean differ with SE
    # sqrt(2 * epistemic / S); 6 SE per pixel keeps the chance of a false alarm over the
    # 8,192 pixels below 2e-5 (the 1e-5 covers float32 where the spread is ~0).
    se = np.sqrt((here["epistemic_variance"] + there["epistemic"]) / S)
    z = np.abs(here["mean"] - there["mean"]) / (se + 1e-5 * here["mean"] + 1e-7)
    assert z.max() < 6, z.max()
    # ... and the counter-check: another model's predictive (the blind mean image) is told apart.
    blind = np.broadcast_to(there["mean"].mean(axis=0), there["mean"].shape)
    assert (np.abs(here["mean"] - blind) / (se + 1e-5 * here["mean"] + 1e-7)).max() > 6


def test_tensorboard_has_image_and_kl_losses_and_ring_grid(ring_fit):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train = EventAccumulator(os.path.join(ring_fit.paths["logdir"], "train"), size_guidance={"tensors": 0}).Reload()
    tags = set(train.Tags()["tensors"])
    assert {"epoch_nll", "epoch_kl", "epoch_kl_weight", "generated_vs_simulated"} <= tags
    assert len(train.Tensors("epoch_kl_weight")) == 2
    assert len(train.Tensors("generated_vs_simulated")) == 2  # a ring grid every epoch
    assert any(t.startswith("posterior_stddev/") for t in tags)


def test_dgbn_generate_writes_grid_and_rejects_bad_features(ring_fit, tmp_path, capsys):
    out, npz = str(tmp_path / "grid.png"), str(tmp_path / "gen.npz")
    cmd = [PYTHON, "-m", "tfp_dgbn.cli", "generate", "--model", ring_fit.paths["savedmodel"], "--n", "4",
           "--out", out, "--npz", npz, "--features", "0", "0", "7", "0.8", "0.1", "1", "3", "-2", "9", "0.5", "0", "0"]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert np.load(npz)["generated"].shape == (2, 4, 32, 32)
    from tfp_dgbn.cli import main  # the refusals in process: one process's start-up above is enough

    capsys.readouterr()
    assert main(cmd[3:-12] + ["0", "0", "-7", "0.8", "0.1", "1"]) == 2
    err = capsys.readouterr().err
    assert "R=-7.0 must be > 0 (radius)" in err and "Traceback" not in err
    assert main(cmd[3:-12] + ["0", "0", "7"]) == 2 and "6 numbers per ring" in capsys.readouterr().err


def test_dgbn_fit_rings_trains_on_a_simulated_file(tmp_path, capsys):
    from tfp_dgbn.dataset.ring_files import write_rings

    data = str(tmp_path / "rings.npz")
    write_rings(data, 600, seed=2, progress=False)
    cmd = [PYTHON, "-m", "tfp_dgbn.cli", "fit", "rings", "--data", data, "--epochs", "1", "--logdir",
           str(tmp_path / "logs"), "--out", str(tmp_path / "export"), "--quiet"]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "explained fraction" in run.stdout
    import json

    metrics = json.load(open(tmp_path / "logs" / "metrics.json"))
    assert metrics["metrics"]["n"] == 60 and metrics["config"]["data"] == data  # the file's test split
    from tfp_dgbn.cli import main

    assert main(cmd[3:6] + [str(tmp_path / "missing.npz")]) == 2 and "does not exist" in capsys.readouterr().err
