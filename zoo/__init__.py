"""zoo: classic generative models of MNIST in TensorFlow 2 / Keras 3.

    import zoo, keras
    model = zoo.pretrained.load("vae_iwae")           # a trained model from the registry, offline
    model = keras.saving.load_model("vae.keras")      # any model saved with model.save (importing zoo registers them)
    model = zoo.load_model("exports/vae/1")            # the trainable Keras model inside an export
"""

import contextlib
import os
import platform

from zoo.version import __version__  # noqa: F401

# TensorFlow's x86-64 wheels use oneDNN's CPU kernels by default only on CPUs with AVX-512 VNNI or BF16, or AMX; on
# AVX2-only CPUs they fall back to Eigen's, which run the convolutional models markedly slower
# (docs/benchmarks.md#cpu-kernels-onednn). TensorFlow reads the setting once, when it loads, so this only applies when
# zoo is imported first (as `python -m zoo.*` does); TF_ENABLE_ONEDNN_OPTS=0 still turns it off.
if platform.machine().lower() in ("x86_64", "amd64"):
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


@contextlib.contextmanager
def _quiet_standard_error():
    """File descriptor 2 sent to /dev/null inside: TensorFlow's C++ start-up lines (the oneDNN and CUDA notices,
    printed before its log settings are read, and a failed cuInit on machines without a GPU) bypass Python."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _import_tensorflow_quietly():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # and its INFO and WARNING lines after start-up
    with _quiet_standard_error():
        import tensorflow

        tensorflow.config.list_physical_devices("GPU")  # finds the GPUs (or fails to) now, while muted


if os.environ.get("ZOO_TF_LOGS") != "1":  # ZOO_TF_LOGS=1 shows TensorFlow's start-up lines
    _import_tensorflow_quietly()

from zoo.sources import pin_zoo_sources  # noqa: E402

pin_zoo_sources()  # before the other modules: AutoGraph must convert the code the process runs (zoo/sources.py)

from zoo.models import DAE, DBN, DCGAN, GAN, MODELS, RBM, VAE, ConvVAE  # noqa: E402  (registers them with Keras)

__all__ = ["load_model", "pretrained", "MODELS", "VAE", "ConvVAE", "RBM", "DBN", "DAE", "GAN", "DCGAN"]


def __getattr__(name):
    """zoo.load_model and zoo.pretrained, imported on first use: a package that imported them eagerly would be
    imported again by `python -m zoo.export` (Python warns of it)."""
    if name == "load_model":
        from zoo.export import load_model

        return load_model
    if name == "pretrained":
        import importlib

        return importlib.import_module("zoo.pretrained")
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
