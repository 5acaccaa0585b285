"""Run every benchmark, one process each, writing their sections of docs/benchmarks.md.

Usage (the peer comparison needs PyTorch and bayesian-torch):
  python3.11 -m venv .venv-bench && .venv-bench/bin/pip install -r benchmarks/requirements.txt -e .
  .venv-bench/bin/python benchmarks/run_all.py [--quick]

Each script runs in its own process so one's memory and threads do not skew the next;
``--quick`` passes smaller sizes (a smoke run, not for the record).
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = {
    "ring_simulation.py": ["--rings", "20000", "--exact", "100", "--stream", "100000", "--repeats", "1"],
    "training_throughput.py": ["--steps", "5", "--repeats", "1"],
    "predictive_inference.py": ["--samples", "10", "--repeats", "1", "--ring-repeats", "1"],
    "chunk_size.py": ["--repeats", "1"],
    "study_training.py": ["--steps", "200", "--repeats", "1"],
    "job_tracing.py": [],
    "input_pipeline.py": ["--steps", "5", "--repeats", "1", "--shard-rings", "4000", "--buffer", "500"],
}


def main(argv=None):
    """Run the scripts in turn; returns the number that failed."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    p.add_argument("--out", default=None, help="results file (default docs/benchmarks.md)")
    args = p.parse_args(argv)
    failed = 0
    for script, quick in SCRIPTS.items():
        cmd = [sys.executable, os.path.join(HERE, script)] + (quick if args.quick else [])
        cmd += ["--out", args.out] if args.out else []
        print(f"== {script}", flush=True)
        t = time.time()
        rc = subprocess.call(cmd, cwd=HERE)
        print(f"== {script}: exit {rc} after {time.time() - t:.0f} s", flush=True)
        failed += rc != 0
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
