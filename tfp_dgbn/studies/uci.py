"""The UCI regression benchmark by the published protocol (`dgbn benchmark uci`).

Data: any folder of dataset folders in the format of the standard splits
(Hernandez-Lobato & Adams 2015; Gal & Ghahramani 2016): ``data.txt``,
``index_features.txt``, ``index_target.txt``, ``index_train_K.txt`` /
``index_test_K.txt``, ``n_splits.txt``, ``n_hidden.txt`` (``n_epochs.txt``
sets the deep ensemble's epochs; the other networks' budget is in gradient steps).

Protocol: one hidden layer of ``n_hidden`` ReLU units; inputs and target
standardised on the training split (inside the model: `heads.head_for_targets`);
test log-likelihood per example and RMSE of the predictive mean in the target's
**original units**, mean +- standard error over splits; and the coverage of
central 90% predictive intervals. Methods, side by side on the same splits and
the same gradient-step budget per network (``Budget.steps``, or the protocol's epochs over the
training split where those are more steps):

``flipout``            Flipout network, KL weight 1 (the Bayes posterior of its N(0, 1) prior);
``flipout-tempered``   the KL weight chosen by K-fold cross-validation on the training split alone,
                       from {1, 0.3, 0.1, 0.03, 0.01} (a tempered posterior);
``bayesian-ensemble``  5 Flipout networks at the tempered weight, independently initialised; the
                       predictive is the equal mixture of theirs (`tfp_dgbn.predict.sample_named`),
                       one SavedModel with the same contract (``--export``);
``bayesian-ensemble-calibrated``  the same ensemble, its predictive scaled about its mean by one factor
                       tau (`tfp_dgbn.predict.Recalibrated`) fitted by maximum likelihood on 20% of
                       the training split held out from a second ensemble of the same recipe
                       trained on the other 80% (pool-then-calibrate, chosen on held-out rows and
                       applied to the networks trained on every row, as the protocol tunes its
                       hyperparameters): a mixture of calibrated networks over-covers
                       (`tfp_dgbn.evaluate.recalibrate`);
``mc-dropout``         point weights, dropout p = 0.05 kept on at prediction (Gal & Ghahramani 2016),
                       heteroscedastic Normal head;
``deep-ensemble``      5 heteroscedastic point-weight networks, equal mixture, trained for the
                       protocol's epochs (``n_epochs.txt``, 40) as published (Lakshminarayanan et al.
                       2017, without their adversarial training): with the networks' longer budget
                       these unregularised nets overfit (test LL -4.5 on an energy split);
``ngboost``            NGBoost with a Normal output (Duan et al. 2020): up to 2,000 boosting rounds,
                       early stopping on 10% of the training split.
"""
import dataclasses
import json
import os
import re
import time
from dataclasses import dataclass, field

import numpy as np

from tfp_dgbn import seeds
from tfp_dgbn.evaluate.metrics import mean_se
from tfp_dgbn.model.heads import REAL_FAMILIES, head_for_targets
from tfp_dgbn.predict import central_interval
from tfp_dgbn.studies.fitting import cross_validate, log_predictive, train_mlp
from tfp_dgbn.validate import InputError

METHODS = ("flipout", "flipout-tempered", "bayesian-ensemble", "bayesian-ensemble-calibrated", "mc-dropout",
           "deep-ensemble", "ngboost")
BAYESIAN = ("flipout", "flipout-tempered", "bayesian-ensemble", "bayesian-ensemble-calibrated")
ENSEMBLES = ("bayesian-ensemble", "bayesian-ensemble-calibrated")  # exported (split 0) with ``--out``
PEERS = ("mc-dropout", "deep-ensemble", "ngboost")
KL_GRID = (1.0, 0.3, 0.1, 0.03, 0.01)
LEVEL = 0.9
COVERAGE_GOAL = (0.87, 0.93)  # the 90% intervals' coverage asked of the best Bayesian method
CALIBRATION_SHARE = 0.2  # of the training split, held out to fit bayesian-ensemble-calibrated's tau
HEAD_CHOICES = REAL_FAMILIES + ("auto",)  # `Budget.head`: a family, or each split's choice (`_choose_head`)


