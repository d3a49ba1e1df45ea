"""Class-conditional DCGAN: the DCGAN of gan.py with the class y given to both players.

    G(z, y)    the DCGAN generator on z joined with the one-hot class
    D(x, y)    conditioning "projection" (Miyato and Koyama 2018): D's features phi(x) (its last hidden layer,
               summed over space) meet a learned embedding of the class,
                   D(x, y) = psi(phi(x)) + <embed(y), phi(x)>
               conditioning "auxiliary" (AC-GAN, Odena, Olah and Shlens 2017): D keeps its plain output and a head C
               on phi(x) learns the class of real and generated images; both players add
               auxiliary_weight * CE(C(x), y), D on real and generated images, G on its own

Each iteration draws the classes of its generated images uniformly from its stateless seed, as it draws z, so a
seed fixes them; the real images come with their labels. Everything else is the DCGAN's: its losses, update ratios,
and the stabilisers (generator EMA, R1 on the real images with their labels, keep the best epoch). The verbs take
the class: `sample(n, seed, label)`, `generate(seeds, labels)`, `decode(latent, labels)`; without one, classes
0, 1, ..., 9 in turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import tensorflow as tf

from zoo.models.base import (check_fields, check_label, check_labels, check_latent, check_num_samples, check_seeds,
                             compiled_verb, cycled_labels, num_replicas, per_seed, replica_noise, seed_pair, step_seed)
from zoo.models.gan import DCGAN, DCGAN_PRESETS, DCGANConfig, discriminator_loss, generator_loss

CONDITIONINGS = ("projection", "auxiliary")


@dataclass
class ConditionalDCGANConfig(DCGANConfig):
    conditioning: str = field(default="projection", metadata={
        "help": "how D uses the class: projection (Miyato and Koyama 2018) or auxiliary (an auxiliary classifier, "
                "AC-GAN)", "choices": CONDITIONINGS})
    auxiliary_weight: float = field(default=1.0, metadata={
        "help": "weight of the auxiliary classifier's cross-entropy in both players' losses (--conditioning "
                "auxiliary)"})

    def __post_init__(self):
        super().__post_init__()
        check_fields(self, conditioning=(lambda v: v in CONDITIONINGS, f"one of {', '.join(CONDITIONINGS)}"),
                     auxiliary_weight=(lambda v: v >= 0, ">= 0"),
                     categories=(lambda v: v == 0, "0: the class takes the place of InfoGAN's code"))


# The unconditional DCGAN's quality preset, the class in place of InfoGAN's code.
PRESETS = {"lab": {}, "quality": {k: v for k, v in DCGAN_PRESETS["quality"].items() if k != "categories"}}


@keras.saving.register_keras_serializable(package="zoo")
class ConditionalDCGAN(DCGAN):
    """Class-conditional DCGAN: G(z, y), and D(x, y) by projection (or an auxiliary classifier)."""

    KIND = "cdcgan"
    CONDITIONAL = True
    Config = ConditionalDCGANConfig
    PRESETS = PRESETS
    DATA = dict(labels=True)

    def __init__(self, config=None, seed=0, **kwargs):
        super().__init__(config, seed, **kwargs)
        features = self.config.discriminator_filters[-1]
        if self.config.conditioning == "projection":
            self.class_embedding = keras.layers.Embedding(self.num_classes, features, name="class_embedding")
        else:
            self.class_head = keras.layers.Dense(self.num_classes, dtype="float32", name="class_head")

    @property
    def generator_width(self):
        return self.config.latent_dim + self.num_classes

    def generator_input(self, z, labels):
        return tf.concat([z, tf.one_hot(labels, self.num_classes, dtype=z.dtype)], axis=-1)

    def build_heads(self, images):
        if hasattr(self, "class_embedding") or hasattr(self, "class_head"):
            self.discriminate(images, labels=tf.zeros([tf.shape(images)[0]], tf.int32))

    def discriminator_variables(self):
        head = self.class_embedding if self.config.conditioning == "projection" else self.class_head
        return self.discriminator.trainable_variables + head.trainable_variables

    def discriminate(self, images, training=False, labels=None):
        """(D's logits of images of these classes, the auxiliary head's class logits or None)."""
        features, logits = self.features_and_logits(images, training)
        pooled = tf.cast(tf.reduce_sum(features, axis=[1, 2]), tf.float32)  # phi(x), summed over space
        if self.config.conditioning == "projection":
            projection = tf.reduce_sum(self.class_embedding(labels) * pooled, axis=-1, keepdims=True)
            return logits + projection, None
        return logits, self.class_head(pooled)

    def auxiliary_loss(self, class_logits, labels):
        """AC-GAN's term: auxiliary_weight * CE(C(x), y); 0 under projection."""
        if class_logits is None:
            return 0.0
        return self.config.auxiliary_weight * tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=class_logits))

    def fake_labels(self, batch, optimizer, stream):
        """The classes of an update's generated images, uniform, from the step's stateless seed."""
        return replica_noise(tf.reshape(batch, [1]), step_seed(self, stream, optimizer),
                             lambda shape, seed: tf.random.stateless_uniform(shape, seed, 0, self.num_classes,
                                                                             tf.int32))

    # -- training: the DCGAN's updates, the class given to both players ----------------------------------------

    def discriminator_step(self, real, labels):
        c = self.config
        batch = tf.shape(real)[0]
        z, fake_labels = self.noise(batch, self.d_optimizer, 1), self.fake_labels(batch, self.d_optimizer, 3)
        fake = self.generator(self.generator_input(z, fake_labels), training=True)
        variables = self.discriminator_variables()
        with tf.GradientTape() as tape:
            real_logits, real_classes, r1 = self.real_logits_and_r1(real, labels)
            fake_logits, fake_classes = self.discriminate(fake, training=True, labels=fake_labels)
            loss = discriminator_loss(real_logits, fake_logits, c.label_smoothing, c.loss)
            auxiliary = self.auxiliary_loss(real_classes, labels) + self.auxiliary_loss(fake_classes, fake_labels)
            scaled_loss = self.d_optimizer.scale_loss((loss + auxiliary + r1) / num_replicas())
        self.d_optimizer.apply_gradients(zip(tape.gradient(scaled_loss, variables), variables))
        return loss, real_logits, fake_logits

    def real_logits_and_r1(self, real, labels):
        """D's logits (and class logits) of the real batch under its labels, and R1's penalty at it."""
        if not self.config.r1_gamma:
            return (*self.discriminate(real, training=True, labels=labels), 0.0)
        with tf.GradientTape(watch_accessed_variables=False) as input_tape:
            input_tape.watch(real)
            real_logits, real_classes = self.discriminate(real, training=True, labels=labels)
            total = tf.reduce_sum(real_logits)
        slopes = input_tape.gradient(total, real)
        r1 = 0.5 * self.config.r1_gamma * tf.reduce_mean(tf.reduce_sum(tf.square(slopes), axis=[1, 2, 3]))
        return real_logits, real_classes, r1

    def generator_step(self, batch):
        variables = self.generator.trainable_variables
        with tf.GradientTape() as tape:
            z, labels = self.noise(batch, self.g_optimizer, 2), self.fake_labels(batch, self.g_optimizer, 4)
            fake_logits, fake_classes = self.discriminate(
                self.generator(self.generator_input(z, labels), training=True), training=True, labels=labels)
            loss = generator_loss(fake_logits, self.config.loss)
            scaled_loss = self.g_optimizer.scale_loss((loss + self.auxiliary_loss(fake_classes, labels))
                                                      / num_replicas())
        self.g_optimizer.apply_gradients(zip(tape.gradient(scaled_loss, variables), variables))
        return loss, None

    def train_step(self, data):
        images, labels = self.split_batch(data)
        real = self.training_images(images)
        for _ in range(self.config.d_steps):
            d_loss, real_logits, fake_logits = self.discriminator_step(real, labels)
        for _ in range(self.config.g_steps):
            g_loss, _ = self.generator_step(tf.shape(real)[0])
            if self.ema_weights:
                self.update_ema()
        return self.update_metrics(d_loss, g_loss, real_logits, fake_logits)

    def test_step(self, data):
        images, labels = self.split_batch(data)
        real = self.training_images(images)
        z = replica_noise(tf.stack([tf.shape(real)[0], self.config.latent_dim]), tf.constant([self.seed, -1]))
        fake_labels = cycled_labels(tf.shape(real)[0], self.num_classes)
        fake_logits, _ = self.discriminate(self.generator(self.generator_input(z, fake_labels)), labels=fake_labels)
        real_logits, _ = self.discriminate(real, labels=labels)
        d_loss = discriminator_loss(real_logits, fake_logits, self.config.label_smoothing, self.config.loss)
        return self.update_metrics(d_loss, generator_loss(fake_logits, self.config.loss), real_logits, fake_logits)

    # -- the serving verbs: each takes the class -------------------------------------------------------------

    @compiled_verb
    def sample(self, num_samples, seed, label=None):
        """num_samples digits of class `label` (None: classes 0, 1, ..., 9 in turn), z from the seed."""
        num_samples = check_num_samples(num_samples, self.max_samples)
        labels = (cycled_labels(num_samples, self.num_classes) if label is None
                  else tf.fill([num_samples], check_label(label, self.num_classes)))
        return self.decode(self.prior_noise([num_samples, self.config.latent_dim], seed_pair(seed, 0)), labels)

    @compiled_verb
    def generate(self, seeds, labels=None):
        """One image per seed, of the class beside it (None: 0, 1, ..., 9 in turn): sample(1, seed, label)."""
        seeds = check_seeds(seeds, self.max_samples)
        labels = (cycled_labels(tf.size(seeds), self.num_classes) if labels is None
                  else check_labels(labels, self.num_classes, seeds))
        z = per_seed(seeds, lambda seed: self.prior_noise([self.config.latent_dim], seed_pair(seed, 0)))
        return self.decode(z, labels)

    @compiled_verb
    def decode(self, latent, labels=None):
        """Generated images of codes z and classes y, [n, 28, 28, 1] in [0, 1] (from the averaged generator)."""
        latent = check_latent(latent, self.latent_dim)
        labels = (cycled_labels(tf.shape(latent)[0], self.num_classes) if labels is None
                  else check_labels(labels, self.num_classes, latent))
        images = self.to_mnist_size(self.sampling_generator(self.generator_input(latent, labels)))
        low, high = self.image_range
        return tf.clip_by_value((images - low) / (high - low), 0.0, 1.0)
