import dataclasses
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_python, run_zoo, tiny_data
from zoo import callbacks, data, runs, train
from zoo.models.gan import DCGAN, GAN, DCGANConfig, GANConfig, discriminator_loss, generator_loss

TINY_MLP = GANConfig(latent_dim=8, generator_hidden=(32,), discriminator_hidden=(32,))
TINY_DCGAN = DCGANConfig(latent_dim=8, generator_filters=(16, 8, 4), discriminator_filters=(4, 8))


def tiny(model_class=GAN, config=TINY_MLP, seed=0, **compile_kwargs):
    keras.utils.set_random_seed(seed)
    model = model_class(config, seed=seed)
    model.compile(**compile_kwargs)
    return model


def pipelines(model_class=GAN, config=TINY_MLP, **changes):
    name = "dcgan" if model_class is DCGAN else "gan"
    return data.datasets(train.data_config_for(name, config, **{**dict(limit=300, validation_size=100, batch_size=50),
                                                                **changes}))


def values(variables):
    return [v.numpy().copy() for v in variables]


def changed(before, variables):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]


@pytest.mark.parametrize("model_class, config", [(GAN, TINY_MLP), (DCGAN, TINY_DCGAN)])
def test_each_step_updates_only_its_own_network(model_class, config):
    model = tiny(model_class, config)
    real = model.training_images(next(iter(pipelines(model_class, config).train)))
    g_before, d_before = values(model.generator.trainable_variables), values(model.discriminator.trainable_variables)
    model.discriminator_step(real)
    assert all(changed(d_before, model.discriminator.trainable_variables))
    assert not any(changed(g_before, model.generator.trainable_variables))

    d_before = values(model.discriminator.trainable_variables)
    model.generator_step(tf.shape(real)[0])
    assert all(changed(g_before, model.generator.trainable_variables))
    assert not any(changed(d_before, model.discriminator.trainable_variables))
    assert int(model.d_optimizer.iterations) == 1 and int(model.g_optimizer.iterations) == 1
    # Each optimizer holds slots for its own network only.
    own = {id(v) for v in model.generator.trainable_variables}
    assert model.g_optimizer._trainable_variables and all(id(v) in own for v in model.g_optimizer._trainable_variables)


@pytest.mark.parametrize("d_steps, g_steps", [(1, 1), (2, 1), (1, 2)])
def test_update_ratios_are_honoured(d_steps, g_steps):
    config = GANConfig(**{**vars(TINY_MLP), "d_steps": d_steps, "g_steps": g_steps})
    p = pipelines(config=config)
    model = tiny(config=config, steps_per_execution=3)
    history = model.fit(p.train, steps_per_epoch=p.steps_per_epoch, validation_data=p.validation, epochs=2,
                        verbose=0).history
    iterations = 2 * p.steps_per_epoch
    assert int(model.d_optimizer.iterations) == d_steps * iterations
    assert int(model.g_optimizer.iterations) == g_steps * iterations
    assert set(history) == {f"{split}{name}" for split in ("", "val_")
                            for name in ("loss", "d_loss", "g_loss", "d_real_accuracy", "d_fake_accuracy")}
    assert history["loss"] == history["d_loss"]  # what Keras callbacks monitor: D's loss
    for key in ("d_real_accuracy", "d_fake_accuracy", "val_d_real_accuracy"):
        assert all(0 <= value <= 1 for value in history[key])


def test_losses_are_the_papers():
    real_logits, fake_logits = tf.constant([[2.0], [-1.0]]), tf.constant([[0.5], [-3.0]])
    d = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    expected = -np.mean(np.log(d(np.array([2.0, -1.0])))) - np.mean(np.log(1 - d(np.array([0.5, -3.0]))))
    assert float(discriminator_loss(real_logits, fake_logits)) == pytest.approx(expected, rel=1e-5)
    # One-sided label smoothing: real targets 0.9, fake targets stay 0.
    smoothed = -np.mean(0.9 * np.log(d(np.array([2.0, -1.0]))) + 0.1 * np.log(1 - d(np.array([2.0, -1.0]))))
    smoothed -= np.mean(np.log(1 - d(np.array([0.5, -3.0]))))
    assert float(discriminator_loss(real_logits, fake_logits, 0.1)) == pytest.approx(smoothed, rel=1e-5)
    # Non-saturating: -log D(G(z)), not log(1 - D(G(z))).
    assert float(generator_loss(fake_logits)) == pytest.approx(-np.mean(np.log(d(np.array([0.5, -3.0])))), rel=1e-5)


