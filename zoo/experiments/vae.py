"""The assignments' VAE experiments: `python -m zoo.experiments vae`.

MLP VAEs with codes of 2, 8 and 16 units (784-256-z-256-784 ReLU) and the 784-200-200-20 softplus model, and a
convolutional VAE next to the MLP one of the same code size, all trained on dynamically binarized images so their
likelihoods compare with the literature. For each model: reconstructions of the first 20 test images with their
codes, validation -ELBO and importance-weighted test NLL, box plots of the posterior means and standard deviations
and of the decoder's first-layer weights per code unit (inactive units show as flat boxes), a sweep of each code
unit from -3 to 3, and linear and spherical interpolations between test images of the same and of different
digits. For z = 2: the decoder's manifold and the layout of 5,000 test codes. For the best MLP model: the
importance-weighted estimate for k = 1 to 5,000, to show where it converges.

Then the importance-weighted objective (`--parts iwae`): the 784-500-500-50 likelihood model trained on the
k-sample bound for k = 1 (the ELBO), 5 and 50, each for the same wall time, its test NLL measured along the way (one
figure: NLL against training seconds), and the estimate's convergence in k for the best of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from types import SimpleNamespace

import keras
import matplotlib.pyplot as plt
import numpy as np

from zoo import data, evaluate, metrics, train
from zoo.experiments import Notebook, draw_samples
from zoo.figures import interpolate, latent_layout_figure, manifold_codes
from zoo.models.vae import PRESETS, ConvVAEConfig, VAEConfig

CONVERGENCE_K = (1, 10, 100, 1000, 5000)
PARTS = ("assignments", "iwae")


@dataclass
class Config:
    epochs: int = field(default=30, metadata={"help": "training epochs of every model"})
    presets: tuple[str, ...] = field(default=("z2", "z8", "z16", "softplus20"), metadata={
        "help": "MLP VAE presets to train: " + ", ".join(PRESETS)})
    conv_latent_dims: tuple[int, ...] = field(default=(16,), metadata={
        "help": "code sizes of the convolutional VAEs, each compared with the MLP VAE of that size"})
    binarize: str = field(default="dynamic", metadata={"help": "training inputs: dynamic, static or none"})
    limit: int = field(default=0, metadata={"help": "train on the first N images only (0: all)"})
    iw_samples: int = field(default=500, metadata={"help": "importance samples per image of the NLL column"})
    iw_images: int = field(default=1000, metadata={"help": "test images of the importance-weighted estimates"})
    num_samples: int = field(default=10_000, metadata={"help": "samples per model for the evaluator's figures"})
    spherical: bool = field(default=True, metadata={"help": "also draw spherical interpolations"})
    parts: tuple[str, ...] = field(default=PARTS, metadata={
        "help": "assignments (the assignments' VAEs) and/or iwae (the importance-weighted objective at equal time)"})
    iwae_k: tuple[int, ...] = field(default=(1, 5, 50), metadata={
        "help": "importance samples of the training objectives compared (1: the ELBO)"})
    iwae_minutes: float = field(default=10.0, metadata={"help": "training minutes of each objective"})
    iwae_preset: str = field(default="z50", metadata={"help": "the architecture they train (an MLP preset)"})
    seed: int = field(default=0, metadata={"help": "fixes data order, initialisation and sampling"})

    def __post_init__(self):
        self.presets, self.parts, self.iwae_k = tuple(self.presets), tuple(self.parts), tuple(self.iwae_k)
        unknown = [p for p in self.presets + (self.iwae_preset,) if p not in PRESETS]
        if unknown:
            raise ValueError(f"unknown preset(s) {', '.join(unknown)}; choose from {', '.join(PRESETS)}")
        if not self.parts or set(self.parts) - set(PARTS):
            raise ValueError(f"parts must be some of {', '.join(PARTS)}, got {', '.join(self.parts)}")
        if self.iwae_minutes <= 0:
            raise ValueError(f"iwae_minutes must be positive, got {self.iwae_minutes}")
        if self.binarize not in data.BINARIZATIONS:
            raise ValueError(f"binarize must be one of {', '.join(data.BINARIZATIONS)}, not {self.binarize!r}")
        if min(self.epochs, self.iw_samples, self.iw_images, self.num_samples) <= 0 or self.limit < 0:
            raise ValueError("epochs, iw_samples, iw_images and num_samples must be positive, limit >= 0")


# ---------------------------------------------------------------------------------------------------------------
# Latent-space tools.


def pairs(labels, count, same, rng):
    """`count` random (i, j) index pairs of test images with the same digit, or with different digits."""
    found = []
    while len(found) < count:
        i, j = rng.integers(len(labels), size=2)
        if i != j and (labels[i] == labels[j]) == same:
            found.append((i, j))
    return found


def interpolation_rows(model, images, index_pairs, spherical, inner=7):
    """Rows of [first image, `inner` decoded interpolates, last image]."""
    codes = model.encode(images)["latent"].numpy()
    rows = []
    for i, j in index_pairs:
        path = interpolate(codes[i], codes[j], inner + 2, spherical)[1:-1]
        rows += [images[i:i + 1], model.decode(path.astype(np.float32)).numpy(), images[j:j + 1]]
    return np.concatenate(rows)


def sweep(model, values=np.linspace(-3, 3, 11)):
    """Each code unit from -3 to 3 with the others at 0 (the prior's mean): one row per unit."""
    d = model.latent_dim
    codes = np.zeros((d, len(values), d), np.float32)
    for unit in range(d):
        codes[unit, :, unit] = values
    return model.decode(codes.reshape(-1, d)).numpy()


# ---------------------------------------------------------------------------------------------------------------
# Figures.


def reconstructions_with_codes(notebook, name, model, test):
    images = test.images[:20]
    codes = model.encode(images)["latent"].numpy()
    reconstructions = model.reconstruct(images).numpy()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 2.2 + 0.18 * codes.shape[1]), dpi=100,
                                      gridspec_kw={"height_ratios": [2, max(1, codes.shape[1] / 8)]})
    strip = np.concatenate([np.concatenate(list(images[..., 0]), axis=1),
                            np.concatenate(list(reconstructions[..., 0]), axis=1)])
    top.imshow(strip, cmap="gray", vmin=0, vmax=1)
    top.set_xticks([])
    top.set_yticks([14, 42], ["test image", "reconstruction"])
    shown = bottom.imshow(codes.T, cmap="coolwarm", vmin=-3, vmax=3, aspect="auto")
    if codes.shape[1] <= 2:
        for (col, unit), value in np.ndenumerate(codes):
            bottom.text(col, unit, f"{value:.1f}", ha="center", va="center", fontsize=7)
    bottom.set_xticks(range(20))
    bottom.set_ylabel("code unit")
    fig.colorbar(shown, ax=bottom, label="posterior mean")
    notebook.figure(f"reconstructions_{name}", fig, f"{name}: the first 20 test images, their reconstructions "
                                                    "(Bernoulli means), and their codes (posterior means) below.")


