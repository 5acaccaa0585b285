"""The warm-up tasks: 1-D problems with an exact conditional law (`tfp_dgbn.simulate.toys`).

``toy-gaussian``   y | x ~ Normal(sin 2.5x, (0.15 + 0.125(x+1))^2), Normal head;
``toy-discrete``   counts (``--law poisson|negbin``), head of the toy's family;
``ring-residual``  hit residual given the width (cut from the ring simulator), Normal head;
``ring-count``     hits given the radius, Poisson head.
Data: seeded train / validation / test samples; model: a Bayesian MLP
(`tfp_dgbn.model.mlp.bayesian_mlp`); evaluation: NLL against the true law,
interval coverage, and the total variation to the true pmf for counts.
"""
from dataclasses import dataclass

import numpy as np

from tfp_dgbn import seeds
from tfp_dgbn.tasks.base import SimulatedSizes, Task, TaskData, setting

# Task modules import TensorFlow-backed code inside their methods: `dgbn fit TASK --help`
# builds its parser from the settings classes here and answers without loading TensorFlow.

HEADS = ("normal", "poisson", "categorical")


@dataclass
class ToySettings(SimulatedSizes):
    """Settings of a warm-up task: `TrainSettings` and `SimulatedSizes`, plus the output head."""

    task: str = setting("toy-gaussian", "the warm-up task", cli=False)
    head: str = setting(None, "output law (default: the task's own family)", choices=(None,) + HEADS)


@dataclass
class ToyDiscreteSettings(ToySettings):
    """Settings of ``toy-discrete``: the count law as well."""

    task: str = setting("toy-discrete", "the warm-up task", cli=False)
    law: str = setting("poisson", "the count law: Poisson, or over-dispersed negative binomial",
                       choices=("poisson", "negbin"))


@dataclass
class ToyData(TaskData):
    """A toy run's data: the problem, its head family, and the train / test samples."""

    toy: object = None
    family: str = None
    train: tuple = None
    test: tuple = None


class ToyTask(Task):
    """One warm-up problem (module docstring)."""

    figure_file = "predicted_vs_true.png"
    figure_tag = "predicted_vs_true"

    def __init__(self, name, settings, head, help):
        self.name, self.settings, self.default_head, self.help = name, settings, head, help

    def problem(self, law=None):
        """The task's problem (`tfp_dgbn.simulate.toys`); ``law`` for toy-discrete."""
        from tfp_dgbn.simulate.toys import make_toy

        return make_toy(self.name, **({"law": law} if law else {}))

    def prepare(self, s, progress):
        from tfp_dgbn.dataset.sources import ArraySource

        toy = self.problem(getattr(s, "law", None))
        train, val, test = (toy.sample(getattr(s, f"n_{split}"), seed=seeds.key(s.seed, split))
                            for split in ("train", "val", "test"))
        meta = {"feature_names": list(toy.feature_names), "feature_ranges": [[toy.x_low, toy.x_high]]}
        return ToyData(ArraySource(*train, seed=s.seed), val, meta, toy=toy,
                       family=s.head or self.default_head or toy.family, train=train, test=test)

    def build(self, s, data, kl_weight):
        from tfp_dgbn.model.heads import make_head
        from tfp_dgbn.model.mlp import bayesian_mlp

        toy = data.toy
        # a categorical head here is a law over the counts 0..max_count: ordered values
        head_kwargs = {"num_classes": toy.max_count + 1, "ordinal": True} if data.family == "categorical" else {}
        return bayesian_mlp(1, make_head(data.family, **head_kwargs), data.source.distinct_examples(s.epochs), hidden=s.hidden,
                            activation=s.activation, seed=s.seed, prior_scale=s.prior_scale,
                            init_scale=s.init_scale, kl_weight=kl_weight,
                            feature_mean=[0.5 * (toy.x_low + toy.x_high)],
                            feature_std=[(toy.x_high - toy.x_low) / np.sqrt(12.0)],
                            name=s.task.replace("-", "_"))

    def describe(self, s, data):
        return f"{s.task} ({data.family} head, {data.source.name})"

    def figure(self, s, data, predictor):
        from tfp_dgbn.plots.toys import plot_predicted_vs_true

        return plot_predicted_vs_true(predictor, data.toy, data=data.train, num_samples=s.num_samples)

    def evaluate(self, s, data, predictor, progress):
        from tfp_dgbn.evaluate.toys import evaluate_toy

        progress(f"evaluating on {s.n_test} held-out examples")
        return evaluate_toy(predictor, data.toy, *data.test, num_samples=s.num_samples), {}

    def summary_lines(self, m):
        return [f"held-out NLL {m['nll']:.4f} nats/example (true law {m['nll_true']:.4f}, "
                f"gap {m['nll_gap']:.4f} +- {m['nll_gap_se']:.4f}); "
                f"{m['coverage_level']:.0%} interval coverage {m['coverage']:.3f}"
                + (f"; TV to true pmf {m['tv']:.4f}" if "tv" in m else "")]


TOY_TASKS = (
    ToyTask("toy-gaussian", ToySettings, "normal", "warm-up: heteroscedastic Gaussian noise given one feature"),
    ToyTask("toy-discrete", ToyDiscreteSettings, None, "warm-up: counts given one feature (Poisson or negbin)"),
    ToyTask("ring-residual", ToySettings, "normal", "warm-up from the ring simulator: hit residual given the width"),
    ToyTask("ring-count", ToySettings, "poisson", "warm-up from the ring simulator: hits given the radius"),
)
