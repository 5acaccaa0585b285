"""The ``dgbn`` command line: a thin layer over the library.

  dgbn fit rings [--data rings.npz] [--epochs N] [--n-train N] [--kl-schedule SPEC]   (the main job)
  dgbn fit toy-gaussian [--epochs N] [--kl-schedule SPEC] [--logdir DIR] [--out DIR] [--seed S]
  dgbn fit TASK --strategy mirrored [--cpu-devices 2] | --strategy multiworker (cluster from TF_CONFIG)
  dgbn fit toy-discrete [--law poisson|negbin] [--head poisson|categorical] ...
  dgbn predict --model DIR --features 0.1 0.5 [--num-samples S] [--level 0.9]
  dgbn evaluate --model DIR [--data FILE --target COL] [--out DIR]   (calibration / uncertainty report)
  dgbn fit table --data FILE.csv|FILE.npz --target COL [--head normal|poisson|categorical] [--features A B]
  dgbn compare-kl [--n-train N] [--epochs N] [--out-dir docs/figures]   (KL strategies side by side)
  dgbn generate --model saved_models/rings --features x0 y0 R w theta phi [--n 16] --out grid.png
  dgbn simulate --n 100000 --out rings.npz [--seed S] [--image-size 32] [--plots DIR]
  dgbn simulate --n 1000000 --shards 16 --out rings/    (TFRecord shards + manifest + held-out .npz)
  dgbn fit rings --source simulate | --source rings/    (rings simulated on the fly, or streamed shards)
  dgbn notebooks [--small]  (execute notebooks/ top to bottom; outputs in runs/notebooks/)
  dgbn small-data [--task toy-gaussian] [--sizes 50 200 1000 5000] [--folds 3]   (Bayesian vs deterministic vs MC dropout)
  dgbn hmc-reference [--chains 4] [--burnin 5000] [--samples 5000]   (HMC posterior vs variational)
  dgbn benchmark uci --data ../shared/data/uci [--datasets concrete energy] [--splits K] [--first-split S] [--workers N] [--out DIR]
  dgbn benchmark uci --data ../shared/data/uci --merge RUN [RUN ...] --out DIR
  dgbn schedules            (list KL schedules and their parameters)

A user error (bad value, missing file) prints one line and exits with code 2; a
training run whose loss becomes NaN or infinite stops with one line and code 3;
an internal error prints one line naming it and exits with code 1 (--debug: the traceback).
"""
import argparse
import dataclasses
import inspect
import json
import os
import sys

from tfp_dgbn.fit.schedules import SCHEDULES
from tfp_dgbn.validate import InputError


class _Parser(argparse.ArgumentParser):
    """argparse with its errors in one line (``dgbn: error: ...``, exit 2) instead of a usage block."""

    def error(self, message):
        self.exit(2, f"dgbn: error: {message} (see {self.prog} --help)\n")


def _schedule_help():
    lines = []
    for name, cls in SCHEDULES.items():
        params = [f"{p.name}={p.default}" for p in inspect.signature(cls.__init__).parameters.values()
                  if p.name != "self"]
        lines.append(f"  {name}:{','.join(params)}")
    return "\n".join(lines)


def _settings_fields(settings_cls):
    """The fields of a settings class that are command-line options."""
    return [f for f in dataclasses.fields(settings_cls) if f.metadata.get("cli", True)]


def _add_settings(parser, settings_cls, task):
    """One option per settings field, with its help, choices and the class's default (shown, not set).

    Every option defaults to None, so only what the user gives overrides the settings class.
    """
    for f in _settings_fields(settings_cls):
        meta, default = f.metadata, f.default
        flag = "--" + f.name.replace("_", "-")
        shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
        text = meta["help"] + ("" if default is None or isinstance(default, bool) else f" (default: {shown})")
        text = text.replace("TASK", task).replace("%", "%%")  # argparse formats help with %
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true" if not default else argparse.BooleanOptionalAction,
                                default=None, help=text)
        elif isinstance(default, tuple) or "each" in meta:
            parser.add_argument(flag, nargs="+", type=meta.get("each", int), default=None, help=text)
        else:
            kind = str if default is None else type(default)
            choices = [c for c in meta.get("choices") or () if c is not None] or None
            parser.add_argument(flag, type=kind, choices=choices, default=None, help=text)


