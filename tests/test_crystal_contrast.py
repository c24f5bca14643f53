"""Crystals darker than what surrounds them: set, or judged by the shipped learned network
(``auto``, whichever segmenter segments), they are segmented and classified with the gray levels
inverted, and the analysis says so."""

from __future__ import annotations

import numpy as np
import pytest

from microcrystalnet.config import AnalysisConfig, ConfigError
from microcrystalnet.io import sem_image_from_array
from microcrystalnet.metrics import match_instances
from microcrystalnet.pipeline import analyze_image, prepared_for_segmentation
from microcrystalnet.segment import make_segmenter, segment_crystals
from microcrystalnet.segment.contrast import (CrystalContrast, ShippedNetworkJudge, crystal_contrast,
                                              with_bright_crystals)

from test_learned_segmenter_real import CROPS, real_crop


def inverted(image: np.ndarray) -> np.ndarray:
    return (image.max() - image).astype(image.dtype)


def test_the_setting_decides_and_without_a_judge_the_crystals_are_bright():
    image = np.zeros((64, 64), np.float32)
    assert crystal_contrast(image, "dark", crystal_diameter_px=10,
                            judge=lambda *_: pytest.fail("a set contrast is not judged")).crystals == "dark"
    assert crystal_contrast(image, "auto", crystal_diameter_px=10) == CrystalContrast(
        "bright", "the segmenter cannot judge")
    # auto turns dark only where the judge is clearly surer of the inverted image's crystals and pixels
    def judged(as_given, inverted):
        return crystal_contrast(image, "auto", crystal_diameter_px=10, judge=lambda *_: (as_given, inverted))

    assert judged((0.90, 0.80), (0.95, 0.90)).dark
    assert not judged((0.90, 0.80), (0.95, 0.70)).dark  # surer crystals, less sure pixels
    assert not judged((0.90, 0.80), (0.85, 0.95)).dark  # surer pixels, less sure crystals (a mosaic's lines)
    assert not judged((0.90, 0.80), (0.902, 0.90)).dark
    assert judged((0.90, 0.80), (0.95, 0.90)).as_dict() == {
        "crystals": "dark", "source": "judged from the image", "crystal_score_as_given": 0.9,
        "crystal_score_inverted": 0.95, "pixel_certainty_as_given": 0.8, "pixel_certainty_inverted": 0.9}
    with pytest.raises(ConfigError, match="crystal_contrast"):
        AnalysisConfig().updated(segment={"crystal_contrast": "darker"})


def test_inverting_leaves_the_image_as_given_untouched():
    image = np.array([[0.0, 0.25], [1.0, 0.5]], np.float32)
    bright = with_bright_crystals(image, CrystalContrast("dark", "crystal_contrast"))
    np.testing.assert_allclose(bright, [[1.0, 0.75], [0.0, 0.5]])
    assert image[0, 1] == 0.25 and with_bright_crystals(image, CrystalContrast("bright", "x")) is image


@pytest.mark.parametrize("image_path, rows, columns, floor", CROPS[1:], ids=[c[0] for c in CROPS[1:]])
def test_dark_particles_of_a_real_image_are_judged_dark_and_found_as_in_the_bright_image(image_path, rows, columns,
                                                                                         floor):
    entry, _, crop, true = real_crop(image_path, rows, columns)
    config = AnalysisConfig().updated(segment={"crystal_size_px": entry["median_diameter_px"]})
    segmenter = make_segmenter(config.segment)

    def f1(image, config):
        prepared, scaled, _, contrast, notices = prepared_for_segmentation(image, entry["pixel_size_um"], config,
                                                                           segmenter)
        labels = segment_crystals(prepared, entry["pixel_size_um"], scaled.segment, segmenter).labels
        return match_instances(true, labels).f1, contrast, notices

    bright_f1, contrast, notices = f1(crop, config)
    assert contrast.crystals == "bright" and contrast.source == "judged from the image" and not notices
    dark_f1, contrast, notices = f1(1 - crop, config)
    assert contrast.crystals == "dark" and contrast.source == "judged from the image"
    assert any("darker than what surrounds them" in n and "--crystal-contrast bright" in n for n in notices)
    assert dark_f1 >= floor and abs(dark_f1 - bright_f1) < 0.03
    forced_f1, contrast, _ = f1(1 - crop, config.updated(segment={"crystal_contrast": "bright"}))
    assert contrast.source == "crystal_contrast" and forced_f1 < floor - 0.1  # what auto saves
    # without a size: judged at the texture scale (a size refined on the dark image runs off), then sized
    no_size_f1, contrast, notices = f1(1 - crop, AnalysisConfig())
    assert contrast.dark and any("typical crystal" in n or "look about" in n for n in notices)
    assert abs(no_size_f1 - f1(crop, AnalysisConfig())[0]) < 0.03


