"""The ring job (`dgbn fit rings`): data -> Bayesian ring generator -> fit -> export -> exact-law evaluation."""
import dataclasses
import json
import os
import time
from dataclasses import dataclass

import numpy as np

import tfp_dgbn
from tfp_dgbn.atomic import atomic_file
from tfp_dgbn.evaluate_rings import evaluate_rings
from tfp_dgbn.export import export_predictive
from tfp_dgbn.fit.callbacks import FigureSummary, KLAnnealing, PosteriorSummaries, stddev_summary
from tfp_dgbn.fit.distribute import build_and_compile, finish_on_chief, make_strategy, worker_path
from tfp_dgbn.fit.resume import resumable_fit
from tfp_dgbn.fit.schedules import from_spec
from tfp_dgbn.model.ring_generator import ring_generator
from tfp_dgbn.plots import plot_history, save_figure
from tfp_dgbn.predict import model_predictor
from tfp_dgbn.simulate import rings
from tfp_dgbn.tfk import keras


@dataclass
class RingFitConfig:
    """Every setting of one ring run. Defaults are the README's main job (docs/ring_model.md).

    Attributes:
      data: a ``.npz`` from ``dgbn simulate`` (its train/val/test splits; the
        test split must hold ``expected``), or None to simulate the built-in
        default data from ``seed`` (the same rings a file with that seed holds).
      source: where training rings come from (`ring_inputs`): None or "memory"
        (simulated once, in memory), "simulate" (on the fly), a ``.npz``, or a
        shard directory / manifest / glob from ``dgbn simulate --shards``.
      fresh: with "simulate", new rings every epoch (else the same each epoch).
      n_train, n_val, n_test: rings per split when simulating (n_train: per
        epoch for "simulate").
      epochs, batch_size, learning_rate: optimisation (Adam, cosine decay to 5%).
      embedding, hidden, activation: the generator (see `ring_generator`).
      prior_scale, init_scale: prior stddev and initial posterior stddev.
      kl_schedule, kl_update: KL weight schedule spec and its update period.
      seed: seeds data, initialisation, Flipout and evaluation.
      strategy: "default", "mirrored" or "multiworker" (`tfp_dgbn.fit.distribute`);
        ``batch_size`` is the global batch.
      logdir: TensorBoard logs, checkpoint, figures, metrics.json.
      out: SavedModel export directory.
      plot_every: epochs between TensorBoard ring grids and histograms.
      num_samples: weight draws S in the evaluation's predictive mixture.
      verbose: Keras verbosity (1 = progress bar).
    """

    data: str = None
    source: str = None
    fresh: bool = True
    n_train: int = 40000
    n_val: int = 1000
    n_test: int = 5000
    epochs: int = 8
    batch_size: int = 64
    learning_rate: float = 3e-3
    embedding: tuple = (32, 16)
    hidden: tuple = (32, 32)
    activation: str = "relu"
    prior_scale: float = 1.0
    init_scale: float = 1e-3
    kl_schedule: str = "constant:weight=1"
    kl_update: str = "epoch"
    seed: int = 0
    strategy: str = "default"
    logdir: str = os.path.join("runs", "rings")
    out: str = os.path.join("saved_models", "rings")
    plot_every: int = 1
    num_samples: int = 32
    verbose: int = 1

    def __post_init__(self):
        from tfp_dgbn.fit.run import check_fit_settings

        check_fit_settings(self, ("n_val", "n_test", "epochs", "batch_size", "num_samples", "plot_every"))
        if self.data is not None and not os.path.exists(self.data):
            raise ValueError(f"data file {self.data!r} does not exist (make one with dgbn simulate)")
        _check_source(self)
        self.embedding = tuple(int(h) for h in self.embedding)
        self.hidden = tuple(int(h) for h in self.hidden)

    @property
    def training_source(self):
        """``source``, or ``data`` (a .npz) when only that is given; None means "memory"."""
        return self.source if self.source is not None else self.data

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["embedding"], d["hidden"] = list(self.embedding), list(self.hidden)
        return d


def _progress(message):
    print(f"[dgbn] {message}", flush=True)


def _check_source(config):
    if config.data is not None and config.source is not None:
        raise ValueError("give either data (a .npz) or source, not both")
    source = config.training_source
    if source in (None, "memory", "simulate"):
        return
    if not (any(ch in source for ch in "*?[") or os.path.exists(source)):
        raise ValueError(f"data source {source!r} does not exist (a .npz or a shard directory from dgbn simulate, "
                         "a glob of shards, 'memory' or 'simulate')")


