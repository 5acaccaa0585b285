"""A researcher's own data: CSV/NPZ loading with named errors, dgbn fit table, dgbn evaluate."""
import os

import numpy as np
import pytest

from tfp_dgbn.cli import main
from tfp_dgbn.dataset.tabular import load_table, split_table


def _write(path, text):
    path.write_text(text)
    return str(path)


def test_csv_errors_name_row_and_column(tmp_path):
    ok = _write(tmp_path / "ok.csv", "x,z,y\n0.1,1,2.5\n0.2,2,3.5\n")
    x, y, names = load_table(ok, "y")[:3]
    assert names == ["x", "z"] and x.shape == (2, 2) and y.tolist() == [2.5, 3.5]
    cases = {
        "x,y\n0.1,2\n0.2,abc\n": "row 3, column 'y' is not a number: 'abc'",
        "x,y\n0.1,2\n,3\n": "row 3, column 'x' is empty",
        "x,y\n0.1,nan\n": "row 2, column 'y' is 'nan': values must be finite",
        "x,y\n0.1,2,7\n": "row 2 has 3 values, the header has 2",
        "x,w\n0.1,2\n": "has no column 'y' (columns: x, w)",
        "x,y\n": "has a header but no rows",
    }
    for i, (text, match) in enumerate(cases.items()):
        with pytest.raises(ValueError, match=match.replace("(", r"\(").replace(")", r"\)")):
            load_table(_write(tmp_path / f"bad{i}.csv", text), "y")
    with pytest.raises(ValueError, match="has no column 'q'"):
        load_table(ok, "y", features=["x", "q"])
    with pytest.raises(ValueError, match="row 2, column 'y' is 2.5: a count target must be a non-negative"):
        load_table(ok, "y", integer_target=True)
    with pytest.raises(FileNotFoundError, match="no data file"):
        load_table(str(tmp_path / "none.csv"), "y")
    # pandas' to_csv writes its index as a column without a name: read, named as pandas does, no default input
    indexed = _write(tmp_path / "pd.csv", ",x,y\n0,0.1,2\n1,0.2,3\n")
    assert load_table(indexed, "y").features == ["x"]
    assert load_table(indexed, "y", features=["Unnamed: 0", "x"]).x[:, 0].tolist() == [0, 1]
    with pytest.raises(ValueError, match="the header row must name every column once"):
        load_table(_write(tmp_path / "dup.csv", "x,x,y\n1,2,3\n"), "y")
    # semicolons (UCI's wine quality files) or tabs where the header has no comma; quoted names with spaces
    for sep in (";", "\t"):
        other = _write(tmp_path / "sep.csv", sep.join(['"fixed acidity"', "quality"]) + f"\n7.4{sep}5\n7.8{sep}6\n")
        x, y, names = load_table(other, "quality")[:3]
        assert names == ["fixed acidity"] and x[:, 0].tolist() == pytest.approx([7.4, 7.8]) and y.tolist() == [5, 6]
    # class targets: integers or text; text is kept only in the target, and only for classes
    with pytest.raises(ValueError, match="row 2, column 'y' is 2.5: a class label must be an integer or text"):
        load_table(ok, "y", labels=True)
    words = _write(tmp_path / "words.csv", "x,kind,y\n0.1,red,b\n0.2,blue,a\n")
    with pytest.raises(ValueError, match="column 'y' holds text \\('a', 'b'\\), not numbers: if these are "
                                         "classes, fit them with --head categorical"):
        load_table(words, "y", features=["x"])
    x, y, names, classes = load_table(words, "y", features=["x"], labels=True)[:4]
    assert classes == ["a", "b"] and y.tolist() == [1, 0] and y.dtype == np.int64
    x, y, names, classes = load_table(words, "y", features=["x"], labels=True, class_names=["b", "c", "a"])[:4]
    assert classes == ["b", "c", "a"] and y.tolist() == [0, 2]


