"""Shared fixtures: the repository's shared artifacts, small synthetic scenes, the reference model."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import tifffile

from microcrystalnet.synth import SceneSpec, SyntheticScene, render_scene

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
REFERENCE_MODEL = SHARED / "reference-model" / "microcrystalnet_reference_2023-11-19.h5"

#: a small scene with the physical content of a 2048 px / 10 nm scene (20.48 um wide)
SMALL_SCENE = SceneSpec(shape=(512, 512), pixel_size_um=0.04, seed=7)


def shared_file(path: Path) -> Path:
    """A file from ../shared, or a test failure that says what is missing and why."""
    if not path.is_file():
        pytest.fail(f"missing shared test artifact {path}: the tests expect the project's shared/ folder "
                    f"beside the repository (at {SHARED}), holding the authors' reference model")
    return path


@pytest.fixture(scope="session")
def reference_model_path() -> Path:
    return shared_file(REFERENCE_MODEL)


@pytest.fixture(scope="session")
def reference_classifier(reference_model_path):
    from microcrystalnet.classify import CrystalClassifier

    return CrystalClassifier.load(reference_model_path)


@pytest.fixture(scope="session")
def small_scene() -> SyntheticScene:
    return render_scene(SMALL_SCENE)


@pytest.fixture(scope="session")
def small_scene_file(tmp_path_factory, small_scene) -> Path:
    """The small scene as a calibrated ImageJ TIFF (read only: write results elsewhere)."""
    path = tmp_path_factory.mktemp("small-scene") / "scene.tif"
    size = small_scene.pixel_size_um
    tifffile.imwrite(path, small_scene.image, imagej=True, resolution=(1 / size, 1 / size), metadata={"unit": "um"})
    return path


@pytest.fixture(scope="session")
def n2v_model_trained_by_cli(small_scene_file, tmp_path_factory) -> Path:
    """A small Noise2Void model that ``microcrystalnet n2v train`` made from the small scene, trained
    once for the command-line and the Fiji tests (a training takes half a minute here). The
    command shows its progress, step by step to the last, and none of lightning's information
    lines nor careamics' own progress bar (it computed the images' statistics behind one)."""
    model = tmp_path_factory.mktemp("n2v") / "n2v.zip"
    done = subprocess.run([sys.executable, "-m", "microcrystalnet", "n2v", "train", str(small_scene_file), "--out",
                           str(model), "--steps", "20"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    steps = re.findall(r"training: step (\d+)/(\d+), loss \d+\.\d+", done.stderr)
    assert steps and steps[-1][0] == steps[-1][1] and int(steps[-1][1]) >= 20, done.stderr[-2000:]
    assert not any(chatter in done.stderr for chatter in ("GPU available", "litlogger", "lightning", "statistics")), \
        done.stderr[-2000:]
    return model


@pytest.fixture
def model_dir_env(monkeypatch, reference_model_path, tmp_path):
    """Point the model store at ../shared and at an empty private cache."""
    monkeypatch.setenv("MICROCRYSTALNET_MODEL_DIR", str(reference_model_path.parent))
    monkeypatch.setenv("MICROCRYSTALNET_CACHE_DIR", str(tmp_path / "cache"))
    return reference_model_path.parent


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test (results and determinism are for one thread, as the machine
    runs them), and the process's count restored after it: a count left at 1 made every later torch
    test of the suite run on one core (Noise2Void's 80 s became 150 s)."""
    from microcrystalnet.frameworks import import_torch

    torch = import_torch()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
