"""Pretrained models: the zoo's best model of each family, trained once, shipped inside the package, loaded offline.

    import zoo
    zoo.pretrained.list()                  # the names
    zoo.pretrained.card("vae_iwae")        # how it was trained, and what it measures
    model = zoo.pretrained.load("dcgan")   # the Keras model, every verb working: model.sample(16, seed=0)

    python -m zoo.pretrained list [--markdown]    the registry, one line each (or docs/pretrained.md's table)
    python -m zoo.pretrained show NAME            its card
    python -m zoo.pretrained export NAME          the serving contract's SavedModel, as exports/NAME/<version>
    python -m zoo.pretrained samples              a PNG of every model's samples, side by side
    python -m zoo.pretrained verify [NAME ...]    every check CI runs on the shipped files
    python -m zoo.pretrained evaluate NAME        its card's figures recomputed from the shipped file, compared

Each entry is two files in zoo/weights/ (package data: `pip install .` and `pip install -e .` both carry them):
NAME.npz, the weights the verbs use and nothing else (no optimizer state; a GAN's averaged generator, not its
discriminator), and NAME.json, its card: the command and commit that trained it, the data, seed, parameter count,
file size and SHA-256, the training time and machine, and the figures zoo.evaluate measures on an export of the
shipped file itself. REGISTRY below holds each file's SHA-256, checked at every load: a missing, truncated or changed
file is refused. A weights file changes only when its model measurably beats its card.

Maintainers make an entry from an export, then measure it (both write into zoo/weights/):

    python -m zoo.pretrained pack exports/vae_iwae/1 --name vae_iwae --command "python -m zoo.train ..."
    python -m zoo.pretrained measure vae_iwae
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

from zoo import cli

WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")

# name -> SHA-256 of zoo/weights/NAME.npz. The order is the registry's: the likelihood models, then the samplers,
# then the class-conditional models.
REGISTRY = {
    "rbm_centered": "99a62215b4a171feaf8142934d063fdca514b426bf38ba34a9b10ab108f01416",
    "rbm_tempering": "c2c3ec2d91e8618b88c8163e73e5114f8faf79b4c2b6216cc596e81d1f872548",
    "dbn_hinton2006": "00f7882587a80f58892f41165f73ad200b5012988c9c27d55c384af2fcd2ad52",
    "vae_iwae": "d2003718bfc6e7a7e3dd2ee04bca5e8a5be1eab71c2870960c9fba033b280973",
    "vae_2d": "c1dc685d642949257146d866a79a87d54c0e7c15f8d290fac52642f9b4a27ecd",
    "conv_vae": "ffd28e73400bf7491d5040be212a2dcb9c25f23b7cb5f3ea354926d794d63dbd",
    "gan_mlp": "b9343c86f18c5d7d288791d3c3bf8cabe7d45e56d0193000753460246c163036",
    "dcgan": "f2158291635a88a7735761705a96450fa37c978b6c95d1778134e01d54bd04b7",
    "dae": "92fcd496bccd88fb863f54c50f20e4441776402d5f819285f533b44d85ca5aef",
    "cvae": "c2b7d1a941d2e65150ca5c0a73329aeb1b0750e24c6453521332e8c6cbd4ca08",
    "cdcgan": "b2ddda944b4cb98b263ead7cb78ddfe873bc6b0bcaa410993c148928b35cfc2f",
    "dbn_hinton2006_labels": "b543483454ab9b4ba5bbd69e7db42c08bb601aab077afbbdec2b91190025de28",
}

# How far a figure measured again may be from its card before `verify` fails: on the machine that made the card
# the figures are equal (same seeds); elsewhere float round-off sends sampling chains along other paths, and the
# figures move by their sampling noise (measured: see docs/pretrained.md).
TOLERANCE = {"classifier_score": 0.15, "frechet_distance_relative": 0.15, "frechet_distance": 1.0,
             "nll_standard_errors": 1.0, "nll_nats": 1.0, "label_accuracy": 0.02, "test_error": 0.02}


class PretrainedError(ValueError):
    """An unknown name, or a weights file that is missing or not the one the registry records."""


def list():  # noqa: A001 - zoo.pretrained.list(), as registries of pretrained models name it
    """The names of the pretrained models, in the registry's order."""
    return builtins.list(REGISTRY)


