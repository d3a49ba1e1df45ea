"""Shared fixtures. Two logical CPU devices are made before TensorFlow starts, for the MirroredStrategy tests."""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

import zoo  # noqa: E402, F401  (before TensorFlow loads: it chooses TensorFlow's CPU kernels, zoo/__init__.py)
import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

from zoo import data  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_data(**changes):
    """A few hundred real MNIST images: 300 to train on, 100 for validation."""
    settings = dict(limit=300, validation_size=100, batch_size=50)
    settings.update(changes)
    return data.DataConfig(**settings)


def run_python(code, *args, timeout=300, env=None):
    """Run code in a fresh Python process from / (no zoo import unless the code makes one)."""
    env = {**os.environ, "PYTHONPATH": "", "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                          cwd="/", env=env)


def run_zoo(*args, timeout=300, env=None):
    """Run `python -m zoo.<module> ...` in a fresh process from the repo root."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env=env)


@pytest.fixture(scope="session")
def two_cpus():
    """One MirroredStrategy over the two logical CPUs for the whole session: TensorFlow numbers collective ops
    per strategy, and two strategies in one process can collide ("Shape mismatch in the collective instance")."""
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """Each model kind trained for one epoch by zoo.train and exported (test_keras_saving.train_every_kind), shared
    by the saving and the serving tests."""
    from test_keras_saving import train_every_kind

    return train_every_kind(tmp_path_factory)


@pytest.fixture(scope="session")
def mnist_arrays():
    return data.load_arrays("mnist", "packaged", None)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`-n 2`, with `--dist loadgroup` from pyproject), tests that share a costly fixture run on
    one worker, so it is built once: the tests of a module with module-scoped fixtures (tiny trained models) stay
    together, and so do all users of the session's `trained` (every kind trained and exported: a minute). The other
    tests are dealt out one by one."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        scopes = {name: definitions[-1].scope for name, definitions in item._fixtureinfo.name2fixturedefs.items()}
        if scopes.get("trained") == "session":
            item.add_marker(pytest.mark.xdist_group("trained"))
        elif "module" in scopes.values():
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


def pytest_configure(config):
    # Keras nags that fit's default shuffle=True does not apply to a tf.data.Dataset; the pipelines shuffle.
    config.addinivalue_line("filterwarnings", "ignore:`shuffle=True` was passed")
    # Keras 3.15's variables predate NumPy 2's `copy` keyword; reading one warns on every .numpy().
    config.addinivalue_line("filterwarnings", "ignore:__array__ implementation doesn't accept a copy keyword")
