import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_data
from zoo import data
from zoo.models.vae import VAE, ConvVAE, ConvVAEConfig, VAEConfig, bernoulli_nll, learning_rate_schedule

TINY = VAEConfig(latent_dim=2, hidden=(32,))
TINY_IW = VAEConfig(latent_dim=2, hidden=(32,), importance_samples=4)


def tiny_vae(seed=0, optimizer=None, config=TINY):
    keras.utils.set_random_seed(seed)
    model = VAE(config, seed=seed)
    model.compile(optimizer=optimizer)
    model.build_for_images()
    return model


@pytest.fixture(scope="module")
def test_images():
    return data.load(tiny_data()).test.images[:16, ..., None].astype(np.float32) / 255.0


def test_loss_falls_over_a_few_hundred_steps():
    p = data.datasets(tiny_data(batch_size=30))
    model = tiny_vae()
    history = model.fit(p.train, steps_per_epoch=p.steps_per_epoch, validation_data=p.validation, epochs=20,
                        verbose=0).history  # 200 steps
    assert int(model.optimizer.iterations) == 200
    assert history["loss"][-1] < 0.6 * history["loss"][0]
    assert history["val_loss"][-1] < 0.7 * history["val_loss"][0]
    for split in ("", "val_"):  # loss = reconstruction + kl, each per image
        np.testing.assert_allclose(history[f"{split}loss"], np.add(history[f"{split}reconstruction"],
                                                                   history[f"{split}kl"]), rtol=1e-4)
    assert min(history["kl"]) > 0


def test_kl_term_comes_through_add_loss(test_images):
    model = tiny_vae()
    model(test_images)
    (kl,) = model.losses
    code = model.encode(test_images)
    mean, log_var = code["latent"].numpy(), code["log_var"].numpy()
    expected = 0.5 * np.sum(np.exp(log_var) + mean ** 2 - 1 - log_var, axis=1).mean()
    assert float(kl) == pytest.approx(expected, rel=1e-5)
    model(test_images[:4])
    assert len(model.losses) == 1  # cleared on every call, not accumulated


def test_serving_verbs(test_images):
    model = tiny_vae()
    a, b, c = model.sample(8, 1), model.sample(8, 1), model.sample(8, 2)
    assert a.shape == (8, 28, 28, 1) and float(tf.reduce_min(a)) >= 0 and float(tf.reduce_max(a)) <= 1
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert model.reconstruct(test_images).shape == test_images.shape
    np.testing.assert_allclose(model.decode(model.encode(test_images)["latent"]), model.reconstruct(test_images))

    mask = (np.random.default_rng(0).random(test_images.shape) > 0.5).astype(np.float32)
    filled = model.inpaint(test_images, mask, seed=3).numpy()
    observed = mask == 1
    np.testing.assert_array_equal(filled[observed], test_images[observed])
    assert filled.min() >= 0 and filled.max() <= 1
    np.testing.assert_array_equal(filled, model.inpaint(test_images, mask, seed=3))


def test_wrong_image_shape_is_a_clear_error():
    model = tiny_vae()
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"shape \[batch, 28, 28, 1\].*got shape \[4, 784\]"):
        model.reconstruct(np.zeros((4, 784), np.float32))
    with pytest.raises(ValueError, match="must be positive"):
        VAEConfig(latent_dim=0)
    with pytest.raises(ValueError, match="activation"):
        VAEConfig(activation="wobbly")


@pytest.mark.parametrize("model_config", [TINY, TINY_IW], ids=["elbo", "iw_bound_k4"])
def test_mirrored_strategy_on_two_devices_matches_one_device(two_cpus, model_config):
    """The same seeded run on one device and on two replicas gives the same weights and metrics, for the ELBO and
    for the importance-weighted bound (each replica draws its rows of the global batch's k samples).

    SGD, not Adam: Adam is invariant to the scale of the gradient, so it would hide a loss that is not divided by
    the number of replicas; with SGD that mistake doubles every step.
    """
    config = tiny_data(batch_size=60)
    results = []
    for strategy in (tf.distribute.get_strategy(), two_cpus):
        p = data.datasets(config)
        with strategy.scope():
            model = tiny_vae(optimizer=keras.optimizers.SGD(1e-3), config=model_config)
        history = model.fit(p.train, steps_per_epoch=p.steps_per_epoch, validation_data=p.validation, epochs=2,
                            verbose=0).history
        assert strategy.num_replicas_in_sync == len(results) + 1
        results.append((history, [v.numpy() for v in model.trainable_variables]))
    (history_one, weights_one), (history_two, weights_two) = results
    for key in history_one:
        np.testing.assert_allclose(history_one[key], history_two[key], rtol=1e-4, err_msg=key)
    for w1, w2 in zip(weights_one, weights_two):
        np.testing.assert_allclose(w1, w2, rtol=1e-4, atol=1e-6)
    assert not np.allclose(weights_one[0], tiny_vae(optimizer=keras.optimizers.SGD(1e-3),
                                                    config=model_config).trainable_variables[0])
    assert history_one["loss"][-1] < history_one["loss"][0]


