"""Benchmark: S weight draws of the predictive in one graph call vs a Python loop of eager calls.

Measures, side by side and interleaved, for the toy-gaussian Bayesian MLP and the ring generator
with B = 256 feature rows:
  (a) the exported `predictive` signature (S draws as batched math over the posterior's parameters,
      in chunks of bounded memory: `BayesianModel.sample_params`),
  (a') the same export drawing one weight sample after another in a tf.while_loop, each draw a
      Flipout call in TFP's two-convolution form (the signature before issue 19:
      `export_predictive(..., vectorized=False)`, `tfp_form`),
  (b) the same model called S times eagerly from Python (`model.params_model(x)` per draw),
  (c) the same network in PyTorch + bayesian-torch, S calls under `torch.no_grad()` (if installed).
Prints tables (median seconds over repeats and ratios) and writes them to its section of docs/benchmarks.md.
Goals: the signature at least 3x faster than (b) and (c) (issue 6); issue 19: toy signature >= 5x
bayesian-torch's loop and >= 3x the loop signature (a'); ring signature >= 2x (a').

Usage: python benchmarks/predictive_inference.py [--samples 100] [--batch 256] [--repeats 7] [--ring-repeats 3]
"""
import argparse
import contextlib
import math
import os
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

import tfp_dgbn
from report import DEFAULT, peak_rss_mib, reset_peak_rss, write_section
from tfp_dgbn.export import export_predictive
from tfp_dgbn.model.heads import NormalHead
from tfp_dgbn.model.mlp import bayesian_mlp


def _torch_loop(torch_model, x, samples):
    """S forward passes of the PyTorch peer under ``no_grad`` (a Python loop: its usual way)."""
    import torch

    xt = torch.from_numpy(x)

    def one():
        out = torch_model(xt)
        return (out[0] if isinstance(out, tuple) else out).numpy()  # the ring model also returns its KL

    def run():
        with torch.no_grad():
            return np.stack([one() for _ in range(samples)])
    return run


@contextlib.contextmanager
def tfp_form(model):
    """Within: the model's 1x1 Flipout layers use TFP's two-convolution form, as before issue 19."""
    layers = [layer for layer in model.layers if hasattr(layer, "fused_1x1")]
    for layer in layers:
        layer.fused_1x1 = False
    try:
        yield
    finally:
        for layer in layers:
            layer.fused_1x1 = True


def concatenated_ring_generator(num_train, config, seed=0):
    """The ring generator as built before issue 19: the embedding copied to every pixel and
    concatenated with the coordinates in front of the first 1x1 layer (the same weights, the
    same law; `tfp_dgbn.model.pixel_network` computes that layer's embedding half once per image)."""
    from tfp_dgbn.model.bayesian_model import BayesianModel
    from tfp_dgbn.model.heads import PoissonHead
    from tfp_dgbn.model.layers import conv2d_layer, dense_layer
    from tfp_dgbn.model.ring_generator import RingCoordinates, RingFeatureEncoding
    from tfp_dgbn.simulate.rings import NUM_FEATURES
    from tfp_dgbn.tfk import keras

    class BroadcastToPixels(keras.layers.Layer):
        def call(self, e):
            return tf.tile(e[:, None, None, :], [1, config.image_size, config.image_size, 1])

    common = dict(num_train=num_train, prior_scale=1.0, init_scale=1e-3)
    features = keras.Input(shape=(NUM_FEATURES,))
    e = RingFeatureEncoding(config.image_size, config.width_range, config.theta_range)(features)
    for i, units in enumerate((32, 16)):
        e = dense_layer("flipout", units, seed=seed + 10 * i, activation="relu", **common)(e)
    h = keras.layers.Concatenate()([RingCoordinates(config.image_size)(features), BroadcastToPixels()(e)])
    for i, filters in enumerate((32, 32)):
        h = conv2d_layer("flipout", filters, 1, seed=seed + 100 + 10 * i, activation="relu", **common)(h)
    h = conv2d_layer("flipout", 1, 1, seed=seed + 200, bias_loc=math.log(0.03), **common)(h)
    size = config.image_size
    return BayesianModel(features, PoissonHead(event_shape=(size, size))(h))