def build_parser():
    """The argparse parser of ``dgbn``; ``dgbn fit TASK`` takes exactly that task's settings."""
    from tfp_dgbn.tasks import TASKS

    parser = _Parser(prog="dgbn", description="Deep generative Bayesian networks (TFP).",
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's start-up and info logs (hidden by default)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("fit", help="train a Bayesian network, export it, evaluate it",
                         description="Train, export and evaluate one task; dgbn fit TASK --help lists its options.")
    tasks = fit.add_subparsers(dest="task", required=True, metavar="TASK")
    for name, task in TASKS.items():
        p = tasks.add_parser(name, help=task.help, description=task.help,
                             formatter_class=argparse.RawDescriptionHelpFormatter,
                             epilog="KL schedules (--kl-schedule NAME:key=value,...):\n" + _schedule_help())
        _add_settings(p, task.settings, name)
        p.add_argument("--cpu-devices", type=int, default=None, metavar="N",
                       help="split the CPU into N logical devices (for --strategy mirrored without GPUs)")
        p.add_argument("--quiet", action="store_true", help="no Keras progress bar")

    pred = sub.add_parser("predict", help="predictive distribution of an exported model")
    pred.add_argument("--model", required=True)
    pred.add_argument("--features", nargs="+", required=True,
                      help="feature values, one example after another (one per feature column, a word for a "
                           "text column; or one number per input of `feature_names`)")
    pred.add_argument("--num-samples", type=int, default=64)
    pred.add_argument("--level", type=float, default=0.9)

    cmp_ = sub.add_parser("compare-kl", help="train the ring generator once per KL strategy; figure and table")
    cmp_.add_argument("--n-train", type=int, default=10000)
    cmp_.add_argument("--n-test", type=int, default=2000)
    cmp_.add_argument("--epochs", type=int, default=4)
    cmp_.add_argument("--seed", type=int, default=0)
    cmp_.add_argument("--logdir", default="runs/kl_strategies", help="one TensorBoard run per strategy below it")
    cmp_.add_argument("--out-dir", default="docs/figures", help="kl_strategies.png and kl_strategies.md go here")
    cmp_.add_argument("--quiet", action="store_true")

    gens = sub.add_parser("compare-generators", help="the reference decoder, the explicit and the latent generator "
                          "on the seed-pattern rings, same budget, judged against the exact law; tables and figures")
    gens.add_argument("--n-train", type=int, default=40000, help="training rings (default: the job's 40000)")
    gens.add_argument("--n-test", type=int, default=2000, help="held-out rings judged (default 2000)")
    gens.add_argument("--epochs", type=int, default=8)
    gens.add_argument("--seed", type=int, default=0)
    gens.add_argument("--variants", nargs="+", choices=("one-ring", "two-rings"), default=None,
                      help="which law (default both)")
    gens.add_argument("--logdir", default="runs/generators", help="one TensorBoard run per generator below it")
    gens.add_argument("--out-dir", default="runs/generators", help="generators.md and the figures go here")
    gens.add_argument("--export-dir", default=os.path.join("saved_models", "generators"),
                      help="one SavedModel per generator below it")
    gens.add_argument("--quiet", action="store_true")

    gen = sub.add_parser("generate", help="generate noised rings from an exported ring model")
    gen.add_argument("--model", required=True, help="SavedModel directory of a ring generator")
    gen.add_argument("--features", type=float, nargs="+", required=True,
                     help="x0 y0 R w theta phi, repeated for several rings")
    gen.add_argument("--n", type=int, default=16, help="rings generated per feature row (default 16)")
    gen.add_argument("--out", required=True, help="PNG grid (rows: feature rows; last column: predictive mean)")
    gen.add_argument("--npz", default=None, help="also save the generated counts to this .npz")
    gen.add_argument("--seed", type=int, default=0)

    sim = sub.add_parser("simulate", help="simulate rings into a .npz dataset (train/val/test)")
    sim.add_argument("--n", type=int, default=100_000, help="rings over all splits (default 100000)")
    sim.add_argument("--out", required=True,
                     help="output .npz, or a directory with --shards (replaced only when complete)")
    sim.add_argument("--shards", type=int, default=None, metavar="K",
                     help="write the train split as K TFRecord shards + manifest.json + heldout.npz into --out")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--law", choices=["photon", "pattern"], default="photon",
                     help="photon: the project's Poisson photon rings (default); pattern: the seed-pattern rings "
                          "of the reference slides (32x32, multiplicative pixel noise; docs/seed_rings.md)")
    sim.add_argument("--two-rings", action="store_true",
                     help="pattern law: two rings per image, the second wholly present or absent (12 features)")
    sim.add_argument("--image-size", type=int, default=32, help="pixels per side (ranges scale with it)")
    sim.add_argument("--splits", type=float, nargs=3, default=[0.8, 0.1, 0.1], metavar=("TRAIN", "VAL", "TEST"))
    sim.add_argument("--expected", choices=["none", "heldout", "all"], default="heldout",
                     help="splits that store the exact mean images (default: val and test)")
    sim.add_argument("--no-true-ring", action="store_true", help="do not store the noise-free rings")
    sim.add_argument("--plots", default=None, metavar="DIR",
                     help="also write feature-sweep and pixel-count figures to DIR")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")

    nbs = sub.add_parser("notebooks", help="execute the story notebooks top to bottom (full size by default)")
    nbs.add_argument("--small", action="store_true", help="the test suite's small sizes (~3 minutes)")
    nbs.add_argument("--out-dir", default=os.path.join("runs", "notebooks", "executed"),
                     help="executed copies with outputs go here")

    ev = sub.add_parser("evaluate", help="calibration, uncertainty split and OOD report of an exported model")
    ev.add_argument("--model", required=True, help="SavedModel directory (scalar targets)")
    ev.add_argument("--data", default=None, help=".csv or .npz with the model's feature columns and the target "
                                                 "(default for toy models: fresh simulated examples)")
    ev.add_argument("--target", default=None, help="target column (default: the one the model was trained on)")
    ev.add_argument("--missing", nargs="+", default=None, help="cell texts marking a missing value: rows holding "
                    "one are dropped (default: the marks the model was trained with, else none: an error)")
    ev.add_argument("--out", default=None, help="report directory (default runs/evaluate/MODEL)")
    ev.add_argument("--n", type=int, default=5000, help="toy models: examples simulated (default 5000)")
    ev.add_argument("--num-samples", type=int, default=256, help="weight draws S (default 256)")
    ev.add_argument("--seed", type=int, default=0)

    sd = sub.add_parser("small-data", help="Bayesian vs deterministic vs MC dropout at 50..5000 training examples")
    sd.add_argument("--task", choices=["toy-gaussian", "toy-discrete"], default="toy-gaussian")
    sd.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 1000, 5000])
    sd.add_argument("--steps", type=int, default=3000, help="gradient steps per model (default 3000)")
    sd.add_argument("--n-test", type=int, default=5000)
    sd.add_argument("--folds", type=int, default=3,
                    help="K of the cross-validation on each training set that picks the KL weight and the dropout "
                         "rate (default 3; 0: KL weight 1 and dropout 0.1, no selection)")
    sd.add_argument("--seed", type=int, default=0)
    sd.add_argument("--out-dir", default="docs/figures", help="small_data.png, .md and .json go here")

    hm = sub.add_parser("hmc-reference", help="HMC reference posterior vs the variational network (toy-gaussian)")
    hm.add_argument("--n-train", type=int, default=200)
    hm.add_argument("--chains", type=int, default=4)
    hm.add_argument("--burnin", type=int, default=5000)
    hm.add_argument("--samples", type=int, default=5000)
    hm.add_argument("--leapfrog", type=int, default=64)
    hm.add_argument("--seed", type=int, default=0)
    hm.add_argument("--out-dir", default="docs/figures", help="hmc_reference.png and hmc_reference.md go here")

    bench = sub.add_parser("benchmark", help="published benchmarks, run side by side with the peers")
    which = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    uci = which.add_parser("uci", help="UCI regression: Flipout (KL 1, tempered, ensemble) vs MC dropout, deep "
                                       "ensemble, NGBoost on the standard splits (test LL, RMSE, 90%% coverage)")
    uci.add_argument("--data", required=True, help="folder of UCI dataset folders (e.g. ../shared/data/uci)")
    uci.add_argument("--datasets", nargs="+", default=None, help="dataset folder names (default: all)")
    uci.add_argument("--splits", type=int, default=None, help="K standard splits (default: all)")
    uci.add_argument("--first-split", type=int, default=0, metavar="S",
                     help="run the splits from S on (default 0), e.g. --first-split 3 --splits 3 for splits 3-5")
    uci.add_argument("--methods", nargs="+", default=None, metavar="METHOD",
                     help="subset of: flipout flipout-tempered bayesian-ensemble bayesian-ensemble-calibrated "
                          "mc-dropout deep-ensemble ngboost (default: all)")
    uci.add_argument("--steps", type=int, default=4000, help="Adam steps per network (default 4000)")
    uci.add_argument("--batch-size", type=int, default=128)
    uci.add_argument("--layers", type=int, default=1,
                     help="hidden layers of the protocol's width in every network, peers included (default 1: the "
                          "published protocol)")
    uci.add_argument("--head", default="normal", choices=("normal", "student-t", "auto"),
                     help="every network's output law, peers included (default normal: the published protocol; "
                          "student-t: one learned degrees of freedom per network, for heavy-tailed errors; auto: "
                          "each split's, the one whose ensemble (at the CV's weight) has the lower NLL on 20%% of the "
                          "training split held out from it)")
    uci.add_argument("--cv-members", type=int, default=1,
                     help="networks per fold of the tempering CV; above 1 the ensembles' KL weight is chosen by "
                          "their fold mixture's NLL (the model they are), not one network's (default 1)")
    uci.add_argument("--folds", type=int, default=2, help="K of the cross-validation choosing the KL weight")
    uci.add_argument("--kl-grid", type=float, nargs="+", default=None, metavar="W",
                     help="KL weights the cross-validation chooses from (default: 1 0.3 0.1 0.03 0.01; weights "
                          "above 1 give a posterior narrower than the prior's, below 1 wider)")
    uci.add_argument("--refine", type=float, nargs="+", default=(), metavar="F",
                     help="choose each ensemble's KL weight among the CV's w and these multiples F x w, by an "
                          "ensemble of --members trained on 80%% of the training split, scored on the other 20%% "
                          "(the CV's folds hold half the rows; e.g. --refine 1.5 0.67 0.5; default: the CV's w)")
    uci.add_argument("--members", type=int, default=5, help="networks per ensemble (default 5)")
    uci.add_argument("--num-samples", type=int, default=64, help="weight draws S of a stochastic predictive")
    uci.add_argument("--seed", type=int, default=0)
    uci.add_argument("--workers", type=int, default=1,
                     help="splits (of every dataset) run in this many processes at once, largest dataset first "
                          "(default 1; about one core each)")
    uci.add_argument("--out", default=os.path.join("runs", "uci"), help="uci.json, uci.md, uci.png and the "
                                                                         "exported Bayesian ensembles go here")
    uci.add_argument("--replot", action="store_true",
                     help="no training: rewrite uci.md and uci.png from OUT/uci.json (e.g. after a partial run)")
    uci.add_argument("--resume", action="store_true",
                     help="reuse the splits a stopped or failed run saved in OUT/splits under the same methods "
                          "and budget, and run only the rest")
    uci.add_argument("--merge", nargs="+", default=None, metavar="RUN",
                     help="no training: merge these runs' --out folders (their uci.json and uci.md) into OUT, a "
                          "dataset's splits pooled across runs (e.g. splits 0-2 and a --first-split 3 run)")

    sub.add_parser("schedules", help="list KL schedules and their parameters")
    return parser


