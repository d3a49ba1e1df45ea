import glob
import os

import pytest

from conftest import run_zoo
from zoo.experiments import rbm as rbm_experiments


def test_rbm_experiments_write_every_figure_and_the_summary(tmp_path):
    config = rbm_experiments.Config(epochs=1, hidden_sizes=(8,), cd_steps=(2,), learning_rates=(0.1,), limit=200,
                                    test_images=100, ais_chains=10, ais_temperatures=100)
    notebook = rbm_experiments.run(config, str(tmp_path / "out"), str(tmp_path / "logs"))
    expected = {f"{name}.png" for name in (
        "curves_training_h8", "curves_rates_h8", "curves_inputs_h8", "filters_h8", "filters_sorted_h8",
        "samples_h8", "inpainting_h8", "reconstructions", "activation_frequency")}
    assert {os.path.basename(path) for path in notebook.figures} == expected
    assert all(os.path.getsize(tmp_path / "out" / name) > 1000 for name in expected)
    summary = (tmp_path / "out" / "README.md").read_text()
    for text in ("CD-1, lr 0.05 (baseline)", "real-valued inputs", "CD-2", "PCD-1", "CD-1, lr 0.1", "| 50% |"):
        assert text in summary
    assert all(f"]({name})" in summary for name in expected)
    assert glob.glob(str(tmp_path / "out" / "tensorboard" / "events.out.tfevents.*"))
    runs = {os.path.basename(p) for p in glob.glob(str(tmp_path / "logs" / "rbm_experiments" / "*"))}
    assert runs == {"h8_cd1", "h8_real", "h8_cd2", "h8_pcd1", "h8_lr0.1"}


@pytest.mark.parametrize("argv, message", [
    (["gan"], "invalid choice: 'gan'"),
    (["rbm", "--hidden-sizes", "20,x"], "not a comma-separated list of ints"),
    (["rbm", "--epochs", "0"], "epochs, test_images, ais_chains and ais_temperatures must be positive"),
])
def test_bad_experiment_flags_are_clear_errors(argv, message):
    done = run_zoo("zoo.experiments", *argv)
    assert done.returncode == 2 and message in done.stderr, done.stderr[-2000:]
