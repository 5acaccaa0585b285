"""A reference posterior by Hamiltonian Monte Carlo, and the variational network compared with it.

On the 1-D heteroscedastic toy (toy-gaussian), a small MLP (1-16-16-2, Normal
head, the same standardisation, prior N(0, 1) on every weight) is fitted twice
on the same training points:
  - HMC (`tfp.mcmc.HamiltonianMonteCarlo`, step size tuned by dual averaging
    during burn-in, several chains from independent starts, all in one
    `tf.function`), with convergence diagnostics: R-hat (`potential_scale_reduction`,
    split over chains) and effective sample size, for the predictive mean at
    grid points (function space: what the comparison uses) and for the weights
    (weight space has exact symmetries, hidden-unit permutations, so chains
    may sit in equivalent modes: a large weight-space R-hat does not mean the
    predictive has not converged);
  - mean-field variational inference (`bayesian_mlp`, Flipout, KL weight 1).
The predictive distributions (mixtures over posterior draws) are compared on
held-out NLL, 90% interval coverage, and predictive mean and stddev along x.
`dgbn hmc-reference` writes the figure and the table.
"""
import os
import time

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def run_hmc(target_log_prob, init, num_burnin, num_samples, num_leapfrog=16, step_size=0.01, seed=0,
            target_accept=0.75):
    """Sample with HMC from several chains at once, step size adapted during burn-in.

    Args:
      target_log_prob: callable theta [C, P] -> log density [C] (unnormalised).
      init: initial states [C, P] (one row per chain).
      num_burnin, num_samples: steps discarded (adapting the step size) and kept.
      num_leapfrog: leapfrog steps per proposal.
      step_size: initial step size.
      seed: integer seed (stateless sampling: reproducible).
      target_accept: acceptance rate the dual averaging aims at.

    Returns:
      (samples [num_samples, C, P] float64 numpy, dict of diagnostics: mean
      acceptance, final step size, weight-space R-hat and ESS summaries, seconds).
    """
    init = tf.convert_to_tensor(init, tf.float32)
    kernel = tfp.mcmc.HamiltonianMonteCarlo(target_log_prob, step_size=step_size, num_leapfrog_steps=num_leapfrog)
    kernel = tfp.mcmc.DualAveragingStepSizeAdaptation(kernel, num_adaptation_steps=int(0.8 * num_burnin),
                                                      target_accept_prob=target_accept)

    @tf.function(jit_compile=True)
    def chain():
        return tfp.mcmc.sample_chain(
            num_results=num_samples, num_burnin_steps=num_burnin, current_state=init, kernel=kernel,
            trace_fn=lambda _, pkr: (pkr.inner_results.is_accepted, pkr.inner_results.accepted_results.step_size),
            seed=tf.constant([seed, 0], tf.int32))

    t = time.time()
    samples, (accepted, step) = chain()
    seconds = time.time() - t
    rhat = tfp.mcmc.potential_scale_reduction(samples, split_chains=True).numpy()
    ess = tfp.mcmc.effective_sample_size(samples, cross_chain_dims=1).numpy()
    diag = {"acceptance": float(np.mean(accepted.numpy())), "step_size": float(np.ravel(step.numpy())[-1]),
            "weight_rhat_median": float(np.median(rhat)), "weight_rhat_max": float(np.max(rhat)),
            "weight_ess_median": float(np.median(ess)), "weight_ess_min": float(np.min(ess)), "seconds": seconds,
            "chains": int(init.shape[0]), "num_samples": int(num_samples), "num_burnin": int(num_burnin),
            "num_leapfrog": int(num_leapfrog)}
    return samples.numpy().astype("float64"), diag


