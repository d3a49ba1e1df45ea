"""Train any model of the zoo with model.fit, log it to TensorBoard, and export it.

    python -m zoo.train --help            the models
    python -m zoo.train vae --help        a model's flags: the common ones, then its config's
    python -m zoo.train vae               the standard VAE (784-256-2-256-784), 30 epochs, exported to exports/vae/

Rerunning an interrupted command resumes it from its last epoch's checkpoint. `--batch-size` is the global batch:
under `--strategy mirrored` it is split across the replicas.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field

import keras
import tensorflow as tf

from zoo import callbacks, cli, data, export, pretrained, runs
from zoo.models import MODELS
from zoo.models.base import check_finite, global_dtype_policy

STRATEGIES = ("default", "mirrored", "multiworker")
KEEP = ("best", "last")
QUALITY_METRIC = "val_frechet_distance"  # what --keep best minimises


@dataclass
class TrainConfig:
    """How a run trains and where it writes. Every field is a flag of `python -m zoo.train MODEL`."""

    epochs: int = field(default=30, metadata={"help": "epochs (of each pretraining stage, for the DBN and DAE)"})
    seed: int = field(default=0, metadata={"help": "fixes data order, initialisation and every random draw"})
    strategy: str = field(default="default", metadata={
        "help": "tf.distribute strategy: default (one device, a GPU if there is one), mirrored (every local GPU) or "
                "multiworker (the cluster of TF_CONFIG)", "choices": STRATEGIES})
    logdir: str = field(default="tensorboard_logs", metadata={"help": "TensorBoard root, and the run folders"})
    export_dir: str = field(default="exports", metadata={"help": "exports root"})
    name: str | None = field(default=None, metadata={
        "help": "export and TensorBoard folder name", "default": "the model's name, or MODEL_PRESET"})
    run: str | None = field(default=None, metadata={
        "help": "TensorBoard run name; rerunning resumes it", "default": "seed<SEED>"})
    export: bool = field(default=True, metadata={"help": "export the trained model"})
    mixed_precision: bool = field(default=False, metadata={
        "help": "float16 compute with float32 weights, for GPUs (the GANs)"})
    keep: str | None = field(default=None, metadata={
        "help": "export the best epoch (lowest validation Fréchet distance of samples) or the last", "choices": KEEP,
        "default": "best for the GANs, last for the others"})
    quality_every: int | None = field(default=None, metadata={
        "help": "measure sample quality (val_frechet_distance, val_classifier_score, val_kid) every N epochs; 0: "
                "never", "default": "1 with --keep best"})
    quality_samples: int = field(default=2000, metadata={"help": "samples per sample-quality measurement"})
    init_from: str | None = field(default=None, metadata={
        "help": "fine-tune: start from the weights of this export folder or pretrained entry (python -m "
                "zoo.pretrained list) instead of a fresh initialisation; same model and architecture; the optimizer "
                "starts afresh; a DBN or DAE skips its greedy stages and runs its fine-tuning",
        "default": "a fresh initialisation"})

    def __post_init__(self):
        if self.epochs <= 0:
            raise ValueError(f"epochs must be positive, got {self.epochs}")
        if not 0 <= self.seed < 2 ** 31:
            raise ValueError(f"seed must be in 0..{2 ** 31 - 1} (it keys int32 stateless random ops), got {self.seed}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, not {self.strategy!r}")
        for flag, value in (("name", self.name), ("run", self.run)):
            if value is not None and not export.plain_name(value):
                raise ValueError(f"{flag} {value!r} must be a folder name inside the output folders (no '..', not "
                                 f"absolute, no part starting with '.'): logs go to {self.logdir}/<name>/<run>/ and "
                                 f"exports to {self.export_dir}/<name>/")
        if self.keep is not None and self.keep not in KEEP:
            raise ValueError(f"keep must be one of {', '.join(KEEP)}, not {self.keep!r}")
        if self.quality_every is not None and self.quality_every < 0:
            raise ValueError(f"quality_every must be >= 0 (0: never), got {self.quality_every}")
        if self.quality_samples < 2:
            raise ValueError(f"quality_samples must be at least 2, got {self.quality_samples}")

    def resolved(self, model_class):
        """(keep, quality_every) with the model's defaults filled in."""
        keep = self.keep or model_class.KEEP
        every = self.quality_every if self.quality_every is not None else int(keep == "best")
        return keep, every


