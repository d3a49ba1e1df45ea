"""The assignments' GAN experiments: `python -m zoo.experiments gan`.

The homework's MLP GAN (100-128-784 / 784-128-1 ReLU) and the PyTorch notebook's leaky-ReLU MLP GAN, the lab's
DCGAN (G 512-256-128-1, D 64-128-1, 32x32, Adam 2e-4) with one D and one G update per iteration, then with the
update ratios 2:1 and 1:2 (D:G), then without batch norm, and the lab's VAE (784-200-200-20 softplus) for
comparison. For each: 100 samples from random z and the evaluator's figures on 10,000 samples (classifier score,
Fréchet distance to the test set, distance to the nearest training image), the training curves of the two losses
and of the discriminator's accuracies, and the wall time.

Then the stabiliser study: the lab's DCGAN and the homework's MLP GAN, each alone and with each stabiliser of
zoo.models.gan (generator EMA, TTUR, hinge loss, spectral norm, R1) and with the `quality` preset, at a budget a CPU
affords: the validation Fréchet distance per epoch of every run in one figure per family, and the evaluator's
figures of the epoch each run keeps (--keep best).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np

from zoo import evaluate, train
from zoo.experiments import Notebook, draw_samples
from zoo.models.gan import DCGAN_PRESETS, PRESETS, DCGANConfig, GANConfig
from zoo.models.vae import PRESETS as VAE_PRESETS
from zoo.models.vae import VAEConfig


# Each stabiliser alone, as the study adds it to the plain model (zoo.models.gan's docstring says what each does).
STABILISERS = {
    "ema": dict(ema_decay=0.999),
    "ttur": dict(d_learning_rate=4e-4, g_learning_rate=1e-4),
    "hinge": dict(loss="hinge"),
    "spectral_norm": dict(spectral_norm=True),
    "r1": dict(r1_gamma=10.0),
}
PARTS = ("assignments", "study")


@dataclass
class Config:
    epochs: int = field(default=20, metadata={"help": "training epochs of every DCGAN (the lab: at least 20)"})
    mlp_epochs: int = field(default=100, metadata={"help": "training epochs of the MLP GANs"})
    mlp_presets: tuple[str, ...] = field(default=("homework", "leaky"), metadata={
        "help": "MLP GAN presets: " + ", ".join(PRESETS)})
    ratios: tuple[str, ...] = field(default=("1:1", "2:1", "1:2"), metadata={
        "help": "DCGAN update ratios D:G to compare, the first with batch norm off too"})
    batch_norm_study: bool = field(default=True, metadata={"help": "also train the first ratio without batch norm"})
    generator_filters: tuple[int, ...] = field(default=(512, 256, 128), metadata={
        "help": "DCGAN generator channels (the lab's by default; smaller ones train faster on a CPU)"})
    discriminator_filters: tuple[int, ...] = field(default=(64, 128), metadata={"help": "DCGAN discriminator channels"})
    vae_preset: str = field(default="softplus20", metadata={
        "help": "the VAE to compare with: " + ", ".join(VAE_PRESETS)})
    vae_epochs: int = field(default=30, metadata={"help": "training epochs of the VAE (0: no VAE)"})
    limit: int = field(default=0, metadata={"help": "train on the first N images only (0: all)"})
    num_samples: int = field(default=10_000, metadata={"help": "samples per model for the evaluator's figures"})
    seed: int = field(default=0, metadata={"help": "fixes data order, initialisation and sampling"})
    parts: tuple[str, ...] = field(default=PARTS, metadata={
        "help": "assignments (the assignments' GANs, ratios, batch norm, VAE) and/or study (the stabilisers)"})
    stabilisers: tuple[str, ...] = field(default=tuple(STABILISERS) + ("quality",), metadata={
        "help": "the study's runs besides the plain model: " + ", ".join(STABILISERS) + ", quality (the preset)"})
    study_epochs: int = field(default=4, metadata={"help": "the study's DCGAN epochs"})
    study_mlp_epochs: int = field(default=30, metadata={"help": "the study's MLP GAN epochs"})
    study_limit: int = field(default=10_000, metadata={
        "help": "the study's DCGANs train on the first N images (0: all); the MLP GANs on --limit's"})

    def __post_init__(self):
        self.mlp_presets, self.ratios = tuple(self.mlp_presets), tuple(self.ratios)
        self.parts, self.stabilisers = tuple(self.parts), tuple(self.stabilisers)
        unknown = [p for p in self.parts if p not in PARTS] + [
            s for s in self.stabilisers if s not in STABILISERS and s != "quality"]
        if unknown:
            raise ValueError(f"unknown part(s) or stabiliser(s) {', '.join(unknown)}; parts: {', '.join(PARTS)}; "
                             f"stabilisers: {', '.join(STABILISERS)}, quality")
        if min(self.study_epochs, self.study_mlp_epochs) <= 0 or self.study_limit < 0:
            raise ValueError("study_epochs and study_mlp_epochs must be positive, study_limit >= 0")
        unknown = [p for p in self.mlp_presets if p not in PRESETS]
        if unknown:
            raise ValueError(f"unknown MLP GAN preset(s) {', '.join(unknown)}; choose from {', '.join(PRESETS)}")
        if self.vae_preset not in VAE_PRESETS:
            raise ValueError(f"unknown VAE preset {self.vae_preset!r}; choose from {', '.join(VAE_PRESETS)}")
        for ratio in self.ratios:
            parse_ratio(ratio)
        DCGANConfig(generator_filters=self.generator_filters, discriminator_filters=self.discriminator_filters)
        if min(self.epochs, self.mlp_epochs, self.num_samples) <= 0 or min(self.limit, self.vae_epochs) < 0:
            raise ValueError("epochs, mlp_epochs and num_samples must be positive, limit and vae_epochs >= 0")


def parse_ratio(text):
    """"2:1" -> (d_steps, g_steps) = (2, 1)."""
    try:
        d_steps, g_steps = (int(part) for part in text.split(":"))
    except ValueError:
        raise ValueError(f"an update ratio is D:G, two positive integers such as 2:1, not {text!r}") from None
    if min(d_steps, g_steps) <= 0:
        raise ValueError(f"an update ratio is D:G, two positive integers such as 2:1, not {text!r}")
    return d_steps, g_steps


def shares(figures):
    """The least and the most frequent digit's share of the samples, by the classifier: "7% / 13%"."""
    histogram = np.asarray(figures["class_histogram"], float)
    histogram /= histogram.sum()
    return f"{histogram.min():.0%} / {histogram.max():.0%}"


