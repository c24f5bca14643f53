"""Classifier networks: the paper's MicroCrystalNet with its Normalized Sparse Reduction (NSR)
block, the authors' released (reference) architecture, and the five baselines of the paper's Table 7.

Every network takes gray patches ``(size, size, 1)`` with values in [0, 1] and ends in a softmax
over the four classes in ``CLASS_CODES`` order (RES, PES, AA, RA/SA).

MicroCrystalNet, as the paper describes it (section 3), with the choices the text leaves open:

* four convolution blocks Conv -> BatchNorm -> ReLU -> MaxPool 2x2 -> Dropout with 32, 64, 128,
  128 filters ("starting from 32 and doubling at each subsequent block, culminating at 128").
  Kernel sizes: the paper names 3x3, 5x5 and 7x7 without the order; we use 7, 5, 3, 3 — the large
  kernel where the full-resolution crystal outline is seen, small ones on the pooled maps, which
  keeps the parameter count low. Convolution dropout: 0.1 (the paper gives 0.5 only for the
  dense layers). Dropout sits before the next block's batch normalisation, whose statistics it
  then distorts at inference ("variance shift"); on 24 synthetic scenes with augmentation, 0.25
  held validation accuracy at 0.47 after 30 epochs, 0.1 reached 0.92 (0 reached 0.85 after 20
  epochs without augmentation, 0.25 0.75).
* NSR block on the flattened features (:class:`NormalizedSparseReduction`).
* Dense 1024 and 256, each Dense -> BatchNorm -> ReLU -> Dropout 0.5, then softmax.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..classes import CLASS_CODES
from ..config import TrainingConfig, choices_of
from ..frameworks import import_keras

keras = import_keras()
ops = keras.ops

ARCHITECTURES = choices_of(TrainingConfig, "architecture")
BASELINES = ARCHITECTURES[2:]
#: keras.applications constructors and the smallest input each accepts
_APPLICATIONS = {"vgg16": ("VGG16", 32), "resnet50": ("ResNet50", 32), "inceptionv3": ("InceptionV3", 75),
                 "densenet121": ("DenseNet121", 32), "efficientnetb0": ("EfficientNetB0", 32)}


@keras.saving.register_keras_serializable(package="microcrystalnet")
class NormalizedSparseReduction(keras.layers.Layer):
    """The paper's NSR block: z-score normalisation, a PCA-like linear reduction, L1 sparsity.

    1. **z-score**: each feature is centred and scaled by its mean and standard deviation over
       the batch while training, and by running estimates of them at inference (batch
       normalisation without learned shift and scale). The paper says "z-score normalisation";
       per-feature statistics over the data are what PCA's centring needs.
    2. **reduction**: a linear projection to ``units`` components without bias, initialised
       orthogonal and kept near-orthonormal by a penalty ``orthogonality * ||W^T W - I||^2``
       (mean over entries) — PCA's projection learnt with the rest of the network rather than
       fitted once, so it can be trained end to end and saved inside the model.
    3. **sparsity**: an L1 penalty ``l1 * sum |W|`` on the projection weights (the paper: "a penalty
       proportional to the absolute value of the feature weights"), so each component draws on
       few input features.

    Both penalties are added to the training loss (``layer.losses``).
    """

    def __init__(self, units: int = 256, l1: float = 1e-5, orthogonality: float = 1e-3, momentum: float = 0.9,
                 epsilon: float = 1e-3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units, self.l1, self.orthogonality = units, l1, orthogonality
        self.momentum, self.epsilon = momentum, epsilon

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        features = int(input_shape[-1])
        self.moving_mean = self.add_weight(shape=(features,), initializer="zeros", trainable=False, name="moving_mean")
        self.moving_variance = self.add_weight(shape=(features,), initializer="ones", trainable=False,
                                               name="moving_variance")
        self.projection = self.add_weight(shape=(features, self.units), initializer="orthogonal", trainable=True,
                                          name="projection")

    def normalize(self, inputs: Any, training: bool = False) -> Any:
        """Stage 1 alone: z-scored features (updates the running statistics when training)."""
        if training:
            mean = ops.mean(inputs, axis=0)
            variance = ops.var(inputs, axis=0)
            self.moving_mean.assign(self.momentum * self.moving_mean + (1 - self.momentum) * mean)
            self.moving_variance.assign(self.momentum * self.moving_variance + (1 - self.momentum) * variance)
        else:
            mean, variance = self.moving_mean, self.moving_variance
        return (inputs - mean) / ops.sqrt(variance + self.epsilon)

    def call(self, inputs: Any, training: bool = False) -> Any:
        if self.l1:
            self.add_loss(self.l1 * ops.sum(ops.abs(self.projection)))
        if self.orthogonality:
            gram = ops.matmul(ops.transpose(self.projection), self.projection)
            self.add_loss(self.orthogonality * ops.mean(ops.square(gram - ops.eye(self.units))))
        return ops.matmul(self.normalize(inputs, training), self.projection)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "l1": self.l1, "orthogonality": self.orthogonality,
                "momentum": self.momentum, "epsilon": self.epsilon}


@dataclass(frozen=True)
class MicroCrystalNetSpec:
    """MicroCrystalNet's hyper-parameters (defaults: the paper's, with the choices documented above)."""

    filters: tuple[int, ...] = (32, 64, 128, 128)
    kernel_sizes: tuple[int, ...] = (7, 5, 3, 3)
    conv_dropout: float = 0.1
    nsr_units: int = 256
    nsr_l1: float = 1e-5
    nsr_orthogonality: float = 1e-3
    dense_units: tuple[int, ...] = (1024, 256)
    dense_dropout: float = 0.5
    #: running-statistics momentum of batch normalisation and the NSR z-score. Keras' 0.99 needs
    #: hundreds of batches to forget its start values; a data set of the paper's size (1,852
    #: crystals, ~46 batches per epoch) gives few, so 0.9.
    bn_momentum: float = 0.9


def build_microcrystalnet(input_size: int = 64, spec: MicroCrystalNetSpec = MicroCrystalNetSpec()) -> Any:
    """The paper's MicroCrystalNet (uncompiled Keras model), input ``(input_size, input_size, 1)``."""
    layers = keras.layers
    if input_size < 2 ** len(spec.filters):
        raise ValueError(f"input size {input_size} is too small for {len(spec.filters)} pooling steps")
    inputs = keras.Input((input_size, input_size, 1), name="patch")
    x = inputs
    for block, (filters, kernel) in enumerate(zip(spec.filters, spec.kernel_sizes), start=1):
        x = layers.Conv2D(filters, kernel, padding="same", use_bias=False, name=f"conv_{block}")(x)
        x = layers.BatchNormalization(momentum=spec.bn_momentum, name=f"conv_{block}_bn")(x)
        x = layers.ReLU(name=f"conv_{block}_relu")(x)
        x = layers.MaxPooling2D(2, name=f"conv_{block}_pool")(x)
        x = layers.Dropout(spec.conv_dropout, name=f"conv_{block}_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    x = NormalizedSparseReduction(spec.nsr_units, spec.nsr_l1, spec.nsr_orthogonality, spec.bn_momentum, name="nsr")(x)
    for index, units in enumerate(spec.dense_units, start=1):
        x = layers.Dense(units, use_bias=False, name=f"dense_{index}")(x)
        x = layers.BatchNormalization(momentum=spec.bn_momentum, name=f"dense_{index}_bn")(x)
        x = layers.ReLU(name=f"dense_{index}_relu")(x)
        x = layers.Dropout(spec.dense_dropout, name=f"dense_{index}_dropout")(x)
    outputs = layers.Dense(len(CLASS_CODES), activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name="microcrystalnet")


def build_reference_architecture(input_size: int = 64) -> Any:
    """The architecture of the authors' released model (untrained): Conv 64/32/16 3x3 + pooling,
    Dense 256, softmax — 287,156 parameters at 64 x 64."""
    layers = keras.layers
    inputs = keras.Input((input_size, input_size, 1), name="patch")
    x = inputs
    for block, filters in enumerate((64, 32, 16), start=1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv_{block}")(x)
        x = layers.MaxPooling2D(2, name=f"conv_{block}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(256, activation="relu", name="dense_1")(x)
    outputs = layers.Dense(len(CLASS_CODES), activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name="reference")


def build_baseline(name: str, input_size: int = 64, bn_momentum: float = MicroCrystalNetSpec.bn_momentum) -> Any:
    """A keras.applications network trained from scratch on gray patches (no ImageNet weights:
    they come from a host this environment cannot reach, and they expect 3-channel input).

    Patches smaller than the network's minimum input (InceptionV3: 75 px) are resized up
    inside the model, so every network takes the same patches. Batch normalisation gets the
    same running-statistics momentum as MicroCrystalNet (0.9): with Keras' 0.99, ResNet50 reached
    0.97 training accuracy while its validation accuracy stayed at one class (0.33) for 11 epochs.
    """
    if name not in _APPLICATIONS:
        raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(_APPLICATIONS)}")
    constructor, minimum = _APPLICATIONS[name]
    inputs = keras.Input((input_size, input_size, 1), name="patch")
    x = inputs
    size = max(input_size, minimum)
    if size != input_size:
        x = keras.layers.Resizing(size, size, name="resize_to_minimum")(x)
    backbone = getattr(keras.applications, constructor)(include_top=False, weights=None, input_shape=(size, size, 1),
                                                        pooling="avg")
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = bn_momentum
    outputs = keras.layers.Dense(len(CLASS_CODES), activation="softmax", name="classes")(backbone(x))
    return keras.Model(inputs, outputs, name=name)


def build_network(architecture: str, input_size: int = 64) -> Any:
    """Any of :data:`ARCHITECTURES` by name (uncompiled)."""
    if architecture == "microcrystalnet":
        return build_microcrystalnet(input_size)
    if architecture == "reference":
        return build_reference_architecture(input_size)
    if architecture in _APPLICATIONS:
        return build_baseline(architecture, input_size)
    raise ValueError(f"unknown architecture {architecture!r}; choose from {', '.join(ARCHITECTURES)}")