def _print_paths(paths):
    for key, path in paths.items():
        print(f"  {key:13s} {path}")
    print(f"  open TensorBoard with: tensorboard --logdir {paths['logdir']}")


def _evaluate(args):
    import tfp_dgbn
    from tfp_dgbn.evaluate.report import summary_lines, write_report

    predictor = tfp_dgbn.load(args.model)
    meta = predictor.metadata
    if len(predictor.head.event_shape):
        raise InputError(f"{args.model!r} predicts images; dgbn evaluate handles scalar targets "
                         "(ring generators are evaluated by dgbn fit rings against the exact law)")
    if args.data:
        from tfp_dgbn.dataset.tabular import load_table
        from tfp_dgbn.model.heads import REAL_FAMILIES
        from tfp_dgbn.predict import is_classes

        target = args.target or meta.get("target")
        if not target:
            raise InputError("give --target COLUMN (the export does not name one)")
        table = load_table(args.data, target, meta.get("feature_columns", meta.get("feature_names")),
                           integer_target=predictor.head.family not in REAL_FAMILIES,
                           labels=is_classes(predictor.head), class_names=meta.get("class_names"),
                           num_classes=getattr(predictor.head, "num_classes", None),
                           categories=meta.get("categories"),
                           missing=meta.get("missing") if args.missing is None else args.missing)
        x, y = table.x, table.y
        name = args.data + (f" ({table.dropped} row{'s' * (table.dropped > 1)} with a missing value dropped)"
                            if table.dropped else "")
    else:
        from tfp_dgbn.tasks.toys import TOY_TASKS

        task, toys = meta.get("task"), {t.name: t for t in TOY_TASKS}
        if task not in toys:
            raise InputError(f"{args.model!r} was not trained on a built-in toy; give --data FILE --target COL")
        x, y = toys[task].problem(meta.get("training_config", {}).get("law")).sample(args.n, seed=args.seed + 1000)
        name = f"{args.n} fresh examples of {task} (seed {args.seed + 1000})"
    out = args.out or os.path.join("runs", "evaluate", os.path.basename(os.path.normpath(args.model)))
    m = write_report(predictor, x, y, out, model_path=args.model, data_name=name,
                     num_samples=args.num_samples, seed=args.seed)
    print()
    for line in summary_lines(m):
        print(line)
    print(f"  report        {os.path.join(out, 'report.md')}")
    print(f"  open TensorBoard with: tensorboard --logdir {os.path.join(out, 'tensorboard')}")