def test_hinge_losses_are_the_documented_values():
    real_logits, fake_logits = tf.constant([[2.0], [0.5]]), tf.constant([[-3.0], [0.2]])
    # D: mean relu(1 - D(x)) + mean relu(1 + D(G(z))) = mean(0, 0.5) + mean(0, 1.2); G: -mean D(G(z)).
    assert float(discriminator_loss(real_logits, fake_logits, loss="hinge")) == pytest.approx(0.25 + 0.6)
    assert float(generator_loss(fake_logits, loss="hinge")) == pytest.approx(1.4)
    with pytest.raises(ValueError, match="hinge loss has none"):
        GANConfig(loss="hinge", label_smoothing=0.1)
    with pytest.raises(ValueError, match="loss must be one of"):
        GANConfig(loss="wasserstein")


def raw_samples(model, num_samples, seed):
    """sample()'s images, but from the raw generator, not its moving average."""
    averages, model.ema_weights = model.ema_weights, []
    try:
        return model.sample(num_samples, seed).numpy()
    finally:
        model.ema_weights = averages


@pytest.mark.parametrize("model_class, config", [(GAN, TINY_MLP), (DCGAN, TINY_DCGAN)])
def test_the_generators_moving_average_follows_it_at_the_configured_rate_and_is_what_sampling_uses(model_class,
                                                                                                  config):
    config = dataclasses.replace(config, ema_decay=0.5)
    model = tiny(model_class, config)
    for average, weight in zip(model.ema_weights, model.averaged_weights()):  # starts at the initial weights
        np.testing.assert_array_equal(average.numpy(), weight.numpy())
    real = next(iter(pipelines(model_class, config).train))
    for step in range(1, 10):  # d = (1 + t) / (10 + t) while below ema_decay (warm-up), then ema_decay
        before = values(model.ema_weights)
        model.train_step(real)
        decay = min(0.5, (1 + step) / (10 + step))
        for previous, average, weight in zip(before, model.ema_weights, model.averaged_weights()):
            np.testing.assert_allclose(average.numpy(), decay * previous + (1 - decay) * weight.numpy(),
                                       rtol=1e-5, atol=1e-6)
    samples = model.sample(5, 3).numpy()
    assert not np.allclose(samples, raw_samples(model, 5, 3), atol=1e-4)  # the average, not G
    for weight, average in zip(model.averaged_weights(), model.ema_weights):  # G with the averaged weights
        weight.assign(average)
    np.testing.assert_allclose(samples, raw_samples(model, 5, 3), atol=1e-5)


def test_truncation_draws_z_from_the_truncated_normal_and_only_sampling_sees_it():
    t = 1.0
    model = tiny(GAN, dataclasses.replace(TINY_MLP, truncation=t))
    z = model.prior_noise([20_000, 8], [4, 0]).numpy()
    assert np.abs(z).max() <= t + 1e-5 and np.abs(z).max() > 0.99 * t
    # N(0, 1) on [-t, t]: mean 0, variance 1 - 2 t phi(t) / (2 Phi(t) - 1) (0.291 at t = 1)
    phi, mass = np.exp(-t * t / 2) / np.sqrt(2 * np.pi), 0.682689492
    assert abs(z.mean()) < 0.01 and z.var() == pytest.approx(1 - 2 * t * phi / mass, abs=0.005)
    assert np.mean(np.abs(z) < 0.5) == pytest.approx(0.382925 / mass, abs=0.01)  # the shape, not just two moments
    # sample and generate decode exactly these codes; decode itself takes any code
    np.testing.assert_allclose(model.sample(3, 7).numpy(), model.decode(model.prior_noise([3, 8], [7, 0])).numpy(),
                               atol=1e-6)
    np.testing.assert_allclose(model.generate(tf.constant([7]))[0].numpy(), model.sample(1, 7)[0].numpy(), atol=1e-6)
    untruncated = tiny(GAN, TINY_MLP)
    assert np.abs(untruncated.prior_noise([20_000, 8], [4, 0]).numpy()).max() > 3
    with pytest.raises(ValueError, match="truncation must be >= 0"):
        GANConfig(truncation=-1.0)


