"""Stacked denoising autoencoder (Vincent et al. 2008, 2010): layer-wise denoising pretraining, then end-to-end
fine-tuning.

Each layer is an autoencoder that reconstructs its clean input x from a corrupted copy x~:
    x~ = corrupt(x)                         masking noise (a fraction of the inputs set to 0), Gaussian noise, or both
    h  = sigmoid(x~ W + b)                  encoder
    x^ = sigmoid(h W' + b')                 decoder
    loss = cross-entropy(x, x^)             summed over the inputs, per image
Greedy pretraining trains layer i on the clean codes of layer i-1. Fine-tuning stacks the encoders and the decoders
(in reverse) and trains the whole from corrupted images, with the same loss on the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import tensorflow as tf

from zoo.models.base import (MeanMetrics, ZooModel, check_fields, check_images, check_latent, mean_trackers,
                             positive, step_seed)


@dataclass
class DAEConfig:
    layers: tuple[int, ...] = field(default=(784, 500, 250, 100), metadata={
        "help": "layer sizes, the images first; at least three encoding layers"})
    masking: float = field(default=0.25, metadata={"help": "fraction of the inputs set to 0 (masking noise)"})
    gaussian: float = field(default=0.0, metadata={"help": "standard deviation of additive Gaussian noise"})
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate, both phases"})
    fine_tune_epochs: int = field(default=10, metadata={"help": "epochs of end-to-end fine-tuning (0: none)"})
    inpaint_steps: int = field(default=20, metadata={"help": "reconstruct-and-clamp rounds of inpaint"})

    def __post_init__(self):
        self.layers = tuple(self.layers)
        check_fields(
            self, layers=(lambda v: len(v) >= 4 and v[0] == 784 and positive(v),
                          "784 (the pixels) and at least three positive encoding sizes, e.g. 784,500,250,100"),
            masking=(lambda v: 0 <= v < 1, "in [0, 1)"), gaussian=(lambda v: v >= 0, ">= 0"),
            learning_rate=(positive, "positive"), fine_tune_epochs=(lambda v: v >= 0, ">= 0 (0: none)"),
            inpaint_steps=(positive, "positive"))


def corrupt(x, masking, gaussian, seed):
    """Masking noise (each input set to 0 with probability `masking`) and additive Gaussian noise."""
    if masking > 0:
        keep = tf.random.stateless_uniform(tf.shape(x), seed) >= masking
        x = tf.where(keep, x, tf.zeros_like(x))
    if gaussian > 0:
        x = x + gaussian * tf.random.stateless_normal(tf.shape(x), tf.random.experimental.stateless_fold_in(seed, 1))
    return x


def cross_entropy(targets, logits):
    return tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits), axis=-1)


class DenoisingObjective:
    """The denoising train_step and test_step, shared by one layer and the whole stack: self(x) gives the logits of
    the reconstruction of inputs x (made flat rows by self.as_inputs), self.masking and self.gaussian the
    corruption, self.training_seed() the noise of this step; it reports METRICS through MeanMetrics.record."""

    METRICS = ("loss", "reconstruction_mse", "denoising_mse")

    def train_step(self, x):
        x = self.as_inputs(x)
        noisy = corrupt(x, self.masking, self.gaussian, self.training_seed())
        with tf.GradientTape() as tape:
            logits = self(noisy, training=True)
            loss = tf.reduce_mean(cross_entropy(x, logits))
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return self.update_metrics(x, logits, loss)

    def test_step(self, x):
        x = self.as_inputs(x)
        logits = self(corrupt(x, self.masking, self.gaussian, tf.constant([self.seed, -1])))
        return self.update_metrics(x, logits, tf.reduce_mean(cross_entropy(x, logits)))

    def update_metrics(self, x, denoised_logits, loss):
        """The loss, the error of denoising the corrupted input, and that of reconstructing the clean one."""
        return self.record({
            "loss": loss,
            "reconstruction_mse": tf.reduce_mean(tf.square(tf.sigmoid(self(x)) - x), axis=1),
            "denoising_mse": tf.reduce_mean(tf.square(tf.sigmoid(denoised_logits) - x), axis=1),
        })


class DenoisingLayer(DenoisingObjective, MeanMetrics, keras.Model):
    """One layer of the stack, trained on its own: clean inputs [n, visible] -> reconstruct them from corruption."""

    XLA_ON_CPU = True  # dense layers only: XLA helps on a CPU, as for the MLP VAE

    def __init__(self, visible, hidden, masking, gaussian, learning_rate, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.encoder = keras.layers.Dense(hidden, activation="sigmoid")
        self.decoder = keras.layers.Dense(visible)  # logits
        self.masking, self.gaussian, self.learning_rate, self.seed = masking, gaussian, learning_rate, seed
        self.visible = visible
        self.trackers = mean_trackers(self.METRICS)
        self(tf.zeros((1, visible)))

    def compile(self, total_steps=None, **kwargs):
        super().compile(optimizer=keras.optimizers.Adam(self.learning_rate), **kwargs)

    def call(self, x, training=False):
        return self.decoder(self.encoder(x))

    def as_inputs(self, x):
        return x

    def training_seed(self):
        return tf.stack([tf.constant(self.seed, tf.int32), tf.cast(self.optimizer.iterations, tf.int32)])


@keras.saving.register_keras_serializable(package="zoo")
class DAE(DenoisingObjective, ZooModel):
    """Stacked denoising autoencoder: layer-wise denoising pretraining, then end-to-end fine-tuning."""

    KIND = "dae"
    Config = DAEConfig
    SIGNATURES = ("reconstruct", "encode", "decode", "inpaint")  # no sample: an autoencoder has no prior
    DATA = dict(binarize="none")
    XLA_ON_CPU = True

    def __init__(self, config=None, seed=0, **kwargs):
        super().__init__(config, seed, **kwargs)
        sizes = self.config.layers
        self.encoders = [keras.layers.Dense(n, activation="sigmoid", name=f"encoder{i}")
                         for i, n in enumerate(sizes[1:])]
        # The decoders mirror the encoders; the last one outputs pixel logits.
        self.decoders = [keras.layers.Dense(n, activation="sigmoid" if i else None, name=f"decoder{i}")
                         for i, n in reversed(list(enumerate(sizes[:-1])))]
        self.masking, self.gaussian = self.config.masking, self.config.gaussian

    @property
    def latent_dim(self):
        return self.config.layers[-1]

    # -- layer-wise pretraining -------------------------------------------------------------------------------

    def pretrain(self, fit_stage):
        """Train each layer as a denoising autoencoder of the clean codes of the layer below (fit_stage gives it
        a fit of its own), then copy its encoder and decoder into the stack."""
        c = self.config
        trained = []  # the encoders so far, for the data pipeline
        for i, (visible, hidden) in enumerate(zip(c.layers[:-1], c.layers[1:])):
            layer = DenoisingLayer(visible, hidden, c.masking, c.gaussian, c.learning_rate, seed=self.seed + i)
            fit_stage(f"layer{i + 1}", layer, self.clean_codes(trained))
            self.build_for_images()
            self.encoders[i].set_weights(layer.encoder.get_weights())
            self.decoders[len(self.decoders) - 1 - i].set_weights(layer.decoder.get_weights())
            trained.append([tf.constant(w) for w in layer.encoder.get_weights()])

    @staticmethod
    def clean_codes(trained):
        """images, batch index -> the clean (uncorrupted) codes of the encoders trained so far."""
        def transform(images, index):
            h = tf.reshape(images, (-1, 784))
            for kernel, bias in trained:
                h = tf.sigmoid(tf.matmul(h, kernel) + bias)
            return h

        return transform

    # -- fine-tuning ------------------------------------------------------------------------------------------

    def encode_flat(self, x):
        for encoder in self.encoders:
            x = encoder(x)
        return x

    def decode_logits(self, h):
        for decoder in self.decoders:
            h = decoder(h)
        return h

    def call(self, images, training=False):
        """Pixel logits of the clean reconstruction, flat [n, 784]."""
        return self.decode_logits(self.encode_flat(tf.reshape(images, (-1, 784))))

    def as_inputs(self, images):
        return tf.reshape(images, (-1, 784))

    def training_seed(self):
        return step_seed(self, stream=0)

    # -- the serving verbs ------------------------------------------------------------------------------------

    def encode(self, images):
        return {"latent": self.encode_flat(tf.reshape(check_images(images), (-1, 784)))}

    def decode(self, latent):
        return tf.reshape(tf.sigmoid(self.decode_logits(check_latent(latent, self.latent_dim))), (-1, 28, 28, 1))

    def complete(self, images, observed, seed):
        """Repeated reconstruction, the observed pixels clamped after each (deterministic: the seed is accepted for
        the serving contract)."""
        def step(i, x):
            return i + 1, tf.where(observed, images, self.reconstruct(x))

        start = tf.where(observed, images, tf.zeros_like(images))
        return tf.while_loop(lambda i, _: i < self.config.inpaint_steps, step, (tf.constant(0), start))[1]
