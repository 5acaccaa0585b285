"""A researcher's own tabular data: CSV or NPZ columns -> features and a target, with a held-out split.

Formats (docs/own_data.md):
  CSV  a header row of column names, then one example per row, every value a
       number or, in a text column, a word (``,`` separated, or ``;`` or tabs
       where the header has no comma; quoting as Python's csv module). Empty
       cells, ``nan`` and text in a column of numbers are errors naming the row
       (the file's line: the header is row 1) and the column; columns not used are not read.
  NPZ  one 1-D numeric array per column, named by the column, all the same length.

Missing values: by default a missing cell is an error naming it. Given ``missing``
(cell texts such as ``""``, ``"?"``, ``"NA"``), a row holding one of them in a used
column is dropped (and counted), as is, in an NPZ number column, a row holding NaN.

The target is one column (``--target``); the features are the named columns,
or every other column. Targets of Poisson heads must be non-negative integers.
Class targets (``labels=True``) are integers or any text (CSV cells; NPZ string
arrays). Integers 0..K-1, all present, are the classes themselves (label k is
class k); other labels (text, or integers such as 1..3 or -1/+1) are named: the
distinct labels, sorted (integers by value), are classes 0..K-1 and their names
travel with the model (``class_names``).
A feature column of text (every cell text, as a colour or a region) becomes one
0/1 input per distinct value (one-hot, at most `MAX_CATEGORIES`), named
``column=value``; the categories travel with the model (``categories``).
"""
import csv
import os
from collections import namedtuple

import numpy as np

from tfp_dgbn import seeds
from tfp_dgbn.validate import InputError


def _check_names(path, columns, target, features, unnamed=()):
    """The feature names: ``features``, checked against ``columns``, or every column but the target and the
    ``unnamed`` ones (a saved index)."""
    if target not in columns:
        raise InputError(f"{path!r} has no column {target!r} (columns: {', '.join(columns)})")
    features = [c for c in columns if c != target and c not in unnamed] if features is None else list(features)
    missing = [f for f in features if f not in columns]
    if missing:
        raise InputError(f"{path!r} has no column {missing[0]!r} (columns: {', '.join(columns)})")
    if target in features:
        raise InputError(f"column {target!r} cannot be both the target and a feature")
    if not features:
        raise InputError(f"{path!r} has no feature columns besides the target {target!r}")
    return features


#: What `load_table` returns. x float32 [N, D]; y [N]; features: the D input names (a number column's
#: name, or ``column=value`` for each category of a text column); class_names: the classes of a text class
#: target (y = k is class_names[k]) or None; categories: text column -> its categories (one input each),
#: {} when every input is a number; columns: the feature columns of the file the inputs come from; dropped:
#: rows left out for a missing value (`load_table`'s ``missing``).
Table = namedtuple("Table", ["x", "y", "features", "class_names", "categories", "columns", "dropped"])

#: A text input column with more distinct values than this is refused (an id or free text, not a category).
MAX_CATEGORIES = 50

#: The fix named in the error for a missing or malformed cell.
_MISSING_HINT = " (if it marks a missing value, drop such rows with --missing, e.g. --missing '' '?' NA)"


def _read_csv(path, target, features):
    """The used columns of a CSV, name -> stripped cell strings (object [N]), the feature names
    (`_check_names`; a column without a name, as pandas writes its index, is called ``Unnamed: J`` and is
    no default feature) and each row's line in the file (int [N], the header is line 1; blank lines are skipped).
    Columns not used are not read, so a text column left out of ``features`` (an id, a comment) is no error."""
    with open(path, newline="") as f:
        reader = csv.reader(f, delimiter=_delimiter(f))
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise InputError(f"{path!r} is empty (a header row of column names is needed)") from None
        # a column without a name is what pandas' to_csv writes for the index: named as pandas reads it back,
        # and left out of the default features (row numbers are no input)
        unnamed = {j: f"Unnamed: {j}" for j, h in enumerate(header) if not h}
        header = [unnamed.get(j, h) for j, h in enumerate(header)]
        if len(set(header)) != len(header):
            raise InputError(f"{path!r}: the header row must name every column once, got {header}")
        features = _check_names(path, header, target, features, set(unnamed.values()))
        used = [(j, name) for j, name in enumerate(header) if name == target or name in features]
        rows, lines = [], []
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(f"{path!r} row {line} has {len(row)} values, the header has {len(header)}")
            rows.append([row[j].strip() for j, _ in used])
            lines.append(line)
    if not rows:
        raise InputError(f"{path!r} has a header but no rows")
    table = np.array(rows, dtype=object)
    return {name: table[:, i] for i, (_, name) in enumerate(used)}, features, np.array(lines)