class Interrupted(Exception):
    """Ctrl-C during training; the message says where a rerun of the same command resumes."""


def check_train_config(model_name, train_config):
    """A ValueError naming the problem for settings that do not suit this model or would write in the wrong place."""
    model_class = MODELS[model_name]
    for flag, folder in (("--logdir", train_config.logdir), ("--export-dir", train_config.export_dir)):
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise ValueError(f"{flag} {folder} is a file, not a folder; give a folder (it is made if missing)")
    keep, quality_every = train_config.resolved(model_class)
    if (keep == "best" or quality_every) and "sample" not in model_class.SIGNATURES:
        raise ValueError(f"{model_name} does not sample, so it has no sample quality to measure or keep the best of; "
                         "drop --keep best and --quality-every")
    if keep == "best" and not quality_every:
        raise ValueError("--keep best chooses the epoch by its validation Fréchet distance: give --quality-every N "
                         "(N > 0), or --keep last")
    if train_config.mixed_precision and not model_class.MIXED_PRECISION:
        raise ValueError(f"{model_name} does not train in mixed precision; drop --mixed-precision (models that do: "
                         f"{', '.join(n for n, c in MODELS.items() if c.MIXED_PRECISION)})")
    if train_config.init_from is not None:
        kind = start_point(train_config.init_from)["kind"]
        if kind != model_name:
            own = [n for n in pretrained.list() if pretrained.card(n)["kind"] == model_name]
            raise ValueError(f"--init-from {train_config.init_from} is a {kind}, not a {model_name}; give an export "
                             f"or a pretrained entry of this model (entries: {', '.join(own) or 'none'})")


@dataclass
class Result:
    model: keras.Model
    history: dict  # every epoch of the run (of fine-tuning, for layer-wise models), resumed ones included
    run_dir: str
    export_path: str | None  # the final model's export
    greedy_export_path: str | None = None  # layer-wise models: the export made after pretraining


def make_strategy(name):
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()  # every local GPU, or the CPU
    if name == "multiworker":  # the cluster comes from the TF_CONFIG environment variable
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


def data_config_for(model_name, model_config=None, **settings):
    """The DataConfig a model wants (its data_settings under model_config), with the given settings on top."""
    model_class = MODELS[model_name]
    given = {k: v for k, v in settings.items() if v is not None}
    return data.DataConfig(**{**model_class.data_settings(model_config or model_class.Config()), **given})


def execution_settings(model_class, steps_per_epoch, replicas):
    """(steps_per_execution, jit_compile) for fit.

    Small models spend most of a step in Python and dispatch: running up to 10 steps per compiled call speeds them
    up markedly on a CPU, and XLA (on a GPU, or on a CPU where the model says it helps) more (docs/benchmarks.md).
    The step count divides steps_per_epoch so every epoch ends on its own data. Under several replicas
    both are off: Keras 3.15's multi-step loop and XLA's handling of variables on other devices both fail under
    MirroredStrategy.
    """
    if replicas > 1:
        return 1, False
    steps = max(n for n in range(1, 11) if steps_per_epoch % n == 0)
    return steps, bool(tf.config.list_logical_devices("GPU")) or model_class.XLA_ON_CPU


