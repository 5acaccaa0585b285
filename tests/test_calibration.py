"""Calibration metrics on cases with a known answer; the evaluation report.

A predictor that is the data's law must give uniform PIT values and nominal
coverage; a too-narrow or biased one must not. N = 4000 examples: the coverage
standard error sqrt(p(1-p)/N) is <= 0.008, and tolerances are 4 of them.
"""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfp_dgbn.evaluate.metrics import (LEVELS, auroc, brier_score, expected_calibration_error, interval_coverage,
                                       pit_histogram, pit_values)
from tfp_dgbn.evaluate.report import write_report
from tfp_dgbn.model.heads import CategoricalHead, make_head
from tfp_dgbn.predict import Predictor, predictive_moments

N = 4000
X = np.random.default_rng(0).uniform(-1, 1, (N, 1)).astype("float32")


def _rng(test):
    """Each test's own seeded stream: results do not depend on which tests ran before."""
    return np.random.default_rng([1, sum(map(ord, test))])


def _fixed_predictor(family, named, ranges=((-1.0, 1.0),), **head_config):
    """A Predictor whose every weight draw gives the parameters ``named(x)`` (a dict of arrays [B, ...])."""
    head = make_head(family, **head_config)

    def sample_named(x, s):
        return {k: tf.tile(tf.constant(v, tf.float32)[None], [s] + [1] * np.ndim(v)) for k, v in named(x).items()}

    return Predictor(sample_named, head, {"feature_names": ["x"], "feature_ranges": [list(r) for r in ranges]})


def _normal_case(scale_factor=1.0, shift=0.0):
    loc, scale = np.sin(3 * X[:, 0]), 0.2 + 0.1 * X[:, 0] ** 2
    y = _rng(f"normal{scale_factor}{shift}").normal(loc, scale).astype("float32")
    # the head's scale is min_scale + softplus(raw); `named` carries the final scale
    pred = _fixed_predictor("normal", lambda x: {"loc": np.sin(3 * x[:, 0]) + shift,
                                                 "scale": (0.2 + 0.1 * x[:, 0] ** 2) * scale_factor})
    return pred, y


def test_the_true_normal_law_is_calibrated_and_a_narrow_one_is_not():
    pred, y = _normal_case()
    dist = pred(X, 2)
    cov = interval_coverage(dist, y)
    for level in LEVELS:
        assert abs(cov[level]["coverage"] - level) < 4 * cov[level]["se"], (level, cov[level])
    assert pit_histogram(pit_values(dist, y))["chi2_p"] > 1e-3
    narrow, y = _normal_case(scale_factor=0.5)
    dist = narrow(X, 2)
    cov = interval_coverage(dist, y)
    assert cov[0.9]["coverage"] < 0.9 - 10 * cov[0.9]["se"]
    hist = pit_histogram(pit_values(dist, y))
    assert hist["chi2_p"] < 1e-6 and hist["fractions"][0] > 0.15  # U-shaped: too many extreme PITs


def test_randomised_pit_of_the_true_count_law_is_uniform_and_a_biased_one_is_not():
    rate = np.exp(1.0 + X[:, 0])
    y = _rng("poisson").poisson(rate).astype("float32")
    good = _fixed_predictor("poisson", lambda x: {"log_rate": 1.0 + x[:, 0]})(X, 2)
    assert pit_histogram(pit_values(good, y))["chi2_p"] > 1e-3
    cov = interval_coverage(good, y)
    for level in LEVELS:  # discrete intervals cover at least their level
        assert cov[level]["coverage"] > level - 4 * cov[level]["se"]
    biased = _fixed_predictor("poisson", lambda x: {"log_rate": np.log(1.5) + 1.0 + x[:, 0]})(X, 2)
    assert pit_histogram(pit_values(biased, y))["chi2_p"] < 1e-6


def test_ece_is_small_for_calibrated_probabilities_and_large_for_overconfident_ones():
    rng = _rng("ece")
    logits = rng.normal(0, 1.5, (N, 4))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(4, p=p) for p in probs])
    # calibrated: ECE is only sampling noise, ~sqrt(bins / N) at most
    assert expected_calibration_error(probs, labels)["ece"] < np.sqrt(15 / N)
    sharp = np.exp(3 * logits) / np.exp(3 * logits).sum(1, keepdims=True)
    assert expected_calibration_error(sharp, labels)["ece"] > 0.1


