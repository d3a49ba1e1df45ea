"""The zoo's models by the name `python -m zoo.train <name>` knows them."""

from zoo.models.dae import DAE
from zoo.models.dbn import DBN
from zoo.models.gan import DCGAN, GAN
from zoo.models.rbm import RBM
from zoo.models.vae import VAE, ConvVAE

MODELS = {
    "vae": VAE,
    "conv_vae": ConvVAE,
    "rbm": RBM,
    "dbn": DBN,
    "dae": DAE,
    "gan": GAN,
    "dcgan": DCGAN,
}