def train(model_name, model_config=None, data_config=None, train_config=None, extra_callbacks=(), verbose=None,
          strategy=None):
    """Train, log and (unless train_config.export is False) export one model; returns a Result.

    The phases: load the data and check that the output folders can be written; find the run folder (a new one,
    or the unfinished run of the same command, to resume) and lock it; build the model; for layer-wise models (DBN,
    DAE) fit each layer on its own, then export the greedy model (skipped when --init-from gives trained weights);
    fit (from the last checkpoint); export; mark the run finished; delete its checkpoints."""
    train_config = train_config or TrainConfig()
    model_class = MODELS[model_name]
    check_train_config(model_name, train_config)
    model_config = model_config or model_class.Config()
    # Labels are the model's to ask for: a conditional model trains on (image, label) pairs, the others on images.
    data_config = dataclasses.replace(data_config or data_config_for(model_name, model_config),
                                      seed=train_config.seed,
                                      labels=bool(model_class.data_settings(model_config).get("labels")))
    name = train_config.name or model_name
    keras.utils.set_random_seed(train_config.seed)
    strategy = strategy or make_strategy(train_config.strategy)
    pipelines = data.datasets(data_config)  # before the run folder: a missing data file leaves nothing behind
    start_weights = initial_weights(model_class, model_config, train_config.init_from)  # nor a misfit --init-from
    splits = pipelines.splits
    # Under MultiWorkerMirroredStrategy every worker runs this function, and saving takes every worker (reading
    # a metric's variable is a collective op). Only the chief writes the run folder and the exports; the others
    # write theirs into a folder of their own, deleted at the end, and resume from the chief's run folder.
    chief = strategy.extended.should_checkpoint
    if chief:  # a read-only or full disk is found now, not at the first checkpoint or after training
        runs.check_writable(train_config.logdir, "--logdir")
        if train_config.export:
            runs.check_writable(train_config.export_dir, "--export-dir")

    identity = {"model": model_name, "config": dataclasses.asdict(model_config),
                "data": dataclasses.asdict(data_config)}
    settings = dataclasses.asdict(train_config)
    defaults = {"config": field_defaults(model_config), "data": field_defaults(data_config)}
    run_dir, recorded = runs.find_run(train_config.logdir, name, train_config.run, train_config.seed, identity,
                                      settings, defaults)
    own_dir = run_dir if chief else worker_dir(run_dir, strategy)
    export_dir = train_config.export_dir if chief else os.path.join(own_dir, "exports")
    os.makedirs(own_dir, exist_ok=True)
    with runs.run_lock(own_dir), remove_after(None if chief else own_dir):  # one process per run folder
        record = {"identity": identity, "train": settings,
                  "run_id": recorded["run_id"] if recorded and recorded.get("run_id") else runs.new_run_id()}
        runs.write_json(os.path.join(own_dir, "run.json"), record, point="run-record")
        layer_wise = hasattr(model_class, "pretrain")
        greedy = layer_wise and start_weights is None  # started from trained weights, it fine-tunes them only
        epochs = model_config.fine_tune_epochs if layer_wise else train_config.epochs
        verbose = verbose if verbose is not None else cli.progress_verbosity()
        model = build_model(model_class, model_config, train_config, strategy, pipelines.steps_per_epoch, epochs)
        if start_weights is not None:  # a resumed run's checkpoint replaces them in fit_from_checkpoint
            model.load_serving_weights(start_weights)
        facts = run_facts(model_name, model_config, data_config, splits, train_config, run_dir, record["run_id"],
                          epochs=0 if layer_wise and not greedy else train_config.epochs)

        devices = ", ".join(d.name for d in tf.config.list_logical_devices("GPU")) or "CPU"
        print(f"Training {model_name} on {len(splits.train)} {data_config.dataset} images ({splits.source}) on "
              f"{devices}, {strategy.num_replicas_in_sync} replica(s); TensorBoard run {run_dir}", flush=True)

        if start_weights is not None:
            print(f"Starting from the weights of {train_config.init_from}"
                  + (" (no greedy stages: fine-tuning only)" if layer_wise else ""), flush=True)
        started = time.time()
        greedy_path, stage_metrics = None, {}
        if greedy:
            def fit_stage(stage, stage_model, transform):
                stage_metrics[stage] = fit_layer(stage_model, transform, os.path.join(own_dir, stage), data_config,
                                                 train_config.epochs, strategy, verbose,
                                                 restore_from=os.path.join(run_dir, stage))

            print(f"Pretraining {model_name} layer by layer, {train_config.epochs} epochs each", flush=True)
            with strategy.scope():
                model.pretrain(fit_stage)
            if train_config.export:
                greedy_path = export_once(
                    model, export_dir, f"{name}_greedy", "greedy", record["run_id"],
                    lambda: model_card(facts, model, {}, time.time() - started, "greedy", stage_metrics),
                    announce=chief)

        test_images = data.as_images(splits.test.images[:10])
        keep, quality_every = train_config.resolved(model_class)
        model_callbacks = model.training_callbacks(splits) + (
            [sample_quality(splits, quality_every, train_config)] if quality_every else [])
        fit_callbacks = callbacks.standard_callbacks(own_dir, test_images, seed=train_config.seed,
                                                     model_callbacks=model_callbacks,
                                                     keep_best=QUALITY_METRIC if keep == "best" else None,
                                                     restore_from=run_dir)
        history = fit_from_checkpoint(model, pipelines, data_config, epochs, fit_callbacks + list(extra_callbacks),
                                      verbose, stage="fine-tuning" if layer_wise else None)
        seconds = time.time() - started
        # The chief's checkpoints hold every epoch the run kept; a non-chief worker's export is discarded anyway.
        kept = keep_epoch(model, callbacks.checkpoint_of(fit_callbacks), history, keep) if chief else None

        export_path = None
        if train_config.export and (epochs > 0 or not layer_wise):
            final_name, stage = (f"{name}_finetuned", "fine-tuned") if layer_wise else (name, None)
            export_path = export_once(
                model, export_dir, final_name, stage, record["run_id"],
                lambda: model_card(facts, model, history, seconds, stage, stage_metrics, kept), announce=chief)
        runs.fault("before-finish-mark")
        runs.write_json(os.path.join(own_dir, "run.json"), dict(record, finished=True), point="run-record")
        runs.fault("after-finish-mark")
        runs.remove_checkpoints(own_dir)
        if not chief:  # its export was only the other half of the chief's
            export_path = greedy_path = None
        return Result(model, history, run_dir, export_path or greedy_path, greedy_path)


