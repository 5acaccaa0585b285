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


@pytest.mark.slow
def test_sigkill_mid_training_then_same_command_resumes(tmp_path):
    logdir, out = str(tmp_path / "logs"), str(tmp_path / "export")
    # 625 batches per epoch (~1.5 s); toy runs checkpoint every 10 epochs. The adaptive
    # schedule raises the weight by 0.05 per epoch from 0.1 (the KL stays above the set point),
    # so its state is visible in kl_weight: a resume that lost it would restart at 0.1.
    cmd = [PYTHON, "-m", "tfp_dgbn.cli", "fit", "toy-gaussian", "--epochs", "20", "--n-train", "10000",
           "--batch-size", "16", "--kl-schedule", "adaptive:target=0.05,initial=0.1", "--plot-every", "50",
           "--logdir", logdir, "--out", out, "--quiet"]
    first = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    state = os.path.join(logdir, "resume", "state.json")
    deadline = time.time() + 300
    while not os.path.exists(state) and time.time() < deadline and first.poll() is None:
        time.sleep(0.2)
    assert os.path.exists(state), first.communicate()[0][-3000:]
    time.sleep(0.7)  # into epoch 11
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert json.load(open(state))["epochs_done"] == 10
    assert not os.path.exists(out)  # killed before any export

    second = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
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