def _small_data(args):
    from tfp_dgbn.studies.small_data import small_data_study, write_small_data_report
    from tfp_dgbn.tasks.runner import progress_line

    if any(n < 2 for n in args.sizes) or args.steps < 1 or args.n_test < 2:
        raise InputError(f"sizes and n-test must be >= 2 and steps >= 1, got sizes {args.sizes}, "
                        f"steps {args.steps}, n-test {args.n_test}")
    if args.folds and not 2 <= args.folds <= min(args.sizes):
        raise InputError(f"--folds must be 0 or in [2, smallest size {min(args.sizes)}], got {args.folds}")
    rows = small_data_study(args.task, args.sizes, args.steps, args.n_test, seed=args.seed, folds=args.folds,
                            progress=progress_line)
    write_small_data_report(rows, args.out_dir, args.task, args.steps)
    print(f"wrote {os.path.join(args.out_dir, 'small_data')}.png, .md and .json")


def _hmc_reference(args):
    from tfp_dgbn.studies.hmc_reference import hmc_reference, write_hmc_report
    from tfp_dgbn.tasks.runner import progress_line

    if args.chains < 2 or min(args.n_train, args.burnin, args.samples, args.leapfrog) < 1:
        raise InputError(f"need --chains >= 2 (R-hat compares chains) and positive sizes, got chains {args.chains}, "
                        f"n-train {args.n_train}, burnin {args.burnin}, samples {args.samples}, "
                        f"leapfrog {args.leapfrog}")
    result = hmc_reference(args.n_train, chains=args.chains, num_burnin=args.burnin, num_samples=args.samples,
                           num_leapfrog=args.leapfrog, seed=args.seed, progress=progress_line)
    write_hmc_report(result, args.out_dir)
    for name, r in result["rows"].items():
        print(f"{name:12s} held-out NLL {r['nll']:.4f} +- {r['nll_se']:.4f}; 90% coverage {r['coverage90']:.3f}")
    d = result["diagnostics"]
    print(f"R-hat of the predictive mean: max {d['function_rhat_max']:.3f}; ESS min {d['function_ess_min']:.0f}")
    print(f"wrote {os.path.join(args.out_dir, 'hmc_reference.png')} and {os.path.join(args.out_dir, 'hmc_reference.md')}")


