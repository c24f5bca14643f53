"""A Keras classifier file run in torch, for inference without TensorFlow.

Every classification in ``analyze``, ``batch`` and the Fiji command only needs the forward pass of
a small CNN, yet importing TensorFlow took 6-8 s of each command's start and ~0.5 GB of its memory
(torch is imported anyway, for the segmenter and Noise2Void). So the networks made of plain layers,
which the reference model and MicroCrystalNet are, are read here from their file (the legacy
``.h5`` and Keras 3's ``.keras``) and run by torch; training, evaluation plots and any network with a
layer or option not listed here (e.g. the keras.applications baselines) stay with Keras
(:class:`UnsupportedNetwork`, then the caller loads the file with Keras).

Supported: a chain of layers, each taking the previous one's output, of the classes InputLayer,
Conv2D (stride any, padding ``valid``, or ``same`` with stride 1 and odd kernels), Dense,
BatchNormalization, MaxPooling2D (``valid``), Flatten, Dropout, ReLU, Activation and
MicroCrystalNet's NormalizedSparseReduction, channels last, float32, activations linear / relu /
sigmoid / tanh, and softmax on the last (feature) axis.
Anything else, or a weight of an unexpected shape, raises :class:`UnsupportedNetwork` rather than
computing something else: the predictions equal Keras' to float rounding (tests compare both on
the reference model and on a MicroCrystalNet).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..frameworks import import_torch

torch = import_torch()
nn = torch.nn
Array = np.ndarray
#: Keras' activation names and the torch modules that compute them
_ACTIVATIONS = {"linear": nn.Identity, "relu": lambda: nn.ReLU(inplace=True), "sigmoid": nn.Sigmoid,
                "tanh": nn.Tanh, "softmax": lambda: nn.Softmax(dim=-1)}


class UnsupportedNetwork(ValueError):
    """The file is not a network this module runs (the caller then uses Keras)."""


def _layer_weights_h5(weights: Any, name: str) -> list[Array]:
    """The weights of layer ``name`` in a legacy ``.h5`` file, in Keras' order."""
    if name not in weights:
        return []
    group = weights[name]
    return [np.asarray(group[weight_name]) for weight_name in group.attrs.get("weight_names", [])]


def _weights_by_layer_keras(weights: Any) -> dict[str, list[Array]]:
    """Each layer's weights in a ``.keras`` file's ``model.weights.h5``, by layer name, in Keras'
    order (trainable first; its groups are named by layer class, each ``vars`` group names its layer)."""
    by_layer = {}
    for group in weights["layers"].values():
        variables = group.get("vars")
        if variables is not None and "name" in variables.attrs:
            by_layer[variables.attrs["name"]] = [np.asarray(variables[str(index)]) for index in range(len(variables))]
    return by_layer


def _read_file(path: Path) -> tuple[list[dict], list[list[Array]]]:
    """The model's layers (configurations, in order) and each one's weights, from a ``.h5`` or
    ``.keras`` file."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                layers = _chain(json.loads(archive.read("config.json")))
                with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as weights:
                    by_layer = _weights_by_layer_keras(weights)
                return layers, [by_layer.get(layer["config"]["name"], []) for layer in layers]
        with h5py.File(path, "r") as file:
            layers = _chain(json.loads(file.attrs["model_config"]))
            return layers, [_layer_weights_h5(file["model_weights"], layer["config"]["name"]) for layer in layers]
    except UnsupportedNetwork:
        raise
    except Exception as error:  # noqa: BLE001  any unreadable file: Keras then reports it in its words
        raise UnsupportedNetwork(f"{path}: not readable as a Keras model file ({error})") from error


def _inbound_names(layer: dict) -> list[str]:
    """Names of the layers feeding ``layer`` (legacy and Keras 3 node formats)."""
    names = []
    for node in layer.get("inbound_nodes", []):
        if isinstance(node, dict):  # Keras 3: {"args": [keras tensor, ...], "kwargs": {...}}
            for argument in node.get("args", []):
                if isinstance(argument, dict) and "keras_history" in argument.get("config", {}):
                    names.append(argument["config"]["keras_history"][0])
                else:
                    raise UnsupportedNetwork(f"layer {layer.get('name')!r} takes inputs other than one tensor")
        else:  # legacy: [[name, node, tensor, kwargs], ...]
            names.extend(entry[0] for entry in node)
    return names


def _chain(config: dict) -> list[dict]:
    """The model's layers in order, if each takes exactly the previous one's output."""
    kind = config.get("class_name")
    layers = config.get("config", {}).get("layers")
    if kind not in ("Functional", "Sequential", "Model") or not layers:
        raise UnsupportedNetwork(f"a {kind} model, not a chain of layers")
    if kind != "Sequential":
        for previous, layer in zip(layers, layers[1:]):
            if _inbound_names(layer) != [previous["config"]["name"]]:
                raise UnsupportedNetwork(f"layer {layer['config']['name']!r} takes more than the previous layer")
    return layers


def _input_shape(layers: list[dict]) -> tuple[int | None, ...]:
    """The network's input shape (batch axis first, as Keras' ``input_shape``): the input layer's,
    else the first layer's (a legacy Sequential model without an input layer)."""
    first = layers[0]
    shape = (first["config"].get("batch_shape") or first["config"].get("batch_input_shape")
             or first.get("build_config", {}).get("input_shape"))
    if shape is None:
        raise UnsupportedNetwork("the file does not state the network's input shape")
    return tuple(shape)


