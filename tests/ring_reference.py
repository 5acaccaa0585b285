"""The NumPy formulation of the exact ring image and the true ring, kept as a reference for the compiled kernels.

`tfp_dgbn.simulate.ring_kernels` computes the same two images with loops
compiled by numba. These array versions (the simulator's code before that
change) do the same math in a different order (all edge crossings of all lines
at once, merged by a sort; every sub-pixel of every pixel), so agreement
between the two tests the kernels' traversal and their band pre-selection.
"""
import math

import numpy as np
from scipy.special import ndtr

from tfp_dgbn.simulate.rings import WINDOW


def _edge_crossings(c, d, t_lo, count, size):
    start = c + t_lo * d + size / 2.0
    first = np.where(d > 0, np.floor(start) + 1, np.ceil(start) - 1)
    k = first[..., None] + np.sign(d)[..., None] * np.arange(count, dtype=c.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (k - size / 2.0 - c[..., None]) / d[..., None]
    return np.where(d[..., None] == 0, np.inf, t)


def ring_expectation(f, config, dtype="float64"):
    """Mean photon counts per pixel without background, float64 [B, size, size]; f float64 [B, 6].

    ``dtype`` of the bulk arrays: float64 for the tests; float32 is what the
    simulator used (half the time, ~1e-6 absolute accuracy per pixel).
    """
    size, m = config.image_size, config.angle_samples
    b = len(f)
    centre, a_ax, b_ax, phi = config.geometry(f)
    sigma = config.sigma_eff(f).astype(dtype)[:, None]
    alpha = (np.arange(m) + 0.5) * (2 * math.pi / m)
    u, v = a_ax[:, None] * np.cos(alpha), b_ax[:, None] * np.sin(alpha)
    cp, sp = np.cos(phi)[:, None], np.sin(phi)[:, None]
    ox, oy = u * cp - v * sp, u * sp + v * cp
    r = np.hypot(ox, oy)
    dx, dy, r = (ox / r).astype(dtype), (oy / r).astype(dtype), r.astype(dtype)
    cx, cy = (np.broadcast_to(centre[:, i, None], (b, m)).astype(dtype) for i in (0, 1))
    t_lo, t_hi = r - WINDOW * sigma, r + WINDOW * sigma
    count = int(np.ceil(2 * WINDOW * sigma.max())) + 1
    t = np.concatenate([t_lo[..., None], _edge_crossings(cx, dx, t_lo, count, size),
                        _edge_crossings(cy, dy, t_lo, count, size), t_hi[..., None]], axis=-1)
    t = np.minimum(t, t_hi[..., None])
    t.sort(axis=-1, kind="stable")
    mass = np.diff(ndtr((t - r[..., None]) / sigma[..., None]), axis=-1)
    mid = 0.5 * (t[..., 1:] + t[..., :-1])
    col = np.floor(cx[..., None] + mid * dx[..., None] + size / 2.0).astype(np.int64)
    row = np.floor(cy[..., None] + mid * dy[..., None] + size / 2.0).astype(np.int64)
    ok = (col >= 0) & (col < size) & (row >= 0) & (row < size) & (mass > 0)
    flat = (np.arange(b)[:, None, None] * size + row) * size + col
    img = np.bincount(flat[ok], weights=mass[ok], minlength=b * size * size)
    return (config.mean_photons(f[:, 2]) / m)[:, None, None] * img.reshape(b, size, size)


def expected_images(f, config, chunk_size=128, dtype="float32"):
    """The simulator's former `expected_images`: chunks of rings of similar sigma, float32 bulk arrays (with background)."""
    out = np.empty((len(f), config.image_size, config.image_size))
    order = np.argsort(config.sigma_eff(f))
    for start in range(0, len(f), chunk_size):
        part = order[start:start + chunk_size]
        out[part] = ring_expectation(f[part], config, dtype) + config.background()
    return out


def true_rings(f, config):
    """Every sub-pixel of every pixel tested against the band; float32 [B, size, size]; f float64 [B, 6]."""
    size, k = config.image_size, config.supersample
    sub = (np.arange(size * k) + 0.5) / k - size / 2.0
    centre, a_ax, b_ax, phi = config.geometry(f)
    out = np.empty((len(f), size, size), "float32")
    for i in range(len(f)):
        px, py = sub[None, :] - centre[i, 0], sub[:, None] - centre[i, 1]
        c, s = math.cos(phi[i]), math.sin(phi[i])
        u, v = px * c + py * s, -px * s + py * c
        rho = np.sqrt(u * u + v * v)
        bu, av = b_ax[i] * u, a_ax[i] * v
        with np.errstate(invalid="ignore", divide="ignore"):
            r_e = a_ax[i] * b_ax[i] * rho / np.sqrt(bu * bu + av * av)
        inside = np.abs(rho - np.nan_to_num(r_e)) <= 0.5 * f[i, 3]
        out[i] = inside.reshape(size, k, size, k).mean(axis=(1, 3))
    return out
