"""Training under tf.distribute: the loss counts the KL once, replicas draw independent weights.

Mirrored tests use the two logical CPU devices made in conftest; the
multi-worker test starts two worker processes on localhost ports itself.
"""
import json
import os
import socket
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf

from tfp_dgbn.fit.distribute import configure_cpu_devices, make_strategy
from tfp_dgbn.model.heads import NormalHead
from tfp_dgbn.model.mlp import bayesian_mlp
from tfp_dgbn.tfk import keras

from conftest import PYTHON, REPO


def _mlp(init_scale, seed=3, num_train=100):
    return bayesian_mlp(1, NormalHead(), num_train, hidden=(8,), seed=seed, init_scale=init_scale)


def _split(strategy, x, y):
    """The global batch (x, y) split over the replicas in order (PerReplica values).

    Made eagerly: a distributed iterator created inside a tf.function can
    deadlock the two-core machine's small thread pools.
    """
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(len(x))
    return next(iter(strategy.experimental_distribute_dataset(ds)))


def _per_replica(strategy, fn, x, y):
    """Run fn(x_local, y_local) on every replica, the global batch split in order."""
    return strategy.run(fn, args=_split(strategy, x, y))


def test_mirrored_uses_two_devices():
    assert make_strategy("mirrored").num_replicas_in_sync == 2


def test_replica_objective_counts_kl_once_and_averages_over_global_batch():
    """Sum over replicas of each replica's objective == global mean NLL + KL (exact arithmetic)."""
    strategy = make_strategy("mirrored")
    nll = np.arange(8, dtype="float32")
    kl = 0.75

    def fn(x, _):
        from tfp_dgbn.model.bayesian_model import BayesianModel
        return BayesianModel.replica_objective(x, tf.constant(kl))

    out = _per_replica(strategy, fn, nll, nll)
    total = strategy.reduce("SUM", out, axis=None).numpy()
    np.testing.assert_allclose(total, nll.mean() + kl, rtol=1e-6)
    # and without a strategy it is the plain per-example ELBO
    from tfp_dgbn.model.bayesian_model import BayesianModel
    np.testing.assert_allclose(BayesianModel.replica_objective(tf.constant(nll), tf.constant(kl)).numpy(),
                               nll.mean() + kl, rtol=1e-6)


def test_per_example_loss_matches_single_device_in_expectation():
    """Mean over weight draws of the summed replica objectives vs the single-device loss.

    Both are unbiased Monte-Carlo estimates of the same negative ELBO; with
    K = 200 draws each, their difference must be within 4 standard errors.
    """
    x = np.linspace(-1, 1, 64, dtype="float32")[:, None]
    y = np.sin(3 * x[:, 0]).astype("float32")
    strategy = make_strategy("mirrored")
    # N_train = 5 makes the KL per example large next to the loss's noise.
    with strategy.scope():
        dist_model = _mlp(init_scale=0.1, num_train=5)
    single = _mlp(init_scale=0.1, num_train=5)
    single.set_weights(dist_model.get_weights())

    def objective(model):
        def fn(xb, yb):
            nll, kl, _ = model._terms(xb, yb, training=True)
            return model.replica_objective(nll, kl)
        return fn

    batch = _split(strategy, x, y)

    @tf.function
    def distributed_loss():
        return strategy.reduce("SUM", strategy.run(objective(dist_model), args=batch), axis=None)

    @tf.function
    def single_loss():
        return objective(single)(tf.constant(x), tf.constant(y))

    a = np.array([distributed_loss().numpy() for _ in range(200)])
    b = np.array([single_loss().numpy() for _ in range(200)])
    se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert abs(a.mean() - b.mean()) < 4 * se, (a.mean(), b.mean(), se)
    # The test can tell: a KL counted once per replica would add a whole KL term.
    single(x)
    assert float(tf.add_n(single.losses)) > 8 * se