def box_plots(notebook, name, model, test):
    code = model.encode(test.images[:5000])
    means, stds = code["latent"].numpy(), np.exp(0.5 * code["log_var"].numpy())
    first_layer = model.decoder.layers[0].kernel.numpy()
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.5), dpi=100)
    for ax, values, title in ((axes[0], means, "posterior means"), (axes[1], stds, "posterior standard deviations"),
                              (axes[2], first_layer.T, "decoder first-layer weights")):
        ax.boxplot(values, showfliers=False)
        ax.set_title(title)
        ax.set_xlabel("code unit")
        ax.set_xticks(range(1, values.shape[1] + 1), [str(i) if values.shape[1] <= 20 or i % 5 == 0 else ""
                                                      for i in range(values.shape[1])])
    inactive = int(np.sum(np.var(means, axis=0) < 0.01))
    notebook.figure(f"boxplots_{name}", fig, f"{name}, per code unit over 5,000 test images: the posterior means, "
                                             "their standard deviations, and the decoder's first-layer weights. "
                                             f"{inactive} of {means.shape[1]} units are inactive (variance of the "
                                             "mean below 0.01: the posterior equals the prior there).")
    return inactive


def manifold_and_layout(notebook, name, model, test):
    notebook.grid(f"manifold_{name}", model.decode(manifold_codes()).numpy(), 15,
                  f"{name}: the decoder's output over a 15x15 grid of codes from -3 to 3 in both dimensions.")
    codes = model.encode(test.images[:5000])["latent"].numpy()
    fig = latent_layout_figure(codes, test.labels[:5000])
    notebook.figure(f"latent_layout_{name}", fig, f"{name}: posterior means of the first 5,000 test images, "
                                                  "coloured by digit.")


class LikelihoodCurve(keras.callbacks.Callback):
    """Trains for `seconds` of training time (the measurements not counted) and measures the test NLL (the
    importance-weighted estimate, k samples) after the first epoch and then at most every seconds / 10 of training."""

    def __init__(self, seconds, images, k, seed):
        super().__init__()
        self.seconds, self.images, self.k, self.seed = seconds, images, k, seed
        self.points = []  # (training seconds, epochs, NLL)

    def on_train_begin(self, logs=None):
        self.trained, self.epochs = 0.0, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.trained += time.perf_counter() - self.started
        self.epochs += 1
        done = self.trained >= self.seconds
        if done or not self.points or self.trained - self.points[-1][0] >= self.seconds / 10:
            nll = -float(self.model.log_likelihood(self.images, self.k, self.seed).mean())
            self.points.append((self.trained, self.epochs, nll))
        self.model.stop_training = done


