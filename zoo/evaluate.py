"""Evaluate exports through the serving contract alone, so the numbers hold in serving too.

    python -m zoo.evaluate exports/vae/1 [exports/... ...]    one report per export
    python -m zoo.evaluate --all exports/                     every export, then RESULTS.md and RESULTS.json

Each export is loaded with tf.saved_model.load (no zoo model classes) and judged on what its signatures offer:

    sample       10,000 samples (seeds 0..9): classifier score (the Inception score with the zoo's MNIST
                 classifier, exp E_x KL(p(y|x) || p(y))), Fréchet distance of the classifier's penultimate
                 features to the 10,000 test images', class histogram, and the mean distance from each sample to its
                 nearest training image (memorisation), with the real test images' own figures as the ceiling
    reconstruct  the test set: binary cross-entropy per image (nats), squared error per pixel, classifier accuracy
    inpaint      the test set with 20%, 50% and 80% of pixels missing (uniformly random, seeded): squared error on
                 the missing pixels and classifier accuracy, next to filling with the mean training image or zeros
    likelihood   where the model kind has an estimator in zoo.likelihood (the VAE: importance-weighted bound;
                 the RBM: AIS estimate of log Z)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from zoo import classifier as classifier_module
from zoo import data
from zoo.export import CARD, list_exports
from zoo.likelihood import LIKELIHOODS

FRACTIONS = (0.2, 0.5, 0.8)


@dataclass
class EvalConfig:
    num_samples: int = 10_000
    test_images: int = 10_000  # test images for reconstruction, inpainting and likelihood
    iw_samples: int = 5_000  # importance samples per image of the VAE's likelihood bound
    ais_chains: int = 100  # AIS runs of the RBM's log Z
    ais_temperatures: int = 14_500  # intermediate distributions per AIS run (Salakhutdinov and Murray's count)
    seed: int = 0
    fractions: tuple[float, ...] = FRACTIONS


# ---------------------------------------------------------------------------------------------------------------
# Figures computed from arrays.


def classifier_score(probabilities):
    """exp(E_x KL(p(y|x) || p(y))): 10 for confident, evenly spread classes; 1 for uninformative images."""
    p = np.clip(probabilities.astype(np.float64), 1e-12, 1.0)
    marginal = p.mean(axis=0)
    return float(np.exp(np.mean(np.sum(p * (np.log(p) - np.log(marginal)), axis=1))))


def _sqrtm_psd(matrix):
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(features_a, features_b):
    """||mu_a - mu_b||^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2)) between Gaussians fitted to two feature sets.

    Tr((C_a C_b)^(1/2)) = Tr((S C_b S)^(1/2)) with S = C_a^(1/2), a symmetric form that eigh computes stably.
    """
    a, b = features_a.astype(np.float64), features_b.astype(np.float64)
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = _sqrtm_psd(cov_a)
    cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(root @ cov_b @ root), 0, None)))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)


def nearest_distances(queries, references, batch_size=500):
    """Euclidean distance from each query image to its nearest reference image (pixels in [0, 1])."""
    refs = tf.constant(references.reshape(len(references), -1), tf.float32)
    ref_norms = tf.reduce_sum(tf.square(refs), axis=1)
    out = []
    for start in range(0, len(queries), batch_size):
        q = tf.constant(queries[start:start + batch_size].reshape(-1, refs.shape[1]), tf.float32)
        squared = tf.reduce_sum(tf.square(q), axis=1, keepdims=True) + ref_norms - 2.0 * tf.matmul(q, refs,
                                                                                                   transpose_b=True)
        out.append(tf.sqrt(tf.maximum(tf.reduce_min(squared, axis=1), 0.0)).numpy())
    return np.concatenate(out)


def binary_cross_entropy(targets, predictions):
    """Per image, summed over pixels, in nats: -sum x log p + (1 - x) log(1 - p), p clipped to [1e-7, 1 - 1e-7]."""
    p = np.clip(predictions.astype(np.float64), 1e-7, 1 - 1e-7)
    x = targets.astype(np.float64)
    return -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))


def random_masks(shape, fraction, seed):
    """Masks (1 = observed) with exactly round(fraction * 784) missing pixels per image, uniformly at random."""
    rng = np.random.default_rng(seed)
    n, pixels = shape[0], int(np.prod(shape[1:]))
    missing = int(round(fraction * pixels))
    order = np.argsort(rng.random((n, pixels)), axis=1)
    masks = np.ones((n, pixels), np.float32)
    np.put_along_axis(masks, order[:, :missing], 0.0, axis=1)
    return masks.reshape(shape)


def inpainting_scores(completions, originals, masks, labels, judge):
    """Squared error on the missing pixels (mean per missing pixel) and classifier accuracy on the completions."""
    missing = masks < 0.5
    return {"mse": float(np.mean(np.square(completions - originals)[missing])),
            "accuracy": judge.accuracy(completions, labels)}


# ---------------------------------------------------------------------------------------------------------------
# The real data every export is compared with.


@dataclass
class Reference:
    test_images: np.ndarray  # [n, 28, 28, 1] in [0, 1]
    test_labels: np.ndarray
    train_images: np.ndarray  # all 60,000, [0, 1]
    judge: classifier_module.Classifier
    config: EvalConfig
    test_features: np.ndarray = None
    masks: dict = field(default_factory=dict)
    binarized: np.ndarray = None  # the test images, binarized once with the seed: for likelihoods

    @classmethod
    def build(cls, config: EvalConfig, dataset="mnist", judge=None, source="auto", data_dir=None):
        """The dataset's first config.test_images test images and all its training images."""
        train_images, _, test_images, test_labels, _ = data.load_arrays(dataset, source, data_dir)
        n = min(config.test_images, len(test_images))
        return cls.from_arrays(test_images[:n, ..., None] / 255.0, test_labels[:n], train_images[..., None] / 255.0,
                               judge or classifier_module.load_classifier(dataset), config)

    @classmethod
    def from_arrays(cls, test_images, test_labels, train_images, judge, config: EvalConfig):
        reference = cls(np.asarray(test_images, np.float32), np.asarray(test_labels),
                        np.asarray(train_images, np.float32), judge, config)
        reference.test_features = judge(reference.test_images)[1]
        reference.masks = {f: random_masks(reference.test_images.shape, f, config.seed + i)
                           for i, f in enumerate(config.fractions)}
        rng = np.random.default_rng(config.seed)
        reference.binarized = (rng.random(reference.test_images.shape) < reference.test_images).astype(np.float32)
        return reference

    @property
    def mean_image(self):
        return self.train_images.mean(axis=0, keepdims=True)

    def real_sample_figures(self):
        """The test images treated as samples: the ceiling of every model's sample figures."""
        n = len(self.test_images)
        samples = image_set_figures(self.test_images, self)
        # The test set's distance to itself is 0: the real-data Fréchet distance is that of other real images.
        samples["frechet_distance"] = frechet_distance(self.judge(self.train_images[-n:])[1], self.test_features)
        samples["note"] = f"the {n} test images; Fréchet distance from {n} training images to them"
        return samples

    def real_data_figures(self):
        """The ceiling row: the test images treated as samples, reconstructions and completions."""
        inpainting = {}
        for fraction, masks in self.masks.items():
            originals = inpainting_scores(self.test_images, self.test_images, masks, self.test_labels, self.judge)
            mean_fill = np.where(masks > 0.5, self.test_images, self.mean_image)
            zeros_fill = self.test_images * masks
            inpainting[f"{fraction:.0%}"] = {
                "original": originals,
                "mean_image": inpainting_scores(mean_fill, self.test_images, masks, self.test_labels, self.judge),
                "zeros": inpainting_scores(zeros_fill, self.test_images, masks, self.test_labels, self.judge),
            }
        return {
            "samples": self.real_sample_figures(),
            "reconstruction": {  # the identity: BCE is then the pixels' own entropy, the floor for grey pixels
                "bce_nats": float(binary_cross_entropy(self.test_images, self.test_images).mean()),
                "mse": 0.0, "accuracy": self.judge.accuracy(self.test_images, self.test_labels)},
            "inpainting": inpainting,
            "classifier_test_accuracy": self.judge.test_accuracy,
        }


