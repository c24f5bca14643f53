"""scripts/bootstrap.sh: two commands started at once build one environment, and a checkout never
re-installs itself into a shared environment (its code comes from PYTHONPATH).

The environment built here is a small stand-in (one light dependency) in a private folder: the
real one is the same script with a longer dependency list.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

PYPROJECT = """[project]
name = "microcrystalnet"
dependencies = ["six"]

[project.optional-dependencies]
test = []
"""


def _checkout(folder: Path) -> Path:
    """A checkout holding the real bootstrap script and a one-dependency pyproject.toml."""
    (folder / "scripts").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "scripts" / "bootstrap.sh", folder / "scripts" / "bootstrap.sh")
    (folder / "pyproject.toml").write_text(PYPROJECT)
    (folder / "python" / "microcrystalnet").mkdir(parents=True)
    (folder / "python" / "microcrystalnet" / "__init__.py").write_text(f"WHERE = {str(folder)!r}\n")
    return folder


def _bootstrap(checkout: Path, venv_root: Path) -> subprocess.Popen:
    script = 'source scripts/bootstrap.sh && "$MCN_PYTHON" -c "import microcrystalnet, six; print(microcrystalnet.WHERE)"'
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    return subprocess.Popen(["bash", "-c", script], cwd=checkout, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**env, "MICROCRYSTALNET_VENV_ROOT": str(venv_root)})


@pytest.mark.slow
def test_two_bootstraps_at_once_build_one_environment_and_each_checkout_sees_its_own_code(tmp_path):
    venv_root = tmp_path / "venvs"
    first_checkout, second_checkout = _checkout(tmp_path / "one"), _checkout(tmp_path / "two")
    runs = [_bootstrap(first_checkout, venv_root), _bootstrap(second_checkout, venv_root)]
    outputs = [run.communicate(timeout=600) for run in runs]
    for run, (stdout, stderr) in zip(runs, outputs):
        assert run.returncode == 0, stderr[-3000:]
    assert [stdout.strip() for stdout, _ in outputs] == [str(first_checkout), str(second_checkout)]
    messages = "".join(stderr for _, stderr in outputs)
    assert messages.count("] building the Python environment") == 1, messages
    assert "waiting for it" in messages
    environments = [path for path in venv_root.iterdir() if path.name.startswith("venv-")]
    assert len(environments) == 1 and (environments[0] / ".complete").is_file()
    listed = subprocess.run([str(environments[0] / "bin" / "python"), "-m", "pip", "list"], capture_output=True,
                            text=True, check=True).stdout
    assert "microcrystalnet" not in listed  # nothing of a checkout was installed into the shared environment


def test_the_python_for_fiji_runs_this_checkouts_package():
    """`scripts/mcn --python-path` names the program to enter as Python in Fiji's Settings; it must
    import this checkout's microcrystalnet without any install into the environment."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    printed = subprocess.run([str(REPO_ROOT / "scripts" / "mcn"), "--python-path"], capture_output=True, text=True,
                             env=env, timeout=600, check=True).stdout.strip()
    assert printed == str(REPO_ROOT / "scripts" / "python")
    done = subprocess.run([printed, "-c", "import microcrystalnet; print(microcrystalnet.__file__)"],
                          capture_output=True, text=True, env=env, cwd="/", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(REPO_ROOT / "python" / "microcrystalnet" / "__init__.py")
