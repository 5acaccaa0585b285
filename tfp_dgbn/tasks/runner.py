"""The one place a training run is driven: settings -> data -> model -> fit -> export -> evaluation.

Whatever the task (`tfp_dgbn.tasks.base.Task`), `run` does the same steps:
seed; the task's data; the KL schedule; the model built and compiled under the
distribution strategy (Adam, cosine decay); TensorBoard, posterior histograms
and the task's figure as callbacks; the resumable fit with the NaN guard
(`tfp_dgbn.fit.resume`); on the chief only: the atomic SavedModel export, the
task's evaluation, the figures, and ``metrics.json``.
"""
import dataclasses
import json
import os
import time

import numpy as np

import tfp_dgbn
from tfp_dgbn.atomic import atomic_file
from tfp_dgbn.evaluate.recalibrate import calibrate_spread
from tfp_dgbn.export import export_predictive
from tfp_dgbn.fit.callbacks import EpochTensorBoard, FigureSummary, KLAnnealing, PosteriorSummaries, stddev_summary
from tfp_dgbn.fit.distribute import build_and_compile, finish_on_chief, make_strategy, worker_path
from tfp_dgbn.fit.kernel_spread import has_kernel_spread, refit_kernel_spread
from tfp_dgbn.fit.resume import resumable_fit, save_model_atomically
from tfp_dgbn.fit.schedules import from_spec
from tfp_dgbn.plots.figures import plot_history, save_figure
from tfp_dgbn.predict import model_predictor
from tfp_dgbn.tasks.base import FitResult
from tfp_dgbn.tfk import keras


def progress_line(message):
    """The runner's one-line progress messages, ``[dgbn] ...``."""
    print(f"[dgbn] {message}", flush=True)


def run(settings, progress=progress_line):
    """Train, export and evaluate one run of ``settings.task``.

    Args:
      settings: the task's settings object (`tfp_dgbn.tasks.base.TrainSettings` subclass).
      progress: callable for one-line progress messages.

    Returns:
      `FitResult` (with ``settings.ensemble`` K > 1: ``model`` is the list of K
      networks, ``history`` the first one's; with calibration rows in the task's data, a
      `tfp_dgbn.predict.Recalibrated` around the network(s), exported and evaluated as such). Writes ``settings.out``
      (SavedModel) and in ``settings.logdir``: TensorBoard events,
      ``checkpoint.keras``, the task's figure, ``history.png`` (image loss, KL
      loss, KL weight) and ``metrics.json`` (``{"metrics", "config"}``); an
      ensemble's networks train one after another in ``logdir/member_k``. When the task chooses the head
      (`Task.head_candidates`, ``dgbn fit table --head auto``), each head's networks log to
      ``logdir/head_NAME`` and ``metrics["head_choice"]`` (also in the export's metadata) holds the choice.
    """
    from tfp_dgbn.tasks import TASKS

    task = TASKS[settings.task]
    t0 = time.time()
    keras.utils.set_random_seed(settings.seed)
    data = task.prepare(settings, progress)
    strategy = make_strategy(settings.strategy)
    metadata = {"task": task.name, **data.metadata, "training_config": settings.to_dict(),
                "kl_schedule": from_spec(settings.kl_schedule).spec()}
    heads = task.head_candidates(settings)
    recalibrated = None
    if heads:  # each head's networks train on the same rows; the calibration rows pick one (`_choose_head`)
        trained, recalibrated, choice = _choose_head(task, settings, heads, data, strategy, metadata, progress)
        if choice:
            metadata["head_choice"] = choice
    else:
        trained = _train_networks(task, settings, data, strategy, metadata, progress)
    models, history, predictor, refits = trained
    if not models:  # a non-chief worker: the chief exports and evaluates
        return FitResult(None, None, history, {}, {})
    model, calibrated = recalibrated or _recalibrate(models, data, settings)
    if calibrated:  # why: `tfp_dgbn.evaluate.recalibrate`
        progress(f"predictive spread recalibrated on {calibrated['rows']} held-out training rows: tau = "
                 f"{calibrated['spread']:.3f} (NLL {calibrated['nll_before']:.3f} -> {calibrated['nll_after']:.3f} "
                 f"nats per row)")
    if len(models) > 1 or predictor is None or calibrated:  # else the training predictor's draws are traced
        predictor = model_predictor(model, metadata)

    progress(f"exporting SavedModel to {settings.out}" + (f" ({len(models)} networks)" if len(models) > 1 else ""))
    export_predictive(model, settings.out, metadata)
    metrics, paths = task.evaluate(settings, data, predictor, progress)
    scales = [stddev_summary(m) for m in models]
    warning = narrow_posterior_warning(scales, settings.init_scale)
    if warning:
        progress(warning)
    metrics.update(posterior_stddev=scales[0], final_kl_weight=float(models[0].kl_weight.numpy()),
                   prior_scale=settings.prior_scale, ensemble=len(models), seconds=time.time() - t0,
                   version=tfp_dgbn.__version__)
    if calibrated:
        metrics["spread_calibration"] = calibrated
    if "head_choice" in metadata:
        metrics["head_choice"] = metadata["head_choice"]
    if refits:  # one per network
        metrics["kernel_spread"] = refits[0] if len(refits) == 1 else refits

    paths = {"savedmodel": settings.out, "logdir": settings.logdir, **paths,
             "history_plot": os.path.join(settings.logdir, "history.png"),
             "metrics": os.path.join(settings.logdir, "metrics.json")}
    if task.figure_file:
        paths["plot"] = save_figure(task.figure(settings, data, predictor),
                                    os.path.join(settings.logdir, task.figure_file))
    save_figure(plot_history(history), paths["history_plot"])
    with atomic_file(paths["metrics"], "w") as f:
        json.dump({"metrics": metrics, "config": settings.to_dict()}, f, indent=2, default=float)
    return FitResult(model, predictor, history, metrics, paths)