def test_an_analysis_of_dark_crystals_reports_the_contrast_and_measures_the_image_as_given(small_scene,
                                                                                        reference_classifier):
    dark = inverted(small_scene.image)
    image = sem_image_from_array(dark, "dark.tif", small_scene.pixel_size_um)
    analysis = analyze_image(image, reference_classifier)
    assert analysis.segmentation["crystal_contrast"]["crystals"] == "dark"
    assert analysis.segmentation["crystal_contrast"]["source"] == "judged from the image"
    assert match_instances(small_scene.labels, analysis.labels).f1 > 0.8
    # Mean is the crystal's gray level in the image as given (8-bit), not in the inverted one
    for row in analysis.rows[:20]:
        assert row["Mean"] == pytest.approx(dark[analysis.labels == row["Crystal"]].mean(), abs=0.5)
    set_dark = analyze_image(image, reference_classifier, AnalysisConfig().updated(segment={"crystal_contrast": "dark"}))
    assert set_dark.segmentation["crystal_contrast"] == {"crystals": "dark", "source": "crystal_contrast"}
    np.testing.assert_array_equal(set_dark.labels, analysis.labels)


def test_outlined_images_with_dark_crystals_are_learned_from_inverted(small_scene):
    from microcrystalnet.segment.learned.model_file import load_segmenter_model
    from microcrystalnet.segment.learned.training import OutlinedImage, with_bright_crystals_outlined

    model = load_segmenter_model()
    dark = OutlinedImage(inverted(small_scene.image), small_scene.labels, source={"image": "dark.tif"})
    learned, contrast = with_bright_crystals_outlined(dark, judge=ShippedNetworkJudge(lambda: model))
    assert contrast.dark and learned.source["crystal_contrast"]["source"] == "judged from the image"
    # inverted back, as the analysis reads an 8-bit image (/ 255)
    np.testing.assert_allclose(learned.image, 1 - dark.image / 255, atol=1e-6)
    bright = OutlinedImage(small_scene.image, small_scene.labels, source={"image": "bright.tif"})
    learned, contrast = with_bright_crystals_outlined(bright, judge=ShippedNetworkJudge(lambda: model))
    assert not contrast.dark and learned.image is small_scene.image
    assert with_bright_crystals_outlined(dark, crystal_contrast_setting="dark")[1].source == "crystal_contrast"
    # without a judge given, the shipped one judges (training from scratch too)
    judged = with_bright_crystals_outlined(dark)[1]
    assert judged.dark and judged.source == "judged from the image"
    with pytest.raises(ValueError, match="empty.tif: the outlines hold no crystal"):
        with_bright_crystals_outlined(OutlinedImage(small_scene.image, np.zeros_like(small_scene.labels),
                                                    source={"image": "empty.tif"}))


def seeing_inverted_gray_levels(model):
    """The shipped network made to see every image with its gray levels inverted (a segmenter of
    dark crystals): its first convolution negated, the batch normalisation after it moved by what
    the convolution gives on an image of ones (exact away from the image edge)."""
    import copy
    from dataclasses import replace

    import torch

    network = copy.deepcopy(model.network)
    convolution, normalisation = network.down[0][0], network.down[0][1]
    with torch.no_grad():
        ones = convolution.weight.sum(dim=(1, 2, 3))
        convolution.weight.neg_()
        normalisation.running_mean.sub_(ones)
    return replace(model, network=network, name="inverted", sha256=None)


