"""Training speed, next to what this machine can do, measured in one run.

    python -m zoo.bench vae [--batch-size 128 --epochs 4]
    python -m zoo.bench rbm --batch-size 100    (scikit-learn's BernoulliRBM too: pip install -r requirements-bench.txt)
    python -m zoo.bench dbn                      (up-down fine-tuning against CD-1 on the same layers)
    python -m zoo.bench dcgan [--limit 10000]    (the lab's DCGAN, one D and one G update per batch of 100; a plain
                                                 Keras DCGAN of the same layers as the baseline; the zoo's with EMA)
    python -m zoo.bench quality [--models vae,rbm,gan]   (the training seconds to a stated quality: the
                                                 likelihood VAE's validation -ELBO, the PCD RBM's test NLL, the MLP
                                                 GAN's Fréchet distance)
    python -m zoo.bench serve EXPORT ... [--threads 1,8 --seconds 5 --batch 16]   (serving, see below)

The training benchmarks print a table: float32 matrix-multiply GFLOP/s (a large square GEMM and the model's own
shapes), the input pipeline alone, the zoo's model trained through zoo.train's settings, and a straightforward
Keras implementation of the same model (the keras.io example's pattern) as a baseline. Throughput is the median
over the epochs after the first (which includes tracing and compilation); `rbm` takes its rows in turns, an epoch of
each per round with the GEMM references measured again every round, and gives medians over the rounds. Not a test:
run it on an otherwise idle machine.

`serve` loads each export in a process of its own that imports TensorFlow and not zoo (zoo/serving_load.py), calls
every signature from 1 and from N threads at once for a fixed time, and prints requests/s, images/s, p50/p99
latency and errors, then what a request for 10**7 samples gets, and the process's peak memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from zoo import cli, data, export, train
from zoo.models.vae import VAE, VAEConfig


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


class SteadyEpochTimer(EpochTimer):
    """Seconds per epoch, timed from the end of the epoch's first compiled call and scaled to the whole epoch: a new
    fit's first call waits for a fresh iterator to fill, which one long fit pays only once. An epoch of a single
    call has nothing after its first: it is timed whole, as EpochTimer does."""
    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self.marks = []

    def on_train_batch_end(self, batch, logs=None):
        self.marks.append((batch, time.perf_counter()))  # batch: the last step of the call

    def on_epoch_end(self, epoch, logs=None):
        if len(self.marks) < 2:
            return super().on_epoch_end(epoch, logs)
        (first_step, started), (last_step, ended) = self.marks[0], self.marks[-1]
        self.seconds.append((ended - started) * (last_step + 1) / (last_step - first_step))


def gemm_gflops(m, k, n, seconds=2.0):
    """float32 GFLOP/s of [m, k] @ [k, n], repeated in a compiled loop so dispatch does not count."""
    a, b = tf.random.normal([m, k]), tf.random.normal([k, n])

    @tf.function
    def repeat(times):
        total = tf.zeros([m, n])
        for _ in tf.range(times):
            total += tf.matmul(a, b)
        return total

    return looped_gflops(repeat, 2.0 * m * k * n, seconds)


def looped_gflops(repeat, flops_per_round, seconds):
    """GFLOP/s of repeat(rounds), a compiled loop: after a warm-up, rounds grow 4x until a call takes seconds / 4."""
    repeat(tf.constant(2)).numpy()
    rounds = 4
    while True:
        started = time.perf_counter()
        repeat(tf.constant(rounds)).numpy()
        elapsed = time.perf_counter() - started
        if elapsed > seconds / 4:
            return flops_per_round * rounds / elapsed / 1e9
        rounds *= 4


def pipeline_rate(pipelines, steps):
    iterator = iter(pipelines.train)
    for _ in range(10):
        next(iterator)
    started = time.perf_counter()
    images = sum(int(next(iterator).shape[0]) for _ in range(steps))
    return images / (time.perf_counter() - started)


# -- the baseline: the keras.io VAE example's pattern, as an MLP -------------------------------------------------


class Sampling(keras.layers.Layer):
    def call(self, inputs):
        mean, log_var = inputs
        return mean + tf.exp(0.5 * log_var) * tf.random.normal(tf.shape(mean))


class BaselineVAE(keras.Model):
    def __init__(self, latent_dim=2, hidden=256):
        super().__init__()
        inputs = keras.Input((784,))
        h = keras.layers.Dense(hidden, activation="relu")(inputs)
        mean, log_var = keras.layers.Dense(latent_dim)(h), keras.layers.Dense(latent_dim)(h)
        self.encoder = keras.Model(inputs, [mean, log_var, Sampling()([mean, log_var])])
        z = keras.Input((latent_dim,))
        self.decoder = keras.Model(z, keras.layers.Dense(784, activation="sigmoid")(
            keras.layers.Dense(hidden, activation="relu")(z)))
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def train_step(self, x):
        with tf.GradientTape() as tape:
            mean, log_var, z = self.encoder(x)
            reconstruction = self.decoder(z)
            bce = tf.reduce_mean(tf.reduce_sum(
                keras.losses.binary_crossentropy(x[..., None], reconstruction[..., None]), axis=1))
            kl = tf.reduce_mean(-0.5 * tf.reduce_sum(1 + log_var - tf.square(mean) - tf.exp(log_var), axis=1))
            loss = bce + kl
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


def timed_fit(model, epochs, **fit_kwargs):
    timer = EpochTimer()
    model.fit(epochs=epochs, callbacks=[timer], verbose=0, **{"shuffle": False, **fit_kwargs})
    return statistics.median(timer.seconds[1:])


def bench_vae(batch_size, epochs):
    config = VAEConfig()  # the standard 784-256-2-256-784 ReLU VAE
    keras.utils.set_random_seed(0)
    pipelines = data.datasets(data.DataConfig(batch_size=batch_size))
    n = len(pipelines.splits.train)
    rows = [
        ("float32 GEMM 2048x2048x2048", f"{gemm_gflops(2048, 2048, 2048):.0f} GFLOP/s", ""),
        (f"float32 GEMM at the VAE's shapes ({batch_size}x784 @ 784x256)",
         f"{gemm_gflops(batch_size, 784, 256):.0f} GFLOP/s", ""),
        ("input pipeline alone", f"{pipeline_rate(pipelines, 3 * pipelines.steps_per_epoch):,.0f} img/s", ""),
    ]
    # Multiply-adds of one forward pass, times 2 FLOPs, times ~3 for forward + both backward products.
    forward = sum(a * b for a, b in [(784, 256), (256, 2 * config.latent_dim), (config.latent_dim, 256), (256, 784)])
    flops_per_image = 3 * 2 * forward

    steps, jit = train.execution_settings(VAE, pipelines.steps_per_epoch, 1)
    model = VAE(config)
    model.compile(steps_per_execution=steps, jit_compile=jit)
    seconds = timed_fit(model, epochs, x=pipelines.train, steps_per_epoch=pipelines.steps_per_epoch)
    rows.append((f"zoo VAE, batch {batch_size} ({steps} steps per call, XLA {'on' if jit else 'off'})",
                 f"{n / seconds:,.0f} img/s",
                 f"{seconds:.2f} s/epoch, {n / seconds * flops_per_image / 1e9:.0f} GFLOP/s"))

    model = VAE(config)
    model.compile()
    seconds = timed_fit(model, epochs, x=pipelines.train, steps_per_epoch=pipelines.steps_per_epoch)
    rows.append((f"zoo VAE, batch {batch_size} (Keras defaults: 1 step per call, no XLA)", f"{n / seconds:,.0f} img/s",
                 f"{seconds:.2f} s/epoch"))

    # The importance-weighted bound: the encoder once, the decoder k times per image.
    for k in (5, 50):
        model = VAE(dataclasses.replace(config, importance_samples=k))
        model.compile(steps_per_execution=steps, jit_compile=jit)
        seconds = timed_fit(model, epochs, x=pipelines.train, steps_per_epoch=pipelines.steps_per_epoch)
        rows.append((f"zoo VAE, importance-weighted bound k = {k} (as the first row)", f"{n / seconds:,.0f} img/s",
                     f"{seconds:.2f} s/epoch"))

    images = pipelines.splits.train.images.reshape(n, 784).astype(np.float32) / 255.0
    baseline = BaselineVAE()
    baseline.compile(optimizer=keras.optimizers.Adam(1e-3))
    seconds = timed_fit(baseline, epochs, x=images, batch_size=batch_size, shuffle=True)
    rows.append((f"baseline: keras.io-style VAE on NumPy arrays, batch {batch_size}", f"{n / seconds:,.0f} img/s",
                 f"{seconds:.2f} s/epoch"))
    return rows, f"training on {n:,} MNIST images; {flops_per_image / 1e6:.1f} MFLOP per training image"


# -- the RBM: the zoo's CD-1 and PCD-1 against scikit-learn and homework code -------------------------------------


def rbm_gemm_gflops(batch_size, hidden=500):
    """GFLOP/s of the five products of one CD-1 step, each at its own shape and weighted by its count:
    v W and v' W ([b,784] @ [784,h]), h W^T ([b,h] @ [h,784]), v^T h and v'^T h' ([784,b] @ [b,h])."""
    seconds_per_flop = (2 / gemm_gflops(batch_size, 784, hidden) + 1 / gemm_gflops(batch_size, hidden, 784)
                        + 2 / gemm_gflops(784, batch_size, hidden))
    return 5 / seconds_per_flop