def test_integer_labels_are_class_indices_only_when_they_are_0_to_k_minus_1(tmp_path):
    """UCI codes classes 1..3 (wine) and SVM data -1/+1: named classes, no class the data never holds."""
    def labels(text, **kw):
        t = load_table(_write(tmp_path / "l.csv", "x,y\n" + "".join(f"0.1,{v}\n" for v in text.split())), "y",
                       labels=True, **kw)
        return t.y.tolist(), t.class_names

    assert labels("2 0 1 1") == ([2, 0, 1, 1], None)  # 0..K-1: label k is class k, as before
    assert labels("3 1 2 1") == ([2, 0, 1, 0], ["1", "2", "3"])
    assert labels("1 -1 1.0") == ([1, 0, 1], ["-1", "1"])  # by value; "1.0" is the label 1
    assert labels("10 2 0") == ([2, 1, 0], ["0", "2", "10"])  # by value, not as text; no phantom 1
    # a model's names map a new file's labels, written either way (an NPZ's 3.0 too)
    assert labels("3.0 1", class_names=["1", "2", "3"]) == ([2, 0], ["1", "2", "3"])
    npz = str(tmp_path / "l.npz")
    np.savez(npz, x=np.zeros(2), y=np.array([3.0, 2.0]))
    assert load_table(npz, "y", labels=True, class_names=["1", "2", "3"]).y.tolist() == [2, 1]
    with pytest.raises(ValueError, match="row 2, column 'y' is '4', not one of the model's classes \['1', '2', '3'"):
        labels("4", class_names=["1", "2", "3"])
    # a model whose labels are its indices (no names) takes labels 0..K-1 only, whichever the file holds
    assert labels("2 2", num_classes=3) == ([2, 2], None)
    with pytest.raises(ValueError, match="row 3, column 'y' is 3, not one of the model's classes 0..2"):
        labels("0 3", num_classes=3)
    with pytest.raises(ValueError, match="row 2, column 'y' is 'cat', not one of the model's classes"):
        labels("cat", class_names=["1", "2"])


def test_text_inputs_become_one_input_per_category(tmp_path):
    path = _write(tmp_path / "t.csv", "x,colour,y\n0.1,red,1\n0.2,blue,2\n0.3,red,3\n")
    t = load_table(path, "y")
    assert t.features == ["x", "colour=blue", "colour=red"] and t.columns == ["x", "colour"]
    assert t.categories == {"colour": ["blue", "red"]}
    np.testing.assert_allclose(t.x, [[0.1, 0, 1], [0.2, 1, 0], [0.3, 0, 1]], rtol=1e-6)
    # a model's categories encode a new file onto the same inputs, whatever that file holds
    other = _write(tmp_path / "o.csv", "x,colour,y\n0.5,red,1\n")
    np.testing.assert_allclose(load_table(other, "y", categories=t.categories).x, [[0.5, 0, 1]])
    with pytest.raises(ValueError, match="row 2, column 'colour' is 'green', not one of the model's categories of "
                                         "'colour' \\['blue', 'red'\\]"):
        load_table(_write(tmp_path / "g.csv", "x,colour,y\n0.5,green,1\n"), "y", categories=t.categories)
    # a column that mixes numbers and text (a missing-value mark) is an error, not a category per number
    with pytest.raises(ValueError, match="row 3, column 'x' is not a number: '\\?'"):
        load_table(_write(tmp_path / "q.csv", "x,y\n0.1,1\n?,2\n0.3,3\n"), "y")
    with pytest.raises(ValueError, match="row 3, column 'colour' is empty"):
        load_table(_write(tmp_path / "e.csv", "x,colour,y\n0.1,red,1\n0.2,,2\n"), "y")
    ids = "x,id,y\n" + "".join(f"0.1,row{i},1\n" for i in range(60))
    with pytest.raises(ValueError, match="column 'id' holds 60 distinct texts .* more than 50"):
        load_table(_write(tmp_path / "ids.csv", ids), "y")
    assert load_table(_write(tmp_path / "ids.csv", ids), "y", features=["x"]).features == ["x"]


