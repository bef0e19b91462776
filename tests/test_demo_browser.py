"""`vlbert demo` in a real browser: the command serves a tiny saved VQA model on localhost;
headless Chromium (Debian's, driven by Playwright at its executable path) uploads a scene, asks
a question and sees the answers and the heat map; then draws a built-in scene, picks a template
question and sees its true answer beside the model's. A screenshot is saved (to $DEMO_SCREENSHOT
if set, else the test's folder). Skips, saying why, without Playwright or Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from demo_models import save_tiny_models, scene_png

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def _chromium() -> str:
    found = os.environ.get("CHROMIUM_PATH") or next(filter(None, map(shutil.which, CHROMIUM)), None)
    if not found:
        pytest.skip("no Chromium on this machine (apt-get install chromium, or set CHROMIUM_PATH)")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, server: subprocess.Popen, seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"vlbert demo exited with {server.returncode}: {server.stderr.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"vlbert demo did not answer at {url} within {seconds:.0f} s")


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("fastapi", reason="the demo extra is not installed: pip install -e '.[demo]'")
    pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
    _chromium()
    root = tmp_path_factory.mktemp("browser")
    models = save_tiny_models(root)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "vlbert.cli", "demo", "--model", str(models["vqa"]), "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_until_up(f"http://127.0.0.1:{port}/api/info", server)
        yield f"http://127.0.0.1:{port}/", root
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_upload_ask_and_see_answers_and_heat_map(demo_url):
    from playwright import sync_api

    executable = _chromium()
    url, root = demo_url
    image = scene_png(root / "upload.png", 3)
    shot = Path(os.environ.get("DEMO_SCREENSHOT") or root / "demo.png")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        assert page.is_visible("#detector-box")  # a region model: the detector is offered, ticked
        page.set_input_files("#upload", str(image))
        page.fill("#question", "what is the shape of the red object?")
        page.click("#ask-btn")
        page.wait_for_selector("#answers tr.answer")
        answers = page.locator("#answers tr.answer")
        assert answers.count() == 5
        assert answers.first.locator("td").first.inner_text() in {"square", "circle", "left", "right", "top",
                                                                 "bottom", "1", "2", "3", "4", "5", "6"}
        assert page.get_attribute("#heatmap", "src").startswith("data:image/png;base64,")
        assert page.get_attribute("#heatmap", "data-layout") == "regions"
        assert page.get_attribute("#heatmap", "data-method") == "removal"
        assert page.inner_text("#map-method").startswith("removal:")
        width = page.evaluate("document.getElementById('heatmap').naturalWidth")
        assert width == 300 and page.inner_text("#error") == ""
        page.screenshot(path=str(shot), full_page=False)

        page.click("#scene-btn")
        page.wait_for_function("document.getElementById('template').options.length > 2")
        page.select_option("#template", index=1)
        page.click("#ask-btn")
        page.wait_for_selector("#truth:has-text('true answer')")
        page.click("#caption-btn")  # no captioning model loaded: said on the page
        page.wait_for_selector("#error:has-text('no loaded model has a captioning head')")
        browser.close()
    assert shot.stat().st_size > 10_000
