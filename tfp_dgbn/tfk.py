"""The one place the package imports Keras.

``tfp.layers`` are written against Keras 2, which ships as the ``tf_keras``
package; Keras 3 layers cannot be mixed with them. Every module of tfp_dgbn
imports Keras as ``from tfp_dgbn.tfk import keras`` so the choice lives here.
"""
import os

# Make tf.keras resolve to Keras 2 too, for code (and TFP internals) that
# reach Keras through TensorFlow. Must be set before TensorFlow is imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tf_keras as keras  # noqa: E402

__all__ = ["keras"]
