"""Two-worker tf.distribute runs on one machine: two processes with TF_CONFIG on 127.0.0.1 exercise the collective
ops, the dataset sharding and the checkpointing that two machines would (docs/training.md has the two-machine
commands).

Each worker trains a tiny VAE, RBM, DBN (greedy stages and up-down fine-tuning) and MLP GAN in turn, in one process
and under one MultiWorkerMirroredStrategy (TensorFlow keys collectives per strategy: one per process). The result
must equal one process training the same models on two replicas with the same global batch and seed, and only the
chief may write the run folders and exports.
"""

import glob
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO
from zoo import export, train

pytestmark = pytest.mark.two_workers  # deselected by default (pyproject.toml): `pytest -m two_workers tests`

COMMON = ["--limit", "200", "--validation-size", "100", "--batch-size", "50", "--epochs", "2", "--seed", "3"]
JOBS = {
    "vae": ["vae", "--hidden", "16"],
    "rbm": ["rbm", "--hidden", "16"],
    "dbn": ["dbn", "--layers", "784,16,16", "--fine-tune-epochs", "1"],
    "gan": ["gan", "--generator-hidden", "16", "--discriminator-hidden", "16", "--quality-samples", "100"],
}
FINAL_EXPORT = {"dbn": "dbn_finetuned"}

WORKER = """
import json, sys
import tensorflow as tf
from zoo import train
logdir, export_dir, jobs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
strategy = tf.distribute.MultiWorkerMirroredStrategy()  # the cluster from TF_CONFIG
for argv in jobs:
    args = train.build_parser().parse_args(argv + ["--logdir", logdir, "--export-dir", export_dir])
    train.train(args.model, *train.configs_from_args(args), strategy=strategy, verbose=0)
    print("done", args.model, flush=True)
"""


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def launch(tmp_path, jobs, fault_in_chief=None, timeout=240):
    """Run the jobs on two worker processes; return their (exit code, output). fault_in_chief: a ZOO_FAULT for
    worker 0, the chief; then the other worker, left waiting on a collective with a dead peer, is killed too."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    processes = []
    for index in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TMPDIR=str(tmp_path / "tmp"),
                   TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        env.pop("ZOO_FAULT", None)
        if fault_in_chief and index == 0:
            env["ZOO_FAULT"] = fault_in_chief
        processes.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path / "logs"), str(tmp_path / "exports"), json.dumps(jobs)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    deadline = time.time() + timeout
    while any(p.poll() is None for p in processes) and time.time() < deadline:
        if fault_in_chief and processes[0].poll() is not None:
            break
        time.sleep(0.2)
    for p in processes:
        if p.poll() is None:
            p.kill()
    return [(p.wait(), p.stdout.read()) for p in processes]


def final_weights(path):
    return [np.asarray(w) for w in export.load_model(path).weights]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, two_cpus):
    """The same jobs in this process on two replicas (two logical CPUs): {model: (history, export weights)}."""
    folder = tmp_path_factory.mktemp("one_process")
    results = {}
    for name, argv in JOBS.items():
        args = train.build_parser().parse_args(argv + COMMON + ["--logdir", str(folder / "logs"),
                                                                "--export-dir", str(folder / "exports")])
        result = train.train(args.model, *train.configs_from_args(args), strategy=two_cpus, verbose=0)
        results[name] = (result.history, final_weights(result.export_path))
    return results


def assert_same_run(tmp_path, one_process, names):
    for name in names:
        history = json.loads((tmp_path / "logs" / name / "seed3" / "history.json").read_text())["epochs"]
        expected_history, expected_weights = one_process[name]
        for key, values in expected_history.items():
            if key.endswith("seconds"):  # wall times
                continue
            np.testing.assert_allclose([epoch[key] for epoch in history], values, rtol=1e-4, atol=1e-5,
                                       err_msg=f"{name} {key}")
        weights = final_weights(str(tmp_path / "exports" / FINAL_EXPORT.get(name, name) / "1"))
        assert len(weights) == len(expected_weights)
        for got, expected in zip(weights, expected_weights):
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5, err_msg=name)


def test_two_workers_train_every_family_like_two_replicas_and_only_the_chief_writes(tmp_path, one_process):
    (tmp_path / "tmp").mkdir()
    outcomes = launch(tmp_path, [argv + COMMON for argv in JOBS.values()])
    for code, output in outcomes:
        assert code == 0, output[-3000:]
        assert all(f"done {name}" in output for name in JOBS)
    (_, chief_output), (_, other_output) = outcomes
    assert "Exported to" in chief_output and "Exported" not in other_output  # the other's is a deleted half
    assert_same_run(tmp_path, one_process, JOBS)
    # Only the chief wrote: one run folder per model with its TensorBoard logs, one export of each, and the other
    # worker's own folder (its half of every checkpoint and export) is gone.
    assert sorted(os.listdir(tmp_path / "logs")) == sorted(JOBS)
    for name in JOBS:
        assert os.listdir(tmp_path / "logs" / name) == ["seed3"]
        assert glob.glob(str(tmp_path / "logs" / name / "seed3" / "train" / "events.out.tfevents.*"))
    assert sorted(os.listdir(tmp_path / "exports")) == sorted(["vae", "rbm", "dbn_greedy", "dbn_finetuned", "gan"])
    assert all(os.listdir(tmp_path / "exports" / name) == ["1"] for name in os.listdir(tmp_path / "exports"))
    assert os.listdir(tmp_path / "tmp") == []


def test_killing_the_chief_and_relaunching_both_resumes_from_its_checkpoint(tmp_path, one_process):
    (tmp_path / "tmp").mkdir()
    jobs = [JOBS["vae"] + COMMON]
    (chief_code, chief_output), (other_code, _) = launch(tmp_path, jobs, fault_in_chief="after-checkpoint-write@1")
    assert chief_code == -9 and "ZOO_FAULT: killing" in chief_output and other_code != 0
    assert not (tmp_path / "exports" / "vae").exists()
    outcomes = launch(tmp_path, jobs)
    for code, output in outcomes:
        assert code == 0, output[-3000:]
    assert "resuming after epoch 1 of 2" in outcomes[0][1] and "resuming after epoch 1 of 2" in outcomes[1][1]
    assert_same_run(tmp_path, one_process, ["vae"])
    # The relaunched worker cleared the killed one's folder, then its own (the killed processes' AutoGraph files
    # are TensorFlow's).
    assert not glob.glob(str(tmp_path / "tmp" / "zoo-worker-*"))
