"""The assignments' GAN experiments: `python -m zoo.experiments gan`.

The homework's MLP GAN (100-128-784 / 784-128-1 ReLU) and the PyTorch notebook's leaky-ReLU MLP GAN, the lab's
DCGAN (G 512-256-128-1, D 64-128-1, 32x32, Adam 2e-4) with one D and one G update per iteration, then with the
update ratios 2:1 and 1:2 (D:G), then without batch norm, and the lab's VAE (784-200-200-20 softplus) for
comparison. For each: 100 samples from random z and the evaluator's figures on 10,000 samples (classifier score,
Fréchet distance to the test set, distance to the nearest training image), the training curves of the two losses
and of the discriminator's accuracies, and the wall time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np

from zoo import evaluate, train
from zoo.experiments import Notebook, draw_samples
from zoo.models.gan import PRESETS, DCGANConfig, GANConfig
from zoo.models.vae import PRESETS as VAE_PRESETS
from zoo.models.vae import VAEConfig


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

    def __post_init__(self):
        self.mlp_presets, self.ratios = tuple(self.mlp_presets), tuple(self.ratios)
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
    notebook.text(
        f"Made by `python -m zoo.experiments gan`: DCGANs {config.epochs} epochs each "
        f"({'the lab' if lab_size else 'not the lab'}'s channels: generator "
        f"{'-'.join(map(str, config.generator_filters))}-1, discriminator "
        f"{'-'.join(map(str, config.discriminator_filters))}-1), MLP GANs {config.mlp_epochs} epochs, batch 100, "
        f"seed {config.seed}{f', the first {config.limit:,} training images' if config.limit else ''}. Sample "
        f"figures: the evaluator's, on {config.num_samples:,} samples from random z against the "
        f"{len(reference.test_images):,} test images, with the real test images' own figures as the ceiling. "
        "TensorBoard: the training runs under `gan_experiments/` (a fixed-noise sample grid every epoch), and these "
        "figures in `tensorboard/` here.")

    def fit(model_name, label, model_config, epochs):
        started = time.time()
        result = train.train(
            model_name, model_config,
            train.data_config_for(model_name, model_config, limit=config.limit or None, seed=config.seed),
            train.TrainConfig(epochs=epochs, seed=config.seed, logdir=logdir, export=False,
                              name=f"gan_experiments/{label}"))
        seconds = time.time() - started
        samples = draw_samples(result.model, config.num_samples, config.seed)
        return SimpleNamespace(label=label, model=result.model, seconds=seconds, history=result.history,
                               epochs=epochs, grid=samples[:100],
                               figures=evaluate.image_set_figures(samples, reference))

    real = reference.real_sample_figures()

    def table(runs):
        notebook.table(
            ("model", "epochs", "classifier score ↑", "Fréchet distance ↓", "nearest training image",
             "D accuracy real / generated (last epoch)", "train seconds"),
            [("real test images", "", f"{real['classifier_score']:.2f}", f"{real['frechet_distance']:.1f}",
              f"{real['nearest_train_distance']:.2f}", "", "")]
            + [(r.label, r.epochs, f"{r.figures['classifier_score']:.2f}", f"{r.figures['frechet_distance']:.1f}",
              f"{r.figures['nearest_train_distance']:.2f}",
              f"{r.history['d_real_accuracy'][-1]:.2f} / {r.history['d_fake_accuracy'][-1]:.2f}"
              if "d_real_accuracy" in r.history else "", f"{r.seconds:.0f}") for r in runs])

    def samples_figure(name, r, what):
        notebook.grid(name, r.grid, 10, f"{r.label}: 100 samples from random z ({what}).")

    def fit_dcgan(ratio, batch_norm=True):
        d_steps, g_steps = parse_ratio(ratio)
        dcgan_config = DCGANConfig(d_steps=d_steps, g_steps=g_steps, batch_norm=batch_norm,
                                   generator_filters=config.generator_filters,
                                   discriminator_filters=config.discriminator_filters)
        label = f"dcgan_{d_steps}to{g_steps}" + ("" if batch_norm else "_no_bn")
        return fit("dcgan", label, dcgan_config, config.epochs)

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
    print(f"Wrote {notebook.out}/README.md and {len(notebook.figures)} figures", flush=True)
    notebook.results = {r.label: dict(r.figures, seconds=r.seconds, epochs=r.epochs)
                        for r in mlp + dcgans + [no_bn, vae] if r}
    return notebook