def check_name(name):
    if name not in REGISTRY:
        raise PretrainedError(f"no pretrained model {name!r}; the registry has {', '.join(REGISTRY) or 'none'}")
    return name


def weights_path(name):
    return os.path.join(WEIGHTS, f"{check_name(name)}.npz")


def card(name):
    """The card of a pretrained model (a dict): what it is, how it was trained, what it measures."""
    path = os.path.join(WEIGHTS, f"{check_name(name)}.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        raise PretrainedError(f"the card {path} of {name!r} does not read ({error}); reinstall zoo "
                              "(pip install .) or check out zoo/weights/ again") from None


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checked_weights(name):
    """The path of NAME's weights file once its SHA-256 is the registry's (PretrainedError naming the file, the
    expected hash and what to do otherwise)."""
    path = weights_path(name)
    expected = REGISTRY[name]
    if not os.path.isfile(path):
        raise PretrainedError(f"{path} is missing (expected SHA-256 {expected}); reinstall zoo (pip install .) or "
                              "check out zoo/weights/ again")
    found = sha256(path)
    if found != expected:
        raise PretrainedError(f"{path} has SHA-256 {found}, expected {expected}: the file is truncated or changed; "
                              "reinstall zoo (pip install .) or check out zoo/weights/ again")
    return path


def load(name):
    """The pretrained model NAME as a Keras model (not compiled: model.compile() to train it further), its weights
    checked against the registry's SHA-256. Offline, and it never trains."""
    import numpy as np

    from zoo.models import MODELS

    path = checked_weights(name)
    about = card(name)
    model_class = MODELS[about["kind"]]
    fields = {f.name for f in dataclasses.fields(model_class.Config)}
    config = model_class.Config(**{k: tuple(v) if isinstance(v, builtins.list) else v
                                   for k, v in about["config"].items() if k in fields})
    model = model_class(config, seed=about.get("seed", 0), name=name)
    with np.load(path, allow_pickle=False) as arrays:  # float16 files (see pack) compute in float32
        stored = [arrays[key] for key in sorted(arrays.files)]  # each access reads and decompresses the array
        model.load_serving_weights([a.astype(np.float32) if a.dtype == np.float16 else a for a in stored])
    return model


def export(name, export_dir="exports", max_samples=None):
    """Write NAME's SavedModel (the serving contract's signatures, loadable with no zoo code) as
    export_dir/NAME/<next version> and return its path."""
    from zoo import export as exports

    model = load(name)
    about = card(name)
    exported = {k: about[k] for k in ("kind", "config", "seed", "data", "steps", "train_seconds") if k in about}
    return exports.export_model(model, export_dir, name, dict(exported, pretrained=name, pretrained_sha256=REGISTRY[
        name], training=about.get("training", {})), max_samples=max_samples)


# ---------------------------------------------------------------------------------------------------------------
# The first picture: every family's samples side by side.


def samples_picture(out="pretrained.png", names=None, count=8, seed=0):
    """A PNG with one row of `count` samples (seeds seed..) per pretrained model that samples, its name beside
    it; returns its path. A model without `sample` (the DAE) shows its reconstructions of test images instead."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from zoo import data

    rows = []
    for name in names or list():
        model = load(name)
        if "sample" in model.SIGNATURES:
            images = np.asarray(model.generate(np.arange(seed, seed + count, dtype=np.int32)))
            what = "samples of the digits 0, 1, 2, ... asked in turn" if model.CONDITIONAL else "samples"
        else:
            test = data.as_images(data.load_arrays()[2][:count])
            images, what = np.asarray(model.reconstruct(test)), "reconstructions of test digits"
        rows.append((f"{name}: {what}", images))
    figure, axes = plt.subplots(len(rows), 1, figsize=(count * 0.9, len(rows) * 1.25), squeeze=False)
    for axis, (title, images) in zip(axes[:, 0], rows):
        axis.imshow(np.concatenate(images[..., 0], axis=1), cmap="gray", vmin=0, vmax=1)
        axis.set_title(title, fontsize=9, loc="left")
        axis.axis("off")
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Measuring an entry, and checking it again (CI).

CHECK_IMAGES = 200  # test images of the likelihood check
CHECK_SAMPLES = 1000  # samples of the sample-figure check


def check_settings(kind):
    """The evaluator's settings of the quick check of an entry: 1,000 samples; the likelihood on the first 200
    test images with cheaper estimators than the leaderboard's (fewer importance samples and temperatures)."""
    from zoo.evaluate import EvalConfig

    return EvalConfig(num_samples=CHECK_SAMPLES, test_images=CHECK_IMAGES, iw_samples=500, conv_vae_images=0,
                      ais_chains=100, ais_temperatures=2000, raise_images=0, dbn_samples=100)


