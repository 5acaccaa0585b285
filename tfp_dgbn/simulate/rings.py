"""Cherenkov-style ring simulator: true rings, noised rings, and the exact noise law.

A ring has six features, in this order (`FEATURE_NAMES`), in pixel units with
the origin at the image centre (x to the right, y up; row index grows with y,
so plot with ``origin="lower"``):

  x0, y0  position of the ring centre
  R       mean radius
  w       intrinsic width
  theta   incidence angle (rad)
  phi     azimuth of the incidence direction (rad)

Photon model (all constants live in `RingConfig`):

- the number of photons is N ~ Poisson(nbar), nbar = photons_per_r2 * R^2
  (Frank-Tamm: the yield grows with sin^2 of the Cherenkov angle, i.e. R^2);
- photon azimuth alpha ~ Uniform[0, 2 pi); its ideal point lies on an ellipse
  with semi-axes a = R (1 + ellipticity sin theta) along phi and b = R across,
  centred at (x0, y0) + shift * R sin theta * (cos phi, sin phi);
- the photon is smeared along the ray from that centre through its ideal point
  by eps ~ Normal(0, sigma_eff^2), with
  sigma_eff = w (1 + smear_position r0^2 / s^2)(1 + smear_theta sin theta) + smear_radius R,
  r0 = |(x0, y0)| and s = image_size / 2, so the noise depends on every feature;
- background: independent Poisson counts per pixel with rate
  bg_floor + bg_peak exp(-r^2 / (2 bg_scale^2)), rising toward the centre;
- hits are binned into pixel counts; photons off the image are lost.

Because the photon count is Poisson and photons land independently, the counts
per pixel are independent Poisson variables (Poisson thinning), and adding the
independent Poisson background keeps them so: the noised image is exactly
independent Poisson per pixel with mean `expected` (docs/rings.md).
`expected_images` computes that mean by integrating each ray's Gaussian across
the pixel boundaries it crosses (exact in the radial direction) and a midpoint
rule over alpha.
"""
import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from tfp_dgbn.simulate import ring_kernels
from tfp_dgbn.validate import InputError, check_positive_int

FEATURE_NAMES = ("x0", "y0", "R", "w", "theta", "phi")
NUM_FEATURES = len(FEATURE_NAMES)
# Blocks of rings drawn from one child seed: results do not depend on how the
# caller chunks the stream.
BLOCK_SIZE = 4096


