"""Disk drills: a full disk at every write point of a run (ZOO_DISK_FULL=point[@N] raises OSError(ENOSPC) there, as
a full disk does), and folders that cannot be written. Each is one line and exit 2, leaves nothing partial, and the
rerun resumes from the last complete checkpoint to the model an uninterrupted run makes, exported once."""

import errno
import os
import tempfile

import numpy as np
import pytest

from conftest import run_zoo, tiny_data
from test_fault_drills import SAME_ARITHMETIC, VAE, check_exports, folders, weights
from zoo import runs, train
from zoo.models.vae import VAEConfig

# (ZOO_DISK_FULL, the write it fails, what the run it stops printed first: where it resumed)
DISK_DRILL = [
    ("checkpoint@2", "epoch-0002.weights.h5", "Training vae"),  # epoch 2's checkpoint
    ("history@2", "history.json", "resuming after epoch 1 of 3"),  # epoch 3's history
    ("export", "exports/vae", "resuming after epoch 2 of 3"),  # trains epoch 3; its export
    ("run-record", "run.json", ""),  # the disk still full at the next launch: refused at once
]


def zoo_train(root, disk_full=None):
    return run_zoo("zoo.train", *VAE, *folders(root),
                   env={**SAME_ARITHMETIC, **({"ZOO_DISK_FULL": disk_full} if disk_full else {})})


@pytest.mark.drills
def test_a_full_disk_at_every_write_point_is_one_line_leaves_nothing_partial_and_the_rerun_resumes(tmp_path):
    root = tmp_path / "full"
    for point, written, printed in DISK_DRILL:
        done = zoo_train(root, point)
        assert done.returncode == 2, (point, done.stdout[-2000:], done.stderr[-2000:])
        error_lines = [line for line in done.stderr.splitlines() if "error:" in line]
        assert "Traceback" not in done.stderr and len(error_lines) == 1, done.stderr[-2000:]
        assert "no space left on the device writing" in error_lines[0] and written in error_lines[0], error_lines
        assert printed in done.stdout, (point, done.stdout[-2000:])
        leftovers = [os.path.join(folder, name) for folder, subfolders, files in os.walk(root)
                     for name in files + subfolders if name.startswith(".tmp")]
        assert not leftovers, leftovers
    done = zoo_train(root)
    assert done.returncode == 0 and "resuming after epoch 3 of 3" in done.stdout, done.stderr[-2000:]

    straight = zoo_train(tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr[-2000:]
    full, uninterrupted = check_exports(root, ["vae"]), check_exports(tmp_path / "straight", ["vae"])
    for x, y in zip(weights(full["vae"]), weights(uninterrupted["vae"])):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_folders_that_cannot_be_written_are_refused_before_anything_is_made(tmp_path, monkeypatch):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    for flag in ("--export-dir", "--logdir"):
        argv = ["vae", "--epochs", "1", "--limit", "100", "--logdir", str(tmp_path / "logs"), "--export-dir",
                str(tmp_path / "exports"), flag, str(a_file / "inside")]
        done = run_zoo("zoo.train", *argv)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
        assert f"cannot write {a_file / 'inside'}" in done.stderr and f"give {flag} a folder" in done.stderr
        assert "Training vae" not in done.stdout and not (tmp_path / "logs").exists()

    # A read-only file system, as the first write into it fails there.
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    config = train.TrainConfig(epochs=1, logdir=str(tmp_path / "logs"), export_dir=str(tmp_path / "exports"))
    with pytest.raises(runs.StorageError, match="Read-only file system.*give --logdir a folder"):
        train.train("vae", VAEConfig(hidden=(8,)), tiny_data(), config, verbose=0)
    assert not (tmp_path / "logs").exists()


def test_a_data_error_leaves_no_run_folder_that_would_refuse_the_next_command(tmp_path):
    missing = ["--source", "dir", "--data-dir", str(tmp_path / "nothing_here")]
    done = run_zoo("zoo.train", "vae", "--epochs", "1", *missing, *folders(tmp_path))
    assert done.returncode == 2 and "does not exist" in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "logs").exists()
    done = run_zoo("zoo.train", "vae", "--epochs", "1", "--limit", "100", "--hidden", "8", *folders(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_simulated_full_disk_fills_at_the_nth_write_named_and_stays_full(monkeypatch):
    monkeypatch.setattr(runs, "_fault_hits", {})
    monkeypatch.setenv("ZOO_DISK_FULL", "history@2")
    runs.disk_fault("checkpoint")  # another point: no effect, and not counted
    runs.disk_fault("history")
    for _ in range(2):
        with pytest.raises(OSError) as raised:
            runs.disk_fault("history")
        assert raised.value.errno == errno.ENOSPC
    monkeypatch.setenv("ZOO_DISK_FULL", "histroy")
    with pytest.raises(ValueError, match="ZOO_DISK_FULL=histroy: unknown point 'histroy'; the points are checkpoint"):
        runs.disk_fault("history")
