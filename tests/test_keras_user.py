"""A Keras user's own script: `fit` on data as Keras users hold it, a seed that fixes a model made from Python,
Keras's callbacks on a fresh model, and `model.export` writing the zoo's export."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_python
from zoo import data
from zoo.models.gan import DCGAN, DCGANConfig
from zoo.models.rbm import RBM, RBMConfig
from zoo.models.vae import VAE, VAEConfig

TINY = {
    "vae": lambda seed=0: VAE(VAEConfig(latent_dim=2, hidden=(16,)), seed=seed),
    "rbm": lambda seed=0: RBM(RBMConfig(hidden=16), seed=seed),
    "dcgan": lambda seed=0: DCGAN(DCGANConfig(latent_dim=8, generator_filters=(16, 8, 4),
                                              discriminator_filters=(4, 8)), seed=seed),
}


@pytest.fixture(scope="module")
def digits():
    images, labels, *_ = data.load_arrays("mnist", "packaged", None)
    return images[:200], labels[:200]


def fresh(kind, seed=0):
    model = TINY[kind](seed)
    model.compile(total_steps=100)
    return model


def weights_after(kind, x, y=None, **fit):
    model = fresh(kind)
    model.fit(x, y, epochs=1, verbose=0, **fit)
    return [w.numpy() for w in model.weights]


@pytest.mark.parametrize("kind", sorted(TINY))
def test_fit_takes_images_as_keras_users_hold_them_and_uint8_is_scaled_as_the_pipeline_does(kind, digits):
    images, labels = digits
    reference = weights_after(kind, images.astype(np.float32) / 255.0, batch_size=50)
    assert not all(np.array_equal(a, b) for a, b in zip(reference, [w.numpy() for w in fresh(kind).weights]))
    same = {
        "uint8 [n, 28, 28]": weights_after(kind, images, batch_size=50),
        "uint8 with labels": weights_after(kind, images, labels, batch_size=50),
        "flat [n, 784]": weights_after(kind, images.reshape(-1, 784).astype(np.float32) / 255.0, batch_size=50),
        "[n, 28, 28, 1]": weights_after(kind, images[..., None].astype(np.float32) / 255.0, batch_size=50),
    }
    for name, result in same.items():
        for a, b in zip(reference, result):
            np.testing.assert_array_equal(a, b, err_msg=name)
    # Datasets: (image, label) pairs, and TFDS's dicts of uint8 [28, 28, 1] images and int64 labels, batched.
    pairs = tf.data.Dataset.from_tensor_slices((images[..., None], labels.astype(np.int64))).batch(50)
    tfds_like = tf.data.Dataset.from_tensor_slices({"image": images[..., None], "label": labels.astype(np.int64)})
    for dataset in (pairs, tfds_like.batch(50)):
        model = fresh(kind)
        history = model.fit(dataset, epochs=1, verbose=0).history
        assert np.isfinite(history["loss"][0])
        assert model.evaluate(dataset, verbose=0, return_dict=True)["loss"] == pytest.approx(
            model.evaluate(images, batch_size=50, verbose=0, return_dict=True)["loss"], rel=0.2, abs=1.0)


@pytest.mark.parametrize("bad, message", [
    (lambda x: x.astype(np.float32), r"must be in \[0, 1\] as floats \(divide 0..255 values by 255"),
    (lambda x: np.where(x > 100, np.nan, x / 255.0).astype(np.float32), "must be finite"),
    (lambda x: x.astype(np.int64), "dtype int64; give uint8 pixels"),
    (lambda x: np.zeros((10, 32, 32, 1), np.float32), r"shape \[10, 32, 32, 1\]; the model takes"),
    (lambda x: tf.data.Dataset.from_tensor_slices(x[..., None]), "single examples of shape \\[28, 28, 1\\], not "
                                                                  "batches: batch the dataset"),
    (lambda x: tf.data.Dataset.from_tensor_slices(x.astype(np.float32)).batch(50), r"must be in \[0, 1\] as floats"),
    (lambda x: {"pixels": x}, "a dict of data needs an 'image' entry"),
], ids=["floats 0..255", "NaN", "int64", "32x32", "unbatched dataset", "dataset of 0..255 floats", "dict"])
@pytest.mark.parametrize("kind", ["vae", "rbm"])
def test_fit_refuses_what_is_not_pixels_at_once_naming_the_problem_and_the_fix(kind, bad, message, digits):
    model = fresh(kind)
    before = [w.numpy() for w in model.weights]
    with pytest.raises(ValueError, match=message) as refused:
        model.fit(bad(digits[0]), epochs=1, verbose=0)
    assert "Traceback" not in str(refused.value) and "Graph execution" not in str(refused.value)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, model.weights))  # stopped before any update


FROM_A_SCRIPT = """
import sys, numpy as np, zoo
from zoo import data
from zoo.models.gan import GANConfig, PRESETS
images = data.load_arrays("mnist", "packaged", None)[0][:300]
models = [zoo.VAE(seed=7), zoo.GAN(GANConfig(**PRESETS["quality"]), seed=7), zoo.RBM(seed=7), zoo.DBN(seed=7)]
initial = [float(sum(np.sum(np.abs(w.numpy())) for w in m.weights)) for m in models]
vae = models[0]
vae.compile()
vae.fit(images, epochs=2, batch_size=50, verbose=0)  # shuffled: in the order the model's seed fixes
print(repr(initial), repr([float(np.sum(w.numpy())) for w in vae.weights]))
"""


def test_the_seed_fixes_a_model_made_from_python_and_its_fit_across_processes():
    runs = [run_python(FROM_A_SCRIPT, env={"PYTHONPATH": os.path.dirname(os.path.dirname(__file__))})
            for _ in range(2)]
    for done in runs:
        assert done.returncode == 0, done.stderr[-3000:]
    assert runs[0].stdout == runs[1].stdout  # the same initial weights, the same weights after fit
    other = fresh("vae", seed=8)
    assert not all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(fresh("vae", seed=7).weights, other.weights))


@pytest.mark.parametrize("kind", sorted(TINY))
def test_keras_callbacks_work_on_a_fresh_model_and_every_model_reports_a_loss(kind, digits, tmp_path, recwarn):
    model = fresh(kind)  # never called: built when made
    callbacks = [keras.callbacks.BackupAndRestore(str(tmp_path / "backup")),
                 keras.callbacks.EarlyStopping(monitor="val_loss", patience=5),
                 keras.callbacks.ModelCheckpoint(str(tmp_path / "best.weights.h5"), monitor="val_loss",
                                                 save_best_only=True, save_weights_only=True)]
    history = model.fit(digits[0], epochs=2, batch_size=50, validation_split=0.25, callbacks=callbacks,
                        verbose=0).history
    assert len(history["loss"]) == 2 and len(history["val_loss"]) == 2
    assert (tmp_path / "best.weights.h5").exists()
    assert not [w for w in recwarn if "loss" in str(w.message) and "not available" in str(w.message)]


def test_model_export_writes_the_serving_contract_not_kerass_call_endpoint(tmp_path):
    model = fresh("vae")
    path = model.export(str(tmp_path / "vae_export"), verbose=False)
    assert path == str(tmp_path / "vae_export")
    check = run_python(
        "import sys, json, numpy as np, tensorflow as tf\n"
        "m = tf.saved_model.load(sys.argv[1])\n"
        "print(' '.join(sorted(m.signatures)))\n"
        "x = m.signatures['reconstruct'](images=tf.zeros([2, 28, 28, 1]))['images']\n"
        "assert x.shape == (2, 28, 28, 1) and float(tf.reduce_min(x)) >= 0\n"
        "try:\n"
        "    m.signatures['reconstruct'](images=tf.fill([1, 28, 28, 1], 255.0)); print('accepted')\n"
        "except tf.errors.InvalidArgumentError as e:\n"
        "    print('refused', 'must be in [0, 1]' in e.message)\n"
        "print(json.load(open(sys.argv[1] + '/assets/model_card.json'))['kind'])\n", path)
    assert check.returncode == 0, check.stderr[-3000:]
    signatures, refused, kind = check.stdout.split("\n")[:3]
    assert signatures.split() == sorted(list(VAE.SIGNATURES) + ["serving_default"])
    assert refused == "refused True" and kind == "vae"
    with pytest.raises(FileExistsError, match="never overwritten"):
        model.export(path)
    with pytest.raises(ValueError, match="serving contract's SavedModel only"):
        model.export(str(tmp_path / "other"), format="onnx")
    assert not (tmp_path / "other").exists()
