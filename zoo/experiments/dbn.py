"""The lab's DBN experiments: `python -m zoo.experiments dbn`.

A DBN (784-100-100 by default) is pretrained greedily and fine-tuned by the up-down algorithm; its first layer on
its own is the single RBM it is compared with. For the three: the test log-likelihood (AIS for the RBM, the
variational bound for the DBNs), test reconstruction error and the evaluator's sample figures; the filters W1 and
W2 (W2 drawn in pixel space through W1), and R and W' after fine-tuning; reconstructions of the first 20 test
images with the DBNs' top states; samples from random top states after 10 and 1,000 Gibbs steps. And the lab's
variant: a second RBM of 784 hidden units started at W1 transposed, its top states shown as 28x28 images.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from zoo import evaluate, export, likelihood, train
from zoo.experiments import Notebook, draw_samples, in_batches
from zoo.figures import filter_images
from zoo.models.dbn import DBN, DBNConfig
from zoo.models.rbm import RBM, RBMConfig

SAMPLE_STEPS = (10, 1000)


@dataclass
class Config:
    layers: tuple[int, ...] = field(default=(784, 100, 100), metadata={"help": "layer sizes, 784 first"})
    epochs: int = field(default=10, metadata={"help": "greedy epochs of each layer"})
    fine_tune_epochs: int = field(default=10, metadata={"help": "epochs of up-down fine-tuning"})
    transposed_variant: bool = field(default=True, metadata={"help": "also run the lab's W2 = W1^T variant"})
    limit: int = field(default=0, metadata={"help": "train on the first N images only (0: all)"})
    num_samples: int = field(default=10_000, metadata={"help": "samples per model for the evaluator's figures"})
    ais_chains: int = field(default=100, metadata={"help": "AIS runs per log Z"})
    ais_temperatures: int = field(default=14_500, metadata={"help": "intermediate distributions per AIS run"})
    seed: int = field(default=0, metadata={"help": "fixes data order, initialisation and sampling"})

    def __post_init__(self):
        DBNConfig(layers=self.layers)  # the same checks as the model's
        if min(self.epochs, self.fine_tune_epochs, self.num_samples, self.ais_chains, self.ais_temperatures) <= 0:
            raise ValueError("epochs, fine_tune_epochs, num_samples, ais_chains and ais_temperatures must be positive")
        if self.limit < 0:
            raise ValueError("limit must be >= 0")


def dbn_from_export(config, path):
    """An in-memory DBN with an export's weights (its `parameters` signature)."""
    parameters = export.Export(path).signatures["parameters"]()
    model = DBN(config)
    model.build_for_images()
    for i in range(len(model.recognition)):
        model.recognition[i].assign(parameters[f"recognition_{i}"])
        model.recognition_bias[i].assign(parameters[f"recognition_bias_{i}"])
        model.generative[i].assign(parameters[f"generative_{i}"])
        model.generative_bias[i].assign(parameters[f"generative_bias_{i}"])
    model.top.W.assign(parameters["top_weights"])
    model.top.visible_bias.assign(parameters["top_visible_bias"])
    model.top.hidden_bias.assign(parameters["top_hidden_bias"])
    return model


def first_layer_rbm(dbn):
    """The greedy DBN's first layer as the RBM it was trained as: W = R_0, hidden biases r_0, visible biases g_0."""
    rbm = RBM(RBMConfig(hidden=dbn.config.layers[1]))
    rbm.build_for_images()
    rbm.W.assign(dbn.recognition[0])
    rbm.hidden_bias.assign(dbn.recognition_bias[0])
    rbm.visible_bias.assign(dbn.generative_bias[0])
    return rbm


def square_images(states):
    """Top states [n, d] as images: 28x28 when d = 784, else the nearest square, padded."""
    n, d = states.shape
    side = math.ceil(math.sqrt(d))
    padded = np.zeros((n, side * side), np.float32)
    padded[:, :d] = states
    return padded.reshape(n, side, side, 1)


