"""Users' tables: targets in their own units, classes as classes."""
import json

import numpy as np
import pytest
import tensorflow as tf

import tfp_dgbn
from tfp_dgbn.model.heads import head_for_targets
from tfp_dgbn.tasks.runner import fit


def _regression_rows(n=500, seed=5):
    """z | x: a smooth mean and a heteroscedastic sd, unit scale; one irrelevant input."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 3))
    z = np.sin(2 * x[:, 0]) + 0.5 * x[:, 1] + (0.2 + 0.1 * np.abs(x[:, 2])) * rng.normal(size=n)
    return x, z


def _csv(path, x, y):
    path.write_text("a,b,c,y\n" + "\n".join(",".join(f"{v:.10g}" for v in row) + f",{t:.10g}"
                                           for row, t in zip(x, y)))
    return str(path)


def test_head_for_targets_starts_at_the_data():
    y = np.array([90.0, 110.0, 130.0, 150.0])
    head, bias = head_for_targets("normal", y)
    named = head.named_params(tf.constant([[0.0, bias[1]]]))
    assert float(named["loc"][0]) == pytest.approx(120.0) and float(named["scale"][0]) == pytest.approx(y.std())
    head, bias = head_for_targets("poisson", [1, 3, 5])
    assert bias == [pytest.approx(np.log(3.0))]
    head, bias = head_for_targets("categorical", [0, 0, 0, 1])
    assert head.num_classes == 2 and np.allclose(np.exp(bias), [4 / 6, 2 / 6])  # add-one smoothed frequencies
    from tfp_dgbn.model.heads import make_head

    with pytest.raises(ValueError, match="target_std > 0, got 0.0, 0.0"):
        make_head("normal", target_mean=0.0, target_std=0.0)


def test_class_probabilities_need_a_categorical_head():
    from tfp_dgbn.model.heads import make_head
    from tfp_dgbn.predict import Predictor

    normal = Predictor(lambda x, s: {"loc": tf.zeros([s, len(x)]), "scale": tf.ones([s, len(x)])},
                       make_head("normal"), {"feature_names": ["x"]})
    with pytest.raises(ValueError, match="probs needs a categorical head; this model's is 'normal'"):
        normal.probs([[0.0]])


@pytest.mark.slow
def test_a_target_in_natural_units_fits_like_the_standardised_one(tmp_path):
    # The network works on the standardised target in every case, so the fits differ only by float32
    # rounding: the standardised NLL (NLL + log sd) and the coverage must agree far inside the issue's
    # 0.1-nat bar. Bound: 0.02 nats (the NLL's own SE here is ~0.04) and 3 of 100 held-out rows.
    x, z = _regression_rows()
    results = {}
    for mean, sd in ((0.0, 1.0), (1e3, 1e2), (0.0, 1e-3)):
        csv = _csv(tmp_path / f"t{sd:g}.csv", x, mean + sd * z)
        r = fit("table", data=csv, target="y", epochs=50, logdir=str(tmp_path / f"l{sd:g}"),
                out=str(tmp_path / f"m{sd:g}"), verbose=0, num_samples=32)
        results[sd] = (r.metrics["nll"] - np.log(sd), r.metrics["coverage"][0.9]["coverage"])  # NLL of z = (y - mean) / sd
        loaded = tfp_dgbn.load(str(tmp_path / f"m{sd:g}"))
        mean_pred = loaded.summary(x[:50], 16)["mean"]
        assert abs(np.mean(mean_pred) - (mean + sd * np.mean(z[:50]))) < 0.5 * sd  # predictions in data units
    unit_nll, unit_cov = results[1.0]
    assert unit_nll < 0.5  # it fits (a Normal of sd 1 would be 1.42)
    for sd, (nll, cov) in results.items():
        assert abs(nll - unit_nll) < 0.02, results
        assert abs(cov - unit_cov) <= 0.03, results


@pytest.mark.slow
def test_classes_get_probabilities_accuracy_and_no_intervals(tmp_path, capsys):
    from tfp_dgbn.cli import main

    rng = np.random.default_rng(2)
    x = rng.normal(size=(600, 3))
    logits = np.stack([2 * x[:, 0], -2 * x[:, 0], 1.5 * x[:, 1]], 1)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=q) for q in p])
    csv = _csv(tmp_path / "c.csv", x, y + 1)  # UCI's coding, classes 1..3: three named classes, no phantom 0
    r = fit("table", data=csv, target="y", head="categorical", epochs=60, logdir=str(tmp_path / "l"),
            out=str(tmp_path / "m"), verbose=0, num_samples=32)
    m = r.metrics
    # Bayes accuracy of this law is ~0.70; a fitted net must be well above chance (1/3).
    assert m["classes"] and m["accuracy"] > 0.55 and "coverage" not in m and "pit" not in m
    assert 0 <= m["mutual_information"] <= m["predictive_entropy"] <= np.log(3) + 1e-6
    # OOD AUROCs are reported, not bounded: far outside, ReLU logits grow and the draws agree confidently
    # (measured here 0.43 for mutual information), the known failure of ReLU classifiers (Hein et al., 2019).
    assert set(m["ood"]) == {"predictive_entropy", "mutual_information"}
    loaded = tfp_dgbn.load(str(tmp_path / "m"))
    probs = loaded.probs(x[:5], 64)
    assert probs.shape == (5, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert "mean" not in loaded.summary(x[:5], 8)  # no "expected class index" for unordered classes
    capsys.readouterr()
    assert main(["predict", "--model", str(tmp_path / "m"), "--features", "1", "0", "0"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert len(row["probs"]) == 3 and "mutual_information" in row and not any(k.startswith("interval") for k in row)
    assert loaded.metadata["class_names"] == ["1", "2", "3"] and list(row["probs_by_class"]) == ["1", "2", "3"]
    assert row["predicted_class"] == "1"  # at x = (1, 0, 0) the true probability of class 1 is 0.87
    assert main(["predict", "--model", str(tmp_path / "m"), "--features", "1", "red", "0"]) == 2
    assert "--features value 'red' is not a number" in capsys.readouterr().err
    # the file's labels map back onto the named classes: evaluate scores what fit's report scored
    assert main(["evaluate", "--model", str(tmp_path / "m"), "--data", csv, "--out", str(tmp_path / "e")]) == 0
    assert json.loads((tmp_path / "e" / "metrics.json").read_text())["accuracy"] > 0.55


def test_an_ensemble_export_serves_the_equal_mixture_of_its_networks(tmp_path):
    # Two point-weight networks that predict Normal(-1, 1) and Normal(2, 1) everywhere: the ensemble's
    # predictive must be exactly 0.5 N(-1, 1) + 0.5 N(2, 1), draw i from network i mod 2.
    from scipy import stats

    from tfp_dgbn.export import export_predictive
    from tfp_dgbn.model.heads import make_head
    from tfp_dgbn.model.mlp import bayesian_mlp
    from tfp_dgbn.predict import model_predictor

    nets = []
    for loc in (-1.0, 2.0):
        net = bayesian_mlp(1, make_head("normal"), 10, hidden=(4,), kind="deterministic",
                           output_bias=[loc, float(np.log(np.expm1(1 - 1e-3)))])
        net.get_layer("params").kernel.assign(tf.zeros_like(net.get_layer("params").kernel))
        nets.append(net)
    export_predictive(nets, str(tmp_path / "ens"))
    loaded = tfp_dgbn.load(str(tmp_path / "ens"))
    assert loaded.metadata["ensemble"] == 2
    for predictor in (loaded, model_predictor(nets)):
        draws = predictor.draws([[0.3], [0.7]], 6)
        np.testing.assert_allclose(draws["loc"].numpy()[:, 0], [-1, 2, -1, 2, -1, 2], atol=1e-6)
        y = np.array([0.0, 1.5], "float32")
        want = np.log(0.5 * stats.norm(-1, 1).pdf(y) + 0.5 * stats.norm(2, 1).pdf(y))
        np.testing.assert_allclose(predictor([[0.3], [0.7]], 6).log_prob(y), want, rtol=1e-5)
    assert loaded.draws([[0.3]], 5)["loc"].shape[0] == 5  # S not a multiple of K: cut to S


def test_fit_table_lengthens_the_epochs_of_a_small_table(tmp_path, capsys):
    """An epoch of a small table is one or two steps: `min_steps` makes each epoch more passes, so the
    posterior scales leave their start (init_scale 1e-3); without it they stay there (docs/own_data.md)."""
    from tfp_dgbn.cli import main

    rng = np.random.default_rng(2)
    x = rng.normal(size=(100, 2))
    csv = tmp_path / "small.csv"
    csv.write_text("a,b,k\n" + "\n".join(f"{a:.6g},{b:.6g},{int(a > 0)}" for a, b in x))
    stddev = {}
    for steps in (0, 2000):  # 80 training rows, batch 128: one step per epoch, or ceil(2000 / 40) = 50
        r = fit("table", data=str(csv), target="k", head="categorical", epochs=40, min_steps=steps,
                logdir=str(tmp_path / f"l{steps}"), out=str(tmp_path / f"m{steps}"), verbose=0, num_samples=8)
        assert int(r.model.optimizer.iterations) == 40 * max(1, steps // 40)
        out = capsys.readouterr().out
        assert f"40 epochs of {max(1, steps // 40)} step" in out
        assert ("warning: the posterior scales are within a decade of their start" in out) == (steps == 0)
        stddev[steps] = r.metrics["posterior_stddev"]["median"]
    # 40 Adam steps of 5e-3 move a softplus-parametrised scale from 1e-3 by well under 2x; 2000 steps move
    # it past 10x (towards the prior's 1 where the data do not pin a weight)
    assert stddev[0] < 2e-3 and stddev[2000] > 1e-2, stddev
    assert main(["fit", "table", "--data", str(csv), "--target", "k", "--min-steps", "-1", "--out",
                 str(tmp_path / "m0"), "--quiet"]) == 2
    assert "min_steps must be an integer >= 0, got -1" in capsys.readouterr().err


def test_the_narrow_posterior_warning_looks_at_every_network_of_an_ensemble():
    from tfp_dgbn.tasks.runner import narrow_posterior_warning

    assert narrow_posterior_warning([{"median": 0.5}, {"median": 0.2}], 1e-3) is None
    assert "median 0.001, init_scale" in narrow_posterior_warning([{"median": 0.001}], 1e-3)
    # the second network stayed at its start: the first one's wide scales must not hide it
    assert "(median 0.002, the lowest of 2 networks" in narrow_posterior_warning([{"median": 0.5},
                                                                                   {"median": 0.002}], 1e-3)


@pytest.mark.slow
def test_fit_table_ensemble_from_the_command_line(tmp_path):
    from tfp_dgbn.cli import main

    x, z = _regression_rows(300)
    csv = _csv(tmp_path / "e.csv", x, 50 + 10 * z)
    logdir = tmp_path / "logs"
    assert main(["fit", "table", "--data", csv, "--target", "y", "--epochs", "20", "--ensemble", "3",
                 "--logdir", str(logdir), "--out", str(tmp_path / "m"), "--quiet"]) == 0
    loaded = tfp_dgbn.load(str(tmp_path / "m"))
    assert loaded.metadata["ensemble"] == 3
    assert all((logdir / f"member_{k}" / "checkpoint.keras").exists() for k in range(3))
    saved = json.loads((logdir / "metrics.json").read_text())
    assert saved["metrics"]["ensemble"] == 3 and saved["config"]["ensemble"] == 3
    # three differently seeded networks: their draws differ (an ensemble of copies would not)
    locs = loaded.draws(x[:4], 3)["loc"].numpy()
    assert np.abs(locs[0] - locs[1]).max() > 1e-3 and np.abs(locs[1] - locs[2]).max() > 1e-3


@pytest.mark.slow
def test_fit_table_recalibrates_an_ensemble_on_held_out_training_rows(tmp_path, capsys):
    from tfp_dgbn.cli import main

    x, z = _regression_rows(300)
    csv = _csv(tmp_path / "c.csv", x, 50 + 10 * z)
    logdir = tmp_path / "logs"
    assert main(["fit", "table", "--data", csv, "--target", "y", "--epochs", "4", "--ensemble", "2",
                 "--calibrate", "0.25", "--logdir", str(logdir), "--out", str(tmp_path / "m"), "--quiet"]) == 0
    saved = json.loads((logdir / "metrics.json").read_text())
    calibration = saved["metrics"]["spread_calibration"]
    # 300 rows: 60 held out for the report, 60 of the other 240 to recalibrate, 180 to train
    assert calibration["rows"] == 60 and saved["config"]["calibrate"] == 0.25
    assert "180 training rows, 60 to recalibrate, 60 held out" in capsys.readouterr().out
    assert calibration["spread"] > 0 and calibration["nll_after"] <= calibration["nll_before"]
    loaded = tfp_dgbn.load(str(tmp_path / "m"))
    assert loaded.metadata["spread"] == pytest.approx(calibration["spread"]) and loaded.metadata["ensemble"] == 2
    for bad, message in ((["--calibrate", "1.5"], "calibrate must be in [0, 1), got 1.5"),
                         (["--calibrate", "0.2", "--head", "poisson"],
                          "calibrate needs a head with a location and a scale")):
        assert main(["fit", "table", "--data", csv, "--target", "y", "--epochs", "1", "--out", str(tmp_path / "m"),
                     "--quiet", *bad]) == 2
        assert message in capsys.readouterr().err
    assert tfp_dgbn.load(str(tmp_path / "m")).metadata["spread"] == loaded.metadata["spread"]  # export kept


@pytest.mark.slow
def test_fit_table_with_a_student_t_head_exports_its_tails_in_the_targets_units(tmp_path, capsys):
    from tfp_dgbn.cli import main

    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (400, 3))
    y = 50 + 10 * (np.sin(2 * x[:, 0]) + 0.3 * rng.standard_t(3, size=400))
    csv = _csv(tmp_path / "t.csv", x, y)
    logdir = tmp_path / "logs"
    assert main(["fit", "table", "--data", csv, "--target", "y", "--head", "student-t", "--epochs", "30",
                 "--ensemble", "2", "--calibrate", "0.2", "--logdir", str(logdir), "--out", str(tmp_path / "m"),
                 "--quiet"]) == 0
    loaded = tfp_dgbn.load(str(tmp_path / "m"))
    assert loaded.metadata["family"] == "student-t" and loaded.metadata["ensemble"] == 2
    draws = {k: v.numpy() for k, v in loaded.draws(x[:5], 4).items()}
    # each network serves its own learned nu, moved from its start (10) by training; loc in the target's units
    assert np.all(draws["df"] > 2) and np.all(np.abs(draws["df"] - 10) > 1e-3), draws["df"]
    assert abs(draws["loc"].mean() - 50) < 15
    saved = json.loads((logdir / "metrics.json").read_text())
    assert np.isfinite(saved["metrics"]["nll"]) and saved["config"]["head"] == "student-t"
    assert saved["metrics"]["spread_calibration"]["spread"] == pytest.approx(loaded.metadata["spread"])
    # the held-out report of a real-valued head: intervals and the plain PIT (not the randomised one)
    assert 0.9 in {float(k) for k in saved["metrics"]["coverage"]}


@pytest.mark.slow
def test_fit_table_head_auto_keeps_the_student_t_on_heavy_tailed_rows(tmp_path, capsys):
    from tfp_dgbn.cli import main

    rng = np.random.default_rng(6)
    n = 1200
    x = rng.uniform(-1, 1, (n, 3))
    # contaminated noise: 90% of the rows sd 0.1, 10% sd 1. A Normal head must cover both with one scale;
    # the t's narrow peak and wide tails fit both. With this seed the choice's rows favour the t by
    # 0.248 nats per row, SE 0.040 over the rows (6.2 SE; measured by scoring both heads' mixtures row by row)
    y = 50 + 10 * (np.sin(2 * x[:, 0]) + np.where(rng.uniform(size=n) < 0.1, rng.normal(0, 1, n),
                                                  rng.normal(0, 0.1, n)))
    csv = _csv(tmp_path / "t.csv", x, y)
    logdir = tmp_path / "logs"
    assert main(["fit", "table", "--data", csv, "--target", "y", "--head", "auto", "--epochs", "30",
                 "--ensemble", "2", "--calibrate", "0.25", "--logdir", str(logdir), "--out", str(tmp_path / "m"),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    saved = json.loads((logdir / "metrics.json").read_text())
    choice = saved["metrics"]["head_choice"]
    # 1200 rows: 240 held out for the report, 240 of the other 960 pick the head, 720 train both heads
    assert choice["rows"] == 240 and set(choice["nll"]) == {"normal", "student-t"}
    assert choice["chosen"] == min(choice["nll"], key=choice["nll"].get) == "student-t", choice
    assert "head chosen on the calibration rows: student-t" in out
    # each head's two networks trained, each in its own log directory; the export is the chosen head's
    assert all((logdir / f"head_{h}" / f"member_{k}" / "checkpoint.keras").exists()
               for h in ("normal", "student-t") for k in range(2))
    loaded = tfp_dgbn.load(str(tmp_path / "m"))
    assert loaded.metadata["family"] == "student-t" and loaded.metadata["ensemble"] == 2
    assert loaded.metadata["head_choice"] == choice and saved["config"]["head"] == "auto"
    # the chosen ensemble is the one recalibrated: its NLL before tau is the choice's (0.05 nats: room for
    # the two evaluations' weight draws, 64 each; they came out equal here, the seeds being the run's)
    assert saved["metrics"]["spread_calibration"]["nll_before"] == pytest.approx(choice["nll"]["student-t"],
                                                                                 abs=0.05)
    assert main(["fit", "table", "--data", csv, "--target", "y", "--head", "auto", "--epochs", "1",
                 "--out", str(tmp_path / "m"), "--quiet"]) == 2
    assert "give it a calibrate share (e.g. --calibrate 0.2)" in capsys.readouterr().err
    assert tfp_dgbn.load(str(tmp_path / "m")).metadata["head_choice"] == choice  # the export kept


def test_text_class_labels_and_text_inputs_are_named_in_the_export(tmp_path, capsys):
    """A class column of words (as an iris CSV has) and an input column of words: sorted labels are classes
    0..K-1, each input word a 0/1 input, and the export names both, so new files are read the same way."""
    from tfp_dgbn.cli import main

    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 3))
    site = np.array(["south", "north"])[rng.integers(0, 2, 300)]  # no bearing on the class
    names = np.array(["virginica", "setosa", "versicolor"])  # not in sorted order: the sort must not matter
    y = names[np.where(x[:, 0] > 0.5, 0, np.where(x[:, 0] < -0.5, 1, 2))]

    def write(path, keep):
        path.write_text("a,b,c,site,species\n" + "\n".join(f"{r[0]:.6g},{r[1]:.6g},{r[2]:.6g},{s},{label}"
                                                          for r, s, label in zip(x[keep], site[keep], y[keep])))
        return str(path)

    r = fit("table", data=write(tmp_path / "iris.csv", slice(None)), target="species", head="categorical",
            epochs=40, logdir=str(tmp_path / "l"), out=str(tmp_path / "m"), verbose=0, num_samples=16)
    # a label set by x[:, 0] alone: a fitted net far above chance (1/3)
    assert r.metrics["accuracy"] > 0.8, r.metrics["accuracy"]
    loaded = tfp_dgbn.load(str(tmp_path / "m"))
    assert loaded.metadata["class_names"] == ["setosa", "versicolor", "virginica"]
    assert loaded.metadata["feature_names"] == ["a", "b", "c", "site=north", "site=south"]
    assert loaded.metadata["categories"] == {"site": ["north", "south"]}
    assert loaded.probs(np.c_[x[:2], [[1, 0], [0, 1]]], 8).shape == (2, 3)
    capsys.readouterr()
    assert main(["predict", "--model", str(tmp_path / "m"), "--features", "2", "0", "0", "1", "0",
                 "-2", "0", "0", "0", "1"]) == 0
    far_right, far_left = json.loads(capsys.readouterr().out)
    assert (far_right["predicted_class"], far_left["predicted_class"]) == ("virginica", "setosa")
    assert set(far_right["probs_by_class"]) == {"setosa", "versicolor", "virginica"}
    assert far_right["probs_by_class"]["virginica"] == max(far_right["probs"])
    # the same two examples as a file's cells, a word for the text column: encoded onto the same inputs
    assert main(["predict", "--model", str(tmp_path / "m"), "--features", "2", "0", "0", "north",
                 "-2", "0", "0", "south"]) == 0
    by_word = json.loads(capsys.readouterr().out)
    assert [row["features"] for row in by_word] == [far_right["features"], far_left["features"]]
    assert [row["predicted_class"] for row in by_word] == ["virginica", "setosa"]
    for values, message in ((["2", "0", "0", "east"], "'--features' row 1, column 'site' is 'east', not one of the "
                                                      "model's categories of 'site' ['north', 'south']"),
                            (["2", "0", "north"], "--features takes 4 values per example (a b c site)")):
        assert main(["predict", "--model", str(tmp_path / "m"), "--features", *values]) == 2
        assert message in capsys.readouterr().err
    # evaluate reads a new file onto the model's classes and inputs by name: here one holding two of the
    # three classes and one of the two sites
    subset = write(tmp_path / "two.csv", (y != "versicolor") & (site == "north"))
    assert main(["evaluate", "--model", str(tmp_path / "m"), "--data", subset, "--out", str(tmp_path / "ev")]) == 0
    evaluated = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert evaluated["accuracy"] > 0.8, evaluated["accuracy"]
    for row, message in (("0,0,0,north,rose", "'rose', not one of the model's classes ['setosa', 'versicolor', "
                                              "'virginica']"),
                         ("0,0,0,east,setosa", "'east', not one of the model's categories of 'site' ['north', "
                                               "'south']")):
        (tmp_path / "bad.csv").write_text(f"a,b,c,site,species\n{row}\n")
        assert main(["evaluate", "--model", str(tmp_path / "m"), "--data", str(tmp_path / "bad.csv"),
                     "--out", str(tmp_path / "ev2")]) == 2
        assert message in capsys.readouterr().err
