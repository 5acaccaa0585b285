"""Reliability: kill-and-resume, interrupted exports, the NaN guard, atomic artifacts."""
import glob
import json
import os
import signal
import subprocess
import textwrap
import time

import numpy as np
import pytest

import tfp_dgbn
from conftest import PYTHON, REPO


def _scalars(logdir, tag):
    """(step, value) of every event of a scalar tag in all event files under logdir/train."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    import tensorflow as tf

    out = []
    for path in sorted(glob.glob(os.path.join(logdir, "train", "events.out.tfevents.*"))):
        for event in EventFileLoader(path).Load():
            for value in event.summary.value:
                if value.tag == tag:
                    out.append((event.step, float(tf.make_ndarray(value.tensor))))
    return out


# Runs `dgbn ARGS` in this process, SIGKILLs itself at a chosen (epoch, batch) (1-based,
# at that training batch's end: a kill injected at a known point, not after a guessed
# sleep), and appends every simulated batch's (pipeline, step, batch size) to a log file.
KILL_AT = textwrap.dedent("""
    import json, os, signal, sys
    from tfp_dgbn import cli
    from tfp_dgbn.dataset.sources import SimulatedSource
    from tfp_dgbn.fit.resume import NaNGuard
    kill_at, log, argv = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3:]
    guard_batch_end, source_batch = NaNGuard.on_train_batch_end, SimulatedSource.batch

    def on_train_batch_end(self, batch, logs=None):
        guard_batch_end(self, batch, logs)
        if kill_at and [self._epoch + 1, batch + 1] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def batch(self, pipeline, step, batch_size):
        with open(log, "a") as f:
            f.write(f"{int(pipeline)} {int(step)} {int(batch_size)}\\n")
        return source_batch(self, pipeline, step, batch_size)

    NaNGuard.on_train_batch_end, SimulatedSource.batch = on_train_batch_end, batch
    sys.exit(cli.main(argv))
