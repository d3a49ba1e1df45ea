"""Deep belief network (Hinton, Osindero and Teh 2006): RBMs stacked greedily, then fine-tuned generatively by the
up-down algorithm, a contrastive form of wake-sleep.

A DBN with layers h_0 = v, h_1, ..., h_L is an RBM over the top pair (h_L-1, h_L) with directed sigmoid layers
below it, each with generative weights G_i (used going down) and recognition weights R_i (used going up):
    p(h_i = 1 | h_i+1) = sigmoid(h_i+1 G_i + g_i)          the model, i < L-1
    q(h_i+1 = 1 | h_i) = sigmoid(h_i R_i + r_i)            its approximate posterior
Greedy pretraining trains RBM i on the activities of layer i and sets R_i = W_i, G_i = W_i^T (tied weights).
Up-down fine-tuning unties them, each direction trained on the other's samples (delta rules, not one gradient):
    wake   h_i+1 ~ q(.|h_i) going up from the data;  G_i, g_i += lr * h_i+1^T (h_i - p(h_i | h_i+1))
    top    CD-k in the top RBM, started at the wake state of h_L-1 (top_phase: or k steps of its persistent
           chains, PCD; or the chains alone, the top RBM fixed)
    sleep  h_i ~ p(.|h_i+1) going down from the top RBM's negative state;
           R_i, r_i += lr * h_i^T (h_i+1 - q(h_i+1 | h_i))
As in the RBM, the negated updates go to a Keras optimizer (SGD with momentum), which applies them together.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import keras
import tensorflow as tf

from zoo.models.base import (ZooModel, chain_mean, check_fields, check_images, check_label, check_labels, check_latent,
                             check_num_samples, check_seeds, compiled_verb, cycled_labels, mean_trackers, num_replicas,
                             per_seed, positive, random_binary, replica_noise, seed_pair, step_seed)
from zoo.models.rbm import RBM, RBMConfig, bernoulli, cd_gradient


TOP_PHASES = ("cd", "pcd", "fixed")
LABELS = 10  # the label units of a DBN with labels: one softmax group, a digit


@dataclass
class DBNConfig:
    layers: tuple[int, ...] = field(default=(784, 100, 100), metadata={"help": "layer sizes, the images first"})
    cd_k: int = field(default=1, metadata={"help": "CD-k of greedy pretraining"})
    persistent: bool = field(default=False, metadata={"help": "PCD in greedy pretraining"})
    centered: bool = field(default=False, metadata={
        "help": "centered RBMs in greedy pretraining (Melchior et al. 2016); each is stacked as the ordinary RBM "
                "with its offsets folded in"})
    learning_rate: float = field(default=0.05, metadata={"help": "SGD learning rate of greedy pretraining"})
    learning_rate_decay: bool = field(default=False, metadata={
        "help": "decay greedy pretraining's learning rate linearly to 0 over each layer's epochs"})
    weight_decay: float = field(default=0.0, metadata={"help": "decoupled weight decay of greedy pretraining's SGD"})
    momentum: float = field(default=0.5, metadata={"help": "SGD momentum, both phases"})
    propagate: str = field(default="probabilities", metadata={
        "help": "what a trained layer passes up to the next in pretraining: probabilities or samples"})
    transpose_init: bool = field(default=False, metadata={
        "help": "start each RBM above the first at the one below it, reversed (W_i+1 = W_i^T; padded or truncated "
                "to its width), so the variational bound starts where the layer below left it (Hinton et al. "
                "2006); with --layers 784,N,784 the lab's W2 = W1^T variant"})
    fine_tune_epochs: int = field(default=10, metadata={"help": "epochs of up-down fine-tuning (0: greedy only)"})
    fine_tune_learning_rate: float = field(default=0.01, metadata={"help": "SGD learning rate of up-down"})
    top_cd_k: int = field(default=2, metadata={"help": "Gibbs steps in the top RBM during up-down"})
    top_phase: str = field(default="cd", metadata={
        "help": "the top RBM in up-down: cd (CD-k from the wake state, the paper's), pcd (k Gibbs steps on the "
                "persistent chains that PCD pretraining left) or fixed (not updated; its persistent chains still "
                "run, to start the sleep phase)"})
    sampler: str = field(default="gibbs", metadata={
        "help": "how sample draws the top RBM's state: gibbs, annealed or tempering (see the RBM's samplers)"})
    sample_steps: int = field(default=1000, metadata={"help": "Gibbs sweeps in the top RBM of sample"})
    inpaint_steps: int = field(default=50, metadata={"help": "up-top-down rounds of inpaint"})
    labels: bool = field(default=False, metadata={
        "help": "10 label units, one softmax group, join the top RBM's visible layer (Hinton et al. 2006): the DBN "
                "then trains on (image, label) pairs, generates a chosen digit and classifies"})

    def __post_init__(self):
        self.layers = tuple(self.layers)
        check_fields(
            self, layers=(lambda v: len(v) >= 3 and v[0] == 784 and positive(v),
                          "784 (the pixels) and at least two positive hidden sizes, e.g. 784,100,100"),
            sampler=(lambda v: v in RBMConfig.SAMPLERS, f"one of {', '.join(RBMConfig.SAMPLERS)}"),
            top_phase=(lambda v: v in TOP_PHASES, f"one of {', '.join(TOP_PHASES)}"),
            propagate=(lambda v: v in ("probabilities", "samples"), "probabilities or samples"),
            cd_k=(positive, "positive"), top_cd_k=(positive, "positive"), sample_steps=(positive, "positive"),
            inpaint_steps=(lambda v: v >= 2, "at least 2"),
            fine_tune_epochs=(lambda v: v >= 0, ">= 0 (0: greedy only)"),
            learning_rate=(positive, "positive"), fine_tune_learning_rate=(positive, "positive"),
            momentum=(lambda v: 0 <= v < 1, "in [0, 1)"), weight_decay=(lambda v: v >= 0, ">= 0"))
        if self.labels:  # the tempered samplers are the Bernoulli RBM's; the clamped label needs Gibbs sampling
            check_fields(self, sampler=(lambda v: v == "gibbs", "gibbs with labels"))

    def starts_reversed(self, layer):
        """Whether RBM `layer` (between layers `layer` and `layer` + 1) starts as the RBM below it, reversed."""
        return self.transpose_init and layer >= 1

    def rbm_config(self, layer):
        """The RBM that pretrains the weights between layer and layer + 1; the top one with the label units."""
        labels = LABELS if self.labels and layer == len(self.layers) - 2 else 0
        return RBMConfig(visible=self.layers[layer] + labels, hidden=self.layers[layer + 1], cd_k=self.cd_k,
                         negative_phase="pcd" if self.persistent else "cd", centered=self.centered,
                         learning_rate=self.learning_rate, learning_rate_decay=self.learning_rate_decay,
                         momentum=self.momentum, weight_decay=self.weight_decay, label_units=labels)


PRESETS = {
    "lab": dict(layers=(784, 100, 100)),  # the lab assignment's
    "hinton2006": dict(layers=(784, 500, 500, 2000)),  # the 2006 paper's, without its label units
    # The same layers, each trained as the zoo's best single RBM is (centered PCD-1, learning rate 0.02 decayed to 0,
    # weight decay 1e-4; docs/dbn.md).
    "hinton2006_centered": dict(layers=(784, 500, 500, 2000), persistent=True, centered=True, learning_rate=0.02,
                                learning_rate_decay=True, weight_decay=1e-4),
    "transposed": dict(layers=(784, 100, 784), transpose_init=True),  # the lab's W2 = W1^T variant
}
# hinton2006_centered with the upper layers trained on binary states, each started at the layer below it, reversed,
# as Hinton et al. (2006) start theirs: the zoo's best DBN (docs/dbn.md).
PRESETS["hinton2006_reversed"] = dict(PRESETS["hinton2006_centered"], propagate="samples", transpose_init=True)
# The same with the 2006 paper's 10 label units in the top RBM: it generates a chosen digit and classifies.
PRESETS["hinton2006_labels"] = dict(PRESETS["hinton2006_reversed"], labels=True)


@keras.saving.register_keras_serializable(package="zoo")
class DBN(ZooModel):
    """Deep belief network: greedily stacked RBMs, then up-down (wake-sleep) fine-tuning."""

    KIND = "dbn"
    Config = DBNConfig
    SIGNATURES = ("sample", "generate", "reconstruct", "encode", "decode", "inpaint", "parameters")
    DATA = dict(binarize="dynamic")
    PRESETS = PRESETS
    SAMPLING_SETTINGS = ("sampler", "sample_steps", "inpaint_steps")
    # `loss` (what Keras callbacks monitor by default) is reconstruction_mse: up-down has no single objective.
    METRICS = ("loss", "reconstruction_mse", "top_reconstruction_mse", "wake_error", "sleep_error")

    def __init__(self, config=None, seed=0, **kwargs):
        super().__init__(config, seed, **kwargs)
        sizes = self.config.layers
        normal = keras.initializers.RandomNormal(stddev=0.01)
        self.recognition, self.recognition_bias, self.generative, self.generative_bias = [], [], [], []
        for i, (below, above) in enumerate(zip(sizes[:-2], sizes[1:-1])):
            self.recognition.append(self.add_weight(shape=(below, above), initializer=normal, name=f"R{i}"))
            self.recognition_bias.append(self.add_weight(shape=(above,), initializer="zeros", name=f"r{i}"))
            self.generative.append(self.add_weight(shape=(above, below), initializer=normal, name=f"G{i}"))
            self.generative_bias.append(self.add_weight(shape=(below,), initializer="zeros", name=f"g{i}"))
        # The top RBM is an ordinary one: a centered top layer is copied in with its offsets folded.
        top = dataclasses.replace(self.config.rbm_config(len(sizes) - 2), centered=False)
        self.top = RBM(top, seed=seed, name="top_rbm")
        if self.config.labels:  # a conditional model: its verbs take the class, and it classifies
            self.trackers.update(mean_trackers(["label_error"]))
            object.__setattr__(self, "CONDITIONAL", True)
            object.__setattr__(self, "SIGNATURES", ("sample", "generate", "encode", "decode", "classify", "parameters"))

    @classmethod
    def data_settings(cls, config):
        return dict(cls.DATA, labels=config.labels)

    def with_labels(self, top_states, labels):
        """The top RBM's visible states: the layer below it, and with label units the one-hot labels."""
        if not self.config.labels:
            return top_states
        return tf.concat([top_states, tf.one_hot(labels, LABELS, dtype=top_states.dtype)], axis=1)

    def without_labels(self, top_visible):
        """The top RBM's visible states less their label units: what the generative pass goes down from."""
        return top_visible[:, :-LABELS] if self.config.labels else top_visible

    def label_probabilities(self, top_states):
        """p(y | h_L-1) [n, 10]: the softmax over the labels y of -F(h_L-1, y), the top RBM's free energy of the
        state with each label (Hinton et al. 2006). The terms of h_L-1 alone cancel, leaving
            -F(h, y) = b_y + sum_j softplus(x_j + W_yj) + const,  x = c + h W_h,
        one matmul for all ten labels."""
        W, b, c = self.top.W, self.top.visible_bias, self.top.hidden_bias  # the top RBM is an uncentered one
        x = tf.matmul(top_states, W[:-LABELS]) + c  # [n, hidden]
        scores = b[-LABELS:] + tf.reduce_sum(tf.nn.softplus(x[:, None, :] + W[-LABELS:][None]), axis=-1)
        return tf.nn.softmax(scores, axis=-1)

    def top_data(self, top_states, labels=None):
        """The top RBM's visible state of an up pass's top_states: with label units, joined by `labels` (None: the
        most probable ones)."""
        if not self.config.labels:
            return top_states
        if labels is None:
            labels = tf.argmax(self.label_probabilities(top_states), axis=-1, output_type=tf.int32)
        return self.with_labels(top_states, labels)

    @property
    def latent_dim(self):
        return self.config.layers[-1]

    def default_optimizer(self, total_steps=None):
        return keras.optimizers.SGD(self.config.fine_tune_learning_rate, momentum=self.config.momentum)

    # -- greedy pretraining -----------------------------------------------------------------------------------

    def pretrain(self, fit_stage):
        """Train the layers' RBMs one after the other, each through fit_stage(name, rbm, transform): a `fit` of
        its own (logs, checkpoints) on the image batches mapped by transform(images, batch_index) to the
        activities of the layer below. Then copy them in, tied: R_i = W_i, G_i = W_i^T."""
        lower = []  # (W, c) of the trained layers, as constants for the data pipeline
        below = None  # the RBM trained last
        for layer in range(len(self.config.layers) - 1):
            rbm = RBM(self.config.rbm_config(layer), seed=self.seed + layer)
            rbm.build_for_images()
            if self.config.starts_reversed(layer):
                self.start_reversed(rbm, below, seed=tf.constant([self.seed, layer]))
            top = layer == len(self.config.layers) - 2
            fit_stage(f"layer{layer + 1}", rbm, self.greedy_transform(lower, with_labels=top and self.config.labels))
            below = rbm
            trained = rbm.parameters()  # W and the ordinary RBM's biases (a centered RBM's offsets folded in)
            W, visible_bias, hidden_bias = trained["weights"], trained["visible_bias"], trained["hidden_bias"]
            if layer < len(self.config.layers) - 2:
                self.recognition[layer].assign(W)
                self.recognition_bias[layer].assign(hidden_bias)
                self.generative[layer].assign(tf.transpose(W))
                self.generative_bias[layer].assign(visible_bias)
                lower.append((tf.constant(W.numpy()), tf.constant(hidden_bias.numpy())))
            else:
                for mine, value in ((self.top.W, W), (self.top.visible_bias, visible_bias),
                                    (self.top.hidden_bias, hidden_bias), (self.top.chains, rbm.chains)):
                    mine.assign(value)

    @staticmethod
    def start_reversed(rbm, below, seed):
        """Start `rbm` at the RBM below it with the layers swapped: W = W_below^T, b' = c'_below, c' = b'_below.
        Its marginal over its visible units is then the one the model below puts on its hidden units,
            -F(h) = c'_below h + sum_i softplus(x_i),  x_i = b'_below,i + W_i h  (i: the units below),
        so the DBN's variational bound starts where the model below left it and training the new layer can raise
        it (Hinton et al. 2006, section 4). Where the new layer is wider, the extra hidden units get weights of
        N(0, 0.001), to break their symmetry, and bias 0: each adds softplus(h w_j) ~ log 2 + h w_j / 2, and the
        visible biases take the h w_j / 2 back. Where it is narrower, it keeps the units i whose terms bend most
        over the states h the model below visits (sigmoid'(mean x_i) var x_i, on states drawn from its chains)
        and replaces the others by their tangents at mean x_i, sigmoid(mean x_i) W_i h, folded into the visible
        biases: both marginals are then the reversed RBM's up to second-order terms. Persistent chains start at
        those states, drawn from p(h | v) of the chains below. Label units (a labelled top RBM) start with weights
        and biases 0: uniform, independent of h, which keeps the marginal over h."""
        ordinary = below.parameters()
        W, b, c = ordinary["weights"], ordinary["visible_bias"], ordinary["hidden_bias"]  # W: [below, h]
        v, _, _ = below.gibbs(below.chains.value, 10, seed, split_across_replicas=False)
        p = below.hidden_probabilities(v)
        h = bernoulli(p, tf.random.stateless_uniform(tf.shape(p), tf.random.experimental.stateless_fold_in(seed, 1)))
        hidden, units_below = rbm.config.hidden, W.shape[0]
        if hidden >= units_below:
            extra = tf.random.stateless_normal((W.shape[1], hidden - units_below), seed, stddev=0.001)
            weights = tf.concat([tf.transpose(W), extra], axis=1)
            visible_bias = c - 0.5 * tf.reduce_sum(extra, axis=1)
            hidden_bias = tf.concat([b, tf.zeros([hidden - units_below])], axis=0)
        else:
            x = tf.matmul(h, W, transpose_b=True) + b  # [chains, below]
            mean = tf.reduce_mean(x, axis=0)
            bend = tf.sigmoid(mean) * tf.sigmoid(-mean) * tf.math.reduce_variance(x, axis=0)
            kept = tf.sort(tf.math.top_k(bend, hidden).indices)
            tangent = tf.tensor_scatter_nd_update(tf.sigmoid(mean), kept[:, None], tf.zeros([hidden]))
            weights = tf.transpose(tf.gather(W, kept))
            visible_bias = c + tf.linalg.matvec(W, tangent, transpose_a=True)
            hidden_bias = tf.gather(b, kept)
        labels = rbm.config.label_units  # label units start unconnected, uniform: the marginal over h is the same
        if labels:
            weights = tf.concat([weights, tf.zeros([labels, hidden])], axis=0)
            visible_bias = tf.concat([visible_bias, tf.zeros([labels])], axis=0)
            h = tf.concat([h, tf.one_hot(tf.range(tf.shape(h)[0]) % labels, labels)], axis=1)
        rbm.start_at(weights, visible_bias, hidden_bias)
        if rbm.config.negative_phase != "cd" and rbm.chains.shape[0] == h.shape[0]:
            rbm.chains.assign(h)

    def greedy_transform(self, lower, with_labels=False):
        """images (or (images, labels) of a labelled DBN), batch index -> the activities of the layer above `lower`
        (probabilities, or samples drawn from (seed, layer, batch index)), with_labels: joined by the one-hot
        labels, the top RBM's data."""
        samples = self.config.propagate == "samples"
        seed = self.seed

        def transform(batch, index):
            images, labels = batch if isinstance(batch, tuple) else (batch, None)
            h = tf.reshape(images, (-1, 784))
            for layer, (W, c) in enumerate(lower):
                h = tf.sigmoid(tf.matmul(h, W) + c)
                if samples:
                    key = tf.random.experimental.stateless_fold_in(tf.constant([seed, layer], tf.int64), index)
                    h = bernoulli(h, tf.random.stateless_uniform(tf.shape(h), key))
            return tf.concat([h, tf.one_hot(labels, LABELS, dtype=h.dtype)], axis=1) if with_labels else h

        return transform

    # -- passes -----------------------------------------------------------------------------------------------

    def up(self, v, seed=None):
        """Recognition pass to the top RBM's visible layer: the states of every layer (samples if seeded, else
        probabilities), v first."""
        states = [v]
        for i, (R, r) in enumerate(zip(self.recognition, self.recognition_bias)):
            p = tf.sigmoid(tf.matmul(states[-1], R) + r)
            states.append(p if seed is None else bernoulli(p, replica_noise(
                tf.shape(p), tf.random.experimental.stateless_fold_in(seed, i), tf.random.stateless_uniform)))
        return states

    def down(self, h, seed=None):
        """Generative pass from the top RBM's visible layer to the pixels: every layer's states (samples if
        seeded, probabilities at the pixels and everywhere if not), top first; the last is p(v|h_1)."""
        states = [h]
        for i in reversed(range(len(self.generative))):
            p = tf.sigmoid(tf.matmul(states[-1], self.generative[i]) + self.generative_bias[i])
            if seed is not None and i > 0:
                p = bernoulli(p, replica_noise(tf.shape(p), tf.random.experimental.stateless_fold_in(seed, i),
                                               tf.random.stateless_uniform))
            states.append(p)
        return states

    # -- up-down fine-tuning ----------------------------------------------------------------------------------

    def call(self, images, training=False):
        """Mean-field reconstruction: up with probabilities, through the top RBM (with the most probable labels),
        down; flat [n, 784]."""
        top_visible = self.top.call(self.top_data(self.up(tf.reshape(images, (-1, 784)))[-1]))
        return self.down(self.without_labels(top_visible))[-1]

    def wake_phase(self, v, seed):
        """Sample up with R; each generative layer learns to predict the layer below from the one above.
        Returns (negated updates of G and g by variable path, wake states, per-image prediction error)."""
        wake = self.up(v, seed)
        updates, error_sum = {}, 0.0
        for i in range(len(self.generative)):
            error = wake[i] - tf.sigmoid(tf.matmul(wake[i + 1], self.generative[i]) + self.generative_bias[i])
            updates[self.generative[i].path] = -tf.matmul(wake[i + 1], error, transpose_a=True) / _rows(v)
            updates[self.generative_bias[i].path] = -tf.reduce_mean(error, axis=0)
            error_sum += tf.reduce_sum(tf.square(error), axis=1)
        return updates, wake, error_sum

    def top_phase(self, top_visible, seed):
        """The top RBM's step, from the wake state of its visible layer. Returns (negated updates of the top RBM,
        the negative visible state the sleep phase starts from, p(v|h) of the top RBM's last step).

        cd: CD-k from the wake state, as in the paper. pcd: k Gibbs steps on the persistent chains instead (every
        replica runs them all with the same noise, as the RBM's PCD does). fixed: the same chains run, to start
        the sleep phase from the model's samples, but the top RBM is not updated. The reconstruction is CD's
        last p(v|h) for cd, and the mean-field p(v | p(h | wake state)) for the others (the chains' own is of no
        batch image)."""
        top, c = self.top, self.config
        h_data = top.hidden_probabilities(top_visible)
        if c.top_phase == "cd":
            negative, reconstruction, h_model = top.gibbs(top_visible, c.top_cd_k, seed, hidden=h_data)
        else:
            negative, _, h_model = top.gibbs(top.chains.value, c.top_cd_k, seed, split_across_replicas=False)
            top.chains.assign(negative)
            reconstruction = top.visible_probabilities(h_data)
        if c.top_phase == "fixed":
            return {}, negative, reconstruction
        gradients = cd_gradient(top_visible, h_data, negative, h_model)
        updates = {v.path: g for v, g in zip((top.W, top.visible_bias, top.hidden_bias), gradients)}
        return updates, negative, reconstruction

    def sleep_phase(self, top_visible, seed):
        """Sample down with G from a top-RBM state (probabilities at the pixels, as in the paper); each recognition
        layer learns to predict the layer above from the one below. Returns (negated updates of R and r, sleep
        states pixels first, per-image prediction error)."""
        sleep = self.down(top_visible, seed)[::-1]
        updates, error_sum = {}, 0.0
        for i in range(len(self.recognition)):
            error = sleep[i + 1] - tf.sigmoid(tf.matmul(sleep[i], self.recognition[i]) + self.recognition_bias[i])
            updates[self.recognition[i].path] = -tf.matmul(sleep[i], error, transpose_a=True) / _rows(top_visible)
            updates[self.recognition_bias[i].path] = -tf.reduce_mean(error, axis=0)
            error_sum += tf.reduce_sum(tf.square(error), axis=1)
        return updates, sleep, error_sum

    def up_down(self, v, seed, labels=None):
        """One up-down pass over a batch: (negated updates by variable path, per-image error figures). With label
        units, the top RBM's data are the wake state and the labels; its negative state goes down without them."""
        fold = lambda stream: tf.random.experimental.stateless_fold_in(seed, stream)  # noqa: E731
        wake_updates, wake, wake_error = self.wake_phase(v, fold(1))
        top_updates, negative, top_reconstruction = self.top_phase(self.with_labels(wake[-1], labels), fold(2))
        sleep_updates, sleep, sleep_error = self.sleep_phase(self.without_labels(negative), fold(3))
        top_reconstruction = self.without_labels(top_reconstruction)
        # The reconstruction: cd's sleep pass starts at the data's own negative state; the chains' does not, so
        # pcd and fixed take a down pass (probabilities) from the top RBM's mean-field reconstruction instead.
        reconstruction = sleep[0] if self.config.top_phase == "cd" else self.down(top_reconstruction)[-1]
        reconstruction_error = tf.reduce_sum(tf.square(v - reconstruction), axis=1)
        errors = {
            "loss": reconstruction_error,
            "reconstruction_mse": reconstruction_error,
            "top_reconstruction_mse": tf.reduce_sum(tf.square(wake[-1] - top_reconstruction), axis=1),
            "wake_error": wake_error, "sleep_error": sleep_error,
        }
        if self.config.labels:  # the label the top RBM gives the (sampled) wake state: what classify does
            guess = tf.argmax(self.label_probabilities(wake[-1]), axis=-1, output_type=tf.int32)
            errors["label_error"] = tf.cast(guess != labels, tf.float32)
        return {**wake_updates, **top_updates, **sleep_updates}, errors

    def train_step(self, data):
        images, labels = self.split_batch(data)
        updates, errors = self.up_down(tf.reshape(images, (-1, 784)), step_seed(self, stream=0), labels)
        self.apply_updates(updates)
        return self.record(errors)

    def apply_updates(self, updates):
        """Negated updates by variable path -> the optimizer. Keras sums replicas' gradients: divide."""
        scale = 1.0 / num_replicas()  # no multiply on one device: a pass over every weight matrix for nothing
        self.optimizer.apply_gradients([(scale * updates[v.path] if scale != 1 else updates[v.path], v)
                                        for v in self.trainable_variables if v.path in updates])

    def test_step(self, data):
        images, labels = self.split_batch(data)
        _, errors = self.up_down(tf.reshape(images, (-1, 784)), tf.constant([self.seed, -1]), labels)
        return self.record(errors)  # per-image values: exact epoch means

    # -- the serving verbs ------------------------------------------------------------------------------------

    def parameters(self):
        out = {"top_weights": tf.identity(self.top.W), "top_visible_bias": tf.identity(self.top.visible_bias),
               "top_hidden_bias": tf.identity(self.top.hidden_bias)}
        for i in range(len(self.generative)):
            out.update({f"recognition_{i}": tf.identity(self.recognition[i]),
                        f"recognition_bias_{i}": tf.identity(self.recognition_bias[i]),
                        f"generative_{i}": tf.identity(self.generative[i]),
                        f"generative_bias_{i}": tf.identity(self.generative_bias[i])})
        return out

    @compiled_verb
    def encode(self, images, labels=None):
        """Top-layer probabilities after a recognition pass with probabilities (with label units, under each image's
        label: None, the label `classify` finds)."""
        v = tf.reshape(check_images(images), (-1, 784))
        if labels is not None and self.config.labels:
            labels = check_labels(labels, LABELS, v)
        return {"latent": self.top.hidden_probabilities(self.top_data(self.up(v)[-1], labels))}

    @compiled_verb
    def decode(self, latent, labels=None):
        """Pixel probabilities of a top state: p(h_L-1 | h_L) in the top RBM, then down with probabilities. (The
        label units are independent of the layers below given h_L: labels are accepted, for the contract, and
        unused.)"""
        latent = check_latent(latent, self.latent_dim)
        if labels is not None:
            check_labels(labels, LABELS, latent)
        return tf.reshape(self.down(self.without_labels(self.top.visible_probabilities(latent)))[-1], (-1, 28, 28, 1))

    @compiled_verb
    def classify(self, images):
        """p(y|x) [n, 10] of a DBN with label units: up with probabilities, then the softmax over the labels of
        -F(h, y), the top RBM's free energy of the top state with each label (Hinton et al. 2006)."""
        if not self.config.labels:
            raise ValueError("this DBN has no label units; train one with --labels")
        return self.label_probabilities(self.up(tf.reshape(check_images(images), (-1, 784)))[-1])

    @compiled_verb
    def reconstruct(self, images, steps=0, seed=0):
        """Up with probabilities, `steps` Gibbs steps in the top RBM (0: its mean-field p(h_L-1 | p(h_L | .))),
        down with probabilities; the serving signature uses steps=0, so it is deterministic."""
        if steps == 0:
            return self.decode(self.encode(images)["latent"])
        top_visible = self.top_data(self.up(tf.reshape(check_images(images), (-1, 784)))[-1])
        _, top_visible, _ = self.top.gibbs(top_visible, steps, seed_pair(seed, 3))
        return tf.reshape(self.down(self.without_labels(top_visible))[-1], (-1, 28, 28, 1))

    @compiled_verb
    def sample(self, num_samples, seed, steps=None, method=None, resample=False, label=None):
        """A state of the top RBM's visible layer, then a generative pass down with probabilities. The top state:
        with method "gibbs" (config.sampler by default), `steps` Gibbs steps (config.sample_steps) from a uniformly
        random top state; "annealed" or "tempering": the RBM's samplers at the same compute (RBM.sample_visible).
        With label units, the Gibbs chain runs with them clamped to `label` (None: 0, 1, ..., 9 in turn)."""
        num_samples, seed = check_num_samples(num_samples, self.max_samples), seed_pair(seed, 0)
        steps = self.config.sample_steps if steps is None else steps
        method = method or self.config.sampler
        if method != "gibbs":
            if self.config.labels:
                raise ValueError(f"sample: method {method!r} of a DBN with labels; its label is clamped in a Gibbs "
                                 "chain, use method='gibbs'")
            top_visible = self.top.sample_visible(num_samples, seed, steps, method, resample)
            return tf.reshape(self.down(top_visible)[-1], (-1, 28, 28, 1))
        h = random_binary([num_samples, self.top.config.hidden], seed)
        top_visible = self.top.visible_probabilities(h)
        clamp = None
        if self.config.labels:
            labels = (cycled_labels(num_samples, LABELS) if label is None
                      else tf.fill([num_samples], check_label(label, LABELS)))
            values = self.with_labels(tf.zeros_like(self.without_labels(top_visible)), labels)
            is_label = tf.range(self.top.visible) >= self.top.visible - LABELS
            clamp = (is_label[None, :], values)
            top_visible = tf.where(clamp[0], clamp[1], top_visible)
        if steps > 0:
            start = self.top.visible_states(top_visible, tf.random.stateless_uniform(
                tf.shape(top_visible), tf.random.experimental.stateless_fold_in(seed, 1)))
            start = start if clamp is None else tf.where(clamp[0], clamp[1], start)
            _, top_visible, _ = self.top.gibbs(start, steps, tf.random.experimental.stateless_fold_in(seed, 2), clamp)
        return tf.reshape(self.down(self.without_labels(top_visible))[-1], (-1, 28, 28, 1))

    @compiled_verb
    def generate(self, seeds, labels=None):
        """One image per seed, sample(1, seed) (with label units: of the label beside it, None: 0, 1, ..., 9 in
        turn)."""
        seeds = check_seeds(seeds, self.max_samples)
        if not self.config.labels:
            return per_seed(seeds, lambda seed: self.sample(1, seed)[0])
        labels = cycled_labels(tf.size(seeds), LABELS) if labels is None else check_labels(labels, LABELS, seeds)
        return tf.map_fn(lambda pair: self.sample(1, pair[0], label=pair[1])[0], tf.stack([seeds, labels], axis=1),
                         fn_output_signature=tf.TensorSpec([28, 28, 1], tf.float32))

    def complete(self, images, observed, seed):
        """Rounds of: up (sampled), one Gibbs step in the top RBM, down (probabilities), the observed pixels
        clamped; the mean over the second half of the rounds."""
        observed, x = tf.reshape(observed, (-1, 784)), tf.reshape(images, (-1, 784))
        seed = seed_pair(seed, 1)

        def inpaint_round(i, v):
            s = tf.random.experimental.stateless_fold_in(seed, i)
            _, top_visible, _ = self.top.gibbs(self.top_data(self.up(v, s)[-1]), 1,
                                               tf.random.experimental.stateless_fold_in(s, 100))
            p = self.down(self.without_labels(top_visible))[-1]
            return tf.where(observed, x, p), p

        return tf.reshape(chain_mean(inpaint_round, tf.where(observed, x, 0.0), self.config.inpaint_steps),
                          (-1, 28, 28, 1))


def _rows(x):
    return tf.cast(tf.shape(x)[0], tf.float32)
