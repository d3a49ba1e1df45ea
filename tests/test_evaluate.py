import json
import math
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_zoo, tiny_data
from zoo import classifier, data, evaluate, export, leaderboard, likelihood, metrics
from zoo.models.vae import VAE, VAEConfig

N = 400  # test images and samples: enough for stable figures, small enough to be quick

IMAGES = tf.TensorSpec([None, 28, 28, 1], tf.float32, name="images")
SEED = tf.TensorSpec([], tf.int32, name="seed")


class FakeExport(tf.Module):
    """`sample` draws images from a fixed pool; `inpaint` returns the pool itself (an oracle when the pool is the
    evaluated test set, which the evaluator passes in order, in one batch)."""

    def __init__(self, pool):
        super().__init__()
        self.pool = tf.constant(pool, tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32, name="num_samples"), SEED])
    def sample(self, num_samples, seed):
        index = tf.random.stateless_uniform([num_samples], tf.stack([seed, 0]), 0, tf.shape(self.pool)[0], tf.int32)
        return {"images": tf.gather(self.pool, index)}

    @tf.function(input_signature=[IMAGES, tf.TensorSpec([None, 28, 28, 1], tf.float32, name="mask"), SEED])
    def inpaint(self, images, mask, seed):
        return {"images": self.pool[:tf.shape(images)[0]]}


def save_fake(path, pool, signatures=("sample", "inpaint")):
    module = FakeExport(pool)
    tf.saved_model.save(module, str(path), signatures={name: getattr(module, name) for name in signatures})
    return str(path)


@pytest.fixture(scope="module")
def judge():
    return classifier.load_frozen()  # the shipped one: loads in a moment


@pytest.fixture(scope="module")
def reference(judge):
    splits = data.load(data.DataConfig(validation_size=0))
    config = evaluate.EvalConfig(num_samples=N, test_images=N, iw_samples=10)
    return evaluate.Reference.from_arrays(splits.test.images[:N, ..., None] / 255.0, splits.test.labels[:N],
                                          splits.train.images[..., None] / 255.0, judge, config)


@pytest.fixture(scope="module")
def ceiling(reference):
    return reference.real_data_figures()


def test_the_classifier_learns_and_its_features_have_128_units(judge, reference):
    assert judge.test_accuracy > 0.9
    probabilities, features = judge(reference.test_images[:10])
    assert probabilities.shape == (10, 10) and features.shape == (10, 128)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_real_test_images_score_near_the_ceiling_and_noise_far_from_it(reference, ceiling, tmp_path):
    real = evaluate.sample_figures(export.Export(save_fake(tmp_path / "real", reference.test_images)), reference)
    noise_pool = np.random.default_rng(0).random((N, 28, 28, 1)).astype(np.float32)
    noise = evaluate.sample_figures(export.Export(save_fake(tmp_path / "noise", noise_pool)), reference)
    top = ceiling["samples"]
    assert real["classifier_score"] == pytest.approx(top["classifier_score"], rel=0.15)
    assert top["classifier_score"] > 5 and noise["classifier_score"] < 2
    assert real["frechet_distance"] < 0.1 * noise["frechet_distance"]
    assert real["nearest_train_distance"] == pytest.approx(top["nearest_train_distance"], rel=0.1)
    assert noise["nearest_train_distance"] > 2 * top["nearest_train_distance"]
    assert sum(real["class_histogram"]) == N and min(real["class_histogram"]) > 0


def test_inpainting_that_returns_the_originals_has_zero_error(reference, ceiling, tmp_path):
    oracle = export.Export(save_fake(tmp_path / "oracle", reference.test_images))
    figures = evaluate.inpainting_figures(oracle, reference)
    assert list(figures) == ["20%", "50%", "80%"]
    for fraction, scores in figures.items():
        assert scores["mse"] == 0.0
        assert scores["accuracy"] == pytest.approx(ceiling["inpainting"][fraction]["original"]["accuracy"])
        assert ceiling["inpainting"][fraction]["mean_image"]["mse"] > 0


def test_masks_miss_exactly_the_fraction_asked_for():
    masks = metrics.random_masks((50, 28, 28, 1), 0.2, seed=3)
    assert set(np.unique(masks)) == {0.0, 1.0}
    np.testing.assert_array_equal((masks == 0).sum(axis=(1, 2, 3)), round(0.2 * 784))
    np.testing.assert_array_equal(masks, metrics.random_masks((50, 28, 28, 1), 0.2, seed=3))
    assert not np.array_equal(masks[0], masks[1])


