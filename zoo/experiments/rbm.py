"""The assignments' RBM experiments: `python -m zoo.experiments rbm`.

For each hidden size (20, 100 and 500 by default) an RBM is trained by CD-1 on dynamically binarized images (the
baseline), and next to it with real-valued inputs, with CD-k and PCD, and with other learning rates. Every model
is scored on the test set: log-likelihood by AIS (exact log Z too for 20 hidden units), reconstruction error,
pseudo-log-likelihood, and the free-energy gap. The figures: filters, filters sorted by how often their unit is
on, activation frequencies, reconstructions of the first 20 test images, samples from random hidden states after
1 to 1,000 Gibbs steps, learning curves per comparison, and inpainting with 20%, 50% and 80% of pixels missing.

Then, at the largest hidden size, the likelihood models: PCD-1 (the `pcd` preset) and its centered twin (the
`centered` preset, Melchior et al. 2016), as learning curves, AIS against RAISE (the conservative estimate, on a
subset of the test images), and every sampler (Gibbs, annealed, annealed and resampled, parallel tempering) at equal
compute: class histograms by the zoo's classifier, sample grids and images per second.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np

from zoo import classifier, data, likelihood, metrics, train
from zoo.experiments import Notebook, in_batches
from zoo.figures import curves, filter_images
from zoo.models.rbm import PRESETS, RBMConfig

SAMPLE_STEPS = (1, 10, 100, 1000)


@dataclass
class Config:
    epochs: int = field(default=10, metadata={"help": "training epochs of every model"})
    hidden_sizes: tuple[int, ...] = field(default=(20, 100, 500), metadata={"help": "hidden units"})
    cd_steps: tuple[int, ...] = field(default=(3, 10), metadata={"help": "k of the CD-k runs compared with CD-1"})
    learning_rates: tuple[float, ...] = field(default=(0.01, 0.1), metadata={
        "help": "learning rates compared with the baseline's 0.05"})
    limit: int = field(default=0, metadata={"help": "train on the first N images only (0: all)"})
    test_images: int = field(default=10_000, metadata={"help": "test images for the scores"})
    ais_chains: int = field(default=100, metadata={"help": "AIS runs per log Z"})
    ais_temperatures: int = field(default=14_500, metadata={"help": "intermediate distributions per AIS run"})
    raise_images: int = field(default=1000, metadata={
        "help": "test images of the conservative estimate (RAISE) of the likelihood models; 0: none"})
    likelihood_epochs: int = field(default=0, metadata={
        "help": "epochs of the likelihood models (PCD and centered PCD); 0: --epochs"})
    sampler_samples: int = field(default=1000, metadata={"help": "samples per sampler in the sampler comparison"})
    sampler_steps: int = field(default=1000, metadata={
        "help": "each sampler's compute, in Gibbs sweeps per sample (the models' default sample_steps)"})
    seed: int = field(default=0, metadata={"help": "fixes data order, initialisation and sampling"})

    def __post_init__(self):
        if min(self.epochs, self.test_images, self.ais_chains, self.ais_temperatures) <= 0 or self.limit < 0:
            raise ValueError("epochs, test_images, ais_chains and ais_temperatures must be positive, limit >= 0")
        if min(self.sampler_samples, self.sampler_steps) <= 0 or min(self.raise_images, self.likelihood_epochs) < 0:
            raise ValueError("sampler_samples and sampler_steps must be positive, raise_images and "
                             "likelihood_epochs >= 0")
        if not self.hidden_sizes:
            raise ValueError("hidden_sizes: give at least one, e.g. --hidden-sizes 20,100,500")


BASELINE = RBMConfig(hidden=500, cd_k=1, learning_rate=0.05, momentum=0.5)


class Runs:
    """Trains (through zoo.train) and scores each configuration once."""

    def __init__(self, config, logdir, test, train_images):
        self.config, self.logdir, self.test, self.train_images = config, logdir, test, train_images
        self.results = {}

    def get(self, label, rbm_config, binarize="dynamic", epochs=None):
        key = (dataclasses.astuple(rbm_config), binarize, epochs)
        if key not in self.results:
            c = self.config
            started = time.time()
            result = train.train(
                "rbm", rbm_config,
                train.data_config_for("rbm", binarize=binarize, limit=c.limit or None, seed=c.seed),
                train.TrainConfig(epochs=epochs or c.epochs, seed=c.seed, logdir=self.logdir, export=False,
                                  name=f"rbm_experiments/{label}"))
            self.results[key] = (result, self.score(result.model), time.time() - started)
        return self.results[key]

    def score(self, model):
        c, test = self.config, self.test
        p = model.parameters()  # W and the ordinary RBM's biases (a centered RBM's offsets folded in)
        ll = likelihood.rbm_log_likelihood(p["weights"].numpy(), p["visible_bias"].numpy(), p["hidden_bias"].numpy(),
                                           test.binary, self.train_images, c.ais_temperatures, c.ais_chains, c.seed,
                                           raise_images=c.raise_images if model.config.negative_phase != "cd" else 0)
        reconstructions = model.reconstruct(test.images).numpy()
        return {"nll": ll["nll_nats"], "exact_nll": ll.get("exact_nll_nats"), "raise": ll.get("raise"),
                "log_z_3_sigma": ll["log_z_3_sigma"], "log_z": ll["log_z"],
                "reconstruction_mse": float(np.mean(np.square(reconstructions - test.images)))}


def row(label, run):
    result, score, seconds = run
    history = result.history
    exact = f" (exact {score['exact_nll']:.2f})" if score["exact_nll"] is not None else ""
    return (label, f"{score['nll']:.2f}{exact}", f"{score['reconstruction_mse']:.4f}",
            f"{history['val_pseudo_log_likelihood'][-1]:.2f}", f"{history['free_energy_gap'][-1]:.2f}",
            f"{seconds:.0f}")


HEADER = ("model", "test NLL, AIS (nats) ↓", "test reconstruction MSE per pixel ↓", "validation pseudo-log-likelihood",
          "free-energy gap (val - train)", "seconds (train + score)")


def inpainting(notebook, model, test, hidden, seed):
    """Clamped Gibbs inpainting and the assignments' unclamped variant against the mean training image."""
    rows, table = [], []
    shown = test.images[:10]
    for i, fraction in enumerate(metrics.FRACTIONS):
        masks = metrics.random_masks(test.images.shape, fraction, seed + i)
        clamped = in_batches(lambda x, m: model.inpaint(x, m, seed + i), test.images, masks)
        blind = in_batches(lambda x, m: model.inpaint(x * m, m, seed + i, masked_input_only=True), test.images, masks)
        missing = masks < 0.5
        mean_fill = np.broadcast_to(test.mean_image, test.images.shape)
        error = lambda filled: float(np.mean(np.square(filled - test.images)[missing]))  # noqa: E731
        table.append((f"{fraction:.0%}", f"{error(clamped):.4f}", f"{error(blind):.4f}", f"{error(mean_fill):.4f}"))
        rows += [np.where(masks[:10] > 0.5, shown, 0.5), masks[:10], clamped[:10], shown]
    notebook.text(f"**Inpainting, {hidden} hidden units** (all {len(test.images):,} test images; squared error on "
                  "the missing pixels; clamped: Gibbs sampling of the missing pixels only, the mean of p(v|h) over "
                  "the chain's second half; unclamped: the assignments' variant, missing pixels set to 0 and the whole "
                  "image resampled, the mask unknown to the model):")
    notebook.table(("missing", "RBM, clamped ↓", "RBM, unclamped (assignments' variant)", "mean training image"), table)
    labels = [f"{f:.0%} {what}" for f in metrics.FRACTIONS for what in ("input", "mask", "completion", "original")]
    notebook.grid(f"inpainting_h{hidden}", np.concatenate(rows), 10,
                  f"Inpainting, {hidden} hidden units: for 20%, 50% and 80% missing, the input (missing pixels "
                  "grey), the mask (white: observed), the clamped completion and the original.", labels)
    return table