def run_facts(model_name, model_config, data_config, splits, train_config, run_dir, run_id, epochs):
    """What every export of a run says of it: the model, its config, the data, the seed and where its logs are.
    `epochs`: the run's (a layer-wise model's: of each greedy stage, 0 when it skipped them)."""
    return {
        "kind": model_name,
        "config": dataclasses.asdict(model_config),
        "data": dict(dataclasses.asdict(data_config), source_used=splits.source, train_images=len(splits.train)),
        "seed": train_config.seed,
        "mixed_precision": train_config.mixed_precision,
        "epochs": epochs,
        "tensorboard_run": run_dir,
        "run_id": run_id,  # how a resumed run finds the export it made before a crash
        **({"init_from": start_point(train_config.init_from)["record"]} if train_config.init_from else {}),
    }


def model_card(facts, model, history, session_seconds, stage=None, layers=None, kept=None):
    """An export's model card: the run's facts, the update count, the training time over every session that trained
    it, the final metrics; for layer-wise models the stage and each layer's figures, with --keep best the epoch kept."""
    extra = {"stage": stage, "layers": layers, "kept": kept}
    return {**facts, **{k: v for k, v in extra.items() if v},
            "steps": int(model.optimizer.iterations.numpy()),
            "train_seconds": round(run_seconds(history, layers, session_seconds), 1),
            "final_metrics": {k: float(v[-1]) for k, v in history.items() if v}}


def field_defaults(config):
    """{field: default} of a config dataclass's fields that have a default."""
    defaults = {}
    for f in dataclasses.fields(config):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
    return defaults


def run_seconds(history, stage_metrics, session_seconds):
    """The run's training time: the wall time of its epochs (pretraining stages and fit) summed over every session
    that ran them, so a resumed run counts the sessions before it. A run whose history holds epochs logged without
    their seconds (by an older zoo) counts the last session's time, session_seconds."""
    seconds = list(history.get("epoch_seconds", []))
    seconds += [metrics.get("seconds", math.nan) for metrics in (stage_metrics or {}).values()]
    return sum(seconds) if seconds and all(math.isfinite(s) for s in seconds) else session_seconds


def worker_dir(run_dir, strategy):
    """A non-chief worker's own folder, emptied: the same folder for the same run and task at every launch, so a
    relaunch clears what a killed worker left behind (no other process can be this task: it holds the task's port)."""
    resolver = strategy.cluster_resolver
    run_key = hashlib.sha1(os.path.abspath(run_dir).encode()).hexdigest()[:12]
    folder = os.path.join(tempfile.gettempdir(), f"zoo-worker-{run_key}-{resolver.task_type}{resolver.task_id}")
    shutil.rmtree(folder, ignore_errors=True)
    return folder