@pytest.mark.parametrize("model_class, config", [(GAN, TINY_MLP), (DCGAN, TINY_DCGAN)])
def test_spectral_norm_wraps_every_discriminator_layer_in_place_of_its_batch_norm(model_class, config):
    model = tiny(model_class, dataclasses.replace(config, spectral_norm=True, batch_norm=True))
    layers = model.discriminator.layers
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in layers)
    weighted = [layer for layer in layers if layer.weights]
    assert weighted and all(isinstance(layer, keras.layers.SpectralNormalization) for layer in weighted)
    real = model.training_images(next(iter(pipelines(model_class, config).train)))
    for _ in range(3):
        model.discriminator_step(real)
    for _ in range(10):  # each training call divides the kernels by their largest singular value, estimated by
        model.discriminator(real, training=True)  # one power iteration per call: it converges over the calls
    for layer in weighted:
        kernel = layer.layer.kernel.numpy()
        assert np.linalg.norm(kernel.reshape(-1, kernel.shape[-1]), ord=2) == pytest.approx(1.0, abs=0.05)


def test_r1_penalises_the_discriminators_slope_at_real_images():
    """With r1_gamma, D's step descends L_D + (gamma / 2) E ||grad_x D(x)||^2: a large gamma shrinks the slope."""
    slopes = {}
    for gamma in (0.0, 100.0):
        model = tiny(GAN, dataclasses.replace(TINY_MLP, r1_gamma=gamma))
        real = next(iter(pipelines().train))
        for _ in range(20):
            model.discriminator_step(real)
        with tf.GradientTape() as tape:
            tape.watch(real)
            total = tf.reduce_sum(model.discriminator(real))
        slopes[gamma] = float(tf.reduce_mean(tf.reduce_sum(tf.square(tape.gradient(total, real)), axis=[1, 2, 3])))
    assert slopes[100.0] < 0.3 * slopes[0.0]  # measured: 0.19


def test_ttur_gives_each_network_its_own_learning_rate():
    model = tiny(GAN, dataclasses.replace(TINY_MLP, d_learning_rate=4e-4, g_learning_rate=1e-4))
    assert float(model.d_optimizer.learning_rate) == pytest.approx(4e-4)
    assert float(model.g_optimizer.learning_rate) == pytest.approx(1e-4)
    model = tiny(GAN, TINY_MLP)  # 0: both take --learning-rate
    assert float(model.d_optimizer.learning_rate) == float(model.g_optimizer.learning_rate) == pytest.approx(1e-3)


