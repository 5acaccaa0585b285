"""Benchmark: the training input pipelines (memory, on-the-fly simulation, TFRecord shards) vs training.

For each source (`tfp_dgbn.dataset.sources`), batch 64 of 32x32 rings:
  - pipeline throughput: rings/s when the pipeline alone is drained;
  - training with it: examples/s of the ring generator's training steps, and the trainer's
    idle time, the fraction of each step spent waiting in ``next(iterator)`` (goal: near zero);
  - shards only: peak resident memory while streaming 10x more rings than the shuffle buffer
    holds, next to streaming 1x (bounded memory: the two peaks are alike and far below the data).
Sources are measured in interleaved repeats (medians). Written to docs/benchmarks.md.

Usage: python benchmarks/input_pipeline.py [--steps 40] [--repeats 3] [--shard-rings 60000]
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

from report import DEFAULT, peak_rss_mib, reset_peak_rss, write_section
from tfp_dgbn.dataset.ring_shards import open_shards, write_shards
from tfp_dgbn.dataset.sources import ArraySource, SimulatedSource
from tfp_dgbn.model.ring_generator import ring_generator
from tfp_dgbn.simulate import rings
from tfp_dgbn.tfk import keras

BATCH = 64


def drain(source, batches):
    """Seconds to pull ``batches`` batches from a fresh pipeline (after its first batch)."""
    it = iter(source.dataset(BATCH))
    next(it)
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    return time.perf_counter() - t


def train(source, model, step, steps):
    """(seconds, seconds waiting for data) for ``steps`` training steps fed by ``source``."""
    it = iter(source.dataset(BATCH))
    step(*next(it))  # the first batch pays for filling buffers
    wait = 0.0
    t = time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        batch = next(it)
        wait += time.perf_counter() - t0
        step(*batch)
    return time.perf_counter() - t, wait


def stream_peak(source, rings_count):
    """Peak RSS (MiB) above the start while streaming ``rings_count`` rings through a fresh pipeline."""
    start = reset_peak_rss()
    for _ in source.dataset(BATCH).take(rings_count // BATCH):
        pass
    return peak_rss_mib() - start


def main(argv=None):
    """Run the benchmark; returns the result dict."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40, help="training steps per source per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--shard-rings", type=int, default=60_000, help="train rings written to the shards")
    p.add_argument("--buffer", type=int, default=5_000, help="shuffle buffer (rings) of the shard pipeline")
    p.add_argument("--out", default=DEFAULT, help="results file (this script's section is replaced)")
    args = p.parse_args(argv)
    config = rings.RingConfig()
    n = args.shard_rings
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_shards(os.path.join(tmp, "shards"), int(n / 0.8) + 2, 8, seed=0, config=config, progress=False)
        write_s = time.perf_counter() - t
        shards = open_shards(os.path.join(tmp, "shards"))
        shards.shuffle_buffer = args.buffer
        chunk = rings.simulate(20_000, 0, config)
        sources = {
            "memory (20,000 rings held)": ArraySource(chunk["features"], chunk["noised"]),
            "simulate on the fly": SimulatedSource(config, 0, n),
            f"TFRecord shards (8 files, buffer {args.buffer:,})": shards,
        }
        model = ring_generator(n, config, seed=0)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        step = tf.function(lambda f, y: model.train_step((f, y)))
        pipe = {k: [] for k in sources}
        fit = {k: [] for k in sources}
        idle = {k: [] for k in sources}
        for r in range(args.repeats):
            for name, source in sources.items():
                pipe[name].append(args.steps * 4 * BATCH / drain(source, args.steps * 4))
                seconds, wait = train(source, model, step, args.steps)
                fit[name].append(args.steps * BATCH / seconds)
                idle[name].append(wait / seconds)
            print(f"repeat {r + 1}/{args.repeats} done", flush=True)
        peak_1x = stream_peak(shards, args.buffer)
        peak_10x = stream_peak(shards, 10 * args.buffer)
    data_mib = 10 * args.buffer * (config.image_size ** 2 * 2 + 6 * 4) / 2 ** 20
    med = {k: (np.median(pipe[k]), np.median(fit[k]), np.median(idle[k])) for k in sources}
    rows = [f"## Input pipelines vs training (ring generator, batch {BATCH}; {args.repeats} interleaved repeats, "
            "medians)", "",
            "| source | pipeline alone (rings/s) | training with it (examples/s) | pipeline / training | "
            "trainer idle waiting for data |", "|---|---|---|---|---|"]
    for name, (pr, fr, ir) in med.items():
        rows.append(f"| {name} | {pr:,.0f} | {fr:,.0f} | {pr / fr:.0f}x | {100 * ir:.2f}% |")
    rows += ["",
             f"Writing the shards (`write_shards`, {int(n / 0.8) + 2:,} rings incl. held-out with exact images): "
             f"{write_s:.1f} s.",
             f"Streaming shards in bounded memory: peak resident memory {peak_1x:.0f} MiB above its start while "
             f"streaming {args.buffer:,} rings (1x the shuffle buffer), {peak_10x:.0f} MiB while streaming "
             f"{10 * args.buffer:,} (10x; those rings are {data_mib:.0f} MiB of data).", "",
             f"Written by `python benchmarks/input_pipeline.py` on {os.cpu_count()} cores, "
             f"{time.strftime('%Y-%m-%d')}.", ""]
    write_section("input_pipeline", "\n".join(rows), args.out)
    return {"median": med, "peaks": (peak_1x, peak_10x)}


if __name__ == "__main__":
    main(sys.argv[1:])
