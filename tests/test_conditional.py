"""Class-conditional models: the conditional VAE (MLP and convolutional), the conditional DCGAN (projection and
auxiliary classifier) and the DBN with label units. Labels reach them through fit and the pipeline, their verbs
and exports take the class and refuse bad ones by name, the conditional VAE classifies by Bayes' rule, and the
evaluator scores what a requested class gives."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_python, run_zoo
from zoo import classifier, data, evaluate, export, likelihood, report
from zoo.models.cgan import ConditionalDCGAN, ConditionalDCGANConfig
from zoo.models.cvae import ConditionalConvVAE, ConditionalVAE
from zoo.models.dbn import DBN, DBNConfig

TINY_CVAE = dict(latent_dim=4, hidden=(32,), classify_samples=10)
TINY_CGAN = dict(latent_dim=8, generator_filters=(16, 8, 4), discriminator_filters=(4, 8))


@pytest.fixture(scope="module")
def digits():
    images, labels, test_images, test_labels, _ = data.load_arrays("mnist", "packaged", None)
    return images[:1500], labels[:1500], test_images[:300], test_labels[:300]


@pytest.fixture(scope="module")
def trained_cvae(digits):
    """A small conditional VAE trained for a few epochs on 1,500 images with their labels."""
    images, labels, *_ = digits
    model = ConditionalVAE(ConditionalVAE.Config(latent_dim=4, hidden=(128,), classify_samples=20), seed=0)
    model.compile()
    model.fit((images > 127).astype(np.uint8) * 255, labels, epochs=8, batch_size=50, verbose=0)
    return model


def test_the_conditional_vae_classifies_by_bayes_rule_and_makes_the_class_asked(trained_cvae, digits):
    *_, test_images, test_labels = digits
    x = data.as_images(test_images)
    probabilities = np.asarray(trained_cvae.classify(x))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert np.mean(probabilities.argmax(1) == test_labels) > 0.6  # far above chance (0.1)
    judge = classifier.load_frozen()
    samples = np.concatenate([np.asarray(trained_cvae.sample(40, seed=c, label=c)) for c in range(10)])
    agreement = np.mean(judge(samples)[0].argmax(1) == np.repeat(np.arange(10), 40))
    assert agreement > 0.2, agreement  # twice chance at least, for a small model trained on 1,500 images


def test_log_p_x_given_y_is_the_same_estimator_on_the_model_and_its_export(trained_cvae, digits, tmp_path):
    *_, test_images, test_labels = digits
    binary = data.binarize_once(data.as_images(test_images[:20]), 0)
    from_model = trained_cvae.log_likelihood(binary, test_labels[:20], k=50, seed=3)
    path = trained_cvae.export(str(tmp_path / "cvae"), verbose=False)
    loaded = export.Export(path)
    from_export = likelihood.importance_weighted_log_likelihood(*likelihood.export_verbs(loaded), binary, 50, 3,
                                                                labels=test_labels[:20])
    np.testing.assert_allclose(from_model, from_export, rtol=1e-4, atol=1e-3)
    wrong = trained_cvae.log_likelihood(binary, (test_labels[:20] + 5) % 10, k=50, seed=3)
    assert np.mean(from_model) > np.mean(wrong)  # a digit is likelier under its own class


def pretrained_dbn(model, n=500):
    """A DBN's greedy pretraining, each RBM five epochs of fit on its data (the labels joining the top one's); then
    its label units wired strongly, so that a tiny top RBM's samples depend on the class (the learning itself is
    test_dbn's)."""
    images, labels, *_ = data.load_arrays("mnist", "packaged", None)
    batch = (tf.constant(data.as_images(images[:n])), tf.constant(labels[:n]))

    def fit_stage(stage, rbm, transform):
        rbm.compile()
        rbm.fit(transform(batch, tf.constant(0, tf.int64)).numpy(), epochs=5, batch_size=50, verbose=0)

    model.pretrain(fit_stage)
    model.top.W[-10:].assign(np.random.default_rng(0).normal(0, 3, model.top.W[-10:].shape))
    return model


