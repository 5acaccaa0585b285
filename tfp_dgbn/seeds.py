"""One seed tree for every random stream of the package: children that cannot coincide.

NumPy's `SeedSequence` pads its entropy with zeros, so ``default_rng([s, 1, 0])``
and ``default_rng([s, 1])`` are the same stream: keys of different lengths can
collide (a worker's training batch was once a copy of the validation rings).
Every stream here is keyed ``[seed, role, len(path), *path]``: two keys differ
in the seed, the role, the path length or the path itself, always at a
position both have, so no two streams coincide. `tfp_dgbn.simulate.rings.generate`
prefixes its key's length before the block index for the same reason.

Roles (docs/data_sources.md has the tree): training, validation and test data;
rings simulated on the fly (per input pipeline and step) and TFRecord shards;
evaluation draws, PIT randomisation, out-of-range rows, cross-validation folds,
held-out rows of a table, HMC starting points.
"""
import numpy as np

from tfp_dgbn.validate import InputError

ROLES = {"train": 1, "val": 2, "test": 3, "stream": 4, "shard": 5, "evaluate": 6, "pit": 7, "ood": 8, "folds": 9,
         "holdout": 10, "hmc": 11, "early-stopping": 12, "calibration": 13}


def key(seed, role, *path):
    """The entropy of stream ``role`` / ``path`` under ``seed``: a list of non-negative ints.

    Args:
      seed: the run's integer seed (>= 0).
      role: a name in `ROLES`.
      *path: integers below the role (a split's size, a worker and a step, a fold, ...).
    """
    if role not in ROLES:
        raise InputError(f"unknown seed role {role!r}; choose one of {sorted(ROLES)}")
    return [int(seed), ROLES[role], len(path), *(int(p) for p in path)]


def rng(seed, role, *path):
    """A NumPy Generator for stream ``role`` / ``path`` under ``seed`` (see `key`)."""
    return np.random.default_rng(key(seed, role, *path))
