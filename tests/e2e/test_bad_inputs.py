"""Bad input, table by table: every case gets its documented exit status and a message that says
what is wrong, and nothing outside the program's own output folder changes.

Each case runs the real command line in a subprocess inside a sandbox folder holding an input
image and a user's other files; the sandbox is fingerprinted (every file's bytes) before and after.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import tifffile

from microcrystalnet.synth import SceneSpec, render_scene

EXIT_USAGE, EXIT_SOME_FAILED, EXIT_MODEL = 2, 1, 3


@dataclass(frozen=True)
class Case:
    """One bad input: the arguments (``{sandbox}`` is replaced by the sandbox folder), an optional
    set-up writing more files, the exit status and a regular expression the messages must match."""

    name: str
    arguments: tuple[str, ...]
    status: int
    message: str | tuple[str, ...]  # one regular expression, or several that must all match
    setup: Callable[[Path], None] | None = None
    may_create: tuple[str, ...] = field(default=())  # sandbox paths the program may create (its outputs)
    env: tuple[tuple[str, str], ...] = ()  # environment changes ({sandbox} replaced)


def _settings(content: object, name: str = "settings.json") -> Callable[[Path], None]:
    def write(sandbox: Path) -> None:
        (sandbox / name).write_text(json.dumps(content) if not isinstance(content, str) else content)
    return write


ANALYZE = ("analyze", "{sandbox}/sample.tif", "--out", "{sandbox}/results", "--no-download")

OPTION_CASES = [
    Case("workers negative", ("batch", "{sandbox}", "--out", "{sandbox}/results", "--workers", "-3"), EXIT_USAGE,
         r"--workers: .*must be 0 or more, got -3"),
    Case("workers not a number", ("batch", "{sandbox}", "--out", "{sandbox}/results", "--workers", "two"),
         EXIT_USAGE, r"--workers: .*expected a whole number"),
    Case("pixel size infinite", (*ANALYZE, "--pixel-size-nm", "inf"), EXIT_USAGE,
         r"--pixel-size-nm: .*expected a finite number"),
    Case("pixel size NaN", (*ANALYZE, "--pixel-size-nm", "nan"), EXIT_USAGE, r"--pixel-size-nm: .*finite"),
    Case("pixel size zero", (*ANALYZE, "--pixel-size-nm", "0"), EXIT_USAGE,
         r"--pixel-size-nm: .*must be greater than 0"),
    Case("pixel size negative", (*ANALYZE, "--pixel-size-nm", "-5"), EXIT_USAGE, r"--pixel-size-nm"),
    Case("area limits swapped", (*ANALYZE, "--min-area-um2", "5", "--max-area-um2", "1"), EXIT_USAGE,
         r"invalid settings: .*min_crystal_area_um2 \(5.0\) must be smaller than max_crystal_area_um2 \(1.0\)"),
    Case("negative area", (*ANALYZE, "--min-area-um2", "-1"), EXIT_USAGE,
         r"invalid settings: --min-area-um2 \(segment\.min_crystal_area_um2\): Input should be greater than or "
         r"equal to 0"),
    Case("unclear above 1", (*ANALYZE, "--unclear-below", "2"), EXIT_USAGE,
         r"invalid settings: --unclear-below \(classify\.unclear_below\): "),
    Case("unknown preprocessing step", (*ANALYZE, "--preprocess", "nlm,sharpen"), EXIT_USAGE,
         r"preprocess\.steps\.1: Input should be 'nlm', 'n2v', 'unsharp', 'opening' or 'closing'"),
    Case("crystal size zero", (*ANALYZE, "--crystal-size-um", "0"), EXIT_USAGE, r"--crystal-size-um: must be greater"),
    Case("crystal size in um and px", (*ANALYZE, "--crystal-size-um", "1", "--crystal-size-px", "20"), EXIT_USAGE,
         r"not allowed with argument"),
    Case("unknown segmenter", (*ANALYZE, "--segmenter", "cellpose"), EXIT_USAGE, r"invalid choice: 'cellpose'"),
    Case("demo too small", ("demo", "--out", "{sandbox}/results", "--size", "100"), EXIT_USAGE,
         r"--size must be at least 256"),
    Case("n2v chain without n2v", ("n2v", "train", "{sandbox}/sample.tif", "--out", "{sandbox}/n2v.zip", "--chain",
                                   "nlm,unsharp"), EXIT_USAGE, r"--chain must contain n2v"),
    Case("train with two folds", ("train", "{sandbox}", "--out", "{sandbox}/run", "--folds", "2"), EXIT_USAGE,
         r"folds must be 1 \(one split\) or >= 3"),
]

SETTINGS_CASES = [
    Case("settings: text for a number", (*ANALYZE, "--config", "{sandbox}/settings.json"), EXIT_USAGE,
         r"settings file .*settings\.json: input\.pixel_size_um: Input should be a valid number \(got 'ten'\)",
         _settings({"input": {"pixel_size_um": "ten"}})),
    Case("settings: number for steps", (*ANALYZE, "--config", "{sandbox}/settings.json"), EXIT_USAGE,
         r"preprocess\.steps: Input should be a valid tuple \(got 5\)", _settings({"preprocess": {"steps": 5}})),
    Case("settings: null area", (*ANALYZE, "--config", "{sandbox}/settings.json"), EXIT_USAGE,
         r"segment\.min_crystal_area_um2: Input should be a valid number \(got None\)",
         _settings({"segment": {"min_crystal_area_um2": None}})),
    Case("settings: text for an integer", (*ANALYZE, "--config", "{sandbox}/settings.json"), EXIT_USAGE,
         r"segment\.sam\.decoder_batch: Input should be a valid integer \(got '8'\)",
         _settings({"segment": {"sam": {"decoder_batch": "8"}}})),
    Case("settings: fraction for an integer", (*ANALYZE, "--config", "{sandbox}/settings.json"), EXIT_USAGE,
         r"preprocess\.nlm_patch_px: Input should be a valid integer \(got 2\.7\)",
         _settings({"preprocess": {"nlm_patch_px": 2.7}})),
    Case("settings: 'no' for a switch", (*ANALYZE, "--config", "{sandbox}/settings.json"), EXIT_USAGE,
         r"input\.exclude_data_bar: Input should be a valid boolean \(got 'no'\)",
         _settings({"input": {"exclude_data_bar": "no"}})),
    Case("settings: true for a probability", (*ANALYZE, "--config", "{sandbox}/settings.json"), EXIT_USAGE,
         r"classify\.unclear_below: Input should be a valid number \(got True\)",
         _settings({"classify": {"unclear_below": True}})),
    Case("settings: unknown key", (*ANALYZE, "--config", "{sandbox}/settings.json"), EXIT_USAGE,
         r"segment\.minimum_area: unknown setting", _settings({"segment": {"minimum_area": 1}})),
    Case("settings: extends loop", (*ANALYZE, "--config", "{sandbox}/settings.json"), EXIT_USAGE,
         r"'extends' makes a loop", _settings({"extends": "settings.json"})),
    Case("settings: not JSON", (*ANALYZE, "--config", "{sandbox}/settings.json"), EXIT_USAGE,
         r"cannot read the settings file .*settings\.json", _settings("{not json")),
    Case("settings: missing file", (*ANALYZE, "--config", "{sandbox}/absent.json"), EXIT_USAGE,
         r"cannot read the settings file .*absent\.json"),
    Case("settings: newer version", (*ANALYZE, "--config", "{sandbox}/settings.json"), EXIT_USAGE,
         r"version: Input should be 1 \(got 2\)", _settings({"version": 2})),
    Case("training settings: bad patch size", ("patches", "--synthetic", "1", "--out", "{sandbox}/p", "--config",
                                               "{sandbox}/settings.json"), EXIT_USAGE,
         r"patch\.size: Input should be greater than or equal to 8", _settings({"patch": {"size": 2}})),
]

def _bad_image_files(sandbox: Path) -> None:
    good = tifffile.imread(sandbox / "sample.tif")
    (sandbox / "empty.tif").write_bytes(b"")
    (sandbox / "corrupt.tif").write_bytes(b"II*\x00" + b"\x13" * 200)
    (sandbox / "truncated.tif").write_bytes((sandbox / "sample.tif").read_bytes()[:3000])
    (sandbox / "text.tif").write_text("not an image")
    tifffile.imwrite(sandbox / "small.tif", good[:32, :32])
    tifffile.imwrite(sandbox / "stack.tif", np.stack([good, good]))
    with_nan = good.astype(np.float32)
    with_nan[5, 5] = np.nan
    tifffile.imwrite(sandbox / "nan.tif", with_nan)
    tifffile.imwrite(sandbox / "blank.tif", np.full((128, 128), 7, np.uint8))
    (sandbox / "folder.tif").mkdir()


BAD_FILES = ("missing.tif", "empty.tif", "corrupt.tif", "truncated.tif", "text.tif", "small.tif", "stack.tif",
             "nan.tif", "blank.tif", "folder.tif", "notes.txt")

FILE_CASES = [
    Case("bad image files, each reported, the good one analysed",
         ("analyze", *(f"{{sandbox}}/{name}" for name in BAD_FILES), "{sandbox}/sample.tif", "--out",
          "{sandbox}/results", "--no-download", "--no-overlay", "-q"), EXIT_SOME_FAILED,
         (r"missing\.tif.*no such file", r"empty\.tif.*empty", r"corrupt\.tif.*cannot be read",
          r"truncated\.tif.*cannot be read", r"text\.tif.*cannot be read", r"small\.tif.*at least 64 x 64",
          r"stack\.tif.*stack", r"nan\.tif.*NaN", r"blank\.tif.*blank", r"folder\.tif.*is a folder, not an image",
          r"notes\.txt.*unsupported file type", r"11 of 12 images could not be analysed"),
         _bad_image_files, may_create=("results",)),
    Case("image over the memory limit", (*ANALYZE, "--memory-limit-gb", "0.01"), EXIT_SOME_FAILED,
         (r"sample\.tif: analysing this 256 x 256 px image needs about .* GB of memory \(estimate\), more than the "
          r"limit of 0\.0 GB", r"--memory-limit-gb")),
]


def _user_folder(sandbox: Path) -> None:
    """The reproduction of issue 12's first bug: an image in a folder of the user's, with the
    user's other files, and results asked for in that folder's parent."""
    folder = sandbox / "d" / "s"
    folder.mkdir(parents=True)
    (folder / "s.tif").write_bytes((sandbox / "sample.tif").read_bytes())
    (folder / "raw2.tif").write_bytes((sandbox / "sample.tif").read_bytes())
    (folder / "notes.txt").write_text("x\n")


FOLDER_CASES = [
    Case("results over the input's folder", ("analyze", "{sandbox}/d/s/s.tif", "--out", "{sandbox}/d"), EXIT_USAGE,
         r"d/s exists and was not written by MicroCrystalNet .* choose another --out", _user_folder),
    Case("recursive batch into its input folder", ("batch", "{sandbox}/d", "--recursive", "--out", "{sandbox}/d",
                                                   "--workers", "0"), EXIT_USAGE,
         r"d/s exists and was not written by MicroCrystalNet", _user_folder,
         may_create=("d/.microcrystalnet-batch.lock",)),
    Case("output path is a file", ("analyze", "{sandbox}/sample.tif", "--out", "{sandbox}/notes.txt"),
         EXIT_SOME_FAILED, r"cannot write the results to .*notes\.txt: a file is in the way"),
    Case("batch of a missing folder", ("batch", "{sandbox}/absent", "--out", "{sandbox}/results"), EXIT_USAGE,
         r"absent: no such folder"),
    Case("batch of a folder without images", ("batch", "{sandbox}/d/s", "--out", "{sandbox}/results"), EXIT_USAGE,
         r"holds no images", lambda sandbox: (sandbox / "d" / "s").mkdir(parents=True)),
]

MODEL_CASES = [
    Case("classifier file missing", (*ANALYZE, "--model", "{sandbox}/absent.keras"), EXIT_MODEL,
         r"model: .*absent\.keras"),
    Case("classifier file of random bytes", (*ANALYZE, "--model", "{sandbox}/random.keras"), EXIT_MODEL,
         r"model: .*random\.keras: cannot be loaded as a Keras model: it is neither", lambda sandbox: (
             (sandbox / "random.keras").write_bytes(np.random.default_rng(2).bytes(4096)),
             (sandbox / "random.keras.json").write_text(json.dumps({"class_order": ["AA", "PES", "RES", "RA/SA"],
                                                                   "input_size": 64})))),
    Case("classifier not on this machine, no download", ANALYZE, EXIT_MODEL,
         r"model: .*(download|https://).*sha256", env=(("MICROCRYSTALNET_MODEL_DIR", ""),
                                                      ("MICROCRYSTALNET_CACHE_DIR", "{sandbox}/cache")),
         may_create=("cache",)),
    Case("SAM checkpoint of zero bytes", (*ANALYZE, "--segmenter", "sam", "--sam-checkpoint", "{sandbox}/empty.pth"),
         EXIT_MODEL, r"model: .*empty\.pth is not a SAM vit_b checkpoint: the file is empty",
         lambda sandbox: (sandbox / "empty.pth").write_bytes(b"")),
    Case("SAM checkpoint of random bytes", (*ANALYZE, "--segmenter", "sam", "--sam-checkpoint",
                                            "{sandbox}/random.pth"), EXIT_MODEL,
         r"model: .*random\.pth is not a SAM vit_b checkpoint", lambda sandbox: (sandbox / "random.pth").write_bytes(
             np.random.default_rng(1).bytes(4096))),
    Case("Noise2Void model missing", (*ANALYZE, "--n2v-model", "{sandbox}/absent.zip"), EXIT_MODEL,
         r"model: .*absent\.zip"),
    Case("a GPU asked for, none there", (*ANALYZE, "--segmenter-device", "cuda"), EXIT_USAGE,
         r"learned segmenter device 'cuda' was asked for, but torch sees no CUDA GPU; leave the device unset",
         env=(("CUDA_VISIBLE_DEVICES", ""),)),
]

CASES = OPTION_CASES + SETTINGS_CASES + FILE_CASES + FOLDER_CASES + MODEL_CASES


def _fingerprint(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
            for path in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def sample_image(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("image") / "sample.tif"
    scene = render_scene(SceneSpec(shape=(256, 256), pixel_size_um=0.04, seed=3))
    tifffile.imwrite(path, scene.image, imagej=True, resolution=(25, 25), metadata={"unit": "um"})
    return path


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_gets_a_clear_message_and_changes_nothing(case, sample_image, tmp_path, reference_model_path):
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    (sandbox / "sample.tif").write_bytes(sample_image.read_bytes())
    (sandbox / "notes.txt").write_text("a user's notes\n")
    if case.setup:
        case.setup(sandbox)
    before = _fingerprint(sandbox)
    arguments = [argument.replace("{sandbox}", str(sandbox)) for argument in case.arguments]
    env = {**os.environ, "MICROCRYSTALNET_MODEL_DIR": str(reference_model_path.parent),
           **{name: value.replace("{sandbox}", str(sandbox)) for name, value in case.env}}
    done = subprocess.run([sys.executable, "-m", "microcrystalnet", *arguments], capture_output=True, text=True,
                          env=env, timeout=600)
    messages = done.stdout + done.stderr
    assert done.returncode == case.status, messages
    assert "Traceback" not in messages
    for message in (case.message,) if isinstance(case.message, str) else case.message:
        assert re.search(message, messages), f"{message!r} not in:\n{messages}"
    after = {path: digest for path, digest in _fingerprint(sandbox).items()
             if not any(path == allowed or path.startswith(allowed + "/") for allowed in case.may_create)}
    assert after == before


def test_help_loads_no_numerical_library():
    """`microcrystalnet --help` and every command's --help answer without numpy, TensorFlow or torch
    (their import is what made --help take seconds; the time itself is in BENCHMARKS.md)."""
    script = ("import sys, contextlib, io\n"
              "from microcrystalnet.cli import build_parser\n"
              "parser = build_parser()\n"
              "for command in ([], ['analyze'], ['batch'], ['train'], ['n2v', 'train'], ['tune-sam'], ['train-segmenter']):\n"
              "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
              "        parser.parse_args([*command, '--help'])\n"
              "print(sorted(m for m in ('numpy', 'scipy', 'tensorflow', 'torch', 'keras', 'skimage') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
