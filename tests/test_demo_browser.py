"""The demo as a user sees it: `python -m zoo.demo` started as a command, its page driven in Debian's Chromium by
Playwright through every tab, each producing its picture; a bad input shows a message and the page keeps working.
Screenshots go to $ZOO_SCREENSHOTS (default: the test's temporary folder). A CI step of its own:

    pytest -m browser tests
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import REPO

pytest.importorskip("gradio")
playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt install chromium)")]
# A browser in a sandbox-less container, kept off the network it does not have.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync", "--disable-quic"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server():
    """`python -m zoo.demo` on a free port, from another folder, as a user starts it; the seconds until it answers."""
    port = free_port()
    started = time.time()
    process = subprocess.Popen([sys.executable, "-m", "zoo.demo", "--port", str(port)], cwd="/", text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONPATH": REPO})
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:
            assert process.poll() is None, process.communicate()[0][-3000:]
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                assert time.time() - started < 120, "the page did not start within 2 minutes"
                time.sleep(0.25)
        yield url, time.time() - started
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
        assert "Traceback" not in output or "gradio.exceptions.Error" in output, output[-3000:]


def test_every_tab_of_the_page_produces_its_picture_in_a_real_browser(server, tmp_path):
    url, start_seconds = server
    shots = os.environ.get("ZOO_SCREENSHOTS") or str(tmp_path / "screenshots")
    os.makedirs(shots, exist_ok=True)
    timings = {"page answers": start_seconds}
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        started = time.time()
        page.goto(url)
        page.wait_for_selector("#samples img", timeout=120_000)  # the first model's samples, drawn on load
        timings["first samples"] = time.time() - started
        page.screenshot(path=f"{shots}/samples.png", full_page=True)

        def run(tab, button, done, shot, prepare=None):
            page.get_by_role("tab", name=tab).click()
            if prepare:
                prepare()
            clicked = time.time()
            page.get_by_role("button", name=button).click()
            page.wait_for_function(done, timeout=120_000)
            timings[tab] = time.time() - clicked
            page.wait_for_timeout(1000)  # the page's fade-in of new images, before the screenshot
            page.screenshot(path=f"{shots}/{shot}.png", full_page=True)

        run("Interpolate", "Interpolate", "document.querySelector('#interpolation img') !== null", "interpolate")
        run("Latent map", "Show the map", "document.querySelector('#latent_map img') !== null", "latent_map")
        page.locator("#latent_map img").click(position={"x": 120, "y": 200})
        page.wait_for_selector("#decoded img", timeout=60_000)
        assert "z = (" in page.locator("#where").inner_text()
        page.screenshot(path=f"{shots}/latent_map_decoded.png", full_page=True)
        from zoo import pretrained

        shown = 2 + sum("inpaint" in pretrained.card(name)["signatures"] for name in pretrained.list())
        run("Inpaint", "Inpaint", f"[...document.querySelectorAll('#completions img')].filter("  # truth, input, each
            f"i => i.complete && i.naturalWidth > 0).length >= {shown}", "inpaint")      # model's, all loaded

        def draw_a_one():
            page.locator("#likeness_drawing button[aria-label='Brush']").click()
            box = page.locator("#likeness_drawing canvas").first.bounding_box()
            x = box["x"] + box["width"] / 2
            page.mouse.move(x, box["y"] + box["height"] * 0.25)
            page.mouse.down()
            for i in range(1, 21):
                page.mouse.move(x + i * 0.3, box["y"] + box["height"] * (0.25 + 0.025 * i))
            page.mouse.up()

        run("How digit-like?", "Score", "document.querySelector('#likeness').innerText.includes('test digits')",
            "likeness", prepare=draw_a_one)
        assert "rbm_centered" in page.locator("#likeness").inner_text()

        # A bad request: a message in the page, and the page goes on working.
        page.get_by_role("tab", name="Samples").click()
        page.locator("#seed input").fill("-5")
        page.get_by_role("button", name="Sample").click()
        page.get_by_text("seed must be a whole number").first.wait_for(timeout=60_000)
        page.screenshot(path=f"{shots}/bad_seed.png", full_page=True)
        page.locator("#seed input").fill("7")
        page.get_by_role("button", name="Sample").click()
        page.wait_for_function("document.querySelector('#card').innerText.length > 0", timeout=60_000)
        browser.close()
    print("demo timings (s):", {k: round(v, 1) for k, v in timings.items()}, "screenshots:", shots)
    assert set(os.listdir(shots)) >= {"bad_seed.png", "inpaint.png", "interpolate.png", "latent_map.png",
                                      "latent_map_decoded.png", "likeness.png", "samples.png"}