def run(config: Config, out="experiments/dbn", logdir="tensorboard_logs", reference=None):
    reference = reference or evaluate.Reference.build(evaluate.EvalConfig(seed=config.seed))
    test = SimpleNamespace(images=reference.test_images, binary=reference.binarized)
    notebook = Notebook(out, "DBN experiments")
    layers = "-".join(map(str, config.layers))
    notebook.text(
        f"Made by `python -m zoo.experiments dbn`: a {layers} DBN, {config.epochs} greedy epochs per layer (CD-1, "
        f"learning rate 0.05), then {config.fine_tune_epochs} epochs of up-down fine-tuning (top CD-2, learning "
        f"rate 0.01), batch 100, dynamic binarization, seed {config.seed}. Likelihoods on the "
        f"{len(test.binary):,} test images binarized once; log Z by AIS ({config.ais_chains} chains, "
        f"{config.ais_temperatures:,} temperatures). TensorBoard: the runs under `dbn_experiments/`.")

    started = time.time()
    dbn_config = DBNConfig(layers=config.layers, fine_tune_epochs=config.fine_tune_epochs)
    result = train.train("dbn", dbn_config, train.data_config_for("dbn", limit=config.limit or None, seed=config.seed),
                         train.TrainConfig(epochs=config.epochs, seed=config.seed, logdir=logdir,
                                           export_dir=f"{out}/exports", name="dbn_experiments/dbn"))
    seconds = time.time() - started
    tuned = result.model
    greedy = dbn_from_export(dbn_config, result.greedy_export_path)
    rbm = first_layer_rbm(greedy)
    greedy_seconds = export.Export(result.greedy_export_path).card["train_seconds"]

    # Numbers: likelihood, reconstruction, samples.
    rows = []
    for label, model, train_seconds in (("single RBM (the first layer)", rbm, None),
                                        ("greedy DBN", greedy, greedy_seconds), ("fine-tuned DBN", tuned, seconds)):
        if model is rbm:
            nll = likelihood.rbm_log_likelihood(rbm.W.numpy(), rbm.visible_bias.numpy(), rbm.hidden_bias.numpy(),
                                                test.binary, reference.train_images, config.ais_temperatures,
                                                config.ais_chains, config.seed)["nll_nats"]
        else:
            per_image, _, _ = likelihood.dbn_log_likelihood_bound(
                {k: v.numpy() for k, v in model.parameters().items()}, test.binary, reference.train_images,
                config.ais_temperatures, config.ais_chains, config.seed)
            nll = -float(per_image.mean())
        reconstructions = in_batches(model.reconstruct, test.images)
        samples = draw_samples(model, config.num_samples, config.seed)
        figures = evaluate.image_set_figures(samples, reference)
        rows.append((label, f"{nll:.2f}" + (" (bound)" if model is not rbm else ""),
                     f"{np.mean(np.square(reconstructions - test.images)):.4f}",
                     f"{figures['classifier_score']:.2f}", f"{figures['frechet_distance']:.1f}",
                     "" if train_seconds is None else f"{train_seconds:.0f}"))
    notebook.text("## The single RBM, the greedy DBN and the fine-tuned DBN")
    notebook.table(("model", "test NLL (nats) ↓", "test reconstruction MSE per pixel ↓", "classifier score ↑",
                    "Fréchet distance ↓", "train seconds (cumulative)"), rows)

    # Weights.
    W1 = greedy.recognition[0].numpy()
    notebook.grid("W1", filter_images(W1), 10, "W1: the first RBM's 100 filters (greedy).")
    notebook.grid("W2", filter_images(W1 @ greedy.top.W.numpy()), 10,
                  "W2 in pixel space: W1 W2[:, j] for each unit j of the second hidden layer (greedy).")
    notebook.grid("R_finetuned", filter_images(tuned.recognition[0].numpy()), 10,
                  "R, the recognition weights of the first layer after up-down fine-tuning.")
    notebook.grid("Wprime_finetuned", filter_images(tuned.generative[0].numpy().T), 10,
                  "W', the generative weights of the first layer after fine-tuning (as filters: their transpose). "
                  "Greedy training left them equal to R; fine-tuning moved them apart.")

    # Reconstructions and top states.
    first = test.images[:20]
    notebook.grid("reconstructions", np.concatenate([first, rbm.reconstruct(first).numpy(),
                                                     greedy.reconstruct(first).numpy(),
                                                     tuned.reconstruct(first).numpy()]), 20,
                  "The first 20 test images and their reconstructions (probabilities) by the single RBM, the "
                  "greedy DBN and the fine-tuned DBN.", ["test images", "RBM", "greedy DBN", "fine-tuned DBN"])
    notebook.grid("top_states", np.concatenate([square_images(greedy.encode(first)["latent"].numpy()),
                                                square_images(tuned.encode(first)["latent"].numpy())]), 20,
                  "Their top-layer states p(h_top | v) as images: greedy DBN (top), fine-tuned (bottom).",
                  ["greedy", "fine-tuned"])

    # Samples from random top states: the same chains after few and many steps.
    chains = [model.sample(10, config.seed, steps=steps).numpy() for model in (greedy, tuned)
              for steps in SAMPLE_STEPS]
    rbm_chains = [rbm.sample(10, config.seed, steps=steps, start="hidden").numpy() for steps in SAMPLE_STEPS]
    notebook.grid("samples", np.concatenate(rbm_chains + chains), 10,
                  "Samples from random top (for the RBM: hidden) states after 10 and 1,000 Gibbs steps, the same "
                  "chains in each pair of rows.",
                  [f"{name}, {s} steps" for name in ("RBM", "greedy", "fine-tuned") for s in SAMPLE_STEPS])

    if config.transposed_variant:
        notebook.text("## The lab's variant: W2 started at W1 transposed")
        variant_config = DBNConfig(layers=(784, config.layers[1], 784), transpose_init=True, fine_tune_epochs=0)
        variant = train.train(
            "dbn", variant_config, train.data_config_for("dbn", limit=config.limit or None, seed=config.seed),
            train.TrainConfig(epochs=config.epochs, seed=config.seed, logdir=logdir, export=False,
                              name="dbn_experiments/transposed")).model
        top = variant.encode(first)["latent"].numpy()
        notebook.grid("transposed_top_states", np.concatenate([first, square_images(top),
                                                              variant.reconstruct(first).numpy()]), 20,
                      f"784-{config.layers[1]}-784 with W2 started at W1^T: the first 20 test images, their top "
                      "states p(h2 | v) (784 units, drawn as 28x28 images), and the reconstructions.",
                      ["test images", "top states", "reconstructions"])
        pixel_space = variant.recognition[0].numpy() @ variant.top.W.numpy()  # [784 pixels, 784 top units]
        notebook.grid("transposed_W2", filter_images(pixel_space[:, :100]), 10,
                      "The variant's W2 in pixel space after training, as W1 W2 would be drawn: each of the 784 top "
                      "units through W1 (first 100 shown).")
    print(f"Wrote {notebook.out}/README.md and {len(notebook.figures)} figures", flush=True)
    return notebook
