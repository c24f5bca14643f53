"""The SAM path with the official architecture and random weights (no SAM weights can be had here).

Masks from random weights cannot be judged; these tests check everything around them: loading
and checking checkpoints, device choice, working scale, prompt batching and counting, tiling,
both modes, and that the result obeys the label contract. The mask geometry itself is tested on
exact synthetic masks in test_sam_masks.py.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from microcrystalnet.config import SamConfig, SegmentConfig
from microcrystalnet.frameworks import import_segment_anything, import_torch
from microcrystalnet.io import to_unit_range
from microcrystalnet.segment import segment_crystals
from microcrystalnet.segment.sam import (SAM_CHECKPOINTS, LoadedSam, SamCrystalSegmenter, load_sam, tile_overlap_px,
                                        working_pixel_size)
from microcrystalnet.segment.sam_tuning import TuningGrid, proposal_settings
from microcrystalnet.synth import SceneSpec, render_scene
from microcrystalnet.weights import ModelUnavailableError

SCENE = SceneSpec(shape=(256, 256), pixel_size_um=0.04, seed=11)


def reduced_sam() -> LoadedSam:
    """SAM's own classes with a small image encoder (2 blocks of width 48) and random weights."""
    torch = import_torch()
    import_segment_anything()
    from segment_anything.build_sam import _build_sam

    torch.manual_seed(0)
    model = _build_sam(encoder_embed_dim=48, encoder_depth=2, encoder_num_heads=2, encoder_global_attn_indexes=[1],
                       checkpoint=None).eval()
    return LoadedSam(model, "vit_b", "cpu", Path("random-weights"), "0" * 64, official=False)


@pytest.fixture(scope="module")
def scene():
    return render_scene(SCENE)


def assert_label_contract(labels: np.ndarray, shape, min_area_px: float) -> None:
    assert labels.dtype == np.int32 and labels.shape == shape
    assert sorted(np.unique(labels)) == list(range(labels.max() + 1))
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        region = labels[box] == index
        assert ndi.label(region, structure=np.ones((3, 3)))[1] == 1 and region.sum() >= min_area_px


def test_official_checkpoints_are_registered_with_url_and_sha256():
    assert set(SAM_CHECKPOINTS) == {"vit_b", "vit_l", "vit_h"}
    vit_b = SAM_CHECKPOINTS["vit_b"]
    assert vit_b.url == "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth"
    assert vit_b.sha256.startswith("ec2df627") and vit_b.size_bytes == 375_042_383
    assert all(len(c.sha256) == 64 for c in SAM_CHECKPOINTS.values())


def test_working_scale_fits_one_tile_but_keeps_small_crystals_visible():
    config = SamConfig()
    # the paper's images: 2048 px at 10 nm -> 1024 px at 20 nm, smallest crystal (0.25 um^2: 0.56 um) = 28 px
    assert working_pixel_size((2048, 2048), 0.01, 0.25, config) == pytest.approx(0.02)
    # smaller crystals allowed: stay finer, and tile
    size = working_pixel_size((2048, 2048), 0.01, 0.05, config)
    assert size == pytest.approx(2 * math.sqrt(0.05 / math.pi) / 24)
    # never finer than the image
    assert working_pixel_size((256, 256), 0.04, 0.25, config) == pytest.approx(0.04)


def test_tiles_overlap_by_four_crystal_diameters_not_by_the_wide_area_limit():
    def overlap(typical_diameter_um: float, max_crystal_area_um2: float = SegmentConfig().max_crystal_area_um2) -> int:
        return tile_overlap_px(typical_diameter_um=typical_diameter_um, max_crystal_area_um2=max_crystal_area_um2,
                               work_pixel_size_um=0.02, tile_px=1024)

    # micrite at 20 nm working pixels: 2-um crystals are 100 px; the default limit (400 um^2: 1128 px)
    # would ask for half a tile
    assert overlap(2.0) == 400
    # a tight area limit stays the bound: crystals of at most 4 um^2 (2.26 um) need 112 px
    assert overlap(2.0, max_crystal_area_um2=4.0) == 112
    # large crystals: never more than half a tile
    assert overlap(10.0) == 512


