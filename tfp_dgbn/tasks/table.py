"""The table task (`dgbn fit table`): a Bayesian MLP on a researcher's own CSV/NPZ data.

Data: the file's rows (docs/own_data.md), split into training and held-out
rows by a seeded permutation; model: a Bayesian MLP with the inputs
standardised inside it and a head that starts at the training targets in their
own units (`tfp_dgbn.model.heads.head_for_targets`); evaluation: the calibration / uncertainty report
(`tfp_dgbn.evaluate.report`) on the held-out rows, in ``<logdir>/evaluation/``.
"""
import math
import os
from dataclasses import dataclass

import numpy as np

from tfp_dgbn.dataset.tabular import load_table, split_table
from tfp_dgbn.tasks.base import Task, TaskData, TrainSettings, setting
from tfp_dgbn.validate import InputError


@dataclass
class TableSettings(TrainSettings):
    """Settings of a run on a table: `TrainSettings` plus the file, its columns, the head and the held-out share."""

    task: str = setting("table", "the table task", cli=False)
    data: str = setting(None, "your .csv or .npz file (docs/own_data.md); required")
    target: str = setting(None, "the target column; required")
    features: tuple = setting(None, "feature columns (default: all other columns)", each=str)
    head: str = setting("normal", "output law: real targets (normal; student-t for heavy-tailed errors; auto: "
                        "both trained, the better on the --calibrate rows kept), counts (poisson), or classes "
                        "0..K-1 (categorical)", choices=("normal", "student-t", "auto", "poisson", "categorical"))
    min_steps: int = setting(2000, "gradient steps in all at the least: on a small table one pass is a few "
                             "steps, so each epoch is made longer (more passes) until epochs x steps reaches this "
                             "(0: one pass per epoch; docs/own_data.md)")
    missing: tuple = setting(None, "cell texts that mark a missing value (e.g. --missing '' '?' NA): rows with "
                             "one in the target or a feature column are dropped and counted (default: an error)",
                             each=str)
    holdout: float = setting(0.2, "fraction of rows held out (seeded split) for the evaluation report")
    calibrate: float = setting(0.0, "fraction of the training rows held out to recalibrate the predictive's "
                               "spread (normal or student-t head; 0: off): one factor, fitted on those rows by "
                               "likelihood, scales it about its mean; an ensemble's mixture over-covers without it")

    def check(self):
        if not self.data or not self.target:
            raise InputError("dgbn fit table needs --data FILE.csv|FILE.npz and --target COLUMN")
        if not (isinstance(self.calibrate, (int, float)) and 0 <= self.calibrate < 1):
            raise InputError(f"calibrate must be in [0, 1), got {self.calibrate!r}")
        from tfp_dgbn.predict import SPREAD_FAMILIES

        if self.head == "auto" and not self.calibrate:
            raise InputError("head 'auto' chooses between normal and student-t on rows no network trains on: "
                             "give it a calibrate share (e.g. --calibrate 0.2)")
        if self.calibrate and self.head not in SPREAD_FAMILIES + ("auto",):
            raise InputError(f"calibrate needs a head with a location and a scale to recalibrate "
                             f"({' or '.join(SPREAD_FAMILIES)}); the head is {self.head!r}")
        if self.missing is not None and (isinstance(self.missing, str) or not all(isinstance(m, str)
                                                                                   for m in self.missing)):
            raise InputError(f"missing must be a list of cell texts (e.g. ['', '?', 'NA']), got {self.missing!r}")
        if not (isinstance(self.min_steps, int) and not isinstance(self.min_steps, bool) and self.min_steps >= 0):
            raise InputError(f"min_steps must be an integer >= 0, got {self.min_steps!r}")
        super().check()


@dataclass
class TableData(TaskData):
    """A table run's data: the held-out rows and the model's head arguments."""

    held: tuple = None
    head_kwargs: dict = None


