"""`BayesianModel`: a Keras functional model trained on the per-example negative ELBO.

    loss = E_q[-log p(y | x, w)]  +  kl_weight * KL(q(w) || p(w)) / N_train
           \\_____ "nll" ______/     \\__________ "kl" (= model.losses) ___/

The NLL is a one-draw Monte-Carlo estimate (Flipout), the KL is analytic.
The data term is the head's ``data_loss``: the NLL for every head with a
likelihood, the image loss (mean squared error) for `PointImageHead`, the
reference decoder's law, which has none.
``kl_raw`` = KL / N_train is logged beside it so the effect of the weight
can be read off. The model's output is a `tfp.distributions.Distribution`
(its last layer is a `tfp_dgbn.model.heads.DistributionHead`).
"""
import numpy as np
import tensorflow as tf

from tfp_dgbn.model.heads import DistributionHead
from tfp_dgbn.model.layers import _SerializableVariational
from tfp_dgbn.validate import InputError, check_kl_weight
from tfp_dgbn.tfk import keras

LOG_KEYS = ("loss", "nll", "kl", "kl_raw", "kl_weight")
#: activation memory per chunk of vectorised weight draws (`BayesianModel.sample_params`). Chunks
#: that stay near the CPU's last-level cache run fastest (32 MiB L3 on the machines here; the sweep
#: is `benchmarks/chunk_size.py`, its table in docs/benchmarks.md).
CHUNK_BYTES = 24 * 2 ** 20


def _swap_first_two(rank):
    """The permutation that swaps the first two axes of a tensor of ``rank`` (a scalar tensor)."""
    return tf.concat([[1, 0], tf.range(2, rank)], 0)


