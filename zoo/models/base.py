"""What every model of the zoo shares: its config, the serving verbs, and two facts about tf.distribute.

Every model is a `keras.Model` subclass built from a small config dataclass, trained by `fit` through its own
`train_step`, and speaks in images of shape [batch, 28, 28, 1] with values in [0, 1] at its boundary, whatever it
uses inside. The verbs it offers (`sample`, `reconstruct`, `encode`, `decode`, `inpaint`) are listed in
`SIGNATURES`; `zoo.export` turns exactly those into SavedModel signatures, and `zoo.callbacks` draws them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import math
import random
import re
import weakref

import numpy as np

import keras
import tensorflow as tf

from zoo import contract

IMAGE_SHAPE = (28, 28, 1)


class MeanMetrics:
    """The figures a train_step and test_step report, each a keras.metrics.Mean in `trackers` (METRICS, in order)."""

    METRICS: tuple[str, ...] = ()

    @property
    def metrics(self):  # Keras resets these at each epoch and logs their results
        return list(self.trackers.values())

    def record(self, values, sample_weight=None):
        """Add one batch's figures by name (scalars, or per-image vectors for exact epoch means, also across
        replicas) and return every metric's running mean: what train_step and test_step return."""
        for name, value in values.items():
            self.trackers[name].update_state(value, sample_weight=sample_weight)
        return self.running_means()

    def record_weighted(self, values):
        """Add figures that each carry their own weight, {name: (value, weight)}: a rate and how many tries it is
        of."""
        for name, (value, weight) in values.items():
            self.trackers[name].update_state(value, sample_weight=weight)

    def record_when(self, condition, compute_values):
        """record(compute_values()) on the steps where `condition` (a boolean tensor) holds, and only the running
        means on the others: for figures that cost a noticeable part of a step to compute."""
        def update():
            for name, value in compute_values().items():
                self.trackers[name].update_state(value)
            return tf.constant(True)

        tf.cond(condition, update, lambda: tf.constant(False))
        return self.running_means()

    def running_means(self):
        results = {name: tracker.result() for name, tracker in self.trackers.items()}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3 reduces a step's outputs across workers with strategy.reduce(MEAN, axis=0), which fails on
            # scalars ("Invalid reduction dimension 0", tensorflow/tensorflow#72388): give them that axis.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results


def mean_trackers(names):
    return {name: keras.metrics.Mean(name=name) for name in names}


# The verbs' tensor inputs, each with its check (see below); any other argument (steps=, ...) is a Python option.
TENSOR_ARGUMENTS = {
    "images": lambda model, x, _: check_images(x),
    "mask": lambda model, x, given: check_mask(x, given["images"]),
    "latent": lambda model, x, _: check_latent(x, model.latent_dim),
    "num_samples": lambda model, x, _: check_num_samples(x, model.max_samples),
    "seeds": lambda model, x, _: check_seeds(x, model.max_samples),
    "seed": lambda model, x, _: check_seed(x),
    "label": lambda model, x, _: check_label(x, model.num_classes),
    "labels": lambda model, x, given: check_labels(x, model.num_classes, next(
        (given[n] for n in ("images", "latent", "seeds") if n in given), None)),
}
_compiled_verbs = weakref.WeakKeyDictionary()  # model -> {(verb, options): tf.function}


def _run_verb(verb, model, names, options, *values):
    """verb(model, tensor arguments by name, Python options): what a compiled verb traces."""
    return verb(model(), **dict(zip(names, values)), **dict(options))


def compiled_verb(verb):
    """Decorator: a verb called eagerly runs as a graph, traced once per model and per Python option. Eagerly, a
    tf.while_loop runs its body as Python, step by step: a 1,000-step Gibbs chain would crawl."""
    signature = inspect.signature(verb)

    @functools.wraps(verb)
    def call(self, *args, **kwargs):
        if not tf.executing_eagerly():  # inside a graph already (a signature, a train_step)
            return verb(self, *args, **kwargs)
        arguments = signature.bind(self, *args, **kwargs).arguments
        tensors = {}  # checked here, for a plain message (and a graph traced for valid shapes only)
        for name in [n for n in TENSOR_ARGUMENTS if arguments.get(n) is not None]:  # images before mask
            tensors[name] = TENSOR_ARGUMENTS[name](self, arguments[name], tensors)
        options = {k: v for k, v in arguments.items() if k not in tensors and k != "self"}
        names = sorted(tensors)
        functions = _compiled_verbs.setdefault(self, {})
        key = (verb.__name__, tuple(names), tuple(sorted(options.items())))
        if key not in functions:
            # The model by weak reference: the cache must not keep it alive.
            functions[key] = tf.function(  # any batch size: one trace
                functools.partial(_run_verb, verb, weakref.ref(self), tuple(names), tuple(options.items())),
                input_signature=[tf.TensorSpec([None] * tensors[n].shape.rank if n != "latent" else
                                               [None, self.latent_dim], tensors[n].dtype) for n in names])
        return functions[key](*(tensors[n] for n in names))

    return call


