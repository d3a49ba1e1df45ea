"""Figures of the seed experiments, from the exports, into one folder with an index page.

    python -m zoo.report [--exports exports/] [--out reports/]

For the newest version of every export, from its signatures alone: 100 samples (a conditional export: 10 of each
digit, a row each); the first 20 test images above
their reconstructions; inpainting of test images with 20%, 50% and 80% of the pixels missing (rows: input with
the missing pixels grey, completion, original); and where the code is 2-D, the decoder's manifold over [-3, 3]^2
and the layout of 5,000 test images' codes coloured by digit. FIGURES adds a model kind's own figures.
reports/index.md shows every figure with its caption and numbers (and the leaderboard's, if RESULTS.json exists).
"""

from __future__ import annotations

import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from zoo import data, metrics  # noqa: E402
from zoo.figures import filter_images, grid_figure, interpolate, latent_layout_figure, manifold_codes  # noqa: E402
from zoo.export import Export, list_exports  # noqa: E402


def save_grid(images, columns, path):
    fig = grid_figure(images, columns)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def sample_images(export):
    """The report's 100 samples, and their caption: a conditional export's are 10 of each class, a row each."""
    if export.conditional:
        images, _ = export.class_samples(10, seed=0)
        return images, "10 samples of each digit, 0 to 9 top to bottom (`sample` with its `label`)."
    return export.samples(100, seed=0), "100 samples (`sample`, seed 0)."


def samples_figure(export, test, out):
    samples, caption = sample_images(export)
    save_grid(samples, 10, os.path.join(out, "samples.png"))
    return "samples.png", caption


def reconstructions_figure(export, test, out):
    originals = test.images[:20]
    reconstructions = export.images("reconstruct", originals)
    save_grid(np.concatenate([originals, reconstructions]), 20, os.path.join(out, "reconstructions.png"))
    mse = float(np.mean(np.square(reconstructions - originals)))
    return "reconstructions.png", f"The first 20 test images (top) and their reconstructions (bottom); " \
                                  f"squared error per pixel {mse:.4f}."


def inpainting_figure(export, test, out):
    rows, errors = [], []
    originals = test.images[:10]
    for i, fraction in enumerate(metrics.FRACTIONS):
        masks = metrics.random_masks(originals.shape, fraction, seed=i)
        completions = export.images("inpaint", originals * masks, mask=masks, seed=i)
        rows += [np.where(masks > 0.5, originals, 0.5), completions, originals]
        errors.append(f"{fraction:.0%}: {np.mean(np.square(completions - originals)[masks < 0.5]):.4f}")
    save_grid(np.concatenate(rows), 10, os.path.join(out, "inpainting.png"))
    return "inpainting.png", ("Inpainting with 20%, 50% and 80% of the pixels missing (three rows each: the input "
                              "with missing pixels grey, the completion, the original); squared error on the "
                              "missing pixels " + ", ".join(errors) + ".")


def latent_figures(export, test, out):
    """The 2-D code: the decoder over a grid of [-3, 3]^2, and where 5,000 test images land."""
    decoded = export.signatures["decode"](latent=tf.constant(manifold_codes()))["images"].numpy()
    save_grid(decoded, 15, os.path.join(out, "manifold.png"))
    codes = np.concatenate([export.signatures["encode"](images=tf.constant(test.images[i:i + 1000]))["latent"].numpy()
                            for i in range(0, 5000, 1000)])
    fig = latent_layout_figure(codes, test.labels[:5000])
    fig.savefig(os.path.join(out, "latent_layout.png"), bbox_inches="tight")
    plt.close(fig)
    return [("manifold.png", "The decoder's output over a 15x15 grid of codes from -3 to 3 in both dimensions."),
            ("latent_layout.png", "Codes (`encode` latent) of the first 5,000 test images, coloured by digit.")]


def rbm_filters_figure(export, test, out):
    """The RBM's weights, one 28x28 filter per hidden unit, from its `parameters` signature."""
    weights = export.signatures["parameters"]()["weights"].numpy()
    shown = weights[:, :100]
    save_grid(filter_images(shown), 10, os.path.join(out, "filters.png"))
    return "filters.png", (f"The first {shown.shape[1]} of the {weights.shape[1]} hidden units' filters (columns of W, "
                           "each scaled to its own range).")


def latent_walk_figure(export, test, out, rows=10, steps=10):
    """A generator's code space: `decode` along great circles between random codes z ~ N(0, I)."""
    ends = np.random.default_rng(0).normal(size=(rows, 2, export.latent_dim))
    # Great circles keep the codes at the typical norm of N(0, I) draws, where the generator was trained.
    paths = [interpolate(a, b, steps, spherical=True) for a, b in ends]
    decoded = export.signatures["decode"](latent=tf.constant(np.concatenate(paths), tf.float32))["images"].numpy()
    save_grid(decoded, steps, os.path.join(out, "latent_walks.png"))
    return "latent_walks.png", (f"`decode` along {rows} spherical interpolations between random codes z ~ N(0, I) "
                                f"(one per row, {steps} steps).")


