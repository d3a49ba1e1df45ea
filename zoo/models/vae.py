"""Variational autoencoder (Kingma and Welling 2014), MLP or convolutional, with a Bernoulli decoder.

    q(z|x) = N(mean(x), diag(exp(log_var(x))))     encoder
    p(z)   = N(0, I)
    p(x|z) = Bernoulli(sigmoid(logits(z)))          decoder

Training maximises the evidence lower bound, one reparameterised sample z = mean + exp(log_var / 2) * eps per
image:
    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z))
            = -BCE(x, logits(z)) - 1/2 sum_j (exp(log_var_j) + mean_j^2 - 1 - log_var_j)
The reported `loss` is -ELBO per image in nats (for real-valued [0, 1] pixels the cross-entropy is the usual
reconstruction term rather than a log-likelihood; train with --binarize dynamic for comparable likelihoods).

With `importance_samples` k > 1 the model trains the importance-weighted bound instead (IWAE, Burda, Grosse and
Salakhutdinov 2015), k reparameterised samples z_i ~ q(z|x) per image:
    L_k(x) = log (1/k) sum_i w_i,     w_i = p(x|z_i) p(z_i) / q(z_i|x)
L_1 is the ELBO, L_k <= L_(k+1) <= log p(x) on average, and its gradient weights each sample's by its normalised
w_i, so q may cover more of the posterior than the ELBO lets it. `loss` is then -L_k; `reconstruction` and `kl`
are still reported (the mean -log p(x|z_i) and the analytic KL), but no longer add up to it.

`VAE` and `ConvVAE` differ only in their two networks (`build_encoder`, `build_decoder`); the objective, the
likelihood bound and the serving verbs are one code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from zoo import likelihood
from zoo.models.base import (GaussianPrior, ZooModel, chain_mean, check_fields, check_images, check_latent,
                             num_replicas, positive, replica_noise, seed_pair, step_seed)


@dataclass
class VAEConfig:
    latent_dim: int = field(default=2, metadata={"help": "size of the code z"})
    hidden: tuple[int, ...] = field(default=(256,), metadata={"help": "encoder hidden sizes; the decoder mirrors"})
    activation: str = field(default="relu", metadata={"help": "hidden activation: relu, softplus, tanh, ..."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate (the peak, under a schedule)"})
    learning_rate_schedule: str = field(default="constant", metadata={
        "help": "constant; cosine (decay to 0 over the run); or burda (Burda et al.'s 3^i-epoch stages at "
                "lr * 10^(-i/7), i = 0..7, stretched to the run)"})
    importance_samples: int = field(default=1, metadata={
        "help": "k of the training objective: 1 trains the ELBO (its KL through add_loss), k > 1 the "
                "importance-weighted bound of k samples per image (IWAE)"})
    inpaint_steps: int = field(default=20, metadata={"help": "pseudo-Gibbs steps of inpaint's proposal"})
    inpaint_samples: int = field(default=256, metadata={"help": "importance samples of inpaint"})
    inpaint_chunk: int = field(default=32, metadata={"help": "importance samples drawn at once (memory)"})

    def __post_init__(self):
        self.hidden = tuple(self.hidden)
        check_fields(
            self, latent_dim=(positive, "positive"), hidden=(positive, "one or more positive sizes"),
            learning_rate=(positive, "positive"), inpaint_steps=(lambda v: v >= 2, "at least 2"),
            learning_rate_schedule=(lambda v: v in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
            importance_samples=(lambda v: v >= 1, "at least 1 (1: the ELBO)"),
            inpaint_chunk=(lambda v: v >= 2, "at least 2"),
            inpaint_samples=(lambda v: v >= self.inpaint_chunk, f"at least inpaint_chunk ({self.inpaint_chunk})"))
        keras.activations.get(self.activation)  # raises ValueError naming an unknown activation


SCHEDULES = ("constant", "cosine", "burda")


def learning_rate_schedule(peak, name, total_steps=None):
    """The learning rate as a Keras schedule over a run of total_steps updates (a float for "constant").

    burda: Burda et al. (2015) train for 3^i epochs at 1e-3 * 10^(-i/7), i = 0..7 (3,280 epochs); here the eight
    stages keep their shares of the run (the last, at peak / 10, takes two thirds of it), whatever its length.
    """
    if name == "constant":
        return peak
    if not total_steps:
        raise ValueError(f"the {name} learning-rate schedule needs the run's length: compile(total_steps=...)")
    if name == "cosine":
        return keras.optimizers.schedules.CosineDecay(peak, total_steps, alpha=0.0)
    stages = 3.0 ** np.arange(8)
    starts = np.cumsum(stages)[:-1] / stages.sum() * total_steps  # the step at which stages 1..7 begin
    boundaries = [max(0, int(round(start)) - 1) for start in starts]  # the schedule switches after a boundary
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        boundaries, [peak * 10.0 ** (-i / 7) for i in range(8)])


# The configurations the assignments ask for: 784-256-z-256-784 ReLU, and the lab's 784-200-200-20-200-200-784 softplus.
PRESETS = {
    "z2": dict(latent_dim=2),
    "z8": dict(latent_dim=8),
    "z16": dict(latent_dim=16),
    "softplus20": dict(latent_dim=20, hidden=(200, 200), activation="softplus"),
    # The likelihood model, for numbers comparable with the literature: train with --binarize dynamic.
    "z50": dict(latent_dim=50, hidden=(500, 500)),
    # The same model trained on the importance-weighted bound with k = 5 and a cosine schedule (docs/vae.md).
    "iwae": dict(latent_dim=50, hidden=(500, 500), importance_samples=5, learning_rate_schedule="cosine"),
}


def bernoulli_nll(images, logits):
    """-log p(x|z) per image: binary cross-entropy summed over the 784 pixels, in nats."""
    targets = tf.reshape(images, tf.shape(logits))
    return tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits), axis=-1)


@keras.saving.register_keras_serializable(package="zoo")
class VAE(GaussianPrior, ZooModel):
    """MLP variational autoencoder: 784-hidden-z-hidden-784 (the assignments' 784-256-2-256-784 ReLU by default)."""

    KIND = "vae"
    Config = VAEConfig
    SIGNATURES = ("sample", "generate", "reconstruct", "encode", "decode", "inpaint")
    DATA = dict(binarize="none")
    PRESETS = PRESETS
    XLA_ON_CPU = True
    METRICS = ("loss", "reconstruction", "kl")  # -ELBO and its two terms, nats per image

    def __init__(self, config=None, seed=0, **kwargs):
        super().__init__(config, seed, **kwargs)
        self.encoder = self.build_encoder(self.config)
        self.decoder = self.build_decoder(self.config)

    def build_encoder(self, c):
        """Images [n, 28, 28, 1] -> [n, 2 * latent_dim]: the mean and log-variance of q(z|x) side by side."""
        return keras.Sequential(
            [keras.layers.Flatten()] + [keras.layers.Dense(n, activation=c.activation) for n in c.hidden]
            + [keras.layers.Dense(2 * c.latent_dim)], name="encoder")

    def build_decoder(self, c):
        """Codes [n, latent_dim] -> [n, 784] Bernoulli logits."""
        return keras.Sequential(
            [keras.layers.Dense(n, activation=c.activation) for n in reversed(c.hidden)]
            + [keras.layers.Dense(28 * 28)], name="decoder")

    def posterior(self, images, labels=None):
        """Mean and log-variance of q(z|x); images [n, 28, 28, 1] or flat [n, 784]. (labels: a conditional VAE's
        class of each image, cvae.py; unused here.)"""
        mean, log_var = tf.split(self.encoder(tf.reshape(images, (-1, 28, 28, 1))), 2, axis=-1)
        return mean, log_var

    def decoder_logits(self, latent, labels=None):
        """The decoder's Bernoulli logits [n, 784] of codes [n, latent_dim] (labels: a conditional VAE's)."""
        return self.decoder(latent)

    def call(self, images, training=False, labels=None):
        """Decoder logits for one posterior sample per image; adds the KL term through add_loss."""
        mean, log_var = self.posterior(images, labels)
        z = mean + tf.exp(0.5 * log_var) * replica_noise(tf.shape(mean), self.noise_seed(training))
        self.add_loss(tf.reduce_mean(kl_to_prior(mean, log_var)))
        return self.decoder_logits(z, labels)

    def noise_seed(self, training):
        """Fresh noise every training step; a fixed draw for evaluation, so validation curves are comparable."""
        return step_seed(self, stream=0) if training else tf.constant([self.seed, -1])

    def compute_terms(self, images, training, labels=None):
        """(loss, reconstruction, kl), each the batch mean in nats per image: -ELBO and its two terms, or with
        importance_samples > 1, -L_k and the two terms as reported (see the module's docstring)."""
        if self.config.importance_samples > 1:
            return self.negative_iw_bound(images, training, labels)
        logits = self(images, training=training, labels=labels)
        reconstruction = tf.reduce_mean(bernoulli_nll(images, logits))
        kl = tf.add_n(self.losses)  # what call() added through add_loss
        return reconstruction + kl, reconstruction, kl

    def iw_bound(self, images, eps, labels=None, posterior=None):
        """(L_k per image, log p(x|z_i) [n, k]): the importance-weighted bound of k samples z_i = mean +
        exp(log_var / 2) * eps_i (eps [n, k, d]) of q(z|x) (likelihood.importance_weighted_bound), log p(x|z_i) from
        the decoder's logits, so it is finite for any. posterior: q(z|x)'s (mean, log_var) if already computed."""
        mean, log_var = posterior if posterior is not None else self.posterior(images, labels)
        shape, k = tf.shape(mean), tf.shape(eps)[1]
        z = mean[:, None] + tf.exp(0.5 * log_var)[:, None] * eps
        repeated = None if labels is None else tf.repeat(labels, k)
        logits = tf.reshape(self.decoder_logits(tf.reshape(z, (-1, shape[1])), repeated), (shape[0], k, -1))
        targets = tf.broadcast_to(tf.reshape(images, (shape[0], 1, -1)), tf.shape(logits))
        log_px_z = -tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits), axis=-1)
        return likelihood.importance_weighted_bound(log_px_z, z, eps, log_var), log_px_z

    def negative_iw_bound(self, images, training, labels=None):
        """-L_k = -log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q(z|x), the batch mean, with the two terms
        reported beside it (the mean -log p(x|z_i) and the analytic KL)."""
        mean, log_var = self.posterior(images, labels)
        shape = tf.shape(mean)
        eps = replica_noise(tf.stack([shape[0], self.config.importance_samples, shape[1]]), self.noise_seed(training))
        bound, log_px_z = self.iw_bound(images, eps, labels, posterior=(mean, log_var))
        return -tf.reduce_mean(bound), -tf.reduce_mean(log_px_z), tf.reduce_mean(kl_to_prior(mean, log_var))

    def default_optimizer(self, total_steps=None):
        c = self.config
        return keras.optimizers.Adam(learning_rate_schedule(c.learning_rate, c.learning_rate_schedule, total_steps))

    def train_step(self, data):
        images, labels = self.split_batch(data)  # labels: a conditional VAE's (cvae.py)
        with tf.GradientTape() as tape:
            loss, reconstruction, kl = self.compute_terms(images, training=True, labels=labels)
            # Keras sums gradients across replicas, so each replica's mean loss is divided by their number.
            scaled_loss = self.optimizer.scale_loss(loss / num_replicas())
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return self.update_metrics(images, loss, reconstruction, kl)

    def test_step(self, data):
        images, labels = self.split_batch(data)
        loss, reconstruction, kl = self.compute_terms(images, training=False, labels=labels)
        return self.update_metrics(images, loss, reconstruction, kl)

    def update_metrics(self, images, loss, reconstruction, kl):
        batch = tf.cast(tf.shape(images)[0], tf.float32)  # weight by images: exact per-image epoch means
        return self.record({"loss": loss, "reconstruction": reconstruction, "kl": kl}, sample_weight=batch)

    # -- the serving verbs ------------------------------------------------------------------------------------

    def encode(self, images):
        mean, log_var = self.posterior(check_images(images))
        return {"latent": mean, "log_var": log_var}

    def decode(self, latent):
        """Bernoulli means p(x=1|z) as images."""
        return tf.reshape(tf.sigmoid(self.decoder_logits(check_latent(latent, self.latent_dim))), (-1, 28, 28, 1))

    def log_likelihood(self, images, k=5000, seed=0, refine_steps=0):
        """Importance-weighted estimate of log p(x) per binary image (Burda et al. 2015), in nats; a lower bound
        that tightens with k, and with refine_steps, q(z|x) fitted to each image first (likelihood.posterior_refiner).
        The same code as zoo.evaluate's on exports."""
        return likelihood.importance_weighted_log_likelihood(self.encode, self.decode, np.asarray(images), k, seed,
                                                             refine_steps=refine_steps)

    def complete(self, images, observed, seed):
        """E[x_missing | x_observed] under the model, by self-normalised importance sampling.

            z_i ~ r(z) = (q(z | x~) + p(z)) / 2,     w_i = p(x_observed | z_i) p(z_i) / r(z_i)
            completion = sum_i w_i p(x_missing | z_i) / sum_i w_i

        x~ is a pseudo-Gibbs completion (Rezende et al. 2014): it centres the proposal near the posterior, and
        the prior half of the mixture keeps the weights bounded where q misses it (defensive importance sampling).
        Pseudo-Gibbs alone is no sampler of p(z | x_observed): with most pixels missing its completions fall behind
        the mean training image (docs/vae.md).
        """
        c = self.config
        mean, log_var = self.posterior(self.pseudo_gibbs(images, observed, seed, c.inpaint_steps))
        batch, chunk = tf.shape(images)[0], c.inpaint_chunk
        x = tf.reshape(images, (-1, 1, 28 * 28))
        seen = tf.reshape(tf.cast(observed, tf.float32), (-1, 1, 28 * 28))
        from_q = tf.range(chunk) < chunk // 2  # each chunk: half from q, half from the prior

        def add_chunk(j, top, total_weight, total_fill):
            noise = tf.random.stateless_normal([batch, chunk, c.latent_dim], seed_pair(seed, 10_000 + j))
            z = tf.where(from_q[None, :, None], mean[:, None] + tf.exp(0.5 * log_var)[:, None] * noise, noise)
            log_prior = _log_normal(z, 0.0, 0.0)
            log_r = tf.reduce_logsumexp(tf.stack([_log_normal(z, mean[:, None], log_var[:, None]), log_prior]),
                                        axis=0) - np.log(2.0)
            logits = tf.reshape(self.decoder_logits(tf.reshape(z, (-1, c.latent_dim))), (batch, chunk, 28 * 28))
            log_p_observed = -tf.reduce_sum(seen * tf.nn.sigmoid_cross_entropy_with_logits(
                labels=tf.broadcast_to(x, tf.shape(logits)), logits=logits), axis=-1)
            log_w = log_p_observed + log_prior - log_r  # [batch, chunk]
            # A running softmax: rescale what was summed so far to the new largest log-weight.
            new_top = tf.maximum(top, tf.reduce_max(log_w, axis=1, keepdims=True))
            w = tf.exp(log_w - new_top)
            rescale = tf.exp(top - new_top)
            return (j + 1, new_top, total_weight * rescale + tf.reduce_sum(w, axis=1, keepdims=True),
                    total_fill * rescale + tf.reduce_sum(w[..., None] * tf.sigmoid(logits), axis=1))

        start = (tf.constant(0), tf.fill([batch, 1], -np.inf), tf.zeros([batch, 1]), tf.zeros([batch, 28 * 28]))
        _, _, total_weight, total_fill = tf.while_loop(lambda j, *_: j < c.inpaint_samples // chunk, add_chunk, start)
        return tf.reshape(total_fill / total_weight, tf.shape(images))

    def pseudo_gibbs(self, images, observed, seed, steps):
        """Repeat z ~ q(z|x), missing pixels <- p(x|z) means, observed clamped; the means averaged over the second
        half of the chain."""
        def gibbs_step(step, x):
            mean, log_var = self.posterior(x)
            noise = tf.random.stateless_normal(tf.shape(mean), seed_pair(seed, 1 + step))
            means = self.decode(mean + tf.exp(0.5 * log_var) * noise)
            return tf.where(observed, images, means), means

        start = tf.where(observed, images, tf.zeros_like(images))
        return tf.where(observed, images, chain_mean(gibbs_step, start, steps))


def unless_empty(network, x, width):
    """network(x), or zeros [0, width] for an empty batch x without running it."""
    return tf.cond(tf.shape(x)[0] > 0, lambda: network(x), lambda: tf.zeros([0, width], x.dtype))


def kl_to_prior(mean, log_var):
    """KL(N(mean, diag(exp(log_var))) || N(0, I)) per row, analytically."""
    return 0.5 * tf.reduce_sum(tf.exp(log_var) + tf.square(mean) - 1.0 - log_var, axis=-1)


def _log_normal(z, mean, log_var):
    """log N(z; mean, diag(exp(log_var))), summed over the last axis."""
    return -0.5 * tf.reduce_sum(tf.square(z - mean) / tf.exp(log_var) + log_var + np.log(2 * np.pi), axis=-1)


@dataclass
class ConvVAEConfig(VAEConfig):
    hidden: tuple[int, ...] = field(default=(256,), metadata={"help": "dense sizes after the convolutions"})
    filters: tuple[int, ...] = field(default=(32, 64), metadata={
        "help": "channels of the stride-2 3x3 convolutions (one or two); the decoder mirrors them"})

    def __post_init__(self):
        super().__post_init__()
        self.filters = tuple(self.filters)
        check_fields(self, filters=(lambda v: len(v) <= 2 and positive(v),
                                    "one or two positive channel counts (28 halves twice to 7)"))


@keras.saving.register_keras_serializable(package="zoo")
class ConvVAE(VAE):
    """Convolutional VAE: Conv2D 32, 64 (stride 2) and a dense layer up, transposed convolutions down.

    The keras.io example's architecture; only the two networks differ from the MLP VAE."""

    KIND = "conv_vae"
    Config = ConvVAEConfig
    # The likelihood model (train with --binarize dynamic), close to the MLP z = 50 (docs/vae.md).
    PRESETS = {"z16": dict(latent_dim=16, learning_rate_schedule="cosine")}
    XLA_ON_CPU = False  # XLA's CPU convolutions are slower than oneDNN's (docs/benchmarks.md)

    def build_encoder(self, c):
        return keras.Sequential(
            [keras.layers.Conv2D(f, 3, strides=2, padding="same", activation=c.activation) for f in c.filters]
            + [keras.layers.Flatten()] + [keras.layers.Dense(n, activation=c.activation) for n in c.hidden]
            + [keras.layers.Dense(2 * c.latent_dim)], name="encoder")

    def posterior(self, images, labels=None):
        # oneDNN's convolutions refuse an empty batch, which the verbs accept (an empty answer)
        return tuple(tf.split(unless_empty(self.encoder, tf.reshape(images, (-1, 28, 28, 1)), 2 * self.latent_dim),
                              2, axis=-1))

    def decoder_logits(self, latent, labels=None):
        return unless_empty(self.decoder, latent, 28 * 28)

    def build_decoder(self, c):
        size = 28 // 2 ** len(c.filters)
        return keras.Sequential(
            [keras.layers.Dense(n, activation=c.activation) for n in reversed(c.hidden)]
            + [keras.layers.Dense(size * size * c.filters[-1], activation=c.activation),
               keras.layers.Reshape((size, size, c.filters[-1]))]
            + [keras.layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation=c.activation)
               for f in reversed(c.filters)]
            + [keras.layers.Conv2DTranspose(1, 3, padding="same"), keras.layers.Flatten()], name="decoder")
