"""Log-likelihood estimators, computed from an export's signatures alone (no zoo model classes).

    VAE   the importance-weighted bound of Burda et al. (2015) from `encode` and `decode`
    RBM   log p(v) = -F(v) - log Z, with log Z by annealed importance sampling (Salakhutdinov and Murray 2008)
          from two base models (see two_base_log_partition), and exactly, by enumerating the hidden states,
          for RBMs with at most 20 hidden units; beside it, a conservative estimate of log p(v) by reverse
          annealing (RAISE, Burda, Grosse and Salakhutdinov 2015) on a subset of the test images. The RBM's
          `parameters` signature gives W and the biases
    DBN   the variational lower bound on log p(v), with the top RBM's log Z by AIS

Every figure is in nats per image on the test images binarized once (Bernoulli of the pixel values, seeded), the
convention of the binarized-MNIST literature. LIKELIHOODS maps a model kind (its model card's `kind`) to its
estimator, which zoo.evaluate calls.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

# ---------------------------------------------------------------------------------------------------------------
# VAE: importance-weighted bound.


def importance_weighted_bound(log_px_z, z, noise, log_var):
    """L_k = log (1/k) sum_i w_i, log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x), per image, for k samples
    z_i = mean + exp(log_var / 2) * noise_i of a Gaussian q(z|x) and a standard normal prior (Burda et al. 2015).

    log_px_z [n, k] (computed by the caller, from logits where it has them); z, noise [n, k, d]; log_var [n, d].
    log q(z_i|x) is written with noise_i, which (z_i - mean) / std equals identically, so its value and gradients
    are those of the density at z_i; a log-sum-exp over the k samples keeps the bound finite. Returns [n]."""
    log_2pi = math.log(2 * math.pi)
    log_pz = -0.5 * tf.reduce_sum(tf.square(z) + log_2pi, axis=-1)
    log_qz = -0.5 * tf.reduce_sum(tf.square(noise) + log_var[:, None] + log_2pi, axis=-1)
    k = tf.cast(tf.shape(log_px_z)[1], log_px_z.dtype)
    return tf.reduce_logsumexp(log_px_z + log_pz - log_qz, axis=1) - tf.math.log(k)


def log_bernoulli_means(x, probabilities):
    """log p(x|z) of binary x under Bernoulli means (what an export's `decode` gives), summed over the last axis.
    The means are clipped to [1e-7, 1], so a pixel costs at most 16 nats: a decoder's logits would need no clip,
    but serving returns probabilities."""
    return tf.reduce_sum(tf.math.log(tf.clip_by_value(tf.where(x > 0.5, probabilities, 1.0 - probabilities),
                                                      1e-7, 1.0)), axis=-1)


def importance_weighted_log_likelihood(encode, decode, images, k, seed=0, rows_per_call=20_000, labels=None,
                                       refine_steps=0):
    """log p(x) >= log (1/k) sum_i w_i, z_i ~ q(z|x) (Burda et al. 2015), per image, in nats.

    encode(images) -> {"latent": mean, "log_var": ...} and decode(z) -> Bernoulli means: a VAE's verbs, or
    an export's signatures (see export_verbs). x must be binary. With k = 1 this is a one-sample estimate of the
    ELBO; it tightens as k grows, towards log p(x). labels (a conditional VAE's): each image's class, given to both
    verbs as their second argument; the bound is then of log p(x|y). refine_steps > 0: q(z|x) is first fitted to
    each image (posterior_refiner), a tighter bound of the same model.
    """
    if refine_steps < 0:
        raise ValueError(f"refine_steps must be 0 (the encoder's q) or positive, got {refine_steps}")
    per_call = max(1, rows_per_call // k)

    def inputs(start, stop):
        x = tf.constant(images[start:stop], tf.float32)
        return x, ([] if labels is None else [tf.constant(labels[start:stop], tf.int32)])

    def proposal(x, y):
        code = encode(x, *y)
        return code["latent"], code["log_var"]

    if refine_steps:  # fitted in blocks far larger than the estimate's calls, which k makes small
        block, refine = max(1, rows_per_call // REFINE_SAMPLES), posterior_refiner(decode, refine_steps, seed)
        refined = []
        for start in range(0, len(images), block):
            x, y = inputs(start, start + block)
            refined.append(refine(x, *proposal(x, y), *y))
        means, log_vars = (tf.concat(parts, axis=0) for parts in zip(*refined))

    @tf.function
    def bound(x, mean, log_var, call_seed, *y):
        noise = tf.random.stateless_normal([tf.shape(x)[0], k, tf.shape(mean)[1]], call_seed)
        return decoded_bound(decode, x, mean, log_var, noise, y)

    out = []
    for call, start in enumerate(range(0, len(images), per_call)):
        stop = start + per_call
        x, y = inputs(start, stop)
        mean, log_var = (means[start:stop], log_vars[start:stop]) if refine_steps else proposal(x, y)
        out.append(bound(x, mean, log_var, tf.constant([seed, call]), *y).numpy())
    return np.concatenate(out)


def decoded_bound(decode, x, mean, log_var, noise, y):
    """L_k per image [n] of binary x [n, ...] from decode's Bernoulli means at the k samples z_i = mean +
    exp(log_var / 2) * noise_i of q(z|x) (noise [n, k, d]); y: [] or a conditional VAE's [labels [n]]."""
    n, k, d = tf.shape(noise)[0], tf.shape(noise)[1], tf.shape(noise)[2]
    z = mean[:, None] + tf.exp(0.5 * log_var)[:, None] * noise
    condition = [tf.repeat(y[0], k)] if y else []
    probabilities = tf.reshape(decode(tf.reshape(z, [-1, d]), *condition), [n, k, -1])
    return importance_weighted_bound(log_bernoulli_means(tf.reshape(x, [n, 1, -1]), probabilities), z, noise, log_var)


REFINE_SAMPLES = 50  # importance samples of each refinement step's bound
REFINE_LEARNING_RATE = 0.01


def posterior_refiner(decode, steps, seed):
    """refine(x, mean, log_var, *y) -> q(z|x)'s mean and log-variance fitted to each image: `steps` Adam steps on
    the image's own importance-weighted bound of REFINE_SAMPLES samples, from the encoder's answer, the decoder fixed
    (q* of Cremer, Li and Duvenaud 2018). An encoder answers for every image at once and fits held-out images less
    well than its training images; the fitted q closes that gap. The bound that q then gives is a lower bound of the
    same model's log p(x), only a tighter one. Its noise is a stream of its own (negative second seeds), never the
    estimate's.

    x [n, 28, 28, 1] binary; mean, log_var [n, d]; y: nothing, or a conditional VAE's labels [n]."""

    @tf.function
    def refine(x, mean, log_var, *y):
        def negative_bound(params, step):
            mean, log_var = tf.split(params, 2, axis=-1)
            noise = tf.random.stateless_normal([tf.shape(mean)[0], REFINE_SAMPLES, mean.shape[-1]],
                                               tf.stack([seed, -1 - step]))
            return -tf.reduce_sum(decoded_bound(decode, x, mean, log_var, noise, y))

        def adam_step(step, params, m, v):  # each image's bound depends on its own row alone: one Adam per image
            with tf.GradientTape() as tape:
                tape.watch(params)
                loss = negative_bound(params, step)
            gradient = tape.gradient(loss, params)
            m, v = 0.9 * m + 0.1 * gradient, 0.999 * v + 0.001 * tf.square(gradient)
            t = tf.cast(step + 1, tf.float32)
            update = REFINE_LEARNING_RATE * (m / (1 - 0.9 ** t)) / (tf.sqrt(v / (1 - 0.999 ** t)) + 1e-7)
            return step + 1, params - update, m, v

        params = tf.concat([mean, log_var], axis=-1)
        zeros = tf.zeros_like(params)
        params = tf.while_loop(lambda step, *_: step < steps, adam_step, (tf.constant(0), params, zeros, zeros))[1]
        return tuple(tf.split(params, 2, axis=-1))

    return refine


def export_verbs(export):
    """An export's encode and decode signatures as the callables importance_weighted_log_likelihood takes (with a
    second argument, the labels, for a conditional export's)."""
    if "labels" in export.signatures["encode"].structured_input_signature[1]:
        return (lambda images, labels: export.signatures["encode"](images=images, labels=labels),
                lambda latent, labels: export.signatures["decode"](latent=latent, labels=labels)["images"])
    return (lambda images: export.signatures["encode"](images=images),
            lambda latent: export.signatures["decode"](latent=latent)["images"])


def vae_likelihood(export, reference):
    """The importance-weighted bound on the test images; a convolutional VAE's on the first
    config.conv_vae_images of them (its decoder costs ~30x the MLP's: k = 5000 on 10,000 images would take hours on a
    CPU), with the standard error of that subset's mean."""
    k, images = reference.config.iw_samples, reference.binarized
    subset = reference.config.conv_vae_images if export.card.get("kind") in ("conv_vae", "conv_cvae") else 0
    subset = subset if 0 < subset < len(images) else 0
    conditional = export.conditional  # log p(x|y), each image under its own class
    labels = reference.test_labels[:subset or len(images)] if conditional else None
    refine_steps = reference.config.refine_steps
    log_px = importance_weighted_log_likelihood(*export_verbs(export), images[:subset or len(images)], k,
                                                reference.config.seed, labels=labels, refine_steps=refine_steps)
    method = (f"importance-weighted bound{' of log p(x|y)' if conditional else ''}, k={k}"
              + (f", q fitted to each image by {refine_steps} Adam steps" if refine_steps else "")
              + (f", first {subset:,} test images" if subset else ""))
    return {"nll_nats": float(-log_px.mean()), "standard_error": float(log_px.std() / math.sqrt(len(log_px))),
            "images": len(log_px), "method": method, "binarization": _binarization(reference)}


def _binarization(reference):
    return f"test images binarized once (Bernoulli of the pixel values, seed {reference.config.seed})"


# ---------------------------------------------------------------------------------------------------------------
# RBM: the partition function.
#
#   p(v) = exp(-F(v)) / Z,   F(v) = -v.b - sum_j softplus(c_j + v W_:j),   Z = sum_v exp(-F(v))


def free_energy(v, W, b, c, hidden_input=None):
    """F(v) = -v.b - sum_j softplus(c_j + v W_:j) of an RBM, per row of v [n, visible]: p(v) = exp(-F(v)) / Z.
    hidden_input: c + v W, if the caller has it."""
    hidden_input = tf.matmul(v, W) + c if hidden_input is None else hidden_input
    return -tf.linalg.matvec(v, b) - tf.reduce_sum(tf.nn.softplus(hidden_input), axis=1)


# The tempered path from a base model to an RBM (W, b, c), which AIS, RAISE and the RBM's samplers all walk:
#     log p*_beta(v) = (1 - beta) v.b_A + beta v.b + sum_j softplus(beta x_j),      x = c + v W,
# whose beta = 0 end is the base (visible biases b_A, no weights: every pixel independent) and beta = 1 end the RBM.
# With b_A = b it is p_beta(v, h) ∝ exp(v.b + beta (h.c + v W h)), the path of the RBM's own samplers.


def log_tempered(v, hidden_input, beta, b, base_b):
    """log p*_beta(v) on the tempered path, per row (beta a scalar or one per row [n, 1])."""
    beta = tf.convert_to_tensor(beta, v.dtype)
    beta_v = tf.reshape(beta, [-1]) if beta.shape.rank == 2 else beta  # one per row: [n, 1] -> [n]
    return ((1.0 - beta_v) * tf.linalg.matvec(v, base_b) + beta_v * tf.linalg.matvec(v, b)
            + tf.reduce_sum(tf.nn.softplus(beta * hidden_input), axis=1))


def tempered_sweep(hidden_input, beta, W, b, base_b, uniform_h, uniform_v):
    """One Gibbs sweep on the tempered path, which leaves p_beta invariant: h ~ sigmoid(beta x), then
    v ~ sigmoid((1 - beta) b_A + beta (b + W h)); the uniforms [n, hidden] and [n, visible] are the caller's draw.
    Returns (v, p(v|h))."""
    h = tf.cast(uniform_h < tf.sigmoid(beta * hidden_input), hidden_input.dtype)
    # (1 - beta) b_A + beta (b + W h), written so that with b_A = b it is exactly b + beta W h
    p = tf.sigmoid(beta * tf.matmul(h, W, transpose_b=True) + b + (1.0 - beta) * (base_b - b))
    return tf.cast(uniform_v < p, p.dtype), p


def exact_log_partition(W, b, c, chunk=1 << 14):
    """log Z summed over the 2^H hidden states: Z = sum_h exp(c.h) prod_i (1 + exp(b_i + W_i: h)).

    Feasible for H <= 20 (a million states); in float64, so it is the reference AIS is tested against.
    """
    W, b, c = (tf.cast(x, tf.float64) for x in (W, b, c))
    hidden = int(W.shape[1])
    if hidden > 20:
        raise ValueError(f"exact log Z enumerates 2^hidden states: {hidden} hidden units are too many (at most 20); "
                         "use ais_log_partition")
    bits = tf.constant(1 << np.arange(hidden), tf.int64)
    terms = []
    for start in range(0, 1 << hidden, chunk):
        index = tf.range(start, min(start + chunk, 1 << hidden), dtype=tf.int64)
        h = tf.cast(tf.bitwise.bitwise_and(index[:, None], bits) > 0, tf.float64)
        visible_input = tf.matmul(h, W, transpose_b=True) + b
        terms.append(tf.linalg.matvec(h, c) + tf.reduce_sum(tf.nn.softplus(visible_input), axis=1))
    return float(tf.reduce_logsumexp(tf.concat(terms, axis=0)))


def ais_temperatures(count=14_500):
    """Salakhutdinov and Murray's schedule scaled to `count` steps: beta spaced 1e-3 on [0, 0.5), 1e-4 on
    [0.5, 0.9) and 1e-5 on [0.9, 1] at the full 14,500, so the steps are finest where the target sharpens."""
    parts = np.array([500, 4000, 10000]) * count / 14_500
    n1, n2 = max(1, round(parts[0])), max(1, round(parts[1]))
    n3 = max(1, count - n1 - n2)
    return np.concatenate([np.linspace(0.0, 0.5, n1, endpoint=False), np.linspace(0.5, 0.9, n2, endpoint=False),
                           np.linspace(0.9, 1.0, n3 + 1)]).astype(np.float32)


def base_rate_visible_bias(train_images, smoothing=1e-3):
    """Visible biases of the base-rate RBM (W = 0): the training pixels' mean intensities as logits."""
    p = np.clip(np.asarray(train_images, np.float64).reshape(len(train_images), -1).mean(axis=0),
                smoothing, 1 - smoothing)
    return np.log(p / (1 - p)).astype(np.float32)


def ais_log_partition(W, b, c, base_visible_bias, temperatures, chains=100, seed=0):
    """AIS estimate of log Z from the base-rate RBM A (W = 0, visible biases b_A, hidden biases 0) to the RBM.

    The intermediate distributions are p_beta(v) ∝ p*_beta(v), with
        log p*_beta(v) = (1 - beta) v.b_A + beta v.b + sum_j softplus(beta (c_j + v W_:j)),
    and each chain's log importance weight adds log p*_beta_k(v) - log p*_beta_k-1(v) before a Gibbs step that
    leaves p_beta_k invariant: h ~ sigmoid(beta (c + v W)), v ~ sigmoid((1 - beta) b_A + beta (b + W h)).
    Z = Z_A * E[w], Z_A = prod_i (1 + exp(b_A_i)) * 2^H.

    Returns (log Z estimate, per-chain log weights + log Z_A as a NumPy array: their spread is the uncertainty).
    """
    W, b, c, b_A = (tf.constant(np.asarray(x), tf.float32) for x in (W, b, c, base_visible_bias))
    hidden = int(W.shape[1])
    log_z_base = float(tf.reduce_sum(tf.nn.softplus(tf.cast(b_A, tf.float64)))) + hidden * math.log(2.0)
    log_weights = _anneal(W, b, c, b_A, tf.constant(temperatures, tf.float32), chains, seed).numpy() + log_z_base
    log_z = float(np.logaddexp.reduce(log_weights) - math.log(chains))
    return log_z, log_weights


@tf.function(reduce_retracing=True)  # one function for every RBM: a traced loop per model would warn of retracing
def _anneal(W, b, c, b_A, betas, chains, seed):
    """AIS's chains from the base-rate RBM through the temperatures `betas`: their log importance weights."""
    visible, hidden = tf.shape(W)[0], tf.shape(W)[1]
    v = tf.cast(tf.random.stateless_uniform([chains, visible], [seed, 0]) < tf.sigmoid(b_A), tf.float32)

    def step(k, v, log_w):
        hidden_input = tf.matmul(v, W) + c
        log_w += tf.cast(log_tempered(v, hidden_input, betas[k], b, b_A)
                         - log_tempered(v, hidden_input, betas[k - 1], b, b_A), tf.float64)
        noise = tf.random.stateless_uniform([chains, hidden + visible], [seed, k])
        v, _ = tempered_sweep(hidden_input, betas[k], W, b, b_A, noise[:, :hidden], noise[:, hidden:])
        return k + 1, v, log_w

    _, _, log_w = tf.while_loop(lambda k, *_: k < tf.shape(betas)[0], step,
                                (tf.constant(1), v, tf.zeros([chains], tf.float64)))
    return log_w


def raise_log_likelihood(W, b, c, images, base_visible_bias, temperatures, chains=1, seed=0, batch_size=1000):
    """RAISE (Burda, Grosse and Salakhutdinov 2015): per image, a stochastic lower bound on log p_fwd(v), where
    p_fwd is the distribution of AIS's final states; p_fwd approaches the RBM as the schedule lengthens, and falls
    short of it where AIS's chains cannot follow the path, so the estimate errs low where AIS errs high.

    On AIS's path p_k(v) ∝ f_k(v) (beta_0 = 0: the base-rate RBM, exactly normalised; beta_K = 1: the RBM), AIS's
    forward chain v_0 ~ p_0, v_k ~ T_k(. | v_k-1) is a generative model. Its transition T_k (a Gibbs sweep at
    beta_k) is reversible with respect to p_k, so a chain run backwards from the test image v_K = v,
    v_k-1 ~ T_k(. | v_k), is a proposal whose importance weight needs no partition function:
        w = p_0(v_0) prod_k f_k(v_k) / f_k(v_k-1),      E[w] = p_fwd(v),
    and log (mean of `chains` weights) <= log p_fwd(v) in expectation. Returns per-image estimates (nats).
    """
    W, b, c, b_A = (tf.constant(np.asarray(x), tf.float32) for x in (W, b, c, base_visible_bias))
    betas = tf.constant(temperatures, tf.float32)
    hidden, visible = int(W.shape[1]), int(W.shape[0])
    log_z_base = tf.reduce_sum(tf.nn.softplus(b_A))  # log p_0(v) = v.b_A - sum softplus(b_A)

    @tf.function
    def reverse(v, call_seed):
        rows = tf.shape(v)[0]

        def step(k, v, log_w):  # k from K down to 1
            beta = betas[k]
            hidden_input = tf.matmul(v, W) + c
            log_w += tf.cast(log_tempered(v, hidden_input, beta, b, b_A), tf.float64)
            noise = tf.random.stateless_uniform([rows, hidden + visible], tf.stack([call_seed, k]))
            v, _ = tempered_sweep(hidden_input, beta, W, b, b_A, noise[:, :hidden], noise[:, hidden:])
            log_w -= tf.cast(log_tempered(v, tf.matmul(v, W) + c, beta, b, b_A), tf.float64)
            return k - 1, v, log_w

        _, v, log_w = tf.while_loop(lambda k, *_: k > 0, step,
                                    (tf.shape(betas)[0] - 1, v, tf.zeros([rows], tf.float64)))
        return log_w + tf.cast(tf.linalg.matvec(v, b_A) - log_z_base, tf.float64)

    v = np.repeat(np.asarray(images, np.float32).reshape(len(images), -1), chains, axis=0)
    log_w = np.concatenate([reverse(tf.constant(v[s:s + batch_size]), tf.constant(seed * 7919 + s)).numpy()
                            for s in range(0, len(v), batch_size)]).reshape(-1, chains)
    return np.logaddexp.reduce(log_w, axis=1) - math.log(chains)


def two_base_log_partition(W, b, c, data_base, temperatures, chains=100, seed=0):
    """AIS from two base models, keeping the larger log Z: (log Z, its runs' log weights, both estimates).

    The bases: the training data's pixel means (Salakhutdinov and Murray's choice) and the RBM's own visible biases.
    AIS underestimates log Z where its chains fail to follow the annealing path, which overstates the likelihood;
    from a base far from the model's marginals they fail (a small RBM's exact log Z shows it: tests/test_rbm.py).
    Each estimate of Z is unbiased, so the larger of the two errs towards a lower, safer likelihood.
    """
    runs = {name: ais_log_partition(W, b, c, base, ais_temperatures(temperatures), chains, seed)
            for name, base in (("data base rate", data_base), ("model's visible biases", b))}
    best = max(runs, key=lambda name: runs[name][0])
    return runs[best][0], runs[best][1], {name: run[0] for name, run in runs.items()}


def log_z_interval(log_weights, sigmas=3.0):
    """log(Z_hat -/+ sigmas * standard error of Z_hat), the interval Salakhutdinov and Murray report."""
    shift = log_weights.max()
    w = np.exp(log_weights - shift)
    mean, error = w.mean(), sigmas * w.std(ddof=1) / math.sqrt(len(w))
    low = shift + math.log(mean - error) if mean > error else -math.inf
    return low, shift + math.log(mean + error)


def rbm_log_likelihood(W, b, c, test_images, train_images, temperatures=14_500, chains=100, seed=0,
                       raise_images=1000):
    """Mean log p(v) = -F(v) - log Z over binary test images [n, 784], log Z by AIS from the base-rate RBM of the
    training images; with the exact log Z too where the RBM has at most 20 hidden units; and RAISE's conservative
    estimate on the first `raise_images` test images (same temperatures and base; 0: none), with AIS's figure on
    the same images beside it."""
    data_base = base_rate_visible_bias(train_images)
    log_z, log_weights, estimates = two_base_log_partition(W, b, c, data_base, temperatures, chains, seed)
    v = np.asarray(test_images, np.float32).reshape(len(test_images), -1)
    log_p_unnormalised = -free_energy(tf.constant(v), W, b, c).numpy().astype(np.float64)
    low, high = log_z_interval(log_weights)
    result = {
        "nll_nats": float(log_z - log_p_unnormalised.mean()),
        "standard_error": float(log_p_unnormalised.std() / math.sqrt(len(v))),  # over test images; log Z's below
        "log_z": log_z, "log_z_3_sigma": [low, high], "log_weight_spread": float(log_weights.std()),
        "log_z_by_base": estimates,
        "method": f"AIS, {chains} chains, {temperatures:,} temperatures, the larger log Z of two base models",
    }
    if W.shape[1] <= 20:
        result["exact_log_z"] = exact_log_partition(W, b, c)
        result["exact_nll_nats"] = float(result["exact_log_z"] - log_p_unnormalised.mean())
    if raise_images:
        subset = v[:raise_images]
        # The base whose AIS estimate was kept: the two estimates then walk the same path in opposite directions.
        base = data_base if max(estimates, key=estimates.get) == "data base rate" else b
        log_p = raise_log_likelihood(W, b, c, subset, base, ais_temperatures(temperatures), seed=seed)
        result["raise"] = {
            "images": len(subset), "nll_nats": float(-log_p.mean()),
            "standard_error": float(log_p.std() / math.sqrt(len(log_p))),
            "ais_nll_nats": float(log_z - log_p_unnormalised[:len(subset)].mean()),
            "method": f"RAISE, 1 reverse chain per image, {temperatures:,} temperatures, the kept AIS base",
        }
    return result


def rbm_likelihood(export, reference):
    """The export's test log-likelihood from its `parameters` signature (W and the biases)."""
    if "parameters" not in export.signatures:
        return {"missing": "the export has no `parameters` signature (W and biases), which AIS needs"}
    p = export.signatures["parameters"]()
    config = reference.config
    result = rbm_log_likelihood(p["weights"].numpy(), p["visible_bias"].numpy(), p["hidden_bias"].numpy(),
                                reference.binarized, reference.train_images, config.ais_temperatures,
                                config.ais_chains, config.seed, getattr(config, "raise_images", 0))
    return dict(result, binarization=_binarization(reference))


# ---------------------------------------------------------------------------------------------------------------
# DBN: lower bounds on log p(v), with the top RBM's log Z by AIS. For a draw h = (h_1, ..., h_L-1) of the recognition
# pass q (Salakhutdinov and Murray 2008, section 5),
#
#   w(h) = log p(v | h_1) + sum_i log p(h_i | h_i+1) + log p*(h_L-1) - log Z - log q(h | v),
#   q(h_1, ..., h_L-1 | v) = prod_i q(h_i+1 | h_i),  p*(h_L-1) = exp(-F_top(h_L-1)),
#
# the variational bound is E_q w (Salakhutdinov and Murray's figure) and the importance-weighted bound with k draws
# is E log (1/k) sum_j exp w(h_j) (Burda et al. 2016; what the zoo reports for VAEs). Both are below log p(v); the
# second is tighter, and rises towards log p(v) as k grows.


def _log_bernoulli(x, logits):
    """log Bernoulli(x; sigmoid(logits)), summed over the last axis: x * a - softplus(a)."""
    return tf.reduce_sum(x * logits - tf.nn.softplus(logits), axis=-1)


def dbn_log_likelihood_bound(parameters, test_images, train_images, temperatures=14_500, chains=100, seed=0,
                             samples=10, rows_per_call=20_000):
    """Per-image lower bounds on log p(v) (nats) from the same `samples` draws of the recognition pass: (the
    variational bound, the importance-weighted bound, the AIS result for the top RBM). parameters: a DBN export's
    `parameters` signature as arrays."""
    lower = sum(1 for key in parameters if key.startswith("recognition_bias_"))
    R = [tf.constant(parameters[f"recognition_{i}"]) for i in range(lower)]
    r = [tf.constant(parameters[f"recognition_bias_{i}"]) for i in range(lower)]
    G = [tf.constant(parameters[f"generative_{i}"]) for i in range(lower)]
    g = [tf.constant(parameters[f"generative_bias_{i}"]) for i in range(lower)]
    W, b, c = (parameters[k] for k in ("top_weights", "top_visible_bias", "top_hidden_bias"))

    # The top RBM's base rate: the mean activity of its visible layer over training images, recognised upwards.
    h = tf.constant(np.asarray(train_images, np.float32).reshape(len(train_images), -1)[:10_000])
    for i in range(lower):
        h = tf.sigmoid(tf.matmul(h, R[i]) + r[i])
    log_z, log_weights, estimates = two_base_log_partition(W, b, c, base_rate_visible_bias(h.numpy()), temperatures,
                                                           chains, seed)

    @tf.function
    def bounds(v, call_seed):
        v = tf.repeat(v, samples, axis=0)
        states, log_q = [v], 0.0
        for i in range(lower):
            logits = tf.matmul(states[-1], R[i]) + r[i]
            h = tf.cast(tf.random.stateless_uniform(tf.shape(logits), tf.stack([call_seed, i])) < tf.sigmoid(logits),
                        tf.float32)
            log_q += _log_bernoulli(h, logits)
            states.append(h)
        log_p = -free_energy(states[-1], W, b, c) - log_z
        for i in range(lower):
            log_p += _log_bernoulli(states[i], tf.matmul(states[i + 1], G[i]) + g[i])
        w = tf.reshape(tf.cast(log_p - log_q, tf.float64), (-1, samples))
        return tf.reduce_mean(w, axis=1), tf.reduce_logsumexp(w, axis=1) - math.log(samples)

    v = np.asarray(test_images, np.float32).reshape(len(test_images), -1)
    rows = max(1, rows_per_call // samples)
    parts = [bounds(tf.constant(v[s:s + rows]), tf.constant(s + seed, tf.int32)) for s in range(0, len(v), rows)]
    variational, importance_weighted = (np.concatenate([part[j].numpy() for part in parts]) for j in (0, 1))
    low, high = log_z_interval(log_weights)
    return variational, importance_weighted, {
        "log_z": log_z, "log_z_3_sigma": [low, high], "log_weight_spread": float(log_weights.std()),
        "log_z_by_base": estimates}


def dbn_without_bound(config):
    """Why a DBN of this training config has no likelihood bound, or None when it has one."""
    if config.get("labels"):
        return ("a DBN with label units: the bound's AIS runs over Bernoulli units only, and the top RBM's labels "
                "are one softmax group")
    return None


def dbn_likelihood(export, reference):
    """The importance-weighted bound (as for the VAEs), with the variational bound of the same draws beside it."""
    if "parameters" not in export.signatures:
        return {"missing": "the export has no `parameters` signature, which the bound needs"}
    reason = dbn_without_bound(export.card.get("config", {}))
    if reason:
        return {"missing": reason}
    parameters = {k: v.numpy() for k, v in export.signatures["parameters"]().items()}
    config = reference.config
    k = config.dbn_samples
    variational, importance_weighted, ais = dbn_log_likelihood_bound(
        parameters, reference.binarized, reference.train_images, config.ais_temperatures, config.ais_chains,
        config.seed, samples=k)
    n = math.sqrt(len(variational))
    return dict(ais, nll_nats=float(-importance_weighted.mean()), standard_error=float(importance_weighted.std() / n),
                importance_samples=k,
                variational_bound={"nll_nats": float(-variational.mean()),
                                   "standard_error": float(variational.std() / n)},
                method=f"importance-weighted bound, k={k:,} recognition samples per image (the variational bound "
                       f"of the same samples, as Salakhutdinov and Murray report it: {-variational.mean():.2f}); "
                       f"top RBM's log Z by AIS ({config.ais_chains} chains, {config.ais_temperatures:,} "
                       f"temperatures)",
                binarization=_binarization(reference))


# model kind (its model card's `kind`) -> estimator(export, reference)
LIKELIHOODS = {"vae": vae_likelihood, "conv_vae": vae_likelihood, "rbm": rbm_likelihood, "dbn": dbn_likelihood,
               "cvae": vae_likelihood, "conv_cvae": vae_likelihood}