class ZooModel(MeanMetrics, keras.Model):
    KIND: str = ""  # its name in zoo.models.MODELS, `python -m zoo.train KIND` and model cards
    CONDITIONAL: bool = False  # trains on (images, labels) and generates a chosen class (docs/conditional.md)
    num_classes: int = 10
    Config: type = None  # the model's config dataclass
    SIGNATURES: tuple[str, ...] = ()  # serving verbs it implements, `sample` first (it is also serving_default)
    DATA: dict = {}  # what it wants from zoo.data's pipeline under zoo.train: e.g. dict(binarize="dynamic")
    # XLA on a CPU helps the dense models and slows the convolutional ones (docs/benchmarks.md). On a GPU zoo.train
    # always compiles with XLA.
    XLA_ON_CPU: bool = False
    MIXED_PRECISION: bool = False  # trains under the mixed_float16 policy (zoo.train --mixed-precision)
    KEEP: str = "last"  # which epoch zoo.train exports by default: "last", or "best" by validation sample quality
    # Config fields that only sampling reads: `python -m zoo.export --from ... --set` may change them after training.
    SAMPLING_SETTINGS: tuple[str, ...] = ()

    def __init__(self, config=None, seed: int = 0, max_samples: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.config = check_finite(config if config is not None else self.Config())
        self.seed = int(seed)  # keys every stateless random draw of training, so a seed fixes a run
        self.trackers = mean_trackers(self.METRICS)
        self.max_samples = int(max_samples or MAX_SAMPLES)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in vars(cls):
            cls.__init__ = seeded_construction(vars(cls)["__init__"])

    @property
    def data_shape(self):
        """The shape of one example of what the model trains on: an image, [28, 28, 1]."""
        return IMAGE_SHAPE

    @compiled_verb
    def generate(self, seeds):
        """One image per seed: image i is sample(1, seeds[i]), whatever else is in the batch (TF Serving batches
        requests together). Models whose samples are one decode of seeded noise do it as one batch."""
        return per_seed(check_seeds(seeds, self.max_samples), lambda seed: self.sample(1, seed)[0])

    @property
    def conditional_classes(self):
        """The number of classes fit's labels take (a conditional model's), or None: labels are dropped."""
        return self.num_classes if self.CONDITIONAL else None

    def split_batch(self, data):
        """(images, labels) of a batch as fit hands it to train_step: labels (int32 [n]) for a conditional model,
        None for the others."""
        return (data[0], data[1]) if self.CONDITIONAL else (data, None)

    def reconstruct(self, images):
        """decode(encode(images)): the model's reconstruction of images."""
        return self.decode(self.encode(images)["latent"])

    @compiled_verb
    def inpaint(self, images, mask, seed):
        """images with their missing pixels (mask 0) filled in by the model given the observed ones (mask 1), which
        are kept as they are: complete() is each model's own way."""
        images = check_images(images)
        mask = check_mask(mask, images)
        observed = mask > 0.5
        return tf.where(observed, images, self.complete(images, observed, seed))

    def complete(self, images, observed, seed):
        """The model's values of every pixel of images [n, 28, 28, 1] given those where `observed` (booleans of the
        same shape) holds; inpaint keeps them for the missing pixels only."""
        raise NotImplementedError(f"{type(self).__name__} does not inpaint")

    @classmethod
    def data_settings(cls, config):
        """What the model wants from zoo.data under this config: its DATA, unless the config changes it."""
        return dict(cls.DATA)

    @property
    def latent_dim(self):
        """Width of the code that `encode` returns and `decode` takes."""
        return self.config.latent_dim

    def default_optimizer(self, total_steps=None):
        """The optimizer `compile` uses unless given one; total_steps (the run's length, when known) lets a
        model decay its learning rate over the run."""
        return keras.optimizers.Adam(self.config.learning_rate)

    def compile(self, optimizer=None, total_steps=None, **kwargs):
        super().compile(optimizer=optimizer or self.default_optimizer(total_steps), **kwargs)

    def training_callbacks(self, splits):
        """Callbacks of this model's own that zoo.train adds (splits: zoo.data's uint8 train/validation/test)."""
        return []

    def build_for_images(self):
        """Create the variables by running the model once on a dummy batch of its data (export and checkpoints need
        them; every model is built when it is made, see seeded_construction)."""
        if not self.built:
            self(tf.zeros((1,) + tuple(self.data_shape)))

    # -- fit and evaluate on data as Keras users hold it ----------------------------------------------------------

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, **kwargs):
        """keras.Model.fit, on images as a Keras user holds them (fit_dataset): NumPy arrays or tensors of images,
        with or without labels, or a tf.data.Dataset of batches (as TFDS or zoo.data yields them). Arrays are
        shuffled each epoch in an order fixed by the model's seed. Images that are not pixels (floats outside
        [0, 1], NaN, another shape or dtype) stop fit at once with a ValueError naming the problem and the fix."""
        if validation_split and validation_data is None:  # Keras's split: the last part, before shuffling
            (x, y), validation_data = split_arrays(x, y, validation_split, self.data_shape)
        train = fit_dataset(x, y, self.data_shape, batch_size, shuffle, self.seed, self.conditional_classes)
        validation = None if validation_data is None else fit_dataset(
            *unpack_validation(validation_data, self.CONDITIONAL), self.data_shape,
            kwargs.pop("validation_batch_size", None) or batch_size, False, self.seed, self.conditional_classes)
        with clear_input_errors():
            return super().fit(train, epochs=epochs, verbose=verbose, callbacks=callbacks,
                               validation_data=validation, shuffle=False, **kwargs)  # shuffled by fit_dataset

    def evaluate(self, x=None, y=None, batch_size=None, **kwargs):
        """keras.Model.evaluate on images as fit takes them."""
        if not kwargs.get("_use_cached_eval_dataset"):  # fit's validation data, converted by fit already
            x, y, batch_size = fit_dataset(x, y, self.data_shape, batch_size, False, self.seed,
                                           self.conditional_classes), None, None
        with clear_input_errors():
            return super().evaluate(x, y, batch_size=batch_size, **kwargs)

    # -- Keras serialization: model.save("m.keras") and keras.saving.load_model("m.keras") ----------------------
    # The config is the model's dataclass and seed; the variables, optimizers included, are Keras's to save.

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "dtype": keras.dtype_policies.serialize(self.dtype_policy),
                "config": dataclasses.asdict(self.config), "seed": self.seed, "max_samples": self.max_samples}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in config.pop("config").items()}  # JSON lists
        policy = keras.dtype_policies.deserialize(config["dtype"]) if isinstance(config.get("dtype"), dict) else None
        with global_dtype_policy(policy.name if policy else None):  # sublayers take the global policy when made
            return cls(cls.Config(**fields), **config)

    def get_build_config(self):
        return {"images": list(IMAGE_SHAPE)}

    def build_from_config(self, config):
        self.build_for_images()

    def compile_from_config(self, config):
        """Compile as at saving (Keras skips this for a custom `compile`) and create the optimizers' variables, so
        that loading restores their state and `fit` continues where the saved model stopped."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        for optimizer in self.optimizers():
            if not optimizer.built:
                optimizer.build(self.trainable_variables)

    def optimizers(self):
        """Every optimizer the model trains with (the GAN has two)."""
        return [self.optimizer]

    def serving_weights(self):
        """The variables the serving verbs read, in a fixed order: what a pretrained model ships (zoo.pretrained).
        Every weight of the model, for most; the GANs' averaged generator alone."""
        return self.weights

    def load_serving_weights(self, arrays):
        """Set serving_weights() to arrays (NumPy, in its order), checking that they fit this model's config."""
        variables = self.serving_weights()
        if len(arrays) != len(variables) or any(tuple(a.shape) != tuple(v.shape) for a, v in zip(arrays, variables)):
            raise ValueError(f"the weights ({len(arrays)} arrays) do not fit this {type(self).__name__}'s config "
                             f"({len(variables)} variables); they were saved from a model of another configuration")
        for variable, value in zip(variables, arrays):
            variable.assign(value)

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs):
        """Keras's export, written as the zoo's: the serving contract's SavedModel at filepath (a new folder), with
        every verb's signature and its input checks, the model card and the trainable Keras file (docs/serving.md),
        not Keras's single `serve` endpoint of `call` (for the VAE, raw decoder logits). Returns the path."""
        if format != "tf_saved_model" or input_signature is not None or kwargs:
            raise ValueError(f"a zoo model exports the serving contract's SavedModel only (format='tf_saved_model', "
                             f"its own signatures; docs/serving.md), got format={format!r}"
                             + (" and an input_signature" if input_signature is not None else ""))
        card = {"kind": self.KIND, "config": dataclasses.asdict(self.config), "seed": self.seed,
                "steps": int(self.optimizer.iterations.numpy()) if getattr(self, "optimizer", None) else 0,
                "exported_by": "model.export"}
        path = contract.export_to(self, filepath, card)
        if verbose is not False:
            print(f"Exported {', '.join(self.SIGNATURES)} to {path}")
        return path

    def save(self, filepath, *args, **kwargs):
        self.build_for_images()  # a model saved before its first call would have no variables to save
        super().save(filepath, *args, **kwargs)