@contextlib.contextmanager
def remove_after(folder):
    """Delete folder (if not None) when the block ends, however it ends."""
    try:
        yield
    finally:
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


def sample_quality(splits, every, train_config):
    """The SampleQuality callback of a run: against the validation images (the test images only if there are none,
    which then makes --keep best choose on the test set: it says so)."""
    reference = splits.validation if len(splits.validation) else splits.test
    if not len(splits.validation):
        print("Sample quality is measured against the test images: this run holds out no validation images "
              "(--validation-size 0)", flush=True)
    return callbacks.SampleQuality(data.as_images(reference.images), every=every,
                                   num_samples=train_config.quality_samples, seed=train_config.seed)


def keep_epoch(model, checkpoint, history, keep):
    """With keep "best", load the checkpoint of the epoch with the lowest validation Fréchet distance into model and
    return what the model card records of it: {"rule", "epoch", and that epoch's figures}. None for "last"."""
    if keep != "best":
        return None
    best = checkpoint.best_epoch()
    if best is None:  # no epoch was measured (e.g. a layer-wise model with no fine-tuning epochs)
        return None
    epochs = len(next(iter(history.values()), []))
    if best != epochs:
        checkpoint.load_epoch(model, best)
    figures = {k: float(v[best - 1]) for k, v in history.items() if k.startswith("val_")}
    print(f"Keeping epoch {best} of {epochs}: {QUALITY_METRIC} {figures[QUALITY_METRIC]:.2f} (--keep best)",
          flush=True)
    return {"rule": "best", "metric": QUALITY_METRIC, "epoch": best, "of_epochs": epochs, "figures": figures}


def start_point(source):
    """What --init-from names: an export folder (exports/<name>/<version>) or a pretrained entry's name. A dict of
    its kind, its config, its model's loader and what the new run's card records of it; a PretrainedError if it is
    neither."""
    if os.path.isdir(source):
        try:
            recorded = export.read_card(source)
        except (OSError, ValueError):
            raise pretrained.PretrainedError(f"--init-from {source} is a folder but not an export (no readable "
                                             f"{export.CARD}); give exports/<name>/<version>") from None
        return {"kind": recorded["kind"], "config": recorded["config"],
                "load": lambda: export.load_model(source, compile=False),
                "record": {"export": source, "run_id": recorded.get("run_id"), "steps": recorded.get("steps")}}
    about = pretrained.card(pretrained.check_name(source))
    return {"kind": about["kind"], "config": about["config"], "load": lambda: pretrained.load(source),
            "record": {"entry": source, "sha256": pretrained.REGISTRY[source],
                       "command": about.get("training", {}).get("command")}}


def initial_weights(model_class, model_config, source):
    """The weights a run of --init-from `source` starts at (NumPy, in serving_weights() order), once they fit a
    model of model_config: a PretrainedError naming the difference otherwise. None without a source. A layer-wise
    model (DBN, DAE) started this way skips its greedy stages: its run is the fine-tuning of these weights."""
    if source is None:
        return None
    start = start_point(source)
    if hasattr(model_class, "pretrain") and model_config.fine_tune_epochs == 0:
        raise pretrained.PretrainedError(
            f"--init-from {source}: a {model_class.KIND} started from trained weights skips its greedy stages, so "
            "the run is its fine-tuning alone; give --fine-tune-epochs N > 0")
    probe = model_class(model_config)
    probe.build_for_images()
    if len(probe.serving_weights()) != len(probe.weights):
        raise pretrained.PretrainedError(
            f"--init-from {source}: a {type(probe).__name__} serves from part of its weights (its averaged "
            "generator), and a run needs all of them; train from scratch")
    arrays = [v.numpy() for v in start["load"]().serving_weights()]
    try:
        probe.load_serving_weights(arrays)
    except ValueError:
        raise pretrained.PretrainedError(
            f"--init-from {source}: its architecture differs from this run's; give its architecture flags "
            f"(its config: {start['config']})") from None
    return arrays


