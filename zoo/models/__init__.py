"""The zoo's models by the name `python -m zoo.train <name>` knows them (each class's KIND)."""

from zoo.models.cgan import ConditionalDCGAN
from zoo.models.cvae import ConditionalConvVAE, ConditionalVAE
from zoo.models.dae import DAE
from zoo.models.dbn import DBN
from zoo.models.gan import DCGAN, GAN
from zoo.models.rbm import RBM
from zoo.models.vae import VAE, ConvVAE

MODELS = {model.KIND: model for model in (VAE, ConvVAE, RBM, DBN, DAE, GAN, DCGAN, ConditionalVAE,
                                          ConditionalConvVAE, ConditionalDCGAN)}
