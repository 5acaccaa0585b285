"""`dgbn benchmark uci`: the data format, the report, and a tiny run of every method on real data."""
import json
import os
import re

import numpy as np
import pytest

from tfp_dgbn.cli import main
from tfp_dgbn.studies.uci import METHODS, find_datasets, load_uci, published_numbers, verdict

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "uci")


def _fake_dataset(root, name="toy", n=120, splits=2, seed=0):
    """A folder in the standard format: y = 1000 + 100 (x0 + 0.3 noise), 3 inputs (one constant)."""
    folder = root / name
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.uniform(-1, 1, n), rng.normal(size=n), np.ones(n)])
    y = 1000 + 100 * (x[:, 0] + 0.3 * rng.normal(size=n))
    np.savetxt(folder / "data.txt", np.column_stack([x, y]))
    np.savetxt(folder / "index_features.txt", [0, 1, 2], fmt="%d")
    np.savetxt(folder / "index_target.txt", [3], fmt="%d")
    (folder / "n_splits.txt").write_text(f"{splits}\n")
    (folder / "n_hidden.txt").write_text("10\n")
    for k in range(splits):
        order = np.random.default_rng([seed, k]).permutation(n)
        np.savetxt(folder / f"index_train_{k}.txt", order[: n * 9 // 10], fmt="%d")
        np.savetxt(folder / f"index_test_{k}.txt", order[n * 9 // 10:], fmt="%d")
    return folder


def test_the_format_is_read_and_bad_folders_are_named(tmp_path):
    folder = _fake_dataset(tmp_path)
    data = load_uci(str(folder))
    assert data.x.shape == (120, 3) and data.n_hidden == 10 and len(data.splits) == 2
    x_tr, y_tr, x_te, y_te = data.split(1)
    assert len(y_tr) == 108 and len(y_te) == 12
    assert find_datasets(str(tmp_path)) == [str(folder)]
    with pytest.raises(ValueError, match="no dataset \\['nope'\\]"):
        find_datasets(str(tmp_path), ["nope"])
    (folder / "index_test_1.txt").write_text(open(folder / "index_train_1.txt").read().split("\n")[0] + "\n")
    with pytest.raises(ValueError, match="split 1: row indices out of range or shared by train and test"):
        load_uci(str(folder))
    assert main(["benchmark", "uci", "--data", str(tmp_path / "none")]) == 2


@pytest.mark.parametrize("file, text, message", [
    ("data.txt", "1 2 3 ?\n", "data.txt' is not a whitespace-separated table of numbers"),
    ("data.txt", "nan", "NaN or infinite values in 1 row\\(s\\) of the used columns \\(first: row 0\\)"),
    ("index_target.txt", "1\n", "the target column 1 is also in index_features.txt"),
    ("index_features.txt", "0\n-1\n", "column index -1 but data.txt has 4 columns"),
    ("index_features.txt", "0\n7\n", "column index 7 but data.txt has 4 columns"),
    ("index_test_1.txt", "-3\n", "split 1: row indices out of range"),  # would wrap to row 117
    ("index_test_1.txt", "", "split 1: index_test_1.txt lists no row"),
    ("n_hidden.txt", "10.5\n", "n_hidden.txt' holds a value that is not an integer: 10.5"),
])
def test_a_malformed_dataset_folder_is_refused_naming_what_is_wrong(tmp_path, file, text, message):
    """Tables users bring: a missing value, a NaN, the target among the inputs, a negative or out-of-range
    index, an empty split, a fractional count: each refused by name, not trained on or crashed over."""
    folder = _fake_dataset(tmp_path)
    if file == "data.txt" and text == "nan":  # one NaN in the target of row 0
        rows = (folder / "data.txt").read_text().split("\n")
        rows[0] = " ".join(rows[0].split()[:3] + ["nan"])
        text = "\n".join(rows)
    elif file == "data.txt":
        text = (folder / "data.txt").read_text() + text
    (folder / file).write_text(text)
    with pytest.raises(ValueError, match=message):
        load_uci(str(folder))


def test_the_kl_grid_and_layers_options_reach_the_budget_and_bad_values_are_refused(tmp_path, monkeypatch, capsys):
    import tfp_dgbn.studies.uci as uci

    seen = []
    monkeypatch.setattr(uci, "uci_benchmark", lambda *args, **kwargs: seen.append(args[4]) or {})
    monkeypatch.setattr(uci, "write_uci_report", lambda *args, **kwargs: "")
    base = ["benchmark", "uci", "--data", str(tmp_path), "--out", str(tmp_path / "out")]
    assert main(base + ["--kl-grid", "3", "1", "0.1"]) == 0
    assert main(base + ["--layers", "2"]) == 0
    assert [(b.grid, b.layers) for b in seen] == [((3.0, 1.0, 0.1), 1), (uci.KL_GRID, 2)]
    assert main(base + ["--layers", "0"]) == 2
    assert "--layers must be >= 1, got 0" in capsys.readouterr().err
    assert main(base + ["--cv-members", "3"]) == 0 and seen[-1].cv_members == 3
    assert main(base + ["--head", "student-t"]) == 0 and seen[-1].head == "student-t" and seen[-2].head == "normal"
    with pytest.raises(SystemExit):  # argparse's choices
        main(base + ["--head", "cauchy"])
    assert "invalid choice: 'cauchy'" in capsys.readouterr().err
    assert main(base + ["--head", "auto"]) == 0 and seen[-1].head == "auto"
    with pytest.raises(ValueError, match="head must be one of \\['normal', 'student-t', 'auto'\\].*got 'poisson'"):
        uci.Budget(head="poisson")
    assert main(base + ["--refine", "1.5", "0.5"]) == 0 and seen[-1].refine == (1.5, 0.5) and seen[-2].refine == ()
    assert main(base + ["--refine", "0"]) == 2
    assert "refine factors must be finite and > 0, got 0.0" in capsys.readouterr().err
    assert main(base + ["--cv-members", "0"]) == 2
    assert "--cv-members must be >= 1, got 0" in capsys.readouterr().err
    assert main(base + ["--kl-grid", "1", "-0.5"]) == 2
    assert "kl_weight must be finite and >= 0, got -0.5" in capsys.readouterr().err
    assert main(base + ["--kl-grid", "1", "1"]) == 2
    assert "--kl-grid has a weight twice: [1.0, 1.0]" in capsys.readouterr().err
    assert len(seen) == 6  # nothing ran for the refused values


def test_splits_are_summarised_as_mean_and_standard_error():
    from tfp_dgbn.studies.uci import _summarise

    rows = [{"test_ll": -1.0, "rmse": 2.0, "coverage90": 0.8, "seconds": 1.0},
            {"test_ll": -2.0, "rmse": 4.0, "coverage90": 1.0, "seconds": 2.0}]
    s = _summarise(rows)
    assert s["test_ll"] == -1.5 and s["test_ll_se"] == pytest.approx(0.5)  # sd 0.707 / sqrt 2
    assert s["rmse"] == 3.0 and s["rmse_se"] == pytest.approx(1.0) and s["coverage90"] == pytest.approx(0.9)
    assert s["splits"] == 2 and s["seconds"] == 3.0
    one = _summarise(rows[:1])
    assert one["test_ll"] == -1.0 and one["test_ll_se"] == 0.0
    assert "coverage90_se" not in s  # no test counts: no binomial SE
    counted = _summarise([dict(rows[0], n_test=100), dict(rows[1], n_test=300)])
    p = (0.8 * 100 + 1.0 * 300) / 400  # pooled over the 400 test rows
    assert counted["coverage90_se"] == pytest.approx(np.sqrt(p * (1 - p) / 400))
    from tfp_dgbn.studies.uci import _mean_se

    # three significant digits of the mean, at least three decimals (naval's RMSE is ~1e-3)
    assert _mean_se(5.791, 0.237) == "5.791 +- 0.237" and _mean_se(0.00123, 5e-5) == "0.00123 +- 0.00005"


def test_a_result_without_test_counts_gets_them_from_the_split_files(tmp_path):
    """A uci.json written before ``n_test`` was recorded is re-rendered with the coverage's binomial SE: the
    counts come from the data folder's index_test_K.txt (12 rows each here), and the report shows the SE."""
    from tfp_dgbn.studies.uci import _add_test_counts, _coverage, _goal_distance

    _fake_dataset(tmp_path)
    rows = [{"coverage90": 1.0}, {"coverage90": 0.75}]
    result = {"toy": {"flipout": {"coverage90": 0.875, "per_split": rows}}, "elsewhere": {"flipout": {
        "coverage90": 0.9, "per_split": [{"coverage90": 0.9}]}}}
    _add_test_counts(result, str(tmp_path))
    assert [r["n_test"] for r in rows] == [12, 12]
    r = result["toy"]["flipout"]
    assert r["coverage90_se"] == pytest.approx(np.sqrt(0.875 * 0.125 / 24))
    assert "coverage90_se" not in result["elsewhere"]["flipout"]  # no folder: left as it was
    assert _coverage(r) == "0.875 +- 0.068" and _goal_distance(r) == ""  # inside 0.87-0.93
    high = {"coverage90": 0.95, "coverage90_se": 0.01}
    assert _goal_distance(high) == "; 2.0 SE above it" and _coverage(high) == "0.950 +- 0.010"


def test_published_numbers_and_verdict(tmp_path):
    (tmp_path / "README.md").write_text("intro\n\n| dataset | MC dropout | PBP |\n|---|---|---|\n"
                                        "| concrete | -2.94 +- 0.03 | -3.16 +- 0.02 |\n| energy | -1.21 +- 0.01 | x |\n")
    assert published_numbers(str(tmp_path)) == {"concrete": {"MC dropout": (-2.94, 0.03), "PBP": (-3.16, 0.02)},
                                               "energy": {"MC dropout": (-1.21, 0.01)}}
    result = {"a": {"flipout": {"test_ll": -1.0}, "flipout-tempered": {"test_ll": -0.9},
                    "mc-dropout": {"test_ll": -0.95}, "ngboost": {"test_ll": -2.0}},
              "b": {"flipout": {"test_ll": -1.0}, "deep-ensemble": {"test_ll": -0.5}}}
    result["c"] = {"flipout": {"test_ll": 0.0}}  # no peer ran: nothing to beat
    assert verdict(result) == {
        "a": {"best_bayesian": "flipout-tempered", "best_peer": "mc-dropout", "beats_every_peer": True},
        "b": {"best_bayesian": "flipout", "best_peer": "deep-ensemble", "beats_every_peer": False},
        "c": {"best_bayesian": "flipout", "best_peer": None, "beats_every_peer": True}}


@pytest.mark.slow
def test_every_method_runs_on_a_tiny_subset_in_the_targets_units(tmp_path):
    data_dir = tmp_path / "uci"
    _fake_dataset(data_dir)
    out = tmp_path / "out"
    # two KL weights instead of the default grid's five: the CV's fits are most of this test's networks
    assert main(["benchmark", "uci", "--data", str(data_dir), "--splits", "1", "--steps", "60", "--members", "2",
                 "--num-samples", "4", "--kl-grid", "1", "0.1", "--out", str(out)]) == 0
    result = json.loads((out / "uci.json").read_text())
    assert list(result) == ["toy"] and list(result["toy"]) == list(METHODS)
    for method, r in result["toy"].items():
        assert r["splits"] == 1 and len(r["per_split"]) == 1 and r["seconds"] > 0, method
        # in the target's units: noise sd 30 gives a log-likelihood near -log(30 sqrt(2 pi e)) = -4.8, RMSE ~30;
        # a model left in standardised units would score about -1.4 and RMSE ~0.3 (bounds: a short fit's slack).
        assert -9 < r["test_ll"] < -3.5 and 15 < r["rmse"] < 150, (method, r)
        assert 0 <= r["coverage90"] <= 1
    row, = result["toy"]["flipout-tempered"]["per_split"]
    assert set(row["cv_nll"]) == {"1.0", "0.1"}
    assert row["kl_weight"] == min((1.0, 0.1), key=lambda w: row["cv_nll"][str(w)])  # the lower fold NLL
    text = (out / "uci.md").read_text()
    assert "CV over KL weights 1, 0.1;" in text
    assert "dgbn benchmark uci --data" in text and "## toy (1 split)" in text and "beats every peer" in text
    assert re.search(r"Its 90% coverage: [01]\.\d{3} \+- 0\.\d{3} \((inside 0\.87-0\.93|\*\*outside\*\* "
                     r"0\.87-0\.93(; \d+\.\d SE (above|below) it)?)\)", text), text  # no SE phrase at SE 0
    flip = result["toy"]["flipout"]
    assert row["n_test"] == 12
    assert flip["coverage90_se"] == pytest.approx(np.sqrt(flip["coverage90"] * (1 - flip["coverage90"]) / 12))
    (out / "uci.png").unlink()
    assert main(["benchmark", "uci", "--data", str(data_dir), "--out", str(out), "--replot"]) == 0
    assert (out / "uci.png").exists() and (out / "uci.md").read_text().splitlines()[0] == text.splitlines()[0]
    import tfp_dgbn

    ensemble = tfp_dgbn.load(str(out / "models" / "toy"))
    assert ensemble.metadata["ensemble"] == 2 and ensemble.metadata["spread"] == 1.0
    assert np.isfinite(ensemble([[0.1, 0.0, 1.0]], 4).log_prob([1010.0]).numpy()).all()
    # the recalibrated ensemble: its tau fitted on held-out training rows, in the report and its export
    cal, = result["toy"]["bayesian-ensemble-calibrated"]["per_split"]
    assert cal["kl_weight"] == row["kl_weight"] and cal["spread"] > 0
    assert cal["spread_nll"]["after"] <= cal["spread_nll"]["before"]
    assert cal["seconds"] > result["toy"]["bayesian-ensemble"]["seconds"]  # it includes the ensemble it scales
    assert re.search(rf"\| bayesian-ensemble-calibrated \|.*\| {cal['spread']:.3f} \|", text), text
    calibrated = tfp_dgbn.load(str(out / "models" / "toy-calibrated"))
    assert calibrated.metadata["spread"] == pytest.approx(cal["spread"]) and calibrated.metadata["ensemble"] == 2
    assert calibrated.metadata["method"] == "bayesian-ensemble-calibrated"


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(SHARED), reason="the shared UCI data folder is not beside the checkout")
def test_a_real_dataset_runs_and_is_reported_next_to_the_published_numbers(tmp_path):
    out = tmp_path / "out"
    assert main(["benchmark", "uci", "--data", SHARED, "--datasets", "energy", "--splits", "1", "--steps", "200",
                 "--members", "2", "--num-samples", "8", "--methods", "flipout", "ngboost", "--out", str(out)]) == 0
    r = json.loads((out / "uci.json").read_text())["energy"]
    # Energy's heating load has sd ~10 kWh/m2; 200 steps already explain most of it (RMSE well below the sd).
    assert r["flipout"]["rmse"] < 6 and r["ngboost"]["rmse"] < 6
    assert "published: MC dropout" in (out / "uci.md").read_text()


def test_every_network_gets_at_least_the_protocols_epochs_and_the_budgets_layers(tmp_path, monkeypatch):
    import tfp_dgbn.studies.uci as uci

    data = load_uci(str(_fake_dataset(tmp_path, n=300)))  # 270 training rows: 3 batches of 128 per epoch
    asked, real = [], uci.train_mlp

    def train(x, y, make_head, steps, seed, **kw):
        asked.append((kw.get("kind", "flipout"), steps, kw["hidden"], make_head().family))
        return real(x, y, make_head, 2, seed, **kw)  # the steps are recorded, not spent

    monkeypatch.setattr(uci, "train_mlp", train)
    for budget_steps, flipout_steps, layers, head in ((50, 40 * 3, 1, "normal"), (500, 500, 2, "student-t")):
        asked.clear()
        budget = uci.Budget(steps=budget_steps, members=2, num_samples=2, layers=layers, head=head)
        result, _ = uci.run_split(*data.split(0), 4, budget, ("flipout", "deep-ensemble"), n_epochs=40)
        # the Flipout net: the larger of the budget and 40 epochs; the deep ensemble: exactly 40 epochs;
        # every network, peers included, gets `layers` hidden layers of the protocol's width and the head
        assert asked == ([("flipout", flipout_steps, (4,) * layers, head)]
                         + [("deterministic", 120, (4,) * layers, head)] * 2), asked
        assert all(np.isfinite(r["test_ll"]) and 0 <= r["coverage90"] <= 1 for r in result.values()), result


def test_the_ensembles_weight_is_chosen_by_the_fold_mixtures_and_the_single_networks_by_its_own(monkeypatch):
    import tfp_dgbn.studies.uci as uci

    # Fold NLLs made up so the two criteria disagree: one network is best at weight 1, a mixture at 0.3.
    nll = {False: {1.0: 1.0, 0.3: 2.0, 0.1: 3.0}, True: {1.0: 1.5, 0.3: 0.5, 0.1: 0.9}}
    trained = []

    def flipout(w, seed, rows=slice(None)):
        trained.append((w, seed))
        return ("net", w)

    def log_predictive(model, x, y, num_samples):
        mixture = isinstance(model, list)
        w = model[0][1] if mixture else model[1]
        assert not mixture or {m[1] for m in model} == {w}
        return -np.full(len(y), nll[mixture][w]), None

    monkeypatch.setattr(uci, "log_predictive", log_predictive)
    x, y = np.zeros((20, 2)), np.zeros(20)
    b = uci.Budget(grid=(1.0, 0.3, 0.1), folds=2, cv_members=3, seed=5)
    single, mixture = uci._tempering(x, y, flipout, b, mixture=True)
    assert single[0] == 1.0 and single[1] == pytest.approx(nll[False])
    assert mixture[0] == 0.3 and mixture[1] == pytest.approx(nll[True])
    # three networks per weight and fold; member 0 has the single-network CV's seed (b.seed + 1 + fold)
    assert trained == [(w, 5 + 1 + k + 100 * m) for w in b.grid for k in range(2) for m in range(3)]
    trained.clear()  # one member, or no ensemble method in the run: the CV it always was, one choice
    assert uci._tempering(x, y, flipout, b, mixture=False) == (single, single)
    assert trained == [(w, 5 + 1 + k) for w in b.grid for k in range(2)]


def test_the_report_names_the_layers_and_the_mixture_cv(tmp_path):
    from tfp_dgbn.studies.uci import Budget, write_uci_report

    def report(budget):
        row = {"test_ll": -1.0, "test_ll_se": 0.1, "rmse": 1.0, "rmse_se": 0.1, "coverage90": 0.9, "seconds": 1.0,
               "splits": 1, "per_split": [{}]}
        return write_uci_report({"toy": {"flipout": row}}, str(tmp_path), str(tmp_path), budget, "cmd")

    text = report(Budget(layers=2, cv_members=3, grid=(1.0, 0.3)))
    assert "Every network: 2 hidden layers of the protocol's width (the protocol: one)," in text
    assert "CV over KL weights 1, 0.3 (the ensembles' weight by the fold mixtures of 3 networks);" in text
    text = report(Budget(grid=(1.0, 0.3)))
    assert "Every network: one hidden layer of the protocol's width, a heteroscedastic Normal output," in text
    assert "CV over KL weights 1, 0.3;" in text
    text = report(Budget(grid=(1.0, 0.3), refine=(0.5, 0.25)))
    assert ("CV over KL weights 1, 0.3, then refined: each ensemble's weight chosen among the CV's w and 0.5, 0.25 x "
            "w by the 20% of the training split held out from an ensemble of 5 trained on the rest (the calibrated "
            "one's after its tau);") in text
    text = report(Budget(grid=(1.0, 0.3), head="student-t"))
    assert ("a heteroscedastic student-t output with one learned degrees of freedom per network (the protocol: "
            "Normal; NGBoost stays Normal)") in text
    # the summary: per dataset the best Bayesian method beside the best peer (none ran here)
    assert "| toy | flipout | -1.000 +- 0.100 | 0.900 | - | - |" in text
    assert "Head chosen" not in text
    row = {"test_ll": -1.0, "test_ll_se": 0.1, "rmse": 1.0, "rmse_se": 0.1, "coverage90": 0.9, "seconds": 1.0,
           "splits": 2, "per_split": [{"split": 3, "head": "student-t", "head_nll": {"normal": 1.5, "student-t": 1.25}},
                                      {"split": 4, "head": "normal", "head_nll": {"normal": 1.0, "student-t": 1.125}}]}
    text = write_uci_report({"toy": {"flipout": row}}, str(tmp_path), str(tmp_path), Budget(head="auto"), "cmd")
    assert ("a heteroscedastic Normal or Student-t output (one learned degrees of freedom per network), chosen per "
            "split by the NLL of an ensemble of each, at the CV's ensemble weight (the CV under the Normal), on the "
            "20% of the training split held out from it, for every network of the split (the protocol: Normal; "
            "NGBoost stays Normal)") in text
    assert ("Head chosen on the training rows (held-out NLL of an ensemble of each, nats/row): split 3: "
            "student-t (normal 1.500, student-t 1.250); split 4: normal (normal 1.000, student-t 1.125).") in text


def test_the_summary_puts_the_best_bayesian_method_beside_the_best_peer(tmp_path):
    from tfp_dgbn.studies.uci import Budget, write_uci_report

    def row(ll):
        return {"test_ll": ll, "test_ll_se": 0.01, "rmse": 1.0, "rmse_se": 0.1, "coverage90": 0.9, "seconds": 1.0,
                "splits": 1, "per_split": [{}]}

    result = {"a": {"flipout": row(-2.0), "bayesian-ensemble": row(-1.5), "mc-dropout": row(-1.7), "ngboost": row(-1.2)},
              "b": {"flipout": row(0.5), "deep-ensemble": row(0.4)}}
    text = write_uci_report(result, str(tmp_path), str(tmp_path), Budget(), "cmd")
    summary = text.split("## Summary", 1)[1]
    assert "| a | bayesian-ensemble | -1.500 +- 0.010 | 0.900 | ngboost | -1.200 +- 0.010 |" in summary
    assert "| b | flipout | 0.500 +- 0.010 | 0.900 | deep-ensemble | 0.400 +- 0.010 |" in summary
    assert "beats every peer: 1 of 2." in summary


def test_an_empty_result_is_refused_and_leaves_the_saved_report_as_it_was(tmp_path, capsys):
    from tfp_dgbn.studies.uci import Budget, write_uci_report
    from tfp_dgbn.validate import InputError

    saved = tmp_path / "uci.json"
    saved.write_text('{"toy": {}}')
    with pytest.raises(InputError, match="no dataset results"):
        write_uci_report({}, str(tmp_path), str(tmp_path), Budget(), "cmd")
    assert saved.read_text() == '{"toy": {}}' and sorted(os.listdir(tmp_path)) == ["uci.json"]
    assert main(["benchmark", "uci", "--data", str(tmp_path), "--out", str(tmp_path / "none"), "--replot"]) == 2
    assert f"{tmp_path / 'none' / 'uci.json'} does not exist" in capsys.readouterr().err


def test_run_split_trains_the_ensembles_at_their_own_weight(tmp_path, monkeypatch):
    import tfp_dgbn.studies.uci as uci

    data = load_uci(str(_fake_dataset(tmp_path, n=60)))
    weights, real = [], uci.train_mlp
    monkeypatch.setattr(uci, "_tempering", lambda *args, **kw: ((1.0, {}), (0.3, {})))

    def train(x, y, make_head, steps, seed, **kw):
        weights.append(kw.get("kl_weight"))
        return real(x, y, make_head, 2, seed, **kw)

    monkeypatch.setattr(uci, "train_mlp", train)
    out, _ = uci.run_split(*data.split(0), 4, uci.Budget(steps=2, members=2, num_samples=2),
                           ("flipout-tempered", "bayesian-ensemble"))
    assert out["flipout-tempered"]["kl_weight"] == 1.0 and out["bayesian-ensemble"]["kl_weight"] == 0.3
    assert weights == [1.0, 0.3, 0.3]  # the tempered network, then the ensemble's two at its own weight


@pytest.mark.slow
def test_datasets_in_worker_processes_give_the_same_results(tmp_path):
    from tfp_dgbn.studies.uci import Budget, uci_benchmark

    data_dir = tmp_path / "uci"
    _fake_dataset(data_dir, "a_small", n=60, seed=1)
    _fake_dataset(data_dir, "b_large", n=150, seed=2)  # the larger data.txt: handed out first
    seen = []
    # two splits each: the jobs are (dataset, split), so one dataset's splits run in both processes
    kwargs = dict(splits=2, methods=("flipout", "mc-dropout"), budget=Budget(steps=40, num_samples=4),
                  progress=False)
    apart = uci_benchmark(str(data_dir), workers=2, on_dataset=lambda r: seen.append(list(r)), **kwargs)
    together = uci_benchmark(str(data_dir), workers=1, **kwargs)
    assert list(apart) == list(together) == ["a_small", "b_large"]  # the datasets' order, not the finishing order
    assert sorted(map(len, seen)) == [1, 2] and seen[-1] == ["a_small", "b_large"]  # once per finished dataset
    for name in together:
        for method in kwargs["methods"]:
            assert apart[name][method]["splits"] == 2
            # per split, in split order, whichever process ran it
            assert [r["test_ll"] for r in apart[name][method]["per_split"]] == pytest.approx(
                [r["test_ll"] for r in together[name][method]["per_split"]], abs=1e-5)
    (data_dir / "a_small" / "n_splits.txt").write_text("0\n")
    with pytest.raises(ValueError, match="no split to run"):
        uci_benchmark(str(data_dir), workers=2, **kwargs)
    with pytest.raises(ValueError, match="workers must be a positive integer, got 0"):
        uci_benchmark(str(data_dir), workers=0, **kwargs)


def test_first_split_runs_later_splits_names_them_and_counts_their_test_rows(tmp_path, monkeypatch, capsys):
    """``--first-split 3 --splits 2`` runs splits 3 and 4 (rows no choice made on splits 0-2 saw): each row
    comes from its own split's test rows, names its split, and the report says which splits it holds."""
    import tfp_dgbn.studies.uci as uci

    data_dir = tmp_path / "uci"
    folder = _fake_dataset(data_dir, splits=5)
    # uneven test sizes, so that a split's test count tells which split a row was scored on
    for k in range(5):
        idx = np.loadtxt(folder / f"index_test_{k}.txt", dtype=int)
        np.savetxt(folder / f"index_test_{k}.txt", idx[: 5 + k], fmt="%d")
    # the scored rows' mean target stands in for a method's test LL: it identifies the split scored
    monkeypatch.setattr(uci, "run_split", lambda x, y, x_test, y_test, *a, **kw: (
        {m: {"test_ll": float(y_test.mean()), "rmse": 1.0, "coverage90": 0.9, "n_test": len(y_test), "seconds": 0.0}
         for m in ("flipout", "mc-dropout")}, {}))
    data = load_uci(str(folder))
    result = uci.uci_benchmark(str(data_dir), splits=2, first_split=3, methods=("flipout", "mc-dropout"),
                               progress=False)
    rows = result["toy"]["flipout"]["per_split"]
    assert [r["split"] for r in rows] == [3, 4] and result["toy"]["flipout"]["splits"] == 2
    assert [r["test_ll"] for r in rows] == pytest.approx([data.split(k)[3].mean() for k in (3, 4)])
    assert uci.uci_benchmark(str(data_dir), first_split=3, methods=("flipout",), progress=False)[
        "toy"]["flipout"]["splits"] == 2  # without --splits: the rest of them
    for bad, message in ((5, "no split to run"), (-1, "first_split must be a split index >= 0, got -1")):
        with pytest.raises(ValueError, match=message):
            uci.uci_benchmark(str(data_dir), first_split=bad, methods=("flipout",), progress=False)
    # the report names the splits; test counts filled in later are each row's own split's (8 and 9 rows)
    for r in rows:
        del r["n_test"]
    del result["toy"]["flipout"]["coverage90_se"]  # as a result written before test counts were recorded
    text = uci.write_uci_report(result, str(tmp_path / "out"), str(data_dir), uci.Budget())
    assert "## toy (2 splits: 3, 4)" in text and [r["n_test"] for r in rows] == [8, 9]
    assert "## toy (2 splits)" in uci.write_uci_report({"toy": {"flipout": dict(
        result["toy"]["flipout"], per_split=[dict(r, split=k) for k, r in enumerate(rows)])}},
        str(tmp_path / "out0"), str(data_dir), uci.Budget())  # the first K splits: not listed
    seen = []
    monkeypatch.setattr(uci, "uci_benchmark", lambda *args, **kwargs: seen.append(kwargs["first_split"]) or {})
    monkeypatch.setattr(uci, "write_uci_report", lambda *args, **kwargs: "")
    base = ["benchmark", "uci", "--data", str(data_dir), "--out", str(tmp_path / "cli")]
    assert main(base + ["--first-split", "3"]) == 0 and seen == [3]
    assert main(base + ["--first-split", "-1"]) == 2 and seen == [3]
    assert "--first-split must be >= 0, got -1" in capsys.readouterr().err


def _stand_in(splits, methods=("flipout", "mc-dropout"), name=False):
    """A result as `uci_benchmark` writes it, one row per split with test LL -split (mc-dropout -split - 1)."""
    from tfp_dgbn.studies.uci import _summarise

    return {"toy": {m: _summarise([dict({"split": s} if name else {}, test_ll=-s - (m == "mc-dropout"), rmse=1.0,
                                        coverage90=0.9, n_test=12, seconds=1.0) for s in splits]) for m in methods}}


def test_merge_pools_a_datasets_splits_across_runs_and_refuses_what_is_not_side_by_side(tmp_path, capsys):
    """``--merge`` of a run on splits 0-1 (rows written before they named their split) and a
    ``--first-split 2`` run: one dataset of four splits, summarised again over all four; both commands in
    the header, their shared recipe once."""
    import tfp_dgbn.studies.uci as uci

    data_dir = tmp_path / "uci"
    _fake_dataset(data_dir, splits=4)
    runs = {"a": _stand_in([0, 1]), "b": _stand_in([2, 3], name=True)}
    for run, result in runs.items():
        uci.write_uci_report(result, str(tmp_path / run), str(data_dir), uci.Budget(), command=f"dgbn run {run}")
    out = tmp_path / "merged"
    assert main(["benchmark", "uci", "--data", str(data_dir), "--merge", str(tmp_path / "a"), str(tmp_path / "b"),
                 "--out", str(out)]) == 0
    merged = json.loads((out / "uci.json").read_text())["toy"]
    flip = merged["flipout"]
    assert flip["splits"] == 4 and [r["split"] for r in flip["per_split"]] == [0, 1, 2, 3]
    assert flip["test_ll"] == pytest.approx(-1.5)
    assert flip["test_ll_se"] == pytest.approx(np.std([0, 1, 2, 3], ddof=1) / 2)  # sd of the 4 splits / sqrt 4
    assert merged["mc-dropout"]["test_ll"] == pytest.approx(-2.5)
    text = (out / "uci.md").read_text()
    assert "`dgbn run a`" in text and "`dgbn run b`" in text and "## toy (4 splits)" in text
    assert text.count("Every network:") == 1  # the runs share their recipe: stated once
    # the same split twice, or methods on different splits, are refused before anything is written
    before = (out / "uci.json").read_text()
    uci.write_uci_report(_stand_in([1], name=True), str(tmp_path / "c"), str(data_dir), uci.Budget(), command="c")
    uci.write_uci_report(_stand_in([2], ("ngboost",), name=True), str(tmp_path / "d"), str(data_dir),
                         uci.Budget(layers=2), command="d")
    for extra, message in (("c", "toy flipout split 1 is in both .*a and .*c"),
                           ("d", r"toy: its methods ran on different splits.*ngboost \[2\]")):
        assert main(["benchmark", "uci", "--data", str(data_dir), "--merge", str(tmp_path / "a"),
                     str(tmp_path / extra), "--out", str(out)]) == 2
        assert re.search(message, capsys.readouterr().err)
    assert (out / "uci.json").read_text() == before
    (tmp_path / "c" / "uci.md").unlink()
    assert main(["benchmark", "uci", "--data", str(data_dir), "--merge", str(tmp_path / "c"), "--out", str(out)]) == 2
    assert "lacks uci.md" in capsys.readouterr().err
    # runs with different recipes: each named with its own; the output may be one of the runs
    (tmp_path / "d" / "uci.json").write_text(json.dumps({"other": _stand_in([0])["toy"]}))
    assert main(["benchmark", "uci", "--data", str(data_dir), "--merge", str(tmp_path / "a"), str(tmp_path / "d"),
                 "--out", str(tmp_path / "a")]) == 0
    text = (tmp_path / "a" / "uci.md").read_text()
    assert text.count("Recipe of ") == 2 and "2 hidden layers" in text and "## other (1 split)" in text


def test_a_failed_split_is_named_and_resume_runs_only_the_splits_not_saved(tmp_path, monkeypatch, capsys):
    """A split that fails does not lose the others: each finished split is saved as it ends, the error
    names the failed one, and ``--resume`` reruns only it; saved splits of another budget, or unreadable
    ones, are run again."""
    import tfp_dgbn.studies.uci as uci

    data_dir = tmp_path / "uci"
    _fake_dataset(data_dir, splits=3)
    calls = []

    def stand_in(x, y, x_test, y_test, n_hidden, budget, methods, *a, **kw):
        calls.append(len(y_test) and float(y_test.sum()))  # identifies the split run
        if fail and len(calls) == 2:
            raise FloatingPointError("NaN loss")
        return {m: {"test_ll": float(y_test.mean()), "rmse": 1.0, "coverage90": 0.9, "n_test": len(y_test),
                    "seconds": 0.0} for m in methods}, {}

    monkeypatch.setattr(uci, "run_split", stand_in)
    kwargs = dict(methods=("flipout",), progress=False, split_dir=str(tmp_path / "splits"))
    fail = True
    with pytest.raises(RuntimeError, match=r"1 split job\(s\) failed: toy split 1: FloatingPointError: NaN loss; "
                                           r"the finished splits are saved in .* --resume"):
        uci.uci_benchmark(str(data_dir), **kwargs)
    assert len(calls) == 3  # split 2 still ran after split 1 failed
    assert sorted(os.listdir(tmp_path / "splits")) == ["toy-split0.json", "toy-split2.json"]
    fail, first = False, list(calls)
    calls.clear()
    result = uci.uci_benchmark(str(data_dir), resume=True, **kwargs)
    assert calls == [first[1]]  # only the failed split ran again
    data = load_uci(str(data_dir / "toy"))
    assert [r["test_ll"] for r in result["toy"]["flipout"]["per_split"]] == pytest.approx(
        [data.split(k)[3].mean() for k in range(3)])
    calls.clear()
    (tmp_path / "splits" / "toy-split0.json").write_text("{not json")
    uci.uci_benchmark(str(data_dir), resume=True, **kwargs)
    assert calls == [first[0]]  # unreadable: run again
    calls.clear()
    uci.uci_benchmark(str(data_dir), resume=True, budget=uci.Budget(steps=10), **kwargs)
    assert len(calls) == 3  # saved under another budget: nothing reused
    calls.clear()
    uci.uci_benchmark(str(data_dir), **kwargs)
    assert len(calls) == 3  # without resume every split runs
    for k in range(3):  # a split saved before the budget had a head ran the Normal head: reused
        path = tmp_path / "splits" / f"toy-split{k}.json"
        saved = json.loads(path.read_text())
        del saved["settings"]["budget"]["head"]
        path.write_text(json.dumps(saved))
    calls.clear()
    uci.uci_benchmark(str(data_dir), resume=True, **kwargs)
    assert calls == []
    uci.uci_benchmark(str(data_dir), resume=True, budget=uci.Budget(head="student-t"), **kwargs)
    assert len(calls) == 3  # under another head: run again
    seen = []
    monkeypatch.setattr(uci, "uci_benchmark", lambda *args, **kw: seen.append((kw["resume"], kw["split_dir"])) or {})
    monkeypatch.setattr(uci, "write_uci_report", lambda *args, **kw: "")
    assert main(["benchmark", "uci", "--data", str(data_dir), "--out", str(tmp_path / "o"), "--resume"]) == 0
    assert seen == [(True, str(tmp_path / "o" / "splits"))]


def test_refine_chooses_each_ensembles_weight_on_the_held_out_share(tmp_path, monkeypatch):
    import tfp_dgbn.studies.uci as uci

    data = load_uci(str(_fake_dataset(tmp_path, n=60)))
    weights, real = [], uci.train_mlp
    monkeypatch.setattr(uci, "_tempering", lambda *args, **kw: ((1.0, {}), (0.3, {})))

    def train(x, y, make_head, steps, seed, **kw):
        weights.append((kw.get("kl_weight"), len(y)))
        return real(x, y, make_head, 2, seed, **kw)

    monkeypatch.setattr(uci, "train_mlp", train)
    budget = uci.Budget(steps=2, members=2, num_samples=2, refine=(0.5,))
    x, y, x_test, y_test = data.split(0)
    out, models = uci.run_split(x, y, x_test, y_test, 4, budget, uci.ENSEMBLES)
    plain, cal = out["bayesian-ensemble"], out["bayesian-ensemble-calibrated"]
    assert set(plain["held_out_nll"]) == set(cal["held_out_nll"]) == {"0.3", "0.15"}
    # each ensemble's weight is the one its own held-out NLL prefers: before tau, and after it
    assert plain["kl_weight"] == float(min(plain["held_out_nll"], key=plain["held_out_nll"].get))
    assert cal["kl_weight"] == float(min(cal["held_out_nll"], key=cal["held_out_nll"].get))
    assert cal["held_out_nll"][f"{cal['kl_weight']:g}"] == cal["spread_nll"]["after"]
    assert models["bayesian-ensemble-calibrated"].spread == cal["spread"]
    held = len(y) - max(int(uci.CALIBRATION_SHARE * len(y)), 1)
    # two held-out ensembles on the rest of the rows, trained once for both methods; then the full ensembles,
    # one per weight chosen
    assert weights[:4] == [(0.3, held), (0.3, held), (0.15, held), (0.15, held)]
    full = sorted({w for w, n in weights[4:] if n == len(y)})
    assert full == sorted({plain["kl_weight"], cal["kl_weight"]})
    assert len(weights) == 4 + 2 * len(full)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), True])
