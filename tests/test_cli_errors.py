"""Bad input to `python -m zoo.train` is a message and exit code 2, never a traceback; Ctrl-C is one line and 130."""

import gzip
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO
from zoo import data, train


def zoo_train(model, *flags, tmp_path):
    """python -m zoo.train with outputs under tmp_path, unless the flags name others (the last occurrence wins)."""
    defaults = ["--logdir", str(tmp_path / "logs"), "--export-dir", str(tmp_path / "exports")]
    return subprocess.run([sys.executable, "-m", "zoo.train", model, *defaults, *flags], capture_output=True,
                          text=True, cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=300)


@pytest.mark.parametrize("argv, message", [
    (["vae", "--seed", "-5"], "seed must be in 0..2147483647"),
    (["vae", "--seed", "99999999999"], "seed must be in 0..2147483647"),
    (["vae", "--name", "../../x"], "must be a folder name inside the output folders"),
    (["vae", "--name", "/tmp/x"], "must be a folder name inside the output folders"),
    (["vae", "--name", "runs/.hidden"], "must be a folder name inside the output folders"),
    (["vae", "--mixed-precision"], "vae does not train in mixed precision"),
    (["vae", "--run", "../../x"], "run '../../x' must be a folder name inside the output folders"),
    (["vae", "--run", "/tmp/x"], "run '/tmp/x' must be a folder name inside the output folders"),
    (["vae", "--learning-rate", "-1"], "learning_rate must be positive, got -1.0"),
    (["rbm", "--hidden", "0"], "hidden must be positive, got 0"),
    (["rbm", "--momentum", "1"], "momentum must be in [0, 1), got 1.0"),
    (["vae", "--epoch", "2"], "unrecognized arguments: --epoch 2"),  # no prefix matching: not --epochs
])
def test_bad_flags_are_messages_with_exit_2(argv, message, tmp_path, capsys):
    if argv[1] == "--mixed-precision":  # once as a real process: a message, not a traceback
        done = zoo_train(*argv, tmp_path=tmp_path)
        code, stderr = done.returncode, done.stderr
    else:
        with pytest.raises(SystemExit) as exit_:
            train.main(argv + ["--logdir", str(tmp_path / "logs"), "--export-dir", str(tmp_path / "exports")])
        code, stderr = exit_.value.code, capsys.readouterr().err
    assert code == 2 and message in stderr and "Traceback" not in stderr, stderr[-2000:]
    assert not (tmp_path / "exports").exists() and not (tmp_path / "logs").exists()


def test_output_folders_that_are_files_are_refused_before_training(tmp_path):
    a_file = tmp_path / "taken"
    a_file.write_text("")
    for flag in ("--logdir", "--export-dir"):
        other = "--export-dir" if flag == "--logdir" else "--logdir"
        done = zoo_train("vae", flag, str(a_file), other, str(tmp_path / "other"), tmp_path=tmp_path)
        assert done.returncode == 2 and f"{flag} {a_file} is a file" in done.stderr, done.stderr[-2000:]
        assert "Training vae" not in done.stdout