def iwae_part(config, notebook, test, logdir):
    """The likelihood model trained on L_k for each k in config.iwae_k, for the same training time each."""
    budget = 60 * config.iwae_minutes
    notebook.text(
        "## The importance-weighted objective at equal time",
        f"The `{config.iwae_preset}` model ({', '.join(f'{k}={v}' for k, v in PRESETS[config.iwae_preset].items())}) "
        f"trained on the k-sample importance-weighted bound (k = 1 is the ELBO) for {config.iwae_minutes:g} minutes "
        f"of training each, Adam at a constant 1e-3, {config.binarize} binarization. The test NLL along the way is "
        f"the importance-weighted estimate with k = {config.iw_samples} on the first {len(test.binary):,} test "
        "images, measured outside the training clock.")
    runs = []
    for k in config.iwae_k:
        curve = LikelihoodCurve(budget, test.binary, config.iw_samples, config.seed)
        model_config = replace(VAEConfig(**PRESETS[config.iwae_preset]), importance_samples=k)
        result = train.train(
            "vae", model_config,
            train.data_config_for("vae", binarize=config.binarize, limit=config.limit or None, seed=config.seed),
            train.TrainConfig(epochs=1_000_000, seed=config.seed, logdir=logdir, export=False,
                              name=f"vae_experiments/iwae_k{k}"), extra_callbacks=[curve])
        runs.append(SimpleNamespace(k=k, model=result.model, points=curve.points, history=result.history))
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for r in runs:
        seconds, _, nll = zip(*r.points)
        ax.plot(seconds, nll, marker="o", label=f"k = {r.k}" + (" (ELBO)" if r.k == 1 else ""))
    ax.set_xlabel("training seconds")
    ax.set_ylabel(f"test NLL, k = {config.iw_samples} (nats)")
    ax.set_ylim(top=max(p[2] for r in runs for p in r.points[1:] or r.points) + 2)  # the first point is far above
    ax.legend()
    ax.grid(alpha=0.3)
    notebook.figure("iwae_time_curves", fig, "Test NLL against training time for each training objective.")
    notebook.table(("objective", "epochs", "seconds per epoch", "validation loss (-L_k)", "test NLL (nats) ↓"),
                   [(f"k = {r.k}", r.points[-1][1], f"{r.points[-1][0] / r.points[-1][1]:.1f}",
                     f"{r.history['val_loss'][-1]:.2f}", f"{r.points[-1][2]:.2f}") for r in runs])
    best = min(runs, key=lambda r: r.points[-1][2])
    convergence_table(notebook, best.model, test.binary, config.seed,
                      f"the best of them (trained with k = {best.k}), on the first {len(test.binary):,} test images")
    return runs


def convergence_table(notebook, model, images, seed, which):
    """The importance-weighted estimate of model's test NLL on images for each k of CONVERGENCE_K, as a table;
    returns {k: NLL}."""
    estimates = [-float(model.log_likelihood(images, k, seed).mean()) for k in CONVERGENCE_K]
    notebook.text(f"**Convergence of the importance-weighted estimate** for {which}: -log p(x) bounded from above, "
                  "tightening as k grows.")
    notebook.table(("k",) + tuple(map(str, CONVERGENCE_K)), [("NLL (nats)",) + tuple(f"{e:.2f}" for e in estimates)])
    return dict(zip(CONVERGENCE_K, estimates))


# ---------------------------------------------------------------------------------------------------------------


