"""SavedModel exports in the TF Serving layout, per the serving contract (docs/serving.md), shared by every model.

    exports/<name>/<version>/            version = 1, 2, ...; never overwritten
        saved_model.pb, variables/       signatures: the model's SIGNATURES (`sample` is also serving_default)
        assets/model_card.json           kind, config, dataset, training steps, final metrics, max_samples
        assets.extra/model.keras         the trainable Keras model (zoo.load_model), which TF Serving ignores
        assets.extra/tf_serving_warmup_requests   one request per signature, replayed by TF Serving at load
                                         (written when the optional tensorflow-serving-api is installed)

An export is written to exports/<name>/.tmp-<pid>@<host>-* and renamed into place only when complete, so a crash
never leaves a half-written version where TF Serving would load it; the next export to that name removes the
staging folders of processes that no longer run.

    python -m zoo.export --list exports/     what is there
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import shutil
import socket
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

import zoo
from zoo import runs
from zoo.callbacks import TrainingDiverged
from zoo.models.base import check_finite

CARD = os.path.join("assets", "model_card.json")
KERAS_FILE = os.path.join("assets.extra", "model.keras")
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")  # the name TF Serving looks for


def _images(name="images"):
    return tf.TensorSpec([None, 28, 28, 1], tf.float32, name=name)


def _seed():
    return tf.TensorSpec([], tf.int32, name="seed")


def endpoint(model, verb):
    """The serving function of one verb and its input signature, with the contract's tensor names."""
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
                     "decode, inpaint (and `parameters` for energy models)")


def warmup_inputs(model):
    """{signature: its inputs}: one small, valid request per serving signature."""
    images, seed = np.zeros((1, 28, 28, 1), np.float32), np.int32(0)
    inputs = {"sample": {"num_samples": np.int32(1), "seed": seed}, "generate": {"seeds": np.zeros([1], np.int32)},
              "reconstruct": {"images": images}, "encode": {"images": images},
              "decode": {"latent": np.zeros((1, model.latent_dim), np.float32)},
              "inpaint": {"images": images, "mask": np.ones_like(images), "seed": seed}}
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


def next_version(folder):
    versions = [int(entry) for entry in os.listdir(folder) if entry.isdigit()] if os.path.isdir(folder) else []
    return max(versions, default=0) + 1


def plain_name(name):
    """Whether name stays inside the folder it is joined to: relative, no empty part, no part starting with '.'
    (no '..', and no hidden staging-like folders)."""
    parts = name.replace(os.sep, "/").split("/")
    return not os.path.isabs(name) and all(part and not part.startswith(".") for part in parts)