@dataclass
class UCIDataset:
    """One dataset folder: inputs, target and the standard train/test splits.

    Attributes:
      name: the folder's name; x [N, D] and y [N] (float64); splits: list of
      (train rows, test rows); n_hidden: the protocol's hidden units.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    splits: list
    n_hidden: int = 50
    n_epochs: int = 40

    def split(self, k):
        """(x_train, y_train, x_test, y_test) of split k."""
        train, test = self.splits[k]
        return self.x[train], self.y[train], self.x[test], self.y[test]


def _read_ints(path):
    """The integers of a whitespace-separated file (an empty file: none); InputError names the file."""
    import warnings

    try:
        with warnings.catch_warnings():  # an empty file is reported by the caller, by what it should hold
            warnings.simplefilter("ignore", UserWarning)
            values = np.atleast_1d(np.loadtxt(path, dtype="float64"))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read integers from {path!r}: {e}") from None
    if not np.all(values == np.round(values)):
        bad = float(values[values != np.round(values)][0])
        raise InputError(f"{path!r} holds a value that is not an integer: {bad!r}")
    return values.astype("int64")


def _dataset_name(folder):
    """A dataset's name: its folder's (a trailing slash allowed)."""
    return os.path.basename(os.path.normpath(folder))


def load_uci(folder):
    """Read one dataset folder (module docstring); ValueError names the file and what is wrong."""
    name = _dataset_name(folder)
    path = os.path.join(folder, "data.txt")
    if not os.path.exists(path):
        raise InputError(f"{folder!r} has no data.txt (a UCI dataset folder needs data.txt, index_features.txt, "
                         "index_target.txt and index_train_K.txt / index_test_K.txt)")
    try:
        data = np.loadtxt(path, dtype="float64", ndmin=2)
    except ValueError as e:  # a missing value written as "?" or a comma-separated file
        raise InputError(f"{path!r} is not a whitespace-separated table of numbers: {e}") from None
    features = _read_ints(os.path.join(folder, "index_features.txt"))
    target = int(_read_ints(os.path.join(folder, "index_target.txt"))[0])
    columns = np.append(features, target)
    if columns.min() < 0 or columns.max() >= data.shape[1]:  # a negative index would wrap around silently
        bad = columns[(columns < 0) | (columns >= data.shape[1])][0]
        raise InputError(f"{folder!r}: column index {bad} but data.txt has {data.shape[1]} columns")
    if target in features:
        raise InputError(f"{folder!r}: the target column {target} is also in index_features.txt")
    used = data[:, columns]
    if not np.isfinite(used).all():
        rows = np.flatnonzero(~np.isfinite(used).all(axis=1))
        raise InputError(f"{folder!r}: data.txt has NaN or infinite values in {len(rows)} row(s) of the used "
                         f"columns (first: row {rows[0]}); impute or drop them first")
    n_splits = int(_read_ints(os.path.join(folder, "n_splits.txt"))[0])
    splits = []
    for k in range(n_splits):
        train = _read_ints(os.path.join(folder, f"index_train_{k}.txt"))
        test = _read_ints(os.path.join(folder, f"index_test_{k}.txt"))
        if not (train.size and test.size):
            raise InputError(f"{folder!r} split {k}: " + ("index_train" if not train.size else "index_test")
                             + f"_{k}.txt lists no row")
        both = np.concatenate([train, test])
        if both.min() < 0 or both.max() >= len(data) or np.intersect1d(train, test).size:
            raise InputError(f"{folder!r} split {k}: row indices out of range or shared by train and test")
        splits.append((train, test))
    def protocol(file, default):
        path = os.path.join(folder, file)
        return int(_read_ints(path)[0]) if os.path.exists(path) else default

    return UCIDataset(name, data[:, features], data[:, target], splits, protocol("n_hidden.txt", 50),
                      protocol("n_epochs.txt", 40))


def find_datasets(data_dir, names=None):
    """The dataset folders below ``data_dir`` (every subfolder holding data.txt), or the ``names`` asked for."""
    if not os.path.isdir(data_dir):
        raise InputError(f"no UCI data folder at {data_dir!r}")
    have = sorted(d for d in os.listdir(data_dir) if os.path.exists(os.path.join(data_dir, d, "data.txt")))
    if names:
        missing = sorted(set(names) - set(have))
        if missing:
            raise InputError(f"no dataset {missing} in {data_dir!r} (have: {', '.join(have) or 'none'})")
        have = [n for n in have if n in names]
    if not have:
        raise InputError(f"{data_dir!r} holds no dataset folder (a subfolder with data.txt)")
    return [os.path.join(data_dir, n) for n in have]


@dataclass
class Budget:
    """Training budget of every network (the same for all methods).

    Attributes:
      steps: gradient steps per network (at least the protocol's epochs, `run_split`); batch: batch size;
      learning_rate: Adam's initial rate;
      layers: hidden layers of the protocol's width in every network (the protocol: 1);
      folds: K of the tempering cross-validation; members: networks per ensemble;
      cv_members: networks per fold in that cross-validation; above 1 the ensembles' KL weight is chosen
        by the fold mixtures' NLL (the model they are), the single network's by the first of each fold's;
      num_samples: weight draws S of a stochastic predictive; seed: base seed;
      head: every network's output law, a family of `REAL_FAMILIES` (the protocol: "normal"; "student-t"
        for targets whose errors are heavier-tailed), or "auto": each split's, chosen on its training rows
        (`_choose_head`) and given to every network of the split, peers included.
      refine: positive factors f; when given, both ensembles' KL weight is chosen among the CV's weight w
        and each f * w on the `CALIBRATION_SHARE` of the training split held out from an ensemble of
        ``members`` networks trained on the rest (`_held_out`): the plain ensemble's by that mixture's
        held-out NLL, the calibrated one's by its NLL after its tau. The CV's folds hold half the rows
        and mixtures of ``cv_members``; the held-out ensemble is the model the ensembles are, on 80% of
        the rows (docs/uci.md). Empty (the default): the CV's weight.
    """

    steps: int = 4000
    batch: int = 128
    learning_rate: float = 5e-3
    layers: int = 1
    folds: int = 2
    cv_members: int = 1
    members: int = 5
    num_samples: int = 64
    seed: int = 0
    grid: tuple = field(default=KL_GRID)
    head: str = "normal"
    refine: tuple = ()

    def __post_init__(self):
        if self.head not in HEAD_CHOICES:
            raise InputError(f"head must be one of {list(HEAD_CHOICES)} (a real-valued target), got {self.head!r}")
        for f in self.refine:
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not np.isfinite(f) or f <= 0:
                raise InputError(f"refine factors must be finite and > 0, got {f!r}")
        self.refine = tuple(float(f) for f in self.refine)


def _scores(dist, y):
    """Test log-likelihood per example, predictive mean and the central 90% interval of a scalar predictive."""
    lp = dist.log_prob(np.asarray(y, "float32")).numpy().astype("float64")
    lo, hi = central_interval(dist, LEVEL)
    return lp, np.asarray(dist.mean(), "float64"), lo, hi


def _ngboost(x, y, x_test, y_test, seed):
    from ngboost import NGBRegressor
    from ngboost.distns import Normal
    from scipy import stats

    # NGBoost works in the target's units; standardise as for the networks, and map back.
    mean, sd = y.mean(), y.std()
    rng = seeds.rng(seed, "early-stopping")
    val = rng.permutation(len(y))[:max(len(y) // 10, 1)]
    fit = np.setdiff1d(np.arange(len(y)), val)
    model = NGBRegressor(Dist=Normal, n_estimators=2000, verbose=False, random_state=seed)
    model.fit(x[fit], (y[fit] - mean) / sd, X_val=x[val], Y_val=(y[val] - mean) / sd, early_stopping_rounds=50)
    params = model.pred_dist(x_test).params
    law = stats.norm(mean + sd * params["loc"], sd * params["scale"])
    return law.logpdf(y_test), law.mean(), *law.interval(LEVEL)


def run_split(x, y, x_test, y_test, n_hidden, budget, methods=METHODS, progress=None, n_epochs=40):
    """Every method on one split.

    Returns:
      ({method: {test_ll, rmse, coverage90, n_test, seconds[, kl_weight, cv_nll][, held_out_nll]
      [, spread, spread_nll][, head, head_nll, head_weight]}},
      {method: model} of the `ENSEMBLES` run, for export). A calibrated ensemble's seconds include the
      training of the ensemble it recalibrates; under ``head="auto"`` every network method's row names the
      split's head (`_choose_head`: head, head_nll, head_weight), and its seconds include that choice (its
      CV and held-out ensembles).
    """
    from tfp_dgbn.predict import Recalibrated

    b = budget
    # the protocol's epochs over this training split, in gradient steps; every network gets at least
    # these (a large table's networks are still converging after a fixed step budget: docs/uci.md)
    protocol = n_epochs * -(-len(y) // min(len(y), b.batch))
    steps = max(int(b.steps), protocol)

    def net(seed, rows=slice(None), steps=steps, head=None, **build):
        # the target standardised on the rows the network trains on (a CV fold's own statistics); the head
        # is rebuilt from its config for each model (a layer belongs to one model)
        head, bias = head_for_targets(head or family(), y[rows])
        return train_mlp(x[rows], y[rows], lambda: type(head).from_config(head.get_config()), steps, seed,
                         batch=b.batch, learning_rate=b.learning_rate, hidden=(int(n_hidden),) * int(b.layers),
                         output_bias=bias, **build)

    def flipout(kl_weight, seed, rows=slice(None), head=None):
        return net(seed, rows, head=head, kl_weight=kl_weight)

    out, ensembles, built, building = {}, {}, {}, []

    def piece(key, build):
        # a network, ensemble or choice built once and shared by the methods that use it; a method's seconds
        # add the pieces it reuses from an earlier method (a calibrated ensemble: the ensemble it scales), except
        # the CV and the tempered network, which count once, as flipout-tempered's; a piece built inside
        # another (the head choice's CV and held-out ensembles) is counted through that one
        if key not in built:
            building.append(key)
            t = time.time()
            value = build()
            building.pop()
            built[key] = (value, t, time.time() - t, building[-1] if building else None)
        used.add(key)
        return built[key][0]

    def counted(key):  # a used piece's seconds count unless a used piece it was built inside counts them
        outer = built[key][3]
        return outer is None or (outer not in used and counted(outer))

    # the tempering CV runs once, for every method at its tempered weight; under "auto" with the protocol's
    # Normal head, since the head is chosen at its weight
    cv_head = "normal" if b.head == "auto" else b.head
    mixture = any(m in ENSEMBLES for m in methods)

    def cv():
        return piece(("cv",), lambda: _tempering(x, y, lambda w, seed, rows: flipout(w, seed, rows, head=cv_head),
                                                  b, mixture=mixture))

    def held_out(head, weight):  # an ensemble on the training split less its held-out share, scored there
        return piece(("held-out", head, weight), lambda: _held_out(x, y, weight, head, flipout, b))

    def family():  # every network's head: the budget's, or under "auto" this split's choice, made once
        if b.head != "auto":
            return b.head
        return piece(("head",), lambda: _choose_head(held_out, cv()[1][0]))["head"]

    def tempered_net(weight):  # the tempered network, also the first member of every ensemble at its weight
        return piece(("tempered", weight), lambda: flipout(weight, b.seed))

    def full_ensemble(weight):
        return piece(("ensemble", weight), lambda: [tempered_net(weight)] + [flipout(weight, b.seed + 100 * k)
                                                                              for k in range(1, b.members)])

    for method in methods:
        t0, used = time.time(), set()
        once = {k for k in built if k[0] in ("cv", "tempered")}  # counted as flipout-tempered's only
        extra = {}
        if method != "ngboost":  # every network of the split gets the head; under "auto" it is chosen first
            family()
        if method == "flipout":
            scores = _scores(log_predictive(flipout(1.0, b.seed), x_test, y_test, b.num_samples)[1], y_test)
        elif method in ("flipout-tempered",) + ENSEMBLES:
            weight, cv_nll = cv()[0 if method == "flipout-tempered" else 1]
            extra = {"kl_weight": weight, "cv_nll": cv_nll}
            if method == "flipout-tempered":
                model = tempered_net(weight)
            else:
                calibrated = method == "bayesian-ensemble-calibrated"
                if b.refine or calibrated:  # the held-out share: the refined weight, and the calibration's tau
                    # the CV's weight and each refine multiple of it, trained in decreasing order
                    held = {w: held_out(family(), w) for w in sorted({float(weight)}
                                                                     | {float(weight) * f for f in b.refine},
                                                                     reverse=True)}
                    if b.refine:
                        score = {w: held[w]["nll_after" if calibrated else "nll_before"] for w in held}
                        weight = min(score, key=score.get)
                        extra.update(kl_weight=weight, held_out_nll={f"{w:g}": v for w, v in score.items()})
                model = full_ensemble(weight)
                if calibrated:
                    info = held[weight]
                    model = Recalibrated(model, info["spread"])
                    extra.update(spread=info["spread"], spread_nll={"before": info["nll_before"],
                                                                    "after": info["nll_after"]})
                ensembles[method] = model
            scores = _scores(log_predictive(model, x_test, y_test, b.num_samples)[1], y_test)
        elif method == "mc-dropout":
            model = net(b.seed, kind="deterministic", dropout=0.05)
            scores = _scores(log_predictive(model, x_test, y_test, b.num_samples)[1], y_test)
        elif method == "deep-ensemble":
            models = [net(b.seed + 100 * k, steps=protocol, kind="deterministic") for k in range(b.members)]
            scores = _scores(log_predictive(models, x_test, y_test, b.num_samples, stochastic=False)[1], y_test)
        elif method == "ngboost":
            scores = _ngboost(x, y, x_test, y_test, b.seed)
        else:
            raise InputError(f"unknown method {method!r}; choose from {list(METHODS)}")
        if ("head",) in used:  # the head its networks got, and why; its seconds include the choice
            extra.update(built[("head",)][0])
        lp, mean, lo, hi = scores
        out[method] = {"test_ll": float(lp.mean()), "rmse": float(np.sqrt(np.mean((mean - y_test) ** 2))),
                       "coverage90": float(np.mean((y_test >= lo) & (y_test <= hi))), "n_test": int(len(y_test)),
                       "seconds": time.time() - t0 + sum(built[k][2] for k in used - once
                                                         if built[k][1] < t0 and counted(k)),
                       **extra}
        if progress:
            progress(method, out[method])
    return out, ensembles


def _tempering(x, y, flipout, b, mixture):
    """The tempering cross-validation of `Budget`: ((weight, {weight: fold NLL}) for one network, the same for
    the ensembles). With ``b.cv_members`` > 1 and ``mixture``, each fold trains that many networks and the
    ensembles' weight is chosen by their mixture's fold NLL; otherwise both are the single network's."""
    members = int(b.cv_members) if mixture else 1
    mixed = {}

    def fold_nll(w, fit, held, k):
        # member 0 is the single-network CV's own fold network (seed b.seed + 1 + k): both choices come
        # from one set of fold fits, and with one member the CV is the one it always was
        nets = [flipout(w, b.seed + 1 + k + 100 * m, fit) for m in range(members)]
        if members > 1:
            mixed[(w, k)] = -log_predictive(nets, x[held], y[held], b.num_samples)[0]
        return -log_predictive(nets[0], x[held], y[held], b.num_samples)[0]

    single = cross_validate(b.grid, fold_nll, len(y), b.folds, b.seed)
    if not mixed:  # one member, or a grid of one weight (nothing fitted)
        return single, single
    # the same folds (seeded) again, now read from the mixtures' scores: no network is trained twice
    return single, cross_validate(b.grid, lambda w, fit, held, k: mixed[(w, k)], len(y), b.folds, b.seed)


