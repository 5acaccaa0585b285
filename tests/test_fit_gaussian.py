"""End to end on toy-gaussian: accuracy against the true law, export, reload, TensorBoard.

One fit (2,000 training points, KL weight 1, seed 0) is shared by these tests
(the `gaussian_fit` fixture); 5,000 held-out points.
"""
import json
import os
import subprocess
import time
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_dgbn
from conftest import PYTHON, REPO

tfd = tfp.distributions

pytestmark = pytest.mark.slow


def test_held_out_nll_is_near_the_true_conditional_entropy(gaussian_fit):
    m = gaussian_fit.metrics
    # The criterion: within 0.05 nats of H(y|x). The test-set NLL under
    # the true law estimates H(y|x) with its own sampling error, so the gap to
    # the true law on the same points (noise cancels) is checked too.
    assert abs(m["nll"] - m["conditional_entropy"]) <= 0.05
    assert m["nll_gap"] <= 0.05
    assert m["final_kl_weight"] == 1.0


def test_central_90_percent_intervals_cover_88_to_92_percent(gaussian_fit):
    m = gaussian_fit.metrics
    assert m["n"] == 5000  # binomial SE = 0.0042, so 88-92% is about +-4.7 SE
    assert 0.88 <= m["coverage"] <= 0.92


def test_posterior_scales_did_not_collapse(gaussian_fit):
    s = gaussian_fit.metrics["posterior_stddev"]
    assert s["min"] > 1e-3 and s["median"] > 0.1


def test_fit_writes_plots_metrics_and_history(gaussian_fit):
    paths = gaussian_fit.paths
    for key in ("plot", "history_plot", "metrics"):
        assert os.path.getsize(paths[key]) > 1000
    with open(paths["metrics"]) as f:
        saved = json.load(f)
    assert saved["metrics"]["nll"] == pytest.approx(gaussian_fit.metrics["nll"])
    assert len(gaussian_fit.history["kl_weight"]) == saved["config"]["epochs"]


_RELOAD = r"""
import json, sys
import numpy as np
import tfp_dgbn
p = tfp_dgbn.load(sys.argv[1])
x = np.array(json.loads(sys.argv[2]), "float32")
y = np.array(json.loads(sys.argv[3]), "float32")
s = p.summary(x, 2000)
d = p(x, 2000)
print(json.dumps({"mean": s["mean"].tolist(), "log_prob": d.log_prob(y).numpy().tolist(),
                  "type": type(d).__name__}))
"""


