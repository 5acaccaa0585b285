"""A researcher's own tabular data: CSV or NPZ columns -> features and a target, with a held-out split.

Formats (docs/own_data.md):
  CSV  a header row of column names, then one example per row, every value a
       number (``,`` separated; quoting as Python's csv module). Empty cells,
       ``nan`` and text are errors naming the row (1-based, the header is row 1)
       and the column.
  NPZ  one 1-D numeric array per column, named by the column, all the same length.

The target is one column (``--target``); the features are the named columns,
or every other column. Targets of Poisson and categorical heads must be
non-negative integers (categorical: classes 0..K-1).
"""
import csv
import os

import numpy as np

from tfp_dgbn import seeds
from tfp_dgbn.validate import InputError


def _check_names(path, columns, target, features):
    if target not in columns:
        raise InputError(f"{path!r} has no column {target!r} (columns: {', '.join(columns)})")
    features = [c for c in columns if c != target] if features is None else list(features)
    missing = [f for f in features if f not in columns]
    if missing:
        raise InputError(f"{path!r} has no column {missing[0]!r} (columns: {', '.join(columns)})")
    if target in features:
        raise InputError(f"column {target!r} cannot be both the target and a feature")
    if not features:
        raise InputError(f"{path!r} has no feature columns besides the target {target!r}")
    return features


def _read_csv(path):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise InputError(f"{path!r} is empty (a header row of column names is needed)") from None
        if len(set(header)) != len(header) or "" in header:
            raise InputError(f"{path!r}: the header row must name every column once, got {header}")
        rows = []
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(f"{path!r} row {line} has {len(row)} values, the header has {len(header)}")
            values = []
            for name, cell in zip(header, row):
                try:
                    v = float(cell)
                except ValueError:
                    what = "is empty" if not cell.strip() else f"is not a number: {cell!r}"
                    raise InputError(f"{path!r} row {line}, column {name!r} {what}") from None
                if not np.isfinite(v):
                    raise InputError(f"{path!r} row {line}, column {name!r} is {cell.strip()!r}: values must be finite")
                values.append(v)
            rows.append(values)
    if not rows:
        raise InputError(f"{path!r} has a header but no rows")
    table = np.asarray(rows, "float64")
    return {name: table[:, j] for j, name in enumerate(header)}, 2


def _read_npz(path):
    with np.load(path, allow_pickle=False) as data:
        columns = {name: data[name] for name in data.files}
    lengths = {name: a.shape for name, a in columns.items()}
    for name, a in columns.items():
        if a.ndim != 1:
            raise InputError(f"{path!r} column {name!r} has shape {list(a.shape)}; each column must be 1-D")
        if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
            raise InputError(f"{path!r} column {name!r} has dtype {a.dtype}, not a real number type")
    if len({s[0] for s in lengths.values()}) > 1:
        raise InputError(f"{path!r} columns differ in length: {dict((k, v[0]) for k, v in lengths.items())}")
    for name, a in columns.items():
        bad = np.flatnonzero(~np.isfinite(a.astype("float64")))
        if bad.size:
            raise InputError(f"{path!r} row {bad[0]}, column {name!r} is {float(a[bad[0]])!r}: values must be finite")
    return {k: v.astype("float64") for k, v in columns.items()}, 0


def load_table(path, target, features=None, integer_target=False):
    """Features and target from a CSV or NPZ file (module docstring).

    Args:
      path: ``.csv`` or ``.npz`` file.
      target: the target column's name.
      features: feature column names (default: every other column).
      integer_target: require non-negative integer targets (count heads).

    Returns:
      (x float32 [N, D], y [N] (float32, or int64 with ``integer_target``), feature names).

    Raises:
      ValueError / FileNotFoundError naming the file, row and column of the problem.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no data file at {path!r}")
    if str(path).endswith(".csv"):
        columns, first_row = _read_csv(path)
    elif str(path).endswith(".npz"):
        columns, first_row = _read_npz(path)
    else:
        raise InputError(f"data file must end in .csv or .npz, got {path!r}")
    features = _check_names(path, list(columns), target, features)
    y = columns[target]
    if integer_target:
        bad = np.flatnonzero((y < 0) | (y != np.round(y)))
        if bad.size:
            raise InputError(f"{path!r} row {bad[0] + first_row}, column {target!r} is {float(y[bad[0]])!r}: "
                             "a count/class target must be a non-negative integer")
        y = y.astype("int64")
    else:
        y = y.astype("float32")
    x = np.stack([columns[f] for f in features], axis=1).astype("float32")
    return x, y, features


def split_table(x, y, holdout=0.2, seed=0, role="holdout", name="holdout"):
    """Seeded random split into (x_train, y_train), (x_held, y_held); ``holdout`` is the held-out fraction.

    ``role``: the seed role of the permutation (`tfp_dgbn.seeds.ROLES`), so that a second split of the
    training rows is drawn independently of the first; ``name``: the setting named in errors."""
    if not 0 < holdout < 1:
        raise InputError(f"{name} must be in (0, 1), got {holdout!r}")
    n = len(y)
    n_held = int(round(n * holdout))
    if n_held < 1 or n - n_held < 1:
        raise InputError(f"{n} rows cannot be split {1 - holdout:.0%}/{holdout:.0%} (need one row on each side)")
    order = seeds.rng(seed, role).permutation(n)
    held, train = order[:n_held], order[n_held:]
    return (x[train], y[train]), (x[held], y[held])