def test_damaged_data_files_are_data_errors(tmp_path):
    stream = bytearray(gzip.compress(b"\0\0\x08\x01" + bytes(1000)))
    stream[10] = 0xFF  # the first deflate block header: an invalid block type (zlib.error, not a CRC mismatch)
    (tmp_path / "broken.gz").write_bytes(bytes(stream))
    with pytest.raises(data.DataError, match="broken.gz.*corrupt"):
        data.read_idx(str(tmp_path / "broken.gz"))
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((100, 28, 28), np.uint8))
    blob = (tmp_path / "mnist.npz").read_bytes()
    (tmp_path / "mnist.npz").write_bytes(blob[:len(blob) // 2])  # truncated: no zip directory (BadZipFile)
    with pytest.raises(data.DataError, match="mnist.npz.*corrupt"):
        data.read_npz(str(tmp_path / "mnist.npz"))


def test_a_second_launch_is_refused_and_ctrl_c_prints_one_line_and_exits_130(tmp_path):
    argv = [sys.executable, "-u", "-m", "zoo.train", "vae", "--limit", "1000", "--epochs", "1000", "--logdir",
            str(tmp_path / "logs"), "--export-dir", str(tmp_path / "exports")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    # Ctrl-C as at a terminal: a suite started in the background (`nohup pytest ... &` from a script) runs with SIGINT
    # ignored, which a child inherits and rightly keeps ignoring: the run would train on past the test's wait. While
    # this process handles SIGINT, a child starts with the default action instead (exec resets handled signals).
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        checkpoints = tmp_path / "logs" / "vae" / "seed0" / "checkpoint"
        deadline = time.time() + 120
        # the first run is training, past its first epoch (any epoch's file: only the last two are kept, so a poll
        # can miss epoch 1's)
        while not list(checkpoints.glob("epoch-*.weights.h5")) and time.time() < deadline:
            time.sleep(0.5)
        assert first.poll() is None, first.communicate()[1][-2000:]
        second = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
        assert second.returncode == 2, second.stderr[-2000:]
        assert f"is being trained by process {first.pid}" in second.stderr and "Traceback" not in second.stderr
        assert first.poll() is None  # the first run goes on, untouched

        first.send_signal(signal.SIGINT)  # Ctrl-C
        _, stderr = first.communicate(timeout=60)
        assert first.returncode == 130, stderr[-2000:]
        assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
        assert "interrupted after epoch" in stderr and "of 1000; rerun the same command to resume" in stderr
        assert not (tmp_path / "exports").exists()
    finally:
        first.kill()
        first.wait()


def zoo_command(*argv, env=None, cwd=REPO):
    return subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={k: v for k, v in {**os.environ, **(env or {})}.items() if k != "TF_CPP_MIN_LOG_LEVEL"})


@pytest.mark.parametrize("make, message", [
    (lambda folder: np.savez(folder / "x.npz"), "holds arrays none"),
    (lambda folder: np.savez(folder / "x.npz", images=np.zeros((0, 28, 28), np.uint8)), "holds 0 images"),
    (lambda folder: np.savez(folder / "x.npz", images=np.zeros((2, 28, 28), np.uint8)), "holds 2 images"),
    (lambda folder: (folder / "pngs").mkdir() or (folder / "pngs" / "a.png").write_bytes(b"\x89PNG not really"),
     "a.png is not a readable image"),
], ids=["empty npz", "no images", "two images", "broken png"])
def test_bad_image_sets_for_the_evaluator_are_messages(make, message, tmp_path, capsys):
    from zoo import evaluate
    make(tmp_path)
    target = tmp_path / ("pngs" if (tmp_path / "pngs").exists() else "x.npz")
    with pytest.raises(SystemExit) as exit_:
        evaluate.main(["--images", str(target)])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_a_changed_classifier_file_is_a_message_with_exit_2(tmp_path, monkeypatch, capsys):
    from zoo import classifier, evaluate
    changed = tmp_path / "classifier.weights.h5"
    shutil.copy(classifier.FROZEN_WEIGHTS, changed)
    with open(changed, "r+b") as f:
        f.seek(-1, 2)
        f.write(b"\x00" if f.read(1) != b"\x00" else b"\x01")
    monkeypatch.setattr(classifier, "FROZEN_WEIGHTS", str(changed))
    np.savez(tmp_path / "x.npz", images=np.zeros((10, 28, 28), np.uint8))
    with pytest.raises(SystemExit) as exit_:
        evaluate.main(["--images", str(tmp_path / "x.npz")])
    assert exit_.value.code == 2 and "the file is corrupt or was changed" in capsys.readouterr().err


def test_commands_start_quietly_unless_asked_and_without_a_reimport_warning(tmp_path):
    quiet = zoo_command("zoo.export", "--list", str(tmp_path))
    assert quiet.returncode == 0 and "no exports under" in quiet.stdout
    for noise in ("RuntimeWarning", "oneDNN custom operations", "cuInit", "cpu_feature_guard", "absl::InitializeLog"):
        assert noise not in quiet.stderr, quiet.stderr
    shown = zoo_command("zoo.classifier")
    assert shown.returncode == 0 and "RuntimeWarning" not in shown.stderr and "test_accuracy" in shown.stdout
    loud = zoo_command("zoo.export", "--list", str(tmp_path), env={"ZOO_TF_LOGS": "1"})
    assert loud.returncode == 0 and "absl::InitializeLog" in loud.stderr  # TensorFlow's own start-up lines


def test_verbs_answer_empty_batches_and_refuse_seeds_that_are_not_integer_scalars():
    import tensorflow as tf
    import zoo
    empty = np.zeros((0, 28, 28, 1), np.float32)
    conv = zoo.ConvVAE(seed=0)
    assert conv.encode(empty)["latent"].shape == (0, 2) and conv.reconstruct(empty).shape == (0, 28, 28, 1)
    assert conv.inpaint(empty, empty, 0).shape == (0, 28, 28, 1) and conv.sample(0, 0).shape == (0, 28, 28, 1)
    one = np.ones((1, 28, 28, 1), np.float32)
    for model in (zoo.DAE(seed=0), zoo.VAE(seed=0)):
        for seed, message in ((np.zeros((1, 2), np.int32), "seed must be a scalar; got shape"),
                              (1.5, "seed must be an integer; got 1.5")):
            with pytest.raises(tf.errors.InvalidArgumentError, match=message):
                model.inpaint(one, one, seed)
    with pytest.raises(tf.errors.InvalidArgumentError, match="seed must be an integer"):
        zoo.VAE(seed=0).sample(2, 0.5)


def test_the_tfds_source_has_what_it_imports():
    import importlib_resources  # noqa: F401  (tensorflow_datasets prepares data sets with it, undeclared)
    import tensorflow_datasets  # noqa: F401
