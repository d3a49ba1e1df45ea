"""Bernoulli restricted Boltzmann machine trained by contrastive divergence (CD-k) or persistent CD (PCD).

    E(v, h) = -v.b - h.c - v W h            p(v, h) = exp(-E(v, h)) / Z
    p(h_j = 1 | v) = sigmoid(c_j + v W_:j)   p(v_i = 1 | h) = sigmoid(b_i + W_i: h)
    F(v) = -v.b - sum_j softplus(c_j + v W_:j)           free energy: p(v) = exp(-F(v)) / Z

The log-likelihood gradient is a data term minus a model term,
    d log p(v) / dW = <v h^T>_data - <v h^T>_model
estimated with p(h|v) on the batch (positive phase) and with k Gibbs steps from the batch (CD-k) or from chains
carried across batches (PCD, Tieleman 2008) or from persistent chains at K temperatures that swap states (parallel
tempering, PT: Desjardins et al. 2010) (negative phase). Its negation goes to a Keras optimizer (SGD with momentum by
default), so learning-rate schedules, momentum and weight decay work as for any Keras model.

Tempered models. Samplers and PT move along the path of distributions, beta from 0 to 1,
    p_beta(v, h) ∝ exp(v.b + beta (h.c + v W h)),      p_beta(v) ∝ exp(v.b + sum_j softplus(beta (c_j + v W_:j)))
whose beta = 0 end is the visible biases alone (every pixel independent: one Gibbs step samples it exactly) and
whose beta = 1 end is the RBM. `sample(method=...)`: "gibbs" runs chains at beta = 1 from random states; "annealed"
carries each chain along the path (the path AIS follows), so chains reach the modes in proportion to their mass,
optionally resampled by their importance weights; "tempering" runs chains at K temperatures and swaps neighbours'
states with the Metropolis probability.

Centering (Melchior, Fischer and Wiskott 2016): with offsets mu (the data's mean) and lambda (a running mean of
p(h|v) on the data), E(v, h) = -(v - mu).b - (h - lambda).c - (v - mu) W (h - lambda). The gradient is taken in these
centered parameters, which conditions it better; the model is an ordinary RBM with
    W' = W,   b' = b - W lambda,   c' = c - W^T mu,
which is what every verb, the export and AIS use.
"""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field

import keras
import numpy as np
import tensorflow as tf

from zoo import likelihood
from zoo.data import as_images, binarize_once
from zoo.likelihood import ais_temperatures
from zoo.models.base import (ZooModel, chain_mean, check_fields, check_images, check_latent, check_mask,
                             check_num_samples, compiled_verb, mean_trackers, num_replicas, positive, random_binary,
                             replica_mean, replica_noise, seed_pair, step_seed)


@dataclass
class RBMConfig:
    hidden: int = field(default=500, metadata={"help": "hidden units"})
    visible: int = field(default=784, metadata={
        "help": "visible units: 784 for images; a DBN's upper layers take the size of the layer below"})
    cd_k: int = field(default=1, metadata={"help": "Gibbs steps of the negative phase"})
    negative_phase: str = field(default="cd", metadata={
        "help": "cd: chains start at the batch; pcd: persistent chains; pt: persistent chains at --temperatures "
                "temperatures, swapping states (parallel tempering)"})
    chains: int = field(default=100, metadata={"help": "persistent chains (pcd; pt: per temperature)"})
    temperatures: int = field(default=10, metadata={
        "help": "temperatures of parallel tempering (--ladder from --lowest-beta to 1): --negative-phase pt and "
                "the tempering sampler"})
    lowest_beta: float = field(default=0.0, metadata={
        "help": "the tempering ladder's lowest inverse temperature (0: the visible biases alone)"})
    ladder: str = field(default="linear", metadata={
        "help": "linear: beta evenly spaced; quadratic: sqrt(1 - beta) evenly spaced, so the steps shrink towards "
                "beta = 1, where the model sharpens and wide steps stop swapping"})
    centered: bool = field(default=False, metadata={
        "help": "centered RBM (Melchior et al. 2016): offsets mu = data mean, lambda = running mean of p(h|v)"})
    offset_rate: float = field(default=0.01, metadata={"help": "sliding-average rate of the hidden offsets"})
    learning_rate: float = field(default=0.05, metadata={"help": "SGD learning rate"})
    learning_rate_decay: bool = field(default=False, metadata={
        "help": "decay the learning rate linearly to 0 over the run (Tieleman 2008, for PCD)"})
    momentum: float = field(default=0.5, metadata={"help": "SGD momentum"})
    weight_decay: float = field(default=0.0, metadata={"help": "decoupled weight decay of SGD"})
    sampler: str = field(default="gibbs", metadata={
        "help": "how sample (and the export's sample signature) draws: gibbs, annealed or tempering"})
    sample_start: str = field(default="random", metadata={
        "help": "where sample's gibbs and tempering chains start: random (uniform images; tempering: the visible "
                "biases) or chains (copies of the persistent chains training left, pcd or pt: already near the "
                "model, so the sweeps decorrelate them instead of burning in). annealed always starts at beta = 0"})
    sample_steps: int = field(default=1000, metadata={
        "help": "sample's compute in Gibbs sweeps: gibbs steps, annealed temperatures, tempering sweeps of all "
                "temperatures together"})
    sample_every: int = field(default=0, metadata={
        "help": "with --sample-start chains: 0 copies the persistent chains, one chain per sample; N > 0 runs the "
                "chains themselves on (sample_steps of burn-in) and records their beta = 1 states every N sweeps, "
                "an MCMC run thinned to every N-th sweep: far fewer sweeps per sample, each chain run longer"})
    inpaint_steps: int = field(default=200, metadata={"help": "Gibbs steps of inpaint"})
    label_units: int = 0  # the last N visible units are one softmax group, a one-of-N label (a DBN's top RBM)
    persistent: InitVar[bool | None] = None  # the flag before negative_phase: True is "pcd"

    NEGATIVE_PHASES = ("cd", "pcd", "pt")
    SAMPLERS = ("gibbs", "annealed", "tempering")
    LADDERS = ("linear", "quadratic")
    SAMPLE_STARTS = ("random", "chains")

    def __post_init__(self, persistent=None):
        if persistent is not None:
            self.negative_phase = "pcd" if persistent else "cd"
        check_fields(
            self, negative_phase=(lambda v: v in self.NEGATIVE_PHASES, f"one of {', '.join(self.NEGATIVE_PHASES)}"),
            sampler=(lambda v: v in self.SAMPLERS, f"one of {', '.join(self.SAMPLERS)}"),
            hidden=(positive, "positive"), visible=(positive, "positive"), cd_k=(positive, "positive"),
            chains=(positive, "positive"), sample_steps=(positive, "positive"),
            inpaint_steps=(lambda v: v >= 2, "at least 2"),
            sample_start=(lambda v: v in self.SAMPLE_STARTS, f"one of {', '.join(self.SAMPLE_STARTS)}"),
            ladder=(lambda v: v in self.LADDERS, f"one of {', '.join(self.LADDERS)}"),
            temperatures=(lambda v: v >= 2, "at least 2"), lowest_beta=(lambda v: 0 <= v < 1, "in [0, 1)"),
            offset_rate=(lambda v: 0 < v <= 1, "in (0, 1]"), learning_rate=(positive, "positive"),
            momentum=(lambda v: 0 <= v < 1, "in [0, 1)"), weight_decay=(lambda v: v >= 0, ">= 0"))
        check_chain_sampling(self.sample_start, self.sampler, self.sample_every, self.negative_phase,
                             prefix="sample_")
        if self.label_units:  # a softmax group: Gibbs sampling only (the tempered paths are Bernoulli's)
            check_fields(self, label_units=(lambda v: 2 <= v < self.visible, "0 or from 2 to visible - 1"),
                         negative_phase=(lambda v: v in ("cd", "pcd"), "cd or pcd with label units"),
                         sampler=(lambda v: v == "gibbs", "gibbs with label units"))


