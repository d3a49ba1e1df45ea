import dataclasses
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_python, tiny_data
from zoo import classifier, data, export, likelihood, train
from zoo.models.dbn import DBN, DBNConfig
from zoo.models.rbm import RBM, RBMConfig

TINY = DBNConfig(layers=(784, 24, 12), fine_tune_epochs=2, sample_steps=10, inpaint_steps=4)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("dbn")
    result = train.train("dbn", TINY, tiny_data(binarize="dynamic"),
                         train.TrainConfig(epochs=2, logdir=str(root / "logs"), export_dir=str(root / "exports")),
                         verbose=0)
    return result, root


@pytest.fixture(scope="module")
def images():
    return data.load(tiny_data()).test.images[:6, ..., None].astype(np.float32) / 255.0


def test_greedy_layers_train_on_the_activities_of_the_layer_below():
    model = DBN(TINY)
    seen = []

    def fit_stage(stage, rbm, transform):
        batch = tf.constant(data.load(tiny_data()).train.images[:8, ..., None] / 255.0, tf.float32)
        seen.append((stage, rbm.visible, transform(batch, tf.constant(0, tf.int64)).numpy(), batch))
        rbm.W.assign(rbm.W + 0.1 * np.random.default_rng(len(seen)).normal(size=rbm.W.shape))  # "training"

    model.pretrain(fit_stage)
    (first, v1, x1, batch), (second, v2, x2, _) = seen
    assert (first, v1, second, v2) == ("layer1", 784, "layer2", 24)
    np.testing.assert_allclose(x1, batch.numpy().reshape(8, 784))
    # Layer 2 sees p(h1 | v) of the trained first layer, which the DBN now holds, tied, as R0 and G0^T.
    expected = tf.sigmoid(batch.numpy().reshape(8, 784) @ model.recognition[0].numpy() + model.recognition_bias[0])
    np.testing.assert_allclose(x2, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.generative[0].numpy(), model.recognition[0].numpy().T)


def test_the_seeds_transposed_variant_starts_the_second_rbm_at_w1_transposed():
    model = DBN(DBNConfig(layers=(784, 16, 784), transpose_init=True))
    starts = {}

    def fit_stage(stage, rbm, transform):
        starts[stage] = rbm.W.numpy().copy()

    model.pretrain(fit_stage)
    np.testing.assert_allclose(starts["layer2"], model.recognition[0].numpy().T)
    assert model.encode(np.zeros((2, 28, 28, 1), np.float32))["latent"].shape == (2, 784)  # top states as images


def test_wake_updates_only_generative_weights_and_sleep_only_recognition_weights(trained, images):
    model = trained[0].model
    v = tf.reshape(images, (-1, 784))
    wake, states, _ = model.wake_phase(v, tf.constant([0, 1]))
    sleep, _, _ = model.sleep_phase(states[-1], tf.constant([0, 2]))
    generative = {w.path for w in model.generative + model.generative_bias}
    recognition = {w.path for w in model.recognition + model.recognition_bias}
    assert set(wake) == generative and set(sleep) == recognition
    for updates, expected in ((wake, generative), (sleep, recognition)):  # by difference, applying one phase
        before = {w.path: w.numpy().copy() for w in model.trainable_variables}
        keras.optimizers.SGD(0.1).apply_gradients([(updates[w.path], w) for w in model.trainable_variables
                                                   if w.path in updates])
        changed = {w.path for w in model.trainable_variables if not np.array_equal(before[w.path], w.numpy())}
        assert changed == expected
        for w in model.trainable_variables:
            w.assign(before[w.path])


def test_one_up_down_step_unties_the_recognition_and_generative_weights():
    model = DBN(TINY)
    model.compile()
    model.pretrain(lambda stage, rbm, transform: None)  # tied: R0 = G0^T
    np.testing.assert_array_equal(model.recognition[0].numpy(), model.generative[0].numpy().T)
    R, G = model.recognition[0].numpy().copy(), model.generative[0].numpy().copy()
    model.train_step(tf.constant(data.load(tiny_data()).train.images[:50, ..., None] / 255.0 > 0.5, tf.float32))
    assert not np.array_equal(model.recognition[0].numpy(), R) and not np.array_equal(model.generative[0].numpy(), G)
    assert not np.allclose(model.recognition[0].numpy(), model.generative[0].numpy().T)