def build_model(model_class, model_config, train_config, strategy, steps_per_epoch, epochs):
    """The model, compiled for fit (multi-step execution, XLA where it helps) and built, under the strategy."""
    steps_per_execution, jit_compile = execution_settings(model_class, steps_per_epoch, strategy.num_replicas_in_sync)
    with global_dtype_policy("mixed_float16" if train_config.mixed_precision else None), strategy.scope():
        model = model_class(model_config, seed=train_config.seed)
        model.compile(steps_per_execution=steps_per_execution, jit_compile=jit_compile,
                      total_steps=max(1, epochs) * steps_per_epoch)
        model.build_for_images()
    return model


def fit_from_checkpoint(model, pipelines, data_config, epochs, fit_callbacks, verbose, stage=None, transform=None):
    """Fit model for `epochs` epochs, starting after the epoch of the last checkpoint of the runs.Checkpoint among
    fit_callbacks (restored here), on the data an uninterrupted run would see from there; return the history of
    every epoch of the run. transform(images, batch_index), if given, maps the image batches (a layer-wise model's
    upper layers)."""
    checkpoint = callbacks.checkpoint_of(fit_callbacks)
    restored = checkpoint.restore(model)
    check_workers_agree(model.distribute_strategy, restored, checkpoint.restore_dir)
    if restored:
        print(f"{checkpoint.run_dir}: resuming after epoch {restored} of {epochs} (its checkpoint)", flush=True)
    if restored < epochs:
        train_data = data.make_dataset(pipelines.splits.train, data_config, training=True, first_epoch=restored)
        validation = pipelines.validation
        if transform is not None:  # batch indices continue where the interrupted run stopped
            train_data = train_data.enumerate(restored * pipelines.steps_per_epoch).map(lambda i, x: transform(x, i))
            validation = validation and validation.enumerate().map(lambda i, x: transform(x, i))
        with interruption_message(checkpoint, epochs, stage):
            model.fit(train_data, steps_per_epoch=pipelines.steps_per_epoch, validation_data=validation,
                      initial_epoch=restored, epochs=epochs, shuffle=False, callbacks=fit_callbacks, verbose=verbose)
    return checkpoint.history_dict()


