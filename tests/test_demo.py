"""The demo's handlers, called directly and through the Gradio client as a page calls them: what each tab shows,
that the same seed gives Python's `generate`, and that bad input is a message while the server keeps serving.
(The page itself, in a real browser: tests/test_demo_browser.py.)"""

import numpy as np
import pytest

gradio = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

from zoo import demo as demo_module, pretrained  # noqa: E402
from zoo.demo import Demo, DemoError, digit_from_drawing, grid, region_mask  # noqa: E402

NAMES = ["vae_2d", "gan_mlp", "dae", "rbm_centered"]


@pytest.fixture(scope="module")
def demo():
    return Demo(pretrained_names=[n for n in NAMES if n in pretrained.REGISTRY])


def a_drawing(kind="one"):
    """A sketchpad's value: an RGBA canvas with dark strokes on a transparent background."""
    canvas = np.zeros((280, 280, 4), np.uint8)
    if kind == "one":
        canvas[50:230, 130:152] = (0, 0, 0, 255)
    elif kind == "zero":
        yy, xx = np.mgrid[:280, :280]
        ring = np.abs(np.hypot((yy - 140) / 90, (xx - 140) / 60) - 1) < 0.12
        canvas[ring] = (0, 0, 0, 255)
    return {"background": None, "layers": [canvas], "composite": canvas}


def test_samples_are_pythons_generate_for_the_same_seeds_with_the_cards_figures(demo):
    image, card = demo.samples("gan_mlp", 5, 12)
    expected = grid(pretrained.load("gan_mlp").generate(np.arange(5, 17, dtype=np.int32)))
    np.testing.assert_array_equal(image, expected)
    assert "classifier score 7.98" in card and "python -m zoo.train gan" in card
    with pytest.raises(DemoError, match="does not sample"):
        demo.samples("dae", 0, 4)