def _simulate_train(n, seed, sim, progress):
    from tqdm.auto import tqdm

    parts = []
    with tqdm(total=n, unit="ring", desc="training rings", disable=not progress) as bar:
        for chunk in rings.generate(n, seed, sim):
            parts.append(chunk)
            bar.update(len(chunk["features"]))
    return {k: np.concatenate([c[k] for c in parts]) for k in ("features", "noised")}


def heldout_data(config, sim):
    """(val, test) arrays simulated from the run's seed, stored once in ``<logdir>/heldout.npz``.

    The held-out rings (test with the exact ``expected`` images, ~7 s per 5,000)
    do not depend on the training source; a later run with the same seed,
    sizes and simulator reuses the file instead of recomputing them.
    """
    from tfp_dgbn.dataset.ring_files import load_rings, read_metadata, write_rings

    path = os.path.join(config.logdir, "heldout.npz")
    want = {"seed": int(config.seed), "config": sim.to_dict(), "splits": {"val": config.n_val, "test": config.n_test}}
    meta = read_metadata(path) if os.path.exists(path) else {}
    if {k: meta.get(k) for k in want} != want:
        os.makedirs(config.logdir, exist_ok=True)
        write_rings(path, None, seed=config.seed, config=sim, true_ring=False, progress=config.verbose > 0,
                    sizes=want["splits"])
    return load_rings(path, "val")[0], load_rings(path, "test")[0]


def ring_inputs(config):
    """The training source, held-out (val, test) arrays and `RingConfig` of a run.

    Sources (``config.source``, or ``config.data`` for a ``.npz``):
      None / "memory": ``n_train`` rings simulated from the seed, held in memory;
      "simulate": rings simulated on the fly (`SimulatedSource`, ``n_train`` per epoch);
      a ``.npz`` from ``dgbn simulate``: its splits;
      a shard directory, its manifest or a glob of its shards (``dgbn simulate --shards K``).
    Held-out rings come from the file when the source is one, else from `heldout_data`.
    """
    from tfp_dgbn.dataset.ring_files import load_rings
    from tfp_dgbn.dataset.ring_shards import heldout_splits, open_shards
    from tfp_dgbn.dataset.ring_sources import ArraySource, SimulatedSource

    source = config.training_source
    progress = config.verbose > 0
    if source in (None, "memory", "simulate"):
        sim = rings.RingConfig()
        val, test = heldout_data(config, sim)
        if source == "simulate":
            return SimulatedSource(sim, config.seed, config.n_train, fresh=config.fresh), val, test, sim
        train = _simulate_train(config.n_train, (config.seed, 0), sim, progress)
        return ArraySource(train["features"], train["noised"], sim, config.seed), val, test, sim
    if str(source).endswith(".npz"):
        train, meta = load_rings(source, "train")
        val, test = load_rings(source, "val")[0], load_rings(source, "test")[0]
        if "expected" not in test:
            raise ValueError(f"{source!r} has no exact 'expected' images in its test split "
                             "(write it with dgbn simulate --expected heldout)")
        sim = rings.RingConfig.from_dict(meta["config"])
        return ArraySource(train["features"], train["noised"], sim, config.seed), val, test, sim
    shards = open_shards(source)
    val, test = heldout_splits(shards)
    return shards, val, test, shards.config


