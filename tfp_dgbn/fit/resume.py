"""Surviving crashes: a resumable checkpoint with the KL-schedule state, and a NaN guard.

`ResumeCheckpoint` writes, at the end of every ``every``-th epoch, into
``<logdir>/resume/``: the model's variables and the optimizer's (a TF
checkpoint: weights, Adam moments, step counter, kl_weight) and ``state.json``
(epochs done, the KL schedule's state, the KLAnnealing log). The directory is
written beside and renamed into place (`tfp_dgbn.atomic`), so a kill at any
moment leaves either the previous or the new checkpoint, never half of one.
Running the same job again finds it, restores everything and continues with
``initial_epoch`` = epochs done: the run ends after the same total number of
epochs. The optimizer's slots are built before the restore, so a checkpoint that
lacks any of them is refused rather than continued with a fresh Adam. The
learning rate may differ (the advice after a divergence): the cosine schedule
then continues from the restored step at the new peak rate. TensorBoard gets each
epoch's summaries at most once (the checkpoint is written before the epoch's
summaries, so a kill in between leaves that epoch's summaries unwritten, as the
resumed run starts after it; never twice). A run that finishes removes its
resume directory, so the next run starts fresh.

`NaNGuard` stops training at the first non-finite loss by raising
`NonFiniteLoss` (epoch and batch, 1-based), before any callback could save the
broken weights: the last good checkpoint and the previous export stay as they were.
"""
import json
import os
import shutil

import numpy as np
import tensorflow as tf

from tfp_dgbn.atomic import atomic_directory, recover_directory
from tfp_dgbn.fit.distribute import worker_path
from tfp_dgbn.tfk import keras
from tfp_dgbn.validate import InputError

STATE_FILE = "state.json"
WEIGHTS = "weights"


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN or infinite loss (attributes: epoch, batch, value; 1-based)."""

    def __init__(self, epoch, batch, value):
        self.epoch, self.batch, self.value = epoch, batch, value
        super().__init__(f"training stopped: the loss became {value} at epoch {epoch}, batch {batch}")


class ResumeConflict(InputError):
    """A resumable checkpoint exists in the log directory, from a run with other settings."""


class NaNGuard(keras.callbacks.Callback):
    """Raise `NonFiniteLoss` as soon as a training batch's loss is not finite.

    Raising (rather than ``stop_training``) skips the epoch-end callbacks, so
    checkpoints and figures never see the broken weights.
    """

    def __init__(self):
        super().__init__()
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            raise NonFiniteLoss(self._epoch + 1, batch + 1, float(loss))


def resume_dir(logdir):
    """Where a run's resumable checkpoint lives."""
    return os.path.join(logdir, "resume")


