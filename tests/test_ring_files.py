"""Ring datasets on disk, the tf.data loader, the `dgbn simulate` command and the ring warm-up toys."""
import os
import subprocess

import numpy as np
import pytest

from conftest import PYTHON, REPO
from tfp_dgbn import seeds
from tfp_dgbn.dataset import ring_files
from tfp_dgbn.simulate import rings
from tfp_dgbn.simulate.ring_toys import RingCount, RingResidual


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("rings") / "rings.npz")
    ring_files.write_rings(path, 600, seed=3, progress=False)
    return path


def test_file_holds_splits_metadata_and_the_simulated_rings(small_file):
    meta = ring_files.read_metadata(small_file)
    assert meta["splits"] == {"train": 480, "val": 60, "test": 60}
    assert meta["seed"] == 3 and meta["config"] == rings.RingConfig().to_dict()
    assert meta["feature_names"] == list(rings.FEATURE_NAMES) and meta["version"]
    test, _ = ring_files.load_rings(small_file, "test")
    train, _ = ring_files.load_rings(small_file, "train")
    assert set(test) == {"features", "noised", "true_ring", "expected"}
    assert set(train) == {"features", "noised", "true_ring"}
    assert test["noised"].shape == (60, 32, 32) and test["noised"].dtype == np.uint16
    # Stored arrays are exactly what the generator makes for that split's seed.
    again = rings.simulate(60, seed=seeds.key(3, "test"), expected=True, true_ring=True)
    for key in test:
        np.testing.assert_array_equal(test[key], again[key].astype(test[key].dtype))
    # The exact means are those of the stored features.
    np.testing.assert_allclose(test["expected"], rings.expected_images(test["features"], rings.RingConfig()),
                               rtol=1e-5, atol=1e-6)


def test_test_split_does_not_depend_on_the_total_size(small_file, tmp_path):
    bigger = str(tmp_path / "bigger.npz")
    ring_files.write_rings(bigger, 1200, seed=3, progress=False, expected_splits=(), true_ring=False)
    a = ring_files.load_rings(small_file, "test")[0]["features"]
    b = ring_files.load_rings(bigger, "test")[0]["features"]
    np.testing.assert_array_equal(a, b[:len(a)])


def test_a_split_trains_through_the_array_source_shuffled_and_paired(small_file):
    from tfp_dgbn.dataset.sources import ArraySource

    train = ring_files.load_rings(small_file, "train")[0]
    ds = ArraySource(train["features"], train["noised"], seed=1).dataset(96)
    batches = list(ds.take(5))  # 480 rings: exactly the first epoch
    x, y = batches[0]
    assert x.shape == (96, 6) and y.shape == (96, 32, 32) and y.dtype.name == "float32"
    # Shuffled (not the file order), but the same examples: features and images stay paired.
    assert not np.array_equal(x.numpy(), train["features"][:96])
    seen = np.concatenate([b[0].numpy() for b in batches])
    order = np.lexsort(seen.T)
    np.testing.assert_array_equal(seen[order], train["features"][np.lexsort(train["features"].T)])
    i = int(np.flatnonzero((train["features"] == x.numpy()[0]).all(axis=1))[0])
    np.testing.assert_array_equal(y.numpy()[0], train["noised"][i])
    with pytest.raises(ValueError, match="split must be one of"):
        ring_files.load_rings(small_file, "dev")


def test_interrupted_write_keeps_the_previous_file(small_file, tmp_path, monkeypatch):
    target = str(tmp_path / "keep.npz")
    ring_files.write_rings(target, 30, seed=1, progress=False)
    before = open(target, "rb").read()

    def dying_generate(*args, **kwargs):
        yield from []
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-simulation

    monkeypatch.setattr(rings, "generate", dying_generate)
    with pytest.raises(KeyboardInterrupt):
        ring_files.write_rings(target, 30, seed=2, progress=False)
    assert open(target, "rb").read() == before
    assert os.listdir(tmp_path) == ["keep.npz"]  # no temporary left behind


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 2}, "n must be an integer >= 3"),
    ({"fractions": (0.5, 0.5, 0.5)}, "split fractions must be three positive numbers summing to 1"),
    ({"path": "/proc/rings.npz"}, "cannot write '/proc/rings.npz'"),
    ({"path": "rings.txt"}, "output path must end in .npz"),
    ({"expected_splits": ("dev",)}, "expected_splits must name splits"),
])
def test_bad_write_arguments_are_named(tmp_path, kwargs, message):
    args = {"path": str(tmp_path / "r.npz"), "n": 30, "progress": False, **kwargs}
    with pytest.raises((ValueError, OSError)) as err:
        ring_files.write_rings(**args)
    assert message in str(err.value)