@pytest.mark.parametrize("top_phase", ["cd", "pcd", "fixed"])
def test_the_top_phase_chooses_where_the_top_rbm_s_negative_state_comes_from(top_phase):
    """cd starts at the wake state and leaves the chains; pcd runs the persistent chains and trains on them; fixed
    runs them and leaves the top RBM's weights, while the sleep phase still trains R from them. The batch (37 rows)
    is not the chains' number (100): the chains' negative state and the batch's positive one need not match."""
    model = DBN(dataclasses.replace(TINY, top_phase=top_phase))
    model.compile()
    model.pretrain(lambda stage, rbm, transform: None)
    top = model.top
    before = {w.path: w.numpy().copy() for w in model.weights}
    batch = tf.constant(data.load(tiny_data()).train.images[:37, ..., None] / 255.0 > 0.5, tf.float32)
    logs = model.train_step(batch)
    assert np.isfinite(float(logs["top_reconstruction_mse"]))
    changed = lambda w: not np.array_equal(before[w.path], w.numpy())  # noqa: E731
    assert changed(top.chains) == (top_phase != "cd")
    assert changed(top.W) == (top_phase != "fixed")
    assert changed(model.recognition[0]) and changed(model.generative[0])
    if top_phase != "cd":  # the chains took top_cd_k Gibbs steps: binary states of the top RBM's visible layer
        assert set(np.unique(top.chains.numpy())) <= {0.0, 1.0}


def test_an_unknown_top_phase_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="top_phase must be one of cd, pcd, fixed"):
        dataclasses.replace(TINY, top_phase="frozen")


def test_training_exports_the_greedy_and_the_fine_tuned_dbn(trained):
    result, root = trained
    assert result.greedy_export_path.endswith("dbn_greedy/1") and result.export_path.endswith("dbn_finetuned/1")
    greedy, tuned = (export.read_card(p) for p in (result.greedy_export_path, result.export_path))
    assert greedy["stage"] == "greedy" and tuned["stage"] == "fine-tuned"
    assert set(greedy["layers"]) == {"layer1", "layer2"}
    assert {"reconstruction_mse", "wake_error", "sleep_error", "top_reconstruction_mse"} <= set(tuned["final_metrics"])
    assert len(result.history["wake_error"]) == 2


def test_a_run_started_from_an_export_skips_the_greedy_stages_and_fine_tunes_its_weights(trained, tmp_path):
    """--init-from for a layer-wise model: the run starts at the export's weights and is its up-down fine-tuning
    alone (no layer stages, no greedy export), and the card names its start."""
    start = trained[0].greedy_export_path
    config = dataclasses.replace(TINY, fine_tune_epochs=1, fine_tune_learning_rate=1e-9)  # the weights barely move
    result = train.train("dbn", config, tiny_data(binarize="dynamic"),
                         train.TrainConfig(epochs=2, init_from=start, logdir=str(tmp_path / "logs"),
                                           export_dir=str(tmp_path / "exports")), verbose=0)
    assert result.greedy_export_path is None and result.export_path.endswith("dbn_finetuned/1")
    assert len(result.history["wake_error"]) == 1 and not os.path.exists(os.path.join(result.run_dir, "layer1"))
    card = export.read_card(result.export_path)
    assert card["init_from"]["export"] == start and "layers" not in card and card["epochs"] == 0  # no greedy stage
    greedy = export.load_model(start, compile=False)
    assert all(np.allclose(mine.numpy(), theirs.numpy(), atol=1e-5)
               for mine, theirs in zip(result.model.serving_weights(), greedy.serving_weights()))


def test_verbs_shapes_ranges_and_seeds(trained, images):
    model = trained[0].model
    a = model.sample(5, 1).numpy()
    assert a.shape == (5, 28, 28, 1) and 0 <= a.min() and a.max() <= 1
    np.testing.assert_array_equal(a, model.sample(5, 1))
    assert not np.array_equal(a, model.sample(5, 2))
    code = model.encode(images)["latent"].numpy()
    assert code.shape == (6, 12) and 0 <= code.min() and code.max() <= 1
    np.testing.assert_allclose(model.reconstruct(images), model.decode(code), rtol=1e-6, atol=1e-7)
    stochastic = model.reconstruct(images, steps=5, seed=1).numpy()
    assert stochastic.shape == images.shape and 0 <= stochastic.min() and stochastic.max() <= 1
    np.testing.assert_array_equal(stochastic, model.reconstruct(images, steps=5, seed=1))
    mask = (np.random.default_rng(0).random(images.shape) < 0.5).astype(np.float32)
    filled = model.inpaint(images, mask, 3).numpy()
    np.testing.assert_array_equal(filled[mask == 1], images[mask == 1])
    np.testing.assert_array_equal(filled, model.inpaint(images, mask, 3))