class ResumeCheckpoint(keras.callbacks.Callback):
    """Atomically checkpoint model, optimizer and KL-schedule state (module docstring).

    Args:
      logdir: the run's log directory (the checkpoint goes to ``logdir/resume``).
      annealing: the run's `KLAnnealing` callback (its schedule state is saved).
      config: JSON-able run config; a resume with a different config is refused.
      every: period in epochs.
      write_logdir: where this process writes its checkpoint, if not ``logdir``
        (a non-chief worker of a multi-worker run; it resumes from the chief's).
      adjustments: JSON-able settings a resume may change (saved, and reported when changed).
    """

    def __init__(self, logdir, annealing, config, every=1, write_logdir=None, adjustments=None):
        super().__init__()
        self.path = resume_dir(logdir)
        self.write_path = resume_dir(write_logdir or logdir)
        self.annealing = annealing
        self.config = config
        self.adjustments = dict(adjustments or {})
        self.every = max(int(every), 1)

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if done % self.every and done != self.params.get("epochs"):
            return
        state = {"epochs_done": done, "schedule": self.annealing.schedule.get_state(),
                 "kl_history": self.annealing.history, "config": self.config, "adjustments": self.adjustments}
        with atomic_directory(self.write_path) as tmp:
            self.model.save_weights(os.path.join(tmp, WEIGHTS, "ckpt"), save_format="tf")
            with open(os.path.join(tmp, STATE_FILE), "w") as f:
                json.dump(state, f, default=float)

    def restore(self, model, strategy=None, progress=print):
        """Load a saved checkpoint into ``model`` (compiled); returns epochs done (0 if none).

        Args:
          model: the compiled model (its optimizer's slots are built here, under ``strategy``).
          strategy: the `tf.distribute.Strategy` the model was built under (None: default).
          progress: callable for one-line messages (a changed adjustable setting).

        Raises:
          ResumeConflict if the checkpoint was written by a run with another config,
          or does not hold every variable of the model and its optimizer.
        """
        if recover_directory(self.path):  # a kill between the two renames of the last checkpoint
            print(f"[dgbn] recovered the checkpoint {self.path!r} from an interrupted replacement", flush=True)
        state_file = os.path.join(self.path, STATE_FILE)
        if not os.path.exists(state_file):
            return 0
        with open(state_file) as f:
            state = json.load(f)
        if state.get("config") != self.config:
            changed = sorted(k for k in set(state.get("config", {})) | set(self.config)
                             if state.get("config", {}).get(k) != self.config.get(k))
            raise ResumeConflict(f"{self.path!r} holds a checkpoint of a run with other settings ({', '.join(changed)}); "
                             f"remove it or use another --logdir")
        # Adam's slots are created lazily on the first step; build them now so that the
        # match check below covers them (a lazily restored slot that is missing would
        # otherwise start from zero without a word).
        with (strategy or tf.distribute.get_strategy()).scope():
            model.optimizer.build(model.trainable_variables)
        status = model.load_weights(os.path.join(self.path, WEIGHTS, "ckpt"))
        try:
            status.assert_existing_objects_matched()
        except AssertionError as e:
            raise ResumeConflict(f"{self.path!r} does not hold every variable of this model and its optimizer "
                                 f"({str(e).splitlines()[0][:200]}); remove it or use another --logdir") from None
        status.expect_partial()  # entries of objects not built yet (compiled metrics) restore on first use
        for name, old in (state.get("adjustments") or {}).items():
            if self.adjustments.get(name, old) != old:
                progress(f"resuming with {name} {self.adjustments[name]:g} (was {old:g}): "
                         f"the schedule continues from the restored step")
        self.annealing.schedule.set_state(state["schedule"])
        self.annealing.history = [tuple(h) for h in state["kl_history"]]
        return int(state["epochs_done"])

    def clear(self):
        """Remove the checkpoint (after a run finished)."""
        shutil.rmtree(self.write_path, ignore_errors=True)


def resumable_fit(model, annealing, config, training_data, validation_data, epochs, steps_per_epoch, callbacks,
                  verbose, every=1, progress=print, strategy=None):
    """``model.fit`` that resumes from ``config.logdir/resume`` and stops on a non-finite loss.

    Args:
      model: a compiled `BayesianModel`.
      annealing: its `KLAnnealing` callback (first in the callback order).
      config: the run's settings (``logdir``; ``identity()`` identifies the run,
        ``adjustments()`` may change on resume).
      training_data: function ``initial_epoch -> dataset`` of endless batches, so
        a resumed run's data can continue where it stopped.
      validation_data, epochs, verbose: as for ``fit``.
      steps_per_epoch: training steps per epoch.
      callbacks: the other callbacks (TensorBoard, summaries), run after the checkpoint.
      every: checkpoint period in epochs (and always after the last epoch).
      progress: callable for one-line messages.
      strategy: the `tf.distribute.Strategy` the model was built under (None:
        default); a non-chief worker writes below ``logdir/workertemp_<id>``.

    Returns:
      The Keras history of the epochs run by this call: dict name -> list of floats.

    Raises:
      NonFiniteLoss: the loss became NaN or infinite (the checkpoint is kept).
    """
    write_logdir = config.logdir if strategy is None else worker_path(config.logdir, strategy)
    checkpoint = ResumeCheckpoint(config.logdir, annealing, config.identity(), every=every,
                                  write_logdir=write_logdir, adjustments=config.adjustments())
    initial = checkpoint.restore(model, strategy, progress)
    if initial:
        progress(f"resuming from {checkpoint.path} after epoch {initial} of {epochs}")
    history = model.fit(training_data(initial), validation_data=validation_data, epochs=epochs,
                        steps_per_epoch=steps_per_epoch, initial_epoch=initial,
                        callbacks=[annealing, NaNGuard(), checkpoint] + list(callbacks), verbose=verbose).history
    save_model_atomically(model, os.path.join(write_logdir, "checkpoint.keras"))
    checkpoint.clear()
    return {k: [float(v) for v in vals] for k, vals in history.items()}


def save_model_atomically(model, path):
    """``model.save(path)`` (Keras format) written beside and renamed into place."""
    from tfp_dgbn.atomic import writable_parent

    parent = writable_parent(path)
    tmp = os.path.join(parent, "." + os.path.basename(path) + f".tmp-{os.getpid()}.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