def export_model(model, export_dir, name, card, max_samples=None):
    """Write `model` to export_dir/name/<next version>/ and return that path. max_samples caps `sample` and
    `generate` (images per call; default: the model's, 10,000) and is recorded in the card."""
    if not plain_name(name):
        raise ValueError(f"export name {name!r} must be a folder name inside {export_dir} (no '..', not absolute, "
                         "no part starting with '.')")
    if "sample" in model.SIGNATURES and model.SIGNATURES[0] != "sample":
        raise ValueError("`sample` must come first in SIGNATURES: the first endpoint becomes serving_default")
    model.build_for_images()
    if max_samples is not None:
        model.max_samples = int(max_samples)
    non_finite = [w.path for w in model.weights if not np.all(np.isfinite(np.asarray(w)))]
    if non_finite:  # a diverged model must not reach serving looking like a trained one
        raise TrainingDiverged(f"not exported: weights {', '.join(non_finite[:5])} hold NaN or infinite values; "
                               "training diverged (lower the learning rate and train again)")
    archive = keras.export.ExportArchive()
    archive.track(model)
    for verb in model.SIGNATURES:
        function, signature = endpoint(model, verb)
        archive.add_endpoint(verb, function, input_signature=signature)

    folder = os.path.join(export_dir, name)
    os.makedirs(folder, exist_ok=True)
    remove_stale_staging(folder)
    # Hidden from TF Serving, which loads integer folders; named by its writer, so a dead writer's can be removed.
    staging = tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}@{socket.gethostname()}-", dir=folder)
    try:
        archive.write_out(staging, verbose=False)
        card = dict(card, name=name, signatures=list(model.SIGNATURES), max_samples=model.max_samples,
                    zoo_version=zoo.__version__,
                    tensorflow_version=tf.__version__, keras_version=keras.__version__,
                    exported_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        os.makedirs(os.path.dirname(os.path.join(staging, KERAS_FILE)))
        model.save(os.path.join(staging, KERAS_FILE))
        card["warmup_requests"] = write_warmup_requests(model, name, os.path.join(staging, WARMUP_FILE))
        os.makedirs(os.path.join(staging, "assets"), exist_ok=True)
        with open(os.path.join(staging, CARD), "w") as f:
            json.dump(card, f, indent=2, default=str)
        runs.fault("during-export")
        while True:  # another process may take a version number first: then take the next one
            path = os.path.join(folder, str(next_version(folder)))
            try:
                os.rename(staging, path)
                return path
            except OSError:
                if not os.path.exists(path):
                    raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
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


def find_export(export_dir, name, run_id):
    """The path of the export under export_dir/name that the run `run_id` made, or None."""
    folder = os.path.join(export_dir, name)
    versions = sorted((v for v in os.listdir(folder) if v.isdigit()), key=int) if os.path.isdir(folder) else []
    for version in versions:
        try:
            if read_card(os.path.join(folder, version)).get("run_id") == run_id:
                return os.path.join(folder, version)
        except (OSError, ValueError):
            continue
    return None


def load_model(path, compile=True):
    """The trainable Keras model of an export folder (its assets.extra/model.keras) or of a `.keras` file, with
    its optimizer state, so `fit` continues training. (Serving needs none of this: tf.saved_model.load(path).)
    Importing zoo has registered the zoo's model classes with Keras."""
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, KERAS_FILE)):
            raise FileNotFoundError(
                f"{path} has no {KERAS_FILE}: it is not an export, or one made before zoo 0.2 (SavedModel only, "
                "which tf.saved_model.load serves); give an export folder exports/<name>/<version> or a .keras file")
        path = os.path.join(path, KERAS_FILE)
    elif not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist; give an export folder exports/<name>/<version> or a "
                                ".keras file written by model.save")
    return keras.saving.load_model(path, compile=compile)


class Export:
    """A SavedModel used through its signatures only."""

    def __init__(self, path):
        self.path = path
        self.loaded = tf.saved_model.load(path)  # held: the signatures use its variables
        self.signatures = self.loaded.signatures
        self.card = read_card(path) if os.path.exists(os.path.join(path, CARD)) else {}

    def has(self, name):
        return name in self.signatures

    @property
    def latent_dim(self):
        """Width of the code `decode` takes (None without `decode`)."""
        if not self.has("decode"):
            return None
        return self.signatures["decode"].structured_input_signature[1]["latent"].shape[-1]

    def images(self, name, images, batch_size=500, **extra):
        """Call an images-in, images-out signature in batches."""
        out = []
        for start in range(0, len(images), batch_size):
            inputs = {k: tf.constant(v[start:start + batch_size]) for k, v in extra.items() if isinstance(v, np.ndarray)}
            inputs.update({k: tf.constant(v, tf.int32) for k, v in extra.items() if not isinstance(v, np.ndarray)})
            out.append(self.signatures[name](images=tf.constant(images[start:start + batch_size]), **inputs)[
                "images"].numpy())
        return np.concatenate(out)

    def samples(self, n, seed, per_call=1000):
        calls = math.ceil(n / per_call)
        out = [self.signatures["sample"](num_samples=tf.constant(min(per_call, n - i * per_call)),
                                         seed=tf.constant(seed + i))["images"].numpy() for i in range(calls)]
        return np.concatenate(out)


def read_card(path):
    with open(os.path.join(path, CARD)) as f:
        return json.load(f)