def run_ring_fit(config):
    """Train, export and evaluate the ring generator; see `RingFitConfig`.

    Returns:
      `tfp_dgbn.fit.run.FitResult`; writes ``config.out`` (SavedModel) and in
      ``config.logdir``: TensorBoard events, ``checkpoint.keras``, ``rings.png``
      (generated vs simulated), ``history.png`` (image loss, KL loss, KL weight)
      and ``metrics.json``.
    """
    from tfp_dgbn.fit.run import FitResult
    from tfp_dgbn.ring_plots import plot_generated_vs_simulated

    t0 = time.time()
    keras.utils.set_random_seed(config.seed)
    source_name = config.training_source
    _progress("preparing data" + (f" from {source_name}" if source_name not in (None, "memory")
                                  else " (simulated, built-in default)"))
    source, val, test, sim = ring_inputs(config)
    n_train = source.num_train
    schedule = from_spec(config.kl_schedule)

    def build():
        return ring_generator(n_train, sim, embedding=config.embedding, hidden=config.hidden,
                              activation=config.activation, seed=config.seed, prior_scale=config.prior_scale,
                              init_scale=config.init_scale, kl_weight=schedule(0.0))

    steps = source.steps_per_epoch(config.batch_size)
    strategy = make_strategy(config.strategy)
    model = build_and_compile(strategy, build, config.learning_rate, config.epochs * steps, alpha=0.05)

    logdir = worker_path(config.logdir, strategy)
    os.makedirs(logdir, exist_ok=True)
    metadata = {"task": "rings", "feature_names": list(rings.FEATURE_NAMES),
                "feature_ranges": [list(r) for r in sim.feature_ranges], "simulator_config": sim.to_dict(),
                "training_config": config.to_dict(), "kl_schedule": schedule.spec()}
    predictor = model_predictor(model, metadata)
    shown = slice(0, 6)  # fixed held-out rings shown in every grid

    def ring_grid(_model):
        return plot_generated_vs_simulated(predictor, test["features"][shown], test["noised"][shown],
                                           test["expected"][shown], num_samples=config.num_samples)

    annealing = KLAnnealing(schedule, update=config.kl_update)
    callbacks = [
        keras.callbacks.TensorBoard(logdir, histogram_freq=0, write_graph=False),
        PosteriorSummaries(logdir, every=config.plot_every),
        FigureSummary(logdir, ring_grid, tag="generated_vs_simulated", every=config.plot_every),
    ]
    _progress(f"fitting the ring generator ({source.name}, {config.epochs} epochs, "
              f"KL schedule {schedule.spec()}, {strategy.num_replicas_in_sync} replica(s)); "
              "image loss = nll, KL loss = kl")
    def training_data(initial_epoch):  # a resumed run continues a simulated stream where it stopped
        return source.distributed(strategy, config.batch_size, initial_epoch * steps)

    history = resumable_fit(model, annealing, config, training_data, None,
                            (val["features"], val["noised"].astype("float32")), config.epochs,
                            config.batch_size, callbacks, config.verbose, progress=_progress, strategy=strategy,
                            steps_per_epoch=steps)
    model = finish_on_chief(model, build, strategy, config.logdir)
    if model is None:  # a non-chief worker: the chief exports and evaluates
        return FitResult(None, None, history, {}, {})
    predictor = model_predictor(model, metadata)

    _progress(f"exporting SavedModel to {config.out}")
    export_predictive(model, config.out, metadata)
    _progress(f"evaluating on {len(test['features'])} held-out rings against the exact law "
              f"(S = {config.num_samples} weight draws)")
    metrics = evaluate_rings(predictor, test["features"], test["noised"], test["expected"],
                             source.mean_image(), sim, num_samples=config.num_samples, seed=config.seed)
    metrics.pop("generated")
    metrics["posterior_stddev"] = stddev_summary(model)
    metrics["final_kl_weight"] = float(model.kl_weight.numpy())
    metrics["prior_scale"] = config.prior_scale
    metrics["seconds"] = time.time() - t0
    metrics["version"] = tfp_dgbn.__version__

    paths = {"savedmodel": config.out, "logdir": config.logdir,
             "plot": os.path.join(config.logdir, "rings.png"),
             "history_plot": os.path.join(config.logdir, "history.png"),
             "metrics": os.path.join(config.logdir, "metrics.json")}
    save_figure(ring_grid(model), paths["plot"])
    save_figure(plot_history(history), paths["history_plot"])
    with atomic_file(paths["metrics"], "w") as f:
        json.dump({"metrics": metrics, "config": config.to_dict()}, f, indent=2, default=float)
    return FitResult(model, predictor, history, metrics, paths)


def summary_lines(metrics):
    """Human-readable lines of a ring run's metrics (printed by the CLI)."""
    m = metrics
    sd = m["posterior_stddev"]
    worst = max(m["ring_statistics"], key=lambda r: r["ratio"])
    return [
        f"held-out: KL gap {m['kl_gap']:.3f} +- {m['kl_gap_se']:.3f} nats/image "
        f"(feature-blind {m['kl_gap_blind']:.2f}); explained fraction {m['explained_fraction']:.3f}",
        f"NLL {m['nll']:.2f} nats/image (true law {m['nll_true']:.2f}); final KL weight {m['final_kl_weight']:g}",
        f"ring statistics W1 / two-sample floor: worst {m['ring_w1_worst_ratio']:.2f} "
        f"({worst['statistic']}, R in [{worst['R'][0]:.1f}, {worst['R'][1]:.1f}])",
        f"pixel PIT histogram max deviation from uniform {m['pit_max_deviation']:.4f} (0.1 per bin ideal)",
        f"posterior stddev: min {sd['min']:.2g}, median {sd['median']:.2g}, max {sd['max']:.2g} (prior "
        f"{m['prior_scale']:g}); {m['seconds']:.0f} s",
    ]