def _choose_head(held_out, weight):
    """The head of a split's networks under ``Budget(head="auto")``, chosen on its training rows: for each
    family of `REAL_FAMILIES`, ``held_out(family, weight)`` (`_held_out`: an ensemble of the budget's members
    at the CV's ensemble weight, trained on the split less its `calibration_rows`, scored on them); the
    family whose ensemble has the lower held-out NLL before any recalibration. The heads differ in their
    tails, and how much those matter depends on the model: a close-fitting ensemble pays for a far row that
    a wider network covers (on energy an MC-dropout network preferred the Normal on every split where the
    ensembles preferred the Student-t: docs/uci.md), so the choice is made by the model it is for.

    Returns:
      {"head": the family of lowest held-out NLL (the first on a tie), "head_nll": {family: nats/row},
      "head_weight": the KL weight it was chosen at}.
    """
    nll = {family: float(held_out(family, weight)["nll_before"]) for family in REAL_FAMILIES}
    return {"head": min(nll, key=nll.get), "head_nll": nll, "head_weight": float(weight)}


def calibration_rows(n, seed):
    """The (held-out, fit) row indices of a training split of n rows: `CALIBRATION_SHARE` of them (at least
    one), drawn by ``seed``, held out from the networks that fit a calibrated ensemble's tau (`_held_out`)."""
    order = seeds.rng(seed, "calibration").permutation(n)
    cut = max(int(CALIBRATION_SHARE * n), 1)
    return np.sort(order[:cut]), np.sort(order[cut:])


