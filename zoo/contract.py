"""The serving contract (docs/serving.md) as code: one SavedModel signature per verb, with the contract's tensor
names, and the export folder that holds them.

    <folder>/
        saved_model.pb, variables/       signatures: the model's SIGNATURES (`sample` is also serving_default)
        assets/model_card.json           kind, config, dataset, training steps, final metrics, max_samples
        assets.extra/model.keras         the trainable Keras model (zoo.load_model), which TF Serving ignores
        assets.extra/tf_serving_warmup_requests   one request per signature, replayed by TF Serving at load
                                         (written when the optional tensorflow-serving-api is installed)

`write_export` writes such a folder next to where it belongs and renames it into place when complete, so a crash or
a full disk never leaves a half-written export where TF Serving or the evaluator would load it. It is what
`zoo.export` (versioned exports of training runs) and a model's own `model.export(path)` both use. This module knows
the models only by their verbs, so the models can use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from zoo import runs
from zoo.version import __version__

CARD = os.path.join("assets", "model_card.json")
KERAS_FILE = os.path.join("assets.extra", "model.keras")
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")  # the name TF Serving looks for


def _images(name="images"):
    return tf.TensorSpec([None, 28, 28, 1], tf.float32, name=name)


def _seed():
    return tf.TensorSpec([], tf.int32, name="seed")


def endpoint(model, verb):
    """The serving function of one verb and its input signature, with the contract's tensor names. A conditional
    model's `sample` takes a `label` and its `generate`, `decode` and `encode` a `labels` vector, one per row."""
    if model.CONDITIONAL:
        return conditional_endpoint(model, verb)
    if verb == "sample":
        return (lambda num_samples, seed: {"images": model.sample(num_samples, seed)},
                [tf.TensorSpec([], tf.int32, name="num_samples"), _seed()])
    if verb == "generate":
        return lambda seeds: {"images": model.generate(seeds)}, [tf.TensorSpec([None], tf.int32, name="seeds")]
    if verb == "reconstruct":
        return lambda images: {"images": model.reconstruct(images)}, [_images()]
    if verb == "encode":
        return lambda images: dict(model.encode(images)), [_images()]
    if verb == "decode":
        return (lambda latent: {"images": model.decode(latent)},
                [tf.TensorSpec([None, model.latent_dim], tf.float32, name="latent")])
    if verb == "inpaint":
        return lambda images, mask, seed: {"images": model.inpaint(images, mask, seed)}, [
            _images(), _images("mask"), _seed()]
    if verb == "parameters":  # beyond the contract: an energy model's weights, for likelihood estimators
        return model.parameters, []
    raise ValueError(f"unknown serving signature {verb!r}; the contract has sample, generate, reconstruct, encode, "
                     "decode, inpaint, classify (and `parameters` for energy models)")


def _labels():
    return tf.TensorSpec([None], tf.int32, name="labels")


def conditional_endpoint(model, verb):
    """A conditional model's signatures: the class of what it makes or reads, and `classify`."""
    if verb == "sample":
        return (lambda num_samples, seed, label: {"images": model.sample(num_samples, seed, label=label)},
                [tf.TensorSpec([], tf.int32, name="num_samples"), _seed(), tf.TensorSpec([], tf.int32, name="label")])
    if verb == "generate":
        return (lambda seeds, labels: {"images": model.generate(seeds, labels)},
                [tf.TensorSpec([None], tf.int32, name="seeds"), _labels()])
    if verb == "decode":
        return (lambda latent, labels: {"images": model.decode(latent, labels)},
                [tf.TensorSpec([None, model.latent_dim], tf.float32, name="latent"), _labels()])
    if verb == "encode":
        return lambda images, labels: dict(model.encode(images, labels)), [_images(), _labels()]
    if verb == "classify":
        return lambda images: {"probabilities": model.classify(images)}, [_images()]
    if verb == "parameters":
        return model.parameters, []
    raise ValueError(f"unknown signature {verb!r} of a conditional model; it has sample, generate, decode, encode, "
                     "classify")


def warmup_inputs(model):
    """{signature: its inputs}: one small, valid request per serving signature."""
    images, seed = np.zeros((1, 28, 28, 1), np.float32), np.int32(0)
    labels = {"labels": np.zeros([1], np.int32)} if model.CONDITIONAL else {}
    inputs = {"sample": {"num_samples": np.int32(1), "seed": seed, **({"label": np.int32(0)} if labels else {})},
              "generate": {"seeds": np.zeros([1], np.int32), **labels},
              "reconstruct": {"images": images}, "encode": {"images": images, **labels},
              "decode": {"latent": np.zeros((1, model.latent_dim), np.float32), **labels},
              "inpaint": {"images": images, "mask": np.ones_like(images), "seed": seed},
              "classify": {"images": images}}
    return {verb: inputs[verb] for verb in model.SIGNATURES if verb in inputs}


