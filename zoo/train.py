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
import typing
from dataclasses import dataclass

import keras
import tensorflow as tf

from zoo import callbacks, data, export, runs
from zoo.models import MODELS
from zoo.models.base import check_finite, global_dtype_policy

STRATEGIES = ("default", "mirrored", "multiworker")
KEEP = ("best", "last")
QUALITY_METRIC = "val_frechet_distance"  # what --keep best minimises


@dataclass
class TrainConfig:
    epochs: int = 30
    seed: int = 0  # fixes data order, initialisation and every random draw of training
    strategy: str = "default"
    logdir: str = "tensorboard_logs"
    export_dir: str = "exports"
    name: str | None = None  # export and TensorBoard folder name; default: the model's name
    run: str | None = None  # TensorBoard run name; default: seed<seed>, then seed<seed>-2, ...
    export: bool = True
    mixed_precision: bool = False  # float16 compute, float32 weights (models with MIXED_PRECISION; for GPUs)
    keep: str | None = None  # export the "best" epoch (lowest validation Fréchet distance) or the "last"; None: the
    #                          model's KEEP (best for the GANs)
    quality_every: int | None = None  # SampleQuality every N epochs (0: off); None: 1 when keeping the best, else 0
    quality_samples: int = 2000  # samples per SampleQuality measurement

    def resolved(self, model_class):
        """(keep, quality_every) with the model's defaults filled in."""
        keep = self.keep or model_class.KEEP
        every = self.quality_every if self.quality_every is not None else int(keep == "best")
        return keep, every


class Interrupted(Exception):
    """Ctrl-C during training; the message says where a rerun of the same command resumes."""