def seeded_construction(init):
    """A ZooModel subclass's __init__, run with Python's `random` module seeded from the model's seed, and the model
    built at its end: Keras draws the seed of every initializer and dropout layer made without one from `random`,
    so the same config and seed then give the same initial weights in any process. The caller's `random` state is
    restored afterwards; a model made inside another's constructor (the DBN's top RBM) seeds its own."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def construct(self, *args, **kwargs):
        seed = signature.bind(self, *args, **kwargs).arguments.get("seed", 0)
        outermost = not getattr(self, "_constructing", False)  # a subclass's __init__ calling its parent's
        state = random.getstate()
        random.seed(int(seed))
        self._constructing = True
        try:
            init(self, *args, **kwargs)
            if outermost:
                self.build_for_images()
        finally:
            random.setstate(state)
            if outermost:
                self._constructing = False

    construct.__signature__ = signature  # Keras reads the constructor's arguments from its signature
    return construct


class GaussianPrior:
    """Mixin for models whose samples are decode(z) with z ~ N(0, I) drawn from the stateless seed (seed, 0), the
    VAE and the GANs: a served sample can be regenerated from its seed, and `generate` decodes all seeds at once."""

    def prior_noise(self, shape, seed):
        """The codes that sampling decodes: z ~ N(0, I) (the GANs may truncate it)."""
        return tf.random.stateless_normal(shape, seed)

    def sample(self, num_samples, seed):
        num_samples, seed = check_num_samples(num_samples, self.max_samples), check_seed(seed)
        return self.decode(self.prior_noise([num_samples, self.latent_dim], seed_pair(seed, 0)))

    @compiled_verb
    def generate(self, seeds):
        """One image per seed, the one sample(1, seed) draws: each seed's z alone, decoded as one batch."""
        z = per_seed(check_seeds(seeds, self.max_samples),
                     lambda seed: self.prior_noise([self.latent_dim], seed_pair(seed, 0)))
        return self.decode(z)


