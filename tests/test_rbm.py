from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_python, tiny_data
from zoo import data, evaluate, export, likelihood, train
from zoo.models.rbm import RBM, RBMConfig, cd_gradient

TINY = RBMConfig(hidden=16, chains=20, sample_steps=20, inpaint_steps=10)


def tiny_rbm(config=TINY, seed=0, optimizer=None):
    keras.utils.set_random_seed(seed)
    model = RBM(config, seed=seed)
    model.compile(optimizer=optimizer)
    model.build_for_images()
    return model


def test_free_energy_matches_numpy():
    model = tiny_rbm()
    rng = np.random.default_rng(0)
    model.W.assign(rng.normal(0, 0.1, (784, 16)).astype(np.float32))
    model.visible_bias.assign(rng.normal(0, 0.1, 784).astype(np.float32))
    model.hidden_bias.assign(rng.normal(0, 0.1, 16).astype(np.float32))
    v = (rng.random((5, 784)) < 0.3).astype(np.float32)
    W, b, c = (x.numpy().astype(np.float64) for x in (model.W, model.visible_bias, model.hidden_bias))
    expected = -v @ b - np.sum(np.log1p(np.exp(v @ W + c)), axis=1)
    np.testing.assert_allclose(model.free_energy(v).numpy(), expected, rtol=1e-5)


