"""Benchmark: S weight draws of the predictive in one graph call vs a Python loop of eager calls.

Measures, side by side and interleaved, for the toy-gaussian Bayesian MLP with B = 256 features:
  (a) the exported `predictive` signature (S draws in one tf.while_loop),
  (b) the same model called S times eagerly from Python (`model.params_model(x)` per draw).
Prints a table (median seconds over repeats and the ratio) and writes it to its section of docs/benchmarks.md.

Usage: python benchmarks/predictive_inference.py [--samples 100] [--batch 256] [--repeats 7]
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

import tfp_dgbn
from report import DEFAULT, write_section
from tfp_dgbn.export import export_predictive
from tfp_dgbn.model.heads import NormalHead
from tfp_dgbn.model.mlp import bayesian_mlp


def main(argv=None):
    """Run the benchmark; returns the result dict."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--out", default=DEFAULT, help="results file (this script's section is replaced)")
    args = p.parse_args(argv)

    model = bayesian_mlp(1, NormalHead(), 2000, hidden=(32, 32), seed=0)
    x = np.random.default_rng(0).uniform(-1, 1, (args.batch, 1)).astype("float32")
    with tempfile.TemporaryDirectory() as tmp:
        export_predictive(model, os.path.join(tmp, "m"))
        sig = tfp_dgbn.load(os.path.join(tmp, "m")).saved_model.signatures["predictive"]
        xs, s = tf.constant(x), tf.constant(args.samples)

        def graph():
            return sig(features=xs, num_samples=s)["loc"].numpy()

        def eager():
            return np.stack([model.params_model(xs).numpy() for _ in range(args.samples)])

        graph(), eager()  # warm up (tracing, first allocation)
        times = {"graph": [], "eager": []}
        for _ in range(args.repeats):  # interleaved, so drift hits both alike
            for name, fn in (("graph", graph), ("eager", eager)):
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
    med = {k: float(np.median(v)) for k, v in times.items()}
    ratio = med["eager"] / med["graph"]
    rows = [
        f"## Predictive inference, S = {args.samples} weight draws, batch {args.batch} "
        f"(toy MLP 1-32-32-2, {args.repeats} interleaved repeats, medians)",
        "",
        "| method | median s | draws/s |",
        "|---|---|---|",
        f"| SavedModel `predictive` signature (one call, tf.while_loop) | {med['graph']:.4f} | "
        f"{args.samples / med['graph']:.0f} |",
        f"| Python loop of eager model calls | {med['eager']:.4f} | {args.samples / med['eager']:.0f} |",
        "",
        "Written by `python benchmarks/predictive_inference.py`.",
        "",
        f"Speed-up of one signature call over the eager loop: **{ratio:.1f}x** "
        f"(run on {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}).",
        "",
    ]
    write_section("predictive_inference", "\n".join(rows), args.out)
    return {"median": med, "ratio": ratio}


if __name__ == "__main__":
    main(sys.argv[1:])