class FlatMLP:
    """The MLP of `bayesian_mlp` (relu, Normal head) as a function of a flat weight vector per chain.

    Args:
      hidden: hidden widths; feature_mean, feature_std: the standardisation;
      min_scale: the Normal head's scale floor (scale = min_scale + softplus(raw)).
    """

    def __init__(self, hidden=(16, 16), feature_mean=0.0, feature_std=1.0, min_scale=1e-3):
        dims = [1] + list(hidden) + [2]
        self.shapes = [s for a, b in zip(dims[:-1], dims[1:]) for s in ((a, b), (b,))]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.num_params = sum(self.sizes)
        self.mean, self.std, self.min_scale = float(feature_mean), float(feature_std), float(min_scale)

    def params(self, theta, x):
        """(loc, scale), each [C, N], for weights theta [C, P] and features x [N, 1]."""
        theta = tf.convert_to_tensor(theta, tf.float32)
        parts = tf.split(theta, self.sizes, axis=-1)
        h = tf.broadcast_to(((tf.convert_to_tensor(x, tf.float32) - self.mean) / self.std)[None],
                            [tf.shape(theta)[0], tf.shape(x)[0], 1])
        n_layers = len(self.shapes) // 2
        for i in range(n_layers):
            w = tf.reshape(parts[2 * i], [-1, *self.shapes[2 * i]])
            b = parts[2 * i + 1][:, None, :]
            h = tf.einsum("cnd,cdk->cnk", h, w) + b
            if i < n_layers - 1:
                h = tf.nn.relu(h)
        return h[..., 0], self.min_scale + tf.nn.softplus(h[..., 1])

    def log_posterior(self, x, y, prior_scale=1.0):
        """theta [C, P] -> log p(y | x, theta) + log p(theta), [C] (the HMC target)."""
        y = tf.constant(np.asarray(y, "float32"))
        prior = tfd.Normal(0.0, float(prior_scale))

        def fn(theta):
            loc, scale = self.params(theta, x)
            return (tf.reduce_sum(tfd.Normal(loc, scale).log_prob(y), axis=-1)
                    + tf.reduce_sum(prior.log_prob(theta), axis=-1))
        return fn

    def predictive(self, draws, x):
        """Mixture over weight draws [S, P] at features x [N, 1] (batch [N])."""
        loc, scale = self.params(draws, x)  # [S, N]
        comps = tfd.Normal(tf.transpose(loc), tf.transpose(scale))
        return tfd.MixtureSameFamily(tfd.Categorical(logits=tf.zeros_like(tf.transpose(loc))), comps)


def _rhat_ess(values):
    """R-hat and ESS of a [num_samples, C, ...] array (per trailing element)."""
    v = tf.constant(values, tf.float32)
    return (tfp.mcmc.potential_scale_reduction(v, split_chains=True).numpy(),
            tfp.mcmc.effective_sample_size(v, cross_chain_dims=1).numpy())


