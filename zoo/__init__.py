"""zoo: classic generative models of MNIST in TensorFlow 2 / Keras 3."""

__version__ = "0.1.0"

import os

# TensorFlow's C++ INFO lines (oneDNN, CUDA probing) drown the progress bars; warnings and errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