def test_each_tab_gives_its_picture(demo):
    strip = demo.interpolate("gan_mlp", 0, 9, 10)
    assert strip.shape == (90, 900)
    assert demo.interpolate("vae_2d", 0, 1, 4, between="test digits").shape == (90, 360)
    the_map = demo.latent_map()
    assert the_map.shape == (16 * 60, 16 * 60)
    picked, where = demo.decode_at(0, 0)
    assert where == "z = (-3.00, 3.00)" and picked.shape == (240, 240)
    shown = demo.inpaint(7, None, "top half", 0)
    assert [caption.split()[0] for _, caption in shown] == ["truth", "input:", "vae_2d", "dae", "rbm_centered"]
    truth = shown[0][0]
    for image, _ in shown[2:]:  # the observed half is the truth's in every completion
        np.testing.assert_array_equal(image[image.shape[0] // 2:], truth[truth.shape[0] // 2:])
    drawn = demo.inpaint(0, a_drawing("zero"), "random 50%", 3, source="drawing")
    assert len(drawn) == 5
    verdict, seen = demo.digit_likeness(a_drawing("one"))
    assert "| rbm_centered |" in verdict and seen.shape == (120, 120)


def test_a_drawing_becomes_an_mnist_digit():
    digit = digit_from_drawing(a_drawing("zero"))
    assert digit.shape == (1, 28, 28, 1) and 0 <= digit.min() and digit.max() == pytest.approx(1.0, abs=0.05)
    rows, cols = np.nonzero(digit[0, ..., 0] > 0.1)
    assert rows.max() - rows.min() <= 21 and 12 <= np.mean(rows) <= 15 and 12 <= np.mean(cols) <= 15  # 20-pixel box
    assert region_mask("left half", 0)[0, :, :14].sum() == 0 and region_mask("random 80%", 1).mean() < 0.3


@pytest.mark.parametrize("call, message", [
    (lambda d: d.samples("gan_mlp", -1, 4), "seed must be a whole number from 0"),
    (lambda d: d.samples("gan_mlp", 0, 10_000), "count must be a whole number from 1 to 64"),
    (lambda d: d.samples("gan_mlp", "x", 4), "seed must be a number"),
    (lambda d: d.samples("no_such_model", 0, 4), "no model 'no_such_model'"),
    (lambda d: d.interpolate("gan_mlp", 0, 1, 500), "steps must be a whole number from 2 to 32"),
    (lambda d: d.interpolate("gan_mlp", 0, 1, 4, between="test digits"), "does not encode"),
    (lambda d: d.inpaint(5000, None, "top half", 0), "test digit must be a whole number from 0 to 999"),
    (lambda d: d.inpaint(0, None, "the middle", 0), "unknown region 'the middle'"),
    (lambda d: d.inpaint(0, a_drawing("blank"), "top half", 0, source="drawing"), "the drawing is blank"),
    (lambda d: d.decode_at(5000, 5), "click inside the map"),
])
def test_bad_requests_are_messages(demo, call, message):
    with pytest.raises(DemoError, match=message):
        call(demo)


def test_the_page_serves_its_api_and_keeps_serving_after_a_bad_request(demo):
    blocks = demo_module.page(demo)
    blocks.queue().launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True)
    try:
        client = gradio_client.Client(blocks.local_url, verbose=False)
        with pytest.raises(Exception, match="seed must be a whole number from 0"):
            client.predict("gan_mlp", -3, 8, api_name="/samples")
        with pytest.raises(Exception, match="greater than maximum value 64"):  # the slider's own bound
            client.predict("gan_mlp", 0, 1000, api_name="/samples")
        image_file, card = client.predict("gan_mlp", 5, 12, api_name="/samples")  # still serving
        from PIL import Image
        served = np.asarray(Image.open(image_file).convert("L"))
        np.testing.assert_array_equal(served, demo.samples("gan_mlp", 5, 12)[0])  # PNG: the same pixels
        assert "gan_mlp" in card
        _, where = client.predict(0, 0, api_name="/decode_at")
        assert where == "z = (-3.00, 3.00)"
    finally:
        blocks.close()


@pytest.fixture(scope="module")
def conditional_export(tmp_path_factory):
    """A tiny conditional VAE trained briefly on 1,000 labelled digits, and its export folder."""
    from zoo import data
    from zoo.models.cvae import ConditionalVAE

    images, labels, *_ = data.load_arrays("mnist", "packaged", None)
    model = ConditionalVAE(ConditionalVAE.Config(latent_dim=4, hidden=(64,), classify_samples=10), seed=0)
    model.compile()
    model.fit(images[:1000], labels[:1000], epochs=2, batch_size=100, verbose=0)
    return model, model.export(str(tmp_path_factory.mktemp("cvae") / "cvae"), verbose=False)


def test_a_conditional_model_draws_the_digit_asked_for_and_the_others_refuse_one(conditional_export):
    model, path = conditional_export
    page = Demo(exports=[path], pretrained_names=["gan_mlp"])
    name = f"export {path}"
    sevens, _ = page.samples(name, 3, 8, "7")
    expected = grid(model.generate(np.arange(3, 11, dtype=np.int32), np.full([8], 7, np.int32)))
    np.testing.assert_allclose(sevens, expected, atol=2)  # the export's generate is the model's, to PNG levels
    every, _ = page.samples(name, 3, 8)  # every digit: 0, 1, ..., 9 in turn, as the model's own verbs do
    np.testing.assert_allclose(every, grid(model.generate(np.arange(3, 11, dtype=np.int32))), atol=2)
    assert not np.array_equal(sevens, every)
    assert page.interpolate(name, 0, 1, 5, between="test digits", digit="2").shape == (90, 450)
    with pytest.raises(DemoError, match="class-conditional: pick the digit"):
        page.interpolate(name, 0, 1, 5, between="test digits")
    with pytest.raises(DemoError, match="gan_mlp is not class-conditional"):
        page.samples("gan_mlp", 0, 4, "3")
    with pytest.raises(DemoError, match="digit must be a whole number from 0 to 9"):
        page.samples(name, 0, 4, "12")
    assert page.samples("gan_mlp", 0, 4, "every digit")[0].shape == (90, 720)