def check_fields(config, **rules):
    """A ValueError naming the first field of a config that breaks its rule, with its value; each rule is
    field=(holds(value) -> bool, what the value must be). A NaN or infinite number is refused first, by name."""
    check_finite(config)
    for name, (holds, requirement) in rules.items():
        value = getattr(config, name)
        if not holds(value):
            shown = ",".join(map(str, value)) if isinstance(value, tuple) else repr(value)
            raise ValueError(f"{name} must be {requirement}, got {shown}")


def positive(value):
    """Whether a number, or every size of a non-empty tuple, is above 0."""
    values = value if isinstance(value, tuple) else (value,)
    return bool(values) and min(values) > 0


def check_finite(config):
    """The config, if every number in it is finite; a ValueError naming the field otherwise (a NaN learning rate
    passes every `<= 0` check and trains a NaN model)."""
    for f in dataclasses.fields(config):
        values = getattr(config, f.name)
        for value in values if isinstance(values, tuple) else (values,):
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value}")
    return config


@contextlib.contextmanager
def global_dtype_policy(name):
    """Layers made inside take the dtype policy `name` (e.g. "mixed_float16"); None changes nothing."""
    previous = keras.mixed_precision.global_policy()
    if name:
        keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


# -- Input checks: the same in a Python call and inside every exported signature ---------------------------------
# Each is a tf.debugging assertion that every later op depends on, so a bad input fails with InvalidArgumentError
# naming it (eagerly, at the call; in a signature, before any work), never with a scrambled or NaN answer.

MAX_SAMPLES = 10_000  # default cap of `sample` and `generate`: one call's images; an export records its own


def checked(value, *requirements):
    """value, once every (condition, message, shown) in requirements holds, in order: functions making the
    condition and the tensor shown after the message, made and run only once the checks before them passed (a
    shape check guards the value checks, whose ops assume the shape)."""
    passed = []
    for condition, message, shown in requirements:
        with tf.control_dependencies(passed):
            holds, data = condition(), shown()
            if tf.executing_eagerly():  # a Python call: a plain message, at once
                if not bool(holds):
                    raise tf.errors.InvalidArgumentError(None, None, f"{message} {data.numpy().tolist()}")
            else:
                passed.append(tf.debugging.Assert(holds, [message, data], summarize=8))
    if not passed:
        return value
    with tf.control_dependencies(passed):
        return tf.identity(value)


