"""Generative adversarial networks (Goodfellow et al. 2014): the homework's MLP GAN and the lab's DCGAN.

A generator G maps noise z ~ N(0, I) to images; a discriminator D outputs the logit of "x is a training image".
Each training iteration takes `d_steps` discriminator updates, then `g_steps` generator updates:

    D step:  minimise  L_D = -log D(x) - log(1 - D(G(z)))        x a real batch, z fresh noise
    G step:  minimise  L_G = -log D(G(z))                        the non-saturating loss, fresh noise

L_G replaces the minimax -log(1 - D(G(z))), whose gradient vanishes while D still rejects every sample (Goodfellow
et al. 2014, section 3). With one-sided label smoothing s the real targets are 1 - s instead of 1 (Salimans et al.
2016). zoo.train exports the epoch whose samples have the lowest validation Fréchet distance (KEEP = "best").

The stabilisers, each a config field, off by default (the `quality` presets turn on the ones measured to help):

    loss="hinge"        L_D = E relu(1 - D(x)) + E relu(1 + D(G(z))),  L_G = -E D(G(z))  (Lim and Ye 2017; Miyato
                        et al. 2018): D stops pushing logits it already gets right by a margin of 1
    d_learning_rate,    separate learning rates of D and G, the two time-scale update rule (TTUR, Heusel et al. 2017)
    g_learning_rate
    spectral_norm       every layer of D divided by its largest singular value (keras.layers.SpectralNormalization,
                        one power iteration per call), in place of D's batch norm: D becomes 1-Lipschitz per layer,
                        so it cannot win by sharpening its logits without bound (Miyato et al. 2018)
    r1_gamma            + (gamma / 2) E ||grad_x D(x)||^2 on real images in L_D (Mescheder et al. 2018): D's slope
                        at the data is penalised, which damps the oscillation around equilibrium
    ema_decay           an exponential moving average of G's weights, updated after every G step, is what `sample`,
                        `decode` and the export use; the raw G stays the one D trains against (Yazici et al. 2019)
    categories=k        InfoGAN's categorical code (Chen et al. 2016): the last k coordinates of z are a one-hot code c,
                        and a head Q on D's features learns to tell c from G(z); both players add
                        info_weight * CE(Q(G(z)), c) to their losses, a lower bound on the mutual information between
                        c and the image. G must then make the k values of c look different, which gives the classes
                        of a multimodal data set their own corner of z instead of blends along a continuous path
    learning_rate_      both learning rates held for the first part of the run, then falling linearly to 0 over
    decay_fraction      this last fraction of it (pix2pix and CycleGAN decay over the second half): the players'
                        oscillation around equilibrium shrinks with their steps

And one setting of sampling alone, which training never reads (but the per-epoch sample quality, and so --keep best,
does):

    truncation=t        `sample` and `generate` draw each coordinate of z from N(0, 1) truncated to [-t, t], the
                        "truncation trick" (Brock et al. 2019), meant to trade variety for fidelity; on the zoo's GANs
                        it made both worse at every t below 3 (docs/gan.md), so the presets leave it off; `decode`
                        still takes any z

The D steps of one iteration share its real batch and draw fresh noise each, as the keras.io WGAN-GP example does
with its `d_steps`. D and G have separate Adam optimizers; `model.optimizer` is D's, whose update count keys the
run's random draws and the step count of the model card.

`GAN` (MLP, 28x28) and `DCGAN` (convolutional, 32x32 in [-1, 1], Radford et al. 2016) differ only in their two
networks and in the images they train on; images leave the serving verbs as [n, 28, 28, 1] in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import keras
import tensorflow as tf

from zoo.models.base import (GaussianPrior, ZooModel, check_fields, check_latent, num_replicas, positive,
                             replica_noise, step_seed)


OUTPUTS = ("sigmoid", "tanh")
ENLARGEMENTS = ("resize", "pad")  # how the DCGAN makes its 32x32 images of MNIST's 28x28
LOSSES = ("non_saturating", "hinge")


@dataclass
class AdversarialConfig:
    """What every GAN of the zoo shares: the code, the balance of the two players, their optimizers."""

    latent_dim: int = field(default=100, metadata={"help": "size of the noise z ~ N(0, I)"})
    batch_norm: bool = field(default=False, metadata={"help": "batch norm in both networks (DCGAN's placement)"})
    dropout: float = field(default=0.0, metadata={"help": "dropout rate after the discriminator's hidden layers"})
    d_steps: int = field(default=1, metadata={"help": "discriminator updates per iteration"})
    g_steps: int = field(default=1, metadata={"help": "generator updates per iteration"})
    label_smoothing: float = field(default=0.0, metadata={"help": "one-sided: real targets are 1 - this"})
    learning_rate: float = field(default=2e-4, metadata={"help": "Adam learning rate of both networks"})
    beta_1: float = field(default=0.5, metadata={"help": "Adam beta_1 (DCGAN: 0.5; Keras's default 0.9)"})
    loss: str = field(default="non_saturating", metadata={
        "help": "non_saturating (-log D(G(z)) for G) or hinge (relu margins for D, -D(G(z)) for G)"})
    d_learning_rate: float = field(default=0.0, metadata={"help": "D's own learning rate, TTUR (0: --learning-rate)"})
    g_learning_rate: float = field(default=0.0, metadata={"help": "G's own learning rate, TTUR (0: --learning-rate)"})
    spectral_norm: bool = field(default=False, metadata={
        "help": "spectral normalisation of every discriminator layer, in place of its batch norm"})
    r1_gamma: float = field(default=0.0, metadata={"help": "weight of the R1 gradient penalty on real images (0: off)"})
    ema_decay: float = field(default=0.0, metadata={
        "help": "decay of the moving average of G's weights that sampling uses, e.g. 0.999 (0: off, the raw G)"})
    categories: int = field(default=0, metadata={
        "help": "InfoGAN: the last this-many coordinates of z are a one-hot categorical code that a head on D "
                "learns to recover from G's images (0: off, plain N(0, I))"})
    info_weight: float = field(default=1.0, metadata={
        "help": "weight of InfoGAN's categorical cross-entropy in both players' losses (with --categories)"})
    learning_rate_decay_fraction: float = field(default=0.0, metadata={
        "help": "both learning rates fall linearly to 0 over this last fraction of the run, e.g. 0.5 for the second "
                "half (0: constant)"})
    truncation: float = field(default=0.0, metadata={
        "help": "sampling only: each coordinate of z from N(0, 1) truncated to [-t, t], the truncation trick "
                "(0: off, plain N(0, I))"})

    def __post_init__(self):
        check_fields(
            self, latent_dim=(positive, "positive"), d_steps=(positive, "positive"), g_steps=(positive, "positive"),
            dropout=(lambda v: 0 <= v < 1, "in [0, 1)"), label_smoothing=(lambda v: 0 <= v < 0.5, "in [0, 0.5)"),
            learning_rate=(positive, "positive"), beta_1=(lambda v: 0 <= v < 1, "in [0, 1)"),
            loss=(lambda v: v in LOSSES, f"one of {', '.join(LOSSES)}"),
            d_learning_rate=(lambda v: v >= 0, ">= 0 (0: --learning-rate)"),
            g_learning_rate=(lambda v: v >= 0, ">= 0 (0: --learning-rate)"), r1_gamma=(lambda v: v >= 0, ">= 0"),
            ema_decay=(lambda v: 0 <= v < 1, "in [0, 1) (0: off)"),
            categories=(lambda v: v == 0 or 2 <= v < self.latent_dim,
                        f"0 (off) or between 2 and latent_dim - 1 = {self.latent_dim - 1}"),
            info_weight=(lambda v: v >= 0, ">= 0"),
            learning_rate_decay_fraction=(lambda v: 0 <= v <= 1, "in [0, 1] (0: constant learning rates)"),
            truncation=(lambda v: v >= 0, ">= 0 (0: off)"))
        if self.loss == "hinge" and self.label_smoothing:
            raise ValueError("label_smoothing applies to the non-saturating loss's targets; the hinge loss has none "
                             "(drop --label-smoothing or use --loss non_saturating)")


@dataclass
class GANConfig(AdversarialConfig):
    generator_hidden: tuple[int, ...] = field(default=(128,), metadata={"help": "generator hidden sizes"})
    discriminator_hidden: tuple[int, ...] = field(default=(128,), metadata={"help": "discriminator hidden sizes"})
    activation: str = field(default="relu", metadata={"help": "hidden activation of both: relu, leaky_relu, ..."})
    output: str = field(default="sigmoid", metadata={
        "help": "generator output: sigmoid (trains on [0, 1] pixels) or tanh (on [-1, 1])"})
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate of both networks"})

    def __post_init__(self):
        super().__post_init__()
        self.generator_hidden, self.discriminator_hidden = tuple(self.generator_hidden), tuple(
            self.discriminator_hidden)
        check_fields(self, generator_hidden=(positive, "one or more positive sizes"),
                     discriminator_hidden=(positive, "one or more positive sizes"),
                     output=(lambda v: v in OUTPUTS, f"one of {', '.join(OUTPUTS)}"))
        keras.activations.get(self.activation)  # raises ValueError naming an unknown activation


# The assignments' MLP GANs: the homework's 100-128-784 / 784-128-1 ReLU (the defaults), and the PyTorch notebook's
# leaky-ReLU networks with dropout, tanh output and smoothed real labels.
PRESETS = {
    "homework": {},
    "leaky": dict(generator_hidden=(32, 64, 128), discriminator_hidden=(128, 64, 32), activation="leaky_relu",
                  dropout=0.3, output="tanh", label_smoothing=0.1, learning_rate=2e-3),
    # The study's best (python -m zoo.experiments gan, docs/gan.md#stabilisers): wider leaky-ReLU networks, tanh
    # output and the generator's moving average, 23.1 validation Fréchet distance after 30 epochs (homework: 53.2).
    "quality": dict(generator_hidden=(256, 512), discriminator_hidden=(512, 256), activation="leaky_relu",
                    dropout=0.3, output="tanh", learning_rate=2e-4, ema_decay=0.999),
}


def discriminator_loss(real_logits, fake_logits, label_smoothing=0.0, loss="non_saturating"):
    """D's loss, batch means. non_saturating: -log D(x) - log(1 - D(G(z))), the real targets 1 - label_smoothing;
    hinge: relu(1 - D(x)) + relu(1 + D(G(z))) on the logits."""
    if loss == "hinge":
        return tf.reduce_mean(tf.nn.relu(1.0 - real_logits)) + tf.reduce_mean(tf.nn.relu(1.0 + fake_logits))
    real = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(real_logits), 1.0 - label_smoothing),
                                                   logits=real_logits)
    fake = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.zeros_like(fake_logits), logits=fake_logits)
    return tf.reduce_mean(real) + tf.reduce_mean(fake)


def generator_loss(fake_logits, loss="non_saturating"):
    """G's loss, batch mean: the non-saturating -log D(G(z)), or the hinge loss's -D(G(z)) on the logits."""
    if loss == "hinge":
        return -tf.reduce_mean(fake_logits)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(fake_logits),
                                                                  logits=fake_logits))


def spectrally_normalized(layer, enabled):
    """layer, divided by its largest singular value on every training call when enabled (the wrapper computes in
    the layer's dtype, so D's float32 output layer stays float32 under mixed precision)."""
    return keras.layers.SpectralNormalization(layer, dtype=layer.dtype_policy) if enabled else layer


@keras.saving.register_keras_serializable(package="zoo")
class LinearDecayTail(keras.optimizers.schedules.LearningRateSchedule):
    """learning_rate for the first total_steps - decay_steps updates, then linearly down to 0 at total_steps:

        lr(t) = learning_rate * min(1, (total_steps - t) / decay_steps),  0 after total_steps
    """

    def __init__(self, learning_rate, total_steps, decay_steps):
        self.learning_rate, self.total_steps, self.decay_steps = float(learning_rate), int(total_steps), int(
            decay_steps)

    def __call__(self, step):
        remaining = (self.total_steps - tf.cast(step, tf.float32)) / max(1, self.decay_steps)
        return self.learning_rate * tf.clip_by_value(remaining, 0.0, 1.0)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "total_steps": self.total_steps,
                "decay_steps": self.decay_steps}


@keras.saving.register_keras_serializable(package="zoo")
class GAN(GaussianPrior, ZooModel):
    """MLP GAN: z(100)-128-784 generator, 784-128-1 discriminator (the homework's GAN) by default."""

    KIND = "gan"
    Config = GANConfig
    SIGNATURES = ("sample", "generate", "decode")
    PRESETS = PRESETS
    XLA_ON_CPU = True
    MIXED_PRECISION = True
    # `loss` (what Keras callbacks monitor by default) is d_loss, the negated value of the minimax game; no loss
    # tracks sample quality: monitor val_frechet_distance (zoo.callbacks.SampleQuality) for that.
    METRICS = ("loss", "d_loss", "g_loss", "d_real_accuracy", "d_fake_accuracy")
    KEEP = "best"  # zoo.train exports the epoch with the lowest validation Fréchet distance, not the last
    SAMPLING_SETTINGS = ("truncation",)

    def __init__(self, config=None, seed=0, **kwargs):
        super().__init__(config, seed, **kwargs)
        self.generator = self.build_generator(self.config)
        self.discriminator = self.build_discriminator(self.config)
        self.recognizer = self.build_recognizer(self.config) if self.config.categories else None
        if self.recognizer is not None:  # the share of generated images whose code Q recovers
            self.trackers["code_accuracy"] = keras.metrics.Mean(name="code_accuracy")
        self.ema_weights = []  # the moving average of every generator weight (ema_decay > 0), made by build

    # -- the two networks -------------------------------------------------------------------------------------

    def build_generator(self, c):
        """z [n, latent_dim] -> images [n, 28, 28, 1] in the range of c.output."""
        layers = []
        for width in c.generator_hidden:
            layers += [keras.layers.Dense(width, use_bias=not c.batch_norm)]
            layers += [keras.layers.BatchNormalization()] if c.batch_norm else []
            layers += [keras.layers.Activation(c.activation)]
        # The output layers compute in float32 under mixed precision, so images and logits leave as float32.
        return keras.Sequential(layers + [keras.layers.Dense(28 * 28, activation=c.output, dtype="float32"),
                                          keras.layers.Reshape((28, 28, 1), dtype="float32")], name="generator")

    def build_discriminator(self, c):
        """Images [n, 28, 28, 1] -> logits [n, 1]; batch norm (if on, and no spectral norm) after every hidden layer
        but the first."""
        layers = [keras.layers.Flatten()]
        for i, width in enumerate(c.discriminator_hidden):
            layers += [spectrally_normalized(keras.layers.Dense(width), c.spectral_norm)]
            layers += [keras.layers.BatchNormalization()] if c.batch_norm and i > 0 and not c.spectral_norm else []
            layers += [keras.layers.Activation(c.activation)]
            layers += [keras.layers.Dropout(c.dropout)] if c.dropout else []
        output = spectrally_normalized(keras.layers.Dense(1, dtype="float32"), c.spectral_norm)
        return keras.Sequential(layers + [output], name="discriminator")

    # How many of the discriminator's last layers map its features to the logit; Q reads the features before them.
    OUTPUT_LAYERS = 1

    def build_recognizer(self, c):
        """InfoGAN's Q: D's features -> logits of the categorical code (FC 128, LeakyReLU, FC k, as Chen et al.)."""
        return keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(128), keras.layers.LeakyReLU(0.2),
                                 keras.layers.Dense(c.categories, dtype="float32")], name="recognizer")

    def discriminator_variables(self):
        """What D's optimizer trains: D's weights, and Q's with a categorical code."""
        return self.discriminator.trainable_variables + (
            self.recognizer.trainable_variables if self.recognizer is not None else [])

    def discriminate(self, images, training=False):
        """D's logits, and with a categorical code Q's logits of it, from one pass through D's shared layers."""
        if self.recognizer is None:
            return self.discriminator(images, training=training), None
        features, logits = self.features_and_logits(images, training)
        return logits, self.recognizer(features, training=training)

    def features_and_logits(self, images, training=False):
        """(D's last hidden features, its logits): one pass through D, keeping the features its heads read."""
        features = images
        for layer in self.discriminator.layers[:-self.OUTPUT_LAYERS]:
            features = layer(features, training=training)
        logits = features
        for layer in self.discriminator.layers[-self.OUTPUT_LAYERS:]:
            logits = layer(logits, training=training)
        return features, logits

    def with_code(self, z):
        """z with its last `categories` coordinates replaced by the one-hot of their argmax: a uniform category
        (the argmax of iid coordinates is uniform), drawn from the same numbers, so seeds and replicas need no
        draw of their own."""
        k = self.config.categories
        if not k:
            return z
        return tf.concat([z[..., :-k], tf.one_hot(tf.argmax(z[..., -k:], axis=-1), k, dtype=z.dtype)], axis=-1)

    def info_loss(self, z, code_logits):
        """InfoGAN's term: info_weight * CE(Q(G(z)), c), with c the one-hot code in z, and Q's accuracy."""
        code = z[:, -self.config.categories:]
        loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=code, logits=code_logits))
        hits = tf.cast(tf.equal(tf.argmax(code_logits, -1), tf.argmax(code, -1)), tf.float32)
        return self.config.info_weight * loss, tf.reduce_mean(hits)

    @property
    def image_range(self):
        """(low, high) of the generator's output: the range of the images it trains on."""
        return (-1.0, 1.0) if self.config.output == "tanh" else (0.0, 1.0)

    def training_images(self, images):
        """Images [n, 28, 28, 1] in [0, 1], as fit takes them -> what G learns to draw: at its size (from_mnist_size)
        and in its output's range, e.g. [-1, 1] for tanh."""
        images = self.from_mnist_size(images)
        low, high = self.image_range
        return images if (low, high) == (0.0, 1.0) else low + (high - low) * images

    def call(self, latent, training=False):
        """The generator: z -> images as it trains on them (its own size and range; `decode` for [0, 1], 28x28)."""
        return self.generator(latent, training=training)

    def build(self, input_shape=None):
        """Both networks: the generator on codes, the discriminator on images of the generator's shape; and the
        generator's moving average, starting at its initial weights."""
        self.generator.build((None, self.generator_width))
        image_shape = self.generator.compute_output_shape((None, self.generator_width))
        self.discriminator.build(image_shape)
        self.build_heads(tf.zeros((1,) + tuple(image_shape[1:])))
        if self.config.ema_decay and not self.ema_weights:
            # Written in replica context by every replica with the same value: "only_first_replica" keeps the
            # first's, with no all-reduce (the plain "none" of Keras's weights cannot be assigned there).
            self.ema_weights = [self.add_weight(shape=w.shape, dtype=w.dtype, initializer="zeros", trainable=False,
                                                aggregation="only_first_replica", name=f"ema_{i}")
                                for i, w in enumerate(self.averaged_weights())]
            for average, weight in zip(self.ema_weights, self.averaged_weights()):
                average.assign(weight)
        self.built = True

    @property
    def generator_width(self):
        """The width of the generator's input: the code z (a conditional GAN adds the class)."""
        return self.config.latent_dim

    def build_heads(self, images):
        """The layers on D's features beside its output, built on a dummy batch: InfoGAN's Q, if any."""
        if self.recognizer is not None:
            self.discriminate(images)

    def build_for_images(self):
        if not self.built:
            self.build()

    # -- training ---------------------------------------------------------------------------------------------

    def default_optimizer(self, total_steps=None, name="d_adam"):
        c = self.config
        learning_rate = (c.g_learning_rate if name == "g_adam" else c.d_learning_rate) or c.learning_rate
        if c.learning_rate_decay_fraction:
            if not total_steps:
                raise ValueError("learning_rate_decay_fraction needs the run's length: compile(total_steps=...)")
            # Both optimizers count one update per iteration per step (d_steps D updates: d_steps times as many).
            updates = total_steps * (c.g_steps if name == "g_adam" else c.d_steps)
            learning_rate = LinearDecayTail(learning_rate, updates, round(c.learning_rate_decay_fraction * updates))
        return keras.optimizers.Adam(learning_rate, beta_1=c.beta_1, name=name)

    def compile(self, optimizer=None, total_steps=None, **kwargs):
        """Two Adam optimizers, each built on its own network's variables; `optimizer` (if given) is D's."""
        self.build_for_images()
        d_optimizer = optimizer or self.default_optimizer(total_steps)
        schedule = getattr(getattr(d_optimizer, "inner_optimizer", d_optimizer), "_learning_rate", None)
        if total_steps is None and isinstance(schedule, LinearDecayTail):  # a loaded model: the run's length is D's
            total_steps = schedule.total_steps // self.config.d_steps
        g_optimizer = self.default_optimizer(total_steps, name="g_adam")
        if self.dtype_policy.name == "mixed_float16":  # scale the losses so float16 gradients do not underflow
            if not isinstance(d_optimizer, keras.optimizers.LossScaleOptimizer):  # a loaded model's already is
                d_optimizer = keras.optimizers.LossScaleOptimizer(d_optimizer, name="d_loss_scale")
            g_optimizer = keras.optimizers.LossScaleOptimizer(g_optimizer, name="g_loss_scale")
        d_optimizer.build(self.discriminator_variables())
        g_optimizer.build(self.generator.trainable_variables)
        self.g_optimizer = g_optimizer
        super().compile(optimizer=d_optimizer, **kwargs)

    @property
    def d_optimizer(self):
        return self.optimizer

    def optimizers(self):
        return [self.d_optimizer, self.g_optimizer]

    def noise(self, batch, optimizer, stream):
        """Fresh z for one update (with its categorical code, if any): keyed on the run's seed, the optimizer's
        update count and a stream."""
        return self.with_code(replica_noise(tf.stack([batch, self.config.latent_dim]),
                                            step_seed(self, stream, optimizer)))

    def discriminator_step(self, real):
        c = self.config
        z = self.noise(tf.shape(real)[0], self.d_optimizer, 1)
        fake = self.generator(z, training=True)
        variables = self.discriminator_variables()
        with tf.GradientTape() as tape:
            real_logits, r1 = self.real_logits_and_r1(real)
            fake_logits, code_logits = self.discriminate(fake, training=True)
            loss = discriminator_loss(real_logits, fake_logits, c.label_smoothing, c.loss)
            # InfoGAN: Q learns the code from G's images with D's optimizer
            info = self.info_loss(z, code_logits)[0] if self.recognizer is not None else 0.0
            # Keras sums gradients across replicas, so each replica's mean loss is divided by their number.
            scaled_loss = self.d_optimizer.scale_loss((loss + info + r1) / num_replicas())
        self.d_optimizer.apply_gradients(zip(tape.gradient(scaled_loss, variables), variables))
        return loss, real_logits, fake_logits

    def real_logits_and_r1(self, real):
        """D's logits of the real batch, and R1's penalty (gamma / 2) E ||grad_x D(x)||^2 at it (0 when r1_gamma
        is 0: then no gradient with respect to the images is taken)."""
        if not self.config.r1_gamma:
            return self.discriminator(real, training=True), 0.0
        with tf.GradientTape(watch_accessed_variables=False) as input_tape:
            input_tape.watch(real)
            real_logits = self.discriminator(real, training=True)
            total = tf.reduce_sum(real_logits)
        slopes = input_tape.gradient(total, real)
        penalty = tf.reduce_mean(tf.reduce_sum(tf.square(slopes), axis=[1, 2, 3]))
        return real_logits, 0.5 * self.config.r1_gamma * penalty

    def generator_step(self, batch):
        """G's update; returns its adversarial loss and, with a categorical code, Q's accuracy on its images."""
        variables = self.generator.trainable_variables
        with tf.GradientTape() as tape:
            z = self.noise(batch, self.g_optimizer, 2)
            fake_logits, code_logits = self.discriminate(self.generator(z, training=True), training=True)
            loss = generator_loss(fake_logits, self.config.loss)
            info, code_accuracy = self.info_loss(z, code_logits) if self.recognizer is not None else (0.0, None)
            scaled_loss = self.g_optimizer.scale_loss((loss + info) / num_replicas())
        self.g_optimizer.apply_gradients(zip(tape.gradient(scaled_loss, variables), variables))
        return loss, code_accuracy

    def averaged_weights(self):
        """The generator's weights in the order of ema_weights and of stateless_call: trainable, then the rest."""
        return self.generator.trainable_weights + self.generator.non_trainable_weights

    def serving_weights(self):
        """What sampling reads: the generator's moving average (ema_decay > 0), or the generator itself."""
        return self.ema_weights or self.averaged_weights()

    def load_serving_weights(self, arrays):
        """The averaged generator, which sampling reads, and the raw generator set to it too (the discriminator
        keeps its initial weights: a pretrained GAN samples; to train it further, train its discriminator first)."""
        super().load_serving_weights(arrays)
        if self.ema_weights:
            for weight, value in zip(self.averaged_weights(), arrays):
                weight.assign(value)

    def update_ema(self):
        """average <- d average + (1 - d) weight for every generator weight (batch-norm statistics too), with
        d = min(ema_decay, (1 + t) / (10 + t)) after G update t: early on the average forgets the initial weights
        quickly, later it spans about 1 / (1 - ema_decay) updates."""
        t = tf.cast(self.g_optimizer.iterations, tf.float32)
        decay = tf.minimum(self.config.ema_decay, (1.0 + t) / (10.0 + t))
        for average, weight in zip(self.ema_weights, self.averaged_weights()):
            average.assign(decay * average + (1.0 - decay) * tf.cast(weight, average.dtype))

    def train_step(self, images):
        real = self.training_images(images)
        for _ in range(self.config.d_steps):  # a Python loop: unrolled when traced, d_steps is small
            d_loss, real_logits, fake_logits = self.discriminator_step(real)
        for _ in range(self.config.g_steps):
            g_loss, code_accuracy = self.generator_step(tf.shape(real)[0])
            if self.ema_weights:
                self.update_ema()
        return self.update_metrics(d_loss, g_loss, real_logits, fake_logits, code_accuracy)

    def test_step(self, images):
        """The losses on held-out images against one fixed noise batch, nothing updated. Without batch norm, D's
        validation accuracy on real images falling below its training accuracy shows it memorising the training
        set; with it, inference mode uses moving statistics and the two do not compare."""
        real = self.training_images(images)
        z = self.with_code(replica_noise(tf.stack([tf.shape(real)[0], self.config.latent_dim]),
                                         tf.constant([self.seed, -1])))
        fake_logits, code_logits = self.discriminate(self.generator(z))
        real_logits = self.discriminator(real)
        d_loss = discriminator_loss(real_logits, fake_logits, self.config.label_smoothing, self.config.loss)
        code_accuracy = self.info_loss(z, code_logits)[1] if self.recognizer is not None else None
        return self.update_metrics(d_loss, generator_loss(fake_logits, self.config.loss), real_logits, fake_logits,
                                   code_accuracy)

    def update_metrics(self, d_loss, g_loss, real_logits, fake_logits, code_accuracy=None):
        real_accuracy = tf.reduce_mean(tf.cast(real_logits > 0, tf.float32))  # D(x) > 1/2
        fake_accuracy = tf.reduce_mean(tf.cast(fake_logits < 0, tf.float32))
        figures = {"loss": d_loss, "d_loss": d_loss, "g_loss": g_loss, "d_real_accuracy": real_accuracy,
                   "d_fake_accuracy": fake_accuracy}
        return self.record(figures if code_accuracy is None else {**figures, "code_accuracy": code_accuracy})

    # -- the serving verbs ------------------------------------------------------------------------------------

    def prior_noise(self, shape, seed):
        """z ~ N(0, I), or with truncation t each coordinate from N(0, 1) restricted to [-t, t]: the inverse normal
        CDF of a uniform draw between Phi(-t) and Phi(t), exact and without rejection loops; with a categorical
        code, its last coordinates made one-hot (with_code)."""
        t = self.config.truncation
        if not t:
            return self.with_code(super().prior_noise(shape, seed))
        tail = 0.5 * math.erfc(t / math.sqrt(2.0))  # Phi(-t)
        return self.with_code(tf.math.ndtri(tail + (1.0 - 2.0 * tail) * tf.random.stateless_uniform(shape, seed)))

    def sampling_generator(self, latent):
        """The generator that sampling uses: with ema_decay, the raw network run on the averaged weights."""
        if not self.ema_weights:
            return self.generator(latent)
        values = [average.value for average in self.ema_weights]
        trainable = len(self.generator.trainable_weights)
        return self.generator.stateless_call(values[:trainable], values[trainable:], latent, training=False)[0]

    def to_mnist_size(self, images):
        """Generated images as [n, 28, 28, 1]: the MLP GAN's already are."""
        return images

    def from_mnist_size(self, images):
        """Training images at the generator's size: the MLP GAN's is MNIST's."""
        return images

    def decode(self, latent):
        """Generated images for codes z, as [n, 28, 28, 1] in [0, 1] (from the averaged generator, if any)."""
        images = self.to_mnist_size(self.sampling_generator(check_latent(latent, self.latent_dim)))  # float32
        low, high = self.image_range
        return tf.clip_by_value((images - low) / (high - low), 0.0, 1.0)