def compare(model, torch_model, x, samples, repeats, before=None):
    """Median seconds of S draws: the export's signature, the loop signature of ``before`` (default:
    the same model), an eager loop, and the torch loop (if any)."""
    with tempfile.TemporaryDirectory() as tmp:
        sigs = {}
        for name, vectorized in (("graph", None), ("graph_loop", False)):
            which = model if name == "graph" or before is None else before
            with tfp_form(which) if name == "graph_loop" else contextlib.nullcontext():
                export_predictive(which, os.path.join(tmp, name), vectorized=vectorized)
            sigs[name] = tfp_dgbn.load(os.path.join(tmp, name)).saved_model.signatures["predictive"]
        xs, s = tf.constant(x), tf.constant(samples)

        def graph():
            return {k: v.numpy() for k, v in sigs["graph"](features=xs, num_samples=s).items()}

        def graph_loop():
            return {k: v.numpy() for k, v in sigs["graph_loop"](features=xs, num_samples=s).items()}

        def eager():
            return np.stack([model.params_model(xs).numpy() for _ in range(samples)])

        methods = {"graph": graph, "graph_loop": graph_loop, "eager": eager}
        if torch_model is not None:
            methods["torch"] = _torch_loop(torch_model, x, samples)
        for fn in methods.values():
            fn()  # warm up (tracing, first allocation)
        times = {k: [] for k in methods}
        peaks = {k: 0.0 for k in methods}
        for _ in range(repeats):  # interleaved, so drift hits all alike
            for name, fn in methods.items():
                start = reset_peak_rss()
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
                peaks[name] = max(peaks[name], peak_rss_mib() - start)
    return {k: float(np.median(v)) for k, v in times.items()}, peaks


def _torch_models():
    try:
        import torch
        from torch_peer import RingGenerator, ToyMLP
    except ImportError:
        return None, None
    torch.manual_seed(0)
    return ToyMLP(), RingGenerator()


LABELS = {"graph": "SavedModel `predictive` signature (one call, vectorised draws)",
          "graph_loop": ("the same signature drawing one weight sample after another "
                         "(tf.while_loop; TFP Flipout form: before issue 19)"),
          "eager": "Python loop of eager tf_keras model calls",
          "torch": "PyTorch + bayesian-torch, Python loop under `no_grad`"}


def _table(title, med, peaks, samples):
    rows = [title, "", "| method | median s | draws/s | signature is ... x faster | peak RSS above the call's start "
                       "(MiB) |", "|---|---|---|---|---|"]
    for k, v in med.items():
        rows.append(f"| {LABELS[k]} | {v:.4f} | {samples / v:,.0f} | {v / med['graph']:.1f} | {peaks[k]:,.0f} |")
    return rows


