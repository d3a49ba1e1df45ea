"""The MNIST classifier that judges generated images: a small CNN, frozen, its weights shipped inside the package.

Its class probabilities give the classifier-based ("Inception") score, the class histogram of samples and the
accuracy on reconstructions and completions; its penultimate layer (128 ReLU units) gives the features of the
Fréchet distance, KID and precision/recall. Every machine scores with the same network: the weights are
zoo/assets/classifier-mnist.weights.h5, checked against the SHA-256 in classifier-mnist.json when loaded.
They were trained on the 60,000 training images (never the test set), seeded, by

    python -m zoo.classifier --retrain          # rewrites both files

Other datasets (Fashion-MNIST) have no shipped weights: their classifier is trained on first use and cached as
~/.cache/zoo/classifier-<dataset>-v2.keras (ZOO_CACHE moves the folder).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from zoo import data
from zoo.cli import progress_verbosity

VERSION = 2
ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
FROZEN_WEIGHTS = os.path.join(ASSETS, "classifier-mnist.weights.h5")
FROZEN_MANIFEST = os.path.join(ASSETS, "classifier-mnist.json")
RETRAIN = "python -m zoo.classifier --retrain"


class ClassifierError(RuntimeError):
    """The shipped classifier is missing or does not match its recorded hash."""


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def cache_dir():
    return os.path.expanduser(os.environ.get("ZOO_CACHE", "~/.cache/zoo"))


def build_network():
    images = keras.Input((28, 28, 1), name="images")
    x = keras.layers.Conv2D(32, 3, activation="relu")(images)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(64, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Dropout(0.3)(keras.layers.Flatten()(x))
    features = keras.layers.Dense(128, activation="relu", name="features")(x)
    logits = keras.layers.Dense(10, name="logits")(keras.layers.Dropout(0.3)(features))
    return keras.Model(images, logits, name="mnist_classifier")


class Classifier:
    """Class probabilities and penultimate features of images [n, 28, 28, 1] in [0, 1], computed in batches."""

    def __init__(self, network, test_accuracy=None, sha256=None):
        self.network = network
        self.test_accuracy = test_accuracy
        self.sha256 = sha256  # of the frozen weights file; None for a classifier trained on this machine
        both = keras.Model(network.input, [network.output, network.get_layer("features").output])
        self._both = tf.function(lambda x: both(x, training=False), reduce_retracing=True)

    def __call__(self, images, batch_size=1000):
        """(probabilities [n, 10], features [n, 128]) as NumPy arrays."""
        probabilities, features = [], []
        for start in range(0, len(images), batch_size):
            logits, feature = self._both(tf.convert_to_tensor(images[start:start + batch_size], tf.float32))
            probabilities.append(tf.nn.softmax(logits).numpy())
            features.append(feature.numpy())
        return np.concatenate(probabilities), np.concatenate(features)

    def accuracy(self, images, labels):
        return float(np.mean(self(images)[0].argmax(axis=1) == labels))


def train_classifier(dataset="mnist", epochs=8, seed=0, limit=None, verbose=None):
    """Train the CNN on the 60,000 training images; returns a Classifier with its test accuracy."""
    keras.utils.set_random_seed(seed)
    config = data.DataConfig(dataset=dataset, validation_size=0, labels=True, batch_size=128, seed=seed, limit=limit)
    pipelines = data.datasets(config)
    network = build_network()
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=epochs * pipelines.steps_per_epoch)
    network.compile(optimizer=keras.optimizers.Adam(schedule), metrics=["accuracy"],
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    network.fit(pipelines.train, steps_per_epoch=pipelines.steps_per_epoch, epochs=epochs, shuffle=False,
                verbose=verbose if verbose is not None else progress_verbosity())
    test = pipelines.splits.test
    classifier = Classifier(network)
    classifier.test_accuracy = classifier.accuracy(data.as_images(test.images), test.labels)
    return classifier


def load_frozen():
    """The shipped MNIST classifier, its weights checked against the recorded SHA-256."""
    try:
        with open(FROZEN_MANIFEST) as f:
            manifest = json.load(f)
        digest = sha256(FROZEN_WEIGHTS)
    except (OSError, ValueError) as error:
        raise ClassifierError(f"the shipped classifier is missing or unreadable ({error}); reinstall zoo "
                              f"(pip install .) or make it again with `{RETRAIN}`") from None
    if digest != manifest["sha256"]:
        raise ClassifierError(f"{FROZEN_WEIGHTS} has SHA-256 {digest}, but {FROZEN_MANIFEST} records "
                              f"{manifest['sha256']}: the file is corrupt or was changed; reinstall zoo, or "
                              f"retrain with `{RETRAIN}` (scores then change)")
    network = build_network()
    network.load_weights(FROZEN_WEIGHTS)
    return Classifier(network, manifest["test_accuracy"], digest)


def load_classifier(dataset="mnist", verbose=None):
    """The evaluation classifier: MNIST's shipped with the package; another dataset's trained once and cached."""
    if dataset == "mnist":
        return load_frozen()
    path = os.path.join(cache_dir(), f"classifier-{dataset}-v{VERSION}.keras")
    if os.path.exists(path):
        with open(path + ".json") as f:
            accuracy = json.load(f)["test_accuracy"]
        return Classifier(keras.saving.load_model(path), accuracy)
    print(f"Training the {dataset} classifier for evaluation (once; cached as {path})", flush=True)
    classifier = train_classifier(dataset, verbose=verbose)
    os.makedirs(cache_dir(), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir()) as staging:  # write, then rename: no half-written cache
        staged = os.path.join(staging, "classifier.keras")
        classifier.network.save(staged)
        with open(staged + ".json", "w") as f:
            json.dump({"test_accuracy": classifier.test_accuracy, "dataset": dataset, "version": VERSION}, f)
        os.replace(staged + ".json", path + ".json")
        os.replace(staged, path)
    print(f"Classifier test accuracy: {classifier.test_accuracy:.2%}", flush=True)
    return classifier


def retrain(out_dir=ASSETS, epochs=8, seed=0):
    """Train the MNIST classifier and write its weights and manifest (hash, test accuracy) to out_dir."""
    classifier = train_classifier("mnist", epochs=epochs, seed=seed)
    return write_frozen(classifier, out_dir, epochs=epochs, seed=seed)


def write_frozen(classifier, out_dir, **training):
    """The network's weights alone (not its optimizer's slots, which Keras's save_weights would add) and the
    manifest that load_frozen checks them against."""
    network = build_network()
    network.set_weights(classifier.network.get_weights())
    os.makedirs(out_dir, exist_ok=True)
    weights = os.path.join(out_dir, os.path.basename(FROZEN_WEIGHTS))
    network.save_weights(weights)
    manifest = {"sha256": sha256(weights), "test_accuracy": classifier.test_accuracy, **training,
                "command": RETRAIN, "tensorflow_version": tf.__version__, "keras_version": keras.__version__}
    with open(os.path.join(out_dir, os.path.basename(FROZEN_MANIFEST)), "w") as f:
        json.dump(manifest, f, indent=2)
    return manifest


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m zoo.classifier",
                                     description="The evaluation classifier: show the shipped one, or retrain it.")
    parser.add_argument("--retrain", action="store_true", help="train the MNIST classifier again and write its "
                        "weights and manifest (scores made with the old weights no longer compare)")
    parser.add_argument("--out", default=ASSETS, help="where --retrain writes (default: the package's assets)")
    args = parser.parse_args(argv)
    if args.retrain:
        manifest = retrain(args.out)
    else:
        classifier = load_frozen()
        manifest = {"weights": FROZEN_WEIGHTS, "sha256": classifier.sha256, "test_accuracy": classifier.test_accuracy}
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