def _held_out(x, y, weight, head, flipout, b):
    """The held-out share of the training split at one KL weight and head: an ensemble of ``b.members``
    networks trained on the split less a `CALIBRATION_SHARE` of its rows (`calibration_rows`), scored on that
    share with its spread tau fitted there (`calibrate_spread`).

    Returns:
      {spread (tau), nll_before, nll_after (the share's NLL at tau = 1 and at tau, nats/row), rows}.
    """
    from tfp_dgbn.evaluate.recalibrate import calibrate_spread

    held, fit = calibration_rows(len(y), b.seed)
    fold = [flipout(weight, b.seed + 100 * k + 7, fit, head=head) for k in range(b.members)]
    return calibrate_spread(fold, x[held], y[held], b.num_samples)[1]


def uci_benchmark(data_dir, datasets=None, splits=None, methods=METHODS, budget=None, export_dir=None,
                  progress=True, on_dataset=None, workers=1, first_split=0, split_dir=None, resume=False):
    """Run `run_split` over the splits of every dataset; returns {dataset: {method: summary}}.

    Args:
      data_dir: folder of dataset folders; datasets: names to run (default all).
      splits: K splits of each dataset, from ``first_split`` on (default: all of them from there).
      first_split: the index of the first split run (default 0), e.g. 3 with ``splits=3`` for splits 3-5:
        rows that no choice made on splits 0-2 has seen.
      methods: subset of `METHODS`; budget: a `Budget`.
      export_dir: if given, the first split's Bayesian ensembles of each dataset are exported there as
        ``<dataset>/`` and ``<dataset>-calibrated/`` (`export_name`; one SavedModel serving the mixture each).
      progress: a tqdm bar per dataset and split, over its methods.
      on_dataset: callable(results so far), called after each dataset (a long run's partial report).
      workers: splits (of every dataset) run in this many processes at once (largest dataset first), e.g.
        one per core. The results do not depend on it (each network is seeded by its split and member).
      split_dir: if given, each finished split's rows are saved there as ``<dataset>-split<K>.json`` with the
        methods and budget they came from, as soon as the split ends (a failed or stopped run keeps them).
      resume: reuse the splits saved in ``split_dir`` under the same methods and budget; run the rest.

    Returns:
      {dataset: {method: {test_ll, test_ll_se, rmse, rmse_se, coverage90, splits, seconds, per_split}}},
      in the datasets' order (each ``per_split`` row names its ``split``); the means and standard errors
      are over splits (``*_se`` is 0 with one split).

    Raises:
      RuntimeError: after every other split has run (and been saved), naming each split that failed.
    """
    budget = budget or Budget()
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise InputError(f"unknown methods {unknown}; choose from {list(METHODS)}")
    if isinstance(workers, bool) or int(workers) != workers or workers < 1:
        raise InputError(f"workers must be a positive integer, got {workers!r}")
    folders = find_datasets(data_dir, datasets)
    if isinstance(first_split, bool) or int(first_split) != first_split or first_split < 0:
        raise InputError(f"first_split must be a split index >= 0, got {first_split!r}")
    first_split = int(first_split)
    counts = {f: _split_count(f, splits, first_split) for f in folders}
    methods = tuple(methods)
    per_split, done = {f: {} for f in folders}, {}

    settings = {"methods": list(methods), "budget": _budget_json(budget)}

    def finished(folder, s, split_result, saved=False):
        if split_dir and not saved:
            from tfp_dgbn.atomic import atomic_file

            os.makedirs(split_dir, exist_ok=True)
            with atomic_file(_split_file(split_dir, folder, s), "w") as f:
                json.dump({"settings": settings, "rows": split_result}, f, indent=1, default=float)
        per_split[folder][s] = split_result
        if len(per_split[folder]) == counts[folder]:  # the dataset's last split: summarise it, in split order
            rows = [per_split[folder][k] for k in sorted(per_split[folder])]
            done[_dataset_name(folder)] = {m: _summarise([r[m] for r in rows]) for m in methods}
            if on_dataset:
                on_dataset(_in_order(done, folders))

    # one job per (dataset, split): a large table's splits share the workers too (protein's 3 splits took
    # one process the whole run when the job was the dataset)
    jobs = [(folder, s, counts[folder], methods, budget, export_dir, progress, first_split) for folder in folders
            for s in range(first_split, first_split + counts[folder])]
    if resume and split_dir:
        todo = []
        for job in jobs:
            rows = _saved_split(_split_file(split_dir, job[0], job[1]), settings)
            if rows is None:
                todo.append(job)
            else:
                finished(job[0], job[1], rows, saved=True)
        jobs = todo
    failed = []
    if int(workers) == 1 or len(jobs) <= 1:
        for job in jobs:
            try:
                finished(*_run_split_job(*job, position=0))
            except Exception as e:  # the other splits still run and are saved; named at the end
                failed.append((job, e))
        _check_failures(failed, split_dir)
        return _in_order(done, folders)
    import concurrent.futures
    import multiprocessing

    # largest tables first, so that the longest dataset does not start last; spawn: a forked child
    # would inherit TensorFlow's threads; a fresh process per job, because memory grows with every network
    # a process builds: the two workers of a run that had trained two and three datasets' networks held 7.3
    # and 9.9 GB (ps RSS, 2026-12-02, --layers 2 --cv-members 3), 4 GB of the 24 GB machine left free
    jobs.sort(key=lambda job: (-os.path.getsize(os.path.join(job[0], "data.txt")), job[0], job[1]))
    with concurrent.futures.ProcessPoolExecutor(int(workers), mp_context=multiprocessing.get_context("spawn"),
                                                max_tasks_per_child=1) as pool:
        futures = {pool.submit(_run_split_job, *job, position=k % int(workers)): job for k, job in enumerate(jobs)}
        for future in concurrent.futures.as_completed(futures):
            try:
                finished(*future.result())
            except Exception as e:  # a crashed worker too: the other splits still run and are saved
                failed.append((futures[future], e))
    _check_failures(failed, split_dir)
    return _in_order(done, folders)


