"""A browser demo of the zoo's models, on the pretrained registry or on export folders.

    pip install -e .[demo]                          # Gradio, pinned
    python -m zoo.demo                              # http://127.0.0.1:7860: every pretrained model
    python -m zoo.demo --port 8000 --exports exports/vae/1 exports/dcgan_quality/1    # and these exports

Tabs: samples by seed with the model's card figures (of a chosen digit, for the class-conditional models); an
interpolation between two seeds (or two test digits, for
the models that encode); the 2-D VAE's latent map, where a click decodes the spot; inpainting of a test digit or a
drawn one, every capable model side by side; and how digit-like a drawn digit is, by the RBM's log-likelihood and
the VAE's importance-weighted bound against the test set's. Every request is bounded; a bad one is a message in the
page, and the server keeps serving. The handlers are plain functions (`Demo`), which the tests call directly and
through the Gradio client.
"""

import functools
import os
import time

import numpy as np

from zoo import cli

MAX_IMAGES = 64  # per request: the page's bound, under every export's max_samples
MAX_STEPS = 32  # interpolation steps
REGIONS = ("top half", "bottom half", "left half", "right half", "random 20%", "random 50%", "random 80%")
SEED_RANGE = (0, 2 ** 31 - 1)
EVERY_DIGIT = "every digit"
DIGITS = (EVERY_DIGIT,) + tuple(str(d) for d in range(10))  # a class-conditional model's choice


class DemoError(ValueError):
    """A request the demo refuses: the page shows its message."""


# -- images as the page shows them ------------------------------------------------------------------------------