def training_curves(runs):
    """One column per run: the two losses above, the discriminator's accuracies below, per epoch."""
    fig, axes = plt.subplots(2, len(runs), figsize=(4 * len(runs), 6), dpi=100, squeeze=False, sharey="row")
    for column, r in enumerate(runs):
        epochs = np.arange(1, len(r.history["d_loss"]) + 1)
        top, bottom = axes[0, column], axes[1, column]
        top.plot(epochs, r.history["d_loss"], label="D loss")
        top.plot(epochs, r.history["g_loss"], label="G loss")
        top.set_title(r.label, fontsize=9)
        bottom.plot(epochs, r.history["d_real_accuracy"], label="D accuracy, real (training)")
        bottom.plot(epochs, r.history["d_fake_accuracy"], label="D accuracy, generated")
        if "val_d_real_accuracy" in r.history:
            bottom.plot(epochs, r.history["val_d_real_accuracy"], "--", label="D accuracy, real (validation)")
        bottom.set_ylim(0, 1.02)
        bottom.set_xlabel("epoch")
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("loss (nats)")
    axes[1, 0].set_ylabel("accuracy")
    axes[0, 0].legend(fontsize=8)
    axes[1, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def run(config: Config, out="experiments/gan", logdir="tensorboard_logs", reference=None):
    """reference: the evaluator's test images, training images and classifier (built from MNIST if None)."""
    reference = reference or evaluate.Reference.build(evaluate.EvalConfig(seed=config.seed))
    notebook = Notebook(out, "GAN experiments")
    lab_size = (config.generator_filters, config.discriminator_filters) == ((512, 256, 128), (64, 128))
    assignments_text = (
        f"DCGANs {config.epochs} epochs each "
        f"({'the lab' if lab_size else 'not the lab'}'s channels: generator "
        f"{'-'.join(map(str, config.generator_filters))}-1, discriminator "
        f"{'-'.join(map(str, config.discriminator_filters))}-1), MLP GANs {config.mlp_epochs} epochs, batch 100, "
        f"seed {config.seed}{f', the first {config.limit:,} training images' if config.limit else ''}. ")
    notebook.text(
        f"Made by `python -m zoo.experiments gan --parts {','.join(config.parts)}`"
        + (f": {assignments_text}" if "assignments" in config.parts else ". ") + "Sample "
        f"figures: the evaluator's, on {config.num_samples:,} samples from random z against the "
        f"{len(reference.test_images):,} test images, with the real test images' own figures as the ceiling. "
        "TensorBoard: the training runs under `gan_experiments/` (a fixed-noise sample grid every epoch), and these "
        "figures in `tensorboard/` here.")

    def fit(model_name, label, model_config, epochs, limit=config.limit):
        started = time.time()
        result = train.train(
            model_name, model_config,
            train.data_config_for(model_name, model_config, limit=limit or None, seed=config.seed),
            train.TrainConfig(epochs=epochs, seed=config.seed, logdir=logdir, export=False,
                              name=f"gan_experiments/{label}"))
        seconds = time.time() - started
        samples = draw_samples(result.model, config.num_samples, config.seed)
        return SimpleNamespace(label=label, model=result.model, seconds=seconds, history=result.history,
                               epochs=epochs, grid=samples[:100],
                               figures=evaluate.image_set_figures(samples, reference))

    real = reference.real_sample_figures()

    def table(runs, kept=False):
        notebook.table(
            ("model", "epochs" + (" (kept)" if kept else ""), "classifier score ↑", "Fréchet distance ↓",
             "nearest training image", "D accuracy real / generated (last epoch)", "train seconds",
             "digits: least / most frequent"),
            [("real test images", "", f"{real['classifier_score']:.2f}", f"{real['frechet_distance']:.1f}",
              f"{real['nearest_train_distance']:.2f}", "", "", shares(real))]
            + [(r.label, f"{r.epochs} ({r.kept})" if kept else r.epochs, f"{r.figures['classifier_score']:.2f}",
                f"{r.figures['frechet_distance']:.1f}",
              f"{r.figures['nearest_train_distance']:.2f}",
              f"{r.history['d_real_accuracy'][-1]:.2f} / {r.history['d_fake_accuracy'][-1]:.2f}"
              if "d_real_accuracy" in r.history else "", f"{r.seconds:.0f}", shares(r.figures)) for r in runs])

    def samples_figure(name, r, what):
        notebook.grid(name, r.grid, 10, f"{r.label}: 100 samples from random z ({what}).")

    def fit_dcgan(ratio, batch_norm=True):
        d_steps, g_steps = parse_ratio(ratio)
        dcgan_config = DCGANConfig(d_steps=d_steps, g_steps=g_steps, batch_norm=batch_norm,
                                   generator_filters=config.generator_filters,
                                   discriminator_filters=config.discriminator_filters)
        label = f"dcgan_{d_steps}to{g_steps}" + ("" if batch_norm else "_no_bn")
        return fit("dcgan", label, dcgan_config, config.epochs)

    notebook.results = {}
    if "assignments" in config.parts:
        assignments(config, notebook, fit, fit_dcgan, table, samples_figure)
    if "study" in config.parts:
        study(config, notebook, fit, table, samples_figure)
    print(f"Wrote {notebook.out}/README.md and {len(notebook.figures)} figures", flush=True)
    return notebook


def study(config, notebook, fit, table, samples_figure):
    """Each stabiliser alone on the plain model, and the quality preset: validation Fréchet distance per epoch and
    the evaluator's figures of the epoch kept."""
    budget = f"the first {config.study_limit:,} training images" if config.study_limit else "all training images"
    mlp_budget = f"the first {config.limit:,} training images" if config.limit else "all training images"
    notebook.text(
        "## Stabilisers",
        f"The lab's DCGAN ({config.study_epochs} epochs on {budget}) and the homework's MLP GAN "
        f"({config.study_mlp_epochs} epochs on {mlp_budget}), each plain and with one stabiliser at a time, "
        "then the `quality` preset. Every epoch, 2,000 fixed-seed samples are scored against the 5,000 "
        "validation images (the SampleQuality callback); each run keeps its epoch with the lowest validation "
        "Fréchet distance, and the table gives the evaluator's figures for it (10,000 samples against the test "
        "images). "
        "Stabilisers: " + "; ".join(f"`{name}`: {changes}" for name, changes in STABILISERS.items()) + ".")
    families = [("dcgan", DCGANConfig, DCGAN_PRESETS["quality"], config.study_epochs, config.study_limit),
                ("mlp", GANConfig, PRESETS["quality"], config.study_mlp_epochs, config.limit)]
    for family, config_class, quality, epochs, limit in families:
        runs = []
        for name in ("plain",) + config.stabilisers:
            changes = quality if name == "quality" else STABILISERS.get(name, {})
            if family == "dcgan":
                changes = dict(changes, generator_filters=config.generator_filters,
                               discriminator_filters=config.discriminator_filters)
            r = fit("dcgan" if family == "dcgan" else "gan", f"study_{family}_{name}", config_class(**changes),
                    epochs, limit)
            r.kept = 1 + int(np.nanargmin(r.history["val_frechet_distance"]))
            runs.append(r)
        notebook.text(f"### {'DCGAN' if family == 'dcgan' else 'MLP GAN'}")
        table(runs, kept=True)
        notebook.figure(f"study_{family}_curves", frechet_curves(runs),
                        "Validation Fréchet distance (2,000 samples against the validation images) per epoch, one "
                        "line per run; lower is better. The dot marks the epoch each run keeps.")
        best = min(runs, key=lambda r: r.figures["frechet_distance"])
        samples_figure(f"samples_study_{family}_best", best, f"the study's best {family} run, epoch {best.kept}")
        notebook.results.update({r.label: dict(r.figures, seconds=r.seconds, epochs=r.epochs, kept_epoch=r.kept,
                                               val_frechet_distance=r.history["val_frechet_distance"])
                                 for r in runs})


def frechet_curves(runs):
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for r in runs:
        curve = r.history["val_frechet_distance"]
        line, = ax.plot(np.arange(1, len(curve) + 1), curve, marker=".", label=r.label.split("_", 2)[-1])
        ax.plot([r.kept], [curve[r.kept - 1]], "o", color=line.get_color())
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation Fréchet distance (log scale)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def assignments(config, notebook, fit, fit_dcgan, table, samples_figure):
    """The assignments' GANs: MLP presets, DCGAN update ratios, batch norm, and the lab's VAE to compare."""
    mlp = [fit("gan", f"mlp_{preset}", GANConfig(**PRESETS[preset]), config.mlp_epochs)
           for preset in config.mlp_presets]
    dcgans = [fit_dcgan(ratio) for ratio in config.ratios]
    no_bn = fit_dcgan(config.ratios[0], batch_norm=False) if config.batch_norm_study and dcgans else None
    vae = None
    if config.vae_epochs:
        vae = fit("vae", f"vae_{config.vae_preset}", VAEConfig(**VAE_PRESETS[config.vae_preset]), config.vae_epochs)

    notebook.text("## Samples from random z: MLP GAN, DCGAN and VAE",
                  "Every model's figures on its samples (the VAE's: Bernoulli means, so its images are smoother):")
    table(mlp + dcgans[:1] + ([vae] if vae else []))
    for preset, r in zip(config.mlp_presets, mlp):
        samples_figure(f"samples_{r.label}", r, f"preset {preset}: {PRESETS[preset] or 'the defaults'}")
    if dcgans:
        samples_figure(f"samples_{dcgans[0].label}", dcgans[0], f"update ratio {config.ratios[0]}, batch norm")
    if vae:
        samples_figure(f"samples_{vae.label}", vae, f"the lab's VAE, {VAE_PRESETS[config.vae_preset]}")

    if len(dcgans) > 1:
        notebook.text("## DCGAN update ratios (D:G updates per iteration)",
                      "The D steps of an iteration share its real batch and draw fresh noise each; an epoch is one "
                      "pass over the training images either way, so 2:1 makes twice as many D updates and 1:2 "
                      "twice as many G updates as 1:1.")
        table(dcgans)
        for r, ratio in zip(dcgans[1:], config.ratios[1:]):
            samples_figure(f"samples_{r.label}", r, f"update ratio {ratio}")
        notebook.figure("curves_ratios", training_curves(dcgans),
                        "The two losses (top) and the discriminator's accuracies (bottom) per epoch, one column per "
                        "ratio. D accuracy on generated images near 1 with a rising G loss: D is winning.")
    if no_bn:
        notebook.text("## DCGAN without batch norm", f"Update ratio {config.ratios[0]}, both networks without "
                                                     "batch norm, otherwise the same:")
        table([dcgans[0], no_bn])
        samples_figure(f"samples_{no_bn.label}", no_bn, "no batch norm")
        notebook.figure("curves_batch_norm", training_curves([dcgans[0], no_bn]),
                        "The losses and the discriminator's accuracies with batch norm (left) and without (right).")
    if mlp:
        notebook.figure("curves_mlp", training_curves(mlp), "The MLP GANs' losses and discriminator accuracies.")
    notebook.results.update({r.label: dict(r.figures, seconds=r.seconds, epochs=r.epochs)
                             for r in mlp + dcgans + [no_bn, vae] if r})
