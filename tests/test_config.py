import json

import pytest

from microcrystalnet.config import AnalysisConfig, SamConfig, SegmentConfig


def test_defaults_round_trip_through_json(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(AnalysisConfig().to_dict()))
    assert AnalysisConfig.from_json(path) == AnalysisConfig()


def test_a_settings_file_can_extend_another(tmp_path):
    base = tmp_path / "tuned-sam.json"
    base.write_text(json.dumps({"segment": {"backend": "sam", "sam": {"mode": "automatic", "pred_iou_thresh": 0.8}}}))
    config = AnalysisConfig.from_dict({"extends": str(base), "segment": {"min_crystal_area_um2": 1.0,
                                                                        "sam": {"points_per_side": 16}}})
    assert config.segment.backend == "sam" and config.segment.min_crystal_area_um2 == 1.0
    assert config.segment.sam == SamConfig(mode="automatic", pred_iou_thresh=0.8, points_per_side=16)
    with pytest.raises(ValueError, match="cannot read"):
        AnalysisConfig.from_dict({"extends": str(tmp_path / "absent.json")})


@pytest.mark.parametrize("bad, message", [({"segment": {"backend": "cellpose"}}, "unknown segmentation backend"),
                                          ({"segment": {"sam": {"mode": "magic"}}}, "SAM mode"),
                                          ({"segment": {"sam": {"tile_px": 2048}}}, "tile_px"),
                                          ({"classify": {"batch": 3}}, "unknown configuration key"),
                                          ({"segment": 5}, "must be an object")])
def test_invalid_settings_name_the_problem(bad, message):
    with pytest.raises(ValueError, match=message):
        AnalysisConfig.from_dict(bad)


def test_segment_limits_are_checked():
    with pytest.raises(ValueError, match="min_crystal_area_um2"):
        SegmentConfig(min_crystal_area_um2=5, max_crystal_area_um2=1)
