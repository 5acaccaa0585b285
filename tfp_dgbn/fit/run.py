"""One training run of a toy problem, from config to export: the `dgbn fit` job.

data -> Bayesian MLP -> Keras ``fit`` (KL annealing, TensorBoard, checkpoint)
-> SavedModel export -> held-out evaluation and figures.
"""
import dataclasses
import json
import os
import time
from dataclasses import dataclass

import numpy as np

import tfp_dgbn
from tfp_dgbn.atomic import atomic_file
from tfp_dgbn.evaluate import evaluate_toy
from tfp_dgbn.export import export_predictive
from tfp_dgbn.fit.callbacks import (FigureSummary, KLAnnealing, PosteriorSummaries,
                                    stddev_summary)
from tfp_dgbn.fit.distribute import build_and_compile, finish_on_chief, make_strategy, worker_path
from tfp_dgbn.fit.resume import resumable_fit
from tfp_dgbn.fit.schedules import from_spec
from tfp_dgbn.model.heads import make_head
from tfp_dgbn.model.mlp import bayesian_mlp
from tfp_dgbn.model.variational import check_num_train
from tfp_dgbn.plots import plot_history, plot_predicted_vs_true, save_figure
from tfp_dgbn.predict import model_predictor
from tfp_dgbn.simulate.toys import make_toy
from tfp_dgbn.tfk import keras

TASK_DEFAULTS = {
    "toy-gaussian": {"head": "normal"},
    "toy-discrete": {"head": None},  # None: the toy's own family
    "ring-residual": {"head": "normal"},
    "ring-count": {"head": "poisson"},
}


def check_fit_settings(config, positive_ints):
    """Validate the settings every training config shares (ValueError names the bad one).

    Checks n_train, the named positive integers, learning_rate and the KL
    schedule spec, so a bad value fails before any data is made.
    """
    if hasattr(config, "n_train"):  # (a table run learns it from its file)
        check_num_train(config.n_train)
    for name in positive_ints:
        value = getattr(config, name)
        if isinstance(value, bool) or int(value) != value or int(value) <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not (np.isfinite(config.learning_rate) and config.learning_rate > 0):
        raise ValueError(f"learning_rate must be > 0, got {config.learning_rate!r}")
    from_spec(config.kl_schedule)
    from tfp_dgbn.fit.distribute import STRATEGIES

    if config.strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {config.strategy!r}; choose one of {list(STRATEGIES)}")


@dataclass
class FitConfig:
    """Every setting of one run (passed down; nothing global).

    Defaults were chosen on toy-gaussian (docs/toys.md): small posterior
    scales at start, Adam at 5e-3 with a cosine decay, and enough epochs for
    the means to settle while the KL returns unused weights to the prior.

    Attributes:
      task: "toy-gaussian", "toy-discrete", or the ring-derived "ring-residual"
        (hit residual given the width) and "ring-count" (hits given the radius).
      law: for toy-discrete, "poisson" or "negbin".
      head: "normal", "poisson", "categorical" or None for the task's default.
      n_train, n_val, n_test: examples in each split (disjoint seeds).
      epochs, batch_size, learning_rate: optimisation.
      hidden, activation: the MLP.
      prior_scale, init_scale: prior stddev and initial posterior stddev.
      kl_schedule: schedule spec, e.g. "constant:weight=1", "step:w0=0.01,w1=1,epoch=50".
      kl_update: "epoch" or "batch".
      seed: seeds data, initialisation and Flipout.
      strategy: "default", "mirrored" or "multiworker" (`tfp_dgbn.fit.distribute`);
        ``batch_size`` is the global batch, split over replicas.
      logdir: TensorBoard logs, checkpoint, figures, metrics.json.
      out: SavedModel export directory.
      plot_every: epochs between TensorBoard figures and histograms.
      num_samples: weight draws S of the predictive in evaluation and figures.
      verbose: Keras verbosity (1 = progress bar).
    """

    task: str = "toy-gaussian"
    law: str = "poisson"
    head: str = None
    n_train: int = 2000
    n_val: int = 500
    n_test: int = 5000
    epochs: int = 300
    batch_size: int = 128
    learning_rate: float = 5e-3
    hidden: tuple = (32, 32)
    activation: str = "relu"
    prior_scale: float = 1.0
    init_scale: float = 1e-3
    kl_schedule: str = "constant:weight=1"
    kl_update: str = "epoch"
    seed: int = 0
    strategy: str = "default"
    logdir: str = None
    out: str = None
    plot_every: int = 50
    num_samples: int = 64
    verbose: int = 1

    def __post_init__(self):
        check_fit_settings(self, ("n_val", "n_test", "epochs", "batch_size", "num_samples"))
        if self.task not in TASK_DEFAULTS:
            raise ValueError(f"unknown task {self.task!r}; choose one of {sorted(TASK_DEFAULTS)}")
        self.hidden = tuple(int(h) for h in self.hidden)
        self.logdir = self.logdir or os.path.join("runs", self.task)
        self.out = self.out or os.path.join("saved_models", self.task)

    def toy(self):
        """The problem instance."""
        return make_toy(self.task, law=self.law) if self.task == "toy-discrete" else make_toy(self.task)

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d