def cd1_product_chain(v, weights, rounds):
    """CD-1's five products in its order, `rounds` times over: h = v W, p = h W^T, h' = p W, then W += 1e-6 G with
    G = [v; p]^T [h; h'] (one stacked product, as cd_gradient does). Each round's products wait for the last round's
    update, as training's do, so unlike gemm_gflops's independent products nothing overlaps."""
    for _ in tf.range(rounds):
        h = tf.matmul(v, weights)
        p = tf.matmul(h, weights, transpose_b=True)
        h_model = tf.matmul(p, weights)
        weights = weights + 1e-6 * tf.matmul(tf.concat([v, p], 0), tf.concat([h, h_model], 0), transpose_a=True)
    return weights


def rbm_chain_gflops(batch_size, hidden=500, seconds=2.0):
    """GFLOP/s of cd1_product_chain at CD-1's shapes: what the step's products allow in the order the step needs."""
    v = tf.cast(tf.random.uniform([batch_size, 784], seed=1) < 0.2, tf.float32)
    weights = tf.random.normal([784, hidden], stddev=0.01)
    chain = tf.function(cd1_product_chain)
    return looped_gflops(lambda rounds: chain(v, weights, rounds), 5 * 2 * batch_size * 784 * hidden, seconds)


def homework_rbm_rate(images, hidden=500, learning_rate=0.1, seconds=5.0):
    """The homework's pattern: CD-1 one image at a time in a Python loop over NumPy arrays."""
    rng = np.random.default_rng(0)
    W, b, c = rng.normal(0, 0.01, (784, hidden)), np.zeros(784), np.zeros(hidden)
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    started, done = time.perf_counter(), 0
    for v in images:
        h0 = sigmoid(v @ W + c)
        v1 = (rng.random(784) < sigmoid(W @ (rng.random(hidden) < h0) + b)).astype(np.float64)
        h1 = sigmoid(v1 @ W + c)
        W += learning_rate * (np.outer(v, h0) - np.outer(v1, h1))
        b += learning_rate * (v - v1)
        c += learning_rate * (h0 - h1)
        done += 1
        if time.perf_counter() - started > seconds:
            break
    return done / (time.perf_counter() - started)