def _train_networks(task, settings, data, strategy, metadata, progress):
    """Train the ``settings.ensemble`` networks of one run, one after another (`_train` each).

    Returns:
      (the chief's networks, a list (empty on other workers), the first network's history, the training
      `Predictor` of the last network or None, the kernel-spread refits).
    """
    models, history, predictor, refits = [], None, None, []
    for k in range(settings.ensemble):  # every worker trains every network: the steps are collective
        model, member_history, predictor, refit = _train(task, member_settings(settings, k), data, strategy,
                                                         metadata, progress)
        history = history or member_history
        if model is not None:
            models.append(model)
            refits += [refit] if refit else []
    return models, history, predictor, refits


def narrow_posterior_warning(scales, init_scale):
    """The warning for posterior scales still near their start, or None.

    Args:
      scales: each network's `stddev_summary` (an ensemble's every network: each is its own posterior).
      init_scale: the posterior scales' initial value.

    Returns:
      A line when the lowest median is within a decade of ``init_scale``: a point estimate in Bayesian
      clothes (iris at one step per epoch: median 0.0023, mutual information 0.000), else None.
    """
    low = min(s["median"] for s in scales)
    if low >= 10 * init_scale:
        return None
    return (f"warning: the posterior scales are within a decade of their start (median {low:.2g}"
            + (f", the lowest of {len(scales)} networks" if len(scales) > 1 else "")
            + f", init_scale {init_scale:g}), so the predictive holds almost no epistemic uncertainty: train for "
            "more steps (--epochs; --min-steps on a table)")


def _recalibrate(models, data, settings):
    """The run's model (one network or the list) and, with calibration rows, its spread fitted on them.

    Returns:
      (the model, or a `tfp_dgbn.predict.Recalibrated` around it; `calibrate_spread`'s dict or None).
    """
    model = models[0] if len(models) == 1 else models
    if data.calibration is None:
        return model, None
    return calibrate_spread(model, *data.calibration, num_samples=settings.num_samples)


def _choose_head(task, settings, heads, data, strategy, metadata, progress):
    """Train the run's networks once per head in ``heads`` and keep those of the best on the calibration rows.

    The rows the spread is recalibrated on (``data.calibration``; no network trains on them) score each
    head's predictive (its ensemble's mixture) by mean NLL before any recalibration (`calibrate_spread`'s
    ``nll_before``), the rule of ``dgbn benchmark uci --head auto`` (docs/uci.md). Each head's networks log
    to ``logdir/head_NAME``, so TensorBoard shows both fits side by side.

    Returns:
      (`_train_networks`'s tuple for the chosen head, `_recalibrate`'s pair for it, a dict: ``chosen``,
      ``nll`` (head -> nats per row), ``rows``; on a non-chief worker the last head's empty tuple, None, None).
    """
    trained, recalibrated, nll = {}, {}, {}
    for head in heads:  # every worker trains every head: the steps are collective
        own = dataclasses.replace(settings, head=head, logdir=os.path.join(settings.logdir, f"head_{head}"))
        trained[head] = _train_networks(task, own, data, strategy, metadata, progress)
        if trained[head][0]:  # the chief
            recalibrated[head] = _recalibrate(trained[head][0], data, settings)
            nll[head] = recalibrated[head][1]["nll_before"]
            progress(f"{head} head: NLL {nll[head]:.4f} nats per row on the {recalibrated[head][1]['rows']} "
                     "calibration rows")
    if not nll:
        return trained[heads[-1]], None, None
    chosen = min(nll, key=nll.get)
    progress(f"head chosen on the calibration rows: {chosen}")
    return trained[chosen], recalibrated[chosen], {"chosen": chosen, "nll": nll,
                                                   "rows": recalibrated[chosen][1]["rows"]}


