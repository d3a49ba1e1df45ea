import glob
import os

import numpy as np
import pytest

from conftest import run_zoo
from zoo import classifier, data, evaluate, figures
from zoo.experiments import dbn as dbn_experiments
from zoo.experiments import gan as gan_experiments
from zoo.experiments import rbm as rbm_experiments
from zoo.experiments import vae as vae_experiments
from zoo.models.vae import VAE, VAEConfig


def test_rbm_experiments_write_every_figure_and_the_summary(tmp_path):
    config = rbm_experiments.Config(epochs=1, hidden_sizes=(8,), cd_steps=(2,), learning_rates=(0.1,), limit=200,
                                    test_images=100, ais_chains=10, ais_temperatures=100, raise_images=20,
                                    sampler_samples=50, sampler_steps=20)
    notebook = rbm_experiments.run(config, str(tmp_path / "out"), str(tmp_path / "logs"))
    expected = {f"{name}.png" for name in (
        "curves_training_h8", "curves_rates_h8", "curves_inputs_h8", "filters_h8", "filters_sorted_h8",
        "samples_h8", "inpainting_h8", "reconstructions", "activation_frequency", "curves_centering", "samplers")}
    assert {os.path.basename(path) for path in notebook.figures} == expected
    assert all(os.path.getsize(tmp_path / "out" / name) > 1000 for name in expected)
    summary = (tmp_path / "out" / "README.md").read_text()
    for text in ("CD-1, lr 0.05 (baseline)", "real-valued inputs", "CD-2", "PCD-1", "CD-1, lr 0.1", "| 50% |",
                 "| centered PCD-1 | parallel tempering |", "test NLL, RAISE, first 20 images"):
        assert text in summary
    assert all(f"]({name})" in summary for name in expected)
    assert glob.glob(str(tmp_path / "out" / "tensorboard" / "events.out.tfevents.*"))
    runs = {os.path.basename(p) for p in glob.glob(str(tmp_path / "logs" / "rbm_experiments" / "*"))}
    assert runs == {"h8_cd1", "h8_real", "h8_cd2", "h8_pcd1", "h8_lr0.1", "h8_pcd_preset", "h8_centered_preset"}


@pytest.mark.parametrize("argv, message", [
    (["wgan"], "invalid choice: 'wgan'"),
    (["gan", "--ratios", "2:0"], "an update ratio is D:G"),
    (["rbm", "--hidden-sizes", "20,x"], "not a comma-separated list of integers"),
    (["rbm", "--epochs", "0"], "epochs, test_images, ais_chains and ais_temperatures must be positive"),
])
def test_bad_experiment_flags_are_clear_errors(argv, message):
    done = run_zoo("zoo.experiments", *argv)
    assert done.returncode == 2 and message in done.stderr, done.stderr[-2000:]


@pytest.fixture(scope="module")
def judge():
    return classifier.load_frozen()


def small_reference(judge, count):
    """The evaluator's reference on the first `count` test images."""
    splits = data.load(data.DataConfig(validation_size=0))
    return evaluate.Reference.from_arrays(
        splits.test.images[:count, ..., None] / 255.0, splits.test.labels[:count],
        splits.train.images[..., None] / 255.0, judge, evaluate.EvalConfig(num_samples=count, test_images=count))


def test_vae_experiments_write_every_figure_and_the_summary(tmp_path, judge):
    reference = small_reference(judge, 200)
    config = vae_experiments.Config(epochs=1, presets=("z2",), conv_latent_dims=(2,), limit=200, iw_samples=5,
                                    iw_images=20, num_samples=200, iwae_k=(1, 3), iwae_minutes=0.02, iwae_preset="z2")
    notebook = vae_experiments.run(config, str(tmp_path / "out"), str(tmp_path / "logs"), reference=reference)
    expected = {f"{name}.png" for name in (
        "reconstructions_z2", "boxplots_z2", "manifold_z2", "latent_layout_z2", "sweep_z2",
        "interpolation_linear_same_z2", "interpolation_linear_different_z2", "interpolation_spherical_same_z2",
        "interpolation_spherical_different_z2", "reconstructions_conv_z2", "samples_conv_z2", "iwae_time_curves")}
    assert {os.path.basename(path) for path in notebook.figures} == expected
    summary = (tmp_path / "out" / "README.md").read_text()
    assert "Convergence of the importance-weighted estimate" in summary and "| conv_z2 |" in summary
    assert "| k = 1 |" in summary and "| k = 3 |" in summary and "trained with k = " in summary
    runs = {os.path.basename(p) for p in glob.glob(str(tmp_path / "logs" / "vae_experiments" / "*"))}
    assert runs == {"z2", "conv_z2", "iwae_k1", "iwae_k3"}