@dataclass
class DCGANConfig(AdversarialConfig):
    batch_norm: bool = field(default=True, metadata={
        "help": "batch norm in both networks, except the generator's output and the discriminator's input and "
                "output layers"})
    generator_filters: tuple[int, ...] = field(default=(512, 256, 128), metadata={
        "help": "channels of the three hidden transposed convolutions (1x1 -> 4x4 -> 8x8 -> 16x16), then 1 at 32x32"})
    discriminator_filters: tuple[int, ...] = field(default=(64, 128), metadata={
        "help": "channels of the stride-2 4x4 convolutions (32x32 -> 16x16 -> 8x8), then one output convolution"})
    leaky_slope: float = field(default=0.2, metadata={"help": "negative slope of the LeakyReLUs"})
    enlarge: str = field(default="resize", metadata={
        "help": "how the 28x28 digits become 32x32: resize (bilinear, the lab's) or pad (2 blank pixels on each "
                "side); decode undoes it (pad: exactly, by cropping)"})

    def __post_init__(self):
        super().__post_init__()
        self.generator_filters, self.discriminator_filters = tuple(self.generator_filters), tuple(
            self.discriminator_filters)
        check_fields(
            self, generator_filters=(lambda v: len(v) == 3 and positive(v), "three positive channel counts (1x1 -> "
                                     "4x4 -> 8x8 -> 16x16, then 32x32)"),
            discriminator_filters=(lambda v: len(v) <= 4 and positive(v),
                                   "one to four positive channel counts (32x32 halves each time)"),
            leaky_slope=(lambda v: 0 <= v < 1, "in [0, 1)"), enlarge=(lambda v: v in ENLARGEMENTS,
                                                                     f"one of {', '.join(ENLARGEMENTS)}"))


