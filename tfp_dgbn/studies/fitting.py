"""What the studies share: a network trained for a fixed number of steps, its predictive log-density, and
K-fold cross-validation of one knob on a training set alone.

Studies fit hundreds of small networks, so they skip the job runner's files
(exports, logs, checkpoints) but build from the same pieces: `bayesian_mlp`,
the `ArraySource` loader, and `build_and_compile` (Adam, cosine decay).
"""
import numpy as np

from tfp_dgbn import seeds
from tfp_dgbn.dataset.sources import ArraySource
from tfp_dgbn.fit.distribute import build_and_compile, make_strategy
from tfp_dgbn.model.mlp import bayesian_mlp
from tfp_dgbn.predict import members, model_predictor
from tfp_dgbn.tfk import keras
from tfp_dgbn.validate import InputError

#: training steps per call of the compiled train function in `train_mlp`
STEPS_PER_EXECUTION = 100


def train_mlp(x, y, make_head, steps, seed, batch=128, learning_rate=5e-3, feature_mean=None, feature_std=None, **build):
    """A `bayesian_mlp` trained for ``steps`` gradient steps on (x, y).

    Args:
      x, y: training inputs [n, D] and targets [n].
      make_head: callable returning a fresh output head (`tfp_dgbn.model.heads`); a head
        instance is a layer, and a layer shared by two models belongs to neither.
      steps: gradient steps (one Keras epoch over a reshuffled, repeated
        stream: the same passes over the data as epochs of ceil(n / batch)
        steps, without Keras's per-epoch overhead, 2.3x faster at n = 50).
      seed: seeds initialisation, Flipout and the shuffle.
      batch: batch size (at most n).
      learning_rate: Adam's initial rate (cosine decay to 10%).
      feature_mean, feature_std: the inputs' standardisation (default: the sample's).
      **build: further `bayesian_mlp` arguments (kind, hidden, kl_weight, dropout, output_bias, ...).

    Returns:
      The trained `BayesianModel`.
    """
    x = np.asarray(x, "float32")
    keras.utils.set_random_seed(seed)
    mean = x.mean(axis=0) if feature_mean is None else feature_mean
    std = np.maximum(x.std(axis=0), 1e-6) if feature_std is None else feature_std

    def make():
        return bayesian_mlp(x.shape[1], make_head(), len(y), seed=seed, feature_mean=mean, feature_std=std, name="study",
                            **build)

    # many steps per call of the compiled train function: a small network's step is mostly Python and
    # dispatch overhead (benchmarks/study_training.py), and no callback watches single batches here
    model = build_and_compile(make_strategy(), make, learning_rate, int(steps), alpha=0.1,
                              steps_per_execution=min(int(steps), STEPS_PER_EXECUTION))
    model.fit(ArraySource(x, y, seed).dataset(min(len(y), batch)), steps_per_epoch=int(steps), epochs=1, verbose=0)
    return model


def log_predictive(model, x, y, num_samples, stochastic=True):
    """Per-example log predictive density [n] (float64) and the predictive distribution.

    ``model`` may be a list (an ensemble: the equal mixture, S rounded up to a
    multiple of its size). A point-weight net (``stochastic=False``) has one
    predictive distribution: one draw per network.
    """
    k = len(members(model))
    draws = -(-(num_samples if stochastic else 1) // k) * k
    dist = model_predictor(model, {"feature_names": [f"x{i}" for i in range(np.shape(x)[1])]})(x, draws)
    return dist.log_prob(np.asarray(y, "float32")).numpy().astype("float64"), dist


def cross_validate(grid, fold_nll, n, folds, seed):
    """Choose the value of ``grid`` with the lowest K-fold NLL on n training examples.

    Args:
      grid: candidate values of the knob.
      fold_nll: callable(value, fit_index, held_index, k) -> per-example NLL on the held rows.
      n: training examples; folds: K in [2, n]; seed: seeds the fold permutation.

    Returns:
      (chosen value, {value: mean NLL over all held-out rows, each row held out once}); a grid of one
      value has nothing to choose: (that value, {}), and no fold is fitted.
    """
    if isinstance(folds, bool) or int(folds) != folds or not 2 <= int(folds) <= n:
        raise InputError(f"folds must be in [2, {n}], got {folds!r}")
    if len(grid) == 1:
        return grid[0], {}
    parts = np.array_split(seeds.rng(seed, "folds").permutation(n), int(folds))
    scores = {}
    for value in grid:
        nll = [fold_nll(value, np.concatenate([p for j, p in enumerate(parts) if j != k]), held, k)
               for k, held in enumerate(parts)]
        scores[value] = float(np.concatenate(nll).mean())
    return min(scores, key=scores.get), scores