CHECK_DBN_EXPORT = r"""
import json, sys
import numpy as np
import tensorflow as tf
out = {}
for path in sys.argv[1:]:
    sig = tf.saved_model.load(path).signatures
    assert not any(name == "zoo" or name.startswith("zoo.") for name in sys.modules)
    images = (np.random.default_rng(0).random((3, 28, 28, 1)) < 0.3).astype(np.float32)
    mask = (np.random.default_rng(1).random(images.shape) < 0.5).astype(np.float32)
    s = sig["sample"](num_samples=tf.constant(2), seed=tf.constant(0))["images"].numpy()
    code = sig["encode"](images=tf.constant(images))["latent"].numpy()
    filled = sig["inpaint"](images=tf.constant(images), mask=tf.constant(mask), seed=tf.constant(1))["images"].numpy()
    assert np.array_equal(filled[mask == 1], images[mask == 1])
    back = sig["decode"](latent=tf.constant(code))["images"].numpy()
    assert np.allclose(back, sig["reconstruct"](images=tf.constant(images))["images"].numpy(), atol=1e-6)
    out[path] = [list(s.shape), list(code.shape), sorted(sig["parameters"]().keys())]
print(json.dumps(out))
"""


def test_both_exports_load_in_a_fresh_process(trained):
    result, _ = trained
    done = run_python(CHECK_DBN_EXPORT, result.greedy_export_path, result.export_path)
    assert done.returncode == 0, done.stderr[-3000:]
    shapes = json.loads(done.stdout.strip().splitlines()[-1])
    for sample_shape, code_shape, keys in shapes.values():
        assert sample_shape == [2, 28, 28, 1] and code_shape == [3, 12]
        assert {"top_weights", "recognition_0", "generative_0"} <= set(keys)


def test_the_likelihood_bound_matches_its_exact_value_and_stays_below_log_p():
    # A DBN small enough to enumerate: 8 units in h1, 10 on top.
    model = DBN(DBNConfig(layers=(784, 8, 10)))
    rng = np.random.default_rng(0)
    for w in model.trainable_variables:
        w.assign(rng.normal(0, 0.3, w.shape).astype(np.float32))
    parameters = {k: v.numpy().astype(np.float64) for k, v in model.parameters().items()}
    v = (data.load(tiny_data()).test.images[:4].reshape(4, 784) / 255.0 > 0.5).astype(np.float64)
    train_images = data.load(tiny_data()).train.images / 255.0
    bound, importance_weighted, ais = likelihood.dbn_log_likelihood_bound(
        {k: x.astype(np.float32) for k, x in parameters.items()}, v, train_images, temperatures=3000, chains=300,
        samples=4000)

    # Exactly, over the 256 states of h1: log p(v) and E_q[log p(v, h1) - log q(h1|v)].
    W, b, c = parameters["top_weights"], parameters["top_visible_bias"], parameters["top_hidden_bias"]
    log_z = likelihood.exact_log_partition(W, b, c)
    h1 = ((np.arange(256)[:, None] >> np.arange(8)) & 1).astype(np.float64)
    log_p_h1 = h1 @ b + np.logaddexp(0, h1 @ W + c).sum(axis=1) - log_z
    logits_v = h1 @ parameters["generative_0"] + parameters["generative_bias_0"]  # [256, 784]
    logits_q = v @ parameters["recognition_0"] + parameters["recognition_bias_0"]  # [4, 8]
    for n in range(4):
        log_p_v_h1 = (v[n] * logits_v - np.logaddexp(0, logits_v)).sum(axis=1)
        log_joint = log_p_v_h1 + log_p_h1
        log_q = (h1 * logits_q[n] - np.logaddexp(0, logits_q[n])).sum(axis=1)
        exact_log_p = np.logaddexp.reduce(log_joint)
        exact_bound = np.sum(np.exp(log_q) * (log_joint - log_q))
        assert bound[n] == pytest.approx(exact_bound, abs=0.05 * abs(exact_bound) ** 0.5 + 1.0)
        assert exact_bound <= exact_log_p + 1e-9
        # The importance-weighted bound of the same 4,000 draws: below log p(v) (up to AIS's error in log Z), and
        # most of the way up from the variational bound, which these random weights leave 33-44 nats below it.
        assert importance_weighted[n] <= exact_log_p + 1.0
        assert exact_log_p - importance_weighted[n] < 0.35 * (exact_log_p - exact_bound)
    assert abs(ais["log_z"] - log_z) < 1.0


