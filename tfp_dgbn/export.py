"""The SavedModel contract: an export whose output is a distribution.

An export is a `tf.Module` with three signatures, for features [B, D] float32
and ``num_samples`` S (int32 scalar):

- ``predictive`` (also ``serving_default``): for S independent weight draws,
  the named parameters of each draw's output law, [S, B, *event_shape]
  (``loc``/``scale`` for Normal, ``log_rate`` for Poisson, ``logits``
  [S, B, *event_shape, K] for Categorical), and the predictive ``mean``,
  ``stddev``, ``epistemic_variance``, ``aleatoric_variance`` [B, *event_shape]
  (ordered values); categorical heads also ``probs`` [B, *event_shape, K] and
  ``predictive_entropy``, ``expected_entropy``, ``mutual_information``
  (`tfp_dgbn.predict.predictive_moments`). A Bayesian ensemble (a list of
  networks) serves the equal mixture of their predictives: draw i from network
  i mod K (metadata ``ensemble`` = K). A `tfp_dgbn.predict.Recalibrated` model
  serves its draws scaled about their mean (metadata ``spread`` = tau; 1
  for any other model).
- ``sample``: one draw of y per weight draw, [S, B, *event_shape]: samples
  from the posterior predictive.

Next to it, ``assets.extra/dgbn.json`` holds the metadata: the head
(family and config), parameter names, feature names and training ranges,
package version and training config. Loading reads that JSON and the
SavedModel graph only: no pickled Python is executed.

`tfp_dgbn.load` turns the ``predictive`` output back into a
`tfp.distributions.MixtureSameFamily` (see `tfp_dgbn.predict`).
"""
import json
import os

import tensorflow as tf

import tfp_dgbn
from tfp_dgbn.atomic import atomic_directory
from tfp_dgbn.predict import METADATA_FILE, members, predictive_moments, sample_named, spread_of


class PredictiveModule(tf.Module):
    """The exported module around a trained `BayesianModel`, or a list of them (a Bayesian ensemble; module docstring)."""

    def __init__(self, model, vectorized=None):
        super().__init__(name="dgbn_predictive")
        # Only the networks' variables are tracked, not the Keras models: a tracked Keras model has its layers'
        # call functions traced again for Keras's own SavedModel format (~4 s of a small job's export), which
        # no loader of this contract reads. AutoTrackable's switch keeps the tuple out of the object graph.
        self._self_setattr_tracking = False
        self._networks = tuple(members(model))
        self._served = model  # what `sample_named` draws from: the networks, or a `Recalibrated` around them
        self._self_setattr_tracking = True
        self.spread = spread_of(model)
        self.network_variables = [v for m in self._networks for v in m.variables]
        self.vectorized = vectorized
        num_features = int(self.model.inputs[0].shape[-1])
        spec = (tf.TensorSpec([None, num_features], tf.float32, name="features"),
                tf.TensorSpec([], tf.int32, name="num_samples"))
        self.predictive = tf.function(self._predictive, input_signature=spec)
        self.sample = tf.function(self._sample, input_signature=spec)

    @property
    def members(self):
        """The networks served: one, or a Bayesian ensemble's."""
        return list(self._networks)

    @property
    def model(self):
        """The first network (the head and input width: members share them)."""
        return self._networks[0]

    def _checked(self, features, num_samples):
        # Validation inside the graph, so every client of the signature gets it.
        # The signature's TensorSpec fixes the dtype, but a concrete function
        # accepts any shape: check rank and width here, with messages a client can act on.
        d = int(self.model.inputs[0].shape[-1])
        checks = [
            tf.debugging.assert_rank(features, 2, message=f"features must have shape [batch, {d}]"),
            tf.debugging.assert_equal(tf.shape(features)[-1], d,
                                      message=f"features must have {d} columns (shape [batch, {d}])"),
            tf.debugging.assert_all_finite(features, "features must be finite (no NaN or inf)"),
            tf.debugging.assert_positive(num_samples, message="num_samples must be >= 1"),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(features), tf.identity(num_samples)

    def _named(self, features, num_samples):
        features, num_samples = self._checked(features, num_samples)
        return sample_named(self._served, features, num_samples, self.vectorized)

    def _predictive(self, features, num_samples):
        named = self._named(features, num_samples)
        out = dict(named)
        out.update(predictive_moments(self.model.head, named))
        return out

    def _sample(self, features, num_samples):
        named = self._named(features, num_samples)
        return {"samples": tf.cast(self.model.head.from_named(named).sample(), tf.float32)}


def export_predictive(model, path, metadata=None, vectorized=None):
    """Export ``model`` as a SavedModel serving its predictive distribution, atomically.

    Args:
      model: a trained `tfp_dgbn.model.bayesian_model.BayesianModel`, or a list of them trained
        independently on the same data (a Bayesian ensemble: the export serves their equal mixture),
        or a `tfp_dgbn.predict.Recalibrated` around either.
      path: target directory; replaced only once the new export is complete.
      metadata: extra JSON-able metadata (feature names and ranges, training config).
      vectorized: how the signatures draw the weights (`BayesianModel.sample_params`; None:
        batched where the layers allow it, False: one draw after another).

    Returns:
      The metadata dict written beside the SavedModel.
    """
    module = PredictiveModule(model, vectorized)
    head = module.model.head
    # The output names from the head on one zero draw, eagerly: a probe trace of the signature here would be
    # traced again by the save (it traces in its own context), ~1 s of a small job's export.
    named = head.named_params(tf.zeros([1, 1] + list(head.event_shape) + [head.params_size]))
    outputs = sorted(set(named) | set(predictive_moments(head, named)))
    meta = {
        "format": "tfp_dgbn.predictive/1",
        "package_version": tfp_dgbn.__version__,
        "family": head.family,
        "head": head.head_config(),
        "param_names": sorted(named),
        "event_shape": list(head.event_shape),
        "signatures": {"predictive": outputs, "sample": ["samples"]},
        "ensemble": len(module.members),
        "spread": module.spread,
        "feature_names": [f"x{i}" for i in range(int(module.model.inputs[0].shape[-1]))],
    }
    meta.update(metadata or {})
    with atomic_directory(path) as tmp:
        tf.saved_model.save(module, tmp, signatures={
            "serving_default": module.predictive, "predictive": module.predictive,
            "sample": module.sample})
        os.makedirs(os.path.join(tmp, os.path.dirname(METADATA_FILE)), exist_ok=True)
        with open(os.path.join(tmp, METADATA_FILE), "w") as f:
            json.dump(meta, f, indent=2, default=float)
    return meta
