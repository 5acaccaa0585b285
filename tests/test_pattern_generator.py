"""The pattern-ring generators, their evaluation and `dgbn compare-generators` (issue 18)."""
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from conftest import PYTHON, REPO
from tfp_dgbn import seeds
from tfp_dgbn.evaluate.pattern_rings import (component_weights, evaluate_pattern_rings, second_ring_fractions,
                                            second_ring_ratio)
from tfp_dgbn.model.heads import NormalHead
from tfp_dgbn.predict import Predictor
from tfp_dgbn.simulate import pattern_rings as pr
from tfp_dgbn.validate import InputError

K_SD = float(np.sqrt(((pr.K_VALUES - pr.K_VALUES @ pr.K_PROBS) ** 2) @ pr.K_PROBS))


def _normal_oracle(scale_factor):
    """Per-pixel Normal(g E[K], scale_factor g sd(K)): the law's moments (scale_factor 1), or wrong ones."""
    mean_k = float(pr.K_VALUES @ pr.K_PROBS)

    def sample_named(x, s):
        g = pr.intensity(np.asarray(x, "float64"))
        loc, scale = g * mean_k, np.maximum(scale_factor * g * K_SD, 1e-12)
        return {"loc": tf.constant(np.repeat(loc[None], s, 0), tf.float32),
                "scale": tf.constant(np.repeat(scale[None], s, 0), tf.float32)}
    return Predictor(sample_named, NormalHead(event_shape=(32, 32)), {"feature_names": list(pr.FEATURE_NAMES)})


def test_evaluation_puts_the_laws_moments_at_the_floor_and_wrong_ones_above_it():
    """A Normal with the law's per-pixel mean and sd is within 1% of sd of the discrete law in W1,
    far below the two-sample floor of 32 draws (about 0.2 sd), so its W1 ratio is 1 to within 10%
    (300 rings x 1,024 pixels average the ratio's noise away); its CRPS excess is 0 within 4 SE and
    the classifier cannot tell its images from the law's. Twice the sd puts W1 at ~0.4 sd above it, and the
    classifier sees it (its view keeps the noise's size: `pooled_with_texture`)."""
    chunk = next(pr.generate(300, seeds.key(1, "test")))
    right = evaluate_pattern_rings(_normal_oracle(1.0), chunk["features"], chunk["noised"], num_samples=32)
    wrong = evaluate_pattern_rings(_normal_oracle(2.0), chunk["features"], chunk["noised"], num_samples=32)
    assert abs(right["w1_ratio"] - 1) < 0.1 and abs(right["w1_ratio_ring"] - 1) < 0.1, right
    assert wrong["w1_ratio"] > 1.5 and wrong["w1_ratio_ring"] > 1.5, wrong
    assert abs(right["crps_excess"]) < 4 * right["crps_excess_se"] + 1e-6
    assert wrong["crps_excess"] > 4 * wrong["crps_excess_se"]
    assert abs(right["c2st_auc"] - 0.5) < 4 * right["c2st_auc_se"]
    assert wrong["c2st_auc"] > 0.5 + 4 * wrong["c2st_auc_se"], wrong


def test_second_ring_fractions_tell_the_law_from_an_always_present_or_half_ring():
    """The law's second ring is absent or whole with probability 1/2 each: its present fraction is 1/2 within
    4 binomial SEs (0.5 / sqrt(n) over the n rings where the ratio is defined) and it has no half rings. A
    noise-free generator drawing the ring always (g1 + g2) is 100% present; one drawing g1 + g2 / 2 is 100% half."""
    chunk = next(pr.generate(1000, seeds.key(2, "test"), two_rings=True))
    f = chunk["features"]
    half, present = second_ring_fractions(chunk["noised"], f)
    n = int(np.isfinite(second_ring_ratio(chunk["noised"], f)).sum())
    assert n > 300 and half == 0.0 and abs(present - 0.5) < 4 * 0.5 / np.sqrt(n), (n, half, present)
    g1, g2 = pr.ring_intensities(f.astype("float64"), two_rings=True)
    assert second_ring_fractions(g1 + g2, f) == (0.0, 1.0)
    assert second_ring_fractions(g1 + 0.5 * g2, f) == (1.0, 0.0)


