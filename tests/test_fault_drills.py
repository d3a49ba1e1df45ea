"""Crash drills: kill -9 a training run at each named point (ZOO_FAULT=point@N, see zoo.runs), rerun the same
command, and check that nothing is lost: each rerun resumes where the checkpoint says (never from scratch), the run
ends with the weights of an uninterrupted run, and exactly one complete export of each kind exists, which loads.

One chain per model: every rerun is itself killed at the next point, so each point is recovered from the state the
earlier kills left (a torn checkpoint file, a half-written export, ...). A single-stage model (VAE) and a layer-wise
one (DBN: two pretraining stages, a greedy export, fine-tuning, a final export)."""

import os
import signal

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_zoo
from zoo import runs, train
from zoo.export import load_model, read_card

VAE = ["vae", "--limit", "200", "--validation-size", "100", "--batch-size", "50", "--hidden", "16", "--latent-dim",
       "2", "--epochs", "3"]
DBN = ["dbn", "--limit", "200", "--validation-size", "100", "--batch-size", "50", "--layers", "784,24,12",
       "--epochs", "2", "--fine-tune-epochs", "2", "--sample-steps", "10", "--inpaint-steps", "4"]

# (ZOO_FAULT, what the rerun that it kills must print first: where it resumed)
VAE_DRILL = [
    ("mid-epoch@2", "Training vae"),  # the first run: killed in epoch 2
    ("during-checkpoint-write@1", "resuming after epoch 1 of 3"),  # epoch 2's file torn: epoch 1's is used
    ("after-checkpoint-write@1", "resuming after epoch 1 of 3"),
    ("during-export", "resuming after epoch 2 of 3"),  # trains epoch 3, dies with a half-written export
    ("before-finish-mark", "resuming after epoch 3 of 3"),  # nothing to train: exports (removing the staging)
    ("after-finish-mark", "Found this run's final export"),  # exports nothing new; dies before its cleanup
]
DBN_DRILL = [
    ("mid-epoch@2", "Pretraining dbn"),  # in layer 1's epoch 2
    ("during-checkpoint-write@2", "resuming after epoch 1 of 2"),  # layer 1 ends; layer 2's epoch 1 torn
    ("during-export@1", "resuming after epoch 2 of 2"),  # layer 2 from scratch; the greedy export dies
    ("after-checkpoint-write@1", "resuming after epoch 2 of 2"),  # greedy export made; fine-tuning epoch 1
    ("during-export@1", "Found this run's greedy export"),  # fine-tuning epoch 2; the final export dies
    ("before-finish-mark", "resuming after epoch 2 of 2"),
    ("after-finish-mark", "Found this run's fine-tuned export"),
]


def folders(root):
    return ["--logdir", str(root / "logs"), "--export-dir", str(root / "exports")]


# Every run in a process of its own with one compute thread and TensorFlow's own kernels: the killed and the
# uninterrupted runs then compute in the same order (oneDNN's and multi-threaded reductions differ across processes
# in round-off, on which the DBN's sampled binary states can flip).
SAME_ARITHMETIC = {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}


def zoo_train(argv, root, fault=None):
    """The command in a process of its own, which ZOO_FAULT kills."""
    return run_zoo("zoo.train", *argv, *folders(root), env={**SAME_ARITHMETIC, **({"ZOO_FAULT": fault} if fault
                                                                                  else {})})


def weights(export_path):
    """The export's model weights in the model's own order (its Keras model: the SavedModel's variable order
    depends on what was traced before the export)."""
    return [w.numpy() for w in load_model(export_path, compile=False).weights]


def check_exports(root, names):
    """Exactly one version of each export name, complete (no staging left), loadable; their paths."""
    paths = {}
    for name in names:
        entries = sorted(os.listdir(root / "exports" / name))
        assert entries == ["1"], f"{name}: {entries}"
        paths[name] = str(root / "exports" / name / "1")
        assert tf.saved_model.load(paths[name]).signatures["sample"] is not None
    return paths


@pytest.mark.drills
@pytest.mark.parametrize("argv, drill, export_names, tolerance", [
    (VAE, VAE_DRILL, ["vae"], dict(rtol=1e-5, atol=1e-6)),
    # The RBM layers' Gibbs samples flip on float round-off across processes under load (see test_dbn); an idle
    # CI run on 2026-11-23 saw 3.6e-4 on 1.4% of a fine-tuned weight.
    (DBN, DBN_DRILL, ["dbn_greedy", "dbn_finetuned"], dict(rtol=1e-3, atol=6e-4)),
], ids=["vae", "dbn"])
def test_a_run_killed_at_every_point_resumes_to_the_uninterrupted_model_with_one_export(
        argv, drill, export_names, tolerance, tmp_path, capsys):
    for fault, expected in drill:
        done = zoo_train(argv, tmp_path / "killed", fault)
        assert done.returncode == -signal.SIGKILL, (fault, done.stdout[-2000:], done.stderr[-2000:])
        assert f"ZOO_FAULT: killing the process at {fault.split('@')[0]}" in done.stdout
        assert expected in done.stdout.split("ZOO_FAULT")[0], (fault, done.stdout[-3000:])
        if fault == "mid-epoch@2" and argv is VAE:  # other settings do not resume this run: exit 2, named
            with pytest.raises(SystemExit) as changed:
                train.main(argv[:-1] + ["2"] + folders(tmp_path / "killed"))
            assert changed.value.code == 2 and "started with epochs 3 (now 2)" in capsys.readouterr().err
    run_dir = tmp_path / "killed" / "logs" / argv[0] / "seed0"
    assert os.listdir(run_dir / "checkpoint")  # the last kill came before the checkpoints' deletion

    straight = zoo_train(argv, tmp_path / "straight")  # uninterrupted
    assert straight.returncode == 0, straight.stderr[-3000:]
    killed, uninterrupted = check_exports(tmp_path / "killed", export_names), check_exports(
        tmp_path / "straight", export_names)
    for name in export_names:
        a, b = weights(killed[name]), weights(uninterrupted[name])
        assert len(a) == len(b) > 4
        for index, (x, y) in enumerate(zip(a, b)):
            np.testing.assert_allclose(x, y, **tolerance, err_msg=f"{name}: weight {index}")

    for name in export_names:
        assert read_card(killed[name])["steps"] == read_card(uninterrupted[name])["steps"]

    # The next launch of the command starts a new run (the killed one finished) and clears what the kill left.
    folder, resumed = runs.find_run(str(tmp_path / "killed" / "logs"), argv[0], None, 0, {"a": "new run"}, {})
    assert folder.endswith("seed0-2") and resumed is None and not os.path.exists(run_dir / "checkpoint")