def test_one_sgd_step_matches_single_device():
    """With tiny weight noise, one mirrored SGD step moves every variable as the single-device step.

    A KL counted per replica would double the KL gradient on the posterior
    scales, which dominates it at a 1e-5 stddev; the tolerance (1e-3 of the
    largest step) is far below that and far above the float32 and noise error.
    """
    x = np.linspace(-1, 1, 64, dtype="float32")[:, None]
    y = np.sin(3 * x[:, 0]).astype("float32")
    strategy = make_strategy("mirrored")
    with strategy.scope():
        dist_model = _mlp(init_scale=1e-5)
        dist_model.compile(optimizer=keras.optimizers.SGD(1e-3))
    single = _mlp(init_scale=1e-5)
    single.compile(optimizer=keras.optimizers.SGD(1e-3))
    single.set_weights(dist_model.get_weights())
    def trainable(model):
        return [v.numpy() for v in model.trainable_variables]

    start = trainable(single)
    dist_model.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False)
    single.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False)
    steps_d = [a - s for a, s in zip(trainable(dist_model), start)]
    steps_s = [a - s for a, s in zip(trainable(single), start)]
    largest = max(np.abs(s).max() for s in steps_s)
    assert largest > 0
    for d, s in zip(steps_d, steps_s):
        np.testing.assert_allclose(d, s, atol=1e-3 * largest)


def test_replicas_draw_independent_weights():
    """Two replicas, the same 400 inputs: their outputs (one weight draw each) are uncorrelated.

    Identical draws would give correlation 1; independent ones |r| < 4/sqrt(400).
    """
    strategy = make_strategy("mirrored")
    with strategy.scope():
        model = _mlp(init_scale=0.5)
    x = np.full((400, 1), 0.3, "float32")

    def fn(xb, _):
        return model.params_model(xb, training=True)[:, 0]  # the loc of each example

    out = _per_replica(strategy, fn, np.concatenate([x, x]), np.zeros(800, "float32"))
    a, b = (v.numpy().ravel() for v in strategy.experimental_local_results(out))
    r = np.corrcoef(a, b)[0, 1]
    assert a.std() > 0.05 and abs(r) < 4 / np.sqrt(len(a)), r


def test_fit_toy_mirrored_two_devices(tmp_path):
    """A short mirrored run trains, logs finite losses and exports a loadable model."""
    import tfp_dgbn
    from tfp_dgbn.tasks.runner import fit

    result = fit("toy-gaussian", n_train=256, n_val=64, n_test=200, epochs=3, batch_size=64,
                               strategy="mirrored", logdir=str(tmp_path / "logs"), out=str(tmp_path / "export"),
                               plot_every=100, num_samples=8, verbose=0)
    assert all(np.isfinite(result.history["loss"]))
    assert result.history["kl_weight"][-1] == 1.0
    loaded = tfp_dgbn.load(str(tmp_path / "export"))
    lp = loaded(np.array([[0.2]], "float32"), num_samples=8).log_prob(np.array([0.0], "float32"))
    assert np.isfinite(lp.numpy()).all()


def test_cpu_devices_cannot_change_after_start():
    with pytest.raises(ValueError, match="already runs with 2"):
        configure_cpu_devices(3)
    with pytest.raises(ValueError, match="positive integer"):
        configure_cpu_devices(0)


def test_multiworker_without_tf_config_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        make_strategy("multiworker")
    with pytest.raises(ValueError, match="unknown strategy 'ring'"):
        make_strategy("ring")