def _shape_is(x, expected):
    """Whether x has rank len(expected) and those sizes (None: any), as a boolean tensor that never fails.

    Inside a signature, TensorFlow's graph optimizer folds what the input spec says the rank is into a constant
    (an input of another rank is not refused by the signature itself), so the rank is checked through numbers
    that only exist at run time: the element count, and the size past the last expected axis."""
    shape = tf.shape(x)
    padded = tf.concat([shape, tf.zeros([len(expected) + 1], tf.int32)], 0)[:len(expected) + 1]
    ok = tf.logical_and(tf.equal(padded[len(expected)], 0), tf.equal(tf.size(x), tf.reduce_prod(padded[:-1])))
    ok = tf.logical_and(ok, tf.greater_equal(tf.size(shape), len(expected)))
    for axis, size in enumerate(expected):
        if size is not None:
            ok = tf.logical_and(ok, tf.equal(padded[axis], size))
    return ok


def check_images(images, name="images"):
    """images as float32 [batch, 28, 28, 1], finite, in [0, 1] (out-of-range values are rejected, not clipped)."""
    images = tf.convert_to_tensor(images, tf.float32)
    return checked(
        images,
        (lambda: _shape_is(images, (None,) + IMAGE_SHAPE),
         f"{name} must have shape [batch, 28, 28, 1] (reshape flat [batch, 784] arrays with "
         "x.reshape(-1, 28, 28, 1)); got shape", lambda: tf.shape(images)),
        (lambda: tf.reduce_all(tf.math.is_finite(images)), f"{name} must be finite; got this many NaN or infinite "
         "values:", lambda: tf.reduce_sum(tf.cast(~tf.math.is_finite(images), tf.int32))),
        (lambda: tf.reduce_all((images >= 0) & (images <= 1)),
         f"{name} must be in [0, 1] (divide uint8 pixels by 255); got min and max",
         lambda: tf.stack([tf.reduce_min(images), tf.reduce_max(images)])),
    )


def check_mask(mask, images):
    """mask as float32 of the images' shape, every value 0 (missing) or 1 (observed)."""
    mask = check_images(mask, "mask")
    return checked(
        mask,
        (lambda: tf.reduce_all(tf.equal(tf.shape(mask), tf.shape(images))),
         "mask must have the same shape as images; got mask and images batch sizes",
         lambda: tf.stack([tf.shape(mask)[0], tf.shape(images)[0]])),
        (lambda: tf.reduce_all((mask == 0) | (mask == 1)), "mask must be binary: 1 observed, 0 missing; got "
         "this many other values:", lambda: tf.reduce_sum(tf.cast((mask != 0) & (mask != 1), tf.int32))),
    )


def check_latent(latent, width):
    """latent as float32 [batch, width], finite."""
    latent = tf.convert_to_tensor(latent, tf.float32)
    return checked(
        latent,
        (lambda: _shape_is(latent, (None, width)), f"latent must have shape [batch, {width}]; got shape",
         lambda: tf.shape(latent)),
        (lambda: tf.reduce_all(tf.math.is_finite(latent)), "latent must be finite; got this many NaN or infinite "
         "values:", lambda: tf.reduce_sum(tf.cast(~tf.math.is_finite(latent), tf.int32))),
    )


def check_num_samples(num_samples, max_samples):
    """num_samples as an int32 scalar in [0, max_samples]: a request over the cap is an error, not an
    out-of-memory kill of the server."""
    num_samples = tf.convert_to_tensor(num_samples, tf.int32)
    return checked(
        num_samples,
        (lambda: _shape_is(num_samples, ()), "num_samples must be a scalar; got shape",
         lambda: tf.shape(num_samples)),
        (lambda: (num_samples >= 0) & (num_samples <= max_samples),
         f"num_samples must be in [0, {max_samples}] (max_samples, set at export); got", lambda: num_samples),
    )


# -- What fit takes: data as Keras users hold it ------------------------------------------------------------------

FIT_INPUT = "[n, 28, 28, 1], [n, 28, 28] or flat [n, 784] images, uint8 0..255 or float in [0, 1]"
_FIT_ERROR = "fit: images"  # the start of every message of fit_images, found again in the errors that carry it