def test_k1_loss_is_the_elbo_with_its_kl_through_add_loss(test_images):
    """importance_samples = 1 trains what the VAE always trained: -ELBO with one reparameterised sample and the
    analytic KL, here recomputed by hand from the same noise."""
    model = tiny_vae()
    loss, reconstruction, kl = model.compute_terms(test_images, training=False)
    code = model.encode(test_images)
    mean, log_var = code["latent"], code["log_var"]
    eps = tf.random.stateless_normal(mean.shape, [model.seed, -1])
    logits = model.decoder(mean + tf.exp(0.5 * log_var) * eps)
    expected_kl = 0.5 * np.sum(np.exp(log_var) + mean ** 2 - 1 - log_var, axis=1).mean()
    expected_reconstruction = float(tf.reduce_mean(bernoulli_nll(test_images, logits)))
    assert float(kl) == pytest.approx(expected_kl, rel=1e-5)
    assert float(reconstruction) == pytest.approx(expected_reconstruction, rel=1e-5)
    assert float(loss) == pytest.approx(expected_reconstruction + expected_kl, rel=1e-5)


def mean_bound(model, images, k, draws=10):
    """The importance-weighted bound L_k per image, averaged over the images and `draws` noise draws."""
    model.config.importance_samples = k
    bounds = []
    for draw in range(draws):
        model.seed = draw  # the evaluation noise is keyed by the model's seed
        bounds.append(-float(model.negative_iw_bound(images, training=False)[0]))
    return np.mean(bounds)


def test_iw_bound_is_at_least_the_elbo_and_grows_with_k(test_images):
    """E[L_1] = ELBO <= E[L_5] <= E[L_50] (Burda et al. 2015, theorem 1), on the same batch and weights."""
    binary = (test_images > 0.5).astype(np.float32)
    model = tiny_vae(config=VAEConfig(latent_dim=2, hidden=(32,)))
    elbo = np.mean([-float(model.compute_terms(binary, training=False)[0]) for model.seed in range(10)])
    l1, l5, l50 = (mean_bound(model, binary, k) for k in (1, 5, 50))
    assert l1 == pytest.approx(elbo, abs=0.5)  # the same bound, with a sampled instead of an analytic KL
    assert elbo + 0.2 < l5 < l50  # measured: 0.42 and 0.54 nats above the ELBO (q is near the prior, untrained)


def test_iw_gradients_are_finite_for_k50_and_extreme_logits(test_images):
    model = tiny_vae(config=VAEConfig(latent_dim=2, hidden=(32,), importance_samples=50))
    last = model.decoder.layers[-1]
    last.bias.assign(np.where(np.arange(784) % 2 == 0, 1e4, -1e4).astype(np.float32))  # p(x|z) = 0 for most x
    kernel = last.kernel
    kernel.assign(kernel * 1e3)  # and logits that swing by thousands of nats between the k samples
    with tf.GradientTape() as tape:
        loss, _, _ = model.compute_terms(test_images, training=True)
    gradients = tape.gradient(loss, model.trainable_variables)
    assert np.isfinite(float(loss)) and float(loss) > 1e4
    assert all(np.all(np.isfinite(g)) for g in gradients)


def test_learning_rate_schedules():
    assert learning_rate_schedule(1e-3, "constant") == 1e-3
    cosine = learning_rate_schedule(1e-3, "cosine", total_steps=100)
    assert float(cosine(0)) == pytest.approx(1e-3) and float(cosine(50)) == pytest.approx(5e-4)
    assert float(cosine(100)) == pytest.approx(0.0, abs=1e-9)
    burda = learning_rate_schedule(1e-3, "burda", total_steps=3280)  # one step per epoch: the paper's stages
    for epoch, stage in ((0, 0), (1, 1), (3, 1), (4, 2), (12, 2), (13, 3), (1093, 7), (3279, 7)):
        assert float(burda(epoch)) == pytest.approx(1e-3 * 10 ** (-stage / 7), rel=1e-5), epoch
    with pytest.raises(ValueError, match="needs the run's length"):
        learning_rate_schedule(1e-3, "cosine")
    with pytest.raises(ValueError, match="learning_rate_schedule must be one of"):
        VAEConfig(learning_rate_schedule="linear")
    with pytest.raises(ValueError, match="importance_samples must be at least 1"):
        VAEConfig(importance_samples=0)


def test_conv_vae_shares_the_objective_and_verbs_and_learns(test_images, tmp_path):
    keras.utils.set_random_seed(0)
    model = ConvVAE(ConvVAEConfig(latent_dim=3, hidden=(16,), filters=(4, 8)))
    model.compile()
    model.build_for_images()
    kinds = [type(layer).__name__ for layer in model.encoder.layers + model.decoder.layers]
    assert kinds.count("Conv2D") == 2 and kinds.count("Conv2DTranspose") == 3
    p = data.datasets(tiny_data(batch_size=30))
    history = model.fit(p.train, steps_per_epoch=p.steps_per_epoch, epochs=8, verbose=0).history
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    code = model.encode(test_images)
    assert code["latent"].shape == (16, 3) and code["log_var"].shape == (16, 3)
    assert model.decode(code["latent"]).shape == test_images.shape
    np.testing.assert_array_equal(model.sample(4, 1), model.sample(4, 1))
    mask = (np.random.default_rng(0).random(test_images.shape) > 0.5).astype(np.float32)
    filled = model.inpaint(test_images, mask, seed=3).numpy()
    np.testing.assert_array_equal(filled[mask == 1], test_images[mask == 1])
    with pytest.raises(ValueError, match="filters"):
        ConvVAEConfig(filters=(8, 16, 32))
