import time

import numpy as np
import pytest

from microcrystalnet.config import AnalysisConfig
from microcrystalnet.io import ImageInputError, sem_image_from_array
from microcrystalnet.memory import (FIXED_BYTES, PER_PIXEL_BYTES, SAM_MODEL_BYTES, ImageTooLargeError,
                                    check_analysis_memory, estimate_analysis_bytes)
from microcrystalnet.pipeline import analyze_image


def test_estimate_grows_with_the_pixels_and_with_the_models_the_settings_load():
    small, large = estimate_analysis_bytes((1000, 1000)), estimate_analysis_bytes((12000, 12000))
    assert large - small == pytest.approx(PER_PIXEL_BYTES * (12000 ** 2 - 1000 ** 2), rel=1e-6)
    assert small == pytest.approx(FIXED_BYTES + PER_PIXEL_BYTES * 1e6, rel=1e-6)
    with_sam = estimate_analysis_bytes((1000, 1000), "sam", "vit_h")
    assert with_sam == pytest.approx(small + SAM_MODEL_BYTES["vit_h"], rel=1e-6)
    prompted = estimate_analysis_bytes((1000, 1000), "sam", "vit_h", learned_prompts=True)  # the learned prompter
    assert prompted > with_sam + 0.5e9
    assert estimate_analysis_bytes((1000, 1000), "learned", learned_prompts=True) == estimate_analysis_bytes(
        (1000, 1000), "learned")  # prompts are SAM's
    assert estimate_analysis_bytes((1000, 1000), n2v=True) > small


def test_an_image_over_an_explicit_limit_is_refused_with_estimate_limit_and_option():
    with pytest.raises(ImageTooLargeError) as raised:
        check_analysis_memory("huge.tif", (12000, 16000), estimate_analysis_bytes((12000, 16000)), memory_limit_gb=2)
    message = str(raised.value)
    expected_gb = estimate_analysis_bytes((12000, 16000)) / 1e9
    assert isinstance(raised.value, ImageInputError)  # reported per image, as any bad input
    assert message.startswith("huge.tif: ") and "16000 x 12000 px" in message
    assert f"about {expected_gb:.1f} GB" in message and "limit of 2.0 GB" in message
    assert "--memory-limit-gb" in message and "memory_limit_gb" in message and "crop" in message
    check_analysis_memory("huge.tif", (12000, 16000), estimate_analysis_bytes((12000, 16000)), memory_limit_gb=10)


def test_the_default_limit_is_a_share_of_the_memory_available_now():
    impossible = (1_000_000, 1_000_000)
    with pytest.raises(ImageTooLargeError, match="of memory available now"):
        check_analysis_memory("x.tif", impossible, estimate_analysis_bytes(impossible))
    check_analysis_memory("x.tif", (512, 512), estimate_analysis_bytes((512, 512)))


def test_analyze_image_refuses_an_image_over_the_limit_before_any_work(reference_classifier):
    pixels = np.random.default_rng(0).integers(0, 255, (512, 640), dtype=np.uint8)
    image = sem_image_from_array(pixels, "scene.tif", 0.01, "test")
    stages = []
    started = time.perf_counter()
    with pytest.raises(ImageTooLargeError, match=r"scene\.tif: analysing this 640 x 512 px image needs about"):
        analyze_image(image, reference_classifier, AnalysisConfig().updated(input={"memory_limit_gb": 0.01}),
                      progress=lambda stage, fraction: stages.append(stage))
    assert time.perf_counter() - started < 5 and not stages


def test_small_crystals_are_refused_before_segmentation_by_what_the_enlargement_needs(reference_classifier):
    pixels = np.random.default_rng(0).integers(0, 255, (512, 640), dtype=np.uint8)
    image = sem_image_from_array(pixels, "fine.tif", 0.01, "test")
    limit_gb = 1.5  # the image at its own size fits; enlarged 14 times per side, it does not
    assert estimate_analysis_bytes((512, 640), "learned") < limit_gb * 1e9
    assert estimate_analysis_bytes((512, 640), "learned", working_scale=14) > limit_gb * 1e9
    stages = []
    config = AnalysisConfig().updated(input={"memory_limit_gb": limit_gb}, segment={"crystal_size_px": 2})
    with pytest.raises(ImageTooLargeError, match=r"about 2\.0 px across, so the learned segmenter works on it "
                                                  r"enlarged 14\.0 times per side") as raised:
        analyze_image(image, reference_classifier, config, progress=lambda stage, fraction: stages.append(stage))
    assert "segment" not in stages and "--segmenter watershed" in str(raised.value)
    assert "bin it" not in str(raised.value)  # binning makes the crystals smaller still: no way out
    analyze_image(image, reference_classifier, config.updated(segment={"backend": "watershed"}))  # works at 1x


def test_the_limit_is_the_memory_free_when_the_analysis_starts(reference_classifier, monkeypatch):
    """The second check (small crystals) keeps the limit of the first: by then the analysis holds
    memory of its own, which a fresh reading would count twice."""
    readings = iter([10e9, 1e9])
    monkeypatch.setattr("microcrystalnet.memory.available_memory_bytes", lambda: next(readings))
    pixels = np.random.default_rng(0).integers(0, 255, (512, 640), dtype=np.uint8)
    image = sem_image_from_array(pixels, "fine.tif", 0.01, "test")
    assert 0.8e9 < estimate_analysis_bytes((512, 640), "learned", working_scale=2) < 8e9
    analyze_image(image, reference_classifier, AnalysisConfig().updated(segment={"crystal_size_px": 14}))
    assert next(readings) == 1e9  # read once