def check_train_config(model_name, train_config):
    """A ValueError naming the problem for settings that would fail late or write in the wrong place."""
    model_class = MODELS[model_name]
    if not 0 <= train_config.seed < 2 ** 31:
        raise ValueError(f"seed must be in 0..{2 ** 31 - 1} (it keys int32 stateless random ops), got "
                         f"{train_config.seed}")
    name = train_config.name
    if name is not None and not export.plain_name(name):
        raise ValueError(f"name {name!r} must be a folder name inside the output folders (no '..', not absolute, "
                         f"no part starting with '.'): exports go to {train_config.export_dir}/<name>/ and logs to "
                         f"{train_config.logdir}/<name>/")
    for flag, folder in (("--logdir", train_config.logdir), ("--export-dir", train_config.export_dir)):
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise ValueError(f"{flag} {folder} is a file, not a folder; give a folder (it is made if missing)")
    keep, quality_every = train_config.resolved(model_class)
    if keep not in KEEP:
        raise ValueError(f"keep must be one of {', '.join(KEEP)}, not {keep!r}")
    if (keep == "best" or quality_every) and "sample" not in model_class.SIGNATURES:
        raise ValueError(f"{model_name} does not sample, so it has no sample quality to measure or keep the best of; "
                         "drop --keep best and --quality-every")
    if keep == "best" and not quality_every:
        raise ValueError("--keep best chooses the epoch by its validation Fréchet distance: give --quality-every N "
                         "(N > 0), or --keep last")
    if quality_every < 0 or train_config.quality_samples < 2:
        raise ValueError(f"quality_every must be >= 0 and quality_samples >= 2, got {quality_every} and "
                         f"{train_config.quality_samples}")
    if train_config.mixed_precision and not model_class.MIXED_PRECISION:
        raise ValueError(f"{model_name} does not train in mixed precision; drop --mixed-precision (models that do: "
                         f"{', '.join(n for n, c in MODELS.items() if c.MIXED_PRECISION)})")


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

    Small models spend most of a step in Python and dispatch: running up to 10 steps per compiled call makes the
    standard VAE about 1.4x faster on a CPU, and XLA (on a GPU, or on a CPU where the model says it helps) as much
    again. The step count divides steps_per_epoch so every epoch ends on its own data. Under several replicas
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

    The phases: find the run folder (a new one, or the unfinished run of the same command, to resume) and lock it;
    build the model; for layer-wise models (the DBN) fit each layer on its own, then export the greedy model; fit
    (from the last checkpoint); export; mark the run finished; delete its checkpoints."""
    train_config = train_config or TrainConfig()
    model_class = MODELS[model_name]
    check_train_config(model_name, train_config)
    model_config = model_config or model_class.Config()
    data_config = dataclasses.replace(data_config or data_config_for(model_name, model_config),
                                      seed=train_config.seed)
    for key, wanted in model_class.data_settings(model_config).items():
        if key in ("image_size", "pixel_range", "enlarge") and getattr(data_config, key) != wanted:  # the model's
            raise ValueError(f"{model_name} trains on images with {key}={wanted}, but the data config has "
                             f"{getattr(data_config, key)}; make it with zoo.train.data_config_for")
    name = train_config.name or model_name
    keras.utils.set_random_seed(train_config.seed)
    strategy = strategy or make_strategy(train_config.strategy)

    identity = {"model": model_name, "config": dataclasses.asdict(model_config),
                "data": dataclasses.asdict(data_config)}
    settings = dataclasses.asdict(train_config)
    defaults = {"config": field_defaults(model_config), "data": field_defaults(data_config)}
    run_dir, recorded = runs.find_run(train_config.logdir, name, train_config.run, train_config.seed, identity,
                                      settings, defaults)
    # Under MultiWorkerMirroredStrategy every worker runs this function, and saving takes every worker (reading
    # a metric's variable is a collective op). Only the chief writes the run folder and the exports; the others
    # write theirs into a folder of their own, deleted at the end, and resume from the chief's run folder.
    chief = strategy.extended.should_checkpoint
    own_dir = run_dir if chief else worker_dir(run_dir, strategy)
    export_dir = train_config.export_dir if chief else os.path.join(own_dir, "exports")
    os.makedirs(own_dir, exist_ok=True)
    with runs.run_lock(own_dir), remove_after(None if chief else own_dir):  # one process per run folder
        record = {"identity": identity, "train": settings,
                  "run_id": recorded["run_id"] if recorded and recorded.get("run_id") else runs.new_run_id()}
        runs.write_json(os.path.join(own_dir, "run.json"), record)
        pipelines = data.datasets(data_config)
        splits = pipelines.splits
        layer_wise = hasattr(model_class, "pretrain")
        epochs = model_config.fine_tune_epochs if layer_wise else train_config.epochs
        verbose = verbose if verbose is not None else callbacks.progress_verbosity()
        model = build_model(model_class, model_config, train_config, strategy, pipelines.steps_per_epoch, epochs)

        devices = ", ".join(d.name for d in tf.config.list_logical_devices("GPU")) or "CPU"
        print(f"Training {model_name} on {len(splits.train)} {data_config.dataset} images ({splits.source}) on "
              f"{devices}, {strategy.num_replicas_in_sync} replica(s); TensorBoard run {run_dir}", flush=True)

        def card(history, session_seconds, stage=None, layers=None):
            extra = {"stage": stage, "layers": layers}  # layer-wise models only
            return {
                "kind": model_name,
                **{k: v for k, v in extra.items() if v},
                "config": dataclasses.asdict(model_config),
                "data": dict(dataclasses.asdict(data_config), source_used=splits.source,
                             train_images=len(splits.train)),
                "seed": train_config.seed,
                "mixed_precision": train_config.mixed_precision,
                "epochs": train_config.epochs,
                "steps": int(model.optimizer.iterations.numpy()),
                "train_seconds": round(run_seconds(history, layers, session_seconds), 1),
                "final_metrics": {k: float(v[-1]) for k, v in history.items() if v},
                **({"kept": kept} if kept and stage != "greedy" else {}),  # --keep best: which epoch
                "tensorboard_run": run_dir,
                "run_id": record["run_id"],  # how a resumed run finds the export it made before a crash
            }

        started = time.time()
        greedy_path, stage_metrics, kept = None, {}, None
        if layer_wise:
            def fit_stage(stage, stage_model, transform):
                stage_metrics[stage] = fit_layer(stage_model, transform, os.path.join(own_dir, stage), data_config,
                                                 train_config.epochs, strategy, verbose,
                                                 restore_from=os.path.join(run_dir, stage))

            print(f"Pretraining {model_name} layer by layer, {train_config.epochs} epochs each", flush=True)
            with strategy.scope():
                model.pretrain(fit_stage)
            if train_config.export:
                greedy_path = export_once(model, export_dir, f"{name}_greedy", "greedy", record["run_id"],
                                          lambda: card({}, time.time() - started, "greedy", stage_metrics),
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
            export_path = export_once(model, export_dir, final_name, stage, record["run_id"],
                                      lambda: card(history, seconds, stage, stage_metrics), announce=chief)
        runs.fault("before-finish-mark")
        runs.write_json(os.path.join(own_dir, "run.json"), dict(record, finished=True))
        runs.fault("after-finish-mark")
        runs.remove_checkpoints(own_dir)
        if not chief:  # its export was only the other half of the chief's
            export_path = greedy_path = None
        return Result(model, history, run_dir, export_path or greedy_path, greedy_path)


def field_defaults(config):
    """{field: default} of a config dataclass's fields that have a default."""
    defaults = {}
    for field in dataclasses.fields(config):
        if field.default is not dataclasses.MISSING:
            defaults[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            defaults[field.name] = field.default_factory()
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
    own = model.layer_callbacks(pipelines.splits.train.images, transform) if hasattr(model, "layer_callbacks") else []
    stage_callbacks = own + [
        callbacks.StopOnNaN(checkpoint.folder),
        keras.callbacks.TensorBoard(stage_dir, histogram_freq=1, write_graph=False), checkpoint]
    history = fit_from_checkpoint(model, pipelines, data_config, epochs, stage_callbacks, verbose,
                                  stage=os.path.basename(stage_dir), transform=transform)
    return {**{k: float(v[-1]) for k, v in history.items() if v}, "seconds": run_seconds(history, None, math.nan)}


# ---------------------------------------------------------------------------------------------------------------
# Command line: common flags, then each model's config fields as flags.


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a positive integer")
    return value


def finite_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return value


def number_tuple(kind):
    """An argparse type: "N,N,..." -> a tuple of `kind`: positive ints or floats, or (kind str) names."""
    def parse(text):
        try:
            values = tuple(kind(part.strip()) for part in text.split(","))
            if kind is float and not all(math.isfinite(v) for v in values):
                raise ValueError
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of "
                                             f"{'integers' if kind is int else 'numbers'}, e.g. 256,256") from None
        if kind is str:
            if not all(values):
                raise argparse.ArgumentTypeError(f"{text!r}: an empty name in the list")
        elif not values or min(values) <= 0:
            raise argparse.ArgumentTypeError(f"{text!r}: values must be positive")
        return values
    parse.__name__ = f"{kind.__name__} list"
    return parse


