"""An export that fails midway leaves the previous export whole and loadable."""
import os

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
