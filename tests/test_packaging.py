"""The zoo as an installable package: pip installs it, and it runs from any folder with its data files."""

import os
import platform
import re
import subprocess
import sys
import tomllib

import pytest

from conftest import REPO, run_python


def pins(lines):
    return {re.split("==", line)[0].strip().lower(): line.strip() for line in lines
            if line.strip() and not line.lstrip().startswith("#")}


def test_requirements_and_pyproject_agree():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    with open(os.path.join(REPO, "requirements.txt")) as f:
        required = pins(f)
    declared = pins(project["dependencies"] + project["optional-dependencies"]["test"])
    assert declared == required  # the same packages with the same pins: the tested set


def test_pip_install_runs_from_any_folder(tmp_path):
    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                              "--target", str(target), REPO], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-3000:]
    env = {"PYTHONPATH": str(target)}  # the installed copy, not the checkout (the process runs from /)
    where = run_python("import zoo, zoo.classifier; print(zoo.__file__); print(zoo.classifier.FROZEN_WEIGHTS); "
                       "print(zoo.pretrained.weights_path('vae_2d')); "
                       "print(zoo.pretrained.load('vae_2d').sample(2, 0).shape)",
                       env=env)
    assert where.returncode == 0, where.stderr[-3000:]
    package_file, weights, pretrained_weights, *shape = where.stdout.split()
    assert package_file.startswith(str(target)) and os.path.exists(weights) and weights.startswith(str(target))
    # The pretrained weights are package data: the installed copy carries them, and they load from there.
    assert pretrained_weights.startswith(str(target)) and "".join(shape) == "(2,28,28,1)"
    help_text = subprocess.run([sys.executable, "-m", "zoo.train", "--help"], capture_output=True, text=True,
                               cwd=tmp_path, env={**os.environ, **env}, timeout=120)
    assert help_text.returncode == 0 and "conv_vae" in help_text.stdout, help_text.stderr[-3000:]
    assert not (target / "exports").exists() and not (target / "zoo" / "exports").exists()


ONEDNN_STATE = """
import zoo
from tensorflow.python.util import _pywrap_util_port
print(_pywrap_util_port.IsMklEnabled())
"""


def onednn_enabled(**settings):
    """Whether TensorFlow runs oneDNN's kernels in a fresh process that imports zoo first."""
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}  # this process's is zoo's own
    done = subprocess.run([sys.executable, "-c", ONEDNN_STATE], capture_output=True, text=True, timeout=120, cwd="/",
                          env={**env, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2", **settings})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip() == "True"


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="the zoo sets oneDNN on x86-64 only")
def test_importing_zoo_first_turns_on_onednn_kernels_unless_the_user_says_otherwise():
    assert onednn_enabled()  # whatever this CPU's TensorFlow default is
    assert not onednn_enabled(TF_ENABLE_ONEDNN_OPTS="0")