def check_figures(path, kind, reference=None):
    """The quick check's figures of the export at path: sample figures of 1,000 samples (seed 0) and the
    likelihood estimate of the first 200 test images (and a classifier's test error on them), as zoo.evaluate computes
    them."""
    import numpy as np

    from zoo.evaluate import Reference, classification_figures, sample_figures
    from zoo.export import Export
    from zoo.likelihood import LIKELIHOODS

    exported = Export(path)
    reference = reference or Reference.build(check_settings(kind))
    figures = {}
    if exported.has("sample"):  # a conditional export's: 100 of each class, and their label accuracy
        samples = sample_figures(exported, reference)
        figures["samples"] = {k: samples[k] for k in ("classifier_score", "frechet_distance", "label_accuracy")
                              if k in samples}
    if exported.has("classify"):
        figures["classification"] = classification_figures(exported, reference)
    if kind in LIKELIHOODS:
        likelihood = LIKELIHOODS[kind](exported, reference)
        if "missing" not in likelihood:  # e.g. a DBN with label units: no estimator for its kind of top RBM
            figures["likelihood"] = {k: likelihood[k] for k in ("nll_nats", "standard_error")}
    if exported.has("reconstruct"):
        figures["reconstruction_mse"] = float(np.mean(np.square(
            exported.images("reconstruct", reference.test_images) - reference.test_images)))
    return figures


def compare(measured, recorded):
    """The differences between figures measured again and the card's that exceed TOLERANCE, as text lines."""
    problems = []
    if "samples" in recorded:
        got, want = measured["samples"], recorded["samples"]
        if abs(got["classifier_score"] - want["classifier_score"]) > TOLERANCE["classifier_score"]:
            problems.append(f"classifier score {got['classifier_score']:.3f}, card {want['classifier_score']:.3f}")
        allowed = TOLERANCE["frechet_distance"] + TOLERANCE["frechet_distance_relative"] * want["frechet_distance"]
        if abs(got["frechet_distance"] - want["frechet_distance"]) > allowed:
            problems.append(f"Fréchet distance {got['frechet_distance']:.2f}, card {want['frechet_distance']:.2f}")
        if "label_accuracy" in want and abs(got["label_accuracy"] - want["label_accuracy"]) > TOLERANCE[
                "label_accuracy"]:
            problems.append(f"label accuracy {got['label_accuracy']:.3f}, card {want['label_accuracy']:.3f}")
    if "classification" in recorded:
        got, want = measured["classification"]["test_error"], recorded["classification"]["test_error"]
        if abs(got - want) > TOLERANCE["test_error"]:
            problems.append(f"test error {got:.4f}, card {want:.4f}")
    if "likelihood" in recorded:
        got, want = measured["likelihood"], recorded["likelihood"]
        allowed = TOLERANCE["nll_nats"] + TOLERANCE["nll_standard_errors"] * want["standard_error"]
        if abs(got["nll_nats"] - want["nll_nats"]) > allowed:
            problems.append(f"NLL {got['nll_nats']:.2f} nats, card {want['nll_nats']:.2f} (allowed ±{allowed:.2f})")
    mse = {key: figures.get("reconstruction_mse", figures.get("reconstruction", {}).get("mse"))
           for key, figures in (("got", measured), ("want", recorded))}  # the quick check's, or the card's
    if mse["want"] is not None and abs(mse["got"] - mse["want"]) > 0.1 * mse["want"]:
        problems.append(f"reconstruction error {mse['got']:.5f}, card {mse['want']:.5f}")
    return problems


