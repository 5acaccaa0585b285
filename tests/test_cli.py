"""The dgbn command: a short real run, and user errors as one line with exit code 2."""
import json
import subprocess

import pytest

from conftest import PYTHON, REPO

DGBN = [PYTHON, "-m", "tfp_dgbn.cli"]


def _run(args, **kw):
    return subprocess.run(DGBN + args, capture_output=True, text=True, cwd=REPO, timeout=600, **kw)


@pytest.mark.parametrize("args,match", [
    (["fit", "toy-gaussian", "--kl-schedule", "warp:speed=9"], "unknown KL schedule 'warp'"),
    (["fit", "toy-gaussian", "--kl-schedule", "step:w1=-2"], "w1"),
    (["fit", "toy-gaussian", "--n-train", "0"], "N_train must be a positive integer, got 0"),
    (["fit", "toy-gaussian", "--epochs", "-3"], "epochs"),
    (["predict", "--model", "/nonexistent/model", "--features", "0.1"], "no SavedModel"),
    (["fit", "rings", "--epochs", "0"], "epochs must be a positive integer, got 0"),
    (["fit", "toy-gaussian", "--data", "x.npz"], "--data and --source are for 'dgbn fit rings'"),
    (["fit", "rings", "--source", "/nonexistent/train-*.tfrecord"], "no files match '/nonexistent/train-*.tfrecord'"),
    (["fit", "rings", "--source", "/nonexistent/dir"], "data source '/nonexistent/dir' does not exist"),
    (["fit", "toy-gaussian", "--strategy", "multiworker"], "needs the TF_CONFIG environment variable"),
    (["simulate", "--n", "100", "--shards", "0", "--out", "/tmp/dgbn-shards"], "shards must be an integer in [1, 80]"),
    (["simulate", "--n", "2", "--out", "/tmp/x.npz"], "n must be an integer >= 3"),
    (["simulate", "--n", "30", "--out", "/tmp/x.txt"], "output path must end in .npz"),
    (["generate", "--model", "/nonexistent/model", "--features", "0", "0", "7", "1", "0", "0", "--out", "/tmp/g.png"],
     "no SavedModel"),
])
def test_user_errors_exit_2_with_one_line(args, match):
    out = _run(args)
    assert out.returncode == 2
    assert match in out.stderr
    assert "Traceback" not in out.stderr
    assert len([l for l in out.stderr.splitlines() if l.startswith("dgbn: error")]) == 1


def test_schedules_are_listed_with_their_parameters():
    out = _run(["schedules"])
    assert out.returncode == 0
    for name in ("constant", "linear", "step:w0=", "cyclical", "adaptive:target="):
        assert name in out.stdout


@pytest.mark.slow
def test_fit_then_predict_from_the_command_line(tmp_path):
    out = _run(["fit", "toy-gaussian", "--epochs", "3", "--n-train", "200", "--kl-schedule",
                "linear:start=0,end=1,epochs=2", "--logdir", str(tmp_path / "logs"),
                "--out", str(tmp_path / "model"), "--quiet"])
    assert out.returncode == 0, out.stderr[-2000:]
    assert "held-out NLL" in out.stdout and "tensorboard --logdir" in out.stdout
    with open(tmp_path / "logs" / "metrics.json") as f:
        saved = json.load(f)
    assert saved["config"]["kl_schedule"] == "linear:start=0,end=1,epochs=2"
    assert saved["metrics"]["final_kl_weight"] == 1.0  # epoch 2 of the warm-up
    assert (tmp_path / "logs" / "checkpoint.keras").stat().st_size > 0
    pred = _run(["predict", "--model", str(tmp_path / "model"), "--features", "0.1", "0.5"])
    assert pred.returncode == 0, pred.stderr[-2000:]
    rows = json.loads(pred.stdout)
    assert len(rows) == 2 and rows[0]["stddev"] > 0 and len(rows[0]["interval_0.9"]) == 2
    bad = _run(["predict", "--model", str(tmp_path / "model"), "--features", "nan"])
    assert bad.returncode == 2 and "finite" in bad.stderr