def test_centered_layers_are_centered_on_their_own_data_and_stacked_with_their_offsets_folded_in():
    model = DBN(DBNConfig(layers=(784, 24, 12), centered=True, persistent=True))
    train = data.load(tiny_data()).train
    train_images = train.images[:300]
    train = type(train)(train_images, train.labels[:300])
    rbms, means = [], []

    def fit_stage(stage, rbm, transform):
        for callback in rbm.layer_callbacks(train, transform):  # what zoo.train's fit_layer runs
            callback.set_model(rbm)
            callback.on_train_begin()
        means.append(np.concatenate([np.reshape(transform(tf.constant(data.as_images(train_images[i:i + 100])),
                                                          tf.constant(i // 100, tf.int64)), (100, -1))
                                     for i in range(0, 300, 100)]).mean(axis=0))
        rng = np.random.default_rng(len(rbms))  # "training": weights and offsets away from their starts
        rbm.W.assign(rbm.W + rng.normal(size=rbm.W.shape))
        rbm.hidden_offset.assign(rng.uniform(0.1, 0.9, size=rbm.hidden_offset.shape))
        rbms.append(rbm)

    model.pretrain(fit_stage)
    for rbm, mean in zip(rbms, means):  # mu: the mean of the layer's own data (pixels, then p(h1 | v))
        np.testing.assert_allclose(rbm.visible_offset.numpy(), np.clip(mean, 1e-3, 1 - 1e-3), rtol=1e-5, atol=1e-6)
    first, top = rbms
    np.testing.assert_allclose(model.recognition[0].numpy(), first.W.numpy())
    np.testing.assert_allclose(model.recognition_bias[0].numpy(), first.hidden_bias_folded().numpy(), atol=1e-6)
    np.testing.assert_allclose(model.generative_bias[0].numpy(), first.visible_bias_folded().numpy(), atol=1e-6)
    assert not model.top.config.centered  # an ordinary RBM with the same free energy as the trained top layer
    v = tf.constant(np.random.default_rng(0).integers(0, 2, (5, 24)), tf.float32)
    difference = (model.top.free_energy(v) - top.free_energy(v)).numpy()
    np.testing.assert_allclose(difference, difference[0], atol=1e-4)


def all_states(n):
    return tf.constant([[(state >> i) & 1 for i in range(n)] for state in range(2 ** n)], tf.float32)


@pytest.mark.parametrize("centered", [False, True])
def test_layers_started_reversed_put_the_marginal_of_the_layer_below_on_their_visible_units(centered):
    """784-16-12-32 with transpose_init: the second RBM (12 hidden units) starts as the first reversed, cut to the
    12 pixel units whose terms vary (the other 772 have weights 1000 times smaller, and their tangents stand in for
    them); the third (32 hidden units) as the second reversed, padded with 20 units. Each one's marginal over its
    visible units, over every state, is the one the RBM below gives its hidden units (the free energy of the RBM
    below with its layers swapped), also after centering's offsets are set from the data; persistent chains start
    at states drawn from the chains below."""
    model = DBN(DBNConfig(layers=(784, 16, 12, 32), transpose_init=True, persistent=True, centered=centered))
    assert [model.config.starts_reversed(layer) for layer in range(3)] == [False, True, True]
    train = data.load(tiny_data()).train
    train = type(train)(train.images[:200], train.labels[:200])
    rng = np.random.default_rng(0)
    active = np.sort(rng.choice(784, 12, replace=False))
    rbms, starts = [], []

    def fit_stage(stage, rbm, transform):
        for callback in rbm.layer_callbacks(train, transform):  # what zoo.train's fit_layer runs
            callback.set_model(rbm)
            callback.on_train_begin()
        starts.append({**rbm.parameters(), "chains": rbm.chains.numpy().copy()})
        W = rng.normal(size=rbm.W.shape)  # "training": each layer away from its start
        if stage == "layer1":
            W[np.setdiff1d(np.arange(784), active)] *= 1e-3  # pixels whose terms barely vary: tangents
        rbm.W.assign(W)
        rbm.visible_bias.assign(rbm.visible_bias + rng.normal(size=rbm.visible_bias.shape))
        rbm.hidden_bias.assign(rbm.hidden_bias + rng.normal(size=rbm.hidden_bias.shape))
        rbm.chains.assign(tf.cast(rng.random(rbm.chains.shape) < 0.5, tf.float32))
        rbms.append(rbm)

    model.pretrain(fit_stage)
    for below, start, width in ((rbms[0], starts[1], 16), (rbms[1], starts[2], 12)):
        states = all_states(width)
        theirs = below.parameters()
        difference = (likelihood.free_energy(states, tf.transpose(theirs["weights"]), theirs["hidden_bias"],
                                             theirs["visible_bias"])
                      - likelihood.free_energy(states, start["weights"], start["visible_bias"], start["hidden_bias"]))
        difference = difference.numpy()
        np.testing.assert_allclose(difference, difference[0], atol=2e-3)
    first_weights = rbms[0].parameters()["weights"].numpy()
    np.testing.assert_allclose(starts[1]["weights"].numpy(), first_weights[active].T, atol=1e-6)
    np.testing.assert_allclose(starts[2]["weights"][:, :16].numpy(), rbms[1].parameters()["weights"].numpy().T,
                               atol=1e-6)
    assert starts[2]["weights"].shape == (12, 32)
    for start, width in zip(starts[1:], (16, 12)):  # states drawn from the chains below, not uniform noise
        assert start["chains"].shape == (100, width) and set(np.unique(start["chains"])) <= {0.0, 1.0}


def test_zoo_train_centers_each_layer_on_its_data_before_its_first_step(tmp_path):
    config = DBNConfig(layers=(784, 16, 8), centered=True, persistent=True, learning_rate_decay=True,
                       weight_decay=1e-4, fine_tune_epochs=0)
    result = train.train("dbn", config, tiny_data(binarize="dynamic"),
                         train.TrainConfig(epochs=1, logdir=str(tmp_path / "logs"), export=False), verbose=0)
    pixels = data.load(tiny_data()).train.images.reshape(-1, 784).mean(axis=0) / 255.0
    # Layer 1's centered RBM started at the base-rate model b' = logit(mu), so the stacked generative biases are still
    # the pixels' log-odds after one short epoch (an uncentered RBM starts at zeros and is within 0.2 of them here).
    mu = np.clip(pixels, 1e-3, 1 - 1e-3)
    np.testing.assert_allclose(result.model.generative_bias[0].numpy(), np.log(mu / (1 - mu)), atol=0.2)
    assert np.all(np.isfinite(result.model.top.W.numpy()))


def test_propagated_samples_draw_their_own_noise_for_every_layer_and_batch():
    """Each (layer, batch index) has its own noise, also where 1000 * layer + index would collide."""
    model = DBN(DBNConfig(layers=(784, 8, 8, 8), propagate="samples"))
    half = (tf.zeros((784, 8)), tf.zeros(8)), (tf.zeros((8, 8)), tf.zeros(8))  # p = 1/2 for every unit
    images = tf.zeros((50, 28, 28, 1))
    first_layer_at_1000 = model.greedy_transform(half[:1])(images, tf.constant(1000, tf.int64))
    second_layer_at_0 = model.greedy_transform(half)(images, tf.constant(0, tf.int64))
    assert not np.array_equal(first_layer_at_1000, second_layer_at_0)
    again = model.greedy_transform(half)(images, tf.constant(0, tf.int64))
    np.testing.assert_array_equal(second_layer_at_0, again)  # and the same key gives the same draw
    assert set(np.unique(again)) == {0.0, 1.0} and 0.3 < float(tf.reduce_mean(again)) < 0.7


def test_label_units_are_one_softmax_group_and_sampled_one_hot():
    rbm = RBM(RBMConfig(visible=6, hidden=4, label_units=3), seed=0)
    rbm.W.assign(np.random.default_rng(0).normal(size=(6, 4)))
    rbm.visible_bias.assign([0.5, -0.5, 0.0, 1.0, 0.0, -1.0])
    h = tf.constant([[1.0, 0.0, 1.0, 1.0]] * 20_000)
    p = rbm.visible_probabilities(h).numpy()
    np.testing.assert_allclose(p[:, 3:].sum(axis=1), 1.0, rtol=1e-6)  # softmax over the label group
    np.testing.assert_allclose(p[0, :3], tf.sigmoid(h[:1] @ rbm.W.numpy().T + rbm.visible_bias)[0, :3], rtol=1e-5)
    v = rbm.sample_v_given_h(h, tf.constant([1, 2])).numpy()
    assert set(np.unique(v)) <= {0.0, 1.0} and np.all(v[:, 3:].sum(axis=1) == 1)  # exactly one label on
    np.testing.assert_allclose(v.mean(axis=0), p[0], atol=0.015)  # each label as often as its probability
    with pytest.raises(ValueError, match="gibbs with label units"):
        RBMConfig(visible=6, hidden=4, label_units=3, sampler="tempering")


def test_a_labelled_top_rbm_is_centered_on_the_labels_too_and_classifies_by_its_free_energy():
    model = DBN(DBNConfig(layers=(784, 24, 12), labels=True, centered=True, persistent=True, transpose_init=True))
    split = data.load(tiny_data()).train
    train = type(split)(split.images[:300], split.labels[:300])
    seen = {}

    def fit_stage(stage, rbm, transform):
        for callback in rbm.layer_callbacks(train, transform):
            callback.set_model(rbm)
            callback.on_train_begin()
        batch = (tf.constant(data.as_images(train.images[:50])), tf.constant(train.labels[:50]))
        seen[stage] = rbm, rbm.parameters(), rbm.chains.numpy().copy(), transform(batch, tf.constant(0, tf.int64))
        rbm.W.assign(rbm.W + np.random.default_rng(len(seen)).normal(size=rbm.W.shape))  # "training"

    model.pretrain(fit_stage)
    top, start, chains, top_data = seen["layer2"]
    assert top.visible == 24 + 10 and seen["layer1"][0].visible == 784  # the labels join the top RBM only
    np.testing.assert_array_equal(top_data[:, 24:], np.eye(10)[train.labels[:50]])  # its data: h1 and the one-hot
    frequencies = np.bincount(train.labels, minlength=10) / len(train.labels)
    np.testing.assert_allclose(top.visible_offset.numpy()[24:], frequencies, atol=1e-6)  # mu of the labels
    # Started as the layer below reversed, with unconnected uniform label units and one-hot chains.
    np.testing.assert_allclose(start["weights"].numpy()[24:], 0.0, atol=1e-6)
    assert np.all(chains[:, 24:].sum(axis=1) == 1)
    # classify: p(y | h) = softmax_y(-F(h, y)), here with one matmul for the ten labels.
    h = tf.constant(np.random.default_rng(1).random((5, 24)), tf.float32)
    every_label = model.with_labels(tf.repeat(h, 10, axis=0), tf.tile(tf.range(10), [5]))
    expected = tf.nn.softmax(-tf.reshape(model.top.free_energy(every_label), (5, 10)), axis=-1)
    np.testing.assert_allclose(model.label_probabilities(h), expected, rtol=1e-4, atol=1e-6)


def test_a_dbn_with_labels_learns_to_classify_and_to_draw_the_digit_asked(tmp_path):
    """Hinton et al.'s (2006) label units on a small DBN trained on 1,000 images: far above chance (0.1) both at
    naming test digits and, with the label clamped, at drawing the one asked for."""
    config = DBNConfig(layers=(784, 64, 64), labels=True, centered=True, persistent=True, transpose_init=True,
                       fine_tune_epochs=2, sample_steps=50)
    result = train.train("dbn", config, tiny_data(limit=1000), train.TrainConfig(
        epochs=5, logdir=str(tmp_path / "logs"), export_dir=str(tmp_path / "exports")), verbose=0)
    model, test = result.model, data.load(tiny_data()).test
    assert "label_error" in result.history and result.history["label_error"][-1] < 0.7
    probabilities = np.asarray(model.classify(data.as_images(test.images[:500])))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert np.mean(probabilities.argmax(axis=1) == test.labels[:500]) > 0.4
    samples = np.concatenate([np.asarray(model.sample(40, seed=c, label=c)) for c in range(10)])
    judge = classifier.load_frozen()
    assert np.mean(judge(samples)[0].argmax(axis=1) == np.repeat(np.arange(10), 40)) > 0.2
    with pytest.raises(ValueError, match="use method='gibbs'"):
        model.sample(2, 0, method="annealed")
    card = export.read_card(result.export_path)
    assert card["data"]["labels"] is True and "classify" in card["signatures"]
    # No likelihood bound for label units, and the leaderboard's update reads the same decision from the card.
    reason = likelihood.dbn_without_bound(card["config"])
    assert reason and likelihood.dbn_likelihood(export.Export(result.export_path), None) == {"missing": reason}
