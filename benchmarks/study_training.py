"""Benchmark: a study's small network (`train_mlp`) against Keras's steps per execution.

The studies (UCI benchmark, small-data study, tempering cross-validation) train hundreds of
one-hidden-layer Flipout networks for a fixed number of steps. Such a step does microseconds of
arithmetic and milliseconds of Python and dispatch, so this script times the same network for
several ``steps_per_execution`` (steps per call of Keras's compiled train function), interleaved over
repeats (medians), and checks that the trained weights do not depend on it.

Usage: python benchmarks/study_training.py [--steps 2000] [--repeats 3] [--out docs/benchmarks.md]
"""
import argparse
import os
import sys
import time

import numpy as np

import tfp_dgbn.studies.fitting as fitting
from report import DEFAULT, write_section
from tfp_dgbn.model.heads import head_for_targets

USED = fitting.STEPS_PER_EXECUTION  # what train_mlp uses (the sweep overrides it)
ROWS, FEATURES, HIDDEN = 7000, 8, 50  # the size of a mid-sized UCI table (kin8nm: 7,373 training rows)


def _train(x, y, steps, per_execution):
    fitting.STEPS_PER_EXECUTION = per_execution
    head, bias = head_for_targets("normal", y)
    t = time.perf_counter()
    model = fitting.train_mlp(x, y, lambda: type(head).from_config(head.get_config()), steps, 0,
                              hidden=(HIDDEN,), output_bias=bias, kl_weight=0.1)
    return time.perf_counter() - t, model.get_weights()


def main(argv=None):
    """Run the sweep; returns {steps per execution: median seconds}."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=DEFAULT, help="results file (this script's section is replaced)")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, FEATURES)).astype("float32")
    y = np.sin(x @ rng.normal(size=FEATURES)) + 0.1 * rng.normal(size=ROWS)
    settings = (1, 10, 100, 1000)
    times, weights = {k: [] for k in settings}, {}
    for _ in range(args.repeats):
        for k in settings:
            seconds, w = _train(x, y, args.steps, k)
            times[k].append(seconds)
            weights[k] = w
    same = max(max(float(np.max(np.abs(a - b))) for a, b in zip(weights[1], weights[k])) for k in settings)
    med = {k: float(np.median(v)) for k, v in times.items()}
    rows = [f"## Study networks: `train_mlp` against steps per execution ({ROWS} x {FEATURES} inputs, "
            f"{HIDDEN} hidden units, batch 128, {args.steps} steps; {args.repeats} interleaved repeats, medians)",
            "", "| steps per execution | median s (build + train) | steps/s | vs 1 |", "|---|---|---|---|"]
    rows += [f"| {k} | {v:.2f} | {args.steps / v:,.0f} | {med[1] / v:.2f}x |" for k, v in med.items()]
    rows += ["", f"Largest difference of a trained weight from the 1-step-per-execution network: {same:.1e}. "
             f"`train_mlp` uses {USED}. Written by "
             f"`python benchmarks/study_training.py` on {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}.", ""]
    write_section("study_training", "\n".join(rows), args.out)
    return med


if __name__ == "__main__":
    main(sys.argv[1:])
