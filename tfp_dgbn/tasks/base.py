"""The task contract, and the settings every training run shares (declared once; the CLI is built from them).

A *task* says only what differs between training jobs: how its data is made or
read (`Task.prepare`), how its model is built (`Task.build`), its figure
(`Task.figure`), how the result is evaluated (`Task.evaluate`, `Task.summary_lines`),
and its settings class: a dataclass deriving from `TrainSettings` that adds the
task's own options and overrides defaults. Everything else (seeding, the KL
schedule and its annealing callback, the distribution strategy, compile,
TensorBoard and posterior summaries, the resumable fit with its NaN guard,
chief-only writes, the atomic export, ``metrics.json`` and progress lines) is
done once, by `tfp_dgbn.tasks.runner.run`.

Settings fields are declared with `setting`, whose help text (and ``choices``,
``each`` for lists) ``dgbn fit TASK --help`` shows with the field's default.
"""
import dataclasses
import os
from dataclasses import dataclass, field

import numpy as np

from tfp_dgbn.fit import STRATEGIES
from tfp_dgbn.fit.schedules import from_spec
from tfp_dgbn.validate import InputError, check_positive_int


def setting(default, help, **cli):
    """A settings field: its default (a tuple for list options), one line of ``--help``, and ``**cli``:
    ``choices``, ``each`` (element type of a list option; default int) or ``cli=False`` (no option)."""
    return field(default=default, metadata={"help": help, **cli})


