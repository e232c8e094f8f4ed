"""The page of ``sain serve`` in a real browser: headless Chromium (Debian's ``chromium``)
driven by Playwright's Python package, against a server started here on a free loopback port.

Uploads a 96x64 photo, waits for the comparison, checks the three images and the numbers
shown, moves the before/after slider and zooms in, and saves a screenshot
(``page.png`` in the test's temporary folder; also at ``$SAIN_SCREENSHOT`` when set).
Skips, with the reason, when Chromium or Playwright is missing (``make test-browser``
installs them).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

from sain.compare import SAMPLE_IMAGE  # noqa: E402
from sain.serve.app import ServeConfig, create_app  # noqa: E402

CHROMIUM = os.environ.get("SAIN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def server():
    """``http://127.0.0.1:PORT`` of a uvicorn server in a thread (a free port, loopback only)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(ServeConfig(tile="off")), log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)
    sock.close()


def test_page_compares_sain_and_bicubic_in_chromium(server, tmp_path):
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or make test-browser)")
    photo = tmp_path / "photo.png"
    with Image.open(SAMPLE_IMAGE) as im:
        im.crop((500, 150, 596, 214)).save(photo)
    shot = tmp_path / "page.png"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server + "/")
            page.wait_for_function("document.querySelectorAll('#model option').length > 0")
            assert page.locator("#model").input_value() == "sain-x2-jpeg"
            page.locator("#quality").fill("40")
            page.set_input_files("#file", str(photo))  # picking a file starts the comparison
            page.wait_for_selector("#metrics tbody tr:nth-child(2)", timeout=60_000)

            # the three images, loaded at the photo's size
            for img in ("#img-original", "#img-sain", "#img-bicubic", "#img-left", "#img-right"):
                page.wait_for_function(f"document.querySelector('{img}').complete")
                size = page.eval_on_selector(img, "e => [e.naturalWidth, e.naturalHeight]")
                assert size == [96, 64], img
            # the numbers: qualities, bytes (bicubic's not above SAIN's), PSNR-Y and SSIM-Y
            rows = page.locator("#metrics tbody tr")
            cells = [rows.nth(i).locator("td").all_inner_texts() for i in range(2)]
            assert cells[0][0].startswith("SAIN") and cells[1][0] == "bicubic"
            assert cells[0][1] == "40"
            sain_bytes, bic_bytes = (int(c[2].replace(",", "")) for c in cells)
            assert 0 < bic_bytes <= sain_bytes
            for c in cells:
                assert 20 < float(c[4]) < 60 and 0 < float(c[5]) <= 1
            assert "done in" in page.locator("#status").inner_text()
            links = page.locator("#downloads a")
            assert links.count() == 3 and links.nth(0).get_attribute("download") == "photo.jpg"

            # zoomed in: pixels, not smoothing, and every view at the same zoom
            assert page.locator("#zoom").input_value() == "8"  # 96x64 fits 8x in the viewer
            rendering = page.eval_on_selector("#img-sain", "e => getComputedStyle(e).imageRendering")
            assert rendering in ("pixelated", "crisp-edges")
            widths = page.eval_on_selector_all("#stage img, .panel img", "es => es.map(e => e.style.width)")
            assert set(widths) == {"768px"}

            # drag the divider from the middle to a quarter: the clip of the right image follows
            box = page.locator("#stage").bounding_box()  # the (zoomed) image inside the viewer
            assert box is not None and box["width"] == 768
            before = page.eval_on_selector("#img-right", "e => e.style.getPropertyValue('--pos')")
            y = box["y"] + box["height"] / 2
            page.mouse.move(box["x"] + box["width"] / 2, y)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] / 4, y, steps=5)
            page.mouse.up()
            after = page.eval_on_selector("#img-right", "e => e.style.getPropertyValue('--pos')")
            assert float(before.rstrip("%")) == pytest.approx(50, abs=1)
            assert float(after.rstrip("%")) == pytest.approx(25, abs=3)
            assert int(page.locator("#slider").input_value()) == pytest.approx(25, abs=3)

            # the thumbnail download link serves the thumbnail
            href = links.nth(0).get_attribute("href")
            r = page.request.get(server + str(href))
            assert r.ok and r.headers["content-type"] == "image/jpeg"

            page.screenshot(path=str(shot), full_page=True)
            assert not errors, errors
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    if os.environ.get("SAIN_SCREENSHOT"):
        shutil.copy(shot, os.environ["SAIN_SCREENSHOT"])
