"""What a classifier looks at: activation maps, saliency maps and penultimate-layer features.

* activation maps (the paper's Figure 9, top): the mean over channels of each convolution
  block's output for one patch;
* saliency maps (Figure 9, bottom): |d p(predicted class) / d pixel| (Simonyan et al. 2014);
* penultimate features: the input of the final softmax layer, for t-SNE (Figure 7).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..frameworks import import_keras, import_tensorflow

Array = np.ndarray


def feature_layers(network: Any) -> list[Any]:
    """The layers whose outputs are shown as activation maps: each convolution block's activation
    (``conv_N_relu`` in MicroCrystalNet), else the top-level convolution layers."""
    keras = import_keras()
    activations = [layer for layer in network.layers if layer.name.startswith("conv_") and layer.name.endswith("_relu")]
    return activations or [layer for layer in network.layers if isinstance(layer, keras.layers.Conv2D)]


def activation_maps(network: Any, patches: Array) -> dict[str, Array]:
    """Layer name -> mean activation over channels, float (N, h, w), for ``patches`` (N, s, s, 1)."""
    keras = import_keras()
    layers = feature_layers(network)
    if not layers:
        return {}
    probe = keras.Model(network.inputs, [layer.output for layer in layers])
    outputs = probe.predict_on_batch(patches)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return {layer.name: np.asarray(output).mean(axis=-1) for layer, output in zip(layers, outputs)}


def saliency_maps(network: Any, patches: Array) -> Array:
    """|gradient| of each patch's most probable class w.r.t. its pixels, float (N, s, s)."""
    tf = import_tensorflow()
    inputs = tf.convert_to_tensor(patches, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        probabilities = network(inputs, training=False)
        chosen = tf.reduce_max(probabilities, axis=1)
    gradient = tape.gradient(chosen, inputs)
    return np.abs(gradient.numpy())[..., 0]


def penultimate_features(network: Any, patches: Array, batch_size: int = 256) -> Array:
    """The input of the final (softmax) layer for each patch, float (N, F)."""
    keras = import_keras()
    probe = keras.Model(network.inputs, network.layers[-1].input)
    return np.concatenate([np.asarray(probe.predict_on_batch(patches[start:start + batch_size]))
                           for start in range(0, len(patches), batch_size)]).reshape(len(patches), -1)
