"""`dgbn fit table`: a Bayesian MLP on a researcher's own CSV/NPZ data, exported and evaluated.

data -> seeded train / held-out split -> Bayesian MLP (standardisation built in)
-> Keras ``fit`` (KL annealing, TensorBoard, resumable) -> SavedModel export
-> `tfp_dgbn.evaluate_report` on the held-out rows (report.md, figures, TensorBoard).
"""
import dataclasses
import os
from dataclasses import dataclass

import numpy as np

from tfp_dgbn.dataset.tabular import load_table, split_table
from tfp_dgbn.export import export_predictive
from tfp_dgbn.fit.callbacks import KLAnnealing, PosteriorSummaries
from tfp_dgbn.fit.distribute import build_and_compile, finish_on_chief, make_strategy, worker_path
from tfp_dgbn.fit.resume import resumable_fit
from tfp_dgbn.fit.schedules import from_spec
from tfp_dgbn.model.heads import make_head
from tfp_dgbn.model.mlp import bayesian_mlp
from tfp_dgbn.predict import model_predictor
from tfp_dgbn.tfk import keras


@dataclass
class TableFitConfig:
    """Settings of a run on tabular data (docs/own_data.md for the file format).

    Attributes:
      data: ``.csv`` or ``.npz`` file; target: its target column; features:
        feature columns (default: all others).
      head: "normal" (real targets), "poisson" (counts) or "categorical" (classes 0..K-1).
      holdout: fraction of rows held out (seeded split) for the evaluation report.
      Others as `tfp_dgbn.fit.run.FitConfig`.
    """

    data: str = None
    target: str = None
    features: tuple = None
    head: str = "normal"
    holdout: float = 0.2
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
    logdir: str = os.path.join("runs", "table")
    out: str = os.path.join("saved_models", "table")
    plot_every: int = 50
    num_samples: int = 64
    verbose: int = 1

    def __post_init__(self):
        from tfp_dgbn.fit.run import check_fit_settings

        if not self.data or not self.target:
            raise ValueError("dgbn fit table needs --data FILE.csv|FILE.npz and --target COLUMN")
        if self.head not in ("normal", "poisson", "categorical"):
            raise ValueError(f"head must be normal, poisson or categorical, got {self.head!r}")
        check_fit_settings(self, ("epochs", "batch_size", "num_samples", "plot_every"))
        self.hidden = tuple(int(h) for h in self.hidden)
        self.features = None if self.features is None else tuple(self.features)

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        d["features"] = None if self.features is None else list(self.features)
        return d


def _progress(message):
    print(f"[dgbn] {message}", flush=True)


def run_table_fit(config):
    """Train, export and evaluate on the file's rows; see `TableFitConfig`.

    Returns:
      `tfp_dgbn.fit.run.FitResult`; the evaluation report is in ``config.logdir/evaluation/``.
    """
    from tfp_dgbn.evaluate_report import write_report
    from tfp_dgbn.fit.run import FitResult

    keras.utils.set_random_seed(config.seed)
    counts = config.head != "normal"
    x, y, names = load_table(config.data, config.target, config.features, integer_target=counts)
    (x_tr, y_tr), (x_ho, y_ho) = split_table(x, y, config.holdout, config.seed)
    head_kwargs = {"num_classes": int(y.max()) + 1} if config.head == "categorical" else {}
    schedule = from_spec(config.kl_schedule)
    mean, std = x_tr.mean(axis=0), np.maximum(x_tr.std(axis=0), 1e-6)

    def build():
        return bayesian_mlp(x.shape[1], make_head(config.head, **head_kwargs), len(y_tr), hidden=config.hidden,
                            activation=config.activation, seed=config.seed, prior_scale=config.prior_scale,
                            init_scale=config.init_scale, kl_weight=schedule(0.0), feature_mean=mean,
                            feature_std=std, name="table")

    strategy = make_strategy(config.strategy)
    steps = int(np.ceil(len(y_tr) / config.batch_size))
    model = build_and_compile(strategy, build, config.learning_rate, config.epochs * steps, alpha=0.1)
    logdir = worker_path(config.logdir, strategy)
    metadata = {"task": "table", "data": os.path.abspath(config.data), "target": config.target,
                "feature_names": list(names), "feature_ranges": [[float(a), float(b)] for a, b in
                                                                 zip(x_tr.min(axis=0), x_tr.max(axis=0))],
                "training_config": config.to_dict(), "kl_schedule": schedule.spec()}
    annealing = KLAnnealing(schedule, update=config.kl_update)
    callbacks = [keras.callbacks.TensorBoard(logdir, histogram_freq=0, write_graph=False),
                 PosteriorSummaries(logdir, every=config.plot_every)]
    _progress(f"fitting a Bayesian MLP to {config.data} ({len(y_tr)} training rows, {len(y_ho)} held out; "
              f"target {config.target!r}, {config.head} head, features {', '.join(names)})")
    history = resumable_fit(model, annealing, config, x_tr, y_tr.astype("float32"),
                            (x_ho, y_ho.astype("float32")), config.epochs, config.batch_size, callbacks,
                            config.verbose, every=10, progress=_progress, strategy=strategy)
    model = finish_on_chief(model, build, strategy, config.logdir)
    if model is None:
        return FitResult(None, None, history, {}, {})
    _progress(f"exporting SavedModel to {config.out}")
    export_predictive(model, config.out, metadata)
    predictor = model_predictor(model, metadata)
    report = os.path.join(config.logdir, "evaluation")
    _progress(f"evaluating on the {len(y_ho)} held-out rows -> {report}/report.md")
    metrics = write_report(predictor, x_ho, y_ho, report, model_path=config.out,
                           data_name=f"{config.data}, held-out {config.holdout:.0%}",
                           num_samples=config.num_samples, seed=config.seed)
    paths = {"savedmodel": config.out, "logdir": config.logdir, "report": os.path.join(report, "report.md")}
    return FitResult(model, predictor, history, metrics, paths)
