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
      n_train, n_val, n_test: rings per split when simulating.
      epochs, batch_size, learning_rate: optimisation (Adam, cosine decay to 5%).
      embedding, hidden, activation: the generator (see `ring_generator`).
      prior_scale, init_scale: prior stddev and initial posterior stddev.
      kl_schedule, kl_update: KL weight schedule spec and its update period.
      seed: seeds data, initialisation, Flipout and evaluation.
      logdir: TensorBoard logs, checkpoint, figures, metrics.json.
      out: SavedModel export directory.
      plot_every: epochs between TensorBoard ring grids and histograms.
      num_samples: weight draws S in the evaluation's predictive mixture.
      verbose: Keras verbosity (1 = progress bar).
    """

    data: str = None
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
        self.embedding = tuple(int(h) for h in self.embedding)
        self.hidden = tuple(int(h) for h in self.hidden)

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["embedding"], d["hidden"] = list(self.embedding), list(self.hidden)
        return d


def _progress(message):
    print(f"[dgbn] {message}", flush=True)


def _simulate_split(n, seed, config, expected, progress):
    from tqdm.auto import tqdm

    chunks = list(rings.generate(n, seed, config))  # ~200,000 rings/s: no bar needed
    split = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    if expected:  # ~700 exact images/s: show progress
        parts = []
        with tqdm(total=n, unit="ring", desc="exact images", disable=not progress) as bar:
            for start in range(0, n, 250):
                parts.append(rings.expected_images(split["features"][start:start + 250], config).astype("float32"))
                bar.update(len(parts[-1]))
        split["expected"] = np.concatenate(parts)
    return split


def ring_data(config):
    """(train, val, test, RingConfig) arrays for a run: from ``config.data`` or simulated."""
    if config.data:
        from tfp_dgbn.dataset.ring_files import load_rings

        splits = [load_rings(config.data, s)[0] for s in ("train", "val", "test")]
        meta = load_rings(config.data, "test")[1]
        if "expected" not in splits[2]:
            raise ValueError(f"{config.data!r} has no exact 'expected' images in its test split "
                             "(write it with dgbn simulate --expected heldout)")
        return (*splits, rings.RingConfig.from_dict(meta["config"]))
    sim = rings.RingConfig()
    progress = config.verbose > 0
    train = _simulate_split(config.n_train, (config.seed, 0), sim, False, progress)
    val = _simulate_split(config.n_val, (config.seed, 1), sim, False, progress)
    test = _simulate_split(config.n_test, (config.seed, 2), sim, True, progress)
    return train, val, test, sim


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
    _progress("preparing data" + (f" from {config.data}" if config.data else " (simulated, built-in default)"))
    train, val, test, sim = ring_data(config)
    n_train = len(train["features"])
    schedule = from_spec(config.kl_schedule)
    model = ring_generator(n_train, sim, embedding=config.embedding, hidden=config.hidden,
                           activation=config.activation, seed=config.seed, prior_scale=config.prior_scale,
                           init_scale=config.init_scale, kl_weight=schedule(0.0))
    steps = int(np.ceil(n_train / config.batch_size))
    lr = keras.optimizers.schedules.CosineDecay(config.learning_rate, config.epochs * steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(lr))

    os.makedirs(config.logdir, exist_ok=True)
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
        keras.callbacks.TensorBoard(config.logdir, histogram_freq=0, write_graph=False),
        PosteriorSummaries(config.logdir, every=config.plot_every),
        FigureSummary(config.logdir, ring_grid, tag="generated_vs_simulated", every=config.plot_every),
    ]
    _progress(f"fitting the ring generator ({n_train} rings, {config.epochs} epochs, "
              f"KL schedule {schedule.spec()}); image loss = nll, KL loss = kl")
    history = resumable_fit(model, annealing, config, train["features"], train["noised"].astype("float32"),
                            (val["features"], val["noised"].astype("float32")), config.epochs,
                            config.batch_size, callbacks, config.verbose, progress=_progress)

    _progress(f"exporting SavedModel to {config.out}")
    export_predictive(model, config.out, metadata)
    _progress(f"evaluating on {len(test['features'])} held-out rings against the exact law "
              f"(S = {config.num_samples} weight draws)")
    metrics = evaluate_rings(predictor, test["features"], test["noised"], test["expected"],
                             train["noised"].mean(axis=0), sim, num_samples=config.num_samples, seed=config.seed)
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
    history = {k: [float(v) for v in vals] for k, vals in history.items()}
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
