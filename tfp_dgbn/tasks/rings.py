"""The ring task (`dgbn fit rings`, the main job): rings -> Bayesian ring generator -> exact-law evaluation.

Data: training rings from memory (simulated once from the seed), simulated on
the fly, a ``.npz`` from ``dgbn simulate`` or TFRecord shards; held-out rings
fixed per seed with their exact expected images (`heldout_data`). Model:
`tfp_dgbn.model.ring_generator.ring_generator` (features -> independent Poisson
image). Evaluation: `tfp_dgbn.evaluate.rings.evaluate_rings` (KL gap to the
exact law, ring statistics, pixel PIT). Defaults are the README's main job
(docs/ring_model.md).
"""
import os
from dataclasses import dataclass

from tfp_dgbn import seeds
from tfp_dgbn.simulate import rings
from tfp_dgbn.tasks.base import SimulatedSizes, Task, TaskData, setting
from tfp_dgbn.validate import InputError

SOURCES = ("memory", "simulate")


@dataclass
class ImageGeneratorSettings(SimulatedSizes):
    """The defaults every ring-image generator job shares (photon rings, pattern rings)."""

    epochs: int = setting(8, "training epochs")
    batch_size: int = setting(64, "global batch size (split over replicas)")
    learning_rate: float = setting(3e-3, "Adam's initial learning rate (cosine decay to 5%)")
    embedding: tuple = setting((32, 16), "units of the DenseFlipout feature embedding")
    plot_every: int = setting(1, "epochs between TensorBoard figures and posterior histograms")
    num_samples: int = setting(32, "weight draws S of the predictive in the evaluation")
    n_train: int = setting(40000, "training rings")
    n_val: int = setting(1000, "validation rings")


@dataclass
class RingSettings(ImageGeneratorSettings):
    """Settings of the ring task: `TrainSettings` with the main job's defaults, and where rings come from."""

    task: str = setting("rings", "the ring task", cli=False)
    n_train: int = setting(40000, "training rings (per epoch with --source simulate)")
    data: str = setting(None, "a .npz from dgbn simulate (its splits; same as --source FILE.npz)")
    source: str = setting(None, "training rings: memory (default: simulated once), simulate (on the fly), "
                          "a .npz, or a shard directory / manifest / glob from dgbn simulate --shards")
    fixed_epoch: bool = setting(False, "with --source simulate: the same n-train rings every epoch "
                                "(default: fresh rings every epoch)")

    def check(self):
        super().check()
        if self.data is not None and not os.path.exists(self.data):
            raise InputError(f"data file {self.data!r} does not exist (make one with dgbn simulate)")
        if self.data is not None and self.source is not None:
            raise InputError("give either data (a .npz) or source, not both")
        source = self.training_source
        if source not in (None,) + SOURCES and not (any(ch in source for ch in "*?[") or os.path.exists(source)):
            raise InputError(f"data source {source!r} does not exist (a .npz or a shard directory from dgbn "
                             "simulate, a glob of shards, 'memory' or 'simulate')")

    @property
    def training_source(self):
        """``source``, or ``data`` (a .npz) when only that is given; None means "memory"."""
        return self.source if self.source is not None else self.data


@dataclass
class RingData(TaskData):
    """A ring run's data: held-out test rings (with exact ``expected`` images) and the simulator config."""

    test: dict = None
    sim: object = None


def heldout_data(settings, sim):
    """(val, test) arrays simulated from the run's seed, stored once in ``<logdir>/heldout.npz``.

    The held-out rings (test with the exact ``expected`` images, ~7 s per 5,000)
    do not depend on the training source; a later run with the same seed,
    sizes and simulator reuses the file instead of recomputing them.
    """
    from tfp_dgbn.dataset.ring_files import load_rings, read_metadata, write_rings

    path = os.path.join(settings.logdir, "heldout.npz")
    want = {"seed": int(settings.seed), "config": sim.to_dict(),
            "splits": {"val": settings.n_val, "test": settings.n_test}}
    meta = read_metadata(path) if os.path.exists(path) else {}
    if {k: meta.get(k) for k in want} != want:
        os.makedirs(settings.logdir, exist_ok=True)
        write_rings(path, None, seed=settings.seed, config=sim, true_ring=False, progress=settings.verbose > 0,
                    sizes=want["splits"])
    return load_rings(path, "val")[0], load_rings(path, "test")[0]


