"""Evaluate exports through the serving contract alone, so the numbers hold in serving too.

    python -m zoo.evaluate exports/vae/1 [exports/... ...]    one report per export
    python -m zoo.evaluate --all exports/                     every export, then RESULTS.md and RESULTS.json
    python -m zoo.evaluate --images samples.npz               any set of 28x28 images (.npz, or a folder of PNGs)

Each export is loaded with tf.saved_model.load (no zoo model classes) and judged on what its signatures offer:

    sample       10,000 samples (seeds 0..9): classifier score (the Inception score with the zoo's MNIST
                 classifier, exp E_x KL(p(y|x) || p(y))); Fréchet distance, KID and precision/recall of the
                 classifier's penultimate features against the 10,000 test images'; class histogram; and the mean
                 distance from each sample to its nearest training image (memorisation), with real images' own
                 figures as the ceiling
    reconstruct  the test set: binary cross-entropy per image (nats), squared error per pixel, classifier accuracy
    inpaint      the test set with 20%, 50% and 80% of pixels missing (uniformly random, seeded): squared error on
                 the missing pixels and classifier accuracy, next to filling with the mean training image or zeros
    likelihood   where the model kind has an estimator in zoo.likelihood (the VAE: importance-weighted bound;
                 the RBM: AIS estimate of log Z)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zipfile
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from zoo import classifier as classifier_module
from zoo import cli, data
from zoo.export import Export, ExportDamaged, first_line, list_exports
from zoo.leaderboard import (FEATURES_NOTE, earlier_results, format_tables, sample_cells, with_absent_exports,
                             write_results)
from zoo.metrics import (FRACTIONS, binary_cross_entropy, classifier_score, frechet_distance, inpainting_scores,
                         kernel_distance, nearest_distances, precision_recall, random_masks)
from zoo.likelihood import LIKELIHOODS, dbn_without_bound



@dataclass
class EvalConfig:
    """What the evaluator computes, and how much of it. The fields with a `help` are flags of zoo.evaluate."""

    num_samples: int = field(default=10_000, metadata={"help": "samples per export"})
    test_images: int = field(default=10_000, metadata={
        "help": "test images for reconstruction, inpainting and likelihood"})
    iw_samples: int = field(default=5_000, metadata={
        "help": "importance samples per image of the VAE's likelihood bound"})
    refine_steps: int = field(default=0, metadata={
        "help": "Adam steps that fit q(z|x) to each test image before a VAE's likelihood bound: a tighter bound of the "
                "same model (Cremer et al. 2018's q*); 0: the encoder's q, the literature's convention"})
    conv_vae_images: int = field(default=1_000, metadata={
        "help": "first test images of a convolutional VAE's likelihood bound, whose decoder costs ~30x the MLP's; "
                "0: all"})
    ais_chains: int = field(default=100, metadata={"help": "AIS runs of an RBM's log Z"})
    ais_temperatures: int = field(default=14_500, metadata={
        "help": "intermediate distributions per AIS run (Salakhutdinov and Murray's count)"})
    raise_images: int = field(default=1_000, metadata={
        "help": "first test images of an RBM's conservative likelihood estimate by reverse annealing (RAISE, one "
                "chain of --ais-temperatures per image); 0: none"})
    dbn_samples: int = field(default=1_000, metadata={"help": "recognition samples per image of a DBN's bounds"})
    seed: int = field(default=0, metadata={"help": "seeds the samples, the masks and the binarization"})
    fractions: tuple[float, ...] = FRACTIONS

    def __post_init__(self):
        for name in ("num_samples", "test_images", "iw_samples", "ais_chains", "ais_temperatures", "dbn_samples"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("conv_vae_images", "raise_images", "refine_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or positive, got {getattr(self, name)}")
        if self.num_samples < MIN_IMAGES:
            raise ValueError(f"num_samples must be at least {MIN_IMAGES}: the distribution figures need them")


MIN_IMAGES = 4  # precision/recall compare each image with its 3rd nearest neighbour; KID splits the set in two


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
        return cls.from_arrays(data.as_images(test_images[:n]), test_labels[:n], data.as_images(train_images),
                               judge or classifier_module.load_classifier(dataset), config)

    @classmethod
    def from_arrays(cls, test_images, test_labels, train_images, judge, config: EvalConfig):
        reference = cls(np.asarray(test_images, np.float32), np.asarray(test_labels),
                        np.asarray(train_images, np.float32), judge, config)
        reference.test_features = judge(reference.test_images)[1]
        reference.masks = {f: random_masks(reference.test_images.shape, f, config.seed + i)
                           for i, f in enumerate(config.fractions)}
        reference.binarized = data.binarize_once(reference.test_images, config.seed)
        return reference

    @property
    def mean_image(self):
        return self.train_images.mean(axis=0, keepdims=True)

    def real_sample_figures(self):
        """The test images treated as samples: the ceiling of every model's sample figures."""
        n = len(self.test_images)
        # The test set compared with itself says nothing: the distribution figures are those of other real images.
        samples = image_set_figures(self.test_images, self, compared=self.judge(self.train_images[-n:])[1])
        samples["note"] = (f"the {n} test images; Fréchet distance, KID and precision/recall of {n} training images "
                           "against them")
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
            "classifier_sha256": self.judge.sha256,
        }


