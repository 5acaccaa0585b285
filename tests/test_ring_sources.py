"""Training sources: arrays, rings simulated on the fly, TFRecord shards; one device and two."""
import json
import os
import shutil

import numpy as np
import pytest

from tfp_dgbn import seeds
from tfp_dgbn.dataset.ring_shards import MANIFEST, open_shards, shard_name, write_shards
from tfp_dgbn.dataset.sources import ArraySource, SimulatedSource
from tfp_dgbn.fit.distribute import make_strategy
from tfp_dgbn.model.ring_generator import ring_generator
from tfp_dgbn.simulate import rings
from tfp_dgbn.tfk import keras

CONFIG = rings.RingConfig()


def _batches(ds, n):
    return [(f.numpy(), y.numpy()) for f, y in ds.take(n)]


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("shards") / "rings")
    write_shards(path, 400, 4, seed=5, progress=False)  # 320 train rings in 4 shards of 80
    return path


def test_simulated_stream_is_the_simulator_reproducible_and_resumable():
    source = SimulatedSource(CONFIG, seed=7, rings_per_epoch=256)
    first = _batches(source.dataset(32), 4)
    again = _batches(SimulatedSource(CONFIG, seed=7, rings_per_epoch=256).dataset(32), 4)
    for (f1, y1), (f2, y2) in zip(first, again):
        np.testing.assert_array_equal(f1, f2)
        np.testing.assert_array_equal(y1, y2)
    # batch i of pipeline p is the simulator's rings from the seed key (seed, "stream", p, i)
    f, y = source.batch(0, 2, 32)
    np.testing.assert_array_equal(first[2][0], f)
    np.testing.assert_array_equal(first[2][1], y.astype("float32"))
    # a resumed run (start_step=2) continues the stream, it does not restart it
    np.testing.assert_array_equal(_batches(source.dataset(32, start_step=2), 1)[0][0], first[2][0])
    # fresh rings every batch, and another pipeline (worker) draws its own stream
    assert not np.array_equal(first[0][0], first[1][0])
    other = _batches(source.dataset(32, pipeline=1, num_pipelines=2), 1)[0][0]
    assert not np.isin(other[:, 2], first[0][0][:, 2]).any()


@pytest.mark.parametrize("workers", [1, 2, 3, 4])
def test_on_the_fly_batches_never_repeat_validation_test_or_another_worker(workers):
    # NumPy pads seed sequences with zeros, so the old keys (seed, worker, step) + block made worker 1's
    # first batch a copy of the validation rings (seed, 1) + block 0. With the seed tree no feature row of
    # the first K batches of any worker equals a held-out row, and the workers draw different rings.
    seed, batch, steps = 0, 32, 4
    held = np.concatenate([rings.simulate(64, seeds.key(seed, split), CONFIG)["features"] for split in ("val", "test")])
    source = SimulatedSource(CONFIG, seed, rings_per_epoch=256)
    drawn = [np.concatenate([source.batch(w, step, batch)[0] for step in range(steps)]) for w in range(workers)]
    held_rows = {row.tobytes() for row in held}
    for w, rows in enumerate(drawn):
        assert not any(row.tobytes() in held_rows for row in rows), w
        assert len({row.tobytes() for row in rows}) == len(rows)
    for a in range(workers):
        for b in range(a + 1, workers):
            assert not {r.tobytes() for r in drawn[a]} & {r.tobytes() for r in drawn[b]}, (a, b)


def test_seed_keys_of_different_lengths_never_give_the_same_stream():
    # the padding collision itself, and the keys that avoid it
    assert np.random.default_rng([3, 1, 0]).random() == np.random.default_rng([3, 1]).random()
    firsts = {tuple(seeds.rng(3, role, *path).random(2)) for role, path in
              [("val", ()), ("stream", (1, 0)), ("stream", (1,)), ("stream", (1, 0, 0)), ("train", (0,)),
               ("test", ()), ("evaluate", ())]}
    assert len(firsts) == 7
    with pytest.raises(ValueError, match="unknown seed role 'nope'"):
        seeds.key(0, "nope")