def add_common_flags(parser):
    group = parser.add_argument_group("common to every model")
    group.add_argument("--epochs", type=positive_int, default=TrainConfig.epochs)
    group.add_argument("--batch-size", type=positive_int, default=data.DataConfig.batch_size,
                       help="global batch size (default: %(default)s)")
    group.add_argument("--limit", type=positive_int, help="train on the first N training images only")
    group.add_argument("--validation-size", type=int, default=data.DataConfig.validation_size,
                       help="images held out from the end of the training set (default: %(default)s)")
    group.add_argument("--seed", type=int, default=TrainConfig.seed, help="fixes the whole run (default: 0)")
    group.add_argument("--dataset", choices=data.DATASETS, default="mnist")
    group.add_argument("--source", choices=data.SOURCES, default="auto",
                       help="auto: --data-dir if given, else prepared TFDS, else the packaged MNIST")
    group.add_argument("--data-dir", help="folder with the four IDX files (optionally .gz) or a Keras mnist.npz; "
                                          "with --source tfds, the TFDS data_dir")
    group.add_argument("--binarize", choices=data.BINARIZATIONS, help="default: the model's own choice")
    group.add_argument("--strategy", choices=STRATEGIES, default="default",
                       help="tf.distribute strategy (default: one device, a GPU if there is one)")
    group.add_argument("--logdir", default=TrainConfig.logdir, help="TensorBoard root (default: %(default)s)")
    group.add_argument("--export-dir", default=TrainConfig.export_dir, help="exports root (default: %(default)s)")
    group.add_argument("--name", help="export and TensorBoard name (default: the model's name, or MODEL_PRESET)")
    group.add_argument("--run", help="TensorBoard run name (default: seed<SEED>); rerunning resumes it")
    group.add_argument("--no-export", dest="export", action="store_false", help="train without exporting")
    group.add_argument("--mixed-precision", action="store_true",
                       help="float16 compute with float32 weights, for GPUs (the GANs)")
    group.add_argument("--keep", choices=KEEP, help="export the best epoch (lowest validation Fréchet distance of "
                       "samples) or the last (default: best for the GANs, last for the others)")
    group.add_argument("--quality-every", type=int, metavar="N", help="measure sample quality (val_frechet_distance, "
                       "val_classifier_score, val_kid) every N epochs; 0: never (default: 1 with --keep best)")
    group.add_argument("--quality-samples", type=positive_int, default=TrainConfig.quality_samples,
                       help="samples per sample-quality measurement (default: %(default)s)")


