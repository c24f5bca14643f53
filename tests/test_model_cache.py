"""The model cache shared by the Fiji command's resident worker and the in-process backend."""

from __future__ import annotations

import json
import os
import shutil

from microcrystalnet.config import AnalysisConfig
from microcrystalnet.imagej import InProcessAnalysis
from microcrystalnet.model_cache import ModelCache, model_key


def test_a_second_analysis_with_the_same_model_settings_loads_nothing(model_dir_env, small_scene):
    loaded: list[str] = []
    analysis = InProcessAnalysis(ModelCache(on_load=loaded.append))
    settings = json.dumps({"classify": {"model": "reference-2023-11-19"}})
    first = analysis.analyze(small_scene.image, "scene.tif", 0.04, settings, lambda stage, fraction: None)
    assert loaded == ["learned segmenter default", "classifier reference-2023-11-19"]  # torch before TensorFlow
    assert analysis.models.loads == 2

    other_limits = json.dumps({"classify": {"model": "reference-2023-11-19"},
                               "segment": {"min_crystal_area_um2": 0.5, "exclude_border": True}})
    second = analysis.analyze(small_scene.image, "scene.tif", 0.04, settings, lambda stage, fraction: None)
    third = analysis.analyze(small_scene.image, "scene.tif", 0.04, other_limits, lambda stage, fraction: None)
    assert analysis.models.loads == 2 and len(loaded) == 2  # limits do not define a model: nothing loaded
    assert (first / "results.csv").read_text() == (second / "results.csv").read_text()
    for folder in (first, second, third):
        shutil.rmtree(folder.parent)


def test_a_wrong_classifier_file_fails_before_any_model_loads(model_dir_env, tmp_path):
    import pytest

    from microcrystalnet.classify import ModelDescriptionError

    loaded: list[str] = []
    cache = ModelCache(on_load=loaded.append)
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a model")
    broken.with_name("broken.keras.json").write_text(json.dumps({"class_order": ["RES", "PES", "AA", "RA/SA"],
                                                                  "input_size": 64}))
    with pytest.raises(ModelDescriptionError, match="broken.keras: cannot be loaded"):
        cache.models(AnalysisConfig.from_dict({"classify": {"model": str(broken)}}))
    assert loaded == [] and cache.loads == 0  # the segmenter was not loaded first


def test_the_segmenter_of_other_settings_reuses_its_model_and_keeps_its_own_settings(model_dir_env):
    cache = ModelCache()
    learned = cache.segmenter(AnalysisConfig().segment)
    tuned = cache.segmenter(AnalysisConfig().segment.updated(learned={"seed_threshold": 0.55}))
    assert cache.loads == 1 and tuned.model.network is learned.model.network
    assert tuned.model.thresholds.seed == 0.55 != learned.model.thresholds.seed
    cache.segmenter(AnalysisConfig().segment.updated(backend="watershed"))
    assert cache.loads == 1  # the watershed has no model to load


def test_the_contrast_judge_is_loaded_from_the_cache_on_the_learned_device_when_first_needed(model_dir_env,
                                                                                              small_scene):
    from microcrystalnet.pipeline import prepared_for_segmentation

    loaded: list[str] = []
    cache = ModelCache(on_load=loaded.append)
    image = small_scene.image / 255

    def judged(segment):
        config = AnalysisConfig().updated(segment=segment)
        return prepared_for_segmentation(image, small_scene.pixel_size_um, config, cache.segmenter(config.segment))[3]

    assert judged({"backend": "watershed", "crystal_contrast": "bright"}).source == "crystal_contrast"
    assert loaded == []  # a set contrast loads nothing
    assert judged({"backend": "watershed"}).source == "judged from the image"
    assert loaded == ["learned segmenter default"]  # the shipped network, on the learned segmenter's device
    assert judged({"backend": "watershed", "learned": {"device": "cpu"}}).source == "judged from the image"
    assert loaded == ["learned segmenter default", "learned segmenter default cpu"]
    cache.segmenter(AnalysisConfig().segment)
    assert cache.loads == 2  # the learned segmenter's shipped model is the judge's network: kept


def test_a_model_file_changed_in_place_is_loaded_again(tmp_path, reference_model_path):
    copy = tmp_path / reference_model_path.name
    shutil.copy2(reference_model_path, copy)
    before = model_key("classifier", (str(copy),))
    assert model_key("classifier", (str(copy),)) == before
    os.utime(copy, ns=(copy.stat().st_atime_ns, copy.stat().st_mtime_ns + 1_000_000_000))
    assert model_key("classifier", (str(copy),)) != before
    assert model_key("classifier", ("reference-2023-11-19",)) == ("classifier", "reference-2023-11-19")
