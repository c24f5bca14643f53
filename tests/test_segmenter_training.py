"""Training the learned segmenter: targets, crops and loss masks, the training loop, thresholds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from microcrystalnet.metrics import match_instances
from microcrystalnet.segment.learned.inference import median_diameter_px, segment_with_model
from microcrystalnet.segment.learned.model_file import (SegmenterModel, WatershedThresholds, load_segmenter_model,
                                                        write_segmenter_model)
from microcrystalnet.segment.learned.network import CrystalUNet
from microcrystalnet.segment.learned.training import (EDGE_BAND_FRACTION, PARTIAL_RING_FRACTION, OutlinedImage, TrainingCrops,
                                                      choose_thresholds, crops_of_outlined_images,
                                                      outlined_training_crops, partial_outline_loss_mask,
                                                      synthetic_training_crops, three_class_targets,
                                                      train_on_outlines, train_segmenter)

#: the real SEM development set, beside the repository (never inside it: licences)
REAL_SEM_MANIFEST = Path(__file__).resolve().parents[1].parent / "shared" / "real-sem" / "manifest.json"


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # results and the determinism test are for one thread


def untrained_model(seed: int = 0) -> SegmenterModel:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SegmenterModel(CrystalUNet())


@pytest.fixture(scope="module")
def tiny_crops() -> TrainingCrops:
    return synthetic_training_crops(n_scenes=6, first_seed=0, crop_px=64)


def test_three_class_targets_mark_a_two_pixel_inner_rim():
    labels = np.zeros((10, 12), np.int32)
    labels[1:9, 1:6] = 1   # 8 x 5 crystal
    labels[1:9, 6:11] = 2  # touching it on the right
    expected = np.zeros((10, 12), np.int64)
    expected[1:9, 1:11] = 2
    expected[3:7, 3:4] = 1   # crystal 1: 8 x 5 minus a 2-px rim leaves 4 x 1
    expected[3:7, 8:9] = 1   # crystal 2 likewise
    assert np.array_equal(three_class_targets(labels), expected)


def test_partial_outlines_carry_loss_near_the_outlined_crystals_only():
    labels = np.zeros((160, 160), np.int32)
    rows, cols = np.ogrid[:160, :160]
    labels[(rows - 40) ** 2 + (cols - 40) ** 2 <= 14 ** 2] = 1  # one outlined crystal, 28 px across
    mask = partial_outline_loss_mask(labels, crystal_diameter_px=28.0)
    ring_px = PARTIAL_RING_FRACTION * 28
    assert mask[40, 40] and mask[40, 40 + 14 + int(ring_px)] and not mask[40, 40 + 14 + int(ring_px) + 2]
    assert not mask[120, 120]
    image = np.random.default_rng(0).random((160, 160)).astype(np.float32)
    partial = outlined_training_crops(image, labels, working_diameter_px=28.0, crop_px=64)
    labels[150:160, 0:10] = 2  # a crystal touching the image edge: outlines that include cut crystals
    complete = outlined_training_crops(image, labels, crystal_diameter_px=28.0, working_diameter_px=28.0, crop_px=64,
                                       complete=True)
    assert len(complete) == 16 and complete.loss_mask.all()  # crops 32 px apart: 4 x 4
    assert 0 < len(partial) < len(complete)
    assert partial.loss_mask.sum() < partial.loss_mask.size and partial.sources[0]["complete_outlines"] is False
    assert partial.sources[0]["crystal_diameter_px"] == pytest.approx(28.0, abs=1.0)


def test_complete_outlines_that_leave_out_the_crystals_cut_by_the_edge_teach_no_background_there():
    labels = np.zeros((160, 160), np.int32)
    rows, cols = np.ogrid[:160, :160]
    labels[(rows - 80) ** 2 + (cols - 80) ** 2 <= 14 ** 2] = 1  # 28 px across, off the edge
    crops = outlined_training_crops(np.zeros((160, 160), np.float32), labels, working_diameter_px=28.0, crop_px=64,
                                    complete=True)
    assert crops.sources[0]["edge_band_px"] == pytest.approx(EDGE_BAND_FRACTION * 28.0, abs=1.0)
    corner, centre = crops.loss_mask[0], crops.loss_mask[len(crops) // 2 + 2]  # crops at (0, 0) and (64, 64)
    assert not corner[:27, :].any() and not corner[:, :27].any() and corner[28:, 28:].all()
    assert centre.all()


def test_thresholds_are_chosen_on_crystals_off_the_edge_where_the_outlines_leave_those_out():
    rows, cols = np.ogrid[:192, :192]
    labels = np.zeros((192, 192), np.int32)
    for number, (row, col) in enumerate([(60, 50), (60, 130), (140, 90)], start=1):
        labels[(rows - row) ** 2 + (cols - col) ** 2 <= 14 ** 2] = number  # 28 px across, off the edge
    image = np.where(labels > 0, 0.8, 0.2).astype(np.float32)
    cut = image.copy()
    cut[(rows + 4) ** 2 + (cols - 150) ** 2 <= 14 ** 2] = 0.8  # a crystal cut by the top edge, not outlined
    grid = {"seed": (0.7,), "foreground": (0.7,), "min_seed_fraction": (0.03,), "min_crystal_score": (0.0,)}
    model = load_segmenter_model(None)
    alone = choose_thresholds(model, [(image, labels, 28.0)], grid=grid).mean_f1
    assert alone == 1.0  # the three found; the one cut by the edge is not counted against them:
    assert choose_thresholds(model, [(cut, labels, 28.0)], grid=grid).mean_f1 == 1.0


def test_outlined_crops_are_rescaled_to_the_working_diameter():
    labels = np.zeros((200, 200), np.int32)
    labels[20:76, 20:76] = 1  # ~63 px across
    crops = outlined_training_crops(np.zeros((200, 200), np.uint8), labels, crystal_diameter_px=56.0,
                                    working_diameter_px=28.0, crop_px=64, complete=True)
    assert crops.images.shape[1:] == (64, 64) and crops.images.dtype == np.float32
    assert sorted(np.unique(crops.labels)) == [0, 1]
    assert max(np.count_nonzero(crop == 1) for crop in crops.labels) == 28 * 28  # halved


def test_training_is_deterministic_for_a_seed_and_step_budget(tiny_crops):
    first = train_segmenter(tiny_crops, steps=3, batch_size=2, seed=5)
    second = train_segmenter(tiny_crops, steps=3, batch_size=2, seed=5)
    other = train_segmenter(tiny_crops, steps=3, batch_size=2, seed=6)
    assert all(torch.equal(a, b) for a, b in zip(first.network.state_dict().values(),
                                                 second.network.state_dict().values()))
    assert not torch.equal(first.network.head.weight, other.network.head.weight)
    assert first.training["steps"] == 3 and first.training["seed"] == 5 and first.training["base_model"] is None
    assert first.training["data"][0]["licence"].startswith("generated by microcrystalnet.synth")


def test_scenes_rendered_in_several_processes_give_the_same_crops(tiny_crops):
    in_two = synthetic_training_crops(n_scenes=6, first_seed=0, crop_px=64, workers=2)
    assert np.array_equal(in_two.images, tiny_crops.images) and np.array_equal(in_two.labels, tiny_crops.labels)
    assert in_two.sources == tiny_crops.sources and len(in_two) > 6  # some scenes give two crops


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (this machine has none)")
def test_training_on_a_gpu_gives_a_model_file_that_loads_anywhere(tiny_crops, tmp_path):
    on_cpu = train_segmenter(tiny_crops, steps=3, batch_size=2, seed=5)
    on_gpu = train_segmenter(tiny_crops, steps=3, batch_size=2, seed=5, device="cuda")
    assert on_gpu.network.head.weight.device.type == "cuda" and on_gpu.training["device"] == "cuda"
    write_segmenter_model(on_gpu, tmp_path / "gpu.pt")
    loaded = load_segmenter_model(tmp_path / "gpu.pt")  # on the CPU by default
    assert loaded.network.head.weight.device.type == "cpu"
    # the same start and batches: the weights part only by the GPU's rounding
    assert torch.allclose(loaded.network.head.weight, on_cpu.network.head.weight, atol=1e-2)


def test_a_wider_network_is_trained_from_scratch_and_its_file_keeps_its_width(tiny_crops, tmp_path):
    wide = train_segmenter(tiny_crops, steps=1, batch_size=2, network_base=12)
    assert wide.network.base == 12 and wide.network.head.in_channels == 12
    write_segmenter_model(wide, tmp_path / "wide.pt")
    assert load_segmenter_model(tmp_path / "wide.pt").network.base == 12
    tuned = train_segmenter(tiny_crops, base_model=wide, steps=1, batch_size=2, network_base=8)
    assert tuned.network.base == 12  # fine-tuning keeps the base model's network


def test_fine_tuning_leaves_the_base_model_unchanged(tiny_crops):
    base = untrained_model()
    before = base.to_bytes()
    calls = []
    tuned = train_segmenter(tiny_crops, base_model=base, steps=2, batch_size=4, replay=tiny_crops,
                            progress=lambda step, total, loss: calls.append((step, total, loss)))
    assert base.to_bytes() == before
    assert not torch.equal(tuned.network.head.weight, base.network.head.weight)
    assert [call[:2] for call in calls] == [(1, 2), (2, 2)] and all(np.isfinite(call[2]) for call in calls)
    assert tuned.training["base_model"]["sha256"] and tuned.training["replay_per_batch"] == 1


def test_a_step_or_time_budget_is_required(tiny_crops):
    with pytest.raises(ValueError, match="budget"):
        train_segmenter(tiny_crops)


def test_crops_at_another_working_scale_than_the_base_model_are_refused(tiny_crops):
    base = untrained_model()
    base.working_diameter_px = 40.0
    with pytest.raises(ValueError, match="different working diameters"):
        train_segmenter(tiny_crops, base_model=base, steps=1)


def _fine_tuned_f1(image, labels, *, complete: bool, steps: int) -> tuple[float, float]:
    """F1 on the bottom half of an image before and after fine-tuning an untrained model on the
    outlines of its top half."""
    half = image.shape[0] // 2
    diameter = median_diameter_px(labels)
    crops = outlined_training_crops(image[:half], labels[:half], complete=complete, crop_px=64)
    base = untrained_model()
    tuned = train_segmenter(crops, base_model=base, steps=steps, learning_rate=2e-3, seed=0)
    held_out_image, held_out_labels = image[half:], labels[half:]
    return tuple(match_instances(held_out_labels,
                                 segment_with_model(held_out_image, model, crystal_diameter_px=diameter)).f1
                 for model in (base, tuned))


def test_fine_tuning_on_outlined_crystals_beats_the_model_it_started_from(small_scene):
    before, after = _fine_tuned_f1(small_scene.image, small_scene.labels, complete=True, steps=60)
    assert after >= before + 0.3, (before, after)


def test_fine_tuning_on_a_real_crop_beats_the_model_it_started_from():
    if not REAL_SEM_MANIFEST.is_file():
        pytest.skip(f"the real SEM development set is not at {REAL_SEM_MANIFEST.parent} (../shared/real-sem)")
    from microcrystalnet.io.reference import read_reference_set

    powder = next(image for image in read_reference_set(REAL_SEM_MANIFEST) if image.material == "powder")
    before, after = _fine_tuned_f1(powder.pixels[:512, :768], powder.labels[:512, :768], complete=True, steps=60)
    assert after >= before + 0.3 and after >= 0.5, (before, after)


def test_chosen_thresholds_are_the_best_of_the_grid(small_scene, tiny_crops):
    model = train_segmenter(tiny_crops, steps=20, batch_size=4, seed=0)
    image, labels = small_scene.image[:256, :256], small_scene.labels[:256, :256]
    diameter = median_diameter_px(small_scene.labels)
    grid = {"seed": (0.5, 0.8), "foreground": (0.3, 0.6), "min_seed_fraction": (0.03, 0.2),
            "min_crystal_score": (0.0, 0.9)}
    choice = choose_thresholds(model, [(image, labels, diameter)], grid=grid)
    assert set(choice.mean_f1_by_setting) == {(seed, foreground, fraction, score) for seed in (0.5, 0.8)
                                              for foreground in (0.3, 0.6) for fraction in (0.03, 0.2)
                                              for score in (0.0, 0.9)}
    assert choice.mean_f1 == max(choice.mean_f1_by_setting.values())
    assert choice.thresholds == WatershedThresholds(*max(choice.mean_f1_by_setting, key=choice.mean_f1_by_setting.get))
    for (seed, foreground, fraction, score), f1 in choice.mean_f1_by_setting.items():
        model.thresholds = WatershedThresholds(seed, foreground, fraction, score)
        assert match_instances(labels, segment_with_model(image, model, crystal_diameter_px=diameter)).f1 == \
            pytest.approx(f1)


def test_training_on_complete_outlines_chooses_the_thresholds_on_them(small_scene):
    # the shipped model with thresholds the grid does not hold: kept unless chosen again
    base = load_segmenter_model(None)
    base.thresholds = WatershedThresholds(seed=0.95, foreground=0.95, min_seed_fraction=0.5, min_crystal_score=0.99)
    outlined = [OutlinedImage(small_scene.image[:256, :256], small_scene.labels[:256, :256])]
    crops = crops_of_outlined_images(outlined, working_diameter_px=base.working_diameter_px, complete=True)
    kept = train_on_outlines(crops, base_model=base, steps=2)
    assert kept.thresholds == base.thresholds and "thresholds" not in kept.training

    chosen = train_on_outlines(crops, base_model=base, steps=2, choose_thresholds_on=outlined)
    again = choose_thresholds(chosen, [(outlined[0].image, outlined[0].labels,
                                        median_diameter_px(outlined[0].labels))])
    assert chosen.thresholds == again.thresholds != base.thresholds
    assert chosen.training["thresholds"] == {"chosen_on": "1 outlined image(s) (complete outlines)",
                                             "mean_f1": round(again.mean_f1, 4),
                                             "replaced": base.thresholds.as_dict()}
    assert again.mean_f1 > match_instances(outlined[0].labels, segment_with_model(
        outlined[0].image, kept, crystal_diameter_px=median_diameter_px(outlined[0].labels))).f1


def test_without_memory_for_the_threshold_choice_the_trained_network_is_kept(small_scene, monkeypatch):
    from microcrystalnet.segment.learned import training

    def out_of_memory(*arguments, **keywords):
        raise MemoryError
    monkeypatch.setattr(training, "choose_thresholds", out_of_memory)  # as a huge image would
    base = untrained_model()
    outlined = [OutlinedImage(small_scene.image[:128, :128], small_scene.labels[:128, :128])]
    crops = crops_of_outlined_images(outlined, working_diameter_px=base.working_diameter_px, complete=True)
    said = []
    model = train_on_outlines(crops, base_model=base, steps=1, choose_thresholds_on=outlined, announce=said.append)
    assert model.training["steps"] == 1 and model.thresholds == base.thresholds
    assert "thresholds" not in model.training
    assert said[-1].startswith("not enough memory to choose the watershed thresholds")


def test_a_trained_model_replaces_only_a_model_file(tmp_path):
    from microcrystalnet.segment.learned.model_file import is_segmenter_model_file

    path = tmp_path / "model.pt"
    first = write_segmenter_model(untrained_model(0), path)
    assert is_segmenter_model_file(path) and load_segmenter_model(path).sha256 == first
    second = write_segmenter_model(untrained_model(1), path)
    assert second != first and load_segmenter_model(path).sha256 == second
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no partial file left
    other = tmp_path / "other.pt"
    other.write_bytes(b"not a model")
    with pytest.raises(FileExistsError, match="not a segmenter model"):
        write_segmenter_model(untrained_model(0), other)
    assert other.read_bytes() == b"not a model" and not is_segmenter_model_file(other)
