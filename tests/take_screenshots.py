"""Retake the README's screenshots of the app on the embedded model (not a test; run it by hand).

    python app.py --port 7861 &
    python tests/take_screenshots.py http://127.0.0.1:7861        # writes assets/screenshots/studio-*.png

It paints one row of eye white above and below each eye of the first sample (studio-paint.png), presses Edit
and waits for it to finish (studio-edit.png). Needs the browser-test tools: playwright and /usr/bin/chromium.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # the browser tests' helpers and the editgan package
from browser_support import CHROMIUM, LAUNCH_ARGS, canvas_to_screen, pick_color, shown_image  # noqa: E402
from test_browser import brush_stroke, wait_for_status  # noqa: E402

from editgan.app.views import canvas_scale  # noqa: E402

SIZE = 64  # the embedded model's picture size
EYE_WHITE = (255, 255, 255)


def paint_bigger_eyes(page, scale: int) -> None:
    """Brush a row of eye white just above and just below each eye, in the enlarged label-map editor."""
    _, labels = shown_image(page, "labels")
    eye = (labels[scale // 2::scale, scale // 2::scale] == EYE_WHITE).all(-1)
    ys, xs = np.nonzero(eye)
    pick_color(page, EYE_WHITE)
    to_screen = canvas_to_screen(page, SIZE * scale)
    for side in (xs < SIZE // 2, xs >= SIZE // 2):
        top, bottom, left, right = ys[side].min(), ys[side].max(), xs[side].min(), xs[side].max()
        for row in (top - 1, bottom + 1):
            x0, x1, y = (v * scale + scale // 2 for v in (left, right, row))  # label pixel → its canvas centre
            brush_stroke(page, to_screen, x0, x1, y, steps=6)


def main(url: str, out: Path = Path("assets/screenshots")) -> None:
    scale = canvas_scale(SIZE, SIZE)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1700})
        page.set_default_timeout(180_000)
        page.goto(url)
        page.wait_for_selector("#editor .pixi-target canvas")
        wait_for_status(page, "Step 1 of 1")
        time.sleep(2)  # let the editor draw the label map
        paint_bigger_eyes(page, scale)
        page.screenshot(path=str(out / "studio-paint.png"), full_page=True)
        page.locator("#edit").click()
        wait_for_status(page, "Edit done")
        time.sleep(2)
        page.screenshot(path=str(out / "studio-edit.png"), full_page=True)
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1], *(Path(a) for a in sys.argv[2:3]))