def member_settings(settings, k):
    """The settings of network k of an ensemble: its own seed (k = 0 keeps the run's) and log directory."""
    if settings.ensemble == 1:
        return settings
    seed = settings.seed if k == 0 else int(np.random.SeedSequence([settings.seed, k]).generate_state(1)[0] >> 1)
    return dataclasses.replace(settings, seed=seed, ensemble=1, logdir=os.path.join(settings.logdir, f"member_{k}"))


def _train(task, settings, data, strategy, metadata, progress):
    """Build, compile and fit one network of ``task``.

    Returns:
      (model on the chief or None on other workers, history, the training figures' `Predictor` of that
      model, or None when the chief's model is a copy built outside the strategy, and for a head with a
      learned kernel the chief's refit of its spread (`refit_kernel_spread`'s dict), else None).
    """
    schedule = from_spec(settings.kl_schedule)
    keras.utils.set_random_seed(settings.seed)

    def build():  # a fresh model each call: finish_on_chief rebuilds it outside the strategy
        return task.build(settings, data, schedule(0.0))

    source = data.source
    steps = task.steps_per_epoch(settings, source)
    model = build_and_compile(strategy, build, settings.learning_rate, settings.epochs * steps,
                              alpha=task.lr_floor)
    logdir = worker_path(settings.logdir, strategy)
    os.makedirs(logdir, exist_ok=True)
    predictor = model_predictor(model, metadata)
    annealing = KLAnnealing(schedule, update=settings.kl_update)
    callbacks = [EpochTensorBoard(logdir, histogram_freq=0, write_graph=False),
                 PosteriorSummaries(logdir, every=settings.plot_every)]
    if task.figure_tag:
        callbacks.append(FigureSummary(logdir, lambda _: task.figure(settings, data, predictor),
                                       tag=task.figure_tag, every=settings.plot_every))
    progress(f"fitting {task.describe(settings, data)}: {settings.epochs} epochs of {steps} step{'s' * (steps > 1)}, "
             f"KL schedule {schedule.spec()}, {strategy.num_replicas_in_sync} replica(s); "
             "loss = nll (data) + kl (weighted KL)"
             + (f"; logs in {settings.logdir}" if os.path.basename(settings.logdir).startswith("member_") else ""))

    def training_data(initial_epoch):  # a resumed run continues a simulated stream where it stopped
        return source.distributed(strategy, settings.batch_size, initial_epoch * steps)

    history = resumable_fit(model, annealing, settings, training_data,
                            validation_dataset(data.validation, settings.batch_size), settings.epochs,
                            steps, callbacks, settings.verbose, every=task.checkpoint_every, progress=progress,
                            strategy=strategy)
    finished = finish_on_chief(model, build, strategy, settings.logdir)
    refit = None
    if finished is not None and has_kernel_spread(finished):  # why: `tfp_dgbn.fit.kernel_spread`
        refit = refit_kernel_spread(finished, *data.validation)
        progress(f"kernel spread refit on {refit['rows']} validation examples, the trained network fixed: "
                 f"{refit['trained']:.4f} -> {refit['refit']:.4f} (data term {refit['nll_trained']:.2f} -> "
                 f"{refit['nll_refit']:.2f} nats per example)")
        # the fit saved the model as training left it; the saved model is the one exported
        save_model_atomically(finished, os.path.join(settings.logdir, "checkpoint.keras"))
    return finished, history, predictor if finished is model else None, refit


def validation_dataset(validation, batch_size):
    """The validation arrays (inputs, targets) as a cached, batched `tf.data.Dataset`.

    Given arrays, Keras validates in batches of 32 and re-slices the arrays through
    an index map at every epoch's evaluation; a job of 300 short epochs (the toys)
    evaluates 300 times, so that per-epoch cost adds up (`benchmarks/job_overhead.py`).
    Batches are the training batch size. Sharded by data under a multi-worker
    strategy, as Keras shards arrays.
    """
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(tuple(validation)).batch(batch_size).cache()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def fit(task, **settings):
    """Run ``task`` (a name in `tfp_dgbn.tasks.TASKS`) with settings overriding its defaults; see `run`.

    >>> from tfp_dgbn.tasks import fit
    >>> result = fit("toy-gaussian", epochs=50, verbose=0)   # doctest: +SKIP
    >>> result.metrics["nll_gap"]                           # doctest: +SKIP
    """
    from tfp_dgbn.tasks import make_settings

    return run(make_settings(task, **settings))
