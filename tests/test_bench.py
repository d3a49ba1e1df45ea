"""zoo.bench's own pieces: its FLOP counts, its timer, its reference computations. (The benchmarks themselves are
timed by running `python -m zoo.bench`, never in the test suite.)"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo import bench
from zoo.bench import cd1_product_chain, forward_flops
from zoo.models.gan import DCGAN, DCGANConfig


def test_the_benchmarks_product_chain_runs_cd1s_products_in_order():
    """zoo.bench's reference for the products in CD-1's order computes what it says, round after round."""
    rng = np.random.default_rng(0)
    v = (rng.random((6, 784)) < 0.3).astype(np.float32)
    weights = rng.normal(0, 0.01, (784, 5)).astype(np.float32)
    expected = weights.astype(np.float64)
    for _ in range(3):
        h = v @ expected
        p = h @ expected.T
        h_model = p @ expected
        expected = expected + 1e-6 * (v.T @ h + p.T @ h_model)
    result = tf.function(cd1_product_chain)(tf.constant(v), tf.constant(weights), tf.constant(3)).numpy()
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-8)
    assert not np.allclose(result, weights)  # the updates were applied


def test_the_benchmarks_steady_epoch_timer_leaves_out_the_first_call(monkeypatch):
    """SteadyEpochTimer times an epoch from the end of its first compiled call and scales to the whole epoch."""
    clock = iter([0.0, 5.0, 6.0, 7.0])  # epoch begins; three calls of two steps end: the first took 5 s, the others 1 s
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(clock))
    timer = bench.SteadyEpochTimer()
    timer.on_train_begin()
    timer.on_epoch_begin(0)
    for last_step in (1, 3, 5):
        timer.on_train_batch_end(last_step)
    timer.on_epoch_end(0)
    assert timer.seconds == [pytest.approx(3.0)]  # 4 steps in 2 s: an epoch of 6 steps at that pace


def test_the_benchmarks_steady_epoch_timer_times_an_epoch_of_one_call_whole(monkeypatch):
    """With one compiled call there is no steady part to scale: the epoch is timed from its start, not divided by 0."""
    clock = iter([2.0, 4.5, 5.0])  # epoch begins, its only call ends, the epoch ends
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(clock))
    timer = bench.SteadyEpochTimer()
    timer.on_train_begin()
    timer.on_epoch_begin(0)
    timer.on_train_batch_end(9)
    timer.on_epoch_end(0)
    assert timer.seconds == [pytest.approx(3.0)]


def test_the_benchmarks_flop_count_matches_hand_counts():
    network = keras.Sequential([keras.layers.Reshape((1, 1, 4)),
                                keras.layers.Conv2DTranspose(3, 4, padding="valid"),  # 1x1x4 -> 4x4x3
                                keras.layers.Conv2D(5, 2, strides=2, padding="same"),  # 4x4x3 -> 2x2x5
                                keras.layers.Flatten(), keras.layers.Dense(7)])
    assert forward_flops(network, (4,)) == 2 * (4 * 16 * 3 + 2 * 2 * 5 * 4 * 3 + 20 * 7)
    model = DCGAN(DCGANConfig())  # the lab's DCGAN: about 137 and 17 MFLOP per image
    assert round(forward_flops(model.generator, (100,)) / 1e6) == 137
    assert round(forward_flops(model.discriminator, (32, 32, 1)) / 1e6) == 17


def test_an_unknown_quality_target_is_a_message_with_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        bench.main(["quality", "--models", "vae,dcgan"])
    assert exit_.value.code == 2 and "--models: unknown dcgan; choose from vae, rbm, gan" in capsys.readouterr().err


def test_the_keras_conditional_gan_peer_trains_and_exports_under_the_conditional_contract(tmp_path):
    from zoo import export
    path, _ = bench.train_conditional_peer(1, str(tmp_path), batch_size=50, limit=200)
    exported = export.Export(path)
    assert exported.conditional and exported.card["kind"] == "keras_conditional_gan"
    images, labels = exported.class_samples(3, seed=0)
    assert images.shape == (30, 28, 28, 1) and list(labels[:4]) == [0, 0, 0, 1]
    one = exported.signatures["generate"](seeds=tf.constant([7]), labels=tf.constant([2]))["images"]
    again = exported.signatures["sample"](num_samples=tf.constant(1), seed=tf.constant(7), label=tf.constant(2))
    np.testing.assert_allclose(one, again["images"], atol=1e-6)  # generate's row is sample(1, seed, label)
