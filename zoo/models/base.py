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
import weakref

import keras
import tensorflow as tf

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
    "seed": lambda model, x, _: tf.convert_to_tensor(x, tf.int32),
}
_compiled_verbs = weakref.WeakKeyDictionary()  # model -> {(verb, options): tf.function}


def _run_verb(verb, model, names, options, *values):
    """verb(model, tensor arguments by name, Python options): what a compiled verb traces."""
    return verb(model(), **dict(zip(names, values)), **dict(options))


def compiled_verb(verb):
    """Decorator: a verb called eagerly runs as a graph, traced once per model and per Python option. Eagerly, a
    tf.while_loop runs its body as Python: an RBM's 1,000-step Gibbs chain took 10 s for 100 samples."""
    signature = inspect.signature(verb)

    @functools.wraps(verb)
    def call(self, *args, **kwargs):
        if not tf.executing_eagerly():  # inside a graph already (a signature, a train_step)
            return verb(self, *args, **kwargs)
        arguments = signature.bind(self, *args, **kwargs).arguments
        tensors = {}  # checked here, for a plain message (and a graph traced for valid shapes only)
        for name in [n for n in TENSOR_ARGUMENTS if n in arguments]:  # images before mask
            tensors[name] = TENSOR_ARGUMENTS[name](self, arguments[name], tensors)
        options = {k: v for k, v in arguments.items() if k not in TENSOR_ARGUMENTS and k != "self"}
        names = sorted(tensors)
        functions = _compiled_verbs.setdefault(self, {})
        key = (verb.__name__, tuple(names), tuple(sorted(options.items())))
        if key not in functions:
            # The model by weak reference: the cache must not keep it alive. (One training run once traced
            # `reconstruct` for a `sample` call, when this was a closure lambda. The likelier cause, found later:
            # the source file was edited during that run, and AutoGraph read the new lines; see zoo/sources.py.)
            functions[key] = tf.function(  # any batch size: one trace
                functools.partial(_run_verb, verb, weakref.ref(self), tuple(names), tuple(options.items())),
                input_signature=[tf.TensorSpec([None] * tensors[n].shape.rank if n != "latent" else
                                               [None, self.latent_dim], tensors[n].dtype) for n in names])
        return functions[key](*(tensors[n] for n in names))

    return call


class ZooModel(MeanMetrics, keras.Model):
    Config: type = None  # the model's config dataclass
    SIGNATURES: tuple[str, ...] = ()  # serving verbs it implements, `sample` first (it is also serving_default)
    DATA: dict = {}  # what it wants from zoo.data: e.g. dict(binarize="none", pixel_range=(0, 1), image_size=28)
    # XLA on a CPU: 1.8x faster for the MLP VAE, but XLA's CPU convolutions ran 4x slower than oneDNN's here.
    # On a GPU zoo.train always compiles with XLA.
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

    @compiled_verb
    def generate(self, seeds):
        """One image per seed: image i is sample(1, seeds[i]), whatever else is in the batch (TF Serving batches
        requests together). Models whose samples are one decode of seeded noise do it as one batch."""
        return per_seed(check_seeds(seeds, self.max_samples), lambda seed: self.sample(1, seed)[0])

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
        """Create the variables by running the model once on a dummy batch (export and checkpoints need them)."""
        if not self.built:
            self(tf.zeros((1,) + IMAGE_SHAPE))

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

    def save(self, filepath, *args, **kwargs):
        self.build_for_images()  # a model saved before its first call would have no variables to save
        super().save(filepath, *args, **kwargs)


class GaussianPrior:
    """Mixin for models whose samples are decode(z) with z ~ N(0, I) drawn from the stateless seed (seed, 0), the
    VAE and the GANs: a served sample can be regenerated from its seed, and `generate` decodes all seeds at once."""

    def prior_noise(self, shape, seed):
        """The codes that sampling decodes: z ~ N(0, I) (the GANs may truncate it)."""
        return tf.random.stateless_normal(shape, seed)

    def sample(self, num_samples, seed):
        num_samples = check_num_samples(num_samples, self.max_samples)
        return self.decode(self.prior_noise([num_samples, self.latent_dim], seed_pair(seed, 0)))

    @compiled_verb
    def generate(self, seeds):
        """One image per seed, the one sample(1, seed) draws: each seed's z alone, decoded as one batch."""
        z = per_seed(check_seeds(seeds, self.max_samples),
                     lambda seed: self.prior_noise([self.latent_dim], seed_pair(seed, 0)))
        return self.decode(z)


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