def test_learning_rate_decay_holds_then_falls_linearly_to_zero_over_the_last_fraction(tmp_path):
    config = dataclasses.replace(TINY_MLP, learning_rate_decay_fraction=0.5, d_steps=2, d_learning_rate=4e-4)
    model = tiny(GAN, config, total_steps=10)
    seen = []
    record = keras.callbacks.LambdaCallback(on_train_batch_begin=lambda batch, logs: seen.append(
        (float(model.d_optimizer.learning_rate), float(model.g_optimizer.learning_rate))))
    model.fit(tf.random.uniform((500, 28, 28, 1)), batch_size=50, epochs=1, callbacks=[record], verbose=0)
    # 10 steps: D updates twice per step (20 updates, the last 10 decaying), G once (10, the last 5).
    np.testing.assert_allclose([d for d, _ in seen], [4e-4] * 6 + [4e-4 * (20 - 2 * i) / 10 for i in range(6, 10)],
                               rtol=1e-5)
    np.testing.assert_allclose([g for _, g in seen], [1e-3] * 6 + [1e-3 * (10 - i) / 5 for i in range(6, 10)],
                               rtol=1e-5)
    assert float(model.d_optimizer.learning_rate) == float(model.g_optimizer.learning_rate) == 0.0
    model.save(tmp_path / "decayed.keras")  # the schedules, and so the run's length, come back with the model
    loaded = keras.saving.load_model(tmp_path / "decayed.keras")
    for optimizer in ("d_optimizer", "g_optimizer"):
        assert getattr(loaded, optimizer)._learning_rate.get_config() == getattr(
            model, optimizer)._learning_rate.get_config()
    with pytest.raises(ValueError, match="learning_rate_decay_fraction must be in"):
        dataclasses.replace(TINY_MLP, learning_rate_decay_fraction=1.5)


def test_the_categorical_code_is_a_uniform_one_hot_in_the_last_coordinates_of_z():
    model = tiny(GAN, dataclasses.replace(TINY_MLP, categories=3))
    z = model.prior_noise([3000, 8], tf.constant([0, 0])).numpy()
    code = z[:, -3:]
    assert set(np.unique(code)) == {0.0, 1.0} and (code.sum(axis=1) == 1).all()
    np.testing.assert_allclose(code.mean(axis=0), [1 / 3] * 3, atol=0.03)
    plain = tiny(GAN, TINY_MLP).prior_noise([3000, 8], tf.constant([0, 0])).numpy()
    np.testing.assert_array_equal(z[:, :-3], plain[:, :-3])  # the Gaussian coordinates are untouched
    np.testing.assert_allclose(model.generate(tf.constant([5, 9])), model.sample(2, 5)[:1].numpy().tolist()
                               + model.sample(1, 9).numpy().tolist(), atol=1e-6)  # generate's z has its code too
    with pytest.raises(ValueError, match="categories must be 0"):
        dataclasses.replace(TINY_MLP, categories=8)  # no Gaussian coordinate left


def test_infogans_term_is_the_codes_cross_entropy_and_q_trains_with_d():
    model = tiny(GAN, dataclasses.replace(TINY_MLP, categories=3, info_weight=0.5))
    z = tf.constant([[0.0] * 5 + [1.0, 0.0, 0.0], [0.0] * 5 + [0.0, 0.0, 1.0]])
    loss, accuracy = model.info_loss(z, tf.constant([[2.0, 0.0, 0.0], [2.0, 0.0, 0.0]]))
    assert float(loss) == pytest.approx(0.5 * 0.5 * (np.log(1 + 2 * np.exp(-2.0)) + np.log(2 + np.exp(2.0))))
    assert float(accuracy) == 0.5

    real = next(iter(pipelines().train))
    q_before = values(model.recognizer.trainable_variables)
    model.discriminator_step(real)  # Q learns with D's optimizer
    assert all(changed(q_before, model.recognizer.trainable_variables))
    q_before = values(model.recognizer.trainable_variables)
    model.generator_step(50)
    assert not any(changed(q_before, model.recognizer.trainable_variables))
    # G's update follows the code's cross-entropy too: without it, the same step moves G elsewhere.
    without = tiny(GAN, dataclasses.replace(TINY_MLP, categories=3, info_weight=0.0))
    without.set_weights(model.get_weights())  # not the optimizers' state: both G steps below are fresh
    with_info = tiny(GAN, dataclasses.replace(TINY_MLP, categories=3, info_weight=0.5))
    with_info.set_weights(model.get_weights())
    with_info.generator_step(50), without.generator_step(50)
    assert any(changed(values(without.generator.trainable_variables), with_info.generator.trainable_variables))