def ring_inputs(settings):
    """The training source, held-out (val, test) arrays and `RingConfig` of a run.

    Sources (``settings.source``, or ``settings.data`` for a ``.npz``):
      None / "memory": ``n_train`` rings simulated from the seed, held in memory;
      "simulate": rings simulated on the fly (`SimulatedSource`, ``n_train`` per epoch);
      a ``.npz`` from ``dgbn simulate``: its splits;
      a shard directory, its manifest or a glob of its shards (``dgbn simulate --shards K``).
    Held-out rings come from the file when the source is one, else from `heldout_data`.
    """
    from tfp_dgbn.dataset.ring_files import load_rings
    from tfp_dgbn.dataset.ring_shards import heldout_splits, open_shards
    from tfp_dgbn.dataset.sources import ArraySource, SimulatedSource

    source = settings.training_source
    if source in (None,) + SOURCES:
        sim = rings.RingConfig()
        val, test = heldout_data(settings, sim)
        if source == "simulate":
            return SimulatedSource(sim, settings.seed, settings.n_train, fresh=not settings.fixed_epoch), val, test, sim
        # the same rings as the train split of a file simulated with this seed
        train = rings.simulate(settings.n_train, seeds.key(settings.seed, "train"), sim, progress=settings.verbose > 0)
        return ArraySource(train["features"], train["noised"], settings.seed, name="rings"), val, test, sim
    if str(source).endswith(".npz"):
        train, meta = load_rings(source, "train")
        if meta.get("law", "photon") != "photon":
            raise InputError(f"{source!r} holds the {meta['law']!r} ring law; `dgbn fit rings` models the photon "
                             "law's counts (write its data with dgbn simulate --law photon)")
        val, test = load_rings(source, "val")[0], load_rings(source, "test")[0]
        if "expected" not in test:
            raise InputError(f"{source!r} has no exact 'expected' images in its test split "
                             "(write it with dgbn simulate --expected heldout)")
        sim = rings.RingConfig.from_dict(meta["config"])
        return ArraySource(train["features"], train["noised"], settings.seed, name="rings"), val, test, sim
    shards = open_shards(source)
    val, test = heldout_splits(shards)
    return shards, val, test, shards.config


class RingTask(Task):
    """The Bayesian ring generator on simulated rings (module docstring)."""

    name = "rings"
    settings = RingSettings
    help = "the main job: Bayesian ring generator, evaluated against the exact noise law"
    lr_floor = 0.05
    checkpoint_every = 1
    figure_file = "rings.png"
    figure_tag = "generated_vs_simulated"
    shown = slice(0, 6)  # fixed held-out rings shown in every grid

    def prepare(self, s, progress):
        name = s.training_source
        progress("preparing data" + (f" from {name}" if name not in (None, "memory")
                                     else " (simulated, built-in default)"))
        source, val, test, sim = ring_inputs(s)
        meta = {"feature_names": list(rings.FEATURE_NAMES), "feature_ranges": [list(r) for r in sim.feature_ranges],
                "simulator_config": sim.to_dict()}
        return RingData(source, (val["features"], val["noised"].astype("float32")), meta, test=test, sim=sim)

    def build(self, s, data, kl_weight):
        from tfp_dgbn.model.ring_generator import ring_generator

        return ring_generator(data.source.distinct_examples(s.epochs), data.sim, embedding=s.embedding, hidden=s.hidden,
                              activation=s.activation, seed=s.seed, prior_scale=s.prior_scale,
                              init_scale=s.init_scale, kl_weight=kl_weight)

    def describe(self, s, data):
        return f"the ring generator ({data.source.name})"

    def figure(self, s, data, predictor):
        from tfp_dgbn.plots.rings import plot_generated_vs_simulated

        test = data.test
        return plot_generated_vs_simulated(predictor, test["features"][self.shown], test["noised"][self.shown],
                                           test["expected"][self.shown], num_samples=s.num_samples)

    def evaluate(self, s, data, predictor, progress):
        from tfp_dgbn.evaluate.rings import evaluate_rings

        test = data.test
        progress(f"evaluating on {len(test['features'])} held-out rings against the exact law "
                 f"(S = {s.num_samples} weight draws)")
        metrics = evaluate_rings(predictor, test["features"], test["noised"], test["expected"],
                                 data.source.mean_target(), data.sim, num_samples=s.num_samples, seed=s.seed)
        metrics.pop("generated")
        return metrics, {}

    def summary_lines(self, m):
        from tfp_dgbn.evaluate.two_sample import c2st_lines

        sd = m["posterior_stddev"]
        worst = max(m["ring_statistics"], key=lambda r: r["ratio"])
        return [
            f"held-out: KL gap {m['kl_gap']:.3f} +- {m['kl_gap_se']:.3f} nats/image "
            f"(feature-blind {m['kl_gap_blind']:.2f}); explained fraction {m['explained_fraction']:.3f}",
            f"NLL {m['nll']:.2f} nats/image (true law {m['nll_true']:.2f}); final KL weight "
            f"{m['final_kl_weight']:g}",
            f"ring statistics W1 / two-sample floor: worst {m['ring_w1_worst_ratio']:.2f} "
            f"({worst['statistic']}, R in [{worst['R'][0]:.1f}, {worst['R'][1]:.1f}])",
            f"pixel PIT histogram max deviation from uniform {m['pit_max_deviation']:.4f} (0.1 per bin ideal)",
            *c2st_lines(m),
            f"posterior stddev: min {sd['min']:.2g}, median {sd['median']:.2g}, max {sd['max']:.2g} (prior "
            f"{m['prior_scale']:g}); {m['seconds']:.0f} s",
        ]
