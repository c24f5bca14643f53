import json

import numpy as np
import pytest

from microcrystalnet.classes import CLASS_CODES
from microcrystalnet.classify import CrystalClassifier, ModelDescriptionError
from microcrystalnet.config import PatchConfig
from microcrystalnet.io import to_unit_range
from microcrystalnet.patches import extract_patches, patch_box


def test_reference_model_predicts_four_probabilities_summing_to_one(reference_classifier, small_scene):
    patches = extract_patches(to_unit_range(small_scene.image), small_scene.labels)
    probabilities = reference_classifier.predict(patches)
    assert probabilities.shape == (small_scene.n_crystals, 4)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5) and probabilities.min() >= 0
    assert reference_classifier.card.class_order == ("AA", "PES", "RES", "RA/SA")


def test_outputs_are_reordered_to_the_package_class_order(reference_classifier, small_scene):
    patches = extract_patches(to_unit_range(small_scene.image), small_scene.labels)[:8]
    raw = np.asarray(reference_classifier.keras_model.predict_on_batch(patches))
    ordered = reference_classifier.predict(patches)
    for column, code in enumerate(CLASS_CODES):
        assert np.allclose(ordered[:, column], raw[:, reference_classifier.card.class_order.index(code)], atol=1e-5)


def test_reference_model_tells_rounded_from_rhombic_synthetic_crystals(reference_classifier):
    """The order check the README documents: output 3 ('spherical') and 2 ('rhombic')."""
    from microcrystalnet.synth import SceneSpec, render_scene

    spec = SceneSpec(shape=(512, 512), pixel_size_um=0.04, seed=5, class_weights=(1, 0, 0, 1))
    scene = render_scene(spec)
    probabilities = reference_classifier.predict(extract_patches(scene.clean, scene.labels))
    truth = np.array(scene.crystal_classes)
    rounded = probabilities[truth == "RA/SA"]
    rhombic = probabilities[truth == "RES"]
    ra_sa, res = CLASS_CODES.index("RA/SA"), CLASS_CODES.index("RES")
    assert rounded[:, ra_sa].mean() > rhombic[:, ra_sa].mean() + 0.2
    assert rhombic[:, res].mean() > rounded[:, res].mean() + 0.1


def test_patches_are_crystal_cutouts_in_unit_range():
    image = np.full((50, 60), 0.5, np.float32)
    labels = np.zeros((50, 60), np.int32)
    labels[10:30, 20:30] = 1
    labels[40:45, 0:5] = 2
    patches = extract_patches(image, labels)
    assert patches.shape == (2, 64, 64, 1) and patches.dtype == np.float32
    assert np.allclose(patches[0], 0.5)  # tight box: only crystal pixels
    with_margin = extract_patches(image, labels, PatchConfig(margin_fraction=0.5))
    assert with_margin[0].min() == 0.0 and with_margin[0].max() == pytest.approx(0.5)
    unmasked = extract_patches(image, labels, PatchConfig(margin_fraction=0.5, mask_background=False))
    assert np.allclose(unmasked[0], 0.5)
    assert patch_box((slice(10, 30), slice(20, 30)), (50, 60), 0.5) == (slice(0, 40), slice(15, 35))


def test_patch_input_shape_is_checked(reference_classifier):
    with pytest.raises(ValueError, match="patches must be"):
        reference_classifier.predict(np.zeros((2, 32, 32, 1), np.float32))
    assert reference_classifier.predict(np.zeros((0, 64, 64, 1), np.float32)).shape == (0, 4)


def test_unregistered_model_needs_a_description(tmp_path, reference_model_path):
    from microcrystalnet.frameworks import import_keras

    keras = import_keras()
    inputs = keras.Input((64, 64, 1))
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(inputs))
    path = tmp_path / "mine.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ModelDescriptionError, match="description file"):
        CrystalClassifier.load(path)
    (tmp_path / "mine.keras.json").write_text(json.dumps({"class_order": ["RES", "PES", "AA", "RA/SA"],
                                                          "input_size": 64}))
    classifier = CrystalClassifier.load(path)
    assert classifier.card.class_order == ("RES", "PES", "AA", "RA/SA")
    (tmp_path / "mine.keras.json").write_text(json.dumps({"class_order": ["RES", "RES", "AA", "RA/SA"],
                                                          "input_size": 64}))
    with pytest.raises(ModelDescriptionError, match="once"):
        CrystalClassifier.load(path)
    with pytest.raises(ModelDescriptionError, match="neither a known model"):
        CrystalClassifier.load(tmp_path / "absent.h5")
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"garbage")
    (tmp_path / "broken.h5.json").write_text(json.dumps({"class_order": list(CLASS_CODES), "input_size": 64}))
    with pytest.raises(ModelDescriptionError, match="cannot be loaded as a Keras model: it is neither"):
        CrystalClassifier.locate(broken)  # before any framework loads
    broken_archive = tmp_path / "broken.keras"
    broken_archive.write_bytes(zip_of({"config.json": "{}"}))
    broken_archive.with_name("broken.keras.json").write_text(broken.with_name("broken.h5.json").read_text())
    with pytest.raises(ModelDescriptionError, match="cannot be loaded as a Keras model"):
        CrystalClassifier.load(broken_archive)  # a zip that is no model: Keras says why


def zip_of(files: dict[str, str]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def test_a_model_with_code_in_a_lambda_layer_is_refused_without_running_it(tmp_path):
    import traceback

    from microcrystalnet.frameworks import import_keras

    keras = import_keras()
    marker = tmp_path / "code-ran"
    marker_name = str(marker)  # Keras saves the lambda's closure; it serialises strings, not paths
    inputs = keras.Input((64, 64, 1))
    hidden = keras.layers.Lambda(lambda tensor: (open(marker_name, "w").close(), tensor)[1])(inputs)
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(hidden))
    path = tmp_path / "crafted.keras"
    keras.Model(inputs, outputs).save(path)
    path.with_name(path.name + ".json").write_text(json.dumps({"class_order": list(CLASS_CODES), "input_size": 64}))
    marker.unlink()  # building the model ran the lambda once; loading must not
    with pytest.raises(ModelDescriptionError, match="could run code") as raised:
        CrystalClassifier.load(path)
    assert not marker.exists()
    assert "safe_mode" not in "".join(traceback.format_exception(raised.value))