def fit_images(element, shape=IMAGE_SHAPE):
    """The model's input from one element of a user's data: images; (images, labels[, weights]); or a dict with an
    "image" or "images" entry, as TFDS yields them (labels and the rest are dropped). The images may be any of
    FIT_INPUT (an RBM over other units: [n, units] in [0, 1]); uint8 pixels are divided by 255, as zoo.data does.
    Returns float32 [n, *shape]. A dtype or shape outside these is a ValueError at once; values outside [0, 1] or
    not finite fail the check that every later op depends on (eagerly: at once; in a dataset: at its first bad
    batch), with a message naming the problem and the fix."""
    images = element
    if isinstance(element, (tuple, list)):
        images = element[0] if element else None
    if isinstance(images, dict):
        key = next((k for k in ("image", "images") if k in images), None)
        if key is None:
            raise ValueError(f"{_FIT_ERROR}: a dict of data needs an 'image' entry (as TFDS gives it); got the "
                             f"entries {', '.join(map(str, images))}")
        images = images[key]
    if images is None:
        raise ValueError(f"{_FIT_ERROR}: none given; pass x, {FIT_INPUT}")
    images = tf.convert_to_tensor(images)
    if images.dtype == tf.uint8:
        images = tf.cast(images, tf.float32) / 255.0
    elif images.dtype.is_floating or images.dtype == tf.bool:
        images = tf.cast(images, tf.float32)
    else:
        raise ValueError(f"{_FIT_ERROR} have dtype {images.dtype.name}; give uint8 pixels 0..255 "
                         "(x.astype('uint8')) or floats in [0, 1]")
    images = tf.reshape(images, [-1, *shape]) if _accepted_shape(images.shape, shape) else _refuse_shape(
        images.shape, shape)
    return checked(
        images,
        (lambda: tf.reduce_all(tf.math.is_finite(images)),
         f"{_FIT_ERROR} must be finite; this many values are NaN or infinite:",
         lambda: tf.reduce_sum(tf.cast(~tf.math.is_finite(images), tf.int32))),
        (lambda: tf.reduce_all((images >= 0) & (images <= 1)),
         f"{_FIT_ERROR} must be in [0, 1] as floats (divide 0..255 values by 255, or pass them as uint8); "
         "got min and max", lambda: tf.stack([tf.reduce_min(images), tf.reduce_max(images)])),
    )


def _example_forms(shape):
    """The shapes one example may have: [*shape], flat, and for 784 units the image shapes too."""
    size = int(np.prod(shape))
    return {tuple(shape), (size,)} | ({(28, 28), (28, 28, 1)} if size == 784 else set())


def _accepted_shape(static, shape):
    """Whether a batch of this static shape holds examples of `shape` (in any of their _example_forms)."""
    return static.rank is not None and static.rank >= 2 and tuple(static[1:]) in _example_forms(shape)


def _refuse_shape(static, shape):
    if static.rank is None or any(d is None for d in static[1:]):
        problem = (f"have an unknown shape {static}; give the dataset a shape, e.g. dataset.map(lambda x: "
                   "tf.ensure_shape(x, [None, 28, 28, 1]))")
    elif tuple(static) in _example_forms(shape):
        problem = (f"are single examples of shape {list(static)}, not batches: batch the dataset, e.g. "
                   "dataset.batch(100)")
    else:
        expected = FIT_INPUT if int(np.prod(shape)) == 784 else f"[n, {shape[0]}] values in [0, 1]"
        problem = f"have shape {static.as_list()}; the model takes {expected}"
    raise ValueError(f"{_FIT_ERROR} {problem}")


def fit_dataset(x, y, shape, batch_size, shuffle, seed, classes=None):
    """What fit and evaluate hand to Keras: a tf.data.Dataset of checked model inputs (fit_images), with their
    labels (fit_labels) when `classes` is given (a conditional model's). Arrays are checked whole, at once, and
    batched (32 a batch unless batch_size says), shuffled each epoch if `shuffle` in an order fixed by `seed`; a
    dataset is mapped batch by batch."""
    if isinstance(x, tf.data.Dataset):
        if batch_size is not None or y is not None:
            raise ValueError("fit: a tf.data.Dataset carries its own batches and labels; drop batch_size and y")

        def adapt(*element):
            element = element[0] if len(element) == 1 else element
            images = fit_images(element, shape)
            return images if classes is None else (images, fit_labels(labels_of(element), classes, images))

        # Not converted by AutoGraph: a shape or dtype refused while tracing stays the plain ValueError it is.
        return x.map(tf.autograph.experimental.do_not_convert(adapt)).prefetch(tf.data.AUTOTUNE)
    if x is None or not isinstance(x, (np.ndarray, tf.Tensor, list, tuple, dict)):
        raise ValueError(f"fit takes images as a NumPy array, a tensor or a tf.data.Dataset ({FIT_INPUT}); got "
                         f"{type(x).__name__}")
    try:
        images = fit_images(x, shape)
        if classes is not None:
            labels = fit_labels(y if y is not None else labels_of(x), classes, images)
    except tf.errors.InvalidArgumentError as error:
        raise ValueError(error.message) from None
    dataset = tf.data.Dataset.from_tensor_slices(images if classes is None else (images, labels))
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size or 32).prefetch(tf.data.AUTOTUNE)