def test_mutual_information_is_zero_for_agreeing_draws_and_log_k_for_disjoint_ones():
    def split(draw_probs):
        m = predictive_moments(CategoricalHead(num_classes=3), {"logits": tf.math.log(tf.constant(draw_probs))})
        return m["mutual_information"].numpy(), m["expected_entropy"].numpy(), m["predictive_entropy"].numpy()

    agree = np.tile(np.array([[[0.2, 0.3, 0.5]]], "float32"), (4, 1, 1))
    mi, h, total = split(agree)
    np.testing.assert_allclose(mi, 0, atol=1e-6)
    np.testing.assert_allclose(total, -np.sum([0.2, 0.3, 0.5] * np.log([0.2, 0.3, 0.5])), rtol=1e-5)
    disjoint = np.eye(3, dtype="float32")[:, None, :]  # three draws, each certain of another class
    mi, h, total = split(disjoint)
    np.testing.assert_allclose(mi, np.log(3), rtol=1e-6)
    np.testing.assert_allclose(h, 0, atol=1e-6)


def test_brier_and_auroc_known_answers():
    assert brier_score([[1.0, 0.0], [0.0, 1.0]], [0, 0]) == pytest.approx(1.0)  # one right, one wrong: (0 + 2) / 2
    assert brier_score([[0.5, 0.5]], [1]) == pytest.approx(0.5)
    assert auroc([1, 2, 3], [4, 5, 6]) == 1.0 and auroc([4, 5, 6], [1, 2, 3]) == 0.0
    assert auroc([1, 2], [1, 2]) == 0.5  # identical scores: no detection
    # Two normals one sd apart: AUROC = Phi(1 / sqrt 2) = 0.760; SE ~ 0.006 at n = 4000 each, bound 4 SE.
    rng = np.random.default_rng(3)
    assert abs(auroc(rng.normal(0, 1, 4000), rng.normal(1, 1, 4000)) - 0.7602) < 0.025


def test_report_of_a_categorical_model_has_ece_and_mutual_information(tmp_path):
    def logits(x):
        return {"logits": np.stack([x[:, 0], -x[:, 0], np.zeros(len(x))], 1)}

    probs = np.exp(logits(X)["logits"]) / np.exp(logits(X)["logits"]).sum(1, keepdims=True)
    rng = _rng("categorical report")
    y = np.array([rng.choice(3, p=p) for p in probs]).astype("float32")
    pred = _fixed_predictor("categorical", logits, num_classes=3)
    m = write_report(pred, X, y, str(tmp_path), num_samples=4)
    assert m["calibration"]["ece"] < np.sqrt(15 / N)
    assert m["mutual_information"] == pytest.approx(0, abs=1e-6)  # identical draws: no epistemic part
    # ... so it cannot tell shifted rows apart: chance, up to the few rows float32 rounding leaves at ~1e-8
    assert m["ood"]["mutual_information"]["outside"] < 1e-6
    assert abs(m["ood"]["mutual_information"]["auroc"] - 0.5) < 0.01
    # The true law's accuracy and Brier score, computed from its probabilities (binomial SE <= 0.008, 4 SE).
    assert abs(m["accuracy"] - probs.max(1).mean()) < 0.032
    assert abs(m["brier"] - np.mean(1 - np.sum(probs ** 2, 1))) < 0.03
    for name in ("report.md", "metrics.json", "reliability.png", "entropy.png"):
        assert os.path.exists(tmp_path / name), name
    for name in ("pit.png", "coverage.png"):  # no intervals or PIT for unordered classes
        assert not os.path.exists(tmp_path / name), name
    assert "coverage" not in m and "pit" not in m
    assert "ECE" in (tmp_path / "report.md").read_text()
    assert json.load(open(tmp_path / "metrics.json"))["family"] == "categorical"


def test_epistemic_uncertainty_rises_outside_the_training_range(gaussian_fit, tmp_path):
    """The trained toy model (x in [-1, 1]): weight draws disagree more off its training range."""
    from tfp_dgbn.simulate.toys import make_toy

    toy = make_toy("toy-gaussian")
    x, y = toy.sample(2000, seed=11)
    m = write_report(gaussian_fit.predictor, x, y, str(tmp_path), num_samples=64)
    assert m["ood"]["ratio"] > 3, m["ood"]
    assert m["ood"]["fraction_outside_above_inside_median"] > 0.75
    for level in LEVELS:  # and in range the fitted model is calibrated (4 SE, N = 2000)
        c = m["coverage"][level]
        assert abs(c["coverage"] - level) < 4 * c["se"], (level, c)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"tensors": 0}).Reload()
    assert "evaluate/ood_epistemic_ratio" in acc.Tags()["tensors"]
    assert os.path.exists(tmp_path / "uncertainty.png")
