"""Benchmark: the wall time of two small jobs, package copy against package copy, interleaved.

Small jobs are mostly fixed cost (Keras's per-epoch and per-batch machinery, tracing, figures,
evaluation), and the test suite and the notebooks run dozens of them. This script times

- ``toy-gaussian`` as the suite's session fixture runs it (2,000 examples, 300 epochs of 16 batches);
- ``pattern-rings --model explicit`` at notebook 07's small size (600 rings, 1 epoch, 100 test rings);

once per package copy per repeat, each in a fresh process (``PYTHONPATH=<copy>``), alternating the
copies so that both see the same machine load. Give the copy to compare against with ``--old``
(for example ``git worktree add /tmp/old <commit>``); ``--new`` defaults to this checkout.

Usage: python benchmarks/job_overhead.py --old DIR [--new DIR] [--repeats 2] [--out docs/benchmarks.md]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from report import DEFAULT, write_section

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOBS = {
    "toy-gaussian, 2,000 examples, 300 epochs (the suite's fixture)":
        ("toy-gaussian", dict(n_train=2000, plot_every=100, seed=0)),
    "pattern-rings explicit, 600 rings, 1 epoch (notebook 07, small)":
        ("pattern-rings", dict(n_train=600, epochs=1, n_test=100, model="explicit", pixel_law="scaled")),
}
CHILD = """
import json, sys, time
from tfp_dgbn.tasks import make_settings
from tfp_dgbn.tasks.runner import run
task, settings, tmp = json.loads(sys.argv[1])
t = time.perf_counter()
run(make_settings(task, logdir=tmp + "/logs", out=tmp + "/export", verbose=0, **settings), progress=lambda m: None)
print("SECONDS", time.perf_counter() - t)
"""


def time_job(copy, task, settings):
    """Seconds of one ``run`` of ``task`` in a fresh process importing tfp_dgbn from ``copy`` (the job only,
    not the interpreter's start-up and imports)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PYTHONPATH=copy, TF_CPP_MIN_LOG_LEVEL="2")
        out = subprocess.run([sys.executable, "-c", CHILD, json.dumps([task, settings, tmp])], env=env,
                             capture_output=True, text=True, check=True).stdout
    return float(out.rsplit("SECONDS", 1)[1])


def main(argv=None):
    """Time the jobs; returns {job: {"old": [s...], "new": [s...]}}."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True, help="directory holding the tfp_dgbn package to compare against")
    p.add_argument("--new", default=REPO, help="directory holding the tfp_dgbn package measured (default: here)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", default=DEFAULT, help="results file (this script's section is replaced)")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats must be >= 1, got {args.repeats}")
    times = {job: {"old": [], "new": []} for job in JOBS}
    for r in range(args.repeats):
        for job, (task, settings) in JOBS.items():
            for which in (("old", "new") if r % 2 == 0 else ("new", "old")):
                times[job][which].append(time_job(getattr(args, which), task, settings))
                print(f"repeat {r + 1}, {which}: {job}: {times[job][which][-1]:.1f} s", flush=True)
    old, new = (os.path.basename(os.path.normpath(path)) for path in (args.old, args.new))
    rows = ["## Small jobs: wall time against an earlier package copy", "",
            f"Each job in a fresh process per copy, {args.repeats} repeats alternating the copies; old = `{old}`, "
            f"new = `{new}`.",
            "", "| job | old (s, each) | new (s, each) | new / old (medians) |", "|---|---|---|---|"]
    for job, t in times.items():
        ratio = statistics.median(t["new"]) / statistics.median(t["old"])
        rows.append(f"| {job} | {', '.join(f'{s:.1f}' for s in t['old'])} | "
                    f"{', '.join(f'{s:.1f}' for s in t['new'])} | {ratio:.2f}x |")
    rows += ["", f"Written by `python benchmarks/job_overhead.py --old <copy> --repeats {args.repeats}` on "
             f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}.", ""]
    write_section("job_overhead", "\n".join(rows), args.out)
    return times


if __name__ == "__main__":
    main(sys.argv[1:])