@dataclass(frozen=True)
class RingConfig:
    """All constants of the ring simulator, validated on construction.

    Attributes:
      image_size: pixels per side (>= 8).
      x0_range, y0_range, radius_range, width_range, theta_range, phi_range:
        (low, high) of the uniform feature distribution (pixels, radians).
      photons_per_r2: nbar = photons_per_r2 * R^2 (0.4: 40 photons at R = 10).
      ellipticity: a = R (1 + ellipticity sin theta).
      shift: centre displaced by shift * R * sin theta along phi.
      smear_position, smear_theta, smear_radius: coefficients of sigma_eff.
      bg_floor, bg_peak, bg_scale: background rate per pixel (counts) and its
        Gaussian fall-off length from the centre (pixels).
      angle_samples: midpoint-rule points over alpha in `expected_images`.
      supersample: sub-pixels per side when anti-aliasing the true ring.
    """

    image_size: int = 32
    x0_range: tuple = (-6.0, 6.0)
    y0_range: tuple = (-6.0, 6.0)
    radius_range: tuple = (5.0, 10.0)
    width_range: tuple = (0.4, 1.2)
    theta_range: tuple = (0.0, 0.35)
    phi_range: tuple = (0.0, 2 * math.pi)
    photons_per_r2: float = 0.4
    ellipticity: float = 0.5
    shift: float = 0.5
    smear_position: float = 1.0
    smear_theta: float = 2.0
    smear_radius: float = 0.05
    bg_floor: float = 0.002
    bg_peak: float = 0.02
    bg_scale: float = 8.0
    angle_samples: int = 720
    supersample: int = 4

    def __post_init__(self):
        _integer(self, "image_size", 8)
        for name in ("x0_range", "y0_range", "radius_range", "width_range", "theta_range", "phi_range"):
            value = getattr(self, name)
            try:
                lo, hi = (float(v) for v in value)
            except (TypeError, ValueError):
                lo = hi = math.nan
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                raise InputError(f"{name} must be (low, high) with finite low <= high, got {value!r}")
            object.__setattr__(self, name, (lo, hi))
        if self.radius_range[0] <= 0:
            raise InputError(f"radius_range must be > 0, got {self.radius_range!r}")
        if self.width_range[0] <= 0:
            raise InputError(f"width_range must be > 0, got {self.width_range!r}")
        if self.theta_range[0] < 0 or self.theta_range[1] >= math.pi / 2:
            raise InputError(f"theta_range must lie in [0, pi/2), got {self.theta_range!r}")
        half = self.image_size / 2
        for name in ("x0_range", "y0_range"):
            lo, hi = getattr(self, name)
            if lo < -half or hi > half:
                raise InputError(f"{name} {getattr(self, name)!r} leaves the image of image_size {self.image_size} "
                                 f"(|value| <= {half}); RingConfig.for_image_size rescales the ranges")
        for name in ("ellipticity", "shift", "smear_position", "smear_theta", "smear_radius", "bg_floor", "bg_peak"):
            _real(self, name, lambda v: v >= 0, ">= 0")
        for name in ("photons_per_r2", "bg_scale"):
            _real(self, name, lambda v: v > 0, "> 0")
        _integer(self, "angle_samples", 16)
        _integer(self, "supersample", 1)

    @classmethod
    def for_image_size(cls, image_size, **overrides):
        """Defaults rescaled from 32 pixels to ``image_size``: same rings, finer pixels.

        Lengths (ranges of x0, y0, R, w; bg_scale) scale with the size; the photon
        yield per R^2 and the background per pixel scale down so photon and
        background totals stay as at 32 pixels.
        """
        base, f = cls(), image_size / 32.0
        scaled = dict(image_size=image_size, bg_scale=base.bg_scale * f,
                      photons_per_r2=base.photons_per_r2 / f ** 2,
                      bg_floor=base.bg_floor / f ** 2, bg_peak=base.bg_peak / f ** 2)
        for name in ("x0_range", "y0_range", "radius_range", "width_range"):
            scaled[name] = tuple(v * f for v in getattr(base, name))
        scaled.update(overrides)
        return cls(**scaled)

    def to_dict(self):
        """JSON-ready dict (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d):
        """Inverse of `to_dict`."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    @property
    def feature_ranges(self):
        """[(low, high)] per feature, in `FEATURE_NAMES` order."""
        return [self.x0_range, self.y0_range, self.radius_range, self.width_range,
                self.theta_range, self.phi_range]

    def reference_features(self):
        """A central ring: x0 = y0 = 0, mid R, w and theta, phi = 0; float64 [6]."""
        mid = [0.5 * (lo + hi) for lo, hi in self.feature_ranges]
        return np.array([0.0, 0.0, mid[2], mid[3], mid[4], 0.0])

    def sweep(self, name, values):
        """Reference rings with feature ``name`` set to each of ``values``; float64 [len(values), 6]."""
        values = np.asarray(values, "float64").reshape(-1)
        f = np.tile(self.reference_features(), (len(values), 1))
        f[:, FEATURE_NAMES.index(name)] = values
        return f

    # --- the physics, vectorised over rings (arrays [B]) ---------------------
    def mean_photons(self, radius):
        """nbar = photons_per_r2 * R^2 (photons per ring)."""
        return self.photons_per_r2 * np.asarray(radius, "float64") ** 2

    def sigma_eff(self, features):
        """Radial smearing stddev (pixels) of each ring, features [B, 6] -> [B]."""
        f = np.asarray(features, "float64")
        r0_sq = f[:, 0] ** 2 + f[:, 1] ** 2
        s = self.image_size / 2.0
        return (f[:, 3] * (1 + self.smear_position * r0_sq / s ** 2)
                * (1 + self.smear_theta * np.sin(f[:, 4])) + self.smear_radius * f[:, 2])

    def background(self):
        """Background rate per pixel (expected counts), [image_size, image_size]."""
        c = pixel_centres(self.image_size)
        r_sq = c[None, :] ** 2 + c[:, None] ** 2
        return self.bg_floor + self.bg_peak * np.exp(-r_sq / (2 * self.bg_scale ** 2))

    def geometry(self, features):
        """Ellipse of each ring: centre [B, 2], semi-axes a, b [B], phi [B]."""
        f = np.asarray(features, "float64")
        sin_t = np.sin(f[:, 4])
        phi = f[:, 5]
        d = self.shift * f[:, 2] * sin_t
        centre = np.stack([f[:, 0] + d * np.cos(phi), f[:, 1] + d * np.sin(phi)], axis=1)
        return centre, f[:, 2] * (1 + self.ellipticity * sin_t), f[:, 2], phi


def _integer(config, name, minimum):
    value = getattr(config, name)
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and int(value) == value and value >= minimum):
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    object.__setattr__(config, name, int(value))