def test_with_a_categorical_code_g_learns_to_draw_it_recognisably():
    config = dataclasses.replace(TINY_DCGAN, categories=3)  # the tiny MLP GAN learns it too, in 30 epochs (0.88)
    p = pipelines(DCGAN, config)
    model = tiny(DCGAN, config)
    history = model.fit(p.train, steps_per_epoch=p.steps_per_epoch, validation_data=p.validation, epochs=6,
                        verbose=0).history
    assert history["code_accuracy"][0] < 0.6 and history["code_accuracy"][-1] > 0.95, history  # measured: 0.44, 0.99
    # On held-out noise, with batch norm's moving statistics (which trail the training batches): 0.63 to 0.82.
    assert history["val_code_accuracy"][-1] > history["val_code_accuracy"][0] + 0.1, history


@pytest.mark.parametrize("model_class, config", [(GAN, TINY_MLP), (DCGAN, TINY_DCGAN)])
def test_batch_norm_toggles_the_layers(model_class, config):
    def kinds(batch_norm):
        model = tiny(model_class, type(config)(**{**vars(config), "batch_norm": batch_norm}))
        return [[type(layer).__name__ for layer in network.layers] for network in (model.generator,
                                                                                  model.discriminator)]

    (g_on, d_on), (g_off, d_off) = kinds(True), kinds(False)
    assert "BatchNormalization" not in g_off + d_off
    hidden = len(config.generator_filters if model_class is DCGAN else config.generator_hidden)
    assert g_on.count("BatchNormalization") == hidden  # every hidden layer, not the output
    assert [k for k in g_on if k != "BatchNormalization"] == g_off
    # The discriminator: none on its input layer (nor its output).
    assert d_on.count("BatchNormalization") == len(config.discriminator_filters if model_class is DCGAN
                                                   else config.discriminator_hidden) - 1
    assert d_on[:3] == d_off[:3]


def test_the_dcgan_is_the_labs_architecture():
    model = tiny(DCGAN, DCGANConfig())
    g = [layer for layer in model.generator.layers if "Conv" in type(layer).__name__]
    d = [layer for layer in model.discriminator.layers if "Conv" in type(layer).__name__]
    assert [layer.filters for layer in g] == [512, 256, 128, 1] and all(layer.kernel_size == (4, 4) for layer in g)
    assert [layer.filters for layer in d] == [64, 128, 1] and [layer.kernel_size for layer in d[:2]] == [(4, 4)] * 2
    shapes, x = [], tf.zeros((2, 100))
    for layer in model.generator.layers:
        x = layer(x)
        if layer in g:
            shapes.append(tuple(x.shape[1:3]))
    assert shapes == [(4, 4), (8, 8), (16, 16), (32, 32)]
    assert model.generator.layers[-1].get_config()["activation"] == "tanh"
    assert model.discriminator(tf.zeros((2, 32, 32, 1))).shape == (2, 1)  # logits; sigmoid inside the losses
    assert model.d_optimizer.learning_rate.numpy() == pytest.approx(2e-4)
    # Every model takes MNIST as it is ([0, 1], 28x28); each GAN makes its own training images of it.
    images = tf.random.uniform((3, 28, 28, 1))
    assert model.training_images(images).shape == (3, 32, 32, 1)
    assert float(tf.reduce_min(model.training_images(tf.zeros((1, 28, 28, 1))))) == -1.0
    tanh = tiny(config=GANConfig(latent_dim=8, output="tanh"))
    np.testing.assert_allclose(tanh.training_images(images), 2 * images - 1, atol=1e-6)
    np.testing.assert_array_equal(tiny().training_images(images), images)  # sigmoid: [0, 1] as it is