@dataclass
class TrainSettings:
    """Settings of every training run (one object, passed down; nothing global).

    Defaults were chosen on toy-gaussian (docs/toys.md): small posterior scales
    at start, Adam with a cosine decay, and enough epochs for the means to
    settle while the KL returns unused weights to the prior. A task's settings
    class derives from this one and changes what differs (docs/design.md).
    """

    task: str = setting(None, "the task (a key of tfp_dgbn.tasks.TASKS)", cli=False)
    epochs: int = setting(300, "training epochs")
    batch_size: int = setting(128, "global batch size (split over replicas)")
    learning_rate: float = setting(5e-3, "Adam's initial learning rate (cosine decay)")
    hidden: tuple = setting((32, 32), "hidden units per Flipout layer")
    activation: str = setting("relu", "activation of the hidden layers")
    prior_scale: float = setting(1.0, "prior stddev of the weights")
    init_scale: float = setting(1e-3, "initial posterior stddev of the weights")
    kl_schedule: str = setting("constant:weight=1", "KL weight schedule NAME:key=value,... (see dgbn schedules)")
    kl_update: str = setting("epoch", "when the KL weight is updated", choices=("epoch", "batch"))
    seed: int = setting(0, "seeds data, initialisation, Flipout and evaluation")
    strategy: str = setting("default", "tf.distribute strategy: one device, all local devices, or the "
                            "cluster in TF_CONFIG", choices=STRATEGIES)
    logdir: str = setting(None, "TensorBoard logs, checkpoint, figures, metrics.json (default runs/TASK)")
    out: str = setting(None, "SavedModel export directory (default saved_models/TASK)")
    plot_every: int = setting(50, "epochs between TensorBoard figures and posterior histograms")
    num_samples: int = setting(64, "weight draws S of the predictive in evaluation and figures")
    ensemble: int = setting(1, "independently trained networks whose predictives are mixed equally "
                            "(a Bayesian ensemble, exported as one model)")
    verbose: int = setting(1, "Keras verbosity (1: progress bar)", cli=False)

    #: settings that must be positive integers (a task's class extends this)
    positive = ("epochs", "batch_size", "num_samples", "plot_every", "ensemble")
    #: settings that do not identify a run (a resume with other values is allowed)
    cosmetic = ("verbose", "plot_every")
    #: settings a resumed run may change (reported when it does): after a divergence the
    #: advice is a smaller learning rate, and the cosine schedule continues from the
    #: restored step with the new peak rate
    adjustable = ("learning_rate",)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):  # list options are stored as tuples (hashable, JSON as lists)
                setattr(self, f.name, tuple(value))
        self.check()
        self.logdir = self.logdir or os.path.join("runs", self.task)
        self.out = self.out or os.path.join("saved_models", self.task)

    def check(self):
        """Validate every setting before any data is made (ValueError names the bad one)."""
        from tfp_dgbn.tasks import TASKS

        if self.task not in TASKS or not isinstance(self, TASKS[self.task].settings):
            names = sorted(n for n, t in TASKS.items() if isinstance(self, t.settings))
            raise InputError(f"unknown task {self.task!r} for {type(self).__name__}; choose one of {names}")
        for name in self.positive:
            check_positive_int(getattr(self, name), name)
        if not (np.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise InputError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        for f in dataclasses.fields(self):
            value, choices = getattr(self, f.name), f.metadata.get("choices")
            if choices and value not in choices:
                raise InputError(f"{f.name} must be one of {list(choices)}, got {value!r}")
            if isinstance(f.default, tuple) and f.metadata.get("each", int) is int:  # layer sizes
                setattr(self, f.name, tuple(check_positive_int(v, f.name) for v in value))
        from_spec(self.kl_schedule)

    def to_dict(self):
        """JSON-able dict of every setting (lists for tuples)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def identity(self):
        """The settings that identify a run (a resumable checkpoint must match them)."""
        return {k: v for k, v in self.to_dict().items() if k not in self.cosmetic + self.adjustable}

    def adjustments(self):
        """The settings a resumed run may change (`adjustable`), name -> value."""
        return {k: v for k, v in self.to_dict().items() if k in self.adjustable}


@dataclass
class SimulatedSizes(TrainSettings):
    """Settings of a task whose data are simulated: examples per split (disjoint seeds)."""

    n_train: int = setting(2000, "training examples (per epoch when simulated on the fly)")
    n_val: int = setting(500, "validation examples")
    n_test: int = setting(5000, "held-out test examples")

    positive = TrainSettings.positive + ("n_train", "n_val", "n_test")


@dataclass
class TaskData:
    """What `Task.prepare` returns; a task may derive from it to carry more (test arrays, the toy, ...).

    Attributes:
      source: the training examples (a `tfp_dgbn.dataset.sources.Source`).
      validation: (inputs, targets) arrays scored after each epoch.
      metadata: what the export records about the data (feature names and ranges, ...).
      calibration: (inputs, targets) arrays no network trains on, on which the runner fits the predictive's
        spread after training (`tfp_dgbn.evaluate.recalibrate`), or None (no recalibration).
    """

    source: object
    validation: tuple
    metadata: dict
    calibration: tuple = None


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


class Task:
    """One kind of training job: what differs from every other (module docstring).

    Attributes:
      name: the task's name (``dgbn fit NAME``, ``runs/NAME``).
      settings: its settings class (a `TrainSettings` dataclass).
      help: one line for ``dgbn fit --help``.
      lr_floor: the cosine decay ends at this fraction of the learning rate.
      checkpoint_every: epochs between resumable checkpoints (cheap epochs: several).
      figure_file, figure_tag: the task's figure in the log directory and in TensorBoard.
    """

    name = None
    settings = TrainSettings
    help = ""
    lr_floor = 0.1
    checkpoint_every = 10
    figure_file = None
    figure_tag = None

    def prepare(self, settings, progress):
        """The run's data: a `TaskData` (training source, validation arrays, metadata)."""
        raise NotImplementedError

    def build(self, settings, data, kl_weight):
        """A fresh, uncompiled `BayesianModel` (called once per strategy scope; seed from ``settings``)."""
        raise NotImplementedError

    def head_candidates(self, settings):
        """The output laws the runner chooses between on the calibration rows (`tfp_dgbn.tasks.runner`), or
        () when ``settings`` name one."""
        return ()

    def steps_per_epoch(self, settings, source):
        """Gradient steps in one epoch: one pass over ``source``'s training examples at the batch size."""
        return source.steps_per_epoch(settings.batch_size)

    def describe(self, settings, data):
        """What is being fitted, for the progress line."""
        return f"{self.name} ({data.source.name})"

    def figure(self, settings, data, predictor):
        """The task's figure of ``predictor`` (Matplotlib), or None."""
        return None

    def evaluate(self, settings, data, predictor, progress):
        """Held-out metrics of the trained ``predictor``: (metrics dict, extra output paths)."""
        raise NotImplementedError

    def summary_lines(self, metrics):
        """Human-readable lines of the metrics (printed by ``dgbn fit``)."""
        return []
