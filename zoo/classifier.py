"""The MNIST classifier that judges generated images: a small CNN, trained once on first use and cached.

Its class probabilities give the classifier-based ("Inception") score, the class histogram of samples and the
accuracy on reconstructions and completions; its penultimate layer (128 ReLU units) gives the features of the
Fréchet distance. Trained on the 60,000 training images (never the test set), seeded, about 1.5 minutes on 2
CPU cores; cached as ~/.cache/zoo/classifier-<dataset>-v2.keras (ZOO_CACHE moves the folder).
"""

from __future__ import annotations

import json
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from zoo import data
from zoo.callbacks import progress_verbosity

VERSION = 2


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

    def __init__(self, network, test_accuracy=None):
        self.network = network
        self.test_accuracy = test_accuracy
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
    classifier.test_accuracy = classifier.accuracy(test.images[..., None] / 255.0, test.labels)
    return classifier


def load_classifier(dataset="mnist", verbose=None):
    """The cached classifier, trained and cached first if there is none."""
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
