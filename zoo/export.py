"""Exports in the TF Serving layout, shared by every model: writing them with numbered versions, listing them,
checking them, and reading them back (the files of one export: zoo/contract.py).

    exports/<name>/<version>/            version = 1, 2, ...; never overwritten

An export is written to exports/<name>/.tmp-<pid>@<host>-* and renamed into place only when complete, so a crash
never leaves a half-written version where TF Serving would load it; the next export to that name removes the
staging folders of processes that no longer run.

    python -m zoo.export --list exports/     what is there, and whether each export reads
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import zipfile

import keras
import numpy as np
import tensorflow as tf

from zoo import cli, contract, runs
from zoo.contract import CARD, KERAS_FILE, WARMUP_FILE  # noqa: F401  (the layout, by the names users know)
from zoo.models.base import check_finite


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
    if max_samples is not None:
        model.max_samples = int(max_samples)
    folder = os.path.join(export_dir, name)

    def place(staging):
        while True:  # another process may take a version number first: then take the next one
            path = os.path.join(folder, str(next_version(folder)))
            try:
                os.rename(staging, path)
                return path
            except OSError:
                if not os.path.exists(path):
                    raise

    return contract.write_export(model, folder, name, card, place)


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


class ExportDamaged(RuntimeError):
    """An export (or a .keras file) whose files are missing, truncated or changed: the message names the damage."""


def check_export(path):
    """What is wrong with the export folder `path`, in a few words, or None if its files read: the SavedModel's
    graph parses and every variable reads whole from variables/ (without building the model: quick), and its card
    is JSON. Truncated, missing or changed files are found here; tf.saved_model.load gives raw tracebacks."""
    from tensorflow.core.protobuf import saved_model_pb2

    graph = os.path.join(path, "saved_model.pb")
    if not os.path.isfile(graph):
        return "no saved_model.pb"
    try:
        with open(graph, "rb") as f:
            saved_model_pb2.SavedModel().ParseFromString(f.read())
    except Exception as error:  # noqa: BLE001 - a protobuf DecodeError, or an OSError
        return f"saved_model.pb does not parse ({type(error).__name__})"
    prefix = os.path.join(path, "variables", "variables")
    if not os.path.isfile(prefix + ".index"):
        return "variables/ is missing or has no variables.index"
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as error:  # noqa: BLE001 - DataLossError, OutOfRangeError, NotFoundError, ...
        return f"variables/ does not read: {first_line(error)}"
    if os.path.exists(os.path.join(path, CARD)):
        try:
            read_card(path)
        except (OSError, ValueError) as error:
            return f"{CARD} does not read ({type(error).__name__})"
    return None


def first_line(error):
    """An exception's message, first line only: TensorFlow's carry stack traces after it."""
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    return text.strip().splitlines()[0][:200]


def damaged(path, problem):
    return ExportDamaged(f"{path} is damaged: {problem}; export it again, or restore it from a copy")


def load_model(path, compile=True):
    """The trainable Keras model of an export folder (its assets.extra/model.keras) or of a `.keras` file, with
    its optimizer state, so `fit` continues training. (Serving needs none of this: tf.saved_model.load(path).)
    Importing zoo has registered the zoo's model classes with Keras. A damaged file is an ExportDamaged naming it."""
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, KERAS_FILE)):
            raise FileNotFoundError(
                f"{path} has no {KERAS_FILE}: it is not an export, or one made before zoo 0.2 (SavedModel only, "
                "which tf.saved_model.load serves); give an export folder exports/<name>/<version> or a .keras file")
        path = os.path.join(path, KERAS_FILE)
    elif not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist; give an export folder exports/<name>/<version> or a "
                                ".keras file written by model.save")
    if not zipfile.is_zipfile(path):
        raise damaged(path, "it is not a complete .keras file (a zip archive): truncated or overwritten")
    try:
        return keras.saving.load_model(path, compile=compile)
    except Exception as error:  # noqa: BLE001 - Keras reports a damaged archive in many ways
        raise damaged(path, f"it does not load ({type(error).__name__}: {first_line(error)})") from None