def _real(config, name, test, what):
    value = getattr(config, name)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not (math.isfinite(number) and test(number)):
        raise InputError(f"{name} must be finite and {what}, got {value!r}")
    object.__setattr__(config, name, number)


def pixel_centres(image_size):
    """Pixel-centre coordinates along one axis, origin at the image centre, [image_size]."""
    return np.arange(image_size) - image_size / 2.0 + 0.5


def check_ring_features(features, config, name="features"):
    """Validate ring features; returns float64 [B, 6].

    Raises:
      ValueError naming the row, feature and value when the shape is not
      [B, 6], a value is not finite, R <= 0, w <= 0, theta outside [0, pi/2),
      or the centre lies outside the image.
    """
    try:
        f = np.asarray(features, dtype="float64")
    except (TypeError, ValueError) as e:
        raise InputError(f"{name} must be numeric, got {features!r:.80}") from e
    if f.ndim == 1 and f.shape[0] == NUM_FEATURES:
        f = f[None]
    if f.ndim != 2 or f.shape[1] != NUM_FEATURES:
        raise InputError(f"{name} must have shape [batch, {NUM_FEATURES}] ({', '.join(FEATURE_NAMES)}), "
                         f"got {f.shape}")
    half = config.image_size / 2.0
    rules = [
        (~np.isfinite(f).all(axis=1), None, "is not finite"),
        (np.abs(f[:, 0]) > half, 0, f"is outside the image (|x0| <= {half})"),
        (np.abs(f[:, 1]) > half, 1, f"is outside the image (|y0| <= {half})"),
        (f[:, 2] <= 0, 2, "must be > 0 (radius)"),
        (f[:, 3] <= 0, 3, "must be > 0 (width)"),
        ((f[:, 4] < 0) | (f[:, 4] >= math.pi / 2), 4, "must lie in [0, pi/2) (incidence angle)"),
    ]
    for bad, col, what in rules:
        with np.errstate(invalid="ignore"):
            rows = np.flatnonzero(bad)
        if rows.size:
            r = int(rows[0])
            if col is None:
                col = int(np.flatnonzero(~np.isfinite(f[r]))[0])
            raise InputError(f"{name}[{r}] {FEATURE_NAMES[col]}={float(f[r, col])!r} {what}")
    return f


def sample_features(n, rng, config):
    """Draw n feature rows uniformly over the config's ranges; float64 [n, 6]."""
    lo, hi = np.array(config.feature_ranges).T
    return lo + (hi - lo) * rng.random((n, NUM_FEATURES))


def expected_images(features, config):
    """Exact mean count per pixel given the features (the noised image's law).

    Each photon azimuth alpha defines a line through the ellipse centre; the
    photon's position along it is Normal(r_alpha, sigma_eff^2) (negative values
    cross the centre). The line crosses pixel edges at known distances t_k, so
    the probability of each pixel it passes through is a difference of normal
    CDFs at consecutive crossings: exact along the line, within the window
    r_alpha +- `WINDOW` sigma (tail mass < 2e-9). The mean over alpha uses the
    midpoint rule with ``config.angle_samples`` points (docs/rings.md gives the
    accuracy). The lines are walked by a compiled kernel
    (`ring_kernels.expected_counts`), in parallel over rings.

    Args:
      features: [B, 6] (validated).
      config: `RingConfig`.

    Returns:
      float64 [B, size, size] expected counts (photons + background).
    """
    f = check_ring_features(features, config)
    centre, a_ax, b_ax, phi = config.geometry(f)
    with ring_kernels.LOCK:
        counts = ring_kernels.expected_counts(centre, a_ax, b_ax, phi, config.sigma_eff(f),
                                              config.mean_photons(f[:, 2]), config.image_size, config.angle_samples,
                                              WINDOW, ring_kernels.PHI_TABLE)
    return counts + config.background()


WINDOW = 6.0  # half-width of the integration window along each line, in sigma


def true_rings(features, config):
    """Noise-free geometric rings, anti-aliased: float32 [B, size, size] in [0, 1].

    The ring is the band of radial half-width w/2 around the ideal ellipse; a
    pixel's value is the fraction of its ``supersample^2`` sub-pixels inside the
    band (compiled: `ring_kernels.band_fractions` sub-samples only the pixels
    that can reach the band, which gives the same fractions).
    """
    f = check_ring_features(features, config)
    centre, a_ax, b_ax, phi = config.geometry(f)
    with ring_kernels.LOCK:
        return ring_kernels.band_fractions(centre, a_ax, b_ax, phi, f[:, 3], config.image_size, config.supersample)


