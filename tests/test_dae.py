import json
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_python, tiny_data
from zoo import data, export, train
from zoo.experiments import dae as dae_experiments
from zoo.models.dae import DAE, DAEConfig, corrupt

TINY = DAEConfig(layers=(784, 32, 24, 16), fine_tune_epochs=2, inpaint_steps=3)


def test_corruption_masks_the_requested_fraction_and_adds_gaussian_noise():
    x = tf.ones((200, 784))
    masked = corrupt(x, 0.3, 0.0, tf.constant([0, 1])).numpy()
    assert set(np.unique(masked)) == {0.0, 1.0}
    assert np.mean(masked == 0) == pytest.approx(0.3, abs=0.01)
    noisy = corrupt(x, 0.0, 0.2, tf.constant([0, 1])).numpy()
    assert np.std(noisy - 1.0) == pytest.approx(0.2, rel=0.02)


def test_each_layer_pretrains_on_the_clean_codes_of_the_layer_below():
    model = DAE(TINY)
    seen = []
    batch = tf.constant(data.load(tiny_data()).train.images[:8, ..., None] / 255.0, tf.float32)

    def fit_stage(stage, layer, transform):
        seen.append((stage, layer.visible, transform(batch, tf.constant(0, tf.int64)).numpy()))

    model.pretrain(fit_stage)
    assert [(stage, visible) for stage, visible, _ in seen] == [("layer1", 784), ("layer2", 32), ("layer3", 24)]
    h1 = model.encoders[0](tf.reshape(batch, (-1, 784)))  # the stack's first encoder, copied from layer 1: clean
    np.testing.assert_allclose(seen[1][2], h1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(seen[2][2], model.encoders[1](h1), rtol=1e-5, atol=1e-6)


def test_principal_components_are_orthonormal_and_sorted_and_both_figures_are_written(tmp_path):
    rng = np.random.default_rng(0)
    residuals = rng.normal(size=(500, 784)) * np.linspace(2, 0.1, 784)
    mean, components, ratios = dae_experiments.residual_components(residuals)
    np.testing.assert_allclose(mean, residuals.mean(axis=0))
    np.testing.assert_allclose(components @ components.T, np.eye(5), atol=1e-10)
    assert list(ratios) == sorted(ratios, reverse=True) and 0 < ratios.sum() < 1
    for shared in (True, False):
        fig = dae_experiments.signed_images_figure([mean, *components], [str(i) for i in range(6)], shared)
        fig.savefig(tmp_path / f"{shared}.png")
        assert os.path.getsize(tmp_path / f"{shared}.png") > 1000


def test_dae_experiment_writes_its_figures_and_numbers(tmp_path):
    config = dae_experiments.Config(layers=(784, 32, 24, 16), epochs=1, fine_tune_epochs=1, limit=200)
    notebook = dae_experiments.run(config, str(tmp_path / "out"), str(tmp_path / "logs"))
    assert {os.path.basename(p) for p in notebook.figures} == {
        "denoising.png", "residuals_shared_scale.png", "residuals_own_scale.png", "explained_variance.png"}
    summary = (tmp_path / "out" / "README.md").read_text()
    assert "25% of pixels masked" in summary and "50% of pixels masked" in summary
    assert "explained-variance ratios of the first five principal components" in summary
    assert len(notebook.results["ratios"]) == 5


CHECK_DAE_EXPORT = r"""
import json, sys
import numpy as np
import tensorflow as tf
sig = tf.saved_model.load(sys.argv[1]).signatures
assert not any(name == "zoo" or name.startswith("zoo.") for name in sys.modules)
images = np.random.default_rng(0).random((3, 28, 28, 1)).astype(np.float32)
mask = (np.random.default_rng(1).random(images.shape) < 0.5).astype(np.float32)
code = sig["encode"](images=tf.constant(images))["latent"].numpy()
back = sig["decode"](latent=tf.constant(code))["images"].numpy()
assert np.allclose(back, sig["reconstruct"](images=tf.constant(images))["images"].numpy(), atol=1e-6)
filled = sig["inpaint"](images=tf.constant(images), mask=tf.constant(mask), seed=tf.constant(1))["images"].numpy()
assert np.array_equal(filled[mask == 1], images[mask == 1]) and 0 <= filled.min() and filled.max() <= 1
print(json.dumps({"code": list(code.shape), "signatures": sorted(sig)}))
"""


def test_training_exports_and_the_export_loads_in_a_fresh_process(tmp_path):
    result = train.train("dae", TINY, tiny_data(), train.TrainConfig(
        epochs=1, logdir=str(tmp_path / "logs"), export_dir=str(tmp_path / "exports")), verbose=0)
    assert {"loss", "reconstruction_mse", "denoising_mse", "val_denoising_mse"} <= set(result.history)
    done = run_python(CHECK_DAE_EXPORT, result.export_path)
    assert done.returncode == 0, done.stderr[-3000:]
    shown = json.loads(done.stdout.strip().splitlines()[-1])
    assert shown["code"] == [3, 16] and "reconstruct" in shown["signatures"]
    assert export.read_card(result.export_path)["stage"] == "fine-tuned"


def test_an_interrupted_run_resumes_with_its_pretrained_layers_loaded(tmp_path):
    """A stage of the stacked DAE is a plain Keras model with one optimizer (no ZooModel.optimizers()): resuming
    one must load its last checkpoint, not fail."""
    import keras

    class Stop(Exception):
        pass

    class AtFineTuning(keras.callbacks.Callback):
        def __init__(self, stop):
            super().__init__()
            self.stop = stop

        def on_train_begin(self, logs=None):
            self.weights = [w.numpy().copy() for w in self.model.trainable_variables]
            if self.stop:
                raise Stop()

    config = train.TrainConfig(epochs=1, logdir=str(tmp_path / "logs"), export_dir=str(tmp_path / "exports"))
    interrupted, resumed_start = AtFineTuning(stop=True), AtFineTuning(stop=False)
    with pytest.raises(Stop):
        train.train("dae", TINY, tiny_data(), config, extra_callbacks=[interrupted], verbose=0)
    resumed = train.train("dae", TINY, tiny_data(), config, extra_callbacks=[resumed_start], verbose=0)
    assert resumed.run_dir == str(tmp_path / "logs" / "dae" / "seed0")
    for before, after in zip(interrupted.weights, resumed_start.weights):  # loaded bit for bit, not retrained
        np.testing.assert_array_equal(before, after)
    assert sorted(os.listdir(tmp_path / "exports" / "dae_greedy")) == ["1"]  # made once, before the interruption
    assert len(resumed.history["loss"]) == TINY.fine_tune_epochs
    # The card's training time counts the stages, trained before the interruption, and the fine-tuning after it.
    card = export.read_card(resumed.export_path)
    stage_seconds = [metrics["seconds"] for metrics in card["layers"].values()]
    assert len(stage_seconds) == len(TINY.layers) - 1 and all(s > 0 for s in stage_seconds)
    assert card["train_seconds"] == pytest.approx(sum(stage_seconds) + sum(resumed.history["epoch_seconds"]), abs=0.1)
