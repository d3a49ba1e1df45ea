"""The RBM's samplers, parallel tempering, centering and RAISE, checked against exact enumeration on tiny RBMs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_data
from zoo import data, likelihood
from zoo.models.base import seed_pair
from zoo.models.rbm import RBM, RBMConfig


def two_mode_rbm(**config):
    """10 visible units in two groups of five, one hidden unit per group with strong weights: p(v) puts most of
    its mass on the group patterns, and a Gibbs chain crosses between them rarely."""
    model = RBM(RBMConfig(visible=10, hidden=2, **config), seed=0)
    model.compile()
    model(tf.zeros((1, 10)))
    W = np.zeros((10, 2), np.float32)
    W[:5, 0] = W[5:, 1] = 5.0
    model.W.assign(W)
    model.visible_bias.assign(np.full(10, -2.5, np.float32))
    model.hidden_bias.assign(np.array([-11.5, -12.0], np.float32))
    return model


STATES = ((np.arange(1024)[:, None] >> np.arange(10)) & 1).astype(np.float32)


def exact_distribution(model):
    log_p = -model.free_energy(STATES).numpy().astype(np.float64)
    p = np.exp(log_p - log_p.max())
    return p / p.sum()


def total_variation(probabilities, p, seed=0):
    """Total variation between p and the states drawn as Bernoulli(probabilities) (sample returns p(v|h))."""
    v = np.random.default_rng(seed).random(probabilities.shape) < probabilities
    counts = np.bincount((v * (1 << np.arange(10))).sum(axis=1), minlength=1024)
    return 0.5 * np.abs(counts / counts.sum() - p).sum()


def test_annealed_and_tempering_samplers_draw_the_exact_distribution():
    model = two_mode_rbm(temperatures=6)
    p = exact_distribution(model)
    n = 4000
    draws = np.random.default_rng(1).choice(1024, n, p=p)
    noise = 0.5 * np.abs(np.bincount(draws, minlength=1024) / n - p).sum()  # TV of n exact draws: the floor
    seed = tf.constant([3, 0])
    annealed = model.sample_visible(n, seed, 300, "annealed", resample=True).numpy()
    tempering = model.sample_visible(n, seed, 1200, "tempering").numpy()  # 200 sweeps of 6 temperatures
    gibbs = model.sample_visible(n, seed, 10, "gibbs").numpy()
    assert total_variation(annealed, p) < noise + 0.03
    assert total_variation(tempering, p) < noise + 0.03
    assert total_variation(gibbs, p) > noise + 0.08  # short Gibbs chains keep the mix of their random starts
    # The verb: images, reproducible from the seed, the method from the config unless named.
    model = RBM(RBMConfig(hidden=8, sampler="annealed", sample_steps=50), seed=0)
    model.build_for_images()
    first = model.sample(3, 7)
    assert first.shape == (3, 28, 28, 1)
    np.testing.assert_array_equal(first, model.sample(3, 7))
    np.testing.assert_array_equal(first, model.sample(3, 7, method="annealed"))
    assert not np.array_equal(first, model.sample(3, 7, method="gibbs"))
    with pytest.raises(ValueError, match="Gibbs options"):
        model.sample(2, 0, start="hidden")


def test_samplers_can_start_at_the_persistent_chains_and_tempering_from_them_still_draws_the_exact_distribution():
    model = two_mode_rbm(temperatures=6, negative_phase="pt", chains=50)
    p = exact_distribution(model)
    one_mode = np.array([1] * 5 + [0] * 5, np.float32)  # every stored chain, at every temperature, in one mode
    model.chains.assign(np.tile(one_mode, (6 * 50, 1)))
    starts = model.persistent_starts(120, 6).numpy()
    assert starts.shape == (6 * 120, 10) and (starts == one_mode).all()
    # Short Gibbs chains stay where they start; tempering crosses to the other mode in its exact proportion.
    gibbs = model.sample_visible(4000, tf.constant([3, 0]), 10, "gibbs", from_chains=True).numpy()
    assert gibbs[:, :5].mean() > 0.8 and gibbs[:, 5:].mean() < 0.2
    n = 4000
    draws = np.random.default_rng(1).choice(1024, n, p=p)
    noise = 0.5 * np.abs(np.bincount(draws, minlength=1024) / n - p).sum()
    tempering = model.sample_visible(n, tf.constant([3, 0]), 1200, "tempering", from_chains=True).numpy()
    assert total_variation(tempering, p) < noise + 0.03
    # Recorded as they run on (sample_every): 50 chains per temperature, 80 records 20 sweeps apart, the same law
    # (records 1 or 5 sweeps apart are too correlated for 4,000 to reach this total variation).
    recorded = model.sample_visible(n, tf.constant([3, 0]), 1200, "tempering", from_chains=True, every=20).numpy()
    assert recorded.shape == (n, 10) and total_variation(recorded, p) < noise + 0.03
    assert model.sample_visible(7, tf.constant([3, 0]), 60, "tempering", from_chains=True, every=20).shape == (7, 10)
    # Fewer samples than chains run only that many chains (the first of each temperature), so generate's
    # sample(1, seed) per image stays cheap: the same draws as a model that stores only those chains.
    stored = np.random.default_rng(0).integers(0, 2, (6, 50, 10)).astype(np.float32)
    model.chains.assign(stored.reshape(300, 10))
    three = two_mode_rbm(temperatures=6, negative_phase="pt", chains=3)
    three.chains.assign(stored[:, :3].reshape(18, 10))
    np.testing.assert_array_equal(
        model.sample_visible(3, tf.constant([3, 0]), 60, "tempering", from_chains=True, every=4).numpy(),
        three.sample_visible(3, tf.constant([3, 0]), 60, "tempering", from_chains=True, every=4).numpy())
    # PCD's one block of chains starts every temperature; row i is chain i mod chains.
    pcd = two_mode_rbm(temperatures=4, negative_phase="pcd", chains=3)
    pcd.chains.assign(np.eye(3, 10, dtype=np.float32))
    np.testing.assert_array_equal(pcd.persistent_starts(5, 4).numpy(), np.tile(np.eye(3, 10)[[0, 1, 2, 0, 1]], (4, 1)))
    # The verb follows config.sample_start; chains need a persistent negative phase and a sampler that uses them.
    model = RBM(RBMConfig(hidden=8, negative_phase="pcd", chains=4, sample_start="chains", sample_steps=1), seed=0)
    model.build_for_images()
    model.chains.assign(np.zeros((4, 784), np.float32))
    expected = model.sample_visible(6, seed_pair(7, 0), 1, "gibbs", from_chains=True).numpy()
    np.testing.assert_allclose(np.reshape(model.sample(6, 7), (6, 784)), expected, atol=1e-6)
    # ... unless told otherwise: start and every are the verb's options too; steps=0 returns the start itself.
    random_start = model.sample_visible(6, seed_pair(7, 0), 1, "gibbs").numpy()
    np.testing.assert_allclose(np.reshape(model.sample(6, 7, start="random"), (6, 784)), random_start, atol=1e-6)
    np.testing.assert_array_equal(model.sample(5, 7, steps=0), np.zeros((5, 28, 28, 1)))  # the stored chains
    recorded = model.sample_visible(6, seed_pair(7, 0), 1, "gibbs", from_chains=True, every=3).numpy()
    np.testing.assert_allclose(np.reshape(model.sample(6, 7, every=3), (6, 784)), recorded, atol=1e-6)
    assert not np.allclose(recorded, expected)
    with pytest.raises(ValueError, match="start must be one of random, hidden, chains"):
        model.sample(2, 0, start="data")
    with pytest.raises(ValueError, match="every must be >= 0, and above 0 only with start='chains'"):
        model.sample(2, 0, start="random", every=3)
    with pytest.raises(ValueError, match="start='chains' needs persistent chains"):
        RBM(RBMConfig(hidden=8), seed=0).sample(2, 0, start="chains")
    for bad in (dict(negative_phase="cd"), dict(negative_phase="pcd", sampler="annealed")):
        with pytest.raises(ValueError, match="sample_start='chains' needs persistent chains"):
            RBMConfig(sample_start="chains", **bad)
    with pytest.raises(ValueError, match="sample_every must be >= 0, and above 0 only with sample_start='chains'"):
        RBMConfig(negative_phase="pcd", sample_every=10)


def test_replica_exchange_swaps_only_neighbours_of_the_sweeps_parity_and_keeps_each_temperatures_chains():
    model = two_mode_rbm(temperatures=5)
    v = model.base_visible_states(5 * 200, tf.constant([0, 1]))
    for parity in (0, 1):
        source, swapped, proposed = model.replica_exchange(model.hidden_input(v), parity, tf.constant([2, parity]))
        source, swapped, proposed = source.numpy(), swapped.numpy(), proposed.numpy()
        np.testing.assert_array_equal(np.sort(source, axis=0), np.arange(5)[:, None].repeat(200, axis=1))
        moved = source != np.arange(5)[:, None]
        assert np.abs(source - np.arange(5)[:, None]).max() <= 1 and 0 < swapped.sum() / proposed.sum() < 1
        np.testing.assert_array_equal(proposed, np.arange(4) % 2 == parity)
        np.testing.assert_allclose(swapped[parity::2], moved[parity:4:2].mean(axis=1))  # pair k: block k moved
        assert not swapped[proposed == 0].any()
        in_a_pair = [k for k in range(5) if (k < 4 and k % 2 == parity) or (k > 0 and (k - 1) % 2 == parity)]
        assert not moved[[k for k in range(5) if k not in in_a_pair]].any()
    # W = 0: every temperature is the same distribution, so every proposed swap is accepted.
    model.W.assign(np.zeros((10, 2), np.float32))
    source, swapped, proposed = model.replica_exchange(model.hidden_input(v), 0, tf.constant([2, 0]))
    np.testing.assert_array_equal(source.numpy()[:, 0], [1, 0, 3, 2, 4])
    np.testing.assert_array_equal(swapped.numpy(), [1, 0, 1, 0])


def test_tempering_ladders_run_from_the_lowest_beta_to_1_and_the_quadratic_one_shrinks_its_steps_towards_1():
    linear = RBM(RBMConfig(hidden=4, temperatures=5), seed=0).tempering_betas().numpy()[:, 0]
    np.testing.assert_allclose(linear, [0, 0.25, 0.5, 0.75, 1])
    quadratic = RBM(RBMConfig(hidden=4, temperatures=5, lowest_beta=0.5, ladder="quadratic"), seed=0)
    betas = quadratic.tempering_betas().numpy()[:, 0]
    np.testing.assert_allclose(betas, 1 - 0.5 * np.array([1, 0.75, 0.5, 0.25, 0]) ** 2, atol=1e-6)
    assert (np.diff(np.diff(betas)) < 0).all()  # steps shrink towards beta = 1
    with pytest.raises(ValueError, match="ladder must be one of linear, quadratic"):
        RBMConfig(ladder="log")
    with pytest.raises(ValueError, match=r"lowest_beta must be in \[0, 1\)"):
        RBMConfig(lowest_beta=1.0)


def test_parallel_tempering_trains_with_a_ladder_of_persistent_chains():
    p = data.datasets(tiny_data(binarize="dynamic", batch_size=30))
    keras.utils.set_random_seed(0)
    model = RBM(RBMConfig(hidden=16, chains=10, temperatures=4, negative_phase="pt", learning_rate=0.1), seed=0)
    model.compile()
    history = model.fit(p.train, steps_per_epoch=p.steps_per_epoch, validation_data=p.validation, epochs=5,
                        verbose=0).history
    assert model.chains.shape == (40, 784) and set(np.unique(model.chains.numpy())) <= {0.0, 1.0}
    assert history["val_pseudo_log_likelihood"][-1] > history["val_pseudo_log_likelihood"][0]
    # Its swap rates are training figures, over all pairs and into beta = 1; validation has none.
    assert all(0 < rate <= 1 for rate in history["swap_rate"] + history["top_swap_rate"])
    assert "val_swap_rate" not in history and "val_pseudo_log_likelihood" in history
    # With 2 temperatures every other step proposes no swap; its rate has weight 0, not NaN.
    pair = RBM(RBMConfig(hidden=16, chains=10, temperatures=2, negative_phase="pt"), seed=0)
    pair.compile()
    figures = pair.fit(p.train, steps_per_epoch=p.steps_per_epoch, epochs=1, verbose=0).history
    assert all(0 < figures[name][0] <= 1 for name in ("swap_rate", "top_swap_rate"))
    with pytest.raises(ValueError, match="negative_phase must be one of cd, pcd, pt"):
        RBMConfig(negative_phase="pdc")
    assert RBMConfig(persistent=True).negative_phase == "pcd"  # the flag before negative_phase


def centered_free_energy(v, W, b, c, mu, lam):
    """-log sum_h exp(-E) of E = -(v - mu).b - (h - lambda).c - (v - mu) W (h - lambda), in NumPy (float64)."""
    a = c + (v - mu) @ W
    return -(v - mu) @ b + a @ lam - np.logaddexp(0, a).sum(axis=1)


def test_a_centered_rbm_folds_into_an_ordinary_rbm_with_the_same_free_energy():
    keras.utils.set_random_seed(0)
    model = RBM(RBMConfig(hidden=16, centered=True, learning_rate=0.1), seed=0)
    model.compile()
    model.build_for_images()
    splits = data.load(tiny_data())
    model.initialise_offsets(splits.train.images.reshape(len(splits.train.images), -1).mean(axis=0) / 255.0)
    rng = np.random.default_rng(0)
    model.W.assign(rng.normal(0, 0.3, (784, 16)).astype(np.float32))
    model.hidden_offset.assign(rng.random(16).astype(np.float32))
    v = (rng.random((6, 784)) < 0.3).astype(np.float64)
    W, b, c, mu, lam = (x.numpy().astype(np.float64) for x in (model.W, model.visible_bias, model.hidden_bias,
                                                               model.visible_offset, model.hidden_offset))
    parameters = {k: x.numpy() for k, x in model.parameters().items()}
    folded = likelihood.free_energy(tf.constant(v, tf.float32), *(parameters[k] for k in (
        "weights", "visible_bias", "hidden_bias"))).numpy()
    difference = folded - centered_free_energy(v, W, b, c, mu, lam)
    np.testing.assert_allclose(difference, difference[0], atol=1e-3)  # equal up to a constant: the same p(v)
    # A step at learning rate 0 moves lambda but not the model: b' (and c') stay where they were.
    model.optimizer.learning_rate.assign(0.0)
    before = {k: x.numpy() for k, x in model.parameters().items()}
    model.train_step(tf.constant(splits.train.images[:30, ..., None] / 255.0 > 0.5, tf.float32))
    assert not np.allclose(model.hidden_offset.numpy(), lam)
    for key, value in model.parameters().items():
        np.testing.assert_allclose(value.numpy(), before[key], atol=1e-5)


def test_centered_training_under_zoo_train_sets_the_offsets_from_the_data(tmp_path):
    from zoo import train
    config = RBMConfig(hidden=16, chains=20, sample_steps=20, inpaint_steps=10, negative_phase="pcd", centered=True)
    result = train.train("rbm", config, tiny_data(binarize="dynamic", batch_size=30),
                         train.TrainConfig(epochs=2, logdir=str(tmp_path / "logs"), export_dir=str(tmp_path / "ex")))
    model = result.model
    mean = data.load(tiny_data()).train.images.reshape(-1, 784).mean(axis=0) / 255.0
    np.testing.assert_allclose(model.visible_offset.numpy(), np.clip(mean, 1e-3, 1 - 1e-3), atol=1e-6)
    assert not np.allclose(model.hidden_offset.numpy(), 0.5)


def test_mirrored_centered_pt_step_matches_one_device(two_cpus):
    config = tiny_data(binarize="dynamic", batch_size=60)
    weights = []
    for strategy in (tf.distribute.get_strategy(), two_cpus):
        p = data.datasets(config)
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = RBM(RBMConfig(hidden=16, chains=10, temperatures=3, negative_phase="pt", centered=True), seed=0)
            model.compile(optimizer=keras.optimizers.SGD(0.1))
            model.build_for_images()
        model.fit(p.train, steps_per_epoch=5, epochs=1, verbose=0)
        weights.append([v.numpy() for v in model.weights])
    for one, two in zip(*weights):
        np.testing.assert_allclose(one, two, rtol=1e-4, atol=1e-5)


def test_raise_bounds_the_exact_log_likelihood_from_below_and_ais_from_the_other_side():
    rng = np.random.default_rng(0)
    W = rng.normal(0, 1.5, (16, 10)).astype(np.float32)
    b = (rng.normal(0, 1, 16) - 1).astype(np.float32)
    c = rng.normal(0, 1, 10).astype(np.float32)
    states = ((np.arange(1 << 16)[:, None] >> np.arange(16)) & 1).astype(np.float32)
    log_z = likelihood.exact_log_partition(W, b, c)
    log_p = -likelihood.free_energy(tf.constant(states), W, b, c).numpy().astype(np.float64) - log_z
    p = np.exp(log_p) / np.exp(log_p).sum()
    test = states[rng.choice(len(states), 200, p=p)]
    exact = (-likelihood.free_energy(tf.constant(test), W, b, c).numpy() - log_z).mean()
    base = likelihood.base_rate_visible_bias(states[rng.choice(len(states), 2000, p=p)])
    temperatures = likelihood.ais_temperatures(1000)
    raised = likelihood.raise_log_likelihood(W, b, c, test, base, temperatures).mean()
    ais_log_z, _ = likelihood.ais_log_partition(W, b, c, base, temperatures, chains=200)
    ais = (-likelihood.free_energy(tf.constant(test), W, b, c).numpy() - ais_log_z).mean()
    assert raised <= exact + 0.02 and exact - raised < 0.3  # conservative, and close at 1,000 temperatures
    assert ais >= exact - 0.05 and ais - exact < 0.3
    # A short schedule: RAISE falls further below; it never rises above the truth.
    short = likelihood.raise_log_likelihood(W, b, c, test, base, likelihood.ais_temperatures(20)).mean()
    assert short < raised and short <= exact


def test_the_dbn_samples_its_top_rbm_with_the_configured_sampler():
    from zoo.models.dbn import DBN, DBNConfig
    model = DBN(DBNConfig(layers=(784, 16, 16), sample_steps=20, sampler="annealed"), seed=0)
    model.build_for_images()
    first = model.sample(4, 1)
    assert first.shape == (4, 28, 28, 1)
    np.testing.assert_array_equal(first, model.sample(4, 1, method="annealed"))
    assert not np.array_equal(first, model.sample(4, 1, method="gibbs"))
    with pytest.raises(ValueError, match="sampler must be one of"):
        DBNConfig(sampler="metropolis")