# The lab's DCGAN (the defaults), and the settings chosen for long runs (each measured in docs/notes/, linked from
# docs/gan.md):
# - the generator's moving average and R1, the two stabilisers that helped the MLP GAN most;
# - R1's weight 0.1, not the 10 of StyleGAN's 1024x1024 faces: the penalty's scale grows with the pixel count, and
#   at 10 the DCGAN's D fell behind and G learned slowly;
# - learning rate 4e-4, the best of the probes at batch 32 (the batch size the docs' command gives);
# - the digits padded to 32x32, not resized: decode then gives back exactly what G learned to draw, where a
#   resize's round trip blurs real digits by itself;
# - InfoGAN's 10-way categorical code, which gives each digit its own corner of z instead of blends between them.
DCGAN_PRESETS = {
    "lab": {},
    "quality": dict(ema_decay=0.999, r1_gamma=0.1, learning_rate=4e-4, enlarge="pad", categories=10),
}


@keras.saving.register_keras_serializable(package="zoo")
class DCGAN(GAN):
    """DCGAN as the lab specifies it: 4 transposed convolutions 512-256-128-1 to 32x32, discriminator 64-128-1."""

    KIND = "dcgan"
    Config = DCGANConfig
    PRESETS = DCGAN_PRESETS
    OUTPUT_LAYERS = 2  # the output convolution and its Flatten
    XLA_ON_CPU = False  # XLA's CPU convolutions are slower than oneDNN's (docs/benchmarks.md)

    @property
    def image_range(self):
        return (-1.0, 1.0)  # tanh

    def from_mnist_size(self, images):
        """[n, 28, 28, 1] -> [n, 32, 32, 1]: pad 2 blank pixels on each side, or resize (bilinear, clipped to the
        pixels' range), as config.enlarge says."""
        if self.config.enlarge == "pad":  # MNIST's borders are blank: cropping undoes this exactly
            return tf.image.resize_with_crop_or_pad(images, 32, 32)
        return tf.clip_by_value(tf.image.resize(images, (32, 32)), 0.0, 1.0)

    def to_mnist_size(self, images):
        """[n, 32, 32, 1] -> [n, 28, 28, 1], undoing from_mnist_size. Padding is undone exactly by
        cropping. A bilinear resize has no exact inverse; of the downsampling filters, Lanczos-3 undoes it best
        (measured on real digits: docs/gan.md)."""
        if self.config.enlarge == "pad":
            return tf.image.resize_with_crop_or_pad(images, 28, 28)  # the centre, as zoo.data padded it
        return tf.image.resize(images, (28, 28), method="lanczos3")

    def build_generator(self, c):
        """z [n, latent_dim] -> [n, 32, 32, 1] in [-1, 1]: 4x4 transposed convolutions, the first 'valid' (1x1 to
        4x4), the others stride 2; batch norm and LeakyReLU after all but the last, tanh at the output."""
        layers = [keras.layers.Reshape((1, 1, self.generator_width))]
        for i, filters in enumerate(c.generator_filters):
            layers += [keras.layers.Conv2DTranspose(filters, 4, strides=1 if i == 0 else 2,
                                                    padding="valid" if i == 0 else "same", use_bias=not c.batch_norm)]
            layers += [keras.layers.BatchNormalization()] if c.batch_norm else []
            layers += [keras.layers.LeakyReLU(c.leaky_slope)]
        layers += [keras.layers.Conv2DTranspose(1, 4, strides=2, padding="same"),
                   keras.layers.Activation("tanh", dtype="float32")]
        return keras.Sequential(layers, name="generator")

    def build_discriminator(self, c):
        """[n, 32, 32, 1] -> logits [n, 1]: stride-2 4x4 convolutions with LeakyReLU, batch norm on all but the
        first; the output layer one convolution over the whole remaining feature map (8x8 for two layers)."""
        layers = []
        for i, filters in enumerate(c.discriminator_filters):
            normalized = c.batch_norm and i > 0 and not c.spectral_norm
            convolution = keras.layers.Conv2D(filters, 4, strides=2, padding="same", use_bias=not normalized)
            layers += [spectrally_normalized(convolution, c.spectral_norm)]
            layers += [keras.layers.BatchNormalization()] if normalized else []
            layers += [keras.layers.LeakyReLU(c.leaky_slope)]
            layers += [keras.layers.Dropout(c.dropout)] if c.dropout else []
        remaining = 32 // 2 ** len(c.discriminator_filters)
        output = keras.layers.Conv2D(1, remaining, padding="valid", dtype="float32")
        layers += [spectrally_normalized(output, c.spectral_norm), keras.layers.Flatten(dtype="float32")]
        return keras.Sequential(layers, name="discriminator")
