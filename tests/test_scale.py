"""The typical crystal diameter: estimated on scenes of known size, and the settings it scales."""

import numpy as np
import pytest
from skimage.measure import regionprops

from microcrystalnet.config import AnalysisConfig, ConfigError
from microcrystalnet.io import to_unit_range
from microcrystalnet.pipeline import settings_for_image
from microcrystalnet.preprocess import preprocess, snr_db
from microcrystalnet.segment import empty_result_notice, segment_crystals
from microcrystalnet.segment.scale import (MICRITE_DEFAULT_TOLERANCE, CrystalScale, REFERENCE_CRYSTAL_DIAMETER_UM,
                                          estimate_crystal_diameter_px, scaled_config)
from microcrystalnet.synth import SceneSpec, render_scene


@pytest.mark.parametrize("crystal_size_um, pixel_size_um", [((1.0, 2.0), 0.02), ((1.0, 2.0), 0.04),
                                                            ((0.5, 1.0), 0.02)])
def test_estimated_diameter_within_25_percent_on_synthetic_scenes(crystal_size_um, pixel_size_um):
    scene = render_scene(SceneSpec(shape=(384, 384), pixel_size_um=pixel_size_um, crystal_size_um=crystal_size_um,
                                   seed=3))
    true_median = np.median([region.equivalent_diameter_area for region in regionprops(scene.labels)])
    estimate = estimate_crystal_diameter_px(to_unit_range(scene.image))
    assert estimate == pytest.approx(true_median, rel=0.25)


def test_one_diameter_scales_lengths_and_areas_but_keeps_what_the_user_set():
    config = AnalysisConfig().updated(segment={"crystal_size_px": 20.0, "max_crystal_area_um2": 5.0})
    scaled, scale, notices = settings_for_image(np.zeros((64, 64), np.float32), None, config)
    factor = 20.0 * 0.01 / REFERENCE_CRYSTAL_DIAMETER_UM  # 20 px at the assumed 10 nm/px: 0.2 um
    assert (scale.diameter_px, scale.source, notices) == (20.0, "crystal_size_px", [])
    assert scaled.segment.crystal_size_um == pytest.approx(0.2)
    assert scaled.preprocess.morphology_um == pytest.approx(0.05 * factor)
    assert scaled.segment.watershed.marker_separation_um == pytest.approx(0.35 * factor)
    assert scaled.segment.min_crystal_area_um2 == pytest.approx(0.25 * factor ** 2)
    assert scaled.segment.max_crystal_area_um2 == 5.0
    calibrated, scale, _ = settings_for_image(np.zeros((64, 64), np.float32), 0.01, AnalysisConfig())
    assert calibrated == AnalysisConfig() and scale.source == "micrite default"
    blobs = np.kron(np.random.default_rng(0).random((8, 8)), np.ones((8, 8))).astype(np.float32)
    _, scale, notices = settings_for_image(blobs, None, AnalysisConfig())
    assert scale.source == "estimated from the image" and "--crystal-size-px" in notices[0]


def test_the_default_area_limits_keep_crystals_of_a_real_size_range():
    """Real SEM images hold objects up to 7 times their median diameter (../shared/real-sem): the
    scaled default limits keep 0.3 to 10 times the typical diameter."""
    config, _, _ = settings_for_image(np.zeros((64, 64), np.float32), None,
                                      AnalysisConfig().updated(segment={"crystal_size_px": 20.0}))
    pixel_area_um2 = config.input.assumed_pixel_size_um ** 2
    diameter_px = [2 * np.sqrt(config.segment.min_crystal_area_um2 / pixel_area_um2 / np.pi),
                   2 * np.sqrt(config.segment.max_crystal_area_um2 / pixel_area_um2 / np.pi)]
    assert diameter_px[0] <= 0.3 * 20 and diameter_px[1] >= 10 * 20


def test_every_candidate_dropped_by_the_area_limits_is_reported_with_the_option(small_scene):
    config = AnalysisConfig().updated(segment={"min_crystal_area_um2": 30.0})
    segmentation = segment_crystals(to_unit_range(small_scene.image), small_scene.pixel_size_um, config.segment)
    candidates = segmentation.statistics["candidates"]
    assert segmentation.labels.max() == 0 and candidates > 50
    notice = empty_result_notice(segmentation.statistics, 0)
    assert f"0 of {candidates} crystal candidates kept" in notice
    assert f"{segmentation.statistics['dropped']['too_small']} smaller than --min-area-um2" in notice
    assert "--crystal-size-px" in empty_result_notice({"candidates": 0}, 0)
    assert empty_result_notice({"candidates": 10, "dropped": {"too_small": 2}}, 8) is None