def noised_images(features, rng, config, return_photons=False):
    """Simulate detector images: photons smeared, binned, plus Poisson background.

    Args:
      features: [B, 6] (validated).
      rng: a `numpy.random.Generator`.
      config: `RingConfig`.
      return_photons: also return the photons (for tests and warm-up toys).

    Returns:
      uint16 counts [B, size, size]; with ``return_photons`` also a dict of
      ring index, x, y and radial residual eps per photon (before binning).
    """
    f = check_ring_features(features, config)
    size, b = config.image_size, len(f)
    n = rng.poisson(config.mean_photons(f[:, 2]))
    idx = np.repeat(np.arange(b), n)
    alpha = rng.random(idx.size) * (2 * math.pi)
    eps = rng.standard_normal(idx.size) * config.sigma_eff(f)[idx]
    centre, a_ax, b_ax, phi = config.geometry(f)
    u, v = a_ax[idx] * np.cos(alpha), b_ax[idx] * np.sin(alpha)
    cp, sp = np.cos(phi[idx]), np.sin(phi[idx])
    ox, oy = u * cp - v * sp, u * sp + v * cp
    stretch = 1.0 + eps / np.hypot(ox, oy)  # move along the ray by eps
    x, y = centre[idx, 0] + ox * stretch, centre[idx, 1] + oy * stretch
    col, row = np.floor(x + size / 2.0).astype(np.int64), np.floor(y + size / 2.0).astype(np.int64)
    ok = (col >= 0) & (col < size) & (row >= 0) & (row < size)
    flat = [((idx * size + row) * size + col)[ok]]
    bg = config.background().ravel()
    n_bg = rng.poisson(bg.sum(), size=b)  # Poisson splitting: same law as per-pixel Poisson
    if n_bg.sum():
        pix = np.searchsorted(np.cumsum(bg) / bg.sum(), rng.random(n_bg.sum()), side="right")
        flat.append(np.repeat(np.arange(b), n_bg) * size * size + np.minimum(pix, bg.size - 1))
    counts = np.bincount(np.concatenate(flat), minlength=b * size * size)
    images = counts.astype(np.uint16).reshape(b, size, size)
    if return_photons:
        return images, {"ring": idx, "x": x, "y": y, "eps": eps}
    return images


def generate(n, seed, config, chunk_size=BLOCK_SIZE, true_ring=False, expected=False):
    """Stream n simulated rings in chunks (bounded memory), reproducible by seed.

    Rings are drawn in blocks of `BLOCK_SIZE`, block i from the seed
    sequence (len(seed), *seed, i), so the stream does not depend on
    ``chunk_size``, and keys of different lengths never give the same stream
    (NumPy pads seed sequences with zeros: `tfp_dgbn.seeds`).

    Args:
      n: rings to draw.
      seed: an integer or a sequence of integers (the package passes `tfp_dgbn.seeds.key`s).
      config: `RingConfig`.
      chunk_size: rings per yielded chunk (rounded to a multiple of `BLOCK_SIZE`).
      true_ring, expected: also compute those images.

    Yields:
      dicts with ``features`` float32 [b, 6], ``noised`` uint16 [b, size, size]
      and, on request, ``true_ring`` float32 and ``expected`` float32 images.
    """
    n = check_positive_int(n, "n")
    seed = [int(s) for s in np.atleast_1d(seed)]
    chunk_size = max(BLOCK_SIZE, int(chunk_size) // BLOCK_SIZE * BLOCK_SIZE)
    for start in range(0, n, chunk_size):
        parts = []
        for block_start in range(start, min(start + chunk_size, n), BLOCK_SIZE):
            rng = np.random.default_rng([len(seed), *seed, block_start // BLOCK_SIZE])
            count = min(BLOCK_SIZE, n - block_start)
            # Round to float32 first: the stored features are exactly those simulated.
            features = sample_features(count, rng, config).astype("float32").astype("float64")
            parts.append((features, noised_images(features, rng, config)))
        features = np.concatenate([p[0] for p in parts])
        chunk = {"features": features.astype("float32"), "noised": np.concatenate([p[1] for p in parts])}
        if true_ring:
            chunk["true_ring"] = true_rings(features, config)
        if expected:
            chunk["expected"] = expected_images(features, config).astype("float32")
        yield chunk


def simulate(n, seed, config=None, progress=False, **kwargs):
    """All n rings at once, in memory; see `generate` for the arrays and kwargs (``progress``: a tqdm bar)."""
    from tqdm.auto import tqdm

    config = config or RingConfig()
    with tqdm(total=n, unit="ring", desc="simulating rings", disable=not progress) as bar:
        chunks = [bar.update(len(c["features"])) or c for c in generate(n, seed, config, **kwargs)]
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