def labels_of(element):
    """The labels of an element of a user's data: (images, labels[, ...]) or a dict's "label" entry; None."""
    if isinstance(element, dict):
        return element.get("label", element.get("labels"))
    if isinstance(element, (tuple, list)) and len(element) > 1:
        return element[1]
    return None


def fit_labels(labels, classes, images):
    """A conditional model's labels from a user's data: int32 [n], each in [0, classes); integer class indices, or
    one-hot rows [n, classes] (Keras's to_categorical). Missing labels, another shape or count than the images', or
    a class out of range are a ValueError (or the check every later op depends on), naming the fix."""
    if labels is None:
        raise ValueError(f"fit: labels: a conditional model trains on (image, label) pairs; pass fit(x, y) with y the "
                         f"class indices 0..{classes - 1}, or a dataset of (images, labels)")
    labels = tf.convert_to_tensor(labels)
    if labels.shape.rank == 2 and labels.shape[-1] == classes:  # one-hot
        labels = tf.argmax(labels, axis=-1)
    if not (labels.dtype.is_integer or labels.dtype.is_floating) or labels.shape.rank != 1:
        raise ValueError(f"fit: labels must be class indices [n] (or one-hot [n, {classes}]); got {labels.dtype.name} "
                         f"of shape {labels.shape}")
    if labels.dtype.is_floating:
        labels = checked(labels, (lambda: tf.reduce_all(tf.equal(labels, tf.round(labels))),
                                  "fit: labels must be whole class indices; got values like", lambda: labels[:5]))
    labels = tf.cast(labels, tf.int32)
    return checked(
        labels,
        (lambda: tf.equal(tf.shape(labels)[0], tf.shape(images)[0]),
         "fit: labels must be one per image; got labels and images", lambda: tf.stack(
             [tf.shape(labels)[0], tf.shape(images)[0]])),
        (lambda: tf.reduce_all((labels >= 0) & (labels < classes)),
         f"fit: labels must be class indices in 0..{classes - 1}; got min and max",
         lambda: tf.stack([tf.reduce_min(labels), tf.reduce_max(labels)])),
    )


def split_arrays(x, y, fraction, shape):
    """Keras's validation_split for arrays: ((training inputs, their labels), (validation inputs, their labels)), the
    last `fraction` held out (labels None if not given)."""
    if isinstance(x, tf.data.Dataset):
        raise ValueError("fit: validation_split needs arrays; with a tf.data.Dataset pass validation_data")
    if not 0 < fraction < 1:
        raise ValueError(f"fit: validation_split must be in (0, 1), got {fraction}")
    try:
        images = fit_images(x, shape)
    except tf.errors.InvalidArgumentError as error:
        raise ValueError(error.message) from None
    cut = int(len(images) * (1 - fraction))
    y = labels_of(x) if y is None and not isinstance(x, np.ndarray) else y
    return (images[:cut], None if y is None else y[:cut]), (images[cut:], None if y is None else y[cut:])


def unpack_validation(validation_data, with_labels=False):
    """(x, y) of fit's validation_data: a dataset, images, or an (images, labels[, weights]) tuple; y only for a
    model that takes labels."""
    if isinstance(validation_data, tuple) and len(validation_data) in (2, 3):
        return validation_data[0], validation_data[1] if with_labels else None
    return validation_data, None


@contextlib.contextmanager
def clear_input_errors():
    """A bad batch found inside fit or evaluate, as a ValueError with fit_images's message alone, not TensorFlow's
    graph-execution report around it."""
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        found = re.search(re.escape(_FIT_ERROR) + r".*", error.message)
        if not found:
            raise
        raise ValueError(found.group(0).strip().replace("] [", " [", 1)) from None  # "[message] [values]"


def check_seed(seed):
    """seed as an int32 scalar: an integer; a float, or a tensor of another shape, is refused naming it."""
    dtype = getattr(seed, "dtype", None)
    if isinstance(seed, (bool, float)) or (dtype is not None and not tf.as_dtype(dtype).is_integer):
        raise tf.errors.InvalidArgumentError(None, None, f"seed must be an integer; got {seed!r}")
    seed = tf.convert_to_tensor(seed, tf.int32)
    return checked(seed, (lambda: _shape_is(seed, ()), "seed must be a scalar; got shape", lambda: tf.shape(seed)))


def check_label(label, classes):
    """label as an int32 scalar class index in [0, classes)."""
    label = tf.convert_to_tensor(label, tf.int32)
    return checked(
        label,
        (lambda: _shape_is(label, ()), "label must be a scalar class index; got shape", lambda: tf.shape(label)),
        (lambda: (label >= 0) & (label < classes), f"label must be a class in 0..{classes - 1}; got", lambda: label),
    )