def sklearn_rbm_seconds(images, batch_size, epochs):
    """Median seconds per epoch of scikit-learn's BernoulliRBM (PCD-1, NumPy), or None if it is not installed."""
    try:
        from sklearn.neural_network import BernoulliRBM
    except ImportError:
        return None
    seconds = []
    for epoch in range(epochs):
        rbm = BernoulliRBM(n_components=500, batch_size=batch_size, learning_rate=0.05, n_iter=1, random_state=0)
        started = time.perf_counter()
        rbm.fit(images)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def bench_rbm(batch_size, epochs, large_batch=1000):
    """The zoo's RBM rows are measured in turns: each round measures the GEMM references, then one epoch of every
    row. A slow spell of a shared machine (seconds long on the 2-core VMs) then slows one round of every row and its
    references alike, not the whole of one row, and each row's fraction is the median of its rounds' fractions."""
    from zoo.models.rbm import RBM, RBMConfig

    keras.utils.set_random_seed(0)
    pipelines = data.datasets(data.DataConfig(batch_size=batch_size, binarize="dynamic", flatten=False))
    large = data.datasets(data.DataConfig(batch_size=large_batch, binarize="dynamic", flatten=False))
    n = len(pipelines.splits.train)
    flops_per_image = 5 * 2 * 784 * 500  # the five products of CD-1 (rbm_gemm_gflops); PCD-1 adds a sixth
    binary = data.binarize_once(pipelines.splits.train.images.reshape(n, 784) / 255.0, 0)
    # The same step on batches binarized beforehand: the step alone, without the input pipeline's share of the CPU.
    prebinarized = tf.data.Dataset.from_tensor_slices(binary.astype(np.float32)).batch(batch_size).repeat().prefetch(4)
    steps, cd1 = pipelines.steps_per_epoch, f"zoo RBM CD-1, batch {batch_size}"
    runs = {  # label: (negative phase, batches, steps per epoch, FLOPs per image, GEMM reference)
        cd1: ("cd", pipelines.train, steps, flops_per_image, "gemm"),
        f"zoo RBM PCD-1, batch {batch_size}": ("pcd", pipelines.train, steps, flops_per_image * 6 / 5, "gemm"),
        f"zoo RBM CD-1, batch {batch_size} (batches binarized beforehand)": (
            "cd", prebinarized, steps, flops_per_image, "gemm"),
        f"zoo RBM CD-1, batch {large_batch}": ("cd", large.train, large.steps_per_epoch, flops_per_image, "large"),
    }
    models = {}
    for label, (phase, batches, steps_per_epoch, _, _) in runs.items():
        steps_per_execution, jit = train.execution_settings(RBM, steps_per_epoch, 1)  # zoo.train's settings
        models[label] = RBM(RBMConfig(negative_phase=phase))
        models[label].compile(steps_per_execution=steps_per_execution, jit_compile=jit)
        models[label].fit(batches, epochs=1, steps_per_epoch=20, shuffle=False, verbose=0)  # traced before the rounds
    references = {"gemm": [], "chain": [], "large": []}
    epoch_seconds = {label: [] for label in runs}
    sklearn_seconds = []
    for _ in range(epochs - 1):
        references["gemm"].append(rbm_gemm_gflops(batch_size))
        references["chain"].append(rbm_chain_gflops(batch_size))
        references["large"].append(rbm_gemm_gflops(large_batch))
        for label, (_, batches, steps_per_epoch, _, _) in runs.items():
            timer = SteadyEpochTimer()
            models[label].fit(batches, epochs=1, steps_per_epoch=steps_per_epoch, shuffle=False, callbacks=[timer],
                              verbose=0)
            epoch_seconds[label].append(timer.seconds[0])
        sklearn_seconds.append(sklearn_rbm_seconds(binary.astype(np.float64), batch_size, 1))

    gemm, chain, large_gemm = (statistics.median(references[k]) for k in ("gemm", "chain", "large"))
    rows = [
        ("float32 GEMM 2048x2048x2048", f"{gemm_gflops(2048, 2048, 2048):.0f} GFLOP/s", ""),
        (f"float32 GEMM at CD-1's shapes, batch {batch_size} (784x500)", f"{gemm:.0f} GFLOP/s",
         f"limit: {gemm * 1e9 / flops_per_image:,.0f} img/s; median of {epochs - 1} rounds"),
        ("the same five products in CD-1's order, each waiting for the last", f"{chain:.0f} GFLOP/s",
         f"{chain / gemm:.0%} of the row above: independent products overlap, a step's cannot"),
        ("input pipeline alone (dynamic binarization)",
         f"{pipeline_rate(pipelines, 3 * pipelines.steps_per_epoch):,.0f} img/s", ""),
    ]
    for label, (_, _, _, flops, reference) in runs.items():
        rates = [n / s for s in epoch_seconds[label]]  # images per second, one per round
        fraction = statistics.median(r * flops / 1e9 / g for r, g in zip(rates, references[reference]))
        of_chain = statistics.median(r * flops / 1e9 / c for r, c in zip(rates, references["chain"]))
        rate = statistics.median(rates)
        shapes = (f"of the GEMM rate at batch {large_batch} ({large_gemm:.0f} GFLOP/s)" if reference == "large" else
                  f"of the GEMM rate at these shapes, {of_chain:.0%} of the products in order")
        rows.append((label, f"{rate:,.0f} img/s", f"{n / rate:.2f} s/epoch, {rate * flops / 1e9:.0f} GFLOP/s = "
                     f"{fraction:.0%} {shapes}"))

    if None in sklearn_seconds:
        rows.append((f"scikit-learn BernoulliRBM (PCD-1, n_components=500), batch {batch_size}", "not installed",
                     "pip install -r requirements-bench.txt"))
    else:  # how many times faster the zoo's CD-1 is, the median of the rounds' ratios
        ratio = statistics.median(s / z for s, z in zip(sklearn_seconds, epoch_seconds[cd1]))
        seconds = statistics.median(sklearn_seconds)
        rows.append((f"scikit-learn BernoulliRBM (PCD-1, n_components=500), batch {batch_size}",
                     f"{n / seconds:,.0f} img/s", f"{seconds:.2f} s/epoch; the zoo's CD-1 is {ratio:.1f}x faster"))
    rate = homework_rbm_rate(binary.astype(np.float64))
    rows.append(("homework-style CD-1, one image at a time (NumPy loop)", f"{rate:,.0f} img/s",
                 f"{n / rate:.0f} s/epoch"))
    return rows, (f"training on {n:,} dynamically binarized MNIST images, 784x500; "
                  f"{flops_per_image / 1e6:.2f} MFLOP per image in CD-1's five matrix products")