def _fit(args):
    from tfp_dgbn.fit.distribute import configure_cpu_devices
    from tfp_dgbn.tasks import TASKS, make_settings
    from tfp_dgbn.tasks.runner import run

    task = TASKS[args.task]
    given = {f.name: getattr(args, f.name) for f in _settings_fields(task.settings)
             if getattr(args, f.name) is not None}
    if args.cpu_devices is not None:
        configure_cpu_devices(args.cpu_devices)
    result = run(make_settings(args.task, verbose=0 if args.quiet else 1, **given))
    if not result.metrics:
        print("[dgbn] worker finished; the chief exports and evaluates")
        return
    print()
    for line in task.summary_lines(result.metrics):
        print(line)
    _print_paths(result.paths)


def _predict_inputs(path, predictor, values):
    """``--features`` -> the model's inputs float64 [N, D]: one value per feature column (a word for a text
    column, encoded as the model's metadata says), or one number per input (the one-hot form)."""
    import numpy as np

    meta, d = predictor.metadata, predictor.num_features
    columns, categories = meta.get("feature_columns"), meta.get("categories")
    if categories and columns:
        from tfp_dgbn.dataset.tabular import encode_examples

        try:
            return encode_examples(values, columns, categories).astype("float64")
        except InputError:
            if len(values) % d or not all(_is_number(v) for v in values):
                raise  # not the one-hot form either: the error names the column form, the one users write
    words = [v for v in values if not _is_number(v)]
    if words:  # only a model without text columns gets here with one
        raise InputError(f"--features value {words[0]!r} is not a number ({path!r} has no text columns)")
    if len(values) % d:
        raise InputError(f"{path!r} takes {d} feature values per example ({' '.join(meta.get('feature_names', []))})"
                         f", repeated for several; got {len(values)}")
    return np.asarray(values, "float64").reshape(-1, d)


