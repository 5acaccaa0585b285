"""The ``dgbn`` command line: a thin layer over the library.

  dgbn fit rings [--data rings.npz] [--epochs N] [--n-train N] [--kl-schedule SPEC]   (the main job)
  dgbn fit toy-gaussian [--epochs N] [--kl-schedule SPEC] [--logdir DIR] [--out DIR] [--seed S]
  dgbn fit TASK --strategy mirrored [--cpu-devices 2] | --strategy multiworker (cluster from TF_CONFIG)
  dgbn fit toy-discrete [--law poisson|negbin] [--head poisson|categorical] ...
  dgbn predict --model DIR --features 0.1 0.5 [--num-samples S] [--level 0.9]
  dgbn compare-kl [--n-train N] [--epochs N] [--out-dir docs/figures]   (KL strategies side by side)
  dgbn generate --model saved_models/rings --features x0 y0 R w theta phi [--n 16] --out grid.png
  dgbn simulate --n 100000 --out rings.npz [--seed S] [--image-size 32] [--plots DIR]
  dgbn simulate --n 1000000 --shards 16 --out rings/    (TFRecord shards + manifest + held-out .npz)
  dgbn fit rings --source simulate | --source rings/    (rings simulated on the fly, or streamed shards)
  dgbn notebooks [--small]  (execute notebooks/ top to bottom; outputs in runs/notebooks/)
  dgbn schedules            (list KL schedules and their parameters)

A user error (bad value, missing file) prints one line and exits with code 2; a
training run whose loss becomes NaN or infinite stops with one line and code 3.
"""
import argparse
import inspect
import json
import os
import sys

from tfp_dgbn.fit.schedules import SCHEDULES


class UserError(Exception):
    """An error in what the user asked for: reported in one line, exit code 2."""


def _schedule_help():
    lines = []
    for name, cls in SCHEDULES.items():
        params = [f"{p.name}={p.default}" for p in inspect.signature(cls.__init__).parameters.values()
                  if p.name != "self"]
        lines.append(f"  {name}:{','.join(params)}")
    return "\n".join(lines)


