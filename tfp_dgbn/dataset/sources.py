"""Where training examples come from: arrays in memory, rings simulated on the fly, or sharded files.

Every source builds the same kind of `tf.data` pipeline, one per input
pipeline (worker) of a distribution strategy, yielding endless per-replica
batches ``(inputs float32 [b, D], targets float32 [b, ...])`` with prefetch;
``fit`` takes ``steps_per_epoch`` = ceil(examples per epoch / global batch).
Every task of the job runner (`tfp_dgbn.tasks`) trains from a source.

``ArraySource``      any (inputs, targets) arrays in memory (the toys, a user's
                     table, the default ring job, a ``.npz`` from ``dgbn
                     simulate``): shuffled indices gathered per batch. The one
                     array-to-``tf.data`` loader of the package.
``SimulatedSource``  rings simulated as training consumes them, one batch per
                     parallel map call. Batch i of input pipeline p is simulated
                     from `seeds.key`(seed, "stream", p, i): a run is reproducible from its
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
(`tfp_dgbn.tasks.rings.heldout_data`) with the exact law.
"""
import math

import numpy as np
import tensorflow as tf

from tfp_dgbn import seeds
from tfp_dgbn.simulate import rings
from tfp_dgbn.validate import InputError, check_positive_int


class Source:
    """Base: ``dataset(batch_size, pipeline, num_pipelines, start_step)`` and the epoch size.

    Attributes:
      num_train: examples per epoch (the KL term's N_train).
      name: a short description for progress messages.
    """

    num_train = None
    name = "examples"

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

    def mean_target(self, n=10_000):
        """Mean target over about ``n`` training examples, [...] (e.g. the ring job's feature-blind baseline)."""
        batch = min(1000, n)
        total = None
        for _, y in self.dataset(batch).take(int(math.ceil(n / batch))):
            total = y.numpy().sum(0, dtype="float64") + (0 if total is None else total)
        return total / (batch * int(math.ceil(n / batch)))

    def distinct_examples(self, epochs):
        """N of the KL term: the distinct examples the posterior conditions on over ``epochs`` epochs.

        A finite set is seen again every epoch, so it is ``num_train`` (docs/design.md).
        """
        return self.num_train

    def steps_per_epoch(self, global_batch):
        """Training steps in one epoch of ``num_train`` rings."""
        return int(math.ceil(self.num_train / check_positive_int(global_batch, "batch_size")))

    def distributed(self, strategy, global_batch, start_step=0):
        """The dataset for ``fit`` under ``strategy`` (None: plain), one pipeline per worker.

        ``start_step``: global training steps already done (a resumed run).
        """
        global_batch = check_positive_int(global_batch, "batch_size")
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


def _to_float(inputs, targets):
    return tf.cast(inputs, tf.float32), tf.cast(targets, tf.float32)


class ArraySource(Source):
    """Examples in memory: ``inputs`` [n, D] and ``targets`` [n, ...] (any numeric dtype).

    Args:
      inputs, targets: the arrays (same first dimension, n >= 1).
      seed: seeds the shuffle.
      name: what the examples are, for progress messages ("rings", "rows", ...).
    """

    def __init__(self, inputs, targets, seed=0, name="examples"):
        self.inputs = np.asarray(inputs, "float32")
        self.targets = np.asarray(targets)
        if len(self.inputs) != len(self.targets) or len(self.inputs) == 0:
            raise InputError(f"inputs and targets must hold the same positive number of {name}, got "
                             f"{len(self.inputs)} and {len(self.targets)}")
        self.num_train, self.seed = len(self.inputs), int(seed)
        self.name = f"{self.num_train} {name} in memory"

    def mean_target(self, n=None):
        """Mean target of all the examples held, [...]."""
        return self.targets.mean(axis=0, dtype="float64")

    def dataset(self, batch_size, pipeline=0, num_pipelines=1, start_step=0):
        batch_size = check_positive_int(batch_size, "batch_size")
        inputs, targets = tf.constant(self.inputs), tf.constant(self.targets)
        n = self.num_train
        # Shuffling indices, not examples: no buffer copy of large targets (images).
        idx = tf.data.Dataset.range(n).shard(num_pipelines, pipeline)
        idx = idx.shuffle(n, seed=self.seed, reshuffle_each_iteration=True).repeat()
        return (idx.batch(batch_size, drop_remainder=True)
                .map(lambda i: _to_float(tf.gather(inputs, i), tf.gather(targets, i)))
                .prefetch(tf.data.AUTOTUNE))


class SimulatedSource(Source):
    """Rings simulated on the fly (module docstring).

    Args:
      config: `RingConfig`.
      seed: integer seed of the stream.
      rings_per_epoch: rings per epoch (N_train of the KL term).
      fresh: new rings every epoch (True) or the same ``rings_per_epoch`` rings (False).
    """

    def __init__(self, config, seed, rings_per_epoch, fresh=True):
        self.num_train = check_positive_int(rings_per_epoch, "rings_per_epoch")
        self.config, self.seed, self.fresh = config, int(seed), bool(fresh)
        self.name = (f"rings simulated on the fly ({'fresh every epoch' if fresh else 'the same every epoch'}, "
                     f"{self.num_train} per epoch)")

    def distinct_examples(self, epochs):
        """Fresh rings every epoch: the posterior conditions on epochs x rings per epoch distinct rings."""
        return self.num_train * (check_positive_int(epochs, "epochs") if self.fresh else 1)

    def batch(self, pipeline, step, batch_size):
        """The rings of one batch as NumPy arrays (features float32, noised uint16); deterministic."""
        chunk = next(rings.generate(int(batch_size), seeds.key(self.seed, "stream", pipeline, step), self.config,
                                    chunk_size=max(int(batch_size), 1)))
        return chunk["features"].astype("float32"), chunk["noised"]

    def dataset(self, batch_size, pipeline=0, num_pipelines=1, start_step=0):
        batch_size = check_positive_int(batch_size, "batch_size")
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