def _is_number(text):
    """Whether ``float(text)`` reads it (nan too: the predictor's check names its row and column)."""
    try:
        float(text)
        return True
    except ValueError:
        return False


def _predict(args):
    import numpy as np

    import tfp_dgbn
    from tfp_dgbn.predict import central_interval, is_classes, mixture

    predictor = tfp_dgbn.load(args.model)
    if not 0 < args.level < 1:
        raise InputError(f"--level must be in (0, 1), got {args.level}")
    x = _predict_inputs(args.model, predictor, args.features)
    # One set of weight draws serves both the distribution and its summary.
    draws = predictor.draws(x, args.num_samples)
    dist = mixture(predictor.head, draws)
    summary = predictor.summarize(draws)
    ordered = dist.event_shape.rank == 0 and not is_classes(predictor.head)
    lo, hi = central_interval(dist, args.level) if ordered else (None, None)
    classes = predictor.metadata.get("class_names")  # text labels of a table's classes (index k: classes[k])
    rows = []
    for i in range(len(x)):
        # scalars as numbers, class probabilities as a list
        row = {"features": x[i].tolist(), **{k: np.asarray(v[i]).tolist() for k, v in summary.items()}}
        if is_classes(predictor.head):
            best = int(np.argmax(summary["probs"][i]))
            row["predicted_class"] = classes[best] if classes else best
            if classes:
                row["probs_by_class"] = dict(zip(classes, row["probs"]))
        if lo is not None:
            row[f"interval_{args.level:g}"] = [float(lo[i]), float(hi[i])]
        rows.append(row)
    print(json.dumps(rows, indent=1))


def _compare_kl(args):
    from tfp_dgbn.studies.kl_comparison import compare_kl_strategies
    from tfp_dgbn.tasks import make_settings

    base = make_settings("rings", n_train=args.n_train, n_test=args.n_test, epochs=args.epochs, seed=args.seed,
                         logdir=args.logdir, out=os.path.join("saved_models", "kl_strategies"),
                         verbose=0 if args.quiet else 2)
    compare_kl_strategies(base, args.out_dir)
    print(f"figure and table in {args.out_dir}; TensorBoard: tensorboard --logdir {args.logdir}")


def _compare_generators(args):
    from tfp_dgbn.studies.generators import compare_generators
    from tfp_dgbn.tasks import make_settings

    base = make_settings("pattern-rings", n_train=args.n_train, n_test=args.n_test, epochs=args.epochs,
                         seed=args.seed, logdir=args.logdir, out=args.export_dir,
                         verbose=0 if args.quiet else 2)
    base.check()
    variants = [v.replace("-", " ") for v in args.variants] if args.variants else None
    compare_generators(base, args.out_dir, variants)
    print(f"tables and figures in {args.out_dir}; TensorBoard: tensorboard --logdir {args.logdir}")


def _generate(args):
    import numpy as np

    import tfp_dgbn
    from tfp_dgbn.plots.figures import save_figure
    from tfp_dgbn.plots.rings import plot_generated_grid
    from tfp_dgbn.simulate.rings import NUM_FEATURES, RingConfig, check_ring_features

    predictor = tfp_dgbn.load(args.model)
    if predictor.metadata.get("task") != "rings":
        raise InputError(f"{args.model!r} is not a ring generator (task {predictor.metadata.get('task')!r})")
    if len(args.features) % NUM_FEATURES:
        raise InputError(f"--features takes {NUM_FEATURES} numbers per ring (x0 y0 R w theta phi), "
                         f"got {len(args.features)}")
    if args.n < 1:
        raise InputError(f"--n must be >= 1, got {args.n}")
    features = check_ring_features(np.reshape(args.features, (-1, NUM_FEATURES)),
                                   RingConfig.from_dict(predictor.metadata["simulator_config"]))
    fig, counts = plot_generated_grid(predictor, features, args.n, seed=args.seed)
    save_figure(fig, args.out)
    if args.npz:
        from tfp_dgbn.atomic import atomic_file

        with atomic_file(args.npz, "wb") as f:
            np.savez(f, features=features.astype("float32"), generated=counts)
    print(f"wrote {args.out}: {args.n} generated rings for each of {len(features)} feature rows "
          f"(mean hits {counts.sum(axis=(2, 3)).mean():.1f})")