def categories_figure(export, test, out, columns=12, judged=200):
    """InfoGAN's categorical code (the last k coordinates of z, one-hot): one row per value of c with the Gaussian
    part of z the same down each column, and the evaluator's classifier on `judged` samples per value."""
    k = export.card.get("config", {}).get("categories", 0)
    if not k:
        return []
    from zoo.classifier import load_classifier

    def codes(noise):
        z = np.repeat(noise[None], k, axis=0)
        z[..., -k:] = np.eye(k, dtype=np.float32)[:, None, :]
        return z.reshape(-1, export.latent_dim)

    def decode(z):
        return export.signatures["decode"](latent=tf.constant(z))["images"].numpy()

    rng = np.random.default_rng(0)
    save_grid(decode(codes(rng.normal(size=(columns, export.latent_dim)).astype(np.float32))), columns,
              os.path.join(out, "categories.png"))
    classifier = load_classifier(export.card.get("data", {}).get("dataset", "mnist"))
    digits = classifier(decode(codes(rng.normal(size=(judged, export.latent_dim)).astype(np.float32))))[0].argmax(1)
    shares = []
    for c, row in enumerate(digits.reshape(k, judged)):
        top = np.bincount(row, minlength=10).argmax()
        shares.append(f"c = {c}: {top} ({np.mean(row == top):.0%})")
    return "categories.png", (f"One row per value of the {k}-way categorical code c (the last {k} coordinates of z), "
                              "the rest of z the same down each column. The classifier's most common class in "
                              f"{judged} samples per value: " + ", ".join(shares) + ".")


GENERIC = (("sample", samples_figure), ("reconstruct", reconstructions_figure), ("inpaint", inpainting_figure))
# model kind -> [function(export, test, out) -> (file, caption) or a list of them]
FIGURES = {"rbm": [rbm_filters_figure], "gan": [latent_walk_figure, categories_figure],
           "dcgan": [latent_walk_figure, categories_figure]}


def export_figures(export, test, out):
    made = [compute(export, test, out) for signature, compute in GENERIC if export.has(signature)]
    if export.has("encode") and export.latent_dim == 2:
        made += latent_figures(export, test, out)
    for compute in FIGURES.get(export.card.get("kind"), []):
        result = compute(export, test, out)
        made += result if isinstance(result, list) else [result]  # [] when the figure does not apply
    return made


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m zoo.report", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--exports", default="exports", help="the exports folder (default: %(default)s)")
    parser.add_argument("--out", default="reports", help="where figures and index.md go (default: %(default)s)")
    parser.add_argument("--results", default="RESULTS.json", help="leaderboard figures to quote, if present")
    args = parser.parse_args(argv)
    newest = {}
    for name, version, path in list_exports(args.exports):
        newest[name] = path  # sorted by version: the last one wins
    if not newest:
        parser.error(f"no exports under {args.exports}; train one first: python -m zoo.train vae")
    results = {}
    if os.path.exists(args.results):
        with open(args.results) as f:
            results = {os.path.normpath(row["export"]): row for row in json.load(f)["exports"]}

    splits = data.load(data.DataConfig(validation_size=0))
    test = data.Split(data.as_images(splits.test.images), splits.test.labels)
    lines = ["# Figures", "", "Made by `python -m zoo.report` from the newest version of each export; every figure "
             "comes from the export's signatures.", ""]
    for name, path in newest.items():
        print(f"Figures of {path}", flush=True)
        out = os.path.join(args.out, name)
        os.makedirs(out, exist_ok=True)
        export = Export(path)
        lines += [f"## {name} ({path})", "", f"Model kind `{export.card.get('kind', '?')}`, config "
                  f"`{json.dumps(export.card.get('config', {}))}`, {export.card.get('steps', '?')} training steps.", ""]
        row = results.get(os.path.normpath(path))
        if row and "classifier_score" in row.get("samples", {}):
            s = row["samples"]
            lines += [f"Leaderboard: classifier score {s['classifier_score']:.2f}, Fréchet distance "
                      f"{s['frechet_distance']:.2f}" + (f", test NLL {row['likelihood']['nll_nats']:.2f} nats"
                                                         if "nll_nats" in row.get("likelihood", {}) else "") + ".", ""]
        for file, caption in export_figures(export, test, out):
            lines += [f"![{caption}]({name}/{file})", "", caption, ""]
    with open(os.path.join(args.out, "index.md"), "w") as f:
        f.write("\n".join(lines))
    print(f"Wrote {os.path.join(args.out, 'index.md')}")


if __name__ == "__main__":
    main()