def test_a_bad_refine_factor_is_refused(bad):
    from tfp_dgbn.studies.uci import Budget
    from tfp_dgbn.validate import InputError

    with pytest.raises(InputError, match=re.escape(f"refine factors must be finite and > 0, got {bad!r}")):
        Budget(refine=(1.5, bad))


def test_head_auto_gives_every_network_of_a_split_the_head_its_training_rows_prefer(tmp_path, monkeypatch):
    import tfp_dgbn.studies.uci as uci

    data = load_uci(str(_fake_dataset(tmp_path, n=60)))
    asked, real = [], uci.train_mlp
    cv_heads = []

    def tempering(x, y, flipout, b, mixture):  # no CV fits; the weight the head is chosen at: 0.3
        cv_heads.append(flipout(1.0, 99, slice(0, 20)).head.family)
        return (1.0, {}), (0.3, {})

    def train(x, y, make_head, steps, seed, **kw):
        asked.append((make_head().family, kw.get("kind", "flipout"), kw.get("kl_weight"), len(y), seed))
        return real(x, y, make_head, 2, seed, **kw)

    monkeypatch.setattr(uci, "_tempering", tempering)
    monkeypatch.setattr(uci, "train_mlp", train)
    x, y, x_test, y_test = data.split(0)
    methods = ("flipout", "bayesian-ensemble", "bayesian-ensemble-calibrated", "mc-dropout", "ngboost")
    out, _ = uci.run_split(x, y, x_test, y_test, 4, uci.Budget(steps=2, members=2, num_samples=2, head="auto"),
                           methods)
    assert cv_heads == ["normal"]  # the CV runs once, under the protocol's Normal head
    fit = len(y) - max(int(uci.CALIBRATION_SHARE * len(y)), 1)
    # then a held-out ensemble per family at the CV's ensemble weight, on the rows less the held-out share
    assert asked[1:5] == [(f, "flipout", 0.3, fit, s) for f in ("normal", "student-t") for s in (7, 107)], asked
    choice = out["flipout"]["head_nll"]
    assert set(choice) == {"normal", "student-t"} and all(np.isfinite(v) for v in choice.values())
    head = min(choice, key=choice.get)
    # then every network of the split, the peers' too, gets that head, and every network method's row says so
    assert len(asked) > 5 and {family for family, *_ in asked[5:]} == {head}, asked
    assert all(out[m]["head"] == head and out[m]["head_nll"] == choice and out[m]["head_weight"] == 0.3
               for m in methods[:-1])
    assert "head" not in out["ngboost"]  # NGBoost's law is its own Normal
    # the calibrated ensemble's tau comes from the chosen head's held-out ensemble, trained once
    assert sum(1 for a in asked if a[3] == fit) == 4
    # every network method's seconds include the choice (the held-out ensembles), NGBoost's do not
    assert min(out[m]["seconds"] for m in methods[:-1]) > out["ngboost"]["seconds"]


