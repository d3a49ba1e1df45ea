"""The homework's denoising-autoencoder experiment: `python -m zoo.experiments dae`.

A stacked denoising autoencoder (784-500-250-100 by default) is pretrained layer by layer and fine-tuned on the
training set only. On the 10,000 test images: the reconstruction error, the denoising error at several masking
levels, and the residuals (reconstruction minus input, signed): their mean and their first five principal
components with the explained-variance ratios, drawn with zero as mid-grey, once on one symmetric scale shared by
the six images and once each on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

from zoo import data, train
from zoo.experiments import Notebook, in_batches
from zoo.models.dae import DAEConfig, corrupt

NOISE_LEVELS = (0.25, 0.5, 0.75)


@dataclass
class Config:
    layers: tuple[int, ...] = field(default=(784, 500, 250, 100), metadata={"help": "layer sizes, 784 first"})
    epochs: int = field(default=10, metadata={"help": "pretraining epochs of each layer"})
    fine_tune_epochs: int = field(default=10, metadata={"help": "epochs of end-to-end fine-tuning"})
    masking: float = field(default=0.25, metadata={"help": "training corruption: fraction of inputs set to 0"})
    limit: int = field(default=0, metadata={"help": "train on the first N images only (0: all)"})
    seed: int = field(default=0, metadata={"help": "fixes data order, initialisation and corruption"})

    def __post_init__(self):
        DAEConfig(layers=self.layers, masking=self.masking)  # the model's own checks
        if min(self.epochs, self.fine_tune_epochs) <= 0 or self.limit < 0:
            raise ValueError("epochs and fine_tune_epochs must be positive, limit >= 0")


def residual_components(residuals, count=5):
    """(mean residual [784], the first `count` principal components [count, 784], their explained-variance ratios)
    of an [n, 784] residual matrix: the SVD of the centred matrix, components sorted by variance."""
    residuals = np.asarray(residuals, np.float64).reshape(len(residuals), -1)
    mean = residuals.mean(axis=0)
    _, singular, components = np.linalg.svd(residuals - mean, full_matrices=False)
    variance = singular ** 2
    return mean, components[:count], variance[:count] / variance.sum()


def signed_images_figure(images, titles, shared):
    """Signed 28x28 images with zero mid-grey, negative darker, positive lighter: on one symmetric scale (the largest
    absolute value over all of them is full black or white) if `shared`, else each on its own."""
    images = [np.asarray(image).reshape(28, 28) for image in images]
    largest = max(np.abs(image).max() for image in images)
    fig, axes = plt.subplots(1, len(images), figsize=(2.2 * len(images), 2.6), dpi=100)
    for ax, image, title in zip(axes, images, titles):
        limit = largest if shared else np.abs(image).max()
        ax.imshow(image, cmap="gray", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(f"{title}\n±{limit:.3f}", fontsize=8)
        ax.axis("off")
    return fig


def run(config: Config, out="experiments/dae", logdir="tensorboard_logs"):
    model_config = DAEConfig(layers=config.layers, masking=config.masking, fine_tune_epochs=config.fine_tune_epochs)
    result = train.train("dae", model_config, train.data_config_for("dae", limit=config.limit or None,
                                                                    seed=config.seed),
                         train.TrainConfig(epochs=config.epochs, seed=config.seed, logdir=logdir,
                                           export_dir=f"{out}/exports", name="dae_experiments/dae"))
    model = result.model
    test = data.as_images(data.load(data.DataConfig(validation_size=0)).test.images)

    notebook = Notebook(out, "Stacked denoising autoencoder: residual analysis")
    notebook.text(
        f"Made by `python -m zoo.experiments dae`: {'-'.join(map(str, config.layers))}, sigmoid units, "
        f"{config.epochs} pretraining epochs per layer and {config.fine_tune_epochs} of fine-tuning, masking noise "
        f"{config.masking:.0%}, Adam 1e-3, batch 100, trained on the training set only; everything below is on "
        f"the {len(test):,} test images.")

    reconstructions = in_batches(model.reconstruct, test)
    residuals = (reconstructions - test).reshape(len(test), 784)
    rows = [("none (reconstruction)", f"{np.mean(np.square(residuals)):.4f}")]
    examples = [test[:10]]
    for i, level in enumerate(NOISE_LEVELS):
        noisy = corrupt(tf.constant(test), level, 0.0, tf.constant([config.seed, 1000 + i])).numpy()
        denoised = in_batches(model.reconstruct, noisy)
        rows.append((f"{level:.0%} of pixels masked", f"{np.mean(np.square(denoised - test)):.4f}"))
        examples += [noisy[:10], denoised[:10]]
    notebook.text("**Squared error per pixel against the clean test images**, after corrupting the input:")
    notebook.table(("input corruption", "error ↓"), rows)
    notebook.grid("denoising", np.concatenate(examples), 10,
                  "Denoising: clean test images, then for each masking level the corrupted input and the output.",
                  ["clean"] + [f"{level:.0%} {what}" for level in NOISE_LEVELS for what in ("masked", "denoised")])

    mean, components, ratios = residual_components(residuals)
    titles = ["mean residual"] + [f"PC {k + 1} ({r:.1%})" for k, r in enumerate(ratios)]
    notebook.text("**Residuals** (reconstruction minus input): explained-variance ratios of the first five principal "
                  "components: " + ", ".join(f"{r:.2%}" for r in ratios) + f" (together {ratios.sum():.2%}).")
    notebook.figure("residuals_shared_scale", signed_images_figure([mean, *components], titles, shared=True),
                    "The mean residual and the first five principal components on one symmetric scale: zero is "
                    "mid-grey, the largest absolute value of the six is black (negative) or white (positive).")
    notebook.figure("residuals_own_scale", signed_images_figure([mean, *components], titles, shared=False),
                    "The same six, each on its own symmetric scale.")
    fig = plt.figure(figsize=(5, 3), dpi=100)
    plt.bar(range(1, len(ratios) + 1), ratios)
    plt.xlabel("principal component of the residuals")
    plt.ylabel("explained-variance ratio")
    notebook.figure("explained_variance", fig, "Explained-variance ratio of each of the first five components.")
    print(f"Wrote {notebook.out}/README.md and {len(notebook.figures)} figures", flush=True)
    notebook.results = {"reconstruction_mse": float(np.mean(np.square(residuals))), "ratios": ratios.tolist(),
                        "denoising": rows}
    return notebook
