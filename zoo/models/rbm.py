"""Bernoulli restricted Boltzmann machine trained by contrastive divergence (CD-k) or persistent CD (PCD).

    E(v, h) = -v.b - h.c - v W h            p(v, h) = exp(-E(v, h)) / Z
    p(h_j = 1 | v) = sigmoid(c_j + v W_:j)   p(v_i = 1 | h) = sigmoid(b_i + W_i: h)
    F(v) = -v.b - sum_j softplus(c_j + v W_:j)           free energy: p(v) = exp(-F(v)) / Z

The log-likelihood gradient is a data term minus a model term,
    d log p(v) / dW = <v h^T>_data - <v h^T>_model
estimated with p(h|v) on the batch (positive phase) and with k Gibbs steps from the batch (CD-k) or from chains
carried across batches (PCD, Tieleman 2008) (negative phase). Its negation goes to a Keras optimizer (SGD with
momentum by default), so learning-rate schedules, momentum and weight decay work as for any Keras model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from zoo.data import binarize_once
from zoo.models.base import (ZooModel, check_images, check_latent, check_mask, check_num_samples, compiled_verb,
                             num_replicas, replica_noise, seed_pair, step_seed)


@dataclass
class RBMConfig:
    hidden: int = field(default=500, metadata={"help": "hidden units"})
    visible: int = field(default=784, metadata={
        "help": "visible units: 784 for images; a DBN's upper layers take the size of the layer below"})
    cd_k: int = field(default=1, metadata={"help": "Gibbs steps of the negative phase"})
    persistent: bool = field(default=False, metadata={"help": "PCD: negative chains carried across batches"})
    chains: int = field(default=100, metadata={"help": "persistent chains (PCD)"})
    learning_rate: float = field(default=0.05, metadata={"help": "SGD learning rate"})
    learning_rate_decay: bool = field(default=False, metadata={
        "help": "decay the learning rate linearly to 0 over the run (Tieleman 2008, for PCD)"})
    momentum: float = field(default=0.5, metadata={"help": "SGD momentum"})
    weight_decay: float = field(default=0.0, metadata={"help": "decoupled weight decay of SGD"})
    sample_steps: int = field(default=1000, metadata={"help": "Gibbs steps of sample (from random visible states)"})
    inpaint_steps: int = field(default=200, metadata={"help": "Gibbs steps of inpaint"})

    def __post_init__(self):
        if min(self.hidden, self.visible, self.cd_k, self.chains, self.sample_steps) <= 0 or self.inpaint_steps < 2:
            raise ValueError("hidden, visible, cd_k, chains and sample_steps must be positive and inpaint_steps at "
                             "least 2")
        if self.learning_rate <= 0 or not 0 <= self.momentum < 1 or self.weight_decay < 0:
            raise ValueError("learning_rate must be positive, momentum in [0, 1), weight_decay >= 0")


PRESETS = {
    # The assignments' RBM: CD-1 on 500 hidden units.
    "cd1": dict(hidden=500, cd_k=1),
    # The likelihood model: PCD with the learning rate decayed linearly to 0 (Tieleman 2008). Trained for 150
    # epochs (python -m zoo.train rbm --preset pcd --epochs 150) its AIS test log-likelihood is about -86.4 nats.
    "pcd": dict(hidden=500, persistent=True, learning_rate=0.02, learning_rate_decay=True, weight_decay=1e-4),
}


class FreeEnergyGap(keras.callbacks.Callback):
    """Adds `free_energy_gap` to each epoch's logs: mean F(validation images) - mean F(training images), on fixed
    binarized subsets. It grows when the model starts to fit the training images better than unseen ones, an
    overfitting monitor that needs no partition function (Hinton 2010, "A practical guide", section 6)."""

    def __init__(self, train_images, validation_images, count=1000, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)  # one stream for both subsets
        self.subsets = [binarize_once(x[:count] / 255.0, rng).reshape(-1, 784)
                        for x in (train_images, validation_images)]

    def on_epoch_end(self, epoch, logs=None):
        train, validation = (float(tf.reduce_mean(self.model.free_energy(x))) for x in self.subsets)
        if logs is not None:
            logs["free_energy_gap"] = validation - train


def bernoulli(probabilities, uniform):
    return tf.cast(uniform < probabilities, probabilities.dtype)


def cd_gradient(v_data, h_data, v_model, h_model):
    """The negated log-likelihood gradient of W, b and c (Keras minimises), each expectation a batch mean:

        -d log p / dW = -(<v h^T>_data - <v h^T>_model),   and <v>, <h> likewise for the biases b and c.
    """
    def mean_outer(v, h):
        return tf.matmul(v, h, transpose_a=True) / tf.cast(tf.shape(v)[0], v.dtype)

    return [-(mean_outer(v_data, h_data) - mean_outer(v_model, h_model)),
            -(tf.reduce_mean(v_data, axis=0) - tf.reduce_mean(v_model, axis=0)),
            -(tf.reduce_mean(h_data, axis=0) - tf.reduce_mean(h_model, axis=0))]


@keras.saving.register_keras_serializable(package="zoo")
class RBM(ZooModel):
    Config = RBMConfig
    # `parameters` (W and the biases) is beyond the serving contract: zoo.likelihood's AIS estimate of log Z needs it.
    SIGNATURES = ("sample", "generate", "reconstruct", "encode", "decode", "inpaint", "parameters")
    PRESETS = PRESETS
    DATA = dict(binarize="dynamic", flatten=False)
    XLA_ON_CPU = False  # XLA on a CPU ran the RBM 2x slower than TF's own kernels
    METRICS = ("reconstruction_mse", "reconstruction_bce", "pseudo_log_likelihood", "free_energy")

    def __init__(self, config=None, seed=0, **kwargs):
        super().__init__(config, seed, **kwargs)
        c = self.config
        self.W = self.add_weight(shape=(c.visible, c.hidden),
                                 initializer=keras.initializers.RandomNormal(stddev=0.01),
                                 name="W")
        self.visible_bias = self.add_weight(shape=(c.visible,), initializer="zeros", name="visible_bias")
        self.hidden_bias = self.add_weight(shape=(c.hidden,), initializer="zeros", name="hidden_bias")
        # PCD chains, random to begin with: every replica computes the same negative phase from all of them, and
        # the first one stores them.
        self.chains = self.add_weight(shape=(c.chains, c.visible),
                                      initializer=keras.initializers.RandomUniform(0, 1),
                                      trainable=False, name="chains", aggregation="only_first_replica")

    @property
    def latent_dim(self):
        return self.config.hidden

    @property
    def visible(self):
        return self.config.visible

    def build_for_images(self):
        if not self.built:
            self(tf.zeros((1, self.visible)))

    def training_callbacks(self, splits):
        if not len(splits.validation):
            return []
        return [FreeEnergyGap(splits.train.images, splits.validation.images, seed=self.seed)]

    def default_optimizer(self, total_steps=None):
        c = self.config
        learning_rate = c.learning_rate
        if c.learning_rate_decay:
            if not total_steps:
                raise ValueError("learning_rate_decay needs the run's length: compile(total_steps=...)")
            learning_rate = keras.optimizers.schedules.PolynomialDecay(c.learning_rate, total_steps, 0.0)
        return keras.optimizers.SGD(learning_rate, momentum=c.momentum, weight_decay=c.weight_decay or None)

    # -- the energy model -------------------------------------------------------------------------------------

    def hidden_input(self, v):
        """c + v W: the input of every hidden unit, [n, hidden]."""
        return tf.matmul(v, self.W) + self.hidden_bias

    def hidden_probabilities(self, v):
        return tf.sigmoid(self.hidden_input(v))

    def visible_probabilities(self, h):
        return tf.sigmoid(tf.matmul(h, self.W, transpose_b=True) + self.visible_bias)

    def free_energy(self, v, hidden_input=None):
        """F(v) = -v.b - sum_j softplus(c_j + v W_:j), per image; v flat [n, visible]."""
        hidden_input = self.hidden_input(v) if hidden_input is None else hidden_input
        return -tf.linalg.matvec(v, self.visible_bias) - tf.reduce_sum(tf.nn.softplus(hidden_input), axis=1)

    def sample_h_given_v(self, v, seed):
        return bernoulli(self.hidden_probabilities(v), tf.random.stateless_uniform(
            [tf.shape(v)[0], self.config.hidden], seed))

    def sample_v_given_h(self, h, seed):
        return bernoulli(self.visible_probabilities(h),
                         tf.random.stateless_uniform([tf.shape(h)[0], self.visible], seed))

    def gibbs(self, v, steps, seed, clamp=None, split_across_replicas=True, hidden=None):
        """`steps` rounds of v -> h -> v. Returns the last binary v, p(v|h) of the last round and p(h|v) of the
        last v (the negative phase's hidden term, free here: the next round would compute it anyway).

        hidden: p(h|v) of the starting v if the caller has it (CD's positive phase), saving one product.
        clamp = (observed mask, values): those visible units are reset to their values after every round.
        The noise is one draw for the global batch, each replica taking its rows (see replica_noise), unless
        split_across_replicas is False: then every replica draws the same (PCD's shared chains).
        """
        def uniform(shape, step_seed):
            if split_across_replicas:
                return replica_noise(shape, step_seed, tf.random.stateless_uniform)
            return tf.random.stateless_uniform(shape, step_seed)

        def step(i, v, _, h_probabilities):
            h = bernoulli(h_probabilities, uniform(tf.shape(h_probabilities),
                                                   tf.random.experimental.stateless_fold_in(seed, 2 * i)))
            p = self.visible_probabilities(h)
            v = bernoulli(p, uniform(tf.shape(p), tf.random.experimental.stateless_fold_in(seed, 2 * i + 1)))
            if clamp is not None:
                v = tf.where(clamp[0], clamp[1], v)
            return i + 1, v, p, self.hidden_probabilities(v)

        hidden = self.hidden_probabilities(v) if hidden is None else hidden
        _, v, p, hidden = tf.while_loop(lambda i, *_: i < steps, step, (tf.constant(0), v, tf.zeros_like(v), hidden))
        return v, p, hidden

    # -- training ---------------------------------------------------------------------------------------------

    def call(self, images, training=False):
        """Reconstruction probabilities p(v | h = p(h|v)), flat [n, visible]."""
        return self.visible_probabilities(self.hidden_probabilities(tf.reshape(images, (-1, self.visible))))

    def train_step(self, images):
        v = tf.reshape(images, (-1, self.visible))
        seed = step_seed(self, stream=0)
        hidden_input = self.hidden_input(v)
        h_data = tf.sigmoid(hidden_input)  # positive phase: expectations, not samples, for lower variance
        if self.config.persistent:  # every replica runs all chains with the same noise: the same negatives
            v_model, _, h_model = self.gibbs(self.chains.value, self.config.cd_k, seed, split_across_replicas=False)
            self.chains.assign(v_model)
        else:  # CD-k: the chains start at the data
            v_model, _, h_model = self.gibbs(v, self.config.cd_k, seed, hidden=h_data)
        # Keras sums replicas' gradients: each replica's share is divided by their number.
        gradients = [g / num_replicas() for g in cd_gradient(v, h_data, v_model, h_model)]
        self.optimizer.apply_gradients(zip(gradients, [self.W, self.visible_bias, self.hidden_bias]))
        return self.update_metrics(v, seed, hidden_input)

    def test_step(self, images):
        v = tf.reshape(images, (-1, self.visible))
        return self.update_metrics(v, tf.constant([self.seed, -1]), self.hidden_input(v))

    def update_metrics(self, v, seed, hidden_input):
        """Per-image figures from the batch's hidden input c + v W (computed once, reused)."""
        # The mean-field reconstruction p(v | h = p(h|v)) through its logits x: cross-entropy sum(softplus(x) - v x).
        logits = tf.matmul(tf.sigmoid(hidden_input), self.W, transpose_b=True) + self.visible_bias
        free_energy = self.free_energy(v, hidden_input)
        # Stochastic pseudo-log-likelihood: visible * log sigmoid(F(v with unit i flipped) - F(v)), i random per
        # image. Flipping v_i changes the hidden input by (1 - 2 v_i) W_i: and the visible term by (1 - 2 v_i) b_i.
        pixel = tf.random.stateless_uniform([tf.shape(v)[0]], tf.random.experimental.stateless_fold_in(seed, 99),
                                            0, self.visible, tf.int32)
        sign = 1.0 - 2.0 * tf.gather(v, pixel, batch_dims=1)
        flipped_input = hidden_input + sign[:, None] * tf.gather(self.W, pixel)
        flipped_free_energy = (-tf.linalg.matvec(v, self.visible_bias) - sign * tf.gather(self.visible_bias, pixel)
                               - tf.reduce_sum(tf.nn.softplus(flipped_input), axis=1))
        values = {
            "reconstruction_mse": tf.reduce_sum(tf.square(v - tf.sigmoid(logits)), axis=1),
            "reconstruction_bce": tf.reduce_sum(tf.nn.softplus(logits) - v * logits, axis=1),
            "pseudo_log_likelihood": float(self.visible) * tf.math.log_sigmoid(flipped_free_energy - free_energy),
            "free_energy": free_energy,
        }
        return self.record(values)

    # -- the serving verbs ------------------------------------------------------------------------------------

    def parameters(self):
        return {"weights": tf.identity(self.W), "visible_bias": tf.identity(self.visible_bias),
                "hidden_bias": tf.identity(self.hidden_bias)}

    def encode(self, images):
        return {"latent": self.hidden_probabilities(tf.reshape(check_images(images), (-1, 784)))}

    def decode(self, latent):
        return tf.reshape(self.visible_probabilities(check_latent(latent, self.latent_dim)), (-1, 28, 28, 1))

    def reconstruct(self, images):
        return self.decode(self.encode(images)["latent"])

    @compiled_verb
    def sample(self, num_samples, seed, steps=None, start="visible"):
        """p(v|h) after `steps` Gibbs steps (config.sample_steps by default) from uniformly random visible states,
        or, with start="hidden", from uniformly random hidden states (their v ~ p(v|h) counts as step 0)."""
        num_samples, seed = check_num_samples(num_samples, self.max_samples), seed_pair(seed, 0)
        steps = self.config.sample_steps if steps is None else steps
        if start == "visible":
            v = bernoulli(tf.fill([num_samples, self.visible], 0.5),
                          tf.random.stateless_uniform([num_samples, self.visible], seed))
        elif start == "hidden":
            h = bernoulli(tf.fill([num_samples, self.config.hidden], 0.5),
                          tf.random.stateless_uniform([num_samples, self.config.hidden], seed))
            v = self.sample_v_given_h(h, tf.random.experimental.stateless_fold_in(seed, 2))
        else:
            raise ValueError(f"start must be 'visible' or 'hidden', not {start!r}")
        if steps == 0:  # the starting state itself: p(v|h) of the random h, or the random v
            p = self.visible_probabilities(h) if start == "hidden" else v
        else:
            _, p, _ = self.gibbs(v, steps, tf.random.experimental.stateless_fold_in(seed, 1))
        return tf.reshape(p, (-1, 28, 28, 1))

    @compiled_verb
    def inpaint(self, images, mask, seed, masked_input_only=False):
        """Gibbs sampling of the missing pixels with the observed ones clamped; returns the mean of p(v|h) over
        the second half of the chain for the missing pixels.

        masked_input_only=True is the assignments' variant: missing pixels are 0 and the model is not told which they
        are; it reconstructs the whole image for inpaint_steps rounds without clamping.
        """
        images = check_images(images)
        mask = check_mask(mask, images)
        observed = tf.reshape(mask > 0.5, (-1, 784))
        v = tf.where(observed, tf.reshape(images, (-1, 784)), 0.0)
        seed = seed_pair(seed, 1)
        steps, burn_in = self.config.inpaint_steps, self.config.inpaint_steps // 2
        clamp = None if masked_input_only else (observed, v)
        v, _, _ = self.gibbs(v, burn_in, seed, clamp)

        def average_step(i, v, total):
            v, p, _ = self.gibbs(v, 1, tf.random.experimental.stateless_fold_in(seed, 1000 + i), clamp)
            return i + 1, v, total + p

        _, _, total = tf.while_loop(lambda i, *_: i < steps - burn_in, average_step,
                                    (tf.constant(0), v, tf.zeros_like(v)))
        completion = tf.reshape(total / float(steps - burn_in), (-1, 28, 28, 1))
        return tf.where(mask > 0.5, images, completion)