PRESETS = {
    # The assignments' RBM: CD-1 on 500 hidden units.
    "cd1": dict(hidden=500, cd_k=1),
    # The likelihood model: PCD with the learning rate decayed linearly to 0 (Tieleman 2008), sampled by annealing:
    # its Gibbs chains pile up on a few digits (docs/rbm.md, Samplers).
    "pcd": dict(hidden=500, negative_phase="pcd", learning_rate=0.02, learning_rate_decay=True, weight_decay=1e-4,
                sampler="annealed"),
    # The centered RBM of Melchior et al. (2016), PCD-1: better conditioned gradients, a better likelihood than
    # "pcd", and Gibbs chains that cover every digit from random images (docs/rbm.md).
    "centered": dict(hidden=500, negative_phase="pcd", centered=True, learning_rate=0.02, learning_rate_decay=True,
                     weight_decay=1e-4),
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


def check_chain_sampling(start, method, every, negative_phase, prefix=""):
    """The rules for sampling from the persistent chains, shared by RBMConfig (whose fields are named with
    prefix "sample_") and RBM.sample: a ValueError naming the setting that breaks one."""
    if start == "chains" and (negative_phase == "cd" or method == "annealed"):
        raise ValueError(f"{prefix}start='chains' needs persistent chains (negative_phase pcd or pt) and the gibbs or "
                         "tempering sampler (annealing starts at beta = 0)")
    if every < 0 or (every and start != "chains"):
        raise ValueError(f"{prefix}every must be >= 0, and above 0 only with {prefix}start='chains' (it records the "
                         "persistent chains as they run on)")


def bernoulli(probabilities, uniform):
    return tf.cast(uniform < probabilities, probabilities.dtype)


def cd_gradient(v_data, h_data, v_model, h_model):
    """The negated log-likelihood gradient of W, b and c (Keras minimises), each expectation a batch mean:

        -d log p / dW = -(<v h^T>_data - <v h^T>_model),   and <v>, <h> likewise for the biases b and c.

    The two outer products of W's are one product of stacked rows, [v_data; v_model]^T [-h_data / n; h_model / m]:
    one larger matrix product instead of two, and no passes over W-sized arrays to subtract and scale them.
    """
    n, m = (tf.cast(tf.shape(x)[0], x.dtype) for x in (v_data, v_model))
    weights = tf.matmul(tf.concat([v_data, v_model], axis=0), tf.concat([h_data / -n, h_model / m], axis=0),
                        transpose_a=True)
    return [weights,
            tf.reduce_mean(v_model, axis=0) - tf.reduce_mean(v_data, axis=0),
            tf.reduce_mean(h_model, axis=0) - tf.reduce_mean(h_data, axis=0)]


class OffsetInitialiser(keras.callbacks.Callback):
    """Sets a centered RBM's visible offsets to its training data's mean (data_mean of the same arguments) before its
    first step; a resumed run keeps its own, and skips the pass over the data."""

    def __init__(self, train, transform=None):
        super().__init__()
        self.train, self.transform = train, transform

    def on_train_begin(self, logs=None):
        if not np.any(self.model.visible_offset.numpy()):
            self.model.initialise_offsets(data_mean(self.train, self.transform))


def data_mean(train, transform=None, batch_size=1000):
    """The mean of the training data as an RBM sees it: the pixel values in [0, 1] of the split `train` (the mean
    of any binarization of them), or transform((images, labels), batch index) of them (a DBN layer's activities of
    the layer below, joined by the labels at a labelled top layer)."""
    total, n = 0.0, len(train.images)
    for start in range(0, n, batch_size):
        batch = as_images(train.images[start:start + batch_size])
        if transform is not None:
            index = tf.constant(start // batch_size, tf.int64)
            batch = transform((tf.constant(batch), tf.constant(train.labels[start:start + batch_size])), index)
        total += np.asarray(batch, np.float64).reshape(min(batch_size, n - start), -1).sum(axis=0)
    return total / n


@keras.saving.register_keras_serializable(package="zoo")
class RBM(ZooModel):
    KIND = "rbm"
    Config = RBMConfig
    # `parameters` (W and the biases) is beyond the serving contract: zoo.likelihood's AIS estimate of log Z needs it.
    SIGNATURES = ("sample", "generate", "reconstruct", "encode", "decode", "inpaint", "parameters")
    PRESETS = PRESETS
    SAMPLING_SETTINGS = ("sampler", "sample_start", "sample_steps", "sample_every", "lowest_beta", "ladder",
                         "inpaint_steps")
    START_NAMES = ("random", "hidden", "chains")  # sample's start: the config's two and random hidden states
    DATA = dict(binarize="dynamic", flatten=False)
    XLA_ON_CPU = False  # XLA on a CPU runs the RBM slower than TensorFlow's own kernels (docs/benchmarks.md)
    # `loss` (what Keras callbacks monitor by default) is the negated pseudo-log-likelihood, nats per image: lower is
    # better, a noisy estimate of the pseudo-likelihood, not of the likelihood (AIS: zoo.likelihood).
    METRICS = ("loss", "reconstruction_mse", "reconstruction_bce", "pseudo_log_likelihood", "free_energy")
    TEMPERING_METRICS = ("swap_rate", "top_swap_rate")

    def __init__(self, config=None, seed=0, **kwargs):
        super().__init__(config, seed, **kwargs)
        c = self.config
        self.W = self.add_weight(shape=(c.visible, c.hidden),
                                 initializer=keras.initializers.RandomNormal(stddev=0.01),
                                 name="W")
        self.visible_bias = self.add_weight(shape=(c.visible,), initializer="zeros", name="visible_bias")
        self.hidden_bias = self.add_weight(shape=(c.hidden,), initializer="zeros", name="hidden_bias")
        # Persistent chains (pt: `temperatures` blocks of `chains` rows, beta rising), random to begin with: every
        # replica computes the same negative phase from all of them, and the first one stores them.
        rows = c.chains * (c.temperatures if c.negative_phase == "pt" else 1)
        self.chains = self.add_weight(shape=(rows, c.visible),
                                      initializer=keras.initializers.RandomUniform(0, 1),
                                      trainable=False, name="chains", aggregation="only_first_replica")
        if c.negative_phase == "pt":  # training figures of parallel tempering (negative_phase), not of the model
            self.trackers.update(mean_trackers(self.TEMPERING_METRICS))
        self.started_at_model = False  # start_at: the offsets, once set from the data, keep the model given
        if c.centered:  # mu is set from the data (OffsetInitialiser); lambda starts at 0.5, as in Melchior et al.
            self.visible_offset = self.add_weight(shape=(c.visible,), initializer="zeros", trainable=False,
                                                  name="visible_offset", aggregation="only_first_replica")
            self.hidden_offset = self.add_weight(shape=(c.hidden,), initializer=keras.initializers.Constant(0.5),
                                                 trainable=False, name="hidden_offset",
                                                 aggregation="only_first_replica")

    @property
    def latent_dim(self):
        return self.config.hidden

    @property
    def visible(self):
        return self.config.visible

    @property
    def data_shape(self):
        """One example is a vector of `visible` units (images are taken flat)."""
        return (self.visible,)

    def training_callbacks(self, splits):
        callbacks = self.layer_callbacks(splits.train, None)
        if len(splits.validation):
            callbacks.append(FreeEnergyGap(splits.train.images, splits.validation.images, seed=self.seed))
        return callbacks

    def layer_callbacks(self, train, transform):
        """Callbacks for this RBM as one layer of a DBN (zoo.train's fit_layer), whose data are transform((images,
        labels), batch index) of zoo.data's training split `train`; None: the images themselves."""
        return [OffsetInitialiser(train, transform)] if self.config.centered else []

    def default_optimizer(self, total_steps=None):
        c = self.config
        learning_rate = c.learning_rate
        if c.learning_rate_decay:
            if not total_steps:
                raise ValueError("learning_rate_decay needs the run's length: compile(total_steps=...)")
            learning_rate = keras.optimizers.schedules.PolynomialDecay(c.learning_rate, total_steps, 0.0)
        return keras.optimizers.SGD(learning_rate, momentum=c.momentum, weight_decay=c.weight_decay or None)

    # -- the energy model -------------------------------------------------------------------------------------
    # b' and c' below are the ordinary RBM's biases; a centered RBM stores b and c and folds its offsets in.

    def visible_bias_folded(self):
        """b' = b - W lambda (b itself unless centered)."""
        if not self.config.centered:
            return self.visible_bias
        return self.visible_bias - tf.linalg.matvec(self.W, self.hidden_offset)

    def hidden_bias_folded(self):
        """c' = c - W^T mu (c itself unless centered)."""
        if not self.config.centered:
            return self.hidden_bias
        return self.hidden_bias - tf.linalg.matvec(self.W, self.visible_offset, transpose_a=True)

    def initialise_offsets(self, visible_mean):
        """Centering's visible offsets mu: the data's pixel means (clipped away from 0 and 1), with the visible
        biases set so that b' = logit(mu), the base-rate model (Hinton's practical guide, section 8). An RBM
        started at another (start_at) keeps that model: c moves with mu so that c' = c - W^T mu stays."""
        mu = np.clip(np.asarray(visible_mean, np.float32), 1e-3, 1 - 1e-3)
        if self.started_at_model:
            self.hidden_bias.assign_add(tf.linalg.matvec(self.W, mu - self.visible_offset, transpose_a=True))
        else:
            self.visible_bias.assign(np.log(mu / (1 - mu)) + tf.linalg.matvec(self.W, self.hidden_offset))
        self.visible_offset.assign(mu)

    def start_at(self, weights, visible_bias, hidden_bias):
        """Start training at the ordinary RBM (W, b', c') given, centered or not (a centered RBM stores
        b = b' + W lambda and c = c' + W^T mu)."""
        self.W.assign(weights)
        if self.config.centered:
            visible_bias = visible_bias + tf.linalg.matvec(self.W, self.hidden_offset)
            hidden_bias = hidden_bias + tf.linalg.matvec(self.W, self.visible_offset, transpose_a=True)
        self.visible_bias.assign(visible_bias)
        self.hidden_bias.assign(hidden_bias)
        self.started_at_model = True

    def hidden_input(self, v):
        """c' + v W: the input of every hidden unit, [n, hidden]."""
        return tf.matmul(v, self.W) + self.hidden_bias_folded()

    def hidden_probabilities(self, v):
        return tf.sigmoid(self.hidden_input(v))

    def visible_probabilities(self, h, beta=1.0):
        """p(v = 1 | h) at inverse temperature beta (a scalar, or one per row [n, 1]): sigmoid(b' + beta W h); for a
        label group (label_units), the softmax of its units' inputs, p(label = k | h)."""
        x = beta * tf.matmul(h, self.W, transpose_b=True) + self.visible_bias_folded()
        labels = self.config.label_units
        if not labels:
            return tf.sigmoid(x)
        return tf.concat([tf.sigmoid(x[:, :-labels]), tf.nn.softmax(x[:, -labels:])], axis=1)

    def visible_states(self, p, uniform):
        """Visible states drawn from p(v|h) with the uniforms given: each unit Bernoulli, and a label group one-hot,
        the label whose cumulative probability first passes the group's last uniform."""
        labels = self.config.label_units
        if not labels:
            return bernoulli(p, uniform)
        below = tf.reduce_sum(tf.cast(tf.cumsum(p[:, -labels:], axis=1) < uniform[:, -1:], tf.int32), axis=1)
        label = tf.one_hot(tf.minimum(below, labels - 1), labels, dtype=p.dtype)
        return tf.concat([bernoulli(p[:, :-labels], uniform[:, :-labels]), label], axis=1)

    def free_energy(self, v, hidden_input=None):
        """F(v) = -v.b' - sum_j softplus(c'_j + v W_:j), per image; v flat [n, visible]."""
        return likelihood.free_energy(v, self.W, self.visible_bias_folded(), self.hidden_bias_folded(), hidden_input)

    def sample_h_given_v(self, v, seed):
        return bernoulli(self.hidden_probabilities(v), tf.random.stateless_uniform(
            [tf.shape(v)[0], self.config.hidden], seed))

    def sample_v_given_h(self, h, seed):
        return self.visible_states(self.visible_probabilities(h),
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
            v = self.visible_states(p, uniform(tf.shape(p), tf.random.experimental.stateless_fold_in(seed, 2 * i + 1)))
            if clamp is not None:
                v = tf.where(clamp[0], clamp[1], v)
            return i + 1, v, p, self.hidden_probabilities(v)

        state = (0, v, tf.zeros_like(v), self.hidden_probabilities(v) if hidden is None else hidden)
        if isinstance(steps, int) and steps <= 10:  # CD-k's few rounds written out: a while_loop adds ops per round
            for _ in range(steps):
                state = step(*state)
        else:
            state = tf.while_loop(lambda i, *_: i < steps, step, state)
        _, v, p, hidden = state
        return v, p, hidden

    # -- tempered chains: annealing and parallel tempering along p_beta (see the module docstring) -----------

    def tempered_step(self, v, beta, seed, hidden_input=None):
        """One Gibbs sweep at inverse temperature beta (scalar or [n, 1]) on the RBM's own tempered path (the
        visible biases its base): h ~ sigmoid(beta (c' + v W)), v ~ sigmoid(b' + beta W h). Returns (v, p(v|h),
        the new v's hidden input c' + v W)."""
        hidden_input = self.hidden_input(v) if hidden_input is None else hidden_input
        b = self.visible_bias_folded()
        v, p = likelihood.tempered_sweep(
            hidden_input, beta, self.W, b, b,
            tf.random.stateless_uniform(tf.shape(hidden_input), tf.random.experimental.stateless_fold_in(seed, 0)),
            tf.random.stateless_uniform(tf.shape(v), tf.random.experimental.stateless_fold_in(seed, 1)))
        return v, p, self.hidden_input(v)

    def base_visible_states(self, rows, seed):
        """Exact samples of p_0: every pixel independent with probability sigmoid(b')."""
        p = tf.broadcast_to(tf.sigmoid(self.visible_bias_folded()), [rows, self.visible])
        return bernoulli(p, tf.random.stateless_uniform([rows, self.visible], seed))

    def anneal(self, num_chains, temperatures, seed):
        """Chains carried from beta = 0 (exact samples of the visible biases) to beta = 1, one Gibbs sweep per
        temperature: the path of AIS (Neal 2001). Each chain's log importance weight adds
        log p*_beta_k(v) - log p*_beta_k-1(v) = sum_j softplus(beta_k x_j) - softplus(beta_k-1 x_j),  x = c' + v W,
        before its sweep at beta_k. Returns (v, p(v|h) of the last sweep, log weights)."""
        betas = tf.constant(ais_temperatures(temperatures))
        v = self.base_visible_states(num_chains, tf.random.experimental.stateless_fold_in(seed, -1))

        def step(k, v, _, x, log_w):
            log_w += tf.reduce_sum(tf.nn.softplus(betas[k] * x) - tf.nn.softplus(betas[k - 1] * x), axis=1)
            v, p, x = self.tempered_step(v, betas[k], tf.random.experimental.stateless_fold_in(seed, k), x)
            return k + 1, v, p, x, log_w

        _, v, p, _, log_w = tf.while_loop(
            lambda k, *_: k < tf.shape(betas)[0], step,
            (tf.constant(1), v, tf.zeros_like(v), self.hidden_input(v), tf.zeros([num_chains])))
        return v, p, log_w

    def tempering_betas(self):
        """The ladder of parallel tempering, [temperatures, 1], from lowest_beta to 1:
        1 - beta_k = (1 - lowest_beta) (1 - k / (K - 1))^power, power 1 (linear) or 2 (quadratic). Swaps between
        beta and beta + d succeed about as often as the free energies' spread over d is small; it grows as the model
        sharpens near beta = 1, where a trained RBM's linear ladder stops swapping (docs/rbm.md)."""
        c = self.config
        power = 2.0 if c.ladder == "quadratic" else 1.0
        fraction_left = 1.0 - tf.range(c.temperatures, dtype=tf.float32) / (c.temperatures - 1)
        return (1.0 - (1.0 - c.lowest_beta) * fraction_left ** power)[:, None]

    def replica_exchange(self, hidden_input, parity, seed):
        """The swap moves of parallel tempering. Chains [temperatures * n, ...], block k at beta_k, with hidden
        inputs x = c' + v W: for every pair (k, k+1) with k % 2 == parity, the states of each column's two chains
        swap with probability min(1, p*_k(v_k+1) p*_k+1(v_k) / (p*_k(v_k) p*_k+1(v_k+1))), where the v.b' terms
        cancel and log p*_beta(v) leaves sum_j softplus(beta x_j). Returns (source [temperatures, n]: the block
        each block's new state comes from; per pair [temperatures - 1]: the fraction of its chains that swapped,
        and 1 where the pair was proposed, 0 where not)."""
        K, betas = self.config.temperatures, self.tempering_betas()
        n = tf.shape(hidden_input)[0] // K
        x = tf.reshape(hidden_input, [K, n, -1])

        def log_p(chains, chain_betas):  # sum_j softplus(beta x_j) of each chain of `chains` at its block's beta
            return tf.reduce_sum(tf.nn.softplus(chain_betas[:, :, None] * chains), axis=-1)

        own = log_p(x, betas)  # [K, n]: every chain at its own temperature
        log_ratio = log_p(x[1:], betas[:-1]) + log_p(x[:-1], betas[1:]) - own[:-1] - own[1:]  # [K - 1, n]
        k = tf.range(K - 1)
        active = tf.equal(k % 2, parity)[:, None]
        swap = active & (tf.math.log(tf.random.stateless_uniform([K - 1, n], seed)) < log_ratio)  # [K - 1, n]
        none = tf.zeros([1, n], tf.bool)  # block k takes k + 1 where (k, k+1) swaps, k - 1 where (k-1, k) does
        source = tf.range(K)[:, None] + tf.cast(tf.concat([swap, none], 0), tf.int32) - tf.cast(
            tf.concat([none, swap], 0), tf.int32)
        return source, tf.reduce_mean(tf.cast(swap, tf.float32), axis=1), tf.cast(active[:, 0], tf.float32)

    def tempering_sweeps(self, v, sweeps, seed, first_sweep=0):
        """Parallel tempering: v [temperatures * n, visible], block k at beta_k. Each sweep is one Gibbs step at
        every temperature, then the replica exchange of the sweep's parity (alternating). Returns (v, p(v|h) of
        the last sweep, per pair [temperatures - 1]: swaps accepted and proposed, summed over the sweeps)."""
        K = self.config.temperatures
        n = tf.shape(v)[0] // K
        row_betas = tf.repeat(self.tempering_betas(), n, axis=0)  # [K * n, 1]

        def sweep(i, v, _, x, accepted, proposed):
            v, p, x = self.tempered_step(v, row_betas, tf.random.experimental.stateless_fold_in(seed, 2 * i), x)
            source, swapped, active = self.replica_exchange(x, (first_sweep + i) % 2,
                                                            tf.random.experimental.stateless_fold_in(seed, 2 * i + 1))
            rows = tf.reshape(source * n + tf.range(n)[None], [-1])
            # gather forgets the row count, and tf.while_loop refuses a shape that changes between iterations
            v, p, x = (tf.ensure_shape(tf.gather(a, rows), a.shape) for a in (v, p, x))
            return i + 1, v, p, x, accepted + swapped, proposed + active

        no_pairs = tf.zeros([K - 1])
        _, v, p, _, accepted, proposed = tf.while_loop(
            lambda i, *_: i < sweeps, sweep,
            (tf.constant(0), v, tf.zeros_like(v), self.hidden_input(v), no_pairs, no_pairs))
        return v, p, (accepted, proposed)

    def persistent_starts(self, num_samples, blocks):
        """Starting states [blocks * num_samples, visible] copied from the persistent chains training left: block k
        (beta rising, beta = 1 last) row i is stored chain i mod `chains` of the same block. PT stores one block per
        temperature; PCD's one block (beta = 1), or PT's of another ladder length, starts every block."""
        stored = tf.reshape(self.chains.value, [-1, self.config.chains, self.visible])
        if stored.shape[0] != blocks:
            stored = tf.repeat(stored[-1:], blocks, axis=0)
        rows = tf.range(num_samples) % self.config.chains
        return tf.reshape(tf.gather(stored, rows, axis=1), [blocks * num_samples, self.visible])

    def recorded_chains(self, num_samples, seed, steps, method, every):
        """The persistent chains themselves run on, not copied: `steps` sweeps' worth of burn-in (tempering:
        steps // temperatures sweeps of every temperature), then p(v|h) of the beta = 1 block recorded every
        `every` sweeps until there are num_samples: one MCMC run, thinned. It costs
        burn-in + ceil(num_samples / chains) * every sweeps of the stored chains, where one copied chain per
        sample costs num_samples * burn-in; consecutive records of a chain are correlated, less so the larger
        `every`. A call for fewer samples than there are chains runs only the first num_samples chains of each
        temperature, once: generate, one sample(1, seed) per image, would otherwise run them all per image."""
        chains = tf.minimum(num_samples, self.config.chains)
        if method == "tempering":
            blocks = self.config.temperatures
            burn_in = max(1, steps // blocks)

            def run(v, sweeps, seed):
                return self.tempering_sweeps(v, sweeps, seed)[:2]
        else:
            blocks, burn_in = 1, steps

            def run(v, sweeps, seed):
                return self.gibbs(v, sweeps, seed)[:2]
        v, _ = run(self.persistent_starts(chains, blocks), burn_in, tf.random.experimental.stateless_fold_in(seed, 0))
        records = (num_samples + chains - 1) // chains

        def record(r, v, states):
            v, p = run(v, every, tf.random.experimental.stateless_fold_in(seed, r + 1))
            return r + 1, v, states.write(r, p[(blocks - 1) * chains:])

        _, _, states = tf.while_loop(lambda r, *_: r < records, record,
                                     (tf.constant(0), v, tf.TensorArray(tf.float32, size=records)))
        return tf.reshape(states.stack(), [-1, self.visible])[:num_samples]

    def starting_images(self, num_samples, seed, from_chains=False):
        """Where a Gibbs chain starts: uniformly random binary images, or copies of the persistent chains."""
        if from_chains:
            return self.persistent_starts(num_samples, 1)
        return random_binary([num_samples, self.visible], seed)

    def sample_visible(self, num_samples, seed, steps, method, resample=False, from_chains=False, every=0):
        """p(v|h) [num_samples, visible] at beta = 1 after `steps` sweeps' worth of the method's chains:
        gibbs: `steps` Gibbs steps from random v; annealed: `steps` temperatures (resample: chains drawn again in
        proportion to their importance weights); tempering: steps // temperatures sweeps of every temperature
        (the same number of Gibbs sweeps in all), returning the beta = 1 chains. from_chains: gibbs and tempering
        start at copies of the persistent chains (persistent_starts) instead of random states, or with
        every > 0, record the chains themselves as they run on (recorded_chains)."""
        if from_chains and every and method in ("gibbs", "tempering"):
            return self.recorded_chains(num_samples, seed, steps, method, every)
        if method == "gibbs":
            v = self.starting_images(num_samples, seed, from_chains)
            return self.gibbs(v, steps, tf.random.experimental.stateless_fold_in(seed, 1))[1]
        if method == "annealed":
            _, p, log_w = self.anneal(num_samples, steps, seed)
            if resample:
                chosen = tf.random.stateless_categorical(log_w[None], num_samples,
                                                         tf.random.experimental.stateless_fold_in(seed, 2))[0]
                p = tf.gather(p, chosen)
            return p
        if method == "tempering":
            K = self.config.temperatures
            v = (self.persistent_starts(num_samples, K) if from_chains
                 else self.base_visible_states(K * num_samples, seed))
            _, p, _ = self.tempering_sweeps(v, max(1, steps // K), tf.random.experimental.stateless_fold_in(seed, 1))
            return p[(K - 1) * num_samples:]
        raise ValueError(f"method must be one of {', '.join(RBMConfig.SAMPLERS)}, not {method!r}")

    # -- training ---------------------------------------------------------------------------------------------

    def call(self, images, training=False):
        """Reconstruction probabilities p(v | h = p(h|v)), flat [n, visible]."""
        return self.visible_probabilities(self.hidden_probabilities(tf.reshape(images, (-1, self.visible))))

    def negative_phase(self, v, h_data, seed):
        """The model's samples (v, p(h|v)) for the gradient's second term, and with parallel tempering its swap rates
        {name: (rate, proposals)} (cd and pcd: none)."""
        c = self.config
        if c.negative_phase == "cd":  # CD-k: the chains start at the data
            v_model, _, h_model = self.gibbs(v, c.cd_k, seed, hidden=h_data)
            return v_model, h_model, {}
        # Persistent chains: every replica runs all of them with the same noise, so all get the same negatives.
        if c.negative_phase == "pcd":
            v_model, _, h_model = self.gibbs(self.chains.value, c.cd_k, seed, split_across_replicas=False)
            self.chains.assign(v_model)
            return v_model, h_model, {}
        step = tf.cast(self.optimizer.iterations, tf.int32)
        chains, _, (accepted, proposed) = self.tempering_sweeps(self.chains.value, c.cd_k, seed,
                                                                first_sweep=step * c.cd_k)
        self.chains.assign(chains)
        v_model = chains[(c.temperatures - 1) * c.chains:]  # the beta = 1 block
        # Swap rates, each weighted by its proposals: over all pairs, and into beta = 1, the first to fall. A step
        # may propose none (2 temperatures, odd sweeps): its weight is 0, and its rate must not be 0/0 = NaN.
        swaps = {"swap_rate": (tf.reduce_sum(accepted) / tf.maximum(tf.reduce_sum(proposed), 1.0),
                               tf.reduce_sum(proposed)),
                 "top_swap_rate": (accepted[-1] / tf.maximum(proposed[-1], 1.0), proposed[-1])}
        return v_model, self.hidden_probabilities(v_model), swaps

    def train_step(self, images):
        v = tf.reshape(images, (-1, self.visible))
        seed = step_seed(self, stream=0)
        h_data = self.hidden_probabilities(v)  # positive phase: expectations, not samples, for lower variance
        v_model, h_model, swaps = self.negative_phase(v, h_data, seed)
        self.record_weighted(swaps)  # parallel tempering's swap rates: figures of its chains, not of the model
        variables = [self.W, self.visible_bias, self.hidden_bias]
        if self.config.centered:
            # The centered gradient: the same expectations about the offsets,
            #   dW = <(v - mu)(h - lambda)^T>_data - <(v - mu)(h - lambda)^T>_model,  db = <v>_d - <v>_m,  dc likewise.
            mu, lam = self.visible_offset, self.hidden_offset
            gradients = cd_gradient(v - mu, h_data - lam, v_model - mu, h_model - lam)
        else:
            gradients = cd_gradient(v, h_data, v_model, h_model)
        if num_replicas() > 1:  # Keras sums replicas' gradients: each replica's share is divided by their number
            gradients = [g / num_replicas() for g in gradients]
        self.optimizer.apply_gradients(zip(gradients, variables))
        if self.config.centered:
            # lambda slides towards the data's mean p(h|v); b moves by W (lambda_new - lambda) so that b' stays put.
            new_offset = ((1 - self.config.offset_rate) * self.hidden_offset
                          + self.config.offset_rate * replica_mean(tf.reduce_mean(h_data, axis=0)))
            self.visible_bias.assign_add(tf.linalg.matvec(self.W, new_offset - self.hidden_offset))
            self.hidden_offset.assign(new_offset)
        # The figures (of the updated model) would cost a quarter of the step: two more matrix products and three
        # softplus passes. They are computed on the steps whose logs fit returns, the last of each
        # steps_per_execution (every step when it is 1), so an epoch's training figures are means over an evenly
        # spread sample of its batches; the validation figures are over every batch.
        reports = self.optimizer.iterations % self.steps_per_execution == 0  # counts this step's update
        return self.record_when(reports, lambda: self.metric_values(v, seed))

    def test_step(self, images):
        v = tf.reshape(images, (-1, self.visible))
        figures = self.record(self.metric_values(v, tf.constant([self.seed, -1])))
        return {name: value for name, value in figures.items() if name not in self.TEMPERING_METRICS}

    def metric_values(self, v, seed):
        """Per-image figures of the batch v, from its hidden input c' + v W (computed once, reused)."""
        hidden_input = self.hidden_input(v)
        visible_bias = self.visible_bias_folded()
        # The mean-field reconstruction p(v | h = p(h|v)) through its logits x: cross-entropy sum(softplus(x) - v x).
        logits = tf.matmul(tf.sigmoid(hidden_input), self.W, transpose_b=True) + visible_bias
        free_energy = self.free_energy(v, hidden_input)
        # Stochastic pseudo-log-likelihood: visible * log sigmoid(F(v with unit i flipped) - F(v)), i random per
        # image. Flipping v_i changes the hidden input by (1 - 2 v_i) W_i: and the visible term by (1 - 2 v_i) b'_i.
        pixel = tf.random.stateless_uniform([tf.shape(v)[0]], tf.random.experimental.stateless_fold_in(seed, 99),
                                            0, self.visible, tf.int32)
        sign = 1.0 - 2.0 * tf.gather(v, pixel, batch_dims=1)
        flipped_input = hidden_input + sign[:, None] * tf.gather(self.W, pixel)
        flipped_free_energy = (-tf.linalg.matvec(v, visible_bias) - sign * tf.gather(visible_bias, pixel)
                               - tf.reduce_sum(tf.nn.softplus(flipped_input), axis=1))
        pseudo_log_likelihood = float(self.visible) * tf.math.log_sigmoid(flipped_free_energy - free_energy)
        return {
            "loss": -pseudo_log_likelihood,
            "reconstruction_mse": tf.reduce_sum(tf.square(v - tf.sigmoid(logits)), axis=1),
            "reconstruction_bce": tf.reduce_sum(tf.nn.softplus(logits) - v * logits, axis=1),
            "pseudo_log_likelihood": pseudo_log_likelihood,
            "free_energy": free_energy,
        }

    # -- the serving verbs ------------------------------------------------------------------------------------

    def parameters(self):
        """W and the ordinary RBM's biases (a centered RBM's offsets folded in): what AIS needs."""
        return {"weights": tf.identity(self.W), "visible_bias": tf.identity(self.visible_bias_folded()),
                "hidden_bias": tf.identity(self.hidden_bias_folded())}

    def encode(self, images):
        return {"latent": self.hidden_probabilities(tf.reshape(check_images(images), (-1, 784)))}

    def decode(self, latent):
        return tf.reshape(self.visible_probabilities(check_latent(latent, self.latent_dim)), (-1, 28, 28, 1))

    @compiled_verb
    def sample(self, num_samples, seed, steps=None, start=None, method=None, resample=False, every=None):
        """p(v|h) of `num_samples` chains after `steps` sweeps (config.sample_steps by default) of the sampler
        `method` (config.sampler by default: what the export's `sample` signature uses): "gibbs", "annealed" from
        the visible biases through `steps` temperatures (resample=True: chains redrawn by their importance
        weights), or "tempering" over config.temperatures temperatures (steps // temperatures sweeps).
        start (config.sample_start by default), for gibbs and tempering: "random" images (tempering: samples of
        the visible biases), "hidden" (gibbs only: random hidden states, whose p(v|h) is step 0), or "chains",
        copies of the persistent chains training left; with `every` N > 0 (for the chains, config.sample_every by
        default) the chains themselves run on and are recorded every N sweeps. steps=0 returns the gibbs start."""
        num_samples, seed = check_num_samples(num_samples, self.max_samples), seed_pair(seed, 0)
        steps = self.config.sample_steps if steps is None else steps
        method = method or self.config.sampler
        if start is None:  # the config's start; annealing, which has its own, ignores it
            start = "random" if method == "annealed" else self.config.sample_start
        start = "random" if start == "visible" else start  # "visible": the name before "chains" existed
        if every is None:
            every = self.config.sample_every if start == "chains" else 0
        if start not in self.START_NAMES:
            raise ValueError(f"start must be one of {', '.join(self.START_NAMES)}, not {start!r}")
        check_chain_sampling(start, method, every, self.config.negative_phase)
        if start == "hidden" or steps == 0:
            if method != "gibbs":
                raise ValueError("start='hidden' and steps=0 are Gibbs options")
            if start == "hidden":
                h = random_binary([num_samples, self.config.hidden], seed)
                if steps == 0:
                    return tf.reshape(self.visible_probabilities(h), (-1, 28, 28, 1))
                v = self.sample_v_given_h(h, tf.random.experimental.stateless_fold_in(seed, 2))
                p = self.gibbs(v, steps, tf.random.experimental.stateless_fold_in(seed, 1))[1]
            else:  # steps == 0: the starting state itself
                p = self.starting_images(num_samples, seed, from_chains=start == "chains")
        else:
            p = self.sample_visible(num_samples, seed, steps, method, resample, from_chains=start == "chains",
                                    every=every)
        return tf.reshape(p, (-1, 28, 28, 1))

    @compiled_verb
    def inpaint(self, images, mask, seed, masked_input_only=False):
        """The missing pixels by Gibbs sampling with the observed ones clamped (complete).

        masked_input_only=True is the assignments' variant: the missing pixels are 0 and the model is not told which
        they are; the chain runs unclamped from the masked image, and its mean replaces the missing pixels."""
        if not masked_input_only:
            return super().inpaint(images, mask, seed)
        images = check_images(images)
        observed = check_mask(mask, images) > 0.5
        return tf.where(observed, images, self.gibbs_mean(tf.where(observed, images, 0.0), None, seed))

    def complete(self, images, observed, seed):
        """The mean of p(v|h) over the second half of a Gibbs chain with the observed pixels clamped."""
        return self.gibbs_mean(tf.where(observed, images, 0.0), observed, seed)

    def gibbs_mean(self, images, observed, seed):
        """The mean of p(v|h) [n, 28, 28, 1] over the second half of inpaint_steps Gibbs steps from images, the
        pixels where `observed` holds clamped to their values in images (None: none)."""
        v = tf.reshape(images, (-1, 784))
        clamp = None if observed is None else (tf.reshape(observed, (-1, 784)), v)
        seed = seed_pair(seed, 1)

        def step(i, v):
            v, p, _ = self.gibbs(v, 1, tf.random.experimental.stateless_fold_in(seed, i), clamp)
            return v, p

        return tf.reshape(chain_mean(step, v, self.config.inpaint_steps), (-1, 28, 28, 1))