def grid(images, columns=8, scale=3):
    """Images [n, 28, 28, 1] in [0, 1] -> one uint8 picture, `columns` wide, each pixel `scale` x `scale`."""
    images = np.clip(np.asarray(images, np.float32)[..., 0], 0.0, 1.0)
    rows = -(-len(images) // columns)
    canvas = np.zeros((rows * 30, columns * 30), np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        canvas[r * 30 + 1:r * 30 + 29, c * 30 + 1:c * 30 + 29] = image
    return (np.kron(canvas, np.ones((scale, scale))) * 255).astype(np.uint8)


def digit_from_drawing(drawing):
    """A drawn digit (Gradio's sketchpad value, or any image array) -> [1, 28, 28, 1] in [0, 1], made as MNIST's
    digits were: the strokes' bounding box scaled to 20 pixels on its longer side, then centred by its centre of
    mass in 28x28. A blank drawing is refused."""
    import tensorflow as tf

    if isinstance(drawing, dict):
        drawing = drawing.get("composite")
    if drawing is None:
        raise DemoError("draw a digit first")
    image = np.asarray(drawing, np.float32)
    if image.ndim == 3 and image.shape[-1] == 4:  # strokes are opaque pixels; their darkness is the ink
        ink = (image[..., 3] / 255.0) * (1.0 - image[..., :3].mean(axis=-1) / 255.0)
    elif image.ndim == 3:
        ink = 1.0 - image.mean(axis=-1) / 255.0
    else:
        ink = 1.0 - image / 255.0
    rows, cols = np.nonzero(ink > 0.1)
    if len(rows) < 5:
        raise DemoError("the drawing is blank: draw a digit with the brush")
    box = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    height, width = box.shape
    size = (max(1, round(20 * height / max(height, width))), max(1, round(20 * width / max(height, width))))
    small = tf.image.resize(box[..., None], size, antialias=True).numpy()[..., 0]
    digit = np.zeros((28, 28), np.float32)
    top, left = (28 - size[0]) // 2, (28 - size[1]) // 2
    digit[top:top + size[0], left:left + size[1]] = small
    total = digit.sum()
    y, x = (np.arange(28) @ digit.sum(axis=1)) / total, (np.arange(28) @ digit.sum(axis=0)) / total
    digit = np.roll(digit, (round(13.5 - y), round(13.5 - x)), axis=(0, 1))
    return np.clip(digit, 0.0, 1.0)[None, ..., None]


def region_mask(region, seed):
    """The mask [1, 28, 28, 1] of a region's missing pixels: 0 missing, 1 observed."""
    mask = np.ones((28, 28), np.float32)
    if region == "top half":
        mask[:14] = 0
    elif region == "bottom half":
        mask[14:] = 0
    elif region == "left half":
        mask[:, :14] = 0
    elif region == "right half":
        mask[:, 14:] = 0
    elif region.startswith("random "):
        fraction = int(region.split()[1].rstrip("%")) / 100
        mask = (np.random.default_rng(seed).random((28, 28)) >= fraction).astype(np.float32)
    else:
        raise DemoError(f"unknown region {region!r}; choose one of {', '.join(REGIONS)}")
    return mask[None, ..., None]


def checked_int(value, name, low, high):
    """value as an int in [low, high], or a DemoError naming it."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DemoError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(number) or number != int(number) or not low <= number <= high:
        raise DemoError(f"{name} must be a whole number from {low} to {high}, got {value}")
    return int(number)


# -- the models the page shows -----------------------------------------------------------------------------------


class ExportModel:
    """An export folder seen through its signatures, with the verbs the demo calls (what serving offers)."""

    def __init__(self, path):
        import tensorflow as tf

        from zoo.export import Export

        self.tf, self.export = tf, Export(path)
        self.card = self.export.card
        self.SIGNATURES = tuple(v for v in ("sample", "generate", "reconstruct", "encode", "decode", "inpaint")
                                if self.export.has(v))
        self.latent_dim = self.export.latent_dim
        self.CONDITIONAL = self.export.conditional

    def _images(self, verb, **inputs):
        return self.export.signatures[verb](**{k: self.tf.constant(v) for k, v in inputs.items()})["images"].numpy()

    def _labels(self, labels, n):
        """A conditional export's labels input (None: 0, 1, ..., 9 in turn, as the models' own verbs do)."""
        if not self.CONDITIONAL:
            return {}
        return {"labels": np.asarray(np.arange(n) % 10 if labels is None else labels, np.int32)}

    def generate(self, seeds, labels=None):
        return self._images("generate", seeds=np.asarray(seeds, np.int32), **self._labels(labels, len(seeds)))

    def decode(self, latent, labels=None):
        return self._images("decode", latent=np.asarray(latent, np.float32), **self._labels(labels, len(latent)))

    def encode(self, images, labels=None):
        inputs = {"images": np.asarray(images, np.float32), **self._labels(labels, len(images))}
        return {k: v.numpy() for k, v in self.export.signatures["encode"](
            **{k: self.tf.constant(v) for k, v in inputs.items()}).items()}

    def reconstruct(self, images):
        return self._images("reconstruct", images=np.asarray(images, np.float32))

    def inpaint(self, images, mask, seed):
        return self._images("inpaint", images=np.asarray(images, np.float32), mask=np.asarray(mask, np.float32),
                            seed=np.int32(seed))


class Demo:
    """The page's handlers over the pretrained models (loaded on first use) and any export folders given."""

    def __init__(self, exports=(), pretrained_names=None):
        from zoo import pretrained

        self.pretrained = pretrained
        self.cards = {name: pretrained.card(name) for name in (pretrained_names if pretrained_names is not None
                                                               else pretrained.list())}
        for path in exports:
            self.cards[f"export {path}"] = None
        self.exports = tuple(exports)
        self._models, self._test, self._likelihood_reference = {}, None, {}

    def model(self, name):
        """The model `name`, loaded on first use."""
        if name not in self.cards:
            raise DemoError(f"no model {name!r}; the page has {', '.join(self.cards)}")
        if name not in self._models:
            if name.startswith("export "):
                from zoo.export import ExportDamaged

                try:
                    self._models[name] = ExportModel(name[len("export "):])
                except ExportDamaged as error:
                    raise DemoError(str(error)) from None
            else:
                self._models[name] = self.pretrained.load(name)
        return self._models[name]

    def signatures(self, name):
        if name not in self.cards:
            raise DemoError(f"no model {name!r}; the page has {', '.join(self.cards)}")
        card = self.cards[name]
        return card["signatures"] if card else list(self.model(name).SIGNATURES)

    def has_prior(self, name):
        """Whether the model's samples decode Gaussian codes drawn from seeds (the VAEs and the GANs)."""
        card = self.cards.get(name)
        return bool(card) and card["kind"] in ("vae", "conv_vae", "gan", "dcgan", "cvae", "conv_cvae", "cdcgan")

    def digit_labels(self, name, digit, count):
        """The labels of `count` images of a class-conditional model: all `digit`, or (every digit) 0, 1, ..., 9 in
        turn; None for the other models, which refuse a digit."""
        chosen = None if digit in (None, EVERY_DIGIT) else checked_int(digit, "digit", 0, 9)
        if not getattr(self.model(name), "CONDITIONAL", False):
            if chosen is not None:
                raise DemoError(f"{name} is not class-conditional: it cannot be asked for a digit; choose "
                                f"'{EVERY_DIGIT}' or a conditional model (docs/conditional.md)")
            return None
        return np.full([count], chosen, np.int32) if chosen is not None else np.arange(count, dtype=np.int32) % 10

    def names_with(self, *verbs):
        return [name for name in self.cards if all(v in self.signatures(name) for v in verbs)]

    def test_images(self):
        """The first 1,000 test images, [n, 28, 28, 1] in [0, 1]."""
        if self._test is None:
            from zoo import data

            self._test = data.as_images(data.load_arrays()[2][:1000])
        return self._test

    # -- samples ------------------------------------------------------------------------------------------------

    def samples(self, name, seed, count, digit=EVERY_DIGIT):
        """`count` samples from seeds seed, seed + 1, ...: the grid `generate` gives from Python, and the card's
        figures. A class-conditional model draws the chosen digit (every digit: 0, 1, ..., 9 in turn)."""
        seed = checked_int(seed, "seed", *SEED_RANGE)
        count = checked_int(count, "count", 1, MAX_IMAGES)
        if seed + count - 1 > SEED_RANGE[1]:
            raise DemoError(f"seed + count must stay under {SEED_RANGE[1] + 1}")
        if "sample" not in self.signatures(name):
            raise DemoError(f"{name} does not sample (an autoencoder has no prior); pick another model")
        seeds = np.arange(seed, seed + count, dtype=np.int32)
        labels = self.digit_labels(name, digit, count)
        model = self.model(name)
        images = model.generate(seeds) if labels is None else model.generate(seeds, labels)
        return grid(np.asarray(images)), self.card_text(name)

    def card_text(self, name):
        card = self.cards.get(name)
        if not card:
            return f"**{name}**: an export folder (its card: `python -m zoo.export --list`)."
        lines = [f"**{name}**: {card.get('description', '')}", "", f"`{card['training']['command']}`", ""]
        figures = card.get("figures", {})
        if "samples" in figures:
            s = figures["samples"]
            lines.append(f"- samples (10,000): classifier score {s['classifier_score']:.2f}, Fréchet distance "
                         f"{s['frechet_distance']:.2f}, precision {s['precision']:.2f}, recall {s['recall']:.2f} "
                         "(real test images: 9.75, 0.89)")
        if "likelihood" in figures:
            li = figures["likelihood"]
            lines.append(f"- test log-likelihood: {-li['nll_nats']:.2f} nats ({li['method']})")
        if "reconstruction" in figures:
            lines.append(f"- reconstructions: squared error {figures['reconstruction']['mse']:.4f} per pixel")
        return "\n".join(lines)

    # -- interpolation ------------------------------------------------------------------------------------------

    def interpolate(self, name, start, end, steps, between="seeds", digit=EVERY_DIGIT):
        """A strip from one code to another: the prior codes of two seeds (spherically, as Gaussian codes are
        interpolated), or the posterior means of two test digits (linearly; the models that encode). A
        class-conditional model decodes the whole strip as one chosen digit."""
        steps = checked_int(steps, "steps", 2, MAX_STEPS)
        if "decode" not in self.signatures(name):
            raise DemoError(f"{name} has no decoder to walk between codes; pick another model")
        model = self.model(name)
        labels = self.digit_labels(name, digit, steps)
        if labels is not None and digit in (None, EVERY_DIGIT):
            raise DemoError(f"{name} is class-conditional: pick the digit its strip shows")
        if between == "test digits":
            if "encode" not in self.signatures(name):
                raise DemoError(f"{name} does not encode images; interpolate between seeds")
            first, last = (checked_int(i, "test digit", 0, len(self.test_images()) - 1) for i in (start, end))
            pair = self.test_images()[[first, last]]  # a conditional model's codes are under the chosen digit
            codes = np.asarray((model.encode(pair) if labels is None else model.encode(pair, labels[:2]))["latent"])
            t = np.linspace(0.0, 1.0, steps)[:, None]
            path = (1 - t) * codes[0] + t * codes[1]
        elif between == "seeds":
            if not self.has_prior(name):
                raise DemoError(f"{name} has no prior to draw seeds' codes from; interpolate between test digits")
            import tensorflow as tf

            from zoo.models.base import seed_pair

            a, b = (np.asarray(model.prior_noise([model.latent_dim], seed_pair(checked_int(s, "seed", *SEED_RANGE),
                                                                               0))) for s in (start, end))
            path = slerp(a, b, np.linspace(0.0, 1.0, steps))
            tf.debugging.assert_all_finite(tf.constant(path), "interpolation codes")
        else:
            raise DemoError(f"interpolate between 'seeds' or 'test digits', not {between!r}")
        latent = path.astype(np.float32)
        decoded = model.decode(latent) if labels is None else model.decode(latent, labels)
        return grid(np.asarray(decoded), columns=steps)

    # -- latent map ---------------------------------------------------------------------------------------------

    LATENT_MAP = "vae_2d"
    MAP_SIZE, MAP_RANGE = 16, 3.0

    def latent_map(self):
        """The 2-D VAE's decoder over [-3, 3]^2, 16 x 16 digits (z_1 left to right, z_2 bottom to top)."""
        if self.LATENT_MAP not in self.cards:
            raise DemoError("the latent map needs the pretrained 2-D VAE (vae_2d)")
        axis = np.linspace(-self.MAP_RANGE, self.MAP_RANGE, self.MAP_SIZE)
        codes = np.array([[x, y] for y in axis[::-1] for x in axis], np.float32)
        return grid(np.asarray(self.model(self.LATENT_MAP).decode(codes)), columns=self.MAP_SIZE, scale=2)

    def decode_at(self, x, y):
        """The digit at a pixel (x, y) of the latent map: its code, decoded large."""
        cell = 30 * 2  # a digit's pixels on the map, its border included
        width = self.MAP_SIZE * cell
        if not (0 <= x < width and 0 <= y < width):
            raise DemoError(f"click inside the map ({width}x{width} pixels)")
        z = np.array([[-self.MAP_RANGE + 2 * self.MAP_RANGE * x / width,
                       self.MAP_RANGE - 2 * self.MAP_RANGE * y / width]], np.float32)
        image = grid(np.asarray(self.model(self.LATENT_MAP).decode(z)), columns=1, scale=8)
        return image, f"z = ({z[0, 0]:.2f}, {z[0, 1]:.2f})"

    # -- inpainting ---------------------------------------------------------------------------------------------

    def inpaint(self, digit, drawing, region, seed, source="test digit"):
        """Every inpainting model's completion of a test digit (or a drawn one) with `region` missing, beside the
        truth and the input. Returns [(image, caption)]."""
        seed = checked_int(seed, "seed", *SEED_RANGE)
        if source == "drawing":
            truth = digit_from_drawing(drawing)
        else:
            truth = self.test_images()[[checked_int(digit, "test digit", 0, len(self.test_images()) - 1)]]
        mask = region_mask(region, seed)
        shown = truth * mask + 0.5 * (1 - mask)  # the missing pixels grey
        out = [(grid(truth, 1, 4), "truth"), (grid(shown, 1, 4), f"input: {region} missing")]
        for name in self.names_with("inpaint"):
            started = time.perf_counter()
            completion = np.asarray(self.model(name).inpaint(truth * mask, mask, seed))
            out.append((grid(completion, 1, 4), f"{name} ({1000 * (time.perf_counter() - started):.0f} ms)"))
        return out

    # -- how digit-like -----------------------------------------------------------------------------------------

    def digit_likeness(self, drawing):
        """The drawn digit's log-likelihood under the likelihood RBM (-F(v) - log Z, log Z from its card's AIS)
        and the IWAE-trained VAE's importance-weighted bound (k = 1,000), each with the share of the first 1,000
        test images that score lower: an anomaly score. The digit is binarized at 0.5, as the models' test images
        are binary."""
        digit = (digit_from_drawing(drawing) > 0.5).astype(np.float32)
        lines, scorers = ["| model | log-likelihood (nats) | test digits scoring lower |", "|---|---|---|"], {}
        for name in ("rbm_centered", "vae_iwae"):
            if name in self.cards and "likelihood" in self.cards[name].get("figures", {}):
                scorers[name] = self.scorer(name)
        if not scorers:
            raise DemoError("no pretrained likelihood model (rbm_centered, vae_iwae) is installed")
        for name, score in scorers.items():
            value = float(score(digit)[0])
            reference = self.reference_scores(name, score)
            lines.append(f"| {name} | {value:.1f} | {np.mean(reference < value):.0%} |")
        lines.append("\nA digit as likely as the test set's scores near its middle; a scribble scores below all.")
        return "\n".join(lines), grid(digit, 1, 4)

    def scorer(self, name):
        model = self.model(name)
        if name.startswith("rbm"):
            log_z = self.cards[name]["figures"]["likelihood"]["log_z"]
            return lambda v: -np.asarray(model.free_energy(np.asarray(v, np.float32).reshape(-1, 784))) - log_z
        return lambda v: np.asarray(model.log_likelihood(np.asarray(v, np.float32), k=1000, seed=0))

    def reference_scores(self, name, score):
        """The first 1,000 test images' scores (binarized once, seed 0), computed once."""
        if name not in self._likelihood_reference:
            from zoo.data import binarize_once

            self._likelihood_reference[name] = np.asarray(score(binarize_once(self.test_images(), 0)))
        return self._likelihood_reference[name]


def slerp(a, b, t):
    """Spherical interpolation between codes a and b at fractions t: Gaussian codes keep their norm on the way."""
    omega = np.arccos(np.clip(np.dot(a / np.linalg.norm(a), b / np.linalg.norm(b)), -1.0, 1.0))
    if omega < 1e-6:
        return np.outer(1 - t, a) + np.outer(t, b)
    return (np.outer(np.sin((1 - t) * omega), a) + np.outer(np.sin(t * omega), b)) / np.sin(omega)


# -- the page ----------------------------------------------------------------------------------------------------


def page(demo):
    """The Gradio Blocks of the page; every handler's DemoError (and a bad input of any kind) is a message."""
    import gradio as gr

    def shown(handler):
        @functools.wraps(handler)
        def call(*args):
            try:
                return handler(*args)
            except (DemoError, ValueError) as error:
                raise gr.Error(str(error)) from None
            except Exception as error:  # noqa: BLE001 - the model's own input checks, or anything else
                raise gr.Error(f"{type(error).__name__}: {str(error).splitlines()[0][:300]}") from None
        return call

    samplers = demo.names_with("sample")
    decoders = sorted(demo.names_with("decode"), key=lambda name: not demo.has_prior(name))  # seeds first
    with gr.Blocks(title="zoo: generative models of MNIST") as blocks:
        gr.Markdown("# zoo\nClassic generative models of MNIST, pretrained. Pick a model and a seed; the same seed "
                    "gives the same digits as `model.generate` in Python.")
        with gr.Tab("Samples"):
            with gr.Row():
                model = gr.Dropdown(samplers, value=samplers[0] if samplers else None, label="model")
                seed = gr.Number(0, label="seed", precision=0, elem_id="seed")
                count = gr.Slider(1, MAX_IMAGES, value=32, step=1, label="count")
                digit = gr.Dropdown(list(DIGITS), value=EVERY_DIGIT, label="digit (class-conditional models)",
                                    elem_id="digit")
            go = gr.Button("Sample", variant="primary")
            grid_out = gr.Image(label="samples", type="numpy", format="png", elem_id="samples")
            card = gr.Markdown(elem_id="card")
            go.click(shown(demo.samples), [model, seed, count, digit], [grid_out, card], api_name="samples")
            blocks.load(shown(demo.samples), [model, seed, count, digit], [grid_out, card], api_visibility="private")
        with gr.Tab("Interpolate"):
            with gr.Row():
                model_i = gr.Dropdown(decoders, value=decoders[0] if decoders else None, label="model")
                between = gr.Radio(["seeds", "test digits"], value="seeds", label="between")
                start = gr.Number(0, label="from (seed or test digit)", precision=0)
                end = gr.Number(1, label="to", precision=0)
                steps = gr.Slider(2, MAX_STEPS, value=10, step=1, label="steps")
                digit_i = gr.Dropdown(list(DIGITS), value=EVERY_DIGIT, label="digit (class-conditional models)")
            go_i = gr.Button("Interpolate", variant="primary")
            strip = gr.Image(label="interpolation", type="numpy", format="png", elem_id="interpolation")
            go_i.click(shown(demo.interpolate), [model_i, start, end, steps, between, digit_i], strip,
                       api_name="interpolate")
        with gr.Tab("Latent map"):
            gr.Markdown("The 2-D VAE's decoder over [-3, 3]²: click a spot to decode it.")
            with gr.Row():
                the_map = gr.Image(label="latent map", type="numpy", format="png", interactive=False,
                                   elem_id="latent_map")
                with gr.Column():
                    picked = gr.Image(label="decoded", type="numpy", format="png", elem_id="decoded")
                    where = gr.Markdown(elem_id="where")
            show_map = gr.Button("Show the map", variant="primary")
            show_map.click(shown(demo.latent_map), None, the_map, api_name="latent_map")

            def clicked(evt: gr.SelectData):
                return shown(demo.decode_at)(*evt.index)

            the_map.select(clicked, None, [picked, where], api_visibility="private")
            def decode_at(x: float, y: float) -> tuple[np.ndarray, str]:  # the same, for API clients
                return shown(demo.decode_at)(x, y)

            gr.api(decode_at, api_name="decode_at")
        with gr.Tab("Inpaint"):
            with gr.Row():
                source = gr.Radio(["test digit", "drawing"], value="test digit", label="digit")
                digit = gr.Number(0, label="test digit (0-999)", precision=0)
                region = gr.Dropdown(list(REGIONS), value="bottom half", label="missing")
                seed_p = gr.Number(0, label="seed", precision=0)
            drawing = gr.Sketchpad(label="or draw one", canvas_size=(280, 280), height=340, width=340,
                                   brush=gr.Brush(default_size=18, colors=["#000000"], color_mode="fixed"),
                                   elem_id="inpaint_drawing")
            go_p = gr.Button("Inpaint", variant="primary")
            completions = gr.Gallery(label="truth, input, each model's completion", columns=9, height="auto",
                                     format="png", elem_id="completions")
            go_p.click(shown(demo.inpaint), [digit, drawing, region, seed_p, source], completions, api_name="inpaint")
        with gr.Tab("How digit-like?"):
            gr.Markdown("Draw a digit: its log-likelihood under the RBM and the VAE, against the test set's.")
            with gr.Row():
                sketch = gr.Sketchpad(label="draw a digit", canvas_size=(280, 280), height=340, width=340,
                                      brush=gr.Brush(default_size=18, colors=["#000000"], color_mode="fixed"),
                                      elem_id="likeness_drawing")
                with gr.Column():
                    seen = gr.Image(label="as the models see it", type="numpy", format="png", elem_id="likeness_digit")
                    verdict = gr.Markdown(elem_id="likeness")
            go_l = gr.Button("Score", variant="primary")
            go_l.click(shown(demo.digit_likeness), sketch, [verdict, seen], api_name="likeness")
    return blocks


def main(argv=None):
    parser = cli.parser("python -m zoo.demo", "A browser demo of the zoo's models: samples, interpolations, the "
                        "latent map, inpainting, and how digit-like a drawing is.")
    parser.add_argument("--port", type=cli.positive_int, default=7860, help="default: %(default)s")
    parser.add_argument("--host", default="127.0.0.1", help="default: %(default)s (this machine only)")
    parser.add_argument("--exports", nargs="*", default=[], metavar="EXPORT",
                        help="export folders to show beside the pretrained models")
    args = parser.parse_args(argv)
    try:
        import gradio  # noqa: F401
    except ImportError:
        cli.fail(parser, "the demo needs Gradio: pip install -e .[demo] (or pip install -r requirements-demo.txt)")
    for path in args.exports:
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            cli.fail(parser, f"{path} is not an export folder (no saved_model.pb); give exports/<name>/<version>")
    started = time.time()
    blocks = page(Demo(args.exports))
    print(f"zoo demo on http://{args.host}:{args.port} (built in {time.time() - started:.1f} s; Ctrl-C stops it)",
          flush=True)
    blocks.queue(default_concurrency_limit=1).launch(server_name=args.host, server_port=args.port,
                                                     show_error=True, quiet=True)


if __name__ == "__main__":
    main()