def _budget_json(budget):
    """A `Budget` as its saved split files hold it (a JSON round trip: tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(budget)))


def _split_file(split_dir, folder, s):
    """Where `uci_benchmark` saves split ``s`` of ``folder``'s rows."""
    return os.path.join(split_dir, f"{_dataset_name(folder)}-split{s}.json")


def _saved_split(path, settings):
    """A saved split's rows if ``path`` holds them under ``settings`` (methods and budget), else None."""
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return None
    if not (isinstance(saved, dict) and isinstance(saved.get("settings"), dict)):
        return None
    # a split saved before a budget field existed ran at that field's default
    old = dict(saved["settings"], budget={**_budget_json(Budget()), **saved["settings"].get("budget", {})})
    return saved["rows"] if old == settings else None


def _check_failures(failed, split_dir):
    """Raise a RuntimeError naming every failed (dataset, split) and where the finished ones are, if any failed."""
    if not failed:
        return
    where = (f"; the finished splits are saved in {split_dir!r}: run the command again with --resume to run "
             "only the rest" if split_dir else "")
    raise RuntimeError(f"{len(failed)} split job(s) failed: "
                       + "; ".join(f"{_dataset_name(job[0])} split {job[1]}: {type(e).__name__}: {e}"
                                   for job, e in failed) + where)


def _report_header(md):
    """The lines of a ``uci.md`` before its first dataset's section: the command, its time and the recipe."""
    with open(md) as f:
        return f.read().split("\n## ", 1)[0].rstrip("\n").split("\n")


def merge_reports(run_dirs, out_dir, data_dir, command):
    """Merge the ``uci.json`` of several ``--out`` folders (`merge_results`) and write one report in
    ``out_dir`` (`write_uci_report`) whose header names each run's command and time, and its recipe (once
    when the runs share it). Everything is read before anything is written, so ``out_dir`` may be one of
    the runs. Returns the report's text."""
    results, headers = [], []
    for d in run_dirs:
        saved, md = os.path.join(d, "uci.json"), os.path.join(d, "uci.md")
        if not (os.path.exists(saved) and os.path.exists(md)):
            raise InputError(f"--merge reads a run's uci.json and uci.md, and {d!r} lacks "
                             + ("uci.json" if not os.path.exists(saved) else "uci.md"))
        with open(saved) as f:
            results.append(json.load(f))
        headers.append(_report_header(md))
    merged = merge_results(results, run_dirs)
    runs = f"{len(run_dirs)} run{'s' * (len(run_dirs) > 1)}"
    header = [f"Merged by `{command}` from {runs}, each dataset's methods side by side on the same splits:", ""]
    header += [f"- `{d}`: {h[0]}" for d, h in zip(run_dirs, headers)]
    recipes = [[line for line in h[1:] if line.strip()] for h in headers]
    if all(r == recipes[0] for r in recipes):
        header += [""] + recipes[0]
    else:  # different recipes: each run's, named (a reader must see what differs)
        for d, r in zip(run_dirs, recipes):
            header += ["", f"Recipe of `{d}`: " + " ".join(r)]
    return write_uci_report(merged, out_dir, data_dir, None, header=header)  # the runs' own recipes: no budget


def _in_order(done, folders):
    names = [_dataset_name(f) for f in folders]
    return {n: done[n] for n in names if n in done}


def _split_count(folder, splits, first=0):
    """How many splits of ``folder`` the benchmark runs from split ``first`` on: the rest of its
    ``n_splits.txt``, or ``splits`` of them."""
    have = int(_read_ints(os.path.join(folder, "n_splits.txt"))[0])
    k = have - first if splits is None else min(int(splits), have - first)
    if k < 1:
        raise InputError(f"{folder!r}: no split to run (n_splits.txt says {have}, splits asked {splits!r} "
                         f"from split {first})")
    return k


