"""Training under `tf.distribute`: choosing a strategy, and where each worker writes.

``default``      one device (TensorFlow's default strategy).
``mirrored``     `tf.distribute.MirroredStrategy` over this machine's devices
                 (every GPU; on a CPU-only machine, the logical CPU devices made
                 by `configure_cpu_devices`).
``multiworker``  `tf.distribute.MultiWorkerMirroredStrategy`; the cluster and
                 this process's role come from the ``TF_CONFIG`` environment
                 variable (same command on every worker).

How the loss is counted is `BayesianModel.replica_objective`'s job: the NLL is
averaged over the *global* batch and the KL is added once per global batch.
Weight draws are independent across replicas and workers
(`tfp_dgbn.model.variational.ReplicaSample`).

Every worker runs the same callbacks (saving a checkpoint reads metric
variables, which takes a collective op all workers must join), so each writes
somewhere: the chief to the paths it was given, the others to
``<path>/workertemp_<task id>``, removed at the end (the convention of Keras's
own callbacks). A multi-worker resume reads the chief's checkpoint, which
assumes a file system shared by the workers.
"""
import json
import os
import shutil
import warnings

import tensorflow as tf

from tfp_dgbn.fit import STRATEGIES
from tfp_dgbn.validate import InputError, check_positive_int

_CACHE = {}


def configure_cpu_devices(n):
    """Split the physical CPU into ``n`` logical devices (before TensorFlow starts running ops).

    Lets ``mirrored`` run several replicas on a machine without GPUs (tests,
    or to check a distributed run before paying for accelerators).

    Raises:
      ValueError: n is not a positive integer, or TensorFlow is already
        initialised with another number of logical CPU devices.
    """
    n = check_positive_int(n, "the number of CPU devices")
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == int(n):
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * int(n))
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have != int(n):
            raise InputError(f"cannot split the CPU into {n} devices: TensorFlow already runs with {have}; "
                             "set it before the first TensorFlow operation") from None


def _check_tf_config():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise InputError("--strategy multiworker needs the TF_CONFIG environment variable "
                         '(e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                         '"task": {"type": "worker", "index": 0}})')
    try:
        conf = json.loads(raw)
        workers = conf["cluster"]["worker"]
        task = conf["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError):
        raise InputError(f"TF_CONFIG is not a valid cluster spec: {raw!r}") from None
    if not 0 <= index < len(workers) + len(conf["cluster"].get("chief", [])):
        raise InputError(f"TF_CONFIG task index {index} is outside the cluster {conf['cluster']}")


def make_strategy(name="default"):
    """The `tf.distribute.Strategy` called ``name`` (one of `STRATEGIES`), made once per process.

    Raises:
      ValueError: an unknown name, or ``multiworker`` without a valid ``TF_CONFIG``.
    """
    if name not in STRATEGIES:
        raise InputError(f"unknown strategy {name!r}; choose one of {list(STRATEGIES)}")
    if name == "default":
        return tf.distribute.get_strategy()
    # TFP warns that the Flipout layers' integer-seeded sign flips repeat on
    # every replica. That is harmless: signs only decorrelate the examples of
    # one batch; the weight draws themselves are independent (ReplicaSample).
    warnings.filterwarnings("ignore", message="Using stateful random seeds in replicated context")
    if name not in _CACHE:
        if name == "mirrored":
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
            # Reduction through host memory: NCCL is GPU-only, and the
            # default's probing fails on CPU devices.
            _CACHE[name] = tf.distribute.MirroredStrategy(
                devices, cross_device_ops=None if gpus else tf.distribute.ReductionToOneDevice())
        else:
            _check_tf_config()
            _CACHE[name] = tf.distribute.MultiWorkerMirroredStrategy()
    return _CACHE[name]


def task_id(strategy):
    """This worker's index in the cluster (0 without a multi-worker strategy)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return 0
    return int(resolver.task_id)


def is_chief(strategy):
    """Whether this process writes the run's outputs (logs, checkpoints, export)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type = resolver.task_type
    return task_type == "chief" or (task_type == "worker" and resolver.task_id == 0
                                    and "chief" not in resolver.cluster_spec().as_dict())


def worker_path(path, strategy):
    """``path`` for the chief; ``path/workertemp_<task id>`` for other workers (removed by `cleanup`)."""
    return path if is_chief(strategy) else os.path.join(path, f"workertemp_{task_id(strategy)}")


def cleanup(path, strategy):
    """Remove a non-chief worker's temporary directory made by `worker_path`."""
    if not is_chief(strategy):
        shutil.rmtree(worker_path(path, strategy), ignore_errors=True)



def build_and_compile(strategy, build, learning_rate, total_steps, alpha, steps_per_execution=1):
    """``build()`` in ``strategy``'s scope, compiled with Adam on a cosine-decayed learning rate.

    Args:
      strategy: a `tf.distribute.Strategy` (variables are created under it).
      build: function returning an uncompiled `BayesianModel`.
      learning_rate: initial rate; it decays to ``alpha * learning_rate`` over ``total_steps``.
      steps_per_execution: training steps per call of Keras's compiled train function (Keras's
        ``compile`` argument); more than 1 only where no callback needs every batch.
    """
    from tfp_dgbn.tfk import keras

    with strategy.scope():
        model = build()
        lr = keras.optimizers.schedules.CosineDecay(learning_rate, total_steps, alpha=alpha)
        model.compile(optimizer=keras.optimizers.Adam(lr), steps_per_execution=int(steps_per_execution))
        # Adam's slots made now: a train function that creates variables on its first call is traced twice
        # by tf.function (a second, variable-free trace), one more trace per run
        model.optimizer.build(model.trainable_variables)
    return model


def finish_on_chief(model, build, strategy, logdir):
    """After ``fit``: the model to export on the chief, None on other workers.

    Every worker reads the weights (reading replicated state can take a
    collective op that all workers must join); non-chief workers then remove
    their temporary directory and are done. The chief gets ``model`` itself
    without a strategy, else a copy built by ``build()`` outside it with the
    same weights: export and evaluation run on one device (a SavedModel traced
    under a strategy would carry its replicated variables and device placement).
    """
    if not isinstance(strategy, (tf.distribute.MirroredStrategy, tf.distribute.MultiWorkerMirroredStrategy)):
        return model
    weights = model.get_weights()
    if not is_chief(strategy):
        cleanup(logdir, strategy)
        return None
    copy = build()
    copy.set_weights(weights)
    return copy