def verify(names=None, log=print):
    """Every check of each entry (CI): the hash; load; its export has the card's signatures and loads with
    tf.saved_model.load in a process without zoo code; its quick-check figures within TOLERANCE of the card's.
    Returns {name: [problems]} (empty lists: all passed)."""
    from zoo.evaluate import Reference

    results, reference = {}, None
    for name in names or list():
        started = time.time()
        problems = []
        try:
            about = card(name)
            with tempfile.TemporaryDirectory() as folder:
                path = export(name, folder)
                problems += contract_problems(path, about)
                reference = reference or Reference.build(check_settings(about["kind"]))  # one for all: same settings
                problems += compare(check_figures(path, about["kind"], reference), about.get("check", {}))
        except PretrainedError as error:
            problems.append(str(error))
        results[name] = problems
        log(f"{name}: {'ok' if not problems else 'FAILED: ' + '; '.join(problems)} ({time.time() - started:.0f} s)")
    return results


def contract_problems(path, about):
    """What is wrong with a pretrained export as serving sees it: loaded in a fresh Python with TensorFlow alone
    (no zoo on the path), it must have the card's signatures and `sample` (if any; of a class, for a conditional
    export) must give [n, 28, 28, 1] in [0, 1]."""
    code = ("import sys, tensorflow as tf\n"
            "m = tf.saved_model.load(sys.argv[1])\n"
            "print(' '.join(sorted(m.signatures)))\n"
            "if 'sample' in m.signatures:\n"
            "    sample = m.signatures['sample']\n"
            "    label = {'label': tf.constant(7)} if 'label' in sample.structured_input_signature[1] else {}\n"
            "    x = sample(num_samples=tf.constant(3), seed=tf.constant(0), **label)['images'].numpy()\n"
            "    assert x.shape == (3, 28, 28, 1) and x.min() >= 0 and x.max() <= 1, x.shape\n")
    done = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, cwd="/",
                          env={**os.environ, "PYTHONPATH": "", "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    if done.returncode:
        return [f"the export does not serve without zoo: {done.stderr.strip().splitlines()[-1:]}"]
    signatures = set(done.stdout.split())
    missing = set(about.get("signatures", [])) - signatures
    return [f"the export lacks {', '.join(sorted(missing))}"] if missing else []


# ---------------------------------------------------------------------------------------------------------------
# Making an entry (maintainers).


def machine():
    """This machine, as a card records where its model trained: CPU model, core count, TensorFlow's devices."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores of an {model}"


def pack(source, name, command, commit=None, description="", float16=False):
    """Make the entry NAME from the export `source`: its serving weights to zoo/weights/NAME.npz, and a card with
    the training facts of the export's own card. Prints the SHA-256 to put in REGISTRY; `measure` adds figures.
    float16 stores the float arrays at half the size (loaded back as float32): for a GAN's generator, whose samples
    it does not change measurably; the card's figures are measured on the stored file either way."""
    import numpy as np

    from zoo import export as exports

    model = exports.load_model(source, compile=False)
    recorded = exports.read_card(source)
    os.makedirs(WEIGHTS, exist_ok=True)
    path = os.path.join(WEIGHTS, f"{name}.npz")
    arrays = [np.asarray(v) for v in model.serving_weights()]
    if float16:
        arrays = [a.astype(np.float16) if a.dtype == np.float32 else a for a in arrays]
    np.savez_compressed(path, **{f"w{i:03d}": a for i, a in enumerate(arrays)})
    about = {
        "name": name,
        "description": description,
        "kind": recorded["kind"],
        "config": recorded["config"],
        "seed": recorded.get("seed", 0),
        "data": recorded.get("data", {}),
        "steps": recorded.get("steps"),
        "train_seconds": recorded.get("train_seconds"),
        "signatures": recorded.get("signatures", builtins.list(model.SIGNATURES)),
        "training": {"command": command, "commit": commit or recorded.get("commit"), "source_export": source,
                     "init_from": recorded.get("init_from"),
                     "kept": recorded.get("kept"), "machine": machine(),
                     "tensorflow_version": recorded.get("tensorflow_version"),
                     "keras_version": recorded.get("keras_version"), "trained_until": recorded.get("exported_at")},
        "file": {"name": os.path.basename(path), "bytes": os.path.getsize(path), "sha256": sha256(path),
                 "parameters": int(sum(a.size for a in arrays)), "arrays": len(arrays),
                 "dtype": "float16" if float16 else "float32"},
    }
    write_card(name, about)
    return about["file"]["sha256"]


def write_card(name, about):
    with open(os.path.join(WEIGHTS, f"{name}.json"), "w") as f:
        json.dump(about, f, indent=2, default=str)
        f.write("\n")


def leaderboard_figures(path, log=print):
    """The card's figures of the export at path, as zoo.evaluate computes them with the leaderboard's settings."""
    from zoo.evaluate import EvalConfig, Reference, evaluate_export

    started = time.time()
    row = evaluate_export(path, Reference.build(EvalConfig()), log=log)
    figures = {k: row[k] for k in ("samples", "reconstruction", "inpainting", "likelihood", "classification")
               if "missing" not in row[k]}
    figures["evaluation_seconds"] = round(time.time() - started)
    return figures


def evaluate(name, log=print):
    """NAME's card figures recomputed from its shipped file, with the leaderboard's settings (minutes to an hour):
    (figures, the differences from its card beyond TOLERANCE, as text lines)."""
    about = card(name)
    with tempfile.TemporaryDirectory() as folder:
        figures = leaderboard_figures(export(name, folder), log)
    return figures, compare(figures, about.get("figures", {}))


def measure(name, log=print):
    """The figures of NAME as zoo.evaluate computes them, on an export of the shipped file itself (the
    leaderboard's settings), and the quick check's figures that `verify` compares with: both into its card."""
    about = card(name)
    with tempfile.TemporaryDirectory() as folder:
        path = export(name, folder)
        about["figures"] = leaderboard_figures(path, log)
        about["check"] = dict(check_figures(path, about["kind"]), settings={
            "samples": CHECK_SAMPLES, "test_images": CHECK_IMAGES,
            **{k: v for k, v in dataclasses.asdict(check_settings(about["kind"])).items() if k != "fractions"}})
    write_card(name, about)
    return about


# ---------------------------------------------------------------------------------------------------------------
# Command line.


def headline(about):
    """A card's headline figures, as one short phrase: test NLL, then samples (or reconstruction), then a
    conditional model's label accuracy and test error."""
    figures, parts = about.get("figures", {}), []
    if "likelihood" in figures:
        likelihood = figures["likelihood"]
        images = likelihood.get("images", 10000)
        what = "-log p(x|y)" if "p(x|y)" in likelihood.get("method", "") else "NLL"  # a conditional model's
        parts.append(f"test {what} {likelihood['nll_nats']:.2f} nats" + (f" (first {images:,})" if images < 10000
                                                                          else ""))
    if "samples" in figures:
        samples = figures["samples"]
        parts.append(f"score {samples['classifier_score']:.2f}, FD {samples['frechet_distance']:.2f}")
        if "label_accuracy" in samples:
            parts.append(f"label accuracy {samples['label_accuracy']:.1%}")
    if "classification" in figures:
        parts.append(f"test error {figures['classification']['test_error']:.2%}")
    if "reconstruction" in figures and not parts:
        parts.append(f"reconstruction MSE {figures['reconstruction']['mse']:.4f}")
    return "; ".join(parts)


def summary_line(name):
    about = card(name)
    size = about.get("file", {}).get("bytes", 0) / 2 ** 20
    return f"{name:16s} {about['kind']:9s} {size:5.1f} MB  {headline(about):42s} {about.get('description', '')}"


def registry_table():
    """The registry as the Markdown table of docs/pretrained.md (`list --markdown`), from the cards."""
    rows = ["| name | kind | what it is | file | headline figures (measured on the shipped file) |",
            "|---|---|---|---|---|"]
    for name in list():
        about = card(name)
        size = about.get("file", {}).get("bytes", 0) / 2 ** 20
        rows.append(f"| `{name}` | {about['kind']} | {about.get('description', '')} | {size:.1f} MB "
                    f"| {headline(about)} |")
    return "\n".join(rows)


def main(argv=None):
    parser = cli.parser("python -m zoo.pretrained", "The zoo's pretrained models: list them, read their cards, "
                        "export them for serving, look at their samples.")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    listing = cli.subparser(verbs, "list", help="the registry, one line each")
    listing.add_argument("--markdown", action="store_true", help="as the table of docs/pretrained.md")
    show = cli.subparser(verbs, "show", help="a model's card")
    show.add_argument("name")
    to_export = cli.subparser(verbs, "export", help="write NAME's SavedModel to EXPORT_DIR/NAME/<version>")
    to_export.add_argument("name")
    to_export.add_argument("--export-dir", default="exports", help="default: %(default)s")
    samples = cli.subparser(verbs, "samples", help="a PNG of every pretrained model's samples")
    samples.add_argument("--out", default="pretrained.png", help="default: %(default)s")
    samples.add_argument("--seed", type=cli.integer, default=0, help="the first sample's seed (default: 0)")
    recompute = cli.subparser(verbs, "evaluate", help="recompute NAME's card figures from its shipped file (the "
                              "leaderboard's settings: minutes to an hour) and compare them with the card")
    recompute.add_argument("name")
    check = cli.subparser(verbs, "verify", help="check the shipped files: hash, load, export, figures against "
                          "their cards")
    check.add_argument("names", nargs="*", help="default: every entry")
    make = cli.subparser(verbs, "pack", help="(maintainers) make the entry NAME from an export")
    make.add_argument("source", help="an export folder, exports/<name>/<version>")
    make.add_argument("--name", required=True)
    make.add_argument("--command", required=True, help="the command that trained it")
    make.add_argument("--commit", help="the commit that trained it")
    make.add_argument("--description", default="")
    make.add_argument("--float16", action="store_true", help="store the weights as float16, half the size (a GAN's "
                      "generator)")
    remeasure = cli.subparser(verbs, "measure", help="(maintainers) measure NAME's figures into its card")
    remeasure.add_argument("name")
    args = parser.parse_args(argv)
    try:
        if args.verb == "list" and args.markdown:
            print(registry_table())
        elif args.verb == "list":
            for name in list():
                print(summary_line(name))
        elif args.verb == "show":
            print(json.dumps(card(args.name), indent=2))
        elif args.verb == "export":
            print(f"exported {export(args.name, args.export_dir)}")
        elif args.verb == "samples":
            started = time.time()
            path = samples_picture(args.out, seed=args.seed)
            print(f"wrote {path} ({len(list())} models, {time.time() - started:.1f} s)")
        elif args.verb == "evaluate":
            figures, problems = evaluate(args.name)
            recorded = card(args.name).get("figures", {})
            print(f"{args.name}: now   {headline({'figures': figures})}\n{' ' * len(args.name)}  card  "
                  f"{headline({'figures': recorded})}")
            if problems:
                parser.exit(1, f"{parser.prog}: {args.name} differs from its card: {'; '.join(problems)}\n")
            print(f"{args.name}: agrees with its card (within zoo.pretrained.TOLERANCE)")
        elif args.verb == "verify":
            for name in args.names:
                check_name(name)
            results = verify(args.names or None)
            if any(results.values()):
                parser.exit(1, f"{parser.prog}: {sum(map(bool, results.values()))} entr(ies) failed\n")
        elif args.verb == "pack":
            digest = pack(args.source, args.name, args.command, args.commit, args.description, args.float16)
            print(f"{args.name}: SHA-256 {digest} (put it in zoo.pretrained.REGISTRY)")
        elif args.verb == "measure":
            print(json.dumps(measure(args.name).get("figures", {}), indent=2))
    except PretrainedError as error:
        cli.fail(parser, error)


if __name__ == "__main__":
    main()
