"""What the real-browser tests share: Debian's Chromium driven by Playwright (never a browser Playwright downloads),
and the few moves every test makes on a Gradio page: read a shown picture, pick a brush colour, aim at a canvas.

Every ``page.wait_for_function`` polls every 100 ms (``polling=100``). With Playwright's default, a check per
animation frame, a wait for the Teach tab's new label map timed out after 90 s in most runs once the fill answered
about 0.1 s sooner, while a loop reading the same attribute from Python saw it change at once."""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
"""Screenshots of the browser tests, for people to look at (not compared)."""


def playwright_sync_api():
    """Playwright's sync API; call it at import time of a test module, which is skipped without Chromium or
    Playwright (`apt-get install -y chromium`, `pip install playwright`)."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)", allow_module_level=True)
    return pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


def shown_image(page, elem_id: str) -> tuple[str, np.ndarray]:
    """The picture an output component shows: its URL and its pixels (RGB)."""
    src = page.locator(f"#{elem_id} img").first.get_attribute("src")
    body = page.request.get(src).body()
    return src, np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))


def canvas_to_screen(page, size: int, editor: str = "editor"):
    """Pixel (x, y) of a ``size``-px canvas → screen point. The editor zooms small pictures to fit and centres
    them; its zoom level is shown as a percentage in its toolbar."""
    box = page.locator(f"#{editor} .pixi-target canvas").bounding_box()
    zoom = int(re.search(r"(\d+)\s*%", page.locator(f"#{editor}").inner_text()).group(1)) / 100
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    return lambda x, y: (cx + (x - size / 2) * zoom, cy + (y - size / 2) * zoom)


def pick_color(page, rgb: tuple[int, int, int], editor: str = "editor") -> None:
    """Choose a palette swatch in the editor, then go back to the brush (which closes the popover)."""
    page.locator(f"#{editor} button[aria-label='Color']").click()
    css = f"rgb({rgb[0]}, {rgb[1]}, {rgb[2]})"
    page.locator(f"#{editor} menu.swatch button.color[style*='background-color: {css}']").first.click()
    page.locator(f"#{editor} button[aria-label='Brush']").click()


def wait_until_updated(page, elem_id: str, quiet_s: float = 1.5) -> None:
    """Until the component has had no update pending (Gradio's 'processing' overlay) for ``quiet_s`` in a row: a
    canvas painted on while its new background is still on its way loses the strokes, and the overlay may appear
    a moment after the event that sends the background has answered."""
    page.wait_for_function(
        """([id, quiet]) => {
            const busy = (document.querySelector(`#${id}`)?.innerText || '').includes('processing')
                || !document.querySelector(`#${id} .pixi-target canvas`);
            const now = performance.now();
            if (busy || window.__quietSince?.[id] === undefined) {
                window.__quietSince = {...(window.__quietSince || {}), [id]: busy ? undefined : now};
                return false;
            }
            return now - window.__quietSince[id] >= quiet;
        }""", arg=[elem_id, quiet_s * 1000], polling=100)