class Export:
    """A SavedModel used through its signatures only. A damaged one is an ExportDamaged naming the damage."""

    def __init__(self, path):
        self.path = path
        problem = check_export(path)
        if problem:
            raise damaged(path, problem)
        try:
            self.loaded = tf.saved_model.load(path)  # held: the signatures use its variables
        except Exception as error:  # noqa: BLE001 - damage that check_export could not see
            raise damaged(path, f"it does not load ({type(error).__name__}: {first_line(error)})") from None
        self.signatures = self.loaded.signatures
        self.card = read_card(path) if os.path.exists(os.path.join(path, CARD)) else {}

    def has(self, name):
        return name in self.signatures

    @property
    def conditional(self):
        """Whether the export generates a chosen class: its `sample` takes a `label`."""
        return self.has("sample") and "label" in self.signatures["sample"].structured_input_signature[1]

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
            inputs = {k: tf.constant(v[start:start + batch_size])
                      for k, v in extra.items() if isinstance(v, np.ndarray)}
            inputs.update({k: tf.constant(v, tf.int32) for k, v in extra.items() if not isinstance(v, np.ndarray)})
            out.append(self.signatures[name](images=tf.constant(images[start:start + batch_size]), **inputs)[
                "images"].numpy())
        return np.concatenate(out)

    def samples(self, n, seed, per_call=1000, label=None):
        """n samples from seeds seed, seed + 1, ... (per_call a call); of class `label` for a conditional export
        (default: classes 0, 1, ..., 9 in turn, a call each)."""
        calls = math.ceil(n / per_call)
        out = []
        for i in range(calls):
            inputs = dict(num_samples=tf.constant(min(per_call, n - i * per_call)), seed=tf.constant(seed + i))
            if self.conditional:
                inputs["label"] = tf.constant(i % 10 if label is None else label, tf.int32)
            out.append(self.signatures["sample"](**inputs)["images"].numpy())
        return np.concatenate(out)

    def class_samples(self, per_class, seed, classes=10):
        """A conditional export's samples of every class: (images [classes * per_class, ...], their labels)."""
        images = [self.samples(per_class, seed + 1000 * c, label=c) for c in range(classes)]
        return np.concatenate(images), np.repeat(np.arange(classes), per_class)

    def probabilities(self, images, batch_size=500):
        """The `classify` signature's p(y|x) [n, classes], in batches."""
        return np.concatenate([self.signatures["classify"](images=tf.constant(images[s:s + batch_size]))[
            "probabilities"].numpy() for s in range(0, len(images), batch_size)])


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


def format_listing(export_dir, check=True):
    """A table of the exports under export_dir: each one's card, and (check) whether its files read (check_export)."""
    rows = [("export", "kind", "dataset", "steps", "final metrics", "signatures", "files")]
    for name, version, path in list_exports(export_dir):
        files = (check_export(path) or "read") if check else "not checked"
        try:
            card = read_card(path)
        except (OSError, ValueError):
            rows.append((f"{name}/{version}", "?", "?", "?", "(no readable model card)", "", files))
            continue
        final = card.get("final_metrics", {})
        shown = {k: v for k, v in final.items() if k.startswith("val_")} or final  # training's, if no validation
        metrics = ", ".join(f"{k}={v:.2f}" for k, v in shown.items())
        rows.append((f"{name}/{version}", card.get("kind", "?"), card.get("data", {}).get("dataset", "?"),
                     str(card.get("steps", "?")), metrics, " ".join(card.get("signatures", [])),
                     files if files in ("read", "not checked") else f"DAMAGED: {files}"))
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
    parser = cli.parser(
        "python -m zoo.export", "Inspect the zoo's SavedModel exports, or export one again with other sampling "
        "settings (e.g. python -m zoo.export --from exports/dcgan_quality/1 --set truncation=1.0 --name "
        "dcgan_quality_t1).")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--list", metavar="EXPORT_DIR", help="list the exports under this folder, and check that "
                        "each one's files read")
    action.add_argument("--from", dest="source", metavar="EXPORT", help="an export folder to export again")
    parser.add_argument("--no-check", dest="check", action="store_false",
                        help="with --list: read the cards only, not every export's files (faster)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="with --from: a sampling setting to change (repeatable)")
    parser.add_argument("--name", help="with --from: the new export's name (default: the source's)")
    parser.add_argument("--export-dir", default="exports", help="with --from: where to write it (default exports)")
    args = parser.parse_args(argv)
    if args.list is not None:
        if not os.path.isdir(args.list):
            cli.fail(parser, f"{args.list} is not a folder; exports live in exports/<name>/<version>/")
        listing = format_listing(args.list, check=args.check)
        print(listing)
        if "DAMAGED" in listing:
            parser.exit(1)
        return
    if not os.path.isfile(os.path.join(args.source, CARD)):
        cli.fail(parser, f"{args.source} is not an export folder (no {CARD}); give exports/<name>/<version>")
    changes = {}
    for assignment in args.set:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            cli.fail(parser, f"--set {assignment!r}: expected FIELD=VALUE, e.g. --set truncation=1.0")
        changes[key.strip().replace("-", "_")] = value
    try:
        path = re_export(args.source, args.export_dir, args.name or read_card(args.source)["name"], changes)
    except (ValueError, FileNotFoundError, ExportDamaged, runs.StorageError) as error:
        cli.fail(parser, error)
    print(f"exported {path}")


if __name__ == "__main__":
    main()