def test_fixed_epoch_repeats_the_same_rings():
    source = SimulatedSource(CONFIG, seed=1, rings_per_epoch=128, fresh=False)
    batches = _batches(source.dataset(32), 8)  # two epochs of 4 batches
    epoch = [np.sort(np.concatenate([b[0][:, 2] for b in batches[i:i + 4]])) for i in (0, 4)]
    np.testing.assert_array_equal(epoch[0], epoch[1])
    assert len(np.unique(epoch[0])) == 128


def test_array_source_covers_every_ring_once_per_epoch():
    chunk = rings.simulate(96, 0, CONFIG)
    source = ArraySource(chunk["features"], chunk["noised"])
    got = np.concatenate([f for f, _ in _batches(source.dataset(32), 3)])
    np.testing.assert_array_equal(np.sort(got[:, 2]), np.sort(chunk["features"][:, 2]))
    np.testing.assert_allclose(source.mean_target(), chunk["noised"].mean(0))
    with pytest.raises(ValueError, match="same positive number of examples, got 96 and 95"):
        ArraySource(chunk["features"], chunk["noised"][:95])


def test_shards_hold_exactly_the_simulated_rings(shard_dir):
    source = open_shards(shard_dir)
    assert source.num_train == 320 and len(source.files) == 4
    written = np.concatenate([rings.simulate(80, seeds.key(5, "shard", k), CONFIG)["features"] for k in range(4)])
    read = np.concatenate([f for f, _ in _batches(source.dataset(40), 8)])  # one epoch
    np.testing.assert_array_equal(np.sort(read[:, 2]), np.sort(written[:, 2]))
    # two workers read disjoint files
    a = np.concatenate([f for f, _ in _batches(source.dataset(40, 0, 2), 4)])
    b = np.concatenate([f for f, _ in _batches(source.dataset(40, 1, 2), 4)])
    assert not np.isin(a[:, 2], b[:, 2]).any()
    with pytest.raises(ValueError, match="4 shard.*cannot feed 5 workers"):
        source.dataset(8, 0, 5)
    # a glob picks a subset of the shards
    assert open_shards(os.path.join(shard_dir, "train-0000[01]-*.tfrecord")).num_train == 160
    manifest = json.load(open(os.path.join(shard_dir, MANIFEST)))
    assert manifest["splits"] == {"train": 320, "val": 40, "test": 40}


def _broken_copy(shard_dir, tmp_path):
    path = str(tmp_path / "copy")
    shutil.copytree(shard_dir, path)
    return path


def test_bad_shards_are_named(shard_dir, tmp_path):
    path = _broken_copy(shard_dir, tmp_path)
    victim = os.path.join(path, shard_name(1, 4))
    with open(victim, "r+b") as f:
        f.truncate(1000)
    with pytest.raises(ValueError, match=f"shard '{victim}' has 1000 bytes.*truncated"):
        open_shards(path)
    os.remove(victim)
    with pytest.raises(ValueError, match=f"shard '{victim}' listed in .* is missing"):
        open_shards(path)
    shutil.copy(os.path.join(path, shard_name(0, 4)), os.path.join(path, "train-00009-of-00010.tfrecord"))
    with pytest.raises(ValueError, match="train-00009-of-00010.tfrecord' is not listed"):
        open_shards(os.path.join(path, MANIFEST))
    with pytest.raises(ValueError, match="no files match '.*nothing-\\*.tfrecord'"):
        open_shards(os.path.join(path, "nothing-*.tfrecord"))
    with pytest.raises(ValueError, match="no manifest.json at"):
        open_shards(str(tmp_path))


