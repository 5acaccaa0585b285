"""Two `dgbn benchmark uci` runs compared split by split (`paired_differences`), as docs/uci.md quotes them.

    python docs/probes/uci_paired.py NEW_OUT OLD_OUT [METHOD ...]

NEW_OUT and OLD_OUT are `--out` folders (their ``uci.json``); prints a markdown table: per dataset and
method, the shared splits, each run's mean test log-likelihood and 90% coverage there, and the mean
per-split difference new - old +- its standard error.
"""
import json
import os
import sys

from tfp_dgbn.studies.uci import paired_differences


def main(new_dir, old_dir, methods=None):
    """Print the table of the module docstring for two ``--out`` folders."""
    new, old = (json.load(open(os.path.join(d, "uci.json"))) for d in (new_dir, old_dir))
    print(f"new: {new_dir}, old: {old_dir}\n")
    print("| dataset | method | splits | new LL | old LL | new - old | new coverage | old coverage |")
    print("|---|---|---|---|---|---|---|---|")
    for dataset, rows in paired_differences(new, old, methods).items():
        for method, r in rows.items():
            print(f"| {dataset} | {method} | {','.join(map(str, r['splits']))} | {r['new_ll']:.3f} | "
                  f"{r['old_ll']:.3f} | {r['diff']:+.3f} +- {r['diff_se']:.3f} | {r['new_coverage']:.3f} | "
                  f"{r['old_coverage']:.3f} |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:] or None)
