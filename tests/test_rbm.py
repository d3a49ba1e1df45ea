import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_python, tiny_data
from zoo import data, export
from zoo.models.rbm import RBM, RBMConfig

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


@pytest.mark.parametrize("persistent", [False, True])
def test_cd_and_pcd_lower_the_reconstruction_error_and_raise_the_pseudo_likelihood(persistent):
    p = data.datasets(tiny_data(binarize="dynamic", batch_size=30))
    model = tiny_rbm(RBMConfig(hidden=16, chains=20, persistent=persistent, learning_rate=0.1))
    history = model.fit(p.train, steps_per_epoch=p.steps_per_epoch, validation_data=p.validation, epochs=10,
                        verbose=0).history  # 100 steps
    assert history["val_reconstruction_mse"][-1] < 0.8 * history["val_reconstruction_mse"][0]
    assert history["val_pseudo_log_likelihood"][-1] > history["val_pseudo_log_likelihood"][0]
    if persistent:
        chains = model.chains.numpy()
        assert set(np.unique(chains)) <= {0.0, 1.0}  # the chains were carried and updated with binary states


def test_inpaint_keeps_observed_pixels_and_the_seeds_variant_runs():
    model = tiny_rbm()
    images = data.load(tiny_data()).test.images[:6, ..., None].astype(np.float32) / 255.0
    mask = (np.random.default_rng(0).random(images.shape) > 0.5).astype(np.float32)
    filled = model.inpaint(images, mask, seed=1).numpy()
    np.testing.assert_array_equal(filled[mask == 1], images[mask == 1])
    np.testing.assert_array_equal(filled, model.inpaint(images, mask, seed=1))
    blind = model.inpaint(images * mask, mask, seed=1, masked_input_only=True).numpy()
    assert blind.shape == images.shape and 0 <= blind.min() and blind.max() <= 1


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
assert sorted(sig) == ["decode", "encode", "inpaint", "reconstruct", "sample", "serving_default"], sorted(sig)
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
print("ok")
"""


def test_export_loads_in_a_fresh_process_with_every_rbm_signature(tmp_path):
    path = export.export_model(tiny_rbm(), str(tmp_path), "rbm", {"kind": "rbm"})
    done = run_python(CHECK_RBM_EXPORT, path)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
