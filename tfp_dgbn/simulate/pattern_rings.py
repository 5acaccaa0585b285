"""The seed-pattern ring law: the public ring dataset the reference slides were made with, and its exact law.

A second law of the simulator (the first, `tfp_dgbn.simulate.rings`, counts
Poisson photon hits). Its facts (issue 18):

- 32 x 32 image, pixel (i, j) with i, j in 0..31. Centre (ci, cj): integers
  uniform in [8, 24)^2. Mean radius R uniform on {6.00, 6.03, ..., 8.97}, width
  s on {0.80, 0.81, ..., 1.59}, angle theta on {0, pi/80, ..., 2 pi - pi/80},
  distortion phi on {0, 0.005, ..., 0.495}.
- For pixel p: d = p - c, r = |d|, a the polar angle of d from the i axis
  towards the j axis, in (-pi, pi]; distorted radius r' = r (1 + phi cos(a - theta));
  intensity g = exp(-(r' - R)^2 / s^2).
- Noise: every pixel is multiplied by its own independent factor K on the grid
  {0, 0.01, ..., 1.99} with P(K = v) proportional to exp(-(v - 1)^2 / 0.09)
  (a discretised Gaussian of mean 1, sd 0.3 / sqrt 2).
- Single ring (`FEATURE_NAMES`, 6 features): image = g K.
- Two rings (12 features: both rings' parameters, always given): image =
  (g1 + b g2) K with b in {0, 1}, probability 1/2 each, not among the
  features: the second ring is wholly present or wholly absent, so pixels are
  not independent given the features.

Exact law (`pixel_law`, `image_log_prob`): per pixel, the kernel scaled by g
(single ring) or the equal mixture of the kernels scaled by g1 and g1 + g2;
per image, a product law (single ring) or a two-component mixture of product
laws (two rings). Values are discrete: pixel p takes g_p v, so an image's
probability is that of its grid indices k_p = x_p / (0.01 g_p).
"""
import math

import numpy as np

from tfp_dgbn.validate import InputError, check_positive_int

SIZE = 32
FEATURE_NAMES = ("ci", "cj", "R", "s", "theta", "phi")
#: the grids of the features other than the centre: (start, step, count)
GRIDS = {"R": (6.0, 0.03, 100), "s": (0.8, 0.01, 80), "theta": (0.0, math.pi / 80, 160), "phi": (0.0, 0.005, 100)}
CENTRE_RANGE = (8, 24)  # integers ci, cj in [8, 24)
#: the noise factor's grid and its probabilities (sum 1)
K_VALUES = np.arange(200) * 0.01
K_PROBS = np.exp(-(K_VALUES - 1.0) ** 2 / 0.09)
K_PROBS /= K_PROBS.sum()


def num_features(two_rings):
    """6 for one ring, 12 for two."""
    return 2 * len(FEATURE_NAMES) if two_rings else len(FEATURE_NAMES)


def feature_names(two_rings):
    """Feature names; the second ring's carry a suffix ``2``."""
    return FEATURE_NAMES + tuple(f"{n}2" for n in FEATURE_NAMES) if two_rings else FEATURE_NAMES


def sample_features(n, rng, two_rings=False):
    """Draw n feature rows from the law's grids; float64 [n, 6] or [n, 12]."""
    n = check_positive_int(n, "n")
    rings = []
    for _ in range(2 if two_rings else 1):
        cols = [rng.integers(*CENTRE_RANGE, size=(n, 2)).astype("float64")]
        for name in FEATURE_NAMES[2:]:
            start, step, count = GRIDS[name]
            cols.append((start + step * rng.integers(0, count, size=n))[:, None])
        rings.append(np.concatenate(cols, axis=1))
    return np.concatenate(rings, axis=1)


def check_pattern_features(features, two_rings=False, name="features"):
    """Validate feature rows; returns float64 [B, 6 or 12].

    Raises:
      InputError naming the row, feature and value when the shape is wrong, a
      value is not finite, or R or s is not positive.
    """
    try:
        f = np.asarray(features, dtype="float64")
    except (TypeError, ValueError) as e:
        raise InputError(f"{name} must be numeric, got {features!r:.80}") from e
    width = num_features(two_rings)
    if f.ndim == 1 and f.shape[0] == width:
        f = f[None]
    names = feature_names(two_rings)
    if f.ndim != 2 or f.shape[1] != width:
        raise InputError(f"{name} must have shape [batch, {width}] ({', '.join(names)}), got {f.shape}")
    bad = ~np.isfinite(f)
    for k in range(0, width, len(FEATURE_NAMES)):
        bad[:, k + 2] |= ~(f[:, k + 2] > 0)
        bad[:, k + 3] |= ~(f[:, k + 3] > 0)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise InputError(f"{name}[{r}] {names[c]}={float(f[r, c])!r} must be finite (and > 0 for R and s)")
    return f