def test_interpolation_ends_decode_exactly_the_two_codes_and_slerp_keeps_the_norm():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=16), rng.normal(size=16)
    for spherical in (False, True):
        path = figures.interpolate(a, b, 9, spherical)
        np.testing.assert_allclose(path[0], a, atol=1e-12)
        np.testing.assert_allclose(path[-1], b, atol=1e-12)
    c = 2.0 * a / np.linalg.norm(a)
    d = 2.0 * b / np.linalg.norm(b)
    norms = np.linalg.norm(figures.interpolate(c, d, 9, spherical=True), axis=1)
    np.testing.assert_allclose(norms, 2.0)


def test_interpolation_rows_start_and_end_with_the_two_test_images():
    model = VAE(VAEConfig(latent_dim=2, hidden=(8,)))
    images = np.random.default_rng(0).random((4, 28, 28, 1)).astype(np.float32)
    rows = vae_experiments.interpolation_rows(model, images, [(0, 1), (2, 3)], spherical=False)
    assert rows.shape == (18, 28, 28, 1)
    np.testing.assert_array_equal(rows[0], images[0])
    np.testing.assert_array_equal(rows[17], images[3])
    codes = model.encode(images)["latent"].numpy()
    inner = model.decode(figures.interpolate(codes[0], codes[1], 9)[1:-1].astype(np.float32)).numpy()
    np.testing.assert_allclose(rows[1:8], inner, atol=1e-6)


def test_dbn_experiments_write_every_figure_and_the_summary(tmp_path, judge):
    reference = small_reference(judge, 100)
    config = dbn_experiments.Config(layers=(784, 16, 12), epochs=1, fine_tune_epochs=1, limit=200, num_samples=100,
                                    ais_chains=10, ais_temperatures=100)
    notebook = dbn_experiments.run(config, str(tmp_path / "out"), str(tmp_path / "logs"), reference=reference)
    expected = {f"{name}.png" for name in ("W1", "W2", "R_finetuned", "Wprime_finetuned", "reconstructions",
                                           "top_states", "samples", "transposed_top_states", "transposed_W2")}
    assert {os.path.basename(path) for path in notebook.figures} == expected
    summary = (tmp_path / "out" / "README.md").read_text()
    for text in ("| single RBM (the first layer) |", "| greedy DBN |", "| fine-tuned DBN |", "(bound)"):
        assert text in summary


def test_gan_experiments_write_every_figure_and_the_summary(tmp_path, judge):
    reference = small_reference(judge, 100)
    config = gan_experiments.Config(epochs=1, mlp_epochs=1, generator_filters=(8, 4, 2), discriminator_filters=(2, 4),
                                    vae_epochs=1, vae_preset="z2", limit=200, num_samples=100,
                                    stabilisers=("quality",), study_epochs=2, study_mlp_epochs=2,
                                    study_limit=200)
    notebook = gan_experiments.run(config, str(tmp_path / "out"), str(tmp_path / "logs"), reference=reference)
    expected = {f"{name}.png" for name in (
        "samples_mlp_homework", "samples_mlp_leaky", "samples_dcgan_1to1", "samples_vae_z2", "samples_dcgan_2to1",
        "samples_dcgan_1to2", "curves_ratios", "samples_dcgan_1to1_no_bn", "curves_batch_norm", "curves_mlp",
        "study_dcgan_curves", "samples_study_dcgan_best", "study_mlp_curves", "samples_study_mlp_best")}
    assert {os.path.basename(path) for path in notebook.figures} == expected
    summary = (tmp_path / "out" / "README.md").read_text()
    for text in ("| real test images |", "| dcgan_2to1 | 1 |", "| dcgan_1to1_no_bn | 1 |", "| vae_z2 | 1 |",
                 "## Stabilisers", "| study_dcgan_quality | 2 (", "| study_mlp_quality | 2 ("):
        assert text in summary
    runs = {os.path.basename(p) for p in glob.glob(str(tmp_path / "logs" / "gan_experiments" / "*"))}
    study = {f"study_{family}_{name}" for family in ("dcgan", "mlp") for name in ("plain", "quality")}
    assert runs == {"mlp_homework", "mlp_leaky", "dcgan_1to1", "dcgan_2to1", "dcgan_1to2", "dcgan_1to1_no_bn",
                    "vae_z2"} | study
    for label in study:  # the curve of every epoch, and the epoch kept is its lowest
        curve = notebook.results[label]["val_frechet_distance"]
        assert len(curve) == 2 and notebook.results[label]["kept_epoch"] == 1 + int(np.argmin(curve))
    assert all(0 < r["classifier_score"] <= 10 for r in notebook.results.values())
