"""How command-line options become settings: what they name in errors, and options that would do nothing."""

from __future__ import annotations

import logging

import pytest

from microcrystalnet.cli import build_parser
from microcrystalnet.cli.common import analysis_config
from microcrystalnet.config import ConfigError


def parsed(*options: str):
    return build_parser().parse_args(["analyze", "image.tif", "--out", "results", *options])


def test_a_segmenter_model_that_the_chosen_segmenter_does_not_use_is_said(caplog):
    with caplog.at_level(logging.WARNING, logger="microcrystalnet"):
        analysis_config(parsed("--segmenter", "watershed", "--segmenter-model", "mine.pt"))
    assert "--segmenter-model" in caplog.text and "watershed segmenter does not use it" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="microcrystalnet"):
        analysis_config(parsed("--segmenter-model", "mine.pt"))  # the learned segmenter: used
        analysis_config(parsed("--segmenter", "sam", "--segmenter-model", "mine.pt"))  # its prompts: used
    assert caplog.text == ""


def test_a_bad_option_value_is_named_by_its_option():
    with pytest.raises(ConfigError, match=r"^--unclear-below \(classify\.unclear_below\): "):
        analysis_config(parsed("--unclear-below", "1.5"))