def _run_split_job(folder, s, k, methods, budget, export_dir, progress, first, position):
    """Split ``s`` (of the ``k`` run from split ``first``) of one dataset (`uci_benchmark`); returns
    (folder, s, {method: row}), each row naming its ``split``. The first split's ensembles are exported to
    ``export_dir``."""
    from tqdm.auto import tqdm

    data = load_uci(folder)
    with tqdm(total=len(methods), desc=f"{data.name} split {s} ({s - first + 1}/{k})", unit="fit",
              disable=not progress, position=position) as bar:
        def step(method, row):
            bar.set_postfix_str(f"{method} ll {row['test_ll']:.2f}")
            bar.update(1)

        split_result, ensembles = run_split(*data.split(s), data.n_hidden, budget, methods, step, data.n_epochs)
    for row in split_result.values():
        row["split"] = s
    if export_dir and s == first:
        from tfp_dgbn.export import export_predictive

        for method, model in ensembles.items():
            export_predictive(model, os.path.join(export_dir, export_name(data.name, method)),
                              {"task": "uci", "dataset": data.name, "split": s, "method": method,
                               "feature_names": [f"x{i}" for i in range(data.x.shape[1])]})
    return folder, s, split_result


def export_name(dataset, method):
    """The folder of the first split's exported ensemble under ``--out``'s models: ``<dataset>`` for the Bayesian
    ensemble, ``<dataset>-calibrated`` for its recalibration."""
    return dataset if method == "bayesian-ensemble" else f"{dataset}-calibrated"


def _summarise(rows):
    out = {"splits": len(rows), "seconds": float(sum(r["seconds"] for r in rows)), "per_split": rows}
    for key in ("test_ll", "rmse"):
        values = [r[key] for r in rows]
        out[key], out[key + "_se"] = _over_splits(values)
    out["coverage90"] = float(np.mean([r["coverage90"] for r in rows]))
    if all("n_test" in r for r in rows):
        out["coverage90_se"] = coverage_se(rows)
    return out


def _over_splits(values):
    """Mean and standard error of one value per split (the SE is 0 with one split)."""
    return mean_se(values) if len(values) > 1 else (float(values[0]), 0.0)


def _split_ids(rows):
    """The split index of each per-split row: its ``split``, or for a row written before rows named their
    split, its place (such runs ran the first splits, in order)."""
    return [int(row.get("split", s)) for s, row in enumerate(rows)]


def merge_results(results, names=None):
    """Several runs' results as one: {dataset: {method: summary}} over the union of their datasets, a
    dataset's per-split rows pooled across runs and summarised again (e.g. splits 0-2 of one run and
    splits 3-5 of a ``--first-split 3`` run make six splits).

    Args:
      results: `uci_benchmark` results (``uci.json`` contents); rows without ``split`` (written before
        rows named it) are the first splits, in order.
      names: a label per result for the errors (default: its position).

    Returns:
      The merged result, datasets in alphabetical order, each method's rows in split order.

    Raises:
      InputError: a (dataset, method, split) in two runs, or a dataset whose methods do not cover the
        same splits (they would no longer be compared side by side).
    """
    names = list(names or range(len(results)))
    rows, where = {}, {}
    for label, result in zip(names, results):
        for dataset, methods in result.items():
            for method, summary in methods.items():
                for split, row in zip(_split_ids(summary["per_split"]), summary["per_split"]):
                    key = (dataset, method, split)
                    if key in where:
                        raise InputError(f"{dataset} {method} split {split} is in both {where[key]} and {label}")
                    where[key] = label
                    rows.setdefault(dataset, {}).setdefault(method, {})[split] = dict(row, split=split)
    merged = {}
    for dataset in sorted(rows):
        splits = {m: sorted(r) for m, r in rows[dataset].items()}
        if len({tuple(v) for v in splits.values()}) > 1:
            raise InputError(f"{dataset}: its methods ran on different splits, so they are not side by side: "
                             + "; ".join(f"{m} {v}" for m, v in splits.items()))
        merged[dataset] = {m: _summarise([r[k] for k in sorted(r)]) for m, r in rows[dataset].items()}
    return merged


def paired_differences(new, old, methods=None):
    """Two runs' results compared split by split, on the splits both ran (a recipe change judged without the
    between-split spread, which on the small tables is larger than the change).

    Args:
      new, old: `uci_benchmark` results (``uci.json`` contents); methods: the methods compared, of those both
        hold (default: every method both hold, in ``new``'s order).

    Returns:
      {dataset: {method: {splits, new_ll, old_ll, diff, diff_se, new_coverage, old_coverage}}} for each
      dataset both ran: the mean test LL and coverage of each run on the shared splits, and the mean of the
      per-split differences new - old with its standard error (0 with one shared split).
    """
    out = {}
    for dataset in new:
        if dataset not in old:
            continue
        for method in [m for m in (methods or new[dataset]) if m in new[dataset] and m in old[dataset]]:
            rows = [{s: r for s, r in zip(_split_ids(run[dataset][method]["per_split"]),
                                          run[dataset][method]["per_split"])} for run in (new, old)]
            shared = sorted(set(rows[0]) & set(rows[1]))
            if not shared:
                continue
            a, b = ([r[s] for s in shared] for r in rows)
            diff = [x["test_ll"] - y["test_ll"] for x, y in zip(a, b)]
            mean, se = _over_splits(diff)
            out.setdefault(dataset, {})[method] = {
                "splits": shared, "new_ll": float(np.mean([r["test_ll"] for r in a])),
                "old_ll": float(np.mean([r["test_ll"] for r in b])), "diff": mean, "diff_se": se,
                "new_coverage": float(np.mean([r["coverage90"] for r in a])),
                "old_coverage": float(np.mean([r["coverage90"] for r in b]))}
    return out


def coverage_se(rows):
    """Binomial standard error of the 90% coverage over every test row of ``rows`` (each split's
    ``coverage90`` and ``n_test``): sqrt(p (1 - p) / N) at the pooled coverage p. It is the sampling error of
    the test rows alone (a few hundred rows on the small tables put it near 0.02), not of the training."""
    n = np.array([r["n_test"] for r in rows], "float64")
    p = float(np.sum(n * np.array([r["coverage90"] for r in rows])) / n.sum())
    return float(np.sqrt(p * (1 - p) / n.sum()))


