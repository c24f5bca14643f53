"""TensorFlow and torch share one process safely (see microcrystalnet.frameworks)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import microcrystalnet
from microcrystalnet.frameworks import DeviceUnavailableError, import_torch, torch_device

PACKAGE = Path(microcrystalnet.__file__).parent
FRAMEWORKS = {"tensorflow", "keras", "torch", "torchvision", "segment_anything", "careamics", "lightning"}


def test_only_the_frameworks_module_imports_deep_learning_frameworks():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "frameworks.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(PACKAGE)}: {name}" for name in names if name.split(".")[0] in FRAMEWORKS]
    assert not offenders, "import these through microcrystalnet.frameworks: " + ", ".join(offenders)


def test_classifier_then_torchvision_in_one_process(reference_model_path):
    """The classifier runs in torch without TensorFlow; torchvision is left out until SAM needs it
    (2-3 s of every command's start), and it still works after TensorFlow (the Keras model, which
    activation maps need)."""
    script = f"""
import sys
import numpy as np
from microcrystalnet.classify import CrystalClassifier
from microcrystalnet.frameworks import import_torch
classifier = CrystalClassifier.load({str(reference_model_path)!r})
print(classifier.predict(np.random.default_rng(0).random((4, 64, 64, 1), dtype=np.float32)).sum())
print("loaded:", sorted(name for name in ("tensorflow", "torchvision") if name in sys.modules))
print(classifier.keras_model.count_params(), "tensorflow loaded:", "tensorflow" in sys.modules)
torch = import_torch()
import torchvision
boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=torch.float32)
print(torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "loaded: []" in done.stdout and "287156 tensorflow loaded: True" in done.stdout
    assert "[0, 2]" in done.stdout


def test_importing_the_package_loads_no_framework():
    done = subprocess.run([sys.executable, "-c", "import sys, microcrystalnet.cli, microcrystalnet.pipeline; "
                           "print(sorted(m for m in ('tensorflow', 'torch', 'keras') if m in sys.modules))"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_device_is_the_one_asked_for_or_the_fastest_there_is():
    torch = import_torch()
    assert torch_device("cpu", user="SAM") == "cpu"
    fastest = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert torch_device(None, user="SAM") == fastest


@pytest.mark.skipif(import_torch().cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_gpu_that_is_not_there_is_refused_naming_who_asked():
    with pytest.raises(DeviceUnavailableError, match="learned segmenter device 'cuda' was asked for, but torch "
                                                     "sees no CUDA GPU; leave the device unset"):
        torch_device("cuda", user="learned segmenter")