def test_baselines_on_a_hand_made_example(judge):
    # Test images all 1; training images all 0.2 and all 0.4, so the mean training image is 0.3 everywhere.
    test_images = np.ones((4, 28, 28, 1), np.float32)
    train_images = np.concatenate([np.full((3, 28, 28, 1), 0.2), np.full((3, 28, 28, 1), 0.4)]).astype(np.float32)
    config = evaluate.EvalConfig(num_samples=4, test_images=4, fractions=(0.5,))
    reference = evaluate.Reference.from_arrays(test_images, np.zeros(4, int), train_images, judge, config)
    inpainting = reference.real_data_figures()["inpainting"]["50%"]
    assert inpainting["mean_image"]["mse"] == pytest.approx((1 - 0.3) ** 2)
    assert inpainting["zeros"]["mse"] == pytest.approx(1.0)
    assert inpainting["original"]["mse"] == 0.0


def test_figures_against_direct_computations():
    # Classifier score: one-hot, evenly spread classes give exactly the number of classes; identical rows give 1.
    assert metrics.classifier_score(np.eye(10)[np.arange(100) % 10]) == pytest.approx(10, rel=1e-6)
    assert metrics.classifier_score(np.full((100, 10), 0.1)) == pytest.approx(1.0)
    # Fréchet distance: 0 for the same set; for Gaussians N(0, I) and N(m, 4I) it is |m|^2 + d (1 + 4 - 2*2).
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(20000, 4)), 2 * rng.normal(size=(20000, 4)) + 1.0
    assert metrics.frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    assert metrics.frechet_distance(a, b) == pytest.approx(4 * 1.0 + 4 * 1.0, rel=0.05)
    # Nearest distances: an image's own copy is at 0; a shifted one at the known distance.
    pool = rng.random((30, 28, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(metrics.nearest_distances(pool[:5], pool), 0, atol=1e-6)  # computed directly
    far = np.full((1, 28, 28, 1), 5.0, np.float32)
    expected = np.sqrt(((5.0 - pool.reshape(30, -1)) ** 2).sum(axis=1)).min()
    assert metrics.nearest_distances(far, pool)[0] == pytest.approx(expected, rel=1e-4)
    # Binary cross-entropy of a pixel at 0.5 predicted as 0.5 is log 2 per pixel.
    half = np.full((1, 28, 28, 1), 0.5)
    assert metrics.binary_cross_entropy(half, half)[0] == pytest.approx(784 * math.log(2))


@pytest.fixture(scope="module")
def vae_export(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = VAE(VAEConfig(latent_dim=2, hidden=(32,)))
    model.compile()
    p = data.datasets(tiny_data(binarize="dynamic"))
    model.fit(p.train, steps_per_epoch=p.steps_per_epoch, epochs=5, verbose=0)
    path = export.export_model(model, str(tmp_path_factory.mktemp("exports")), "vae", {"kind": "vae"})
    return model, path


def test_importance_weighted_bound_with_one_sample_is_the_elbo_and_grows_with_k(vae_export, reference):
    model, path = vae_export
    loaded = export.Export(path)
    x = reference.binarized[:64]

    # The ELBO computed independently, in the model itself from decoder logits: E_q[log p(x|z)] - KL.
    draws = 2000
    mean, log_var = (t.numpy() for t in model.posterior(x))
    kl = 0.5 * np.sum(np.exp(log_var) + mean ** 2 - 1 - log_var, axis=1)
    noise = np.random.default_rng(0).normal(size=(64, draws, 2))
    z = (mean[:, None] + np.exp(0.5 * log_var)[:, None] * noise).reshape(-1, 2).astype(np.float32)
    targets = np.repeat(x.reshape(64, 1, 784), draws, axis=1).reshape(-1, 784)
    log_px_z = -tf.nn.sigmoid_cross_entropy_with_logits(targets, model.decoder(z)).numpy().sum(axis=1)
    elbo_draws = log_px_z.reshape(64, draws) - kl[:, None]

    # k = 1 on `draws` copies of each image: that many independent one-sample bounds per image.
    verbs = likelihood.export_verbs(loaded)
    bound_draws = likelihood.importance_weighted_log_likelihood(*verbs, np.repeat(x, draws, axis=0), k=1)
    standard_error = np.sqrt((elbo_draws.var() + bound_draws.var()) / elbo_draws.size)
    assert abs(bound_draws.mean() - elbo_draws.mean()) < 4 * standard_error
    bounds = [likelihood.importance_weighted_log_likelihood(*verbs, x, k=k).mean() for k in (1, 10, 100, 1000)]
    assert bounds == sorted(bounds) and bounds[-1] > bounds[0] + 0.5
    assert bounds[-1] < 0


def test_a_missing_signature_is_reported_not_a_crash(reference, ceiling, tmp_path):
    path = save_fake(tmp_path / "gan_like" / "1", reference.test_images, signatures=("sample",))
    row = evaluate.evaluate_export(path, reference, log=lambda text: None)
    assert "classifier_score" in row["samples"]
    assert "no `reconstruct` signature" in row["reconstruction"]["missing"]
    assert "no `inpaint` signature" in row["inpainting"]["missing"]
    assert "no likelihood estimator" in row["likelihood"]["missing"]
    tables = leaderboard.format_tables([row], ceiling)
    assert "| gan_like/1 | not exported |" in tables


def test_leaderboard_from_the_command_line(vae_export, tmp_path, capsys):
    _, path = vae_export
    exports = os.path.dirname(os.path.dirname(path))
    done = run_zoo("zoo.evaluate", "--all", exports, "--out", str(tmp_path), "--num-samples", "300",
                   "--test-images", "200", "--iw-samples", "20")
    assert done.returncode == 0, done.stderr[-3000:]
    results = (tmp_path / "RESULTS.md").read_text()
    for heading in ("### Samples", "### Reconstructions", "### Inpainting", "### Test log-likelihood"):
        assert heading in results
    assert "| real test images |" in results and "| vae/1 | vae |" in results
    assert "importance-weighted bound, k=20" in results
    saved = json.loads((tmp_path / "RESULTS.json").read_text())
    assert saved["exports"][0]["likelihood"]["nll_nats"] > 0

    # --update keeps the rows it has and evaluates only the new export.
    splits = data.load(data.DataConfig(validation_size=0))
    new = save_fake(os.path.join(exports, "zz_gan_like", "1"), splits.train.images[:500, ..., None] / 255.0,
                    signatures=("sample",))
    try:
        done = run_zoo("zoo.evaluate", "--all", exports, "--out", str(tmp_path), "--num-samples", "300",
                       "--test-images", "200", "--iw-samples", "20", "--update")
    finally:
        shutil.rmtree(os.path.dirname(new))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Keeping 1 rows" in done.stdout and f"Evaluating {path}" not in done.stdout
    updated = json.loads((tmp_path / "RESULTS.json").read_text())
    assert updated["exports"][0] == saved["exports"][0] and updated["real_data"] == saved["real_data"]
    assert updated["exports"][1]["export"] == new and updated["exports"][1]["samples"]["classifier_score"] > 1
    assert "| zz_gan_like/1 |" in (tmp_path / "RESULTS.md").read_text()

    # Bad arguments: exit status 2 and the problem named (in this process: the command's own argument checks).
    for argv, message in (([], "no exports given"), (["/no/such/export"], "not an export folder"),
                          (["--all", "/no/such/folder"], "is not a folder")):
        with pytest.raises(SystemExit) as bad:
            evaluate.main(argv)
        assert bad.value.code == 2 and message in capsys.readouterr().err


def test_report_writes_every_figure_and_an_index(vae_export, tmp_path):
    _, path = vae_export
    exports = os.path.dirname(os.path.dirname(path))
    done = run_zoo("zoo.report", "--exports", exports, "--out", str(tmp_path / "reports"),
                   "--results", str(tmp_path / "none.json"))
    assert done.returncode == 0, done.stderr[-3000:]
    figures = sorted(os.listdir(tmp_path / "reports" / "vae"))
    assert figures == ["inpainting.png", "latent_layout.png", "manifold.png", "reconstructions.png", "samples.png"]
    index = (tmp_path / "reports" / "index.md").read_text()
    for figure in figures:
        assert f"(vae/{figure})" in index
    assert "squared error on the missing pixels 20%:" in index
    empty = run_zoo("zoo.report", "--exports", str(tmp_path / "nothing"))
    assert empty.returncode == 2 and "no exports under" in empty.stderr


def test_one_importance_weight_is_the_elbo_of_the_same_noise(vae_export, reference):
    model, _ = vae_export
    x = reference.binarized[:16]
    mean, log_var = model.posterior(x)
    noise = tf.random.stateless_normal([16, 1, 2], [0, 1])
    z = mean[:, None] + tf.exp(0.5 * log_var)[:, None] * noise
    means = tf.reshape(model.decode(tf.reshape(z, [16, 2])), [16, 1, 784])
    log_w = likelihood.importance_weighted_bound(likelihood.log_bernoulli_means(x.reshape(16, 1, 784), means), z,
                                                 noise, log_var).numpy()  # one sample: its log weight
    # log p(x|z) + log p(z) - log q(z|x) for that z, computed independently from the decoder's logits.
    z = z.numpy()[:, 0]
    log_px_z = -tf.nn.sigmoid_cross_entropy_with_logits(x.reshape(16, 784), model.decoder(z)).numpy().sum(axis=1)
    log_pz = -0.5 * np.sum(z ** 2 + np.log(2 * np.pi), axis=1)
    log_qz = -0.5 * np.sum(noise.numpy()[:, 0] ** 2 + log_var.numpy() + np.log(2 * np.pi), axis=1)
    np.testing.assert_allclose(log_w, log_px_z + log_pz - log_qz, rtol=1e-4, atol=1e-3)
    # The model's own method is the same estimator as the evaluator's on its export.
    np.testing.assert_allclose(model.log_likelihood(x, k=10, seed=3),
                               likelihood.importance_weighted_log_likelihood(model.encode, model.decode, x, 10, 3))


def test_update_keeps_rows_recorded_before_a_setting_existed_but_not_rows_of_other_settings(tmp_path):
    config = evaluate.EvalConfig()
    recorded = {k: v for k, v in json.loads(json.dumps(config.__dict__)).items() if k != "raise_images"}
    path = tmp_path / "RESULTS.json"
    path.write_text(json.dumps({"config": recorded, "real_data": {"r": 1}, "exports": [{"export": "a/1"}]}))
    rows, real = leaderboard.earlier_results(str(path), config)
    assert list(rows) == ["a/1"] and real == {"r": 1}
    rows, real = leaderboard.earlier_results(str(path), evaluate.EvalConfig(ais_chains=7))
    assert rows == {} and real is None


def test_conv_vae_likelihood_is_on_its_subset_and_the_mlps_on_every_image(vae_export, reference):
    """The conv VAE's bound runs on the first conv_vae_images test images (the row says so); an MLP VAE's on all."""
    _, path = vae_export
    loaded = export.Export(path)
    subset = evaluate.Reference(**{**reference.__dict__, "config": evaluate.EvalConfig(iw_samples=10,
                                                                                        conv_vae_images=50)})
    mlp = likelihood.vae_likelihood(loaded, subset)
    loaded.card = dict(loaded.card, kind="conv_vae")  # the same signatures, judged as a conv VAE's
    conv = likelihood.vae_likelihood(loaded, subset)
    assert mlp["images"] == N and "first" not in mlp["method"]
    assert conv["images"] == 50 and conv["method"] == "importance-weighted bound, k=10, first 50 test images"
    expected = likelihood.importance_weighted_log_likelihood(*likelihood.export_verbs(loaded),
                                                             reference.binarized[:50], 10, 0)
    assert conv["nll_nats"] == pytest.approx(-expected.mean(), rel=1e-6)


def test_the_evaluator_fits_q_to_each_image_when_asked_and_says_so(vae_export, reference):
    _, path = vae_export
    loaded = export.Export(path)
    rows = {steps: likelihood.vae_likelihood(loaded, evaluate.Reference(**{
        **reference.__dict__, "config": evaluate.EvalConfig(iw_samples=10, refine_steps=steps)})) for steps in (0, 20)}
    assert rows[20]["method"] == "importance-weighted bound, k=10, q fitted to each image by 20 Adam steps"
    assert rows[20]["nll_nats"] < rows[0]["nll_nats"]  # a tighter bound of the same model
    with pytest.raises(ValueError, match="refine_steps must be 0 or positive"):
        evaluate.EvalConfig(refine_steps=-1)


def test_update_keeps_the_rows_of_exports_not_on_this_machine(tmp_path):
    present = tmp_path / "exports" / "a" / "1"
    present.mkdir(parents=True)
    earlier = {str(present): {"export": str(present), "old": True}, "gone/exports/b/1": {"export": "gone/exports/b/1"}}
    rows = leaderboard.with_absent_exports([{"export": str(present)}], earlier)
    # The evaluated row of an export on disk wins; the recorded row of an export that is gone is kept.
    assert rows == sorted([{"export": "gone/exports/b/1"}, {"export": str(present)}], key=lambda r: r["export"])


def test_update_brings_an_old_dbn_row_up_to_date_but_leaves_a_labelled_dbn_row_alone(reference, monkeypatch):
    """An unlabelled DBN row recorded before the bound existed gets it; a DBN with labels has no bound to add."""
    added = []
    monkeypatch.setitem(evaluate.LIKELIHOODS, "dbn", lambda export_, reference_: added.append(1) or {
        "variational_bound": 1.0})
    monkeypatch.setattr(evaluate, "Export", lambda path: path)
    missing = {"missing": "a DBN with label units: no bound"}
    labelled = {"export": "e/l/1", "kind": "dbn", "config": {"labels": True}, "likelihood": dict(missing)}
    old = {"export": "e/o/1", "kind": "dbn", "config": {"labels": False}, "likelihood": {"missing": "no estimator"}}
    earlier = {"e/l/1": labelled, "e/o/1": old}
    assert evaluate.evaluated_row("e/l/1", reference, earlier)["likelihood"] == missing and added == []
    assert evaluate.evaluated_row("e/o/1", reference, earlier)["likelihood"] == {"variational_bound": 1.0}
    assert added == [1]
