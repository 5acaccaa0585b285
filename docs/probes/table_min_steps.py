"""`dgbn fit table`'s step floor (`--min-steps`) on two real tables, as docs/own_data.md quotes it.

    python docs/probes/table_min_steps.py [--uci ../shared/data/uci] [--seeds 0 1 2] [--floors 0 2000 4000]
        [--tables iris concrete]

Tables: scikit-learn's iris (150 rows, the species as text, categorical head) and UCI concrete
(1030 rows, strength in MPa, Normal head), each written as a CSV and fitted with the defaults (300 epochs,
batch 128, KL weight 1) at each floor and seed. Prints a markdown table: per table and floor, the held-out
NLL, accuracy or 90% coverage, mutual information and its out-of-range AUROC (classes) and the median
posterior sd, mean over seeds (the seed sets the held-out split and the initialisation), and the seconds
per fit.
"""
import argparse
import os
import tempfile

import numpy as np


def _tables(folder, uci):
    """(name, csv path, target, head) of the two tables, written into ``folder``."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    species = np.array(iris.target_names)[iris.target]
    path = os.path.join(folder, "iris.csv")
    with open(path, "w") as f:
        f.write(",".join(n.replace(" (cm)", "").replace(" ", "_") for n in iris.feature_names) + ",species\n")
        f.writelines(",".join(f"{v:g}" for v in row) + f",{s}\n" for row, s in zip(iris.data, species))
    rows = np.loadtxt(os.path.join(uci, "concrete", "data.txt"))
    concrete = os.path.join(folder, "concrete.csv")
    np.savetxt(concrete, rows, delimiter=",", fmt="%.10g", comments="",
               header=",".join([f"x{i}" for i in range(rows.shape[1] - 1)] + ["strength"]))
    return [("iris", path, "species", "categorical"), ("concrete", concrete, "strength", "normal")]


def main(argv=None):
    """Fit every (table, floor, seed) and print the table of the module docstring."""
    from tfp_dgbn.tasks import make_settings
    from tfp_dgbn.tasks.runner import run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uci", default=os.path.join("..", "shared", "data", "uci"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--floors", type=int, nargs="+", default=[0, 2000, 4000])
    parser.add_argument("--tables", nargs="+", default=["iris", "concrete"], choices=["iris", "concrete"])
    args = parser.parse_args(argv)
    print(f"seeds {args.seeds}; defaults otherwise (300 epochs, batch 128, KL weight 1, 64 draws)\n")
    print("| table | --min-steps | steps | held-out NLL | accuracy / 90% coverage | mutual information | "
          "OOD AUROC of MI | median posterior sd | seconds per fit |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name, path, target, head in (t for t in _tables(folder, args.uci) if t[0] in args.tables):
            for floor in args.floors:
                got = []
                for seed in args.seeds:
                    logdir = os.path.join(folder, f"{name}-{floor}-{seed}")
                    r = run(make_settings("table", data=path, target=target, head=head, min_steps=floor, seed=seed,
                                          logdir=logdir, out=os.path.join(logdir, "export"), verbose=0),
                            progress=lambda _: None)
                    m = r.metrics
                    got.append([m["nll"], m["accuracy"] if head == "categorical" else m["coverage"][0.9]["coverage"],
                                m.get("mutual_information", np.nan),
                                m["ood"]["mutual_information"]["auroc"] if head == "categorical" else np.nan,
                                m["posterior_stddev"]["median"],
                                m["seconds"], int(r.model.optimizer.iterations)])
                nll, score, mi, auroc, sd, seconds, steps = np.mean(got, axis=0)
                mi, auroc = (f"{mi:.3f}", f"{auroc:.2f}") if head == "categorical" else ("-", "-")
                print(f"| {name} | {floor} | {steps:.0f} | {nll:.3f} | {score:.3f} | {mi} | {auroc} | "
                      f"{sd:.3g} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
