"""Sample quality measured during training (callbacks.SampleQuality) and the best epoch kept (--keep best)."""

import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_data
from test_gan import TINY_MLP
from test_train import Interrupt, InterruptAfter, config_in
from zoo import callbacks, classifier, data, evaluate, train
from zoo.export import read_card


def test_the_callbacks_figures_are_the_evaluators_on_the_same_samples(mnist_arrays):
    train_images, _, test_images, test_labels, _ = mnist_arrays
    reference = data.as_images(test_images[:500])
    samples = data.as_images(train_images[:400])  # any images: real ones give figures far from the extremes
    judge = classifier.load_classifier()
    quality = callbacks.SampleQuality(reference, judge=judge, kid_subsets=100)
    figures = quality.figures(samples)

    config = evaluate.EvalConfig(test_images=500, num_samples=400)
    expected = evaluate.image_set_figures(
        samples, evaluate.Reference.from_arrays(reference, test_labels[:500], samples, judge, config))
    assert figures["val_frechet_distance"] == pytest.approx(expected["frechet_distance"], rel=1e-9)
    assert figures["val_classifier_score"] == pytest.approx(expected["classifier_score"], rel=1e-9)
    assert figures["val_kid"] == pytest.approx(expected["kid"], rel=1e-9)
    # Real digits against real digits: a distance small for 400 images (10,000 real test images: 0.88) and a score
    # near theirs (9.75).
    assert figures["val_frechet_distance"] < 30 and figures["val_classifier_score"] > 8


class FakeFigures:
    """Stands in for SampleQuality.figures: a fixed sequence of validation Fréchet distances, one per call."""

    def __init__(self, distances):
        self.distances = list(distances)
        self.calls = 0

    def __call__(self, samples, labels=None):
        self.calls += 1
        return {"val_frechet_distance": self.distances[self.calls - 1], "val_classifier_score": 1.0, "val_kid": 0.0}


class RecordDecodes(keras.callbacks.Callback):
    """decode(z) of a fixed z after every epoch, by epoch."""

    def __init__(self, latent_dim):
        super().__init__()
        self.z = tf.random.stateless_normal([6, latent_dim], [1, 2])
        self.decoded = {}

    def on_epoch_end(self, epoch, logs=None):
        self.decoded[epoch + 1] = self.model.decode(self.z).numpy()


def load_decode(path, z):
    return tf.saved_model.load(path).signatures["decode"](latent=z)["images"].numpy()


def test_keep_best_exports_the_epoch_with_the_lowest_validation_frechet_distance(tmp_path, monkeypatch):
    fake = FakeFigures([30.0, 12.0, 25.0, 40.0])
    monkeypatch.setattr(callbacks.SampleQuality, "figures", fake)
    record = RecordDecodes(TINY_MLP.latent_dim)
    result = train.train("gan", TINY_MLP, tiny_data(), config_in(tmp_path, epochs=4), extra_callbacks=[record],
                         verbose=0)
    assert result.history["val_frechet_distance"] == [30.0, 12.0, 25.0, 40.0]  # logged every epoch
    card = read_card(result.export_path)
    assert card["kept"]["epoch"] == 2 and card["kept"]["figures"]["val_frechet_distance"] == 12.0
    assert card["steps"] == 2 * 6  # the kept model's updates: 2 epochs of 6 batches
    exported = load_decode(result.export_path, record.z)
    np.testing.assert_allclose(exported, record.decoded[2], atol=1e-5)
    assert not np.allclose(exported, record.decoded[4], atol=1e-3)  # not the last epoch's model
    # --keep last keeps today's behaviour: the last epoch, no "kept" in the card.
    monkeypatch.setattr(callbacks.SampleQuality, "figures", FakeFigures([30.0, 12.0, 25.0, 40.0]))
    record = RecordDecodes(TINY_MLP.latent_dim)
    last = train.train("gan", TINY_MLP, tiny_data(), config_in(tmp_path / "last", epochs=4, keep="last"),
                       extra_callbacks=[record], verbose=0)
    assert "kept" not in read_card(last.export_path)
    np.testing.assert_allclose(load_decode(last.export_path, record.z), record.decoded[4], atol=1e-5)