def hmc_reference(n_train=200, hidden=(16, 16), chains=4, num_burnin=1000, num_samples=1000, num_leapfrog=16,
                  n_test=5000, vi_epochs=1500, num_draws=400, seed=0, progress=print):
    """Fit the toy by HMC and by variational inference; returns a dict of results (module docstring)."""
    from tfp_dgbn import seeds
    from tfp_dgbn.evaluate.metrics import interval_coverage, mean_se
    from tfp_dgbn.model.heads import NormalHead
    from tfp_dgbn.predict import model_predictor
    from tfp_dgbn.simulate.toys import make_toy
    from tfp_dgbn.studies.fitting import train_mlp

    toy = make_toy("toy-gaussian")
    x, y = toy.sample(n_train, seed=seeds.key(seed, "train"))
    x_test, y_test = toy.sample(n_test, seed=seeds.key(seed, "test"))
    mean, std = 0.5 * (toy.x_low + toy.x_high), (toy.x_high - toy.x_low) / np.sqrt(12.0)
    net = FlatMLP(hidden, mean, std)
    init = seeds.rng(seed, "hmc").normal(0, 0.1, (chains, net.num_params))
    progress(f"HMC: {chains} chains x ({num_burnin} burn-in + {num_samples}) steps x {num_leapfrog} leapfrog, "
             f"{net.num_params} weights, {n_train} points")
    samples, diag = run_hmc(net.log_posterior(x, y), init, num_burnin, num_samples, num_leapfrog, seed=seed)
    progress(f"HMC done in {diag['seconds']:.0f} s: acceptance {diag['acceptance']:.2f}, "
             f"step size {diag['step_size']:.3g}")
    grid = np.linspace(toy.x_low, toy.x_high, 41, dtype="float32")[:, None]
    loc_grid = net.params(samples.reshape(-1, net.num_params), grid)[0].numpy().reshape(num_samples, chains, -1)
    f_rhat, f_ess = _rhat_ess(loc_grid)
    diag.update(function_rhat_max=float(f_rhat.max()), function_rhat_median=float(np.median(f_rhat)),
                function_ess_min=float(f_ess.min()), function_ess_median=float(np.median(f_ess)))
    keep = np.linspace(0, num_samples - 1, max(num_draws // chains, 1)).astype(int)
    draws = samples[keep].reshape(-1, net.num_params)

    progress(f"variational: bayesian_mlp {list(hidden)}, {vi_epochs} epochs")
    steps = vi_epochs * int(np.ceil(n_train / min(n_train, 128)))
    model = train_mlp(x, y, NormalHead, steps, seed, feature_mean=[mean], feature_std=[std], hidden=hidden)
    vi = model_predictor(model, {"feature_names": ["x"]})

    # The feature-blind row (one Normal fitted to the training targets) is the bar any
    # predictive that learned from x must clear: a stuck sampler or an untrained fit does not.
    blind = tfd.Normal(np.float32(y.mean()) + 0 * x_test[:, 0], np.float32(y.std()))
    dists = {"HMC": net.predictive(draws, x_test), "variational": vi(x_test, len(draws)),
             "true law": toy.true_distribution(x_test), "feature-blind": blind}
    rows = {}
    for name, dist in dists.items():
        lp = dist.log_prob(y_test.astype("float32")).numpy().astype("float64")
        cov = interval_coverage(dist, y_test, (0.9,))[0.9]
        nll, nll_se = mean_se(-lp)
        rows[name] = {"nll": nll, "nll_se": nll_se, "coverage90": cov["coverage"], "coverage_se": cov["se"]}
    fine = np.linspace(toy.x_low, toy.x_high, 101, dtype="float32")[:, None]
    curves = {"HMC": net.predictive(draws, fine), "variational": vi(fine, len(draws)),
              "true law": toy.true_distribution(fine)}
    curves = {k: (np.asarray(d.mean()).ravel(), np.asarray(d.stddev()).ravel()) for k, d in curves.items()}
    hmc_sd = np.sqrt(np.var(net.params(draws, fine)[0].numpy(), axis=0))
    vi_sd = np.sqrt(np.ravel(vi.summary(fine, len(draws))["epistemic_variance"]))
    return {"diagnostics": diag, "rows": rows, "grid": fine[:, 0], "curves": curves,
            "epistemic_sd": {"HMC": hmc_sd, "variational": vi_sd}, "data": (x[:, 0], y),
            "mean_abs_diff": float(np.mean(np.abs(curves["HMC"][0] - curves["variational"][0]))),
            "config": {"n_train": n_train, "hidden": list(hidden), "num_draws": int(len(draws))}}


def write_hmc_report(result, out_dir):
    """``hmc_reference.png`` and ``hmc_reference.md`` in ``out_dir``."""
    import matplotlib.pyplot as plt

    from tfp_dgbn.atomic import atomic_file
    from tfp_dgbn.plots.figures import save_figure

    os.makedirs(out_dir, exist_ok=True)
    g, curves = result["grid"], result["curves"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].plot(*result["data"], ".", color="0.6", ms=3, label="training points")
    colours = {"HMC": "C1", "variational": "C0", "true law": "k"}
    for name, (m, s) in curves.items():
        ls = "--" if name == "true law" else "-"
        axes[0].plot(g, m, ls, color=colours[name], label=f"{name} mean")
        axes[0].plot(g, m - 1.645 * s, ls, color=colours[name], lw=0.8)
        axes[0].plot(g, m + 1.645 * s, ls, color=colours[name], lw=0.8)
    axes[0].set(xlabel="x", ylabel="y", title="Predictive mean and mean +- 1.645 sd")
    axes[0].legend(fontsize=8)
    for name in ("HMC", "variational"):
        axes[1].plot(g, curves[name][1], color=colours[name], label=f"{name}: total sd")
        axes[1].plot(g, result["epistemic_sd"][name], ":", color=colours[name], label=f"{name}: epistemic sd")
    axes[1].plot(g, curves["true law"][1], "--", color="k", label="true sd")
    axes[1].set(xlabel="x", ylabel="predictive sd", title="Uncertainty: HMC reference vs variational")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, os.path.join(out_dir, "hmc_reference.png"))
    d, c = result["diagnostics"], result["config"]
    lines = [f"# HMC reference vs variational inference (toy-gaussian, {c['n_train']} points, MLP 1-"
             f"{'-'.join(map(str, c['hidden']))}-2)", "",
             "| predictive | held-out NLL (nats) | 90% coverage |", "|---|---|---|"]
    for name, r in result["rows"].items():
        lines.append(f"| {name} | {r['nll']:.4f} +- {r['nll_se']:.4f} | {r['coverage90']:.3f} +- "
                     f"{r['coverage_se']:.3f} |")
    lines += ["", f"Mean |HMC mean - variational mean| over x: {result['mean_abs_diff']:.4f}.", "",
              f"HMC: {d['chains']} chains, {d['num_burnin']} burn-in + {d['num_samples']} kept steps, "
              f"{d['num_leapfrog']} leapfrog steps, acceptance {d['acceptance']:.2f}, step size {d['step_size']:.3g}, "
              f"{d['seconds']:.0f} s; {c['num_draws']} thinned draws in the predictive.", "",
              "| diagnostic | function space (predictive mean at 41 x) | weight space |", "|---|---|---|",
              f"| R-hat median | {d['function_rhat_median']:.3f} | {d['weight_rhat_median']:.3f} |",
              f"| R-hat max | {d['function_rhat_max']:.3f} | {d['weight_rhat_max']:.3f} |",
              f"| ESS median | {d['function_ess_median']:.0f} | {d['weight_ess_median']:.0f} |",
              f"| ESS min | {d['function_ess_min']:.0f} | {d['weight_ess_min']:.0f} |", "",
              "Weight-space R-hat can be large although the predictive has converged: hidden units can be "
              "permuted, so chains find equivalent modes. Written by `dgbn hmc-reference`.", ""]
    with atomic_file(os.path.join(out_dir, "hmc_reference.md"), "w") as f:
        f.write("\n".join(lines))