# ---------------------------------------------------------------------------------------------------------------
# Exports.


class Export:
    """A SavedModel used through its signatures only."""

    def __init__(self, path):
        self.path = path
        self.loaded = tf.saved_model.load(path)  # held: the signatures use its variables
        self.signatures = self.loaded.signatures
        card_path = os.path.join(path, CARD)
        self.card = json.load(open(card_path)) if os.path.exists(card_path) else {}

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


def image_set_figures(images, reference):
    """Classifier score, Fréchet distance to the test set, class histogram, mean distance to the nearest training
    image: the figures of a set of samples."""
    probabilities, features = reference.judge(images)
    return {
        "classifier_score": classifier_score(probabilities),
        "frechet_distance": frechet_distance(features, reference.test_features),
        "class_histogram": np.bincount(probabilities.argmax(1), minlength=10).tolist(),
        "nearest_train_distance": float(nearest_distances(images, reference.train_images).mean()),
        "num_samples": len(images),
    }


def sample_figures(export, reference):
    return image_set_figures(export.samples(reference.config.num_samples, reference.config.seed), reference)


def reconstruction_figures(export, reference):
    reconstructions = export.images("reconstruct", reference.test_images)
    return {
        "bce_nats": float(binary_cross_entropy(reference.test_images, reconstructions).mean()),
        "mse": float(np.mean(np.square(reconstructions - reference.test_images))),
        "accuracy": reference.judge.accuracy(reconstructions, reference.test_labels),
    }