RECORD_EVERY = 50  # sweeps between records of the persistent chains run on
SAMPLERS = (("Gibbs", dict(method="gibbs")), ("annealed", dict(method="annealed")),
            ("annealed, resampled", dict(method="annealed", resample=True)),
            ("parallel tempering", dict(method="tempering")),
            (f"Gibbs, the persistent chains run on, recorded every {RECORD_EVERY} sweeps",
             dict(method="gibbs", start="chains", every=RECORD_EVERY)),
            (f"parallel tempering, the persistent chains run on, recorded every {RECORD_EVERY} sweeps",
             dict(method="tempering", start="chains", every=RECORD_EVERY)))


def likelihood_models(notebook, runs, config, test):
    """PCD-1 and centered PCD-1 at the largest hidden size: curves, AIS against RAISE, and the samplers."""
    hidden = max(config.hidden_sizes)
    epochs = config.likelihood_epochs or config.epochs
    models = {}
    for label, preset in (("PCD-1", "pcd"), ("centered PCD-1", "centered")):
        rbm_config = RBMConfig(**dict(PRESETS[preset], hidden=hidden))
        models[label] = runs.get(f"h{hidden}_{preset}_preset", rbm_config, epochs=epochs)
    notebook.text(f"## The likelihood models: PCD-1 and centered PCD-1, {hidden} hidden units, {epochs} epochs",
                  "The `pcd` and `centered` presets (learning rate 0.02 decayed linearly to 0, momentum 0.5, weight "
                  "decay 1e-4; centered: offsets mu = the training images' mean, lambda = a running mean of p(h|v) "
                  "with rate 0.01). RAISE runs one reverse chain per image through AIS's temperatures, from the "
                  "test image down to the base-rate model: its estimate errs low where AIS's errs high, so the "
                  "truth is likely between the two.")
    rows = []
    for label, (result, score, seconds) in models.items():
        r = score["raise"]
        rows.append((label, f"{score['nll']:.2f}", f"{r['nll_nats']:.2f} ± {r['standard_error']:.2f}" if r else "",
                     f"{r['ais_nll_nats']:.2f}" if r else "", f"{r['nll_nats'] - r['ais_nll_nats']:.2f}" if r else "",
                     f"{result.history['val_pseudo_log_likelihood'][-1]:.2f}", f"{seconds:.0f}"))
    subset = next((s["raise"]["images"] for _, s, _ in models.values() if s["raise"]), 0)
    notebook.table(("model", f"test NLL, AIS, {len(test.binary):,} images ↓",
                    f"test NLL, RAISE, first {subset:,} images", "AIS on the same images", "RAISE - AIS (nats)",
                    "validation pseudo-log-likelihood", "seconds (train + score)"), rows)
    notebook.figure("curves_centering", curves({label: r[0].history["val_pseudo_log_likelihood"]
                                                for label, r in models.items()}, "validation pseudo-log-likelihood"),
                    f"Validation pseudo-log-likelihood per epoch, {hidden} hidden units: PCD-1 plain and centered.")

    judge = classifier.load_frozen()
    table, grids = [], []
    for label, (result, _, _) in models.items():
        model = result.model
        for name, options in SAMPLERS:
            started = time.time()
            samples = np.concatenate([model.sample(min(1000, config.sampler_samples - s), config.seed + s,
                                                   steps=config.sampler_steps, **options).numpy()
                                      for s in range(0, config.sampler_samples, 1000)])
            rate = len(samples) / (time.time() - started)
            probabilities, _ = judge(samples)
            counts = np.bincount(probabilities.argmax(axis=1), minlength=10)
            shares = 100 * counts / counts.sum()
            table.append((label, name, f"{rate:,.0f}", f"{metrics.classifier_score(probabilities):.2f}",
                          " ".join(f"{x:.0f}" for x in shares), f"{shares.min():.0f} / {shares.max():.0f}"))
            grids.append(samples[:10])
    notebook.text(f"### Samplers ({config.sampler_steps:,} Gibbs sweeps per sample, or of burn-in for the "
                  "recorded chains)",
                  f"{config.sampler_samples:,} samples per row (p(v|h) of the last sweep), classified by the zoo's "
                  "frozen classifier. Gibbs: chains at the model from random images. Annealed: chains from the "
                  "visible biases through as many temperatures, beta from 0 to 1 (the path AIS follows); resampled: "
                  "then drawn again in proportion to their importance weights. Parallel tempering: "
                  "chains at 10 temperatures (beta evenly spaced in [0, 1]) swapping states, each for a tenth of the "
                  "sweeps; the beta = 1 chains are the samples. The last two rows start at the persistent "
                  "chains PCD left and run those chains on: the same sweeps of burn-in, then the beta = 1 chains "
                  f"recorded every {RECORD_EVERY} sweeps (one thinned MCMC run, `--sample-every`), so they spend "
                  "fewer sweeps per sample; their images per second say how many fewer. Images per second on this "
                  "machine, 1,000 per call.")
    notebook.table(("model", "sampler", "images/s", "classifier score ↑", "class histogram (% of 0..9)",
                    "least / most frequent digit (%)"), table)
    notebook.grid("samplers", np.concatenate(grids), 10,
                  "The first 10 samples of each sampler, PCD-1 then centered PCD-1, in the table's order.",
                  [f"{label}: {name}" for label in models for name, _ in SAMPLERS])