def check_labels(labels, classes, batch=None):
    """labels as an int32 vector of class indices in [0, classes), one per row of `batch` (images, codes or seeds)
    if given."""
    labels = tf.convert_to_tensor(labels, tf.int32)
    requirements = [
        (lambda: _shape_is(labels, (None,)), "labels must be a vector of class indices [n]; got shape",
         lambda: tf.shape(labels)),
        (lambda: tf.reduce_all((labels >= 0) & (labels < classes)),
         f"labels must be classes in 0..{classes - 1}; got min and max",
         lambda: tf.stack([tf.reduce_min(labels), tf.reduce_max(labels)])),
    ]
    if batch is not None:
        requirements.insert(1, (lambda: tf.equal(tf.size(labels), tf.shape(batch)[0]),
                                "labels must be one per row; got labels and rows",
                                lambda: tf.stack([tf.size(labels), tf.shape(batch)[0]])))
    return checked(labels, *requirements)


def cycled_labels(count, classes):
    """0, 1, ..., classes - 1, 0, 1, ...: the labels a conditional model draws when none are asked for."""
    return tf.range(count) % classes


def random_binary(shape, seed):
    """Uniformly random binary states (each unit 1 with probability 1/2): where a Gibbs chain starts."""
    return tf.cast(tf.random.stateless_uniform(shape, seed) < 0.5, tf.float32)


def chain_mean(step, start, steps):
    """A Markov chain's estimate of E[value]: state, value = step(i, state) for i < steps from `start`, and the mean
    of value (start's shape) over the second half of the rounds, the first half being the burn-in."""
    burn_in = steps // 2

    def body(i, state, total):
        state, value = step(i, state)
        return i + 1, state, total + tf.where(i >= burn_in, value, tf.zeros_like(value))

    _, _, total = tf.while_loop(lambda i, *_: i < steps, body, (tf.constant(0), start, tf.zeros_like(start)))
    return total / float(steps - burn_in)


def per_seed(seeds, draw):
    """[draw(seed) for seed in seeds] as one tensor: each row from its own seed alone."""
    first = draw(tf.constant(0))  # only its type and shape, for map_fn
    return tf.map_fn(draw, seeds, fn_output_signature=tf.TensorSpec(first.shape, first.dtype), parallel_iterations=16)


def check_seeds(seeds, max_samples):
    """seeds as an int32 vector of at most max_samples seeds."""
    seeds = tf.convert_to_tensor(seeds, tf.int32)
    return checked(
        seeds,
        (lambda: _shape_is(seeds, (None,)), "seeds must be a vector [n]; got shape", lambda: tf.shape(seeds)),
        (lambda: tf.size(seeds) <= max_samples,
         f"seeds may hold at most {max_samples} seeds (max_samples, set at export); got", lambda: tf.size(seeds)),
    )


def replica():
    """(number of replicas, this replica's index); (1, 0) outside a replicated step."""
    context = tf.distribute.get_replica_context()
    if context is None:  # cross-replica context, e.g. a callback running under strategy.scope()
        return 1, 0
    return context.num_replicas_in_sync, context.replica_id_in_sync_group


def num_replicas():
    """How many replicas compute this step: Keras sums their gradients, so per-replica losses divide by it."""
    return replica()[0]


def replica_mean(x):
    """The mean of x over the replicas of this step (x itself on one device): a statistic of the global batch."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return x
    return context.all_reduce(tf.distribute.ReduceOp.MEAN, x)


def replica_noise(shape, seed, draw=tf.random.stateless_normal):
    """Noise (`draw`: a stateless sampler, normal by default) for this replica's share of the global batch.

    The noise of the whole global batch is drawn from one stateless seed and each replica takes its rows, so a
    seeded run draws the same numbers for the same images on one device or on many, compiled alike: XLA draws
    other numbers from the same seed than TensorFlow's own kernels (whatever the `alg`), and zoo.train compiles
    with XLA only on one device.
    """
    replicas, index = replica()
    if replicas == 1:
        return draw(shape, seed)
    rows = shape[0]
    noise = draw(tf.concat([[rows * replicas], shape[1:]], axis=0), seed)
    return noise[rows * index: rows * (index + 1)]


def seed_pair(seed, stream):
    """The stateless seed (seed, stream): one int32 seed of a serving call, split into independent streams."""
    return tf.stack([tf.cast(seed, tf.int32), tf.cast(stream, tf.int32)])


def step_seed(model, stream: int, optimizer=None):
    """A stateless seed for this training step: (model seed, step * 16 + stream), distinct per step and use. The step
    is the update count of `optimizer` (a model with several, like the GAN's), by default of model.optimizer."""
    step = tf.cast((optimizer or model.optimizer).iterations, tf.int32)
    return tf.stack([tf.constant(model.seed, tf.int32), step * 16 + stream])