def _delimiter(f):
    """The file's delimiter: ``,``, or ``;`` or a tab where the header row has that and no comma (UCI's wine
    quality tables use ``;``). The file is rewound."""
    header = f.readline()
    f.seek(0)
    if "," in header:
        return ","
    return max(";\t", key=header.count) if any(c in header for c in ";\t") else ","


def _read_npz(path, target, features):
    """The used columns of an NPZ, name -> numbers [N] or strings (object [N]) for a string array, the
    feature names and the rows' numbers (0..N-1); columns not used are not checked."""
    with np.load(path, allow_pickle=False) as data:
        features = _check_names(path, list(data.files), target, features)
        columns = {name: data[name] for name in data.files if name == target or name in features}
    lengths = {name: a.shape for name, a in columns.items()}
    for name, a in list(columns.items()):
        if a.ndim != 1:
            raise InputError(f"{path!r} column {name!r} has shape {list(a.shape)}; each column must be 1-D")
        if a.dtype.kind in "US":
            columns[name] = np.array([str(v.decode() if isinstance(v, bytes) else v).strip() for v in a], object)
        elif not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
            raise InputError(f"{path!r} column {name!r} has dtype {a.dtype}, not a real number or string type")
    if len({s[0] for s in lengths.values()}) > 1:
        raise InputError(f"{path!r} columns differ in length: {dict((k, v[0]) for k, v in lengths.items())}")
    return columns, features, np.arange(len(columns[target]))


