"""Notices in the command line's words and in Fiji's (microcrystalnet.notices)."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np

from microcrystalnet.io import sem_image_from_array
from microcrystalnet.notices import Notice, fiji_wording
from microcrystalnet.preprocess import N2V_MISSING
from microcrystalnet.segment import empty_result_notice, sparse_result_notice

OPTION = re.compile(r"--[a-z]")
#: a command to run in a terminal, quoted ('microcrystalnet n2v train IMAGES --out n2v.zip'): there is none in Fiji
COMMAND = re.compile(r"'microcrystalnet [^']*'")


def notices_naming_settings() -> list[str]:
    """Every notice that says which setting to change."""
    uncalibrated = sem_image_from_array(np.random.default_rng(0).integers(0, 255, (128, 128), np.uint8),
                                        Path("x.tif"), None, None, False)
    return [empty_result_notice({"candidates": 0}, 0),
            empty_result_notice({"candidates": 9, "dropped": {"too_small": 3, "too_large": 2, "on_border": 2}}, 2),
            N2V_MISSING, *[n for n in uncalibrated.notices if "pixel size unknown" in n],
            sparse_result_notice(np.pad(np.ones((3, 3), np.int32), 100), 3.0)]


def test_each_notice_names_options_on_the_command_line_and_fields_in_fiji():
    notices = notices_naming_settings()
    assert len(notices) == 5
    for notice in notices:
        assert isinstance(notice, Notice) and OPTION.search(notice), notice
        assert not OPTION.search(COMMAND.sub("", fiji_wording(notice))), fiji_wording(notice)
    dropped = fiji_wording(notices[1])
    assert dropped.startswith("2 of 9 crystal candidates kept; dropped: 3 smaller than Min crystal area")
    assert "2 larger than Max crystal area" in dropped and "untick Exclude crystals on border" in dropped
    assert "Image > Properties..." in fiji_wording(notices[3])


def test_a_notice_is_its_command_line_text_and_keeps_both_wordings_across_processes():
    notice = Notice.of("a ", Notice.of("b ", N2V_MISSING), "c")
    assert notice == "a b " + N2V_MISSING + "c" and notice.fiji == "a b " + N2V_MISSING.fiji + "c"
    copy = pickle.loads(pickle.dumps(notice))
    assert copy == notice and copy.fiji == notice.fiji
    assert fiji_wording("plain text") == "plain text"