def _simulate(args):
    import os

    from tfp_dgbn.dataset.ring_files import load_rings, write_rings
    from tfp_dgbn.simulate.laws import PatternLaw, PhotonLaw
    from tfp_dgbn.simulate.rings import RingConfig

    expected = {"none": (), "heldout": ("val", "test"), "all": ("train", "val", "test")}[args.expected]
    if args.law == "pattern":
        if args.image_size != 32 or args.shards is not None or args.plots:
            raise InputError("the pattern law is 32x32 pixels, written as one .npz, without the photon law's "
                             f"figures (got --image-size {args.image_size}, --shards {args.shards}, "
                             f"--plots {args.plots})")
    elif args.two_rings:
        raise InputError("--two-rings applies to --law pattern")
    config = RingConfig.for_image_size(args.image_size) if args.image_size != 32 else RingConfig()
    law = PatternLaw(args.two_rings) if args.law == "pattern" else PhotonLaw(config)
    if args.shards is not None:
        from tfp_dgbn.dataset.ring_shards import HELDOUT, write_shards

        if args.out.endswith(".npz"):
            raise InputError(f"with --shards, --out is a directory, got {args.out!r}")
        meta = write_shards(args.out, args.n, args.shards, seed=args.seed, config=config,
                            fractions=args.splits, progress=not args.quiet)
        heldout_file = os.path.join(args.out, HELDOUT)
    else:
        meta = write_rings(args.out, args.n, seed=args.seed, law=law, fractions=args.splits,
                           expected_splits=expected, true_ring=not args.no_true_ring, progress=not args.quiet)
        heldout_file = args.out
    shards = f" (train in {args.shards} TFRecord shards)" if args.shards else ""
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in meta["splits"].items())
          + f" rings of {args.image_size}x{args.image_size} pixels (seed {args.seed}){shards}")
    if args.plots:
        from tfp_dgbn.plots.figures import save_figure
        from tfp_dgbn.plots.rings import plot_count_histograms, plot_feature_sweeps

        try:
            os.makedirs(args.plots, exist_ok=True)
            save_figure(plot_feature_sweeps(config, seed=args.seed), os.path.join(args.plots, "feature_sweeps.png"))
            held = load_rings(heldout_file, "test")[0]
            if "expected" in held:
                save_figure(plot_count_histograms(held["noised"], held["expected"]),
                            os.path.join(args.plots, "pixel_counts.png"))
        except OSError as e:
            raise InputError(f"cannot write plots to {args.plots!r}: {e}") from None
        print(f"figures in {args.plots}")


