"""The learned segmenter: model files, tiled inference, seeded watershed, the backend's contract.

Models here are untrained (random weights, seeded) or the shipped one; what a trained model scores
on real images is measured by bench/bench_real_sem.py and tested in test_learned_segmenter_real.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from microcrystalnet.config import AnalysisConfig, ConfigError, SegmentConfig
from microcrystalnet.segment import LearnedSegmenter, make_segmenter, segment_crystals
from microcrystalnet.segment.learned.inference import (class_probabilities, crystal_instances, crystal_scores,
                                                       inference_network,
                                                       median_diameter_px, normalized,
                                                       rotation_averaged_probabilities, segment_with_model, tile_spans)
from microcrystalnet.segment.learned.model_file import (SegmenterModel, SegmenterModelError, WatershedThresholds,
                                                        load_segmenter_model, save_segmenter_model)
from microcrystalnet.segment.learned.network import CrystalUNet


def random_model(seed: int = 0) -> SegmenterModel:
    torch.manual_seed(seed)
    return SegmenterModel(CrystalUNet(), training={"data": "none (random weights)"}, name="random")


def disc(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius ** 2


def test_tiles_give_the_same_probabilities_as_the_whole_image():
    model = random_model()
    image = np.random.default_rng(1).random((300, 420)).astype(np.float32)
    whole = class_probabilities(model, image, tile_px=2048)
    tiled = class_probabilities(model, image, tile_px=160, margin_px=48)
    assert whole.shape == (3, 300, 420)
    np.testing.assert_allclose(whole.sum(axis=0), 1, atol=1e-5)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_many_tiles_say_how_far_the_network_is_in_the_log(caplog):
    image = np.random.default_rng(1).random((640, 640)).astype(np.float32)
    with caplog.at_level("INFO", logger="microcrystalnet.segment.learned.inference"):
        class_probabilities(random_model(), image, tile_px=96, margin_px=16)  # 10 x 10 tiles
    said = [record.getMessage() for record in caplog.records]
    assert said == ["crystal network: 30 of 100 tiles done", "crystal network: 50 of 100 tiles done",
                    "crystal network: 80 of 100 tiles done"]
    caplog.clear()
    with caplog.at_level("INFO", logger="microcrystalnet.segment.learned.inference"):
        class_probabilities(random_model(), image[:320, :320], tile_px=96, margin_px=16)  # 25 tiles: quick
    assert not caplog.records
    with caplog.at_level("INFO", logger="microcrystalnet.segment.learned.inference"):
        rotation_averaged_probabilities(random_model(), image, tile_px=96, margin_px=16)  # the analysis' two passes
    said = [record.getMessage() for record in caplog.records]
    assert said[0] == "crystal network, pass 1 of 2: 30 of 100 tiles done"
    assert said[-1] == "crystal network, pass 2 of 2: 80 of 100 tiles done" and len(said) == 6


def test_an_image_is_cut_into_the_fewest_equal_tiles():
    """A 1024-px image fits one tile (fixed 832-px steps made four, of 1.4 times its pixels)."""
    assert tile_spans(1024, tile_px=1024, margin_px=96) == [(0, 1024)]
    assert tile_spans(1120, tile_px=1024, margin_px=96, multiple=16) == [(0, 560), (560, 1120)]
    for size in (1025, 1700, 2500, 4099):
        spans = tile_spans(size, tile_px=1024, margin_px=96, multiple=16)
        assert spans[0][0] == 0 and spans[-1][1] == size and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
        assert max(stop - start for start, stop in spans) + 2 * 96 <= 1024
        assert len(spans) <= -(-size // (1024 - 2 * 96))  # the fewest that fit


def test_prediction_runs_a_faster_network_with_the_trained_networks_output():
    model = random_model()
    with torch.no_grad():  # batch-norm statistics and scales as training leaves them, not a new network's identity
        for module in model.network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5), module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5), module.bias.uniform_(-0.2, 0.2)
    image = np.random.default_rng(3).random((96, 160)).astype(np.float32)
    with torch.no_grad():
        expected = torch.softmax(model.network.eval()(torch.from_numpy(image)[None, None]), 1)[0].numpy()
    np.testing.assert_allclose(class_probabilities(model, image), expected, atol=1e-4)
    batch_norms = [module for module in model.network.modules() if isinstance(module, torch.nn.BatchNorm2d)]
    assert len(batch_norms) == 18  # the model's own network is left as it is
    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in model.network.fused_for_inference().modules())


def test_the_network_for_prediction_is_made_once_and_again_after_its_weights_change():
    """The fused copy is kept between images, never past a change of the weights (a training
    step, weights loaded): a stale copy would segment with the old ones."""
    model, other = random_model(0), random_model(1)
    image = np.random.default_rng(3).random((96, 160)).astype(np.float32)
    before = class_probabilities(model, image)
    assert inference_network(model.network) is inference_network(model.network)
    model.network.load_state_dict(other.network.state_dict())
    np.testing.assert_allclose(class_probabilities(model, image), class_probabilities(other, image), atol=1e-6)
    assert not np.allclose(class_probabilities(model, image), before, atol=1e-3)
    optimizer = torch.optim.SGD(model.network.parameters(), lr=0.5)
    model.network.train()
    optimizer.zero_grad()
    model.network(torch.from_numpy(image)[None, None]).square().mean().backward()
    optimizer.step()
    model.network.eval()
    with torch.no_grad():
        expected = torch.softmax(model.network(torch.from_numpy(image)[None, None]), 1)[0].numpy()
    np.testing.assert_allclose(class_probabilities(model, image), expected, atol=1e-4)


def test_prediction_does_not_depend_on_turning_the_image_by_180_degrees():
    model = random_model()
    image = np.random.default_rng(3).random((96, 160)).astype(np.float32)
    turned = np.ascontiguousarray(image[::-1, ::-1])
    assert not np.allclose(class_probabilities(model, turned)[:, ::-1, ::-1], class_probabilities(model, image),
                           atol=1e-3)  # the network alone does depend on it
    np.testing.assert_allclose(rotation_averaged_probabilities(model, turned)[:, ::-1, ::-1],
                               rotation_averaged_probabilities(model, image), atol=1e-5)


def test_touching_crystals_are_split_at_their_boundary_and_tiny_seeds_are_dropped():
    shape = (80, 120)
    left, right = disc(shape, (40, 40), 20), disc(shape, (40, 78), 20)
    speck = disc(shape, (10, 110), 1)
    probabilities = np.zeros((3, *shape), np.float32)
    probabilities[0] = 1
    for crystal in (left, right):
        core = disc(shape, (40, 40 if crystal is left else 78), 15)
        probabilities[:, crystal] = np.array([0.05, 0.15, 0.8])[:, None]  # rim: boundary
        probabilities[:, core] = np.array([0.0, 0.95, 0.05])[:, None]
    probabilities[:, speck] = np.array([0.0, 0.95, 0.05])[:, None]
    labels = crystal_instances(probabilities, thresholds=WatershedThresholds(seed=0.7, foreground=0.6,
                                                                             min_seed_fraction=0.03),
                               crystal_diameter_px=40)
    assert labels.max() == 2 and labels[10, 110] == 0
    assert labels[40, 40] != labels[40, 78] and (labels > 0).sum() == (left | right).sum()
    assert median_diameter_px(labels) == pytest.approx(2 * np.sqrt((left.sum() + right.sum()) / 2 / np.pi), rel=0.05)


def test_crystals_the_network_half_believes_in_are_dropped_by_their_score():
    shape = (60, 140)
    sure, faint = disc(shape, (30, 30), 15), disc(shape, (30, 100), 15)
    probabilities = np.zeros((3, *shape), np.float32)
    probabilities[0] = 1
    probabilities[:, sure] = np.array([0.02, 0.9, 0.08])[:, None]  # crystal score 0.98
    probabilities[:, faint] = np.array([0.25, 0.72, 0.03])[:, None]  # crystal score 0.75
    labels = crystal_instances(probabilities, thresholds=WatershedThresholds(seed=0.7, foreground=0.6))
    scores = crystal_scores(probabilities, labels)
    assert labels.max() == 2 and scores[0] == 0
    assert sorted(scores[1:]) == pytest.approx([0.75, 0.98])
    kept = crystal_instances(probabilities, thresholds=WatershedThresholds(seed=0.7, foreground=0.6,
                                                                           min_crystal_score=0.8))
    assert kept.max() == 1 and kept[30, 30] == 1 and kept[30, 100] == 0
    np.testing.assert_array_equal(kept > 0, sure)


def test_a_seed_outside_the_foreground_scores_zero_without_a_warning():
    """A seed threshold below the foreground's (a setting the threshold grid offers) can leave a
    seed that grows into no pixel: its label is empty, its score 0, and it is dropped quietly."""
    shape = (40, 80)
    doubtful, crystal = disc(shape, (20, 20), 10), disc(shape, (20, 60), 10)  # the empty seed is label 1
    probabilities = np.zeros((3, *shape), np.float32)
    probabilities[0] = 1
    probabilities[:, crystal] = np.array([0.02, 0.9, 0.08])[:, None]
    probabilities[:, doubtful] = np.array([0.45, 0.55, 0.0])[:, None]  # a seed at 0.5, outside foreground 0.6
    labels = np.zeros(shape, np.int32)
    labels[crystal] = 2  # label 1 has no pixel
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an empty label once gave NaN and a RuntimeWarning
        scores = crystal_scores(probabilities, labels)
        kept = crystal_instances(probabilities, thresholds=WatershedThresholds(seed=0.5, foreground=0.6,
                                                                               min_seed_fraction=0.0,
                                                                               min_crystal_score=0.5))
    assert scores[0] == 0 and scores[1] == 0 and scores[2] == pytest.approx(0.98)
    assert kept.max() == 1
    np.testing.assert_array_equal(kept > 0, crystal)


def test_images_are_seen_at_the_models_working_scale_and_labels_come_back_at_full_size():
    model = random_model()
    image = np.random.default_rng(2).random((90, 130)).astype(np.float32)
    for diameter in (10.0, 28.0, 70.0):
        labels = segment_with_model(image, model, crystal_diameter_px=diameter)
        assert labels.shape == image.shape and labels.dtype == np.int32
    with pytest.raises(ValueError, match="positive"):
        segment_with_model(image, model, crystal_diameter_px=0)


def test_a_model_file_keeps_weights_scale_thresholds_and_training_record(tmp_path):
    model = random_model()
    model.working_diameter_px = 30.0
    model.thresholds = WatershedThresholds(seed=0.65, foreground=0.55, min_seed_fraction=0.05)
    path = tmp_path / "m.pt"
    digest = save_segmenter_model(model, path)
    loaded = load_segmenter_model(path)
    assert loaded.sha256 == digest and loaded.working_diameter_px == 30.0
    assert loaded.thresholds == model.thresholds and loaded.training == {"data": "none (random weights)"}
    image = torch.rand(1, 1, 64, 64)
    with torch.no_grad():  # float16 storage: the same network within half precision
        np.testing.assert_allclose(loaded.network(image).numpy(), model.network.eval()(image).numpy(), atol=0.05)
    with pytest.raises(FileExistsError):
        save_segmenter_model(model, path)


@pytest.mark.parametrize("content, message", [(b"\x00\x01 random bytes" * 50, "cannot be read as a PyTorch file"),
                                              (b'{"a": "json file"}', "cannot be read as a PyTorch file"),
                                              (None, "not one written by 'microcrystalnet train-segmenter'")])
def test_a_file_that_is_no_segmenter_model_is_named_and_refused(tmp_path, content, message):
    path = tmp_path / "model.pt"
    if content is None:
        torch.save({"state": {}}, path)  # a PyTorch file of something else
    else:
        path.write_bytes(content)
    with pytest.raises(SegmenterModelError, match=message) as refused:
        load_segmenter_model(path)
    assert "weights_only" not in str(refused.value)  # torch's advice to unpickle anything: not passed on
    with pytest.raises(SegmenterModelError, match="is a folder"):
        load_segmenter_model(tmp_path)


def test_the_learned_backend_obeys_the_label_contract_and_says_which_model(tmp_path):
    path = tmp_path / "m.pt"
    save_segmenter_model(random_model(), path)
    config = SegmentConfig(backend="learned", crystal_size_px=20.0,
                           learned={"model": str(path), "seed_threshold": 0.4, "foreground_threshold": 0.3})
    segmenter = make_segmenter(config)
    assert isinstance(segmenter, LearnedSegmenter)
    assert segmenter.model.thresholds.seed == 0.4 and segmenter.model.thresholds.foreground == 0.3
    image = np.random.default_rng(3).random((96, 96)).astype(np.float32)
    result = segment_crystals(image, 0.01, config, segmenter)
    labels = result.labels
    assert labels.dtype == np.int32 and sorted(np.unique(labels)) == list(range(labels.max() + 1))
    assert result.segmenter["backend"] == "learned" and result.segmenter["model"] == str(path)
    assert result.statistics["crystal_diameter_px"] == 20.0


def test_learned_settings_are_validated():
    with pytest.raises(ConfigError, match="seed_threshold"):
        AnalysisConfig().updated(segment={"learned": {"seed_threshold": 1.5}})
    assert AnalysisConfig().segment.learned.model == "default"


def test_the_trained_model_gives_the_same_probabilities_tiled_as_on_the_whole_image(small_scene):
    """Tiles must overlap by the network's reach: with too short a margin the shipped model's
    probabilities differed by up to 0.2 at tile seams (random weights hide it)."""
    model = load_segmenter_model()
    image = normalized(small_scene.image[:400, :400])
    whole = class_probabilities(model, image, tile_px=2048)
    np.testing.assert_allclose(class_probabilities(model, image, tile_px=256), whole, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (this machine has none)")
def test_on_a_gpu_the_learned_segmenter_finds_what_it_finds_on_the_cpu(small_scene):
    from microcrystalnet.io import to_unit_range
    from microcrystalnet.metrics import match_instances

    image = to_unit_range(small_scene.image)
    on_cpu = make_segmenter(SegmentConfig(learned={"device": "cpu"}))
    on_gpu = make_segmenter(SegmentConfig(learned={"device": "cuda"}))
    assert next(on_gpu.model.network.parameters()).device.type == "cuda"
    cpu_probabilities = class_probabilities(on_cpu.model, image)
    gpu_probabilities = class_probabilities(on_gpu.model, image)
    assert gpu_probabilities.dtype == np.float32 and np.abs(gpu_probabilities - cpu_probabilities).max() < 1e-3
    config = SegmentConfig(crystal_size_px=36.0)
    cpu_labels = segment_crystals(image, small_scene.pixel_size_um, config, on_cpu).labels
    gpu_labels = segment_crystals(image, small_scene.pixel_size_um, config, on_gpu).labels
    assert match_instances(cpu_labels, gpu_labels).f1 > 0.98