def test_the_dcgans_decode_undoes_its_enlargement():
    """pad: the 28x28 digits come back exactly; resize: Lanczos-3 undoes the bilinear resize far better than the
    antialiased bilinear resize the zoo used before (judged here by squared error on real digits). Either way the
    training images are what zoo.data's pipeline made of them when it did the enlarging."""
    digits = data.load(tiny_data()).train.images[:50]
    original = tf.cast(digits, tf.float32)[..., None] / 255.0
    for enlarge in ("pad", "resize"):
        model = tiny(DCGAN, dataclasses.replace(TINY_DCGAN, enlarge=enlarge))
        big = model.training_images(original)  # [-1, 1], 32x32, as the DCGAN trains on it
        pipeline = data.preprocess(digits, data.DataConfig(image_size=32, pixel_range=(-1, 1), enlarge=enlarge))
        np.testing.assert_array_equal(big, pipeline)
        assert big.shape == (50, 32, 32, 1)
        back = (model.to_mnist_size(big) + 1.0) / 2.0
        assert back.shape == (50, 28, 28, 1)
        if enlarge == "pad":
            np.testing.assert_allclose(back, original, atol=1e-6)
            assert float(tf.reduce_max(big[:, :2])) == -1.0 and float(tf.reduce_max(big[:, :, -2:])) == -1.0
        else:
            error = float(tf.reduce_mean(tf.square(tf.clip_by_value(back, 0, 1) - original)))
            blurred = tf.image.resize((big + 1.0) / 2.0, (28, 28), antialias=True)
            assert error < 0.6 * float(tf.reduce_mean(tf.square(blurred - original)))
    with pytest.raises(ValueError, match="enlarge must be one of resize, pad"):
        DCGANConfig(enlarge="crop")
    with pytest.raises(data.DataError, match="unknown enlarge 'crop'"):
        data.DataConfig(enlarge="crop")


@pytest.mark.parametrize("model_class, config", [(GAN, TINY_MLP), (GAN, GANConfig(latent_dim=8, output="tanh")),
                                                 (DCGAN, TINY_DCGAN)])
def test_samples_are_28x28_in_0_1_and_fixed_by_the_seed(model_class, config):
    model = tiny(model_class, config)
    a, b, c = model.sample(6, 3), model.sample(6, 3), model.sample(6, 4)
    assert a.shape == (6, 28, 28, 1) and a.dtype == tf.float32
    assert float(tf.reduce_min(a)) >= 0 and float(tf.reduce_max(a)) <= 1
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    z = tf.random.stateless_normal([6, 8], [3, 0])
    np.testing.assert_array_equal(model.decode(z), a)  # sample = decode of seeded N(0, I) codes
    assert tiny(model_class, config, seed=1).sample(6, 3).numpy().tolist() != a.numpy().tolist()