def intensity(features):
    """The noise-free ring g of each row's first six features; float64 [B, 32, 32] in [0, 1]."""
    f = np.asarray(features, "float64")
    ci, cj, radius, width, theta, phi = (f[:, k, None, None] for k in range(6))
    i = np.arange(SIZE, dtype="float64")[None, :, None]
    j = np.arange(SIZE, dtype="float64")[None, None, :]
    di, dj = i - ci, j - cj
    r = np.hypot(di, dj)
    a = np.arctan2(dj, di)  # from the i axis towards the j axis, in (-pi, pi]
    r_distorted = r * (1 + phi * np.cos(a - theta))
    return np.exp(-((r_distorted - radius) ** 2) / width ** 2)


def ring_intensities(features, two_rings=False):
    """(g1, g2) for two rings, (g, None) for one; float64 [B, 32, 32] each."""
    f = check_pattern_features(features, two_rings)
    return intensity(f[:, :6]), (intensity(f[:, 6:]) if two_rings else None)


def noised_images(features, rng, two_rings=False, return_presence=False):
    """Draw the recorded images: g K (one ring) or (g1 + b g2) K (two rings); float32 [B, 32, 32].

    With ``return_presence`` also the second ring's b in {0, 1} per image (two rings; all ones for one).
    """
    g1, g2 = ring_intensities(features, two_rings)
    b = np.ones(len(g1))
    if two_rings:
        b = rng.integers(0, 2, size=len(g1)).astype("float64")
        g1 = g1 + b[:, None, None] * g2
    k = K_VALUES[rng.choice(K_VALUES.size, size=g1.shape, p=K_PROBS)]
    images = (g1 * k).astype("float32")
    return (images, b) if return_presence else images


def expected_images(features, two_rings=False):
    """E[image | features] per pixel: (g1 + g2 / 2) E[K]; float64 [B, 32, 32]."""
    g1, g2 = ring_intensities(features, two_rings)
    mean_k = float(K_VALUES @ K_PROBS)
    return (g1 + 0.5 * g2 if two_rings else g1) * mean_k


def pixel_law(features, two_rings=False):
    """The exact law of every pixel: (values [B, 32, 32, C, 200], probabilities [C, 200]).

    C = 1 component (one ring: values g v) or 2 equally weighted ones (two
    rings: g1 v and (g1 + g2) v); probabilities are K's, the same for each
    component, to be weighted 1 / C.
    """
    g1, g2 = ring_intensities(features, two_rings)
    scales = np.stack([g1, g1 + g2], axis=-1) if two_rings else g1[..., None]
    return scales[..., None] * K_VALUES, np.tile(K_PROBS, (scales.shape[-1], 1))


G_FLOOR = 1e-25  # below it a pixel's value (<= 2e-25) cannot be told from 0 in float32 storage


def image_log_prob(images, features, two_rings=False, atol=1e-4):
    """log P(image | features) under the exact law (nats): a sum over pixels, mixed over b for two rings.

    Each pixel's value must be g_p v for a grid value v (to ``atol`` in units
    of the grid step, which covers float32 storage); a value off the grid has
    probability 0 (log prob -inf). Pixels where the ring has vanished (g_p <
    `G_FLOOR`) are left out: float32 cannot tell their values from 0.

    Args:
      images: [B, 32, 32] recorded images.
      features: [B, 6] or [B, 12].

    Returns:
      float64 [B].
    """
    x = np.asarray(images, "float64")
    g1, g2 = ring_intensities(features, two_rings)
    if x.shape != g1.shape:
        raise InputError(f"images must have shape {g1.shape}, got {x.shape}")
    logp_k = np.log(K_PROBS)
    terms = []
    for g in ([g1, g1 + g2] if two_rings else [g1]):
        seen = g >= G_FLOOR
        k = np.where(seen, x, 0.0) / np.where(seen, g * 0.01, 1.0)
        index = np.rint(k)
        ok = (np.abs(k - index) <= atol * np.maximum(1.0, index)) & (index >= 0) & (index < K_VALUES.size)
        lp = np.where(ok, logp_k[np.clip(index, 0, K_VALUES.size - 1).astype(int)], -np.inf)
        terms.append(np.where(seen, lp, 0.0).sum(axis=(1, 2)))
    if len(terms) == 1:
        return terms[0]
    return np.logaddexp(terms[0], terms[1]) - math.log(2)


def generate(n, seed, two_rings=False, chunk_size=4096):
    """Stream n rings of the law in chunks, reproducible by seed (block i from the seed sequence (len(seed), *seed, i)).

    Yields:
      dicts with ``features`` float32 [b, 6 or 12], ``noised`` float32 [b, 32, 32]
      and ``present`` float32 [b] (the second ring's b; ones for one ring).
    """
    n = check_positive_int(n, "n")
    seed = [int(s) for s in np.atleast_1d(seed)]
    for block, start in enumerate(range(0, n, chunk_size)):
        rng = np.random.default_rng([len(seed), *seed, block])
        # Rounded to float32 first: the stored features are exactly those simulated.
        features = sample_features(min(chunk_size, n - start), rng, two_rings).astype("float32").astype("float64")
        images, present = noised_images(features, rng, two_rings, return_presence=True)
        yield {"features": features.astype("float32"), "noised": images, "present": present.astype("float32")}