WORKER = r"""
import json, os, sys
import numpy as np
import tfp_dgbn
import tensorflow as tf
from tfp_dgbn.fit.distribute import make_strategy
from tfp_dgbn.tasks.runner import fit
from tfp_dgbn.model.heads import NormalHead
from tfp_dgbn.model.mlp import bayesian_mlp
from tfp_dgbn.tfk import keras

out, index = sys.argv[1], int(sys.argv[2])
keras.utils.set_random_seed(0)  # the same global seed on both workers
strategy = make_strategy("multiworker")
with strategy.scope():
    model = bayesian_mlp(1, NormalHead(), 100, hidden=(8,), seed=3, init_scale=0.5)
x = tf.fill([300, 1], 0.3)

@tf.function
def draw():
    def fn():
        ctx = tf.distribute.get_replica_context()
        return model.params_model(x, training=True)[:, 0], ctx.replica_id_in_sync_group
    return strategy.run(fn)

values, rid = draw()
np.savez(os.path.join(out, f"draws{index}.npz"), values=values.numpy(), replica=int(rid))
result = fit("toy-gaussian", n_train=256, n_val=64, n_test=200, epochs=2, batch_size=64,
                           strategy="multiworker", logdir=os.path.join(out, "logs"),
                           out=os.path.join(out, "export"), plot_every=100, num_samples=8, verbose=0)
print(json.dumps({"index": index, "loss": result.history["loss"], "metrics": bool(result.metrics)}))
"""


def _free_ports(n):
    """``n`` ports free a moment ago (another process may take one before the workers bind it)."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


BIND_FAILURE = ("address already in use", "could not start grpc server", "failed to add port")


def _run_workers(script, tmp_path, attempts=3, first_ports=None):
    """Start both workers on fresh ports (``first_ports`` on the first attempt): (outputs, attempts made).

    A port can be taken between `_free_ports` closing it and a worker binding it
    (TF's gRPC server refuses SO_REUSEPORT, so it cannot be held meanwhile): a worker
    that fails to bind stops the attempt, which is retried on new ports; any other
    failure fails the test at once.
    """
    for attempt in range(attempts):
        ports = first_ports if attempt == 0 and first_ports else _free_ports(2)
        cluster = {"worker": [f"localhost:{p}" for p in ports]}
        procs = []
        for i in range(2):
            env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
                       TF_CPP_MIN_LOG_LEVEL="2")
            procs.append(subprocess.Popen([PYTHON, str(script), str(tmp_path), str(i)], cwd=REPO, env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        try:
            deadline = time.time() + 300
            while time.time() < deadline and any(p.poll() is None for p in procs):
                if any(p.poll() not in (None, 0) for p in procs):  # one failed: the other would wait forever
                    break
                time.sleep(0.5)
            for p in procs:
                if p.poll() is None:
                    p.kill()
            results = [p.communicate() + (p.returncode,) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        failed = [(out, err) for out, err, rc in results if rc != 0]
        if failed and attempt + 1 < attempts and any(m in err.lower() for _, err in failed for m in BIND_FAILURE):
            continue
        assert not failed, failed[0][1][-3000:]
        return [json.loads(out.strip().splitlines()[-1]) for out, _, _ in results], attempt + 1
    raise AssertionError("unreachable")


def test_multiworker_two_processes(tmp_path):
    """Two workers on localhost train together; draws differ across workers; only the chief exports."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    # The first attempt meets a port that another process holds (the race, made certain):
    # the run must go on, on new ports, instead of failing or hanging.
    with socket.socket() as taken:
        taken.bind(("localhost", 0))
        taken.listen()
        outs, attempts = _run_workers(script, tmp_path, first_ports=[taken.getsockname()[1]] + _free_ports(1))
    assert attempts == 2
    assert [o["metrics"] for o in outs] == [True, False]  # the chief evaluates, the other does not
    assert outs[0]["loss"] == pytest.approx(outs[1]["loss"], rel=1e-5)  # one model, one synchronised history
    assert os.path.exists(tmp_path / "export" / "saved_model.pb")
    assert not any("workertemp" in name for _, dirs, _ in os.walk(tmp_path / "logs") for name in dirs)
    d0, d1 = (np.load(tmp_path / f"draws{i}.npz") for i in range(2))
    assert {int(d0["replica"]), int(d1["replica"])} == {0, 1}  # global replica ids
    # Same graph, same global seed: TFP's default sampler would repeat the draws (r = 1).
    r = np.corrcoef(d0["values"], d1["values"])[0, 1]
    assert abs(r) < 4 / np.sqrt(len(d0["values"])), r