def list_exports(export_dir):
    """(name, version, path) of every complete export under export_dir, sorted."""
    found = []
    if os.path.isdir(export_dir):
        for name in sorted(os.listdir(export_dir)):
            folder = os.path.join(export_dir, name)
            if os.path.isdir(folder) and not name.startswith("."):
                for version in sorted((v for v in os.listdir(folder) if v.isdigit()), key=int):
                    found.append((name, int(version), os.path.join(folder, version)))
    return found


def format_listing(export_dir):
    rows = [("export", "kind", "dataset", "steps", "final metrics", "signatures")]
    for name, version, path in list_exports(export_dir):
        try:
            card = read_card(path)
        except (OSError, ValueError):
            rows.append((f"{name}/{version}", "?", "?", "?", "(no readable model card)", ""))
            continue
        final = card.get("final_metrics", {})
        shown = {k: v for k, v in final.items() if k.startswith("val_")} or final  # training's, if no validation
        metrics = ", ".join(f"{k}={v:.2f}" for k, v in shown.items())
        rows.append((f"{name}/{version}", card.get("kind", "?"), card.get("data", {}).get("dataset", "?"),
                     str(card.get("steps", "?")), metrics, " ".join(card.get("signatures", []))))
    if len(rows) == 1:
        return f"no exports under {export_dir}"
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def re_export(source, export_dir, name, changes):
    """Export the weights of the export `source` again, as export_dir/name/<next version>, with some of its sampling
    settings changed (`changes`: {field: value}, values typed or as strings; only fields in the model's
    SAMPLING_SETTINGS, e.g. the GANs' truncation or the RBM's sampler), so how a trained model samples can be
    chosen without training it again. Returns the new path; its card says where it came from."""
    model = load_model(source, compile=False)
    allowed = getattr(model, "SAMPLING_SETTINGS", ())
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise ValueError(f"{model.__class__.__name__} cannot change {', '.join(unknown)} after training; its "
                         f"sampling settings are: {', '.join(allowed) or 'none'}")
    changes = {key: typed_like(getattr(model.config, key), key, value) for key, value in changes.items()}
    model.config = check_finite(dataclasses.replace(model.config, **changes))  # every check of a new model's config
    card = {k: v for k, v in read_card(source).items() if k != "run_id"}  # the run made the source, not this
    card.update(config=dataclasses.asdict(model.config), re_exported_from=source, sampling_changes=changes)
    return export_model(model, export_dir, name, card, max_samples=card.get("max_samples"))


def typed_like(current, key, value):
    """value (a string from the command line, or already typed) as the type of the setting's current value."""
    if not isinstance(value, str) or isinstance(current, str):
        return value
    try:
        return value.lower() in ("1", "true", "yes") if isinstance(current, bool) else type(current)(value)
    except ValueError:
        raise ValueError(f"{key} takes a {type(current).__name__}, got {value!r}") from None


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m zoo.export", description="Inspect the zoo's SavedModel exports, or export one again with "
        "other sampling settings (e.g. python -m zoo.export --from exports/dcgan_quality/1 --set truncation=1.0 "
        "--name dcgan_quality_t1).")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--list", metavar="EXPORT_DIR", help="list the exports under this folder")
    action.add_argument("--from", dest="source", metavar="EXPORT", help="an export folder to export again")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="with --from: a sampling setting to change (repeatable)")
    parser.add_argument("--name", help="with --from: the new export's name (default: the source's)")
    parser.add_argument("--export-dir", default="exports", help="with --from: where to write it (default exports)")
    args = parser.parse_args(argv)
    if args.list is not None:
        if not os.path.isdir(args.list):
            parser.error(f"{args.list} is not a folder; exports live in exports/<name>/<version>/")
        print(format_listing(args.list))
        return
    if not os.path.isfile(os.path.join(args.source, CARD)):
        parser.error(f"{args.source} is not an export folder (no {CARD}); give exports/<name>/<version>")
    changes = {}
    for assignment in args.set:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            parser.error(f"--set {assignment!r}: expected FIELD=VALUE, e.g. --set truncation=1.0")
        changes[key.strip().replace("-", "_")] = value
    try:
        path = re_export(args.source, args.export_dir, args.name or read_card(args.source)["name"], changes)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    print(f"exported {path}")


if __name__ == "__main__":
    main()