def main(argv=None):
    """Run the benchmark; returns the result dict."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--ring-repeats", type=int, default=3, help="repeats for the (slower) ring generator")
    p.add_argument("--eval-rings", type=int, default=2000, help="held-out rings of the ring-evaluation timing")
    p.add_argument("--out", default=DEFAULT, help="results file (this script's section is replaced)")
    args = p.parse_args(argv)
    torch_mlp, torch_ring = _torch_models()

    model = bayesian_mlp(1, NormalHead(), 2000, hidden=(32, 32), seed=0)
    x = np.random.default_rng(0).uniform(-1, 1, (args.batch, 1)).astype("float32")
    toy, toy_peaks = compare(model, torch_mlp, x, args.samples, args.repeats)

    from tfp_dgbn.model.ring_generator import ring_generator
    from tfp_dgbn.simulate import rings

    config = rings.RingConfig()
    features = rings.sample_features(args.batch, np.random.default_rng(0), config).astype("float32")
    ring, ring_peaks = compare(ring_generator(40000, config, seed=0), torch_ring, features, args.samples,
                               args.ring_repeats, before=concatenated_ring_generator(40000, config))

    rows = _table(f"## Predictive inference, S = {args.samples} weight draws, batch {args.batch}", toy, toy_peaks,
                  args.samples)
    rows[0] += f" (toy MLP 1-32-32-2, {args.repeats} interleaved repeats, medians)"
    rows += [""] + _table(f"Ring generator, 32x32 images ({args.ring_repeats} interleaved repeats, medians):",
                          ring, ring_peaks, args.samples)
    goals = []
    for name, med in (("toy MLP", toy), ("ring generator", ring)):
        bars = {"toy MLP": {"graph_loop": 3, "eager": 3, "torch": 5}, "ring generator": {"graph_loop": 2, "eager": 3,
                                                                                           "torch": 3}}[name]
        for other, label in (("graph_loop", "the loop signature"), ("eager", "the eager loop"),
                             ("torch", "bayesian-torch's no_grad loop")):
            if other in med:
                r = med[other] / med["graph"]
                goals.append(f"- {name}: signature vs {label}: **{r:.1f}x** (goal >= {bars[other]}x): "
                             f"{'met' if r >= bars[other] else 'NOT met'}.")
    if "torch" not in toy:
        goals.append("- bayesian-torch not installed (pip install -r benchmarks/requirements.txt): not measured.")
    evaluation = ring_evaluation(args.eval_rings)
    ratio = evaluation["vectorized"] / evaluation["before"]
    rows += ["", f"Ring evaluation as the main job runs it (`evaluate_rings`: {args.eval_rings:,} held-out rings, "
                 "32 draws, untrained generator; one run each, after a warm-up call):", "",
             "| generator | weight draws | seconds |", "|---|---|---|",
             f"| before issue 19 (embedding concatenated at every pixel) | one after another (tf.while_loop, TFP's "
             f"Flipout form) | {evaluation['before']:.1f} |",
             f"| today's | one after another (tf.while_loop, TFP's Flipout form) | {evaluation['loop']:.1f} |",
             f"| today's | vectorised | {evaluation['vectorized']:.1f} |", "",
             f"- evaluation: today's takes **{ratio:.2f}x** the time before issue 19 (goal: halved, <= 0.5x): "
             f"{'met' if ratio <= 0.5 else 'NOT met'}; the vectorised draws alone: "
             f"{evaluation['vectorized'] / evaluation['loop']:.2f}x today's loop."]
    rows += ["", *goals, "",
             "The vectorised draws sample each layer's S kernels and biases at once (exact, independent "
             "posterior draws) and run the network on a draw-major batch of draws x examples rows, in chunks of "
             "at most 24 MiB of activations (`CHUNK_BYTES`). The loop rows draw one sample after another with "
             "TFP's two-convolution Flipout form, as before issue 19; for the ring generator they run the network "
             "as it was then (`concatenated_ring_generator`: the embedding copied to every pixel).",
             f"Written by `python benchmarks/predictive_inference.py` on {os.cpu_count()} cores, "
             f"{time.strftime('%Y-%m-%d')}.", ""]
    write_section("predictive_inference", "\n".join(rows), args.out)
    return {"toy": toy, "ring": ring, "peaks": {"toy": toy_peaks, "ring": ring_peaks}, "evaluation": evaluation}


def ring_evaluation(n):
    """Seconds of `evaluate_rings` on ``n`` held-out rings: the generator before issue 19 with its draws in a
    loop, and today's with the loop and with vectorised draws (dict: before, loop, vectorized)."""
    from tfp_dgbn import seeds
    from tfp_dgbn.evaluate.rings import evaluate_rings
    from tfp_dgbn.model.ring_generator import ring_generator
    from tfp_dgbn.predict import model_predictor
    from tfp_dgbn.simulate import rings

    config = rings.RingConfig()
    data = rings.simulate(n, seed=seeds.key(0, "test"), config=config, expected=True)
    today = ring_generator(40000, config, seed=0)
    seconds = {}
    for name, model, vectorized in (("before", concatenated_ring_generator(40000, config), False),
                                    ("loop", today, False), ("vectorized", today, None)):
        with tfp_form(model) if not vectorized else contextlib.nullcontext():  # the loop as before issue 19
            predictor = model_predictor(model, vectorized=vectorized)
            args = (predictor, data["features"], data["noised"], data["expected"], data["expected"].mean(0), config)
            # warm-up: tracing, with the evaluation's own batch of 250 rings (a smaller batch traces again)
            evaluate_rings(predictor, data["features"][:250], data["noised"][:250], data["expected"][:250],
                           data["expected"].mean(0), config, pit_images=50, c2st=False)
            t = time.perf_counter()
            evaluate_rings(*args, c2st=False)  # the work of the evaluation before issue 18's classifier test
            seconds[name] = time.perf_counter() - t
    return seconds


if __name__ == "__main__":
    main(sys.argv[1:])
