"""An export that fails midway leaves the previous export whole and loadable."""
import json
import os
import types

import numpy as np
import pytest
import tensorflow as tf

import tfp_dgbn
from tfp_dgbn.atomic import atomic_directory, atomic_file
from tfp_dgbn.export import export_predictive
from tfp_dgbn.model.heads import NormalHead
from tfp_dgbn.model.mlp import bayesian_mlp


def test_failed_export_keeps_the_previous_one(tmp_path, monkeypatch):
    target = str(tmp_path / "model")
    model = bayesian_mlp(1, NormalHead(), 100, hidden=(4,), seed=0)
    export_predictive(model, target)
    before = sorted(os.listdir(target))
    real_save = tf.saved_model.save

    def crash_after_writing(obj, path, **kw):
        real_save(obj, path, **kw)
        raise KeyboardInterrupt("killed during export")

    monkeypatch.setattr(tf.saved_model, "save", crash_after_writing)
    with pytest.raises(KeyboardInterrupt):
        export_predictive(model, target)
    assert sorted(os.listdir(target)) == before
    assert [p for p in os.listdir(tmp_path) if p != "model"] == []  # no temp dirs left behind
    dist = tfp_dgbn.load(target)(np.zeros((2, 1)), 4)
    assert dist.batch_shape == [2]


def test_atomic_file_and_directory(tmp_path):
    path = str(tmp_path / "f.txt")
    with atomic_file(path, "w") as f:
        f.write("one")
    with pytest.raises(RuntimeError):
        with atomic_file(path, "w") as f:
            f.write("half")
            raise RuntimeError
    assert open(path).read() == "one"
    d = str(tmp_path / "d")
    with atomic_directory(d) as tmp:
        open(os.path.join(tmp, "a"), "w").close()
    with atomic_directory(d) as tmp:
        open(os.path.join(tmp, "b"), "w").close()
    assert os.listdir(d) == ["b"]
    assert sorted(os.listdir(tmp_path)) == ["d", "f.txt"]


_KILL_BETWEEN_RENAMES = """
import os, sys
from tfp_dgbn import atomic
real, calls = os.replace, []
def replace(a, b):
    calls.append(a)
    real(a, b)
    if len(calls) == 1:
        os._exit(9)  # killed right after the old version moved aside, before the new one moved in
atomic.os.replace = replace
with atomic.atomic_directory(sys.argv[1]) as tmp:
    open(os.path.join(tmp, "new"), "w").close()
"""


def test_a_kill_between_the_two_renames_loses_nothing(tmp_path):
    import subprocess

    from conftest import PYTHON, REPO

    from tfp_dgbn.atomic import recover_directory

    target = tmp_path / "resume"
    with atomic_directory(str(target)) as tmp:
        open(os.path.join(tmp, "old"), "w").close()
    out = subprocess.run([PYTHON, "-c", _KILL_BETWEEN_RENAMES, str(target)], cwd=REPO, capture_output=True)
    assert out.returncode == 9, out.stderr
    assert not target.exists() and (tmp_path / ".resume.old").is_dir()  # the gap the kill hit
    assert recover_directory(str(target)) and os.listdir(target) == ["old"]  # the previous version is back
    assert not (tmp_path / ".resume.old").exists()
    # A writer recovers first too, and a finished replacement leaves nothing aside.
    os.replace(target, tmp_path / ".resume.old")
    with atomic_directory(str(target)) as tmp:
        open(os.path.join(tmp, "new"), "w").close()
    assert os.listdir(target) == ["new"] and not (tmp_path / ".resume.old").exists()


def test_resume_finds_a_checkpoint_whose_replacement_was_interrupted(tmp_path):
    from tfp_dgbn.fit.callbacks import KLAnnealing
    from tfp_dgbn.fit.resume import ResumeCheckpoint
    from tfp_dgbn.fit.schedules import from_spec

    logdir = tmp_path / "logs"
    (logdir / ".resume.old").mkdir(parents=True)  # the state a kill between the renames leaves
    (logdir / ".resume.old" / "state.json").write_text(json.dumps(
        {"epochs_done": 4, "schedule": {}, "kl_history": [], "config": {"epochs": 7}}))
    checkpoint = ResumeCheckpoint(str(logdir), KLAnnealing(from_spec("constant:weight=1")), {"epochs": 7})

    class NoWeights:  # restore() loads weights after reading the state: stop there
        optimizer = types.SimpleNamespace(build=lambda variables: None)  # slots are built before loading
        trainable_variables = []

        def load_weights(self, path):
            raise RuntimeError("weights " + os.path.relpath(path, logdir))

    with pytest.raises(RuntimeError, match="weights resume/weights/ckpt"):
        checkpoint.restore(NoWeights())
    assert (logdir / "resume" / "state.json").exists()
