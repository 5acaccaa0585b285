"""Benchmark: ring simulation throughput (noised rings, exact images, true rings) and memory.

Goals (issue 3, 32x32 pixels, this 2-core machine): >= 50,000 noised rings/s
streamed in chunks, and >= 200 exact `expected` images/s. Each kind is timed
in interleaved repeats (medians); the peak resident memory of streaming a large
number of rings shows that memory stays bounded by the chunk size.

Usage: python benchmarks/ring_simulation.py [--rings 200000] [--exact 1000] [--repeats 3]
"""
import argparse
import os
import sys
import time

import numpy as np

from report import DEFAULT, peak_rss_mib, reset_peak_rss, write_section
from tfp_dgbn.simulate import rings


def main(argv=None):
    """Run the benchmark; returns the result dict."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rings", type=int, default=200_000, help="noised rings per repeat")
    p.add_argument("--exact", type=int, default=1000, help="exact images per repeat")
    p.add_argument("--stream", type=int, default=1_000_000, help="rings streamed for the memory check")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=DEFAULT, help="results file (this script's section is replaced)")
    args = p.parse_args(argv)
    config = rings.RingConfig()
    features = rings.sample_features(max(args.exact, 1000), np.random.default_rng(0), config)

    def noised():
        total = 0
        for chunk in rings.generate(args.rings, 1, config):
            total += len(chunk["noised"])
        return total

    kinds = {
        "noised rings (generate, chunks of 4096)": (noised, args.rings),
        "exact expected images": (lambda: rings.expected_images(features[:args.exact], config), args.exact),
        "true rings (anti-aliased)": (lambda: rings.true_rings(features[:args.exact], config), args.exact),
    }
    times = {k: [] for k in kinds}
    peaks = {}
    for _ in range(args.repeats):
        for name, (fn, _) in kinds.items():
            start = reset_peak_rss()
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
            peaks[name] = max(peaks.get(name, 0.0), peak_rss_mib() - start)
    rate = {k: kinds[k][1] / float(np.median(v)) for k, v in times.items()}

    rss0 = reset_peak_rss()
    t = time.perf_counter()
    hits = sum(int(c["noised"].sum(dtype=np.int64)) for c in rings.generate(args.stream, 2, config))
    stream_s = time.perf_counter() - t
    rss1 = peak_rss_mib()

    rows = [f"## Ring simulation, {config.image_size}x{config.image_size} pixels "
            f"({args.repeats} interleaved repeats, medians)", "",
            "| what | per repeat | median s | per second | peak RSS above start (MiB) |", "|---|---|---|---|---|"]
    for name, (_, count) in kinds.items():
        rows.append(f"| {name} | {count} | {np.median(times[name]):.3f} | {rate[name]:,.0f} | {peaks[name]:,.0f} |")
    rows += ["", f"Streaming {args.stream:,} noised rings ({hits:,} hits) took {stream_s:.1f} s; resident "
             f"memory peaked at {rss1:.0f} MiB, {rss1 - rss0:.0f} MiB above its start (an array of them all would be "
             f"{args.stream * config.image_size ** 2 * 2 / 2 ** 20:,.0f} MiB).", "",
             "Goals: >= 50,000 noised rings/s, >= 200 exact images/s. "
             f"Written by `python benchmarks/ring_simulation.py` on {os.cpu_count()} cores, "
             f"{time.strftime('%Y-%m-%d')}."]
    write_section("ring_simulation", "\n".join(rows), args.out)
    return {"rate": rate, "stream_s": stream_s, "rss_mib": (rss0, rss1)}


if __name__ == "__main__":
    main(sys.argv[1:])
