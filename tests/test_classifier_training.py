"""Training, evaluating and reusing classifiers: architecture, NSR block, data, splits, scores, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import roifile
import tifffile

from microcrystalnet.classes import CLASS_CODES
from microcrystalnet.classify import CrystalClassifier, ModelDescriptionError
from microcrystalnet.classify.architecture import (BASELINES, MicroCrystalNetSpec, NormalizedSparseReduction,
                                                   build_baseline, build_microcrystalnet,
                                                   build_reference_architecture, keras)
from microcrystalnet.classify.dataset import (DatasetError, PatchDataset, load_annotated_images, load_class_folders,
                                              synthetic_dataset, write_class_folders)
from microcrystalnet.classify.scores import classification_scores, top_k_accuracy
from microcrystalnet.classify.splits import SplitError, cross_validation_splits, train_validation_test_split
from microcrystalnet.classify.training import train_classifier
from microcrystalnet.config import AnalysisConfig, TrainingConfig
from microcrystalnet.outline import outlines_from_labels
from microcrystalnet.synth import SceneSpec, render_scene

EVALUATION_FILES = {"metrics.json", "predictions.csv", "confusion_matrix.png", "precision_recall.png", "roc.png",
                    "tsne.png", "explain.png", "training_curves.png", "report.html"}


def expected_microcrystalnet_parameters(spec: MicroCrystalNetSpec, size: int = 64) -> int:
    count, channels = 0, 1
    for filters, kernel in zip(spec.filters, spec.kernel_sizes):
        count += kernel * kernel * channels * filters + 4 * filters  # conv without bias + batch norm
        channels = filters
    features = (size // 2 ** len(spec.filters)) ** 2 * channels
    count += 2 * features + features * spec.nsr_units  # NSR running statistics + projection
    width = spec.nsr_units
    for units in spec.dense_units:
        count += width * units + 4 * units
        width = units
    return count + width * len(CLASS_CODES) + len(CLASS_CODES)


def test_microcrystalnet_has_the_papers_blocks_and_reports_its_size():
    spec = MicroCrystalNetSpec()
    network = build_microcrystalnet(64, spec)
    kinds = [type(layer).__name__ for layer in network.layers]
    assert kinds.count("Conv2D") == 4 and kinds.count("MaxPooling2D") == 4
    convolutions = [layer for layer in network.layers if type(layer).__name__ == "Conv2D"]
    assert [c.filters for c in convolutions] == [32, 64, 128, 128]
    assert [c.kernel_size[0] for c in convolutions] == [7, 5, 3, 3]
    block = kinds[kinds.index("Conv2D"):kinds.index("Conv2D") + 5]
    assert block == ["Conv2D", "BatchNormalization", "ReLU", "MaxPooling2D", "Dropout"]
    assert kinds.count("NormalizedSparseReduction") == 1
    dense = [layer for layer in network.layers if type(layer).__name__ == "Dense"]
    assert [d.units for d in dense] == [1024, 256, 4] and dense[-1].activation.__name__ == "softmax"
    assert [layer.rate for layer in network.layers if type(layer).__name__ == "Dropout"][-2:] == [0.5, 0.5]
    assert network.output_shape == (None, 4)
    assert network.count_params() == expected_microcrystalnet_parameters(spec) == 1_334_180
    assert build_microcrystalnet(32).output_shape == (None, 4)  # input size is configurable
    with pytest.raises(ValueError, match="too small"):
        build_microcrystalnet(8)


def test_reference_architecture_matches_the_released_model(reference_classifier):
    ours = build_reference_architecture(64)
    theirs = reference_classifier.keras_model
    assert ours.count_params() == theirs.count_params() == 287_156
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]


@pytest.mark.parametrize("name", BASELINES)
def test_baselines_take_the_same_patches(name):
    network = build_baseline(name, 64)
    assert network.input_shape == (None, 64, 64, 1) and network.output_shape == (None, 4)
    norms = [layer for layer in network.layers[-2].layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert all(layer.momentum == MicroCrystalNetSpec().bn_momentum for layer in norms)  # as in MicroCrystalNet
    if name == "inceptionv3":  # needs at least 75 px: resized inside the model
        assert network.get_layer("resize_to_minimum").output.shape[1:3] == (75, 75)


def test_nsr_block_normalises_reduces_and_adds_its_sparsity_penalty():
    layer = NormalizedSparseReduction(units=8, l1=1e-3, orthogonality=0.0)
    features = np.random.default_rng(0).normal(5.0, 3.0, (256, 40)).astype(np.float32)
    reduced = np.asarray(layer(features, training=True))
    assert reduced.shape == (256, 8)
    normalised = np.asarray(layer.normalize(features, training=True))
    assert np.allclose(normalised.mean(axis=0), 0, atol=1e-4)
    assert np.allclose(normalised.std(axis=0), 1, atol=1e-3)
    projection = np.asarray(layer.projection)
    penalty = sum(float(loss) for loss in layer.losses)
    assert penalty == pytest.approx(1e-3 * np.abs(projection).sum(), rel=1e-5)
    assert np.allclose(projection.T @ projection, np.eye(8), atol=1e-4)  # starts as an orthonormal projection
    # inference uses the running statistics, which moved towards the data's
    assert np.all(np.asarray(layer.moving_mean) > 0.4)
    orthogonal = NormalizedSparseReduction(units=8, l1=0.0, orthogonality=1.0)
    orthogonal(features, training=True)
    assert float(sum(orthogonal.losses)) == pytest.approx(0.0, abs=1e-10)


def test_a_saved_microcrystalnet_loads_and_predicts_the_same(tmp_path):
    network = build_microcrystalnet(32)
    patches = np.random.default_rng(1).random((5, 32, 32, 1)).astype(np.float32)
    network.save(tmp_path / "m.keras")
    (tmp_path / "m.keras.json").write_text(json.dumps({"class_order": list(CLASS_CODES), "input_size": 32,
                                                       "patch": {"margin_fraction": 0.1, "mask_background": False}}))
    classifier = CrystalClassifier.load(tmp_path / "m.keras")
    assert np.allclose(classifier.predict(patches), network.predict(patches, verbose=0), atol=1e-5)
    patch = classifier.patch_config(AnalysisConfig().patch)
    assert (patch.size, patch.margin_fraction, patch.mask_background) == (32, 0.1, False)
    (tmp_path / "m.keras.json").write_text(json.dumps({"class_order": list(CLASS_CODES), "input_size": 32,
                                                       "input_scaling": "zero-mean"}))
    with pytest.raises(ModelDescriptionError, match="input_scaling"):
        CrystalClassifier.load(tmp_path / "m.keras")


def test_scores_on_a_hand_made_example():
    probabilities = np.array([[0.7, 0.2, 0.1, 0.0], [0.1, 0.6, 0.3, 0.0], [0.5, 0.1, 0.4, 0.0],
                              [0.1, 0.1, 0.1, 0.7]])
    labels = np.array([0, 1, 2, 3])
    scores = classification_scores(probabilities, labels)
    assert scores["accuracy"] == scores["top_1_accuracy"] == 0.75
    assert scores["top_2_accuracy"] == 1.0 and top_k_accuracy(probabilities, labels, 1) == 0.75
    assert scores["confusion_matrix"] == [[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]]
    assert scores["per_class"]["RES"]["precision"] == 0.5 and scores["per_class"]["AA"]["recall"] == 0.0
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 1 + 0 + 1) / 4)
    assert scores["per_class"]["RA/SA"]["roc_auc"] == 1.0


def test_splits_keep_each_image_on_one_side_and_every_class_in_training():
    rng = np.random.default_rng(0)
    groups = np.repeat([f"image{i}" for i in range(30)], 20)
    labels = rng.integers(0, 4, len(groups))
    split = train_validation_test_split(labels, groups)
    parts = [set(groups[split.train]), set(groups[split.validation]), set(groups[split.test])]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert len(split.train) + len(split.validation) + len(split.test) == len(labels)
    assert 0.05 < len(split.test) / len(labels) < 0.15 and 0.05 < len(split.validation) / len(labels) < 0.15
    folds = cross_validation_splits(labels, groups, 5)
    assert sorted(np.concatenate([f.test for f in folds]).tolist()) == list(range(len(labels)))
    with pytest.raises(SplitError, match="source images"):
        train_validation_test_split(labels[:40], groups[:40])


#: patches of 32 px, not the default 64: a quarter of the training time, and enough to learn the classes
PATCH_SIZE = 32


@pytest.fixture(scope="module")
def synthetic_patches() -> PatchDataset:
    config = AnalysisConfig.model_validate({"patch": {"size": PATCH_SIZE}})
    return synthetic_dataset(20, shape=(512, 512), config=config)


def test_short_training_beats_chance_on_held_out_scenes_and_writes_the_run(synthetic_patches, tmp_path):
    run = tmp_path / "run"
    scores = train_classifier(synthetic_patches, run, TrainingConfig(epochs=10))
    assert scores["patches"] >= 30
    assert scores["accuracy"] > 0.5, scores  # chance: 0.25 (four classes, roughly balanced)
    assert {"config.json", "split.json", "history.csv", "model.keras", "model.keras.json"} <= \
        {p.name for p in run.iterdir()}
    assert EVALUATION_FILES <= {p.name for p in (run / "evaluation").iterdir()}
    split = json.loads((run / "split.json").read_text())
    images = {part: {name.split("#")[0] for name in names} for part, names in split.items()}
    assert not images["train"] & images["test"]
    metrics = json.loads((run / "evaluation" / "metrics.json").read_text())
    assert metrics["accuracy"] == scores["accuracy"] and len(metrics["confusion_matrix"]) == 4
    assert all(metrics["per_class"][c]["average_precision"] is not None for c in CLASS_CODES)
    history = (run / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,") and "val_loss" in history[0] and len(history) >= 2
    classifier = CrystalClassifier.load(run / "model.keras")
    assert classifier.card.class_order == CLASS_CODES and classifier.input_size == PATCH_SIZE
    html = (run / "evaluation" / "report.html").read_text()
    assert all(name in html for name in ("confusion_matrix.png", "tsne.png", "explain.png"))


def test_class_folders_round_trip_with_groups_and_unclear_left_out(synthetic_patches, tmp_path):
    small = synthetic_patches.subset(np.arange(40))
    write_class_folders(small, tmp_path / "data")
    (tmp_path / "data" / "unclear").mkdir()
    tifffile.imwrite(tmp_path / "data" / "unclear" / "x.tif", np.zeros((20, 20), np.uint8))
    loaded = load_class_folders(tmp_path / "data", PATCH_SIZE)
    assert len(loaded) == 40 and loaded.dropped == {"in 'unclear'": 1}
    assert sorted(loaded.groups.tolist()) == sorted(small.groups.tolist())
    assert loaded.class_counts() == small.class_counts()
    by_name = {name: index for index, name in enumerate(loaded.names)}
    first = next(name for name in loaded.names if name.endswith("__00000.png"))
    assert np.allclose(loaded.patches[by_name[first]], small.patches[0], atol=0.5 / 255 + 1e-6)


def test_outputs_go_only_into_new_empty_or_own_folders(synthetic_patches, tmp_path):
    from microcrystalnet.classify.evaluation import write_evaluation
    from microcrystalnet.io.result_folder import OutputFolderError

    small = synthetic_patches.subset(np.arange(10))
    users = tmp_path / "users"
    users.mkdir()
    (users / "history.csv").write_text("my own table")
    for write in (lambda: write_class_folders(small, users), lambda: train_classifier(synthetic_patches, users),
                  lambda: write_evaluation(users, None, small)):
        with pytest.raises(OutputFolderError, match="did not write"):
            write()
    assert [p.name for p in users.iterdir()] == ["history.csv"] and (users / "history.csv").read_text() == "my own table"


def test_bad_training_data_gives_clear_messages(tmp_path):
    (tmp_path / "RES").mkdir()
    with pytest.raises(DatasetError, match="RES: class folder holds no patch images"):
        load_class_folders(tmp_path)
    (tmp_path / "RES" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(DatasetError, match="broken.png: cannot be read"):
        load_class_folders(tmp_path)
    (tmp_path / "RES" / "broken.png").unlink()
    tifffile.imwrite(tmp_path / "RES" / "ok.tif", np.zeros((20, 20), np.uint8))
    (tmp_path / "crystals").mkdir()
    with pytest.raises(DatasetError, match="not a crystal class"):
        load_class_folders(tmp_path)
    with pytest.raises(DatasetError, match="no such folder"):
        load_class_folders(tmp_path / "absent")


def _write_annotated_scene(folder: Path, seed: int) -> tuple[Path, Path, list[str]]:
    spec = SceneSpec(shape=(512, 512), pixel_size_um=0.02, seed=seed)
    scene = render_scene(spec)
    image = folder / f"scene{seed}.tif"
    tifffile.imwrite(image, scene.image, imagej=True, resolution=(50, 50), metadata={"unit": "um"})
    outlines = outlines_from_labels(scene.labels)
    names = [f"{label:04d}-{scene.crystal_classes[label - 1].replace('/', '-')}" for label in sorted(outlines)]
    names[0], names[1] = "0001-unclear", "0002"
    rois = [roifile.ImagejRoi.frompoints(outlines[label], name=name) for label, name in zip(sorted(outlines), names)]
    roiset = folder / f"scene{seed}.zip"
    roifile.roiwrite(roiset, rois)
    return image, roiset, list(scene.crystal_classes)


def test_images_with_fiji_rois_give_patches_of_the_named_classes(tmp_path):
    image, roiset, classes = _write_annotated_scene(tmp_path, 7)
    dataset = load_annotated_images([(image, roiset)])
    assert len(dataset) == len(classes) - 2
    assert dataset.dropped == {"unclear": 1, "without a class": 1}
    assert [CLASS_CODES[i] for i in dataset.labels] == classes[2:]
    assert set(dataset.groups.tolist()) == {"scene7"} and dataset.names[0] == "scene7.tif#0003-" + \
        classes[2].replace("/", "-")
    table = tmp_path / "classes.csv"
    table.write_text("Name,Class\n0002,rhombic\n")
    from_table = load_annotated_images([(image, roiset)], class_table=table)
    assert len(from_table) == 1 and CLASS_CODES[from_table.labels[0]] == "RES"
    assert from_table.dropped == {"without a class": len(classes) - 1}


def test_cli_writes_patches_and_evaluates_the_reference_model(tmp_path, model_dir_env):
    def run(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "microcrystalnet", *arguments], capture_output=True, text=True,
                              timeout=600)

    done = run("patches", "--synthetic", "2", "--scene-size", "512", "--out", str(tmp_path / "data"), "-q")
    assert done.returncode == 0, done.stderr
    assert {p.name for p in (tmp_path / "data").iterdir() if not p.name.startswith(".")} == {"RES", "PES", "AA", "RA-SA"}
    done = run("evaluate", str(tmp_path / "data"), "--model", "reference-2023-11-19", "--out",
               str(tmp_path / "report"), "--no-download")
    assert done.returncode == 0, done.stderr
    assert EVALUATION_FILES - {"training_curves.png"} <= {p.name for p in (tmp_path / "report").iterdir()}
    assert "accuracy" in done.stderr and "macro F1" in done.stderr
    done = run("train", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "-q")
    assert done.returncode == 2 and "source images" in done.stderr  # 2 scenes cannot be split 80/10/10 by image
    done = run("train", str(tmp_path / "absent"), "--out", str(tmp_path / "run"), "-q")
    assert done.returncode == 2 and "pairs of IMAGE ROISET" in done.stderr


def test_cross_validation_trains_one_model_per_fold_and_summarises(synthetic_patches, tmp_path):
    summary = train_classifier(synthetic_patches, tmp_path, TrainingConfig(epochs=1, folds=3))
    assert len(summary["folds"]) == 3
    for number in (1, 2, 3):
        assert (tmp_path / f"fold-{number}" / "model.keras").is_file()
        assert (tmp_path / f"fold-{number}" / "evaluation" / "report.html").is_file()
    written = json.loads((tmp_path / "cross_validation.json").read_text())
    accuracies = [fold["accuracy"] for fold in written["folds"]]
    assert written["mean"]["accuracy"] == pytest.approx(np.mean(accuracies))
    assert written["std"]["accuracy"] == pytest.approx(np.std(accuracies))
    tested = [set(json.loads((tmp_path / f"fold-{n}" / "split.json").read_text())["test"]) for n in (1, 2, 3)]
    assert not (tested[0] & tested[1] or tested[0] & tested[2] or tested[1] & tested[2])
    assert len(tested[0] | tested[1] | tested[2]) == len(synthetic_patches)