# -- the DBN: up-down fine-tuning against CD-1 on the same layers ------------------------------------------------


def bench_dbn(batch_size, epochs, layers=(784, 100, 100)):
    from zoo.models.dbn import DBN, DBNConfig
    from zoo.models.rbm import RBM, RBMConfig

    keras.utils.set_random_seed(0)
    pipelines = data.datasets(data.DataConfig(batch_size=batch_size, binarize="dynamic"))
    n = len(pipelines.splits.train)
    steps, _ = train.execution_settings(RBM, pipelines.steps_per_epoch, 1)
    rows, layer_seconds = [], []
    for visible, hidden in zip(layers[:-1], layers[1:]):
        model = RBM(RBMConfig(visible=visible, hidden=hidden))
        model.compile(steps_per_execution=steps)
        if visible == 784:  # the images themselves; above them, random binary activities of the right width
            inputs = pipelines.train.map(lambda x: tf.reshape(x, (-1, 784)))
        else:
            inputs = pipelines.train.map(lambda x, v=visible: tf.cast(
                tf.random.uniform([tf.shape(x)[0], v]) < 0.5, tf.float32))
        seconds = timed_fit(model, epochs, x=inputs, steps_per_epoch=pipelines.steps_per_epoch)
        layer_seconds.append(seconds)
        rows.append((f"RBM CD-1, {visible}x{hidden}, batch {batch_size}", f"{n / seconds:,.0f} img/s",
                     f"{seconds:.2f} s/epoch"))
    stack = sum(layer_seconds)
    rows.append((f"CD-1 on every layer of {'-'.join(map(str, layers))} (greedy, one epoch each)",
                 f"{n / stack:,.0f} img/s", f"{stack:.2f} s per epoch of every layer"))
    model = DBN(DBNConfig(layers=layers))
    model.compile(steps_per_execution=steps)
    seconds = timed_fit(model, epochs, x=pipelines.train, steps_per_epoch=pipelines.steps_per_epoch)
    rows.append((f"DBN up-down (wake, top CD-2, sleep), {'-'.join(map(str, layers))}", f"{n / seconds:,.0f} img/s",
                 f"{seconds:.2f} s/epoch; {stack / seconds:.2f}x the greedy stack's rate, "
                 f"{layer_seconds[0] / seconds:.2f}x CD-1 on the first layer alone"))
    return rows, f"training on {n:,} dynamically binarized MNIST images"


# -- the DCGAN: training images per second and what they cost in FLOPs ------------------------------------------


def forward_flops(network, input_shape):
    """FLOPs (2 per multiply-add) of one forward pass of a Sequential network for one input, from its Dense,
    Conv2D and Conv2DTranspose layers (batch norm and activations are a few per value, left out)."""
    flops, shape = 0, (1,) + tuple(input_shape)
    for layer in network.layers:
        out = layer.compute_output_shape(shape)
        if isinstance(layer, keras.layers.Dense):
            flops += 2 * shape[-1] * out[-1]
        elif isinstance(layer, keras.layers.Conv2DTranspose):  # every input pixel scatters a k x k x out patch
            flops += 2 * shape[1] * shape[2] * shape[3] * np.prod(layer.kernel_size) * out[3]
        elif isinstance(layer, keras.layers.Conv2D):  # every output pixel gathers a k x k x in patch
            flops += 2 * out[1] * out[2] * out[3] * np.prod(layer.kernel_size) * shape[3]
        shape = out
    return int(flops)


class BaselineDCGAN(keras.Model):
    """The lab's DCGAN written as plainly as Keras allows (the keras.io DCGAN example's pattern): the same layers as
    the zoo's, one D and one G Adam update per batch in a tf.function train_step, D run on the real and on the
    generated batch separately (as the zoo does, so batch norm sees the same batches), the two losses tracked."""

    def __init__(self, latent_dim=100):
        super().__init__()
        self.latent_dim = latent_dim
        block = lambda layer: [layer, keras.layers.BatchNormalization(), keras.layers.LeakyReLU(0.2)]  # noqa: E731
        self.generator = keras.Sequential(
            [keras.Input((latent_dim,)), keras.layers.Reshape((1, 1, latent_dim)),
             *block(keras.layers.Conv2DTranspose(512, 4, padding="valid", use_bias=False)),
             *block(keras.layers.Conv2DTranspose(256, 4, strides=2, padding="same", use_bias=False)),
             *block(keras.layers.Conv2DTranspose(128, 4, strides=2, padding="same", use_bias=False)),
             keras.layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="tanh")])
        self.discriminator = keras.Sequential(
            [keras.Input((32, 32, 1)), keras.layers.Conv2D(64, 4, strides=2, padding="same"),
             keras.layers.LeakyReLU(0.2),
             *block(keras.layers.Conv2D(128, 4, strides=2, padding="same", use_bias=False)),
             keras.layers.Conv2D(1, 8, padding="valid"), keras.layers.Flatten()])
        self.bce = keras.losses.BinaryCrossentropy(from_logits=True)
        self.d_loss_tracker, self.g_loss_tracker = keras.metrics.Mean(name="d_loss"), keras.metrics.Mean(name="g_loss")

    def compile(self, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.g_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker]

    def train_step(self, real):
        batch = tf.shape(real)[0]
        fake = self.generator(tf.random.normal([batch, self.latent_dim]), training=True)
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(real, training=True)
            fake_logits = self.discriminator(fake, training=True)
            d_loss = self.bce(tf.ones_like(real_logits), real_logits) + self.bce(tf.zeros_like(fake_logits),
                                                                                 fake_logits)
        variables = self.discriminator.trainable_weights
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, variables), variables))
        with tf.GradientTape() as tape:
            fake_logits = self.discriminator(self.generator(tf.random.normal([batch, self.latent_dim]),
                                                            training=True), training=True)
            g_loss = self.bce(tf.ones_like(fake_logits), fake_logits)
        variables = self.generator.trainable_weights
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, variables), variables))
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {"d_loss": self.d_loss_tracker.result(), "g_loss": self.g_loss_tracker.result()}