def inpainting_figures(export, reference):
    figures = {}
    for i, (fraction, masks) in enumerate(reference.masks.items()):
        corrupted = reference.test_images * masks  # missing pixels are not shown to the model
        completions = export.images("inpaint", corrupted, mask=masks, seed=reference.config.seed + i)
        figures[f"{fraction:.0%}"] = inpainting_scores(completions, reference.test_images, masks,
                                                      reference.test_labels, reference.judge)
    return figures




# ---------------------------------------------------------------------------------------------------------------


def evaluate_export(path, reference, log=print):
    """Every figure the export's signatures allow, as a dict; a missing signature is reported, not an error."""
    started = time.time()
    export = Export(path)
    kind = export.card.get("kind", "?")
    row = {"export": path, "kind": kind, "config": export.card.get("config", {}),
           "train_seconds": export.card.get("train_seconds"), "steps": export.card.get("steps")}
    for part, signature, compute in (("samples", "sample", sample_figures),
                                     ("reconstruction", "reconstruct", reconstruction_figures),
                                     ("inpainting", "inpaint", inpainting_figures)):
        if export.has(signature):
            log(f"  {part}...")
            row[part] = compute(export, reference)
        else:
            row[part] = {"missing": f"the export has no `{signature}` signature"}
    if kind in LIKELIHOODS:
        log("  likelihood...")
        row["likelihood"] = LIKELIHOODS[kind](export, reference)
    else:
        row["likelihood"] = {"missing": f"no likelihood estimator for model kind {kind!r}"}
    row["evaluation_seconds"] = round(time.time() - started, 1)
    return row


# ---------------------------------------------------------------------------------------------------------------
# Reports.


def _config_text(config):
    return " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in config.items()
                    if not k.startswith("inpaint_"))


def _fmt(value, digits=2):
    return "" if value is None else f"{value:.{digits}f}"


def _method(likelihood):
    text = likelihood["method"]
    if "log_z" in likelihood:
        low, high = likelihood["log_z_3_sigma"]
        text += f"; log Z = {likelihood['log_z']:.2f} (±3σ: {low:.2f} to {high:.2f})"
    if "exact_log_z" in likelihood:
        text += f"; exact log Z = {likelihood['exact_log_z']:.2f}"
    return text