@keras.saving.register_keras_serializable(package="tfp_dgbn")
class BayesianModel(keras.Model):
    """Functional model ending in a distribution head, with one ``kl_weight`` variable.

    Build it like any functional model, ``BayesianModel(inputs, outputs)``,
    where ``outputs`` is the output of a `DistributionHead`. ``fit`` then
    reports ``loss``, ``nll``, ``kl``, ``kl_raw`` and ``kl_weight``.

    Args:
      kl_weight: initial weight of the KL term (>= 0); a callback of
        `tfp_dgbn.fit.callbacks` may change it during training.
    """

    # The signature matches `Functional.__init__` so Keras saves and revives
    # the graph of layers; the weight's value is saved with the variables.
    def __init__(self, inputs, outputs, name=None, trainable=True, **kwargs):
        kl_weight = kwargs.pop("kl_weight", 1.0)
        super().__init__(inputs, outputs, name=name, trainable=trainable, **kwargs)
        self.kl_weight = tf.Variable(
            check_kl_weight(kl_weight), trainable=False, dtype=tf.float32, name="kl_weight")
        for fn, _, _ in self._divergences():
            fn.kl_weight = self.kl_weight
        self._trackers = [keras.metrics.Mean(name) for name in LOG_KEYS]

    def _lookup_dependency(self, name, cached_dependencies=None):
        """Functional's lookup of a tracked name, without its walk over every layer's weights for names
        that cannot be layers.

        Keras re-assigns ``model.test_function`` on every ``evaluate`` (each epoch's validation), and
        tracking the assignment looks the name up here. Functional's lookup first lists every layer's
        weights, which for TFP layers flattens their distributions' modules: 19 ms a call on a small
        Flipout MLP, timed alone, and a 300-epoch toy job validates 300 times. Its layer dependencies
        are only ever named "layer-K" and "layer_with_weights-K"; every other name resolves as in
        `keras.layers.Layer`.
        """
        if cached_dependencies or name.startswith("layer"):
            return super()._lookup_dependency(name, cached_dependencies)
        return keras.layers.Layer._lookup_dependency(self, name, cached_dependencies)

    # --- structure -------------------------------------------------------
    @property
    def head(self):
        """The final `DistributionHead` layer."""
        head = self._output_layers[-1]
        if not isinstance(head, DistributionHead):
            raise TypeError(f"the last layer of a BayesianModel must be a DistributionHead, got {head!r}")
        return head

    @property
    def params_model(self):
        """Sub-model from the inputs to the head's raw parameters [B, *event_shape, P]."""
        # Cached outside Keras attribute tracking: it shares this model's
        # layers, and tracking it would make it a second copy in saved files.
        if "_params_model_cache" not in self.__dict__:
            self.__dict__["_params_model_cache"] = keras.Model(self.inputs, self.head.input)
        return self.__dict__["_params_model_cache"]

    def _bayesian_layers(self):
        return [m for m in self.submodules if isinstance(m, _SerializableVariational)]

    def _divergences(self):
        return [pair for layer in self._bayesian_layers() for pair in layer.divergence_fns()]

    def set_kl_weight(self, value):
        """Set the KL weight (a finite number >= 0)."""
        self.kl_weight.assign(check_kl_weight(value))

    def kl_raw(self):
        """Unweighted KL(q || p) / N_train summed over all Bayesian layers (scalar)."""
        terms = [fn.unweighted(q, p) for fn, q, p in self._divergences()]
        return tf.add_n(terms) if terms else tf.constant(0.0)

    def posterior_stddevs(self):
        """Dict 'layer/kernel' -> tensor of posterior stddevs of that weight."""
        out = {}
        for layer in self._bayesian_layers():
            for which in ("kernel", "bias"):
                post = getattr(layer, f"{which}_posterior", None)
                if post is not None and hasattr(post, "distribution"):
                    out[f"{layer.name}/{which}"] = tf.convert_to_tensor(post.distribution.scale)
        return out

    # --- training ----------------------------------------------------------
    @property
    def metrics(self):
        return list(self._trackers) + super().metrics

    def _terms(self, x, y, training):
        """(per-example NLL [B], weighted KL, KL / N_train) on this replica's batch."""
        dist = self(x, training=training)
        y = tf.cast(y, self.head.target_dtype)
        nll = self.head.data_loss(dist, y)
        kl = tf.add_n(self.losses) if self.losses else tf.constant(0.0)
        # Read before the optimizer step, so that kl == kl_weight * kl_raw.
        kl_raw = tf.stop_gradient(self.kl_raw())
        return nll, kl, kl_raw

    @staticmethod
    def replica_objective(nll, kl):
        """The loss one replica differentiates: its share of mean NLL + KL over the global batch.

        The optimizer sums gradients over replicas, so the NLL is divided by
        the global batch size and the KL (the same on every replica) by the
        number of replicas: the sum is the per-example negative ELBO of the
        global batch, with the KL counted once. Without a strategy this is
        ``mean(nll) + kl``.

        Args:
          nll: per-example NLL of this replica's examples, [B_local].
          kl: weighted KL term (scalar).
        """
        return tf.nn.compute_average_loss(nll) + tf.nn.scale_regularization_loss(kl)

    def _log(self, nll, kl, kl_raw):
        values = {
            "loss": nll + kl,
            "nll": nll,
            "kl": kl,
            "kl_raw": kl_raw,
            "kl_weight": tf.identity(self.kl_weight),
        }
        for tracker in self._trackers:
            tracker.update_state(values[tracker.name])
        return {t.name: t.result() for t in self._trackers}

    def train_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            nll, kl, kl_raw = self._terms(x, y, training=True)
            loss = self.replica_objective(nll, kl)
        self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
        # The logged values are this replica's means; Keras's Mean trackers
        # average them over replicas.
        return self._log(tf.reduce_mean(nll), kl, kl_raw)

    def test_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        nll, kl, kl_raw = self._terms(x, y, training=False)
        return self._log(tf.reduce_mean(nll), kl, kl_raw)

    # --- prediction ----------------------------------------------------------
    def sample_params(self, x, num_samples, vectorized=None, chunk_bytes=CHUNK_BYTES):
        """Raw head parameters for S independent weight draws, [S, B, *event_shape, P].

        Vectorised (the default where every Bayesian layer is dense or a 1x1
        convolution): each layer samples the kernels and biases of many draws
        at once, exactly from its posterior, and the network runs on a
        draw-major batch of draws x examples rows, one batched matmul per layer.
        The work goes in chunks of at most ``chunk_bytes`` of activations:
        chunks of draws, and, when one draw of the whole batch is larger than
        that, pieces of the batch, each running every chunk of draws. Every
        piece re-creates a chunk's weights from the chunk's stateless seed, so
        every example of a draw sees one network; draws in different chunks and
        within one are independent. Layers before any weights run once per
        piece, not once per draw (`_draw_split`). Otherwise, or with ``vectorized=False``, the draws
        run one after another in a `tf.while_loop`, each a fresh model call
        (each call a Flipout draw per example, pseudo-independent across examples).

        Args:
          x: features [B, D] (float32; any [B, ...] the model takes).
          num_samples: S, a positive int or int32 scalar tensor.
          vectorized: True, False or None (vectorised where possible).
          chunk_bytes: activation memory per chunk (bytes; `CHUNK_BYTES`).
        """
        x = tf.convert_to_tensor(x, tf.float32)
        num_samples = tf.convert_to_tensor(num_samples, tf.int32)
        layers = self._bayesian_layers()
        can = all(layer.vectorizable() for layer in layers)
        if vectorized and not can:
            raise InputError("vectorised draws need dense or 1x1 convolution Bayesian layers")
        if vectorized is False or not can:
            return self._chunked(num_samples, lambda size, _: self.params_model(x, training=False)[None], 1)
        batch = tf.shape(x)[0]
        rows = tf.maximum(tf.cast(chunk_bytes, tf.int64) // (self._activation_floats() * 4), 1)  # draw-example pairs
        chunk = tf.cast(tf.clip_by_value(rows // tf.maximum(tf.cast(batch, tf.int64), 1), 1,
                                         tf.cast(num_samples, tf.int64)), tf.int32)
        piece = tf.cast(tf.clip_by_value(rows // tf.cast(chunk, tf.int64), 1, tf.cast(batch, tf.int64)), tf.int32)
        base = tf.random.uniform([2], minval=tf.int32.min, maxval=tf.int32.max, dtype=tf.int32)  # fresh per call

        split = self._draw_split()
        shared = split[0] if split else ()

        def network(inputs, count, size, seed):
            """The raw parameters of ``size`` draws for ``count`` examples, [size, count, ...]."""
            for k, layer in enumerate(layers):
                layer.draws, layer.draw_seed = size, tf.random.experimental.stateless_fold_in(seed, k)
                layer.shared_input = layer in shared
            try:
                if split:  # the layers after the cut, on the prefix's outputs (the same for every draw)
                    out = split[2](inputs, training=False)
                else:  # every layer on the draw-major batch of draws x examples
                    tiled = tf.tile(inputs, tf.concat([[size], tf.ones([tf.rank(inputs) - 1], tf.int32)], 0))
                    out = self.params_model(tiled, training=False)
            finally:
                for layer in layers:
                    layer.draws = layer.draw_seed = None
                    layer.shared_input = False
            return tf.reshape(out, tf.concat([[size, count], tf.shape(out)[1:]], 0))

        def piece_draws(j):
            """All S draws for the examples of piece j, [S, piece, ...]: the chunks of draws re-create
            the same weights in every piece (seeded by the chunk), so a draw is one network."""
            part = x[j * piece:(j + 1) * piece]
            inputs = split[1](part, training=False) if split else part  # once per piece, not per draw
            return self._chunked(num_samples, lambda size, i: network(
                inputs, tf.shape(part)[0], size, tf.random.experimental.stateless_fold_in(base, i)), chunk)

        def body(j, ta):
            out = piece_draws(j)
            return j + 1, ta.write(j, tf.transpose(out, _swap_first_two(tf.rank(out))))

        ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False)
        _, ta = tf.while_loop(lambda j, _: j < (batch + piece - 1) // piece, body, (tf.constant(0), ta))
        out = ta.concat()  # [B, S, ...]: pieces joined along the example axis
        return tf.transpose(out, _swap_first_two(tf.rank(out)))

    def _draw_split(self):
        """(shared layers, prefix model, suffix model) for vectorised draws, or None where draws tile the batch.

        Walks the params model's graph: a tensor depends on the draws when a Bayesian layer lies
        on its path. The layers before every Bayesian layer (the ring generator's pixel
        coordinates, a feature encoding) form the prefix, run once per piece of examples; the
        suffix runs the rest on the prefix's outputs for each chunk of draws, and its first
        Bayesian layers (the shared layers) broadcast those outputs over the draws. None (every
        layer on the tiled batch, the general case) when a non-Bayesian layer would mix
        draw-dependent and draw-independent tensors (a concatenation of the two), a Bayesian layer
        is called on both kinds, or the output does not depend on the draws.
        """
        if "_draw_split_cache" in self.__dict__:  # outside Keras tracking, as `params_model`
            return self.__dict__["_draw_split_cache"]
        model = self.params_model
        dependent, shared, per_draw, cut, mixed = {}, set(), set(), {}, False
        for depth in sorted(model._nodes_by_depth, reverse=True):  # inputs first
            for node in model._nodes_by_depth[depth]:
                parents = [dependent[id(p)] for p in node.parent_nodes]
                if isinstance(node.layer, _SerializableVariational):
                    if any(parents):
                        per_draw.add(node.layer)
                    else:
                        shared.add(node.layer)
                        cut.update((id(t), t) for t in tf.nest.flatten(node.input_tensors))
                    dependent[id(node)] = True
                else:
                    mixed |= any(parents) and not all(parents)
                    dependent[id(node)] = any(parents)
        outputs_depend = all(dependent[id(node)] for node in model._nodes_by_depth[0])
        split = None
        if not (mixed or (shared & per_draw) or not outputs_depend):
            cut = list(cut.values())
            # Keras gives the suffix inputs of its own at the cut tensors, on the same layers
            split = (shared, keras.Model(model.inputs, cut), keras.Model(cut, model.outputs))
        self.__dict__["_draw_split_cache"] = split
        return split

    @staticmethod
    def _chunked(num_samples, run, chunk):
        """``run(size, i)`` ([size, B, ...] for chunk i) over chunks of ``chunk`` draws in a `tf.while_loop`,
        concatenated."""
        ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False, element_shape=None)

        def body(i, ta):
            return i + 1, ta.write(i, run(tf.minimum(chunk, num_samples - i * chunk), i))

        steps = (num_samples + chunk - 1) // chunk
        _, ta = tf.while_loop(lambda i, _: i < steps, body, (tf.constant(0), ta))
        return ta.concat()

    def _activation_floats(self):
        """Floats of activations per example and draw: the sum of the params model's layer outputs."""
        total = 0
        for layer in self.params_model.layers:
            shapes = layer.output_shape if isinstance(layer.output_shape, list) else [layer.output_shape]
            total += sum(int(np.prod([d or 1 for d in shape[1:]], dtype=np.int64)) for shape in shapes)
        return total