def _expect(weights: list[Array], shapes: list[tuple[int, ...]], name: str) -> list[Array]:
    if [tuple(weight.shape) for weight in weights] != shapes:
        raise UnsupportedNetwork(f"layer {name!r}: weights {[w.shape for w in weights]}, expected {shapes}")
    return [np.ascontiguousarray(weight, np.float32) for weight in weights]


def _activation(name: str, shape: tuple[int, ...]) -> Any:
    """The activation ``name`` on a tensor of ``shape`` (channels last, no batch axis)."""
    if name not in _ACTIVATIONS or (name == "softmax" and len(shape) != 1):  # images here are NCHW
        raise UnsupportedNetwork(f"activation {name!r} on a {len(shape) + 1}-d tensor")
    return _ACTIVATIONS[name]()


def _module(layer: dict, weights: list[Array], shape: tuple[int, ...]) -> tuple[list[Any], tuple[int, ...]]:
    """torch modules for one Keras layer applied to a tensor of ``shape`` (channels last, no batch
    axis), and the shape of its output. Tensors between layers are NCHW for images, (N, F) after."""
    kind, config, name = layer["class_name"], layer["config"], layer["config"]["name"]
    if config.get("data_format", "channels_last") != "channels_last":
        raise UnsupportedNetwork(f"layer {name!r}: data format {config['data_format']!r}")
    dtype = config.get("dtype", "float32")
    if (dtype.get("config", {}).get("name") if isinstance(dtype, dict) else dtype) not in ("float32", None):
        raise UnsupportedNetwork(f"layer {name!r}: computes in {dtype}, not float32")
    if kind in ("InputLayer", "Dropout"):
        return [], shape
    if kind == "Conv2D":
        if len(shape) != 3 or config.get("groups", 1) != 1 or tuple(config.get("dilation_rate", (1, 1))) != (1, 1):
            raise UnsupportedNetwork(f"layer {name!r}: grouped or dilated convolution")
        (kh, kw), strides, padding = config["kernel_size"], tuple(config["strides"]), config["padding"]
        if padding not in ("valid", "same") or (padding == "same" and (strides != (1, 1) or not kh % 2 or not kw % 2)):
            raise UnsupportedNetwork(f"layer {name!r}: padding {padding!r} with strides {strides}")
        filters, bias = config["filters"], config.get("use_bias", True)
        arrays = _expect(weights, [(kh, kw, shape[2], filters)] + [(filters,)] * bias, name)
        conv = nn.Conv2d(shape[2], filters, (kh, kw), stride=strides, padding=padding, bias=bias)
        conv.weight.data = torch.from_numpy(arrays[0].transpose(3, 2, 0, 1).copy())
        if bias:
            conv.bias.data = torch.from_numpy(arrays[1])
        if padding == "same":
            height, width = shape[0], shape[1]
        else:
            height, width = (shape[0] - kh) // strides[0] + 1, (shape[1] - kw) // strides[1] + 1
        out = (height, width, filters)
        return [conv, _activation(config.get("activation", "linear"), out)], out
    if kind == "MaxPooling2D":
        pool, strides = tuple(config["pool_size"]), tuple(config.get("strides") or config["pool_size"])
        if config.get("padding", "valid") != "valid" or len(shape) != 3:
            raise UnsupportedNetwork(f"layer {name!r}: pooling with padding {config.get('padding')!r}")
        out = ((shape[0] - pool[0]) // strides[0] + 1, (shape[1] - pool[1]) // strides[1] + 1, shape[2])
        return [nn.MaxPool2d(pool, strides)], out
    if kind == "Flatten":
        return ([_ChannelsLastFlatten()] if len(shape) == 3 else [nn.Flatten()]), (int(np.prod(shape)),)
    if kind == "Dense":
        units, bias = config["units"], config.get("use_bias", True)
        if len(shape) != 1:
            raise UnsupportedNetwork(f"layer {name!r}: a dense layer on a {len(shape) + 1}-d tensor")
        arrays = _expect(weights, [(shape[0], units)] + [(units,)] * bias, name)
        dense = nn.Linear(shape[0], units, bias=bias)
        dense.weight.data = torch.from_numpy(arrays[0].T.copy())
        if bias:
            dense.bias.data = torch.from_numpy(arrays[1])
        return [dense, _activation(config.get("activation", "linear"), (units,))], (units,)
    if kind == "BatchNormalization":
        axis = config.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        if axis not in (-1, len(shape)):
            raise UnsupportedNetwork(f"layer {name!r}: normalisation over axis {axis}")
        channels, scale, center = shape[-1], config.get("scale", True), config.get("center", True)
        arrays = _expect(weights, [(channels,)] * (scale + center + 2), name)
        gamma = arrays.pop(0) if scale else np.ones(channels, np.float32)
        beta = arrays.pop(0) if center else np.zeros(channels, np.float32)
        scale_and_offset = _normalisation(arrays[0], arrays[1], float(config["epsilon"]), gamma, beta)
        return [_Affine(*scale_and_offset, len(shape))], shape
    if kind == "NormalizedSparseReduction":
        if len(shape) != 1:
            raise UnsupportedNetwork(f"layer {name!r}: on a {len(shape) + 1}-d tensor")
        units = config["units"]
        projection, mean, variance = _expect(weights, [(shape[0], units), shape, shape], name)
        normalise = _Affine(*_normalisation(mean, variance, float(config["epsilon"])), 1)
        reduce = nn.Linear(shape[0], units, bias=False)
        reduce.weight.data = torch.from_numpy(projection.T.copy())
        return [normalise, reduce], (units,)
    if kind == "ReLU":
        if config.get("max_value") is not None or config.get("negative_slope", 0) or config.get("threshold", 0):
            raise UnsupportedNetwork(f"layer {name!r}: a ReLU with a limit, slope or threshold")
        return [nn.ReLU(inplace=True)], shape
    if kind == "Activation":
        return [_activation(config["activation"], shape)], shape
    raise UnsupportedNetwork(f"layer {name!r} of class {kind}")


def _normalisation(mean: Array, variance: Array, epsilon: float, gamma: Array | None = None,
                   beta: Array | None = None) -> tuple[Array, Array]:
    """Scale and offset of ``gamma * (x - mean) / sqrt(variance + epsilon) + beta``."""
    scale = (1.0 if gamma is None else gamma) / np.sqrt(variance + epsilon)
    offset = (0.0 if beta is None else beta) - mean * scale
    return scale.astype(np.float32), np.asarray(offset, np.float32)


class _ChannelsFirst(nn.Module):
    """NHWC (Keras' layout) to NCHW (torch's)."""

    def forward(self, x: Any) -> Any:
        return x.permute(0, 3, 1, 2).contiguous()


class _ChannelsLastFlatten(nn.Module):
    """Flatten an NCHW tensor in Keras' (channels-last) order."""

    def forward(self, x: Any) -> Any:
        return torch.flatten(x.permute(0, 2, 3, 1), 1)


class _Affine(nn.Module):
    """``x * scale + offset`` per channel (axis 1 of an NCHW or (N, F) tensor)."""

    def __init__(self, scale: Array, offset: Array, dimensions: int) -> None:
        super().__init__()
        view = (1, -1, 1, 1) if dimensions == 3 else (1, -1)
        self.register_buffer("scale", torch.from_numpy(scale).reshape(view))
        self.register_buffer("offset", torch.from_numpy(offset).reshape(view))

    def forward(self, x: Any) -> Any:
        return x * self.scale + self.offset


def load_torch_network(path: str | Path) -> tuple[Any, tuple[int | None, ...]]:
    """A Keras classifier file as a torch module in evaluation mode, and its input shape as Keras
    states it (``(None, size, size, 1)``). The module takes float32 (N, size, size, 1) and returns
    the model's outputs (N, classes). Raises :class:`UnsupportedNetwork` for anything it cannot
    run exactly as Keras does."""
    layers, weights = _read_file(Path(path))
    input_shape = _input_shape(layers)
    if len(input_shape) != 4 or any(size is None for size in input_shape[1:]):
        raise UnsupportedNetwork(f"input shape {input_shape}: expected (None, height, width, channels)")
    shape: tuple[int, ...] = tuple(input_shape[1:])
    modules: list[Any] = [_ChannelsFirst()]
    for layer, layer_weights in zip(layers, weights):
        layer_modules, shape = _module(layer, layer_weights, shape)
        modules.extend(layer_modules)
    if len(shape) != 1:
        raise UnsupportedNetwork(f"the network ends in a {len(shape) + 1}-d tensor, not one row per patch")
    return torch.nn.Sequential(*modules).eval(), input_shape


def predict(network: Any, patches: Array) -> Array:
    """``network``'s outputs for float32 ``patches`` (N, size, size, channels), as float32 (N, classes)."""
    with torch.inference_mode():
        return network(torch.from_numpy(np.ascontiguousarray(patches, np.float32))).numpy()
