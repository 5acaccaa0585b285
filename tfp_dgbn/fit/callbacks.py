"""Keras callbacks: KL annealing, and TensorBoard summaries of the posterior and predictions."""
import io

import numpy as np
import tensorflow as tf

from tfp_dgbn.fit.schedules import KLSchedule
from tfp_dgbn.tfk import keras
from tfp_dgbn.validate import InputError


class KLAnnealing(keras.callbacks.Callback):
    """Set the model's ``kl_weight`` from a `KLSchedule`, per epoch or per batch.

    Progress passed to the schedule is in epochs: ``epoch`` when updated per
    epoch, ``epoch + batch / steps_per_epoch`` when updated per batch. Feedback
    schedules (``adaptive``) observe the logs after each update period.
    The weight used is logged by the model as ``kl_weight``.

    Args:
      schedule: a `tfp_dgbn.fit.schedules.KLSchedule`.
      update: "epoch" or "batch".
    """

    def __init__(self, schedule, update="epoch"):
        super().__init__()
        if not isinstance(schedule, KLSchedule):
            raise TypeError(f"schedule must be a KLSchedule, got {schedule!r}")
        if update not in ("epoch", "batch"):
            raise InputError(f"update must be 'epoch' or 'batch', got {update!r}")
        self.schedule = schedule
        self.update = update
        self._epoch = 0
        self.history = []  # (progress in epochs, weight) for every update

    def _set(self, t):
        w = self.schedule(t)
        self.model.set_kl_weight(w)
        self.history.append((float(t), float(w)))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self.update == "epoch":
            self._set(float(epoch))

    def on_train_batch_begin(self, batch, logs=None):
        if self.update == "batch":
            steps = self.params.get("steps") or 1
            self._set(self._epoch + batch / steps)

    def on_train_batch_end(self, batch, logs=None):
        if self.update == "batch":
            self.schedule.observe(logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.update == "epoch":
            self.schedule.observe(logs)


class EpochTensorBoard(keras.callbacks.TensorBoard):
    """Keras's `TensorBoard` callback writing at epoch ends only (``update_freq="epoch"``).

    Keras calls every callback's batch hooks once any callback needs them (the NaN
    guard of `tfp_dgbn.fit.resume` and `KLAnnealing` do). The stock callback then
    builds five scalar summaries per batch that its epoch-only recording drops:
    3.1 ms per batch with its hooks timed alone, and the 300-epoch toy job runs
    4,800 batches (`tests/test_schedules.py` counts the summaries; the job's time
    is in `benchmarks/job_overhead.py`). Same arguments as `TensorBoard`,
    except ``update_freq`` and ``profile_batch``, which are fixed.
    """

    def __init__(self, log_dir, **kwargs):
        super().__init__(log_dir, update_freq="epoch", profile_batch=0, **kwargs)

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        if self._should_write_train_graph:  # write_graph=True: the graph is written after the first batch
            super().on_train_batch_end(batch, logs)


def figure_to_image(fig):
    """Render a matplotlib figure to a [1, H, W, 4] uint8 tensor (for tf.summary.image)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return tf.expand_dims(tf.image.decode_png(buf.getvalue(), channels=4), 0)


class PosteriorSummaries(keras.callbacks.Callback):
    """Write TensorBoard histograms of every Bayesian weight's posterior stddev, and the head's point estimates.

    Tags ``posterior_stddev/<layer>/<kernel|bias>``, plus the scalar
    ``posterior_stddev_mean/<layer>/<...>``, every ``every`` epochs; the head's
    own trainable parameters (`DistributionHead.point_estimates`, e.g. a learned
    kernel's spread) as scalars ``head/<name>`` every epoch.

    Args:
      logdir: TensorBoard run directory (a ``train`` subdirectory is used).
      every: period in epochs.
    """

    def __init__(self, logdir, every=1):
        super().__init__()
        self.writer = tf.summary.create_file_writer(str(logdir) + "/train")
        self.every = max(int(every), 1)

    def on_epoch_end(self, epoch, logs=None):
        with self.writer.as_default(step=epoch):
            for name, value in self.model.head.point_estimates().items():
                tf.summary.scalar(f"head/{name}", value)
        if epoch % self.every:
            self.writer.flush()
            return
        with self.writer.as_default(step=epoch):
            for tag, scale in self.model.posterior_stddevs().items():
                tf.summary.histogram(f"posterior_stddev/{tag}", scale)
                tf.summary.scalar(f"posterior_stddev_mean/{tag}", tf.reduce_mean(scale))
        self.writer.flush()


class FigureSummary(keras.callbacks.Callback):
    """Every ``every`` epochs (and at the last), log a matplotlib figure as a TensorBoard image.

    Args:
      logdir: TensorBoard run directory (a ``train`` subdirectory is used).
      make_figure: callable(model) -> matplotlib Figure.
      tag: image tag.
      every: period in epochs.
    """

    def __init__(self, logdir, make_figure, tag="predicted_vs_true", every=10):
        super().__init__()
        self.writer = tf.summary.create_file_writer(str(logdir) + "/train")
        self.make_figure = make_figure
        self.tag = tag
        self.every = max(int(every), 1)

    def on_epoch_end(self, epoch, logs=None):
        last = epoch + 1 == self.params.get("epochs")
        if epoch % self.every and not last:
            return
        with self.writer.as_default(step=epoch):
            tf.summary.image(self.tag, figure_to_image(self.make_figure(self.model)))
        self.writer.flush()


def stddev_summary(model):
    """Min / 10th percentile / median / 90th percentile / max of all posterior stddevs (floats).

    Reported so a reader sees the scales did not collapse to zero.
    """
    values = np.concatenate([np.ravel(v.numpy()) for v in model.posterior_stddevs().values()])
    p10, med, p90 = np.percentile(values, [10, 50, 90])
    return {"min": float(values.min()), "p10": float(p10), "median": float(med), "p90": float(p90),
            "max": float(values.max()), "count": int(values.size)}
