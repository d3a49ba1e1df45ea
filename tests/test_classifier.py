"""The frozen evaluation classifier and the figures computed on its features: KID and precision/recall."""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_zoo
from zoo import classifier, evaluate, metrics


@pytest.fixture(scope="module")
def judge():
    return classifier.load_frozen()


@pytest.fixture(scope="module")
def features(judge, mnist_arrays):
    """Classifier features of 2,000 random test and 2,000 random training images, and of 2,000 noise images."""
    train_images, _, test_images, _ = mnist_arrays[:4]
    rng = np.random.default_rng(0)
    pick = lambda images: images[rng.choice(len(images), 2000, replace=False), ..., None] / 255.0  # noqa: E731
    noise = rng.random((2000, 28, 28, 1)).astype(np.float32)
    return judge(pick(test_images))[1], judge(pick(train_images))[1], judge(noise)[1]


def test_the_shipped_classifier_is_the_recorded_one(judge, mnist_arrays):
    with open(classifier.FROZEN_MANIFEST) as f:
        manifest = json.load(f)
    assert judge.sha256 == manifest["sha256"] == classifier.sha256(classifier.FROZEN_WEIGHTS)
    _, _, test_images, test_labels = mnist_arrays[:4]
    accuracy = judge.accuracy(test_images[..., None] / 255.0, test_labels)
    assert abs(accuracy - manifest["test_accuracy"]) <= 2e-4  # two images, for another CPU's float rounding
    assert accuracy > 0.99


def test_a_changed_weights_file_is_refused(tmp_path, monkeypatch):
    damaged = tmp_path / "classifier-mnist.weights.h5"
    shutil.copy(classifier.FROZEN_WEIGHTS, damaged)
    blob = bytearray(damaged.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one byte flipped
    damaged.write_bytes(bytes(blob))
    monkeypatch.setattr(classifier, "FROZEN_WEIGHTS", str(damaged))
    with pytest.raises(classifier.ClassifierError, match="SHA-256 .* but .* records"):
        classifier.load_frozen()
    monkeypatch.setattr(classifier, "FROZEN_WEIGHTS", str(tmp_path / "missing.h5"))
    with pytest.raises(classifier.ClassifierError, match="missing or unreadable"):
        classifier.load_frozen()


def test_kid_is_near_zero_for_real_images_and_large_for_noise(features):
    test, train, noise = features
    real = metrics.kernel_distance(train, test, subsets=20)
    fake = metrics.kernel_distance(noise, test, subsets=20)
    assert real["subset_size"] == 1000 and real["standard_error"] > 0
    assert abs(real["kid"]) < 0.05 and fake["kid"] > 1.0 and fake["kid"] > 100 * abs(real["kid"])
    # Unbiased: the same set split in two halves is 0 within its noise.
    halves = metrics.kernel_distance(test[:1000], test[1000:], subsets=20)
    assert abs(halves["kid"]) < 4 * halves["standard_error"] + 0.01


def test_kid_against_a_direct_computation():
    rng = np.random.default_rng(1)
    a, b = rng.random((8, 4)), rng.random((8, 4)) + 0.5
    kernel = lambda x, y: (x @ y.T / 4 + 1) ** 3  # noqa: E731
    m = 4  # subsets of half of each set: the formula on the same draws
    off_diagonal = lambda k: (k.sum() - np.trace(k)) / (m * (m - 1))  # noqa: E731
    draws = np.random.default_rng(7)
    estimates = []
    for _ in range(2):
        x, y = a[draws.choice(8, m, replace=False)], b[draws.choice(8, m, replace=False)]
        estimates.append(off_diagonal(kernel(x, x)) + off_diagonal(kernel(y, y)) - 2 * kernel(x, y).mean())
    kid = metrics.kernel_distance(a, b, subsets=2, seed=7)
    assert kid["kid"] == pytest.approx(np.mean(estimates), rel=1e-12)
    assert kid["standard_error"] == pytest.approx(np.std(estimates, ddof=1) / np.sqrt(2), rel=1e-9)


def test_precision_and_recall(features):
    test, train, noise = features
    real = metrics.precision_recall(test, train)
    assert real["precision"] > 0.8 and real["recall"] > 0.75  # measured 0.87 / 0.86 with 10,000 of each
    assert metrics.precision_recall(test, noise)["recall"] == 0.0  # noise covers none of the data
    # A set of one digit is realistic but covers a tenth of the data: high precision, low recall.
    ones = test[np.argsort(np.linalg.norm(test - test[0], axis=1))[:200]]  # the 200 nearest to one image
    collapsed = metrics.precision_recall(test, ones)
    assert collapsed["precision"] > 0.8 and collapsed["recall"] < 0.2


def test_evaluate_scores_a_file_or_folder_of_images(tmp_path, mnist_arrays, capsys):
    train_images = mnist_arrays[0]
    np.savez(tmp_path / "real.npz", images=train_images[:600])
    done = run_zoo("zoo.evaluate", "--images", str(tmp_path / "real.npz"), "--out", str(tmp_path), "--test-images",
                   "600")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| real test images |" in done.stdout and "not on Inception's" in done.stdout
    figures = json.loads((tmp_path / "IMAGES.json").read_text())["figures"]
    assert figures["num_samples"] == 600 and figures["classifier_score"] > 8
    assert figures["nearest_train_distance"] < 0.01  # they are training images
    assert {"frechet_distance", "kid", "kid_standard_error", "precision", "recall"} <= set(figures)

    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in range(30):
        tf.io.write_file(str(folder / f"{i:03d}.png"), tf.io.encode_png(train_images[i, ..., None]))
    done = run_zoo("zoo.evaluate", "--images", str(folder), "--out", str(tmp_path), "--test-images", "200")
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((tmp_path / "IMAGES.json").read_text())["figures"]["num_samples"] == 30

    np.savez(tmp_path / "bad.npz", images=np.zeros((5, 32, 32), np.float32))
    np.savez(tmp_path / "range.npz", images=np.full((5, 28, 28), 255.0, np.float32))
    # Bad images: exit status 2 and the problem named, not a traceback (in this process: the same checks).
    for path, message in (("bad.npz", "shape [5, 32, 32]"), ("range.npz", "in [0, 1]"),
                          ("missing.txt", "neither an .npz file nor a folder")):
        with pytest.raises(SystemExit) as bad:
            evaluate.main(["--images", str(tmp_path / path)])
        assert bad.value.code == 2 and message in capsys.readouterr().err
