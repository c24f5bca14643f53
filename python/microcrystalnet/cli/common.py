"""What the commands share: exit statuses, option types, the analysis options and the settings
they make, and progress output.

Only light modules are imported here (argparse, the settings models): ``microcrystalnet --help``
must not wait for TensorFlow or torch.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import (AnalysisConfig, ClassifyConfig, ConfigError, LearnedConfig, PreprocessConfig, SamConfig,
                      SegmentConfig, WatershedConfig, choices_of, default_of)

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_MODEL = 0, 1, 2, 3
EXIT_INTERRUPTED = 130
log = logging.getLogger("microcrystalnet")


def non_negative_int(text: str) -> int:
    """argparse type: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def finite_float(text: str) -> float:
    """argparse type: a finite number (the settings check its range)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
    return value


def add_quiet_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors")


def add_analysis_options(parser: argparse.ArgumentParser) -> None:
    """The options every analysing command takes; choices and defaults come from the settings models."""
    add_quiet_option(parser)
    group = parser.add_argument_group("analysis settings (every setting: microcrystalnet.config)")
    group.add_argument("--config", type=Path, metavar="JSON",
                       help="settings file, or a result's summary.json (the settings of that analysis); "
                            "options below override it")
    group.add_argument("--pixel-size-nm", type=positive_float, metavar="NM",
                       help="pixel size in nanometres; overrides the calibration in the file")
    group.add_argument("--memory-limit-gb", type=positive_float, metavar="GB",
                       help="refuse an image whose analysis would need more memory than this (default: 80%% of "
                            "the memory available at the start)")
    group.add_argument("--keep-data-bar", action="store_true",
                       help="do not look for and exclude the instrument's data bar at the bottom, nor leave out "
                            "what is found on scale bars and label boxes burned into the image")
    group.add_argument("--model", metavar="NAME_OR_PATH",
                       help=f"classifier: a known model name (default {default_of(ClassifyConfig, 'model')}) "
                            "or a Keras .h5/.keras file with a <file>.json description")
    group.add_argument("--unclear-below", type=finite_float, metavar="P",
                       help="label a crystal 'unclear' when its most probable class has a probability below P "
                            f"(default {default_of(ClassifyConfig, 'unclear_below')}; 0 turns it off)")
    group.add_argument("--no-download", action="store_true",
                       help="never download a model; fail with instructions if it is not on this machine")
    size = group.add_mutually_exclusive_group()
    size.add_argument("--crystal-size-um", type=positive_float, metavar="UM",
                      help="typical crystal diameter, um: scales area limits, marker separation, smoothing and "
                           "preprocessing footprints (default: estimated from the image; on an image with a "
                           "pixel size the micrite default, 2 um, stays unless the estimate is over 1.5x off)")
    size.add_argument("--crystal-size-px", type=positive_float, metavar="PX",
                      help="typical crystal diameter in pixels, for images without a pixel size")
    group.add_argument("--min-area-um2", type=finite_float, metavar="UM2",
                       help=f"smallest crystal area kept, um^2 (default {default_of(SegmentConfig, 'min_crystal_area_um2')})")
    group.add_argument("--max-area-um2", type=finite_float, metavar="UM2",
                       help=f"largest crystal area kept, um^2 (default {default_of(SegmentConfig, 'max_crystal_area_um2')})")
    group.add_argument("--exclude-border", action="store_true", help="drop crystals touching the image border")
    group.add_argument("--crystal-contrast", choices=choices_of(SegmentConfig, "crystal_contrast"),
                       help="bright: crystals brighter than what surrounds them (secondary-electron images); dark: "
                            "darker (segmented and classified with the gray levels inverted); auto: the shipped "
                            "learned segmenter judges each image, whichever segmenter and model segment it "
                            f"(default {default_of(SegmentConfig, 'crystal_contrast')})")
    steps = ",".join(choices_of(PreprocessConfig, "steps"))
    group.add_argument("--preprocess", metavar="STEPS",
                       help=f"preprocessing steps in order, comma-separated, from {steps} "
                            "(default: all, the paper's chain), or 'none'")
    group.add_argument("--n2v-model", metavar="MODEL",
                       help="Noise2Void model (bioimage.io zip or careamics .ckpt) for the n2v step; without one "
                            "that step is skipped (train one with 'microcrystalnet n2v train')")
    group.add_argument("--segmenter", choices=choices_of(SegmentConfig, "backend"),
                       help=f"crystal segmenter (default {default_of(SegmentConfig, 'backend')})")
    group.add_argument("--segmenter-model", metavar="MODEL",
                       help="learned segmenter: a model file from 'microcrystalnet train-segmenter' "
                            f"(default {default_of(LearnedConfig, 'model')}: the one shipped with the package)")
    group.add_argument("--segmenter-device", choices=choices_of(LearnedConfig, "device"),
                       help="learned segmenter: where its network runs, cuda (an NVIDIA GPU), mps (Apple's GPU) or "
                            "cpu (default: the fastest available); the crystal-contrast judgement runs there too, "
                            "for every segmenter")
    group.add_argument("--watershed-mode", choices=choices_of(WatershedConfig, "mode"),
                       help="watershed: boundary (split along dark lines at the crystal scale; real images), "
                            "threshold (bright crystals on dark pores; synthetic micrite), auto (boundary when "
                            f"a crystal size is set or estimated) (default {default_of(WatershedConfig, 'mode')})")
    group.add_argument("--sam-mode", choices=choices_of(SamConfig, "mode"),
                       help=f"SAM: prompt each crystal candidate, or SAM's automatic mask generator "
                            f"(default {default_of(SamConfig, 'mode')})")
    group.add_argument("--sam-prompts-from", choices=choices_of(SamConfig, "prompts_from"),
                       help="SAM prompt mode: the segmenter whose crystals prompt SAM "
                            f"(default {default_of(SamConfig, 'prompts_from')})")
    group.add_argument("--sam-model-type", choices=choices_of(SamConfig, "model_type"),
                       help=f"SAM model size (default {default_of(SamConfig, 'model_type')})")
    group.add_argument("--sam-checkpoint", metavar="PTH",
                       help="SAM checkpoint file (e.g. fine-tuned); default: the official one for the model type")
    group.add_argument("--sam-device", choices=choices_of(SamConfig, "device"),
                       help="SAM device (default: the fastest available)")


def _steps(text: str) -> list[str]:
    return [] if text.strip().lower() == "none" else [step.strip() for step in text.split(",") if step.strip()]


#: analysis option -> (settings path, conversion); None values (option not given) change nothing
_OPTION_SETTINGS: dict[str, tuple[tuple[str, ...], Callable[[Any], Any]]] = {
    "pixel_size_nm": (("input", "pixel_size_um"), lambda nm: nm / 1000),
    "keep_data_bar": (("input", "exclude_data_bar"), lambda keep: False if keep else None),
    "memory_limit_gb": (("input", "memory_limit_gb"), float),
    "crystal_size_um": (("segment", "crystal_size_um"), float),
    "crystal_size_px": (("segment", "crystal_size_px"), float),
    "watershed_mode": (("segment", "watershed", "mode"), str),
    "min_area_um2": (("segment", "min_crystal_area_um2"), float),
    "max_area_um2": (("segment", "max_crystal_area_um2"), float),
    "exclude_border": (("segment", "exclude_border"), lambda exclude: True if exclude else None),
    "crystal_contrast": (("segment", "crystal_contrast"), str),
    "preprocess": (("preprocess", "steps"), _steps),
    "n2v_model": (("preprocess", "n2v_model"), str),
    "segmenter": (("segment", "backend"), str),
    "segmenter_model": (("segment", "learned", "model"), str),
    "segmenter_device": (("segment", "learned", "device"), str),
    "sam_mode": (("segment", "sam", "mode"), str),
    "sam_prompts_from": (("segment", "sam", "prompts_from"), str),
    "sam_model_type": (("segment", "sam", "model_type"), str),
    "sam_checkpoint": (("segment", "sam", "checkpoint"), str),
    "sam_device": (("segment", "sam", "device"), str),
    "model": (("classify", "model"), str),
    "unclear_below": (("classify", "unclear_below"), float),
}


def analysis_config(arguments: argparse.Namespace) -> AnalysisConfig:
    """The settings file (or the defaults) with the options given on the command line; raises
    :class:`microcrystalnet.config.ConfigError` naming the file or option and the field."""
    config = AnalysisConfig.from_json(arguments.config) if arguments.config else AnalysisConfig()
    changes: dict[str, Any] = {}
    for option, (path, convert) in _OPTION_SETTINGS.items():
        value = getattr(arguments, option, None)
        value = None if value is None else convert(value)
        if value is None:
            continue
        section = changes
        for key in path[:-1]:
            section = section.setdefault(key, {})
        section[path[-1]] = value
    try:
        config = config.updated(**changes) if changes else config
    except ConfigError as error:  # name the options given, not only the settings they set
        message = str(error)
        for option, (path, _) in _OPTION_SETTINGS.items():
            if getattr(arguments, option, None) is not None:
                field = ".".join(path)
                message = message.replace(f"{field}:", f"--{option.replace('_', '-')} ({field}):")
        raise ConfigError(message) from None
    segment = config.segment
    uses_learned = segment.backend == "learned" or (segment.backend == "sam" and segment.sam.mode == "prompt"
                                                    and segment.sam.prompts_from == "learned")
    if getattr(arguments, "segmenter_model", None) is not None and not uses_learned:
        log.warning("--segmenter-model is a learned segmenter's model; the %s segmenter does not use it (the "
                    "crystal contrast is judged by the shipped network whatever it is)", segment.backend)
    return config


class Progress:
    """Stage-by-stage progress: a bar on a terminal, one line per stage otherwise, or
    machine-readable lines on stdout (``MCN-PROGRESS <fraction of all images> <stage>``)."""

    MACHINE_PREFIX = "MCN-PROGRESS"
    RESULT_PREFIX = "MCN-RESULT"

    def __init__(self, total: int, quiet: bool, machine: bool = False) -> None:
        self.total, self.quiet, self.machine, self.bar = total, quiet, machine, None
        if not quiet and not machine and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="image", file=sys.stderr)

    def callback(self, number: int, name: str) -> Callable[[str, float], None]:
        def report(stage: str, fraction: float) -> None:
            if self.machine:
                overall = (number - 1 + fraction) / self.total
                print(f"{self.MACHINE_PREFIX} {overall:.4f} {name}: {stage}", flush=True)
            elif self.bar is not None:
                self.bar.set_postfix_str(f"{name}: {stage}")
                if stage == "done":
                    self.bar.update(1)
            elif not self.quiet:
                print(f"[{number}/{self.total}] {name}: {stage}", file=sys.stderr, flush=True)
        return report

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


#: training progress is printed at most this often, seconds: for people, and for programs (--progress machine)
_PROGRESS_EVERY_S = 10.0
_MACHINE_PROGRESS_EVERY_S = 1.0


def training_progress(minutes: float | None = None, machine: bool = False) -> Callable[[int, int | None, float], None]:
    """A training progress callback ``(step, total steps or None, loss)`` logging the step and
    loss at most every few seconds, and at the end; ``minutes``: the time budget when there is
    no step count; ``machine``: every second also as a ``MCN-PROGRESS <fraction> <text>`` line
    on stdout."""
    started = last = None

    def report(step: int, total: int | None, loss: float) -> None:
        nonlocal started, last
        now = time.monotonic()
        if started is None:  # the clock starts with training, after the crops and replay scenes are made
            started = last = now
        elif now - last < (_MACHINE_PROGRESS_EVERY_S if machine else _PROGRESS_EVERY_S) and step != total:
            return
        last = now
        budget = f"/{total}" if total else f", {(now - started) / 60:.1f} of {minutes:g} min"
        log.info("training: step %d%s, loss %.3f", step, budget, loss)
        if machine:
            fraction = step / total if total else min(1.0, (now - started) / 60 / minutes)
            print(f"{Progress.MACHINE_PREFIX} {fraction:.4f} training: step {step}{budget}, loss {loss:.3f}",
                  flush=True)
    return report
