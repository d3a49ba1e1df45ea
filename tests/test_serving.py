"""Serving-grade exports: every signature of every family checks its inputs and answers a bad one with
InvalidArgumentError naming it (the Python verbs raise the same errors); `sample` is capped by max_samples (set at
export, recorded in the card), so a huge request is an error, not an out-of-memory kill; `generate` gives one image
per seed, whatever else is in the batch."""

import time

import numpy as np
import pytest
import tensorflow as tf

from test_keras_saving import CONFIGS
from zoo import export
from zoo.models.base import MAX_SAMPLES
GOOD = np.random.default_rng(0).random((2, 28, 28, 1)).astype(np.float32)
MASK = (np.random.default_rng(1).random((2, 28, 28, 1)) < 0.5).astype(np.float32)


def with_values(array, index, value):
    array = array.copy()
    array.flat[index] = value
    return array


BAD_IMAGES = {  # what is wrong -> (the bad images, the message's words)
    "flat": (GOOD.reshape(2, 784), "images must have shape [batch, 28, 28, 1]"),
    "no channel axis": (GOOD[..., 0], "images must have shape [batch, 28, 28, 1]"),
    "other height and width": (GOOD.reshape(2, 14, 56, 1), "images must have shape [batch, 28, 28, 1]"),
    "an extra axis": (GOOD[..., None], "images must have shape [batch, 28, 28, 1]"),
    "NaN": (with_values(GOOD, 5, np.nan), "images must be finite"),
    "uint8 range": (GOOD * 255, "images must be in [0, 1]"),
}
BAD_MASKS = {
    "not binary": (with_values(MASK, 3, 0.5), "mask must be binary"),
    "other batch size": (MASK[:1], "mask must have the same shape as images"),
    "flat": (MASK.reshape(2, 784), "mask must have shape [batch, 28, 28, 1]"),
    "NaN": (with_values(MASK, 0, np.nan), "mask must be finite"),
}


@pytest.fixture(params=sorted(CONFIGS))
def exported(request, trained):
    """(kind, model, its export's signatures): each kind trained for an epoch by zoo.train (test_keras_saving)."""
    kind = request.param
    model, path = trained[1][kind][:2]
    assert export.read_card(path)["max_samples"] == MAX_SAMPLES  # the default cap, recorded
    return kind, model, tf.saved_model.load(path).signatures


def rejects(call, words):
    """call() raises InvalidArgumentError whose message holds `words`."""
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        call()
    assert words in error.value.message, error.value.message[:500]


def test_every_signature_rejects_each_bad_input_naming_it(exported):
    kind, model, sig = exported
    seed = tf.constant(0)
    for name in ("reconstruct", "encode", "inpaint"):
        if name not in sig:
            continue
        for images, words in BAD_IMAGES.values():
            extra = {"mask": tf.constant(np.ones_like(images)), "seed": seed} if name == "inpaint" else {}
            rejects(lambda: sig[name](images=tf.constant(images), **extra), words)
            verb = getattr(model, name)
            rejects(lambda: verb(images, *([np.ones_like(images), 0] if name == "inpaint" else [])), words)
    if "inpaint" in sig:
        for mask, words in BAD_MASKS.values():
            rejects(lambda: sig["inpaint"](images=tf.constant(GOOD), mask=tf.constant(mask), seed=seed), words)
            rejects(lambda: model.inpaint(GOOD, mask, 0), words)
        filled = sig["inpaint"](images=tf.constant(GOOD), mask=tf.constant(MASK), seed=seed)["images"].numpy()
        assert np.array_equal(filled[MASK == 1], GOOD[MASK == 1])  # good inputs still work
    width = model.latent_dim
    for latent, words in [(np.zeros((2, width + 1), np.float32), f"latent must have shape [batch, {width}]"),
                          (np.zeros((width,), np.float32), f"latent must have shape [batch, {width}]"),
                          (np.full((2, width), np.inf, np.float32), "latent must be finite")]:
        rejects(lambda: sig["decode"](latent=tf.constant(latent)), words)
        rejects(lambda: model.decode(latent), words)
    if "sample" in sig:
        for n in (-1, MAX_SAMPLES + 1, 10 ** 7):
            started = time.time()
            rejects(lambda: sig["sample"](num_samples=tf.constant(n), seed=seed),
                    f"num_samples must be in [0, {MAX_SAMPLES}]")
            assert time.time() - started < 1.0
        rejects(lambda: model.sample(10 ** 7, 0), f"num_samples must be in [0, {MAX_SAMPLES}]")
        rejects(lambda: sig["generate"](seeds=tf.zeros([MAX_SAMPLES + 1], tf.int32)), f"at most {MAX_SAMPLES} seeds")
        for shape in ([2, 2], [2, 1], []):
            rejects(lambda: sig["generate"](seeds=tf.zeros(shape, tf.int32)), "seeds must be a vector")
        assert sig["sample"](num_samples=tf.constant(3), seed=seed)["images"].shape == (3, 28, 28, 1)  # still up


def test_generate_gives_each_seed_its_own_image_whatever_the_batch(exported):
    kind, model, sig = exported
    if "generate" not in sig:
        assert "sample" not in sig  # every model with `sample` exports `generate`
        return
    alone = sig["generate"](seeds=tf.constant([7]))["images"].numpy()
    batched = sig["generate"](seeds=tf.constant([3, 7, 11, 7]))["images"].numpy()
    assert batched.shape == (4, 28, 28, 1)
    np.testing.assert_allclose(batched[1], alone[0], atol=1e-6)  # GEMM round-off at most: one batch decode
    np.testing.assert_allclose(batched[3], alone[0], atol=1e-6)
    # The image of a seed is the one sample(num_samples=1, seed) draws.
    np.testing.assert_allclose(sig["sample"](num_samples=tf.constant(1), seed=tf.constant(7))["images"].numpy(),
                               alone, atol=1e-6)
    assert sig["generate"](seeds=tf.zeros([0], tf.int32))["images"].shape == (0, 28, 28, 1)
