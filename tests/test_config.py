"""Settings as validated data: round trips, `extends`, and every kind of bad value named by file and field."""

import json

import pytest

from microcrystalnet.config import (PREPROCESS_STEPS, AnalysisConfig, ConfigError, LearnedConfig, PreprocessConfig,
                                    SamConfig, SegmentConfig, TrainingConfig, choices_of, default_of)


def test_defaults_round_trip_through_json(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(AnalysisConfig().to_dict()))
    assert AnalysisConfig.from_json(path) == AnalysisConfig()
    assert AnalysisConfig().to_dict()["version"] == 1


def test_a_results_summary_json_gives_the_settings_of_that_analysis(tmp_path):
    settings = AnalysisConfig().updated(classify={"unclear_below": 0.7}).to_dict()
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"image": "a.tif", "n_crystals": 3, "settings": settings, "notices": []}))
    assert AnalysisConfig.from_json(path).classify.unclear_below == 0.7
    extending = AnalysisConfig.from_dict({"extends": str(path), "segment": {"exclude_border": True}})  # as Fiji's
    assert extending.classify.unclear_below == 0.7 and extending.segment.exclude_border


def test_a_settings_file_without_version_is_version_1(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"segment": {"min_crystal_area_um2": 1.0}}))
    assert AnalysisConfig.from_json(path).version == 1


def test_a_settings_file_can_extend_another(tmp_path):
    base = tmp_path / "tuned-sam.json"
    base.write_text(json.dumps({"segment": {"backend": "sam", "sam": {"mode": "automatic", "pred_iou_thresh": 0.8}}}))
    config = AnalysisConfig.from_dict({"extends": str(base), "segment": {"min_crystal_area_um2": 1.0,
                                                                        "sam": {"points_per_side": 16}}})
    assert config.segment.backend == "sam" and config.segment.min_crystal_area_um2 == 1.0
    assert config.segment.sam == SamConfig(mode="automatic", pred_iou_thresh=0.8, points_per_side=16)
    with pytest.raises(ConfigError, match="cannot read the settings file .*absent.json"):
        AnalysisConfig.from_dict({"extends": str(tmp_path / "absent.json")})


def test_extends_is_relative_to_the_file_naming_it(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "base.json").write_text(json.dumps({"classify": {"unclear_below": 0.7}}))
    (tmp_path / "mine.json").write_text(json.dumps({"extends": "sub/base.json"}))
    assert AnalysisConfig.from_json(tmp_path / "mine.json").classify.unclear_below == 0.7


def test_an_extends_loop_is_refused_with_the_chain(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"extends": "b.json"}))
    (tmp_path / "b.json").write_text(json.dumps({"extends": "a.json"}))
    with pytest.raises(ConfigError, match=r"loop .*a\.json -> .*b\.json -> .*a\.json"):
        AnalysisConfig.from_json(tmp_path / "a.json")
    (tmp_path / "self.json").write_text(json.dumps({"extends": "self.json"}))
    with pytest.raises(ConfigError, match="loop"):
        AnalysisConfig.from_json(tmp_path / "self.json")