def run(config: Config, out="experiments/vae", logdir="tensorboard_logs", reference=None):
    """reference: the evaluator's test images, training images and classifier (built from MNIST if None)."""
    reference = reference or evaluate.Reference.build(evaluate.EvalConfig(seed=config.seed))
    n = min(config.iw_images, len(reference.test_images))
    test = SimpleNamespace(images=reference.test_images, labels=reference.test_labels,
                           binary=reference.binarized[:n])
    rng = np.random.default_rng(config.seed)
    interpolation_pairs = {"same": pairs(test.labels, 10, True, rng), "different": pairs(test.labels, 10, False, rng)}

    notebook = Notebook(out, "VAE experiments")
    notebook.text(
        f"Made by `python -m zoo.experiments vae --parts {','.join(config.parts)}` ("
        + (f"the assignments' models: {config.epochs} epochs each; " if "assignments" in config.parts else "")
        + f"batch 100, Adam 1e-3, {config.binarize} binarization, seed {config.seed}). "
        f"NLL: the importance-weighted estimate of -log p(x) with k = {config.iw_samples} on the first {n:,} test "
        f"images binarized once (seed {config.seed}). Sample "
        f"figures: the evaluator's, on {config.num_samples:,} samples. TensorBoard: the training runs under "
        "`vae_experiments/`, and these figures in `tensorboard/` here.")

    def fit(model_name, label, model_config):
        started = time.time()
        result = train.train(
            model_name, model_config,
            train.data_config_for(model_name, binarize=config.binarize, limit=config.limit or None, seed=config.seed),
            train.TrainConfig(epochs=config.epochs, seed=config.seed, logdir=logdir, export=False,
                              name=f"vae_experiments/{label}"))
        seconds = time.time() - started
        model = result.model
        samples = draw_samples(model, config.num_samples, config.seed)
        reconstructions = model.reconstruct(test.images).numpy()
        return SimpleNamespace(
            label=label, model=model, seconds=seconds, history=result.history,
            nll=-float(model.log_likelihood(test.binary, config.iw_samples, config.seed).mean()),
            mse=float(np.mean(np.square(reconstructions - test.images))),
            bce=float(metrics.binary_cross_entropy(test.images, reconstructions).mean()),
            samples=evaluate.image_set_figures(samples, reference))

    def table(runs, extra_header=(), extra=lambda r: ()):
        notebook.table(
            ("model", "validation -ELBO (nats)", f"test NLL, k={config.iw_samples} (nats) ↓",
             "test reconstruction BCE (nats)", "MSE per pixel", "classifier score ↑", "Fréchet distance ↓",
             "train seconds", *extra_header),
            [(r.label, f"{r.history['val_loss'][-1]:.2f}", f"{r.nll:.2f}", f"{r.bce:.1f}", f"{r.mse:.4f}",
              f"{r.samples['classifier_score']:.2f}", f"{r.samples['frechet_distance']:.1f}", f"{r.seconds:.0f}",
              *extra(r)) for r in runs])

    if "assignments" in config.parts:
        assignments_part(config, notebook, test, fit, table, interpolation_pairs)
    if "iwae" in config.parts:
        iwae_part(config, notebook, test, logdir)
    print(f"Wrote {notebook.out}/README.md and {len(notebook.figures)} figures", flush=True)
    return notebook


def assignments_part(config, notebook, test, fit, table, interpolation_pairs):
    """The assignments' MLP VAEs, each with its figures, then the convolutional VAEs beside their MLP twins."""
    mlp = {}
    for preset in config.presets:
        notebook.text(f"## MLP VAE, preset {preset}: {PRESETS[preset]}")
        r = mlp[preset] = fit("vae", preset, VAEConfig(**PRESETS[preset]))
        reconstructions_with_codes(notebook, preset, r.model, test)
        r.inactive = box_plots(notebook, preset, r.model, test)
        if r.model.latent_dim == 2:
            manifold_and_layout(notebook, preset, r.model, test)
        d = r.model.latent_dim
        notebook.grid(f"sweep_{preset}", sweep(r.model), 11,
                      f"{preset}: each code unit (rows) from -3 to 3 with the others at 0.",
                      [f"z[{u}]" for u in range(d)])
        for spherical in (False, True) if config.spherical else (False,):
            kind = "spherical" if spherical else "linear"
            for which, chosen in interpolation_pairs.items():
                notebook.grid(f"interpolation_{kind}_{which}_{preset}",
                              interpolation_rows(r.model, test.images, chosen, spherical), 9,
                              f"{preset}, {kind} interpolation between 10 random pairs of test images of "
                              f"{which} digits: first image, 7 decoded interpolates of their codes, last image.")

    if mlp:
        notebook.text("## MLP VAEs side by side")
        table(mlp.values(), ("inactive code units",), lambda r: (f"{r.inactive} of {r.model.latent_dim}",))
        best = min(mlp.values(), key=lambda r: r.nll)
        best.convergence = convergence_table(notebook, best.model, test.binary[:1000], config.seed,
                                             f"the best MLP model ({best.label}), on the first 1,000 test images")

    for latent_dim in config.conv_latent_dims:
        label = f"conv_z{latent_dim}"
        notebook.text(f"## Convolutional VAE, z = {latent_dim}, next to the MLP VAE")
        conv = fit("conv_vae", label, ConvVAEConfig(latent_dim=latent_dim))
        twin = next((r for r in mlp.values() if r.model.latent_dim == latent_dim and r.model.config.hidden == (256,)),
                    None) or fit("vae", f"z{latent_dim}", VAEConfig(latent_dim=latent_dim))
        table([twin, conv])
        reconstructions_with_codes(notebook, label, conv.model, test)
        notebook.grid(f"samples_{label}", np.concatenate([twin.model.sample(50, 0).numpy(),
                                                          conv.model.sample(50, 0).numpy()]), 10,
                      f"50 samples of the MLP VAE (top 5 rows) and 50 of the convolutional VAE (bottom 5 rows), "
                      f"z = {latent_dim}.")
