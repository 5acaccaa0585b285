"""Benchmark: training throughput of the ring generator, Flipout vs its peers, side by side.

Variants (same architecture, batch 64, Adam, per-image negative ELBO):
  - tfp_dgbn Flipout (the default: tf_keras ``fit``, tf.data with prefetch);
  - the same network with deterministic layers (no KL): the arithmetic floor;
  - TFP reparameterization layers (one weight draw per batch);
  - Flipout in TFP's own two-convolution form (x M + ((x s_in) D) s_out) instead of the
    package's one matmul with a kernel per example (issue 19);
  - Flipout without prefetch (NumPy arrays into ``fit``), and with XLA ``jit_compile``;
  - PyTorch + bayesian-torch Flipout, and PyTorch deterministic (if torch is installed:
    ``pip install -r benchmarks/requirements.txt``).
Each repeat times ``--steps`` training steps of every variant in turn (interleaved, so the
machine's drift hits all alike); the table gives medians, examples/s, how far the resident
memory peaked above where each variant's steps started, and ratios to tfp_dgbn Flipout.

Goals: Flipout at most 2.0x slower than deterministic (issue 6), 1.8x (issue 19); at least 2.0x bayesian-torch.

Usage: python benchmarks/training_throughput.py [--steps 60] [--repeats 5] [--batch 64]
"""
import argparse
import os
import sys
import time

import numpy as np

from report import DEFAULT, peak_rss_mib, reset_peak_rss, write_section
from tfp_dgbn.dataset.sources import ArraySource
from tfp_dgbn.model.ring_generator import ring_generator
from tfp_dgbn.simulate import rings
from tfp_dgbn.tfk import keras

N_TRAIN = 40000


def _data(n, seed=0):
    chunk = next(rings.generate(n, seed, rings.RingConfig()))
    return chunk["features"].astype("float32"), chunk["noised"].astype("float32")


SETTLED = 10  # batches of each fit call left out of the steady-state rate (iterator start-up, first steps)


class StepClock(keras.callbacks.Callback):
    """Times the batches inside one ``fit`` call: the steady-state seconds from batch SETTLED on."""

    def on_train_begin(self, logs=None):
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())

    def steady(self):
        """(seconds, batches) from the end of batch SETTLED to the end of the last one."""
        return self.ends[-1] - self.ends[SETTLED - 1], len(self.ends) - SETTLED


def tf_variant(kind, x, y, batch, steps, prefetch=True, jit_compile=False, fused=True):
    """A function running ``steps`` training steps of one tfp_dgbn variant (warmed up once); each call
    returns the steady-state (seconds, batches) inside its ``fit`` call (`StepClock`). ``fused=False``:
    the 1x1 Flipout layers use TFP's two-convolution form instead of one matmul with per-example kernels."""
    model = ring_generator(N_TRAIN, kind=kind, seed=0)
    for layer in model.layers:
        if hasattr(layer, "fused_1x1"):
            layer.fused_1x1 = fused
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
    clock = StepClock()
    if prefetch:
        # The main job's in-memory pipeline (shuffled indices, gathered per batch, prefetched). A shuffle
        # of the images themselves refilled a buffer of every ring at each `fit` call of the timing loop.
        data = ArraySource(x, y).dataset(batch)

        def run():
            model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[clock])
            return clock.steady()
    else:
        n = steps * batch

        def run():
            model.fit(x[:n], y[:n], batch_size=batch, epochs=1, verbose=0, shuffle=True, callbacks=[clock])
            return clock.steady()
    run()  # warm up: tracing, first allocations
    return run


def torch_variant(deterministic, x, y, batch, steps):
    """The same for the PyTorch peer (bayesian-torch Flipout or plain layers)."""
    import torch
    from torch_peer import RingGenerator, ring_loss

    torch.manual_seed(0)
    model = RingGenerator(deterministic=deterministic)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(0)

    def run():
        for _ in range(steps):
            idx = torch.randint(0, len(xt), (batch,), generator=gen)
            opt.zero_grad()
            loss = ring_loss(model, xt[idx], yt[idx], N_TRAIN)
            loss.backward()
            opt.step()

    run()
    return run


