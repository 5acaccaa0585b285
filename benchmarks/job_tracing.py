"""Benchmark: what a small job spends on tracing graphs, function by function.

A small job (the suite's, a notebook's, a first try) is mostly fixed cost: every `tf.function` it
calls is traced (Python run once to build a graph) before it runs. This script runs one small
toy-gaussian job with `func_graph_from_py_func` instrumented and prints, per traced function, how
many times it was traced and the seconds spent, next to the job's wall and CPU time.

Usage: python benchmarks/job_tracing.py [--task toy-gaussian] [--out docs/benchmarks.md]
"""
import argparse
import collections
import os
import sys
import tempfile
import time

from report import DEFAULT, write_section
from tensorflow.python.framework import func_graph

SMALL = {"toy-gaussian": dict(n_train=256, n_val=64, n_test=200, epochs=3, batch_size=64, num_samples=8),
         "pattern-rings": dict(n_train=200, epochs=1, n_test=50)}


def instrument():
    """Patch the graph builder; returns {function name: [traces, seconds]} (outermost traces only)."""
    original, stats, depth = func_graph.func_graph_from_py_func, collections.defaultdict(lambda: [0, 0.0]), [0]

    def traced(name, *args, **kwargs):
        depth[0] += 1
        start = time.perf_counter()
        try:
            return original(name, *args, **kwargs)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                stats[str(name)][0] += 1
                stats[str(name)][1] += time.perf_counter() - start

    func_graph.func_graph_from_py_func = traced
    return stats


def main(argv=None):
    """Run the job; returns {function: (traces, seconds)}."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="toy-gaussian", choices=sorted(SMALL))
    p.add_argument("--out", default=DEFAULT, help="results file (this script's section is replaced)")
    args = p.parse_args(argv)
    stats = instrument()
    from tfp_dgbn.tasks import make_settings
    from tfp_dgbn.tasks.runner import run

    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(args.task, logdir=os.path.join(tmp, "logs"), out=os.path.join(tmp, "export"),
                                 verbose=0, **SMALL[args.task])
        cpu, wall = time.process_time(), time.perf_counter()
        run(settings, progress=lambda message: None)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(settings.out) for f in fs)
    total = sum(s for _, s in stats.values())
    rows = [f"## Tracing in a small job: {args.task} ({', '.join(f'{k}={v}' for k, v in SMALL[args.task].items())})",
            "", f"Job: {wall:.1f} s wall, {cpu:.1f} s CPU, of which {total:.1f} s tracing; export {size / 1e6:.2f} MB.",
            "", "| traced function | traces | seconds |", "|---|---|---|"]
    rows += [f"| `{name}` | {n} | {s:.2f} |" for name, (n, s) in sorted(stats.items(), key=lambda kv: -kv[1][1])
             if s >= 0.05]
    rows += ["", f"Written by `python benchmarks/job_tracing.py --task {args.task}` on {os.cpu_count()} cores, "
             f"{time.strftime('%Y-%m-%d')}.", ""]
    write_section(f"job_tracing_{args.task}", "\n".join(rows), args.out)
    return {k: tuple(v) for k, v in stats.items()}


if __name__ == "__main__":
    main(sys.argv[1:])
