"""The studio in a real browser: paint a stroke on the canvas in a class color, Edit, then move a preset slider.

Needs Debian's Chromium (`apt-get install -y chromium`) and the Playwright package (`pip install playwright`,
never `playwright install`); skipped without them. Screenshots go to test-artifacts/.
"""
from __future__ import annotations

import numpy as np
import pytest
from browser_support import (
    ARTIFACTS,
    CHROMIUM,
    LAUNCH_ARGS,
    canvas_to_screen,
    pick_color,
    playwright_sync_api,
    shown_image,
)

sync_api = playwright_sync_api()

from tiny_models import SIZE, running_studio  # noqa: E402

from editgan.app.views import canvas_scale  # noqa: E402

K = canvas_scale(SIZE, SIZE)  # the canvas shows each label pixel as K×K pixels
RED = (255, 0, 0)  # the tiny model's class 1, "reddish"
TIMEOUT_MS = 120_000
BAND = 8  # label rows painted


@pytest.fixture(scope="module")
def url(tiny_model_dir):
    with running_studio(tiny_model_dir) as address:
        yield address


@pytest.fixture(scope="module")
def page(url):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1700})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        page.wait_for_selector("#editor .pixi-target canvas")
        wait_for_status(page, "Step 1 of 1")
        yield page
        browser.close()


def wait_for_status(page, text: str) -> None:
    page.wait_for_function("t => (document.querySelector('#status')?.innerText || '').includes(t)", arg=text,
                           polling=100)



def wait_for_new_image(page, elem_id: str, old_src: str) -> np.ndarray:
    page.wait_for_function("([id, old]) => { const img = document.querySelector(`#${id} img`);"
                           " return img && img.getAttribute('src') !== old; }", arg=[elem_id, old_src],
                           polling=100)
    return shown_image(page, elem_id)[1]




def brush_stroke(page, to_screen, x0: int, x1: int, y: int, steps: int = 8) -> None:
    """One horizontal brush stroke from canvas pixel (x0, y) to (x1, y)."""
    page.mouse.move(*to_screen(x0, y))
    page.mouse.down()
    page.mouse.move(*to_screen(x1, y), steps=steps)
    page.mouse.up()


def test_paint_a_stroke_edit_and_move_a_slider(page):
    page.screenshot(path=str(ARTIFACTS / "browser-1-start.png"), full_page=True)
    _, labels_before = shown_image(page, "labels")
    picture_src, picture_before = shown_image(page, "picture")
    assert labels_before.shape[:2] == (SIZE, SIZE)  # sent at the model's size, enlarged by the page's CSS
    labels = (labels_before == RED).all(-1)

    # a band of BAND label rows with the most "other" pixels: paint it "reddish" with one stroke per 2 rows
    top = max(range(2, SIZE - BAND - 2), key=lambda r: int((~labels[r:r + BAND, 4:SIZE - 4]).sum()))
    left, right = 4, SIZE - 5
    ys = [(top + 1 + 2 * i) * K for i in range(BAND // 2)]  # the brush is 2 label pixels wide
    x0, x1 = left * K + K // 2, right * K + K // 2

    pick_color(page, RED)
    assert "rgb(255, 0, 0)" in page.locator("#editor button[aria-label='Color']").get_attribute("style")

    to_screen = canvas_to_screen(page, SIZE * K)
    for y in ys:
        brush_stroke(page, to_screen, x0, x1, y)
    page.screenshot(path=str(ARTIFACTS / "browser-2-painted.png"), full_page=True)

    labels_src = page.locator("#labels img").first.get_attribute("src")
    page.locator("#edit").click()
    wait_for_status(page, "Edit done")
    picture_after = shown_image(page, "picture")[1]
    labels_after = wait_for_new_image(page, "labels", labels_src)
    page.screenshot(path=str(ARTIFACTS / "browser-3-edited.png"), full_page=True)
    assert "mask edit (reddish" in page.locator("#status").inner_text()
    assert not np.array_equal(picture_after, picture_before), "the edit should change the picture"
    new = (labels_after == RED).all(-1)
    stroke = np.zeros_like(new)
    stroke[top:top + BAND, left:right + 1] = True
    stroke &= ~labels  # the pixels the stroke asked to change
    assert stroke.sum() >= 20
    assert new[stroke].mean() >= 0.6, f"only {new[stroke].mean():.0%} of the painted pixels became 'reddish'"

    # a preset slider applies its vector at once
    picture_src = page.locator("#picture img").first.get_attribute("src")
    slider = page.locator("#slider-0 input[type=range]")
    box = slider.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.95, box["y"] + box["height"] / 2)
    moved = wait_for_new_image(page, "picture", picture_src)
    wait_for_status(page, "sliders (Redder")
    page.screenshot(path=str(ARTIFACTS / "browser-4-slider.png"), full_page=True)
    assert not np.array_equal(moved, picture_after), "moving the slider should change the picture"
    assert float(page.locator("#slider-0 input[type=number]").input_value()) > 1.0


def pick_class(page, name: str) -> None:
    """Choose the brush's class by name in the dropdown above the canvas."""
    page.locator("#brush-class input").click()
    page.locator(f"[role=option][aria-label='{name}']").first.click()


def wait_for_brush_color(page, rgb: tuple[int, int, int]) -> None:
    page.wait_for_function("css => (document.querySelector(\"#editor button[aria-label='Color']\")"
                           "?.getAttribute('style') || '').includes(css)", arg=f"rgb({rgb[0]}, {rgb[1]}, {rgb[2]})",
                           polling=100)


def test_the_class_picker_sets_the_brush_color_that_paints(page):
    pick_class(page, "other")
    wait_for_brush_color(page, (0, 0, 0))
    src, shown = shown_image(page, "labels")
    reddish = (shown == RED).all(-1)
    row = max(range(2, SIZE - 2), key=lambda r: int(reddish[r, 2:SIZE - 2].sum()))
    assert reddish[row].sum() >= 4, "the first test's edit should have left reddish pixels to paint over"
    columns = np.flatnonzero(reddish[row])
    box = page.locator("#edit-steps input[type=number]")
    box.fill("10")
    box.press("Tab")
    brush_stroke(page, canvas_to_screen(page, SIZE * K), columns[0] * K + K // 2, columns[-1] * K + K // 2,
                 row * K + K // 2)
    page.screenshot(path=str(ARTIFACTS / "browser-5-class-picker.png"), full_page=True)
    page.locator("#edit").click()
    wait_for_status(page, "mask edit (other")  # the server read the paint as class "other": the brush was black
    wait_for_new_image(page, "labels", src)

    pick_class(page, "reddish")
    wait_for_brush_color(page, RED)


def test_a_typed_step_count_out_of_range_is_corrected_with_a_word(page):
    box = page.locator("#edit-steps input[type=number]")
    box.fill("5000")
    box.press("Tab")
    toast = page.locator(".toast-body", has_text="Edit steps go from 10 to 500: 5000 was changed to 500.")
    toast.first.wait_for()
    assert box.input_value() == "500"
    page.locator("#editor button[aria-label='Color']").click()  # the palette: the white swatch gets a ring
    page.locator("#editor").screenshot(path=str(ARTIFACTS / "browser-6-palette.png"))
    ring = page.locator("#editor menu.swatch button.color").first.evaluate("b => getComputedStyle(b).boxShadow")
    assert "inset" in ring, f"the palette's swatches should have a ring, got {ring!r}"
    page.locator("#editor button[aria-label='Brush']").click()