class KerasConditionalGAN(keras.Model):
    """The keras.io "Conditional GAN" example (generative/conditional_gan.py), as that example writes it: the one-hot
    class joined to the generator's code and, as 10 constant channels, to the discriminator's image; 28x28 images in
    [0, 1] with a sigmoid generator; D labels generated images 1 and real ones 0; Adam 3e-4 for both."""

    def __init__(self, latent_dim=128, num_classes=10):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        generator_in, discriminator_in = latent_dim + num_classes, 1 + num_classes
        self.discriminator = keras.Sequential([
            keras.layers.InputLayer((28, 28, discriminator_in)),
            keras.layers.Conv2D(64, (3, 3), strides=(2, 2), padding="same"), keras.layers.LeakyReLU(negative_slope=0.2),
            keras.layers.Conv2D(128, (3, 3), strides=(2, 2), padding="same"),
            keras.layers.LeakyReLU(negative_slope=0.2), keras.layers.GlobalMaxPooling2D(), keras.layers.Dense(1)],
            name="discriminator")
        self.generator = keras.Sequential([
            keras.layers.InputLayer((generator_in,)), keras.layers.Dense(7 * 7 * generator_in),
            keras.layers.LeakyReLU(negative_slope=0.2), keras.layers.Reshape((7, 7, generator_in)),
            keras.layers.Conv2DTranspose(128, (4, 4), strides=(2, 2), padding="same"),
            keras.layers.LeakyReLU(negative_slope=0.2),
            keras.layers.Conv2DTranspose(128, (4, 4), strides=(2, 2), padding="same"),
            keras.layers.LeakyReLU(negative_slope=0.2),
            keras.layers.Conv2D(1, (7, 7), padding="same", activation="sigmoid")], name="generator")
        self.gen_loss_tracker = keras.metrics.Mean(name="generator_loss")
        self.disc_loss_tracker = keras.metrics.Mean(name="discriminator_loss")

    @property
    def metrics(self):
        return [self.gen_loss_tracker, self.disc_loss_tracker]

    def compile(self, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer = keras.optimizers.Adam(learning_rate=0.0003)
        self.g_optimizer = keras.optimizers.Adam(learning_rate=0.0003)
        self.loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)

    def train_step(self, data):
        real_images, labels = data
        one_hot_labels = tf.one_hot(labels, self.num_classes)
        image_one_hot_labels = tf.repeat(tf.repeat(one_hot_labels[:, None, None, :], 28, axis=1), 28, axis=2)
        batch_size = tf.shape(real_images)[0]
        random_latent_vectors = tf.random.normal(shape=(batch_size, self.latent_dim))
        generated_images = self.generator(tf.concat([random_latent_vectors, one_hot_labels], axis=1))
        fake_image_and_labels = tf.concat([generated_images, image_one_hot_labels], -1)
        real_image_and_labels = tf.concat([real_images, image_one_hot_labels], -1)
        combined_images = tf.concat([fake_image_and_labels, real_image_and_labels], axis=0)
        targets = tf.concat([tf.ones((batch_size, 1)), tf.zeros((batch_size, 1))], axis=0)
        with tf.GradientTape() as tape:
            d_loss = self.loss_fn(targets, self.discriminator(combined_images))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        random_latent_vectors = tf.random.normal(shape=(batch_size, self.latent_dim))
        misleading_labels = tf.zeros((batch_size, 1))
        with tf.GradientTape() as tape:
            fake_images = self.generator(tf.concat([random_latent_vectors, one_hot_labels], axis=1))
            predictions = self.discriminator(tf.concat([fake_images, image_one_hot_labels], -1))
            g_loss = self.loss_fn(misleading_labels, predictions)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        self.gen_loss_tracker.update_state(g_loss)
        self.disc_loss_tracker.update_state(d_loss)
        return {"g_loss": self.gen_loss_tracker.result(), "d_loss": self.disc_loss_tracker.result()}


class ConditionalPeerExport(tf.Module):
    """A KerasConditionalGAN's generator under the serving contract's conditional signatures, for the evaluator:
    `sample(num_samples, seed, label)` and `generate(seeds, labels)`, z ~ N(0, I) from the stateless seed."""

    def __init__(self, generator, latent_dim, num_classes=10):
        super().__init__()
        self.generator, self.latent_dim, self.num_classes = generator, latent_dim, num_classes

    def _images(self, z, labels):
        return {"images": self.generator(tf.concat([z, tf.one_hot(labels, self.num_classes)], axis=1))}

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32, name="num_samples"),
                                  tf.TensorSpec([], tf.int32, name="seed"), tf.TensorSpec([], tf.int32, name="label")])
    def sample(self, num_samples, seed, label):
        z = tf.random.stateless_normal([num_samples, self.latent_dim], tf.stack([seed, 0]))
        return self._images(z, tf.fill([num_samples], label))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="seeds"),
                                  tf.TensorSpec([None], tf.int32, name="labels")])
    def generate(self, seeds, labels):
        z = tf.map_fn(lambda seed: tf.random.stateless_normal([self.latent_dim], tf.stack([seed, 0])), seeds,
                      fn_output_signature=tf.float32)
        return self._images(z, labels)