def test_a_crystal_size_in_pixels_is_read_at_the_image_scale_not_at_sams():
    # 224 px at 40 nm; SAM works at 80 nm (the smallest crystal, 0.32 um, spans its 4 px): 112 px in
    # 64-px tiles. 8-px crystals of the image are 4 px there: tiles overlap by 16 px -> 2 x 2 tiles
    # (read at SAM's scale they would overlap by 32 px -> 3 x 3)
    scene = render_scene(SceneSpec(shape=(224, 224), pixel_size_um=0.04, seed=12))
    segmenter = SamCrystalSegmenter(reduced_sam(), SamConfig(tile_px=64, decoder_batch=16, min_crystal_px=4))
    config = SegmentConfig(backend="sam", crystal_size_px=8.0, min_crystal_area_um2=math.pi * 0.16 ** 2)
    result = segment_crystals(to_unit_range(scene.image), 0.04, config, segmenter)
    assert result.statistics["working_pixel_size_um"] == pytest.approx(0.08)
    assert result.statistics["tiles"] == 4


def test_prompt_mode_batches_one_prompt_per_candidate_plus_a_sparse_second_pass(scene):
    segmenter = SamCrystalSegmenter(reduced_sam(), SamConfig(decoder_batch=8))
    config = SegmentConfig(backend="sam")
    result = segment_crystals(to_unit_range(scene.image), SCENE.pixel_size_um, config, segmenter)
    statistics = result.statistics
    min_area_px = config.min_crystal_area_um2 / SCENE.pixel_size_um ** 2
    from microcrystalnet.segment.watershed import segment_watershed

    candidates = int(segment_watershed(to_unit_range(scene.image), SCENE.pixel_size_um, config.watershed,
                                       min_area_px).max())
    assert statistics["tiles"] == 1 and statistics["working_pixel_size_um"] == pytest.approx(0.04)
    assert statistics["decoder_prompts"] == candidates + statistics["extra"]["second_pass_prompts"]
    assert statistics["encoder_seconds"] > 0 and statistics["masks_kept"] <= statistics["masks_proposed"]
    assert_label_contract(result.labels, scene.image.shape, min_area_px)
    assert result.segmenter["backend"] == "sam" and result.segmenter["mode"] == "prompt"


def with_reduced_sam(kind, settings, load):
    """``make_segmenter``'s ``reuse``: the reduced SAM for SAM, the real model for the rest."""
    return reduced_sam() if kind == "SAM" else load()


def test_sam_segments_the_preprocessed_image_and_its_learned_prompter_the_image_as_read(scene):
    from microcrystalnet.config import AnalysisConfig
    from microcrystalnet.pipeline import segmentation_inputs
    from microcrystalnet.segment import make_segmenter

    config = AnalysisConfig().updated(segment={"backend": "sam", "sam": {"decoder_batch": 16, "second_pass": False}})
    segmenter = make_segmenter(config.segment, reuse=with_reduced_sam)
    as_read = to_unit_range(scene.image)
    prepared = segmentation_inputs(as_read, SCENE.pixel_size_um, config, segmenter)
    assert prepared.image is prepared.preprocessed and not np.allclose(prepared.preprocessed, as_read, atol=0.02)
    np.testing.assert_array_equal(prepared.prompt_image, as_read)  # bright crystals, as read
    segment = prepared.config.segment
    prompted = segmenter.propose(prepared.image, SCENE.pixel_size_um, segment, prompt_image=prepared.prompt_image)
    assert prompted.statistics.working_pixel_size_um == pytest.approx(SCENE.pixel_size_um)  # no rescaling here
    found = segmenter.prompter.segment(prepared.prompt_image, SCENE.pixel_size_um, segment)[0]
    assert np.array_equal(prompted.foreground, ndi.binary_dilation(found > 0, iterations=2))
    # prompted from the preprocessed image, the prompts differ (how the analysis prompted SAM before)
    assert not np.array_equal(segmenter.propose(prepared.image, SCENE.pixel_size_um, segment).foreground,
                              prompted.foreground)
    # the learned segmenter alone and the watershed prompter take nothing more
    learned = make_segmenter(config.segment.updated(backend="learned"))
    assert segmentation_inputs(as_read, SCENE.pixel_size_um, config, learned).prompt_image is None
    watershed_prompts = make_segmenter(config.segment.updated(sam={"prompts_from": "watershed"}),
                                       reuse=with_reduced_sam)
    assert segmentation_inputs(as_read, SCENE.pixel_size_um, config, watershed_prompts).prompt_image is None