def test_the_cd_gradient_is_the_difference_of_the_data_and_model_expectations():
    rng = np.random.default_rng(0)
    v_data, v_model = rng.random((5, 7)), rng.random((3, 7))  # PCD's chains need not number the batch's images
    h_data, h_model = rng.random((5, 4)), rng.random((3, 4))
    weights, visible_bias, hidden_bias = (g.numpy() for g in cd_gradient(
        *(tf.constant(x, tf.float32) for x in (v_data, h_data, v_model, h_model))))
    np.testing.assert_allclose(weights, -(v_data.T @ h_data / 5 - v_model.T @ h_model / 3), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(visible_bias, -(v_data.mean(0) - v_model.mean(0)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hidden_bias, -(h_data.mean(0) - h_model.mean(0)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("steps_per_execution, images_measured", [(1, 300), (3, 100)])
def test_training_figures_come_from_the_steps_that_report_them(steps_per_execution, images_measured):
    p = data.datasets(tiny_data(binarize="dynamic"))  # 6 steps of 50 images
    model = RBM(TINY)
    model.compile(steps_per_execution=steps_per_execution)
    history = model.fit(p.train, steps_per_epoch=p.steps_per_epoch, epochs=1, verbose=0).history
    assert p.steps_per_epoch == 6 and model.trackers["free_energy"].count.numpy() == images_measured
    assert np.isfinite(history["free_energy"][0]) and history["free_energy"][0] != 0


@pytest.mark.parametrize("negative_phase", ["cd", "pcd"])
def test_cd_and_pcd_lower_the_reconstruction_error_and_raise_the_pseudo_likelihood(negative_phase):
    p = data.datasets(tiny_data(binarize="dynamic", batch_size=30))
    model = tiny_rbm(RBMConfig(hidden=16, chains=20, negative_phase=negative_phase, learning_rate=0.1))
    history = model.fit(p.train, steps_per_epoch=p.steps_per_epoch, validation_data=p.validation, epochs=10,
                        verbose=0).history  # 100 steps
    assert history["val_reconstruction_mse"][-1] < 0.8 * history["val_reconstruction_mse"][0]
    assert history["val_pseudo_log_likelihood"][-1] > history["val_pseudo_log_likelihood"][0]
    if negative_phase == "pcd":
        chains = model.chains.numpy()
        assert set(np.unique(chains)) <= {0.0, 1.0}  # the chains were carried and updated with binary states


def test_inpaint_keeps_observed_pixels_and_the_assignments_variant_is_not_told_which_are_missing():
    model = tiny_rbm()
    images = data.load(tiny_data()).test.images[:6, ..., None].astype(np.float32) / 255.0
    rng = np.random.default_rng(0)
    mask = (rng.random(images.shape) > 0.5).astype(np.float32)
    filled = model.inpaint(images, mask, seed=1).numpy()
    np.testing.assert_array_equal(filled[mask == 1], images[mask == 1])
    np.testing.assert_array_equal(filled, model.inpaint(images, mask, seed=1))
    # masked_input_only: the chain runs from the masked image unclamped, so which pixels the mask calls observed
    # changes only which of its values are kept: on the pixels both masks call missing, the completions agree.
    masked = images * mask
    other = np.where(rng.random(images.shape) > 0.5, 1.0, mask).astype(np.float32)  # more pixels "observed"
    blind, blind_other = (model.inpaint(masked, m, seed=1, masked_input_only=True).numpy() for m in (mask, other))
    both_missing = (mask == 0) & (other == 0)
    np.testing.assert_allclose(blind[both_missing], blind_other[both_missing], rtol=1e-6)
    np.testing.assert_array_equal(blind[mask == 1], masked[mask == 1])
    clamped, clamped_other = (model.inpaint(masked, m, seed=1).numpy() for m in (mask, other))
    assert not np.allclose(clamped[both_missing], clamped_other[both_missing])  # told: the evidence differs
    # An RBM without weights draws every pixel from its own bias: both fill in exactly sigmoid(b).
    independent = tiny_rbm()
    independent.W.assign(tf.zeros_like(independent.W))
    independent.visible_bias.assign(tf.linspace(-2.0, 2.0, 784))
    expected = np.broadcast_to(tf.sigmoid(independent.visible_bias).numpy().reshape(1, 28, 28, 1), images.shape)
    for variant in (False, True):
        completed = independent.inpaint(masked, mask, seed=2, masked_input_only=variant).numpy()
        np.testing.assert_allclose(completed[mask == 0], expected[mask == 0], rtol=1e-5)


def test_mirrored_cd_update_matches_one_device(two_cpus):
    config = tiny_data(binarize="dynamic", batch_size=60)
    weights = []
    for strategy in (tf.distribute.get_strategy(), two_cpus):
        p = data.datasets(config)
        with strategy.scope():
            model = tiny_rbm(optimizer=keras.optimizers.SGD(0.1))
        model.fit(p.train, steps_per_epoch=p.steps_per_epoch, epochs=1, verbose=0)
        weights.append([v.numpy() for v in model.trainable_variables])
    for one, two in zip(*weights):
        np.testing.assert_allclose(one, two, rtol=1e-4, atol=1e-6)


CHECK_RBM_EXPORT = r"""
import sys
import numpy as np
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
assert not any(name == "zoo" or name.startswith("zoo.") for name in sys.modules)
sig = model.signatures
assert sorted(sig) == ["decode", "encode", "generate", "inpaint", "parameters", "reconstruct", "sample",
                       "serving_default"]
a = sig["sample"](num_samples=tf.constant(4), seed=tf.constant(1))["images"].numpy()
assert a.shape == (4, 28, 28, 1) and 0 <= a.min() and a.max() <= 1
assert np.array_equal(a, sig["sample"](num_samples=tf.constant(4), seed=tf.constant(1))["images"].numpy())
images = (np.random.default_rng(0).random((3, 28, 28, 1)) < 0.3).astype(np.float32)
code = sig["encode"](images=tf.constant(images))["latent"]
assert code.shape == (3, 16)
back = sig["decode"](latent=code)["images"].numpy()
assert np.allclose(back, sig["reconstruct"](images=tf.constant(images))["images"].numpy(), atol=1e-6)
mask = (np.random.default_rng(1).random(images.shape) < 0.5).astype(np.float32)
filled = sig["inpaint"](images=tf.constant(images), mask=tf.constant(mask), seed=tf.constant(2))["images"].numpy()
assert np.array_equal(filled[mask == 1], images[mask == 1])
parameters = sig["parameters"]()
assert parameters["weights"].shape == (784, 16) and parameters["hidden_bias"].shape == (16,)
print("ok")
"""


def test_export_loads_in_a_fresh_process_with_every_rbm_signature(tmp_path):
    path = export.export_model(tiny_rbm(), str(tmp_path), "rbm", {"kind": "rbm"})
    done = run_python(CHECK_RBM_EXPORT, path)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def trained_tiny_rbm(hidden):
    p = data.datasets(tiny_data(binarize="dynamic", batch_size=30))
    model = tiny_rbm(RBMConfig(hidden=hidden, learning_rate=0.1))
    model.fit(p.train, steps_per_epoch=p.steps_per_epoch, epochs=10, verbose=0)
    return model


def test_ais_agrees_with_the_exact_log_partition_function():
    model = trained_tiny_rbm(hidden=12)
    W, b, c = (v.numpy() for v in (model.W, model.visible_bias, model.hidden_bias))
    exact = likelihood.exact_log_partition(W, b, c)
    # Brute force over the 2^12 hidden states, independently, in NumPy.
    h = ((np.arange(4096)[:, None] >> np.arange(12)) & 1).astype(np.float64)
    terms = h @ c.astype(np.float64) + np.logaddexp(0, h @ W.T.astype(np.float64) + b).sum(axis=1)
    assert exact == pytest.approx(terms.max() + np.log(np.exp(terms - terms.max()).sum()), abs=1e-6)

    base = likelihood.base_rate_visible_bias(data.load(tiny_data()).train.images / 255.0)
    estimate, log_weights = likelihood.ais_log_partition(W, b, c, base, likelihood.ais_temperatures(3000),
                                                         chains=300, seed=0)
    assert abs(estimate - exact) < 1.0  # stated tolerance: 1 nat at 3,000 temperatures and 300 chains
    assert log_weights.shape == (300,) and np.isfinite(log_weights).all()
    low, high = likelihood.log_z_interval(log_weights)
    assert low < estimate < high
    # Two bases, the larger kept: also within the tolerance, on an RBM whose marginals are far from the data's.
    far = (W, np.full_like(b, -1.0), c + 2.0)
    exact_far = likelihood.exact_log_partition(*far)
    best, _, estimates = likelihood.two_base_log_partition(*far, base, 3000, chains=300)
    assert best == max(estimates.values()) and abs(best - exact_far) < 1.0


def test_the_likelihood_of_an_export_comes_from_its_parameters_signature(tmp_path):
    model = trained_tiny_rbm(hidden=16)
    path = export.export_model(model, str(tmp_path), "rbm", {"kind": "rbm"})
    splits = data.load(tiny_data())
    test = (splits.test.images[:50, ..., None] / 255.0 > 0.5).astype(np.float32)
    reference = SimpleNamespace(binarized=test, train_images=splits.train.images / 255.0,
                                config=evaluate.EvalConfig(ais_chains=300, ais_temperatures=3000))
    result = likelihood.rbm_likelihood(export.Export(path), reference)
    assert abs(result["log_z"] - result["exact_log_z"]) < 1.0
    expected = result["exact_log_z"] + model.free_energy(test.reshape(-1, 784)).numpy().mean()
    assert result["exact_nll_nats"] == pytest.approx(expected, abs=1e-3)
    assert result["nll_nats"] > 0 and result["standard_error"] > 0
    # RAISE on the same 50 images: conservative, so at or above the exact negative log-likelihood.
    assert result["raise"]["images"] == 50 and result["raise"]["nll_nats"] > result["exact_nll_nats"] - 0.1


def test_zoo_train_logs_the_free_energy_gap_and_decays_the_learning_rate_to_zero(tmp_path):
    config = RBMConfig(hidden=16, chains=20, sample_steps=20, inpaint_steps=10, negative_phase="pcd",
                       learning_rate_decay=True)
    result = train.train("rbm", config, tiny_data(binarize="dynamic", batch_size=30),
                         train.TrainConfig(epochs=2, logdir=str(tmp_path / "logs"), export=False), verbose=0)
    gaps = result.history["free_energy_gap"]
    assert len(gaps) == 2 and all(np.isfinite(gaps))
    # The gap is the validation subset's mean free energy minus the training subset's, recomputed here.
    splits = data.load(tiny_data())
    rng = np.random.default_rng(0)
    train_v, validation_v = ((rng.random(x[:1000].shape) < x[:1000] / 255.0).reshape(-1, 784).astype(np.float32)
                             for x in (splits.train.images, splits.validation.images))
    model = result.model
    expected = model.free_energy(validation_v).numpy().mean() - model.free_energy(train_v).numpy().mean()
    assert gaps[-1] == pytest.approx(expected, rel=1e-4)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)  # linear decay over the run