def _add_test_counts(result, data_dir):
    """Fill ``n_test`` (and ``coverage90_se``) into a result written before they were recorded, from the data
    folder's split files (a row without its ``split`` is the row's place: results written before rows named
    their split ran the first splits, in order); datasets not found there are left as they are."""
    for name, methods in result.items():
        folder = os.path.join(data_dir, name)
        for r in methods.values():
            if "coverage90_se" in r or not os.path.isdir(folder):
                continue
            for split, row in zip(_split_ids(r["per_split"]), r["per_split"]):
                row.setdefault("n_test", len(_read_ints(os.path.join(folder, f"index_test_{split}.txt"))))
            r["coverage90_se"] = coverage_se(r["per_split"])


def _mean_se(mean, se):
    """"mean +- se" with three significant digits of the mean (at least three decimals): naval's RMSE is ~1e-3."""
    decimals = max(3, 2 - int(np.floor(np.log10(abs(mean)))) if mean else 3)
    return f"{mean:.{decimals}f} +- {se:.{decimals}f}"


def published_numbers(data_dir):
    """Reference test log-likelihoods from the data folder's README table: {dataset: {source: (mean, se)}}.

    Reads the first markdown table whose first header cell is "dataset" and
    whose cells read "mean +- se"; {} if there is no README or no such table.
    """
    path = os.path.join(data_dir, "README.md")
    if not os.path.exists(path):
        return {}
    header, out = None, {}
    with open(path) as f:
        lines = f.readlines()
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not line.lstrip().startswith("|"):
            if out:
                break
            header = None
            continue
        if cells[0].lower() == "dataset":
            header = cells
        elif header and not set(cells[0]) <= set("-: "):
            values = {}
            for name, cell in zip(header[1:], cells[1:]):
                m = re.fullmatch(r"(-?[\d.]+)\s*\+-\s*([\d.]+)", cell)
                if m:
                    values[name] = (float(m.group(1)), float(m.group(2)))
            if values:
                out[cells[0]] = values
    return out


def verdict(result):
    """Per dataset: the best Bayesian method, the best peer run beside it (None without one), and whether
    the first's mean test LL beats every peer's."""
    out = {}
    for name, methods in result.items():
        bayes = [m for m in BAYESIAN if m in methods]
        peers = [m for m in PEERS if m in methods]
        if not bayes:
            continue
        best = max(bayes, key=lambda m: methods[m]["test_ll"])
        out[name] = {"best_bayesian": best, "best_peer": max(peers, key=lambda m: methods[m]["test_ll"], default=None),
                     "beats_every_peer": all(methods[best]["test_ll"] > methods[p]["test_ll"] for p in peers)}
    return out


def plot_uci(result, published=None):
    """Test log-likelihood per method and dataset (mean +- SE over splits), published numbers as orange ticks."""
    from tfp_dgbn.plots.figures import plt

    names = list(result)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        methods = list(result[name])
        for i, m in enumerate(methods):
            r = result[name][m]
            ax.errorbar(r["test_ll"], i, xerr=r["test_ll_se"], fmt="o", color="C0" if m in BAYESIAN else "0.4")
        for source, (mean, se) in (published or {}).get(name, {}).items():
            ax.axvline(mean, color="C1", alpha=0.6, lw=1)
        ax.set_yticks(range(len(methods)), methods if ax is axes[0][0] else [""] * len(methods), fontsize=8)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("test LL (nats)", fontsize=8)
    fig.suptitle("UCI: Bayesian methods (blue), peers (grey), published numbers (orange lines)", fontsize=9)
    fig.tight_layout()
    return fig


def _coverage(r):
    """"0.944 +- 0.015" (the binomial SE where the test counts are known), else "0.944"."""
    return f"{r['coverage90']:.3f}" + (f" +- {r['coverage90_se']:.3f}" if "coverage90_se" in r else "")


def _goal_distance(r):
    """For a coverage outside `COVERAGE_GOAL` with a known SE: how many SEs from the nearer end, as "; 0.7 SE
    above it"; else ""."""
    lo, hi = COVERAGE_GOAL
    p, se = r["coverage90"], r.get("coverage90_se", 0.0)
    if lo <= p <= hi or se <= 0:
        return ""
    return f"; {abs(p - (hi if p > hi else lo)) / se:.1f} SE {'above' if p > hi else 'below'} it"


def _layers(n):
    """The report's words for ``n`` hidden layers, naming a departure from the protocol's one."""
    return ("one hidden layer of the protocol's width" if n == 1
            else f"{n} hidden layers of the protocol's width (the protocol: one)")


def _head_words(family):
    """The report's words for the networks' output law, naming a departure from the protocol's Normal."""
    if family == "auto":
        return ("a heteroscedastic Normal or Student-t output (one learned degrees of freedom per network), "
                "chosen per split by the NLL of an ensemble of each, at the CV's ensemble weight (the CV under "
                f"the Normal), on the {CALIBRATION_SHARE:.0%} of the training split held out from it, for every "
                "network of the split (the protocol: Normal; NGBoost stays Normal)")
    return ("a heteroscedastic Normal output" if family == "normal"
            else f"a heteroscedastic {family} output with one learned degrees of freedom per network "
                 "(the protocol: Normal; NGBoost stays Normal)")


def _head_lines(methods):
    """The report's line naming each split's chosen head under ``--head auto`` (none without it), with the
    held-out NLLs it was chosen by; every network method of a split has the same choice, so the first row
    holding one is read."""
    rows = next((r["per_split"] for r in methods.values() if any("head" in row for row in r["per_split"])), [])
    if not rows:
        return []
    chosen = [f"split {s}: {row['head']} (" + ", ".join(f"{f} {v:.3f}" for f, v in row["head_nll"].items()) + ")"
              for s, row in zip(_split_ids(rows), rows)]
    return ["", "Head chosen on the training rows (held-out NLL of an ensemble of each, nats/row): "
            + "; ".join(chosen) + "."]


def _refine_words(b):
    """The recipe's words for `Budget.refine` (none when it is empty)."""
    if not b.refine:
        return ""
    return (f", then refined: each ensemble's weight chosen among the CV's w and "
            f"{', '.join(f'{f:g}' for f in b.refine)} x w by the {CALIBRATION_SHARE:.0%} of the training split "
            f"held out from an ensemble of {b.members} trained on the rest (the calibrated one's after its tau)")


