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
    (["fit", "toy-gaussian", "--n-train", "0"], "n_train must be a positive integer, got 0"),
    (["fit", "toy-gaussian", "--epochs", "-3"], "epochs"),
    (["predict", "--model", "/nonexistent/model", "--features", "0.1"], "no SavedModel"),
    (["fit", "rings", "--epochs", "0"], "epochs must be a positive integer, got 0"),
    (["fit", "toy-gaussian", "--data", "x.npz"], "--data does not apply to 'toy-gaussian'"),
    (["fit", "rings", "--source", "/nonexistent/train-*.tfrecord"], "no files match '/nonexistent/train-*.tfrecord'"),
    (["fit", "rings", "--source", "/nonexistent/dir"], "data source '/nonexistent/dir' does not exist"),
    (["fit", "toy-gaussian", "--strategy", "multiworker"], "needs the TF_CONFIG environment variable"),
    (["simulate", "--n", "100", "--shards", "0", "--out", "/tmp/dgbn-shards"], "shards must be an integer in [1, 80]"),
    (["simulate", "--n", "2", "--out", "/tmp/x.npz"], "n must be an integer >= 3"),
    (["simulate", "--n", "30", "--out", "/tmp/x.txt"], "output path must end in .npz"),
    (["generate", "--model", "/nonexistent/model", "--features", "0", "0", "7", "1", "0", "0", "--out", "/tmp/g.png"],
     "no SavedModel"),
])
def test_user_errors_exit_2_with_one_line(args, match, capsys):
    # in process (each a fresh `python -m` costs ~10 s of imports); the process's own exit status and
    # stderr are checked once below
    from tfp_dgbn.cli import main

    assert main(args) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err
    assert len([l for l in err.splitlines() if l.startswith("dgbn: error")]) == 1


def test_a_user_error_ends_the_process_with_status_2_and_one_line():
    out = _run(["fit", "rings", "--epochs", "0"])
    assert out.returncode == 2
    assert "epochs must be a positive integer, got 0" in out.stderr and "Traceback" not in out.stderr
    assert [l for l in out.stderr.splitlines() if l.startswith("dgbn: error")] == [
        "dgbn: error: epochs must be a positive integer, got 0"]


@pytest.mark.parametrize("args,option", [
    (["fit", "rings", "--head", "poisson"], "--head"),
    (["fit", "rings", "--law=negbin"], "--law"),
    (["fit", "toy-gaussian", "--law", "negbin"], "--law"),
    (["fit", "toy-discrete", "--source", "simulate"], "--source"),
    (["fit", "table", "--data", "t.csv", "--target", "y", "--n-train", "5"], "--n-train"),
    (["fit", "ring-count", "--fixed-epoch"], "--fixed-epoch"),
])
def test_an_option_of_another_task_is_refused_in_one_line(args, option, capsys):
    from tfp_dgbn.cli import main

    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"dgbn: error: {option} does not apply to '{args[1]}' (dgbn fit {args[1]} --help lists its options)"]


def test_an_unknown_option_is_refused_in_one_line(capsys):
    from tfp_dgbn.cli import main

    assert main(["fit", "rings", "--colour", "red"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["dgbn: error: unrecognized arguments: --colour red"]


def test_each_task_help_lists_exactly_its_settings_with_their_defaults(capsys):
    import dataclasses
    import re

    from tfp_dgbn.cli import main
    from tfp_dgbn.tasks import TASKS

    every = {f.name for t in TASKS.values() for f in dataclasses.fields(t.settings)}
    for name, task in TASKS.items():
        with pytest.raises(SystemExit) as done:
            main(["fit", name, "--help"])
        assert done.value.code == 0
        text = capsys.readouterr().out
        flat = re.sub(r"\s+", " ", text)
        options = {f.name: f for f in dataclasses.fields(task.settings) if f.metadata.get("cli", True)}
        listed = set(re.findall(r"^  --([a-z][a-z-]*)", text, re.M)) - {"help", "quiet", "cpu-devices"}
        assert listed == {n.replace("_", "-") for n in options}, name
        assert not {n.replace("_", "-") for n in every - set(options)} & listed
        for field in options.values():
            default = field.default
            if default is None or isinstance(default, bool):
                continue
            shown = " ".join(map(str, default)) if isinstance(default, tuple) else str(default)
            assert f"(default: {shown})" in flat, (name, field.name)
    # the defaults differ where the tasks differ
    assert TASKS["rings"].settings.__dataclass_fields__["epochs"].default == 8
    assert TASKS["toy-gaussian"].settings.__dataclass_fields__["epochs"].default == 300


def test_help_and_argument_errors_answer_without_loading_tensorflow():
    code = ("import sys\nfrom tfp_dgbn.cli import main\n"
            "for argv in (['--help'], ['fit', 'rings', '--help'], ['fit', 'table', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "assert main(['fit', 'rings', '--head', 'x']) == 2\n"
            "print('loaded' if 'tensorflow' in sys.modules else 'not loaded')")
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "not loaded"


def test_a_command_that_loads_tensorflow_is_quiet_unless_verbose():
    args = ["predict", "--model", "/nonexistent/model", "--features", "0.1"]
    quiet = _run(args)
    assert quiet.returncode == 2
    assert quiet.stderr.strip().splitlines() == ["dgbn: error: no SavedModel at '/nonexistent/model'"]
    verbose = _run(["--verbose"] + args)
    assert verbose.returncode == 2
    assert verbose.stderr.strip().splitlines()[-1] == "dgbn: error: no SavedModel at '/nonexistent/model'"


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