def check_workers_agree(strategy, epoch, run_dir):
    """Under MultiWorkerMirroredStrategy: RunMismatch unless every worker restored the same epoch (a worker that
    cannot see the chief's run folder would start over while the others resume, and the collectives would stall)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    epochs = strategy.gather(strategy.run(lambda: tf.constant([epoch])), axis=0).numpy()
    if epochs.min() != epochs.max():
        raise runs.RunMismatch(
            f"the workers restored different epochs ({epochs.min()} to {epochs.max()}) of {run_dir}: every worker "
            "resumes from the chief's run folder, so --logdir must be storage that all workers see (a shared file "
            "system)")


def export_once(model, export_dir, name, stage, run_id, card, announce=True):
    """Export model to export_dir/name unless this run (run_id) already did, before a crash; return the path.
    card: a function making the model card, called only if an export is made. announce: say where it went (not
    on a non-chief worker, whose export goes to a temporary folder and is deleted)."""
    found = export.find_export(export_dir, name, run_id)
    if found:
        if announce:
            print(f"Found this run's {stage or 'final'} export from before the interruption: {found}", flush=True)
        return found
    path = export.export_model(model, export_dir, name, card())
    if announce:
        print(f"Exported {f'the {stage} model ' if stage else ''}to {path}", flush=True)
    return path


@contextlib.contextmanager
def interruption_message(checkpoint, epochs, stage=None):
    """Ctrl-C inside: Interrupted, saying after which epoch a rerun resumes (the last checkpointed one)."""
    try:
        yield
    except KeyboardInterrupt:
        where = f" of {stage}" if stage else ""
        raise Interrupted(f"interrupted after epoch {checkpoint.latest_epoch()} of {epochs}{where}; rerun the same "
                          "command to resume") from None


def fit_layer(model, transform, stage_dir, data_config, epochs, strategy, verbose, restore_from=None):
    """One pretraining stage of a layer-wise model: a fit of its own on the images mapped by
    transform(images, batch_index), with its own TensorBoard folder and checkpoint (a finished stage's last
    checkpoint is loaded, not retrained, when an interrupted run resumes; from restore_from if given, a
    non-chief worker's). Returns its final metrics and `seconds`, its epochs' wall time over every session."""
    pipelines = data.datasets(data_config)
    steps_per_execution, jit_compile = execution_settings(type(model), pipelines.steps_per_epoch,
                                                            strategy.num_replicas_in_sync)
    model.compile(steps_per_execution=steps_per_execution, jit_compile=jit_compile,
                  total_steps=epochs * pipelines.steps_per_epoch)
    os.makedirs(stage_dir, exist_ok=True)
    checkpoint = runs.Checkpoint(stage_dir, restore_from=restore_from)
    # A stage model's own callbacks (a centered RBM's offsets from the mean of its data), given that data.
    own = model.layer_callbacks(pipelines.splits.train, transform) if hasattr(model, "layer_callbacks") else []
    stage_callbacks = own + [
        callbacks.StopOnNaN(checkpoint.folder),
        keras.callbacks.TensorBoard(stage_dir, histogram_freq=1, write_graph=False), checkpoint]
    history = fit_from_checkpoint(model, pipelines, data_config, epochs, stage_callbacks, verbose,
                                  stage=os.path.basename(stage_dir), transform=transform)
    return {**{k: float(v[-1]) for k, v in history.items() if v}, "seconds": run_seconds(history, None, math.nan)}


# ---------------------------------------------------------------------------------------------------------------
# Command line: the flags of TrainConfig, of DataConfig and of the model's config (zoo.cli), then train.


def build_parser():
    summaries = {name: (cls.__doc__ or sys.modules[cls.__module__].__doc__ or "").strip().splitlines()[0]
                 for name, cls in MODELS.items()}
    parser = cli.parser(
        "python -m zoo.train", __doc__.strip().splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="models:\n" + "\n".join(f"  {name:10s} {text}" for name, text in summaries.items())
        + "\n\nrun `python -m zoo.train MODEL --help` for a model's flags")
    models = parser.add_subparsers(dest="model", metavar="MODEL", required=True,
                                   help=f"one of: {', '.join(MODELS)}")
    for name, model_class in MODELS.items():
        sub = cli.subparser(models, name, help=summaries[name], description=summaries[name])
        cli.add_dataclass_flags(sub.add_argument_group("training"), TrainConfig)
        cli.add_dataclass_flags(sub.add_argument_group("data"), data.DataConfig)
        group = sub.add_argument_group(f"{model_class.__name__} configuration")
        if getattr(model_class, "PRESETS", None):
            group.add_argument("--preset", choices=sorted(model_class.PRESETS), help="a configuration from the "
                               "assignments or the literature; explicit flags override it")
        cli.add_dataclass_flags(group, model_class.Config)
    return parser


def configs_from_args(args):
    """(model config, data config, train config) from parsed flags: a flag given overrides the preset, the preset
    the config's defaults. Each config checks its values (ValueError naming the field)."""
    model_class = MODELS[args.model]
    preset = getattr(args, "preset", None)
    model_config = check_finite(model_class.Config(**{**(model_class.PRESETS[preset] if preset else {}),
                                                      **cli.flag_values(args, model_class.Config)}))
    train_settings = cli.flag_values(args, TrainConfig)
    train_settings.setdefault("name", f"{args.model}_{preset}" if preset else args.model)
    train_config = TrainConfig(**train_settings)
    data_config = data_config_for(args.model, model_config, **cli.flag_values(args, data.DataConfig),
                                  seed=train_config.seed)
    check_train_config(args.model, train_config)
    return model_config, data_config, train_config


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    command = argparse.ArgumentParser(prog=f"{parser.prog} {args.model}")  # for its error lines
    try:
        model_config, data_config, train_config = configs_from_args(args)
    except ValueError as error:  # a flag value a config refuses: bad input, exit 2 like argparse
        cli.fail(command, error)
    try:
        train(args.model, model_config, data_config, train_config)
    except (data.DataError, runs.StorageError, runs.RunLocked, runs.RunMismatch, pretrained.PretrainedError) as error:
        cli.fail(command, error)  # the data, the disk, another run or --init-from: say what and how to fix it
    except runs.TrainingDiverged as error:
        cli.fail(command, error, status=1)
    except (Interrupted, KeyboardInterrupt) as interrupted:  # Ctrl-C: one line, not a traceback
        parser.exit(130, f"\n{parser.prog} {args.model}: {interrupted or 'interrupted'}\n")


if __name__ == "__main__":
    main()