def test_the_summary_gives_the_diameter_the_notice_gives():
    """An uncalibrated real spheroidite image was estimated at 20.1547 px: the notice said 20.2, the
    summary 20.15 and the run's next line "20.1" from it."""
    scale = CrystalScale(20.1547, "estimated from the image")
    assert f"{scale.as_dict()['diameter_px']:.1f}" == f"{scale.diameter_px:.1f}" == "20.2"


def test_noise_and_blank_images_have_no_crystal_scale_and_keep_the_micrite_default():
    noise = np.random.default_rng(0).normal(0.5, 0.05, (256, 256)).astype(np.float32)
    assert np.isnan(estimate_crystal_diameter_px(noise)) and np.isnan(estimate_crystal_diameter_px(noise * 0))
    for pixel_size_um in (0.01, None):
        config, scale, notices = settings_for_image(noise, pixel_size_um, AnalysisConfig())
        assert (config, scale.source, notices) == (AnalysisConfig(), "micrite default", [])


def test_a_calibrated_image_keeps_the_micrite_default_unless_its_crystals_look_1_5x_off():
    scene = render_scene(SceneSpec(shape=(384, 384), pixel_size_um=0.04, crystal_size_um=(1.8, 2.4), seed=3))
    image = to_unit_range(scene.image)
    _, scale, notices = settings_for_image(image, 0.04, AnalysisConfig())  # 1.8-2.4 um crystals: micrite
    assert scale.source == "micrite default" and notices == []
    for finer_um in (0.02, 0.004):  # the same pixels, 2x finer (0.8 um: kept the 2-um default before) and 10x
        config, scale, notices = settings_for_image(image, finer_um, AnalysisConfig())
        assert scale.source == "estimated from the image" and "not the micrite default" in notices[0]
        assert config.segment.crystal_size_um == pytest.approx(scale.diameter_px * finer_um)


def test_the_learned_segmenter_refines_every_estimate_and_the_refined_one_decides_for_micrite():
    from microcrystalnet.segment import make_segmenter

    segmenter = make_segmenter(AnalysisConfig().segment, download=False)  # the shipped learned segmenter
    refined = []
    refine = segmenter.refine_crystal_diameter_px

    def counted(image, first_guess_px):
        refined.append(first_guess_px)
        return refine(image, first_guess_px)

    segmenter.refine_crystal_diameter_px = counted
    scene = render_scene(SceneSpec(shape=(384, 384), pixel_size_um=0.04, crystal_size_um=(1.8, 2.4), seed=3))
    image = to_unit_range(scene.image)
    _, scale, _ = settings_for_image(image, 0.04, AnalysisConfig(), segmenter)  # micrite-sized, refined too
    assert scale.source == "micrite default" and len(refined) == 1
    _, scale, _ = settings_for_image(image, 0.004, AnalysisConfig(), segmenter)  # 10x off
    true_median = np.median([region.equivalent_diameter_area for region in regionprops(scene.labels)])
    assert len(refined) == 2 and scale.source == "estimated from the image"
    assert scale.diameter_px == pytest.approx(true_median, rel=0.25)
    _, scale, _ = settings_for_image(image, None, AnalysisConfig(), segmenter)  # uncalibrated
    assert len(refined) == 3 and scale.diameter_px == pytest.approx(true_median, rel=0.25)
    # 3.2-um crystals: the texture's guess (2.9 um) is within 1.5x of the 2-um default, which it kept
    # before; the refined estimate is not (held-out scenes: BENCHMARKS.md, "Twelfth round")
    large = render_scene(SceneSpec(shape=(384, 384), pixel_size_um=0.08, crystal_size_um=(3.5, 4.5), seed=3))
    large_image = to_unit_range(large.image)
    assert estimate_crystal_diameter_px(large_image) * 0.08 < REFERENCE_CRYSTAL_DIAMETER_UM * MICRITE_DEFAULT_TOLERANCE
    large_median = np.median([region.equivalent_diameter_area for region in regionprops(large.labels)])
    _, scale, _ = settings_for_image(large_image, 0.08, AnalysisConfig(), segmenter)
    assert scale.source == "estimated from the image" and scale.diameter_px == pytest.approx(large_median, rel=0.25)