def _benchmark(args):
    import time

    from tfp_dgbn.studies.uci import KL_GRID, METHODS, Budget, uci_benchmark, write_uci_report
    from tfp_dgbn.validate import check_kl_weight

    t0 = time.time()
    for name in ("steps", "batch_size", "layers", "cv_members", "members", "num_samples", "splits", "workers"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.first_split < 0:
        raise InputError(f"--first-split must be >= 0, got {args.first_split}")
    if args.folds < 2:
        raise InputError(f"--folds must be >= 2 (cross-validation), got {args.folds}")
    grid = KL_GRID if args.kl_grid is None else tuple(check_kl_weight(w) for w in args.kl_grid)
    if len(set(grid)) != len(grid):
        raise InputError(f"--kl-grid has a weight twice: {list(grid)}")
    budget = Budget(steps=args.steps, batch=args.batch_size, layers=args.layers, folds=args.folds,
                    cv_members=args.cv_members, members=args.members, num_samples=args.num_samples,
                    seed=args.seed, grid=grid, head=args.head, refine=tuple(args.refine))
    command = "dgbn " + " ".join(args.argv)
    if args.merge:
        from tfp_dgbn.studies.uci import merge_reports

        print(merge_reports(args.merge, args.out, args.data, command))
        return
    if args.replot:
        saved = os.path.join(args.out, "uci.json")
        if not os.path.exists(saved):
            raise InputError(f"--replot re-renders a saved run, and {saved} does not exist")
        with open(saved) as f:
            print(write_uci_report(json.load(f), args.out, args.data, budget))
        return

    def report(partial):  # after each dataset, so a long run's finished datasets are on disk
        return write_uci_report(partial, args.out, args.data, budget, command, time.time() - t0)

    result = uci_benchmark(args.data, args.datasets, args.splits, tuple(args.methods or METHODS), budget,
                           export_dir=os.path.join(args.out, "models"), on_dataset=report, workers=args.workers,
                           first_split=args.first_split, split_dir=os.path.join(args.out, "splits"),
                           resume=args.resume)
    print(report(result))
    print(f"wrote {os.path.join(args.out, 'uci.json')}, uci.md and uci.png; Bayesian ensembles in "
          f"{os.path.join(args.out, 'models')}")


def _notebooks(args):
    from tfp_dgbn.notebook_runner import run_all

    for name, seconds in run_all(small=args.small, out_dir=args.out_dir).items():
        print(f"{name}: {seconds:.0f} s")
    print(f"executed notebooks with their figures in {args.out_dir}")


def load_tensorflow(verbose=False):
    """Import TensorFlow, hiding the C++ start-up lines it writes to stderr unless ``verbose``.

    Those lines (the absl pre-init warning, oneDNN, CUDA driver probing) come
    from C++ before absl's logging is set up, so ``TF_CPP_MIN_LOG_LEVEL`` does
    not silence them: stderr's file descriptor points at /dev/null while
    TensorFlow loads and probes its devices, then is restored (a failing import
    still reports its Python traceback). Python-side info logs and TFP's
    deprecation warnings are hidden too.
    """
    import warnings

    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        import tensorflow  # noqa: F401
        return
    warnings.filterwarnings("ignore", message=".*layer.add_variable. is deprecated")
    if "tensorflow" not in sys.modules:
        sys.stderr.flush()
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            import tensorflow as tf

            tf.config.list_physical_devices()  # CUDA probing logs here
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")


def _refuse(parser, args, extra):
    """Exit status 2 with one line: an option that does not apply to this task, or an unknown argument."""
    if args.command == "fit":
        from tfp_dgbn.tasks import TASKS

        known = {"--" + f.name.replace("_", "-") for t in TASKS.values() for f in _settings_fields(t.settings)}
        for item in extra:
            option = item.split("=", 1)[0]
            if option in known:
                print(f"dgbn: error: {option} does not apply to {args.task!r} "
                      f"(dgbn fit {args.task} --help lists its options)", file=sys.stderr)
                return 2
    print(f"dgbn: error: unrecognized arguments: {' '.join(extra)}", file=sys.stderr)
    return 2


def main(argv=None):
    """Entry point of ``dgbn``; returns the exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command as given (reports record it)
    if extra:
        # An option of another task is refused by name, not silently dropped nor lost in a usage dump.
        return _refuse(parser, args, extra)
    # NumPy-only commands skip TensorFlow's import (~7 s): the schedule table and a .npz simulation.
    if args.command != "schedules" and not (args.command == "simulate" and args.shards is None):
        load_tensorflow(args.verbose)
    commands = {"fit": _fit, "predict": _predict, "compare-kl": _compare_kl,
                "compare-generators": _compare_generators, "generate": _generate,
                "simulate": _simulate, "evaluate": _evaluate, "small-data": _small_data,
                "hmc-reference": _hmc_reference, "notebooks": _notebooks, "benchmark": _benchmark,
                "schedules": lambda _: print(_schedule_help())}
    try:
        commands[args.command](args)
    except (InputError, OSError) as e:  # what the user gave: a value, a path (ResumeConflict is an InputError)
        print(f"dgbn: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - reported in one line; --debug shows the traceback
        from tfp_dgbn.fit.resume import NonFiniteLoss

        if isinstance(e, NonFiniteLoss):
            print(f"dgbn: {e}; the last good checkpoint and any previous export were kept "
                  f"(try a smaller --learning-rate)", file=sys.stderr)
            return 3
        if args.debug:
            raise
        print(f"dgbn: internal error: {type(e).__name__}: {_one_line(e)} (run again with --debug for the "
              "traceback, and report it)", file=sys.stderr)
        return 1
    return 0


def _one_line(error):
    """An exception's message on one line (TensorFlow's span several)."""
    text = " ".join(str(error).split())
    return text if len(text) <= 500 else text[:497] + "..."


if __name__ == "__main__":
    sys.exit(main())
