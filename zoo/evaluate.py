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
import os
import time
from dataclasses import dataclass, field

import numpy as np

from zoo import classifier as classifier_module
from zoo import data
from zoo.export import Export, list_exports
from zoo.leaderboard import earlier_results, format_tables, write_results
from zoo.metrics import (FRACTIONS, binary_cross_entropy, classifier_score, frechet_distance, inpainting_scores,
                         nearest_distances, random_masks)
from zoo.likelihood import LIKELIHOODS



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