def write_warmup_requests(model, name, path):
    """TF Serving's warm-up file: one PredictRequest per signature, which TF Serving replays when it loads the
    model, so that the first client does not wait for it to initialise. Needs the optional tensorflow-serving-api
    package (pip install -r requirements-serving.txt); without it, nothing is written. Returns the count."""
    try:
        from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
    except ImportError:
        return 0
    requests = warmup_inputs(model)
    with tf.io.TFRecordWriter(path) as writer:
        for verb, inputs in requests.items():
            request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=name, signature_name=verb))
            for key, value in inputs.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return len(requests)


def check_exportable(model):
    """A model that must not reach serving: its first signature must be `sample` (serving_default) if it samples,
    and a weight that is NaN or infinite means training diverged (TrainingDiverged)."""
    if "sample" in model.SIGNATURES and model.SIGNATURES[0] != "sample":
        raise ValueError("`sample` must come first in SIGNATURES: the first endpoint becomes serving_default")
    non_finite = [w.path for w in model.weights if not np.all(np.isfinite(np.asarray(w)))]
    if non_finite:
        raise runs.TrainingDiverged(f"not exported: weights {', '.join(non_finite[:5])} hold NaN or infinite values; "
                                    "training diverged (lower the learning rate and train again)")


def write_files(model, folder, name, card):
    """The export's files in folder (which exists): the SavedModel, the Keras file, the warm-up requests, the card."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    for verb in model.SIGNATURES:
        function, signature = endpoint(model, verb)
        archive.add_endpoint(verb, function, input_signature=signature)
    archive.write_out(folder, verbose=False)
    card = dict(card, name=name, signatures=list(model.SIGNATURES), max_samples=model.max_samples,
                zoo_version=__version__, tensorflow_version=tf.__version__, keras_version=keras.__version__,
                exported_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    os.makedirs(os.path.dirname(os.path.join(folder, KERAS_FILE)))
    model.save(os.path.join(folder, KERAS_FILE))
    card["warmup_requests"] = write_warmup_requests(model, name, os.path.join(folder, WARMUP_FILE))
    os.makedirs(os.path.join(folder, "assets"), exist_ok=True)
    with open(os.path.join(folder, CARD), "w") as f:
        json.dump(card, f, indent=2, default=str)
        f.flush()
        runs.disk_fault("export")


def write_export(model, parent, name, card, place):
    """Write model's export into a staging folder inside parent (hidden from TF Serving, which loads integer
    folders; named by its writer, so a dead writer's can be removed), then `place(staging)` renames it into place
    and returns its path. A full disk or another write error removes the staging folder and is a StorageError."""
    check_exportable(model)
    model.build_for_images()
    try:
        os.makedirs(parent, exist_ok=True)
        remove_stale_staging(parent)
        staging = tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}@{socket.gethostname()}-", dir=parent)
    except OSError as error:
        raise runs.storage_error(error, parent, "give an export folder that can be written") from None
    try:
        write_files(model, staging, name, card)
        runs.fault("during-export")
        return place(staging)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError) or (isinstance(error, tf.errors.OpError) and runs.is_disk_full(error)):
            raise runs.storage_error(error, parent, "then export again (nothing partial was "
                                     "left; a training run resumes and exports on its rerun)") from None
        raise


def remove_stale_staging(folder):
    """Delete the staging folders in folder left by export processes of this host that no longer run (killed
    mid-export); those of running processes, here or on other hosts, are theirs."""
    for entry in os.listdir(folder):
        match = re.fullmatch(r"\.tmp-(\d+)@(.+)-\w+", entry)
        if match and match.group(2) == socket.gethostname() and not process_running(int(match.group(1))):
            shutil.rmtree(os.path.join(folder, entry), ignore_errors=True)


def process_running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def export_to(model, path, card):
    """model's export at exactly `path` (a new folder): what a model's own `model.export(path)` writes."""
    path = os.path.abspath(path)
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise FileExistsError(f"{path} exists; an export is never overwritten: give a new folder (or "
                              "zoo.export.export_model(model, export_dir, name, card) for numbered versions)")

    def place(staging):
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(path)  # an empty folder given for it
        os.rename(staging, path)
        return path

    return write_export(model, os.path.dirname(path), os.path.basename(path), card, place)
