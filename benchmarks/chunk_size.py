"""Benchmark: vectorised weight draws of the ring generator against the size of their chunks.

`BayesianModel.sample_params` evaluates draws x examples rows in chunks of at most ``chunk_bytes``
of activations. This script times 32 draws of 256 rings for several chunk sizes (and batch pieces),
interleaved over repeats (medians), next to the per-draw loop, to show where `CHUNK_BYTES` sits.

Usage: python benchmarks/chunk_size.py [--repeats 5] [--out docs/benchmarks.md]
"""
import argparse
import os
import sys
import time

import numpy as np
import tensorflow as tf

from report import DEFAULT, write_section
from tfp_dgbn.model.bayesian_model import CHUNK_BYTES
from tfp_dgbn.model.ring_generator import ring_generator
from tfp_dgbn.simulate import rings

DRAWS, ROWS = 32, 256


def main(argv=None):
    """Run the sweep; returns {label: median seconds}."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=DEFAULT, help="results file (this script's section is replaced)")
    args = p.parse_args(argv)
    config = rings.RingConfig()
    features = rings.sample_features(ROWS, np.random.default_rng(0), config).astype("float32")
    model = ring_generator(40000, config, seed=0)
    per_row = model._activation_floats() * 4  # bytes of activations of one ring and draw
    x = tf.constant(features)
    variants = {}
    for mib in (256, 111, 56, 28, 14, 7, 2):
        chunk = mib * 2 ** 20
        fn = tf.function(lambda x, c=chunk: model.sample_params(x, DRAWS, vectorized=True, chunk_bytes=c))
        rows = max(1, chunk // per_row)
        shape = f"{max(1, min(DRAWS, rows // ROWS))} draws x {min(ROWS, rows)} rings"
        variants[f"vectorised, chunks of {mib} MiB ({shape})"] = lambda fn=fn: fn(x).numpy()
    loop = tf.function(lambda x: model.sample_params(x, DRAWS, vectorized=False))
    variants["one draw after another (tf.while_loop)"] = lambda: loop(x).numpy()
    for fn in variants.values():
        fn()  # warm up: tracing
    times = {k: [] for k in variants}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    med = {k: float(np.median(v)) for k, v in times.items()}
    rows = [f"## Chunk size of the vectorised draws: ring generator, {DRAWS} draws of {ROWS} rings "
            f"({args.repeats} interleaved repeats, medians)", "",
            "| variant | median s | image-draws/s |", "|---|---|---|"]
    rows += [f"| {k} | {v:.3f} | {DRAWS * ROWS / v:,.0f} |" for k, v in med.items()]
    rows += ["", f"`CHUNK_BYTES` = {CHUNK_BYTES / 2 ** 20:.0f} MiB; one ring and draw hold "
             f"{per_row / 2 ** 20:.2f} MiB of activations. Written by `python benchmarks/chunk_size.py` on "
             f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}.", ""]
    write_section("chunk_size", "\n".join(rows), args.out)
    return med


if __name__ == "__main__":
    main(sys.argv[1:])