class TableTask(Task):
    """A Bayesian MLP on the user's table (module docstring)."""

    name = "table"
    settings = TableSettings
    help = "your own CSV/NPZ table: regression, counts or classes (docs/own_data.md)"

    def prepare(self, s, progress):
        from tfp_dgbn.dataset.sources import ArraySource
        from tfp_dgbn.model.heads import REAL_FAMILIES

        table = load_table(s.data, s.target, s.features, labels=s.head == "categorical",
                           integer_target=s.head not in REAL_FAMILIES + ("auto",), missing=s.missing)
        x, y, names, classes = table.x, table.y, table.features, table.class_names
        (x_tr, y_tr), held = split_table(x, y, s.holdout, s.seed)
        calibration = None
        if s.calibrate:  # rows of the training share no network trains on
            (x_tr, y_tr), (x_cal, y_cal) = split_table(x_tr, y_tr, s.calibrate, s.seed, "calibration", "calibrate")
            calibration = (x_cal, y_cal.astype("float32"))
        meta = {"data": os.path.abspath(s.data), "target": s.target, "feature_names": list(names),
                "feature_ranges": [[float(a), float(b)] for a, b in zip(x_tr.min(axis=0), x_tr.max(axis=0))]}
        if s.missing is not None:  # `dgbn evaluate` drops a new file's rows by the same marks
            meta.update(missing=list(s.missing), rows_dropped=table.dropped)
        if classes:  # text labels: class k is classes[k]; the export names them
            meta["class_names"] = classes
        if table.categories:  # text inputs, one-hot: `dgbn evaluate` encodes a new file onto the same inputs
            meta.update(categories=table.categories, feature_columns=table.columns)
        head_kwargs = {}
        if s.head == "categorical":
            head_kwargs["num_classes"] = len(classes) if classes else int(y.max()) + 1
        distinct = np.unique(y)
        if s.head in REAL_FAMILIES + ("auto",) and len(distinct) <= 10 and len(y) >= 5 * len(distinct) and \
                np.array_equal(distinct, np.round(distinct)):  # a class code read as a measurement?
            progress(f"note: the target {s.target!r} holds only {len(distinct)} distinct integers "
                     f"({', '.join(f'{v:g}' for v in distinct)}); the {s.head} head treats them as numbers on a "
                     "line: if they are classes, fit them with --head categorical")
        if table.dropped:
            progress(f"{s.data}: {table.dropped} row{'s' * (table.dropped > 1)} with a missing value "
                     f"({', '.join(map(repr, s.missing))}) dropped")
        progress(f"{s.data}: {len(y_tr)} training rows, "
                 + (f"{len(calibration[1])} to recalibrate, " if calibration else "")
                 + f"{len(held[1])} held out; target {s.target!r}, features {', '.join(names)}")
        return TableData(ArraySource(x_tr, y_tr, s.seed, name="rows"), (held[0], held[1].astype("float32")),
                         meta, calibration=calibration, held=held, head_kwargs=head_kwargs)

    def head_candidates(self, s):
        from tfp_dgbn.model.heads import REAL_FAMILIES

        return REAL_FAMILIES if s.head == "auto" else ()

    def build(self, s, data, kl_weight):
        from tfp_dgbn.model.heads import head_for_targets
        from tfp_dgbn.model.mlp import bayesian_mlp

        # Inputs standardised inside the model; the head starts at the targets, in their own units.
        x = data.source.inputs
        head, output_bias = head_for_targets(s.head, data.source.targets, **data.head_kwargs)
        return bayesian_mlp(x.shape[1], head, data.source.distinct_examples(s.epochs), hidden=s.hidden,
                            activation=s.activation, seed=s.seed, prior_scale=s.prior_scale,
                            init_scale=s.init_scale, kl_weight=kl_weight, feature_mean=x.mean(axis=0),
                            feature_std=np.maximum(x.std(axis=0), 1e-6), output_bias=output_bias, name="table")

    def steps_per_epoch(self, s, source):
        # A Bayesian net's posterior scales move slowly from their small start (init_scale): on iris (120 rows,
        # one step per epoch) 300 epochs left them there and the mutual information at 0 (docs/own_data.md).
        # The default floor is what the default 300 epochs give a table of about 850 rows (UCI concrete's
        # size): larger tables are left as they were, and on concrete more steps at KL weight 1 scored worse.
        # Longer epochs, not more of them: an epoch's callbacks cost more than its steps.
        return max(super().steps_per_epoch(s, source), math.ceil(s.min_steps / s.epochs))

    def describe(self, s, data):
        return f"a Bayesian MLP ({s.head} head, {data.source.name})"

    def evaluate(self, s, data, predictor, progress):
        from tfp_dgbn.evaluate.report import write_report

        report = os.path.join(s.logdir, "evaluation")
        progress(f"evaluating on the {len(data.held[1])} held-out rows -> {report}/report.md")
        metrics = write_report(predictor, *data.held, report, model_path=s.out,
                               data_name=f"{s.data}, held-out {s.holdout:.0%}", num_samples=s.num_samples,
                               seed=s.seed)
        return metrics, {"report": os.path.join(report, "report.md")}

    def summary_lines(self, m):
        from tfp_dgbn.evaluate.report import summary_lines

        return summary_lines(m)