def format_tables(rows, ceiling):
    """Markdown tables: samples, reconstructions, inpainting, likelihood; the real-data row first."""
    lines = []
    name = lambda row: os.path.join(*row["export"].rstrip("/").split(os.sep)[-2:])  # noqa: E731
    hist = lambda h: " ".join(f"{100 * c / max(sum(h), 1):.0f}" for c in h)  # noqa: E731

    lines += ["### Samples", "",
              "| export | kind | config | train s | classifier score ↑ | Fréchet distance ↓ | "
              "nearest training image | class histogram (% of 0..9) |",
              "|---|---|---|---|---|---|---|---|"]
    s = ceiling["samples"]
    lines.append(f"| real test images | | | | {_fmt(s['classifier_score'])} | {_fmt(s['frechet_distance'])} | "
                 f"{_fmt(s['nearest_train_distance'])} | {hist(s['class_histogram'])} |")
    for row in rows:
        s = row["samples"]
        head = f"| {name(row)} | {row['kind']} | {_config_text(row['config'])} | {_fmt(row['train_seconds'], 0)} |"
        if "missing" in s:
            lines.append(head + " not exported | | | |")
        else:
            lines.append(head + f" {_fmt(s['classifier_score'])} | {_fmt(s['frechet_distance'])} | "
                                f"{_fmt(s['nearest_train_distance'])} | {hist(s['class_histogram'])} |")

    lines += ["", "### Reconstructions of the test set", "",
              "| export | cross-entropy (nats/image) ↓ | squared error per pixel ↓ | classifier accuracy ↑ |",
              "|---|---|---|---|"]
    r = ceiling["reconstruction"]
    lines.append(f"| identity (the images themselves) | {_fmt(r['bce_nats'], 1)} | 0 | {r['accuracy']:.2%} |")
    for row in rows:
        r = row["reconstruction"]
        lines.append(f"| {name(row)} | not exported | | |" if "missing" in r else
                     f"| {name(row)} | {_fmt(r['bce_nats'], 1)} | {_fmt(r['mse'], 4)} | {r['accuracy']:.2%} |")

    fractions = list(ceiling["inpainting"])
    lines += ["", "### Inpainting of the test set (squared error on the missing pixels ↓, classifier accuracy ↑)", "",
              "| export | " + " | ".join(f"{f} missing: error | accuracy" for f in fractions) + " |",
              "|---|" + "---|---|" * len(fractions)]
    for label, key in (("original images (ceiling)", "original"), ("fill with mean training image", "mean_image"),
                       ("fill with zeros", "zeros")):
        cells = [f"{_fmt(ceiling['inpainting'][f][key]['mse'], 4)} | {ceiling['inpainting'][f][key]['accuracy']:.2%}"
                 for f in fractions]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for row in rows:
        i = row["inpainting"]
        lines.append(f"| {name(row)} | not exported |" + " |" * (2 * len(fractions) - 1) if "missing" in i else
                     f"| {name(row)} | " + " | ".join(f"{_fmt(i[f]['mse'], 4)} | {i[f]['accuracy']:.2%}"
                                                      for f in fractions) + " |")

    lines += ["", "### Test log-likelihood", "", "| export | negative log-likelihood (nats) ↓ | method | binarization |",
              "|---|---|---|---|"]
    for row in rows:
        li = row["likelihood"]
        lines.append(f"| {name(row)} | {li['missing']} | | |" if "missing" in li else
                     f"| {name(row)} | {li['nll_nats']:.2f} ± {li['standard_error']:.2f} | {_method(li)} | "
                     f"{li['binarization']} |")
    lines += ["", f"Classifier (zoo/classifier.py) test accuracy: {ceiling['classifier_test_accuracy']:.2%}. "
                  "Nearest training image: mean Euclidean distance in pixel space ([0, 1] pixels)."]
    return "\n".join(lines)


