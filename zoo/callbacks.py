"""Callbacks every model trains with.

    TensorBoard         scalars per epoch (train and validation) and weight histograms (Keras's own callback)
    ImageSummaries      a 10x10 grid of samples and test images above their reconstructions, every epoch
    SampleQuality       every N epochs, the evaluator's figures on fixed-seed samples: val_frechet_distance, ...
    Checkpoint          weights every epoch (zoo.runs), so a rerun of an interrupted command resumes where it stopped
    StopOnNaN           stops with a message at the first NaN or infinite metric, before anything is exported
"""

from __future__ import annotations

import os
import time

import keras
import numpy as np
import tensorflow as tf

from zoo import classifier as classifier_module
from zoo.figures import image_grid
from zoo.metrics import classifier_score, frechet_distance, kernel_distance
from zoo.models.base import cycled_labels
from zoo.runs import Checkpoint, TrainingDiverged


class ImageSummaries(keras.callbacks.Callback):
    """Writes `samples` (from a fixed seed, so epochs compare) and `reconstructions` grids to TensorBoard."""

    def __init__(self, log_dir, test_images, num_samples=100, seed=0):
        super().__init__()
        self.log_dir = os.path.join(log_dir, "images")
        self.test_images = np.asarray(test_images, np.float32)[:10]
        self.num_samples = num_samples
        self.seed = seed
        self.writer = None

    def on_epoch_end(self, epoch, logs=None):
        self.writer = self.writer or tf.summary.create_file_writer(self.log_dir)
        with self.writer.as_default(step=epoch):
            if "sample" in self.model.SIGNATURES:
                samples = self.model.sample(self.num_samples, self.seed)
                tf.summary.image("samples", image_grid(samples, columns=10))
            if "reconstruct" in self.model.SIGNATURES:
                pairs = np.concatenate([self.test_images, self.model.reconstruct(self.test_images)])
                tf.summary.image("reconstructions", image_grid(pairs, columns=len(self.test_images)))
        self.writer.flush()

    def on_train_end(self, logs=None):
        if self.writer:
            self.writer.close()


class SampleQuality(keras.callbacks.Callback):
    """Every `every` epochs (and after the last), `num_samples` samples from fixed seeds judged as the evaluator
    judges an export (zoo.evaluate): with the frozen MNIST classifier, against `reference_images` (zoo.train passes
    the validation images, never the test set, since --keep best chooses by these figures). Adds to the epoch's logs,
    so History, TensorBoard, the run's history.json and --keep best see them:

        val_frechet_distance   Fréchet distance of the classifier's features to the reference images' (lower is better)
        val_classifier_score   exp E KL(p(y|x) || p(y)) (10: confident and evenly spread over the digits)
        val_kid                kernel distance (KID) of the same features, the mean over 4 subsets of 1,000 (the
                               evaluator takes 100: most of the cost is here)
        val_label_accuracy     a conditional model's (its samples are of classes 0, 1, ..., 9 in turn): how often the
                               classifier names the class asked for
        quality_seconds        what this cost, to compare with the epoch's time

    With fewer samples the Fréchet distance is biased upward (2,000 samples read a few units above 10,000 of the same
    model): these figures rank the epochs of a run; the leaderboard's come from 10,000 samples of the export.
    Epochs in between get no figures (and --keep best considers only the epochs that have them).
    """

    def __init__(self, reference_images, every=1, num_samples=2000, seed=0, judge=None, kid_subsets=4):
        super().__init__()
        self.reference_images = np.asarray(reference_images, np.float32)
        self.every, self.num_samples, self.seed = every, num_samples, seed
        self.judge = judge
        self.kid_subsets = kid_subsets
        self.reference_features = None

    def on_train_begin(self, logs=None):
        self.judge = self.judge or classifier_module.load_classifier()
        if self.reference_features is None:
            self.reference_features = self.judge(self.reference_images)[1]

    def figures(self, samples, labels=None):
        """The figures of `samples` ([n, 28, 28, 1] in [0, 1]) against the reference images; with the classes they
        were asked to be (labels), their label accuracy too."""
        if self.reference_features is None:
            self.on_train_begin()
        probabilities, features = self.judge(np.asarray(samples, np.float32))
        kid = kernel_distance(features, self.reference_features, subsets=self.kid_subsets, seed=self.seed)
        figures = {"val_frechet_distance": frechet_distance(features, self.reference_features),
                   "val_classifier_score": classifier_score(probabilities), "val_kid": kid["kid"]}
        if labels is not None:
            figures["val_label_accuracy"] = float(np.mean(probabilities.argmax(1) == labels))
        return figures

    def on_epoch_end(self, epoch, logs=None):
        last = epoch + 1 == self.params.get("epochs")
        if logs is None or ((epoch + 1) % self.every and not last):
            return
        started = time.perf_counter()
        conditional = getattr(self.model, "CONDITIONAL", False)  # its sample() without a label cycles the classes
        labels = np.asarray(cycled_labels(self.num_samples, self.model.num_classes)) if conditional else None
        logs.update(self.figures(self.model.sample(self.num_samples, self.seed), labels))
        logs["quality_seconds"] = time.perf_counter() - started


class StopOnNaN(keras.callbacks.TerminateOnNaN):
    """Raises TrainingDiverged at the first NaN or infinite metric of a batch or an epoch (every metric: the RBM and
    DBN have no `loss`); the last good epoch's checkpoint stays."""

    def __init__(self, backup_dir=None):
        super().__init__(raise_error=True)
        self.backup_dir = backup_dir
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        self.check(logs, f"epoch {self.epoch + 1}, batch {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):  # validation figures too: NaN weights may only show there
        self.check(logs, f"the end of epoch {epoch + 1}")

    def check(self, logs, when):
        bad = {name: float(value) for name, value in (logs or {}).items()
               if np.ndim(value) == 0 and not np.isfinite(float(value))}
        if bad:
            name, value = next(iter(bad.items()))
            kept = f" The checkpoint of the last good epoch is kept in {self.backup_dir}." if self.backup_dir else ""
            raise TrainingDiverged(
                f"{name} became {value} at {when}: training diverged, and nothing was exported. Lower the learning "
                f"rate (--learning-rate) and run again.{kept}"
            )


def standard_callbacks(run_dir, test_images, seed=0, model_callbacks=(), keep_best=None, restore_from=None):
    """The callbacks of every `zoo.train` run, writing under run_dir (its checkpoint in run_dir/checkpoint).

    model_callbacks (a model's own, e.g. the RBM's free-energy gap, and SampleQuality) come before TensorBoard, so
    what they add to an epoch's logs is logged too. keep_best: a metric (lower is better) whose best epoch's
    checkpoint is kept (--keep best). restore_from: the run folder to resume from, if not run_dir (a non-chief
    worker's)."""
    checkpoint = Checkpoint(run_dir, keep_best=keep_best, restore_from=restore_from)
    return [
        StopOnNaN(checkpoint.folder),  # first, so a NaN epoch is never checkpointed or drawn
        *model_callbacks,
        keras.callbacks.TensorBoard(run_dir, histogram_freq=1, write_graph=False),
        ImageSummaries(run_dir, test_images, seed=seed),
        checkpoint,  # last: an epoch is checkpointed once everything else has seen it
    ]


def checkpoint_of(callback_list):
    """The run's Checkpoint among callback_list, or None."""
    return next((c for c in callback_list if isinstance(c, Checkpoint)), None)