def main(argv=None):
    """Run the benchmark; returns the result dict."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60, help="training steps per variant per repeat")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--out", default=DEFAULT, help="results file (this script's section is replaced)")
    args = p.parse_args(argv)
    x, y = _data(max(4096, args.steps * args.batch))  # the NumPy variant takes steps * batch distinct rings
    b, s = args.batch, args.steps
    builders = {
        "tfp_dgbn Flipout (fit, tf.data prefetch)": lambda: tf_variant("flipout", x, y, b, s),
        "deterministic, same architecture": lambda: tf_variant("deterministic", x, y, b, s),
        "TFP reparameterization": lambda: tf_variant("reparameterization", x, y, b, s),
        "Flipout, TFP's two-convolution form (before issue 19)": lambda: tf_variant("flipout", x, y, b, s,
                                                                                   fused=False),
        "Flipout, NumPy arrays into fit (no prefetch)": lambda: tf_variant("flipout", x, y, b, s, prefetch=False),
        "Flipout, XLA jit_compile": lambda: tf_variant("flipout", x, y, b, s, jit_compile=True),
        "PyTorch + bayesian-torch Flipout": lambda: torch_variant(False, x, y, b, s),
        "PyTorch deterministic": lambda: torch_variant(True, x, y, b, s),
    }
    runs, failed = {}, {}
    for name, build in builders.items():
        try:
            runs[name] = build()
        except ImportError as e:
            failed[name] = f"not installed ({e.name})"
        except Exception as e:  # e.g. an op without an XLA CPU kernel: reported, not fatal
            failed[name] = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
    times = {k: [] for k in runs}
    steady = {k: [] for k in runs}
    peaks = {k: 0.0 for k in runs}
    for r in range(args.repeats):
        for name, run in runs.items():
            start = reset_peak_rss()
            t = time.perf_counter()
            inside = run()
            times[name].append(time.perf_counter() - t)
            if inside is not None:  # Keras variants: the batches' own rate, without the call's start-up
                seconds, batches = inside
                steady[name].append(batches * b / seconds)
            peaks[name] = max(peaks[name], peak_rss_mib() - start)
        print(f"repeat {r + 1}/{args.repeats} done", flush=True)
    rate = {k: s * b / float(np.median(v)) for k, v in times.items()}
    steady = {k: float(np.median(v)) for k, v in steady.items() if v}
    # What a fit call costs besides its steady-state steps (adapter, iterator, callbacks' start and end).
    overhead = {k: times_k - s * b / steady[k] for k, times_k in
                ((k, float(np.median(times[k]))) for k in steady)}
    ref = rate["tfp_dgbn Flipout (fit, tf.data prefetch)"]
    rows = [f"## Training throughput: ring generator, batch {b} ({s} steps x {args.repeats} interleaved "
            "repeats, medians)", "",
            "| variant | examples/s | tfp_dgbn Flipout is ... x faster | steady-state examples/s inside fit "
            f"(batches {SETTLED + 1}-{s}) | per-call time besides the steps (s) | peak RSS above the step's start "
            "(MiB) |", "|---|---|---|---|---|---|"]
    for name in builders:
        if name in rate:
            inner = (f"{steady[name]:,.0f} | {overhead[name]:.3f}" if name in steady else "- | -")
            rows.append(f"| {name} | {rate[name]:,.0f} | {ref / rate[name]:.2f} | {inner} | {peaks[name]:,.0f} |")
        else:
            rows.append(f"| {name} | {failed[name]} | | | | |")
    # The goals compare steady-state rates: a job calls fit once for all its epochs, and the time a
    # 60-step call spends outside its steps varies from call to call (the per-call column).
    flip, det = steady["tfp_dgbn Flipout (fit, tf.data prefetch)"], steady["deterministic, same architecture"]
    goals = [f"- Flipout vs deterministic, steady state: Flipout is **{det / flip:.2f}x slower** (goals: <= 2.0x, "
             f"issue 6; <= 1.8x, issue 19): {'met' if det / flip <= 1.8 else 'NOT met'}; per timed call "
             f"{rate['deterministic, same architecture'] / ref:.2f}x."]
    tfp_form = "Flipout, TFP's two-convolution form (before issue 19)"
    if tfp_form in steady:
        goals.append(f"- The fused 1x1 Flipout vs TFP's two-convolution form, steady state: "
                     f"**{flip / steady[tfp_form]:.2f}x** its throughput (TFP's form is {det / steady[tfp_form]:.2f}x "
                     "the deterministic step).")
    numpy_name = "Flipout, NumPy arrays into fit (no prefetch)"
    if numpy_name in steady:
        goals.append(f"- NumPy arrays vs the index pipeline: {ref / rate[numpy_name]:.2f}x per timed call, "
                     f"{flip / steady[numpy_name]:.2f}x in the steady state; time besides the steps per call "
                     f"{overhead[numpy_name]:.3f} s (NumPy) vs {overhead['tfp_dgbn Flipout (fit, tf.data prefetch)']:.3f}"
                     " s (index pipeline).")
    peer = rate.get("PyTorch + bayesian-torch Flipout")
    if peer:
        goals.append(f"- tfp_dgbn Flipout (steady state) vs bayesian-torch: **{flip / peer:.2f}x** its throughput "
                     f"(goal >= 2.0x): {'met' if flip / peer >= 2.0 else 'NOT met'}.")
    rows += ["", *goals, "",
             f"Written by `python benchmarks/training_throughput.py` on {os.cpu_count()} cores, "
             f"{time.strftime('%Y-%m-%d')}; torch threads = TF intra-op threads = all cores.", ""]
    write_section("training_throughput", "\n".join(rows), args.out)
    return {"rate": rate, "steady": steady, "overhead": overhead, "peaks": peaks, "failed": failed}


if __name__ == "__main__":
    main(sys.argv[1:])