#: (settings, what the message must say): wrong types are refused, never coerced into something else
BAD_SETTINGS = [
    ({"segment": {"backend": "cellpose"}}, r"segment\.backend: Input should be 'watershed', 'learned' or 'sam'"),
    ({"segment": {"sam": {"mode": "magic"}}}, r"segment\.sam\.mode"),
    ({"segment": {"sam": {"tile_px": 2048}}}, r"segment\.sam\.tile_px: Input should be less than or equal to 1024"),
    ({"classify": {"batch": 3}}, r"classify\.batch: unknown setting"),
    ({"segment": 5}, r"segment: must be an object"),
    ({"input": {"pixel_size_um": "ten"}}, r"input\.pixel_size_um: Input should be a valid number \(got 'ten'\)"),
    ({"input": {"pixel_size_um": -1}}, r"input\.pixel_size_um: Input should be greater than 0"),
    ({"preprocess": {"steps": 5}}, r"preprocess\.steps: Input should be a valid tuple"),
    ({"preprocess": {"steps": "nlm"}}, r"preprocess\.steps"),
    ({"preprocess": {"steps": ["nlm", "sharpen"]}}, r"preprocess\.steps\.1"),
    ({"segment": {"min_crystal_area_um2": None}}, r"segment\.min_crystal_area_um2: Input should be a valid number"),
    ({"segment": {"sam": {"decoder_batch": "8"}}}, r"segment\.sam\.decoder_batch: Input should be a valid integer"),
    ({"preprocess": {"nlm_patch_px": 2.7}}, r"preprocess\.nlm_patch_px: Input should be a valid integer"),
    ({"input": {"exclude_data_bar": "no"}}, r"input\.exclude_data_bar: Input should be a valid boolean"),
    ({"classify": {"unclear_below": True}}, r"classify\.unclear_below: Input should be a valid number"),
    ({"classify": {"unclear_below": 1.5}}, r"classify\.unclear_below: Input should be less than or equal to 1"),
    ({"segment": {"min_crystal_area_um2": 5, "max_crystal_area_um2": 1}}, r"segment: min_crystal_area_um2 .* smaller"),
    ({"segment": {"crystal_size_um": 0.2, "crystal_size_px": 20}}, r"segment: give crystal_size_um or crystal_size_px"),
    ({"segment": {"watershed": {"mode": "ridge"}}}, r"segment\.watershed\.mode: Input should be 'auto', 'boundary'"),
    ({"version": 2}, r"version: Input should be 1"),
    ({"extends": 7}, r"'extends' must be the path of a settings file"),
    ([1, 2], r"\(top level\): must be an object"),
]


@pytest.mark.parametrize("bad, message", BAD_SETTINGS, ids=[json.dumps(bad)[:40] for bad, _ in BAD_SETTINGS])
def test_bad_settings_name_the_file_and_the_field(tmp_path, bad, message):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match=message) as raised:
        AnalysisConfig.from_json(path)
    assert str(raised.value).startswith(f"settings file {path}: ")


def test_non_finite_numbers_are_refused(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text('{"input": {"pixel_size_um": Infinity}}')  # Python's json reads it; it is no JSON
    with pytest.raises(ConfigError, match=r"input\.pixel_size_um: Input should be a finite number"):
        AnalysisConfig.from_json(path)


def test_unreadable_settings_files_are_named(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"segment": ')
    with pytest.raises(ConfigError, match="cannot read the settings file .*broken.json"):
        AnalysisConfig.from_json(path)


def test_updated_validates_and_merges_sections():
    config = AnalysisConfig().updated(segment={"backend": "sam", "sam": {"mode": "automatic"}})
    assert config.segment.backend == "sam" and config.segment.sam.mode == "automatic"
    assert config.segment.min_crystal_area_um2 == AnalysisConfig().segment.min_crystal_area_um2
    with pytest.raises(ConfigError, match=r"segment\.max_crystal_area_um2"):
        AnalysisConfig().updated(segment={"max_crystal_area_um2": "big"})


def test_settings_are_frozen():
    with pytest.raises(ValueError):
        AnalysisConfig().segment.backend = "sam"  # type: ignore[misc]


def test_choices_and_defaults_come_from_the_models():
    assert choices_of(PreprocessConfig, "steps") == PREPROCESS_STEPS
    assert choices_of(SamConfig, "device") == choices_of(LearnedConfig, "device") == ("cuda", "mps", "cpu")
    assert default_of(SegmentConfig, "backend") == "learned"
    assert "microcrystalnet" in choices_of(TrainingConfig, "architecture")


def test_every_setting_is_documented():
    from microcrystalnet import config

    sections = [value for value in vars(config).values()
                if isinstance(value, type) and issubclass(value, config.Settings) and value is not config.Settings]
    undocumented = [f"{section.__name__}.{name}" for section in sections
                    for name, field in section.model_fields.items()
                    if not field.description and section is not AnalysisConfig]
    assert len(sections) == 10 and not undocumented


def test_training_settings_are_checked():
    with pytest.raises(ConfigError, match="folds"):
        TrainingConfig().updated(folds=2)
    with pytest.raises(ConfigError, match="architecture"):
        TrainingConfig().updated(architecture="alexnet")
