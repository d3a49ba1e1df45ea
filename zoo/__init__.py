"""zoo: classic generative models of MNIST in TensorFlow 2 / Keras 3.

    import zoo, keras
    model = keras.saving.load_model("vae.keras")      # any model saved with model.save (importing zoo registers them)
    model = zoo.load_model("exports/vae/1")            # the trainable Keras model inside an export
"""

__version__ = "0.2.0"

from zoo.sources import pin_zoo_sources  # noqa: E402

pin_zoo_sources()  # before the other modules: AutoGraph must convert the code the process runs (zoo/sources.py)

from zoo.export import load_model  # noqa: E402
from zoo.models import DAE, DBN, DCGAN, GAN, MODELS, RBM, VAE, ConvVAE  # noqa: E402  (registers them with Keras)

__all__ = ["load_model", "MODELS", "VAE", "ConvVAE", "RBM", "DBN", "DAE", "GAN", "DCGAN"]