def write_results(rows, ceiling, out_dir, config):
    os.makedirs(out_dir, exist_ok=True)
    header = ["# Results", "",
              f"Made by `python -m zoo.evaluate --all` on {time.strftime('%Y-%m-%d')} "
              f"({config.num_samples} samples per export, {len(rows) and config.test_images} test images, "
              f"seed {config.seed}). Every figure comes from the exported SavedModels' signatures.", "", ""]
    text = "\n".join(header) + format_tables(rows, ceiling) + "\n"
    with open(os.path.join(out_dir, "RESULTS.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out_dir, "RESULTS.json"), "w") as f:
        json.dump({"config": config.__dict__, "real_data": ceiling, "exports": rows}, f, indent=2, default=str)
    return text


def earlier_results(path, config):
    """({export path: row}, real-data figures) of a RESULTS.json written with the same settings; ({}, None) if there
    is none or its settings differ (its figures would not compare)."""
    try:
        with open(path) as f:
            recorded = json.load(f)
    except (OSError, ValueError):
        return {}, None
    if recorded.get("config") != json.loads(json.dumps(config.__dict__)):
        print(f"{path} was made with other settings ({recorded.get('config')}): evaluating everything", flush=True)
        return {}, None
    return {row["export"]: row for row in recorded["exports"]}, recorded["real_data"]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m zoo.evaluate", description=__doc__.strip().splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("exports", nargs="*", help="export folders, exports/<name>/<version>")
    parser.add_argument("--all", metavar="EXPORT_DIR", help="evaluate every export under EXPORT_DIR and write "
                                                            "RESULTS.md and RESULTS.json")
    parser.add_argument("--out", default=".", help="where --all writes RESULTS.md / .json (default: %(default)s)")
    parser.add_argument("--update", action="store_true",
                        help="with --all: keep the rows of OUT/RESULTS.json made with the same settings and evaluate "
                             "only the exports it lacks")
    parser.add_argument("--num-samples", type=int, default=EvalConfig.num_samples)
    parser.add_argument("--test-images", type=int, default=EvalConfig.test_images)
    parser.add_argument("--iw-samples", type=int, default=EvalConfig.iw_samples,
                        help="importance samples per image for the VAE's likelihood (default: %(default)s)")
    parser.add_argument("--ais-chains", type=int, default=EvalConfig.ais_chains,
                        help="AIS runs for an RBM's log Z (default: %(default)s)")
    parser.add_argument("--ais-temperatures", type=int, default=EvalConfig.ais_temperatures,
                        help="intermediate distributions per AIS run (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=EvalConfig.seed)
    args = parser.parse_args(argv)
    paths = [path for _, _, path in list_exports(args.all)] if args.all else args.exports
    if args.all and not os.path.isdir(args.all):
        parser.error(f"{args.all} is not a folder of exports (exports/<name>/<version>/)")
    if not paths:
        parser.error("no exports given: name export folders, or --all EXPORT_DIR")
    for path in paths:
        if not os.path.exists(os.path.join(path, "saved_model.pb")):
            parser.error(f"{path} is not a SavedModel folder (no saved_model.pb); give exports/<name>/<version>")
    for name, value in (("--num-samples", args.num_samples), ("--test-images", args.test_images),
                        ("--iw-samples", args.iw_samples), ("--ais-chains", args.ais_chains),
                        ("--ais-temperatures", args.ais_temperatures)):
        if value <= 0:
            parser.error(f"{name} must be positive")

    config = EvalConfig(num_samples=args.num_samples, test_images=args.test_images, iw_samples=args.iw_samples,
                        ais_chains=args.ais_chains, ais_temperatures=args.ais_temperatures, seed=args.seed)
    reference = Reference.build(config)
    ceiling, earlier = None, {}
    if args.update:
        recorded = os.path.join(args.out, "RESULTS.json")
        earlier, ceiling = earlier_results(recorded, config)
        print(f"Keeping {len(earlier)} rows of {recorded}", flush=True)
    if ceiling is None:
        print("Real-data figures...", flush=True)
        ceiling = reference.real_data_figures()
    rows = []
    for path in paths:
        if path in earlier:
            rows.append(earlier[path])
            continue
        print(f"Evaluating {path}", flush=True)
        rows.append(evaluate_export(path, reference, log=lambda text: print(text, flush=True)))
    if args.all:
        text = write_results(rows, ceiling, args.out, config)
        print(f"\nWrote {os.path.join(args.out, 'RESULTS.md')} and RESULTS.json\n")
    else:
        text = format_tables(rows, ceiling)
    print(text)


if __name__ == "__main__":
    main()