@pytest.mark.parametrize("make", [
    lambda: ConditionalVAE(ConditionalVAE.Config(**TINY_CVAE), seed=0),
    lambda: ConditionalConvVAE(ConditionalConvVAE.Config(**TINY_CVAE), seed=0),
    lambda: ConditionalDCGAN(ConditionalDCGANConfig(**TINY_CGAN), seed=0),
    lambda: ConditionalDCGAN(ConditionalDCGANConfig(**TINY_CGAN, conditioning="auxiliary"), seed=0),
    lambda: pretrained_dbn(DBN(DBNConfig(layers=(784, 24, 12), labels=True, sample_steps=20), seed=0)),
], ids=["cvae", "conv_cvae", "cdcgan projection", "cdcgan auxiliary", "dbn with labels"])
def test_every_conditional_model_trains_on_labels_and_its_verbs_and_export_take_the_class(make, digits, tmp_path):
    images, labels, *_ = digits
    model = make()
    model.compile()
    before = [w.numpy() for w in model.trainable_weights]
    model.fit(images[:200], labels[:200], epochs=1, batch_size=50, verbose=0)
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(before, model.trainable_weights))
    a, b = np.asarray(model.generate(np.array([5, 5]), np.array([1, 7]))), np.asarray(model.sample(1, 5, label=1))
    assert a.shape == (2, 28, 28, 1) and 0 <= a.min() and a.max() <= 1
    np.testing.assert_allclose(a[:1], b, atol=1e-5)  # generate's row i is sample(1, seed_i, label_i)
    assert not np.allclose(a[0], a[1])  # the class changes the image
    with pytest.raises(ValueError, match="a conditional model trains on \\(image, label\\) pairs"):
        model.fit(images[:50], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="labels must be class indices in 0..9"):
        model.fit(images[:50], labels[:50] + 10, epochs=1, verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="label must be a class in 0..9"):
        model.sample(2, 0, label=10)
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels must be one per row"):
        model.generate(np.array([1, 2, 3]), np.array([1, 2]))

    path = model.export(str(tmp_path / "export"), verbose=False)
    served = run_python(
        "import sys, tensorflow as tf\n"
        "s = tf.saved_model.load(sys.argv[1]).signatures\n"
        "x = s['sample'](num_samples=tf.constant(3), seed=tf.constant(5), label=tf.constant(1))['images']\n"
        "y = s['generate'](seeds=tf.constant([5, 5]), labels=tf.constant([1, 7]))['images']\n"
        "print(x.shape, float(tf.reduce_max(tf.abs(x[0] - y[0]))) < 1e-5, sorted(s))\n"
        "try:\n"
        "    s['generate'](seeds=tf.constant([1]), labels=tf.constant([11]))\n"
        "except tf.errors.InvalidArgumentError as e:\n"
        "    print('refused', 'labels must be classes in 0..9' in e.message)\n", path)
    assert served.returncode == 0, served.stderr[-3000:]
    assert "(3, 28, 28, 1) True" in served.stdout and "refused True" in served.stdout
    expected = sorted(list(model.SIGNATURES) + ["serving_default"])
    assert str(expected) in served.stdout
    # The report's samples of a conditional export: ten of each digit, row c being `sample(10, 1000 c, label=c)`.
    images, caption = report.sample_images(export.Export(path))
    assert images.shape == (100, 28, 28, 1) and "each digit" in caption
    for c in (0, 7):
        np.testing.assert_allclose(images[10 * c:10 * c + 10], model.sample(10, 1000 * c, label=c), atol=1e-5)


def test_the_projection_discriminator_scores_a_class_through_its_embedding_alone(digits):
    model = ConditionalDCGAN(ConditionalDCGANConfig(**TINY_CGAN), seed=0)
    real = model.training_images(data.as_images(digits[0][:4]))
    as_one, _ = model.discriminate(real, labels=tf.fill([4], 1))
    as_seven, _ = model.discriminate(real, labels=tf.fill([4], 7))
    assert not np.allclose(as_one, as_seven)
    model.class_embedding.set_weights([np.zeros_like(w) for w in model.class_embedding.get_weights()])
    plain = model.discriminator(real)
    np.testing.assert_allclose(model.discriminate(real, labels=tf.fill([4], 3))[0], plain, rtol=1e-5, atol=1e-5)


