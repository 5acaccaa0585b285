"""The per-pixel network of the image generators: pixel coordinates + an image embedding -> law parameters.

Every pixel of an image sees its own coordinates (C channels, computed from
the features) and the image's embedding (E numbers, the same at every pixel).
The network is a stack of 1x1 Bayesian convolutions, one network shared by all
pixels whose weights are drawn once per image. Its first layer acts on the
concatenation [coordinates, embedding]; with kernel [C + E, F] = [K_c; K_e] that is

    act(coordinates K_c + b  +  embedding K_e)

and the second term is the same at every pixel. It is computed once per image
by a Bayesian dense layer on the embedding and added to every pixel
(`AddToPixels`), instead of multiplying the embedding, copied to each of
S x S pixels, by K_e there: the same function class and the same mean-field
posterior over the same C x F + E x F + F weights, at a fraction of the work
(benchmarks/predictive_inference.py). Flipout draws the two halves' sign flips
independently, which leaves each example's weight law unchanged.
"""
from tfp_dgbn.model.layers import conv2d_layer, dense_layer
from tfp_dgbn.tfk import keras


@keras.saving.register_keras_serializable(package="tfp_dgbn")
class AddToPixels(keras.layers.Layer):
    """act(h + v at every pixel): [B, S, S, F] and [B, F] -> [B, S, S, F].

    Args:
      activation: Keras activation applied to the sum (None: identity).
    """

    def __init__(self, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.activation = keras.activations.get(activation)

    def call(self, inputs):
        h, v = inputs
        return self.activation(h + v[:, None, None, :])

    def get_config(self):
        config = super().get_config()
        config.update(activation=keras.activations.serialize(self.activation))
        return config


def pixel_network(kind, coordinates, embedding, hidden, out_filters, seed, activation="relu", out_name="params",
                  out_bias="zeros", **common):
    """The per-pixel network (module docstring) on Keras tensors.

    Args:
      kind: layer kind, one of `tfp_dgbn.model.layers.LAYER_KINDS`.
      coordinates: per-pixel inputs [B, S, S, C]; embedding: per-image inputs [B, E].
      hidden: widths of the hidden 1x1 layers (may be empty).
      out_filters: raw law parameters per pixel (the output layer's width).
      seed: base seed: hidden layer k uses seed + 10 k (and + 5 for its embedding half), the output
        layer seed + 100 (+ 105).
      activation: Keras activation of the hidden layers.
      out_name: name of the output layer; out_bias: its initial bias (as `conv2d_layer`'s ``bias_loc``).
      **common: num_train, prior_scale, init_scale (as `conv2d_layer`).

    Returns:
      The raw law parameters, a Keras tensor [B, S, S, out_filters].
    """
    widths = [(f"pixel_{k}", filters, activation, seed + 10 * k, "zeros") for k, filters in enumerate(hidden)]
    widths.append((out_name, out_filters, None, seed + 100, out_bias))
    h = None
    for name, filters, act, layer_seed, bias in widths:
        if h is None:  # the first layer: coordinates per pixel, the embedding's half once per image
            per_pixel = conv2d_layer(kind, filters, 1, seed=layer_seed, name=name, bias_loc=bias,
                                     **common)(coordinates)
            per_image = dense_layer(kind, filters, seed=layer_seed + 5, use_bias=False, name=f"{name}_embedding",
                                    **common)(embedding)
            h = AddToPixels(act, name=f"{name}_sum")([per_pixel, per_image])
        else:
            h = conv2d_layer(kind, filters, 1, seed=layer_seed, activation=act, name=name, bias_loc=bias,
                             **common)(h)
    return h
