"""HMC reference: the sampler recovers a known posterior; the comparison command writes its figure and table."""
import os

import numpy as np
import tensorflow_probability as tfp

from tfp_dgbn.studies.hmc_reference import hmc_reference, run_hmc, write_hmc_report

tfd = tfp.distributions


def test_hmc_recovers_a_correlated_gaussian():
    """Mean within 5 Monte-Carlo standard errors (from the effective sample size), R-hat near 1."""
    target = tfd.MultivariateNormalTriL(loc=[1.0, -2.0], scale_tril=[[1.0, 0.0], [0.8, 0.6]])
    samples, diag = run_hmc(target.log_prob, np.zeros((4, 2)), 300, 600, num_leapfrog=8, step_size=0.1, seed=3)
    flat = samples.reshape(-1, 2)
    se = np.sqrt(np.diag(np.cov(flat.T)) / diag["weight_ess_min"])
    assert np.all(np.abs(flat.mean(0) - [1.0, -2.0]) < 5 * se), (flat.mean(0), se)
    np.testing.assert_allclose(np.cov(flat.T), [[1.0, 0.8], [0.8, 1.0]], atol=0.15)
    assert diag["weight_rhat_max"] < 1.05 and 0.5 < diag["acceptance"] < 0.95


def _clears_the_feature_blind_bar(rows, name):
    """NLL below the feature-blind Normal's by more than 4 SE of the difference (unpaired: conservative)."""
    r, b = rows[name], rows["feature-blind"]
    return r["nll"] + 4 * np.hypot(r["nll_se"], b["nll_se"]) < b["nll"]


def test_reference_comparison_runs_and_reports(tmp_path):
    result = hmc_reference(n_train=100, chains=2, num_burnin=200, num_samples=200, num_leapfrog=8, n_test=1000,
                           vi_epochs=100, num_draws=100, progress=lambda m: None)
    rows = result["rows"]
    assert set(rows) == {"HMC", "variational", "true law", "feature-blind"}
    for name in ("HMC", "variational"):
        # Below: the true law is the best possible predictive; nothing beats it by more than noise.
        assert rows[name]["nll"] > rows["true law"]["nll"] - 4 * rows[name]["nll_se"]
        # Above: both learned the x-dependence (a stuck sampler or an untrained fit does not; next test).
        assert _clears_the_feature_blind_bar(rows, name), rows
    assert np.isfinite(result["diagnostics"]["function_rhat_max"])
    write_hmc_report(result, str(tmp_path))
    text = (tmp_path / "hmc_reference.md").read_text()
    assert "R-hat" in text and "| HMC |" in text and "| feature-blind |" in text
    assert os.path.exists(tmp_path / "hmc_reference.png")


def test_a_stuck_sampler_and_an_untrained_fit_fail_the_upper_bar():
    """The bar above can fail: five HMC steps of one leapfrog from the initial weights and one VI epoch do not clear it."""
    result = hmc_reference(n_train=100, chains=2, num_burnin=1, num_samples=4, num_leapfrog=1, n_test=1000,
                           vi_epochs=1, num_draws=2, progress=lambda m: None)
    for name in ("HMC", "variational"):
        assert not _clears_the_feature_blind_bar(result["rows"], name), result["rows"]