@pytest.mark.slow
def test_head_auto_picks_the_student_t_on_heavy_tailed_noise_and_not_on_normal_noise(monkeypatch):
    """On y = x + noise the choice's two held-out ensembles differ in the noise law only. Student-t noise with 3
    degrees of freedom: a Normal fit pays for the far rows, so the t's held-out NLL is lower; on Normal noise the
    t (its nu free) can at best match the Normal. Both are judged by the paired per-row differences of the 1180
    held-out rows' log densities (the two ensembles' predictive, drawn again), against their own standard error.
    Measured: t3 +0.123 nats (SE 0.024, 5.1 SE); Normal noise -0.001 (SE 0.002)."""
    import tfp_dgbn.evaluate.recalibrate as recalibrate
    import tfp_dgbn.studies.uci as uci

    n = 6000
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, (n, 1))
    budget = uci.Budget(steps=600, members=2, num_samples=16, head="auto")
    scored, real = [], recalibrate.calibrate_spread
    monkeypatch.setattr(recalibrate, "calibrate_spread", lambda model, *a, **kw: scored.append((model, *a)) or
                        real(model, *a, **kw))
    monkeypatch.setattr(uci, "_tempering", lambda *args, **kw: ((1.0, {}), (1.0, {})))  # no CV: weight 1
    gaps = {}
    for law, noise in (("t3", rng.standard_t(3, n)), ("normal", rng.normal(size=n))):
        y = x[:, 0] + 0.3 * noise
        scored.clear()
        out, _ = uci.run_split(x[:5900], y[:5900], x[5900:], y[5900:], 16, budget, ("bayesian-ensemble",))
        assert [m[0].head.family for m, *_ in scored] == ["normal", "student-t"]
        lp = [uci.log_predictive(model, xs, ys, 64)[0] for model, xs, ys, _ in scored]
        gain = lp[1] - lp[0]  # per held-out row: the t ensemble's log density less the Normal's
        gaps[law] = (out["bayesian-ensemble"]["head"], gain.mean(), gain.std() / np.sqrt(len(gain)))
    head, gap, se = gaps["t3"]
    assert head == "student-t" and gap > 3 * se, gaps
    # on Normal noise the two are practically equal, whichever is chosen: asked to stay under 0.02 nats
    head, gap, se = gaps["normal"]
    assert abs(gap) < 0.02 and 0.02 > 6 * se, gaps


