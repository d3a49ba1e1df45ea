import dataclasses
import glob
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_zoo, tiny_data
from zoo import runs, train
from zoo.models.vae import VAEConfig

TINY = VAEConfig(latent_dim=2, hidden=(16,))


def config_in(root, **changes):
    settings = dict(epochs=2, logdir=str(root / "logs"), export_dir=str(root / "exports"))
    settings.update(changes)
    return train.TrainConfig(**settings)


def event_tags(folder):
    tags = set()
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_tensorboard_gets_scalars_histograms_and_image_grids(tmp_path):
    result = train.train("vae", TINY, tiny_data(), config_in(tmp_path, export=False), verbose=0)
    assert result.run_dir == str(tmp_path / "logs" / "vae" / "seed0")
    for split in ("train", "validation"):
        assert {"epoch_loss", "epoch_reconstruction", "epoch_kl"} <= event_tags(os.path.join(result.run_dir, split))
    assert any(tag.endswith("/histogram") for tag in event_tags(os.path.join(result.run_dir, "train")))
    assert {"samples", "reconstructions"} <= event_tags(os.path.join(result.run_dir, "images"))
    assert not os.path.exists(os.path.join(result.run_dir, "checkpoint"))  # a finished run keeps no checkpoint


class Interrupt(Exception):
    pass


class InterruptAfter(keras.callbacks.Callback):
    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise Interrupt()


def test_a_nan_loss_stops_training_with_a_message_and_exports_nothing(tmp_path):
    exploding = VAEConfig(latent_dim=2, hidden=(16,), learning_rate=1e30)
    with pytest.raises(runs.TrainingDiverged, match="Lower the learning rate"):
        train.train("vae", exploding, tiny_data(), config_in(tmp_path), verbose=0)
    assert not os.path.exists(tmp_path / "exports" / "vae")


def test_help_lists_the_models(capsys):
    for argv in (["--help"], ["vae", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            train.main(argv)
        assert exit_.value.code == 0
    shown = capsys.readouterr().out
    assert "vae" in shown and "models:" in shown
    for flag in ("--epochs", "--batch-size", "--limit", "--seed", "--source", "--data-dir", "--dataset",
                 "--strategy", "--logdir", "--export-dir", "--latent-dim", "--hidden", "--preset"):
        assert flag in shown


@pytest.mark.parametrize("argv, message", [
    (["gan_of_dreams"], "invalid choice: 'gan_of_dreams'"),
    ([], "required: MODEL"),
    (["vae", "--epochs", "0"], "epochs must be positive, got 0"),
    (["vae", "--hidden", "256,x"], "not a comma-separated list of integers"),
    (["vae", "--latent-dim", "0"], "must be positive"),
    (["vae", "--activation", "wobbly"], "activation"),
    (["vae", "--dataset", "cifar10"], "invalid choice: 'cifar10'"),
    (["vae", "--preset", "z3"], "invalid choice: 'z3'"),
    (["vae", "--data-dir", "/no/such/folder"], "does not exist"),
    (["vae", "--source", "dir"], "needs a data_dir"),
])
def test_bad_command_line_input_is_a_clear_error_with_exit_code_2(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        train.main(argv + ["--logdir", str(tmp_path), "--export-dir", str(tmp_path)] if argv else argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_the_command_line_trains_and_exports(tmp_path):
    done = run_zoo("zoo.train", "vae", "--epochs", "1", "--limit", "200", "--validation-size", "100",
                   "--hidden", "16", "--preset", "z8", "--logdir", str(tmp_path / "logs"),
                   "--export-dir", str(tmp_path / "exports"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Exported to" in done.stdout
    card = train.export.read_card(str(tmp_path / "exports" / "vae_z8" / "1"))
    assert card["config"]["latent_dim"] == 8 and card["config"]["hidden"] == [16]  # the preset, then the flag


def test_training_and_export_under_mirrored_strategy(tmp_path, two_cpus):
    result = train.train("vae", TINY, tiny_data(), config_in(tmp_path, epochs=1), verbose=0, strategy=two_cpus)
    assert int(result.model.optimizer.iterations.numpy()) == 6
    loaded = tf.saved_model.load(result.export_path)
    images = loaded.signatures["sample"](num_samples=tf.constant(3), seed=tf.constant(0))["images"]
    assert images.shape == (3, 28, 28, 1)
    np.testing.assert_allclose(images, result.model.sample(3, 0), atol=1e-6)


def test_a_run_started_before_a_config_field_existed_resumes_while_the_field_is_at_its_default(tmp_path, capsys):
    """A run interrupted under an older zoo, whose run.json lacks a config field added since (here the VAE's
    learning_rate_schedule), resumes when the field is at its default, which reproduces that run; with another
    value it is another run."""
    run = config_in(tmp_path, epochs=2)
    with pytest.raises(Interrupt):
        train.train("vae", TINY, tiny_data(), run, extra_callbacks=[InterruptAfter(1)], verbose=0)
    run_dir = tmp_path / "logs" / "vae" / "seed0"
    record = json.loads((run_dir / "run.json").read_text())
    assert record["identity"]["config"].pop("learning_rate_schedule") == "constant"  # as an older zoo wrote it
    (run_dir / "run.json").write_text(json.dumps(record))

    cosine = dataclasses.replace(TINY, learning_rate_schedule="cosine")
    other = train.train("vae", cosine, tiny_data(), config_in(tmp_path, epochs=1, export=False), verbose=0)
    assert other.run_dir == f"{run_dir}-2"
    capsys.readouterr()
    resumed = train.train("vae", TINY, tiny_data(), run, verbose=0)
    assert resumed.run_dir == str(run_dir) and "resuming after epoch 1 of 2" in capsys.readouterr().out
