"""Benchmark: ring simulation throughput (noised rings, exact images, true rings, the whole file) and memory.

Goals (32x32 pixels, this 2-core machine): >= 50,000 noised rings/s streamed in
chunks and >= 200 exact `expected` images/s (issue 3); `dgbn simulate --n
100000`, every array it writes, >= 10,000 rings/s end to end (issue 19). Each
kind is timed in interleaved repeats (medians), the compiled kernels side by
side with the NumPy formulation they replaced (``tests/ring_reference.py``);
the peak resident memory of streaming a large number of rings shows that
memory stays bounded by the chunk size.

Usage: python benchmarks/ring_simulation.py [--rings 200000] [--exact 5000] [--reference 500] [--repeats 3]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from report import DEFAULT, peak_rss_mib, reset_peak_rss, write_section
from tfp_dgbn.simulate import rings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))
import ring_reference  # noqa: E402  (the NumPy formulation, kept with the tests)


def main(argv=None):
    """Run the benchmark; returns the result dict."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rings", type=int, default=200_000, help="noised rings per repeat")
    p.add_argument("--exact", type=int, default=5000, help="exact images and true rings per repeat (compiled)")
    p.add_argument("--reference", type=int, default=500, help="the same with the NumPy formulation")
    p.add_argument("--file-rings", type=int, default=100_000, help="rings of the timed `dgbn simulate` run")
    p.add_argument("--stream", type=int, default=1_000_000, help="rings streamed for the memory check")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=DEFAULT, help="results file (this script's section is replaced)")
    args = p.parse_args(argv)
    config = rings.RingConfig()
    features = rings.sample_features(max(args.exact, args.reference), np.random.default_rng(0), config)
    rings.expected_images(features[:2], config), rings.true_rings(features[:2], config)  # load the kernels
    ref = features[:args.reference]

    def noised():
        total = 0
        for chunk in rings.generate(args.rings, 1, config):
            total += len(chunk["noised"])
        return total

    kinds = {
        "noised rings (generate, chunks of 4096)": (noised, args.rings),
        "exact expected images (compiled line walk)": (lambda: rings.expected_images(features[:args.exact], config),
                                                       args.exact),
        "exact expected images (NumPy formulation)": (lambda: ring_reference.expected_images(ref, config),
                                                      args.reference),
        "true rings (compiled, band pre-selection)": (lambda: rings.true_rings(features[:args.exact], config),
                                                      args.exact),
        "true rings (NumPy formulation)": (lambda: ring_reference.true_rings(ref, config), args.reference),
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

    # The whole file as a user makes it: a fresh process, every array of the default command.
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "tfp_dgbn.cli", "simulate", "--n", str(args.file_rings),
               "--out", os.path.join(tmp, "rings.npz"), "--quiet"]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        file_s = time.perf_counter() - t
        file_mib = os.path.getsize(os.path.join(tmp, "rings.npz")) / 2 ** 20
    speedup = {kind: rate[f"{kind} (compiled{suffix})"] / rate[f"{kind} (NumPy formulation)"]
               for kind, suffix in (("exact expected images", " line walk"), ("true rings", ", band pre-selection"))}

    rows = [f"## Ring simulation, {config.image_size}x{config.image_size} pixels "
            f"({args.repeats} interleaved repeats, medians)", "",
            "| what | per repeat | median s | per second | peak RSS above start (MiB) |", "|---|---|---|---|---|"]
    for name, (_, count) in kinds.items():
        rows.append(f"| {name} | {count} | {np.median(times[name]):.3f} | {rate[name]:,.0f} | {peaks[name]:,.0f} |")
    rows += ["", "Compiled kernels vs the NumPy formulation, same rings, same run: "
             + "; ".join(f"{k} **{v:.1f}x**" for k, v in speedup.items()) + ".", "",
             f"`dgbn simulate --n {args.file_rings}` (a fresh process; features, noised and true rings of every split, "
             f"exact images of val and test; {file_mib:,.0f} MiB) took **{file_s:.1f} s: "
             f"{args.file_rings / file_s:,.0f} rings/s** (goal >= 10,000).", "",
             f"Streaming {args.stream:,} noised rings ({hits:,} hits) took {stream_s:.1f} s; resident "
             f"memory peaked at {rss1:.0f} MiB, {rss1 - rss0:.0f} MiB above its start (an array of them all would be "
             f"{args.stream * config.image_size ** 2 * 2 / 2 ** 20:,.0f} MiB).", "",
             "Goals: >= 50,000 noised rings/s, >= 200 exact images/s, the file >= 10,000 rings/s. "
             f"Written by `python benchmarks/ring_simulation.py` on {os.cpu_count()} cores, "
             f"{time.strftime('%Y-%m-%d')}."]
    write_section("ring_simulation", "\n".join(rows), args.out)
    return {"rate": rate, "stream_s": stream_s, "rss_mib": (rss0, rss1), "file_s": file_s, "speedup": speedup}


if __name__ == "__main__":
    main(sys.argv[1:])