def build_parser():
    """The argparse parser of ``dgbn``."""
    from tfp_dgbn.fit.run import TASK_DEFAULTS, FitConfig

    d = FitConfig()
    parser = argparse.ArgumentParser(prog="dgbn", description="Deep generative Bayesian networks (TFP).",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("fit", help="train a Bayesian network, export it, evaluate it",
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         epilog="KL schedules (--kl-schedule NAME:key=value,...):\n" + _schedule_help())
    fit.add_argument("task", choices=["rings"] + list(TASK_DEFAULTS))
    fit.add_argument("--epochs", type=int, default=None, help="default: 300 (toys), 8 (rings)")
    fit.add_argument("--batch-size", type=int, default=None, help="default: 128 (toys), 64 (rings)")
    fit.add_argument("--learning-rate", type=float, default=None, help="default: 5e-3 (toys), 3e-3 (rings)")
    fit.add_argument("--n-train", type=int, default=None, help="default: 2000 (toys), 40000 (rings)")
    fit.add_argument("--data", default=None, help="rings: a .npz from dgbn simulate (same as --source FILE.npz)")
    fit.add_argument("--source", default=None, metavar="memory|simulate|PATH",
                     help="rings: training rings from memory (default: simulated once), simulated on the fly, "
                          "a .npz, or a shard directory / manifest / glob from dgbn simulate --shards")
    fit.add_argument("--fixed-epoch", action="store_true",
                     help="rings with --source simulate: the same n-train rings every epoch (default: fresh)")
    fit.add_argument("--hidden", type=int, nargs="+", default=None, help="default: 32 32")
    fit.add_argument("--kl-schedule", default=d.kl_schedule,
                     help="e.g. constant:weight=1 | linear:start=0,end=1,epochs=50 | "
                          "step:w0=0.01,w1=1,epoch=100 | adaptive:target=0.3,quantity=kl_raw")
    fit.add_argument("--kl-update", choices=["epoch", "batch"], default=d.kl_update)
    fit.add_argument("--law", choices=["poisson", "negbin"], default=d.law, help="toy-discrete law")
    fit.add_argument("--head", choices=["normal", "poisson", "categorical"], default=None)
    fit.add_argument("--seed", type=int, default=d.seed)
    fit.add_argument("--logdir", default=None, help="TensorBoard logs and figures (default runs/TASK)")
    fit.add_argument("--out", default=None, help="SavedModel directory (default saved_models/TASK)")
    fit.add_argument("--plot-every", type=int, default=None, help="default: 50 (toys), 1 (rings)")
    fit.add_argument("--strategy", choices=["default", "mirrored", "multiworker"], default="default",
                     help="tf.distribute strategy: one device, all local devices, or the cluster in TF_CONFIG")
    fit.add_argument("--cpu-devices", type=int, default=None, metavar="N",
                     help="split the CPU into N logical devices (for --strategy mirrored without GPUs)")
    fit.add_argument("--quiet", action="store_true", help="no Keras progress bar")

    pred = sub.add_parser("predict", help="predictive distribution of an exported model")
    pred.add_argument("--model", required=True)
    pred.add_argument("--features", type=float, nargs="+", required=True,
                      help="feature values; one example per value for 1-feature models")
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

    sub.add_parser("schedules", help="list KL schedules and their parameters")
    return parser


def _given(args, names):
    """The options the user gave (the rest keep the config's defaults)."""
    out = {}
    for name in names:
        value = getattr(args, name)
        if value is not None:
            out[name] = tuple(value) if isinstance(value, list) else value
    return out


def _fit_rings(args):
    from tfp_dgbn.fit.ring_run import RingFitConfig, run_ring_fit, summary_lines

    try:
        config = RingFitConfig(**_given(args, ["data", "source", "epochs", "batch_size", "learning_rate", "n_train",
                                               "hidden", "logdir", "out", "plot_every"]),
                               fresh=not args.fixed_epoch,
                               kl_schedule=args.kl_schedule, kl_update=args.kl_update, seed=args.seed,
                               strategy=args.strategy, verbose=0 if args.quiet else 1)
        result = run_ring_fit(config)
    except (ValueError, FileNotFoundError) as e:
        raise UserError(str(e)) from None
    if not result.metrics:
        print("[dgbn] worker finished; the chief exports and evaluates")
        return
    print()
    for line in summary_lines(result.metrics):
        print(line)
    for key, path in result.paths.items():
        print(f"  {key:13s} {path}")
    print(f"  open TensorBoard with: tensorboard --logdir {result.paths['logdir']}")


def _fit(args):
    from tfp_dgbn.fit.distribute import configure_cpu_devices
    from tfp_dgbn.fit.run import FitConfig, run_fit

    if args.cpu_devices is not None:
        try:
            configure_cpu_devices(args.cpu_devices)
        except ValueError as e:
            raise UserError(str(e)) from None
    if args.task == "rings":
        return _fit_rings(args)
    if args.data is not None or args.source is not None:
        raise UserError("--data and --source are for 'dgbn fit rings' (the toys simulate their own data)")
    try:
        config = FitConfig(task=args.task, kl_schedule=args.kl_schedule, kl_update=args.kl_update, law=args.law,
                           head=args.head, seed=args.seed, logdir=args.logdir, out=args.out,
                           strategy=args.strategy, verbose=0 if args.quiet else 1,
                           **_given(args, ["epochs", "batch_size", "learning_rate", "n_train", "hidden",
                                           "plot_every"]))
    except ValueError as e:
        raise UserError(str(e)) from None
    try:
        result = run_fit(config)
    except ValueError as e:  # e.g. --strategy multiworker without TF_CONFIG
        if "TF_CONFIG" not in str(e):
            raise
        raise UserError(str(e)) from None
    if not result.metrics:
        print("[dgbn] worker finished; the chief exports and evaluates")
        return
    m = result.metrics
    print(f"\nheld-out NLL {m['nll']:.4f} nats/example (true law {m['nll_true']:.4f}, "
          f"gap {m['nll_gap']:.4f} +- {m['nll_gap_se']:.4f}); "
          f"{m['coverage_level']:.0%} interval coverage {m['coverage']:.3f}"
          + (f"; TV to true pmf {m['tv']:.4f}" if "tv" in m else ""))
    for key, path in result.paths.items():
        print(f"  {key:13s} {path}")
    print(f"  open TensorBoard with: tensorboard --logdir {result.paths['logdir']}")


def _predict(args):
    import numpy as np

    import tfp_dgbn
    from tfp_dgbn.predict import central_interval, mixture

    try:
        predictor = tfp_dgbn.load(args.model)
        x = np.asarray(args.features, "float64").reshape(-1, predictor.num_features)
        # One set of weight draws serves both the distribution and its summary.
        draws = predictor.draws(x, args.num_samples)
        dist = mixture(predictor.head, draws)
        summary = predictor.summarize(draws)
        lo, hi = central_interval(dist, args.level) if dist.event_shape.rank == 0 else (None, None)
    except (ValueError, FileNotFoundError, KeyError) as e:
        raise UserError(str(e)) from None
    rows = []
    for i in range(len(x)):
        row = {"features": x[i].tolist(), **{k: float(np.ravel(v[i])[0]) for k, v in summary.items()}}
        if lo is not None:
            row[f"interval_{args.level:g}"] = [float(lo[i]), float(hi[i])]
        rows.append(row)
    print(json.dumps(rows, indent=1))


def _compare_kl(args):
    from tfp_dgbn.fit.kl_comparison import compare_kl_strategies
    from tfp_dgbn.fit.ring_run import RingFitConfig

    try:
        base = RingFitConfig(n_train=args.n_train, n_test=args.n_test, epochs=args.epochs, seed=args.seed,
                             logdir=args.logdir, out=os.path.join("saved_models", "kl_strategies"),
                             verbose=0 if args.quiet else 2)
        compare_kl_strategies(base, args.out_dir)
    except (ValueError, OSError) as e:
        raise UserError(str(e)) from None
    print(f"figure and table in {args.out_dir}; TensorBoard: tensorboard --logdir {args.logdir}")


def _generate(args):
    import numpy as np

    import tfp_dgbn
    from tfp_dgbn.plots import save_figure
    from tfp_dgbn.ring_plots import plot_generated_grid
    from tfp_dgbn.simulate.rings import NUM_FEATURES, RingConfig, check_ring_features

    try:
        predictor = tfp_dgbn.load(args.model)
        if predictor.metadata.get("task") != "rings":
            raise ValueError(f"{args.model!r} is not a ring generator (task {predictor.metadata.get('task')!r})")
        if len(args.features) % NUM_FEATURES:
            raise ValueError(f"--features takes {NUM_FEATURES} numbers per ring (x0 y0 R w theta phi), "
                             f"got {len(args.features)}")
        if args.n < 1:
            raise ValueError(f"--n must be >= 1, got {args.n}")
        features = check_ring_features(np.reshape(args.features, (-1, NUM_FEATURES)),
                                       RingConfig.from_dict(predictor.metadata["simulator_config"]))
        fig, counts = plot_generated_grid(predictor, features, args.n, seed=args.seed)
        save_figure(fig, args.out)
        if args.npz:
            from tfp_dgbn.atomic import atomic_file

            with atomic_file(args.npz, "wb") as f:
                np.savez(f, features=features.astype("float32"), generated=counts)
    except (ValueError, FileNotFoundError, OSError) as e:
        raise UserError(str(e)) from None
    print(f"wrote {args.out}: {args.n} generated rings for each of {len(features)} feature rows "
          f"(mean hits {counts.sum(axis=(2, 3)).mean():.1f})")


def _simulate(args):
    import os

    from tfp_dgbn.dataset.ring_files import load_rings, write_rings
    from tfp_dgbn.simulate.rings import RingConfig

    expected = {"none": (), "heldout": ("val", "test"), "all": ("train", "val", "test")}[args.expected]
    try:
        config = RingConfig.for_image_size(args.image_size) if args.image_size != 32 else RingConfig()
        if args.shards is not None:
            from tfp_dgbn.dataset.ring_shards import HELDOUT, write_shards

            if args.out.endswith(".npz"):
                raise ValueError(f"with --shards, --out is a directory, got {args.out!r}")
            meta = write_shards(args.out, args.n, args.shards, seed=args.seed, config=config,
                                fractions=args.splits, progress=not args.quiet)
            heldout_file = os.path.join(args.out, HELDOUT)
        else:
            meta = write_rings(args.out, args.n, seed=args.seed, config=config, fractions=args.splits,
                               expected_splits=expected, true_ring=not args.no_true_ring, progress=not args.quiet)
            heldout_file = args.out
    except (ValueError, OSError) as e:
        raise UserError(str(e)) from None
    shards = f" (train in {args.shards} TFRecord shards)" if args.shards else ""
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in meta["splits"].items())
          + f" rings of {args.image_size}x{args.image_size} pixels (seed {args.seed}){shards}")
    if args.plots:
        from tfp_dgbn.plots import save_figure
        from tfp_dgbn.ring_plots import plot_count_histograms, plot_feature_sweeps

        try:
            os.makedirs(args.plots, exist_ok=True)
            save_figure(plot_feature_sweeps(config, seed=args.seed), os.path.join(args.plots, "feature_sweeps.png"))
            held = load_rings(heldout_file, "test")[0]
            if "expected" in held:
                save_figure(plot_count_histograms(held["noised"], held["expected"]),
                            os.path.join(args.plots, "pixel_counts.png"))
        except OSError as e:
            raise UserError(f"cannot write plots to {args.plots!r}: {e}") from None
        print(f"figures in {args.plots}")


def main(argv=None):
    """Entry point of ``dgbn``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "fit":
            _fit(args)
        elif args.command == "predict":
            _predict(args)
        elif args.command == "compare-kl":
            _compare_kl(args)
        elif args.command == "generate":
            _generate(args)
        elif args.command == "simulate":
            _simulate(args)
        elif args.command == "notebooks":
            from tfp_dgbn.notebook_runner import run_all

            for name, seconds in run_all(small=args.small, out_dir=args.out_dir).items():
                print(f"{name}: {seconds:.0f} s")
            print(f"executed notebooks with their figures in {args.out_dir}")
        elif args.command == "schedules":
            print(_schedule_help())
    except UserError as e:
        print(f"dgbn: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - only the two reported kinds below; others re-raise
        from tfp_dgbn.fit.resume import NonFiniteLoss, ResumeConflict

        if isinstance(e, ResumeConflict):
            print(f"dgbn: error: {e}", file=sys.stderr)
            return 2
        if isinstance(e, NonFiniteLoss):
            print(f"dgbn: {e}; the last good checkpoint and any previous export were kept "
                  f"(try a smaller --learning-rate)", file=sys.stderr)
            return 3
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
