"""Warm-up problems with a known conditional law p(y | x) of one feature x.

- `ToyGaussian`: y | x ~ Normal(m(x), s(x)^2), m(x) = sin(2.5 x),
  s(x) = 0.15 + 0.125 (x + 1), x ~ Uniform(-1, 1): mean and width both
  depend on the feature (heteroscedastic noise).
- `ToyDiscrete`: counts y | x with rate r(x) = 1 + 9 x, x ~ Uniform(0, 1);
  law "poisson" or the over-dispersed "negbin" (variance r + r^2 / dispersion).
  Counts are capped at ``max_count`` (the top value means "max_count or more"),
  so the law is over {0, ..., max_count} and a categorical head can fit it.

`true_distribution(x)` returns the exact law as a `tfp.distributions`
object, so predicted and true can be compared exactly.
"""
from dataclasses import dataclass

import numpy as np
import tensorflow_probability as tfp

from tfp_dgbn.validate import InputError, check_features

tfd = tfp.distributions


@dataclass(frozen=True)
class ToyGaussian:
    """Heteroscedastic 1-D Gaussian noise; see module docstring."""

    x_low: float = -1.0
    x_high: float = 1.0
    name = "toy-gaussian"
    family = "normal"
    feature_names = ("x",)

    def mean(self, x):
        """Conditional mean m(x) (array like x)."""
        return np.sin(2.5 * np.asarray(x))

    def scale(self, x):
        """Conditional stddev s(x) (array like x)."""
        return 0.15 + 0.125 * (np.asarray(x) + 1.0)

    def true_distribution(self, x):
        """Exact law of y given features x [B, 1]: Normal with batch shape [B]."""
        x = check_features(x)[:, 0]
        return tfd.Normal(self.mean(x).astype("float32"), self.scale(x).astype("float32"))

    def sample(self, n, seed):
        """Draw (x [n, 1] float32, y [n] float32) with a numpy Generator seeded by ``seed``."""
        rng = np.random.default_rng(seed)
        x = rng.uniform(self.x_low, self.x_high, size=n)
        y = self.mean(x) + self.scale(x) * rng.standard_normal(n)
        return x[:, None].astype("float32"), y.astype("float32")

    def conditional_entropy(self):
        """H(y | x) = E_x[0.5 log(2 pi e s(x)^2)] in nats, by 2001-point quadrature."""
        grid = np.linspace(self.x_low, self.x_high, 2001)
        return float(np.mean(0.5 * np.log(2 * np.pi * np.e * self.scale(grid) ** 2)))


@dataclass(frozen=True)
class ToyDiscrete:
    """Feature-dependent counts (Poisson or negative binomial); see module docstring."""

    law: str = "poisson"
    dispersion: float = 4.0
    max_count: int = 29
    x_low: float = 0.0
    x_high: float = 1.0
    name = "toy-discrete"
    feature_names = ("x",)

    def __post_init__(self):
        if self.law not in ("poisson", "negbin"):
            raise InputError(f"law must be 'poisson' or 'negbin', got {self.law!r}")
        if not self.dispersion > 0:
            raise InputError(f"dispersion must be > 0, got {self.dispersion!r}")
        if int(self.max_count) < 1:
            raise InputError(f"max_count must be >= 1, got {self.max_count!r}")

    @property
    def family(self):
        return "poisson" if self.law == "poisson" else "categorical"

    def rate(self, x):
        """Conditional mean count r(x) before capping."""
        return 1.0 + 9.0 * np.asarray(x)

    def _uncapped(self, x):
        rate = self.rate(x).astype("float64")
        if self.law == "poisson":
            return tfd.Poisson(rate=rate)
        # NegativeBinomial(total_count=k, probs=p) has mean k p / (1 - p).
        return tfd.NegativeBinomial(total_count=self.dispersion, probs=rate / (rate + self.dispersion))

    def true_pmf(self, x):
        """Exact pmf over {0..max_count} (top bin = tail mass), [B, max_count + 1] float64."""
        x = check_features(x)[:, 0]
        dist = self._uncapped(x)
        k = np.arange(self.max_count, dtype="float64")[:, None]
        pmf = np.exp(dist.log_prob(k).numpy()).T
        tail = np.clip(1.0 - pmf.sum(axis=1, keepdims=True), 0.0, 1.0)
        return np.concatenate([pmf, tail], axis=1)

    def true_distribution(self, x):
        """Exact law of the capped count: a Categorical over {0..max_count}, batch [B]."""
        return tfd.Categorical(probs=self.true_pmf(x).astype("float32"))

    def sample(self, n, seed):
        """Draw (x [n, 1] float32, y [n] float32 counts capped at max_count)."""
        rng = np.random.default_rng(seed)
        x = rng.uniform(self.x_low, self.x_high, size=n)
        rate = self.rate(x)
        if self.law == "negbin":
            rate = rng.gamma(self.dispersion, rate / self.dispersion)  # Poisson-Gamma mixture
        y = np.minimum(rng.poisson(rate), self.max_count)
        return x[:, None].astype("float32"), y.astype("float32")


def _ring_toys():
    from tfp_dgbn.simulate.ring_toys import RingCount, RingResidual  # imports the ring simulator

    return {"ring-residual": RingResidual, "ring-count": RingCount}


TOYS = {"toy-gaussian": ToyGaussian, "toy-discrete": ToyDiscrete, **_ring_toys()}


def make_toy(name, **kwargs):
    """Build a warm-up problem by name: 'toy-gaussian', 'toy-discrete', 'ring-residual', 'ring-count'."""
    if name not in TOYS:
        raise InputError(f"unknown toy problem {name!r}; choose one of {sorted(TOYS)}")
    return TOYS[name](**kwargs)
