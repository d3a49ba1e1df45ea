"""Conditional VAE (Sohn, Lee and Yan 2015): the VAE of vae.py with the class y given to both networks, MLP or
convolutional.

    q(z|x, y) = N(mean(x, y), diag(exp(log_var(x, y))))     encoder, the image and the one-hot class
    p(z)      = N(0, I)
    p(x|z, y) = Bernoulli(sigmoid(logits(z, y)))            decoder, the code and the one-hot class

It trains on the ELBO of log p(x|y), or with importance_samples k > 1 on its importance-weighted bound, the same
objective code as the VAE's. What the class buys:

    generate a chosen digit     x ~ p(x | z, y),  z ~ N(0, I)
    its likelihood              log p(x|y) by the importance-weighted bound (k samples of q(z|x, y))
    classify by Bayes' rule     p(y|x) = p(x|y) p(y) / sum_y' p(x|y') p(y'), p(y) uniform: softmax over the
                                10 bounds log p(x|y), each of `classify_samples` samples

The verbs take the class: `sample(n, seed, label)`, `generate(seeds, labels)`, `decode(latent, labels)`,
`encode(images, labels)`; without one, classes 0, 1, ..., 9 in turn (encode: the class `classify` finds).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import tensorflow as tf

import numpy as np

from zoo import likelihood
from zoo.models.base import (check_fields, check_images, check_label, check_labels, check_latent, check_num_samples,
                             check_seeds, compiled_verb, cycled_labels, per_seed, positive, seed_pair)
from zoo.models.vae import VAE, ConvVAEConfig, VAEConfig, unless_empty

CLASSIFY_SAMPLES = field(default=100, metadata={
    "help": "importance samples per class of `classify` (Bayes' rule over the 10 bounds log p(x|y))"})


@dataclass
class ConditionalVAEConfig(VAEConfig):
    classify_samples: int = CLASSIFY_SAMPLES

    def __post_init__(self):
        super().__post_init__()
        check_fields(self, classify_samples=(positive, "positive"))


@dataclass
class ConditionalConvVAEConfig(ConvVAEConfig):
    classify_samples: int = CLASSIFY_SAMPLES

    def __post_init__(self):
        super().__post_init__()
        check_fields(self, classify_samples=(positive, "positive"))


# The likelihood model of the conditional family, as the VAE's: 784-500-500-50 on the k = 5 bound, cosine schedule.
PRESETS = {
    "z2": dict(latent_dim=2),
    "iwae": dict(latent_dim=50, hidden=(500, 500), importance_samples=5, learning_rate_schedule="cosine"),
}


@keras.saving.register_keras_serializable(package="zoo")
class ConditionalVAE(VAE):
    """Conditional VAE: q(z|x, y) and p(x|z, y) with the class given to both networks (MLP)."""

    KIND = "cvae"
    CONDITIONAL = True
    Config = ConditionalVAEConfig
    SIGNATURES = ("sample", "generate", "encode", "decode", "classify")
    DATA = dict(binarize="dynamic", labels=True)
    PRESETS = PRESETS

    def build_encoder(self, c):
        """[images [n, 28, 28, 1], one-hot classes [n, 10]] -> [n, 2 * latent_dim]: the mean and log-variance."""
        images, classes = keras.Input((28, 28, 1)), keras.Input((self.num_classes,))
        h = keras.layers.Concatenate()([keras.layers.Flatten()(images), classes])
        for n in c.hidden:
            h = keras.layers.Dense(n, activation=c.activation)(h)
        return keras.Model([images, classes], keras.layers.Dense(2 * c.latent_dim)(h), name="encoder")

    def build_decoder(self, c):
        """[codes [n, latent_dim], one-hot classes [n, 10]] -> [n, 784] Bernoulli logits."""
        codes, classes = keras.Input((c.latent_dim,)), keras.Input((self.num_classes,))
        h = keras.layers.Concatenate()([codes, classes])
        for n in reversed(c.hidden):
            h = keras.layers.Dense(n, activation=c.activation)(h)
        return keras.Model([codes, classes], keras.layers.Dense(28 * 28)(h), name="decoder")

    def one_hot(self, labels, rows):
        """The classes as one-hot rows; none given (building the model): 0, 1, ..., 9 in turn."""
        labels = cycled_labels(rows, self.num_classes) if labels is None else labels
        return tf.one_hot(labels, self.num_classes)

    def posterior(self, images, labels=None):
        images = tf.reshape(images, (-1, 28, 28, 1))
        return tuple(tf.split(self.encoder([images, self.one_hot(labels, tf.shape(images)[0])]), 2, axis=-1))

    def decoder_logits(self, latent, labels=None):
        return self.decoder([latent, self.one_hot(labels, tf.shape(latent)[0])])

    # -- the serving verbs: each takes the class -------------------------------------------------------------

    @compiled_verb
    def sample(self, num_samples, seed, label=None):
        """num_samples digits of class `label` (None: classes 0, 1, ..., 9 in turn), z from the seed."""
        num_samples = check_num_samples(num_samples, self.max_samples)
        labels = (cycled_labels(num_samples, self.num_classes) if label is None
                  else tf.fill([num_samples], check_label(label, self.num_classes)))
        return self.decode(self.prior_noise([num_samples, self.latent_dim], seed_pair(seed, 0)), labels)

    @compiled_verb
    def generate(self, seeds, labels=None):
        """One image per seed, of the class beside it (None: 0, 1, ..., 9 in turn): sample(1, seed, label)."""
        seeds = check_seeds(seeds, self.max_samples)
        labels = (cycled_labels(tf.size(seeds), self.num_classes) if labels is None
                  else check_labels(labels, self.num_classes, seeds))
        z = per_seed(seeds, lambda seed: self.prior_noise([self.latent_dim], seed_pair(seed, 0)))
        return self.decode(z, labels)

    @compiled_verb
    def decode(self, latent, labels=None):
        """Bernoulli means p(x=1|z, y) as images (labels None: 0, 1, ..., 9 in turn)."""
        latent = check_latent(latent, self.latent_dim)
        labels = None if labels is None else check_labels(labels, self.num_classes, latent)
        return tf.reshape(tf.sigmoid(self.decoder_logits(latent, labels)), (-1, 28, 28, 1))

    @compiled_verb
    def encode(self, images, labels=None):
        """The posterior q(z|x, y) of each image under its class (None: the class `classify` finds)."""
        images = check_images(images)
        if labels is None:
            labels = tf.argmax(self.classify(images), axis=-1, output_type=tf.int32)
        labels = check_labels(labels, self.num_classes, images)
        mean, log_var = self.posterior(images, labels)
        return {"latent": mean, "log_var": log_var}

    @compiled_verb
    def classify(self, images, seed=0):
        """p(y|x) [n, 10] by Bayes' rule with a uniform prior: the softmax over the classes of the importance-
        weighted bound of log p(x|y), `classify_samples` samples each (the same noise for every class)."""
        images = check_images(images)
        n, k, classes = tf.shape(images)[0], self.config.classify_samples, self.num_classes
        eps = tf.random.stateless_normal([n, k, self.latent_dim], seed_pair(seed, 7))
        every_class = tf.repeat(images, classes, axis=0)  # image i as rows i * classes + y
        bounds, _ = self.iw_bound(every_class, tf.repeat(eps, classes, axis=0),
                                  tf.tile(tf.range(classes), [n]))
        return tf.nn.softmax(tf.reshape(bounds, (n, classes)), axis=-1)

    @compiled_verb
    def reconstruct(self, images, labels=None):
        """decode(encode(x, y), y), each image under its class (None: the class `classify` finds)."""
        images = check_images(images)
        if labels is None:
            labels = tf.argmax(self.classify(images), axis=-1, output_type=tf.int32)
        return self.decode(self.encode(images, labels)["latent"], labels)

    def log_likelihood(self, images, labels, k=5000, seed=0, refine_steps=0):
        """Importance-weighted estimate of log p(x|y) per binary image, in nats: likelihood.py's estimator, each
        image under its own class (refine_steps: q(z|x, y) fitted to each image first, as the VAE's)."""
        return likelihood.importance_weighted_log_likelihood(self.encode, self.decode, np.asarray(images), k, seed,
                                                             labels=np.asarray(labels, np.int32),
                                                             refine_steps=refine_steps)


@keras.saving.register_keras_serializable(package="zoo")
class ConditionalConvVAE(ConditionalVAE):
    """Conditional convolutional VAE: the conv VAE's networks with the one-hot class joined to the dense layers."""

    KIND = "conv_cvae"
    Config = ConditionalConvVAEConfig
    XLA_ON_CPU = False  # XLA's CPU convolutions are slower than oneDNN's (docs/benchmarks.md)
    PRESETS = {"z16": dict(latent_dim=16, learning_rate_schedule="cosine")}

    def posterior(self, images, labels=None):
        # oneDNN's convolutions refuse an empty batch, which the verbs accept (an empty answer)
        images = tf.reshape(images, (-1, 28, 28, 1))
        classes = self.one_hot(labels, tf.shape(images)[0])
        out = unless_empty(lambda x: self.encoder([x, classes]), images, 2 * self.latent_dim)
        return tuple(tf.split(out, 2, axis=-1))

    def decoder_logits(self, latent, labels=None):
        classes = self.one_hot(labels, tf.shape(latent)[0])
        return unless_empty(lambda z: self.decoder([z, classes]), latent, 28 * 28)

    def build_encoder(self, c):
        images, classes = keras.Input((28, 28, 1)), keras.Input((self.num_classes,))
        h = images
        for f in c.filters:
            h = keras.layers.Conv2D(f, 3, strides=2, padding="same", activation=c.activation)(h)
        h = keras.layers.Concatenate()([keras.layers.Flatten()(h), classes])
        for n in c.hidden:
            h = keras.layers.Dense(n, activation=c.activation)(h)
        return keras.Model([images, classes], keras.layers.Dense(2 * c.latent_dim)(h), name="encoder")

    def build_decoder(self, c):
        size = 28 // 2 ** len(c.filters)
        codes, classes = keras.Input((c.latent_dim,)), keras.Input((self.num_classes,))
        h = keras.layers.Concatenate()([codes, classes])
        for n in reversed(c.hidden):
            h = keras.layers.Dense(n, activation=c.activation)(h)
        h = keras.layers.Reshape((size, size, c.filters[-1]))(
            keras.layers.Dense(size * size * c.filters[-1], activation=c.activation)(h))
        for f in reversed(c.filters):
            h = keras.layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation=c.activation)(h)
        logits = keras.layers.Flatten()(keras.layers.Conv2DTranspose(1, 3, padding="same")(h))
        return keras.Model([codes, classes], logits, name="decoder")