class SlowEpochs(keras.callbacks.Callback):
    """Makes every epoch take at least `seconds` longer."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_epoch_begin(self, epoch, logs=None):
        time.sleep(self.seconds)


def test_a_resumed_run_still_knows_its_best_epoch(tmp_path, monkeypatch):
    """Best at epoch 2, interrupted after epoch 4 (its checkpoint kept 3 and 4, and 2 for being the best), resumed
    for epoch 5: the export is epoch 2's model, and its card counts the time of the session before the resume."""
    fake = FakeFigures([30.0, 12.0, 25.0, 40.0, 35.0])
    monkeypatch.setattr(callbacks.SampleQuality, "figures", fake)
    record = RecordDecodes(TINY_MLP.latent_dim)
    run = config_in(tmp_path, epochs=5)
    with pytest.raises(Interrupt):
        train.train("gan", TINY_MLP, tiny_data(), run, extra_callbacks=[record, SlowEpochs(0.5), InterruptAfter(4)],
                    verbose=0)
    checkpoint = train.runs.Checkpoint(str(tmp_path / "logs" / "gan" / "seed0"))
    assert sorted(checkpoint.files()) == [2, 3, 4]
    resumed = train.train("gan", TINY_MLP, tiny_data(), run, verbose=0)
    assert fake.calls == 5  # epochs 1-4 before the interruption, 5 after it
    assert resumed.history["val_frechet_distance"] == [30.0, 12.0, 25.0, 40.0, 35.0]
    card = read_card(resumed.export_path)
    assert card["kept"]["epoch"] == 2
    np.testing.assert_allclose(load_decode(resumed.export_path, record.z), record.decoded[2], atol=1e-5)
    # Every epoch's wall time is in the history, the first session's too, and the card's training time is their sum.
    seconds = resumed.history["epoch_seconds"]
    assert len(seconds) == 5 and all(s >= 0.5 for s in seconds[:4])
    assert card["train_seconds"] == pytest.approx(sum(seconds), abs=0.1)


def test_quality_is_logged_by_the_real_callback_and_keep_best_needs_sampling(tmp_path):
    result = train.train("gan", TINY_MLP, tiny_data(), config_in(tmp_path, epochs=2, quality_samples=200,
                                                                 export=False), verbose=0)
    for name in ("val_frechet_distance", "val_classifier_score", "val_kid", "quality_seconds"):
        assert len(result.history[name]) == 2 and all(np.isfinite(result.history[name])), name
    with pytest.raises(ValueError, match="does not sample"):
        train.check_train_config("dae", config_in(tmp_path, keep="best"))
    with pytest.raises(ValueError, match="--quality-every"):
        train.check_train_config("gan", config_in(tmp_path, quality_every=0))
    # Every other epoch, and the last: the epochs in between have no figures.
    quality = callbacks.SampleQuality(np.zeros((4, 28, 28, 1), np.float32), every=2)
    quality.set_params({"epochs": 3})
    quality.figures = lambda samples, labels: {"val_frechet_distance": 1.0}
    quality.set_model(type("FakeModel", (), {"sample": lambda self, n, seed: None})())
    measured = []
    for epoch in range(3):
        logs = {}
        quality.on_epoch_end(epoch, logs)
        measured.append("val_frechet_distance" in logs)
    assert measured == [False, True, True]


def test_a_conditional_models_samples_are_judged_for_the_class_asked_too(mnist_arrays):
    _, _, test_images, test_labels, _ = mnist_arrays
    images = data.as_images(test_images[:2000])
    in_turn = np.concatenate([np.flatnonzero(test_labels[:2000] == c)[:20] for c in range(10)]).reshape(10, 20).T
    in_turn = in_turn.reshape(-1)  # classes 0, 1, ..., 9 in turn, as sample() without a label draws them

    class Conditional:
        CONDITIONAL, num_classes = True, 10

        def __init__(self, order):
            self.order = order

        def sample(self, n, seed):
            return images[self.order[:n]]

    quality = callbacks.SampleQuality(images[1000:1500], num_samples=200, judge=classifier.load_classifier())
    quality.set_params({"epochs": 1})
    for order, expected in ((in_turn, (0.95, 1.0)), (np.roll(in_turn, 1), (0.0, 0.1))):  # the class asked, or not
        quality.set_model(Conditional(order))
        logs = {}
        quality.on_epoch_end(0, logs)
        assert expected[0] <= logs["val_label_accuracy"] <= expected[1]