def test_tuning_images_get_the_settings_scaled_to_their_crystals_as_the_analysis_does(tmp_path):
    from microcrystalnet.config import AnalysisConfig
    from microcrystalnet.io.outputs import write_roiset
    from microcrystalnet.outline import outlines_from_labels
    from microcrystalnet.pipeline import load_tuning_images, segmentation_inputs
    from microcrystalnet.segment import make_segmenter

    small = render_scene(SceneSpec(shape=(160, 160), pixel_size_um=0.2, seed=13))  # crystals of ~10 px
    tifffile.imwrite(tmp_path / "small.tif", small.image)  # no pixel size
    rows = [{"Crystal": n, "Name": f"{n:04d}", "Class": "RES", "Confidence": 1.0} for n in range(1, small.n_crystals + 1)]
    write_roiset(tmp_path / "RoiSet.zip", outlines_from_labels(small.labels), rows)
    config = AnalysisConfig().updated(segment={"backend": "sam", "crystal_size_px": 10.0})
    segmenter = make_segmenter(config.segment, reuse=with_reduced_sam)
    (item,) = load_tuning_images([(tmp_path / "small.tif", tmp_path / "RoiSet.zip")], config, segmenter)
    prepared = segmentation_inputs(to_unit_range(small.image), None, config, segmenter)
    # micrite's area limits would drop every crystal of 10 px at the assumed 10 nm/px (0.25 um^2: 56 px across)
    assert item.segment == prepared.config.segment and item.segment.crystal_size_um == pytest.approx(0.1)
    assert item.segment.min_crystal_area_um2 == pytest.approx(SegmentConfig().min_crystal_area_um2 / 20 ** 2)
    assert item.pixel_size_um == prepared.pixel_size_um
    np.testing.assert_array_equal(item.image, prepared.preprocessed)
    np.testing.assert_array_equal(item.prompt_image, prepared.prompt_image)


def test_automatic_mode_runs_the_point_grid(scene):
    segmenter = SamCrystalSegmenter(reduced_sam(), SamConfig(mode="automatic", points_per_side=4,
                                                             pred_iou_thresh=0.0, stability_score_thresh=0.0))
    config = SegmentConfig(backend="sam")
    result = segment_crystals(to_unit_range(scene.image), SCENE.pixel_size_um, config, segmenter)
    assert result.statistics["decoder_prompts"] == 16
    assert_label_contract(result.labels, scene.image.shape, config.min_crystal_area_um2 / SCENE.pixel_size_um ** 2)


def test_large_images_are_tiled_and_merged_into_one_label_image():
    scene = render_scene(SceneSpec(shape=(256, 256), pixel_size_um=0.04, seed=12))
    segmenter = SamCrystalSegmenter(reduced_sam(), SamConfig(tile_px=128, decoder_batch=16, second_pass=False))
    config = SegmentConfig(backend="sam", max_crystal_area_um2=4.0)
    result = segment_crystals(to_unit_range(scene.image), 0.04, config, segmenter)
    assert result.statistics["tiles"] >= 9
    assert_label_contract(result.labels, scene.image.shape, config.min_crystal_area_um2 / 0.04 ** 2)


def save_random_vit_b(path: Path, wrap: bool) -> None:
    torch = import_torch()
    segment_anything = import_segment_anything()
    state = segment_anything.sam_model_registry["vit_b"](checkpoint=None).state_dict()
    if wrap:  # as fine-tuning tools save: nested, with a prefix
        state = {"model_state": {f"module.{key}": value for key, value in state.items()}}
    torch.save(state, path)


@pytest.fixture(scope="module")
def random_vit_b_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sam") / "finetuned_vit_b.pth"
    save_random_vit_b(path, wrap=True)
    return path


def test_fine_tuned_checkpoints_load_and_are_identified_by_sha256(random_vit_b_checkpoint, tmp_path):
    from microcrystalnet.weights import file_sha256

    loaded = load_sam("vit_b", random_vit_b_checkpoint, "cpu")
    assert loaded.official is False and loaded.sha256 == file_sha256(random_vit_b_checkpoint)
    assert loaded.describe()["checkpoint"] == str(random_vit_b_checkpoint)
    broken = tmp_path / "broken.pth"
    broken.write_bytes(random_vit_b_checkpoint.read_bytes()[:100_000])
    with pytest.raises(ModelUnavailableError, match="not a SAM vit_b checkpoint"):
        load_sam("vit_b", broken, "cpu")
    with pytest.raises(ModelUnavailableError, match="not a SAM vit_l checkpoint"):
        load_sam("vit_l", random_vit_b_checkpoint, "cpu")
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        load_sam("vit_b", tmp_path / "absent.pth")