def train_conditional_peer(epochs, export_dir, batch_size=64, seed=0, limit=None):
    """Train the keras.io example's conditional GAN as the example does (all 70,000 MNIST digits, batch 64) for
    `epochs` epochs and export it as export_dir/keras_conditional_gan/<version>, so `zoo.evaluate` scores it beside
    the zoo's conditional models; returns the path and the training seconds."""
    keras.utils.set_random_seed(seed)
    x_train, y_train, x_test, y_test, _ = data.load_arrays()
    images = np.concatenate([x_train, x_test])[:limit].astype(np.float32)[..., None] / 255.0
    labels = np.concatenate([y_train, y_test])[:limit].astype(np.int32)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(1024, seed=seed).batch(batch_size)
    model = KerasConditionalGAN()
    model.compile()
    started = time.time()
    model.fit(dataset, epochs=epochs, verbose=2)
    seconds = time.time() - started
    module = ConditionalPeerExport(model.generator, model.latent_dim)
    folder = os.path.join(export_dir, "keras_conditional_gan")
    path = os.path.join(folder, str(export.next_version(folder)))
    tf.saved_model.save(module, path, signatures={"sample": module.sample, "generate": module.generate})
    os.makedirs(os.path.join(path, "assets"), exist_ok=True)
    with open(os.path.join(path, export.CARD), "w") as f:
        json.dump({"kind": "keras_conditional_gan", "config": {"latent_dim": 128, "batch_size": batch_size},
                   "epochs": epochs, "train_seconds": round(seconds, 1), "steps": int(model.d_optimizer.iterations),
                   "signatures": ["sample", "generate"], "source": "keras.io examples/generative/conditional_gan.py"},
                  f, indent=2)
    return path, seconds


