"""The ring generator and the toy MLP in PyTorch with bayesian-torch: the peer of the benchmarks.

Same architecture as `tfp_dgbn.model.ring_generator` (feature encoding, ring-relative
pixel coordinates, Flipout embedding, per-pixel 1x1 Flipout convolutions whose first layer
takes the embedding's half once per image, Poisson log-likelihood) and the same loss
convention: per-image NLL + KL / N_train with the KL *summed* over weights (bayesian-torch's
own ``kl_div`` averages over weights, so it is replaced by the sum below: the same arithmetic
as TFP's analytic KL).

Needs ``pip install -r benchmarks/requirements.txt`` (torch 2.13.0 CPU, bayesian-torch).
"""
import math

import torch
from bayesian_torch.layers.base_variational_layer import BaseVariationalLayer_
from bayesian_torch.layers.flipout_layers.conv_flipout import Conv2dFlipout
from bayesian_torch.layers.flipout_layers.linear_flipout import LinearFlipout


def _kl_sum(self, mu_q, sigma_q, mu_p, sigma_p):
    kl = torch.log(sigma_p) - torch.log(sigma_q) + (sigma_q ** 2 + (mu_q - mu_p) ** 2) / (2 * sigma_p ** 2) - 0.5
    return kl.sum()


BaseVariationalLayer_.kl_div = _kl_sum  # the KL convention of tfp_dgbn: a sum over weights

INIT_RHO = math.log(math.expm1(1e-3))  # posterior stddev 1e-3 at start, as tfp_dgbn's default


def _flipout_kwargs():
    return dict(prior_mean=0.0, prior_variance=1.0, posterior_mu_init=0.0, posterior_rho_init=INIT_RHO)


class RingGenerator(torch.nn.Module):
    """features [B, 6] -> log-rate [B, S, S] (one Flipout weight draw per image)."""

    def __init__(self, image_size=32, embedding=(32, 16), hidden=(32, 32), width_range=(0.4, 1.2),
                 theta_range=(0.0, 0.35), deterministic=False):
        super().__init__()
        self.size = image_size
        self.width_range, self.theta_range = width_range, theta_range
        self.deterministic = deterministic
        dims = [8] + list(embedding)
        lin = torch.nn.Linear if deterministic else (lambda i, o: LinearFlipout(i, o, **_flipout_kwargs()))
        conv = (lambda i, o: torch.nn.Conv2d(i, o, 1)) if deterministic else (
            lambda i, o: Conv2dFlipout(i, o, 1, **_flipout_kwargs()))
        self.embed = torch.nn.ModuleList([lin(a, b) for a, b in zip(dims[:-1], dims[1:])])
        chans = [7] + list(hidden) + [1]
        self.pixel = torch.nn.ModuleList([conv(a, b) for a, b in zip(chans[:-1], chans[1:])])
        # the first pixel layer's embedding half, once per image (`tfp_dgbn.model.pixel_network`)
        self.pixel_embedding = (torch.nn.Linear(embedding[-1], chans[1], bias=False) if deterministic else
                                LinearFlipout(embedding[-1], chans[1], bias=False, **_flipout_kwargs()))
        with torch.no_grad():  # output bias at log(0.03), the mean pixel count, as in tfp_dgbn
            last = self.pixel[-1]
            (last.bias if deterministic else last.mu_bias).fill_(math.log(0.03))

    def _encode(self, f):
        s = self.size / 2.0
        x0, y0, r, w, theta, phi = f.unbind(-1)
        wm, wh = sum(self.width_range) / 2, (self.width_range[1] - self.width_range[0]) / 2
        tm, th = sum(self.theta_range) / 2, (self.theta_range[1] - self.theta_range[0]) / 2
        return torch.stack([x0 / s, y0 / s, r / s, (w - wm) / wh, (theta - tm) / th, torch.cos(phi),
                            torch.sin(phi), (x0 ** 2 + y0 ** 2) / s ** 2], -1)

    def _coordinates(self, f):
        size, s = self.size, self.size / 2.0
        axis = torch.arange(size, dtype=f.dtype) - s + 0.5
        x, y = axis.view(1, 1, size), axis.view(1, size, 1)
        x0, y0, r, _, theta, phi = (c.view(-1, 1, 1) for c in f.unbind(-1))
        u, v = x - x0 + 0 * y, y - y0 + 0 * x
        rho = torch.sqrt(u ** 2 + v ** 2 + 1e-6)
        cos_rel = (u * torch.cos(phi) + v * torch.sin(phi)) / rho
        sin_rel = (v * torch.cos(phi) - u * torch.sin(phi)) / rho
        d = (rho - r) / 2
        centre = (torch.sqrt(x ** 2 + y ** 2) / s).expand_as(u)
        return torch.stack([u / s, v / s, d, cos_rel, sin_rel, d * torch.sin(theta) * cos_rel, centre], 1)

    def _apply(self, layer, h, kl):
        if self.deterministic:
            return layer(h), kl
        out, k = layer(h)  # bayesian-torch layers return (output, KL)
        return out, kl + k

    def forward(self, f):
        """(log-rate [B, S, S], summed KL of this draw's layers)."""
        kl = f.new_zeros(())
        e = self._encode(f)
        for layer in self.embed:
            e, kl = self._apply(layer, e, kl)
            e = torch.relu(e)
        h = self._coordinates(f)
        for i, layer in enumerate(self.pixel):
            h, kl = self._apply(layer, h, kl)
            if i == 0:
                per_image, kl = self._apply(self.pixel_embedding, e, kl)
                h = h + per_image[:, :, None, None]
            if i < len(self.pixel) - 1:
                h = torch.relu(h)
        return h[:, 0], kl


def ring_loss(model, features, counts, num_train):
    """Per-image negative ELBO: Poisson NLL summed over pixels, + KL / N_train."""
    log_rate, kl = model(features)
    nll = torch.nn.functional.poisson_nll_loss(log_rate, counts, log_input=True, full=True,
                                               reduction="none").sum((1, 2)).mean()
    return nll + kl / num_train


class ToyMLP(torch.nn.Module):
    """1 -> 32 -> 32 -> 2 Flipout MLP (the toy-gaussian network), returning (loc, raw scale) draws."""

    def __init__(self, hidden=(32, 32)):
        super().__init__()
        dims = [1] + list(hidden) + [2]
        self.layers = torch.nn.ModuleList(
            [LinearFlipout(a, b, **_flipout_kwargs()) for a, b in zip(dims[:-1], dims[1:])])

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x, _ = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x