def test_a_seeded_run_is_reproducible_and_learns_the_data():
    """Two runs with one seed end with the same weights; the samples' mean image moves towards the data's."""
    p = pipelines(batch_size=30)
    real_mean = np.mean(np.concatenate(list(p.validation)), axis=0)

    def run():
        model = tiny(steps_per_execution=10)
        before = float(np.mean(np.square(np.mean(model.sample(500, 0), axis=0) - real_mean)))
        model.fit(p.train, steps_per_epoch=p.steps_per_epoch, epochs=15, verbose=0)
        after = float(np.mean(np.square(np.mean(model.sample(500, 0), axis=0) - real_mean)))
        return before, after, values(model.trainable_variables)

    before, after, weights = run()
    assert after < 0.4 * before
    _, _, again = run()
    for a, b in zip(weights, again):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_mirrored_strategy_on_two_devices_matches_one_device(two_cpus):
    """No batch norm (it normalises each replica's own share) and SGD (Adam would hide a loss not divided by the
    number of replicas): then two replicas must reproduce one device exactly, the generator's moving average too."""
    results = []
    config = dataclasses.replace(TINY_MLP, ema_decay=0.9)
    for strategy in (tf.distribute.get_strategy(), two_cpus):
        p = pipelines(batch_size=60)
        with strategy.scope():
            model = tiny(config=config, optimizer=keras.optimizers.SGD(0.05))
            model.g_optimizer = keras.optimizers.SGD(0.05)
        history = model.fit(p.train, steps_per_epoch=p.steps_per_epoch, epochs=2, verbose=0).history
        results.append((history, values(model.trainable_variables + model.ema_weights)))
    (history_one, weights_one), (history_two, weights_two) = results
    for key in history_one:
        np.testing.assert_allclose(history_one[key], history_two[key], rtol=1e-4, err_msg=key)
    for w1, w2 in zip(weights_one, weights_two):
        np.testing.assert_allclose(w1, w2, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name, config", [("gan", TINY_MLP), ("dcgan", TINY_DCGAN)])
def test_mixed_precision_trains_with_loss_scaling_and_serves_float32(name, config, tmp_path):
    settings = dict(limit=300, validation_size=100, batch_size=50)
    run = train.TrainConfig(epochs=1, logdir=str(tmp_path / "logs"), export_dir=str(tmp_path / "exports"),
                            mixed_precision=True)
    result = train.train(name, config, train.data_config_for(name, config, **settings), run, verbose=0)
    model = result.model
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the model was made
    first = next(layer for layer in model.generator.layers if layer.weights)
    assert first.compute_dtype == "float16" and first.kernel.dtype == "float32"
    assert model.generator(tf.zeros((2, 8))).dtype == tf.float32
    assert model.discriminator(tf.zeros((2,) + model.generator(tf.zeros((1, 8))).shape[1:])).dtype == tf.float32
    assert isinstance(model.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(model.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert all(np.isfinite(v[-1]) for v in result.history.values())
    assert model.sample(4, 0).dtype == tf.float32
    with pytest.raises(ValueError, match="does not train in mixed precision"):
        train.train("rbm", None, tiny_data(), run, verbose=0)


def test_a_nan_in_either_loss_stops_training():
    stop = callbacks.StopOnNaN()
    stop.on_batch_end(0, {"d_loss": 0.7, "g_loss": 1.2})
    with pytest.raises(runs.TrainingDiverged, match="nan"):
        stop.on_batch_end(1, {"d_loss": 0.7, "g_loss": float("nan")})


def test_wrong_settings_for_the_gans_are_a_clear_error():
    with pytest.raises(ValueError, match="three positive channel counts"):
        DCGANConfig(generator_filters=(8, 4))
    with pytest.raises(ValueError, match="output must be one of sigmoid, tanh"):
        GANConfig(output="relu")


CHECK_GAN_EXPORT = r"""
import json, sys
import numpy as np
import tensorflow as tf

path, latent_dim = sys.argv[1], int(sys.argv[2])
model = tf.saved_model.load(path)
assert not any(name == "zoo" or name.startswith("zoo.") for name in sys.modules), "zoo was imported"
sig = model.signatures
assert sorted(sig) == ["decode", "generate", "sample", "serving_default"], sorted(sig)
a = sig["sample"](num_samples=tf.constant(5), seed=tf.constant(1))["images"].numpy()
b = sig["serving_default"](num_samples=tf.constant(5), seed=tf.constant(1))["images"].numpy()
c = sig["sample"](num_samples=tf.constant(5), seed=tf.constant(2))["images"].numpy()
assert a.shape == (5, 28, 28, 1) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
assert np.array_equal(a, b) and not np.allclose(a, c)
z = tf.random.stateless_normal([5, latent_dim], [1, 0])
decoded = sig["decode"](latent=z)["images"].numpy()
assert decoded.shape == (5, 28, 28, 1) and np.allclose(decoded, a, atol=1e-6)
print(json.dumps(json.load(open(f"{path}/assets/model_card.json"))))
"""


def test_dcgan_trains_from_the_command_line_and_its_export_serves_without_zoo(tmp_path):
    done = run_zoo("zoo.train", "dcgan", "--limit", "200", "--validation-size", "100", "--batch-size", "50",
                   "--epochs", "2", "--latent-dim", "8", "--generator-filters", "16,8,4",
                   "--discriminator-filters", "4,8", "--d-steps", "2", "--logdir", str(tmp_path / "logs"),
                   "--export-dir", str(tmp_path / "exports"))
    assert done.returncode == 0, done.stderr[-3000:]
    path = tmp_path / "exports" / "dcgan" / "1"
    checked = run_python(CHECK_GAN_EXPORT, str(path), "8")
    assert checked.returncode == 0, checked.stderr[-3000:]
    card = json.loads(checked.stdout.strip().splitlines()[-1])
    assert card["kind"] == "dcgan" and card["signatures"] == ["sample", "generate", "decode"]
    assert card["data"]["image_size"] == 28 and card["config"]["enlarge"] == "resize"  # the DCGAN enlarges them
    # --keep best (the GANs' default): the card names the epoch exported; D's updates up to it, 2 per iteration.
    assert card["kept"]["epoch"] in (1, 2) and card["steps"] == card["kept"]["epoch"] * 2 * 4
    assert set(card["kept"]["figures"]) >= {"val_frechet_distance", "val_classifier_score", "val_kid"}
    assert set(card["final_metrics"]) >= {"d_loss", "g_loss", "d_real_accuracy", "d_fake_accuracy", "val_d_loss"}
    # TensorBoard: the fixed-noise sample grid every epoch and the weight histograms.
    run_dir = tmp_path / "logs" / "dcgan" / "seed0"
    tags = set()
    for root, _, files in os.walk(run_dir):
        for name in files:
            if name.startswith("events"):
                for event in tf.compat.v1.train.summary_iterator(os.path.join(root, name)):
                    tags.update((v.tag, event.step) for v in event.summary.value)
    assert {("samples", 0), ("samples", 1)} <= tags
    assert any("generator" in tag and "kernel" in tag for tag, _ in tags)
    assert any(tag == "epoch_d_loss" for tag, _ in tags)
    # The sample quality of every epoch, in the validation run beside the validation losses.
    assert {("epoch_frechet_distance", 0), ("epoch_frechet_distance", 1), ("epoch_classifier_score", 1)} <= tags
    # The report draws what the signatures allow: samples and walks through the code space.
    done = run_zoo("zoo.report", "--exports", str(tmp_path / "exports"), "--out", str(tmp_path / "reports"),
                   "--results", str(tmp_path / "none.json"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(os.listdir(tmp_path / "reports" / "dcgan")) == ["latent_walks.png", "samples.png"]


def test_an_interrupted_run_resumes_both_optimizers(tmp_path):
    from test_train import Interrupt, InterruptAfter, config_in

    config = GANConfig(**{**vars(TINY_MLP), "g_steps": 2})
    interrupted = config_in(tmp_path / "a", epochs=2, export=False)
    with pytest.raises(Interrupt):
        train.train("gan", config, tiny_data(), interrupted, extra_callbacks=[InterruptAfter(1)], verbose=0)
    resumed = train.train("gan", config, tiny_data(), interrupted, verbose=0)
    straight = train.train("gan", config, tiny_data(), config_in(tmp_path / "b", epochs=2, export=False), verbose=0)
    assert len(resumed.history["d_loss"]) == 2  # the whole run's, the epoch before the interruption too
    np.testing.assert_allclose(resumed.history["d_loss"], straight.history["d_loss"], rtol=1e-4)
    assert int(resumed.model.g_optimizer.iterations) == int(straight.model.g_optimizer.iterations) == 2 * 2 * 6
    for optimizer in ("d_optimizer", "g_optimizer"):  # Adam's moments came back too
        for a, b in zip(getattr(resumed.model, optimizer).variables, getattr(straight.model, optimizer).variables):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)
    for a, b in zip(resumed.model.trainable_variables, straight.model.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)


def test_the_report_draws_one_row_per_value_of_the_categorical_code(tmp_path):
    from test_train import config_in
    from zoo import report

    config = dataclasses.replace(TINY_MLP, categories=3)
    result = train.train("gan", config, tiny_data(), config_in(tmp_path, epochs=1), verbose=0)
    report.main(["--exports", os.path.dirname(os.path.dirname(result.export_path)), "--out",
                 str(tmp_path / "reports"), "--results", str(tmp_path / "none.json")])
    assert sorted(os.listdir(tmp_path / "reports" / "gan")) == ["categories.png", "latent_walks.png", "samples.png"]
    index = (tmp_path / "reports" / "index.md").read_text()
    assert "One row per value of the 3-way categorical code" in index and "c = 2: " in index