def run(config: Config, out="experiments/rbm", logdir="tensorboard_logs"):
    splits = data.load(data.DataConfig(validation_size=0))
    n = min(config.test_images, len(splits.test.images))
    images = data.as_images(splits.test.images[:n])
    train_images = splits.train.images.astype(np.float32) / 255.0  # [n, 28, 28]: the mean image is reshaped below
    test = SimpleNamespace(images=images, labels=splits.test.labels[:n],
                           binary=data.binarize_once(images, config.seed).reshape(n, 784),
                           mean_image=train_images.mean(axis=0)[None, ..., None])
    runs = Runs(config, logdir, test, train_images)

    notebook = Notebook(out, "RBM experiments")
    notebook.text(
        f"Made by `python -m zoo.experiments rbm` ({config.epochs} epochs per model, batch 100, seed {config.seed}"
        + (f", first {config.limit} training images" if config.limit else ", 55,000 training images") + "). "
        "Baseline: CD-1, learning rate 0.05, momentum 0.5, inputs binarized afresh each epoch (dynamic). "
        f"Test figures on the first {n:,} test images; log-likelihoods on them binarized once (seed "
        f"{config.seed}), log Z by AIS ({config.ais_chains} chains, {config.ais_temperatures:,} temperatures). "
        "TensorBoard: the training runs under `rbm_experiments/`, and these figures in `tensorboard/` here.")

    baselines = {}
    for hidden in config.hidden_sizes:
        base = dataclasses.replace(BASELINE, hidden=hidden)
        baselines[hidden] = runs.get(f"h{hidden}_cd1", base)
        compared = [(f"CD-1, lr {base.learning_rate} (baseline)", baselines[hidden])]
        compared.append(("real-valued inputs", runs.get(f"h{hidden}_real", base, binarize="none")))
        compared += [(f"CD-{k}", runs.get(f"h{hidden}_cd{k}", dataclasses.replace(base, cd_k=k)))
                     for k in config.cd_steps]
        compared.append(("PCD-1", runs.get(f"h{hidden}_pcd1", dataclasses.replace(base, negative_phase="pcd"))))
        compared += [(f"CD-1, lr {rate}",
                      runs.get(f"h{hidden}_lr{rate}", dataclasses.replace(base, learning_rate=rate)))
                     for rate in config.learning_rates]

        notebook.text(f"## {hidden} hidden units")
        notebook.table(HEADER, [row(label, r) for label, r in compared])
        for name, keys, what in (("training", ["CD-"], "CD-k and PCD"), ("rates", ["lr"], "learning rates"),
                                 ("inputs", ["baseline", "real"], "binary-sampled and real-valued inputs")):
            chosen = {label: r[0].history["val_pseudo_log_likelihood"] for label, r in compared
                      if any(k in label for k in keys) or "baseline" in label}
            notebook.figure(f"curves_{name}_h{hidden}", curves(chosen, "validation pseudo-log-likelihood"),
                            f"Validation pseudo-log-likelihood per epoch, {hidden} hidden units: {what}.")
        model = baselines[hidden][0].model
        frequency = model.hidden_probabilities(test.binary).numpy().mean(axis=0)
        order = np.argsort(-frequency)
        columns = 25 if hidden > 100 else 10
        notebook.grid(f"filters_h{hidden}", filter_images(model.W.numpy()), columns,
                      f"The {hidden} filters (columns of W, each scaled to its own range), baseline model.")
        notebook.grid(f"filters_sorted_h{hidden}", filter_images(model.W.numpy()[:, order]), columns,
                      f"The same filters sorted by activation frequency, most active first (frequencies "
                      f"{frequency[order[0]]:.2f} to {frequency[order[-1]]:.3f}).")
        samplers = [("CD-1", model), ("PCD-1", dict(compared)["PCD-1"][0].model)]
        chains = [m.sample(10, config.seed, steps=s, start="hidden").numpy() for _, m in samplers for s in SAMPLE_STEPS]
        notebook.grid(f"samples_h{hidden}", np.concatenate(chains), 10,
                      f"Samples (p(v|h)) from 10 random hidden states, {hidden} hidden units, of the CD-1 baseline "
                      "and of the PCD-1 model: the same chains after " + ", ".join(map(str, SAMPLE_STEPS))
                      + " Gibbs steps. CD-1 models tend to fall into spurious modes (blank or blob images) that "
                      "their training never visits; PCD's persistent chains find and remove them.",
                      [f"{name}, {s} steps" for name, _ in samplers for s in SAMPLE_STEPS])
        inpainting(notebook, model, test, hidden, config.seed)

    likelihood_models(notebook, runs, config, test)

    notebook.text("## Across hidden sizes")
    reconstructions = [test.images[:20]] + [r[0].model.reconstruct(test.images[:20]).numpy()
                                            for r in baselines.values()]
    notebook.grid("reconstructions", np.concatenate(reconstructions), 20,
                  "The first 20 test images and their reconstructions p(v | h = p(h|v)) by the baseline RBMs.",
                  ["test images"] + [f"{h} hidden" for h in baselines])
    fig = plt.figure(figsize=(6, 4), dpi=100)
    for hidden, r in baselines.items():
        frequency = np.sort(r[0].model.hidden_probabilities(test.binary).numpy().mean(axis=0))[::-1]
        plt.plot(np.linspace(0, 1, hidden), frequency, label=f"{hidden} hidden")
    plt.xlabel("hidden units, most active first (fraction of the layer)")
    plt.ylabel("mean p(h = 1 | test image)")
    plt.legend()
    plt.grid(alpha=0.3)
    notebook.figure("activation_frequency", fig, "How often each hidden unit is on over the test images "
                                                 "(mean of p(h|v)), sorted, for each baseline RBM.")
    print(f"Wrote {notebook.out}/README.md and {len(notebook.figures)} figures", flush=True)
    return notebook
