"""The pattern-ring task (`dgbn fit pattern-rings [--two-rings]`): the explicit per-pixel generator on the seed's
ring law (issue 18).

Data: rings of the seed-pattern law (`tfp_dgbn.simulate.pattern_rings`),
simulated from the run's seed, one stream per split; model: the explicit
per-pixel Normal generator (`tfp_dgbn.model.pattern_generator`); evaluation:
per-pixel Wasserstein-1 against the two-sample floor, CRPS excess, the
classifier two-sample test and, for two rings, the half-present second rings
(`tfp_dgbn.evaluate.pattern_rings`).
"""
from dataclasses import dataclass

import numpy as np

from tfp_dgbn import seeds
from tfp_dgbn.tasks.base import Task, TaskData, setting
from tfp_dgbn.tasks.rings import ImageGeneratorSettings


MODELS = ("explicit", "latent", "seed")


@dataclass
class PatternSettings(ImageGeneratorSettings):
    """Settings of the pattern-ring task: the ring job's defaults (`ImageGeneratorSettings`) and the law's variant."""

    task: str = setting("pattern-rings", "the pattern-ring task", cli=False)
    two_rings: bool = setting(False, "two rings per image, the second wholly present or absent (12 features)")
    model: str = setting("explicit", "generator: explicit (a law per pixel), latent (a mixture of two image laws, "
                         "the component drawn once per image), seed (the reference decoder: no likelihood, "
                         "trained on MSE + KL)", choices=MODELS)
    pixel_law: str = setting("scaled", "the explicit generator's law per pixel: scaled (intensity times a learned "
                             "kernel) or normal (a free Normal)", choices=("scaled", "normal"))
    num_samples: int = setting(32, "draws per ring on each side of the per-pixel comparison")
    n_test: int = setting(2000, "held-out rings")


@dataclass
class PatternData(TaskData):
    """A pattern-ring run's data: the held-out test rings."""

    test: dict = None


def simulate_split(n, seed, split, two_rings):
    """``n`` rings of the pattern law from the split's seed stream: dict of features, noised, present."""
    from tfp_dgbn.simulate import pattern_rings

    chunks = list(pattern_rings.generate(n, seeds.key(seed, split), two_rings))
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


class PatternRingTask(Task):
    """The explicit per-pixel generator on the seed-pattern ring law (module docstring)."""

    name = "pattern-rings"
    settings = PatternSettings
    help = "the seed-pattern rings of the reference slides: explicit per-pixel generator vs the exact law"
    lr_floor = 0.05
    checkpoint_every = 1
    figure_file = "pattern_pixels.png"
    figure_tag = "pixel_laws"

    def prepare(self, s, progress):
        from tfp_dgbn.dataset.sources import ArraySource
        from tfp_dgbn.simulate import pattern_rings

        progress(f"simulating {s.n_train + s.n_val + s.n_test} seed-pattern rings"
                 + (" (two rings per image)" if s.two_rings else ""))
        train, val, test = (simulate_split(n, s.seed, split, s.two_rings)
                            for n, split in ((s.n_train, "train"), (s.n_val, "val"), (s.n_test, "test")))
        meta = {"feature_names": list(pattern_rings.feature_names(s.two_rings)), "law": "pattern",
                "two_rings": bool(s.two_rings)}
        return PatternData(ArraySource(train["features"], train["noised"], s.seed, name="pattern rings"),
                           (val["features"], val["noised"]), meta, test=test)

    def build(self, s, data, kl_weight):
        from tfp_dgbn.model.pattern_generator import pattern_generator
        from tfp_dgbn.model.seed_decoder import seed_decoder

        common = dict(two_rings=s.two_rings, activation=s.activation, seed=s.seed, prior_scale=s.prior_scale,
                      init_scale=s.init_scale, kl_weight=kl_weight)
        if s.model == "seed":
            return seed_decoder(data.source.num_train, **common)
        return pattern_generator(data.source.num_train, pixel_law="mixture" if s.model == "latent" else s.pixel_law,
                                 embedding=s.embedding, hidden=s.hidden, **common)

    def describe(self, s, data):
        what = {"explicit": f"the explicit pattern generator (law per pixel: {s.pixel_law})",
                "latent": "the latent pattern generator (a mixture of two image laws)",
                "seed": "the reference decoder (no likelihood; MSE + KL)"}[s.model]
        return f"{what} ({data.source.name})"

    def figure(self, s, data, predictor):
        from tfp_dgbn.plots.pattern_rings import plot_pixel_laws

        return plot_pixel_laws(predictor, data.test["features"][0], data.test["noised"][0], s.two_rings,
                               seed=s.seed)

    def evaluate(self, s, data, predictor, progress):
        from tfp_dgbn.evaluate.pattern_rings import evaluate_pattern_rings

        test = data.test
        progress(f"evaluating on {len(test['features'])} held-out rings against the exact law "
                 f"({s.num_samples} draws per ring and side)")
        return evaluate_pattern_rings(predictor, test["features"], test["noised"], s.two_rings,
                                      num_samples=s.num_samples, seed=s.seed), {}

    def summary_lines(self, m):
        from tfp_dgbn.evaluate.two_sample import c2st_lines

        lines = [f"per-pixel W1 / two-sample floor {m['w1_ratio']:.2f} (on the ring {m['w1_ratio_ring']:.2f}, "
                 f"edge {m['w1_ratio_edge']:.2f}, far {m['w1_ratio_far']:.2f}); CRPS excess "
                 f"{m['crps_excess']:.2e} +- {m['crps_excess_se']:.1e}"]
        lines += c2st_lines(m)
        if "half_ring_fraction" in m:
            lines.append(f"second ring between 25% and 75% of its present intensity: {m['half_ring_fraction']:.1%} "
                         f"of generated images (law: {m['half_ring_fraction_law']:.1%}); above 75% (present): "
                         f"{m['present_fraction']:.1%} (law: {m['present_fraction_law']:.1%})")
        return lines + [f"{m['seconds']:.0f} s"]