def test_export_reloaded_in_a_fresh_process_matches_the_model(gaussian_fit):
    x = np.array([[-0.8], [-0.1], [0.4], [0.9]], "float32")
    y = np.array([-0.7, 0.0, 0.8, 0.6], "float32")
    out = subprocess.run([PYTHON, "-c", _RELOAD, gaussian_fit.paths["savedmodel"], json.dumps(x.tolist()),
                          json.dumps(y.tolist())], capture_output=True, text=True, cwd=REPO, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["type"] == "MixtureSameFamily"
    here = gaussian_fit.predictor.summary(x, 2000)
    # Two independent 2,000-draw estimates of the predictive mean differ with
    # SE sqrt(2 * epistemic_var / 2000); allow 5 SE (+1e-6 for float32).
    tol = 5 * np.sqrt(2 * here["epistemic_variance"] / 2000) + 1e-6
    assert np.all(np.abs(np.array(got["mean"]) - here["mean"]) <= tol)
    # log_prob: delta method, SE of log(mean_s p_s) ~ sd_s(p_s) / (sqrt(S) mean_s p_s).
    draws = gaussian_fit.predictor.draws(x, 2000)
    comps = tf.exp(tfp_dgbn.predict.tfd.Normal(draws["loc"], draws["scale"]).log_prob(y)).numpy()
    rel_se = comps.std(axis=0) / (np.sqrt(2000) * comps.mean(axis=0))
    lp_here = gaussian_fit.predictor(x, 2000).log_prob(y).numpy()
    assert np.all(np.abs(np.array(got["log_prob"]) - lp_here) <= 5 * np.sqrt(2) * rel_se + 1e-5)


def test_sample_signature_draws_from_the_served_predictive(gaussian_fit):
    # 20,000 samples (one weight draw each) per feature against the predictive signature's mean and variance,
    # at 4 standard errors: SE(mean) = sd / sqrt(S); SE(variance) = sqrt((m4 - var^2) / S) from the samples.
    loaded = tf.saved_model.load(gaussian_fit.paths["savedmodel"])
    features = tf.constant([[-0.9], [0.0], [0.7]])
    S = 20000
    y = loaded.signatures["sample"](features=features, num_samples=tf.constant(S))["samples"].numpy()
    served = loaded.signatures["predictive"](features=features, num_samples=tf.constant(4096))
    mean, var = served["mean"].numpy(), served["stddev"].numpy() ** 2
    assert np.all(np.abs(y.mean(0) - mean) < 4 * np.sqrt(var / S)), (y.mean(0), mean)
    m4 = ((y - y.mean(0)) ** 4).mean(0)
    assert np.all(np.abs(y.var(0) - var) < 4 * np.sqrt((m4 - y.var(0) ** 2) / S)), (y.var(0), var)


def test_export_signatures_validate_their_inputs(gaussian_fit):
    loaded = tf.saved_model.load(gaussian_fit.paths["savedmodel"])
    sig = loaded.signatures["predictive"]
    out = sig(features=tf.constant([[0.1], [0.2]]), num_samples=tf.constant(8))
    assert out["loc"].shape == (8, 2) and out["mean"].shape == (2,)
    # The served moments are those of the equal mixture of the served draws (TFP computes it).
    mix = tfd.MixtureSameFamily(tfd.Categorical(logits=tf.zeros([2, 8])),
                                tfd.Normal(tf.transpose(out["loc"]), tf.transpose(out["scale"])))
    np.testing.assert_allclose(out["mean"], mix.mean(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["stddev"], mix.stddev(), rtol=1e-4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="finite"):
        sig(features=tf.constant([[np.nan]]), num_samples=tf.constant(4))
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_samples"):
        sig(features=tf.constant([[0.1]]), num_samples=tf.constant(0))
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match=r"shape \[batch, 1\]"):
        sig(features=tf.constant([0.1, 0.2]), num_samples=tf.constant(4))  # rank 1
    with pytest.raises(tf.errors.InvalidArgumentError, match="1 columns"):
        sig(features=tf.constant([[0.1, 0.2]]), num_samples=tf.constant(4))
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a float tensor"):
        sig(features=tf.constant([[1]]), num_samples=tf.constant(4))
    samples = loaded.signatures["sample"](features=tf.constant([[0.1]] * 3), num_samples=tf.constant(5))
    assert samples["samples"].shape == (5, 3)
    predictor = tfp_dgbn.load(gaussian_fit.paths["savedmodel"])
    with pytest.raises(ValueError, match="row 1, column 0"):
        predictor([[0.1], [np.inf]])
    with pytest.raises(ValueError, match="num_samples"):
        predictor([[0.1]], num_samples=0)
    meta = predictor.metadata
    assert meta["family"] == "normal" and meta["feature_ranges"] == [[-1.0, 1.0]]
    assert meta["training_config"]["n_train"] == 2000 and meta["package_version"] == tfp_dgbn.__version__


def test_saved_model_cli_shows_and_runs_the_signatures(gaussian_fit):
    cli = os.path.join(os.path.dirname(PYTHON), "saved_model_cli")
    path = gaussian_fit.paths["savedmodel"]
    show = subprocess.run([cli, "show", "--dir", path, "--all"], capture_output=True, text=True, check=True)
    for name in ("predictive", "sample", "serving_default", "epistemic_variance", "num_samples"):
        assert name in show.stdout
    run = subprocess.run([cli, "run", "--dir", path, "--tag_set", "serve", "--signature_def", "predictive",
                          "--input_exprs", "features=[[0.0],[0.5]];num_samples=16"],
                         capture_output=True, text=True, check=True)
    assert "stddev" in run.stdout and "loc" in run.stdout


def _start_tensorboard(logdir, timeout=90):
    """TensorBoard on a port the OS picks (``--port 0``: no bind-then-close race); (process, base URL)."""
    import re
    import threading

    tb = os.path.join(os.path.dirname(PYTHON), "tensorboard")
    proc = subprocess.Popen([tb, "--logdir", logdir, "--host", "127.0.0.1", "--port", "0", "--load_fast", "false"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    found = []

    def read():  # TensorBoard says where it serves on stderr; keep draining it afterwards
        for line in proc.stderr:
            match = re.search(r"TensorBoard \S+ at (http://\S+?)/? \(Press", line)
            if match and not found:
                found.append(match.group(1))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.time() + timeout
    while not found and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    if not found:
        proc.kill()
        raise AssertionError("TensorBoard did not say where it serves")
    return proc, found[0]


def _get_json(url, timeout=60):
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return json.loads(r.read())
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


def test_tensorboard_serves_the_scalars_histograms_and_images(gaussian_fit):
    proc, url = _start_tensorboard(gaussian_fit.paths["logdir"])
    try:
        base = f"{url}/data/plugin"
        # TensorBoard loads event files in the background: poll until they appear.
        deadline = time.time() + 90
        while True:
            scalars = _get_json(base + "/scalars/tags")
            images = _get_json(base + "/images/tags")
            if "train" in scalars and any(images.values()) or time.time() > deadline:
                break
            time.sleep(1)
        for tag in ("epoch_loss", "epoch_nll", "epoch_kl", "epoch_kl_raw", "epoch_kl_weight"):
            assert tag in scalars["train"] and tag in scalars["validation"]
        assert "predicted_vs_true" in images["train"]
        hist = _get_json(base + "/histograms/tags")
        assert any(t.startswith("posterior_stddev/") for t in hist["train"])
        series = _get_json(base + "/scalars/scalars?run=train&tag=epoch_kl_weight")
        assert [round(v[2], 6) for v in series] == [round(w, 6) for w in gaussian_fit.history["kl_weight"]]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
