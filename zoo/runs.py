"""Run folders: what a training run keeps on disk so that, however it is interrupted (Ctrl-C, kill -9, a power cut),
rerunning the same command resumes it and ends with the model an uninterrupted run makes, exported once.

    <logdir>/<name>/<run>/
        run.json            what the run is (model, config, data, training settings), its id, and `finished`
        .lock               locked (fcntl.flock) by the process training the run
        history.json        the logs of every epoch done
        checkpoint/         epoch-000N.weights.h5: the weights and optimizer state after epoch N, the last two kept
                            (and, with --keep best, the best epoch's, by the history's figure)
        layer1/, ...        layer-wise models: each pretraining stage is a run folder of its own (same layout)

Every file is written under a temporary name and renamed into place (a rename is atomic), so a file that exists is
complete, and the epoch a checkpoint holds is in its name: the resume point is the epoch of the checkpoint that was
actually restored, never a separate record that a kill can leave behind. The history is written before the
checkpoint and cut to the restored epoch. The checkpoints are deleted only after the export is written and the run
is marked finished; an export carries the run's id, so a run killed after exporting finds its export and does not
export again.

    ZOO_FAULT=point[@N]    SIGKILLs the process the N-th time (default 1st) it reaches `point` (see FAULT_POINTS):
                           how the tests show that nothing is lost, as databases test crash recovery
    ZOO_DISK_FULL=point[@N]   raises OSError(ENOSPC) there instead, as a full disk would (see DISK_POINTS)

A full or read-only disk is a StorageError: one line naming the file and the fix, nothing partial left behind, and
the rerun resumes from the last complete checkpoint.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
import warnings

import keras
import numpy as np

FAULT_POINTS = (
    "mid-epoch",                # inside an epoch: after its first batch (or first steps_per_execution batches)
    "during-checkpoint-write",  # a checkpoint file written under its temporary name, not yet renamed
    "after-checkpoint-write",   # an epoch's checkpoint in place
    "during-export",            # an export written to its staging folder, not yet renamed into place
    "before-finish-mark",       # every export in place, run.json not yet marked finished
    "after-finish-mark",        # marked finished, checkpoints not yet deleted
)
DISK_POINTS = ("checkpoint", "history", "run-record", "export")  # the writes that ZOO_DISK_FULL can fail
# Settings that must match to resume a run (the model, config and data decide which run folder it is).
RESUME_SETTINGS = ("epochs", "export", "export_dir", "mixed_precision", "keep", "quality_every", "quality_samples",
                   "init_from")
_fault_hits = {}


def _hits(variable, points, point):
    """(times reached, N) for `point` when the environment variable (NAME or NAME@N) names it, else (0, 0)."""
    wanted = os.environ.get(variable)
    if not wanted:
        return 0, 0
    name, _, count = wanted.partition("@")
    if name not in points:
        raise ValueError(f"{variable}={wanted}: unknown point {name!r}; the points are {', '.join(points)}")
    if name != point:
        return 0, 0
    _fault_hits[variable, point] = _fault_hits.get((variable, point), 0) + 1
    return _fault_hits[variable, point], int(count or 1)


def fault(point):
    """SIGKILL this process (no cleanup, no flush but ours) if ZOO_FAULT names `point` and this is its N-th hit."""
    hits, wanted = _hits("ZOO_FAULT", FAULT_POINTS, point)
    if hits and hits == wanted:
        print(f"ZOO_FAULT: killing the process at {point} (hit {hits})", flush=True)
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def disk_fault(point):
    """Raise OSError(ENOSPC) if ZOO_DISK_FULL names `point` from its N-th hit on: a full disk stays full."""
    hits, wanted = _hits("ZOO_DISK_FULL", DISK_POINTS, point)
    if hits and hits >= wanted:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), point)


class TrainingDiverged(RuntimeError):
    """The loss or the weights became NaN or infinite: nothing is exported."""


class StorageError(RuntimeError):
    """A folder cannot be written, or the disk filled up while writing: the message says which and what to do."""


def is_disk_full(error):
    """Whether an exception is the file system's "no space left" (or over quota), as OSError or TensorFlow's."""
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    return "No space left on device" in str(error) or "Disk quota exceeded" in str(error)


def storage_error(error, path, resume_hint):
    """The StorageError of a failed write to path (a full disk, or another OSError), with what to do next."""
    if is_disk_full(error):
        return StorageError(f"no space left on the device writing {path} ({free_space(path)} free); free some "
                            f"space and {resume_hint}")
    return StorageError(f"cannot write {path} ({getattr(error, 'strerror', None) or error}); {resume_hint}")


def free_space(path):
    folder = path
    while folder and not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    try:
        stat = os.statvfs(folder or ".")
    except OSError:
        return "unknown space"
    return f"{stat.f_bavail * stat.f_frsize / 2 ** 20:.1f} MB"


def check_writable(folder, flag):
    """Whether folder (or, if it does not exist yet, the folder it would be made in) takes a new entry: a
    read-only or unwritable place is found before training starts (StorageError naming the flag), not hours later
    at the first checkpoint or the export. Nothing is left behind."""
    existing = os.path.abspath(folder)
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    try:
        if not os.path.isdir(existing):
            raise NotADirectoryError(errno.ENOTDIR, f"{existing} is a file")
        os.rmdir(tempfile.mkdtemp(prefix=".write-test-", dir=existing))
    except OSError as error:
        raise storage_error(error, folder, f"give {flag} a folder that can be written") from None


def write_json(path, value, point="history"):
    """Write JSON to path atomically: a reader sees the old file or the new one, never a part. A failed write
    leaves the old file and no temporary one, and is a StorageError."""
    temporary = os.path.join(os.path.dirname(path) or ".", f".tmp-{os.path.basename(path)}")
    try:
        with open(temporary, "w") as f:
            json.dump(value, f, indent=2, default=str)
            f.flush()
            disk_fault(point)
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        if isinstance(error, OSError):
            raise storage_error(error, path, "rerun the same command: it resumes from its last complete "
                                "checkpoint") from None
        raise


def read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


class RunLocked(RuntimeError):
    """Another process is training this run folder."""


class RunMismatch(ValueError):
    """An unfinished run of this configuration exists with other training settings."""


@contextlib.contextmanager
def run_lock(run_dir):
    """Hold an exclusive lock on run_dir/.lock (fcntl.flock, released when the process ends, however it ends) while
    the run trains and exports; RunLocked, naming the process that holds it, if another one does."""
    path = os.path.join(run_dir, ".lock")
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise storage_error(error, path, "then rerun the same command") from None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 4096, 0).decode(errors="replace").strip() or "another process"
            raise RunLocked(f"{run_dir} is being trained by {holder}; wait for it to finish (a rerun then resumes or "
                            "starts a new run), or give this one another --run name") from None
        # Who holds it, for the message above: unbuffered, since a full disk may refuse these bytes (the lock
        # holds anyway).
        with contextlib.suppress(OSError):
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, f"process {os.getpid()} on {socket.gethostname()}, since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(descriptor, 0)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def find_run(logdir, name, run, seed, identity, settings, defaults=None):
    """(run folder, its record or None): the unfinished run of this name and identity, to resume, or a new folder
    (seed0, seed0-2, ...). RunMismatch if the unfinished run was started with other RESUME_SETTINGS.

    defaults ({part: {field: default}}, e.g. {"config": ...}): a field of identity[part] that a run's record lacks
    (one the zoo gained after the run started) still matches if it is at its default, which reproduces the run."""
    base = run or f"seed{seed}"
    identity = json.loads(json.dumps(identity))  # as run.json holds it: tuples become lists
    settings = json.loads(json.dumps(settings))
    defaults = json.loads(json.dumps(defaults or {}))
    for attempt in range(1, 10_000):
        folder = os.path.join(logdir, name, base if attempt == 1 else f"{base}-{attempt}")
        if not os.path.exists(folder):
            return folder, None
        recorded = read_json(os.path.join(folder, "run.json"))
        if recorded and recorded.get("finished"):
            remove_checkpoints(folder)  # left by a run killed between its finish mark and their deletion
        if not recorded or not same_identity(recorded.get("identity"), identity, defaults) or recorded.get("finished"):
            continue
        differences = [f"{key.replace('_', '-')} {recorded['train'].get(key)} (now {settings.get(key)})"
                       for key in RESUME_SETTINGS if recorded.get("train", {}).get(key) != settings.get(key)]
        if differences:
            raise RunMismatch(
                f"{folder} is an unfinished run of this model, config and data that was started with "
                f"{', '.join(differences)}; rerun with its settings to resume it, or give --run NAME to start "
                "another run")
        return folder, recorded
    raise RuntimeError(f"too many runs named {base} under {os.path.join(logdir, name)}")


def same_identity(recorded, identity, defaults):
    """Whether a recorded identity is this one once the fields the record lacks are filled in with their defaults
    (see find_run): a field it has that this one does not, or a new field away from its default, still differs."""
    if not isinstance(recorded, dict):
        return False
    completed = {part: {**defaults[part], **value} if part in defaults and isinstance(value, dict) else value
                 for part, value in recorded.items()}
    return completed == identity


class Checkpoint(keras.callbacks.Callback):
    """The run's checkpoint: after every epoch, the epoch's logs and its wall time, `epoch_seconds` (history.json),
    then the weights and optimizer state (checkpoint/epoch-000N.weights.h5), each written under a temporary name
    and renamed. `restore` loads the newest one that reads, falling back to the one before (double
    checkpointing), and says its epoch.

    keep_best (a metric of the logs, lower is better): the checkpoint of the best epoch so far is kept too, and so
    is the best before the newest epoch, in case the newest checkpoint does not load and the run resumes before it.
    `best_epoch` and `load_epoch` give it back (zoo.train exports it with --keep best)."""

    KEEP = 2

    def __init__(self, run_dir, keep_best=None, restore_from=None):
        super().__init__()
        self.run_dir = run_dir
        self.keep_best = keep_best
        self.folder = os.path.join(run_dir, "checkpoint")
        # A non-chief worker of a multi-worker run writes its own folder but resumes from the chief's.
        self.restore_dir = restore_from or run_dir
        self.history = []  # the logs of every epoch of the run
        self.in_epoch = False

    def files(self, folder=None):
        """{epoch: path} of the complete checkpoints (in self.folder, or the given one)."""
        found = {}
        for path in glob.glob(os.path.join(folder or self.folder, "epoch-*.weights.h5")):
            match = re.fullmatch(r"epoch-(\d+)\.weights\.h5", os.path.basename(path))
            if match:
                found[int(match.group(1))] = path
        return found

    def latest_epoch(self):
        return max(self.files(), default=0)

    def restore(self, model):
        """Load the newest readable checkpoint into model; return its epoch (0: none, the model is unchanged)."""
        for stale in glob.glob(os.path.join(self.folder, ".tmp-*")):  # a write that a kill or a full disk cut short
            with contextlib.suppress(OSError):
                os.remove(stale)
        files = self.files(os.path.join(self.restore_dir, "checkpoint"))
        # The optimizers' variables must exist to be loaded (a ZooModel may have several; a DAE stage has one).
        optimizers = model.optimizers() if hasattr(model, "optimizers") else [model.optimizer]
        for optimizer in optimizers if files else ():
            if not optimizer.built:
                with model.distribute_strategy.scope():  # under tf.distribute, as the model's own variables
                    optimizer.build(model.trainable_variables)
        for epoch, path in sorted(files.items(), reverse=True):
            try:
                model.load_weights(path)
            except Exception as error:  # noqa: BLE001 - a damaged file of any kind: fall back to the previous one
                warnings.warn(f"checkpoint {path} does not load ({type(error).__name__}: {error}); trying the one "
                              "before it", stacklevel=2)
                continue
            recorded = read_json(os.path.join(self.restore_dir, "history.json"), {}).get("epochs", [])
            self.history = recorded[:epoch] + [{}] * (epoch - len(recorded))  # missing logs: empty, never invented
            return epoch
        self.history = []
        return 0

    def on_epoch_begin(self, epoch, logs=None):
        self.in_epoch = False
        self.epoch_started = time.time()

    def on_train_batch_end(self, batch, logs=None):
        if not self.in_epoch:
            self.in_epoch = True
            fault("mid-epoch")

    def on_epoch_end(self, epoch, logs=None):
        # The epoch's seconds go into the history, not the logs: a resumed run's model card sums them over every
        # session that trained it (zoo.train.run_seconds).
        record = {k: float(v) for k, v in (logs or {}).items()}
        record["epoch_seconds"] = round(time.time() - self.epoch_started, 2)
        self.history = self.history[:epoch] + [record]
        path = os.path.join(self.folder, f"epoch-{epoch + 1:04d}.weights.h5")
        temporary = os.path.join(self.folder, f".tmp-epoch-{epoch + 1:04d}.weights.h5")
        writing = os.path.join(self.run_dir, "history.json")
        try:
            write_json(writing, {"epochs": self.history})
            writing = path
            os.makedirs(self.folder, exist_ok=True)
            self.model.save_weights(temporary, overwrite=True)
            disk_fault("checkpoint")
            fault("during-checkpoint-write")
            os.replace(temporary, path)
        except Exception as error:  # noqa: BLE001 - h5py and TensorFlow report a full disk in their own ways
            if not (isinstance(error, OSError) or is_disk_full(error)):
                raise
            with contextlib.suppress(OSError):
                os.remove(temporary)
            raise storage_error(error, writing, f"rerun the same command: it resumes after epoch {epoch}, the "
                                "last complete checkpoint") from None
        fault("after-checkpoint-write")
        kept = self.files()
        protected = {self.best_epoch(), self.best_epoch(self.history[:-1])}
        for old in sorted(kept)[:-self.KEEP]:
            if old not in protected:
                os.remove(kept[old])

    def best_epoch(self, history=None):
        """The epoch (1-based) with the lowest finite keep_best figure in history (default: the run's); None if no
        epoch has one."""
        history = self.history if history is None else history
        figures = {epoch: logs.get(self.keep_best) for epoch, logs in enumerate(history, 1)} if self.keep_best else {}
        figures = {epoch: value for epoch, value in figures.items() if value is not None and np.isfinite(value)}
        return min(figures, key=lambda epoch: (figures[epoch], epoch)) if figures else None

    def load_epoch(self, model, epoch):
        """Load epoch's checkpoint (weights and optimizer state) into model."""
        path = self.files().get(epoch)
        if path is None:
            raise FileNotFoundError(f"the checkpoint of epoch {epoch} is not in {self.folder}")
        model.load_weights(path)

    def history_dict(self):
        """The run's history as fit returns it, {metric: [value per epoch]}, over every epoch of the run."""
        names = [name for epoch in self.history for name in epoch]
        return {name: [epoch.get(name, float("nan")) for epoch in self.history] for name in dict.fromkeys(names)}


def remove_checkpoints(run_dir):
    """Delete the checkpoints of a finished run and of its stages (their exports hold the model now)."""
    for folder in glob.glob(os.path.join(run_dir, "checkpoint")) + glob.glob(os.path.join(run_dir, "*", "checkpoint")):
        shutil.rmtree(folder, ignore_errors=True)


def new_run_id():
    return uuid.uuid4().hex