""")


def _dgbn(args, kill_at=None, log=os.devnull):
    """`dgbn ARGS` in a subprocess (see KILL_AT): the CompletedProcess."""
    return subprocess.run([PYTHON, "-c", KILL_AT, json.dumps(kill_at), log] + args, cwd=REPO, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_sigkill_mid_training_then_same_command_resumes(tmp_path):
    logdir, out = str(tmp_path / "logs"), str(tmp_path / "export")
    # 125 batches per epoch; toy runs checkpoint every 10 epochs. The adaptive schedule
    # raises the weight by 0.05 per epoch from 0.1 (the KL stays above the set point), so
    # its state is visible in kl_weight: a resume that lost it would restart at 0.1.
    args = ["fit", "toy-gaussian", "--epochs", "20", "--n-train", "2000", "--batch-size", "16",
            "--kl-schedule", "adaptive:target=0.05,initial=0.1", "--plot-every", "50",
            "--logdir", logdir, "--out", out, "--quiet"]
    first = _dgbn(args, kill_at=[11, 60])  # mid-epoch 11, after the checkpoint of epoch 10
    assert first.returncode == -signal.SIGKILL, first.stderr[-3000:]
    state = os.path.join(logdir, "resume", "state.json")
    assert json.load(open(state))["epochs_done"] == 10
    assert not os.path.exists(out)  # killed before any export

    second = _dgbn(args)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming from" in second.stdout and "after epoch 10 of 20" in second.stdout
    # Every epoch's summaries exactly once over both runs' event files, 0..19.
    steps = [s for s, _ in _scalars(logdir, "epoch_loss")]
    assert sorted(steps) == list(range(20)), steps
    weights = dict(_scalars(logdir, "epoch_kl_weight"))
    assert weights[9] > 0.5  # 0.1 + 9 * 0.05 = 0.55 before the kill
    # Continued, not restarted (tolerance: the weight is logged as float32 means over batches).
    assert weights[10] == pytest.approx(min(weights[9] + 0.05, 1.0), abs=1e-4)
    assert not os.path.exists(os.path.join(logdir, "resume"))  # a finished run leaves none
    assert tfp_dgbn.load(out)([[0.2]], 8).batch_shape == (1,)


@pytest.mark.slow
def test_ring_job_killed_mid_epoch_resumes_and_continues_the_simulated_stream(tmp_path):
    logdir, out = str(tmp_path / "logs"), str(tmp_path / "export")
    # 256 fresh rings per epoch in batches of 32: 8 steps per epoch; a checkpoint every epoch.
    args = ["fit", "rings", "--source", "simulate", "--epochs", "3", "--n-train", "256", "--batch-size", "32",
            "--n-val", "64", "--n-test", "64", "--num-samples", "4", "--embedding", "8", "4",
            "--logdir", logdir, "--out", out, "--quiet"]
    first_log, second_log = str(tmp_path / "first.txt"), str(tmp_path / "second.txt")
    first = _dgbn(args, kill_at=[2, 3], log=first_log)
    assert first.returncode == -signal.SIGKILL, first.stderr[-3000:]
    assert json.load(open(os.path.join(logdir, "resume", "state.json")))["epochs_done"] == 1
    assert not os.path.exists(out)

    second = _dgbn(args, log=second_log)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "after epoch 1 of 3" in second.stdout

    def training_steps(log):  # batches of 32 (the job also simulates 1,000-ring batches for its baseline)
        return sorted(int(step) for _, step, size in map(str.split, open(log)) if size == "32")

    first_steps, second_steps = training_steps(first_log), training_steps(second_log)
    assert min(first_steps) == 0 and max(first_steps) >= 8 + 2  # it was in epoch 2 when killed
    # The resumed run starts the stream at epoch 2's first batch (step 8), not at 0 again,
    # and then takes every later batch in turn.
    assert second_steps[:16] == list(range(8, 24)), second_steps[:20]
    assert tfp_dgbn.load(out) is not None and os.path.exists(os.path.join(logdir, "metrics.json"))


def test_killed_export_leaves_the_previous_export_loadable(tmp_path):
    from tfp_dgbn.export import export_predictive
    from tfp_dgbn.model.heads import NormalHead
    from tfp_dgbn.model.mlp import bayesian_mlp

    path = str(tmp_path / "export")
    export_predictive(bayesian_mlp(1, NormalHead(), 100, hidden=(4,), seed=1), path, {"marker": "first"})
    script = textwrap.dedent(f"""
        import os, time, tensorflow as tf
        import tfp_dgbn
        from tfp_dgbn.export import export_predictive
        from tfp_dgbn.model.heads import NormalHead
        from tfp_dgbn.model.mlp import bayesian_mlp
        save = tf.saved_model.save
        def slow_save(*args, **kwargs):
            save(*args, **kwargs)  # half-way: the new SavedModel exists only in the temporary directory
            open({str(tmp_path / 'ready')!r}, 'w').close()
            time.sleep(60)
        tf.saved_model.save = slow_save
        export_predictive(bayesian_mlp(1, NormalHead(), 100, hidden=(4,), seed=2), {path!r}, {{"marker": "second"}})
    """)
    proc = subprocess.Popen([PYTHON, "-c", script], cwd=REPO)
    deadline = time.time() + 120
    while not os.path.exists(tmp_path / "ready") and time.time() < deadline:
        time.sleep(0.1)
    assert os.path.exists(tmp_path / "ready")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    predictor = tfp_dgbn.load(path)
    assert predictor.metadata["marker"] == "first"
    assert np.isfinite(predictor([[0.1]], 4).log_prob([0.0]).numpy()).all()


def test_nan_loss_stops_with_epoch_and_batch_and_keeps_previous_artifacts(tmp_path, monkeypatch):
    from tfp_dgbn.fit.resume import NonFiniteLoss
    from tfp_dgbn.tasks.runner import fit
    from tfp_dgbn.simulate.toys import ToyGaussian

    logdir, out = str(tmp_path / "logs"), str(tmp_path / "export")
    fit("toy-gaussian", epochs=3, logdir=logdir, out=out, verbose=0)
    before = {p: open(p, "rb").read() for p in [os.path.join(out, "saved_model.pb"),
                                                 os.path.join(logdir, "checkpoint.keras")]}
    clean_sample = ToyGaussian.sample

    def poisoned(self, n, seed):
        x, y = clean_sample(self, n, seed)
        if n == 2000:  # the training split only
            y[:] = np.nan  # every batch is bad: the first one trips the guard
        return x, y

    monkeypatch.setattr(ToyGaussian, "sample", poisoned)
    with pytest.raises(NonFiniteLoss) as err:
        fit("toy-gaussian", epochs=3, logdir=logdir, out=out, verbose=0)
    assert (err.value.epoch, err.value.batch) == (1, 1)
    assert "loss became nan at epoch 1, batch 1" in str(err.value)
    for p, content in before.items():
        assert open(p, "rb").read() == content, p
    assert tfp_dgbn.load(out)([[0.0]], 4).batch_shape == (1,)


def test_cli_reports_divergence_in_one_line_with_code_3(tmp_path):
    run = subprocess.run([PYTHON, "-m", "tfp_dgbn.cli", "fit", "toy-gaussian", "--epochs", "3",
                          "--learning-rate", "1e8", "--logdir", str(tmp_path / "l"), "--out", str(tmp_path / "m"),
                          "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 3, run.stderr[-2000:]
    assert "training stopped: the loss became" in run.stderr and "at epoch 1, batch" in run.stderr
    assert "Traceback" not in run.stderr
    assert not os.path.exists(tmp_path / "m")


def test_resume_with_other_settings_is_refused(tmp_path):
    from tfp_dgbn.fit.resume import ResumeConflict
    from tfp_dgbn.tasks.runner import fit

    logdir = tmp_path / "logs"
    os.makedirs(logdir / "resume")
    (logdir / "resume" / "state.json").write_text(json.dumps({"epochs_done": 2, "config": {"epochs": 7}}))
    with pytest.raises(ResumeConflict, match="other settings"):
        fit("toy-gaussian", epochs=3, logdir=str(logdir), out=str(tmp_path / "m"), verbose=0)


def test_loading_never_unpickles(tmp_path):
    from tfp_dgbn.dataset.ring_files import load_rings

    # A ring file whose metadata is a pickled object array: refused, nothing executed.
    bad = str(tmp_path / "pickled.npz")
    np.savez(bad, metadata=np.array([{"format": "tfp_dgbn.rings/1"}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle|Object arrays"):
        load_rings(bad)


def _resumable_setup(tmp_path, **settings):
    """A tiny compiled Bayesian MLP, its KL annealing, settings and data for `resumable_fit`."""
    import tensorflow as tf

    from tfp_dgbn.fit.callbacks import KLAnnealing
    from tfp_dgbn.fit.distribute import build_and_compile
    from tfp_dgbn.fit.schedules import from_spec
    from tfp_dgbn.model.heads import NormalHead
    from tfp_dgbn.model.mlp import bayesian_mlp
    from tfp_dgbn.tasks import make_settings

    s = make_settings("toy-gaussian", logdir=str(tmp_path / "logs"), epochs=4, batch_size=32, **settings)
    steps = 8
    model = build_and_compile(tf.distribute.get_strategy(), lambda: bayesian_mlp(1, NormalHead(), 256, hidden=(8,), seed=3),
                              s.learning_rate, s.epochs * steps, alpha=0.1)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (256, 1)).astype("float32")
    y = (x[:, 0] + 0.1 * rng.standard_normal(256)).astype("float32")

    def data(initial_epoch):
        return tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(32)

    return model, KLAnnealing(from_spec(s.kl_schedule)), s, data, steps


def test_resume_restores_adam_moments_step_count_and_learning_rate(tmp_path):
    from tfp_dgbn.fit.resume import ResumeCheckpoint, resumable_fit
    from tfp_dgbn.tfk import keras

    class CrashAfterSecondCheckpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):  # runs after the checkpoint callback
            if epoch == 1:
                opt = self.model.optimizer
                self.saved = [v.numpy().copy() for v in opt.variables]
                self.lr = float(opt.learning_rate)
                raise RuntimeError("crash")

    model, annealing, s, data, steps = _resumable_setup(tmp_path)
    crash = CrashAfterSecondCheckpoint()
    with pytest.raises(RuntimeError, match="crash"):
        resumable_fit(model, annealing, s, data, None, s.epochs, steps, [crash], verbose=0, progress=lambda m: None)
    assert len(crash.saved) > 1 + len(model.trainable_variables)  # iterations + two Adam slots per variable
    assert int(crash.saved[0]) == 2 * steps

    # Same settings: every optimizer variable equal (exact), and the cosine rate at the same step.
    fresh, annealing, s, data, _ = _resumable_setup(tmp_path)
    assert ResumeCheckpoint(s.logdir, annealing, s.identity(), adjustments=s.adjustments()).restore(fresh) == 2
    restored = [v.numpy() for v in fresh.optimizer.variables]
    assert len(restored) == len(crash.saved)
    for before, after in zip(crash.saved, restored):
        np.testing.assert_array_equal(before, after)
    assert float(fresh.optimizer.learning_rate) == pytest.approx(crash.lr, rel=1e-6)

    # A smaller learning rate (the advice after a divergence) is accepted and said; the
    # schedule continues from the restored step at the new peak rate (cosine: rate scales).
    messages = []
    smaller, annealing, s2, _, _ = _resumable_setup(tmp_path, learning_rate=s.learning_rate / 10)
    assert ResumeCheckpoint(s2.logdir, annealing, s2.identity(),
                            adjustments=s2.adjustments()).restore(smaller, progress=messages.append) == 2
    assert int(smaller.optimizer.iterations) == 2 * steps
    assert any("learning_rate" in m and "was" in m for m in messages), messages

    class FirstRate(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if not hasattr(self, "rate"):
                self.rate, self.step = float(self.model.optimizer.learning_rate), int(self.model.optimizer.iterations)

    # The rest of the run: the first step's rate is the new schedule at the restored step.
    first = FirstRate()
    resumable_fit(smaller, annealing, s2, data, None, s2.epochs, steps, [first], verbose=0, progress=lambda m: None)
    assert first.step == 2 * steps + 1
    schedule = keras.optimizers.schedules.CosineDecay(s2.learning_rate, s2.epochs * steps, alpha=0.1)
    assert first.rate == pytest.approx(float(schedule(2 * steps)), rel=1e-5)
    # ... where the crashed run's last step had used the old schedule one step earlier.
    old = keras.optimizers.schedules.CosineDecay(s.learning_rate, s.epochs * steps, alpha=0.1)
    assert crash.lr == pytest.approx(float(old(2 * steps - 1)), rel=1e-5)


def test_resume_refuses_a_checkpoint_without_the_optimizer_state(tmp_path):
    from tfp_dgbn.fit.resume import ResumeCheckpoint, ResumeConflict
    from tfp_dgbn.model.heads import NormalHead
    from tfp_dgbn.model.mlp import bayesian_mlp

    model, annealing, s, _, _ = _resumable_setup(tmp_path)
    # The weights alone (an uncompiled twin): before, expect_partial() let the run go on
    # with a fresh Adam whose moments restarted from zero.
    path = tmp_path / "logs" / "resume"
    bayesian_mlp(1, NormalHead(), 256, hidden=(8,), seed=3).save_weights(str(path / "weights" / "ckpt"),
                                                                       save_format="tf")
    (path / "state.json").write_text(json.dumps({"epochs_done": 2, "schedule": annealing.schedule.get_state(),
                                                 "kl_history": [], "config": s.identity()}))
    with pytest.raises(ResumeConflict, match="does not hold every variable"):
        ResumeCheckpoint(s.logdir, annealing, s.identity()).restore(model)


def test_nan_after_a_good_checkpoint_keeps_it_and_a_smaller_rate_resumes_from_it(tmp_path):
    import tensorflow as tf

    from tfp_dgbn.fit.resume import NonFiniteLoss, resumable_fit

    model, annealing, s, clean, steps = _resumable_setup(tmp_path)
    state = tmp_path / "logs" / "resume" / "state.json"

    def poisoned(initial_epoch):  # NaN targets from the third epoch on
        def batch(i, xy):
            x, y = xy
            return x, tf.where(i >= 2 * steps, tf.fill(tf.shape(y), float("nan")), y)

        index = tf.data.Dataset.range(initial_epoch * steps, 10 ** 9)
        return tf.data.Dataset.zip((index, clean(initial_epoch))).map(batch)

    with pytest.raises(NonFiniteLoss) as err:
        resumable_fit(model, annealing, s, poisoned, None, s.epochs, steps, [], verbose=0, every=1,
                      progress=lambda m: None)
    assert (err.value.epoch, err.value.batch) == (3, 1)
    assert json.loads(state.read_text())["epochs_done"] == 2  # the good checkpoint survived the NaN

    messages = []
    model, annealing, s2, clean, steps = _resumable_setup(tmp_path, learning_rate=s.learning_rate / 10)
    history = resumable_fit(model, annealing, s2, clean, None, s2.epochs, steps, [], verbose=0, every=1,
                            progress=messages.append)
    assert any("after epoch 2 of 4" in m for m in messages), messages
    assert len(history["loss"]) == 2 and np.isfinite(history["loss"]).all()  # epochs 3 and 4 only
    assert int(model.optimizer.iterations) == 4 * steps
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert not state.exists()  # finished: the checkpoint is cleared