def test_the_conditional_models_train_from_the_command_line(tmp_path):
    folders = ["--logdir", str(tmp_path / "logs"), "--export-dir", str(tmp_path / "exports"), "--limit", "200",
               "--validation-size", "100", "--batch-size", "50", "--epochs", "1"]
    done = run_zoo("zoo.train", "cvae", *folders, "--hidden", "16", "--latent-dim", "2", "--classify-samples", "4")
    assert done.returncode == 0, done.stderr[-3000:]
    done = run_zoo("zoo.train", "cdcgan", *folders, "--latent-dim", "8", "--generator-filters", "16,8,4",
                   "--discriminator-filters", "4,8", "--quality-samples", "100")
    assert done.returncode == 0, done.stderr[-3000:]
    card = export.read_card(str(tmp_path / "exports" / "cdcgan" / "1"))
    assert card["kind"] == "cdcgan" and card["data"]["labels"] is True


class FakeConditionalExport(tf.Module):
    """`sample(n, seed, label)` draws test images of the class asked (an oracle); `classify` is the frozen
    classifier's view, all mass on the true labels of the pool, for a known test error."""

    def __init__(self, images, labels):
        super().__init__()
        self.images, self.labels = tf.constant(images, tf.float32), tf.constant(labels, tf.int32)

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32, name="num_samples"),
                                  tf.TensorSpec([], tf.int32, name="seed"), tf.TensorSpec([], tf.int32, name="label")])
    def sample(self, num_samples, seed, label):
        pool = tf.boolean_mask(self.images, tf.equal(self.labels, label))
        index = tf.random.stateless_uniform([num_samples], tf.stack([seed, 0]), 0, tf.shape(pool)[0], tf.int32)
        return {"images": tf.gather(pool, index)}

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32, name="images")])
    def classify(self, images):
        wrong_first = tf.concat([(self.labels[:1] + 1) % 10, self.labels[1:]], 0)  # one mistake in the pool
        return {"probabilities": tf.one_hot(wrong_first[:tf.shape(images)[0]], 10)}


def test_the_evaluator_scores_samples_of_a_requested_class_and_a_models_own_classification(tmp_path):
    splits = data.load(data.DataConfig(validation_size=0))
    n = 400
    test_images, test_labels = data.as_images(splits.test.images[:n]), splits.test.labels[:n]
    module = FakeConditionalExport(test_images, test_labels)
    path = str(tmp_path / "fake" / "1")
    tf.saved_model.save(module, path, signatures={"sample": module.sample, "classify": module.classify})
    reference = evaluate.Reference.from_arrays(test_images, test_labels, data.as_images(splits.train.images[:2000]),
                                               classifier.load_frozen(), evaluate.EvalConfig(num_samples=500,
                                                                                             test_images=n))
    row = evaluate.evaluate_export(path, reference, log=lambda text: None)
    samples = row["samples"]
    assert samples["label_accuracy"] > 0.95  # real digits of the class asked: the classifier agrees
    assert set(samples["per_class"]) == {str(c) for c in range(10)}
    assert all(c["frechet_distance"] is not None for c in samples["per_class"].values())
    assert row["classification"]["test_error"] == pytest.approx(1 / n)
    from zoo.leaderboard import format_tables
    text = format_tables([row], reference.real_data_figures())
    assert "### Class-conditional models" in text and "| 0.25% |" in text


def test_a_proposal_fitted_to_each_image_tightens_the_bound_of_the_same_model(trained_cvae, digits, tmp_path):
    *_, test_images, test_labels = digits
    binary, labels = data.binarize_once(data.as_images(test_images[:20]), 0), test_labels[:20]
    amortised = trained_cvae.log_likelihood(binary, labels, k=50, seed=3)
    refined = trained_cvae.log_likelihood(binary, labels, k=50, seed=3, refine_steps=30)
    assert np.mean(refined) > np.mean(amortised) + 0.05, (np.mean(refined), np.mean(amortised))
    assert np.mean(refined > amortised) > 0.5  # most images gain, not a few outliers
    # The same fit through an export's signatures alone: gradients flow through the served decoder.
    loaded = export.Export(trained_cvae.export(str(tmp_path / "cvae"), verbose=False))
    from_export = likelihood.importance_weighted_log_likelihood(*likelihood.export_verbs(loaded), binary, 50, 3,
                                                                labels=labels, refine_steps=30)
    np.testing.assert_allclose(from_export, refined, rtol=1e-3, atol=0.05)
    with pytest.raises(ValueError, match="refine_steps"):
        trained_cvae.log_likelihood(binary, labels, k=50, refine_steps=-1)