def test_reading_a_foreign_file_is_a_clear_error(tmp_path):
    other = str(tmp_path / "other.npz")
    np.savez(other, a=np.zeros(3))
    with pytest.raises(ValueError, match="not a tfp_dgbn ring dataset"):
        ring_files.load_rings(other)
    with pytest.raises(FileNotFoundError, match="no ring dataset"):
        ring_files.load_rings(str(tmp_path / "missing.npz"))


def test_dgbn_simulate_writes_file_and_figures(tmp_path):
    out, plots = str(tmp_path / "r.npz"), str(tmp_path / "plots")
    run = subprocess.run([PYTHON, "-m", "tfp_dgbn.cli", "simulate", "--n", "300", "--out", out, "--seed", "4",
                          "--plots", plots], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "simulating" in run.stderr  # the progress bar
    assert ring_files.read_metadata(out)["splits"] == {"train": 240, "val": 30, "test": 30}
    for name in ("feature_sweeps.png", "pixel_counts.png"):
        with open(os.path.join(plots, name), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    bad = subprocess.run([PYTHON, "-m", "tfp_dgbn.cli", "simulate", "--n", "300", "--out", out,
                          "--image-size", "4"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert bad.returncode == 2 and "image_size must be an integer >= 8, got 4" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert ring_files.read_metadata(out)["seed"] == 4  # the earlier file is intact


def test_ring_residual_toy_samples_its_law():
    toy = RingResidual()
    x, y = toy.sample(4000, seed=0)
    z = y / toy.scale(x[:, 0])
    # Standardised residuals are N(0, 1): SE of mean 1/sqrt(4000) = 0.016, of the sd ~ 0.011.
    assert abs(z.mean()) < 4 / np.sqrt(4000) and abs(z.std() - 1) < 4 / np.sqrt(8000)
    # (1.2 f + c R) / (0.4 f + c R) = 2.18 with f = 1 + 2 sin(0.175), c R = 0.375.
    assert toy.scale([toy.x_high])[0] / toy.scale([toy.x_low])[0] == pytest.approx(2.18, abs=0.01)
    assert toy.true_distribution(x[:3]).batch_shape == (3,)


def test_ring_count_toy_samples_its_law():
    toy = RingCount()
    x, y = toy.sample(4000, seed=1)
    rate = toy.rate(x[:, 0])
    # Pearson residuals of a Poisson have mean 0 and variance 1 (SE ~ 1/sqrt(n), sqrt(2/n)).
    z = (y - rate) / np.sqrt(rate)
    assert abs(z.mean()) < 4 / np.sqrt(4000) and abs(z.var() - 1) < 4 * np.sqrt(2 / 4000)
    # The mean is sum(expected image): nbar(R) plus the background, nearly all on the image.
    bg = rings.RingConfig().background().sum()
    assert toy.rate([5.0])[0] == pytest.approx(10.0 + bg, rel=1e-3)


@pytest.mark.slow
def test_dgbn_fit_learns_the_ring_count_law(tmp_path):
    # 2,000 rings, 150 epochs (~35 s). Measured: NLL gap 0.025 +- 0.003 nats,
    # coverage 0.92; the bound 0.06 leaves room for seed-to-seed spread.
    from tfp_dgbn.tasks.runner import fit

    result = fit("ring-count", epochs=150, logdir=str(tmp_path / "logs"),
                               out=str(tmp_path / "export"), plot_every=150, verbose=0)
    m = result.metrics
    assert m["nll_gap"] < 0.06, m
    assert abs(m["coverage"] - 0.9) < 0.05, m  # discrete intervals include both ends: >= 0.9 expected
    assert os.path.exists(result.paths["plot"])