def test_missing_values_are_errors_unless_marked_then_their_rows_are_dropped(tmp_path):
    """A UCI-style file: '?' in a number column, an empty text cell, 'NA' in the target, a blank line."""
    text = "x,colour,note,y\n0.1,red,a,1\n?,red,b,2\n\n0.3,,c,3\n0.4,blue,,NA\n0.5,blue,d,5\n0.6,red,?,6\n"
    path = _write(tmp_path / "m.csv", text)
    # by default an error naming the cell and the fix; rows are named by their line in the file (the blank
    # line 4 is counted)
    with pytest.raises(ValueError, match="row 6, column 'y' is not a number: 'NA' \\(if it marks a missing "
                                         "value, drop such rows with --missing"):
        load_table(path, "y", features=["x"])
    filled = _write(tmp_path / "f.csv", text.replace(",NA\n", ",4\n"))
    with pytest.raises(ValueError, match="row 3, column 'x' is not a number: '\\?'"):
        load_table(filled, "y", features=["x"])
    with pytest.raises(ValueError, match="row 5, column 'colour' is empty"):
        load_table(filled, "y", features=["colour"])
    t = load_table(path, "y", features=["x", "colour"], missing=["", "?", "NA"])
    # dropped: line 3 ('?' in x), line 5 (empty colour), line 6 ('NA' target); 'note' is not used, so its
    # empty and '?' cells drop nothing
    assert t.dropped == 3 and t.y.tolist() == [1, 5, 6]
    np.testing.assert_allclose(t.x, [[0.1, 0, 1], [0.5, 1, 0], [0.6, 0, 1]], rtol=1e-6)
    assert t.categories == {"colour": ["blue", "red"]}  # the empty cell is no category
    # errors after a drop still name the file's line
    with pytest.raises(ValueError, match="row 8, column 'y' is 6.5: a count"):
        load_table(_write(tmp_path / "c.csv", text.replace(",6\n", ",6.5\n")), "y", features=["x"],
                   missing=["", "?", "NA"], integer_target=True)
    with pytest.raises(ValueError, match="every row of .* has a missing value \\('\\?'\\)"):
        load_table(_write(tmp_path / "all.csv", "x,y\n?,1\n?,2\n"), "y", missing=["?"])
    npz = str(tmp_path / "m.npz")
    np.savez(npz, x=np.array([0.0, np.nan, 2.0]), y=np.array([1.0, 2.0, 3.0]))
    t = load_table(npz, "y", missing=[])
    assert t.dropped == 1 and t.y.tolist() == [1.0, 3.0]


def test_npz_columns_and_errors(tmp_path):
    path = str(tmp_path / "d.npz")
    np.savez(path, x=np.arange(5.0), y=np.array([0, 1, 2, 1, 0]))
    x, y, names = load_table(path, "y", integer_target=True)[:3]
    assert y.dtype == np.int64 and names == ["x"]
    np.savez(path, x=np.arange(3.0), y=np.array(["dog", "cat", "dog"]))
    assert load_table(path, "y", labels=True).class_names == ["cat", "dog"]
    with pytest.raises(ValueError, match="column 'y' holds text \\('cat', 'dog'\\), not numbers"):
        load_table(path, "y")
    np.savez(path, x=np.array([0.0, np.nan]), y=np.zeros(2))
    with pytest.raises(ValueError, match="row 1, column 'x' is .*nan"):
        load_table(path, "y")
    np.savez(path, x=np.zeros((2, 2)), y=np.zeros(2))
    with pytest.raises(ValueError, match="column 'x' has shape \\[2, 2\\]; each column must be 1-D"):
        load_table(path, "y")
    with pytest.raises(ValueError, match="need one row on each side"):
        split_table(np.zeros((1, 1)), np.zeros(1))