def test_a_model_of_ones_own_does_not_judge_the_contrast_the_shipped_network_does(tmp_path, small_scene):
    """The dark-crystal margins were chosen on the shipped network's certainties; a model judging
    for itself misjudged images (a five-minute fine-tune: 8 of 222 bright images taken for dark)."""
    from microcrystalnet.segment.learned.contrast import certainty_as_given_and_inverted
    from microcrystalnet.segment.learned.model_file import load_segmenter_model, save_segmenter_model

    image = small_scene.image / 255
    config = AnalysisConfig()
    own_model = seeing_inverted_gray_levels(load_segmenter_model())
    save_segmenter_model(own_model, tmp_path / "own.pt")
    diameter_px = 2 / small_scene.pixel_size_um  # the micrite default the first guess takes
    # judging for itself, this model takes the bright crystals for dark ones
    assert crystal_contrast(image, "auto", crystal_diameter_px=diameter_px, judge=lambda gray, d: (
        certainty_as_given_and_inverted(gray, own_model, crystal_diameter_px=d))).dark

    shipped = prepared_for_segmentation(image, small_scene.pixel_size_um, config, make_segmenter(config.segment))[3]
    own = config.updated(segment={"learned": {"model": str(tmp_path / "own.pt"),
                                              "seed_threshold": 0.9, "min_crystal_score": 0.0}})
    judged = prepared_for_segmentation(image, small_scene.pixel_size_um, own, make_segmenter(own.segment))[3]
    assert judged.crystals == "bright" and judged.source == "judged from the image"
    assert judged == shipped  # the same certainties: the shipped network with its own thresholds judged
    thresholds = config.updated(segment={"learned": {"seed_threshold": 0.9, "min_crystal_score": 0.5}})
    assert prepared_for_segmentation(image, small_scene.pixel_size_um, thresholds,
                                     make_segmenter(thresholds.segment))[3] == shipped  # not the thresholds set


def test_the_watershed_segments_dark_crystals_judged_as_the_learned_segmenter_judges_them(small_scene):
    from microcrystalnet.preprocess import preprocess
    from microcrystalnet.segment.learned.contrast import JUDGE_MODEL_SHA256

    config = AnalysisConfig().updated(segment={"backend": "watershed"})
    segmenter = make_segmenter(config.segment)

    def labels(image, config):
        prepared, scaled, _, contrast, _ = prepared_for_segmentation(image, small_scene.pixel_size_um, config,
                                                                     segmenter)
        preprocessed, _ = preprocess(prepared, small_scene.pixel_size_um, scaled.preprocess)
        return segment_crystals(preprocessed, small_scene.pixel_size_um, scaled.segment, segmenter).labels, contrast

    bright, contrast = labels(small_scene.image / 255, config)
    assert (contrast.crystals, contrast.source) == ("bright", "judged from the image")
    assert contrast.as_dict()["judge_sha256"] == JUDGE_MODEL_SHA256  # the network that judged, named
    dark, contrast = labels(1 - small_scene.image / 255, config)
    assert (contrast.crystals, contrast.source) == ("dark", "judged from the image")
    assert match_instances(bright, dark).f1 > 0.99
    learned = make_segmenter(AnalysisConfig().segment)
    assert contrast == prepared_for_segmentation(1 - small_scene.image / 255, small_scene.pixel_size_um,
                                                 AnalysisConfig(), learned)[3]  # the same judgement
    dark, contrast = labels(1 - small_scene.image / 255, config.updated(segment={"crystal_contrast": "dark"}))
    assert contrast.source == "crystal_contrast" and match_instances(bright, dark).f1 > 0.99
    assert match_instances(small_scene.labels, bright).f1 > 0.8