@dataclass
class FitResult:
    """What a run returns: the model, its predictor, history and metrics, and where files went.

    On a non-chief worker of a multi-worker run only ``history`` is set (the chief exports and evaluates).
    """

    model: object
    predictor: object
    history: dict
    metrics: dict
    paths: dict


def _progress(message):
    print(f"[dgbn] {message}", flush=True)


def run_fit(config):
    """Train, export and evaluate one run; see `FitConfig`.

    Returns:
      `FitResult`; also writes ``config.out`` (SavedModel), and in
      ``config.logdir``: TensorBoard events, ``checkpoint.keras``,
      ``predicted_vs_true.png``, ``history.png`` and ``metrics.json``.
    """
    t0 = time.time()
    keras.utils.set_random_seed(config.seed)
    toy = config.toy()
    x_train, y_train = toy.sample(config.n_train, seed=config.seed)
    x_val, y_val = toy.sample(config.n_val, seed=config.seed + 1)
    x_test, y_test = toy.sample(config.n_test, seed=config.seed + 2)

    family = config.head or TASK_DEFAULTS[config.task]["head"] or toy.family
    head_kwargs = {"num_classes": toy.max_count + 1} if family == "categorical" else {}
    schedule = from_spec(config.kl_schedule)

    def build():  # a fresh head each time: a layer called twice has two graph positions
        return bayesian_mlp(1, make_head(family, **head_kwargs), config.n_train, hidden=config.hidden,
                            activation=config.activation, seed=config.seed, prior_scale=config.prior_scale,
                            init_scale=config.init_scale, kl_weight=schedule(0.0),
                            feature_mean=[0.5 * (toy.x_low + toy.x_high)],
                            feature_std=[(toy.x_high - toy.x_low) / np.sqrt(12.0)],
                            name=config.task.replace("-", "_"))

    steps = int(np.ceil(config.n_train / config.batch_size))
    strategy = make_strategy(config.strategy)
    model = build_and_compile(strategy, build, config.learning_rate, config.epochs * steps, alpha=0.1)

    logdir = worker_path(config.logdir, strategy)
    os.makedirs(logdir, exist_ok=True)
    metadata = {"task": config.task, "feature_names": list(toy.feature_names),
                "feature_ranges": [[toy.x_low, toy.x_high]], "training_config": config.to_dict(),
                "kl_schedule": schedule.spec()}
    predictor = model_predictor(model, metadata)
    annealing = KLAnnealing(schedule, update=config.kl_update)
    callbacks = [
        keras.callbacks.TensorBoard(logdir, histogram_freq=0, write_graph=False),
        PosteriorSummaries(logdir, every=max(config.plot_every // 5, 1)),
        FigureSummary(logdir, lambda m: plot_predicted_vs_true(
            predictor, toy, num_samples=config.num_samples), every=config.plot_every),
    ]
    _progress(f"fitting {config.task} ({family} head, {config.n_train} examples, "
              f"{config.epochs} epochs, KL schedule {schedule.spec()}, "
              f"{strategy.num_replicas_in_sync} replica(s))")
    # A toy epoch takes ~0.1 s: checkpoint every 10 epochs, not every one.
    history = resumable_fit(model, annealing, config, x_train, y_train, (x_val, y_val), config.epochs,
                            config.batch_size, callbacks, config.verbose, every=10, progress=_progress,
                            strategy=strategy)
    model = finish_on_chief(model, build, strategy, config.logdir)
    if model is None:  # a non-chief worker: the chief exports and evaluates
        return FitResult(None, None, history, {}, {})
    predictor = model_predictor(model, metadata)

    _progress(f"exporting SavedModel to {config.out}")
    export_predictive(model, config.out, metadata)
    _progress(f"evaluating on {config.n_test} held-out examples")
    metrics = evaluate_toy(predictor, toy, x_test, y_test, num_samples=config.num_samples)
    metrics["posterior_stddev"] = stddev_summary(model)
    metrics["final_kl_weight"] = float(model.kl_weight.numpy())
    metrics["seconds"] = time.time() - t0
    metrics["version"] = tfp_dgbn.__version__

    paths = {"savedmodel": config.out, "logdir": config.logdir,
             "plot": os.path.join(config.logdir, "predicted_vs_true.png"),
             "history_plot": os.path.join(config.logdir, "history.png"),
             "metrics": os.path.join(config.logdir, "metrics.json")}
    fig = plot_predicted_vs_true(predictor, toy, data=(x_train, y_train), num_samples=config.num_samples)
    save_figure(fig, paths["plot"])
    save_figure(plot_history(history), paths["history_plot"])
    with atomic_file(paths["metrics"], "w") as f:
        json.dump({"metrics": metrics, "config": config.to_dict()}, f, indent=2, default=float)
    return FitResult(model, predictor, history, metrics, paths)