# ---------------------------------------------------------------------------------------------------------------
# Exports.


def distribution_figures(features, reference):
    """How a set of images' classifier features compare with the test images': Fréchet distance, KID and
    precision/recall. These use the zoo's MNIST CNN features, not Inception's: they compare only with each other."""
    kid = kernel_distance(features, reference.test_features, seed=reference.config.seed)
    return {"frechet_distance": frechet_distance(features, reference.test_features),
            "kid": kid["kid"], "kid_standard_error": kid["standard_error"],
            **precision_recall(reference.test_features, features)}


def image_set_figures(images, reference, compared=None):
    """The figures of a set of samples: classifier score, class histogram, mean distance to the nearest training
    image, and the distribution figures against the test images of their features (or of `compared`)."""
    probabilities, features = reference.judge(images)
    return {
        "classifier_score": classifier_score(probabilities),
        **distribution_figures(features if compared is None else compared, reference),
        "class_histogram": np.bincount(probabilities.argmax(1), minlength=10).tolist(),
        "nearest_train_distance": float(nearest_distances(images, reference.train_images).mean()),
        "num_samples": len(images),
    }


def read_images(path):
    """Images [n, 28, 28, 1] in [0, 1] from an .npz (its `images` array, or its only one) or a folder of image
    files (PNG, JPEG, BMP, GIF; sorted by name). uint8 arrays are 0..255, float arrays 0..1; [n, 28, 28] and flat
    [n, 784] are reshaped. Raises ValueError naming the problem (and the file)."""
    if os.path.isdir(path):
        names = sorted(name for name in os.listdir(path)
                       if name.lower().endswith((".png", ".jpg", ".jpeg", ".bmp", ".gif")))
        if not names:
            raise ValueError(f"{path} holds no PNG, JPEG, BMP or GIF files")
        images = np.stack([read_image_file(os.path.join(path, name)) for name in names])
    elif path.endswith(".npz"):
        try:
            arrays = np.load(path)
            names = arrays.files
            images = arrays["images" if "images" in names else names[0]] if len(names) == 1 or "images" in names \
                else None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise ValueError(f"{path} is not a readable .npz file ({error})") from None
        if images is None:
            raise ValueError(f"{path} holds arrays {names or 'none'}; name the images `images` (np.savez(path, "
                             "images=x)) or save only one array")
    else:
        raise ValueError(f"{path} is neither an .npz file nor a folder of images")
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    elif not (np.issubdtype(images.dtype, np.floating) or images.dtype == bool):
        raise ValueError(f"{path}: images of dtype {images.dtype}; give uint8 pixels 0..255 or floats in [0, 1]")
    images = np.asarray(images, np.float32)
    if images.ndim == 2 and images.shape[1] == 784 or images.ndim == 3 and images.shape[1:] == (28, 28):
        images = images.reshape(-1, 28, 28, 1)
    if images.ndim != 4 or images.shape[1:] != (28, 28, 1):
        raise ValueError(f"{path}: images of shape {list(images.shape)}; expected [n, 28, 28, 1], [n, 28, 28] or "
                         "[n, 784]")
    if len(images) < MIN_IMAGES:
        raise ValueError(f"{path} holds {len(images)} images; the figures compare distributions and need at least "
                         f"{MIN_IMAGES} (the leaderboard's use 10,000)")
    if not np.all(np.isfinite(images)) or images.min() < 0 or images.max() > 1:
        raise ValueError(f"{path}: pixel values must be finite and in [0, 1] (floats) or 0..255 (uint8), got "
                         f"{np.nanmin(images):g} to {np.nanmax(images):g}")
    return images