def test_fit_table_then_evaluate_from_the_command_line(tmp_path, capsys):
    """A CSV of the Gaussian toy plus an irrelevant column: trains, exports, reports; evaluate re-reads it."""
    from tfp_dgbn.simulate.toys import make_toy

    x, y = make_toy("toy-gaussian").sample(600, seed=4)
    noise = np.random.default_rng(1).normal(size=len(y))
    csv = tmp_path / "mine.csv"
    rows = [f"{a:.6f},{b:.6f},{c:.6f}" for a, b, c in zip(x[:, 0], noise, y)]
    csv.write_text("x,noise,y\n" + "\n".join(rows[:5] + ["?,0.1,0.2"] + rows[5:]))  # a row with a missing x
    out, logdir = str(tmp_path / "export"), str(tmp_path / "logs")
    assert main(["fit", "table", "--data", str(csv), "--target", "y", "--epochs", "60", "--logdir", logdir,
                 "--out", out, "--quiet"]) == 2  # without --missing the '?' is an error naming its row
    assert "row 7, column 'x' is not a number: '?' (if it marks a missing value" in capsys.readouterr().err
    assert main(["fit", "table", "--data", str(csv), "--target", "y", "--epochs", "60", "--logdir", logdir,
                 "--out", out, "--quiet", "--missing", "?"]) == 0
    report = (tmp_path / "logs" / "evaluation" / "report.md").read_text()
    assert "NLL" in report and "| 90% |" in report
    import tfp_dgbn

    pred = tfp_dgbn.load(out)
    assert pred.metadata["feature_names"] == ["x", "noise"] and pred.metadata["target"] == "y"
    assert pred.metadata["missing"] == ["?"] and pred.metadata["rows_dropped"] == 1
    # evaluate drops a file's rows by the marks the model was trained with
    assert main(["evaluate", "--model", out, "--data", str(csv), "--out", str(tmp_path / "ev"), "--num-samples",
                 "16"]) == 0
    assert "(1 row with a missing value dropped)" in (tmp_path / "ev" / "report.md").read_text()
    assert os.path.exists(tmp_path / "ev" / "coverage.png")
    # a bad target column is a one-line user error (exit 2)
    assert main(["fit", "table", "--data", str(csv), "--target", "z", "--epochs", "1", "--logdir", logdir,
                 "--out", out, "--quiet"]) == 2


def test_evaluate_a_toy_export_on_fresh_simulated_data(gaussian_fit, tmp_path):
    out = str(tmp_path / "ev")
    assert main(["evaluate", "--model", gaussian_fit.paths["savedmodel"], "--out", out, "--n", "500",
                 "--num-samples", "32"]) == 0
    text = open(os.path.join(out, "report.md")).read()
    assert "Out of distribution" in text and "500 fresh examples of toy-gaussian" in text


def test_a_target_of_few_integers_under_a_real_head_gets_a_note(tmp_path):
    """Class codes (0/1/2) fitted with the default normal head: the run says so, and names the fix;
    a measured target (many distinct values) or a categorical head gets no note."""
    from tfp_dgbn.tasks import make_settings
    from tfp_dgbn.tasks.table import TableTask

    rng = np.random.default_rng(0)
    codes = _write(tmp_path / "c.csv", "x,y\n" + "".join(f"{v:.3f},{k}\n" for v, k in
                                                           zip(rng.normal(size=60), rng.integers(0, 3, 60))))
    measured = _write(tmp_path / "m.csv", "x,y\n" + "".join(f"{v:.3f},{v + 1:.3f}\n" for v in rng.normal(size=60)))
    for path, head, noted in ((codes, "normal", True), (codes, "categorical", False), (measured, "normal", False)):
        said = []
        TableTask().prepare(make_settings("table", data=path, target="y", head=head), said.append)
        note = [m for m in said if m.startswith("note:")]
        assert bool(note) == noted, (path, head, said)
        if noted:
            assert "holds only 3 distinct integers (0, 1, 2); the normal head" in note[0]