def test_sam_judges_as_the_learned_segmenter_judges_and_tune_sam_too(tmp_path, small_scene):
    import tifffile

    from microcrystalnet.config import SamConfig
    from microcrystalnet.io.outputs import write_roiset
    from microcrystalnet.outline import outlines_from_labels
    from microcrystalnet.pipeline import load_tuning_images
    from microcrystalnet.segment.sam_tuning import tuned_settings
    from test_sam import reduced_sam

    def with_reduced_sam(kind, settings, load):
        return reduced_sam() if kind == "SAM" else load()

    dark_scene = 1 - small_scene.image / 255
    judged = prepared_for_segmentation(dark_scene, small_scene.pixel_size_um, AnalysisConfig(),
                                       make_segmenter(AnalysisConfig().segment))[3]
    assert judged.judged_dark
    for mode in ("automatic", "prompt"):
        config = AnalysisConfig().updated(segment={"backend": "sam", "sam": {"mode": mode}})
        sam = make_segmenter(config.segment, reuse=with_reduced_sam)
        assert (sam.prompter is not None) == (mode == "prompt")
        assert prepared_for_segmentation(dark_scene, small_scene.pixel_size_um, config, sam)[3] == judged, mode

    tifffile.imwrite(tmp_path / "dark.tif", inverted(small_scene.image))
    rows = [{"Crystal": n, "Name": f"{n:04d}", "Class": "RES", "Confidence": 1.0}
            for n in range(1, small_scene.n_crystals + 1)]
    write_roiset(tmp_path / "RoiSet.zip", outlines_from_labels(small_scene.labels), rows)
    dark = AnalysisConfig().updated(input={"pixel_size_um": small_scene.pixel_size_um},
                                    segment={"crystal_contrast": "dark"})
    def tuning_image(config):  # as tune-sam prepares it, with SAM prompted by the learned segmenter
        segmenter = make_segmenter(config.segment.updated(backend="sam"), reuse=with_reduced_sam)
        (image,) = load_tuning_images([(tmp_path / "dark.tif", tmp_path / "RoiSet.zip")], config, segmenter)
        return image

    np.testing.assert_allclose(tuning_image(dark).prompt_image, 1 - inverted(small_scene.image) / 255, atol=1e-6)
    for setting in ("auto", "bright"):  # auto: judged dark, as the analysis judges
        image = tuning_image(AnalysisConfig().updated(segment={"crystal_contrast": setting}))
        expected = 1 - inverted(small_scene.image) / 255 if setting == "auto" else inverted(small_scene.image) / 255
        np.testing.assert_allclose(image.prompt_image, expected, atol=1e-6)
    report = {"best": {"mode": "automatic", "f1": 0.5}}
    assert tuned_settings(report, SamConfig(), "dark")["segment"]["crystal_contrast"] == "dark"
    assert "crystal_contrast" not in tuned_settings(report, SamConfig())["segment"]


def test_the_judge_is_the_network_its_margins_were_chosen_on():
    from microcrystalnet.segment.learned.contrast import JUDGE_MODEL_SHA256, load_contrast_judge
    from microcrystalnet.segment.learned.model_file import DEFAULT_MODEL_SHA256

    # a new default segmenter keeps this network's file as the judge, or comes with DARK_MARGINS
    # chosen anew on its certainties (bench/bench_crystal_contrast.py --judge-model)
    assert DEFAULT_MODEL_SHA256 == JUDGE_MODEL_SHA256
    assert load_contrast_judge().sha256 == JUDGE_MODEL_SHA256


def test_a_damaged_shipped_network_stops_a_judgement_with_the_way_around_it_and_not_a_set_contrast(monkeypatch,
                                                                                                   small_scene):
    from microcrystalnet.segment.learned import model_file

    monkeypatch.setattr(model_file, "DEFAULT_MODEL_SHA256", "0" * 64)  # as a damaged file would read
    config = AnalysisConfig().updated(segment={"backend": "watershed"})
    segmenter = make_segmenter(config.segment)
    with pytest.raises(model_file.SegmenterModelError, match=r"damaged.*--crystal-contrast bright or dark"):
        prepared_for_segmentation(small_scene.image / 255, small_scene.pixel_size_um, config, segmenter)
    bright = config.updated(segment={"crystal_contrast": "bright"})
    assert prepared_for_segmentation(small_scene.image / 255, small_scene.pixel_size_um, bright,
                                     segmenter)[3].source == "crystal_contrast"