def load_table(path, target, features=None, integer_target=False, labels=False, class_names=None,
               num_classes=None, categories=None, missing=None):
    """Features and target from a CSV or NPZ file (module docstring).

    Args:
      path: ``.csv`` or ``.npz`` file.
      target: the target column's name.
      features: feature column names (default: every other column).
      integer_target: require non-negative integer targets (count heads).
      labels: the target holds classes: integers or text labels (module docstring).
      class_names: with ``labels``, the class names a model was trained with (its metadata's
        ``class_names``): the file's labels are mapped onto them, and a label outside them is an error.
      num_classes: with ``labels`` and no ``class_names``, the classes of a model whose labels are its class
        indices: a label outside 0..num_classes-1 is an error (default None: decided from the file).
      categories: the text columns' categories a model was trained with (its metadata's ``categories``):
        those columns are encoded onto them (a value outside them is an error); default: each text
        column's sorted distinct values.
      missing: cell texts that mark a missing value (e.g. ``["", "?", "NA"]``): a row with one in the target
        or a feature column, or NaN in an NPZ number column, is dropped; default None: such a cell is an
        error naming its row.

    Returns:
      `Table` (x float32 [N, D], y [N] (float32, or int64 with ``integer_target`` or ``labels``), the D input
      names, class names of text labels or None, the text columns' categories, the feature columns, the
      number of rows dropped for a missing value).

    Raises:
      ValueError / FileNotFoundError naming the file, row and column of the problem.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no data file at {path!r}")
    if str(path).endswith(".csv"):
        columns, features, rows = _read_csv(path, target, features)
    elif str(path).endswith(".npz"):
        columns, features, rows = _read_npz(path, target, features)
    else:
        raise InputError(f"data file must end in .csv or .npz, got {path!r}")
    columns, rows, dropped = _drop_missing(path, columns, rows, missing)
    y = columns[target]
    if labels:
        y, class_names = _labels(path, target, y, class_names, num_classes, rows)
    else:
        if _is_text(y):  # words in the target: classes, most likely, given to a head for numbers
            raise InputError(f"{path!r} column {target!r} holds text ({', '.join(map(repr, sorted(set(y))[:3]))}"
                             f"{', ...' if len(set(y)) > 3 else ''}), not numbers: if these are classes, fit them "
                             "with --head categorical")
        y = _numbers(path, target, y, rows)
        if integer_target:
            y = _integers(path, target, y, rows, "a count target must be a non-negative integer", least=0)
        else:
            y = y.astype("float32")
    x, names, categories = _inputs(path, columns, features, rows, categories)
    return Table(x, y, names, class_names, categories, features, dropped)


def _inputs(path, columns, features, rows, given=None, detect_text=True):
    """The feature columns -> (x float32 [N, D], the D input names, text column -> its categories).

    A column in ``given`` (a model's categories) is encoded onto them, one 0/1 input per category; a column
    not in it is text with ``detect_text`` when its cells are words (`_is_text`), else numbers."""
    given, categories, inputs, names = dict(given or {}), {}, [], []
    for name in features:
        values = columns[name]
        if name in given or (detect_text and _is_text(values)):  # one input per category (one-hot)
            codes, categories[name] = _encode(path, name, values, given.get(name), rows,
                                              f"the model's categories of {name!r}", MAX_CATEGORIES)
            inputs.append(np.eye(len(categories[name]))[codes])
            names += [f"{name}={c}" for c in categories[name]]
        else:
            inputs.append(_numbers(path, name, values, rows)[:, None])
            names.append(name)
    return np.concatenate(inputs, axis=1).astype("float32"), names, categories


def encode_examples(values, columns, categories, source="--features"):
    """Examples written as a file's cells (a word for a text column) -> the model's inputs.

    Args:
      values: strings or numbers, ``len(columns)`` per example, one example after another.
      columns: a model's feature columns (its metadata's ``feature_columns``).
      categories: its text columns' categories (metadata ``categories``); the other columns are numbers.
      source: what errors name the values by (``'--features' row 2`` is the second example).

    Returns:
      x float32 [N, D], the model's D inputs (each text column one-hot onto its categories).
    """
    if not values or len(values) % len(columns):
        raise InputError(f"{source} takes {len(columns)} values per example ({' '.join(columns)}), repeated for "
                         f"several; got {len(values)}")
    table = np.array([str(v).strip() for v in values], object).reshape(-1, len(columns))
    cells = {name: table[:, j] for j, name in enumerate(columns)}
    return _inputs(source, cells, columns, np.arange(1, len(table) + 1), categories, detect_text=False)[0]


def _drop_missing(path, columns, rows, missing):
    """(columns, rows, count) without the rows holding a mark of ``missing`` (None: nothing is dropped)."""
    if missing is None:
        return columns, rows, 0
    marks = [str(m).strip() for m in missing]
    keep = np.ones(len(rows), bool)
    for values in columns.values():
        if values.dtype == object:
            keep &= ~np.isin(values, marks)
        elif np.issubdtype(values.dtype, np.floating):
            keep &= ~np.isnan(values)
    if not keep.any():
        raise InputError(f"every row of {path!r} has a missing value ({', '.join(map(repr, marks))}) in a used "
                         "column")
    return {name: values[keep] for name, values in columns.items()}, rows[keep], int((~keep).sum())


def _integers(path, name, numbers, rows, rule, least=-np.inf):
    """float [N] -> int64 [N]; a non-integer (or one below ``least``) is an error naming its row and ``rule``."""
    bad = np.flatnonzero((numbers != np.round(numbers)) | (numbers < least))
    if bad.size:
        raise InputError(f"{path!r} row {rows[bad[0]]}, column {name!r} is {float(numbers[bad[0]])!r}: {rule}")
    return numbers.astype("int64")


def _labels(path, name, values, known, num_classes, rows):
    """Class targets -> (class indices int64 [N], class names or None); ``known``, ``num_classes``: `load_table`.

    Integer labels 0..K-1, all present, are the class indices (no names); any other integers (UCI's 1..3,
    -1/+1) are named classes like text, sorted by value, so no class exists that the data never holds."""
    if _is_text(values):
        return _encode(path, name, values, known, rows, "the model's classes")
    numbers = _integers(path, name, _numbers(path, name, values, rows), rows, "a class label must be an integer "
                        "or text")
    if known is None and num_classes is not None:  # a model whose classes are label k = class k
        bad = np.flatnonzero((numbers < 0) | (numbers >= num_classes))
        if bad.size:
            raise InputError(f"{path!r} row {rows[bad[0]]}, column {name!r} is {int(numbers[bad[0]])}, not one of "
                             f"the model's classes 0..{num_classes - 1}")
        return numbers, None
    distinct = np.unique(numbers)
    if known is None and np.array_equal(distinct, np.arange(len(distinct))):
        return numbers, None
    if known is None:
        known = [str(v) for v in distinct]  # by value: -1 before 1, 2 before 10
    # as names (a CSV's "1.0" and an NPZ's 1 are both "1")
    return _encode(path, name, np.array([str(v) for v in numbers], object), known, rows, "the model's classes")


def _is_text(values):
    """Whether a column is text: strings, none reading as a number (a column that mixes numbers and text,
    as a missing-value mark does, is not: `_numbers` names its first text cell), not all empty."""
    if values.dtype != object:
        return False
    for v in values:
        try:
            float(v)
            return False
        except ValueError:
            pass
    return any(values)


def _numbers(path, name, values, rows):
    """A column as float64 [N]; an empty, text or non-finite cell is an error naming its row (``rows``: each
    value's row number in the file)."""
    if values.dtype != object:
        numbers = values.astype("float64")
        bad = np.flatnonzero(~np.isfinite(numbers))
        if bad.size:
            raise InputError(f"{path!r} row {rows[bad[0]]}, column {name!r} is {float(numbers[bad[0]])!r}: "
                             "values must be finite" + _MISSING_HINT)
        return numbers
    numbers = np.empty(len(values))
    for i, cell in enumerate(values):
        try:
            numbers[i] = float(cell)
        except ValueError:
            what = "is empty" if not cell else f"is not a number: {cell!r}"
            raise InputError(f"{path!r} row {rows[i]}, column {name!r} {what}" + _MISSING_HINT) from None
        if not np.isfinite(numbers[i]):
            raise InputError(f"{path!r} row {rows[i]}, column {name!r} is {cell!r}: values must be finite"
                             + _MISSING_HINT)
    return numbers


def _encode(path, name, values, known, rows, what, most=None):
    """Text values -> indices [N] int64 into ``known`` (given, or the sorted distinct values) and that list.

    ``what`` names ``known`` in the error for a value outside it; ``most``: refuse more distinct values."""
    # numbers from an NPZ match the names a CSV's cells gave: 2.0 -> "2"
    values = np.array([str(int(v)) if isinstance(v, float) and v == int(v) else str(v) for v in values], object)
    empty = np.flatnonzero(values == "")
    if empty.size:
        raise InputError(f"{path!r} row {rows[empty[0]]}, column {name!r} is empty" + _MISSING_HINT)
    if known is None:
        known = sorted(set(values.tolist()))
        if most and len(known) > most:
            raise InputError(f"{path!r} column {name!r} holds {len(known)} distinct texts ({', '.join(known[:3])}, "
                             f"...): more than {most}, so not encoded one input per value; leave it out with "
                             "--features, or encode it as numbers")
    index = {v: k for k, v in enumerate(known)}
    unknown = [i for i, v in enumerate(values) if v not in index]
    if unknown:
        raise InputError(f"{path!r} row {rows[unknown[0]]}, column {name!r} is {values[unknown[0]]!r}, "
                         f"not one of {what} {list(known)}")
    return np.array([index[v] for v in values], "int64"), list(known)


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
