"""Recalibrating a predictive's spread about its mean (`tfp_dgbn.predict.Recalibrated`,
`tfp_dgbn.evaluate.recalibrate`), in memory and through an export."""
import numpy as np
import pytest

import tfp_dgbn
from tfp_dgbn.export import export_predictive
from tfp_dgbn.evaluate.recalibrate import calibrate_spread
from tfp_dgbn.model.heads import head_for_targets
from tfp_dgbn.model.mlp import bayesian_mlp
from tfp_dgbn.predict import Recalibrated, mixture, model_predictor, predictive_moments, rescale_about_mean
from tfp_dgbn.validate import InputError

D = 3


def _ensemble(k=3, family="normal"):
    """k untrained networks in a target's units (mean 50, sd 4). Their posterior sd starts at 1e-3, so each
    network's draws agree to ~1e-3 sd while the networks' means differ by O(1) sd: the predictive is a fixed
    k-component mixture whatever the draws."""
    y = 50 + 4 * np.random.default_rng(0).normal(size=200)
    if family != "normal":
        y = np.round(np.abs(y)).astype("int64")
    nets = []
    for seed in range(k):
        head, bias = head_for_targets(family, y)
        nets.append(bayesian_mlp(D, head, 200, hidden=(8,), seed=seed + 1, output_bias=bias, name=f"m{seed}"))
    return nets


def _features(n, seed=1):
    return np.random.default_rng(seed).normal(size=(n, D)).astype("float32")


def test_rescaling_keeps_the_mean_and_scales_sd_and_density_about_it():
    nets = _ensemble()
    draws = model_predictor(nets).draws(_features(5), 30)
    tau = 0.6
    scaled = rescale_about_mean(draws, tau)
    head = nets[0].head
    before, after = predictive_moments(head, draws), predictive_moments(head, scaled)
    np.testing.assert_allclose(after["mean"], before["mean"], rtol=1e-6)
    np.testing.assert_allclose(after["stddev"], tau * before["stddev"], rtol=1e-5)
    for part in ("epistemic_variance", "aleatoric_variance"):  # both parts, so the split is kept
        np.testing.assert_allclose(after[part], tau ** 2 * before[part], rtol=1e-5)
    # p_tau(y) = p(m + (y - m) / tau) / tau at any y
    m = before["mean"].numpy()
    y = m + np.linspace(-3, 3, 5).astype("float32") * before["stddev"].numpy()
    np.testing.assert_allclose(mixture(head, scaled).log_prob(y).numpy(),
                               mixture(head, draws).log_prob(m + (y - m) / tau).numpy() - np.log(tau), atol=1e-4)


def test_calibration_recovers_the_spread_of_targets_drawn_from_a_narrowed_predictive():
    """Targets drawn from the ensemble's predictive scaled by 0.6: the fit finds 0.6 within the sampling error."""
    nets = _ensemble()
    x = _features(N_ROWS)
    y = model_predictor(Recalibrated(nets, TRUE_SPREAD))(x, 30).sample(seed=3).numpy()
    model, info = calibrate_spread(nets, x, y, num_samples=30)
    assert isinstance(model, Recalibrated) and model.spread == info["spread"] and info["rows"] == N_ROWS
    # tau-hat is a maximum-likelihood estimate: the standard error of log tau-hat is 1 / sqrt(N I), I the
    # observed information per row, the curvature of the mean NLL in log tau at tau-hat (finite difference;
    # for a Normal I = 2; the draws' own spread, 1e-3 of the networks' difference, adds nothing visible)
    draws, head = model_predictor(nets).draws(x, 30), nets[0].head

    def nll(log_tau):
        return -float(np.mean(mixture(head, rescale_about_mean(draws, np.exp(log_tau))).log_prob(y)))

    h, at = 0.02, np.log(info["spread"])
    information = (nll(at + h) - 2 * nll(at) + nll(at - h)) / h ** 2
    assert information > 0.5, information
    assert abs(np.log(info["spread"] / TRUE_SPREAD)) < 5 / np.sqrt(N_ROWS * information), (info, information)
    assert info["nll_after"] < info["nll_before"]
    # the fitted model's predictive is the original's scaled by tau
    sd = model_predictor(nets).summary(x[:4], 30)["stddev"]
    np.testing.assert_allclose(model_predictor(model).summary(x[:4], 30)["stddev"], info["spread"] * sd, rtol=1e-2)


N_ROWS = 4000
TRUE_SPREAD = 0.6


def test_a_recalibrated_ensemble_exports_and_reloads_as_the_scaled_mixture(tmp_path):
    nets = _ensemble(2)
    meta = export_predictive(Recalibrated(nets, 0.5), str(tmp_path / "calibrated"))
    export_predictive(nets, str(tmp_path / "plain"))
    assert meta["spread"] == 0.5 and meta["ensemble"] == 2
    calibrated, plain = tfp_dgbn.load(str(tmp_path / "calibrated")), tfp_dgbn.load(str(tmp_path / "plain"))
    assert calibrated.metadata["spread"] == 0.5 and plain.metadata["spread"] == 1.0
    x = _features(6)
    a, b = calibrated.summary(x, 20), plain.summary(x, 20)
    # the draws' own spread is 1e-3 of the networks' difference: equal to that precision
    np.testing.assert_allclose(a["mean"], b["mean"], rtol=1e-3)
    np.testing.assert_allclose(a["stddev"], 0.5 * b["stddev"], rtol=1e-2)
    samples = calibrated.sample(x, 2000)
    assert np.all(np.abs(samples.std(axis=0) / (0.5 * b["stddev"]) - 1) < 5 / np.sqrt(2 * 2000)), samples.std(0)


def test_bad_spreads_heads_and_rows_are_refused():
    nets = _ensemble(2)
    for bad in (0.0, -1.0, float("nan"), float("inf"), True):
        with pytest.raises(InputError, match=f"spread must be a finite number > 0, got {bad!r}"):
            Recalibrated(nets, bad)
    counts = _ensemble(1, "poisson")
    with pytest.raises(InputError, match="'poisson' head has no location and scale"):
        Recalibrated(counts, 0.5)
    with pytest.raises(InputError, match="'poisson' head has no location and scale"):
        calibrate_spread(counts, _features(3), np.ones(3))
    with pytest.raises(InputError, match="3 and 2"):
        calibrate_spread(nets, _features(3), np.ones(2))
    with pytest.raises(InputError, match="targets must be finite"):
        calibrate_spread(nets, _features(2), np.array([1.0, np.nan]))
