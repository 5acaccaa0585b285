"""Where training rings come from: arrays in memory, simulated on the fly, or sharded files.

Every source builds the same kind of `tf.data` pipeline, one per input
pipeline (worker) of a distribution strategy, yielding endless per-replica
batches ``(features float32 [b, 6], noised float32 [b, S, S])`` with prefetch;
``fit`` takes ``steps_per_epoch`` = ceil(rings per epoch / global batch).

``ArraySource``      rings held in memory (the default job; a ``.npz`` from
                     ``dgbn simulate``): shuffled indices gathered per batch.
``SimulatedSource``  rings simulated as training consumes them, one batch per
                     parallel map call. Batch i of input pipeline p is simulated
                     from the seed (seed, p, i): a run is reproducible from its
                     seed, each worker draws its own stream, and a resumed run
                     continues the stream where it stopped. ``fresh=True`` gives
                     new rings every epoch (an endless stream); ``fresh=False``
                     gives the same rings every epoch (a fixed-size epoch from
                     the seed), in a reshuffled batch order.
``ShardSource``      TFRecord shards written by ``dgbn simulate --shards K``
                     (`tfp_dgbn.dataset.ring_shards`): shard files are split
                     over input pipelines (each worker reads its own files),
                     interleaved, shuffled in a bounded buffer and parsed in
                     batches, so memory does not grow with the data.

Held-out rings never come from the training source: they are fixed files
(`tfp_dgbn.fit.ring_run.heldout_data`) with the exact law.
"""
import math

import numpy as np
import tensorflow as tf

from tfp_dgbn.simulate import rings


def _check_batch(batch_size):
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