def write_uci_report(result, out_dir, data_dir, budget, command=None, seconds=0.0, header=None):
    """Write ``uci.json`` (dataset -> method -> metrics), ``uci.md`` (tables with the published numbers) and
    ``uci.png`` (`plot_uci`). ``budget`` (a `Budget`) writes a new header's recipe. ``command`` None:
    re-rendered from a saved ``uci.json``, the existing ``uci.md``'s header (the run's command, time and
    recipe) is kept; ``header`` (lines) replaces it (a merge's, `merge_reports`). An empty ``result`` is
    refused (`InputError`) before anything in ``out_dir`` is touched."""
    from tfp_dgbn.atomic import atomic_file

    if not result:  # before any write: an empty result would replace a run's saved uci.json with {}
        raise InputError(f"no dataset results to report in {out_dir!r}: the benchmark ran no dataset")
    os.makedirs(out_dir, exist_ok=True)
    _add_test_counts(result, data_dir)
    with atomic_file(os.path.join(out_dir, "uci.json"), "w") as f:
        json.dump(result, f, indent=1, default=float)
    published = published_numbers(data_dir)
    sources = sorted({s for v in published.values() for s in v})
    judged = verdict(result)
    md = os.path.join(out_dir, "uci.md")
    b = budget
    if header is not None:
        header = list(header)
    elif command is None and os.path.exists(md):  # re-rendered from uci.json: keep the run's own header
        header = _report_header(md)
    else:
        header = [f"UCI regression benchmark, written by `{command}` in {seconds / 60:.1f} min on "
                  f"{os.cpu_count()} CPU core(s).", "",
                  f"Every network: {_layers(b.layers)}, {_head_words(b.head)}, {b.steps} Adam steps or the "
                  f"protocol's epochs where those are more (the deep ensemble: the protocol's epochs) of batch "
                  f"{b.batch} (learning rate {b.learning_rate:g}, cosine decay), inputs and target standardised "
                  f"on the training split; ensembles of {b.members}; "
                  f"tempering by {b.folds}-fold CV over KL weights {', '.join(f'{w:g}' for w in b.grid)}"
                  + (f" (the ensembles' weight by the fold mixtures of {b.cv_members} networks)" if b.cv_members > 1
                     else "") + _refine_words(b) + f"; S = "
                  f"{b.num_samples} weight draws; the calibrated ensemble's tau (per split) fitted on "
                  f"{CALIBRATION_SHARE:.0%} of the training split held out from a second ensemble. Test "
                  "log-likelihood (nats/example) and RMSE in the target's original units, mean +- SE over splits; "
                  "90% interval coverage averaged over splits, +- its binomial SE over the test rows."]
    lines = header + [""]
    for name, methods in result.items():
        first = next(iter(methods.values()))
        k, ids = first["splits"], _split_ids(first["per_split"])
        # splits other than the first K are named: a check on rows no earlier choice saw reads as one
        named = "" if ids == list(range(k)) else f": {', '.join(map(str, ids))}"
        lines += [f"## {name} ({k} split{'s' * (k > 1)}{named})", "",
                  "| method | test LL | RMSE | 90% coverage | seconds | KL weight (CV) | tau (held out) |",
                  "|---|---|---|---|---|---|---|"]
        for m, r in methods.items():
            weights = sorted({row["kl_weight"] for row in r["per_split"] if "kl_weight" in row})
            spreads = [row["spread"] for row in r["per_split"] if "spread" in row]
            lines.append(f"| {m} | {r['test_ll']:.3f} +- {r['test_ll_se']:.3f} | {_mean_se(r['rmse'], r['rmse_se'])} | "
                         f"{_coverage(r)} | {r['seconds']:.0f} | "
                         f"{', '.join(f'{w:g}' for w in weights) or '-'} | "
                         f"{', '.join(f'{t:.3f}' for t in spreads) or '-'} |")
        for source in sources:
            if source in published.get(name, {}):
                mean, se = published[name][source]
                lines.append(f"| published: {source} | {mean:.2f} +- {se:.2f} | | | | | |")
        if name in judged:
            j = judged[name]
            best = methods[j["best_bayesian"]]
            lines += ["", f"Best Bayesian method: **{j['best_bayesian']}**; "
                      + ("it beats every peer run beside it." if j["beats_every_peer"]
                         else "it does **not** beat every peer run beside it.")
                      + f" Its 90% coverage: {_coverage(best)} ("
                      + ("inside" if COVERAGE_GOAL[0] <= best["coverage90"] <= COVERAGE_GOAL[1] else "**outside**")
                      + f" {COVERAGE_GOAL[0]}-{COVERAGE_GOAL[1]}{_goal_distance(best)})."]
            for source, (mean, _) in published.get(name, {}).items():
                if "MC dropout, repository" in source:  # the bar: at most one of our SEs below that number
                    below = best["test_ll"] + best["test_ll_se"] < mean
                    lines[-1] += (f" Against the repository's published MC dropout ({mean:.2f}): "
                                  f"{best['test_ll'] - mean:+.3f}, " + ("**more than** one SE below." if below
                                                                        else "not more than one SE below."))
        lines += _head_lines(methods)
        lines.append("")
    wins = sum(j["beats_every_peer"] for j in judged.values())
    lines += ["## Summary", "", "| dataset | best Bayesian method | test LL | 90% coverage | best peer | its test LL |",
              "|---|---|---|---|---|---|"]
    for name, j in judged.items():
        methods, best, peer = result[name], result[name][j["best_bayesian"]], j["best_peer"]
        lines.append(f"| {name} | {j['best_bayesian']} | {best['test_ll']:.3f} +- {best['test_ll_se']:.3f} | "
                     f"{_coverage(best)} | {peer or '-'} | "
                     + (f"{methods[peer]['test_ll']:.3f} +- {methods[peer]['test_ll_se']:.3f} |" if peer else "- |"))
    lines += ["", f"Datasets where the best Bayesian method beats every peer: {wins} of {len(judged)}.", ""]
    with atomic_file(md, "w") as f:
        f.write("\n".join(lines))
    from tfp_dgbn.plots.figures import save_figure

    save_figure(plot_uci(result, published), os.path.join(out_dir, "uci.png"))
    return "\n".join(lines)