def bench_cgan(batch_size, epochs, limit=10_000):
    """The keras.io conditional GAN and the zoo's conditional DCGAN (the lab's networks, projection D, then the
    quality preset's stabilisers), each on the same 28x28 images and labels, steps per call as zoo.train runs."""
    from zoo.models.cgan import ConditionalDCGAN, ConditionalDCGANConfig

    x, y, *_ = data.load_arrays()
    images, labels = x[:limit], y[:limit].astype(np.int32)
    dataset = tf.data.Dataset.from_tensor_slices((images.astype(np.float32)[..., None] / 255.0, labels)).batch(
        batch_size).cache().repeat()
    steps_per_epoch = -(-limit // batch_size)
    steps, _ = train.execution_settings(ConditionalDCGAN, steps_per_epoch, 1)

    def peer():
        keras.utils.set_random_seed(0)
        model = KerasConditionalGAN()
        model.compile(steps_per_execution=steps)
        return model

    def zoo_model(config):
        keras.utils.set_random_seed(0)
        model = ConditionalDCGAN(config)
        model.compile(steps_per_execution=steps)
        return model

    makers = {"peer": peer, "zoo": lambda: zoo_model(ConditionalDCGANConfig()),
              "zoo_quality": lambda: zoo_model(ConditionalDCGANConfig(**ConditionalDCGAN.PRESETS["quality"]))}
    seconds = {name: timed_fit(make(), epochs, x=dataset, steps_per_epoch=steps_per_epoch)
               for name, make in makers.items()}
    rates = {name: limit / s for name, s in seconds.items()}
    rows = [("float32 GEMM 2048x2048x2048", f"{gemm_gflops(2048, 2048, 2048):.0f} GFLOP/s", ""),
            ("keras.io conditional GAN (its networks: 28x28, D on 11 channels), batch "
             f"{batch_size}", f"{rates['peer']:,.0f} img/s", f"{55_000 / rates['peer'] / 60:.1f} min per epoch"),
            ("zoo conditional DCGAN, the lab's networks at 32x32, projection D", f"{rates['zoo']:,.0f} img/s",
             f"{55_000 / rates['zoo'] / 60:.1f} min per epoch"),
            ("the same, quality preset (EMA, R1 0.1, learning rate 4e-4, padded digits)",
             f"{rates['zoo_quality']:,.0f} img/s", f"{55_000 / rates['zoo_quality'] / 60:.1f} min per epoch")]
    return rows, (f"training on {limit:,} MNIST images with their labels, {steps} steps per call; the networks "
                  "differ (the peer's are the example's), so the rows are each model's cost, not the same work")


def bench_dcgan(batch_size, epochs, limit=10_000):
    """The plain Keras DCGAN, then the zoo's without and with the generator EMA, on one pipeline with the same
    execution settings, in the same run."""
    from zoo.models.gan import DCGAN, DCGANConfig

    keras.utils.set_random_seed(0)
    config = DCGANConfig()
    pipelines = data.datasets(train.data_config_for("dcgan", config, batch_size=batch_size, limit=limit))
    n = len(pipelines.splits.train)
    model = DCGAN(config)
    model.build_for_images()
    generator = forward_flops(model.generator, (config.latent_dim,))
    discriminator = forward_flops(model.discriminator, (32, 32, 1))
    # A backward pass costs about twice its forward pass. D step: G forward, D forward and backward on the real
    # and on the generated batch. G step: G and D forward and backward. Per image: 4 G + 9 D forward passes.
    flops_per_image = 4 * generator + 9 * discriminator
    gemm = gemm_gflops(2048, 2048, 2048)
    rows = [
        ("float32 GEMM 2048x2048x2048", f"{gemm:.0f} GFLOP/s", ""),
        ("input pipeline alone (32x32, [-1, 1])",
         f"{pipeline_rate(pipelines, 3 * pipelines.steps_per_epoch):,.0f} img/s", ""),
    ]
    steps, jit = train.execution_settings(DCGAN, pipelines.steps_per_epoch, 1)

    def zoo_model(ema_decay):
        keras.utils.set_random_seed(0)
        zoo = DCGAN(DCGANConfig(ema_decay=ema_decay))
        zoo.compile(steps_per_execution=steps, jit_compile=jit)
        return zoo

    def baseline():
        keras.utils.set_random_seed(0)
        plain = BaselineDCGAN(config.latent_dim)
        plain.compile(steps_per_execution=steps, jit_compile=jit)  # the same execution settings as the zoo's
        return plain

    makers = {"baseline": baseline, "zoo": lambda: zoo_model(0.0), "zoo_ema": lambda: zoo_model(0.999)}
    seconds = {name: timed_fit(make(), epochs, x=pipelines.train, steps_per_epoch=pipelines.steps_per_epoch)
               for name, make in makers.items()}
    rates = {name: n / s for name, s in seconds.items()}

    def detail(rate):
        return (f"{55_000 / rate / 60:.1f} min per 55,000-image epoch, {rate * flops_per_image / 1e9:.0f} GFLOP/s "
                f"= {rate * flops_per_image / 1e9 / gemm:.0%} of the GEMM rate")

    setting = f"({steps} steps per call, XLA {'on' if jit else 'off'})"
    rows += [
        (f"plain Keras DCGAN (BaselineDCGAN), same layers and updates {setting}", f"{rates['baseline']:,.0f} img/s",
         detail(rates["baseline"])),
        (f"zoo DCGAN, 1 D + 1 G update per batch of {batch_size} {setting}", f"{rates['zoo']:,.0f} img/s",
         f"{detail(rates['zoo'])}; {rates['zoo'] / rates['baseline']:.2f}x the baseline"),
        ("zoo DCGAN with the generator EMA (ema_decay 0.999)", f"{rates['zoo_ema']:,.0f} img/s",
         f"{detail(rates['zoo_ema'])}; {rates['zoo_ema'] / rates['baseline']:.2f}x the baseline, "
         f"{rates['zoo_ema'] / rates['zoo'] - 1:+.1%} against no EMA"),
    ]
    return rows, (f"training on {n:,} MNIST images at 32x32; forward passes: generator {generator / 1e6:.0f} MFLOP, "
                  f"discriminator {discriminator / 1e6:.1f} MFLOP per image; one training iteration "
                  f"{flops_per_image / 1e6:.0f} MFLOP per image")


# -- time to quality: what a user waits for ----------------------------------------------------------------------

# (model, preset, figure, target: the first epoch at or below it ends the run, at most this many epochs)
QUALITY_TARGETS = (
    ("vae", "z50", "val_loss", 100.0, 30),  # validation -ELBO, nats per image, dynamically binarized images
    ("rbm", "pcd", "test_nll", 90.0, 60),  # test NLL by AIS (5,000 temperatures) on the first 2,000 test images
    ("gan", "quality", "val_frechet_distance", 50.0, 40),  # SampleQuality's, 2,000 samples against validation
)
QUALITY_MODELS = tuple(model for model, *_ in QUALITY_TARGETS)


class StopAtQuality(keras.callbacks.Callback):
    """Ends training at the first epoch whose `figure` is at or below `target`. `curve` holds (epoch, training
    seconds, figure): the wall time of the run's epochs with every callback zoo.train gives it, less the time of
    `measure(model)`, which computes the figure when the run's logs do not have it (the RBM's AIS)."""

    def __init__(self, figure, target, measure=None):
        super().__init__()
        self.figure, self.target, self.measure = figure, target, measure

    def on_train_begin(self, logs=None):
        self.started, self.excluded, self.curve = time.perf_counter(), 0.0, []

    def on_epoch_end(self, epoch, logs=None):
        if self.measure:
            started = time.perf_counter()
            logs[self.figure] = self.measure(self.model)
            self.excluded += time.perf_counter() - started
        value = float(logs[self.figure])
        self.curve.append((epoch + 1, time.perf_counter() - self.started - self.excluded, value))
        self.model.stop_training = value <= self.target


def rbm_test_nll(test_images, train_images):
    """measure(model) for an RBM: its test NLL by AIS (5,000 temperatures, 100 chains) on test_images (binary)."""
    from zoo.likelihood import rbm_log_likelihood

    def measure(model):
        p = model.parameters()
        return rbm_log_likelihood(p["weights"].numpy(), p["visible_bias"].numpy(), p["hidden_bias"].numpy(),
                                  test_images, train_images, temperatures=5_000, raise_images=0)["nll_nats"]
    return measure


def bench_quality(batch_size, epochs, models=QUALITY_MODELS):
    """Seconds of zoo.train to a stated quality, for the likelihood VAE, the PCD RBM and the MLP GAN (`models`)."""
    from zoo.models import MODELS

    rows = [("float32 GEMM 2048x2048x2048", f"{gemm_gflops(2048, 2048, 2048):.0f} GFLOP/s", "")]
    splits = data.load(data.DataConfig())
    test = data.binarize_once(data.as_images(splits.test.images[:2000]), 0)
    for model_name, preset, figure, target, max_epochs in QUALITY_TARGETS:
        if model_name not in models:
            continue
        model_class = MODELS[model_name]
        model_config = model_class.Config(**model_class.PRESETS[preset])
        data_config = train.data_config_for(model_name, model_config, batch_size=batch_size, binarize=(
            "dynamic" if model_name == "vae" else None))
        measure = rbm_test_nll(test, data.as_images(splits.train.images)) if figure == "test_nll" else None
        stop = StopAtQuality(figure, target, measure)
        with tempfile.TemporaryDirectory() as folder:
            train.train(model_name, model_config, data_config, train.TrainConfig(
                epochs=max_epochs, logdir=folder, export=False, name=f"bench_{model_name}"),
                extra_callbacks=[stop], verbose=0)
        epoch, seconds, value = stop.curve[-1]
        label = f"{model_name} --preset {preset}: {figure} <= {target:g}"
        if value <= target:
            rows.append((label, f"{seconds:,.0f} s", f"epoch {epoch} ({seconds / epoch:.1f} s/epoch), {value:.2f}"))
        else:
            best = min(v for _, _, v in stop.curve)
            rows.append((label, f"not in {seconds:,.0f} s", f"{epoch} epochs, best {best:.2f}"))
        print(f"{label}: " + ", ".join(f"{e}: {v:.2f} at {t:.0f} s" for e, t, v in stop.curve), flush=True)
    return rows, ("batch 100 (the models' default); the training seconds include every callback of a zoo.train run, "
                  "but not the RBM's AIS")


BENCHMARKS = {"vae": bench_vae, "rbm": bench_rbm, "dbn": bench_dbn, "dcgan": bench_dcgan, "quality": bench_quality,
              "cgan": bench_cgan}


def serve(argv):
    """python -m zoo.bench serve EXPORT ...: the serving load test of each export, as Markdown tables."""
    parser = argparse.ArgumentParser(prog="python -m zoo.bench serve",
                                     description="Requests/s and latency of an export's signatures under load.")
    parser.add_argument("exports", nargs="+", help="export folders, exports/<name>/<version>")
    parser.add_argument("--threads", default="1,8", help="client thread counts (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=5.0, help="load time per signature and thread count")
    parser.add_argument("--batch", type=cli.positive_int, default=16, help="images (or seeds) per request")
    parser.add_argument("--signatures", help="comma-separated (default: all but serving_default and parameters)")
    args = parser.parse_args(argv)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "serving_load.py")
    for path in args.exports:
        if not os.path.exists(os.path.join(path, "saved_model.pb")):
            parser.error(f"{path} is not an export (no saved_model.pb); give exports/<name>/<version>")
        # -P: the script's folder (zoo/) is not put on sys.path, so nothing of zoo can be imported by accident.
        command = [sys.executable, "-P", script, path, "--threads", args.threads, "--seconds", str(args.seconds),
                   "--batch", str(args.batch)] + (["--signatures", args.signatures] if args.signatures else [])
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if done.returncode != 0:
            sys.exit(f"the serving process failed on {path}:\n{done.stderr[-3000:]}")
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        facts = {k: v for line in lines if "signature" not in line for k, v in line.items()}
        kind = export.read_card(path).get("kind", "?") if os.path.exists(os.path.join(path, export.CARD)) else "?"
        print(f"\n{path} ({kind}): loaded in {facts.get('loaded_seconds')} s, peak memory "
              f"{facts.get('peak_memory_mib')} MiB; {args.batch} images or seeds per request\n")
        print("| signature | threads | requests/s | images/s | p50 ms | p99 ms | errors |")
        print("|---|---|---|---|---|---|---|")
        for line in lines:
            if "signature" in line:
                print(f"| {line['signature']} | {line['threads']} | {line['requests_per_second']} | "
                      f"{line['images_per_second']} | {line['p50_ms']} | {line['p99_ms']} | {line['errors']} |")
        if "huge_sample" in facts:
            print(f"\nsample(num_samples=10**7): {facts['huge_sample']} in {facts['seconds']} s; still serving: "
                  f"{facts['still_serving']}")


def conditional_peer(argv):
    """python -m zoo.bench cgan-peer: train the keras.io conditional GAN and export it for the leaderboard."""
    parser = cli.parser("python -m zoo.bench cgan-peer", "Train the keras.io conditional GAN as its example does and "
                        "export it, so `python -m zoo.evaluate` scores it beside the zoo's conditional models.")
    parser.add_argument("--epochs", type=cli.positive_int, default=20, help="default: %(default)s (the example's)")
    parser.add_argument("--export-dir", default="exports", help="default: %(default)s")
    args = parser.parse_args(argv)
    path, seconds = train_conditional_peer(args.epochs, args.export_dir)
    print(f"exported {path} ({seconds:.0f} s of training)")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        return serve(argv[1:])
    if argv[:1] == ["cgan-peer"]:
        return conditional_peer(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m zoo.bench", description=__doc__.strip().splitlines()[0])
    parser.add_argument("model", choices=sorted(BENCHMARKS) + ["serve", "cgan-peer"])
    parser.add_argument("--batch-size", type=cli.positive_int, help="default: 128 (vae), 100 (the others)")
    parser.add_argument("--epochs", type=cli.positive_int, default=4, help="timed epochs + 1 (default: 4)")
    parser.add_argument("--models", default=",".join(QUALITY_MODELS),
                        help="quality: the targets to measure, of the default's (default: %(default)s)")
    parser.add_argument("--limit", type=cli.positive_int, default=10_000,
                        help="dcgan: train on the first N images, to keep the run short (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch includes compilation and is not timed")
    threads = tf.config.threading.get_inter_op_parallelism_threads() or "all"
    devices = ", ".join(d.name for d in tf.config.list_logical_devices("GPU")) or f"CPU ({threads} threads)"
    batch_size = args.batch_size or {"rbm": 100, "dbn": 100, "dcgan": 100, "quality": 100, "cgan": 64}.get(
        args.model, 128)
    extra = {"limit": args.limit} if args.model in ("dcgan", "cgan") else {}
    if args.model == "quality":
        extra["models"] = args.models.split(",")
        unknown = set(extra["models"]) - set(QUALITY_MODELS)
        if unknown:
            parser.error(f"--models: unknown {', '.join(sorted(unknown))}; choose from {', '.join(QUALITY_MODELS)}")
    rows, note = BENCHMARKS[args.model](batch_size, args.epochs, **extra)
    print(f"\n{args.model} benchmark on {devices}, TensorFlow {tf.__version__}; {note}\n")
    header = ("measured", "throughput", "detail")
    widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(3)]
    for row in [header, tuple("-" * w for w in widths)] + rows:
        print("| " + " | ".join(str(cell).ljust(w) for cell, w in zip(row, widths)) + " |")


if __name__ == "__main__":
    main()