def test_without_a_texture_scale_the_learned_segmenter_searches_for_the_crystal_size():
    """A fine mosaic (7.5-px grains, thin boundaries) has no texture scale: it took the micrite
    default (200 px at the assumed or given 10 nm/px) and found nothing. The learned segmenter's
    self-consistent search finds the grain size, which counts unless the image is calibrated and the
    grains are micrite-sized; noise stays without a crystal size."""
    from microcrystalnet.segment import make_segmenter
    from microcrystalnet.synth import random_training_scene

    segmenter = make_segmenter(AnalysisConfig().segment, download=False)  # the shipped learned segmenter
    scene = random_training_scene(900003, shape=(512, 512))
    image = to_unit_range(scene.image)
    true_median = np.median([region.equivalent_diameter_area for region in regionprops(scene.labels)])
    assert scene.spec.kind == "mosaic" and np.isnan(estimate_crystal_diameter_px(image))
    _, scale, notices = settings_for_image(image, None, AnalysisConfig(), segmenter)
    assert scale.source == "estimated from the image" and scale.diameter_px == pytest.approx(true_median, rel=0.25)
    assert "--crystal-size-px" in notices[0]
    # calibrated: 0.075-um grains are no micrite, the search's size counts (before: 2 um, 200 px, nothing found)
    _, scale, notices = settings_for_image(image, 0.01, AnalysisConfig(), segmenter)
    assert scale.source == "estimated from the image" and scale.diameter_px == pytest.approx(true_median, rel=0.25)
    assert "not the micrite default" in notices[0]
    _, scale, _ = settings_for_image(image, REFERENCE_CRYSTAL_DIAMETER_UM / true_median, AnalysisConfig(),
                                   segmenter)  # 2-um grains: micrite
    assert scale.source == "micrite default"
    noise = np.random.default_rng(0).normal(0.5, 0.05, (256, 256)).astype(np.float32)
    assert settings_for_image(noise, None, AnalysisConfig(), segmenter)[1].source == "micrite default"


def test_a_calibrated_micrite_mosaic_whose_refined_size_is_half_a_grain_keeps_the_default():
    """A mosaic of 2-um grains (20.8 px) whose texture guess is half a grain (9 px) and refined
    estimate 10.1 px: taking it segmented the halves (F1 0.11). The search, asked for a second opinion
    on calibrated images 1.5-3x off the default, finds the grains micrite-sized, so the default stays."""
    from microcrystalnet.segment import make_segmenter
    from microcrystalnet.synth import random_training_scene

    segmenter = make_segmenter(AnalysisConfig().segment, download=False)  # the shipped learned segmenter
    scene = random_training_scene(910021, shape=(512, 512))
    image = to_unit_range(scene.image)
    micrite_px = REFERENCE_CRYSTAL_DIAMETER_UM / scene.spec.pixel_size_um
    true_median = np.median([region.equivalent_diameter_area for region in regionprops(scene.labels)])
    assert scene.spec.kind == "mosaic" and true_median == pytest.approx(micrite_px, rel=0.05)
    refined = segmenter.refine_crystal_diameter_px(image, estimate_crystal_diameter_px(image))
    assert refined < micrite_px / MICRITE_DEFAULT_TOLERANCE  # the refinement alone leaves the default
    _, scale, notices = settings_for_image(image, scene.spec.pixel_size_um, AnalysisConfig(), segmenter)
    assert scale.source == "micrite default" and notices == []


def test_snr_stays_finite_after_morphology():
    rng = np.random.default_rng(0)
    image = np.clip(np.kron(rng.random((16, 16)), np.ones((16, 16))) + rng.normal(0, 0.05, (256, 256)), 0, 1)
    _, reports = preprocess(image.astype(np.float32), 0.01)
    closing = next(report for report in reports if report.step == "closing")
    assert snr_db(image) < closing.snr_db < 60  # without the quantisation floor: hundreds of dB


def test_an_area_limit_set_past_the_other_one_scaled_says_which_was_scaled():
    config = AnalysisConfig().updated(segment={"min_crystal_area_um2": 0.5})
    with pytest.raises(ConfigError, match=r"max_crystal_area_um2 scaled from the default for crystals of 0\.05 um; "
                                          r"set it too"):
        scaled_config(config, 0.05)  # the default 400 um2 for 2 um becomes 0.25 um2
