"""Keras classifier files run in torch (microcrystalnet.classify.torch_network): the same outputs as
Keras, without TensorFlow, and Keras wherever a file holds something else."""

import json
import subprocess
import sys

import numpy as np
import pytest

from microcrystalnet.classes import CLASS_CODES
from microcrystalnet.classify import CrystalClassifier
from microcrystalnet.classify.torch_network import UnsupportedNetwork, load_torch_network, predict


def random_patches(count: int, size: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((count, size, size, 1), dtype=np.float32)


def with_trained_looking_statistics(network, seed: int = 1):
    """Batch-normalisation and NSR statistics, shifts and scales away from their start values, so a
    forward pass that skipped or misread one of them would give other outputs."""
    rng = np.random.default_rng(seed)
    for weight in network.weights:
        shape, name = tuple(weight.shape), weight.name
        if "variance" in name:
            weight.assign(rng.uniform(0.5, 2.0, shape).astype(np.float32))
        elif "mean" in name or "beta" in name or "bias" in name:
            weight.assign(rng.normal(0.0, 0.1, shape).astype(np.float32))
        elif "gamma" in name:
            weight.assign(rng.uniform(0.5, 1.5, shape).astype(np.float32))
    return network


def describe(path, size: int = 64):
    path.with_name(path.name + ".json").write_text(json.dumps({"class_order": list(CLASS_CODES), "input_size": size}))
    return path


def test_the_reference_model_gives_keras_outputs_without_tensorflow(reference_model_path, tmp_path):
    script = f"""
import sys
import numpy as np
from microcrystalnet.classify import CrystalClassifier
classifier = CrystalClassifier.load({str(reference_model_path)!r})
probabilities = classifier.predict(np.random.default_rng(0).random((40, 64, 64, 1), dtype=np.float32))
np.save(sys.argv[1], probabilities)
print("torch:", classifier.runs_in_torch, "tensorflow loaded:", "tensorflow" in sys.modules)
"""
    saved = tmp_path / "probabilities.npy"
    done = subprocess.run([sys.executable, "-c", script, str(saved)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "torch: True tensorflow loaded: False" in done.stdout
    classifier = CrystalClassifier.load(reference_model_path)
    in_keras = np.asarray(classifier.keras_model.predict_on_batch(random_patches(40)))
    columns = [classifier.card.class_order.index(code) for code in CLASS_CODES]
    assert np.abs(np.load(saved) - in_keras[:, columns]).max() < 1e-5


@pytest.mark.parametrize("architecture", ["microcrystalnet", "reference"])
def test_a_trained_looking_network_of_ours_gives_keras_outputs(tmp_path, architecture):
    from microcrystalnet.classify.architecture import build_network

    network = with_trained_looking_statistics(build_network(architecture, 32))
    path = describe(tmp_path / f"{architecture}.keras", 32)
    network.save(path)
    patches = random_patches(20, 32)
    expected = np.asarray(network.predict_on_batch(patches))
    classifier = CrystalClassifier.load(path)
    assert classifier.runs_in_torch
    assert np.abs(classifier.predict(patches, batch_size=7) - expected).max() < 1e-5
    torch_network, input_shape = load_torch_network(path)
    assert input_shape == (None, 32, 32, 1) and np.abs(predict(torch_network, patches) - expected).max() < 1e-5


def test_a_network_that_is_not_a_plain_chain_runs_in_keras(tmp_path):
    from microcrystalnet.frameworks import import_keras

    keras = import_keras()
    inputs = keras.Input((64, 64, 1))
    branch = keras.layers.Conv2D(2, 3, padding="same")(inputs)
    joined = keras.layers.Add()([branch, keras.layers.Conv2D(2, 3, padding="same")(inputs)])
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.GlobalAveragePooling2D()(joined))
    network = keras.Model(inputs, outputs)
    path = describe(tmp_path / "branched.keras")
    network.save(path)
    with pytest.raises(UnsupportedNetwork):
        load_torch_network(path)
    classifier = CrystalClassifier.load(path)
    assert not classifier.runs_in_torch and classifier.keras_model is classifier.network
    patches = random_patches(5)
    assert np.abs(classifier.predict(patches) - np.asarray(network.predict_on_batch(patches))).max() < 1e-6


#: layers whose options torch would compute differently (the reason the test expects in the error)
DIFFERENT_IN_TORCH = {
    "strided same padding": (lambda layers, x: layers.Conv2D(4, 3, strides=2, padding="same")(x), "strides"),
    "even kernel, same padding": (lambda layers, x: layers.Conv2D(4, 2, padding="same")(x), "strides"),
    "softmax over image channels": (lambda layers, x: layers.Activation("softmax")(layers.Conv2D(3, 3)(x)),
                                    "softmax"),
    "half precision": (lambda layers, x: layers.Conv2D(4, 3, dtype="mixed_float16")(x), "float16"),
}


@pytest.mark.parametrize("case", DIFFERENT_IN_TORCH, ids=list(DIFFERENT_IN_TORCH))
def test_layer_options_torch_would_compute_differently_run_in_keras(tmp_path, case):
    from microcrystalnet.frameworks import import_keras

    keras = import_keras()
    build, reason = DIFFERENT_IN_TORCH[case]
    inputs = keras.Input((64, 64, 1))
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(build(keras.layers, inputs)))
    network = keras.Model(inputs, outputs)
    path = describe(tmp_path / "different.keras")
    network.save(path)
    with pytest.raises(UnsupportedNetwork, match=reason):
        load_torch_network(path)
    classifier = CrystalClassifier.load(path)
    assert not classifier.runs_in_torch
    patches = random_patches(3)
    assert np.abs(classifier.predict(patches) - np.asarray(network.predict_on_batch(patches))).max() < 1e-3
