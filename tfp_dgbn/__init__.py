"""tfp_dgbn: deep generative Bayesian networks on TensorFlow Probability.

The data path is simulate -> dataset -> model -> fit -> export -> load:

>>> import tfp_dgbn
>>> predictor = tfp_dgbn.load("saved_models/toy-gaussian")   # doctest: +SKIP
>>> dist = predictor([[0.3]], num_samples=64)                # doctest: +SKIP
>>> dist.mean(), dist.stddev()                               # doctest: +SKIP
"""
import os

# Quiet TensorFlow's C++ start-up banner unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

# tf.keras must resolve to Keras 2 (tf_keras, `tfp_dgbn.tfk`) for TFP's layers: set the switch before any
# submodule can import TensorFlow. Importing the package itself loads nothing heavy (the CLI answers
# --help without TensorFlow).
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def load(path):
    """Load an exported SavedModel as a predictor of distributions.

    Args:
      path: directory written by `tfp_dgbn.export.export_predictive`.

    Returns:
      A `tfp_dgbn.predict.Predictor`; calling it on features of shape [B, D]
      returns the posterior predictive `tfp.distributions.Distribution`.
    """
    from tfp_dgbn.predict import load_predictor

    return load_predictor(path)


__all__ = ["load", "__version__"]