def test_checksums_catch_an_altered_shard(shard_dir, tmp_path):
    path = _broken_copy(shard_dir, tmp_path)
    victim = os.path.join(path, shard_name(2, 4))
    data = bytearray(open(victim, "rb").read())
    data[500] ^= 0xFF  # same size, one byte changed
    open(victim, "wb").write(bytes(data))
    open_shards(path)  # the size check cannot see it ...
    with pytest.raises(ValueError, match=f"shard '{victim}' does not match its sha256"):
        open_shards(path, verify_checksums=True)  # ... the checksum does


def _small_model(n_train):
    model = ring_generator(n_train, CONFIG, embedding=(8,), hidden=(8,), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


@pytest.mark.parametrize("strategy_name", ["default", "mirrored"])
def test_few_training_steps_from_each_source(shard_dir, strategy_name):
    """Each source feeds fit for a few steps, on one device and on two (global batch 32)."""
    strategy = make_strategy(strategy_name)
    chunk = rings.simulate(128, 3, CONFIG)
    sources = {"memory": ArraySource(chunk["features"], chunk["noised"]),
               "simulate": SimulatedSource(CONFIG, 0, 128),
               "shards": open_shards(shard_dir)}
    distributed = strategy if strategy_name == "mirrored" else None
    for name, source in sources.items():
        with strategy.scope():
            model = _small_model(source.num_train)
        logs = model.fit(source.distributed(distributed, 32), steps_per_epoch=3, epochs=1, verbose=0).history
        assert np.isfinite(logs["loss"][0]) and logs["nll"][0] > 0, name


def test_ring_fit_from_shards_and_on_the_fly(shard_dir, tmp_path):
    """The ring job trains from shards (held-out rings from their file) and from the simulator (two devices)."""
    from tfp_dgbn.tasks import make_settings
    from tfp_dgbn.tasks.runner import run

    common = dict(epochs=1, batch_size=32, embedding=(8,), hidden=(8,), plot_every=1, num_samples=4, verbose=0)
    result = run(make_settings("rings", source=shard_dir, logdir=str(tmp_path / "a"), out=str(tmp_path / "ea"),
                                        **common))
    assert np.isfinite(result.metrics["kl_gap"])
    result = run(make_settings("rings", source="simulate", n_train=256, n_val=32, n_test=40, strategy="mirrored",
                                        logdir=str(tmp_path / "b"), out=str(tmp_path / "eb"), **common))
    assert np.isfinite(result.metrics["kl_gap"]) and len(result.history["loss"]) == 1
    assert os.path.exists(tmp_path / "b" / "heldout.npz")  # the held-out rings, stored once


def test_fit_source_errors_are_one_line(tmp_path):
    from tfp_dgbn.tasks import make_settings

    with pytest.raises(ValueError, match="data source 'nowhere/x' does not exist"):
        make_settings("rings", source="nowhere/x")
    with pytest.raises(ValueError, match="either data .* or source"):
        make_settings("rings", data=__file__, source="simulate")


@pytest.mark.parametrize("source,fixed,expected", [("simulate", False, 3 * 256), ("simulate", True, 256),
                                                   ("memory", False, 256)])
def test_the_kl_counts_every_distinct_ring_the_posterior_sees(source, fixed, expected):
    # Fresh rings every epoch: 3 epochs of 256 are 768 distinct rings, and the KL is divided by 768
    # (not 256, which would weight the prior as if the data were 3x smaller than it is).
    from tfp_dgbn.tasks import make_settings
    from tfp_dgbn.tasks.rings import RingData, RingTask

    settings = make_settings("rings", source=source if source != "memory" else None, fixed_epoch=fixed,
                             n_train=256, epochs=3, embedding=(4,), hidden=(4,), verbose=0)
    data_source = (SimulatedSource(CONFIG, 0, 256, fresh=not fixed) if source == "simulate"
                   else ArraySource(np.zeros((256, 6)), np.zeros((256, 32, 32))))
    model = RingTask().build(settings, RingData(data_source, None, {}, sim=CONFIG), 1.0)
    divisors = {layer.kernel_divergence_fn.num_train for layer in model.layers if hasattr(layer, "kernel_divergence_fn")}
    assert divisors == {expected}