def add_dataclass_flags(group, config_class):
    """One flag per field of a config dataclass: --field-name, typed as the field, its help from metadata."""
    hints = typing.get_type_hints(config_class)
    for f in dataclasses.fields(config_class):
        kind = hints[f.name]
        flag = "--" + f.name.replace("_", "-")
        default = ",".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
        help_text = f"{f.metadata.get('help', '')} (default: {default})"
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif typing.get_origin(kind) is tuple:
            group.add_argument(flag, type=number_tuple(typing.get_args(kind)[0]), default=None, metavar="N,N,...",
                               help=help_text)
        else:
            group.add_argument(flag, type=finite_float if kind is float else kind, default=None, help=help_text)


def add_config_flags(parser, model_class):
    group = parser.add_argument_group(f"{model_class.__name__} configuration")
    if getattr(model_class, "PRESETS", None):
        group.add_argument("--preset", choices=sorted(model_class.PRESETS),
                           help="a configuration from the assignments or the literature; explicit flags override it")
    add_dataclass_flags(group, model_class.Config)


def build_parser():
    summaries = {name: (cls.__doc__ or sys.modules[cls.__module__].__doc__ or "").strip().splitlines()[0]
                 for name, cls in MODELS.items()}
    parser = argparse.ArgumentParser(
        prog="python -m zoo.train", description=__doc__.strip().splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="models:\n" + "\n".join(f"  {name:10s} {text}" for name, text in summaries.items())
        + "\n\nrun `python -m zoo.train MODEL --help` for a model's flags")
    models = parser.add_subparsers(dest="model", metavar="MODEL", required=True,
                                   help=f"one of: {', '.join(MODELS)}")
    for name, model_class in MODELS.items():
        sub = models.add_parser(name, help=summaries[name], description=summaries[name])
        add_common_flags(sub)
        add_config_flags(sub, model_class)
    return parser


def configs_from_args(args):
    model_class = MODELS[args.model]
    preset = getattr(args, "preset", None)
    settings = dict(model_class.PRESETS[preset]) if preset else {}
    for f in dataclasses.fields(model_class.Config):
        if getattr(args, f.name) is not None:
            settings[f.name] = getattr(args, f.name)
    model_config = check_finite(model_class.Config(**settings))
    data_config = data_config_for(
        args.model, model_config, dataset=args.dataset, source=args.source, data_dir=args.data_dir,
        batch_size=args.batch_size, limit=args.limit, validation_size=args.validation_size, binarize=args.binarize,
        seed=args.seed)
    train_config = TrainConfig(
        epochs=args.epochs, seed=args.seed, strategy=args.strategy, logdir=args.logdir, export_dir=args.export_dir,
        name=args.name or (f"{args.model}_{preset}" if preset else args.model), run=args.run, export=args.export,
        mixed_precision=args.mixed_precision, keep=args.keep, quality_every=args.quality_every,
        quality_samples=args.quality_samples)
    check_train_config(args.model, train_config)
    return model_config, data_config, train_config


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    prefix = f"{parser.prog} {args.model}: error:"
    try:
        model_config, data_config, train_config = configs_from_args(args)
    except ValueError as error:  # a flag value the config refuses: bad input, exit 2 like argparse
        parser.exit(2, f"{prefix} {error}\n")
    try:
        train(args.model, model_config, data_config, train_config)
    except data.DataError as error:  # a missing or corrupt data file: say what and how to fix it
        parser.exit(2, f"{prefix} {error}\n")
    except callbacks.TrainingDiverged as error:
        parser.exit(1, f"{prefix} {error}\n")
    except (runs.RunLocked, runs.RunMismatch) as error:
        parser.exit(2, f"{prefix} {error}\n")
    except (Interrupted, KeyboardInterrupt) as interrupted:  # Ctrl-C: one line, not a traceback
        parser.exit(130, f"\n{parser.prog} {args.model}: {interrupted or 'interrupted'}\n")


if __name__ == "__main__":
    main()