def test_paired_differences_compare_two_runs_on_the_splits_both_ran():
    from tfp_dgbn.studies.uci import _summarise, paired_differences

    def run(lls, first=0, covs=None):
        rows = [{"test_ll": v, "rmse": 1.0, "coverage90": c, "seconds": 1.0, "split": first + k}
                for k, (v, c) in enumerate(zip(lls, covs or [0.9] * len(lls)))]
        return _summarise(rows)

    new = {"a": {"m": run([-1.0, -2.0, -3.0], covs=[0.8, 0.9, 1.0]), "only-new": run([0.0])}, "b": {"m": run([1.0])}}
    old = {"a": {"m": run([-2.5, -2.5, -4.0, -9.0], first=1)}}  # splits 1-4: shared with new's 1 and 2
    out = paired_differences(new, old)
    assert list(out) == ["a"] and list(out["a"]) == ["m"]  # only what both ran
    r = out["a"]["m"]
    assert r["splits"] == [1, 2]
    # differences +0.5 and -0.5: mean 0, SE = sd / sqrt(2) = 0.7071 / 1.4142 = 0.5
    assert np.isclose(r["diff"], 0.0) and np.isclose(r["diff_se"], 0.5)
    assert np.isclose(r["new_ll"], -2.5) and np.isclose(r["old_ll"], -2.5)
    assert np.isclose(r["new_coverage"], 0.95) and np.isclose(r["old_coverage"], 0.9)
    del old["a"]["m"]["per_split"][0]["split"]  # a row from before rows named their split: its place, split 0
    assert paired_differences(new, old, ["m"])["a"]["m"]["splits"] == [0, 2]
    assert paired_differences(new, old, ["only-new", "m"])["a"].keys() == {"m"}  # a method one run lacks: left out