def test_official_checkpoint_is_checked_and_offline_error_says_where_to_get_it(tmp_path, monkeypatch,
                                                                              random_vit_b_checkpoint):
    monkeypatch.setenv("MICROCRYSTALNET_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MICROCRYSTALNET_MODEL_DIR", raising=False)
    with pytest.raises(ModelUnavailableError) as raised:
        load_sam("vit_b", download=False)
    assert "sam_vit_b_01ec64.pth" in str(raised.value) and SAM_CHECKPOINTS["vit_b"].sha256 in str(raised.value)
    assert str(raised.value).endswith("pass its path with --sam-checkpoint.")  # not --model: the classifier's
    impostor_dir = tmp_path / "models"
    impostor_dir.mkdir()
    os.symlink(random_vit_b_checkpoint, impostor_dir / "sam_vit_b_01ec64.pth")
    monkeypatch.setenv("MICROCRYSTALNET_MODEL_DIR", str(impostor_dir))
    with pytest.raises(ModelUnavailableError, match="is not the model sam-vit_b"):
        load_sam("vit_b", download=False)


def test_full_size_vit_b_architecture_segments_through_the_cli(tmp_path, random_vit_b_checkpoint, model_dir_env):
    """SAM ViT-B at full size (random weights) through `analyze --segmenter sam`, reported per image."""
    from microcrystalnet.weights import file_sha256

    image = tmp_path / "scene.tif"
    scene = render_scene(SCENE)
    tifffile.imwrite(image, scene.image, imagej=True, resolution=(25.0, 25.0), metadata={"unit": "um"})
    done = subprocess.run([sys.executable, "-m", "microcrystalnet", "analyze", str(image), "--out", str(tmp_path / "out"),
                           "--segmenter", "sam", "--sam-checkpoint", str(random_vit_b_checkpoint), "--sam-device", "cpu",
                           "--no-download", "--no-overlay", "-q"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    import json

    summary = json.loads((tmp_path / "out" / "scene" / "summary.json").read_text())
    segmenter = summary["segmentation"]["segmenter"]
    sha256 = file_sha256(random_vit_b_checkpoint)
    assert segmenter["backend"] == "sam" and segmenter["sha256"] == sha256 and segmenter["official_checkpoint"] is False
    assert summary["segmentation"]["statistics"]["encoder_seconds"] > 0
    import csv

    with open(tmp_path / "out" / "scene" / "results.csv", newline="") as stream:
        assert {row["Segmenter"] for row in csv.DictReader(stream)} <= {f"sam prompt vit_b {sha256[:12]}"}


@pytest.mark.parametrize("tile_shape", [(200, 300), (1024, 1024), (640, 512)])
def test_box_only_upsampling_gives_sams_own_masks(tile_shape):
    """Decoding upsamples each mask only in its box; the pixels must be those of SAM's predict_torch."""
    torch = import_torch()
    segmenter = SamCrystalSegmenter(reduced_sam(), SamConfig(decoder_batch=8))
    rng = np.random.default_rng(0)
    tile = (rng.random((*tile_shape, 3)) * 255).astype(np.uint8)
    tile[tile_shape[0] // 4: tile_shape[0] // 2, tile_shape[1] // 4: tile_shape[1] // 2] = 230
    predictor = segmenter._predictor
    predictor.set_image(tile)
    points = rng.uniform([0, 0], [tile_shape[1], tile_shape[0]], (12, 2))
    from microcrystalnet.segment.sam import SamRunStatistics

    ours = segmenter._decode(points, None, (0, 0, *tile_shape), SamRunStatistics(), multimask=True)
    coords = predictor.transform.apply_coords_torch(torch.as_tensor(points[:, None, :], dtype=torch.float),
                                                    predictor.original_size)
    with torch.inference_mode():
        masks, scores, _ = predictor.predict_torch(coords, torch.ones(coords.shape[:2], dtype=torch.int),
                                                   multimask_output=True)
    best = masks[torch.arange(len(points)), scores.argmax(dim=1)].numpy()
    expected = [m for m in best if m.any()]
    assert len(ours) == len(expected)
    for candidate, full in zip(ours, expected):
        placed = np.zeros(tile_shape, bool)
        placed[candidate.box] = candidate.mask
        assert np.count_nonzero(placed != full) <= max(2, 0.001 * full.sum())


def test_tuning_scores_prompt_mode_and_every_automatic_setting(scene, tmp_path):
    from microcrystalnet.config import AnalysisConfig
    from microcrystalnet.segment.sam_tuning import TuningImage, tune_sam, tuned_settings

    segmenter = SamCrystalSegmenter(reduced_sam(), SamConfig(decoder_batch=16))
    encoder_passes = []
    segmenter.sam.model.image_encoder.register_forward_hook(lambda *_: encoder_passes.append(1))
    images = [TuningImage("scene", to_unit_range(scene.image), SCENE.pixel_size_um, scene.labels,
                          SegmentConfig(backend="sam"))]
    grid = TuningGrid(points_per_side=(4, 6), pred_iou_thresh=(0.0, 0.9), stability_score_thresh=(0.0,),
                      box_nms_thresh=(0.7, 1.0))
    report = tune_sam(segmenter, images, grid)
    assert len(encoder_passes) == 1  # one tile, encoded once for prompt mode and both grid densities
    assert len(report["results"]) == 1 + 2 * 4 and report["reference_crystals"] == scene.n_crystals
    assert report["results"][0]["sam"] == {"mode": "prompt"}
    assert all(0 <= r["f1"] <= 1 for r in report["results"])
    assert report["best"]["f1"] == max(r["f1"] for r in report["results"])
    settings = tuned_settings(report, SamConfig(checkpoint="/models/mine.pth"))
    path = tmp_path / "tuned.json"
    import json

    path.write_text(json.dumps(settings))
    config = AnalysisConfig.from_json(path)
    assert config.segment.backend == "sam" and config.segment.sam.checkpoint == "/models/mine.pth"
    assert config.segment.sam.mode == report["best"]["mode"]


def test_kept_embeddings_give_the_same_masks_with_one_encoder_pass_per_tile(scene):
    segmenter = SamCrystalSegmenter(reduced_sam(), SamConfig(tile_px=128, decoder_batch=16, second_pass=False))
    encoder_passes = []
    segmenter.sam.model.image_encoder.register_forward_hook(lambda *_: encoder_passes.append(1))
    image, segment = to_unit_range(scene.image[:128, :192]), SegmentConfig(backend="sam")
    automatic = SamConfig(mode="automatic", points_per_side=2, tile_px=128)
    fresh = [segmenter.propose(image, SCENE.pixel_size_um, segment, config) for config in (None, automatic)]
    tiles = fresh[0].statistics.tiles
    assert tiles > 1 and len(encoder_passes) == 2 * tiles
    encoder_passes.clear()
    with segmenter.embeddings_kept():  # prompt mode encodes each tile, automatic mode finds them kept
        kept = [segmenter.propose(image, SCENE.pixel_size_um, segment, config) for config in (None, automatic)]
    assert len(encoder_passes) == tiles
    for before, after, config in zip(fresh, kept, (SamConfig(), automatic)):
        assert np.array_equal(segmenter.finish(before, config), segmenter.finish(after, config))


def test_tuning_on_permissive_proposals_equals_running_sam_with_the_thresholds(scene):
    """Selecting from the tuning's proposals (the grid's lowest thresholds) gives what SAM's generator
    gives with a stricter combination of the grid set."""
    segmenter = SamCrystalSegmenter(reduced_sam(), SamConfig())
    segment = SegmentConfig(backend="sam")
    image = to_unit_range(scene.image)
    # a random SAM's predicted IoUs lie around 0 (-0.09 to 0.14 here), its stability scores are 0
    grid = TuningGrid(points_per_side=(6,), pred_iou_thresh=(0.01, 0.05), stability_score_thresh=(0.0,),
                      box_nms_thresh=(0.5, 0.7))
    permissive = proposal_settings(SamConfig(), grid, 6)
    assert (permissive.pred_iou_thresh, permissive.stability_score_thresh, permissive.box_nms_thresh) == \
        (pytest.approx(0.01), 0.0, 1.0) and permissive.pred_iou_thresh < 0.01
    proposals = segmenter.propose(image, SCENE.pixel_size_um, segment, permissive)
    everything = segmenter.propose(image, SCENE.pixel_size_um, segment,
                                   permissive.updated(pred_iou_thresh=0.0, stability_score_thresh=0.0))
    assert 0 < len(proposals.masks) < len(everything.masks)  # the lowest thresholds drop masks: the test can fail
    strict = SamConfig(mode="automatic", points_per_side=6, pred_iou_thresh=0.05, stability_score_thresh=0.0,
                       box_nms_thresh=0.5)  # a combination of the grid
    direct = segmenter.finish(segmenter.propose(image, SCENE.pixel_size_um, segment, strict), strict)
    assert np.array_equal(direct, segmenter.finish(proposals, strict))


def test_tune_sam_command_writes_settings_that_analyze_uses(tmp_path, random_vit_b_checkpoint, scene, model_dir_env):
    import json

    from microcrystalnet.io.outputs import write_roiset
    from microcrystalnet.outline import outlines_from_labels

    image = tmp_path / "reference.tif"
    tifffile.imwrite(image, scene.image, imagej=True, resolution=(25.0, 25.0), metadata={"unit": "um"})
    rows = [{"Crystal": n, "Name": f"{n:04d}-{code.replace('/', '-')}", "Class": code, "Confidence": 1.0}
            for n, code in enumerate(scene.crystal_classes, start=1)]
    write_roiset(tmp_path / "RoiSet.zip", outlines_from_labels(scene.labels), rows)
    settings = tmp_path / "tuned-sam.json"
    done = subprocess.run([sys.executable, "-m", "microcrystalnet", "tune-sam", str(image), str(tmp_path / "RoiSet.zip"),
                           "--out", str(settings), "--grid", "quick", "--points-per-side", "4",
                           "--sam-checkpoint", str(random_vit_b_checkpoint), "--sam-device", "cpu", "--no-download"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert f"{scene.n_crystals} reference crystals" in done.stderr and "best:" in done.stderr
    assert "automatic mode, 4 x 4 points" in done.stderr
    report = json.loads((tmp_path / "tuned-sam.report.json").read_text())
    assert len(report["results"]) == 5 and report["checkpoint"]["checkpoint"] == str(random_vit_b_checkpoint)
    assert [result["sam"].get("points_per_side") for result in report["results"]] == [None, 4, 4, 4, 4]
    tuned = json.loads(settings.read_text())
    assert tuned["segment"]["backend"] == "sam" and tuned["segment"]["sam"]["checkpoint"] == str(random_vit_b_checkpoint)
    theirs = tmp_path / "mine.json"  # a file tune-sam did not write is never replaced, settings of theirs neither
    for content in ('{"notes": 1}\n', '{"segment": {"min_crystal_area_um2": 0.1, "backend": "sam"}}\n'):
        theirs.write_text(content)
        refused = subprocess.run([sys.executable, "-m", "microcrystalnet", "tune-sam", str(image),
                                  str(tmp_path / "RoiSet.zip"), "--out", str(theirs), "--no-download"],
                                 capture_output=True, text=True, timeout=300)
        assert refused.returncode == 2 and "never replaces" in refused.stderr and theirs.read_text() == content
        assert not (tmp_path / "mine.report.json").exists()
    missing = subprocess.run([sys.executable, "-m", "microcrystalnet", "tune-sam", str(image),
                              str(tmp_path / "RoiSet-typo.zip"), "--out", str(tmp_path / "new.json"), "--no-download"],
                             capture_output=True, text=True, timeout=300)  # said before SAM is looked for
    assert missing.returncode == 1 and "no such file" in missing.stderr and "RoiSet-typo.zip" in missing.stderr
    odd = subprocess.run([sys.executable, "-m", "microcrystalnet", "tune-sam", str(image), "--out", str(settings)],
                         capture_output=True, text=True, timeout=300)
    assert odd.returncode == 2 and "pairs" in odd.stderr


@pytest.mark.parametrize("content", [b"", bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
                                     b"PK\x03\x04" + bytes(2000)], ids=["empty", "random", "zip-like"])
def test_a_file_that_is_no_checkpoint_gives_a_model_error_not_a_traceback(tmp_path, content):
    from microcrystalnet.segment.sam import SamCheckpointError

    path = tmp_path / "sam.pth"
    path.write_bytes(content)
    with pytest.raises(SamCheckpointError, match="is not a SAM vit_b checkpoint") as raised:
        load_sam("vit_b", path, "cpu")
    message = str(raised.value)
    assert isinstance(raised.value, ModelUnavailableError)  # the CLI's model errors: exit 3
    assert str(path) in message and SAM_CHECKPOINTS["vit_b"].url in message
    assert "weights_only" not in "".join(traceback.format_exception(raised.value))  # nor torch's advice to turn it off
    if not content:
        assert "empty" in message


class _RunsCodeWhenUnpickled:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def test_a_checkpoint_whose_pickle_would_run_code_is_refused_without_running_it(tmp_path):
    from microcrystalnet.segment.sam import SamCheckpointError

    torch = import_torch()
    marker = tmp_path / "code-ran"
    path = tmp_path / "crafted.pth"
    torch.save({"model_state": {"weight": torch.zeros(2)}, "extra": _RunsCodeWhenUnpickled(marker)}, path)
    with pytest.raises(SamCheckpointError, match="could run code") as raised:
        load_sam("vit_b", path, "cpu")
    assert not marker.exists()
    assert "exec" in str(raised.value) and "weights_only" not in str(raised.value)


def test_a_folder_given_as_checkpoint_is_named_a_folder(tmp_path):
    with pytest.raises(ModelUnavailableError, match="is a folder"):
        load_sam("vit_b", tmp_path, "cpu")


def test_prompt_mode_can_take_its_prompts_from_the_learned_segmenter(scene, tmp_path):
    from microcrystalnet.segment import LearnedSegmenter
    from microcrystalnet.segment.learned.model_file import SegmenterModel, WatershedThresholds
    from microcrystalnet.segment.learned.network import CrystalUNet

    torch = import_torch()
    torch.manual_seed(0)  # random weights, thresholds low enough that it proposes crystals
    model = SegmenterModel(CrystalUNet(), thresholds=WatershedThresholds(seed=0.3, foreground=0.3,
                                                                          min_seed_fraction=0.0))
    prompter = LearnedSegmenter(model)
    config = SegmentConfig(backend="sam", crystal_size_px=20.0, sam={"prompts_from": "learned"})
    segmenter = SamCrystalSegmenter(reduced_sam(), SamConfig(decoder_batch=8, prompts_from="learned"), prompter)
    image = to_unit_range(scene.image)
    candidates = int(prompter.segment(image, SCENE.pixel_size_um, config)[0].max())
    result = segment_crystals(image, SCENE.pixel_size_um, config, segmenter)
    assert candidates > 0
    assert result.statistics["decoder_prompts"] == candidates + result.statistics["extra"]["second_pass_prompts"]
    assert result.segmenter["prompts"] == "learned"


#: SAM's image encoder on a CPU, with a hook inside it that allocates and frees an array of the size
#: of ViT-B's global attention maps (800 MB) twice after once, printing the page faults of the two
_ENCODER_MEMORY_PROBE = """
import resource
import numpy as np
from numpy._core.multiarray import _set_madvise_hugepage
from microcrystalnet.config import SamConfig
from microcrystalnet.frameworks import import_segment_anything, import_torch
from microcrystalnet.segment.sam import LoadedSam, SamCrystalSegmenter

_set_madvise_hugepage(False)  # 4-kB pages, whatever the system's transparent huge pages
import_torch()
import_segment_anything()
from segment_anything.build_sam import _build_sam

model = _build_sam(encoder_embed_dim=48, encoder_depth=2, encoder_num_heads=2, encoder_global_attn_indexes=[1],
                   checkpoint=None).eval()
faults = []

def attention_sized_maps(*_):
    np.ones(100 * 2**20).sum()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(2):
        np.ones(100 * 2**20).sum()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)

model.image_encoder.register_forward_hook(attention_sized_maps)
segmenter = SamCrystalSegmenter(LoadedSam(model, "vit_b", "cpu", None, "0" * 64, official=False), SamConfig())
segmenter._predictor.set_image(np.zeros((64, 64, 3), np.uint8))
attention_sized_maps()
print(*faults)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")
def test_the_image_encoder_on_a_cpu_reuses_the_memory_it_frees():
    """Maps the size of ViT-B's global attention (800 MB), freed and allocated again within the
    encoder, are reused (a tile encoded 1.35 times faster); after it they go back to the system."""
    done = subprocess.run([sys.executable, "-c", _ENCODER_MEMORY_PROBE], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    inside, after = map(int, done.stdout.split())
    pages = 800 * 2**20 // 4096
    assert inside < pages * 0.1 and after > 2 * pages * 0.9, (inside, after)
