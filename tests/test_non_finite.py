"""Nothing non-finite leaves a run: NaN or infinite config numbers are refused, any non-finite metric stops training,
and an export with non-finite weights is refused."""


import numpy as np
import pytest

from conftest import run_zoo
from zoo import callbacks, export, runs, train
from zoo.models.gan import GAN, GANConfig
from zoo.models.rbm import RBM, RBMConfig


@pytest.mark.parametrize("argv", [["rbm", "--learning-rate", "nan"], ["rbm", "--momentum", "inf"],
                                  ["vae", "--learning-rate=-inf"], ["dae", "--masking", "nan"]])
def test_non_finite_flags_are_refused_at_the_command_line(argv, tmp_path, capsys):
    folders = ["--export-dir", str(tmp_path / "exports"), "--logdir", str(tmp_path / "logs")]
    if argv[0] == "rbm" and argv[1] == "--learning-rate":  # once as a real process: a message, not a traceback
        done = run_zoo("zoo.train", *argv, *folders)
        code, stderr = done.returncode, done.stderr
    else:
        with pytest.raises(SystemExit) as exit_:
            train.main(argv + folders)
        code, stderr = exit_.value.code, capsys.readouterr().err
    assert code == 2 and "is not a finite number" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "exports").exists()


def test_non_finite_config_numbers_are_refused_from_python():
    with pytest.raises(ValueError, match="learning_rate must be a finite number, got nan"):
        RBM(RBMConfig(learning_rate=float("nan")))
    with pytest.raises(ValueError, match="learning_rate must be a finite number, got inf"):
        GAN(GANConfig(learning_rate=float("inf")))


@pytest.mark.parametrize("logs", [{"free_energy": float("nan"), "reconstruction_mse": 1.0},
                                  {"d_loss": 0.5, "d_real_accuracy": np.float32("inf")}])
def test_any_non_finite_metric_stops_training(logs):
    stop = callbacks.StopOnNaN("somewhere/backup")
    with pytest.raises(runs.TrainingDiverged, match="became (nan|inf) at epoch 1, batch 3.*somewhere/backup"):
        stop.on_batch_end(2, logs)
    with pytest.raises(runs.TrainingDiverged, match="at the end of epoch 4"):
        stop.on_epoch_end(3, {"val_" + name: value for name, value in logs.items()})
    stop.on_batch_end(0, {"loss": 1.0, "kl": 2.0})  # finite: nothing happens


def test_an_export_with_non_finite_weights_is_refused(tmp_path):
    model = RBM(RBMConfig(hidden=8, chains=4, sample_steps=2, inpaint_steps=2))
    model.build_for_images()
    model.W.assign(np.full(model.W.shape, np.nan, np.float32))
    with pytest.raises(runs.TrainingDiverged, match="not exported: weights .*W.* hold NaN"):
        export.export_model(model, str(tmp_path), "rbm", {"kind": "rbm"})
    assert not (tmp_path / "rbm").exists()  # refused before any folder, version or staging, is made
