"""Warm-up problems cut from the ring simulator, each with its exact law.

- `RingResidual` ("ring-residual", continuous): the radial residual of a hit
  (its distance along the ray minus the ideal ring radius, before binning),
  given one feature of the ring, the others held at the config's reference
  ring. Its law is Normal(0, sigma_eff(features)^2); by default the feature is
  the intrinsic width w, which doubles the spread across its range.
- `RingCount` ("ring-count", discrete): the total number of hits recorded in
  the image (ring photons on the image plus background) given the radius R of
  a reference ring. Its law is Poisson with mean sum(expected image), the sum
  of independent Poisson pixels.

Both draw their data with `tfp_dgbn.simulate.rings`, the code that makes the
ring images, and have the interface of `tfp_dgbn.simulate.toys` so `dgbn fit`
trains on them.
"""
from dataclasses import dataclass, field

import numpy as np
import tensorflow_probability as tfp

from tfp_dgbn.simulate import rings
from tfp_dgbn.validate import InputError, check_features

tfd = tfp.distributions


@dataclass(frozen=True)
class RingResidual:
    """Radial residual of ring hits given one feature; see module docstring."""

    feature: str = "w"
    config: rings.RingConfig = field(default_factory=rings.RingConfig)
    name = "ring-residual"
    family = "normal"

    def __post_init__(self):
        if self.feature not in rings.FEATURE_NAMES:
            raise InputError(f"feature must be one of {rings.FEATURE_NAMES}, got {self.feature!r}")

    @property
    def column(self):
        return rings.FEATURE_NAMES.index(self.feature)

    @property
    def feature_names(self):
        return (self.feature,)

    @property
    def x_low(self):
        return self.config.feature_ranges[self.column][0]

    @property
    def x_high(self):
        return self.config.feature_ranges[self.column][1]

    def scale(self, x):
        """sigma_eff of the reference ring with the feature set to x (pixels)."""
        x = np.asarray(x, "float64").reshape(-1)
        return self.config.sigma_eff(self.config.sweep(self.feature, x))

    def true_distribution(self, x):
        """Exact law of the residual given x [B, 1]: Normal(0, sigma_eff), batch [B]."""
        x = check_features(x)[:, 0]
        return tfd.Normal(np.zeros(len(x), "float32"), self.scale(x).astype("float32"))

    def sample(self, n, seed):
        """Draw (x [n, 1], y [n]) float32: one simulated hit per ring, x uniform over the range."""
        rng = np.random.default_rng(seed)
        x = rng.uniform(self.x_low, self.x_high, size=n)
        features = self.config.sweep(self.feature, x)
        y = np.empty(n)
        todo = np.arange(n)
        while todo.size:  # a ring can produce no photon (N ~ Poisson); draw it again
            _, photons = rings.noised_images(features[todo], rng, self.config, return_photons=True)
            first = np.unique(photons["ring"], return_index=True)
            y[todo[first[0]]] = photons["eps"][first[1]]
            todo = np.setdiff1d(todo, todo[first[0]])
        return x[:, None].astype("float32"), y.astype("float32")

    def conditional_entropy(self):
        """H(y | x) = E_x[0.5 log(2 pi e sigma(x)^2)] in nats, by 2001-point quadrature."""
        grid = np.linspace(self.x_low, self.x_high, 2001)
        return float(np.mean(0.5 * np.log(2 * np.pi * np.e * self.scale(grid) ** 2)))


@dataclass(frozen=True)
class RingCount:
    """Hits recorded in the image given the radius; see module docstring."""

    config: rings.RingConfig = field(default_factory=rings.RingConfig)
    grid_points: int = 1025
    name = "ring-count"
    family = "poisson"
    feature_names = ("R",)

    @property
    def x_low(self):
        return self.config.radius_range[0]

    @property
    def x_high(self):
        return self.config.radius_range[1]

    def _grid(self):
        # The mean is smooth in R; the exact images on a fine grid and linear
        # interpolation keep it within ~1e-5 counts (second difference / 8).
        cache = self.__dict__.get("_cache")
        if cache is None:
            grid = np.linspace(self.x_low, self.x_high, self.grid_points)
            mean = rings.expected_images(self.config.sweep("R", grid), self.config).sum(axis=(1, 2))
            cache = self.__dict__["_cache"] = (grid, mean)
        return cache

    def rate(self, x):
        """Mean hit count sum(expected image) of the reference ring with radius x."""
        grid, mean = self._grid()
        return np.interp(np.asarray(x, "float64").reshape(-1), grid, mean)

    def true_distribution(self, x):
        """Exact law of the count given x [B, 1]: Poisson, batch [B]."""
        x = check_features(x)[:, 0]
        return tfd.Poisson(rate=self.rate(x).astype("float32"))

    def sample(self, n, seed):
        """Draw (x [n, 1], y [n]) float32: R uniform, y the total of a simulated image."""
        rng = np.random.default_rng(seed)
        x = rng.uniform(self.x_low, self.x_high, size=n)
        images = rings.noised_images(self.config.sweep("R", x), rng, self.config)
        return x[:, None].astype("float32"), images.sum(axis=(1, 2)).astype("float32")
