"""Probe behind `dgbn benchmark uci --refine` (docs/uci.md): training rows only.

For each split, the training split is cut as the calibrated ensemble's is (`calibration_rows`); at each
KL weight an ensemble of 5 two-layer Flipout networks (the benchmark's seeds) trains on the rest and is
scored on the held-out rows: mean log-likelihood and 90% coverage of the ensemble and of its first
network. No test row is read.

    python docs/probes/uci_held_out_weights.py normal 0,1 0.3,0.2,0.15,0.1 [../shared/data/uci/energy]

prints one JSON line per (split, weight).
"""
import json
import sys
import time

from tfp_dgbn.model.heads import head_for_targets
from tfp_dgbn.studies.fitting import log_predictive, train_mlp
from tfp_dgbn.studies.uci import _scores, calibration_rows, load_uci


def main(family, splits, weights, folder="../shared/data/uci/energy", steps=8000, members=5):
    """Print {family, split, w, ens_ll, ens_cov, one_ll, one_cov, sec} per split and weight (module docstring)."""
    d = load_uci(folder)
    for s in splits:
        x, y, _, _ = d.split(s)
        held, fit = calibration_rows(len(y), 0)
        for w in weights:
            t0 = time.time()
            head, bias = head_for_targets(family, y[fit])
            nets = [train_mlp(x[fit], y[fit], lambda: type(head).from_config(head.get_config()), steps, 100 * k + 7,
                              hidden=(d.n_hidden,) * 2, output_bias=bias, kl_weight=w) for k in range(members)]
            lp, _, lo, hi = _scores(log_predictive(nets, x[held], y[held], 64)[1], y[held])
            one, _, lo1, hi1 = _scores(log_predictive(nets[0], x[held], y[held], 64)[1], y[held])
            inside = (y[held] >= lo) & (y[held] <= hi)
            inside1 = (y[held] >= lo1) & (y[held] <= hi1)
            print(json.dumps(dict(family=family, split=s, w=w, ens_ll=lp.mean(), ens_cov=inside.mean(),
                                  one_ll=one.mean(), one_cov=inside1.mean(), sec=time.time() - t0)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], [int(s) for s in sys.argv[2].split(",")], [float(w) for w in sys.argv[3].split(",")],
         *sys.argv[4:5])
