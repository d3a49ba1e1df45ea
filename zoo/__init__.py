"""zoo: classic generative models of MNIST in TensorFlow 2 / Keras 3.

    import zoo, keras
    model = keras.saving.load_model("vae.keras")      # any model saved with model.save (importing zoo registers them)
    model = zoo.load_model("exports/vae/1")            # the trainable Keras model inside an export
"""

__version__ = "0.2.0"

import os
import platform

# TensorFlow's x86-64 wheels use oneDNN's CPU kernels by default only on CPUs with AVX-512 VNNI or BF16, or AMX;
# elsewhere (AVX2 machines, e.g. AMD Zen 2) they fall back to Eigen's, which ran the DCGAN's step 2.1x and the RBM's
# 1.2-1.5x slower (docs/benchmarks.md#cpu-kernels-onednn). TensorFlow reads the setting once, when it loads, so this only
# applies when zoo is imported first (as `python -m zoo.*` does); TF_ENABLE_ONEDNN_OPTS=0 still turns it off.
if platform.machine().lower() in ("x86_64", "amd64"):
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from zoo.sources import pin_zoo_sources  # noqa: E402

pin_zoo_sources()  # before the other modules: AutoGraph must convert the code the process runs (zoo/sources.py)

from zoo.export import load_model  # noqa: E402
from zoo.models import DAE, DBN, DCGAN, GAN, MODELS, RBM, VAE, ConvVAE  # noqa: E402  (registers them with Keras)

__all__ = ["load_model", "MODELS", "VAE", "ConvVAE", "RBM", "DBN", "DAE", "GAN", "DCGAN"]