def test_compare_generators_writes_its_table_figure_and_exports(tmp_path, monkeypatch):
    """`compare_generators` on two rings at a tiny size, with the line-up cut to the latent generator (notebook
    07 runs all three kinds through the job; tests/test_image_heads.py checks their laws, the reference
    decoder's zero aleatoric variance included): it trains, exports and is judged through the one job
    pipeline, and the table has its row."""
    import tfp_dgbn
    from tfp_dgbn.studies import generators
    from tfp_dgbn.tasks import make_settings

    full = generators.lineup(1)
    assert [label for label, _ in full["two rings"]] == [
        "reference decoder, factor switch", "explicit, intensity x learned kernel (pixels independent)",
        "latent: mixture of two image laws"]
    picked = [full["two rings"][2]]
    monkeypatch.setattr(generators, "lineup", lambda epochs: {"two rings": picked})
    out, logdir, exports = tmp_path / "tables", tmp_path / "runs", tmp_path / "models"
    base = make_settings("pattern-rings", n_train=600, n_test=100, epochs=1, verbose=0, logdir=str(logdir),
                         out=str(exports))
    results = generators.compare_generators(base, str(out), ["two rings"])
    table = (out / "generators.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split(" | ")[0] for row in rows] == ["| " + label for label, _ in picked], table
    assert (out / "generators_two_rings.png").stat().st_size > 0
    for label, m in results["two rings"].items():
        for key in ("w1_ratio", "w1_ratio_ring", "crps_excess", "c2st_auc", "half_ring_fraction", "present_fraction"):
            assert np.isfinite(m[key]), (label, key, m[key])
        assert m["half_ring_fraction_law"] == 0.0  # the law never draws half a ring
    f = pr.sample_features(3, np.random.default_rng(0), two_rings=True).astype("float32")
    latent = tfp_dgbn.load(str(exports / "two_rings" / "latent__mixture_of_two_image_laws"))
    assert latent.metadata["family"] == "image-mixture" and latent.sample(f, 4).shape == (4, 3, 32, 32)
    # the job refits the kernel's spread after training (`tfp_dgbn.fit.kernel_spread`), the export serves the
    # refit value, and TensorBoard shows the trained value per epoch
    refit = results["two rings"][picked[0][0]]["kernel_spread"]
    assert refit["nll_refit"] <= refit["nll_trained"] and refit["refit"] != refit["trained"]
    named = latent.draws(f, 2)
    loc, scale = named["loc"].numpy(), named["scale"].numpy()
    np.testing.assert_allclose((scale - 1e-5)[loc > 1e-2] / loc[loc > 1e-2], refit["refit"], rtol=1e-4)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    train_dirs = [p for p in logdir.rglob("train") if p.is_dir()]
    tags = set()
    for d in train_dirs:
        tags |= set(EventAccumulator(str(d)).Reload().Tags()["tensors"])
    assert "head/kernel_spread" in tags, (train_dirs, tags)
    from tfp_dgbn.tfk import keras

    saved, = logdir.rglob("checkpoint.keras")  # the run's saved Keras model holds the refit value too
    spread = np.exp(keras.models.load_model(str(saved), compile=False).head.log_spread.numpy())
    assert spread == pytest.approx(refit["refit"], rel=1e-5)


def test_compare_generators_refuses_a_bad_budget_before_training(tmp_path):
    r = subprocess.run([PYTHON, "-m", "tfp_dgbn.cli", "compare-generators", "--epochs", "0", "--out-dir",
                        str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "epochs" in r.stderr and not list(tmp_path.iterdir())


def test_latent_generator_starts_with_equal_components_and_weights():
    """The latent generator's two image laws start equal (`ImageMixtureHead`: free starts let one component win
    every image): at build, the components' log intensities differ only by the weight draws' noise (posterior
    sd 1e-3 per weight, so |difference| < 0.05 with a wide margin; glorot means would give O(1)), and the
    weights are 1/2 to within the same noise."""
    from tfp_dgbn.model.pattern_generator import pattern_generator
    from tfp_dgbn.predict import model_predictor

    model = pattern_generator(100, two_rings=True, pixel_law="mixture", seed=3)
    f = pr.sample_features(8, np.random.default_rng(0), two_rings=True).astype("float32")
    predictor = model_predictor(model)
    log_loc = np.log(predictor.draws(f, 4)["loc"].numpy())  # [S, B, C, 32, 32]
    assert np.abs(log_loc[:, :, 0] - log_loc[:, :, 1]).max() < 0.05
    np.testing.assert_allclose(component_weights(predictor, f, num_samples=4), 0.5, atol=0.01)
    with pytest.raises(InputError, match="normal"):
        component_weights(_normal_oracle(1.0), f[:, :6])