class RingSource:
    """Base: ``dataset(batch_size, pipeline, num_pipelines, start_step)`` and the epoch size.

    Attributes:
      num_train: rings per epoch (the KL term's N_train).
      config: the simulator's `RingConfig`.
      name: a short description for progress messages.
    """

    num_train = None
    config = None
    name = "rings"

    def dataset(self, batch_size, pipeline=0, num_pipelines=1, start_step=0):
        """Endless per-replica batches for one input pipeline (see module docstring).

        Args:
          batch_size: rings per batch (per replica).
          pipeline, num_pipelines: this input pipeline's index and their count
            (``tf.distribute.InputContext``; 0 and 1 without a strategy).
          start_step: batches this pipeline already produced (a resumed run
            continues a simulated stream there; other sources ignore it).
        """
        raise NotImplementedError

    def mean_image(self, n=10_000):
        """Mean noised image over about ``n`` training rings, [S, S] (the feature-blind baseline)."""
        batch = min(1000, n)
        total = None
        for _, y in self.dataset(batch).take(int(math.ceil(n / batch))):
            total = y.numpy().sum(0, dtype="float64") + (0 if total is None else total)
        return total / (batch * int(math.ceil(n / batch)))

    def steps_per_epoch(self, global_batch):
        """Training steps in one epoch of ``num_train`` rings."""
        return int(math.ceil(self.num_train / _check_batch(global_batch)))

    def distributed(self, strategy, global_batch, start_step=0):
        """The dataset for ``fit`` under ``strategy`` (None: plain), one pipeline per worker.

        ``start_step``: global training steps already done (a resumed run).
        """
        global_batch = _check_batch(global_batch)
        if strategy is None or strategy.num_replicas_in_sync == 1 and not _multiworker(strategy):
            return self.dataset(global_batch, 0, 1, start_step)

        def make(ctx):
            per_replica = ctx.get_per_replica_batch_size(global_batch)
            # each global step takes one batch per local replica from this pipeline
            local_replicas = max(global_batch // (per_replica * ctx.num_input_pipelines), 1)
            return self.dataset(per_replica, ctx.input_pipeline_id, ctx.num_input_pipelines,
                                start_step * local_replicas)

        return strategy.distribute_datasets_from_function(make)


def _multiworker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def _to_float(features, noised):
    return tf.cast(features, tf.float32), tf.cast(noised, tf.float32)


class ArraySource(RingSource):
    """Rings in memory: ``features`` [n, 6] and ``noised`` [n, S, S] (uint16 or float)."""

    def __init__(self, features, noised, config, seed=0):
        self.features = np.asarray(features, "float32")
        self.noised = np.asarray(noised)
        if len(self.features) != len(self.noised) or len(self.features) == 0:
            raise ValueError(f"features and noised must hold the same positive number of rings, got "
                             f"{len(self.features)} and {len(self.noised)}")
        self.num_train, self.config, self.seed = len(self.features), config, int(seed)
        self.name = f"{self.num_train} rings in memory"

    def mean_image(self, n=None):
        """Mean noised image of all the rings held, [S, S]."""
        return self.noised.mean(axis=0, dtype="float64")

    def dataset(self, batch_size, pipeline=0, num_pipelines=1, start_step=0):
        batch_size = _check_batch(batch_size)
        features, noised = tf.constant(self.features), tf.constant(self.noised)
        n = self.num_train
        # Shuffling indices, not rings: no buffer copy of the images.
        idx = tf.data.Dataset.range(n).shard(num_pipelines, pipeline)
        idx = idx.shuffle(n, seed=self.seed, reshuffle_each_iteration=True).repeat()
        return (idx.batch(batch_size, drop_remainder=True)
                .map(lambda i: _to_float(tf.gather(features, i), tf.gather(noised, i)))
                .prefetch(tf.data.AUTOTUNE))


class SimulatedSource(RingSource):
    """Rings simulated on the fly (module docstring).

    Args:
      config: `RingConfig`.
      seed: integer seed of the stream.
      rings_per_epoch: rings per epoch (N_train of the KL term).
      fresh: new rings every epoch (True) or the same ``rings_per_epoch`` rings (False).
    """

    def __init__(self, config, seed, rings_per_epoch, fresh=True):
        if isinstance(rings_per_epoch, bool) or int(rings_per_epoch) != rings_per_epoch or rings_per_epoch < 1:
            raise ValueError(f"rings_per_epoch must be a positive integer, got {rings_per_epoch!r}")
        self.config, self.seed, self.num_train, self.fresh = config, int(seed), int(rings_per_epoch), bool(fresh)
        self.name = (f"rings simulated on the fly ({'fresh every epoch' if fresh else 'the same every epoch'}, "
                     f"{self.num_train} per epoch)")

    def batch(self, pipeline, step, batch_size):
        """The rings of one batch as NumPy arrays (features float32, noised uint16); deterministic."""
        chunk = next(rings.generate(int(batch_size), (self.seed, int(pipeline), int(step)), self.config,
                                    chunk_size=max(int(batch_size), 1)))
        return chunk["features"].astype("float32"), chunk["noised"]

    def dataset(self, batch_size, pipeline=0, num_pipelines=1, start_step=0):
        batch_size = _check_batch(batch_size)
        size = self.config.image_size
        if self.fresh:
            steps = tf.data.Dataset.range(int(start_step), np.iinfo(np.int64).max)
        else:
            per_epoch = max(int(math.ceil(self.num_train / (batch_size * num_pipelines))), 1)
            steps = tf.data.Dataset.range(per_epoch).shuffle(per_epoch, seed=self.seed,
                                                            reshuffle_each_iteration=True).repeat()

        def simulate(step):
            f, y = tf.numpy_function(lambda s: self.batch(pipeline, s, batch_size), [step],
                                     (tf.float32, tf.uint16), stateful=False)
            f.set_shape([batch_size, rings.NUM_FEATURES])
            y.set_shape([batch_size, size, size])
            return _to_float(f, y)

        # Parallel map: while one batch trains, the next ones are simulated
        # (ordered, so the stream is the same whatever the thread timing).
        return steps.map(simulate, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