def read_image_file(path):
    """One image file as uint8 [28, 28, 1] grey pixels."""
    try:
        image = tf.io.decode_image(tf.io.read_file(path), channels=1, expand_animations=False).numpy()
    except (tf.errors.OpError, ValueError) as error:
        raise ValueError(f"{path} is not a readable image ({first_line(error)})") from None
    if image.shape[:2] != (28, 28):
        raise ValueError(f"{path} is {image.shape[1]}x{image.shape[0]} pixels; the images must be 28x28")
    return image


def sample_figures(export, reference):
    """The samples' figures; a conditional export's samples are num_samples / 10 of each class, and add
    conditional_figures."""
    if not export.conditional:
        return image_set_figures(export.samples(reference.config.num_samples, reference.config.seed), reference)
    images, labels = export.class_samples(max(1, reference.config.num_samples // 10), reference.config.seed)
    return {**image_set_figures(images, reference), **conditional_figures(images, labels, reference)}


def conditional_figures(images, labels, reference):
    """How well samples of chosen classes are those classes: label accuracy (the frozen classifier's agreement with
    the requested class), per class, and each class's Fréchet distance to the test images of that class."""
    probabilities, features = reference.judge(images)
    hits = probabilities.argmax(1) == labels
    per_class = {}
    for c in range(10):
        test = reference.test_features[reference.test_labels == c]
        own = features[labels == c]
        per_class[str(c)] = {"label_accuracy": float(hits[labels == c].mean()),
                             "frechet_distance": frechet_distance(own, test) if len(own) > 1 and len(test) > 1
                             else None}
    return {"label_accuracy": float(hits.mean()), "per_class": per_class}


def classification_figures(export, reference):
    """A classifying export's test error on the test images (argmax of its `classify` signature)."""
    probabilities = export.probabilities(reference.test_images)
    return {"test_error": float(np.mean(probabilities.argmax(1) != reference.test_labels)),
            "images": len(reference.test_images)}


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
                                     ("inpainting", "inpaint", inpainting_figures),
                                     ("classification", "classify", classification_figures)):
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


def main(argv=None):
    parser = cli.parser("python -m zoo.evaluate", __doc__.strip().splitlines()[0],
                        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("exports", nargs="*", help="export folders, exports/<name>/<version>")
    parser.add_argument("--images", metavar="FILE.npz|FOLDER", help="score a set of 28x28 images (samples of any "
                        "model, any framework) as the leaderboard scores samples; with --out, also IMAGES.json")
    parser.add_argument("--all", metavar="EXPORT_DIR", help="evaluate every export under EXPORT_DIR and write "
                                                            "RESULTS.md and RESULTS.json")
    parser.add_argument("--out", default=".", help="where --all writes RESULTS.md / .json (default: %(default)s)")
    parser.add_argument("--update", action="store_true",
                        help="with --all: keep the rows of OUT/RESULTS.json made with the same settings (also those "
                             "of exports not on this machine) and evaluate only the exports it lacks")
    cli.add_dataclass_flags(parser.add_argument_group("evaluation"), EvalConfig)
    args = parser.parse_args(argv)
    try:
        config = EvalConfig(**cli.flag_values(args, EvalConfig))
    except ValueError as error:
        cli.fail(parser, error)
    try:
        if args.images:
            return score_images(parser, args, config)
        return evaluate_all(parser, args, config)
    except (data.DataError, classifier_module.ClassifierError) as error:
        cli.fail(parser, error)


def evaluate_all(parser, args, config):
    """The exports given (or every one under --all): their figures, and with --all RESULTS.md and RESULTS.json. A
    damaged export is reported, and marked in the leaderboard, and the others are evaluated; the exit status is then
    1."""
    if args.all and not os.path.isdir(args.all):
        cli.fail(parser, f"{args.all} is not a folder of exports (exports/<name>/<version>/)")
    paths = [path for _, _, path in list_exports(args.all)] if args.all else args.exports
    if not paths:
        cli.fail(parser, "no exports given: name export folders, or --all EXPORT_DIR")
    for path in paths:
        if not os.path.isdir(path):
            cli.fail(parser, f"{path} is not an export folder; give exports/<name>/<version>")
    reference = Reference.build(config)
    ceiling, earlier = None, {}
    if args.update:
        recorded = os.path.join(args.out, "RESULTS.json")
        earlier, ceiling = earlier_results(recorded, config)
        print(f"Keeping {len(earlier)} rows of {recorded}", flush=True)
    if ceiling is None:
        print("Real-data figures...", flush=True)
        ceiling = reference.real_data_figures()
    rows, damaged = [], []
    for path in paths:
        try:
            rows.append(evaluated_row(path, reference, earlier))
        except ExportDamaged as error:
            print(f"{error}", file=sys.stderr, flush=True)
            damaged.append(path)
            rows.append(damaged_row(path, error))
    rows = with_absent_exports(rows, earlier)
    if args.all:
        text = write_results(rows, ceiling, args.out, config)
        print(f"\nWrote {os.path.join(args.out, 'RESULTS.md')} and RESULTS.json\n")
    else:
        text = format_tables(rows, ceiling)
    print(text)
    if damaged:
        parser.exit(1, f"{parser.prog}: {len(damaged)} damaged export(s), marked in the tables: "
                       f"{', '.join(damaged)}\n")


def evaluated_row(path, reference, earlier):
    """The row of one export: its recorded row (brought up to date), or a new evaluation."""
    if path not in earlier:
        print(f"Evaluating {path}", flush=True)
        return evaluate_export(path, reference, log=lambda text: print(text, flush=True))
    row = earlier[path]
    if row["kind"] == "rbm" and reference.config.raise_images and "raise" not in row["likelihood"]:
        print(f"Adding RAISE to {path}", flush=True)  # a row made before the estimate existed
        row["likelihood"] = LIKELIHOODS["rbm"](Export(path), reference)
    if row["kind"] == "dbn" and not dbn_without_bound(row["config"]) and "variational_bound" not in row["likelihood"]:
        print(f"Adding the importance-weighted bound to {path}", flush=True)  # made before it existed
        row["likelihood"] = LIKELIHOODS["dbn"](Export(path), reference)
    return row


def damaged_row(path, error):
    """A leaderboard row saying the export could not be read, and why."""
    try:
        from zoo.export import read_card

        card = read_card(path)
    except (OSError, ValueError):
        card = {}
    missing = {"missing": f"damaged: {str(error).split(' is damaged: ', 1)[-1].split(';')[0]}"}
    return {"export": path, "kind": card.get("kind", "?"), "config": card.get("config", {}),
            "train_seconds": card.get("train_seconds"), "steps": card.get("steps"), "damaged": str(error),
            "samples": missing, "reconstruction": missing, "inpainting": missing, "likelihood": missing,
            "classification": missing}


def score_images(parser, args, config):
    """--images: the Samples table's figures of one set of images, beside the real images' own."""
    if args.exports or args.all:
        cli.fail(parser, "--images scores one set of images; give exports or --all in a separate call")
    try:
        images = read_images(args.images)
    except ValueError as error:
        cli.fail(parser, error)
    reference = Reference.build(EvalConfig(test_images=config.test_images, seed=config.seed))
    figures = image_set_figures(images, reference)
    real = reference.real_sample_figures()
    print("| images | count | classifier score ↑ | Fréchet distance ↓ | KID ↓ | precision ↑ | recall ↑ | "
          "nearest training image | class histogram (% of 0..9) |\n|---|---|---|---|---|---|---|---|---|")
    for name, row in (("real test images", real), (args.images, figures)):
        print(f"| {name} | {row['num_samples']} | {sample_cells(row)} |")
    print("\n" + FEATURES_NOTE + f" Classifier SHA-256: {reference.judge.sha256}.")
    if args.out != ".":
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "IMAGES.json"), "w") as f:
            json.dump({"images": args.images, "figures": figures, "real_test_images": real,
                       "classifier_sha256": reference.judge.sha256}, f, indent=2)


if __name__ == "__main__":
    main()
