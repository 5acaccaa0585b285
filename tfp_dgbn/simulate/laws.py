"""The simulator's ring laws behind one interface, so one file writer serves both (`tfp_dgbn.dataset.ring_files`).

- `PhotonLaw`: the project's Cherenkov-style rings (`tfp_dgbn.simulate.rings`):
  Poisson photon counts, exact mean images, anti-aliased true rings.
- `PatternLaw`: the seed-pattern rings of the reference slides
  (`tfp_dgbn.simulate.pattern_rings`), one or two rings, multiplicative
  pixel noise; the second ring's presence is stored beside the features (it is
  not one of them).

A law streams chunks (`generate`: dicts of per-row arrays and ``noised``
images) and computes the noise-free and expected images from a chunk's
per-row arrays.
"""
import numpy as np

from tfp_dgbn.simulate import pattern_rings, rings
from tfp_dgbn.validate import InputError


class PhotonLaw:
    """The photon-count ring law of a `RingConfig`."""

    name = "photon"
    dtypes = {"features": "float32", "noised": "uint16", "true_ring": "float16", "expected": "float32"}
    row_arrays = ("features",)

    def __init__(self, config=None):
        self.config = config or rings.RingConfig()
        self.image_size = self.config.image_size
        self.feature_names = rings.FEATURE_NAMES

    def generate(self, n, key, chunk_size):
        """Chunks of ``features`` and ``noised`` (`rings.generate`)."""
        return rings.generate(n, key, self.config, chunk_size)

    def true_images(self, rows):
        """Anti-aliased noise-free rings of ``rows["features"]``."""
        return rings.true_rings(rows["features"].astype("float64"), self.config)

    def expected_images(self, rows):
        """Exact mean counts of ``rows["features"]``."""
        return rings.expected_images(rows["features"].astype("float64"), self.config)

    def metadata(self):
        """What the file's metadata records of the law (``config`` rebuilds it: `RingConfig.from_dict`)."""
        return {"law": self.name, "config": self.config.to_dict()}


class PatternLaw:
    """The seed-pattern ring law, one ring (6 features) or two (12)."""

    name = "pattern"
    dtypes = {"features": "float32", "noised": "float32", "present": "float32", "true_ring": "float32",
              "expected": "float32"}
    row_arrays = ("features", "present")
    image_size = pattern_rings.SIZE

    def __init__(self, two_rings=False):
        if not isinstance(two_rings, (bool, np.bool_)):
            raise InputError(f"two_rings must be True or False, got {two_rings!r}")
        self.two_rings = bool(two_rings)
        self.feature_names = pattern_rings.feature_names(self.two_rings)

    def generate(self, n, key, chunk_size):
        """Chunks of ``features``, ``present`` (the second ring's b) and ``noised``."""
        return pattern_rings.generate(n, key, self.two_rings, chunk_size)

    def true_images(self, rows):
        """The noise-free image of each row as recorded: g1 + b g2 (g for one ring)."""
        g1, g2 = pattern_rings.ring_intensities(rows["features"], self.two_rings)
        return g1 + rows["present"][:, None, None] * g2 if self.two_rings else g1

    def expected_images(self, rows):
        """E[image | features]: (g1 + g2 / 2) E[K]."""
        return pattern_rings.expected_images(rows["features"], self.two_rings)

    def metadata(self):
        """What the file's metadata records of the law."""
        return {"law": self.name, "two_rings": self.two_rings}


def law_from_metadata(meta):
    """The law a ring file was written with (files without a ``law`` entry are photon-law files)."""
    name = meta.get("law", PhotonLaw.name)
    if name == PhotonLaw.name:
        return PhotonLaw(rings.RingConfig.from_dict(meta["config"]))
    if name == PatternLaw.name:
        return PatternLaw(bool(meta.get("two_rings", False)))
    raise InputError(f"unknown ring law {name!r} in the file's metadata; known: photon, pattern")
