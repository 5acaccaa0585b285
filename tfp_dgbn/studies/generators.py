"""The generators on the seed's rings, side by side: `dgbn compare-generators` (issue 18).

Every generator trains through the one job pipeline (`dgbn fit pattern-rings`)
on the same simulated rings (same seed, sizes, epochs, batch and learning
rate) and is judged by the same evaluation against the exact law
(`tfp_dgbn.evaluate.pattern_rings`): per-pixel W1 against the two-sample
floor, CRPS excess, the classifier two-sample test, and for two rings the
fraction of half-present second rings.

The line-up:
- one ring: the reference decoder (no likelihood, MSE + KL) under the three KL
  strategies of `tfp_dgbn.studies.kl_comparison` that the reference used or
  that are standard (constant weight 1, the "factor switch", the "kl_factor
  adjust"), the explicit generator with a free Normal per pixel, and with
  intensity times a learned kernel;
- two rings: the reference decoder (factor switch), the explicit generator
  (pixels independent given the features) and the latent generator (a mixture
  of two image laws, the component drawn once per image).

Writes ``generators.md`` (the tables) and ``generators_one_ring.png`` /
``generators_two_rings.png`` (each generator's pixel laws, blue, against the
exact law, orange, on one held-out ring).
"""
import dataclasses
import os
import time

from tfp_dgbn.atomic import atomic_file
from tfp_dgbn.validate import InputError


def lineup(epochs):
    """dict variant ("one ring", "two rings") -> list of (label, settings overrides) for a run of ``epochs``."""
    from tfp_dgbn.studies.kl_comparison import strategies

    kl = strategies(epochs)
    constant = {"kl_schedule": kl["constant"]}
    return {
        "one ring": [
            ("reference decoder, KL weight 1", dict(model="seed", **constant)),
            ("reference decoder, factor switch", dict(model="seed", kl_schedule=kl["factor switch"])),
            ("reference decoder, kl_factor adjust", dict(model="seed", kl_schedule=kl["kl_factor adjust"])),
            ("explicit, free Normal per pixel", dict(model="explicit", pixel_law="normal", **constant)),
            ("explicit, intensity x learned kernel", dict(model="explicit", pixel_law="scaled", **constant)),
        ],
        "two rings": [
            ("reference decoder, factor switch", dict(model="seed", kl_schedule=kl["factor switch"])),
            ("explicit, intensity x learned kernel (pixels independent)",
             dict(model="explicit", pixel_law="scaled", **constant)),
            ("latent: mixture of two image laws", dict(model="latent", **constant)),
        ],
    }


def _slug(text):
    return "".join(c if c.isalnum() else "_" for c in text).strip("_").lower()


def _row(label, overrides, m, history, seconds, two_rings):
    cells = [label, f"`{overrides['kl_schedule']}`", f"{history['kl_weight'][-1]:.3g}",
             f"{m['w1_ratio']:.2f}", f"{m['w1_ratio_ring']:.2f} / {m['w1_ratio_edge']:.2f} / {m['w1_ratio_far']:.2f}",
             f"{m['crps_excess']:.2e} +- {m['crps_excess_se']:.0e}",
             f"{m['c2st_auc']:.3f} +- {m['c2st_auc_se']:.3f} ({m['c2st_floor_auc']:.3f})"]
    if two_rings:
        cells.append(f"{m['half_ring_fraction']:.1%} / {m['present_fraction']:.1%} "
                     f"({m['half_ring_fraction_law']:.1%} / {m['present_fraction_law']:.1%})")
    return "| " + " | ".join(cells + [f"{seconds:.0f}"]) + " |"


def compare_generators(base, out_dir, variants=None):
    """Run the line-up (module docstring) and write its tables and figures to ``out_dir``.

    Args:
      base: `tfp_dgbn.tasks.pattern_rings.PatternSettings`, the shared budget; per run its model, pixel_law,
        kl_schedule, two_rings, logdir (``base.logdir/<variant>/<label>``) and out are replaced.
      out_dir: where ``generators.md`` and the figures go.
      variants: subset of ("one ring", "two rings") (default both).

    Returns:
      dict variant -> dict label -> metrics.
    """
    from tfp_dgbn.plots.figures import save_figure
    from tfp_dgbn.plots.pattern_rings import plot_generators
    from tfp_dgbn.tasks.pattern_rings import simulate_split
    from tfp_dgbn.tasks.runner import run

    plan = lineup(base.epochs)
    variants = list(variants or plan)
    unknown = set(variants) - set(plan)
    if unknown:
        raise InputError(f"unknown variants {sorted(unknown)}; choose from {sorted(plan)}")
    os.makedirs(out_dir, exist_ok=True)
    results, text = {}, [
        f"Generators on the seed-pattern rings, written by `dgbn compare-generators` with {base.n_train} training "
        f"rings, {base.epochs} epochs of batch {base.batch_size} (learning rate {base.learning_rate}, cosine decay), "
        f"seed {base.seed}; judged on {base.n_test} held-out rings with M = {base.num_samples} draws per ring and "
        f"side.", "",
        "W1 / floor: per-pixel Wasserstein-1 of the generator's M draws against M draws of the exact law, over the "
        "floor (two independent M-draws of the law); 1 when the laws agree. Pixel classes by the mean intensity "
        "g: on the ring g >= 0.5, edge 0.05-0.5, far < 0.05. CRPS excess: the generator's CRPS at the held-out "
        "image minus the law's own, per pixel. C2ST: held-out AUC of a classifier telling generated from "
        "simulated images given the features (in brackets: simulated vs simulated)."]
    for variant in variants:
        two_rings = variant == "two rings"
        header = ("| generator | KL schedule | final KL weight | W1 / floor | ring / edge / far | CRPS excess | "
                  "C2ST AUC (floor) |" + (" half-present / present second rings (law) |" if two_rings else "")
                  + " seconds |")
        rows = [header, "|" + "---|" * (header.count("|") - 1)]
        predictors, results[variant] = {}, {}
        for label, overrides in plan[variant]:
            config = dataclasses.replace(base, two_rings=two_rings, **overrides,
                                         logdir=os.path.join(base.logdir, _slug(variant), _slug(label)),
                                         out=os.path.join(base.out, _slug(variant), _slug(label)))
            print(f"[dgbn] {variant}: {label}", flush=True)
            t0 = time.time()
            result = run(config)
            seconds = time.time() - t0
            results[variant][label] = result.metrics
            predictors[label] = result.predictor
            rows.append(_row(label, overrides, result.metrics, result.history, seconds, two_rings))
        test = simulate_split(1, base.seed, "test", two_rings)
        fig = plot_generators(predictors, test["features"][0], test["noised"][0], two_rings, seed=base.seed)
        figure = f"generators_{_slug(variant)}.png"
        save_figure(fig, os.path.join(out_dir, figure))
        text += ["", f"## {variant}", "", *rows, "", f"![each generator against the exact law]({figure})"]
    with atomic_file(os.path.join(out_dir, "generators.md"), "w") as f:
        f.write("\n".join(text) + "\n")
    print("\n".join(text))
    return results
